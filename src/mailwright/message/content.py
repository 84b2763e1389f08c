"""Attachments and alternatives: the tuples users see, and the MIME part each becomes."""

from __future__ import annotations

import email.message
import functools
import mimetypes
import re
from typing import Any, NamedTuple

from . import headers as hdr
from .lazy import as_text
from .mime import BinaryPart, MessagePart, Part, crlf_lines, seven_bit_message, text_part

__all__ = [
    "DEFAULT_ATTACHMENT_MIME_TYPE",
    "EmailAlternative",
    "EmailAttachment",
    "InlineAttachment",
    "content_part",
    "guess_mimetype",
    "split_mimetype",
]

DEFAULT_ATTACHMENT_MIME_TYPE = "application/octet-stream"

# RFC 6838 section 4.2: type and subtype names are at most 127 characters each (which
# also keeps every Content-Type line far below 998 octets).
_NAME = r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}"
_MIMETYPE = re.compile(rf"{_NAME}/{_NAME}")


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


def guess_mimetype(filename: str | None) -> str:
    if filename:
        guessed, _ = mimetypes.guess_type(filename, strict=False)
        if guessed:
            return guessed
    return DEFAULT_ATTACHMENT_MIME_TYPE


def split_mimetype(mimetype: str) -> tuple[str, str]:
    """``(maintype, subtype)`` in lower case, or ``ValueError`` for anything else."""
    if not isinstance(mimetype, str):
        raise ValueError(f"invalid MIME type {mimetype!r}: expected a 'type/subtype' string")
    return _split_mimetype(mimetype)


@functools.lru_cache(maxsize=256)
def _split_mimetype(mimetype: str) -> tuple[str, str]:
    if not _MIMETYPE.fullmatch(mimetype):
        hdr.check_value("mimetype", mimetype)
        raise ValueError(
            f"invalid MIME type {mimetype!r}: expected 'type/subtype', each at most "
            "127 letters, digits or !#$&^_.+- (RFC 6838)"
        )
    maintype, subtype = mimetype.lower().split("/", 1)
    return maintype, subtype


def _rfc822_bytes(content: Any) -> bytes:
    from .message import EmailMessage  # (imports this module)

    if isinstance(content, EmailMessage):
        return content.as_bytes()  # exact: the delimiter after it brings its own CRLF
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


def content_part(
    content: Any,
    mimetype: str,
    charset: str,
    *,
    disposition: str | None = None,
    filename: str | None = None,
    content_id: str | None = None,
    cte: str | None = None,
) -> Part:
    """One leaf of the tree for some content of a given MIME type; text in ``charset``
    (and in ``cte`` when given, else the transfer encoding ``mime`` chooses)."""
    maintype, subtype = split_mimetype(mimetype)
    if filename is not None:
        hdr.check_value("filename", filename)
    filename = filename or None  # an empty name says nothing; leave the parameter out
    if maintype == "text" and isinstance(content, bytes | bytearray | memoryview):
        # As attach() does, also for bytes put in ``attachments`` directly: UTF-8 text
        # is text; anything else is sent as what it is, bytes of an unknown kind (never
        # as text/* without a charset, which a reader cannot decode).
        try:
            content = bytes(content).decode("utf-8")
        except UnicodeDecodeError:
            maintype, subtype = "application", "octet-stream"
    if maintype == "text" and not isinstance(content, bytes | bytearray | memoryview):
        text = as_text(content)
        if text is not None:
            return text_part(
                subtype,
                text,
                charset,
                disposition=disposition,
                filename=filename,
                content_id=content_id,
                cte=cte,
            )
    if (maintype, subtype) == ("message", "rfc822"):
        return MessagePart(seven_bit_message(_rfc822_bytes(content)), disposition, filename)
    if isinstance(content, str):
        content = content.encode("utf-8")
    if not isinstance(content, bytes | bytearray | memoryview):
        raise TypeError(
            f"attachment {filename!r}: content must be str or bytes, got {type(content).__name__}"
        )
    return BinaryPart(maintype, subtype, bytes(content), disposition, filename, content_id)
