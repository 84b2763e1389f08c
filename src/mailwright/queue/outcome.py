"""From what the relay backend reported to what the outbox records, per recipient.

After ``send_messages``, each message's ``delivery`` says which recipients accepted
it and which the server refused (with the reply); a recipient in neither list was
not reached (the connection failed, or the batch stopped before the message). Each
recipient becomes ``sent``, ``failed`` (a permanent refusal) or ``deferred`` (tried
again later); the message is ``sent`` when every recipient is, ``queued`` again while
any is deferred, and ``failed`` (the dead-letter state) when any was refused for good
or it expired while deferred. Which replies are temporary, which throttle, and the
back-off: the shared retry policy, ``mailwright.bulk.policy``.
"""

from __future__ import annotations

import smtplib
from dataclasses import dataclass, field
from typing import Any

from ..bulk.policy import (
    RetryPolicy,
    error_code,
    is_temporary,
    is_temporary_code,
    is_throttling,
)
from ..describe import describe
from ..message import Delivery
from ..smtp.errors import NotAttemptedError
from .store import Claimed, Settlement

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
    """Settle one attempt at ``claimed``. ``delivery`` is what the backend reported
    (None: nothing); ``error`` what kept the whole batch from being tried, if anything."""
    if (
        not claimed.results
        and delivery is not None
        and len(delivery.accepted) == len(claimed.recipients)
        and set(delivery.accepted) == set(claimed.recipients)
    ):  # the common case: everyone accepted it at the first try
        settlement = Settlement(claimed.id, "sent", now, [], None, None)
        return Verdict(settlement, len(claimed.recipients), False, False)
    if (
        delivery is not None
        and isinstance(delivery.error, NotAttemptedError)
        and not delivery.accepted
        and not delivery.refused
    ):  # never tried (its batch ended before it): no attempt, no back-off
        settlement = Settlement(
            claimed.id, "queued", now, claimed.recipients, claimed.results, None, tried=False
        )
        return Verdict(settlement, 0, False, False)
    results: dict[str, dict[str, Any]] = dict(claimed.results)
    accepted = set(delivery.accepted) if delivery is not None else set()
    refused = delivery.refused if delivery is not None else {}
    cause = (delivery.error if delivery is not None else None) or error
    if isinstance(cause, smtplib.SMTPSenderRefused):
        # MAIL refused: the RCPT replies that follow it in a pipeline only say
        # "503 MAIL first"; the MAIL reply is what counts, for every recipient.
        text = cause.smtp_error
        reply = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
        refused = dict.fromkeys(claimed.recipients, (cause.smtp_code, reply))
    deferred: list[str] = []
    failed: list[str] = []
    throttled = reconnect = False
    for address in claimed.recipients:
        entry: dict[str, Any] = {"at": now, "attempt": claimed.attempts}
        code: int | None
        if address in accepted:
            entry["status"] = "sent"
        else:
            if address in refused:
                code, reply = refused[address]
                if code == 503:
                    # "Bad sequence of commands": in a pipeline, the echo of an earlier
                    # refusal (RCPT after a refused MAIL), not a verdict on the
                    # recipient; whatever caused it is retried.
                    temporary = True
                elif code and code > 0:
                    temporary = is_temporary_code(code)
                else:  # no reply code: the error that failed the message decides
                    code, temporary = None, cause is None or is_temporary(cause)
            else:  # never reached: no reply of its own
                code = error_code(cause)
                reply = describe(cause) if cause is not None else "not tried (no report)"
                temporary = cause is None or is_temporary(cause)
            entry.update(code=code, reply=reply)
            throttled = throttled or is_throttling(code)
            reconnect = reconnect or code == 421
            if not temporary:
                entry["status"] = "failed"
                failed.append(address)
            else:
                entry["status"] = "deferred"
                deferred.append(address)
        results[address] = entry

    expires = claimed.since + rules.max_age
    if deferred and now >= expires:
        for address in deferred:
            entry = results[address]
            entry["status"] = "failed"
            entry["reply"] = (
                f"expired: not delivered within {_duration(rules.max_age)} "
                f"({claimed.attempts} attempts); last: {_reply(entry)}"
            )
        failed += deferred
        deferred = []
    # Recipients refused for good on an earlier attempt count too.
    failed = [address for address, entry in results.items() if entry["status"] == "failed"]
    if deferred:
        due = min(now + rules.delay(claimed.attempts), expires)
        state, last_error = "queued", _errors(results, deferred)
    elif failed:
        state, due, last_error = "failed", now, _errors(results, failed)
    else:
        state, due, last_error = "sent", now, None
    settlement = Settlement(claimed.id, state, due, deferred, results, last_error)
    return Verdict(settlement, len(accepted & set(claimed.recipients)), throttled, reconnect)


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
