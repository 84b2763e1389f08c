"""Composing a job's message, outside any lock (it is the costly part of a send)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..message import Envelope
    from ..message.dkim import DKIMSigner
    from .queue import Job

__all__ = ["compose"]


def compose(
    job: Job, dkim: DKIMSigner | None = None
) -> tuple[Envelope | None, BaseException | None, str]:
    """``(envelope, None, "")`` when the job can be sent, else ``(None, error, reason)``.
    With ``dkim``, the envelope is signed (once: a retry reuses it)."""
    if job.envelope is None:
        try:
            envelope = job.message.envelope(dkim) if dkim else job.message.envelope()
        except Exception as exc:
            from ..describe import describe

            return None, exc, describe(exc)
        if not envelope.recipients:
            return None, None, "the message has no recipients"
        job.envelope = envelope
    return job.envelope, None, ""
