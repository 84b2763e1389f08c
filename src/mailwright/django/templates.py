"""Template messages in a Django project: Django's template engine renders the same
``subject``, ``html`` and ``text`` blocks, from Django's template directories (``DIRS``
and the apps' ``templates/`` directories of the ``TEMPLATES`` setting).

``django_engine`` is registered as an engine finder when mailwright is imported; it
answers only once Django's settings are configured (and never imports Django itself),
and only when ``EMAIL_TEMPLATE_ENGINE`` is not set. The engine is a separate
``django.template.Engine`` built from the project's first ``DjangoTemplates`` backend
(its loaders, libraries and builtins) so that mail can differ where it must:

- autoescape is on (HTML);
- ``EMAIL_TEMPLATE_STRICT``: an undefined variable in ``{{ }}`` is an error (the
  project's pages keep Django's lenient ``string_if_invalid``); ``{% if %}`` on a missing
  variable stays false, as in Django;
- ``debug`` is on, so an error knows its template's line;
- ``{% inline_image "logo.png" %}`` is built in (Django templates call no functions).

The ``subject`` and ``text`` blocks render with autoescape off (they are not HTML).
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ..compose.engine import Blocks
from ..compose.errors import TemplateError
from ..conf import settings
from .settings import _configured_holder

__all__ = ["DjangoEngine", "django_engine"]

_engines: dict[tuple[int, bool], DjangoEngine] = {}
_lock = threading.Lock()


def django_engine() -> DjangoEngine | None:
    """Django's template engine for mail when Django is configured, else None."""
    conf = sys.modules.get("django.conf")
    if conf is None or _configured_holder(conf.settings) is None:
        return None
    from django.template import engines  # type: ignore[import-untyped]

    backend = next(
        (
            candidate
            for candidate in engines.all()
            if type(candidate).__module__ == "django.template.backends.django"
        ),
        None,
    )
    if backend is None:
        return None
    strict = bool(settings.EMAIL_TEMPLATE_STRICT)
    key = (id(backend.engine), strict)
    engine = _engines.get(key)
    if engine is None or engine.source is not backend.engine:
        with _lock:
            engine = _engines[key] = DjangoEngine(
                backend.engine, backend.template_dirs, strict=strict
            )
    return engine


class _Undefined(Exception):
    pass


class _RaiseOnInvalid(str):
    """``string_if_invalid`` that raises: Django asks ``"%s" in string_if_invalid``
    before it uses the value, only for a variable it could not resolve."""

    def __contains__(self, item: object) -> bool:
        raise _Undefined("undefined variable")

    def __bool__(self) -> bool:
        return True


class DjangoEngine:
    def __init__(self, source: Any, dirs: Any, *, strict: bool) -> None:
        from django.template import Engine

        self.source = source
        # DIRS, then each app's templates/ directory (the backend's template_dirs)
        self.dirs = [Path(directory) for directory in dirs]
        builtins = [name for name in source.builtins if name not in Engine.default_builtins]
        builtins.append("mailwright.django.mailtags")  # {% inline_image "logo.png" %}
        self._engine = Engine(
            dirs=list(source.dirs),
            loaders=source.loaders,
            context_processors=[],
            debug=True,
            libraries=dict(source.libraries),
            builtins=builtins,
            autoescape=True,
            string_if_invalid=_RaiseOnInvalid("") if strict else "",
            file_charset=source.file_charset,
        )

    def render(
        self, name: str, context: Mapping[str, Any], inline_image: Callable[[str], str]
    ) -> Blocks:
        from django.template import Context, TemplateDoesNotExist, TemplateSyntaxError

        try:
            template = self._engine.get_template(name)
        except TemplateDoesNotExist as exc:
            searched = ", ".join(str(path) for path in self.dirs) or "none configured"
            raise TemplateError(
                f"template not found in Django's template directories ({searched})", name
            ) from exc
        except TemplateSyntaxError as exc:
            where, line = _debug_info(exc, name)
            raise TemplateError(_message(exc), where, line) from exc
        variables = {**context, "inline_image": inline_image}
        try:
            blocks = _blocks(template, Context(variables, autoescape=True))
            if "subject" not in blocks:
                raise TemplateError(
                    "no subject block: a template message needs "
                    "{% block subject %}...{% endblock %}",
                    name,
                )
            subject = blocks["subject"](False)
            text = blocks["text"](False) if "text" in blocks else None
            html = blocks["html"](True) if "html" in blocks else None
        except _Undefined as exc:
            where, line = _debug_info(exc, name)
            raise TemplateError(_undefined_message(exc), where, line) from exc
        except TemplateSyntaxError as exc:  # from an included or extended template
            where, line = _debug_info(exc, name)
            raise TemplateError(_message(exc), where, line) from exc
        except TemplateDoesNotExist as exc:
            raise TemplateError(
                f"template {exc.args[0] if exc.args else ''!s} not found (included from {name})",
                name,
            ) from exc
        return Blocks(subject, html, text)


def _blocks(template: Any, context: Any) -> dict[str, Callable[[bool], str]]:
    """A renderer for each block of ``template``, across ``{% extends %}``: the most
    derived definition renders, and ``{{ block.super }}`` reaches its parent."""
    from django.template.loader_tags import (  # type: ignore[import-untyped]
        BLOCK_CONTEXT_KEY,
        BlockContext,
        BlockNode,
        ExtendsNode,
    )

    renderers: dict[str, Callable[[bool], str]] = {}
    block_context = BlockContext()
    owners: dict[int, Any] = {}  # id(block node) -> its template, for errors' line numbers
    chain = []
    current = template
    with context.render_context.push_state(template), context.bind_template(template):
        while True:
            chain.append(current)
            nodes = current.nodelist.get_nodes_by_type(BlockNode)
            owners.update((id(node), current) for node in nodes)
            block_context.add_blocks({node.name: node for node in nodes})
            extends = next(
                (node for node in current.nodelist if isinstance(node, ExtendsNode)), None
            )
            if extends is None:
                break
            current = extends.get_parent(context)
    for block in ("subject", "html", "text"):
        if block_context.get_block(block) is None:
            continue

        def render(autoescape: bool, block: str = block) -> str:
            context.autoescape = autoescape
            node = block_context.get_block(block)
            owner = owners.get(id(node), template)
            with context.render_context.push_state(owner), context.bind_template(template):
                context.render_context[BLOCK_CONTEXT_KEY] = block_context
                try:
                    return str(node.render(context))
                except Exception as exc:
                    _locate(exc, chain)
                    raise

        renderers[block] = render
    return renderers


def _locate(exc: BaseException, chain: list[Any]) -> None:
    """Give ``exc`` the line of the node that raised it, as Django's debug rendering
    does, when Django could not: a child's block rendered inside its parent's."""
    culprit = getattr(exc, "_culprit_node", None)
    if culprit is None or getattr(exc, "template_debug", None):
        return
    for owner in chain:
        if owner.origin == culprit.origin:
            exc.template_debug = owner.get_exception_info(exc, culprit.token)  # type: ignore[attr-defined]
            return


def _message(exc: BaseException) -> str:
    return str(exc.args[0]) if exc.args else "syntax error"


def _debug_info(exc: BaseException, name: str) -> tuple[str, int | None]:
    info = getattr(exc, "template_debug", None)
    if not info:
        return name, None
    where = str(info.get("name") or name)
    shown = name if where.endswith(name) else where
    return shown, info.get("line")


def _undefined_message(exc: BaseException) -> str:
    info = getattr(exc, "template_debug", None) or {}
    during = str(info.get("during") or "").strip()
    return f"undefined variable in {during}" if during else "undefined variable"
