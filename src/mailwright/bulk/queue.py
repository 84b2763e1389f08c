"""The work of a bulk send: jobs ordered by when they are due, and the books that
settle each message exactly once. Plain data structures: no threads, no locks, no
clock of their own for when jobs are due (callers pass ``now``); the drivers wrap them
in their own synchronisation (``threads``: a ``threading.Condition``; ``aio``: an
``asyncio.Event`` that each change of the books sets).

Given a ``compose`` function (the event-loop driver gives one when several SMTP
connections share the work), the queue composes new messages a group at a time as it
pulls them (``COMPOSE_AHEAD``): a message that cannot be composed fails alone, then
and there, and the others wait, composed, for a connection.

The messages come from the caller's iterable, pulled as connections ask for work and
never more than ``window`` ahead of what is settled: a generator or a database cursor
of a million rows is read as it is sent, and memory stays flat (nothing calls
``list()`` on it). A message is let go once settled: the result keeps counts, the
failures and the refusals, and ``on_result`` hears each message as it is settled.

A job is one message and the recipients it still has to reach. Each outcome of a
transaction goes through ``settle()``, the one place that decides, with the retry
policy, what happens next: recipients accepted are booked; recipients refused for
good become ``Refusal`` entries; the rest are tried again later (the same job,
re-queued with back-off) until attempts run out. When a job has no recipient left to
try, its message is booked once: sent if anyone accepted it, else failed.
"""

from __future__ import annotations

import collections
import heapq
import itertools
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from ..message import Delivery
from .policy import RetryPolicy, error_code, sort_recipients
from .results import BulkResult, Failure, Refusal

if TYPE_CHECKING:
    from ..message import EmailMessage, Envelope
    from ..smtp import Outcome

__all__ = [
    "COMPOSE_AHEAD",
    "COMPOSE_BUDGET",
    "NO_CHANGE",
    "WINDOW_PER_CONNECTION",
    "Job",
    "JobQueue",
    "Pacing",
    "Verdict",
]

#: How many messages each connection may have taken from the caller's iterable and
#: not settled yet (composed and waiting, in flight, or waiting for a retry): a pipelined
#: connection keeps about two in flight, so this is a few batches ahead.
WINDOW_PER_CONNECTION = 64

#: With several connections, new messages are composed up to this many in a row, then
#: sent, rather than each just before it is sent: the code and data of each step then
#: stay in the processor's caches, and the same instructions cost about 8 µs a message
#: less (a sixth of a plain message's CPU; bench/engine.py, 8 connections). With one
#: connection each is composed just in time, while the server works on the one before;
#: composing in a row would leave the connection waiting out whole round trips, and it
#: was 9 % slower there for 19 % less CPU.
COMPOSE_AHEAD = 32
#: ... and for at most this many seconds, so that messages slow to compose (signed with
#: a large RSA key) hold the event loop about as long as one of them does.
COMPOSE_BUDGET = 0.002

ResultCallback = Callable[[int, "EmailMessage"], None]
#: What composes a job (``compose.compose``): its envelope, or None, the error and why.
Composer = Callable[["Job"], tuple["Envelope | None", BaseException | None, str]]


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
        """Seconds until the connection may go on (callers skip asking, and reading the
        clock, while ``pause_until`` is 0.0: never paused)."""
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
        self,
        messages: Iterable[EmailMessage],
        policy: RetryPolicy,
        connections: int = 1,
        *,
        window: int | None = None,
        on_result: ResultCallback | None = None,
        compose: Composer | None = None,
    ) -> None:
        self.policy = policy
        self.connections = connections  # those that may still connect
        self.window = window or WINDOW_PER_CONNECTION * max(1, connections)
        self.on_result = on_result
        self.result = BulkResult(total=0)
        self._input: Iterator[EmailMessage] | None = iter(messages)
        self.input_error: BaseException | None = None  # what the caller's iterable raised
        self.callback_error: BaseException | None = None  # what on_result raised first
        self._heap: list[tuple[float, int, Job]] = []
        self._order = itertools.count()
        self._books: dict[int, _Books] = {}
        self._live: set[int] = set()  # taken from the input, not settled yet
        self.outstanding = 0  # jobs queued or in flight
        # With ``compose``: new jobs are composed a few in a row as they are pulled
        # (``COMPOSE_AHEAD``), and wait here, composed, for a connection to take them.
        self._compose = compose
        self._fresh: collections.deque[Job] = collections.deque()

    # --- the queue ---

    def _push(self, job: Job) -> None:
        heapq.heappush(self._heap, (job.due, next(self._order), job))
        self.outstanding += 1

    def _pull(self) -> Job | None:
        """The next new job (in flight at once): one composed ahead, else the next
        message of the input, when the window has room; None when it has not, or the
        input is done. With ``compose``, a few are pulled and composed in a row; one
        that cannot be composed fails there and then."""
        fresh = self._fresh
        if fresh:
            return fresh.popleft()
        compose = self._compose
        if compose is None:
            return self._pull_one()
        while self._input is not None:
            deadline = time.perf_counter() + COMPOSE_BUDGET
            for _ in range(COMPOSE_AHEAD):
                job = self._pull_one()
                if job is None:
                    break
                envelope, error, reason = compose(job)
                if envelope is None:
                    self.cannot_send(job, error, reason)
                else:
                    fresh.append(job)
                if time.perf_counter() > deadline:
                    break
            if fresh:
                return fresh.popleft()
            if len(self._live) >= self.window:
                break
        return None

    def _pull_one(self) -> Job | None:
        if self._input is None or len(self._live) >= self.window:
            return None
        try:
            message = next(self._input)
        except StopIteration:
            self._input = None
            return None
        except Exception as exc:  # the caller's iterable broke: send what was taken
            self._input, self.input_error = None, exc
            return None
        index = self.result.total
        self.result.total += 1
        self._live.add(index)
        message.delivery = None
        self.outstanding += 1
        return Job(index, message)

    def take(self, now: float) -> Job | None:
        """The next job that is due (it is then in flight), or None. Retries that are
        due come first, then new messages from the input."""
        if self._heap and self._heap[0][0] <= now:
            return heapq.heappop(self._heap)[2]
        return self._pull()

    def take_due(self, clock: Callable[[], float]) -> Job | None:
        """``take(clock())``, with the clock read only when a retry is queued: a new
        message is due at once. What a connection asks for each message it sends."""
        heap = self._heap
        if heap and heap[0][0] <= clock():
            return heapq.heappop(heap)[2]
        return self._pull()

    def next_due(self) -> float | None:
        """When the earliest queued job is due; None when none is queued (a waiting
        connection then waits for a change of the books)."""
        return self._heap[0][0] if self._heap else None

    @property
    def finished(self) -> bool:
        return self.outstanding == 0 and self._input is None

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
        """No connection is left: every job queued, and every message the input still
        holds, fails with ``reason`` (the input is read to the end, to report each)."""
        while self._heap or self._fresh or self._input is not None:
            if self._heap:
                job = heapq.heappop(self._heap)[2]
            elif self._fresh:
                job = self._fresh.popleft()
            else:
                self.window = max(self.window, len(self._live) + 1)
                pulled = self._pull_one()  # (not composed: it will not be sent)
                if pulled is None:
                    continue
                job = pulled
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
            try:
                self._live.remove(job.index)  # _settled_once(), inline
            except KeyError:
                raise AssertionError(f"message {job.index} settled twice") from None
            self.result.sent += 1
            job.message.delivery = delivery
            if self.on_result is not None:
                self._report(job)
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
            self._settle(job, attempts=job.attempt)
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
        self._settle(job, reason)

    def _settled_once(self, index: int) -> None:
        try:
            self._live.remove(index)
        except KeyError:
            raise AssertionError(f"message {index} settled twice") from None

    def _settle(self, job: Job, reason: str | None = None, attempts: int = 1) -> None:
        """Book the job's message once and for all."""
        index = job.index
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
        job.message.delivery = _delivery(books, error)
        if self.on_result is not None:
            self._report(job)

    def _report(self, job: Job) -> None:
        """Tell ``on_result``; what it raises is kept (a connection must not die of it
        with messages in flight) and raised once the send is over."""
        assert self.on_result is not None
        try:
            self.on_result(job.index, job.message)
        except Exception as exc:
            if self.callback_error is None:
                self.callback_error = exc

    def raise_caller_errors(self) -> None:
        """Once the send is over: raise what the caller's iterable or ``on_result``
        raised (the messages taken before it were sent)."""
        error = self.input_error or self.callback_error
        if error is not None:
            raise error


def _delivery(books: _Books, error: BaseException | None) -> Delivery:
    return Delivery(books.accepted, books.refused, error)
