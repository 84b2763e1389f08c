"""Messages: what users compose (``EmailMessage``, ``EmailMultiAlternatives``,
``RawMessage``), and how it becomes MIME.

* ``message``: ``EmailMessage`` and ``EmailMultiAlternatives``; composition of the header;
* ``raw``: ``RawMessage``, a message already in wire form;
* ``content``: attachments and alternatives, and the MIME part each becomes;
* ``addresses``: parsing and checking addresses;
* ``headers``: checking, encoding and folding header fields;
* ``mime``: the MIME tree and its encoding decisions;
* ``wire``: the tree as the bytes that are sent;
* ``stdlib_build``: the tree as a stdlib ``email.message.EmailMessage``;
* ``stamps``: the generated ``Date`` and ``Message-ID``;
* ``envelope``: ``Envelope`` (what an SMTP transaction needs) and ``Delivery`` (its result).
* ``dkim``: DKIM signing, applied once, in ``EmailMessage.envelope(dkim=...)``.
"""

from .content import (
    DEFAULT_ATTACHMENT_MIME_TYPE,
    EmailAlternative,
    EmailAttachment,
    InlineAttachment,
)
from .envelope import Delivery, Envelope
from .message import EmailMessage, EmailMultiAlternatives
from .raw import RawMessage

__all__ = [
    "DEFAULT_ATTACHMENT_MIME_TYPE",
    "Delivery",
    "EmailAlternative",
    "EmailAttachment",
    "EmailMessage",
    "EmailMultiAlternatives",
    "Envelope",
    "InlineAttachment",
    "RawMessage",
]
