"""The thread driver of a bulk send through a backend other than SMTP (its sync
``send_messages`` blocks): one thread per backend instance, all drawing from one
``JobQueue`` guarded by a ``threading.Condition`` (a thread with nothing due sleeps
until a job is due or the books change; no polling). The condition is notified only
while a thread waits on it: ``notify_all`` is Python code, and a busy send settles
every message with nobody waiting. (SMTP sends run on the asyncio driver: ``aio``.)"""

from __future__ import annotations

import contextvars
import threading
import time

from ..message import Envelope
from .compose import compose
from .plan import Plan
from .queue import Job, JobQueue, Verdict
from .rate import RateLimiter
from .results import BulkResult

__all__ = ["run_threads"]


class _Work:
    """The queue, shared by the threads."""

    def __init__(self, queue: JobQueue) -> None:
        self.queue = queue
        # A plain lock under the condition, taken directly: ``with condition`` is two
        # Python calls around an RLock, and every message takes it twice.
        self.lock = threading.Lock()
        self.condition = threading.Condition(self.lock)
        self.idle = 0  # threads waiting on the condition (read and written under it)

    def get(self) -> Job | None:
        """The next due job, waiting for one; None when everything is settled."""
        queue = self.queue
        with self.lock:
            while not queue.finished:
                job = queue.take_due(time.monotonic)
                if job is not None:
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
        envelope, error, reason = compose(job, None)  # (a backend signs for itself)
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
    work = _Work(queue)
    targets = [
        (lambda backend=backend: _backend_worker(work, backend, plan.limiter))
        for backend in plan.backends
    ]
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
