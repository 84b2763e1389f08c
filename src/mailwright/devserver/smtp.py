"""The catcher's SMTP server: an ``asyncio.Protocol`` that accepts every well-formed
message.

Hand-written rather than on aiosmtpd, for speed: on the 2-core development machine
aiosmtpd with a handler that does nothing takes about 2,450 messages/s from 8
``smtp-source`` sessions, while this protocol (no streams, no per-command coroutine,
address checks with one regex, pipelined replies written together) takes about 7,000,
which leaves room for storing the mail (``bench/ingest.py``).

It speaks ESMTP as a submission server would: EHLO/HELO, MAIL (SIZE, BODY, SMTPUTF8),
RCPT, DATA, RSET, NOOP, VRFY, HELP, QUIT, PIPELINING (commands are answered in order,
replies to a pipelined group are written together), STARTTLS when given a TLS context,
and AUTH PLAIN, LOGIN, XOAUTH2 and OAUTHBEARER accepting any credentials or token (the
user name is kept with the message). Like Postfix it hangs up on HTTP requests, so a
web page cannot smuggle mail in through the browser.
"""

from __future__ import annotations

import asyncio
import binascii
import re
import ssl
from collections.abc import Callable
from typing import Protocol

from ..smtp.grammar import dot_unstuff, needs_smtputf8, parse_path_argument, parse_plain

__all__ = ["Delivery", "SMTPService", "SMTPSession", "malformed_reason"]

_HEADER_FIELD = re.compile(rb"[\x21-\x39\x3b-\x7e]+[ \t]*:")
_MAX_LINE = 998
MAX_COMMAND_LINE = 4096  # RFC 5321 says 512 plus extensions; AUTH responses need more
MAX_RECIPIENTS = 1000
MAX_BAD_COMMANDS = 20
IDLE_TIMEOUT = 300.0

_HTTP_VERBS = frozenset({b"GET", b"POST", b"PUT", b"HEAD", b"OPTIONS", b"CONNECT", b"DELETE"})


def malformed_reason(raw: bytes) -> str | None:
    """Why ``raw`` is not an RFC 5322 message, or None when it is one.

    The catcher is meant to show what an application really sends, so it refuses only
    what no mail system would carry: no header section, a line in the header section
    that is not a field, NUL bytes, or lines over 998 octets.
    """
    if not raw.strip():
        return "the message is empty"
    if b"\x00" in raw:
        return "the message contains a NUL byte"
    if len(raw) > _MAX_LINE:
        lines = raw.split(b"\n")
        if max(map(len, lines)) > _MAX_LINE:
            for number, line in enumerate(lines, 1):
                if len(line.rstrip(b"\r")) > _MAX_LINE:
                    return f"line {number} is longer than {_MAX_LINE} octets"
    fields = 0
    for number, line in enumerate(_header_lines(raw), 1):
        if line[:1] in (b" ", b"\t"):
            if fields == 0:
                return "the message starts with a continuation line"
            continue
        if not _HEADER_FIELD.match(line):
            return f"line {number} of the header section is not a header field"
        fields += 1
    if fields == 0:
        return "the message has no header section"
    return None


def _header_lines(raw: bytes) -> list[bytes]:
    """The lines of the header section (up to the first empty line)."""
    end = raw.find(b"\r\n\r\n")
    block = raw[: end + 2] if end >= 0 else raw
    lines = []
    for line in block.split(b"\n"):
        line = line.rstrip(b"\r")
        if not line:
            break
        lines.append(line)
    return lines


class Delivery(Protocol):
    """What the session hands a finished message to. Return None when it is stored,
    or a future that resolves to None (stored) or an error text (refused)."""

    def __call__(
        self, raw: bytes, mail_from: str, rcpt_tos: list[str], auth_user: str | None
    ) -> asyncio.Future[str | None] | None: ...


class SMTPService:
    """Settings shared by every session of one listening socket."""

    def __init__(
        self,
        deliver: Delivery,
        *,
        hostname: str = "mailwright.devserver",
        max_size: int = 32 * 1024 * 1024,
        tls_context: ssl.SSLContext | None = None,
        idle_timeout: float = IDLE_TIMEOUT,
        max_connections: int | None = None,
    ) -> None:
        self.deliver = deliver
        self.max_connections = max_connections
        self.hostname = hostname
        self.max_size = max_size
        self.tls_context = tls_context
        self.idle_timeout = idle_timeout
        self.sessions: set[SMTPSession] = set()
        self.tasks: set[asyncio.Task[None]] = set()
        self._sweeper: asyncio.TimerHandle | None = None

    def factory(self, implicit_tls: bool = False) -> Callable[[], SMTPSession]:
        """Sessions for a plain listener, or (``implicit_tls``) for one whose sockets
        are TLS from the first byte (SMTPS, port 465 style)."""
        return lambda: SMTPSession(self, implicit_tls)

    def start_sweeping(self) -> None:
        """Hang up on sessions idle for longer than ``idle_timeout`` (one timer for all
        sessions instead of re-arming one per command)."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        for session in list(self.sessions):
            if now - session.last_active > self.idle_timeout:
                session.reply_and_close(b"421 4.4.2 Idle for too long, closing connection\r\n")
        self._sweeper = loop.call_later(min(self.idle_timeout, 30.0), self.start_sweeping)

    def close_all(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        for session in list(self.sessions):
            session.reply_and_close(b"421 4.3.2 Server shutting down\r\n")


class SMTPSession(asyncio.Protocol):
    """One SMTP connection. Input is buffered and handled line by line; while a
    message is being stored (or TLS being set up) nothing further is read."""

    def __init__(self, service: SMTPService, implicit_tls: bool = False) -> None:
        self.service = service
        self.transport: asyncio.Transport | None = None
        self.loop = asyncio.get_running_loop()
        self.last_active = self.loop.time()
        self._buffer = bytearray()
        self._out: list[bytes] = []
        self._greeted = False
        self._extended = False
        self._tls = implicit_tls
        self.auth_user: str | None = None
        self._mail_from: str | None = None
        self._smtputf8 = False  # the transaction's MAIL carried SMTPUTF8
        self._rcpt_tos: list[str] = []
        self._in_data = False
        self._data = bytearray()
        self._data_scanned = 0
        self._data_too_big = False
        self._auth_step: Callable[[bytes], None] | None = None
        self._busy = False  # waiting for a delivery or a TLS handshake
        self._closing = False
        self._discarding = False  # skipping the rest of an over-long command line
        self._bad_commands = 0
        self._paused_by_writes = False

    # --- asyncio.Protocol ---

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        limit = self.service.max_connections
        if limit is not None and len(self.service.sessions) >= limit:
            transport.write(b"421 4.3.2 Too many connections, try again later\r\n")
            self._closing = True
            transport.close()
            return
        self.service.sessions.add(self)
        transport.write(
            f"220 {self.service.hostname} ESMTP mailwright development SMTP server\r\n".encode()
        )

    def connection_lost(self, exc: Exception | None) -> None:
        self.service.sessions.discard(self)
        self._closing = True
        self.transport = None

    def pause_writing(self) -> None:
        # The client does not read its replies: stop reading its commands.
        self._paused_by_writes = True
        if self.transport is not None:
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        self._paused_by_writes = False
        if self.transport is not None and not self._busy:
            self.transport.resume_reading()

    def data_received(self, data: bytes) -> None:
        self.last_active = self.loop.time()
        self._buffer += data
        if not self._busy:
            self._process()

    def eof_received(self) -> bool | None:
        return None  # close the connection

    # --- input ---

    def _process(self) -> None:
        buffer = self._buffer
        while buffer and not self._busy and not self._closing:
            if self._in_data:
                if not self._take_data():
                    break
                continue
            end = buffer.find(b"\n")
            if end < 0:
                if len(buffer) > MAX_COMMAND_LINE:
                    if not self._discarding:
                        self._too_long()
                        self._discarding = True
                    del buffer[:]
                break
            line = bytes(buffer[:end]).rstrip(b"\r")
            del buffer[: end + 1]
            if self._discarding:
                self._discarding = False
                continue
            if len(line) > MAX_COMMAND_LINE:
                self._too_long()
                continue
            self._line(line)
        self._flush()

    def _too_long(self) -> None:
        # The line was refused: an AUTH exchange it answered is over, and the next line
        # is a command again, never taken as the AUTH response.
        self._auth_step = None
        self._reply(b"500 5.5.2 Line too long\r\n")

    def _take_data(self) -> bool:
        """Collect DATA until CRLF.CRLF; True when the message ended."""
        # ``_data`` starts with the CRLF that ended the DATA command, so the terminator
        # is always CRLF "." CRLF, even for an empty message.
        data = self._data
        data += self._buffer
        del self._buffer[:]
        end = data.find(b"\r\n.\r\n", max(0, self._data_scanned - 4))
        if end < 0:
            self._data_scanned = len(data)
            if len(data) > self.service.max_size + 8:
                # Too big: read on to the end, keeping only the tail.
                self._data_too_big = True
                del data[: len(data) - 8]
                self._data_scanned = len(data)
            return False
        self._buffer += data[end + 5 :]
        body = bytes(data[2 : end + 2])
        self._in_data = False
        self._data = bytearray()
        self._data_scanned = 0
        too_big, self._data_too_big = self._data_too_big, False
        if too_big:
            self._reply(b"552 5.3.4 Message too big for this server\r\n")
            self._reset()
            return True
        body = dot_unstuff(body)
        if len(body) > self.service.max_size:
            self._reply(b"552 5.3.4 Message too big for this server\r\n")
            self._reset()
            return True
        problem = malformed_reason(body)
        if problem is not None:
            self._reply(f"550 5.6.0 Malformed message refused: {problem}\r\n".encode())
            self._reset()
            return True
        mail_from, rcpt_tos = self._mail_from or "", self._rcpt_tos
        self._reset()
        try:
            pending = self.service.deliver(body, mail_from, rcpt_tos, self.auth_user)
        except Exception as exc:  # a store that cannot store must not kill the session
            self._reply(f"451 4.3.0 Message not stored: {exc}\r\n".encode())
            return True
        if pending is None:
            self._reply(b"250 2.0.0 Ok: queued\r\n")
            return True
        self._wait(pending)
        return True

    def _wait(self, pending: asyncio.Future[str | None]) -> None:
        self._busy = True
        if self.transport is not None:
            self.transport.pause_reading()

        def finished(future: asyncio.Future[str | None]) -> None:
            if future.cancelled():
                error: object = "the server is stopping"
            else:
                error = future.exception() or future.result()
            if error:
                self._reply(f"451 4.3.0 Message not stored: {error}\r\n".encode())
            else:
                self._reply(b"250 2.0.0 Ok: queued\r\n")
            self._resume()

        pending.add_done_callback(finished)

    def _resume(self) -> None:
        self._busy = False
        if self.transport is not None and not self._paused_by_writes:
            self.transport.resume_reading()
        self._process()

    # --- output ---

    def _reply(self, text: bytes) -> None:
        self._out.append(text)

    def _flush(self) -> None:
        if self._out and self.transport is not None:
            self.transport.write(b"".join(self._out))
        self._out.clear()

    def reply_and_close(self, text: bytes) -> None:
        self._reply(text)
        self._flush()
        self._closing = True
        if self.transport is not None:
            self.transport.close()

    # --- commands ---

    def _reset(self) -> None:
        self._mail_from = None
        self._rcpt_tos = []

    def _line(self, line: bytes) -> None:
        if self._auth_step is not None:
            step, self._auth_step = self._auth_step, None
            step(line)
            return
        verb, _, arg = line.partition(b" ")
        verb = verb.upper()
        handler = _COMMANDS.get(verb)
        if handler is None:
            if verb in _HTTP_VERBS or verb.endswith(b":"):
                # An HTTP request (or its header lines) sent to the SMTP port.
                self.reply_and_close(b"221 2.7.0 This is an SMTP server, not HTTP. Bye\r\n")
                return
            self._bad(b"500 5.5.2 Command not recognized\r\n")
            return
        handler(self, arg.strip())

    def _bad(self, text: bytes) -> None:
        self._bad_commands += 1
        if self._bad_commands >= MAX_BAD_COMMANDS:
            self.reply_and_close(b"421 4.7.0 Too many errors, closing connection\r\n")
        else:
            self._reply(text)

    def _ehlo_lines(self) -> list[bytes]:
        lines = [
            self.service.hostname.encode(),
            f"SIZE {self.service.max_size}".encode(),
            b"8BITMIME",
            b"SMTPUTF8",
            b"PIPELINING",
            b"ENHANCEDSTATUSCODES",
        ]
        if self.service.tls_context is not None and not self._tls:
            lines.append(b"STARTTLS")
        lines.append(b"AUTH PLAIN LOGIN XOAUTH2 OAUTHBEARER")
        lines.append(b"HELP")
        return lines

    def cmd_ehlo(self, arg: bytes) -> None:
        if not arg:
            self._bad(b"501 5.5.4 Syntax: EHLO hostname\r\n")
            return
        self._greeted = self._extended = True
        self._reset()
        lines = self._ehlo_lines()
        text = b"".join(b"250-" + line + b"\r\n" for line in lines[:-1])
        self._reply(text + b"250 " + lines[-1] + b"\r\n")

    def cmd_helo(self, arg: bytes) -> None:
        if not arg:
            self._bad(b"501 5.5.4 Syntax: HELO hostname\r\n")
            return
        self._greeted = True
        self._extended = False
        self._reset()
        self._reply(b"250 " + self.service.hostname.encode() + b"\r\n")

    def cmd_mail(self, arg: bytes) -> None:
        if not self._greeted:
            self._bad(b"503 5.5.1 Send EHLO or HELO first\r\n")
            return
        if self._mail_from is not None:
            self._bad(b"503 5.5.1 Nested MAIL command\r\n")
            return
        if arg[:5].upper() != b"FROM:":
            self._bad(b"501 5.5.4 Syntax: MAIL FROM:<address>\r\n")
            return
        parsed = self._path(arg[5:])
        if parsed is None:
            self._bad(b"501 5.1.7 Bad sender address syntax\r\n")
            return
        address, params = parsed
        smtputf8 = False
        for name, value in params:
            if name == "SIZE" and self._extended:
                if value is None or not value.isdigit():
                    self._bad(b"501 5.5.4 Syntax: SIZE=<number>\r\n")
                    return
                if int(value) > self.service.max_size:
                    self._reply(b"552 5.3.4 Message size exceeds fixed limit\r\n")
                    return
            elif name == "BODY" and self._extended:
                if value is None or value.upper() not in ("7BIT", "8BITMIME"):
                    self._bad(b"501 5.5.4 Syntax: BODY=7BIT or BODY=8BITMIME\r\n")
                    return
            elif name == "SMTPUTF8" and self._extended and value is None:
                smtputf8 = True
            elif name == "AUTH" and self._extended:
                pass
            else:
                self._bad(b"555 5.5.4 Unsupported MAIL parameter\r\n")
                return
        if needs_smtputf8(address) and not smtputf8:
            self._bad(b"553 5.6.7 Non-ASCII address without SMTPUTF8\r\n")
            return
        self._mail_from = address
        self._smtputf8 = smtputf8
        self._rcpt_tos = []
        self._reply(b"250 2.1.0 Ok\r\n")

    def cmd_rcpt(self, arg: bytes) -> None:
        if self._mail_from is None:
            self._bad(b"503 5.5.1 Need MAIL before RCPT\r\n")
            return
        if arg[:3].upper() != b"TO:":
            self._bad(b"501 5.5.4 Syntax: RCPT TO:<address>\r\n")
            return
        parsed = self._path(arg[3:])
        if parsed is None or not parsed[0]:
            self._bad(b"501 5.1.3 Bad recipient address syntax\r\n")
            return
        address, params = parsed
        if params:
            self._bad(b"555 5.5.4 Unsupported RCPT parameter\r\n")
            return
        if needs_smtputf8(address) and not self._smtputf8:
            self._bad(b"553 5.6.7 Non-ASCII address without SMTPUTF8 on MAIL\r\n")
            return
        if len(self._rcpt_tos) >= MAX_RECIPIENTS:
            self._reply(b"452 4.5.3 Too many recipients\r\n")
            return
        self._rcpt_tos.append(address)
        self._reply(b"250 2.1.5 Ok\r\n")

    @staticmethod
    def _path(text: bytes) -> tuple[str, list[tuple[str, str | None]]] | None:
        try:
            return parse_path_argument(text.decode("utf-8"))
        except UnicodeDecodeError:
            return None

    def cmd_data(self, arg: bytes) -> None:
        if self._mail_from is None:
            self._bad(b"503 5.5.1 Need MAIL command\r\n")
            return
        if not self._rcpt_tos:
            self._bad(b"503 5.5.1 Need RCPT command (no valid recipients)\r\n")
            return
        if arg:
            self._bad(b"501 5.5.4 Syntax: DATA\r\n")
            return
        self._in_data = True
        self._data = bytearray(b"\r\n")
        self._reply(b"354 End data with <CR><LF>.<CR><LF>\r\n")

    def cmd_rset(self, arg: bytes) -> None:
        self._reset()
        self._reply(b"250 2.0.0 Ok\r\n")

    def cmd_noop(self, arg: bytes) -> None:
        self._reply(b"250 2.0.0 Ok\r\n")

    def cmd_vrfy(self, arg: bytes) -> None:
        self._reply(b"252 2.5.2 Cannot VRFY user, but will accept message\r\n")

    def cmd_help(self, arg: bytes) -> None:
        self._reply(
            b"214 2.0.0 Commands: EHLO HELO MAIL RCPT DATA RSET NOOP VRFY QUIT STARTTLS AUTH\r\n"
        )

    def cmd_quit(self, arg: bytes) -> None:
        self.reply_and_close(b"221 2.0.0 Bye\r\n")

    # --- STARTTLS ---

    def cmd_starttls(self, arg: bytes) -> None:
        context = self.service.tls_context
        if context is None:
            self._bad(b"502 5.5.1 STARTTLS not offered (start the catcher with --tls)\r\n")
            return
        if self._tls:
            self._bad(b"503 5.5.1 Already using TLS\r\n")
            return
        if arg:
            self._bad(b"501 5.5.4 Syntax: STARTTLS\r\n")
            return
        # Anything the client pipelined after STARTTLS was sent in the clear: drop it
        # (the CVE-2011-0411 class of command injection). Nothing more is read in the
        # clear: what comes next goes to the TLS handshake, and plaintext there fails it.
        del self._buffer[:]
        self._reply(b"220 2.0.0 Ready to start TLS\r\n")
        self._flush()
        self._busy = True
        if self.transport is not None:
            self.transport.pause_reading()
        task = self.loop.create_task(self._start_tls(context))
        self.service.tasks.add(task)
        task.add_done_callback(self.service.tasks.discard)

    async def _start_tls(self, context: ssl.SSLContext) -> None:
        transport = self.transport
        if transport is None:
            return
        del self._buffer[:]  # nothing read in the clear counts (reading is paused)
        try:
            new_transport = await self.loop.start_tls(
                transport, self, context, server_side=True, ssl_handshake_timeout=30
            )
        except (TimeoutError, OSError, ssl.SSLError, ConnectionError):
            transport.abort()
            return
        if new_transport is None:
            transport.abort()
            return
        self.transport = new_transport
        self._tls = True
        # RFC 3207: forget everything learnt before TLS.
        self._greeted = self._extended = False
        self.auth_user = None
        self._reset()
        # The buffer holds only decrypted input now: a TLS 1.3 client sends its first
        # command with its Finished, and it may have arrived during the handshake.
        self._busy = False
        self._process()

    # --- AUTH (any credentials) ---

    def cmd_auth(self, arg: bytes) -> None:
        if not self._extended:
            self._bad(b"503 5.5.1 Send EHLO first\r\n")
            return
        if self.auth_user is not None:
            self._bad(b"503 5.5.1 Already authenticated\r\n")
            return
        if self._mail_from is not None:
            self._bad(b"503 5.5.1 AUTH not allowed during a mail transaction\r\n")
            return
        mechanism, _, initial = arg.partition(b" ")
        mechanism = mechanism.upper()
        initial = initial.strip()
        if mechanism == b"PLAIN":
            if initial:
                self._auth_plain(initial)
            else:
                self._challenge(b"", self._auth_plain)
        elif mechanism == b"LOGIN":
            if initial:
                self._auth_login_user(initial)
            else:
                self._challenge(b"Username:", self._auth_login_user)
        elif mechanism in (b"XOAUTH2", b"OAUTHBEARER"):
            step = self._auth_xoauth2 if mechanism == b"XOAUTH2" else self._auth_oauthbearer
            if initial:
                step(initial)
            else:
                self._challenge(b"", step)
        else:
            self._bad(
                b"504 5.5.4 Unrecognized authentication type "
                b"(PLAIN, LOGIN, XOAUTH2 and OAUTHBEARER offered)\r\n"
            )

    def _challenge(self, text: bytes, step: Callable[[bytes], None]) -> None:
        self._reply(b"334 " + binascii.b2a_base64(text, newline=False) + b"\r\n")
        self._auth_step = step

    def _decode(self, line: bytes) -> bytes | None:
        if line.strip() == b"*":
            self._reply(b"501 5.7.0 Authentication cancelled\r\n")
            return None
        try:
            return binascii.a2b_base64(line.strip(), strict_mode=True) if line.strip() else b""
        except (binascii.Error, ValueError):
            self._bad(b"501 5.5.2 Cannot decode response (base64 expected)\r\n")
            return None

    def _accept_login(self, user: bytes) -> None:
        self.auth_user = user.decode("utf-8", "replace")
        self._reply(b"235 2.7.0 Authentication successful (any credentials are accepted)\r\n")

    def _auth_plain(self, line: bytes) -> None:
        decoded = self._decode(line)
        if decoded is None:
            return
        parts = parse_plain(decoded)
        if parts is None:
            self._bad(b"501 5.5.2 Bad PLAIN response (authzid NUL user NUL password)\r\n")
            return
        self._accept_login(parts[1])

    def _bearer(self, fields: list[bytes]) -> bool:
        """An OAuth2 response names a bearer token (any token is accepted)."""
        if any(f.startswith(b"auth=Bearer ") and len(f) > 12 for f in fields):
            return True
        self._bad(b"501 5.5.2 Bad OAuth2 response (auth=Bearer <token> expected)\r\n")
        return False

    def _auth_xoauth2(self, line: bytes) -> None:
        # "user=" account ^A "auth=Bearer " token ^A ^A (any token is accepted)
        decoded = self._decode(line)
        if decoded is None:
            return
        fields = decoded.split(b"\x01")
        users = [f[5:] for f in fields if f.startswith(b"user=")]
        if not users:
            self._bad(b"501 5.5.2 Bad XOAUTH2 response (user=... expected)\r\n")
            return
        if self._bearer(fields):
            self._accept_login(users[0])

    def _auth_oauthbearer(self, line: bytes) -> None:
        # RFC 7628: a GS2 header "n,a=" account "," then ^A-separated fields.
        decoded = self._decode(line)
        if decoded is None:
            return
        header, _, rest = decoded.partition(b"\x01")
        parts = header.split(b",")
        users = [p[2:] for p in parts[1:] if p.startswith(b"a=")]
        if len(parts) < 3 or parts[0] not in (b"n", b"y") or not users:
            self._bad(b"501 5.5.2 Bad OAUTHBEARER response (n,a=user, expected)\r\n")
            return
        if self._bearer(rest.split(b"\x01")):
            self._accept_login(users[0].replace(b"=2C", b",").replace(b"=3D", b"="))

    def _auth_login_user(self, line: bytes) -> None:
        user = self._decode(line)
        if user is None:
            return

        def password(line: bytes) -> None:
            if self._decode(line) is not None:
                self._accept_login(user)

        self._challenge(b"Password:", password)


_COMMANDS: dict[bytes, Callable[[SMTPSession, bytes], None]] = {
    b"EHLO": SMTPSession.cmd_ehlo,
    b"HELO": SMTPSession.cmd_helo,
    b"MAIL": SMTPSession.cmd_mail,
    b"RCPT": SMTPSession.cmd_rcpt,
    b"DATA": SMTPSession.cmd_data,
    b"RSET": SMTPSession.cmd_rset,
    b"NOOP": SMTPSession.cmd_noop,
    b"VRFY": SMTPSession.cmd_vrfy,
    b"HELP": SMTPSession.cmd_help,
    b"QUIT": SMTPSession.cmd_quit,
    b"STARTTLS": SMTPSession.cmd_starttls,
    b"AUTH": SMTPSession.cmd_auth,
}
