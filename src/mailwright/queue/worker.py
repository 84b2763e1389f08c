"""The worker: delivers what the outbox holds, over the relay (the mailer each message
was queued for, else EMAIL_QUEUE_RELAY_BACKEND).

One process runs ``connections`` threads, each with its own relay connection (the
SMTP engine driven directly, or another backend: ``bulk.relay``; one per mailer the
messages name) and its own database connection, each in a loop::

    claim a batch (with a lease) -> check each stored envelope -> send the envelopes
    (pipelined) -> sort every outcome (``bulk.policy.sort_recipients``) -> record
    them in one transaction -> ...

while the calling thread renews the leases the worker holds, so they never lapse
while it lives (when it dies they lapse, and any worker takes the messages again),
and handles signals. Outcomes are committed as soon as a batch's replies are in: a
crash between the server's acceptance and that commit is what can send a message
twice, so at most ``batch`` messages per connection.

(A thread that claims and builds the next batch while another sends was measured
slower: both need the GIL, and the hand-over costs more than it overlaps.)

Throttling replies (421, 451, 454) pause the connection that got them (421 also
reconnects); ``rate`` paces all connections together. While the relay cannot be
reached the log says so once (naming host:port), and once more when it is back.

SIGTERM or SIGINT: stop claiming, finish the batches in progress, exit. A second
signal exits at once: it records every outcome the server already gave (so those
messages are not sent again), and gives back the rest.
"""

from __future__ import annotations

import contextvars
import logging
import math
import os
import secrets
import signal
import socket
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from types import FrameType
from typing import TYPE_CHECKING, Any

from ..bulk.rate import RateLimiter
from ..bulk.relay import Relay, load_relay
from ..conf import settings
from ..exceptions import ImproperlyConfigured
from ..message import Envelope, RawMessage
from .outcome import RetryRules, Verdict, failed_outright, settle
from .store import Claimed, Outbox, OutboxError, Settlement

if TYPE_CHECKING:
    from ..backends.base import BaseEmailBackend
    from ..smtp import Outcome

__all__ = ["Worker", "WorkerStats"]

log = logging.getLogger("mailwright.queue")


@dataclass
class WorkerStats:
    """What a worker did: ``delivered`` and ``failed`` count messages that reached
    their final state, ``deferred`` attempts that ended in a retry."""

    delivered: int = 0
    failed: int = 0
    deferred: int = 0
    untried: int = 0  # messages a batch ended before: back in the queue at once
    recipients: int = 0  # recipients that accepted a message
    batches: int = 0
    lost_leases: int = 0  # outcomes not recorded: another worker had the message
    elapsed: float = 0.0
    cpu: float = 0.0  # CPU seconds the worker's threads used (user and system)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, verdicts: Sequence[Verdict], recorded: int) -> None:
        with self._lock:
            self.batches += 1
            self.lost_leases += len(verdicts) - recorded
            for verdict in verdicts:
                self.recipients += verdict.accepted
                state = verdict.settlement.state
                if not verdict.settlement.tried:
                    self.untried += 1
                elif state == "sent":
                    self.delivered += 1
                elif state == "failed":
                    self.failed += 1
                else:
                    self.deferred += 1

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "_lock"}


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ImproperlyConfigured(f"{name} must be a positive integer, got {value!r}")
    return value


class Worker:
    """Delivers the outbox at ``path`` (EMAIL_QUEUE_PATH) until stopped; with
    ``once``, until nothing is due. Every ``None`` falls back to its setting."""

    def __init__(
        self,
        path: str | None = None,
        *,
        connections: int = 1,
        batch: int = 100,
        rate: float | None = None,
        once: bool = False,
        relay_backend: str | type[BaseEmailBackend] | None = None,
        lease: float | None = None,
        max_age: float | None = None,
        retry_delay: float | None = None,
        max_retry_delay: float | None = None,
        poll: float = 1.0,
        idle_close: float = 10.0,
    ) -> None:
        from ..conf import clean_setting

        self.path = path if path is not None else settings.EMAIL_QUEUE_PATH
        if not self.path:
            raise ImproperlyConfigured(
                "EMAIL_QUEUE_PATH is not set: the worker needs the outbox file"
            )
        self.connections = _positive_int("connections", connections)
        self.batch = _positive_int("batch", batch)
        if rate is not None:
            if isinstance(rate, bool) or not isinstance(rate, int | float) or not rate > 0:
                raise ImproperlyConfigured(f"rate must be a positive number, got {rate!r}")
            # Paced batches go out as bursts: keep each to about 0.1 s of the rate.
            self.batch = min(self.batch, max(1, math.ceil(rate / 10)))
        self.rate = rate
        self.once = once

        def setting(value: Any, name: str) -> Any:
            return getattr(settings, name) if value is None else clean_setting(name, value)

        self.relay = setting(relay_backend, "EMAIL_QUEUE_RELAY_BACKEND")
        self.lease: float = setting(lease, "EMAIL_QUEUE_LEASE")
        self.rules = RetryRules(
            setting(max_age, "EMAIL_QUEUE_MAX_AGE"),
            setting(retry_delay, "EMAIL_QUEUE_RETRY_DELAY"),
            setting(max_retry_delay, "EMAIL_QUEUE_MAX_RETRY_DELAY"),
        )
        if self.rules.max_delay < self.rules.first_delay:
            raise ImproperlyConfigured(
                f"EMAIL_QUEUE_MAX_RETRY_DELAY ({self.rules.max_delay:g} s) is shorter than "
                f"EMAIL_QUEUE_RETRY_DELAY ({self.rules.first_delay:g} s)"
            )
        self.poll = poll
        self.idle_close = idle_close
        self._new_relay()  # a bad relay configuration fails here, not in a thread
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self.stats = WorkerStats()
        self._stop = threading.Event()  # stop claiming (stop(), a signal)
        self._limiter = RateLimiter(rate) if rate is not None else None
        self._renewed = self._checkpointed = 0.0
        self._signals = 0
        self._failure: BaseException | None = None  # what ended a connection thread
        # Outcomes known but not recorded yet, by message id: a second signal records
        # them before the worker exits, so no message the server took is sent again.
        self._known: dict[int, Settlement] = {}
        self._known_lock = threading.Lock()
        self._aborting = False
        self._outage = _Outage()
        self._running = 0  # connection threads still running
        self._ended = threading.Condition()  # notified as each one ends

    def __repr__(self) -> str:
        return f"<Worker {self.owner} outbox={self.path}>"

    def _new_relay(self, alias: str | None = None) -> Relay:
        """The relay: the mailer ``alias`` a message was queued for, else the
        worker's relay backend (EMAIL_QUEUE_RELAY_BACKEND)."""
        return load_relay(
            alias,
            self.relay,
            setting="EMAIL_QUEUE_RELAY_BACKEND",
            refuse="mailwright.backends.queue",
            refusal="the queue backend itself: the worker would queue each message again "
            "instead of delivering it",
        )

    # --- running ---

    def stop(self) -> None:
        """Stop claiming; the batches in progress finish (thread-safe)."""
        self._stop.set()

    def run(self) -> WorkerStats:
        """Deliver until ``stop()`` (or a signal), or with ``once`` until nothing is
        due; return what was done."""
        started, cpu = time.monotonic(), time.thread_time()
        outbox = Outbox(self.path, durable=False)
        restore = self._install_signals()
        # Each connection runs in a copy of this context, so override_settings active
        # here holds there too (the relay backend reads settings).
        threads = [
            threading.Thread(
                target=contextvars.copy_context().run,
                args=(self._connection,),
                name=f"mailwright-outbox-{n}",
                daemon=True,
            )
            for n in range(self.connections)
        ]
        log.info(
            "worker %s: delivering %s with %s over %d connection(s)%s",
            self.owner,
            self.path,
            self.relay if isinstance(self.relay, str) else self.relay.__qualname__,
            self.connections,
            f", at most {self.rate:g} messages/s" if self.rate else "",
        )
        self._running = len(threads)
        try:
            for thread in threads:
                thread.start()
            while self._running:
                self._heartbeat(outbox)
                # Woken when the last connection ends: --once exits as soon as it is done.
                with self._ended:
                    self._ended.wait_for(lambda: not self._running, timeout=0.1)
        finally:
            self._stop.set()
            for thread in threads:
                while thread.is_alive():
                    thread.join(0.2)
                    self._heartbeat(outbox)
            try:
                held = outbox.release(self.owner)  # anything a failed thread left behind
            except OutboxError as exc:
                held = 0
                self._fail(exc)
            if held:
                log.warning("worker %s: gave back %d message(s) it held", self.owner, held)
            outbox.close()
            restore()
            self.stats.elapsed = time.monotonic() - started
            with self.stats._lock:
                self.stats.cpu += time.thread_time() - cpu
        if self._failure is not None:
            raise self._failure
        log.info(
            "worker %s: stopped; delivered %d, failed %d, deferred %d in %.1f s",
            self.owner,
            self.stats.delivered,
            self.stats.failed,
            self.stats.deferred,
            self.stats.elapsed,
        )
        return self.stats

    def _heartbeat(self, outbox: Outbox) -> None:
        """Renew the leases (every third of one); checkpoint the log (every second:
        the connections do not, so that no batch waits for it)."""
        now = time.monotonic()
        try:
            if now - self._checkpointed >= 1.0:
                self._checkpointed = now
                outbox.checkpoint()
            if now - self._renewed >= self.lease / 3:
                self._renewed = now
                outbox.renew(self.owner, self.lease)
        except OutboxError as exc:
            self._fail(exc)

    def _fail(self, exc: BaseException) -> None:
        """The outbox failed (a full disk, say): stop, and let ``run()`` raise it."""
        log.error("worker %s: %s", self.owner, exc)
        if self._failure is None:
            self._failure = exc
        self._stop.set()

    # --- a connection ---

    def _connection(self) -> None:
        try:
            self._deliver_until_stopped()
        except Exception as exc:
            self._fail(exc)
        finally:
            with self.stats._lock:
                self.stats.cpu += time.thread_time()  # this thread's, from its start
            with self._ended:
                self._running -= 1
                self._ended.notify_all()

    def _deliver_until_stopped(self) -> None:
        # One relay (so one connection) per mailer the messages name.
        relays: dict[str | None, Relay] = {None: self._new_relay()}
        outbox = Outbox(self.path, durable=False)
        pause_until = 0.0
        setbacks = 0  # consecutive batches that failed to connect or were throttled
        idle_since = time.monotonic()
        # The next batch, claimed in the transaction that recorded the last one (one
        # write lock per batch instead of two: what several processes wait for).
        ahead: list[Claimed] | None = None
        try:
            while self._wait_out(pause_until):
                if ahead is not None:
                    claimed, ahead = ahead, None
                else:
                    claimed = outbox.claim(self.owner, self.batch, self.lease)
                if not claimed:
                    if self.once:
                        return
                    if time.monotonic() - idle_since > self.idle_close:
                        for relay in relays.values():
                            relay.close()  # the server would time the idle session out
                    self._idle(outbox)
                    continue
                claimed, envelopes = self._build(outbox, claimed)
                if not envelopes:
                    continue
                self._pace(len(envelopes))
                verdicts, connected = self._deliver_by_relay(relays, claimed, envelopes)
                settlements = [v.settlement for v in verdicts]
                setback = not connected or any(v.throttled for v in verdicts)
                if setback or self._stop.is_set():
                    recorded = outbox.record(self.owner, settlements)
                else:
                    recorded, ahead = outbox.record_and_claim(
                        self.owner, settlements, self.batch, self.lease
                    )
                self._forget(claimed)
                idle_since = time.monotonic()
                self.stats.add(verdicts, recorded)
                if recorded < len(verdicts):
                    log.warning(
                        "%d outcome(s) not recorded: their lease was lost to another worker",
                        len(verdicts) - recorded,
                    )
                _log_verdicts(verdicts, quiet=not connected)
                if setback:
                    setbacks += 1
                    pause_until = time.monotonic() + self.rules.delay(setbacks)
                else:
                    setbacks = 0
                if any(v.reconnect for v in verdicts):
                    for relay in relays.values():
                        relay.close()  # 421: the server ended the session
        finally:
            if ahead:  # claimed, never sent: back to the queue at once
                try:
                    outbox.release(self.owner, [item.id for item in ahead])
                except OutboxError as exc:
                    self._fail(exc)
            for relay in relays.values():
                relay.close()
            outbox.close()

    def _build(
        self, outbox: Outbox, claimed: list[Claimed]
    ) -> tuple[list[Claimed], list[Envelope]]:
        """The envelopes to send, their addresses checked as every address is (a
        stored row cannot inject SMTP); a row that fails (edited by hand) is
        dead-lettered at once with the reason. The stored bytes go out as they are."""
        good: list[Claimed] = []
        envelopes: list[Envelope] = []
        bad: list[Settlement] = []
        now = time.time()
        for item in claimed:
            if item.problem is not None:
                bad.append(failed_outright(item, item.problem, now))
                continue
            try:
                envelope = RawMessage(item.data, item.sender, item.recipients).envelope()
            except (TypeError, ValueError) as exc:
                bad.append(failed_outright(item, f"the stored message is unusable: {exc}", now))
                continue
            good.append(item)
            envelopes.append(envelope)
        if bad:
            recorded = outbox.record(self.owner, bad)
            self.stats.add([Verdict(s, 0, False, False) for s in bad], recorded)
            for settlement in bad:
                log.error("message %d failed: %s", settlement.id, settlement.last_error)
        return good, envelopes

    def _idle(self, outbox: Outbox) -> None:
        """Wait until new mail is committed, a retry falls due, or ``poll`` passes."""
        now = time.time()
        due = outbox.next_due()
        deadline = now + self.poll if due is None else min(now + self.poll, due)
        version = outbox.data_version()
        while not self._stop.wait(0.05):
            if time.time() >= deadline or outbox.data_version() != version:
                return

    def _wait_out(self, pause_until: float) -> bool:
        """Sit out a pause; False when the worker is stopping."""
        while (left := pause_until - time.monotonic()) > 0:
            if self._stop.wait(min(left, 0.1)):
                return False
            if self.once:  # nothing to wait for: what is due is taken by the others
                return False
        return not self._stop.is_set()

    def _pace(self, count: int) -> None:
        """With a rate limit: wait for this batch's first slot, and book the rest."""
        if self._limiter is None:
            return
        delay = self._limiter.reserve()
        for _ in range(count - 1):
            self._limiter.reserve()
        if delay > 0:
            time.sleep(delay)

    def _deliver_by_relay(
        self,
        relays: dict[str | None, Relay],
        claimed: list[Claimed],
        envelopes: list[Envelope],
    ) -> tuple[list[Verdict], bool]:
        """Send a batch, each message through the relay mailer it was queued for."""
        if all(item.relay is None for item in claimed):  # the usual case: one relay
            return self._deliver(relays[None], claimed, envelopes)
        groups: dict[str | None, tuple[list[Claimed], list[Envelope]]] = {}
        for item, envelope in zip(claimed, envelopes, strict=True):
            group = groups.setdefault(item.relay, ([], []))
            group[0].append(item)
            group[1].append(envelope)
        verdicts: list[Verdict] = []
        connected = True
        for alias, (items, group_envelopes) in groups.items():
            relay = relays.get(alias)
            if relay is None:
                try:
                    relay = relays[alias] = self._new_relay(alias)
                except ImproperlyConfigured as exc:
                    # This worker has no such mailer (its settings differ from the
                    # sender's): deferred with back-off, never lost, until fixed or expired.
                    now = time.time()
                    error = RelayUnavailable(f"relay mailer {alias!r}: {exc}")
                    verdicts += [settle(i, None, error, self.rules, now) for i in items]
                    continue
            group_verdicts, group_connected = self._deliver(relay, items, group_envelopes)
            verdicts += group_verdicts
            connected = connected and group_connected
        order = {item.id: n for n, item in enumerate(claimed)}
        verdicts.sort(key=lambda verdict: order[verdict.settlement.id])
        return verdicts, connected

    def _deliver(
        self, relay: Relay, claimed: list[Claimed], envelopes: list[Envelope]
    ) -> tuple[list[Verdict], bool]:
        """Send one batch; return each message's verdict and whether it connected."""
        try:
            relay.open()
        except Exception as exc:  # refused, unreachable, TLS, AUTH: every message says so
            self._outage.failed(self.owner, relay.label, exc)
            now = time.time()
            return [settle(item, None, exc, self.rules, now) for item in claimed], False
        self._outage.connected(self.owner, relay.label)

        # Each outcome is settled once, as it arrives: known at once to a second
        # signal, and recorded with the batch.
        settled: dict[int, tuple[Outcome, Verdict]] = {}

        def on_outcome(outcome: Outcome) -> None:
            verdict = settle(
                claimed[outcome.index], outcome.delivery, outcome.error, self.rules, time.time()
            )
            settled[outcome.index] = (outcome, verdict)
            with self._known_lock:
                self._known[verdict.settlement.id] = verdict.settlement

        def before_each() -> bool:
            return not self._aborting  # a second signal: nothing more goes out

        outcomes = relay.send(list(enumerate(envelopes)), before_each, on_outcome)
        now = time.time()
        verdicts = []
        for index, (item, outcome) in enumerate(zip(claimed, outcomes, strict=True)):
            heard, verdict = settled.get(index, (None, None))
            if heard is not outcome or verdict is None:  # never heard: not tried
                verdict = settle(item, outcome.delivery, outcome.error, self.rules, now)
            verdicts.append(verdict)
        return verdicts, True

    def _forget(self, claimed: list[Claimed]) -> None:
        """The batch's outcomes are recorded: a second signal need not record them."""
        with self._known_lock:
            for item in claimed:
                self._known.pop(item.id, None)

    # --- signals ---

    def _install_signals(self) -> Any:
        if threading.current_thread() is not threading.main_thread():
            return lambda: None
        previous = {
            number: signal.signal(number, self._on_signal)
            for number in (signal.SIGTERM, signal.SIGINT)
        }

        def restore() -> None:
            for number, handler in previous.items():
                signal.signal(number, handler)

        return restore

    def _on_signal(self, number: int, frame: FrameType | None) -> None:
        self._signals += 1
        if self._signals == 1:
            log.info("worker %s: %s: finishing what it holds", self.owner, signal.strsignal(number))
            self.stop()
            return
        # Second signal: give everything back now and go (in a thread: the main
        # thread may be inside a transaction, holding the write lock).
        threading.Thread(target=self._abort, daemon=True).start()

    def _abort(self) -> None:
        """Record what the server already said, give back the rest, exit."""
        try:
            with self._known_lock:
                self._aborting = True
                known = list(self._known.values())
            with Outbox(self.path, durable=False) as outbox:
                recorded = outbox.record(self.owner, known) if known else 0
                released = outbox.release(self.owner)
            log.warning(
                "worker %s: stopped at once; recorded %d outcome(s) the server had given, "
                "gave back %d message(s)",
                self.owner,
                recorded,
                released,
            )
        finally:
            os._exit(1)


class RelayUnavailable(ConnectionError):
    """The mailer a message was queued for cannot be made here (temporary: the
    message waits, with back-off, for a worker that has it)."""


class _Outage:
    """Whether the relay can be reached, shared by a worker's connections: one log
    line when it cannot (naming host:port, saying what the worker does), one when it
    is back, not one per message."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.since: float | None = None

    def failed(self, owner: str, label: str, error: BaseException) -> None:
        from ..describe import describe

        with self._lock:
            first, self.since = self.since is None, self.since or time.monotonic()
        if first:
            log.warning(
                "worker %s: cannot reach the relay %s: %s; the messages stay queued and "
                "are tried again with back-off",
                owner,
                label,
                describe(error),
            )
        else:
            log.debug("worker %s: the relay %s is still unreachable", owner, label)

    def connected(self, owner: str, label: str) -> None:
        if self.since is None:
            return
        with self._lock:
            since, self.since = self.since, None
        if since is not None:
            log.warning(
                "worker %s: the relay %s is back after %.0f s; delivering",
                owner,
                label,
                time.monotonic() - since,
            )


def _log_verdicts(verdicts: Sequence[Verdict], quiet: bool = False) -> None:
    """A line per message that failed, and (``quiet``: the relay could not be reached,
    which ``_Outage`` says once) per message deferred."""
    for verdict in verdicts:
        settlement = verdict.settlement
        if settlement.state == "failed":
            log.warning("message %d failed: %s", settlement.id, settlement.last_error)
        elif (
            settlement.state == "queued"
            and settlement.tried
            and not quiet
            and log.isEnabledFor(logging.INFO)
        ):
            wait = max(0.0, settlement.due - time.time())
            log.info(
                "message %d deferred: %s; next attempt in %.3g s",
                settlement.id,
                settlement.last_error,
                wait,
            )
