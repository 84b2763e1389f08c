"""``EmailMessage`` and ``EmailMultiAlternatives``: what a message is made of.

A message object holds plain Python values (subject, body, address strings,
attachments). Nothing is checked or encoded until it is needed: ``message()`` (a stdlib
``email.message.EmailMessage``), ``as_bytes()`` (the bytes that are sent) and ``send()``
all start from ``_compose()``, which checks every field through ``headers`` and
``addresses`` and decides the MIME structure.
"""

from __future__ import annotations

import contextlib
import contextvars
import email.charset
import email.message
import email.policy
import functools
import operator
import os
import re
from collections.abc import Iterable, Iterator, Mapping, Set
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..conf import settings
from . import headers as hdr
from . import stdlib_build, wire
from .addresses import Group, Mailbox, _parse_string, parse_address_list, parse_mailbox
from .content import (
    DEFAULT_ATTACHMENT_MIME_TYPE,
    EmailAlternative,
    EmailAttachment,
    InlineAttachment,
    content_part,
    guess_mimetype,
    split_mimetype,
)
from .envelope import Delivery, Envelope, new_envelope
from .lazy import as_text
from .mime import ForeignPart, Multipart, Part, TextPart, text_part
from .stamps import make_message_id, now_date

if TYPE_CHECKING:
    from ..backends.base import BaseEmailBackend
    from .dkim import DKIMSigner

__all__ = [
    "EmailMessage",
    "EmailMultiAlternatives",
    "address_list_arg",
    "batch_settings",
    "parse_mailboxes",
]

_CONTENT_ID = re.compile(r"[\x21-\x3b\x3d\x3f-\x7e]+")  # printable, no < > or space
# Fields mailwright writes itself from the MIME tree; a user value would break it.
_STRUCTURAL = frozenset({"content-type", "content-transfer-encoding", "mime-version"})
# RFC 5322 section 3.6: the fields a message may hold at most once.
_ONCE = frozenset(
    {
        "date",
        "from",
        "sender",
        "reply-to",
        "to",
        "cc",
        "bcc",
        "message-id",
        "in-reply-to",
        "references",
        "subject",
    }
)
_ADDRESS_FIELDS = {
    "from": "From",
    "to": "To",
    "cc": "Cc",
    "reply-to": "Reply-To",
    "sender": "Sender",
}


_NO_NAMES: frozenset[str] = frozenset()
# A lone bare address this long or shorter is its own To field (hdr.address_value).
_BARE_TO = hdr.MAX_LINE - len("To: ")
# A Subject this long or shorter, printable ASCII, is its own field (hdr.unstructured_value).
_SHORT_SUBJECT = hdr.MAX_LINE - len("Subject: ")
_ADDR_SPEC = operator.attrgetter("addr_spec")
_UNSUBSCRIBE_FIELDS = frozenset({"list-unsubscribe", "list-unsubscribe-post"})
# What may stand inside <...> of a List-Unsubscribe entry: a URI's characters
# (RFC 3986), without the ones that would end the entry or the list.
_URI_TEXT = re.compile(r"[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+;=%]+")


# The settings every composition reads: DEFAULT_CHARSET and EMAIL_USE_LOCALTIME. A
# settings read looks through up to seven layers (about 14,000 instructions, callgrind),
# so two of them were a sixth of composing a plain message. A batch (send_messages,
# send_bulk, asend_bulk) reads them once when it starts, in ``batch_settings()``;
# a message composed on its own reads them each time, as before.
_held_settings: contextvars.ContextVar[tuple[str, bool] | None] = contextvars.ContextVar(
    "mailwright_batch_settings", default=None
)


@contextlib.contextmanager
def batch_settings() -> Iterator[None]:
    """Read the settings composition needs once, for every message composed in this
    context until the block ends (the settings in force when the batch starts hold for
    the whole batch)."""
    token = _held_settings.set((settings.DEFAULT_CHARSET, settings.EMAIL_USE_LOCALTIME))
    try:
        yield
    finally:
        _held_settings.reset(token)


def _default_charset() -> str:
    held = _held_settings.get()
    return settings.DEFAULT_CHARSET if held is None else held[0]


def _use_localtime() -> bool:
    held = _held_settings.get()
    return settings.EMAIL_USE_LOCALTIME if held is None else held[1]


def _unsubscribe_url(url: Any, one_click: bool) -> str:
    from urllib.parse import urlsplit

    if not isinstance(url, str):
        raise TypeError(f"list_unsubscribe(url=...) must be a string, got {url!r}")
    hdr.check_value("List-Unsubscribe", url)
    text = url.strip()
    parts = urlsplit(text) if _URI_TEXT.fullmatch(text) else None
    if parts is None or parts.scheme.lower() not in ("https", "http") or not parts.netloc:
        raise ValueError(
            f"list_unsubscribe(): {url!r} is not an http(s) URL (printable ASCII "
            "without spaces, commas or angle brackets; percent-encode the rest)"
        )
    if one_click and parts.scheme.lower() != "https":
        raise ValueError(
            f"list_unsubscribe(): one-click unsubscribe needs an https URL (RFC 8058), "
            f"got {url!r}; pass one_click=False for another kind of link"
        )
    return text


def _unsubscribe_mailto(mailto: Any) -> str:
    if not isinstance(mailto, str):
        raise TypeError(f"list_unsubscribe(mailto=...) must be a string, got {mailto!r}")
    hdr.check_value("List-Unsubscribe", mailto)
    text = mailto.strip()
    if text[:7].lower() == "mailto:":
        address, _, query = text[7:].partition("?")
    else:
        address, query = text, ""
    if query and not _URI_TEXT.fullmatch(query):
        raise ValueError(f"list_unsubscribe(): bad mailto query in {mailto!r}")
    mailbox = parse_mailbox(address, "list_unsubscribe mailto")
    if not mailbox.addr_spec.isascii() or mailbox.display_name:
        raise ValueError(
            f"list_unsubscribe(): mailto must be a plain ASCII address, got {mailto!r}"
        )
    return "mailto:" + mailbox.addr_spec + (f"?{query}" if query else "")


def address_list_arg(value: Any, name: str) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, str):
        raise TypeError(
            f'"{name}" argument must be a list or tuple of addresses, not a string: {value!r}'
        )
    return list(value)


def parse_mailboxes(values: list[Any], field: str) -> list[Mailbox]:
    """Parsed addresses of one list attribute; empty entries are dropped."""
    if not values:
        return []
    # A string goes straight to the (cached) string parser, as parse_mailbox sends it;
    # a loop, not a list comprehension, which is a call of its own (Python 3.11).
    mailboxes = []
    for value in values:
        if value:
            mailboxes.append(
                _parse_string(value, field) if type(value) is str else parse_mailbox(value, field)
            )
    return mailboxes


@functools.lru_cache(maxsize=256)
def _from_field(value: str) -> tuple[Mailbox, str | None]:
    """The sender of ``from_email`` and its From field: the same for every message of a
    batch, so they are made once (a pure function of the string). A From field that
    cannot be written is None here and raises, in its place, when the message is
    composed."""
    sender = parse_mailbox(value, "from_email")
    try:
        return sender, hdr.address_value("From", [sender])
    except ValueError:
        return sender, None


def _field_text(name: str, value: Any) -> str:
    if type(value) is str:
        return value
    if isinstance(value, datetime):
        return format_datetime(value if value.tzinfo else value.astimezone())
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    text = as_text(value)
    if text is None:
        raise TypeError(f"header {name!r}: expected a string, got {type(value).__name__}")
    return text


def _text_encoding(encoding: str | email.charset.Charset | None) -> tuple[str, str | None]:
    """The charset for text parts, and the transfer encoding an ``email.charset.Charset``
    asks for (None: mailwright chooses)."""
    if encoding is None:
        return _default_charset(), None
    if isinstance(encoding, email.charset.Charset):
        cte = {email.charset.QP: "quoted-printable", email.charset.BASE64: "base64"}
        return str(encoding.output_charset or encoding.input_charset), cte.get(
            encoding.body_encoding
        )
    if isinstance(encoding, str):
        return encoding, None
    raise TypeError(
        f"encoding must be a charset name or an email.charset.Charset, got {encoding!r}"
    )


def _deduplicated(headers: Mapping[Any, Any]) -> list[tuple[str, str]]:
    """Extra headers, checked, as (name, text). Names are case-insensitive: a field
    RFC 5322 allows only once appears once (the last of its spellings wins, in the
    place of the first); others may repeat."""
    fields: list[tuple[str, str]] = []
    position: dict[str, int] = {}
    for name, value in headers.items():
        hdr.check_name(name)
        text = hdr.check_value(name, _field_text(name, value))
        key = name.lower()
        if key in _ONCE and key in position:
            fields[position[key]] = (name, text)
            continue
        position[key] = len(fields)
        fields.append((name, text))
    return fields


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
    #: A charset name, or an ``email.charset.Charset`` (whose ``body_encoding`` then
    #: picks the transfer encoding); None means DEFAULT_CHARSET.
    encoding: str | email.charset.Charset | None = None
    #: On a copy the locmem backend keeps: the alias of the mailer that sent it.
    sent_using: str | None
    #: The connection ``get_connection()`` made (not one the caller gave).
    _own_connection: BaseEmailBackend | None = None

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
        # The usual arguments (a list, None) without a call each; the rest as before.
        self.to = list(to) if type(to) is list else address_list_arg(to, "to")
        self.cc = [] if cc is None else address_list_arg(cc, "cc")
        self.bcc = [] if bcc is None else address_list_arg(bcc, "bcc")
        self.reply_to = [] if reply_to is None else address_list_arg(reply_to, "reply_to")
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
        self.extra_headers: dict[str, Any] = dict(headers) if headers else {}
        self.connection = connection
        self.delivery: Delivery | None = None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} subject={self.subject!r} to={self.to!r}>"

    def __getstate__(self) -> dict[str, Any]:
        # A connection (a socket) does not travel with a pickled message.
        state = self.__dict__.copy()
        state["connection"] = None
        state.pop("_own_connection", None)
        return state

    # --- sending ---

    def get_connection(self, fail_silently: bool = False) -> BaseEmailBackend:
        """``connection``, or (set now) a new backend for the default mailer."""
        from ..backends.mailers import backend_for

        if not self.connection:
            self.connection = self._own_connection = backend_for(fail_silently=fail_silently)
        return self.connection

    def _backend(self, fail_silently: bool, using: str | None) -> BaseEmailBackend:
        if using is None:
            return self.get_connection(fail_silently)
        from ..backends.mailers import backend_for

        # A mailer's backend is made for this send only. A connection the caller gave
        # makes ``using`` a TypeError; the one an earlier send() made here does not.
        given = self.connection if self.connection is not self._own_connection else None
        return backend_for(using, given, fail_silently=fail_silently)

    def send(self, fail_silently: bool = False, *, using: str | None = None) -> int:
        """Send the message; return 1 if it was sent, 0 if not (or no recipients).
        ``using`` names the mailer to send with (``mailwright.mailers``)."""
        if not self.recipients():
            return 0
        return self._backend(fail_silently, using).send_messages([self])

    async def asend(self, fail_silently: bool = False, *, using: str | None = None) -> int:
        """``send()`` for asyncio code; never blocks the event loop."""
        if not self.recipients():
            return 0
        return await self._backend(fail_silently, using).asend_messages([self])

    # --- reading ---

    def recipients(self) -> list[str]:
        """Envelope recipients: to + cc + bcc as bare addresses, empty entries dropped."""
        return [mailbox.addr_spec for mailbox in self._recipient_mailboxes()]

    def message(self, *, policy: email.policy.Policy | None = None) -> email.message.EmailMessage:
        """The message as a stdlib ``email.message.EmailMessage``, ready to send.

        ``policy`` is the one it carries, as in Django 6 (``email.policy.SMTP`` for CRLF
        line breaks, say); by default ``email.policy.default``, or its UTF-8 form when
        the message needs SMTPUTF8. Header fields are stored encoded and folded as
        mailwright sends them either way."""
        composed = self._compose()
        if policy is None:
            policy = (
                email.policy.default.clone(utf8=True) if composed.smtputf8 else email.policy.default
            )
        return stdlib_build.build(
            composed.fields, composed.root, utf8=composed.smtputf8, policy=policy
        )

    def as_bytes(self) -> bytes:
        """The message as bytes: CRLF line breaks, Bcc never included, content exact.
        These are the bytes sent, except that SMTP needs the data to end with a line
        break: see ``envelope()``."""
        fields, root, _, _, smtputf8, head = self._composed()
        return wire.render(fields, root, utf8=smtputf8, head=head)

    def envelope(self, dkim: DKIMSigner | None = None) -> Envelope:
        """Sender, recipients and data for an SMTP transaction (used by backends).

        The data ends with CRLF, as SMTP requires: a single-part 7bit message whose
        body does not end with a line break gains one here (the one change SMTP forces
        on content). With ``dkim`` (a backend's signer), the final bytes are signed
        here, the one place mailwright signs."""
        fields, root, sender, recipients, smtputf8, head = self._composed()
        if (
            head is not None
            and type(root) is TextPart
            and root.cte == "7bit"
            and root.disposition is None
            and root.content_id is None
        ):
            # What wire.render() writes for the usual message, without its call.
            data = b"".join(
                (
                    head.encode("utf-8" if smtputf8 else "ascii"),
                    b"MIME-Version: 1.0\r\n",
                    wire.text_fields(root.subtype, root.charset, "7bit"),
                    b"\r\n",
                    root.encoded.replace(b"\n", b"\r\n"),
                )
            )
        else:
            data = wire.render(fields, root, utf8=smtputf8, head=head)
        if not data.endswith(b"\r\n"):
            data += b"\r\n"
        if dkim is not None:
            data = dkim.sign(data)
        if len(recipients) == 1:  # the usual message: one list, without map()'s calls
            return new_envelope(sender.addr_spec, [recipients[0].addr_spec], data, smtputf8)
        return new_envelope(sender.addr_spec, list(map(_ADDR_SPEC, recipients)), data, smtputf8)

    # --- headers ---

    def list_unsubscribe(
        self, url: str | None = None, mailto: str | None = None, one_click: bool = True
    ) -> None:
        """Set ``List-Unsubscribe: <url>, <mailto:...>`` (RFC 2369) and, with
        ``one_click`` and a URL, ``List-Unsubscribe-Post: List-Unsubscribe=One-Click``
        (RFC 8058: mail clients then unsubscribe with one POST to the URL).

        One-click needs an ``https`` URL (``ValueError`` otherwise); with only
        ``mailto`` (an address, or a ``mailto:`` URL) no -Post field is set; giving
        neither raises ``ValueError``. Both fields are DKIM-signed when signing is on.
        Replaces what an earlier call or ``headers`` set."""
        entries = []
        if url is not None:
            entries.append(_unsubscribe_url(url, one_click))
        if mailto is not None:
            entries.append(_unsubscribe_mailto(mailto))
        if not entries:
            raise ValueError("list_unsubscribe() needs a url, a mailto address, or both")
        for name in list(self.extra_headers):
            if isinstance(name, str) and name.lower() in _UNSUBSCRIBE_FIELDS:
                del self.extra_headers[name]
        self.extra_headers["List-Unsubscribe"] = ", ".join(f"<{entry}>" for entry in entries)
        if one_click and url is not None:
            self.extra_headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"

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
                kind = "MIMEPart" if isinstance(filename, email.message.MIMEPart) else "MIMEBase"
                raise ValueError(
                    f"content and mimetype must not be given when a {kind} instance is provided."
                )
            self.attachments.append(filename)
            return
        if content is None:
            raise ValueError(f"attachment {filename!r}: content must be provided.")
        if filename is not None and not isinstance(filename, str):
            raise TypeError(f"attachment filename must be a string, got {filename!r}")
        mimetype = mimetype or guess_mimetype(filename)
        maintype, _ = split_mimetype(mimetype)
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
        self.attach(path.name, content, mimetype or guess_mimetype(path.name))

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
        mimetype = mimetype or guess_mimetype(filename)
        split_mimetype(mimetype)
        if cid is None:
            cid = f"{os.urandom(10).hex()}@mailwright.inline"
        elif not isinstance(cid, str) or not _CONTENT_ID.fullmatch(cid) or len(cid) > 250:
            hdr.check_value("Content-ID", str(cid))
            raise ValueError(
                f"invalid content id {cid!r}: use at most 250 printable ASCII characters without <>"
            )
        self.inline_attachments.append(InlineAttachment(filename, content, mimetype, cid))
        return cid

    def attach_inline_file(
        self,
        path: str | os.PathLike[str],
        mimetype: str | None = None,
        *,
        cid: str | None = None,
    ) -> str:
        """``attach_inline`` with the content read from ``path`` now (a missing file
        raises ``FileNotFoundError``), named after it; return the Content-ID."""
        path = Path(path)
        content = path.read_bytes()
        return self.attach_inline(path.name, content, mimetype, cid=cid)

    # --- composition ---

    def _charset(self) -> tuple[str, str | None]:
        return _text_encoding(self.encoding)

    def _recipient_mailboxes(self) -> list[Mailbox]:
        return [
            *parse_mailboxes(self.to, "to"),
            *parse_mailboxes(self.cc, "cc"),
            *parse_mailboxes(self.bcc, "bcc"),
        ]

    def _body_text(self) -> str:
        return as_text(self.body) or ""

    def _body_part(self, charset: tuple[str, str | None]) -> Part | None:
        """The main text part, or None when an empty body would only sit beside
        attachments."""
        body = self.body
        if type(body) is not str:  # a str is its own text (_body_text, without a call)
            body = self._body_text()
        if not body and (self.attachments or self.inline_attachments):
            return None
        return text_part(self.content_subtype, body, charset[0], cte=charset[1])

    def _main_part(self, charset: tuple[str, str | None]) -> Part | None:
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

    def _tree(self, charset: tuple[str, str | None]) -> Part:
        main = self._main_part(charset)
        if main is not None and not self.attachments and not self.inline_attachments:
            return main  # the usual case: nothing to wrap or add
        inline = [
            content_part(
                item.content,
                item.mimetype,
                charset[0],
                disposition="inline",
                filename=item.filename,
                content_id=item.cid,
                cte=charset[1],
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
                    content_part(
                        content,
                        mimetype or guess_mimetype(filename),
                        charset[0],
                        disposition="attachment",
                        filename=filename,
                        cte=charset[1],
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
        fields, root, sender, recipients, smtputf8, _ = self._composed()
        return _Composition(fields, root, sender, recipients, smtputf8)

    def _composed(
        self,
    ) -> tuple[list[tuple[str, str]], Part, Mailbox, list[Mailbox], bool, str | None]:
        """``_compose()`` as a tuple (fields, root, sender, recipients, smtputf8, head);
        ``head`` is the header lines of ``fields`` written out (``wire.render``), for
        the usual five fields, else None.

        This runs for every message sent, so the usual case (a string sender, no extra
        headers, no Reply-To, Cc or Bcc) takes no call it does not need: each Python
        call is about 1,000 instructions, and composing a plain message was a hundred
        of them (callgrind). Every check still runs; only calls that return at once
        for the usual values are skipped."""
        encoding = self.encoding
        held = _held_settings.get()
        if encoding is None:
            charset: tuple[str, str | None] = (
                settings.DEFAULT_CHARSET if held is None else held[0],
                None,
            )
        else:
            charset = _text_encoding(encoding)
        if (
            self.to
            and not self.extra_headers
            and not self.cc
            and not self.bcc
            and not self.reply_to
            and type(self.from_email) is str
            and type(self.subject) is str
        ):
            plain = self._composed_plain(charset, held)
            if plain is not None:
                return plain
        if self.extra_headers:
            extra = _deduplicated(self.extra_headers)
            overridden: Set[str] = {name.lower() for name, _ in extra}
        else:
            extra, overridden = [], _NO_NAMES

        from_email = self.from_email
        from_value: str | None = None
        if type(from_email) is str:
            sender, from_value = _from_field(from_email)
        else:
            sender = parse_mailbox(from_email, "from_email")
        to = parse_mailboxes(self.to, "to") if self.to else []
        cc = parse_mailboxes(self.cc, "cc") if self.cc else []
        recipients = [*to, *cc, *parse_mailboxes(self.bcc, "bcc")] if self.bcc else [*to, *cc]
        others: list[Mailbox] = []  # Reply-To and header addresses, for SMTPUTF8

        fields: list[tuple[str, str]] = []
        if "from" not in overridden:
            if from_value is None:
                from_value = hdr.address_value("From", [sender])
            fields.append(("From", from_value))
        to_value = None
        if to and "to" not in overridden:
            if len(to) == 1 and not to[0].display_name and len(to[0].addr_spec) <= _BARE_TO:
                to_value = to[0].addr_spec  # what address_value() gives it
            else:
                to_value = hdr.address_value("To", to)
            fields.append(("To", to_value))
        if cc and "cc" not in overridden:
            fields.append(("Cc", hdr.address_value("Cc", cc)))
        if self.reply_to and "reply-to" not in overridden:
            reply_to = parse_mailboxes(self.reply_to, "reply_to")
            others.extend(reply_to)
            if reply_to:
                fields.append(("Reply-To", hdr.address_value("Reply-To", reply_to)))
        if "subject" not in overridden:
            subject = self.subject
            if type(subject) is not str:
                subject = _field_text("Subject", subject) if subject else ""
            subject = hdr.unstructured_value("Subject", subject)
            fields.append(("Subject", subject))
        if "date" not in overridden:
            localtime = settings.EMAIL_USE_LOCALTIME if held is None else held[1]
            date = now_date(localtime)
            fields.append(("Date", date))
        if "message-id" not in overridden:
            message_id = make_message_id(sender.domain or "localhost")
            fields.append(("Message-ID", message_id))
        head = None
        if not extra and to_value is not None and len(fields) == 5:
            # From, To, Subject, Date, Message-ID: written in one f-string, about 5,000
            # instructions less than joining the fields (callgrind); the same text
            # (tests/test_properties.py compares them).
            head = (
                f"From: {from_value}\r\nTo: {to_value}\r\nSubject: {subject}\r\n"
                f"Date: {date}\r\nMessage-ID: {message_id}\r\n"
            )

        for name, value in extra:
            key = name.lower()
            if key == "bcc":
                continue  # Bcc is never written into the message
            if key in _STRUCTURAL:
                raise ValueError(
                    f"header {name!r} is set by mailwright from the message content "
                    "and cannot be given in headers"
                )
            if key in _ADDRESS_FIELDS:
                listed = parse_address_list(value, name)
                for item in listed:
                    others.extend(item.mailboxes if isinstance(item, Group) else [item])
                fields.append((name, hdr.address_value(name, listed)))
            elif hdr.is_structured(key):
                fields.append((name, hdr.structured_value(name, value)))
            else:
                fields.append((name, hdr.unstructured_value(name, value)))

        # _tree() without its call when there is nothing to wrap the main part in.
        root = None
        if not self.attachments and not self.inline_attachments:
            root = self._main_part(charset)
        if root is None:
            root = self._tree(charset)
        # Mailbox.needs_smtputf8 of every address used, without a call each.
        smtputf8 = not sender.local_part.isascii()
        if not smtputf8:
            for mailbox in recipients:
                if not mailbox.local_part.isascii():
                    smtputf8 = True
                    break
            else:
                if others:
                    smtputf8 = any(not mailbox.local_part.isascii() for mailbox in others)
        return fields, root, sender, recipients, smtputf8, head

    def _composed_plain(
        self, charset: tuple[str, str | None], held: tuple[str, bool] | None
    ) -> tuple[list[tuple[str, str]], Part, Mailbox, list[Mailbox], bool, str] | None:
        """``_composed()`` for the usual message: a string sender and subject, To
        addresses, nothing else given (no headers, Cc, Bcc or Reply-To). The same
        steps in the same order, without the branches for what is not there: the
        general path took 290 bytecodes for it, about 23,000 instructions (callgrind).
        None when the general path must decide (no To address is left, or the From
        field cannot be written); ``tests/test_fast_paths.py`` compares the two."""
        sender, from_value = _from_field(self.from_email)
        to = parse_mailboxes(self.to, "to")
        if from_value is None or not to:
            return None
        if len(to) == 1 and not to[0].display_name and len(to[0].addr_spec) <= _BARE_TO:
            to_value = to[0].addr_spec  # what address_value() gives it
        else:
            to_value = hdr.address_value("To", to)
        subject = self.subject
        if not (  # unstructured_value()'s own shortcut, without its call
            subject
            and len(subject) <= _SHORT_SUBJECT
            and subject.isascii()
            and subject.isprintable()
            and subject[0] != " " != subject[-1]
            and "=?" not in subject
        ):
            subject = hdr.unstructured_value("Subject", subject)
        date = now_date(settings.EMAIL_USE_LOCALTIME if held is None else held[1])
        message_id = make_message_id(sender.domain or "localhost")
        root = None
        if not self.attachments and not self.inline_attachments:
            root = self._main_part(charset)
        if root is None:
            root = self._tree(charset)
        smtputf8 = not sender.local_part.isascii()
        if not smtputf8:
            for mailbox in to:
                if not mailbox.local_part.isascii():  # Mailbox.needs_smtputf8
                    smtputf8 = True
                    break
        return (
            [
                ("From", from_value),
                ("To", to_value),
                ("Subject", subject),
                ("Date", date),
                ("Message-ID", message_id),
            ],
            root,
            sender,
            to,
            smtputf8,
            f"From: {from_value}\r\nTo: {to_value}\r\nSubject: {subject}\r\n"
            f"Date: {date}\r\nMessage-ID: {message_id}\r\n",
        )


class EmailMultiAlternatives(EmailMessage):
    """A message with alternative renderings of the body (typically HTML).

    The body is the first alternative (``text/plain``) unless it is empty: a message
    with only an HTML alternative sends only the HTML, as in Django. With
    ``auto_text=True``, an empty body is instead made from the HTML alternative by
    ``mailwright.html_to_text`` (extra ``templates``) when the message is composed.
    """

    alternative_subtype = "alternative"

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
        *,
        auto_text: bool = False,
    ) -> None:
        super().__init__(
            subject, body, from_email, to, bcc, connection, attachments, headers, cc, reply_to
        )
        self.auto_text = auto_text
        self.alternatives: list[EmailAlternative] = []
        for content, mimetype in alternatives or ():
            self.attach_alternative(content, mimetype)

    def attach_alternative(self, content: Any, mimetype: str) -> None:
        """Add an alternative rendering, e.g. ``attach_alternative(html, "text/html")``."""
        if content is None or mimetype is None:
            raise ValueError("Both content and mimetype must be provided.")
        split_mimetype(mimetype)
        self.alternatives.append(EmailAlternative(content, mimetype))

    def body_contains(self, text: str) -> bool:
        """Whether ``text`` is in the body and in every ``text/*`` alternative (for
        tests: the same words in the plain and the HTML version)."""
        if text not in self._body_text():
            return False
        for content, mimetype in self.alternatives:
            if str(mimetype).lower().startswith("text/"):
                value = as_text(content)
                if value is not None and text not in value:
                    return False
        return True

    def _main_part(self, charset: tuple[str, str | None]) -> Part | None:
        if not self.alternatives:
            return self._body_part(charset)
        parts: list[Part] = []
        body = self._body_text()
        if not body and getattr(self, "auto_text", False):
            body = self._text_from_html()
        if body:
            parts.append(text_part(self.content_subtype, body, charset[0], cte=charset[1]))
        parts.extend(
            content_part(content, mimetype, charset[0], cte=charset[1])
            for content, mimetype in self.alternatives
        )
        return Multipart(self.alternative_subtype, parts)

    def _text_from_html(self) -> str:
        """The text part ``auto_text`` makes: the last HTML alternative as text."""
        for content, mimetype in reversed(self.alternatives):
            if str(mimetype).lower().split(";")[0].strip() == "text/html":
                html = as_text(content)
                if html is not None:
                    # Imported here: composition sits above message (it builds messages).
                    from ..compose.text import html_to_text

                    return html_to_text(html)
        return ""
