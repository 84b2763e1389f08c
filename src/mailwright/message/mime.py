"""The MIME tree of a message, and the rules for encoding its parts.

``mailwright.message`` decides the structure (which parts, nested how); this module
holds that structure as plain data and makes every encoding decision once, so the two
serialisers — ``wire`` (fast, used to send) and ``stdlib_build`` (what ``message()``
returns) — cannot disagree about charsets or transfer encodings.
"""

from __future__ import annotations

import email.charset
import email.message
import functools
from dataclasses import dataclass

__all__ = [
    "BinaryPart",
    "ForeignPart",
    "MessagePart",
    "Multipart",
    "Part",
    "TextPart",
    "crlf_lines",
    "text_part",
]

MAX_7BIT_LINE = 998  # RFC 5322 section 2.1.1, without the CRLF

# Bytes that quoted-printable leaves as they are (roughly: printable ASCII but "=").
_QP_LITERAL = bytes(range(0x20, 0x7F)).replace(b"=", b"") + b"\r\n"


@dataclass(slots=True)
class TextPart:
    """A ``text/*`` part built from a ``str``."""

    subtype: str
    text: str
    charset: str
    data: bytes  # the text in ``charset``, CRLF line breaks, ending with CRLF
    cte: str  # "7bit", "quoted-printable" or "base64"
    disposition: str | None = None
    filename: str | None = None
    content_id: str | None = None


@dataclass(slots=True)
class BinaryPart:
    """Any part sent as base64 (images, PDFs, undecodable ``text/*`` bytes)."""

    maintype: str
    subtype: str
    data: bytes
    disposition: str | None = None
    filename: str | None = None
    content_id: str | None = None


@dataclass(slots=True)
class MessagePart:
    """A ``message/rfc822`` part: a whole message, sent as it is, never base64."""

    data: bytes  # the inner message with CRLF line breaks
    disposition: str | None = None
    filename: str | None = None

    @property
    def cte(self) -> str:
        return "7bit" if self.data.isascii() else "8bit"


@dataclass(slots=True)
class ForeignPart:
    """A ready-made stdlib MIME part given to ``attach()``."""

    part: email.message.Message


@dataclass(slots=True)
class Multipart:
    subtype: str  # mixed, alternative, related
    children: list[Part]


Part = TextPart | BinaryPart | MessagePart | ForeignPart | Multipart


def crlf_lines(data: bytes) -> bytes:
    """Normalise any line breaks (CR, LF, CRLF) to CRLF and end with one."""
    return b"\r\n".join(data.splitlines()) + b"\r\n"


@functools.lru_cache(maxsize=64)
def _is_ascii_compatible(charset: str) -> bool:
    try:
        return "\r\n -~azAZ09".encode(charset) == b"\r\n -~azAZ09"
    except (LookupError, UnicodeError):
        return False


@functools.lru_cache(maxsize=64)
def _charset_name(charset: str) -> str:
    """The name to write in ``charset=``: the MIME name for Python's aliases
    (``latin-1`` -> ``iso-8859-1``), lower case."""
    name = charset.lower()
    return email.charset.ALIASES.get(name, name)


def choose_cte(data: bytes) -> str:
    """7bit when the data is ASCII with lines short enough; otherwise the shorter of
    quoted-printable (mostly ASCII text) and base64.

    8bit is never chosen: it would need the server's 8BITMIME, and mail must not be
    corrupted by a relay that lacks it.
    """
    if data.isascii() and (
        len(data) <= MAX_7BIT_LINE
        or all(len(line) <= MAX_7BIT_LINE for line in data.split(b"\r\n"))
    ):
        return "7bit"
    escaped = len(data.translate(None, _QP_LITERAL))
    return "quoted-printable" if escaped * 6 <= len(data) else "base64"


def text_part(
    subtype: str,
    text: str,
    charset: str,
    *,
    disposition: str | None = None,
    filename: str | None = None,
    content_id: str | None = None,
) -> TextPart:
    """Encode text in ``charset``; fall back to UTF-8 when that charset cannot hold it
    (or cannot be written line by line), so no character is ever lost."""
    try:
        if not _is_ascii_compatible(charset):
            raise UnicodeError(charset)
        encoded = text.encode(charset)
    except UnicodeError:
        charset = "utf-8"
        encoded = text.encode(charset)
    data = crlf_lines(encoded)
    return TextPart(
        subtype,
        text,
        _charset_name(charset),
        data,
        choose_cte(data),
        disposition,
        filename,
        content_id,
    )
