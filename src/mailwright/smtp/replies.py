"""SMTP replies: the value type and an incremental parser (RFC 5321 section 4.2).

The parser takes bytes as they arrive and hands out complete replies. It is strict
where leniency could hide a broken peer (a code that is not three digits, a multi-line
reply whose lines disagree on the code, a line or reply past a sane size) and lenient
where real servers differ harmlessly (a bare LF instead of CRLF, a reply line with no
text). Anything it cannot accept raises ``SMTPProtocolError``: a confused peer gives an
error, never a hang or an unbounded buffer.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from .errors import SMTPProtocolError

__all__ = ["MAX_LINE", "MAX_REPLY", "Reply", "ReplyParser"]

#: Longest reply line accepted (RFC 5321 asks for 512; smtplib accepts 8192, and so do we).
MAX_LINE = 8192
#: Largest multi-line reply accepted (an EHLO reply is a few hundred bytes).
MAX_REPLY = 65536

_FIRST_DIGITS = b"2345"
_ENHANCED = re.compile(rb"([245])\.(\d{1,3})\.(\d{1,3})(?: |$)")


class Reply(NamedTuple):
    """One reply: its code and its text lines (bytes, without code and separator).

    A named tuple: the engine builds several per message, and a tuple is the cheapest
    immutable value to build.
    """

    code: int
    lines: tuple[bytes, ...]

    @property
    def message(self) -> bytes:
        """The text as ``smtplib`` gives it (``smtp_error``): lines joined by ``\\n``."""
        return b"\n".join(self.lines)

    @property
    def text(self) -> str:
        return self.message.decode("utf-8", "replace")

    @property
    def enhanced_status(self) -> str | None:
        """The RFC 3463 status code (``"5.1.1"``) at the start of the text, if any,
        and only when its class agrees with the reply code."""
        if not self.lines:
            return None
        match = _ENHANCED.match(self.lines[0])
        if match is None or int(match[1]) != self.code // 100:
            return None
        return f"{match[1].decode()}.{int(match[2])}.{int(match[3])}"

    @property
    def ok(self) -> bool:
        return 200 <= self.code < 400

    @property
    def temporary(self) -> bool:
        return 400 <= self.code < 500

    def __str__(self) -> str:
        return f"{self.code} {' '.join(self.text.split())}".strip()


# Building a named tuple through its class calls a Python-level __new__; the parser
# makes several per message, so it builds them the way that __new__ does, directly.
_new_reply = tuple.__new__
# b"250 " -> 250: the start of every valid last line of a reply, for one dict look-up.
_CODES = {f"{code} ".encode(): code for code in range(200, 600)}


# The replies to the usual pipelined group of a batch (``protocol.mail_transaction``
# with one recipient), when all is well: the end of data before (250, when the content
# of the message before opened the group), MAIL 250, RCPT 2xx, DATA 354, each a
# one-line reply ending in CRLF within MAX_LINE. MAIL's and DATA's texts are kept.
# (Any byte but CR and LF, as ranges: the expression engine tests a range set with one
# bitmap look-up per byte, a negated pair as two comparisons through its generic set
# code; the whole match takes half the time, timeit.)
_TEXT = rb"[\x00-\x09\x0b\x0c\x0e-\xff]{0,%d}" % (MAX_LINE - 4)
_USUAL_GROUP = rb"250 (%s)\r\n2[0-9][0-9] %s\r\n354 (%s)\r\n" % (_TEXT, _TEXT, _TEXT)
_USUAL = re.compile(_USUAL_GROUP)
_USUAL_AFTER_CONTENT = re.compile(rb"250 %s\r\n%s" % (_TEXT, _USUAL_GROUP))


class ReplyParser:
    """Bytes in, ``Reply`` objects out."""

    __slots__ = ("_buffer", "_code", "_lines", "_pos", "_size", "eof")

    def __init__(self) -> None:
        self._buffer = b""
        self._pos = 0  # where the unread part of the buffer starts
        self._lines: list[bytes] = []
        self._code = b""
        self._size = 0
        self.eof = False

    def feed(self, data: bytes) -> None:
        """Add bytes read from the peer; ``b""`` means the peer closed the connection."""
        if not data:
            self.eof = True
        elif self._pos >= len(self._buffer):
            self._buffer, self._pos = data, 0
        else:
            self._buffer, self._pos = self._buffer[self._pos :] + data, 0

    def take_usual(self, data: bytes, after_content: bool) -> tuple[Reply, Reply] | None:
        """With nothing buffered, when ``data`` is exactly the positive replies to the
        usual pipelined group (see ``_USUAL_GROUP``; ``after_content``: the content of
        the message before opened it), MAIL's and DATA's replies; else None, with
        ``data`` fed as ``feed()`` does, for the general way. One match instead of the
        parsing of four replies: this is the reply to every message of a batch."""
        if self._pos >= len(self._buffer) and not self._lines:
            match = (_USUAL_AFTER_CONTENT if after_content else _USUAL).fullmatch(data)
            if match is not None:
                return _new_reply(Reply, (250, (match[1],))), _new_reply(Reply, (354, (match[2],)))
        self.feed(data)
        return None

    @property
    def buffered(self) -> int:
        return len(self._buffer) - self._pos

    def replies(self, limit: int) -> list[Reply]:
        """Up to ``limit`` complete replies (a pipelined group's worth at once)."""
        found: list[Reply] = []
        buffer, pos = self._buffer, self._pos
        if not self._lines and pos < len(buffer):
            # The common case in a few C calls: one-line replies ending in CRLF, every
            # LF part of a CRLF (a bare LF, also a line end, would glue two replies in
            # one piece), no line too long. Anything else goes the general way below.
            chunk = buffer[pos:] if pos else buffer
            lines = chunk.split(b"\r\n")
            complete = len(lines) - 1
            if complete and chunk.count(b"\n") == complete:
                del lines[min(limit, complete) :]
                if len(chunk) > MAX_LINE and max(map(len, lines), default=0) > MAX_LINE:
                    lines = []  # the general way raises for it
                codes = _CODES
                try:
                    found = [_new_reply(Reply, (codes[line[:4]], (line[4:],))) for line in lines]
                except KeyError:  # a multi-line or malformed reply: the general way
                    found = []
                else:
                    self._pos = pos + sum(map(len, lines)) + 2 * len(lines)
        while len(found) < limit:
            reply = self.next_reply()
            if reply is None:
                break
            found.append(reply)
        return found

    def next_reply(self) -> Reply | None:
        """The next complete reply, or None until more bytes arrive."""
        buffer, start = self._buffer, self._pos
        while True:
            end = buffer.find(b"\n", start)
            if end < 0:
                self._pos = start
                if len(buffer) - start > MAX_LINE:
                    raise SMTPProtocolError(f"reply line longer than {MAX_LINE} bytes")
                return None
            line = buffer[start:end]
            start = end + 1
            if line.endswith(b"\r"):
                line = line[:-1]
            if len(line) > MAX_LINE:
                raise SMTPProtocolError(f"reply line longer than {MAX_LINE} bytes")
            code = line[:3]
            separator = line[3:4]
            if len(code) != 3 or not code.isdigit() or separator not in (b" ", b"-", b""):
                raise SMTPProtocolError(f"malformed reply line {line[:80]!r}")
            if code[0] not in _FIRST_DIGITS:
                raise SMTPProtocolError(f"reply code {code.decode()} is out of range")
            if self._lines and code != self._code:
                raise SMTPProtocolError(
                    f"multi-line reply changes its code from {self._code.decode()} to "
                    f"{code.decode()}"
                )
            self._code = code
            self._lines.append(line[4:])
            self._size += len(line)
            if self._size > MAX_REPLY:
                raise SMTPProtocolError(f"reply longer than {MAX_REPLY} bytes")
            if separator != b"-":
                reply = Reply(int(code), tuple(self._lines))
                self._lines = []
                self._size = 0
                self._pos = start
                return reply
