"""Sending a bulk job through any backend other than SMTP: one message at a time."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..backends.base import BaseEmailBackend
    from ..smtp import Outcome
    from .queue import Job

__all__ = ["outcome_of", "send_one"]


def outcome_of(job: Job, sent: int, error: BaseException | None) -> Outcome:
    """The outcome of a ``send_messages([message])`` call that returned ``sent`` or
    raised ``error``, from the message's ``delivery`` when the backend set one."""
    from ..message import Delivery
    from ..smtp import Outcome

    delivery = job.message.delivery
    if error is not None:
        recipients = job.envelope.recipients if job.envelope else job.message.recipients()
        code = getattr(error, "smtp_code", 0) or 0
        delivery = Delivery([], {r: (code, str(error)) for r in recipients}, error)
        return Outcome(job.index, delivery, error)
    if delivery is None or (not delivery.accepted and not delivery.refused):
        recipients = job.envelope.recipients if job.envelope else job.message.recipients()
        if sent:
            delivery = Delivery(list(recipients), {}, None)
        else:
            error = RuntimeError("the backend did not send it")
            delivery = Delivery([], {r: (0, str(error)) for r in recipients}, error)
    return Outcome(job.index, delivery, None if delivery.accepted else delivery.error)


def send_one(backend: BaseEmailBackend, job: Job) -> Outcome:
    try:
        sent = backend.send_messages([job.message])
    except Exception as exc:
        return outcome_of(job, 0, exc)
    return outcome_of(job, sent, None)


async def asend_one(backend: BaseEmailBackend, job: Job) -> Outcome:
    try:
        sent = await backend.asend_messages([job.message])
    except Exception as exc:
        return outcome_of(job, 0, exc)
    return outcome_of(job, sent, None)
