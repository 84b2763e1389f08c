"""In-memory backend for tests: sent messages go to ``mailwright.outbox``."""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from .base import BaseEmailBackend

if TYPE_CHECKING:
    from ..message import EmailMessage

__all__ = ["EmailBackend"]


class EmailBackend(BaseEmailBackend):
    """Appends a deep copy of every message to ``mailwright.outbox``: changing a message
    after sending it (``msg.to.append(...)``) leaves what was sent as it was.

    Each message is fully composed first, so a bad header or address fails here
    exactly as it would with a real server. Each copy's ``sent_using`` is the alias
    of the mailer that sent it (None for a backend made outside ``mailers``). The
    async methods run inline.
    """

    async_inline = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.outbox()

    def outbox(self) -> list[Any]:
        """The list sent messages are appended to. Looked up on every send, so a test
        may replace it (``mailwright.outbox = []``)."""
        import mailwright

        outbox: list[Any] | None = getattr(mailwright, "outbox", None)
        if outbox is None:
            outbox = mailwright.outbox = []
        return outbox

    def send_messages(self, email_messages: Iterable[EmailMessage]) -> int:
        sent = 0
        for message in email_messages:
            message.as_bytes()
            sent_copy = copy.deepcopy(message)
            sent_copy.sent_using = self.alias  # the mailer it went through (as Django 6.1)
            self.outbox().append(sent_copy)
            sent += 1
        return sent
