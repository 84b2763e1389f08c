"""A Django message as a mailwright message.

Attribute by attribute, without Django's serialiser: subject, body, addresses, extra
headers, attachments (tuples or ready-made MIME parts), alternatives, subtypes and
encoding carry over as they are, and mailwright checks and encodes them when it composes
the message, exactly as for its own messages. Nothing is checked here, so a bad message
fails inside the batch, where the engine stops cleanly after the messages before it.

A Django message class that overrides ``message()`` (to add or change something there)
is the exception: its own output is what it means to send, so it is serialised by
Django and sent as a ``RawMessage``.
"""

from __future__ import annotations

from typing import Any

from ..message import EmailMessage, EmailMultiAlternatives, RawMessage

__all__ = ["to_mailwright"]

_RFC822 = "message/rfc822"


def _django_classes() -> tuple[type[Any], Any]:
    from django.core.mail import message  # type: ignore[import-untyped]

    return message.EmailMessage, message.EmailMessage.message


def to_mailwright(message: Any) -> EmailMessage:
    """``message`` (a Django ``EmailMessage`` or ``EmailMultiAlternatives``, or already a
    mailwright message) as a mailwright message. The Django message is not changed."""
    if isinstance(message, EmailMessage):
        return message
    django_message, django_serialiser = _django_classes()
    if not isinstance(message, django_message):
        raise TypeError(
            f"expected a Django or mailwright EmailMessage, got {type(message).__name__}"
        )
    if type(message).message is not django_serialiser:
        return _serialised(message)
    converted = EmailMultiAlternatives(
        message.subject,
        message.body,
        message.from_email,
        message.to,
        message.bcc,
        headers=message.extra_headers,
        cc=message.cc,
        reply_to=message.reply_to,
    )
    converted.attachments = [_attachment(item, django_message) for item in message.attachments]
    converted.alternatives = list(getattr(message, "alternatives", None) or [])
    converted.content_subtype = message.content_subtype
    converted.mixed_subtype = message.mixed_subtype
    converted.alternative_subtype = getattr(message, "alternative_subtype", "alternative")
    converted.encoding = message.encoding
    return converted


def _attachment(item: Any, django_message: type[Any]) -> Any:
    """An attachment entry; a Django message attached as message/rfc822 is converted."""
    if isinstance(item, tuple) and len(item) == 3 and item[2] == _RFC822:
        filename, content, mimetype = item
        if isinstance(content, django_message):
            return (filename, to_mailwright(content), mimetype)
    return item


def _serialised(message: Any) -> RawMessage:
    data = message.message().as_bytes(linesep="\r\n")
    return RawMessage(data, message.from_email, message.recipients())
