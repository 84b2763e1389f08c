"""SMTP backend: sends over ``smtplib``, with TLS verified by default and pipelining."""

from __future__ import annotations

import asyncio
import functools
import itertools
import smtplib
import socket
import ssl
import threading
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from ..conf import clean_setting, settings
from ..exceptions import ImproperlyConfigured
from ..tls import client_context
from ..transport import Outcome, run_transactions
from .base import BaseEmailBackend

if TYPE_CHECKING:
    import aiosmtplib

    from ..bulk import BulkResult
    from ..message import EmailMessage, Envelope

__all__ = ["EmailBackend"]

# What fail_silently swallows: the server said no, or the network failed.
_DELIVERY_ERRORS = (smtplib.SMTPException, OSError)


@functools.lru_cache(maxsize=1)
def local_hostname() -> str:
    """The name sent in EHLO, looked up once (smtplib would look it up per connection)."""
    name = socket.getfqdn()
    try:
        return name.encode("idna").decode("ascii")
    except UnicodeError:
        return "localhost"


def _setting(value: Any, name: str, argument: str) -> Any:
    """An argument, or the setting when the argument is None; checked either way."""
    if value is None:
        return getattr(settings, name)
    try:
        return clean_setting(name, value)
    except ImproperlyConfigured as exc:
        raise ImproperlyConfigured(f"{argument}= ({name}): {exc}") from None


class EmailBackend(BaseEmailBackend):
    """Sends over SMTP. Every ``None`` argument falls back to its setting.

    ``ssl_cafile`` adds a CA bundle (EMAIL_SSL_CAFILE) to the system ones; ``ssl_context``
    replaces mailwright's context entirely (for unusual set-ups). ``pipelining=False``
    forces the classic one-command-at-a-time exchange. ``connections=N`` sends a batch
    over N parallel connections (see ``mailwright.send_bulk``).
    """

    def __init__(
        self,
        host: str | None = None,
        port: int | None = None,
        username: str | None = None,
        password: str | None = None,
        use_tls: bool | None = None,
        fail_silently: bool = False,
        use_ssl: bool | None = None,
        timeout: float | None = None,
        ssl_keyfile: str | None = None,
        ssl_certfile: str | None = None,
        *,
        ssl_cafile: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
        pipelining: bool = True,
        connections: int = 1,
        **kwargs: Any,
    ) -> None:
        super().__init__(fail_silently=fail_silently)
        self.host: str = _setting(host, "EMAIL_HOST", "host")
        self.port: int = _setting(port, "EMAIL_PORT", "port")
        self.username: str = _setting(username, "EMAIL_HOST_USER", "username")
        self.password: str = _setting(password, "EMAIL_HOST_PASSWORD", "password")
        self.use_tls: bool = _setting(use_tls, "EMAIL_USE_TLS", "use_tls")
        self.use_ssl: bool = _setting(use_ssl, "EMAIL_USE_SSL", "use_ssl")
        self.timeout: float | None = _setting(timeout, "EMAIL_TIMEOUT", "timeout")
        self.ssl_keyfile: str | None = _setting(ssl_keyfile, "EMAIL_SSL_KEYFILE", "ssl_keyfile")
        self.ssl_certfile: str | None = _setting(ssl_certfile, "EMAIL_SSL_CERTFILE", "ssl_certfile")
        self.ssl_cafile: str | None = _setting(ssl_cafile, "EMAIL_SSL_CAFILE", "ssl_cafile")
        if self.use_tls and self.use_ssl:
            raise ImproperlyConfigured(
                "EMAIL_USE_TLS and EMAIL_USE_SSL are both true: choose STARTTLS (EMAIL_USE_TLS) "
                "or implicit TLS (EMAIL_USE_SSL), not both"
            )
        if not isinstance(connections, int) or connections < 1:
            raise ImproperlyConfigured(
                f"connections= must be a positive integer, got {connections!r}"
            )
        self._ssl_context = ssl_context
        self.pipelining = pipelining
        self.connections = connections
        self.connection: smtplib.SMTP | None = None
        self.aconnection: aiosmtplib.SMTP | None = None
        self._lock = threading.RLock()
        self._async_lock: asyncio.Lock | None = None

    def __repr__(self) -> str:
        # Never the password.
        mode = "ssl" if self.use_ssl else "starttls" if self.use_tls else "plain"
        user = f" user={self.username!r}" if self.username else ""
        return f"<smtp.EmailBackend {self.host}:{self.port} {mode}{user}>"

    @property
    def ssl_context(self) -> ssl.SSLContext:
        if self._ssl_context is None:
            self._ssl_context = client_context(self.ssl_cafile, self.ssl_certfile, self.ssl_keyfile)
        return self._ssl_context

    # --- connection ---

    def new_connection(self) -> smtplib.SMTP:
        """A connected ``smtplib`` client (TCP, and TLS when implicit), before EHLO."""
        options: dict[str, Any] = {"local_hostname": local_hostname()}
        if self.timeout is not None:
            options["timeout"] = self.timeout
        if self.use_ssl:
            return smtplib.SMTP_SSL(self.host, self.port, context=self.ssl_context, **options)
        return smtplib.SMTP(self.host, self.port, **options)

    def open(self) -> bool | None:
        """Connect, STARTTLS and log in as configured. True if a connection was opened
        now, False if one was already open, None if it failed silently."""
        with self._lock:
            if self.connection is not None:
                return False
            connection = None
            try:
                connection = self.new_connection()
                if self.use_tls:
                    connection.starttls(context=self.ssl_context)
                connection.ehlo_or_helo_if_needed()
                if self.username:
                    connection.login(self.username, self.password)
            except _DELIVERY_ERRORS:
                if connection is not None:
                    connection.close()
                if not self.fail_silently:
                    raise
                return None
            self.connection = connection
            return True

    def close(self) -> None:
        """QUIT and close; a connection that is already broken is just dropped."""
        with self._lock:
            connection, self.connection = self.connection, None
            if connection is None:
                return
            try:
                connection.quit()
            except (ssl.SSLError, smtplib.SMTPServerDisconnected, OSError):
                connection.close()
            except smtplib.SMTPException:
                connection.close()
                if not self.fail_silently:
                    raise

    def _abort(self) -> None:
        """Drop the connection without QUIT (its state is unknown)."""
        connection, self.connection = self.connection, None
        if connection is not None:
            connection.close()

    # --- sending ---

    def send_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        """Send messages over one connection; return how many were sent (accepted for
        at least one recipient). Each message's ``delivery`` says who accepted it.

        Messages are composed one at a time, just before they are sent. The first is
        composed before connecting, so a bad header or address in it fails without
        touching the network; one later in the batch stops it cleanly after the
        messages before it, with nothing half-sent.
        """
        if self.connections > 1 and len(email_messages) > 1:
            return self._send_parallel(email_messages)
        with self._lock:
            batch = _Batch(email_messages, self.fail_silently)
            first = next(batch.envelopes, None)
            if first is None:
                return batch.result()
            opened = self.open()
            if self.connection is None:
                return 0
            try:
                try:
                    for outcome in run_transactions(
                        self.connection,
                        itertools.chain([first], batch.envelopes),
                        pipelining=self.pipelining,
                        proceed=batch.going,
                    ):
                        batch.record(outcome)
                except _DELIVERY_ERRORS as exc:
                    self._abort()
                    batch.broken(exc)
                return batch.result()
            finally:
                if opened:
                    self.close()

    def _send_parallel(self, email_messages: Sequence[EmailMessage]) -> int:
        from ..bulk import send_bulk

        result = send_bulk(email_messages, self.connections, **self._bulk_options())
        return self._parallel_outcome(result)

    # --- asyncio (native, on aiosmtplib; imported on first use, so sync-only
    # programs never pay for loading it) ---

    async def aopen(self) -> bool | None:
        """``open()`` for asyncio code: the same TLS, AUTH and timeout rules."""
        from .. import atransport

        if self.aconnection is not None:
            return False
        tls = self.use_ssl or self.use_tls
        try:
            self.aconnection = await atransport.open_session(
                host=self.host,
                port=self.port,
                use_ssl=self.use_ssl,
                use_tls=self.use_tls,
                context=self.ssl_context if tls else None,
                timeout=self.timeout,
                username=self.username,
                password=self.password,
                local_hostname=local_hostname(),
            )
        except _DELIVERY_ERRORS:
            if not self.fail_silently:
                raise
            return None
        return True

    async def aclose(self) -> None:
        from .. import atransport

        connection, self.aconnection = self.aconnection, None
        if connection is not None:
            await atransport.close_session(connection, self.fail_silently)

    def _aabort(self) -> None:
        from .. import atransport

        connection, self.aconnection = self.aconnection, None
        if connection is not None:
            atransport.abort(connection)

    async def asend_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        """``send_messages()`` for asyncio code. Cancelling the task drops the
        connection at once: the server never gets the end of a half-sent message."""
        from .. import atransport

        if self.connections > 1 and len(email_messages) > 1:
            return await self._asend_parallel(email_messages)
        if self._async_lock is None:
            self._async_lock = asyncio.Lock()
        async with self._async_lock:
            batch = _Batch(email_messages, self.fail_silently)
            item = next(batch.envelopes, None)
            if item is None:
                return batch.result()
            opened = await self.aopen()
            if self.aconnection is None:
                return 0
            try:
                try:
                    while item is not None:
                        batch.record(await atransport.send_envelope(self.aconnection, *item))
                        item = next(batch.envelopes, None) if batch.going() else None
                except _DELIVERY_ERRORS as exc:
                    self._aabort()
                    batch.broken(exc)
                except asyncio.CancelledError:
                    self._aabort()
                    raise
                return batch.result()
            finally:
                if opened:
                    await self.aclose()

    def _bulk_options(self) -> dict[str, Any]:
        """This backend's configuration, for its siblings in a parallel send."""
        return {
            "backend": type(self),
            "host": self.host,
            "port": self.port,
            "username": self.username,
            "password": self.password,
            "use_tls": self.use_tls,
            "use_ssl": self.use_ssl,
            "timeout": self.timeout,
            "ssl_keyfile": self.ssl_keyfile,
            "ssl_certfile": self.ssl_certfile,
            "ssl_cafile": self.ssl_cafile,
            "ssl_context": self._ssl_context,
            "pipelining": self.pipelining,
        }

    async def _asend_parallel(self, email_messages: Sequence[EmailMessage]) -> int:
        from ..bulk import asend_bulk

        result = await asend_bulk(email_messages, self.connections, **self._bulk_options())
        return self._parallel_outcome(result)

    def _parallel_outcome(self, result: BulkResult) -> int:
        if result.failed and not self.fail_silently:
            first = result.failed[0]
            raise first.error or smtplib.SMTPException(first.reason)
        return result.sent


class _Batch:
    """The rules of one ``send_messages`` call, shared by the sync and async paths:
    compose lazily, stop at the first error (unless failing silently), count."""

    def __init__(self, email_messages: Sequence[EmailMessage], fail_silently: bool) -> None:
        self.messages = email_messages
        self.fail_silently = fail_silently
        self.stop: list[BaseException] = []  # the first error; no transaction after it
        self.sent = 0
        self.envelopes = self._compose()

    def _compose(self) -> Iterator[tuple[int, Envelope]]:
        for index, message in enumerate(self.messages):
            if self.stop:
                return
            message.delivery = None
            try:
                envelope = message.envelope()
            except Exception as exc:
                self.stop.append(exc)
                return
            if envelope.recipients:  # a message without recipients is not sent
                yield index, envelope

    def going(self) -> bool:
        return not self.stop

    def record(self, outcome: Outcome) -> None:
        self.messages[outcome.index].delivery = outcome.delivery
        if outcome.error is None:
            self.sent += 1
        elif not self.fail_silently and not self.stop:
            self.stop.append(outcome.error)

    def broken(self, exc: BaseException) -> None:
        if not self.stop:
            self.stop.append(exc)

    def result(self) -> int:
        if self.stop:
            error = self.stop[0]
            if not (self.fail_silently and isinstance(error, _DELIVERY_ERRORS)):
                raise error
        return self.sent
