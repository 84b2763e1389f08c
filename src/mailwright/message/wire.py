"""The fast serialiser: a MIME tree to the bytes that go on the wire.

This is what every built-in backend sends. It writes the tree with bytes joins and
C-implemented codecs (``binascii``) instead of the stdlib generator, which makes
building a message several times cheaper. ``tests/test_wire_equivalence.py`` proves,
message by message, that the stdlib parser reads the same thing from these bytes as
from the stdlib generator's output for ``EmailMessage.message()``.
"""

from __future__ import annotations

import functools
import os
import threading
from collections import OrderedDict

from . import headers
from .mime import (
    BinaryPart,
    ForeignPart,
    MessagePart,
    Multipart,
    Part,
    TextPart,
    base64_lines,
    crlf,
)

__all__ = ["render", "text_fields"]

CRLF = b"\r\n"


class _Base64Cache:
    """Base64 of recently sent attachments, so one file sent in many messages is
    encoded once. Bounded by total size; keyed by the bytes themselves (CPython caches
    a bytes object's hash, and equal keys compare with memcmp)."""

    def __init__(self, max_bytes: int = 32 * 1024 * 1024, min_size: int = 4096) -> None:
        self._entries: OrderedDict[bytes, bytes] = OrderedDict()
        self._size = 0
        self._max_bytes = max_bytes
        self._min_size = min_size
        self._lock = threading.Lock()

    def encode(self, data: bytes) -> bytes:
        if len(data) < self._min_size:
            return _base64_lines(data)
        with self._lock:
            encoded = self._entries.get(data)
            if encoded is not None:
                self._entries.move_to_end(data)
                return encoded
        encoded = _base64_lines(data)
        with self._lock:
            if data not in self._entries:
                self._entries[data] = encoded
                self._size += len(data) + len(encoded)
                while self._size > self._max_bytes and self._entries:
                    old_data, old_encoded = self._entries.popitem(last=False)
                    self._size -= len(old_data) + len(old_encoded)
        return encoded


def _base64_lines(data: bytes) -> bytes:
    # 76-character lines (RFC 2045 section 6.8), CRLF line breaks.
    return base64_lines(data).replace(b"\n", CRLF)


_base64_cache = _Base64Cache()


def _disposition_fields(
    out: list[bytes], disposition: str | None, filename: str | None, content_id: str | None
) -> None:
    for name, value in headers.disposition_fields(disposition, filename, content_id):
        out.append(f"{name}: {value}\r\n".encode("ascii"))


@functools.lru_cache(maxsize=256)
def text_fields(subtype: str, charset: str, cte: str) -> bytes:
    return (
        f'Content-Type: text/{subtype}; charset="{charset}"\r\nContent-Transfer-Encoding: {cte}\r\n'
    ).encode("ascii")


def _write(part: Part, out: list[bytes]) -> None:
    if isinstance(part, TextPart):
        out.append(text_fields(part.subtype, part.charset, part.cte))
        if part.disposition is not None or part.content_id is not None:  # else none
            _disposition_fields(out, part.disposition, part.filename, part.content_id)
        out.append(CRLF)
        out.append(part.encoded.replace(b"\n", CRLF))  # encoded bodies hold no CR
    elif isinstance(part, BinaryPart):
        out.append(
            f"Content-Type: {part.maintype}/{part.subtype}\r\n"
            "Content-Transfer-Encoding: base64\r\n".encode("ascii")
        )
        _disposition_fields(out, part.disposition, part.filename, part.content_id)
        out.append(CRLF)
        out.append(_base64_cache.encode(part.data))
    elif isinstance(part, Multipart):
        # 96 random bits: unguessable, so no body text can close a part early.
        boundary = "=_" + os.urandom(12).hex()
        out.append(
            f'Content-Type: multipart/{part.subtype}; boundary="{boundary}"\r\n\r\n'.encode("ascii")
        )
        delimiter = f"--{boundary}\r\n".encode("ascii")
        for index, child in enumerate(part.children):
            out.append(CRLF + delimiter if index else delimiter)
            _write(child, out)
        out.append(f"\r\n--{boundary}--\r\n".encode("ascii"))
    elif isinstance(part, MessagePart):
        out.append(
            f"Content-Type: message/rfc822\r\nContent-Transfer-Encoding: {part.cte}\r\n".encode()
        )
        _disposition_fields(out, part.disposition, part.filename, None)
        out.append(CRLF)
        out.append(part.data)
    else:
        assert isinstance(part, ForeignPart)
        raw = part.part.as_bytes(policy=part.part.policy.clone(linesep="\r\n"))
        out.append(crlf(raw))


def render(
    fields: list[tuple[str, str]], root: Part, *, utf8: bool = False, head: str | None = None
) -> bytes:
    """The message as bytes: ``fields`` (name, folded value) on top, then the tree.

    The content is exact: a text body that does not end with a line break does not get
    one, so the bytes may not end with CRLF (a single-part 7bit message); SMTP adds it
    (``EmailMessage.envelope()``). A quoted-printable body ends with a soft line break
    instead, which decodes to nothing. ``head``, when given, is ``fields`` already
    written as header lines."""
    if head is None:
        head = "".join([f"{name}: {value}\r\n" for name, value in fields])
    out = [head.encode("utf-8" if utf8 else "ascii"), b"MIME-Version: 1.0\r\n"]
    if type(root) is TextPart and root.disposition is None and root.content_id is None:
        # A single text part, what _write() writes for it, without the call.
        out.append(text_fields(root.subtype, root.charset, root.cte))
        out.append(CRLF)
        out.append(root.encoded.replace(b"\n", CRLF))
    else:
        _write(root, out)
    if isinstance(root, TextPart) and root.cte == "quoted-printable" and not root.ends_line:
        out.append(b"=\r\n")
    return b"".join(out)
