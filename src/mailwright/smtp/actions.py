"""What the protocol core asks its driver to do.

The conversations in ``session`` and ``transactions`` are generators: they yield
actions, and the driver (blocking sockets in ``sync``, asyncio streams in ``aio``)
performs each one and sends back the result. They contain every decision; a driver
only moves bytes. The answers a driver sends back:

=================  =====================================================
action             the driver sends back
=================  =====================================================
``Send``           None, once the bytes are written (with ``then_envelope``:
                   the answer to ``NEED_ENVELOPE``)
``NEED_DATA``      the bytes read (``b""``: the peer closed)
``StartTLS``       None, once the connection is wrapped in TLS
``NEED_ENVELOPE``  the next ``(index, Envelope)`` to send, or None
``Outcome``        None (the driver hands the outcome to its caller)
``Step``           None (a driver may report it; ``mailwright check`` does)
``FetchToken``     the result of ``fetch()`` (an OAuth2 access token), or its
                   exception thrown in; it may block (an HTTP request), so the
                   asyncio driver runs it in a thread
``Abort``          nothing: the driver drops the connection, unanswered
=================  =====================================================

A driver that fails to perform an action (a timeout, a reset) throws the exception
into the generator, which records what it means for the messages in flight and
re-raises it.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, NamedTuple

if TYPE_CHECKING:
    from ..message import Delivery

__all__ = [
    "NEED_DATA",
    "NEED_ENVELOPE",
    "Abort",
    "Action",
    "FetchToken",
    "Outcome",
    "Send",
    "StartTLS",
    "Step",
]


class _Need(enum.Enum):
    DATA = "need data"
    ENVELOPE = "need envelope"


NEED_DATA: Final = _Need.DATA
NEED_ENVELOPE: Final = _Need.ENVELOPE


class Send(NamedTuple):
    """Write ``data``; with ``then_envelope``, also answer as for ``NEED_ENVELOPE``
    (one step instead of two on the hot path of a pipelined batch). A named tuple:
    one is made per group, and a tuple is the cheapest value to make."""

    data: bytes
    then_envelope: bool = False


@dataclass(frozen=True, slots=True)
class StartTLS:
    pass


@dataclass(frozen=True, slots=True)
class Step:
    """A named step of setting up a session starts (for progress reports)."""

    name: str
    detail: str = ""


@dataclass(frozen=True, slots=True)
class FetchToken:
    """Get an OAuth2 access token: call ``fetch`` and send back what it returns."""

    fetch: Callable[[], str]


@dataclass(frozen=True, slots=True)
class Abort:
    """Drop the connection now without another byte: the server must discard the
    message whose content it is waiting for."""

    reason: str


@dataclass(slots=True)
class Outcome:
    """What happened to one message. ``delivery.accepted`` says who got it; when
    ``error`` is set nobody did (``delivery.error`` holds the same error)."""

    index: int
    delivery: Delivery
    error: BaseException | None


Action = Send | StartTLS | Step | Abort | FetchToken | Outcome | _Need
