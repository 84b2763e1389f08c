"""Template tags for template messages rendered by Django's engine (a builtin of the
mail engine, no ``{% load %}`` needed)::

    <img src="{% inline_image "logo.png" %}" alt="Logo">

gives the ``cid:`` URL of ``logo.png``, found in Django's template directories, and
the file becomes an inline part of the message. Imported only by Django's engine.
"""

from __future__ import annotations

from typing import Any

from django import template  # type: ignore[import-untyped]

__all__ = ["register"]

register = template.Library()


def inline_image(context: Any, name: str) -> str:
    add = context.get("inline_image")
    if add is None:
        raise template.TemplateSyntaxError(
            "{% inline_image %} works in template messages only (mailwright.template_message)"
        )
    return str(add(name))


register.simple_tag(inline_image, takes_context=True)
