"""The asyncio driver: the protocol core over asyncio streams (``start_tls`` for
STARTTLS).

The twin of ``sync``: the same conversations, the same decisions, only the I/O
differs. Every operation is bounded by the configuration's timeout. Cancelling the
task that drives it drops the connection at once (``transport.abort()``): bytes not
yet sent are discarded, so a server never receives the end of a half-written message.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

from .actions import NEED_DATA, NEED_ENVELOPE, Abort, Outcome, Send, StartTLS, Step
from .config import SMTPConfig
from .driver import timeout_error
from .protocol import ClientProtocol
from .session import Conversation, handshake, quit
from .transactions import Item, transactions

__all__ = ["AsyncSMTPConnection", "ItemSource"]

_READ_SIZE = 65536

#: Where the asyncio driver takes the next item from: awaited, None when done.
ItemSource = Callable[[], "asyncio.Future[Item | None] | Any"]


class AsyncSMTPConnection:
    """One SMTP session on asyncio streams (the twin of ``SMTPConnection``)."""

    def __init__(
        self,
        config: SMTPConfig,
        *,
        timeout: float | None = None,
        on_step: Callable[[str, str], None] | None = None,
    ) -> None:
        self.config = config
        self.timeout = config.timeout if timeout is None else timeout
        self.on_step = on_step
        self.protocol: ClientProtocol | None = None
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    def __repr__(self) -> str:
        state = "open" if self._writer is not None else "closed"
        return f"<AsyncSMTPConnection {self.config.address} {self.config.mode} {state}>"

    @property
    def writer(self) -> asyncio.StreamWriter | None:
        return self._writer

    @property
    def is_open(self) -> bool:
        return self._writer is not None and self.protocol is not None and not self.protocol.closed

    # --- life cycle ---

    async def connect(self) -> None:
        config = self.config
        context = config.tls_context() if config.tls else None  # a bad file fails here
        if self.on_step is not None:
            self.on_step("connect", f"{config.address} ({config.mode})")
        try:
            async with asyncio.timeout(self.timeout):
                self._reader, self._writer = await asyncio.open_connection(
                    config.host,
                    config.port,
                    ssl=context if config.use_ssl else None,
                    server_hostname=config.host if config.use_ssl else None,
                )
        except TimeoutError:
            raise timeout_error(config, None, self.timeout) from None
        try:
            self.protocol = ClientProtocol(tls=config.use_ssl)
            await self._run(handshake(self.protocol, config))
        except BaseException:
            self.abort()
            raise

    async def quit(self) -> None:
        try:
            if self.is_open:
                assert self.protocol is not None
                await self._run(quit(self.protocol))
        finally:
            self.abort()

    def abort(self) -> None:
        """Drop the connection at once; unsent bytes are discarded."""
        writer, self._writer = self._writer, None
        self._reader = None
        if writer is not None:
            writer.transport.abort()

    # --- sending ---

    def send(self, source: ItemSource, *, stop_on_failure: bool = False) -> AsyncIterator[Outcome]:
        """Send the items ``await source()`` hands out until it returns None; yield an
        ``Outcome`` for each item taken (see ``SMTPConnection.send``)."""
        if self.protocol is None or not self.is_open:
            raise ConnectionError(f"{self.config.address}: the connection is not open")
        conversation = transactions(
            self.protocol, stop_on_failure=stop_on_failure, pipelining=self.config.pipelining
        )
        return self._drive(conversation, source)

    # --- the loop ---

    async def _run(self, conversation: Conversation) -> Any:
        async for _ in self._drive(conversation, None):
            pass
        return self._result

    async def _drive(
        self, conversation: Conversation, source: ItemSource | None
    ) -> AsyncIterator[Outcome]:
        reader, writer = self._reader, self._writer
        assert reader is not None and writer is not None and self.protocol is not None
        timeout = self.timeout
        answer: Any = None
        failure: BaseException | None = None
        self._result: Any = None
        while True:
            try:
                if failure is not None:
                    error, failure = failure, None
                    action = conversation.throw(error)
                else:
                    action = conversation.send(answer)
            except StopIteration as stop:
                self._result = stop.value
                return
            except BaseException:
                self.abort()
                raise
            answer = None
            kind = type(action)
            if kind is Outcome:
                try:
                    yield action  # type: ignore[misc]
                except GeneratorExit:
                    self.abort()
                    conversation.close()
                    raise
                continue
            try:
                if kind is Send:
                    writer.write(action.data)  # type: ignore[union-attr]
                    if writer.transport.get_write_buffer_size() > 0:
                        async with asyncio.timeout(timeout):
                            await writer.drain()
                elif action is NEED_DATA:
                    async with asyncio.timeout(timeout):
                        answer = await reader.read(_READ_SIZE)
                elif action is NEED_ENVELOPE:
                    answer = await source() if source is not None else None
                elif kind is Step:
                    if self.on_step is not None:
                        self.on_step(action.name, action.detail)  # type: ignore[union-attr]
                elif kind is StartTLS:
                    async with asyncio.timeout(timeout):
                        await writer.start_tls(
                            self.config.tls_context(), server_hostname=self.config.host
                        )
                elif kind is Abort:
                    self.abort()
            except TimeoutError:
                failure = timeout_error(self.config, self.protocol, timeout)
            except OSError as exc:
                failure = exc
            except BaseException:  # cancelled: drop the connection, unsent bytes discarded
                self.abort()
                with contextlib.suppress(Exception):
                    conversation.close()
                raise
