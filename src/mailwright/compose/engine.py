"""Template engines: what renders a template's ``subject``, ``html`` and ``text`` blocks.

An engine is anything with ``dirs`` (where a template's images and stylesheets are
found) and ``render(name, context, inline_image)`` returning ``Blocks``. mailwright
has one for Jinja2 here; the Django integration registers another with
``add_engine_finder`` (a finder returns an engine when it applies, else None), so this
package knows nothing of Django.

Which engine renders: ``EMAIL_TEMPLATE_ENGINE`` when set (a callable returning the
user's ``jinja2.Environment``); else the first finder that answers (in a Django project,
Django's template engine); else a Jinja2 environment over ``EMAIL_TEMPLATE_DIRS``.

Jinja2 is imported on first use, never when mailwright is imported.
"""

from __future__ import annotations

import importlib
import threading
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol

from ..conf import settings
from ..exceptions import ImproperlyConfigured
from .errors import TemplateError

if TYPE_CHECKING:
    import jinja2

__all__ = [
    "BLOCKS",
    "Blocks",
    "Engine",
    "JinjaEngine",
    "add_engine_finder",
    "get_engine",
]

#: The block names a template message is made of; ``subject`` is required.
BLOCKS = ("subject", "html", "text")


@dataclass(frozen=True, slots=True)
class Blocks:
    """The rendered blocks of one template (None: the template has no such block)."""

    subject: str
    html: str | None
    text: str | None


class Engine(Protocol):
    dirs: list[Path]

    def render(
        self, name: str, context: Mapping[str, Any], inline_image: Callable[[str], str]
    ) -> Blocks: ...


EngineFinder = Callable[[], Engine | None]
_finders: list[EngineFinder] = []
_cache: dict[tuple[Any, ...], Engine] = {}
_lock = threading.Lock()


def add_engine_finder(finder: EngineFinder) -> None:
    """Register ``finder``: called (in order) when no ``EMAIL_TEMPLATE_ENGINE`` is set;
    the first engine it returns renders. It must be cheap when it does not apply."""
    if finder not in _finders:
        _finders.append(finder)


def get_engine() -> Engine:
    """The engine for the current settings."""
    configured = settings.EMAIL_TEMPLATE_ENGINE
    if configured is None:
        for finder in _finders:
            engine = finder()
            if engine is not None:
                return engine
    dirs = tuple(settings.EMAIL_TEMPLATE_DIRS)
    key = (configured, dirs, settings.EMAIL_TEMPLATE_STRICT)
    engine = _cache.get(key)
    if engine is None:
        with _lock:
            engine = _cache.get(key)
            if engine is None:
                engine = _cache[key] = _jinja_engine(configured, dirs, key[2])
    return engine


def _jinja_engine(configured: Any, dirs: tuple[str, ...], strict: bool) -> JinjaEngine:
    try:
        import jinja2
    except ImportError:
        raise ImportError(
            "template messages need Jinja2: pip install 'mailwright[templates]'"
        ) from None
    paths = [Path(directory) for directory in dirs]
    if configured is None:
        environment = jinja2.Environment(loader=jinja2.FileSystemLoader(paths), autoescape=True)
    else:
        factory = _import_callable(configured)
        environment = factory()
        if not isinstance(environment, jinja2.Environment):
            raise ImproperlyConfigured(
                f"EMAIL_TEMPLATE_ENGINE: {configured!r} returned "
                f"{type(environment).__name__}, not a jinja2.Environment"
            )
        loader = environment.loader
        if not paths and isinstance(loader, jinja2.FileSystemLoader):
            paths = [Path(directory) for directory in loader.searchpath]
    return JinjaEngine(environment, paths, strict=strict)


def _import_callable(value: Any) -> Callable[[], Any]:
    if callable(value):
        return value  # type: ignore[no-any-return]
    module_name, _, attribute = str(value).rpartition(".")
    try:
        found = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ImproperlyConfigured(
            f"EMAIL_TEMPLATE_ENGINE: cannot import {value!r} ({exc})"
        ) from None
    if not callable(found):
        raise ImproperlyConfigured(f"EMAIL_TEMPLATE_ENGINE: {value!r} is not callable")
    return found  # type: ignore[no-any-return]


class JinjaEngine:
    """Renders blocks with Jinja2. The ``html`` block is autoescaped; ``subject`` and
    ``text`` are not (they are not HTML: an ``&`` stays an ``&``). Two overlays of the
    one environment do this, each compiling a template once."""

    def __init__(self, environment: jinja2.Environment, dirs: list[Path], *, strict: bool) -> None:
        import jinja2

        self.dirs = dirs
        options: dict[str, Any] = {"undefined": jinja2.StrictUndefined} if strict else {}
        self._html = environment.overlay(autoescape=True, **options)
        self._text = environment.overlay(autoescape=False, **options)
        # template -> the templates it extends, nearest first (found once per template)
        self._parents: weakref.WeakKeyDictionary[jinja2.Template, list[jinja2.Template]]
        self._parents = weakref.WeakKeyDictionary()

    def render(
        self, name: str, context: Mapping[str, Any], inline_image: Callable[[str], str]
    ) -> Blocks:
        import jinja2

        variables = {**context, "inline_image": inline_image}
        try:
            text_template = self._text.get_template(name)
            blocks = self._blocks(text_template, variables)
            if "subject" not in blocks.blocks:
                raise TemplateError(
                    "no subject block: a template message needs "
                    "{% block subject %}...{% endblock %}",
                    name,
                )
            subject = self._render_block(text_template, blocks, "subject")
            text = (
                self._render_block(text_template, blocks, "text")
                if "text" in blocks.blocks
                else None
            )
            html = None
            if "html" in blocks.blocks:
                html_template = self._html.get_template(name)
                html = self._render_block(
                    html_template, self._blocks(html_template, variables), "html"
                )
        except jinja2.TemplateSyntaxError as exc:
            message = exc.message or "syntax error"
            raise TemplateError(message, exc.name or name, exc.lineno) from exc
        except jinja2.TemplateNotFound as exc:
            searched = ", ".join(str(path) for path in self.dirs) or "none configured"
            missing = exc.name if isinstance(exc.name, str) else name
            where = "" if missing == name else f" (included from {name})"
            raise TemplateError(
                f"template not found{where} in the template directories ({searched})", missing
            ) from exc
        except jinja2.UndefinedError as exc:
            template_name, lineno = _template_line(exc.__traceback__, name)
            raise TemplateError(exc.message or "undefined", template_name, lineno) from exc
        return Blocks(subject, html, text)

    def _blocks(
        self, template: jinja2.Template, variables: dict[str, Any]
    ) -> jinja2.runtime.Context:
        context = template.new_context(variables)
        for parent in self._ancestors(template):
            for block, function in parent.blocks.items():
                context.blocks.setdefault(block, []).append(function)
        return context

    def _ancestors(self, template: jinja2.Template) -> list[jinja2.Template]:
        """The templates ``template`` extends (``{% extends "base.html" %}`` with a
        constant name), nearest first."""
        found = self._parents.get(template)
        if found is not None:
            return found
        from jinja2 import nodes

        found = []
        environment = template.environment
        current = template
        seen = {template.name}
        while current.name is not None and environment.loader is not None:
            source, _, _ = environment.loader.get_source(environment, current.name)
            extends = environment.parse(source, current.name, current.filename).find(nodes.Extends)
            if extends is None or not isinstance(extends.template, nodes.Const):
                break
            parent_name = extends.template.value
            if not isinstance(parent_name, str) or parent_name in seen:
                break
            seen.add(parent_name)
            current = environment.get_template(parent_name, parent=current.name)
            found.append(current)
        self._parents[template] = found
        return found

    def _render_block(
        self, template: jinja2.Template, context: jinja2.runtime.Context, block: str
    ) -> str:
        try:
            return template.environment.concat(context.blocks[block][0](context))
        except Exception:
            template.environment.handle_exception()


def _template_line(traceback: TracebackType | None, name: str) -> tuple[str, int | None]:
    """The template file and line where an error was raised: the innermost frame Jinja2
    rewrote to point into a template."""
    found: tuple[str, int | None] = (name, None)
    while traceback is not None:
        frame_globals = traceback.tb_frame.f_globals
        if "__jinja_exception__" in frame_globals:
            filename = str(frame_globals.get("__file__") or name)
            shown = name if filename.endswith(name) else filename
            found = (shown, traceback.tb_lineno)
        traceback = traceback.tb_next
    return found
