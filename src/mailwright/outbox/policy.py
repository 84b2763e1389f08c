"""The retry policy: which replies are worth trying again, and how long to wait.

The same rules as ``mailwright.bulk`` (``THROTTLING_CODES``, ``_temporary``,
``_backoff``) with the delays as parameters, since the outbox waits minutes where a
bulk send waits milliseconds. Everything the outbox decides about retrying is here, in
this one module, so that it can give way to the shared retry policy when the bulk
sender's becomes one (the ``bulk/`` package).
"""

from __future__ import annotations

import enum
import random
import smtplib
from collections.abc import Callable

__all__ = ["THROTTLING_CODES", "Kind", "backoff", "classify"]

#: Replies that mean "slow down": the connection pauses; 421 also ends the session.
THROTTLING_CODES = frozenset({421, 451, 454})


class Kind(enum.Enum):
    """What a failed delivery to one recipient calls for."""

    TEMPORARY = "temporary"  # try again later
    THROTTLING = "throttling"  # try again later, and pause the connection
    PERMANENT = "permanent"  # give up: the dead-letter state, with the reply


def classify(code: int | None, error: BaseException | None = None) -> Kind:
    """How to treat a recipient the server did not accept.

    ``code`` is the server's reply code when there was one. 4xx is temporary (421, 451
    and 454 also throttle), 5xx permanent. Without a reply code: a server that lacks an
    extension the message needs (SMTPUTF8) is permanent; everything else (a broken
    connection, a timeout, a garbled reply, a message its batch never reached) is
    temporary: retrying is how nothing gets lost.
    """
    if code in THROTTLING_CODES:
        return Kind.THROTTLING
    if code is not None and 400 <= code < 500:
        return Kind.TEMPORARY
    if code is not None and 500 <= code < 600:
        return Kind.PERMANENT
    if isinstance(error, smtplib.SMTPNotSupportedError):
        return Kind.PERMANENT
    return Kind.TEMPORARY


def backoff(
    attempt: int,
    first: float,
    most: float,
    uniform: Callable[[], float] = random.random,
) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1, 2, ...).

    Exponential (``first``, doubled per attempt, at most ``most``) with jitter: half of
    the delay is fixed, the other half random, so workers that failed together do not
    come back together, and no retry comes sooner than half the nominal delay.
    """
    nominal = min(most, first * 2.0 ** min(max(attempt, 1) - 1, 60))
    return nominal / 2 + nominal / 2 * uniform()
