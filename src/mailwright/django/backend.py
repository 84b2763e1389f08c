"""``mailwright.django.EmailBackend``: Django's own mail code through mailwright's engine.

In a Django project's settings::

    EMAIL_BACKEND = "mailwright.django.EmailBackend"

``send_mail``, ``mail_admins``, Django's ``EmailMessage`` and ``EmailMultiAlternatives``
(and everything built on them: password reset mails, error reports) then send through
mailwright's SMTP backend: verified TLS, pipelining, ``connections=N``, per-recipient
results. It is configured from Django's ``EMAIL_*`` settings (those the project set; see
``mailwright.django.settings``) and from keyword arguments, which go to the engine as
they are (``get_connection("mailwright.django.EmailBackend", connections=8)``).
``backend=`` picks another mailwright backend as the engine (the durable outbox, for
one).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.core.mail.backends.base import BaseEmailBackend  # type: ignore[import-untyped]

from ..api import get_connection
from ..backends.base import BaseEmailBackend as MailwrightBackend
from ..message import EmailMessage, Envelope
from .convert import to_mailwright

__all__ = ["EmailBackend"]

ENGINE = "mailwright.backends.smtp.EmailBackend"


class EmailBackend(BaseEmailBackend):  # type: ignore[misc]
    """A Django email backend that sends through a mailwright backend (the engine).

    After ``send_messages``, each Django message has ``delivery`` (a
    ``mailwright.Delivery``: ``accepted``, ``refused``, ``error``, ``sent``). Attributes
    the engine has (``host``, ``port``, ``use_tls``, ``timeout``...) read through.
    """

    def __init__(
        self, fail_silently: bool = False, *, backend: str | None = None, **kwargs: Any
    ) -> None:
        super().__init__(fail_silently=fail_silently)
        self.engine: MailwrightBackend = get_connection(
            backend or ENGINE, fail_silently=fail_silently, **kwargs
        )

    def __getattr__(self, name: str) -> Any:
        if name == "engine":  # not set yet: __init__ failed
            raise AttributeError(name)
        return getattr(self.engine, name)

    def __repr__(self) -> str:
        return f"<mailwright.django.EmailBackend engine={self.engine!r}>"

    def open(self) -> bool | None:
        return self.engine.open()

    def close(self) -> None:
        self.engine.close()

    def send_messages(self, email_messages: Iterable[Any]) -> int:
        """Send Django (or mailwright) messages; return how many were sent. Each one is
        converted as the engine reaches it, so a bad message stops the batch after the
        messages before it, as with mailwright's own messages."""
        pairs: list[tuple[Any, Any]] = []

        def converted() -> Iterable[Any]:
            for message in email_messages:
                try:
                    mailwright_message = to_mailwright(message)
                except Exception as exc:  # fails where the engine expects failures
                    mailwright_message = _Unconvertible(exc)
                pairs.append((message, mailwright_message))
                yield mailwright_message

        try:
            return self.engine.send_messages(converted())  # type: ignore[arg-type]
        finally:
            for message, mailwright_message in pairs:
                if message is not mailwright_message:
                    message.delivery = mailwright_message.delivery


class _Unconvertible(EmailMessage):
    """Stands for a message that could not be converted: composing it raises the
    error, so the engine stops the batch there, cleanly, as for a bad header."""

    def __init__(self, error: Exception) -> None:
        super().__init__()
        self.error = error

    def envelope(self, dkim: Any = None) -> Envelope:
        raise self.error
