"""In-memory backend for tests: sent messages go to ``mailwright.outbox``."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .base import BaseEmailBackend

if TYPE_CHECKING:
    from ..message import EmailMessage

__all__ = ["EmailBackend"]


def _outbox() -> list[Any]:
    # Looked up on every send, so a test may replace the list (mailwright.outbox = []).
    import mailwright

    outbox = getattr(mailwright, "outbox", None)
    if outbox is None:
        outbox = mailwright.outbox = []
    return outbox


class EmailBackend(BaseEmailBackend):
    """Appends a copy of every message to ``mailwright.outbox``.

    Each message is fully composed first, so a bad header or address fails here
    exactly as it would with a real server. The async methods run inline.
    """

    async_inline = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _outbox()

    def send_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        sent = 0
        for message in email_messages:
            message.as_bytes()
            _outbox().append(copy.copy(message))
            sent += 1
        return sent
