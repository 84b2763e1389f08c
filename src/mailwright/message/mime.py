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
import email.policy
import functools
import re
import urllib.parse
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
    "seven_bit_message",
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
    """A ``message/rfc822`` part: a whole message, never base64 (RFC 2046 section
    5.2.1 allows only 7bit, 8bit and binary here); ``seven_bit_message`` makes an
    8-bit one 7bit before it gets here."""

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
    # find() rather than ``in``: ``b"\r" in raw`` first tries the operand as an integer
    # (``13 in raw``), and the TypeError raised and cleared inside costs about 1,800
    # instructions (callgrind, Python 3.11), twice per message.
    if (
        raw.isascii()
        and raw.find(b"\r") < 0
        and raw.find(b"\0") < 0
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
                data = text.encode(candidate, errors)
            except UnicodeError:
                continue
            # Some charsets encode a character they do not give back (Shift_JIS writes
            # U+00A5 YEN SIGN as 0x5C, which reads back as a backslash): only a charset
            # that returns the very text is used. UTF-8 always does.
            if candidate == "utf-8" or data.decode(candidate, errors) == text:
                return candidate, data
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
    if charset == "utf-8" and text.isascii():
        # The usual case, without three calls: what _encode_text() and _charset_name()
        # give for ASCII text in UTF-8, and choose_cte()'s 7bit for short text.
        raw = text.encode("ascii")
        name = "utf-8"
        short_7bit = len(raw) <= MAX_7BIT_LINE and raw.find(b"\r") < 0 and raw.find(b"\0") < 0
    else:
        charset, raw = _encode_text(text, charset)
        name = _charset_name(charset)
        short_7bit = False
    if short_7bit and cte in (None, "7bit"):
        cte = "7bit"
    elif cte is None or (cte == "7bit" and choose_cte(raw) != "7bit"):
        cte = choose_cte(raw)
    return TextPart(
        subtype,
        text,
        name,
        raw,
        cte,
        raw if cte == "7bit" else encode_body(raw, cte),
        disposition,
        filename,
        content_id,
    )


# --- an attached message made 7bit ---

_MAX_DEPTH = 32
_HEADER_END = re.compile(rb"\r\n\r\n")
_FIELD_START = re.compile(rb"^(?=[^ \t])", re.MULTILINE)


def seven_bit_message(data: bytes) -> bytes:
    """An attached message (CRLF line breaks) with nothing 8-bit left in it, so that it
    can go to any server, with or without 8BITMIME (RFC 6152).

    A message/rfc822 part cannot itself be quoted-printable or base64, so the message
    inside is re-encoded instead, entity by entity: an 8-bit leaf body becomes
    quoted-printable or base64 (``choose_cte``, as for any text), an 8-bit header
    field becomes encoded words (RFC 2047; parameters RFC 2231), and a multipart or
    message entity marked 8bit or binary is marked 7bit once its contents are.
    Everything already ASCII is left byte for byte as it was. What cannot be made
    ASCII (a non-ASCII address, which needs SMTPUTF8 anyway) is left as it is."""
    if data.isascii():
        return data
    return _seven_bit_entity(data, "text/plain", 0)


def _seven_bit_entity(data: bytes, default_type: str, depth: int) -> bytes:
    if data.isascii() or depth > _MAX_DEPTH:
        return data
    if data.startswith(b"\r\n"):
        head, body = b"", data[2:]
    else:
        end = _HEADER_END.search(data)
        if end is None:
            head, body = data, b""
        else:
            head, body = data[: end.start() + 2], data[end.end() :]
    fields = [field for field in _FIELD_START.split(head) if field]
    parsed = email.message_from_bytes(head + b"\r\n", policy=email.policy.compat32)
    if default_type != "text/plain":
        parsed.set_default_type(default_type)
    content_type = parsed.get_content_type()
    maintype = parsed.get_content_maintype()
    old_cte = (parsed.get("Content-Transfer-Encoding") or "7bit").strip().lower()
    new_cte: str | None = None  # None: the field stays as it is
    if maintype == "multipart" or content_type in ("message/rfc822", "message/global"):
        if maintype == "multipart":
            boundary = parsed.get_boundary()
            inner = "message/rfc822" if content_type == "multipart/digest" else "text/plain"
            if boundary is not None:
                body = _seven_bit_multipart(body, boundary.encode("ascii", "replace"), inner, depth)
        else:
            body = _seven_bit_entity(body, "text/plain", depth + 1)
        if old_cte in ("8bit", "binary") and body.isascii():
            new_cte = "7bit"
    new_type: str | None = None  # a Content-Type field that names the charset
    if maintype not in ("multipart", "message") and not body.isascii():
        if maintype == "text":
            raw = body.replace(b"\r\n", b"\n")
            new_cte = choose_cte(raw)
            body = crlf(encode_body(raw, new_cte))
            if parsed.get_param("charset") is None and _is_utf8(raw):
                # 8-bit text with no charset: once encoded, a reader would take it
                # for US-ASCII; say what it was written in.
                parsed.set_param("charset", "utf-8")
                new_type = f"Content-Type: {parsed['Content-Type']}\r\n"
        else:
            new_cte = "base64"
            body = crlf(base64_lines(body))
    replaced = {b"content-transfer-encoding"} if new_cte is not None else set()
    if new_type is not None:
        replaced.add(b"content-type")
    out: list[bytes] = []
    for field in fields:
        if field.split(b":", 1)[0].strip().lower() in replaced:
            continue
        out.append(field if field.isascii() else _seven_bit_field(field))
    if new_type is not None:
        out.append(new_type.encode("ascii"))
    if new_cte is not None:
        out.append(f"Content-Transfer-Encoding: {new_cte}\r\n".encode("ascii"))
    return b"".join(out) + b"\r\n" + body


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


_ADDRESS_FIELDS = frozenset(
    b"from to cc bcc reply-to sender resent-from resent-to resent-cc resent-bcc"
    b" resent-sender disposition-notification-to".split()
)
_QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)"')
_TOKENS = re.compile(r"(\s+)")
_PARAMETER = re.compile(r'([A-Za-z0-9_.-]+)=(?:"((?:[^"\\]|\\.)*)"|([^;\s"]*))')


def _encoded_words(text: str, charset: str) -> str:
    """``text`` as B encoded words (RFC 2047), each at most 75 characters, folded."""
    words, chunk = [], ""
    for char in text:
        if len((chunk + char).encode(charset)) > 45:
            words.append(chunk)
            chunk = ""
        chunk += char
    words.append(chunk)
    encoded = (base64.b64encode(word.encode(charset)).decode("ascii") for word in words)
    return "\r\n ".join(f"=?{charset}?b?{word}?=" for word in encoded)


def _seven_bit_field(field: bytes) -> bytes:
    """A header field with 8-bit bytes made ASCII without parsing it (the stdlib
    header parser is far too slow on hostile input): non-ASCII words become encoded
    words (RFC 2047), non-ASCII parameters of Content-* fields RFC 2231 values. The
    bytes are read as UTF-8, else as ISO-8859-1 (so no byte is lost). A non-ASCII
    address cannot be encoded (it needs SMTPUTF8): that field is left as it was."""
    name, _, value = field.partition(b":")
    lowered = name.strip().lower()
    try:
        text, charset = value.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        text, charset = value.decode("iso-8859-1"), "iso-8859-1"
    text = text.rstrip("\r\n")
    if lowered.startswith(b"content-"):

        def parameter(match: re.Match[str]) -> str:
            raw = match.group(2) if match.group(2) is not None else match.group(3)
            if raw.isascii():
                return match.group(0)
            unquoted = re.sub(r"\\(.)", r"\1", raw)
            quoted = urllib.parse.quote(unquoted.encode(charset), safe="")
            return f"{match.group(1)}*={charset}''{quoted}"

        text = _PARAMETER.sub(parameter, text)
    if lowered in _ADDRESS_FIELDS:

        def quoted(match: re.Match[str]) -> str:
            inside = match.group(1)
            if inside.isascii():
                return match.group(0)
            return _encoded_words(re.sub(r"\\(.)", r"\1", inside), charset)

        text = _QUOTED.sub(quoted, text)
    out: list[str] = []
    run: list[str] = []  # non-ASCII words and the whitespace between them

    def flush() -> None:
        if run:
            trailing = run.pop() if run[-1].isspace() else ""
            out.append(_encoded_words("".join(run), charset) + trailing)
            run.clear()

    for token in _TOKENS.split(text):
        if token.isascii() and not (run and token.isspace()):
            flush()
            out.append(token)
        elif token.isascii():
            run.append(token)  # whitespace: part of the run if a word follows
        elif lowered in _ADDRESS_FIELDS and any(c in token for c in "@<>"):
            return field  # a non-ASCII address: SMTPUTF8 only
        else:
            run.append(token)
    flush()
    result = name.decode("ascii", "replace") + ":" + "".join(out) + "\r\n"
    return result.encode("ascii") if result.isascii() else field


def _seven_bit_multipart(body: bytes, boundary: bytes, default_type: str, depth: int) -> bytes:
    delimiter = re.compile(rb"(?:^|(?<=\r\n))--" + re.escape(boundary) + rb"(--)?[ \t]*(?:\r\n|$)")
    matches = list(delimiter.finditer(body))
    if not matches:
        return body
    out = [_ascii_only(body[: matches[0].start()])]  # the preamble, shown to nobody
    for index, match in enumerate(matches):
        out.append(match.group(0))
        following = matches[index + 1].start() if index + 1 < len(matches) else len(body)
        segment = body[match.end() : following]
        if match.group(1):  # the close delimiter: the rest is the epilogue
            out.append(_ascii_only(body[match.end() :]))
            break
        # The CRLF before the next delimiter belongs to that delimiter.
        ends_line = segment.endswith(b"\r\n") and index + 1 < len(matches)
        content = segment[:-2] if ends_line else segment
        out.append(_seven_bit_entity(content, default_type, depth + 1))
        if ends_line:
            out.append(b"\r\n")
    return b"".join(out)


def _ascii_only(data: bytes) -> bytes:
    return (
        data if data.isascii() else data.decode("ascii", "replace").replace("\ufffd", "?").encode()
    )
