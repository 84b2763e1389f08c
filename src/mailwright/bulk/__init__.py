"""Sending many messages: ``send_bulk`` and ``asend_bulk`` spread them over parallel
SMTP connections that draw from one queue.

* ``results``: ``BulkResult``, ``Refusal``, ``Failure``;
* ``queue``: the jobs and the books (no threading primitives); each message is settled
  exactly once, in one place;
* ``policy``: the retry policy (temporary or permanent, back-off, throttling), shared
  with the durable outbox and the Celery task;
* ``rate``: ``RateLimiter``;
* ``plan``: arguments and backends; ``compose``, ``generic``: helpers of the drivers;
* ``aio``: the asyncio driver, which runs every SMTP send (``send_bulk``'s on a loop
  of its own); ``threads``: the thread driver, for ``send_bulk`` through any other
  backend (whose sync methods block).

Over each connection transactions are pipelined back to back, which makes the cost of
a message one network round trip. ``rate_limit`` (messages per second) paces all
connections together. Throttling replies (421, 451, 454) and other temporary (4xx)
refusals put the message (or just its refused recipients) back in the queue with
exponential back-off, and pause the connection that got them; 421 also reconnects.
Nothing is swallowed: the result lists every permanently refused recipient and every
message that could not be sent, with the reason. Delivery is at least once: a message
whose connection broke after its content went out but before the server's reply
arrived is sent again.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from .plan import Plan
from .policy import THROTTLING_CODES, RetryPolicy
from .rate import RateLimiter
from .results import BulkResult, Failure, Refusal

if TYPE_CHECKING:
    from ..backends.base import BaseEmailBackend
    from ..message import EmailMessage
    from ..message.dkim import DKIMSigner
    from ..smtp import SMTPConfig

__all__ = [
    "THROTTLING_CODES",
    "BulkResult",
    "Failure",
    "RateLimiter",
    "Refusal",
    "RetryPolicy",
    "asend_bulk",
    "send_bulk",
]


def _finish(result: BulkResult, started: float) -> BulkResult:
    result.failed.sort(key=lambda failure: failure.index)
    result.refused.sort(key=lambda refusal: refusal.index)
    result.elapsed = time.monotonic() - started
    return result


def send_bulk(
    messages: Iterable[EmailMessage],
    connections: int = 4,
    rate_limit: float | None = None,
    *,
    backend: str | type[BaseEmailBackend] | None = None,
    config: SMTPConfig | None = None,
    dkim: DKIMSigner | None = None,
    using: str | None = None,
    on_result: Callable[[int, EmailMessage], None] | None = None,
    **backend_kwargs: Any,
) -> BulkResult:
    """Send ``messages`` (any iterable: a list, a generator, a database cursor) over
    ``connections`` parallel connections; never raises for a single message: look at
    the result. The iterable is read as messages go out, never more than a few per
    connection ahead of what the server has answered, so memory stays flat however
    many there are. ``on_result(index, message)`` is called as each message is
    settled (``message.delivery`` says what happened). ``rate_limit`` caps messages
    per second over all connections. ``using`` names the mailer to send with (the
    default mailer when nothing is given); or ``backend``/``backend_kwargs`` choose
    and configure the backend as ``get_connection`` does; or ``config`` gives an SMTP
    configuration directly, and ``dkim`` the DKIM signer that goes with it (a backend
    or mailer signs as its options say). Thread-safe. What the iterable or
    ``on_result`` raises is raised once the messages taken were sent.

    Over SMTP the connections run as tasks of an event loop of its own, in this
    thread (``bulk.aio.run_blocking``); through any other backend, one thread per
    connection."""
    from ..message.message import batch_settings
    from .aio import run_blocking
    from .threads import run_threads

    started = time.monotonic()
    plan = Plan.make(
        messages,
        connections,
        rate_limit,
        backend,
        backend_kwargs,
        config,
        dkim,
        using=using,
        on_result=on_result,
    )
    with batch_settings():  # read once for the batch; each task or thread copies the context
        if plan.config is not None:  # SMTP: the connections are tasks of one event loop
            return _finish(run_blocking(plan), started)
        return _finish(run_threads(plan), started)


async def asend_bulk(
    messages: Iterable[EmailMessage],
    connections: int = 4,
    rate_limit: float | None = None,
    *,
    backend: str | type[BaseEmailBackend] | None = None,
    config: SMTPConfig | None = None,
    dkim: DKIMSigner | None = None,
    using: str | None = None,
    on_result: Callable[[int, EmailMessage], None] | None = None,
    **backend_kwargs: Any,
) -> BulkResult:
    """``send_bulk`` for asyncio code: the same arguments and result, the connections
    as concurrent tasks on the asyncio SMTP driver. Cancelling it drops every
    connection at once."""
    from ..message.message import batch_settings
    from .aio import run_tasks

    started = time.monotonic()
    plan = Plan.make(
        messages,
        connections,
        rate_limit,
        backend,
        backend_kwargs,
        config,
        dkim,
        using=using,
        on_result=on_result,
    )
    with batch_settings():  # read once for the batch; its tasks copy the context
        return _finish(await run_tasks(plan), started)
