"""Composition: template messages, the text part from HTML, CSS inlining, inline
images. It makes ordinary ``EmailMultiAlternatives`` and depends on ``message`` and
``conf`` only; the Django template engine plugs in from ``mailwright.django``.

Jinja2, css-inline and inscriptis (extra ``templates``) are imported on first use.
"""

from __future__ import annotations

from ..django.templates import django_engine
from .build import asend_template, render_template, send_template, template_message
from .engine import Blocks, add_engine_finder, get_engine
from .errors import TemplateError
from .text import html_to_text

# In a Django project, Django's template engine renders template messages (the finder
# never imports Django; it answers once Django's settings are configured).
add_engine_finder(django_engine)

__all__ = [
    "Blocks",
    "TemplateError",
    "add_engine_finder",
    "asend_template",
    "get_engine",
    "html_to_text",
    "render_template",
    "send_template",
    "template_message",
]
