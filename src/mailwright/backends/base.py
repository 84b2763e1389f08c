"""The base class every email backend derives from."""

from __future__ import annotations

from collections.abc import Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

if TYPE_CHECKING:
    from ..message import EmailMessage

__all__ = ["BaseEmailBackend"]


class BaseEmailBackend:
    """Base class for email backends.

    Subclasses implement ``send_messages()``; those that hold a connection also
    implement ``open()`` and ``close()``. Used as a context manager, a backend opens
    on entry and closes on exit::

        with get_connection() as connection:
            connection.send_messages(messages)
    """

    def __init__(self, fail_silently: bool = False, **kwargs: Any) -> None:
        self.fail_silently = fail_silently

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
