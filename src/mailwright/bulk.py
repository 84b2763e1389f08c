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

import heapq
import itertools
import smtplib
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from .message import Delivery, Envelope
from .transport import run_transactions

if TYPE_CHECKING:
    from .backends.base import BaseEmailBackend
    from .backends.smtp import EmailBackend as SMTPBackend
    from .message import EmailMessage

__all__ = ["BulkResult", "Failure", "RateLimiter", "Refusal", "send_bulk"]

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

    def wait(self) -> None:
        with self._lock:
            now = time.monotonic()
            slot = max(self._next, now)
            self._next = slot + self.interval
        if slot > now:
            time.sleep(slot - now)


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


class _SMTPWorker:
    """One connection: pulls jobs, pipelines them, sorts out what came back."""

    def __init__(self, work: _Work, backend: SMTPBackend, limiter: RateLimiter | None) -> None:
        self.work = work
        self.backend = backend
        self.limiter = limiter
        self.pause_until = 0.0
        self.reconnect = False

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
            except (smtplib.SMTPException, OSError) as exc:
                error = exc
                time.sleep(_backoff(attempt))
        assert error is not None
        self.work.again(job, _reason(error), error)
        self.work.done()
        self.work.worker_gone(error)
        return False

    def _jobs(self, first: _Job, in_flight: dict[int, _Job]) -> Iterator[tuple[int, Envelope]]:
        job: _Job | None = first
        while job is not None:
            pause = self.pause_until - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            try:
                if job.envelope is None:
                    job.envelope = job.message.envelope()
            except Exception as exc:  # a bad header or address: this message only
                self.work.fail(job.index, _reason(exc), exc)
                self.work.done()
            else:
                if self.limiter is not None:
                    self.limiter.wait()
                in_flight[job.index] = job
                yield job.index, job.envelope
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
        except (smtplib.SMTPException, OSError) as exc:
            # The connection broke: whatever was in flight is tried again.
            self.backend._abort()
            for job in in_flight.values():
                self.work.again(job, _reason(exc), exc)
                self.work.done()
            self.pause_until = time.monotonic() + _backoff(1)
            return
        # Taken but never sent (the batch stopped early to reconnect): queue it again.
        for job in in_flight.values():
            self.work.requeue(job)
            self.work.done()

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
    from .api import get_connection
    from .backends.smtp import EmailBackend as SMTPBackend

    if connections < 1:
        raise ValueError(f"connections must be at least 1, got {connections!r}")
    started = time.monotonic()
    messages = list(messages)
    workers = max(1, min(connections, len(messages)))
    work = _Work(messages, workers)
    limiter = RateLimiter(rate_limit) if rate_limit is not None else None
    backend_kwargs.setdefault("fail_silently", False)
    backend_kwargs.pop("connections", None)

    def make_worker() -> Callable[[], None]:
        instance = get_connection(backend, **backend_kwargs)
        if isinstance(instance, SMTPBackend):
            return _SMTPWorker(work, instance, limiter).run
        return lambda: _generic_worker(work, instance, limiter)

    runners = [make_worker() for _ in range(workers)]
    threads = [
        threading.Thread(target=runner, name=f"mailwright-bulk-{number}", daemon=True)
        for number, runner in enumerate(runners)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    work.result.failed.sort(key=lambda failure: failure.index)
    work.result.refused.sort(key=lambda refusal: refusal.index)
    work.result.elapsed = time.monotonic() - started
    return work.result
