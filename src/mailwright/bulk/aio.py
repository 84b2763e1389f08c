"""The asyncio driver of a bulk send: one task per connection on the asyncio SMTP
driver (each pipelined), all drawing from one ``JobQueue`` (a task with nothing due
waits until a job is due or the books change; no polling). Cancelling the send drops
every connection at once.

``send_bulk`` over SMTP runs the same tasks on an event loop of its own
(``run_blocking``): its connections need no thread each. With eight threads every
``sendall`` and ``recv_into`` hands the GIL to another thread (strace: 12 ``futex``
calls a message), and a message cost 86 and 91 µs of CPU against 54 and 57 µs for the
same eight connections as tasks (``bench/engine.py``, two runs each way, the same half
hour)."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import smtplib
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from ..message import Envelope
from ..smtp import AsyncSMTPConnection, Outcome, SMTPConfig
from .compose import compose
from .plan import CONNECT_ATTEMPTS, Plan
from .queue import NO_CHANGE, Job, JobQueue, Pacing, Verdict
from .rate import RateLimiter
from .results import BulkResult

if TYPE_CHECKING:
    from ..message.dkim import DKIMSigner

__all__ = ["run_blocking", "run_tasks"]


class _Work:
    """The queue, shared by the tasks. Everything but waiting is synchronous (one event
    loop, no await between looking and taking); a task with nothing due waits on an
    event that any change to the books sets."""

    def __init__(self, queue: JobQueue, dkim: DKIMSigner | None = None) -> None:
        self.queue = queue
        self.dkim = dkim  # signs what the engine sends (a backend signs for itself)
        self.changed = asyncio.Event()
        self.idle = 0  # tasks waiting for a change

    async def get(self) -> Job | None:
        while not self.queue.finished:
            now = time.monotonic()
            job = self.queue.take(now)
            if job is not None:
                return job
            if self.queue.finished:  # taking found the end of the input
                break
            due = self.queue.next_due()
            self.changed.clear()
            self.idle += 1
            try:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(None if due is None else max(0.0, due - now)):
                        await self.changed.wait()
            finally:
                self.idle -= 1
        self.notify()  # the input may have just run out here: the others must hear it too
        return None

    def notify(self) -> None:
        if self.idle:  # only a waiting task needs to hear that the books changed
            self.changed.set()

    def prepare(self, job: Job) -> Envelope | None:
        envelope, error, reason = compose(job, self.dkim)
        if envelope is None:
            self.queue.cannot_send(job, error, reason)
            self.notify()
        return envelope

    def settle(self, job: Job, outcome: Outcome) -> Verdict:
        verdict = self.queue.settle(job, outcome, time.monotonic())
        if self.idle:  # notify(), inline: once per message
            self.changed.set()
        return verdict

    def put_back(self, job: Job) -> None:
        self.queue.put_back(job)
        self.notify()

    def connection_gone(self, job: Job, error: BaseException) -> None:
        self.queue.connection_gone(job, error)
        self.notify()


def _later(delay: float, item: tuple[int, Envelope]) -> asyncio.Future[tuple[int, Envelope]]:
    """A future that holds ``item`` after ``delay`` seconds (a pause, a rate limit)."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[tuple[int, Envelope]] = loop.create_future()

    def ready() -> None:
        if not future.done():
            future.set_result(item)

    loop.call_later(delay, ready)
    return future


class _SMTPWorker:
    """One SMTP connection as a task: takes due jobs and pipelines them."""

    def __init__(self, work: _Work, config: SMTPConfig, limiter: RateLimiter | None) -> None:
        self.work = work
        self.config = config
        self.limiter = limiter
        self.connection: AsyncSMTPConnection | None = None
        self.pacing = Pacing()

    async def run(self) -> None:
        try:
            while (job := await self.work.get()) is not None:
                if self.connection is None and not await self._connect(job):
                    return
                await self._pipeline(job)
        finally:
            if self.connection is not None:
                await self._drop(polite=True)

    async def _connect(self, job: Job) -> bool:
        error: BaseException = ConnectionError("no attempt")
        for attempt in range(1, CONNECT_ATTEMPTS + 1):
            connection = AsyncSMTPConnection(self.config)
            try:
                await connection.connect()
            except Exception as exc:  # refused, unreachable, TLS, AUTH, a bad CA file
                error = exc
                if attempt < CONNECT_ATTEMPTS:
                    await asyncio.sleep(self.work.queue.policy.delay(attempt))
                continue
            self.connection = connection
            return True
        self.work.connection_gone(job, error)
        return False

    async def _drop(self, polite: bool) -> None:
        connection, self.connection = self.connection, None
        if connection is None:
            return
        if polite and connection.is_open:
            with contextlib.suppress(smtplib.SMTPException, OSError):
                await connection.quit()
        connection.abort()

    async def _pipeline(self, first: Job) -> None:
        assert self.connection is not None
        in_flight: dict[int, Job] = {}
        pending: list[Job] = [first]
        work = self.work
        queue = work.queue

        def next_item() -> tuple[int, Envelope] | asyncio.Future[tuple[int, Envelope]] | None:
            # Called from the connection's callbacks: never blocks; a pause or a rate
            # limit hands the connection a future to wait on.
            while True:
                if pending:
                    job: Job | None = pending.pop()
                elif self.pacing.reconnect:
                    return None
                else:
                    job = queue.take_due(time.monotonic)
                    if job is None:
                        return None
                assert job is not None
                envelope = job.envelope  # composed ahead, or by an earlier attempt
                if envelope is None:
                    envelope = work.prepare(job)
                    if envelope is None:
                        continue
                in_flight[job.index] = job
                # (No clock read when neither a pause nor a rate limit applies.)
                delay = self.pacing.pause_left() if self.pacing.pause_until else 0.0
                if self.limiter is not None:
                    delay = max(delay, self.limiter.reserve())
                if delay > 0:
                    return _later(delay, (job.index, envelope))
                return job.index, envelope

        def on_outcome(outcome: Outcome) -> None:
            verdict = work.settle(in_flight.pop(outcome.index), outcome)
            if verdict is not NO_CHANGE:
                self.pacing.apply(verdict)

        try:
            await self.connection.run(next_item, on_outcome)
        except (smtplib.SMTPException, OSError):
            await self._drop(polite=False)
            self.pacing.broken(work.queue.policy)
        if self.connection is not None and (self.pacing.reconnect or not self.connection.is_open):
            await self._drop(polite=not self.pacing.reconnect)
        self.pacing.reconnect = False
        for job in in_flight.values():
            work.put_back(job)


async def _backend_worker(work: _Work, backend: Any, limiter: RateLimiter | None) -> None:
    """Any other backend: one message at a time through ``asend_messages``."""
    from .generic import asend_one

    try:
        while (job := await work.get()) is not None:
            if work.prepare(job) is None:
                continue
            if limiter is not None:
                delay = limiter.reserve()
                if delay > 0:
                    await asyncio.sleep(delay)
            work.settle(job, await asend_one(backend, job))
    finally:
        await backend.aclose()


async def run_tasks(plan: Plan) -> BulkResult:
    queue = JobQueue(
        plan.messages,
        plan.policy,
        plan.workers,
        on_result=plan.on_result,
        # Composed ahead, in a row (COMPOSE_AHEAD), when several SMTP connections share
        # the work; one connection composes each message while the server works on
        # the one before. (Other backends compose their own.)
        compose=(
            functools.partial(compose, dkim=plan.dkim)
            if plan.config is not None and plan.workers > 1
            else None
        ),
    )
    work = _Work(queue, plan.dkim)
    if plan.config is not None:
        coroutines = [
            _SMTPWorker(work, plan.config, plan.limiter).run() for _ in range(plan.workers)
        ]
    else:
        coroutines = [_backend_worker(work, backend, plan.limiter) for backend in plan.backends]
    tasks = [asyncio.ensure_future(coroutine) for coroutine in coroutines]
    try:
        await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
    queue.raise_caller_errors()
    return queue.result


def run_blocking(plan: Plan) -> BulkResult:
    """``run_tasks`` for a sync caller (``send_bulk``): on a new event loop, in this
    thread. The loop is not made this thread's current one, so a loop the caller set
    stays set. Ctrl-C cancels the send (every connection dropped at once) and raises
    ``KeyboardInterrupt``, as ``asyncio.run`` does. Called where a loop already runs
    (a coroutine calling ``send_bulk``), the new loop runs in a thread of its own
    while this one waits, as any blocking call makes it wait."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        with asyncio.Runner(loop_factory=asyncio.new_event_loop) as runner:
            return runner.run(run_tasks(plan))
    context = contextvars.copy_context()  # the caller's settings and batch settings
    with ThreadPoolExecutor(1, thread_name_prefix="mailwright-bulk") as pool:
        return pool.submit(context.run, run_blocking, plan).result()  # (or what it raised)
