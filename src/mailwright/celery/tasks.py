"""The Celery task that delivers a chunk of messages: ``mailwright.deliver_messages``.

Registered with ``shared_task``, so it belongs to whatever Celery app the worker runs;
import this module in the worker (``include=["mailwright.celery.tasks"]`` or
``app.autodiscover_tasks(["mailwright.celery"])``).

* The payload is JSON (never pickle) and holds only the messages in wire form; an
  invalid one is rejected with a logged error and never retried.
* A chunk goes out through the mailer its payload names (the Celery backend's
  ``relay`` option), else ``EMAIL_CELERY_RELAY_BACKEND`` (the SMTP backend by default),
  over one connection, configured by the worker's own settings (credentials stay on
  the workers).
* Temporary failures (4xx, a broken connection, messages the batch never reached) are
  retried with back-off, only for the recipients that still need it: a recipient the
  server accepted is never sent the message again. Permanent failures (5xx) are
  logged with the server's reply and not retried.
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

from ..backends.base import BaseEmailBackend
from ..backends.mailers import relay_backend
from ..bulk.policy import RetryPolicy, error_code, is_temporary, is_temporary_code
from ..bulk.rate import RateLimiter
from ..conf import settings
from ..describe import describe
from ..exceptions import ImproperlyConfigured
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


def _relay(alias: str | None = None) -> BaseEmailBackend:
    from ..backends.celery import EmailBackend as CeleryBackend

    relay = relay_backend(alias, settings.EMAIL_CELERY_RELAY_BACKEND)
    if isinstance(relay, CeleryBackend):
        where = "EMAIL_CELERY_RELAY_BACKEND" if alias is None else f"the relay mailer {alias!r}"
        raise ImproperlyConfigured(
            f"{where} is the Celery backend: the worker would enqueue "
            "the messages again instead of sending them (use the SMTP backend there)"
        )
    return relay


def _send(messages: list[RawMessage], alias: str | None = None) -> bool:
    """Send the chunk over one connection; True when every message was sent and the
    relay reported nothing per message (a relay other than SMTP may not)."""
    relay = _relay(alias)
    rate = settings.EMAIL_CELERY_RATE_LIMIT
    if rate is None:
        sent = relay.send_messages(messages)
    else:
        limiter = _limiter(rate)
        sent = 0
        relay.open()
        try:
            for message in messages:
                limiter.wait()
                sent += relay.send_messages([message])
                if _connection_lost(message):
                    break  # the rest waits for a retry, not for one timeout each
        finally:
            relay.close()
    return sent == len(messages) and all(message.delivery is None for message in messages)


def _connection_lost(message: RawMessage) -> bool:
    """Did this message fail for want of a connection (no reply from a server)?"""
    delivery = message.delivery
    error = delivery.error if delivery is not None else None
    return error is not None and error_code(error) is None and is_temporary(error)


def deliver_chunk(messages: list[RawMessage], relay: str | None = None) -> ChunkReport:
    """Send ``messages`` with the relay backend (the mailer ``relay``, else
    EMAIL_CELERY_RELAY_BACKEND) and sort out every recipient: accepted, to retry, or
    refused for good. Never raises for a delivery problem."""
    for message in messages:
        message.delivery = None
    report = ChunkReport()
    try:
        trusted = _send(messages, relay)
    except Exception as exc:  # the relay is misconfigured or broke: retry what is unknown
        logger.error("mailwright: the relay backend failed: %s", describe(exc))
        trusted = False
    for message in messages:
        _sort(message, trusted, report)
    return report


def _sort(message: RawMessage, trusted: bool, report: ChunkReport) -> None:
    delivery = message.delivery
    if delivery is None:
        if trusted:
            report.delivered += 1
            report.accepted += len(message.to)
        else:
            report.retry.append((message, "not sent (the batch stopped before it)"))
        return
    accepted = set(delivery.accepted)
    retry: list[str] = []
    reasons: list[str] = []
    for address in message.to:
        if address in accepted:
            continue
        refusal = delivery.refused.get(address)
        if refusal is not None and refusal[0] > 0:  # the server's own reply
            code, text = refusal
            temporary = is_temporary_code(code)
            reason = f"{code} {' '.join(text.split())}"
        elif refusal is not None:  # no reply code: the error says why
            temporary = is_temporary(delivery.error)
            reason = describe(delivery.error) if delivery.error else refusal[1]
        else:  # never tried (the batch stopped before it)
            temporary = True
            reason = f"not sent: {describe(delivery.error)}" if delivery.error else "not sent"
        if temporary:
            retry.append(address)
            reasons.append(f"{address}: {reason}")
        else:
            report.refused.append((message_label(message), address, reason))
    if accepted:
        report.delivered += 1
        report.accepted += len(accepted & set(message.to))
    if retry:
        remaining = RawMessage(message.data, message.from_email, retry)
        report.retry.append((remaining, "; ".join(reasons)))


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
