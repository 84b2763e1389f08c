"""The MIME tree of a message, and the rules for encoding its parts.

``mailwright.message`` decides the structure (which parts, nested how); this module
holds that structure as plain data and makes every encoding decision once, so the two
serialisers — ``wire`` (fast, used to send) and ``stdlib_build`` (what ``message()``
returns) — cannot disagree about charsets or transfer encodings.
"""

from __future__ import annotations

import base64
import binascii
import email.charset
import email.message
import functools
import re
from dataclasses import dataclass

__all__ = [
    "BinaryPart",
    "ForeignPart",
    "MessagePart",
    "Multipart",
    "Part",
    "TextPart",
    "base64_lines",
    "choose_cte",
    "crlf",
    "crlf_lines",
    "encode_body",
    "text_part",
]

MAX_7BIT_LINE = 998  # RFC 5322 section 2.1.1, without the CRLF

# Bytes that quoted-printable leaves as they are (roughly: printable ASCII but "=").
_QP_LITERAL = bytes(range(0x20, 0x7F)).replace(b"=", b"") + b"\n"


@dataclass(slots=True)
class TextPart:
    """A ``text/*`` part built from a ``str``.

    ``encoded`` is the body in its transfer encoding with ``\\n`` line breaks (the
    serialisers write them as CRLF); decoding it gives exactly ``raw``, the text in
    ``charset``: nothing appended, ``\\n`` kept as ``\\n``.
    """

    subtype: str
    text: str
    charset: str
    raw: bytes  # the text in ``charset``, exactly
    cte: str  # "7bit", "quoted-printable" or "base64"
    encoded: bytes  # ``raw`` in ``cte``, ASCII, "\n" line breaks
    disposition: str | None = None
    filename: str | None = None
    content_id: str | None = None

    @property
    def ends_line(self) -> bool:
        """Whether the encoded body ends with a line break."""
        return self.encoded.endswith(b"\n")


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


_ANY_LINE_BREAK = re.compile(rb"\r\n|\r|\n")


def crlf(data: bytes) -> bytes:
    """Normalise any line breaks (CR, LF, CRLF) to CRLF; add none at the end."""
    if b"\r" not in data:
        return data.replace(b"\n", b"\r\n")
    return _ANY_LINE_BREAK.sub(b"\r\n", data)


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


def choose_cte(raw: bytes) -> str:
    """7bit when the text is ASCII, without CR or NUL, in lines short enough; otherwise
    the shorter of quoted-printable (mostly ASCII text) and base64.

    8bit is never chosen: it would need the server's 8BITMIME, and mail must not be
    corrupted by a relay that lacks it. A CR is never left to a line-based encoding:
    on the wire every line break is CRLF, so a reader could not tell it apart.
    """
    if (
        raw.isascii()
        and b"\r" not in raw
        and b"\0" not in raw
        and (
            len(raw) <= MAX_7BIT_LINE
            or all(len(line) <= MAX_7BIT_LINE for line in raw.split(b"\n"))
        )
    ):
        return "7bit"
    escaped = len(raw.translate(None, _QP_LITERAL))
    return "quoted-printable" if escaped * 6 <= len(raw) else "base64"


def _quoted_printable(raw: bytes) -> bytes:
    """Quoted-printable with ``\\n`` line breaks: each ``\\n`` of the text is a line
    break, a CR is ``=0D``, long lines get soft breaks, trailing whitespace is encoded."""
    if b"\r" not in raw:
        return binascii.b2a_qp(raw, istext=True)  # "\n" in, "\n" (and "=\n") out
    return b"\n".join(binascii.b2a_qp(line, istext=False) for line in raw.split(b"\n"))


def base64_lines(data: bytes) -> bytes:
    """Base64 in 76-character lines (RFC 2045 section 6.8), ``\\n`` line breaks."""
    return base64.encodebytes(data)


def encode_body(raw: bytes, cte: str) -> bytes:
    if cte == "7bit":
        return raw
    if cte == "quoted-printable":
        return _quoted_printable(raw)
    return base64_lines(raw)


def _encode_text(text: str, charset: str) -> tuple[str, bytes]:
    """The text in ``charset``, else in UTF-8 when that charset cannot hold it (or
    cannot be written line by line), so no character is ever lost. Surrogate escapes
    (bytes that were not valid text, kept by ``errors="surrogateescape"``) become
    those bytes again."""
    if charset == "utf-8" or (text.isascii() and _is_ascii_compatible(charset)):
        try:  # the usual case: one encode, nothing to choose
            return charset, text.encode(charset)
        except UnicodeError:
            pass  # lone surrogates: the general way below
    candidates = [charset] if _is_ascii_compatible(charset) else []
    if charset != "utf-8":
        candidates.append("utf-8")
    for errors in ("strict", "surrogateescape"):
        for candidate in candidates:
            try:
                return candidate, text.encode(candidate, errors)
            except UnicodeError:
                continue
    bad = next(char for char in text if 0xD800 <= ord(char) <= 0xDFFF)
    raise ValueError(
        f"text contains the lone surrogate U+{ord(bad):04X}, which no charset can encode"
    )


def text_part(
    subtype: str,
    text: str,
    charset: str,
    *,
    disposition: str | None = None,
    filename: str | None = None,
    content_id: str | None = None,
    cte: str | None = None,
) -> TextPart:
    """Encode text in ``charset`` (see ``_encode_text``) with the transfer encoding
    ``choose_cte`` picks, or ``cte`` ("quoted-printable" or "base64") when given."""
    charset, raw = _encode_text(text, charset)
    if cte is None or (cte == "7bit" and choose_cte(raw) != "7bit"):
        cte = choose_cte(raw)
    return TextPart(
        subtype,
        text,
        _charset_name(charset),
        raw,
        cte,
        encode_body(raw, cte),
        disposition,
        filename,
        content_id,
    )
