"""Dummy backend: sends nothing, and says everything was sent."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from .base import BaseEmailBackend

if TYPE_CHECKING:
    from ..message import EmailMessage

__all__ = ["EmailBackend"]


class EmailBackend(BaseEmailBackend):
    async_inline = True

    def send_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        return len(email_messages)
