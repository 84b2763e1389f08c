"""The retry policy: which replies and errors are worth another try, how long to wait,
and which ones slow the sender down.

Pure functions and values, no I/O: ``send_bulk`` (threads and asyncio alike), the
durable outbox worker and the Celery task all decide with them.

* **Temporary**: a 4xx reply (RFC 5321 section 4.2.1), a connection that failed or
  timed out (the message may or may not have arrived: delivery is at least once), and
  a message that was never tried.
* **Permanent**: a 5xx reply, a message the server cannot take (no SMTPUTF8, over its
  SIZE), anything else.
* **Throttling**: 421, 451 and 454 ask the client to slow down: the connection pauses,
  and after 421 (the server closed the session) it reconnects.
"""

from __future__ import annotations

import random
import smtplib
from dataclasses import dataclass

from ..smtp.errors import NotAttemptedError

__all__ = [
    "THROTTLING_CODES",
    "RetryPolicy",
    "error_code",
    "is_temporary",
    "is_temporary_code",
    "is_throttling",
]

THROTTLING_CODES = frozenset({421, 451, 454})


def error_code(error: BaseException | None) -> int | None:
    """The SMTP reply code behind an error, when a server gave one."""
    code = getattr(error, "smtp_code", None)
    if isinstance(code, int) and code > 0:
        return code
    if isinstance(error, smtplib.SMTPRecipientsRefused) and error.recipients:
        codes = {code for code, _ in error.recipients.values()}
        return max(codes)  # a 5xx among them makes the whole refusal permanent
    return None


def is_temporary_code(code: int | None) -> bool:
    return code is not None and 400 <= code < 500


def is_temporary(error: BaseException | None) -> bool:
    """Worth another try later?"""
    if error is None:
        return False
    if isinstance(error, NotAttemptedError):
        return True
    code = error_code(error)
    if code is not None:
        return is_temporary_code(code)
    # A broken or timed-out connection, or a server that hung up: try again.
    return isinstance(error, smtplib.SMTPServerDisconnected | TimeoutError | ConnectionError) or (
        isinstance(error, OSError) and not isinstance(error, smtplib.SMTPException)
    )


def is_throttling(code: int | None) -> bool:
    return code in THROTTLING_CODES


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential back-off: ``base * factor ** (attempt - 1)``, at most ``cap``
    seconds, spread by ``jitter`` (0.2: ±20 %) so clients that failed together do not
    come back together; at most ``max_attempts`` tries in all."""

    max_attempts: int = 5
    base: float = 0.05
    factor: float = 2.0
    cap: float = 5.0
    jitter: float = 0.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {self.max_attempts!r}")
        if self.base < 0 or self.cap < 0 or self.factor < 1 or not 0 <= self.jitter < 1:
            raise ValueError(f"invalid back-off {self!r}")

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        delay = min(self.cap, self.base * self.factor ** max(0, attempt - 1))
        if self.jitter:
            spread = (rng or random).uniform(-self.jitter, self.jitter)
            delay *= 1 + spread
        return delay

    def can_retry(self, attempt: int) -> bool:
        """May attempt number ``attempt`` be followed by another?"""
        return attempt < self.max_attempts


#: What send_bulk uses: quick retries for an interactive batch.
BULK_POLICY = RetryPolicy()
