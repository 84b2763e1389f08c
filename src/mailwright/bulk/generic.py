"""Sending a bulk job through any backend other than SMTP: one message at a time."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..backends.base import BaseEmailBackend
    from ..message import EmailMessage
    from ..smtp import Outcome
    from .queue import Job

__all__ = ["asend_one", "outcome_of", "send_one"]


def outcome_of(
    index: int,
    message: EmailMessage,
    recipients: list[str],
    sent: int,
    error: BaseException | None,
) -> Outcome:
    """The outcome of a ``send_messages([message])`` call that returned ``sent`` or
    raised ``error``, from the message's ``delivery`` when the backend set one."""
    from ..message import Delivery
    from ..smtp import Outcome

    delivery = message.delivery
    if error is not None:
        code = getattr(error, "smtp_code", 0) or 0
        delivery = Delivery([], {r: (code, str(error)) for r in recipients}, error)
        return Outcome(index, delivery, error)
    if delivery is None or (not delivery.accepted and not delivery.refused):
        if sent:
            delivery = Delivery(list(recipients), {}, None)
        else:
            error = RuntimeError("the backend did not send it")
            delivery = Delivery([], {r: (0, str(error)) for r in recipients}, error)
    return Outcome(index, delivery, None if delivery.accepted else delivery.error)


def _recipients(job: Job) -> list[str]:
    return job.envelope.recipients if job.envelope else job.message.recipients()


def send_one(backend: BaseEmailBackend, job: Job) -> Outcome:
    try:
        sent = backend.send_messages([job.message])
    except Exception as exc:
        return outcome_of(job.index, job.message, _recipients(job), 0, exc)
    return outcome_of(job.index, job.message, _recipients(job), sent, None)


async def asend_one(backend: BaseEmailBackend, job: Job) -> Outcome:
    try:
        sent = await backend.asend_messages([job.message])
    except Exception as exc:
        return outcome_of(job.index, job.message, _recipients(job), 0, exc)
    return outcome_of(job.index, job.message, _recipients(job), sent, None)
