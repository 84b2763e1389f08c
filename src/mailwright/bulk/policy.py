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

``sort_recipients`` applies these rules to one transaction's outcome, recipient by
recipient (accepted, temporary, permanent, not tried): the one place where a reply
becomes a verdict, for ``send_bulk``, the outbox worker and the Celery task alike.
What each does next (try again with back-off, give up after so many attempts or so
long) is its own affair.
"""

from __future__ import annotations

import random
import smtplib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..describe import describe
from ..smtp.errors import NotAttemptedError

if TYPE_CHECKING:
    from ..message import Delivery

__all__ = [
    "THROTTLING_CODES",
    "RecipientResults",
    "RetryPolicy",
    "error_code",
    "is_temporary",
    "is_temporary_code",
    "is_throttling",
    "sort_recipients",
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


#: A recipient's reply: the code (0 when no server gave one) and the text.
Reply = tuple[int, str]


@dataclass(slots=True)
class RecipientResults:
    """One transaction's outcome, recipient by recipient. ``not_tried`` is the whole
    message when the batch ended before it (no attempt was used); ``throttled`` and
    ``reconnect`` say what the replies ask of the connection (pause; 421: the server
    ended the session). ``cause`` is the error that failed the message, if any."""

    accepted: list[str] = field(default_factory=list)
    temporary: dict[str, Reply] = field(default_factory=dict)
    permanent: dict[str, Reply] = field(default_factory=dict)
    not_tried: list[str] = field(default_factory=list)
    throttled: bool = False
    reconnect: bool = False
    cause: BaseException | None = None

    @property
    def everyone_accepted(self) -> bool:
        return not (self.temporary or self.permanent or self.not_tried)


_NO_REPORT = "not tried (no report)"


def sort_recipients(
    recipients: Sequence[str], delivery: Delivery | None, error: BaseException | None = None
) -> RecipientResults:
    """Sort ``recipients`` by what ``delivery`` (and ``error``, what failed the message
    when no delivery says it) report for them:

    * **accepted**: the server took the message for them;
    * **not tried**: the message was never tried (``NotAttemptedError``, nobody reached);
    * **temporary** or **permanent**, with the reply: a recipient's own reply code
      decides (4xx temporary, 5xx permanent); 503 "bad sequence" is temporary (in a
      pipeline it is the echo of an earlier refusal, not a verdict on the recipient);
      after a refused MAIL, the MAIL reply is every recipient's. Without a reply code
      of its own (a broken connection, a refusal at connect such as AUTH's 535, or no
      report at all), the error decides (``is_temporary``); with no error either, the
      recipient was not reached and is tried again.
    """
    cause = (delivery.error if delivery is not None else None) or error
    accepted = delivery.accepted if delivery is not None else ()
    refused = delivery.refused if delivery is not None else {}
    if (  # the usual case: everyone accepted it
        cause is None
        and not refused
        and len(accepted) == len(recipients)
        and (accepted == recipients or set(accepted) == set(recipients))
    ):
        return RecipientResults(list(recipients))
    results = RecipientResults(cause=cause)
    if isinstance(cause, NotAttemptedError) and not accepted and not refused:
        results.not_tried = list(recipients)
        return results
    if isinstance(cause, smtplib.SMTPSenderRefused):
        # MAIL refused: the RCPT replies that follow it in a pipeline only say "503
        # MAIL first"; the MAIL reply is what counts, for every recipient.
        raw = cause.smtp_error
        reply = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
        refused = dict.fromkeys(recipients, (cause.smtp_code, reply))
    accepted_set = set(accepted)
    cause_code = error_code(cause) or 0
    cause_text: str | None = None
    for address in recipients:
        if address in accepted_set:
            results.accepted.append(address)
            continue
        refusal = refused.get(address)
        if refusal is not None and refusal[0] > 0:
            code, text = refusal
            temporary = code == 503 or is_temporary_code(code)
        else:
            if cause_text is None:
                cause_text = describe(cause) if cause is not None else ""
            code = cause_code
            text = cause_text or (refusal[1] if refusal is not None else _NO_REPORT)
            temporary = cause is None or is_temporary(cause)
        if code in THROTTLING_CODES:
            results.throttled = True
            results.reconnect = results.reconnect or code == 421
        (results.temporary if temporary else results.permanent)[address] = (code, text)
    return results
