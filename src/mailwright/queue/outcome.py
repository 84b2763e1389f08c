"""From what the relay reported to what the outbox records, per recipient.

Each transaction's outcome is sorted by the shared rule (``mailwright.bulk.policy.
sort_recipients``): each recipient becomes ``sent`` (accepted), ``failed`` (refused
for good) or ``deferred`` (tried again later); a message never tried goes back at
once. The message is ``sent`` when every recipient is, ``queued`` again while any is
deferred, and ``failed`` (the dead-letter state) when any was refused for good or it
expired while deferred. The back-off is the shared retry policy's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..bulk.policy import RetryPolicy, sort_recipients
from .store import Claimed, Settlement

if TYPE_CHECKING:
    from ..message import Delivery

__all__ = ["RetryRules", "Verdict", "failed_outright", "settle"]


@dataclass(frozen=True, slots=True)
class RetryRules:
    """How long to keep trying (``max_age``, from when the message was queued) and how
    long to wait between attempts (``first_delay`` doubling up to ``max_delay``, ±50 %
    jitter so that messages that failed together do not come back together)."""

    max_age: float
    first_delay: float
    max_delay: float
    policy: RetryPolicy = field(init=False, repr=False)

    def __post_init__(self) -> None:
        # Attempts are not counted: a message is retried until it is too old.
        policy = RetryPolicy(
            max_attempts=2**31, base=self.first_delay, cap=self.max_delay, jitter=0.5
        )
        object.__setattr__(self, "policy", policy)

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt``."""
        return self.policy.delay(attempt)


@dataclass(frozen=True, slots=True)
class Verdict:
    """One message's settlement, and what its replies ask of the connection."""

    settlement: Settlement
    accepted: int  # recipients that accepted it in this attempt
    throttled: bool  # a throttling reply (421, 451, 454): pause the connection
    reconnect: bool  # 421: the server ended the session


def _duration(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.3g}{unit}"
    return f"{seconds:.3g}s"


def settle(
    claimed: Claimed,
    delivery: Delivery | None,
    error: BaseException | None,
    rules: RetryRules,
    now: float,
) -> Verdict:
    """Settle one attempt at ``claimed``. ``delivery`` is what the relay reported
    (None: nothing); ``error`` what kept the whole batch from being tried, if anything.
    Which recipient goes where is ``sort_recipients``'s call."""
    recipients = claimed.recipients
    results = sort_recipients(recipients, delivery, error)
    if not claimed.results and results.everyone_accepted:
        # the common case: everyone accepted it at the first try
        settlement = Settlement(claimed.id, "sent", now, [], None, None)
        return Verdict(settlement, len(recipients), False, False)
    if results.not_tried:  # its batch ended before it: no attempt, no back-off
        settlement = Settlement(
            claimed.id, "queued", now, recipients, claimed.results, None, tried=False
        )
        return Verdict(settlement, 0, False, False)
    books: dict[str, dict[str, Any]] = dict(claimed.results)
    for address in results.accepted:
        books[address] = {"at": now, "attempt": claimed.attempts, "status": "sent"}
    for status, replies in (("deferred", results.temporary), ("failed", results.permanent)):
        for address, (code, reply) in replies.items():
            books[address] = {
                "at": now,
                "attempt": claimed.attempts,
                "status": status,
                "code": code or None,
                "reply": reply,
            }
    deferred = list(results.temporary)
    expires = claimed.since + rules.max_age
    if deferred and now >= expires:
        for address in deferred:
            entry = books[address]
            entry["status"] = "failed"
            entry["reply"] = (
                f"expired: not delivered within {_duration(rules.max_age)} "
                f"({claimed.attempts} attempts); last: {_reply(entry)}"
            )
        deferred = []
    # Recipients refused for good on an earlier attempt count too.
    failed = [address for address, entry in books.items() if entry["status"] == "failed"]
    if deferred:
        due = min(now + rules.delay(claimed.attempts), expires)
        state, last_error = "queued", _errors(books, deferred)
    elif failed:
        state, due, last_error = "failed", now, _errors(books, failed)
    else:
        state, due, last_error = "sent", now, None
    settlement = Settlement(claimed.id, state, due, deferred, books, last_error)
    return Verdict(settlement, len(results.accepted), results.throttled, results.reconnect)


def failed_outright(claimed: Claimed, reason: str, now: float) -> Settlement:
    """A stored message that cannot be sent at all (its row is unreadable)."""
    results = dict(claimed.results)
    for address in claimed.recipients:
        results[address] = {"status": "failed", "code": None, "reply": reason, "at": now}
    return Settlement(claimed.id, "failed", now, [], results, reason)


def _reply(entry: dict[str, Any]) -> str:
    code = entry.get("code")
    return f"{code} {entry['reply']}" if code else str(entry["reply"])


def _errors(results: dict[str, dict[str, Any]], addresses: list[str]) -> str:
    shown = [f"{address}: {_reply(results[address])}" for address in addresses[:3]]
    if len(addresses) > 3:
        shown.append(f"and {len(addresses) - 3} more")
    return "; ".join(shown)
