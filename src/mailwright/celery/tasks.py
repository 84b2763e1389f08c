"""The Celery task that delivers a chunk of messages: ``mailwright.deliver_messages``.

Registered with ``shared_task``, so it belongs to whatever Celery app the worker runs;
import this module in the worker (``include=["mailwright.celery.tasks"]`` or
``app.autodiscover_tasks(["mailwright.celery"])``).

* The payload is JSON (never pickle) and holds only the messages in wire form; an
  invalid one is rejected with a logged error and never retried.
* A chunk goes out over one connection of the mailer its payload names (the Celery
  backend's ``relay`` option), else of ``EMAIL_CELERY_RELAY_BACKEND`` (the SMTP backend
  by default): the SMTP engine driven directly, pipelined (``bulk.relay``), configured
  by the worker's own settings (credentials stay on the workers). The bytes go out as
  they came.
* Each recipient is sorted by the rule the outbox and ``send_bulk`` share
  (``bulk.policy.sort_recipients``). Temporary failures (4xx, a broken connection,
  messages the batch never reached) are retried with back-off, only for the
  recipients that still need it: a recipient the server accepted is never sent the
  message again. Permanent failures (5xx, an AUTH refusal such as 535) are logged
  with the server's reply and not retried.
* ``acks_late`` and ``reject_on_worker_lost``: a chunk whose worker dies is delivered
  again by another, so delivery is at least once (the chunks in flight may arrive twice).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from celery import Task, shared_task
from celery.exceptions import Reject
from celery.utils.log import get_task_logger

from ..bulk.policy import RecipientResults, RetryPolicy, sort_recipients
from ..bulk.rate import RateLimiter
from ..bulk.relay import Relay, load_relay
from ..conf import settings
from ..describe import describe
from ..message import RawMessage
from .payload import dump_chunk, load_chunk, payload_relay

__all__ = ["TASK_NAME", "ChunkReport", "deliver_chunk", "deliver_messages", "retry_policy"]

TASK_NAME = "mailwright.deliver_messages"
# Seconds; with the 20 % spread no retry waits over 15 minutes, under the brokers'
# visibility timeout (Celery's default: an hour) and RabbitMQ's consumer_timeout (30 min).
RETRY_DELAY_CAP = 750.0

logger = get_task_logger(__name__)

_MESSAGE_ID = re.compile(rb"^Message-ID:[ \t]*(<[^>\r\n]{1,250}>)", re.IGNORECASE | re.MULTILINE)


def message_label(message: RawMessage) -> str:
    """How a message is named in the log: its Message-ID (or its subject)."""
    header_end = message.data.find(b"\r\n\r\n")
    end = header_end if header_end >= 0 else len(message.data)
    match = _MESSAGE_ID.search(message.data, 0, end)
    if match:
        return match[1].decode("ascii", "replace")
    return f"(no Message-ID, subject {message.subject!r})"


@dataclass
class ChunkReport:
    """What became of a chunk: who got each message, what is left to retry, and what
    was refused for good (``refused``: label, address, reply)."""

    delivered: int = 0  # messages accepted for at least one recipient
    accepted: int = 0  # recipients that accepted a message
    retry: list[tuple[RawMessage, str]] = field(default_factory=list)  # and why
    refused: list[tuple[str, str, str]] = field(default_factory=list)

    @property
    def retry_recipients(self) -> int:
        return sum(len(message.to) for message, _ in self.retry)


_limiters: dict[float, RateLimiter] = {}


def _limiter(rate: float) -> RateLimiter:
    """This process's pace keeper for ``rate`` messages per second."""
    limiter = _limiters.get(rate)
    if limiter is None:
        limiter = _limiters[rate] = RateLimiter(rate)
    return limiter


def retry_policy() -> RetryPolicy:
    """mailwright's retry policy with the worker's settings: EMAIL_CELERY_RETRY_DELAY
    doubled on each retry, spread by 20 %, 15 minutes at most; one first attempt and
    EMAIL_CELERY_MAX_RETRIES more."""
    return RetryPolicy(
        max_attempts=settings.EMAIL_CELERY_MAX_RETRIES + 1,
        base=settings.EMAIL_CELERY_RETRY_DELAY,
        cap=RETRY_DELAY_CAP,
        jitter=0.2,
    )


def _relay(alias: str | None = None) -> Relay:
    return load_relay(
        alias,
        settings.EMAIL_CELERY_RELAY_BACKEND,
        setting="EMAIL_CELERY_RELAY_BACKEND",
        refuse="mailwright.backends.celery",
        refusal="the Celery backend: the worker would enqueue the messages again instead "
        "of sending them (use the SMTP backend there)",
    )


def _send(messages: list[RawMessage], alias: str | None = None) -> list[RecipientResults]:
    """Send the chunk over one connection; each message's recipients, sorted."""
    rate = settings.EMAIL_CELERY_RATE_LIMIT
    before_each = None
    if rate is not None:
        limiter = _limiter(rate)

        def before_each() -> bool:
            limiter.wait()
            return True

    with _relay(alias) as relay:
        try:
            relay.open()
        except Exception as exc:  # refused, unreachable, TLS, AUTH: each message says so
            return [sort_recipients(message.to, None, exc) for message in messages]
        items = [(index, message.envelope()) for index, message in enumerate(messages)]
        outcomes = relay.send(items, before_each)
    return [
        sort_recipients(message.to, outcome.delivery, outcome.error)
        for message, outcome in zip(messages, outcomes, strict=True)
    ]


def deliver_chunk(messages: list[RawMessage], relay: str | None = None) -> ChunkReport:
    """Send ``messages`` over the relay (the mailer ``relay``, else
    EMAIL_CELERY_RELAY_BACKEND) and sort out every recipient: accepted, to retry, or
    refused for good. Never raises for a delivery problem."""
    report = ChunkReport()
    try:
        sorted_results = _send(messages, relay)
    except Exception as exc:  # the relay is misconfigured or broke: retry what is unknown
        logger.error("mailwright: the relay backend failed: %s", describe(exc))
        for message in messages:
            report.retry.append((message, f"not sent: the relay failed ({describe(exc)})"))
        return report
    for message, results in zip(messages, sorted_results, strict=True):
        _book(message, results, report)
    return report


def _reason(code: int, text: str) -> str:
    return f"{code} {' '.join(text.split())}" if code else text


def _book(message: RawMessage, results: RecipientResults, report: ChunkReport) -> None:
    if results.not_tried:
        cause = results.cause
        why = f"not sent: {describe(cause)}" if cause is not None else "not sent"
        report.retry.append((message, why))
        return
    if results.accepted:
        report.delivered += 1
        report.accepted += len(results.accepted)
    if results.permanent:
        label = message_label(message)
        for address, (code, text) in results.permanent.items():
            report.refused.append((label, address, _reason(code, text)))
    if results.temporary:
        retry = list(results.temporary)
        reasons = "; ".join(
            f"{address}: {_reason(code, text)}"
            for address, (code, text) in results.temporary.items()
        )
        report.retry.append((RawMessage(message.data, message.from_email, retry), reasons))


@shared_task(
    bind=True,
    name=TASK_NAME,
    serializer="json",
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=None,  # counted against EMAIL_CELERY_MAX_RETRIES below
)
def deliver_messages(self: Task[Any, Any], payload: Any) -> dict[str, int]:
    """Deliver one chunk (a payload made by ``payload.dump_chunk``)."""
    task_id = self.request.id
    try:
        messages = load_chunk(payload)
        relay = payload_relay(payload)
    except ValueError as exc:
        logger.error(
            "mailwright: task %s rejected, invalid payload: %s (not retried)", task_id, exc
        )
        raise Reject(f"invalid mailwright payload: {exc}", requeue=False) from None

    report = deliver_chunk(messages, relay)
    for label, address, reason in report.refused:
        logger.error(
            "mailwright: %s to %s refused for good: %s (not retried)", label, address, reason
        )

    gave_up = 0
    if report.retry:
        attempt = self.request.retries + 1  # the attempt that just failed
        policy = retry_policy()
        if policy.can_retry(attempt):
            delay = policy.delay(attempt)
            logger.warning(
                "mailwright: %d recipient(s) of %d message(s) not delivered yet, retry %d of "
                "%d in %.1fs: %s",
                report.retry_recipients,
                len(report.retry),
                attempt,
                policy.max_attempts - 1,
                delay,
                " | ".join(f"{message_label(message)}: {why}" for message, why in report.retry),
            )
            retry = dump_chunk((message for message, _ in report.retry), relay)
            shown: dict[str, Any] = {"argsrepr": f"(<{len(report.retry)} messages>,)"}
            raise self.retry(args=(retry,), kwargs={}, countdown=delay, **shown)
        for message, why in report.retry:
            logger.error(
                "mailwright: %s to %s not delivered, gave up after %d attempts: %s",
                message_label(message),
                ", ".join(message.to),
                attempt,
                why,
            )
        gave_up = report.retry_recipients
    return {
        "delivered": report.delivered,
        "accepted": report.accepted,
        "refused": len(report.refused),
        "gave_up": gave_up,
    }
