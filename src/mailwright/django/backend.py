"""``mailwright.django.EmailBackend``: Django's own mail code through mailwright's engine.

In a Django project's settings, the ``EMAIL_BACKEND`` form (Django 4.2 to 6.1)::

    EMAIL_BACKEND = "mailwright.django.EmailBackend"

or Django 6.1's ``MAILERS`` form, with the engine's options in ``OPTIONS``::

    MAILERS = {
        "default": {
            "BACKEND": "mailwright.django.EmailBackend",
            "OPTIONS": {"host": "smtp.example.com", "port": 587, "use_tls": True},
        },
    }

``send_mail``, ``mail_admins``, Django's ``EmailMessage`` and ``EmailMultiAlternatives``
(and everything built on them: password reset mails, error reports) then send through
mailwright's SMTP backend: verified TLS, pipelining, ``connections=N``, per-recipient
results. It is configured from Django's ``EMAIL_*`` settings (those the project set; see
``mailwright.django.settings``) and from keyword arguments (``OPTIONS``), which go to the
engine as they are (``get_connection("mailwright.django.EmailBackend", connections=8)``).
``backend=`` picks another mailwright backend as the engine (the durable queue, for
one).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from django.core.mail.backends.base import BaseEmailBackend  # type: ignore[import-untyped]

from ..backends.base import BaseEmailBackend as MailwrightBackend
from ..backends.loading import import_backend
from ..backends.mailers import accepted_options
from ..exceptions import InvalidMailer
from ..message import EmailMessage, Envelope
from .convert import to_mailwright

__all__ = ["EmailBackend"]

ENGINE = "mailwright.backends.smtp.EmailBackend"

#: What Django 6.1's deprecated ``get_connection(**kwargs)`` adds under ``MAILERS``: the
#: names of the keyword arguments that came from the caller, which Django's own base
#: class is told not to report. They are options like any other here.
_DJANGO_IGNORED = "_ignore_unknown_kwargs"


class EmailBackend(BaseEmailBackend):  # type: ignore[misc]
    """A Django email backend that sends through a mailwright backend (the engine).

    ``alias`` is the ``MAILERS`` entry Django made it for (kept as ``.alias``; ``None``
    in the ``EMAIL_BACKEND`` form). ``fail_silently`` and every other keyword argument
    go to the engine; Django's base class sees only ``alias``, so Django 6.1 reports
    nothing about them.

    After ``send_messages``, each Django message has ``delivery`` (a
    ``mailwright.Delivery``: ``accepted``, ``refused``, ``error``, ``sent``). Attributes
    the engine has (``host``, ``port``, ``use_tls``, ``timeout``...) read through.
    """

    def __init__(
        self,
        fail_silently: bool = False,
        *,
        alias: str | None = None,
        backend: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(alias=alias)  # Django < 6.1 takes and ignores it
        self.alias = alias
        self.fail_silently = fail_silently
        engine = import_backend(backend or ENGINE)
        _drop_ignored(engine, kwargs)
        try:
            self.engine: MailwrightBackend = engine(
                fail_silently=fail_silently, alias=alias, **kwargs
            )
        except InvalidMailer as exc:
            raise _as_djangos(exc, alias) from exc

    def __getattr__(self, name: str) -> Any:
        if name == "engine":  # not set yet: __init__ failed
            raise AttributeError(name)
        return getattr(self.engine, name)

    def __repr__(self) -> str:
        alias = f" alias={self.alias!r}" if self.alias is not None else ""
        return f"<mailwright.django.EmailBackend{alias} engine={self.engine!r}>"

    def open(self) -> bool | None:
        return self.engine.open()

    def close(self) -> None:
        self.engine.close()

    def send_messages(self, email_messages: Iterable[Any]) -> int:
        """Send Django (or mailwright) messages; return how many were sent. Each one is
        converted as the engine reaches it, so a bad message stops the batch after the
        messages before it, as with mailwright's own messages."""
        with _Converted(email_messages) as converted:
            return self.engine.send_messages(converted)  # type: ignore[arg-type]

    # --- asyncio: Django has no async mail API; these are mailwright's, on the engine ---

    async def aopen(self) -> bool | None:
        return await self.engine.aopen()

    async def aclose(self) -> None:
        await self.engine.aclose()

    async def asend_messages(self, email_messages: Iterable[Any]) -> int:
        """``send_messages()`` on the engine's async path (the SMTP engine's asyncio
        driver), for ``async`` views and tasks."""
        with _Converted(email_messages) as converted:
            return await self.engine.asend_messages(converted)  # type: ignore[arg-type]

    async def __aenter__(self) -> EmailBackend:
        try:
            await self.aopen()
        except BaseException:
            await self.aclose()
            raise
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


def _drop_ignored(engine: type[MailwrightBackend], kwargs: dict[str, Any]) -> None:
    """Take ``_ignore_unknown_kwargs`` out of ``kwargs``, and with it the keywords it
    names that the engine does not take: Django ignores those (they came from a
    deprecated ``get_connection(**kwargs)`` call, not from the mailer's OPTIONS)."""
    ignored = kwargs.pop(_DJANGO_IGNORED, None) or ()
    accepted = accepted_options(engine)
    if accepted is not None:
        for name in ignored:
            if name not in accepted:
                kwargs.pop(name, None)


def _as_djangos(error: InvalidMailer, alias: str | None) -> Exception:
    """mailwright's ``InvalidMailer`` as Django's (Django 6.1 has one; a project catches
    that), with the same message; mailwright's own where Django has none."""
    try:
        from django.core.mail import (  # type: ignore[import-untyped]
            InvalidMailer as DjangoInvalidMailer,
        )
    except ImportError:  # Django < 6.1
        return error
    message = str(error)
    if alias is not None:
        message = message.removeprefix(f"MAILERS[{alias!r}]: ")
    return DjangoInvalidMailer(message, alias=alias)  # type: ignore[no-any-return]


class _Converted:
    """The messages as mailwright messages, converted as the engine reaches them; on
    exit, each Django message gets the ``delivery`` of its mailwright message."""

    def __init__(self, email_messages: Iterable[Any]) -> None:
        self.source = email_messages
        self.pairs: list[tuple[Any, EmailMessage]] = []

    def __iter__(self) -> Iterator[EmailMessage]:
        for message in self.source:
            try:
                mailwright_message = to_mailwright(message)
            except Exception as exc:  # fails where the engine expects failures
                mailwright_message = _Unconvertible(exc)
            self.pairs.append((message, mailwright_message))
            yield mailwright_message

    def __enter__(self) -> Iterator[EmailMessage]:
        return iter(self)

    def __exit__(self, *exc_info: object) -> None:
        for message, mailwright_message in self.pairs:
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
