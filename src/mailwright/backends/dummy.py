"""Dummy backend: sends nothing, and says everything was sent."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from .base import BaseEmailBackend

if TYPE_CHECKING:
    from ..message import EmailMessage

__all__ = ["EmailBackend"]


class EmailBackend(BaseEmailBackend):
    async_inline = True

    def send_messages(self, email_messages: Iterable[EmailMessage]) -> int:
        return sum(1 for _ in email_messages)  # any iterable, as Django's
