"""The mailwright backend that stands for Django's locmem backend inside a Django
project: messages sent with mailwright's functions land in ``django.core.mail.outbox``,
where a Django test looks for them."""

from __future__ import annotations

from typing import Any

from ..backends import locmem

__all__ = ["EmailBackend"]


class EmailBackend(locmem.EmailBackend):
    """Appends copies of messages to ``django.core.mail.outbox`` (created if missing)."""

    def outbox(self) -> list[Any]:
        from django.core import mail  # type: ignore[import-untyped]

        if not hasattr(mail, "outbox"):
            mail.outbox = []
        outbox: list[Any] = mail.outbox
        return outbox
