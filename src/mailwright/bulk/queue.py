"""The work of a bulk send: jobs ordered by when they are due, and the books that
settle each message exactly once. Plain data structures: no threads, no locks, no
clock of their own (callers pass ``now``); the drivers wrap them in their own
synchronisation (``threads``: a ``threading.Condition``; ``aio``: an
``asyncio.Condition``).

A job is one message and the recipients it still has to reach. Each outcome of a
transaction goes through ``settle()``, the one place that decides, with the retry
policy, what happens next: recipients accepted are booked; recipients refused for
good become ``Refusal`` entries; the rest are tried again later (the same job,
re-queued with back-off) until attempts run out. When a job has no recipient left to
try, its message is booked once: sent if anyone accepted it, else failed.
"""

from __future__ import annotations

import heapq
import itertools
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from ..message import Delivery
from .policy import RetryPolicy, error_code, sort_recipients
from .results import BulkResult, Failure, Refusal

if TYPE_CHECKING:
    from ..message import EmailMessage, Envelope
    from ..smtp import Outcome

__all__ = ["NO_CHANGE", "Job", "JobQueue", "Pacing", "Verdict"]


@dataclass(slots=True)
class Job:
    index: int
    message: EmailMessage
    envelope: Envelope | None = None  # composed by the first connection that takes it
    attempt: int = 1
    due: float = 0.0


@dataclass(frozen=True, slots=True)
class Verdict:
    """What a connection should do after an outcome: pause before its next
    transaction (throttling) and reconnect (421)."""

    pause: float = 0.0
    reconnect: bool = False


class Pacing:
    """One connection's reaction to verdicts: when it may start its next transaction,
    and whether it must reconnect first (after a 421). Both drivers keep one per
    connection."""

    __slots__ = ("pause_until", "reconnect")

    def __init__(self) -> None:
        self.pause_until = 0.0
        self.reconnect = False

    def apply(self, verdict: Verdict) -> None:
        if verdict.pause:
            self.pause_until = max(self.pause_until, time.monotonic() + verdict.pause)
        if verdict.reconnect:
            self.reconnect = True

    def broken(self, policy: RetryPolicy) -> None:
        """The connection failed: wait a first back-off before the next one."""
        self.pause_until = time.monotonic() + policy.delay(1)

    def pause_left(self) -> float:
        return self.pause_until - time.monotonic()


#: The verdict that changes nothing (shared: most outcomes get it).
NO_CHANGE = Verdict()


@dataclass(slots=True)
class _Books:
    accepted: list[str] = field(default_factory=list)
    refused: dict[str, tuple[int, str]] = field(default_factory=dict)
    last_error: BaseException | None = None


def _describe(error: BaseException) -> str:
    from ..describe import describe

    return describe(error)


class JobQueue:
    """The jobs of one bulk send, and the result being built."""

    def __init__(
        self, messages: Sequence[EmailMessage], policy: RetryPolicy, connections: int = 1
    ) -> None:
        self.messages = messages
        self.policy = policy
        self.connections = connections  # those that may still connect
        self.result = BulkResult(total=len(messages))
        self._heap: list[tuple[float, int, Job]] = []
        self._order = itertools.count()
        self._books: dict[int, _Books] = {}
        self._settled: set[int] = set()
        self.outstanding = 0  # jobs queued or in flight
        for index, message in enumerate(messages):
            message.delivery = None
            self._push(Job(index, message))

    # --- the queue ---

    def _push(self, job: Job) -> None:
        heapq.heappush(self._heap, (job.due, next(self._order), job))
        self.outstanding += 1

    def take(self, now: float) -> Job | None:
        """The next job that is due (it is then in flight), or None."""
        if self._heap and self._heap[0][0] <= now:
            return heapq.heappop(self._heap)[2]
        return None

    def next_due(self) -> float | None:
        """When the earliest queued job is due; None when none is queued."""
        return self._heap[0][0] if self._heap else None

    @property
    def finished(self) -> bool:
        return self.outstanding == 0

    def put_back(self, job: Job) -> None:
        """A job taken but never tried (no attempt used): queue it again as it was."""
        self.outstanding -= 1
        self._push(job)

    def connection_gone(self, job: Job, error: BaseException) -> None:
        """A connection could not be made: its job (in flight, never tried) goes back;
        when it was the last connection, every queued job fails with the reason."""
        self.put_back(job)
        self.connections -= 1
        if self.connections == 0:
            self._give_up(f"could not connect: {_describe(error)}", error)

    def _give_up(self, reason: str, error: BaseException) -> None:
        while self._heap:
            job = heapq.heappop(self._heap)[2]
            self.outstanding -= 1
            self._fail_job(job, reason, error)

    # --- settling ---

    def cannot_send(self, job: Job, error: BaseException | None, reason: str) -> None:
        """``job`` (in flight) fails on its own before any attempt: its message could
        not be composed, or has no recipient."""
        self.outstanding -= 1
        self._fail_job(job, reason, error)

    def settle(self, job: Job, outcome: Outcome, now: float) -> Verdict:
        """Book one outcome of ``job`` (which is in flight) and decide what follows."""
        self.outstanding -= 1
        assert job.envelope is not None
        error = outcome.error
        delivery = outcome.delivery
        if (
            error is None
            and not delivery.refused
            and len(delivery.accepted) == len(job.envelope.recipients)
            and job.index not in self._books
        ):
            # The usual case, booked directly: every recipient accepted, first time.
            self._settled_once(job.index)
            self.result.sent += 1
            self.messages[job.index].delivery = delivery
            return NO_CHANGE
        results = sort_recipients(job.envelope.recipients, delivery, error)
        if results.not_tried:
            self._push(job)  # never tried: no attempt used
            return NO_CHANGE
        books = self._books.setdefault(job.index, _Books())
        books.accepted.extend(results.accepted)
        retry: list[str] = []
        if self.policy.can_retry(job.attempt):
            retry.extend(results.temporary)
        else:
            books.refused.update(results.temporary)
        books.refused.update(results.permanent)
        if error is not None:
            books.last_error = error
        if retry:
            self._push(
                replace(
                    job,
                    envelope=replace(job.envelope, recipients=retry),
                    attempt=job.attempt + 1,
                    due=now + self.policy.delay(job.attempt),
                )
            )
        else:
            self._settle(job.index, attempts=job.attempt)
        if not results.throttled:
            return NO_CHANGE
        return Verdict(pause=self.policy.delay(job.attempt), reconnect=results.reconnect)

    def _fail_job(self, job: Job, reason: str, error: BaseException | None) -> None:
        books = self._books.setdefault(job.index, _Books())
        books.last_error = error
        if books.accepted and job.envelope is not None:
            # Sent to some recipients earlier: those this job still had to reach are
            # refused for this reason, never forgotten.
            for recipient in job.envelope.recipients:
                books.refused.setdefault(recipient, (error_code(error) or 0, reason))
        self._settle(job.index, reason)

    def _settled_once(self, index: int) -> None:
        if index in self._settled:
            raise AssertionError(f"message {index} settled twice")
        self._settled.add(index)

    def _settle(self, index: int, reason: str | None = None, attempts: int = 1) -> None:
        """Book message ``index`` once and for all."""
        self._settled_once(index)
        books = self._books.pop(index, _Books())
        result = self.result
        for address, (code, text) in books.refused.items():
            result.refused.append(Refusal(index, address, code, text))
        if books.accepted:
            result.sent += 1
            error = None
        else:
            error = books.last_error
            if reason is None:
                reason = _describe(error) if error is not None else "no recipient accepted it"
                if attempts > 1:
                    reason += f" (gave up after {attempts} attempts)"
            result.failed.append(Failure(index, reason, error))
        self.messages[index].delivery = _delivery(books, error)


def _delivery(books: _Books, error: BaseException | None) -> Delivery:
    return Delivery(books.accepted, books.refused, error)
