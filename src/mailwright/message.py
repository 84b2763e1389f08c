"""``EmailMessage`` and ``EmailMultiAlternatives``: what a message is made of.

A message object holds plain Python values (subject, body, address strings,
attachments). Nothing is checked or encoded until it is needed: ``message()`` (a stdlib
``email.message.EmailMessage``), ``as_bytes()`` (the bytes that are sent) and ``send()``
all start from ``_compose()``, which checks every field through ``headers`` and
``addresses`` and decides the MIME structure.
"""

from __future__ import annotations

import email.message
import itertools
import mimetypes
import os
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from . import headers as hdr
from . import stdlib_build, wire
from .addresses import Group, Mailbox, parse_address_list, parse_mailbox
from .conf import settings
from .mime import (
    BinaryPart,
    ForeignPart,
    MessagePart,
    Multipart,
    Part,
    TextPart,
    crlf_lines,
    text_part,
)

if TYPE_CHECKING:
    from .backends.base import BaseEmailBackend

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

DEFAULT_ATTACHMENT_MIME_TYPE = "application/octet-stream"

_MIMETYPE = re.compile(r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*")
_CONTENT_ID = re.compile(r"[\x21-\x3b\x3d\x3f-\x7e]+")  # printable, no < > or space
# Fields mailwright writes itself from the MIME tree; a user value would break it.
_STRUCTURAL = frozenset({"content-type", "content-transfer-encoding", "mime-version"})
_ADDRESS_FIELDS = {
    "from": "From",
    "to": "To",
    "cc": "Cc",
    "reply-to": "Reply-To",
    "sender": "Sender",
}


class EmailAttachment(NamedTuple):
    filename: str | None
    content: Any
    mimetype: str


class InlineAttachment(NamedTuple):
    filename: str | None
    content: bytes | str
    mimetype: str
    cid: str


class EmailAlternative(NamedTuple):
    content: Any
    mimetype: str


@dataclass(slots=True)
class Delivery:
    """What happened to a message on its last send.

    ``accepted`` lists the recipients the server took; ``refused`` maps the others to
    the server's reply (code, text). ``error`` says why the message did not reach
    every recipient when that was not a per-recipient refusal: the server refused it
    at MAIL or end of data, the connection broke, or it was never tried because an
    earlier message of the batch failed. A message counts as sent when ``accepted``
    is not empty.
    """

    accepted: list[str] = field(default_factory=list)
    refused: dict[str, tuple[int, str]] = field(default_factory=dict)
    error: BaseException | None = None

    @property
    def sent(self) -> bool:
        return bool(self.accepted)


@dataclass(frozen=True, slots=True)
class Envelope:
    """What an SMTP transaction needs: MAIL FROM, RCPT TOs and the DATA bytes."""

    sender: str
    recipients: list[str]
    data: bytes
    smtputf8: bool


def _address_list_arg(value: Any, name: str) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, str):
        raise TypeError(f'"{name}" must be a list or tuple of addresses, not a string: {value!r}')
    return list(value)


_date_cache: tuple[int, str] = (0, "")


def _now_date() -> str:
    """The Date field for now; formatting is cached for the current second."""
    global _date_cache
    second = int(time.time())
    if _date_cache[0] != second:
        stamp = datetime.fromtimestamp(second, UTC)
        _date_cache = (second, format_datetime(stamp))
    return _date_cache[1]


# Message-IDs: time, a per-process random part and a counter make each one unique
# without a system call per message. A forked child (prefork servers, task-queue
# workers) draws its own random part, or parent and children would share it.
_id_prefix = ""
_id_counter = itertools.count()


def _new_id_prefix() -> None:
    global _id_prefix
    _id_prefix = os.urandom(6).hex()


_new_id_prefix()
os.register_at_fork(after_in_child=_new_id_prefix)


def _make_message_id(domain: str) -> str:
    return f"<{time.time_ns():x}.{_id_prefix}{next(_id_counter):x}@{domain}>"


def _mailboxes(values: list[Any], field: str) -> list[Mailbox]:
    """Parsed addresses of one list attribute; empty entries are dropped."""
    if not values:
        return []
    return [parse_mailbox(value, field) for value in values if value]


def _field_text(name: str, value: Any) -> str:
    if isinstance(value, datetime):
        return format_datetime(value if value.tzinfo else value.astimezone())
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return str(value)
    raise TypeError(f"header {name!r}: expected a string, got {type(value).__name__}")


def _guess_mimetype(filename: str | None) -> str:
    if filename:
        guessed, _ = mimetypes.guess_type(filename, strict=False)
        if guessed:
            return guessed
    return DEFAULT_ATTACHMENT_MIME_TYPE


def _split_mimetype(mimetype: str) -> tuple[str, str]:
    if not isinstance(mimetype, str) or not _MIMETYPE.fullmatch(mimetype):
        hdr.check_value("mimetype", str(mimetype))
        raise ValueError(f"invalid MIME type {mimetype!r}: expected 'type/subtype'")
    maintype, subtype = mimetype.lower().split("/", 1)
    return maintype, subtype


def _rfc822_bytes(content: Any) -> bytes:
    if isinstance(content, EmailMessage):
        return content.as_bytes()
    if isinstance(content, email.message.Message):
        return crlf_lines(content.as_bytes(policy=content.policy.clone(linesep="\r\n")))
    if isinstance(content, str):
        content = content.encode("utf-8")
    if isinstance(content, bytes):
        return crlf_lines(content)
    raise TypeError(
        "message/rfc822 content must be an EmailMessage, a stdlib message, or bytes; "
        f"got {type(content).__name__}"
    )


def _content_part(
    content: Any,
    mimetype: str,
    charset: str,
    *,
    disposition: str | None = None,
    filename: str | None = None,
    content_id: str | None = None,
) -> Part:
    """One leaf of the tree for some content of a given MIME type."""
    maintype, subtype = _split_mimetype(mimetype)
    if filename is not None:
        hdr.check_value("filename", filename)
    filename = filename or None  # an empty name says nothing; leave the parameter out
    if maintype == "text" and isinstance(content, str):
        return text_part(
            subtype,
            content,
            charset,
            disposition=disposition,
            filename=filename,
            content_id=content_id,
        )
    if (maintype, subtype) == ("message", "rfc822"):
        return MessagePart(_rfc822_bytes(content), disposition, filename)
    if isinstance(content, str):
        content = content.encode("utf-8")
    if not isinstance(content, bytes | bytearray | memoryview):
        raise TypeError(
            f"attachment {filename!r}: content must be str or bytes, got {type(content).__name__}"
        )
    return BinaryPart(maintype, subtype, bytes(content), disposition, filename, content_id)


@dataclass(slots=True)
class _Composition:
    fields: list[tuple[str, str]]
    root: Part
    sender: Mailbox
    recipients: list[Mailbox]
    smtputf8: bool


class EmailMessage:
    """An email message, the way ``django.core.mail.EmailMessage`` defines it.

    >>> msg = EmailMessage("Hello", "Body", "from@example.com", ["to@example.com"])
    >>> msg.send()  # doctest: +SKIP
    1
    """

    content_subtype = "plain"
    mixed_subtype = "mixed"
    encoding: str | None = None

    def __init__(
        self,
        subject: str = "",
        body: str = "",
        from_email: str | None = None,
        to: Iterable[Any] | None = None,
        bcc: Iterable[Any] | None = None,
        connection: BaseEmailBackend | None = None,
        attachments: Iterable[Any] | None = None,
        headers: Mapping[str, Any] | None = None,
        cc: Iterable[Any] | None = None,
        reply_to: Iterable[Any] | None = None,
    ) -> None:
        self.to = _address_list_arg(to, "to")
        self.cc = _address_list_arg(cc, "cc")
        self.bcc = _address_list_arg(bcc, "bcc")
        self.reply_to = _address_list_arg(reply_to, "reply_to")
        self.from_email = from_email or settings.DEFAULT_FROM_EMAIL
        self.subject = subject
        self.body = body or ""
        self.attachments: list[Any] = []
        self.inline_attachments: list[InlineAttachment] = []
        for attachment in attachments or ():
            if isinstance(attachment, email.message.Message):
                self.attach(attachment)
            else:
                self.attach(*attachment)
        self.extra_headers: dict[str, Any] = dict(headers or {})
        self.connection = connection
        self.delivery: Delivery | None = None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} subject={self.subject!r} to={self.to!r}>"

    def __getstate__(self) -> dict[str, Any]:
        # A connection (a socket) does not travel with a pickled message.
        state = self.__dict__.copy()
        state["connection"] = None
        return state

    # --- sending ---

    def get_connection(self, fail_silently: bool = False) -> BaseEmailBackend:
        from .api import get_connection

        if not self.connection:
            self.connection = get_connection(fail_silently=fail_silently)
        return self.connection

    def send(self, fail_silently: bool = False) -> int:
        """Send the message; return 1 if it was sent, 0 if not (or no recipients)."""
        if not self.recipients():
            return 0
        return self.get_connection(fail_silently).send_messages([self])

    async def asend(self, fail_silently: bool = False) -> int:
        """``send()`` for asyncio code; never blocks the event loop."""
        if not self.recipients():
            return 0
        return await self.get_connection(fail_silently).asend_messages([self])

    # --- reading ---

    def recipients(self) -> list[str]:
        """Envelope recipients: to + cc + bcc as bare addresses, empty entries dropped."""
        return [mailbox.addr_spec for mailbox in self._recipient_mailboxes()]

    def message(self) -> email.message.EmailMessage:
        """The message as a stdlib ``email.message.EmailMessage``, ready to send."""
        composed = self._compose()
        return stdlib_build.build(composed.fields, composed.root, utf8=composed.smtputf8)

    def as_bytes(self) -> bytes:
        """The exact bytes mailwright sends: CRLF line breaks, Bcc never included."""
        composed = self._compose()
        return wire.render(composed.fields, composed.root, utf8=composed.smtputf8)

    def envelope(self) -> Envelope:
        """Sender, recipients and data for an SMTP transaction (used by backends)."""
        composed = self._compose()
        return Envelope(
            composed.sender.addr_spec,
            [mailbox.addr_spec for mailbox in composed.recipients],
            wire.render(composed.fields, composed.root, utf8=composed.smtputf8),
            composed.smtputf8,
        )

    # --- attachments ---

    def attach(
        self,
        filename: Any = None,
        content: Any = None,
        mimetype: str | None = None,
    ) -> None:
        """Attach ``(filename, content, mimetype)``, or a ready-made stdlib MIME part.

        The type is guessed from the filename when not given. ``bytes`` content of a
        ``text/*`` type is decoded as UTF-8 when it can be, otherwise sent as
        ``application/octet-stream``.
        """
        if isinstance(filename, email.message.Message):
            if content is not None or mimetype is not None:
                raise ValueError("content and mimetype must not be given with a MIME part")
            self.attachments.append(filename)
            return
        if content is None:
            raise ValueError(f"attachment {filename!r}: content must be given")
        if filename is not None and not isinstance(filename, str):
            raise TypeError(f"attachment filename must be a string, got {filename!r}")
        mimetype = mimetype or _guess_mimetype(filename)
        maintype, _ = _split_mimetype(mimetype)
        if maintype == "text" and isinstance(content, bytes | bytearray):
            try:
                content = bytes(content).decode("utf-8")
            except UnicodeDecodeError:
                mimetype = DEFAULT_ATTACHMENT_MIME_TYPE
        self.attachments.append(EmailAttachment(filename, content, mimetype))

    def attach_file(self, path: str | os.PathLike[str], mimetype: str | None = None) -> None:
        """Attach a file from disk (read now: a missing file raises ``FileNotFoundError``)."""
        path = Path(path)
        content = path.read_bytes()
        self.attach(path.name, content, mimetype or _guess_mimetype(path.name))

    def attach_inline(
        self,
        filename: str | None,
        content: bytes | str,
        mimetype: str | None = None,
        *,
        cid: str | None = None,
    ) -> str:
        """Attach an image (or other part) for the HTML to show inline; return its
        Content-ID, to reference as ``<img src="cid:{cid}">``."""
        if content is None:
            raise ValueError(f"inline attachment {filename!r}: content must be given")
        mimetype = mimetype or _guess_mimetype(filename)
        _split_mimetype(mimetype)
        if cid is None:
            cid = f"{os.urandom(10).hex()}@mailwright.inline"
        elif not isinstance(cid, str) or not _CONTENT_ID.fullmatch(cid):
            hdr.check_value("Content-ID", str(cid))
            raise ValueError(f"invalid content id {cid!r}: use printable ASCII without <>")
        self.inline_attachments.append(InlineAttachment(filename, content, mimetype, cid))
        return cid

    # --- composition ---

    def _charset(self) -> str:
        return self.encoding or settings.DEFAULT_CHARSET

    def _recipient_mailboxes(self) -> list[Mailbox]:
        return [
            *_mailboxes(self.to, "to"),
            *_mailboxes(self.cc, "cc"),
            *_mailboxes(self.bcc, "bcc"),
        ]

    def _body_part(self, charset: str) -> Part | None:
        """The main text part, or None when an empty body would only sit beside
        attachments."""
        if not self.body and (self.attachments or self.inline_attachments):
            return None
        return text_part(self.content_subtype, self.body, charset)

    def _main_part(self, charset: str) -> Part | None:
        return self._body_part(charset)

    def _attach_related(self, main: Part | None, inline: list[Part]) -> tuple[Part | None, bool]:
        """Wrap the HTML part and the inline parts in multipart/related.
        Returns the new main part and whether an HTML part was found."""
        if main is None or not inline:
            return main, False
        if isinstance(main, TextPart) and main.subtype == "html":
            return Multipart("related", [main, *inline]), True
        if isinstance(main, Multipart) and main.subtype == "alternative":
            for index in range(len(main.children) - 1, -1, -1):
                child = main.children[index]
                if isinstance(child, TextPart) and child.subtype == "html":
                    main.children[index] = Multipart("related", [child, *inline])
                    return main, True
        return main, False

    def _tree(self, charset: str) -> Part:
        main = self._main_part(charset)
        inline = [
            _content_part(
                item.content,
                item.mimetype,
                charset,
                disposition="inline",
                filename=item.filename,
                content_id=item.cid,
            )
            for item in self.inline_attachments
        ]
        main, placed = self._attach_related(main, inline)
        extra: list[Part] = [] if placed else inline
        for attachment in self.attachments:
            if isinstance(attachment, email.message.Message):
                extra.append(ForeignPart(attachment))
            else:
                filename, content, mimetype = attachment
                extra.append(
                    _content_part(
                        content,
                        mimetype or _guess_mimetype(filename),
                        charset,
                        disposition="attachment",
                        filename=filename,
                    )
                )
        if not extra:
            assert main is not None
            return main
        children = [main, *extra] if main is not None else extra
        return Multipart(self.mixed_subtype, children)

    def _compose(self) -> _Composition:
        """Check every field, encode the header, decide the tree. Each address is
        parsed once; the envelope and the displayed fields share the result."""
        charset = self._charset()
        extra: dict[str, str] = {}
        for name, value in self.extra_headers.items():
            hdr.check_name(name)
            extra[name] = hdr.check_value(name, _field_text(name, value))
        overridden = {name.lower() for name in extra}

        sender = parse_mailbox(self.from_email, "from_email")
        to = _mailboxes(self.to, "to")
        cc = _mailboxes(self.cc, "cc")
        recipients = [*to, *cc, *_mailboxes(self.bcc, "bcc")]
        used: list[Mailbox] = [sender, *recipients]

        fields: list[tuple[str, str]] = []
        for key, label, items in (
            ("from", "From", [sender]),
            ("to", "To", to),
            ("cc", "Cc", cc),
            ("reply-to", "Reply-To", None),
        ):
            if key in overridden:
                continue
            if items is None:
                items = _mailboxes(self.reply_to, "reply_to")
                used.extend(items)
            if items:
                fields.append((label, hdr.address_value(label, items)))
        if "subject" not in overridden:
            fields.append(("Subject", hdr.unstructured_value("Subject", self.subject or "")))
        if "date" not in overridden:
            fields.append(("Date", _now_date()))
        if "message-id" not in overridden:
            fields.append(("Message-ID", _make_message_id(sender.domain)))

        for name, value in extra.items():
            key = name.lower()
            if key == "bcc":
                continue  # Bcc is never written into the message
            if key in _STRUCTURAL:
                raise ValueError(
                    f"header {name!r} is set by mailwright from the message content "
                    "and cannot be given in headers"
                )
            if key in _ADDRESS_FIELDS:
                items = parse_address_list(value, name)
                for item in items:
                    used.extend(item.mailboxes if isinstance(item, Group) else [item])
                fields.append((name, hdr.address_value(name, items)))
            else:
                fields.append((name, hdr.unstructured_value(name, value)))

        return _Composition(
            fields=fields,
            root=self._tree(charset),
            sender=sender,
            recipients=recipients,
            smtputf8=any(mailbox.needs_smtputf8 for mailbox in used),
        )


class EmailMultiAlternatives(EmailMessage):
    """A message with alternative renderings of the body (typically HTML)."""

    def __init__(
        self,
        subject: str = "",
        body: str = "",
        from_email: str | None = None,
        to: Iterable[Any] | None = None,
        bcc: Iterable[Any] | None = None,
        connection: BaseEmailBackend | None = None,
        attachments: Iterable[Any] | None = None,
        headers: Mapping[str, Any] | None = None,
        alternatives: Iterable[Any] | None = None,
        cc: Iterable[Any] | None = None,
        reply_to: Iterable[Any] | None = None,
    ) -> None:
        super().__init__(
            subject, body, from_email, to, bcc, connection, attachments, headers, cc, reply_to
        )
        self.alternatives: list[EmailAlternative] = []
        for content, mimetype in alternatives or ():
            self.attach_alternative(content, mimetype)

    def attach_alternative(self, content: Any, mimetype: str) -> None:
        """Add an alternative rendering, e.g. ``attach_alternative(html, "text/html")``."""
        if content is None or mimetype is None:
            raise ValueError("both content and mimetype must be given")
        _split_mimetype(mimetype)
        self.alternatives.append(EmailAlternative(content, mimetype))

    def _main_part(self, charset: str) -> Part | None:
        if not self.alternatives:
            return self._body_part(charset)
        parts = [text_part(self.content_subtype, self.body, charset)]
        parts.extend(
            _content_part(content, mimetype, charset) for content, mimetype in self.alternatives
        )
        return Multipart("alternative", parts)


class RawMessage(EmailMessage):
    """A message already in wire form: its bytes and its SMTP envelope.

    What the durable outbox, the Celery backend and the catcher's "release" hand to a
    backend: every backend sends it like any other message, and the SMTP backend sends
    ``data`` exactly as given (line breaks normalised to CRLF). The envelope addresses
    pass the same checks as every other address, so a stored or received envelope
    cannot inject SMTP parameters.

    ``to_dict()`` / ``from_dict()`` give a JSON-safe form (no pickle) for task queues.
    """

    def __init__(
        self,
        data: bytes,
        from_email: str,
        recipients: Iterable[Any],
        *,
        connection: BaseEmailBackend | None = None,
    ) -> None:
        if not isinstance(data, bytes | bytearray | memoryview):
            raise TypeError(f"RawMessage data must be bytes, got {type(data).__name__}")
        data = bytes(data)
        if not data.strip():
            raise ValueError("RawMessage data is empty")
        recipient_list = _address_list_arg(recipients, "recipients")
        # from_email given: the base class then skips reading DEFAULT_FROM_EMAIL (a
        # settings lookup that cost a quarter of building a RawMessage).
        super().__init__(from_email=from_email, connection=connection)
        self._sender = parse_mailbox(from_email, "from_email")
        self._recipients = _mailboxes(recipient_list, "recipients")
        self.from_email = self._sender.addr_spec
        self.to = [mailbox.addr_spec for mailbox in self._recipients]
        self.data = crlf_lines(data)
        header_end = self.data.find(b"\r\n\r\n")
        header = self.data if header_end < 0 else self.data[:header_end]
        self._smtputf8 = not header.isascii() or any(
            mailbox.needs_smtputf8 for mailbox in (self._sender, *self._recipients)
        )
        self._header = header
        self._subject: str | None = None  # parsed from the header when first read

    @property
    def subject(self) -> str:
        """The Subject field read from ``data``. Parsed on first use: the stdlib header
        parser costs ten times the rest of building a RawMessage, and sending never
        needs the subject (the durable outbox builds one per stored message)."""
        if self._subject is None:
            self._subject = _raw_subject(self._header)
        return self._subject

    @subject.setter
    def subject(self, value: str) -> None:
        self._subject = value

    def __repr__(self) -> str:
        return f"<RawMessage {len(self.data)} bytes from={self.from_email!r} to={self.to!r}>"

    def recipients(self) -> list[str]:
        return list(self.to)

    def message(self) -> email.message.EmailMessage:
        from email import message_from_bytes, policy

        parsed = message_from_bytes(self.data, policy=policy.default)
        assert isinstance(parsed, email.message.EmailMessage)
        return parsed

    def as_bytes(self) -> bytes:
        return self.data

    def envelope(self) -> Envelope:
        return Envelope(self.from_email, list(self.to), self.data, self._smtputf8)

    def attach(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError("a RawMessage is already composed; attachments cannot be added")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe form: ``{"sender", "recipients", "data"}`` (data in base64)."""
        import base64

        return {
            "sender": self.from_email,
            "recipients": list(self.to),
            "data": base64.b64encode(self.data).decode("ascii"),
        }

    @classmethod
    def from_dict(cls, payload: Any) -> RawMessage:
        """The message ``to_dict()`` made; a payload of any other shape raises
        ``ValueError`` saying what is wrong."""
        import base64
        import binascii

        if not isinstance(payload, Mapping):
            raise ValueError(f"message payload must be a mapping, got {type(payload).__name__}")
        expected = {"sender", "recipients", "data"}
        if set(payload) != expected:
            missing = sorted(expected - set(payload))
            extra = sorted(set(payload) - expected)
            raise ValueError(f"message payload keys wrong: missing {missing}, unexpected {extra}")
        sender, recipients, data = payload["sender"], payload["recipients"], payload["data"]
        if not isinstance(sender, str):
            raise ValueError("message payload 'sender' must be a string")
        if not isinstance(recipients, list) or not all(isinstance(r, str) for r in recipients):
            raise ValueError("message payload 'recipients' must be a list of strings")
        if not recipients:
            raise ValueError("message payload 'recipients' is empty")
        if not isinstance(data, str):
            raise ValueError("message payload 'data' must be a base64 string")
        try:
            raw = base64.b64decode(data.encode("ascii"), validate=True)
        except (binascii.Error, UnicodeEncodeError):
            raise ValueError("message payload 'data' is not valid base64") from None
        return cls(raw, sender, recipients)


def _raw_subject(header: bytes) -> str:
    from email.parser import BytesHeaderParser
    from email.policy import default

    try:
        return str(BytesHeaderParser(policy=default).parsebytes(header).get("Subject", ""))
    except Exception:  # an unreadable header still sends as given
        return ""
