"""The module-level functions: ``send_mail``, ``send_mass_mail``, ``mail_admins``,
``mail_managers`` and their async twins; ``get_connection`` (from
``backends.loading``)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from .backends.base import BaseEmailBackend
from .backends.loading import get_connection
from .backends.mailers import backend_for, check_using
from .conf import settings
from .message import EmailMessage, EmailMultiAlternatives

__all__ = [
    "amail_admins",
    "amail_managers",
    "asend_mail",
    "asend_mass_mail",
    "get_connection",
    "mail_admins",
    "mail_managers",
    "send_mail",
    "send_mass_mail",
]


def send_mail(
    subject: str,
    message: str,
    from_email: str | None,
    recipient_list: Sequence[Any],
    fail_silently: bool = False,
    auth_user: str | None = None,
    auth_password: str | None = None,
    connection: BaseEmailBackend | None = None,
    html_message: str | None = None,
    *,
    using: str | None = None,
) -> int:
    """Send one message to every address in ``recipient_list`` (all in "To").
    Returns 1 if it was sent, else 0."""
    return _mail(
        subject,
        message,
        from_email,
        recipient_list,
        html_message,
        backend_for(
            using,
            connection,
            fail_silently=fail_silently,
            auth_user=auth_user,
            auth_password=auth_password,
        ),
    ).send()


def send_mass_mail(
    datatuple: Iterable[tuple[str, str, str | None, Sequence[Any]]],
    fail_silently: bool = False,
    auth_user: str | None = None,
    auth_password: str | None = None,
    connection: BaseEmailBackend | None = None,
    *,
    using: str | None = None,
) -> int:
    """Send each ``(subject, message, from_email, recipient_list)`` as its own message,
    all over one connection. Returns the number sent."""
    connection = backend_for(
        using,
        connection,
        fail_silently=fail_silently,
        auth_user=auth_user,
        auth_password=auth_password,
    )
    return connection.send_messages(_mass_messages(datatuple, connection))


def _mail(
    subject: str,
    message: str,
    from_email: str | None,
    recipient_list: Sequence[Any],
    html_message: str | None,
    connection: BaseEmailBackend | None,
) -> EmailMultiAlternatives:
    mail = EmailMultiAlternatives(
        subject, message, from_email, recipient_list, connection=connection
    )
    if html_message:
        mail.attach_alternative(html_message, "text/html")
    return mail


def _mass_messages(
    datatuple: Iterable[tuple[str, str, str | None, Sequence[Any]]],
    connection: BaseEmailBackend,
) -> list[EmailMessage]:
    return [
        EmailMessage(subject, message, sender, recipients, connection=connection)
        for subject, message, sender, recipients in datatuple
    ]


def _list_mail(
    setting: str,
    subject: str,
    message: str,
    using: str | None,
    connection: BaseEmailBackend | None,
    html_message: str | None,
) -> EmailMultiAlternatives | None:
    """The message for ADMINS or MANAGERS; None when the list is empty."""
    check_using(using, connection)
    entries = getattr(settings, setting)
    if not entries:
        return None
    # To holds the addresses: a (name, address) pair contributes its address.
    recipients = [entry if isinstance(entry, str) else entry[1] for entry in entries]
    return _mail(
        f"{settings.EMAIL_SUBJECT_PREFIX}{subject}",
        message,
        settings.SERVER_EMAIL,
        recipients,
        html_message,
        connection,
    )


def mail_admins(
    subject: str,
    message: str,
    fail_silently: bool = False,
    connection: BaseEmailBackend | None = None,
    html_message: str | None = None,
    *,
    using: str | None = None,
) -> int:
    """Send a message to ADMINS, subject prefixed with EMAIL_SUBJECT_PREFIX, from
    SERVER_EMAIL. Nothing is sent (and 0 returned) when ADMINS is empty."""
    mail = _list_mail("ADMINS", subject, message, using, connection, html_message)
    return mail.send(fail_silently=fail_silently, using=using) if mail else 0


def mail_managers(
    subject: str,
    message: str,
    fail_silently: bool = False,
    connection: BaseEmailBackend | None = None,
    html_message: str | None = None,
    *,
    using: str | None = None,
) -> int:
    """Like ``mail_admins``, to MANAGERS."""
    mail = _list_mail("MANAGERS", subject, message, using, connection, html_message)
    return mail.send(fail_silently=fail_silently, using=using) if mail else 0


# --- asyncio twins: the same arguments and results ---


async def asend_mail(
    subject: str,
    message: str,
    from_email: str | None,
    recipient_list: Sequence[Any],
    fail_silently: bool = False,
    auth_user: str | None = None,
    auth_password: str | None = None,
    connection: BaseEmailBackend | None = None,
    html_message: str | None = None,
    *,
    using: str | None = None,
) -> int:
    """``send_mail`` for asyncio code; never blocks the event loop."""
    return await _mail(
        subject,
        message,
        from_email,
        recipient_list,
        html_message,
        backend_for(
            using,
            connection,
            fail_silently=fail_silently,
            auth_user=auth_user,
            auth_password=auth_password,
        ),
    ).asend()


async def asend_mass_mail(
    datatuple: Iterable[tuple[str, str, str | None, Sequence[Any]]],
    fail_silently: bool = False,
    auth_user: str | None = None,
    auth_password: str | None = None,
    connection: BaseEmailBackend | None = None,
    *,
    using: str | None = None,
) -> int:
    """``send_mass_mail`` for asyncio code: every message over one connection."""
    connection = backend_for(
        using,
        connection,
        fail_silently=fail_silently,
        auth_user=auth_user,
        auth_password=auth_password,
    )
    return await connection.asend_messages(_mass_messages(datatuple, connection))


async def amail_admins(
    subject: str,
    message: str,
    fail_silently: bool = False,
    connection: BaseEmailBackend | None = None,
    html_message: str | None = None,
    *,
    using: str | None = None,
) -> int:
    """``mail_admins`` for asyncio code."""
    mail = _list_mail("ADMINS", subject, message, using, connection, html_message)
    return await mail.asend(fail_silently=fail_silently, using=using) if mail else 0


async def amail_managers(
    subject: str,
    message: str,
    fail_silently: bool = False,
    connection: BaseEmailBackend | None = None,
    html_message: str | None = None,
    *,
    using: str | None = None,
) -> int:
    """``mail_managers`` for asyncio code."""
    mail = _list_mail("MANAGERS", subject, message, using, connection, html_message)
    return await mail.asend(fail_silently=fail_silently, using=using) if mail else 0
