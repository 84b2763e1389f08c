"""Sending many messages: ``send_bulk`` spreads them over parallel SMTP connections.

Every connection is a worker thread with its own SMTP session; all of them draw from
one shared queue, so a slow connection never holds messages another could send. Over
each connection transactions are pipelined back to back (see ``transport``), which
makes the cost of a message one network round trip.

* ``rate_limit`` (messages per second) paces all connections together.
* Throttling replies (421, 451, 454) and other temporary (4xx) refusals put the message
  (or just its refused recipients) back in the queue with exponential back-off, and
  pause the connection that got them; 421 also reconnects.
* Nothing is swallowed: the result lists every permanently refused recipient and every
  message that could not be sent, with the reason.

Delivery is at least once: a message whose connection broke after its content went out
but before the server's reply arrived is sent again.
"""

from __future__ import annotations

import asyncio
import contextvars
import heapq
import itertools
import smtplib
import threading
import time
from collections.abc import Callable, Coroutine, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from .message import Delivery, Envelope
from .transport import run_transactions

if TYPE_CHECKING:
    from .backends.base import BaseEmailBackend
    from .backends.smtp import EmailBackend as SMTPBackend
    from .message import EmailMessage

__all__ = ["BulkResult", "Failure", "RateLimiter", "Refusal", "asend_bulk", "send_bulk"]

THROTTLING_CODES = frozenset({421, 451, 454})
DEFAULT_MAX_ATTEMPTS = 5
BACKOFF_BASE = 0.05  # seconds; doubled on every further attempt
BACKOFF_MAX = 5.0
CONNECT_ATTEMPTS = 3


@dataclass(frozen=True, slots=True)
class Refusal:
    """A recipient the server refused for good (5xx, or 4xx until attempts ran out)."""

    index: int
    address: str
    code: int
    text: str


@dataclass(frozen=True, slots=True)
class Failure:
    """A message that was not sent to anyone, and why."""

    index: int
    reason: str
    error: BaseException | None = field(default=None, compare=False, repr=False)


@dataclass(slots=True)
class BulkResult:
    """What ``send_bulk`` did: ``sent`` counts messages accepted for at least one
    recipient; ``refused`` and ``failed`` say what did not go, and why."""

    total: int
    sent: int = 0
    refused: list[Refusal] = field(default_factory=list)
    failed: list[Failure] = field(default_factory=list)
    elapsed: float = 0.0

    @property
    def rate(self) -> float:
        """Messages sent per second."""
        return self.sent / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def ok(self) -> bool:
        return not self.refused and not self.failed and self.sent == self.total


class RateLimiter:
    """Paces callers to ``per_second`` in total, across threads (evenly spaced slots)."""

    def __init__(self, per_second: float) -> None:
        if per_second <= 0:
            raise ValueError(f"rate_limit must be positive, got {per_second!r}")
        self.interval = 1.0 / per_second
        self._next = time.monotonic()
        self._lock = threading.Lock()

    def reserve(self) -> float:
        """Take the next slot; return how long to wait for it."""
        with self._lock:
            now = time.monotonic()
            slot = max(self._next, now)
            self._next = slot + self.interval
        return slot - now

    def wait(self) -> None:
        delay = self.reserve()
        if delay > 0:
            time.sleep(delay)

    async def await_slot(self) -> None:
        delay = self.reserve()
        if delay > 0:
            await asyncio.sleep(delay)


def _backoff(attempt: int) -> float:
    return min(BACKOFF_MAX, BACKOFF_BASE * 2 ** (attempt - 1))


@dataclass(slots=True)
class _Job:
    index: int
    message: EmailMessage
    envelope: Envelope | None = None
    attempt: int = 1
    not_before: float = 0.0


class _Work:
    """The shared queue (ordered by when a job may next be tried) and the books.

    Every job taken from the queue is settled exactly once with ``done()``; trying it
    again is a new job (``again()``).
    """

    def __init__(self, messages: Sequence[EmailMessage], workers: int) -> None:
        self.messages = messages
        self.result = BulkResult(total=len(messages))
        self._heap: list[tuple[float, int, _Job]] = []
        self._order = itertools.count()
        self._condition = threading.Condition()
        self._outstanding = 0
        self._workers = workers
        self._deliveries: dict[int, Delivery] = {}
        for index, message in enumerate(messages):
            message.delivery = None
            self._push(_Job(index, message))

    def _push(self, job: _Job) -> None:
        heapq.heappush(self._heap, (job.not_before, next(self._order), job))
        self._outstanding += 1

    def get(self, block: bool = True) -> _Job | None:
        """The next job that is due; None when there is nothing (more) to do."""
        with self._condition:
            while True:
                if self._heap:
                    due = self._heap[0][0] - time.monotonic()
                    if due <= 0:
                        return heapq.heappop(self._heap)[2]
                    if not block:
                        return None
                    self._condition.wait(due)
                elif not block or self._outstanding == 0:
                    return None
                else:
                    self._condition.wait(0.5)

    def wait_hint(self) -> float | None:
        """For a worker that found nothing due: None when all work is done, else how
        long to sleep before looking again."""
        with self._condition:
            if self._outstanding == 0:
                return None
            if self._heap:
                return max(0.0, min(0.05, self._heap[0][0] - time.monotonic()))
            return 0.01

    def requeue(self, job: _Job) -> None:
        """Put back a job that was never tried (no attempt used)."""
        with self._condition:
            self._push(job)
            self._condition.notify_all()

    def done(self) -> None:
        with self._condition:
            self._outstanding -= 1
            self._condition.notify_all()

    def again(self, job: _Job, reason: str, error: BaseException | None, **changes: Any) -> None:
        """Try ``job`` (or a variant of it) again after back-off, or give up."""
        with self._condition:
            if job.attempt >= DEFAULT_MAX_ATTEMPTS:
                self._fail(job.index, f"{reason} (gave up after {job.attempt} attempts)", error)
                return
            delay = _backoff(job.attempt)
            self._push(
                replace(
                    job, attempt=job.attempt + 1, not_before=time.monotonic() + delay, **changes
                )
            )
            self._condition.notify_all()

    def accept(self, index: int, accepted: list[str]) -> None:
        with self._condition:
            delivery = self._deliveries.setdefault(index, Delivery())
            if accepted and not delivery.accepted:
                self.result.sent += 1
            delivery.accepted.extend(accepted)
            self.messages[index].delivery = delivery

    def refuse(self, index: int, address: str, code: int, text: str) -> None:
        with self._condition:
            delivery = self._deliveries.setdefault(index, Delivery())
            delivery.refused[address] = (code, text)
            self.messages[index].delivery = delivery
            self.result.refused.append(Refusal(index, address, code, text))

    def fail(self, index: int, reason: str, error: BaseException | None) -> None:
        with self._condition:
            self._fail(index, reason, error)

    def _fail(self, index: int, reason: str, error: BaseException | None) -> None:
        self.result.failed.append(Failure(index, reason, error))

    def worker_gone(self, error: BaseException) -> None:
        """A worker could not connect. The last one to go fails what is left."""
        with self._condition:
            self._workers -= 1
            if self._workers == 0:
                while self._heap:
                    job = heapq.heappop(self._heap)[2]
                    self._outstanding -= 1
                    self._fail(job.index, f"could not connect: {_reason(error)}", error)
            self._condition.notify_all()


def _reason(error: BaseException) -> str:
    from .errors import describe

    return describe(error)


def _temporary(code: int | None) -> bool:
    return code is not None and 400 <= code < 500


class _Connection:
    """What every connection of a bulk send shares: the books, the rate limiter, and
    how replies are sorted out (sent, retried later, refused for good)."""

    def __init__(self, work: _Work, limiter: RateLimiter | None) -> None:
        self.work = work
        self.limiter = limiter
        self.pause_until = 0.0  # throttled: no new transaction before this
        self.reconnect = False  # 421: end this session, start a new one

    def _compose(self, job: _Job) -> Envelope | None:
        """The job's envelope, built once; a bad message fails here, on its own."""
        if job.envelope is None:
            try:
                job.envelope = job.message.envelope()
            except Exception as exc:
                self.work.fail(job.index, _reason(exc), exc)
                self.work.done()
                return None
        return job.envelope

    def _connect_failed(self, job: _Job, error: BaseException) -> None:
        self.work.again(job, _reason(error), error)
        self.work.done()
        self.work.worker_gone(error)

    def _broken(self, in_flight: dict[int, _Job], exc: BaseException) -> None:
        """The connection broke: whatever was in flight is tried again."""
        for job in in_flight.values():
            self.work.again(job, _reason(exc), exc)
            self.work.done()
        in_flight.clear()
        self.pause_until = time.monotonic() + _backoff(1)

    def _settle(self, job: _Job, delivery: Delivery, error: BaseException | None) -> None:
        if isinstance(error, smtplib.SMTPRecipientsRefused) or error is None:
            self._settle_recipients(job, delivery, error)
            return
        # MAIL or DATA refused (or SMTPUTF8 missing): the message went to nobody.
        code = getattr(error, "smtp_code", None)
        self._note_throttling(job, code)
        if _temporary(code):
            self.work.again(job, _reason(error), error)
        else:
            self.work.fail(job.index, _reason(error), error)

    def _settle_recipients(
        self, job: _Job, delivery: Delivery, error: BaseException | None
    ) -> None:
        assert job.envelope is not None
        self.work.accept(job.index, delivery.accepted)
        retry = []
        for address, (code, text) in delivery.refused.items():
            self._note_throttling(job, code)
            if _temporary(code) and job.attempt < DEFAULT_MAX_ATTEMPTS:
                retry.append(address)
            else:
                self.work.refuse(job.index, address, code, text)
        if retry:
            envelope = replace(job.envelope, recipients=retry)
            self.work.again(job, "recipients refused for now", error, envelope=envelope)
        elif error is not None:
            self.work.fail(job.index, _reason(error), error)

    def _note_throttling(self, job: _Job, code: int | None) -> None:
        """Throttling replies pause this connection; 421 also ends the session."""
        if code in THROTTLING_CODES:
            self.pause_until = time.monotonic() + _backoff(job.attempt)
            self.reconnect = self.reconnect or code == 421


class _SMTPWorker(_Connection):
    """One connection in a thread: pulls jobs and pipelines them."""

    def __init__(self, work: _Work, backend: SMTPBackend, limiter: RateLimiter | None) -> None:
        super().__init__(work, limiter)
        self.backend = backend

    def run(self) -> None:
        try:
            while (job := self.work.get()) is not None:
                if self._connect(job):
                    self._pipeline(job)
                else:
                    return
        finally:
            self.backend.close()

    def _connect(self, job: _Job) -> bool:
        if self.reconnect:
            self.backend._abort()
            self.reconnect = False
        if self.backend.connection is not None:
            return True
        error: BaseException | None = None
        for attempt in range(1, CONNECT_ATTEMPTS + 1):
            try:
                self.backend.open()
                return True
            except Exception as exc:  # refused, unreachable, or misconfigured (CA file)
                error = exc
                time.sleep(_backoff(attempt))
        assert error is not None
        self._connect_failed(job, error)
        return False

    def _jobs(self, first: _Job, in_flight: dict[int, _Job]) -> Iterator[tuple[int, Envelope]]:
        job: _Job | None = first
        while job is not None:
            pause = self.pause_until - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            envelope = self._compose(job)
            if envelope is not None:
                if self.limiter is not None:
                    self.limiter.wait()
                in_flight[job.index] = job
                yield job.index, envelope
            if self.reconnect:
                return
            job = self.work.get(block=False)

    def _pipeline(self, first: _Job) -> None:
        in_flight: dict[int, _Job] = {}
        connection = self.backend.connection
        assert connection is not None
        try:
            for outcome in run_transactions(
                connection, self._jobs(first, in_flight), proceed=lambda: not self.reconnect
            ):
                job = in_flight.pop(outcome.index)
                self._settle(job, outcome.delivery, outcome.error)
                self.work.done()
        except Exception as exc:  # the connection broke (or worse): retry what was in flight
            self.backend._abort()
            self._broken(in_flight, exc)
            return
        # Taken but never sent (the batch stopped early to reconnect): queue it again.
        for job in in_flight.values():
            self.work.requeue(job)
            self.work.done()


class _AsyncSMTPWorker(_Connection):
    """One connection as a coroutine, on aiosmtplib (one transaction at a time)."""

    def __init__(self, work: _Work, backend: SMTPBackend, limiter: RateLimiter | None) -> None:
        super().__init__(work, limiter)
        self.backend = backend

    async def run(self) -> None:
        try:
            while True:
                job = self.work.get(block=False)
                if job is None:
                    hint = self.work.wait_hint()
                    if hint is None:
                        return
                    await asyncio.sleep(hint)
                    continue
                if not await self._connect(job):
                    return
                await self._send(job)
        finally:
            if self.backend.aconnection is not None:
                await self.backend.aclose()

    async def _connect(self, job: _Job) -> bool:
        if self.reconnect:
            self.backend._aabort()
            self.reconnect = False
        if self.backend.aconnection is not None:
            return True
        error: BaseException | None = None
        for attempt in range(1, CONNECT_ATTEMPTS + 1):
            try:
                await self.backend.aopen()
                return True
            except Exception as exc:  # refused, unreachable, or misconfigured (CA file)
                error = exc
                await asyncio.sleep(_backoff(attempt))
        assert error is not None
        self._connect_failed(job, error)
        return False

    async def _send(self, job: _Job) -> None:
        from .atransport import send_envelope  # aiosmtplib loads on first async use

        envelope = self._compose(job)
        if envelope is None:
            return
        pause = self.pause_until - time.monotonic()
        if pause > 0:
            await asyncio.sleep(pause)
        if self.limiter is not None:
            await self.limiter.await_slot()
        connection = self.backend.aconnection
        assert connection is not None
        in_flight = {job.index: job}
        try:
            outcome = await send_envelope(connection, job.index, envelope)
        except Exception as exc:  # the connection broke (or worse): retry what was in flight
            self.backend._aabort()
            self._broken(in_flight, exc)
            return
        except asyncio.CancelledError:
            self.backend._aabort()
            raise
        self._settle(job, outcome.delivery, outcome.error)
        self.work.done()


def _generic_worker(work: _Work, backend: BaseEmailBackend, limiter: RateLimiter | None) -> None:
    """Any other backend: one message at a time through send_messages."""
    try:
        while (job := work.get()) is not None:
            if limiter is not None:
                limiter.wait()
            try:
                if backend.send_messages([job.message]):
                    work.accept(job.index, job.message.recipients())
                else:
                    work.fail(job.index, "the backend did not send it", None)
            except Exception as exc:
                work.fail(job.index, _reason(exc), exc)
            work.done()
    finally:
        backend.close()


async def _generic_async_worker(
    work: _Work, backend: BaseEmailBackend, limiter: RateLimiter | None
) -> None:
    """Any other backend, from asyncio: one message at a time through asend_messages."""
    try:
        while True:
            job = work.get(block=False)
            if job is None:
                hint = work.wait_hint()
                if hint is None:
                    return
                await asyncio.sleep(hint)
                continue
            if limiter is not None:
                await limiter.await_slot()
            try:
                if await backend.asend_messages([job.message]):
                    work.accept(job.index, job.message.recipients())
                else:
                    work.fail(job.index, "the backend did not send it", None)
            except Exception as exc:
                work.fail(job.index, _reason(exc), exc)
            work.done()
    finally:
        await backend.aclose()


@dataclass
class _Plan:
    """What send_bulk and asend_bulk share: checked arguments, the books, backends."""

    work: _Work
    limiter: RateLimiter | None
    backends: list[BaseEmailBackend]
    started: float

    @classmethod
    def make(
        cls,
        messages: Sequence[EmailMessage],
        connections: int,
        rate_limit: float | None,
        backend: str | type[BaseEmailBackend] | None,
        backend_kwargs: dict[str, Any],
    ) -> _Plan:
        from .api import get_connection

        if connections < 1:
            raise ValueError(f"connections must be at least 1, got {connections!r}")
        limiter = RateLimiter(rate_limit) if rate_limit is not None else None
        messages = list(messages)
        workers = max(1, min(connections, len(messages)))
        backend_kwargs = {**backend_kwargs, "fail_silently": False}
        backend_kwargs.pop("connections", None)
        backends = [get_connection(backend, **backend_kwargs) for _ in range(workers)]
        return cls(_Work(messages, workers), limiter, backends, time.monotonic())

    def finish(self) -> BulkResult:
        result = self.work.result
        result.failed.sort(key=lambda failure: failure.index)
        result.refused.sort(key=lambda refusal: refusal.index)
        result.elapsed = time.monotonic() - self.started
        return result


def send_bulk(
    messages: Sequence[EmailMessage],
    connections: int = 4,
    rate_limit: float | None = None,
    *,
    backend: str | type[BaseEmailBackend] | None = None,
    **backend_kwargs: Any,
) -> BulkResult:
    """Send ``messages`` over ``connections`` parallel connections; never raises for a
    single message: look at the result. ``rate_limit`` caps messages per second over
    all connections. ``backend``/``backend_kwargs`` choose and configure the backend
    as ``get_connection`` does (EMAIL_BACKEND by default). Thread-safe."""
    from .backends.smtp import EmailBackend as SMTPBackend

    plan = _Plan.make(messages, connections, rate_limit, backend, backend_kwargs)

    def runner(instance: BaseEmailBackend) -> Callable[[], None]:
        if isinstance(instance, SMTPBackend):
            return _SMTPWorker(plan.work, instance, plan.limiter).run
        return lambda: _generic_worker(plan.work, instance, plan.limiter)

    # Each thread runs in a copy of the caller's context, so override_settings
    # active here holds there too (composing a message reads settings).
    threads = [
        threading.Thread(
            target=contextvars.copy_context().run,
            args=(runner(instance),),
            name=f"mailwright-bulk-{number}",
            daemon=True,
        )
        for number, instance in enumerate(plan.backends)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return plan.finish()


async def asend_bulk(
    messages: Sequence[EmailMessage],
    connections: int = 4,
    rate_limit: float | None = None,
    *,
    backend: str | type[BaseEmailBackend] | None = None,
    **backend_kwargs: Any,
) -> BulkResult:
    """``send_bulk`` for asyncio code: the same arguments and result, the connections
    as concurrent tasks on aiosmtplib. Cancelling it drops every connection at once."""
    from .backends.smtp import EmailBackend as SMTPBackend

    plan = _Plan.make(messages, connections, rate_limit, backend, backend_kwargs)

    def runner(instance: BaseEmailBackend) -> Coroutine[Any, Any, None]:
        if isinstance(instance, SMTPBackend):
            return _AsyncSMTPWorker(plan.work, instance, plan.limiter).run()
        return _generic_async_worker(plan.work, instance, plan.limiter)

    tasks = [asyncio.ensure_future(runner(instance)) for instance in plan.backends]
    try:
        await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
    return plan.finish()
