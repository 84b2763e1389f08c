"""A Django message as a mailwright message.

Attribute by attribute, through the attributes Django documents for every version from
4.2 to 6.1: ``subject``, ``body``, ``from_email``, ``to``, ``cc``, ``bcc``,
``reply_to``, ``extra_headers``, ``attachments`` (tuples, ``EmailAttachment`` or
ready-made MIME parts), ``alternatives`` and ``content_subtype``. They carry over as they
are, and mailwright checks and encodes them when it composes the message, exactly as for
its own messages. Nothing is checked here, so a bad message fails inside the batch,
where the engine stops cleanly after the messages before it.

A message that goes beyond those attributes is serialised by Django itself and sent as
a ``RawMessage``, so what it means to send is what is sent:

* a Django message class that overrides ``message()`` (to add or change something
  there);
* a message that sets one of the undocumented attributes of Django's own serialiser to
  something other than Django's default: ``encoding`` (a charset other than
  ``DEFAULT_CHARSET``), and before Django 6.0 ``mixed_subtype`` and
  ``alternative_subtype``. Django 6.0 removed the last two; a message that still sets
  them fails there as it does in Django's own backends.
"""

from __future__ import annotations

from email.generator import BytesGenerator
from io import BytesIO
from typing import Any

from ..message import EmailMessage, EmailMultiAlternatives, RawMessage

__all__ = ["to_mailwright"]

_RFC822 = "message/rfc822"

#: Undocumented attributes of Django's serialiser, with Django's defaults. A message
#: whose value differs is serialised by Django (an attribute that is missing, as
#: ``mixed_subtype`` is from Django 6.0 on, reads as the default).
_UNDOCUMENTED_DEFAULTS = (
    ("encoding", None),
    ("mixed_subtype", "mixed"),
    ("alternative_subtype", "alternative"),
)


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
    if type(message).message is not django_serialiser or _undocumented(message):
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
    return converted


def _undocumented(message: Any) -> bool:
    """Whether ``message`` sets an undocumented serialiser attribute."""
    return any(
        getattr(message, name, default) != default for name, default in _UNDOCUMENTED_DEFAULTS
    )


def _attachment(item: Any, django_message: type[Any]) -> Any:
    """An attachment entry; a Django message attached as message/rfc822 is converted."""
    if isinstance(item, tuple) and len(item) == 3 and item[2] == _RFC822:
        filename, content, mimetype = item
        if isinstance(content, django_message):
            return (filename, to_mailwright(content), mimetype)
    return item


def _serialised(message: Any) -> RawMessage:
    """Django's own serialisation, with CRLF line breaks (Django < 6.0 returns a legacy
    ``Message``, later versions an ``email.message.EmailMessage``; both flatten so)."""
    buffer = BytesIO()
    BytesGenerator(buffer, mangle_from_=False).flatten(message.message(), linesep="\r\n")
    return RawMessage(buffer.getvalue(), message.from_email, message.recipients())
