"""The asyncio driver: the protocol core run from the event loop's callbacks.

The twin of ``sync``: the same conversations, the same decisions, only the I/O
differs. The conversation is advanced directly from ``data_received``: when the
server's replies arrive, the outcomes are given and the next message's commands and
content are written in the same callback, with no task woken, no future made and no
coroutine called per message (with several connections on the loop, the writes of one
turn go out together at its end: ``_Writes``). A coroutine awaits only the end of a
whole conversation (a handshake, a batch, QUIT). Why: a pipelined batch waits once
per message, and waking a task through a future per wait cost as much as the rest
of the engine's work (callgrind).

Every wait on the network (a reply, room in the send buffer, the TLS handshake) is
bounded by the configuration's timeout, with one lazily re-armed timer per
connection. Cancelling the task that awaits a conversation drops the connection at
once (``transport.abort()``): bytes not yet sent are discarded, so a server never
receives the end of a half-written message.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, NoReturn

from .actions import NEED_DATA, NEED_ENVELOPE, Abort, FetchToken, Outcome, Send, StartTLS, Step
from .config import SMTPConfig
from .driver import READ_SIZE, connect_error, greeting_probe, timeout_error
from .protocol import ClientProtocol
from .session import Conversation, handshake, quit
from .transactions import Item, transactions

__all__ = ["AsyncSMTPConnection", "ItemSource", "NextItem"]

#: The async form of a source (``send``): awaited; None when done.
ItemSource = Callable[[], Awaitable[Item | None]]
#: The callback form (``run``): the next item, None when done, or a future that will
#: hold one (the caller waits for a job, a pause, a rate limit).
NextItem = Callable[[], "Item | asyncio.Future[Item] | asyncio.Future[Item | None] | None"]


def _reraise(new: BaseException, original: BaseException) -> NoReturn:
    if new is original:
        raise original
    raise new from original


class _Wait(enum.Enum):
    NOTHING = "running or idle"
    DATA = "bytes from the server"
    WRITE = "room in the send buffer"
    ITEM = "the next item"
    TLS = "the TLS handshake"
    TOKEN = "an OAuth2 access token"


class _Writes:
    """What the connections on one event loop write, gathered until the loop has run
    every callback that was ready (``call_soon``). When several connections' replies
    arrive in one turn, each composes its next message and the bytes all go out at
    the end of the turn: the server is woken once a turn instead of once a message.
    (A write to a reader that sleeps wakes it, and the writer's kernel time pays for
    it: ``asend_bulk(connections=8)`` spent 13 to 18 µs of system time a message
    against 10 to 12 gathered, to smtp-sink.) With one connection on the loop there
    is nothing to gather: it writes at once, without a turn more. Bytes of a
    connection dropped before the end of the turn are discarded, as a dropped
    transport discards its buffer."""

    __slots__ = ("__weakref__", "links", "pending")

    def __init__(self) -> None:
        self.links = 0  # connections open on the loop
        self.pending: list[tuple[asyncio.Transport, bytes]] = []

    def write(
        self, loop: asyncio.AbstractEventLoop, transport: asyncio.Transport, data: bytes
    ) -> None:
        pending = self.pending
        if pending:
            pending.append((transport, data))  # (after what waits: the order holds)
        elif self.links > 1:
            pending.append((transport, data))
            loop.call_soon(self._flush)
        else:
            transport.write(data)

    def _flush(self) -> None:
        pending, self.pending = self.pending, []
        for transport, data in pending:
            if not transport.is_closing():
                transport.write(data)


#: One ``_Writes`` per event loop (it holds no reference to the loop).
_WRITES: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Writes] = weakref.WeakKeyDictionary()


def _writes(loop: asyncio.AbstractEventLoop) -> _Writes:
    writes = _WRITES.get(loop)
    if writes is None:
        writes = _WRITES[loop] = _Writes()
    return writes


class _Link(asyncio.BufferedProtocol):
    """One connection and the conversation running on it.

    A buffered protocol: the transport reads into one buffer per connection. With a
    plain ``asyncio.Protocol`` the selector transport reads with ``recv(256 KiB)``,
    and an allocation that size is an ``mmap`` (shrunk by ``mremap``, freed by
    ``munmap``, its first page faulted in): three system calls more per read, that is
    per message of a pipelined batch (strace; they cost more than the read itself).
    """

    def __init__(self, owner: AsyncSMTPConnection, loop: asyncio.AbstractEventLoop) -> None:
        self.owner = owner
        self.loop = loop
        self.timeout = owner.timeout
        self.transport: asyncio.Transport | None = None
        self.chunks: list[bytes] = []
        self.buffer = memoryview(bytearray(READ_SIZE))
        self.eof = False
        self.lost: BaseException | None = None
        self.paused = False
        self.waiting = _Wait.NOTHING
        self.conversation: Conversation | None = None
        self.source: NextItem | None = None
        self.on_outcome: Callable[[Outcome], None] | None = None
        self.done: asyncio.Future[Any] | None = None
        self.item: asyncio.Future[Any] | None = None
        self.envelope_due = False  # a Send asked for the next item once it is written
        self.deadline = 0.0
        self.timer: asyncio.TimerHandle | None = None
        self.token_task: asyncio.Task[None] | None = None
        self.first_bytes: asyncio.Future[None] | None = None  # set while probing port 465
        self.writes = _writes(loop)

    def _arrived(self) -> None:
        if self.first_bytes is not None and not self.first_bytes.done():
            self.first_bytes.set_result(None)

    # --- asyncio.BufferedProtocol ---

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.writes.links += 1

    def get_buffer(self, sizehint: int) -> memoryview:
        return self.buffer

    def buffer_updated(self, nbytes: int) -> None:
        self.data_received(self.buffer[:nbytes].tobytes())

    def data_received(self, data: bytes) -> None:
        if self.first_bytes is not None:
            self._arrived()
        if self.waiting is _Wait.DATA:
            self.waiting = _Wait.NOTHING
            self.step(data)
        else:
            self.chunks.append(data)

    def eof_received(self) -> bool:
        self.eof = True
        self._arrived()
        if self.waiting is _Wait.DATA:
            self.waiting = _Wait.NOTHING
            self.step(b"")
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.writes.links -= 1
        self.eof = True
        self.lost = exc
        self._arrived()
        self.paused = False
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.waiting in (_Wait.DATA, _Wait.WRITE):
            self.waiting = _Wait.NOTHING
            if exc is not None:
                self.step(None, exc)
            else:
                self.step(b"")

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        if self.waiting is _Wait.WRITE:
            self.waiting = _Wait.NOTHING
            self.step(self.next_item() if self.envelope_due else None)

    # --- running a conversation ---

    def start(
        self,
        conversation: Conversation,
        source: NextItem | None,
        on_outcome: Callable[[Outcome], None] | None,
    ) -> asyncio.Future[Any]:
        if self.conversation is not None:
            raise RuntimeError("a conversation is already running on this connection")
        self.conversation = conversation
        self.source = source
        self.on_outcome = on_outcome
        done = self.done = self.loop.create_future()
        done.add_done_callback(self._done_callback)
        self.step(None)
        return done

    def _done_callback(self, done: asyncio.Future[Any]) -> None:
        if done.cancelled():  # the awaiting task was cancelled: drop everything now
            self.owner.abort()
            self._end()

    def _end(self) -> None:
        conversation, self.conversation = self.conversation, None
        item, self.item = self.item, None
        self.waiting = _Wait.NOTHING
        if item is not None and not item.done():
            item.cancel()
        if conversation is not None:
            with contextlib.suppress(Exception):
                conversation.close()

    def _finish(self, result: Any = None, error: BaseException | None = None) -> None:
        done = self.done
        self.conversation = None
        self.waiting = _Wait.NOTHING
        if done is not None and not done.done():
            if error is not None:
                done.set_exception(error)
            else:
                done.set_result(result)

    def _arm(self, waiting: _Wait) -> None:
        """Wait for the network, bounded by the timeout (one timer, re-armed lazily)."""
        self.waiting = waiting
        if self.timeout is not None:
            self.deadline = self.loop.time() + self.timeout
            if self.timer is None:
                self.timer = self.loop.call_at(self.deadline, self._check_deadline)

    def _check_deadline(self) -> None:
        self.timer = None
        if self.waiting not in (_Wait.DATA, _Wait.WRITE):
            return
        if self.loop.time() < self.deadline:
            self.timer = self.loop.call_at(self.deadline, self._check_deadline)
            return
        self.waiting = _Wait.NOTHING
        self.step(None, timeout_error(self.owner.config, self.owner.protocol, self.timeout))

    def next_item(self) -> Any:
        """The source's next item, or ``_Wait.ITEM`` when it handed a future."""
        self.envelope_due = False
        source = self.source
        if source is None:
            return None
        item = source()
        if isinstance(item, asyncio.Future):
            if item.done() and not item.cancelled() and item.exception() is None:
                return item.result()
            self.item = item
            self.waiting = _Wait.ITEM
            item.add_done_callback(self._item_ready)
            return _Wait.ITEM
        return item

    def _item_ready(self, item: asyncio.Future[Any]) -> None:
        if item is not self.item or self.waiting is not _Wait.ITEM:
            return
        self.item = None
        self.waiting = _Wait.NOTHING
        if item.cancelled():
            self.step(None, asyncio.CancelledError())
        elif item.exception() is not None:
            self.step(None, item.exception())
        else:
            self.step(item.result())

    def step(self, answer: Any, error: BaseException | None = None) -> None:
        """Advance the conversation until it has to wait."""
        conversation = self.conversation
        if conversation is None:
            return
        while True:
            try:
                if error is not None:
                    failure, error = error, None
                    action = conversation.throw(failure)
                else:
                    action = conversation.send(answer)
            except StopIteration as stop:
                self._finish(stop.value)
                return
            except BaseException as exc:
                self.owner.abort()
                self._finish(error=exc)
                return
            answer = None
            kind = type(action)
            if kind is Outcome:
                try:
                    if self.on_outcome is not None:
                        self.on_outcome(action)  # type: ignore[arg-type]
                except BaseException as exc:  # the caller's bookkeeping failed: stop
                    self.owner.abort()
                    self._end()
                    self._finish(error=exc)
                    return
            elif kind is Send:
                transport = self.transport
                if self.lost is not None or transport is None or transport.is_closing():
                    error = self.lost or ConnectionResetError("the connection is closed")
                    continue
                self.writes.write(self.loop, transport, action[0])  # type: ignore[index]
                if self.paused:
                    self.envelope_due = bool(action[1])  # type: ignore[index]
                    self._arm(_Wait.WRITE)
                    return
                if action[1]:  # type: ignore[index]
                    answer = self.next_item()
                    if answer is _Wait.ITEM:
                        return
            elif action is NEED_DATA:
                if self.chunks:
                    chunks = self.chunks
                    answer = chunks[0] if len(chunks) == 1 else b"".join(chunks)
                    chunks.clear()
                elif self.eof:
                    if self.lost is not None:
                        error = self.lost
                    else:
                        answer = b""
                else:
                    self._arm(_Wait.DATA)
                    return
            elif action is NEED_ENVELOPE:
                answer = self.next_item()
                if answer is _Wait.ITEM:
                    return
            elif kind is Step:
                if self.owner.on_step is not None:
                    self.owner.on_step(action.name, action.detail)  # type: ignore[union-attr]
            elif kind is StartTLS:
                self.waiting = _Wait.TLS
                self.loop.create_task(self._start_tls())
                return
            elif kind is FetchToken:
                # The provider may block (an HTTP request): a thread, not the loop.
                self.waiting = _Wait.TOKEN
                self.token_task = self.loop.create_task(self._fetch_token(action))  # type: ignore[arg-type]
                return
            elif kind is Abort:
                self.owner.abort()

    async def _fetch_token(self, action: FetchToken) -> None:
        token: str | None = None
        error: BaseException | None = None
        try:
            token = await asyncio.to_thread(action.fetch)
        except BaseException as exc:  # the conversation decides what it means
            error = exc
        self.token_task = None
        if self.waiting is _Wait.TOKEN:
            self.waiting = _Wait.NOTHING
            self.step(token, error)

    async def _start_tls(self) -> None:
        transport = self.transport
        assert transport is not None
        self.chunks.clear()  # nothing received before the handshake counts
        config = self.owner.config
        try:
            async with asyncio.timeout(self.timeout):
                tls = await self.loop.start_tls(
                    transport, self, config.tls_context(), server_hostname=config.host
                )
        except TimeoutError:
            error: BaseException | None = timeout_error(config, self.owner.protocol, self.timeout)
        except (OSError, asyncio.CancelledError) as exc:
            error = exc
        else:
            assert isinstance(tls, asyncio.Transport)
            self.transport = tls
            error = None
        if self.waiting is _Wait.TLS:
            self.waiting = _Wait.NOTHING
            self.step(None, error)


class AsyncSMTPConnection:
    """One SMTP session on asyncio (the twin of ``SMTPConnection``)."""

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
        self._link: _Link | None = None

    def __repr__(self) -> str:
        state = "open" if self._link is not None else "closed"
        return f"<AsyncSMTPConnection {self.config.address} {self.config.mode} {state}>"

    @property
    def transport(self) -> asyncio.Transport | None:
        return self._link.transport if self._link is not None else None

    @property
    def is_open(self) -> bool:
        return self._link is not None and self.protocol is not None and not self.protocol.closed

    # --- life cycle ---

    async def connect(self) -> None:
        config = self.config
        context = config.tls_context() if config.tls else None  # a bad file fails here
        if self.on_step is not None:
            self.on_step("connect", f"{config.address} ({config.mode})")
        loop = asyncio.get_running_loop()
        link = _Link(self, loop)
        try:
            async with asyncio.timeout(self.timeout):
                await loop.create_connection(
                    lambda: link,
                    config.host,
                    config.port,
                    ssl=context if config.use_ssl else None,
                    server_hostname=config.host if config.use_ssl else None,
                )
        except TimeoutError:
            if link.transport is not None:
                link.transport.abort()
            raise timeout_error(config, None, self.timeout) from None
        except OSError as exc:
            _reraise(connect_error(config, None, exc), exc)
        self._link = link
        self.protocol = ClientProtocol(tls=config.use_ssl)
        try:
            probe = greeting_probe(config, self.timeout)
            if probe is not None and not (link.chunks or link.eof):
                link.first_bytes = loop.create_future()
                try:
                    async with asyncio.timeout(probe):
                        await link.first_bytes
                except TimeoutError:
                    raise timeout_error(config, self.protocol, probe) from None
                finally:
                    link.first_bytes = None
            await self._run(handshake(self.protocol, config))
        except BaseException as exc:
            self.abort()
            _reraise(connect_error(config, self.protocol, exc), exc)

    async def quit(self) -> None:
        try:
            if self.is_open:
                assert self.protocol is not None
                await self._run(quit(self.protocol))
        finally:
            self.abort()

    def abort(self) -> None:
        """Drop the connection at once; unsent bytes are discarded."""
        link, self._link = self._link, None
        if link is not None and link.transport is not None:
            link.transport.abort()

    # --- sending ---

    async def run(
        self,
        source: NextItem,
        on_outcome: Callable[[Outcome], None],
        *,
        stop_on_failure: bool = False,
    ) -> None:
        """Send the items ``source()`` hands out until it returns None, calling
        ``on_outcome`` for each item taken, from the event loop's callbacks (see
        ``SMTPConnection.send``). ``source`` may hand a future instead of an item to
        make the connection wait for one. Returns when the batch is over; a broken
        connection raises after the messages in flight got their outcomes."""
        conversation = self._transactions(stop_on_failure)
        await self._run(conversation, source, on_outcome)

    async def send(
        self, source: ItemSource, *, stop_on_failure: bool = False
    ) -> AsyncIterator[Outcome]:
        """``run`` as an async iterator of outcomes, taking items from an async source."""
        conversation = self._transactions(stop_on_failure)
        outcomes: asyncio.Queue[Outcome | None] = asyncio.Queue()

        def next_item() -> asyncio.Future[Item | None]:
            return asyncio.ensure_future(source())

        task = asyncio.ensure_future(self._run(conversation, next_item, outcomes.put_nowait))
        task.add_done_callback(lambda _: outcomes.put_nowait(None))
        try:
            while (outcome := await outcomes.get()) is not None:
                yield outcome
            await task
        finally:
            if not task.done():
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task

    def _transactions(self, stop_on_failure: bool) -> Conversation:
        if self.protocol is None or not self.is_open:
            raise ConnectionError(f"{self.config.address}: the connection is not open")
        return transactions(
            self.protocol, stop_on_failure=stop_on_failure, pipelining=self.config.pipelining
        )

    async def _run(
        self,
        conversation: Conversation,
        source: NextItem | None = None,
        on_outcome: Callable[[Outcome], None] | None = None,
    ) -> Any:
        link = self._link
        if link is None:
            conversation.close()
            raise ConnectionError(f"{self.config.address}: the connection is not open")
        return await link.start(conversation, source, on_outcome)
