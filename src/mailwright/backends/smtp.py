"""SMTP backend: a thin Django-compatible front on mailwright's SMTP engine
(``mailwright.smtp``): TLS verified by default, pipelining, per-recipient results."""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import os
import smtplib
import ssl
import threading
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from ..exceptions import DKIMSigningError, ImproperlyConfigured
from ..message.dkim import signer as dkim_signer
from ..message.message import batch_settings
from ..smtp import NotAttemptedError, Outcome, SMTPConfig, SMTPConnection
from .base import BaseEmailBackend

if TYPE_CHECKING:
    import asyncio

    from ..bulk import BulkResult
    from ..message import EmailMessage, Envelope
    from ..message.dkim import DKIMSigner
    from ..smtp.aio import AsyncSMTPConnection

__all__ = ["EmailBackend"]

# What fail_silently swallows: the server said no, or the network failed.
# (smtplib.SMTPException is itself an OSError.)
_DELIVERY_ERRORS = (smtplib.SMTPException, OSError)


def _config_property(name: str, doc: str) -> property:
    def get(self: EmailBackend) -> Any:
        return getattr(self.config, name)

    def set_(self: EmailBackend, value: Any) -> None:
        # The configuration is frozen and shared; a change makes a new one.
        self.config = dataclasses.replace(self.config, **{name: value})

    return property(get, set_, doc=doc)


class EmailBackend(BaseEmailBackend):
    """Sends over SMTP. Every ``None`` argument falls back to its setting.

    ``ssl_cafile`` adds a CA bundle (EMAIL_SSL_CAFILE) to the system ones; ``ssl_context``
    replaces mailwright's context entirely (for unusual set-ups). ``pipelining=False``
    forces the classic one-command-at-a-time exchange. ``oauth2_token`` (EMAIL_OAUTH2_TOKEN),
    a callable or the dotted path of one returning an access token, logs ``username`` in
    with OAuth2 (XOAUTH2, or OAUTHBEARER where offered). ``connections=N`` sends a batch
    over N parallel connections (see ``mailwright.send_bulk``). ``dkim_domain``,
    ``dkim_selector``, ``dkim_private_key`` and ``dkim_headers`` (EMAIL_DKIM_*) sign
    every message it composes. The configuration is checked once, here, and kept in
    ``config`` (an ``SMTPConfig``) and ``dkim``.
    """

    host = _config_property("host", "the server's host name")
    port = _config_property("port", "the server's port")
    username = _config_property("username", "the AUTH user name ('' for none)")
    password = _config_property("password", "the AUTH password")
    use_tls = _config_property("use_tls", "STARTTLS")
    use_ssl = _config_property("use_ssl", "implicit TLS")
    timeout = _config_property("timeout", "seconds per network operation")
    ssl_keyfile = _config_property("ssl_keyfile", "client certificate key")
    ssl_certfile = _config_property("ssl_certfile", "client certificate")
    ssl_cafile = _config_property("ssl_cafile", "extra CA bundle")
    pipelining = _config_property("pipelining", "use PIPELINING when offered")
    oauth2_token = _config_property("oauth2_token", "OAuth2 access token provider")

    @property
    def engine_bulk(self) -> bool:
        """True when ``send_bulk`` may drive the SMTP engine directly with ``config``
        instead of calling ``send_messages`` (not for a subclass that changes how it
        sends)."""
        return type(self).send_messages is EmailBackend.send_messages

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
        oauth2_token: Any = None,
        dkim_domain: str | None = None,
        dkim_selector: str | None = None,
        dkim_private_key: str | os.PathLike[str] | None = None,
        dkim_headers: Sequence[str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(fail_silently=fail_silently, **kwargs)
        self.config = SMTPConfig.from_settings(
            host,
            port,
            username,
            password,
            use_tls,
            use_ssl,
            timeout,
            ssl_keyfile,
            ssl_certfile,
            ssl_cafile,
            ssl_context=ssl_context,
            pipelining=pipelining,
            oauth2_token=oauth2_token,
        )
        if isinstance(connections, bool) or not isinstance(connections, int) or connections < 1:
            raise ImproperlyConfigured(
                f"connections= must be a positive integer, got {connections!r}"
            )
        self.connections = connections
        #: The DKIM signer (``mailwright.message.dkim``), None when not signing.
        self.dkim = dkim_signer(dkim_domain, dkim_selector, dkim_private_key, dkim_headers)
        self.connection: SMTPConnection | None = None
        self.aconnection: AsyncSMTPConnection | None = None
        self._lock = threading.RLock()
        self._async_lock: asyncio.Lock | None = None

    def __repr__(self) -> str:
        # Never the password.
        user = f" user={self.username!r}" if self.username else ""
        return f"<smtp.EmailBackend {self.config.address} {self.config.mode}{user}>"

    @property
    def ssl_context(self) -> ssl.SSLContext:
        """The TLS context: verifies the server's certificate and host name."""
        return self.config.tls_context()

    # --- connection ---

    def open(self) -> bool | None:
        """Connect, STARTTLS and log in as configured. True if a connection was opened
        now, False if one was already open, None if it failed silently."""
        with self._lock:
            if self.connection is not None:
                return False
            connection = SMTPConnection(self.config)
            try:
                connection.connect()
            except _DELIVERY_ERRORS:
                if not self.fail_silently:
                    raise
                return None
            self.connection = connection
            return True

    def close(self) -> None:
        """QUIT and close. A connection that is already broken is just dropped; a
        server that refuses QUIT raises unless failing silently (as Django does)."""
        with self._lock:
            connection, self.connection = self.connection, None
            if connection is not None:
                with _quitting(self.fail_silently):
                    connection.quit()

    # --- sending ---

    def send_messages(self, email_messages: Iterable[EmailMessage]) -> int:
        """Send messages over one connection; return how many were sent (accepted for
        at least one recipient). Each message's ``delivery`` says what happened to it.

        Any iterable works; messages are composed one at a time, just before they are
        sent. The first is composed before connecting, so a bad header or address in it
        fails without touching the network. Unless failing silently, the first message
        that reaches nobody stops the batch: no later message is delivered.
        """
        if self.connections > 1:
            email_messages = list(email_messages)
            if len(email_messages) > 1:
                return self._parallel_outcome(self._send_parallel(email_messages))
        with self._lock, batch_settings():
            batch = _Batch(email_messages, self.fail_silently, self.dkim)
            first = batch.first()
            if first is None:
                return batch.result()
            opened = self.open()
            connection = self.connection
            if connection is None or opened is None:  # failed (silently), as Django checks
                batch.not_sent("could not connect")
                return batch.result()
            try:
                try:
                    for outcome in connection.send(
                        itertools.chain([first], batch),
                        stop_on_failure=not self.fail_silently,
                    ):
                        batch.record(outcome)
                except _DELIVERY_ERRORS as exc:
                    batch.broken(exc)
                return batch.result()
            finally:
                if not connection.is_open:  # broken, aborted or closed by the server
                    self.connection = None
                    connection.abort()
                elif opened:
                    self.close()

    def _send_parallel(self, email_messages: list[EmailMessage]) -> BulkResult:
        from ..bulk import send_bulk

        return send_bulk(email_messages, self.connections, config=self.config, dkim=self.dkim)

    def _parallel_outcome(self, result: BulkResult) -> int:
        if result.failed and not self.fail_silently:
            first = result.failed[0]
            raise first.error or smtplib.SMTPException(first.reason)
        return result.sent

    # --- asyncio: the same engine, its asyncio driver ---

    async def aopen(self) -> bool | None:
        """``open()`` for asyncio code: the same TLS, AUTH and timeout rules."""
        if self.aconnection is not None:
            return False
        from ..smtp.aio import AsyncSMTPConnection  # asyncio loads on first async use

        connection = AsyncSMTPConnection(self.config)
        try:
            await connection.connect()
        except _DELIVERY_ERRORS:
            if not self.fail_silently:
                raise
            return None
        self.aconnection = connection
        return True

    async def aclose(self) -> None:
        connection, self.aconnection = self.aconnection, None
        if connection is not None:
            with _quitting(self.fail_silently):
                await connection.quit()

    async def asend_messages(self, email_messages: Iterable[EmailMessage]) -> int:
        """``send_messages()`` for asyncio code. Cancelling the task drops the
        connection at once: the server never gets the end of a half-sent message."""
        if self.connections > 1:
            email_messages = list(email_messages)
            if len(email_messages) > 1:
                from ..bulk import asend_bulk

                result = await asend_bulk(
                    email_messages, self.connections, config=self.config, dkim=self.dkim
                )
                return self._parallel_outcome(result)
        if self._async_lock is None:
            import asyncio

            self._async_lock = asyncio.Lock()
        async with self._async_lock:
            with batch_settings():
                return await self._asend_batch(email_messages)

    async def _asend_batch(self, email_messages: Iterable[EmailMessage]) -> int:
        batch = _Batch(email_messages, self.fail_silently, self.dkim)
        first = batch.first()
        if first is None:
            return batch.result()
        opened = await self.aopen()
        connection = self.aconnection
        if connection is None or opened is None:
            batch.not_sent("could not connect")
            return batch.result()
        items = itertools.chain([first], batch)
        try:
            try:
                await connection.run(
                    lambda: next(items, None),
                    batch.record,
                    stop_on_failure=not self.fail_silently,
                )
            except _DELIVERY_ERRORS as exc:
                batch.broken(exc)
            return batch.result()
        finally:
            if not connection.is_open:  # broken, aborted, cancelled or closed
                self.aconnection = None
                connection.abort()
            elif opened:
                await self.aclose()


@contextlib.contextmanager
def _quitting(fail_silently: bool) -> Iterator[None]:
    """What ``close()`` and ``aclose()`` make of a failed QUIT: a connection already
    gone or broken is just dropped; a server refusing QUIT raises unless failing
    silently (as Django does)."""
    try:
        yield
    except smtplib.SMTPServerDisconnected:
        pass  # already gone
    except smtplib.SMTPException:
        if not fail_silently:
            raise  # the server refused QUIT
    except OSError:
        pass  # the network failed (TLS, reset, timeout): the socket is closed


class _Batch:
    """The rules of one ``send_messages`` call, shared by the sync and async paths:
    compose lazily, stop at the first error (unless failing silently), count, and give
    every message a ``delivery``."""

    def __init__(
        self,
        email_messages: Iterable[EmailMessage],
        fail_silently: bool,
        dkim: DKIMSigner | None = None,
    ) -> None:
        self.fail_silently = fail_silently
        self.dkim = dkim
        self.messages: list[EmailMessage] = []
        self._source: Iterator[EmailMessage] = iter(email_messages)
        self._sequence = email_messages if isinstance(email_messages, list | tuple) else None
        self.stop: BaseException | None = None  # the first error; no transaction after it
        self.sent = 0

    def __iter__(self) -> Iterator[tuple[int, Envelope]]:
        return self

    def __next__(self) -> tuple[int, Envelope]:
        """The next message to send, composed now. (The batch is its own iterator:
        a generator around a method would be one more step per message.)"""
        while self.stop is None:
            message = next(self._source, None)
            if message is None:
                raise StopIteration
            index = len(self.messages)
            self.messages.append(message)
            message.delivery = None
            try:
                envelope = message.envelope(self.dkim) if self.dkim else message.envelope()
            except DKIMSigningError as exc:
                # Like a message the server refused: it alone is not sent, and unless
                # failing silently it stops the batch.
                message.delivery = _failed(exc)
                if not self.fail_silently:
                    self.stop = exc
                    raise StopIteration from None
                continue
            except Exception as exc:
                self.stop = exc
                message.delivery = _failed(exc)  # its own error, not "not attempted"
                raise StopIteration from None
            if envelope.recipients:  # a message without recipients is not sent
                return index, envelope
            message.delivery = _not_sent("the message has no recipients")
        raise StopIteration

    def first(self) -> tuple[int, Envelope] | None:
        return next(self, None)

    def record(self, outcome: Outcome) -> None:
        self.messages[outcome.index].delivery = outcome.delivery
        if outcome.error is None:
            self.sent += 1
        elif (
            not self.fail_silently
            and self.stop is None
            and not isinstance(outcome.error, NotAttemptedError)
        ):
            self.stop = outcome.error

    def broken(self, exc: BaseException) -> None:
        if self.stop is None:
            self.stop = exc

    def not_sent(self, reason: str) -> None:
        for message in self.messages:
            if message.delivery is None:
                message.delivery = _not_sent(reason)

    def result(self) -> int:
        # Messages of a list or tuple that were never reached are marked too.
        reason = f"not sent: the batch stopped ({self.stop})" if self.stop else "not sent"
        self.not_sent(reason)
        if self._sequence is not None:
            for message in list(self._sequence)[len(self.messages) :]:
                message.delivery = _not_sent(reason)
        if self.stop is not None:
            error = self.stop
            if not (self.fail_silently and isinstance(error, _DELIVERY_ERRORS)):
                raise error
        return self.sent


def _not_sent(reason: str) -> Any:
    return _failed(NotAttemptedError(reason))


def _failed(error: BaseException) -> Any:
    from ..message import Delivery

    return Delivery(accepted=[], refused={}, error=error)
