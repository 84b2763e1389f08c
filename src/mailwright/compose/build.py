"""``template_message``, ``send_template`` and ``asend_template``: a template rendered
into an ordinary ``EmailMultiAlternatives``.

The steps, in order, all before anything is sent:

1. the engine renders the ``subject``, ``html`` and ``text`` blocks; ``inline_image()``
   reads each image it names (a missing file raises ``FileNotFoundError`` here);
2. the subject's whitespace, newlines included, collapses to single spaces: whatever a
   context value holds, the subject stays one header line;
3. the HTML gets its CSS inlined (``EMAIL_TEMPLATE_INLINE_CSS``);
4. without a ``text`` block, the text part is ``html_to_text(html)``;
5. the message is built: text body, HTML alternative, each image an inline part of
   ``multipart/related``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from ..conf import settings
from ..message import EmailMultiAlternatives
from .css import inline_css
from .engine import get_engine
from .errors import TemplateError
from .files import InlineImages
from .text import html_to_text

if TYPE_CHECKING:
    from ..backends.base import BaseEmailBackend

__all__ = ["asend_template", "render_template", "send_template", "template_message"]


def _one_line(subject: str) -> str:
    return " ".join(subject.split())


def _text_block(text: str) -> str:
    """A ``text`` block without the blank lines its template tags leave around it."""
    return text.strip("\n").rstrip() + "\n" if text.strip() else ""


def render_template(
    template_name: str, context: Mapping[str, Any] | None = None
) -> tuple[str, str, str | None, InlineImages]:
    """Subject, text, HTML (or None) and the inline images of ``template_name``."""
    if not isinstance(template_name, str) or not template_name:
        raise TypeError(f"template_name must be a template's name, got {template_name!r}")
    if context is not None and not isinstance(context, Mapping):
        raise TypeError(f"context must be a mapping, got {type(context).__name__}")
    engine = get_engine()
    images = InlineImages(engine.dirs)
    blocks = engine.render(template_name, dict(context or {}), images)
    html = blocks.html
    if html is not None and settings.EMAIL_TEMPLATE_INLINE_CSS:
        html = inline_css(html, engine.dirs)
    if blocks.text is not None:
        text = _text_block(blocks.text)
    elif html is not None:
        text = html_to_text(html)
    else:
        raise TemplateError(
            "no html and no text block: a template message needs at least one of "
            "{% block html %} and {% block text %}",
            template_name,
        )
    return _one_line(blocks.subject), text, html, images


def template_message(
    template_name: str,
    context: Mapping[str, Any] | None = None,
    *,
    to: Iterable[Any] | None = None,
    from_email: str | None = None,
    cc: Iterable[Any] | None = None,
    bcc: Iterable[Any] | None = None,
    reply_to: Iterable[Any] | None = None,
    headers: Mapping[str, Any] | None = None,
    attachments: Iterable[Any] | None = None,
) -> EmailMultiAlternatives:
    """The message ``template_name`` renders to with ``context``: subject from the
    ``subject`` block, a text body, the HTML as an alternative, inline images in
    ``multipart/related``. Raises ``TemplateError`` for a template that cannot be
    rendered and ``FileNotFoundError`` for a missing image or stylesheet."""
    subject, text, html, images = render_template(template_name, context)
    message = EmailMultiAlternatives(
        subject,
        text,
        from_email,
        to,
        bcc,
        attachments=attachments,
        headers=headers,
        cc=cc,
        reply_to=reply_to,
    )
    if html is not None:
        message.attach_alternative(html, "text/html")
    for filename, content, mimetype, cid in images.parts.values():
        message.attach_inline(filename, content, mimetype, cid=cid)
    return message


def _with_connection(
    message: EmailMultiAlternatives, connection: BaseEmailBackend | None
) -> EmailMultiAlternatives:
    if connection is not None:
        message.connection = connection
    return message


def send_template(
    template_name: str,
    context: Mapping[str, Any] | None = None,
    *,
    to: Iterable[Any],
    from_email: str | None = None,
    cc: Iterable[Any] | None = None,
    bcc: Iterable[Any] | None = None,
    reply_to: Iterable[Any] | None = None,
    headers: Mapping[str, Any] | None = None,
    attachments: Iterable[Any] | None = None,
    using: str | None = None,
    connection: BaseEmailBackend | None = None,
    fail_silently: bool = False,
) -> int:
    """Render ``template_name`` (see ``template_message``) and send it; return 1 when
    it was sent, else 0. ``using`` names the mailer (``mailwright.mailers``);
    ``connection`` is a backend to send with instead. Rendering errors are raised
    whatever ``fail_silently``."""
    message = template_message(
        template_name,
        context,
        to=to,
        from_email=from_email,
        cc=cc,
        bcc=bcc,
        reply_to=reply_to,
        headers=headers,
        attachments=attachments,
    )
    # ``using`` goes to the mailer resolver behind ``send()`` (mailwright.mailers), which
    # also refuses ``using`` together with ``connection``.
    return _with_connection(message, connection).send(fail_silently, using=using)


async def asend_template(
    template_name: str,
    context: Mapping[str, Any] | None = None,
    *,
    to: Iterable[Any],
    from_email: str | None = None,
    cc: Iterable[Any] | None = None,
    bcc: Iterable[Any] | None = None,
    reply_to: Iterable[Any] | None = None,
    headers: Mapping[str, Any] | None = None,
    attachments: Iterable[Any] | None = None,
    using: str | None = None,
    connection: BaseEmailBackend | None = None,
    fail_silently: bool = False,
) -> int:
    """``send_template`` for asyncio code. Rendering (template and image files, CSS,
    the text part) runs in a worker thread and sending is asynchronous: the event loop
    is never blocked."""
    message = await asyncio.to_thread(
        template_message,
        template_name,
        context,
        to=to,
        from_email=from_email,
        cc=cc,
        bcc=bcc,
        reply_to=reply_to,
        headers=headers,
        attachments=attachments,
    )
    return await _with_connection(message, connection).asend(fail_silently, using=using)
