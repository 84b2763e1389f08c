"""A real SMTP server for tests: aiosmtpd on 127.0.0.1, a random port, its own thread.

It records every message it accepts (envelope and raw bytes), every connection, and
what arrived when (for the pipelining tests). Options cover what the tests need:
STARTTLS, implicit TLS, AUTH, client certificates, SMTPUTF8, PIPELINING, refused
recipients, a refused DATA, throttling replies and slow replies.
"""

from __future__ import annotations

import asyncio
import base64
import ssl
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.smtp import MISSING, SMTP, AuthResult, LoginPassword

OAUTH2_ERROR = b'{"status":"401","schemes":"bearer","scope":"https://mail.google.com/"}'


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    mail_options: list[str]
    connection: int
    tls: bool
    authenticated: bool
    at: float = field(default_factory=time.monotonic)

    def parsed(self) -> EmailMessage:
        return message_from_bytes(self.data, policy=policy.default)  # type: ignore[return-value]


@dataclass
class ServerOptions:
    starttls: ssl.SSLContext | None = None
    implicit_tls: ssl.SSLContext | None = None
    require_starttls: bool = False
    auth: tuple[str, str] | None = None
    auth_require_tls: bool = False
    smtputf8: bool = True
    pipelining: bool = True
    refuse: set[str] = field(default_factory=set)
    data_reply: str | None = None  # e.g. "554 5.7.1 rejected": refuse every DATA
    mail_reply: str | None = None  # refuse every MAIL FROM
    reply_delay: float = 0.0  # seconds before each reply (a slow server)
    throttle: dict[str, int] = field(default_factory=dict)  # rcpt -> times to answer 454
    refuse_data_containing: bytes | None = None  # 554 to DATA when the content has this
    mail_421: int = 0  # answer 421 (and hang up) to this many MAIL commands
    data_command_delay: float = 0.0  # seconds before answering DATA with 354
    stall_data: float = 0.0  # after DATA, stop reading for this long (client buffers fill)
    data_size_limit: int | None = 33554432
    # Signals, for tests that wait on the server rather than on the clock:
    hold: dict[str, threading.Event] = field(default_factory=dict)  # "MAIL", "RCPT",
    # "DATA" -> answer that command only once the event is set (all set on stop())
    stall_until: threading.Event | None = None  # after DATA, stop reading until set
    # Answer MAIL only once this many connections were opened: a test of N parallel
    # connections then knows each one got a message (else one fast connection may
    # send everything before the others start).
    mail_after_connections: int = 0
    # OAuth2: the account and the access tokens it accepts (with ``auth`` set, which
    # turns AUTH on); the mechanisms offered; the error JSON sent in the 334 challenge.
    oauth2_user: str | None = None
    oauth2_tokens: set[str] = field(default_factory=set)
    oauth2_mechanisms: tuple[str, ...] = ("XOAUTH2",)


class _Handler:
    def __init__(self, server: SMTPTestServer) -> None:
        self.server = server

    async def handle_EHLO(self, smtp, session, envelope, hostname, responses):
        session.host_name = hostname
        if self.server.options.pipelining:
            responses.insert(-1, "250-PIPELINING")
        return responses

    async def handle_MAIL(self, smtp, session, envelope, address, mail_options):
        await self.server._gate("MAIL")
        await self.server._delay()
        options = self.server.options
        if options.mail_421:
            options.mail_421 -= 1
            # RFC 5321 4.2: a 421 ends the session; hang up once the reply is out.
            asyncio.get_running_loop().call_later(0.01, smtp.transport.close)
            return "421 4.7.0 too busy, come back later"
        if options.mail_reply:
            return options.mail_reply
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, smtp, session, envelope, address, rcpt_options):
        await self.server._gate("RCPT")
        await self.server._delay()
        options = self.server.options
        if address in options.refuse:
            return "550 5.1.1 no such user here"
        remaining = options.throttle.get(address, 0)
        if remaining:
            options.throttle[address] = remaining - 1
            return "454 4.7.0 try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, smtp, session, envelope):
        await self.server._delay()
        options = self.server.options
        if options.data_reply:
            return options.data_reply
        content = bytes(envelope.original_content or b"")
        if options.refuse_data_containing and options.refuse_data_containing in content:
            return "554 5.6.0 content refused"
        self.server.messages.append(
            Received(
                envelope.mail_from,
                list(envelope.rcpt_tos),
                bytes(envelope.original_content or envelope.content),
                list(envelope.mail_options),
                session.connection_number,
                session.ssl is not None or smtp.transport.get_extra_info("ssl_object") is not None,
                bool(session.authenticated),
            )
        )
        return "250 2.0.0 accepted"


class _RecordingSMTP(SMTP):
    """Records when bytes arrive, so tests can see commands arriving grouped."""

    def __init__(self, owner: SMTPTestServer, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._owner = owner

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        upgrade = self._original_transport is not None  # STARTTLS calls this again
        number = getattr(self.session, "connection_number", None) if upgrade else None
        super().connection_made(transport)
        if not upgrade:
            self._owner.connections += 1
            number = self._owner.connections
        self.session.connection_number = number

    async def smtp_DATA(self, arg: str) -> None:
        options = self._owner.options
        if options.data_command_delay:
            await asyncio.sleep(options.data_command_delay)
        if options.stall_data:
            self.transport.pause_reading()
            asyncio.get_running_loop().call_later(options.stall_data, self._resume)
        await self._owner._gate("DATA")
        if options.stall_until is not None:
            self.transport.pause_reading()
            self._owner.stalled.set()
            self._stall = asyncio.ensure_future(self._resume_when(options.stall_until))
        await super().smtp_DATA(arg)

    async def _resume_when(self, event: threading.Event) -> None:
        while not event.is_set():
            await asyncio.sleep(0.002)
        self._resume()

    async def _oauth2(self, mechanism: str, args: list[str]) -> AuthResult:
        """XOAUTH2 / OAUTHBEARER: the token must be one of ``oauth2_tokens``; a refusal
        sends the error JSON in a 334 challenge first, as Gmail does."""
        if len(args) == 1:
            response = await self.challenge_auth("")
            if response is MISSING:
                return AuthResult(success=False, handled=True)
        else:
            response = base64.b64decode(args[1])
        assert isinstance(response, bytes)
        fields = response.split(b"\x01")
        if mechanism == "XOAUTH2":
            users = [f[5:].decode() for f in fields if f.startswith(b"user=")]
        else:
            header = fields[0].split(b",")
            users = [p[2:].decode() for p in header[1:] if p.startswith(b"a=")]
        tokens = [f[12:].decode() for f in fields if f.startswith(b"auth=Bearer ")]
        options = self._owner.options
        user, token = (users or [""])[0], (tokens or [""])[0]
        self._owner.oauth2_logins.append((mechanism, user, token))
        if user == options.oauth2_user and token in options.oauth2_tokens:
            return AuthResult(success=True, auth_data=LoginPassword(user.encode(), b""))
        answer = await self.challenge_auth(OAUTH2_ERROR)
        expected = b"" if mechanism == "XOAUTH2" else b"\x01"
        self._owner.oauth2_error_answers.append(answer == expected)
        return AuthResult(
            success=False, handled=False, message="535 5.7.8 Username and Password not accepted"
        )

    async def auth_XOAUTH2(self, _: Any, args: list[str]) -> AuthResult:
        return await self._oauth2("XOAUTH2", args)

    async def auth_OAUTHBEARER(self, _: Any, args: list[str]) -> AuthResult:
        return await self._oauth2("OAUTHBEARER", args)

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        with self._owner._ended:
            self._owner.ended += 1
            self._owner._ended.notify_all()

    def _resume(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.resume_reading()

    def data_received(self, data: bytes) -> None:
        self._owner.chunks.append((time.monotonic(), data))
        super().data_received(data)


class SMTPTestServer:
    handler_class: type[_Handler] = _Handler  # a test may answer differently

    def __init__(self, options: ServerOptions | None = None) -> None:
        self.options = options or ServerOptions()
        self.messages: list[Received] = []
        self.chunks: list[tuple[float, bytes]] = []
        self.connections = 0
        self.arrived: defaultdict[str, threading.Event] = defaultdict(threading.Event)
        self.stalled = threading.Event()  # set when stall_until stopped the reading
        self.oauth2_logins: list[tuple[str, str, str]] = []  # (mechanism, user, token)
        self.oauth2_error_answers: list[bool] = []  # the 334 error answered as it should
        self.ended = 0  # connections closed (by either side)
        self._ended = threading.Condition()
        self.host = "127.0.0.1"
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.AbstractServer | None = None

    async def _gate(self, verb: str) -> None:
        """Say the command arrived; answer it only once its hold (if any) is released."""
        self.arrived[verb].set()
        event = self.options.hold.get(verb)
        while event is not None and not event.is_set():
            await asyncio.sleep(0.002)
        while verb == "MAIL" and self.connections < self.options.mail_after_connections:
            await asyncio.sleep(0.002)  # (ends with the server: stop() cancels it)

    def wait_ended(self, count: int = 1, timeout: float = 15) -> None:
        """Until ``count`` connections have closed (plain connections; STARTTLS ones
        are not counted reliably)."""
        with self._ended:
            if not self._ended.wait_for(lambda: self.ended >= count, timeout):
                raise AssertionError(f"{self.ended} of {count} connections ended")

    async def _delay(self) -> None:
        if self.options.reply_delay:
            await asyncio.sleep(self.options.reply_delay)

    def _authenticate(self, smtp, session, envelope, mechanism, auth_data):
        expected = self.options.auth
        ok = (
            isinstance(auth_data, LoginPassword)
            and expected is not None
            and (auth_data.login.decode(), auth_data.password.decode()) == expected
        )
        return AuthResult(success=ok, handled=False)

    def _factory(self) -> SMTP:
        options = self.options
        kwargs: dict[str, Any] = {
            "enable_SMTPUTF8": options.smtputf8,
            "hostname": "test.smtp.local",
            "data_size_limit": options.data_size_limit,
            "auth_require_tls": options.auth_require_tls,
        }
        if options.starttls is not None:
            kwargs["tls_context"] = options.starttls
            kwargs["require_starttls"] = options.require_starttls
        if options.auth is not None:
            kwargs["authenticator"] = self._authenticate
            kwargs["auth_required"] = True
        kwargs["auth_exclude_mechanism"] = (
            [m for m in ("XOAUTH2", "OAUTHBEARER") if m not in options.oauth2_mechanisms]
            if options.oauth2_user
            else ["XOAUTH2", "OAUTHBEARER"]
        )
        return _RecordingSMTP(self, self.handler_class(self), **kwargs)

    def start(self) -> SMTPTestServer:
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(
            # port: 0 (any free one) unless a test set one before start()
            self._loop.create_server(
                self._factory, self.host, self.port, ssl=self.options.implicit_tls
            ),
            self._loop,
        )
        self._server = future.result(10)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def stop(self) -> None:
        for event in [*self.options.hold.values(), self.options.stall_until]:
            if event is not None:
                event.set()

        async def shutdown() -> None:
            assert self._server is not None
            self._server.close()
            await asyncio.sleep(0)
            # Sessions still running (a stalled or held one) end here, not as
            # "Task was destroyed but it is pending!" when the loop closes.
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def wait_for(self, count: int, timeout: float = 5.0) -> list[Received]:
        """The received messages once there are ``count`` of them."""
        deadline = time.monotonic() + timeout
        while len(self.messages) < count and time.monotonic() < deadline:
            time.sleep(0.005)
        return self.messages

    @property
    def settings(self) -> dict[str, Any]:
        """Settings that point the SMTP backend at this server."""
        return {
            "EMAIL_BACKEND": "mailwright.backends.smtp.EmailBackend",
            "EMAIL_HOST": self.host,
            "EMAIL_PORT": self.port,
        }
