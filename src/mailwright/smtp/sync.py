"""The blocking driver: the protocol core over a socket (and ``ssl``).

It moves bytes and nothing else; every decision is in the conversations it runs
(``session``, ``transactions``). Each socket operation is bounded by the
configuration's timeout.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import struct
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import Any, NoReturn

from .actions import NEED_DATA, NEED_ENVELOPE, Abort, FetchToken, Outcome, Send, StartTLS, Step
from .config import SMTPConfig
from .driver import READ_SIZE, connect_error, greeting_probe, timeout_error
from .protocol import ClientProtocol
from .session import Conversation, handshake, quit
from .transactions import Item, transactions

__all__ = ["SMTPConnection"]


def _reraise(new: BaseException, original: BaseException) -> NoReturn:
    if new is original:
        raise original
    raise new from original


def _kernel_timeouts(sock: socket.socket, timeout: float | None) -> None:
    """Bound each read and write on a plain socket by the kernel (``SO_RCVTIMEO``,
    ``SO_SNDTIMEO``) instead of Python's socket timeout.

    Why: with a timeout set, Python polls the socket before every ``recv`` and
    ``sendall``, two system calls more per message of a pipelined batch (strace), and
    with many threads two more hand-overs of the GIL. A blocking socket with kernel
    timeouts reads and writes at once, and a read or write that waits longer than the
    timeout fails with ``EAGAIN`` (``BlockingIOError``), reported as a timeout as
    before. A write of a large message is bounded per ``send`` the kernel makes, not
    as a whole: a server that keeps taking bytes is not timed out. TLS sockets (and
    platforms without these options) keep Python's timeout.
    """
    if (
        timeout is None
        or timeout <= 0
        or isinstance(sock, ssl.SSLSocket)
        or sys.platform == "win32"
        or not hasattr(socket, "SO_RCVTIMEO")
    ):
        return
    seconds = int(timeout)
    micro = int((timeout - seconds) * 1_000_000) or (0 if seconds else 1)  # 0 0 = never
    value = struct.pack("@ll", seconds, micro)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, value)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, value)
    except OSError:  # not taken here: Python's timeout stays
        return
    sock.settimeout(None)


class SMTPConnection:
    """One SMTP session on a blocking socket.

    >>> connection = SMTPConnection(config)          # doctest: +SKIP
    >>> connection.connect()                         # TCP, TLS, EHLO, AUTH
    >>> for outcome in connection.send(items): ...   # pipelined when offered
    >>> connection.quit()
    """

    def __init__(
        self,
        config: SMTPConfig,
        *,
        timeout: float | None = None,
        on_step: Callable[[str, str], None] | None = None,
    ) -> None:
        self.config = config
        #: Per operation; the configuration's unless given.
        self.timeout = config.timeout if timeout is None else timeout
        self.on_step = on_step
        self.protocol: ClientProtocol | None = None
        self._sock: socket.socket | None = None
        # Reads go into one buffer (recv() would allocate 64 KiB and shrink it per read).
        self._buffer: memoryview | None = None

    def __repr__(self) -> str:
        state = "open" if self._sock is not None else "closed"
        return f"<SMTPConnection {self.config.address} {self.config.mode} {state}>"

    @property
    def socket(self) -> socket.socket | None:
        return self._sock

    @property
    def is_open(self) -> bool:
        return self._sock is not None and self.protocol is not None and not self.protocol.closed

    # --- life cycle ---

    def connect(self) -> None:
        """Connect and set the session up (TLS, EHLO, STARTTLS, AUTH as configured)."""
        config = self.config
        # A bad CA or certificate file is a configuration error: raise it before the
        # network is touched.
        context = config.tls_context() if config.tls else None
        if self.on_step is not None:
            self.on_step("connect", f"{config.address} ({config.mode})")
        self.protocol = None
        try:
            sock = socket.create_connection((config.host, config.port), self.timeout)
        except TimeoutError:
            raise timeout_error(config, None, self.timeout) from None
        except OSError as exc:
            _reraise(connect_error(config, None, exc), exc)
        try:
            if config.use_ssl:
                assert context is not None
                try:
                    sock = context.wrap_socket(sock, server_hostname=config.host)
                except TimeoutError:  # the TLS handshake: part of connecting, as in aio
                    raise timeout_error(config, None, self.timeout) from None
            self._sock = sock
            self.protocol = ClientProtocol(tls=config.use_ssl)
            probe = greeting_probe(config, self.timeout)
            if probe is not None:
                sock.settimeout(probe)
                try:
                    sock.recv(1, socket.MSG_PEEK)  # the greeting, or the end
                except TimeoutError:
                    raise timeout_error(config, self.protocol, probe) from None
                sock.settimeout(self.timeout)
            self._run(handshake(self.protocol, config))
            assert self._sock is not None  # (TLS after STARTTLS: a new socket)
            _kernel_timeouts(self._sock, self.timeout)
        except BaseException as exc:
            self.abort()
            _reraise(connect_error(config, self.protocol, exc), exc)

    def quit(self) -> None:
        """End the session politely; the socket is closed whatever the server says."""
        try:
            if self.is_open:
                assert self.protocol is not None
                self._run(quit(self.protocol))
        finally:
            self.abort()

    def abort(self) -> None:
        """Close the socket at once, without QUIT."""
        sock, self._sock = self._sock, None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.close()

    # --- sending ---

    def send(self, items: Iterable[Item], *, stop_on_failure: bool = False) -> Iterator[Outcome]:
        """Send every ``(index, envelope)``; yield an ``Outcome`` for each item taken.

        ``items`` is read lazily: the next item is taken while the server works on the
        current one. When ``stop_on_failure`` is set, the first message that reaches
        nobody ends the batch and no later message is delivered. A broken connection
        raises after the messages in flight got their outcomes.
        """
        if self.protocol is None or not self.is_open:
            raise ConnectionError(f"{self.config.address}: the connection is not open")
        conversation = transactions(
            self.protocol, stop_on_failure=stop_on_failure, pipelining=self.config.pipelining
        )
        return self._drive(conversation, iter(items))

    # --- the loop ---

    def _run(self, conversation: Conversation) -> Any:
        outcomes = self._drive(conversation, None)
        try:
            while True:
                next(outcomes)
        except StopIteration as stop:
            return stop.value

    def _drive(
        self, conversation: Conversation, source: Iterator[Item] | None
    ) -> Iterator[Outcome]:
        sock = self._sock
        assert sock is not None and self.protocol is not None
        buffer = self._buffer
        if buffer is None:
            buffer = self._buffer = memoryview(bytearray(READ_SIZE))
        answer: Any = None
        failure: BaseException | None = None
        while True:
            try:
                if failure is not None:
                    error, failure = failure, None
                    action = conversation.throw(error)
                else:
                    action = conversation.send(answer)
            except StopIteration as stop:
                return stop.value  # type: ignore[no-any-return]
            except BaseException:
                self.abort()
                raise
            answer = None
            kind = type(action)
            if kind is Outcome:
                try:
                    yield action  # type: ignore[misc]
                except GeneratorExit:
                    # The caller stopped listening part-way: the session's state is
                    # unknown (a pipelined transaction may be half-way), so drop it.
                    self.abort()
                    conversation.close()
                    raise
                continue
            try:
                if kind is Send:
                    sock.sendall(action.data)  # type: ignore[union-attr]
                    if action.then_envelope:  # type: ignore[union-attr]
                        answer = next(source, None) if source is not None else None
                elif action is NEED_DATA:
                    answer = buffer[: sock.recv_into(buffer)].tobytes()
                elif action is NEED_ENVELOPE:
                    answer = next(source, None) if source is not None else None
                elif kind is Step:
                    if self.on_step is not None:
                        self.on_step(action.name, action.detail)  # type: ignore[union-attr]
                elif kind is StartTLS:
                    sock = self._sock = self.config.tls_context().wrap_socket(
                        sock, server_hostname=self.config.host
                    )
                elif kind is FetchToken:
                    answer = action.fetch()  # type: ignore[union-attr]
                elif kind is Abort:
                    self.abort()
            except (TimeoutError, BlockingIOError):  # (BlockingIOError: _kernel_timeouts)
                failure = timeout_error(self.config, self.protocol, self.timeout)
            except OSError as exc:
                failure = exc
