"""The base class every email backend derives from."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self, TypeVar

if TYPE_CHECKING:
    from ..message import EmailMessage

__all__ = ["BaseEmailBackend", "relay_alias"]

_T = TypeVar("_T")


async def _to_thread(function: Callable[..., _T], *args: Any) -> _T:
    import asyncio  # loaded on first async use: sync programs never pay for it

    return await asyncio.to_thread(function, *args)


class BaseEmailBackend:
    """Base class for email backends.

    Subclasses implement ``send_messages()``; those that hold a connection also
    implement ``open()`` and ``close()``; their ``__init__`` passes the keyword
    arguments it does not take (``alias`` among them) on to this one. Used as a context
    manager, a backend opens on entry and closes on exit::

        with get_connection() as connection:
            connection.send_messages(messages)

    The async twins ``aopen()``, ``aclose()``, ``asend_messages()`` and ``async with``
    run the sync methods in a worker thread, so every backend works from asyncio code
    unchanged. A backend whose sync methods never wait on the network sets
    ``async_inline = True`` and they run directly on the event loop; a backend with
    a native async implementation overrides the three methods.
    """

    #: Run the sync methods on the event loop instead of a worker thread.
    async_inline = False

    def __init__(
        self, fail_silently: bool = False, *, alias: str | None = None, **kwargs: Any
    ) -> None:
        self.fail_silently = fail_silently
        #: The mailer this backend was made for (``mailwright.mailers[alias]``), or None.
        self.alias = alias
        if kwargs and alias is not None:
            # Made for a mailer: an option nothing along the way took is a mistake
            # in MAILERS. (Made directly, unknown keywords are ignored, as Django does.)
            from ..exceptions import InvalidMailer

            raise InvalidMailer(
                f"Unknown options {', '.join(map(repr, kwargs))}. "
                f"{type(self).__module__}.{type(self).__qualname__} does not take them.",
                alias=alias,
            )

    def open(self) -> bool | None:
        """Open a connection if the backend uses one. Return True if a new one was
        opened, so a caller knows it must close it."""
        return None

    def close(self) -> None:
        """Close the connection, if one is open."""

    def __enter__(self) -> Self:
        try:
            self.open()
        except Exception:
            self.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def send_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        """Send messages; return how many were sent."""
        raise NotImplementedError("subclasses of BaseEmailBackend must implement send_messages()")

    # --- asyncio ---

    async def aopen(self) -> bool | None:
        """``open()`` without blocking the event loop."""
        if self.async_inline:
            return self.open()
        return await _to_thread(self.open)

    async def aclose(self) -> None:
        """``close()`` without blocking the event loop."""
        if self.async_inline:
            self.close()
        else:
            await _to_thread(self.close)

    async def asend_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        """``send_messages()`` without blocking the event loop."""
        if self.async_inline:
            return self.send_messages(email_messages)
        return await _to_thread(self.send_messages, email_messages)

    async def __aenter__(self) -> Self:
        try:
            await self.aopen()
        except BaseException:
            await self.aclose()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()


def relay_alias(relay: Any, alias: str | None) -> str | None:
    """The ``relay`` option of the queue and Celery backends: the alias of the mailer
    their workers deliver through, or None. A mailer that is not configured here is
    an error now, not in a worker later (which reads its own settings)."""
    if relay is None:
        return None
    from ..exceptions import ImproperlyConfigured, InvalidMailer

    if not isinstance(relay, str) or not relay:
        message = f"relay= names a mailer (a MAILERS alias), not {relay!r}"
        raise InvalidMailer(message, alias=alias) if alias else ImproperlyConfigured(message)
    from .mailers import mailers

    if relay not in mailers:
        message = f"relay={relay!r}: no mailer has this alias (configured: {list(mailers)})"
        raise InvalidMailer(message, alias=alias) if alias else ImproperlyConfigured(message)
    if relay == alias:
        raise InvalidMailer(
            f"relay={relay!r} is this mailer itself: its workers would queue each message "
            "again instead of delivering it",
            alias=alias,
        )
    return relay
