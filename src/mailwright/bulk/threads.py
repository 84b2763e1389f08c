"""The thread driver of a bulk send: one thread per connection, all drawing from one
``JobQueue`` guarded by a ``threading.Condition`` (a thread with nothing due sleeps
until a job is due or the books change; no polling). The condition is notified only
while a thread waits on it: ``notify_all`` is Python code, and a busy send settles
every message with nobody waiting."""

from __future__ import annotations

import contextlib
import contextvars
import smtplib
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

from ..message import Envelope
from ..smtp import SMTPConfig, SMTPConnection
from .compose import compose
from .plan import CONNECT_ATTEMPTS, Plan
from .queue import NO_CHANGE, Job, JobQueue, Pacing, Verdict
from .rate import RateLimiter
from .results import BulkResult

if TYPE_CHECKING:
    from ..message.dkim import DKIMSigner

__all__ = ["run_threads"]


class _Work:
    """The queue, shared by the threads."""

    def __init__(self, queue: JobQueue, dkim: DKIMSigner | None = None) -> None:
        self.queue = queue
        self.dkim = dkim  # signs what the engine sends (a backend signs for itself)
        # A plain lock under the condition, taken directly: ``with condition`` is two
        # Python calls around an RLock, and every message takes it twice.
        self.lock = threading.Lock()
        self.condition = threading.Condition(self.lock)
        self.idle = 0  # threads waiting on the condition (read and written under it)

    def get(self, block: bool = True) -> Job | None:
        """The next due job; None when everything is settled (or, not blocking, when
        nothing is due now)."""
        queue = self.queue
        with self.lock:
            while not queue.finished:
                job = queue.take_due(time.monotonic)
                if job is not None or not block:
                    return job
                if queue.finished:  # taking found the end of the input
                    break
                due = queue.next_due()
                now = time.monotonic()
                self.idle += 1
                try:
                    self.condition.wait(None if due is None else max(0.0, due - now))
                finally:
                    self.idle -= 1
            # The input may have just run out here: the others must hear it too.
            self.notify()
            return None

    def notify(self) -> None:
        """Wake the waiting threads: the books changed (call it holding the condition)."""
        if self.idle:
            self.condition.notify_all()

    def prepare(self, job: Job) -> Envelope | None:
        envelope, error, reason = compose(job, self.dkim)
        if envelope is None:
            with self.lock:
                self.queue.cannot_send(job, error, reason)
                self.notify()
        return envelope

    def settle(self, job: Job, outcome: object) -> Verdict:
        with self.lock:
            verdict = self.queue.settle(job, outcome, time.monotonic())  # type: ignore[arg-type]
            if self.idle:  # notify(), inline: once per message
                self.condition.notify_all()
        return verdict

    def put_back(self, job: Job) -> None:
        with self.lock:
            self.queue.put_back(job)
            self.notify()

    def connection_gone(self, job: Job, error: BaseException) -> None:
        with self.lock:
            self.queue.connection_gone(job, error)
            self.notify()


class _SMTPWorker:
    """One SMTP connection: takes due jobs and pipelines them."""

    def __init__(self, work: _Work, config: SMTPConfig, limiter: RateLimiter | None) -> None:
        self.work = work
        self.config = config
        self.limiter = limiter
        self.connection: SMTPConnection | None = None
        self.pacing = Pacing()

    def run(self) -> None:
        try:
            while (job := self.work.get()) is not None:
                if self.connection is None and not self._connect(job):
                    return
                self._pipeline(job)
        finally:
            if self.connection is not None:
                self._drop(polite=True)

    def _connect(self, job: Job) -> bool:
        error: BaseException = ConnectionError("no attempt")
        for attempt in range(1, CONNECT_ATTEMPTS + 1):
            connection = SMTPConnection(self.config)
            try:
                connection.connect()
            except Exception as exc:  # refused, unreachable, TLS, AUTH, a bad CA file
                error = exc
                if attempt < CONNECT_ATTEMPTS:
                    time.sleep(self.work.queue.policy.delay(attempt))
                continue
            self.connection = connection
            return True
        self.work.connection_gone(job, error)
        return False

    def _drop(self, polite: bool) -> None:
        connection, self.connection = self.connection, None
        if connection is None:
            return
        if polite and connection.is_open:
            with contextlib.suppress(smtplib.SMTPException, OSError):
                connection.quit()
        connection.abort()

    def _items(self, first: Job, in_flight: dict[int, Job]) -> Iterator[tuple[int, Envelope]]:
        job: Job | None = first
        while job is not None:
            envelope = self.work.prepare(job)
            if envelope is not None:
                pause = self.pacing.pause_left() if self.pacing.pause_until else 0.0
                if pause > 0:
                    time.sleep(pause)
                if self.limiter is not None:
                    self.limiter.wait()
                in_flight[job.index] = job
                yield job.index, envelope
            if self.pacing.reconnect:
                return
            job = self.work.get(block=False)

    def _pipeline(self, first: Job) -> None:
        assert self.connection is not None
        in_flight: dict[int, Job] = {}
        try:
            for outcome in self.connection.send(self._items(first, in_flight)):
                verdict = self.work.settle(in_flight.pop(outcome.index), outcome)
                if verdict is not NO_CHANGE:
                    self.pacing.apply(verdict)
        except (smtplib.SMTPException, OSError):
            # Every message in flight got its outcome (and was settled) first.
            self._drop(polite=False)
            self.pacing.broken(self.work.queue.policy)
        if self.connection is not None and (self.pacing.reconnect or not self.connection.is_open):
            self._drop(polite=not self.pacing.reconnect)
        self.pacing.reconnect = False
        for job in in_flight.values():  # not expected: the engine answers for each item
            self.work.put_back(job)


def _backend_worker(work: _Work, backend: object, limiter: RateLimiter | None) -> None:
    """Any other backend: one message at a time through ``send_messages``."""
    from .generic import send_one

    try:
        while (job := work.get()) is not None:
            if work.prepare(job) is None:
                continue
            if limiter is not None:
                limiter.wait()
            work.settle(job, send_one(backend, job))  # type: ignore[arg-type]
    finally:
        backend.close()  # type: ignore[attr-defined]


def run_threads(plan: Plan) -> BulkResult:
    queue = JobQueue(plan.messages, plan.policy, plan.workers, on_result=plan.on_result)
    work = _Work(queue, plan.dkim)
    targets = (
        [_SMTPWorker(work, plan.config, plan.limiter).run for _ in range(plan.workers)]
        if plan.config is not None
        else [
            (lambda backend=backend: _backend_worker(work, backend, plan.limiter))
            for backend in plan.backends
        ]
    )
    # Each thread runs in a copy of the caller's context, so override_settings active
    # here holds there too (composing a message reads settings).
    threads = [
        threading.Thread(
            target=contextvars.copy_context().run,
            args=(target,),
            name=f"mailwright-bulk-{number}",
            daemon=True,
        )
        for number, target in enumerate(targets)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    queue.raise_caller_errors()
    return queue.result
