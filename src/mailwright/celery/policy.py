"""How a Celery delivery task sorts SMTP replies, and how long it waits before a retry.

Kept in this one small module on purpose: the same rules live in ``mailwright.bulk``
today and are moving to a shared retry-policy module; when that lands, this module
becomes a thin re-export of it.

* 2xx: delivered.
* 421, 451, 454: the server is throttling us (temporary, back off).
* any other 4xx: temporary, try again later.
* a connection that failed, or a message the batch never reached: temporary.
* 5xx, and errors with no reply code (SMTPUTF8 not offered, ...): permanent.
"""

from __future__ import annotations

import enum
import random
import smtplib

__all__ = ["THROTTLING_CODES", "Verdict", "backoff", "classify", "classify_error"]

THROTTLING_CODES = frozenset({421, 451, 454})
BACKOFF_MAX = 900.0  # seconds; keep under the broker's visibility timeout (see README)


class Verdict(enum.Enum):
    DELIVERED = "delivered"
    THROTTLED = "throttled"
    TEMPORARY = "temporary"
    PERMANENT = "permanent"

    @property
    def retry(self) -> bool:
        return self in (Verdict.THROTTLED, Verdict.TEMPORARY)


def classify(code: int | None) -> Verdict:
    """The verdict on an SMTP reply code; ``None`` means the message was never
    answered (connection failed, or not tried), which is temporary."""
    if code is None:
        return Verdict.TEMPORARY
    if 200 <= code < 300:
        return Verdict.DELIVERED
    if code in THROTTLING_CODES:
        return Verdict.THROTTLED
    if 400 <= code < 500:
        return Verdict.TEMPORARY
    return Verdict.PERMANENT


def classify_error(error: BaseException | None) -> Verdict:
    """The verdict on what kept a message from its recipients: the server's reply
    when there was one; a broken connection or no error at all (never tried) is
    temporary; anything else (SMTPUTF8 missing, a bad message) is permanent."""
    code = getattr(error, "smtp_code", None)
    if isinstance(code, int) and code > 0:
        return classify(code)
    if error is None or isinstance(error, smtplib.SMTPServerDisconnected):
        return Verdict.TEMPORARY
    # Every smtplib error is an OSError too: only a plain one is the network's fault.
    if isinstance(error, OSError) and not isinstance(error, smtplib.SMTPException):
        return Verdict.TEMPORARY
    return Verdict.PERMANENT


def backoff(retry: int, first: float, cap: float = BACKOFF_MAX) -> float:
    """Seconds to wait before retry number ``retry`` (1, 2, ...): ``first`` doubled on
    each further retry, capped, with up to 25 % jitter so that chunks throttled
    together do not all come back at the same moment."""
    delay = first * float(2 ** min(max(0, retry - 1), 30))
    return min(cap, delay * random.uniform(1.0, 1.25))
