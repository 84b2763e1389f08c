"""SMTP for asyncio: sessions and transactions on ``aiosmtplib``.

Connection set-up, STARTTLS and AUTH are aiosmtplib's; this module runs the mail
transactions (one command at a time: aiosmtplib's protocol reads one reply per
command) and turns aiosmtplib's exceptions into the ``smtplib`` ones the sync API
raises, so ``except smtplib.SMTPRecipientsRefused`` works the same in both worlds.

Cancelling a task drops the connection with ``transport.abort()``: unsent bytes are
discarded, so the server never sees the end of a half-written message and never
accepts it.
"""

from __future__ import annotations

import asyncio
import contextlib
import smtplib
import ssl
from typing import Any

import aiosmtplib

from .exceptions import SMTPUTF8NotSupportedError
from .message import Delivery, Envelope
from .transport import Outcome, failed_outcome

__all__ = ["abort", "close_session", "open_session", "send_envelope", "translate"]


def _bytes(message: str) -> bytes:
    return message.encode("utf-8", "replace")


def translate(exc: BaseException) -> BaseException:
    """The ``smtplib`` (or OS) exception that the sync API raises for the same failure."""
    if isinstance(exc, aiosmtplib.SMTPAuthenticationError):
        return smtplib.SMTPAuthenticationError(exc.code, _bytes(exc.message))
    if isinstance(exc, aiosmtplib.SMTPSenderRefused):
        return smtplib.SMTPSenderRefused(exc.code, _bytes(exc.message), exc.sender)
    if isinstance(exc, aiosmtplib.SMTPDataError):
        return smtplib.SMTPDataError(exc.code, _bytes(exc.message))
    if isinstance(exc, aiosmtplib.SMTPHeloError):
        return smtplib.SMTPHeloError(exc.code, _bytes(exc.message))
    if isinstance(exc, aiosmtplib.SMTPConnectResponseError):
        return smtplib.SMTPConnectError(exc.code, _bytes(exc.message))
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return smtplib.SMTPResponseException(exc.code, _bytes(exc.message))
    if isinstance(exc, aiosmtplib.SMTPTimeoutError):
        return TimeoutError(str(exc))
    if isinstance(exc, aiosmtplib.SMTPConnectError):
        # aiosmtplib wraps the OS error (connection refused, TLS failure): raise that.
        cause = exc.__cause__
        if isinstance(cause, OSError):
            return cause
        return ConnectionError(str(exc))
    if isinstance(exc, aiosmtplib.SMTPServerDisconnected):
        return smtplib.SMTPServerDisconnected(str(exc))
    if isinstance(exc, aiosmtplib.SMTPNotSupported):
        return smtplib.SMTPNotSupportedError(str(exc))
    if isinstance(exc, aiosmtplib.SMTPException):
        return smtplib.SMTPException(str(exc))
    return exc


def abort(smtp: aiosmtplib.SMTP) -> None:
    """Drop the connection at once, discarding anything not yet sent."""
    transport = smtp.transport
    if transport is not None:
        transport.abort()
    smtp.close()


async def open_session(
    *,
    host: str,
    port: int,
    use_ssl: bool,
    use_tls: bool,
    context: ssl.SSLContext | None,
    timeout: float | None,
    username: str,
    password: str,
    local_hostname: str,
) -> aiosmtplib.SMTP:
    """Connect, STARTTLS and log in as configured (the sync backend's rules)."""
    options: dict[str, Any] = {
        "hostname": host,
        "port": port,
        "use_tls": use_ssl,
        "start_tls": False,  # STARTTLS only when asked for, as in the sync backend
        "timeout": timeout,
        "local_hostname": local_hostname,
    }
    if context is not None:
        options["tls_context"] = context
    smtp = aiosmtplib.SMTP(**options)
    try:
        await smtp.connect()
        if use_tls:
            await smtp.starttls(tls_context=context)
        if username:
            await smtp.login(username, password)
    except BaseException as exc:
        abort(smtp)
        if isinstance(exc, aiosmtplib.SMTPException):
            raise translate(exc) from exc
        raise
    return smtp


async def close_session(smtp: aiosmtplib.SMTP, fail_silently: bool) -> None:
    """QUIT and close; a connection that is already broken is just dropped."""
    try:
        await smtp.quit()
    except asyncio.CancelledError:
        abort(smtp)
        raise
    except (aiosmtplib.SMTPServerDisconnected, OSError):
        smtp.close()
    except aiosmtplib.SMTPException as exc:
        smtp.close()
        if not fail_silently:
            raise translate(exc) from exc


async def _reset(smtp: aiosmtplib.SMTP) -> None:
    """RSET after a failed transaction; a refusal of RSET itself changes nothing."""
    with contextlib.suppress(aiosmtplib.SMTPResponseException):
        await smtp.rset()


async def send_envelope(smtp: aiosmtplib.SMTP, index: int, envelope: Envelope) -> Outcome:
    """One mail transaction. Refusals come back in the outcome; a broken connection
    raises (as the ``smtplib`` exception)."""
    try:
        return await _transaction(smtp, index, envelope)
    except aiosmtplib.SMTPException as exc:
        raise translate(exc) from exc


async def _transaction(smtp: aiosmtplib.SMTP, index: int, envelope: Envelope) -> Outcome:
    options = []
    if envelope.smtputf8:
        if not smtp.supports_extension("smtputf8"):
            error = SMTPUTF8NotSupportedError(
                f"message from {envelope.sender!r} to {envelope.recipients!r} has a "
                "non-ASCII address and the server does not offer SMTPUTF8"
            )
            return failed_outcome(index, envelope.recipients, None, error)
        options.append("SMTPUTF8")
    if smtp.supports_extension("8bitmime") and not envelope.data.isascii():
        options.append("BODY=8BITMIME")
    if smtp.supports_extension("size"):
        options.append(f"SIZE={len(envelope.data)}")
    encoding = "utf-8" if envelope.smtputf8 else "ascii"
    try:
        await smtp.mail(envelope.sender, options=options, encoding=encoding)
    except aiosmtplib.SMTPSenderRefused as exc:
        await _reset(smtp)
        refused = smtplib.SMTPSenderRefused(exc.code, _bytes(exc.message), envelope.sender)
        return failed_outcome(index, envelope.recipients, None, refused)
    delivery = Delivery()
    for recipient in envelope.recipients:
        try:
            await smtp.rcpt(recipient, encoding=encoding)
        except aiosmtplib.SMTPRecipientRefused as exc:
            delivery.refused[recipient] = (exc.code, exc.message)
        else:
            delivery.accepted.append(recipient)
    if not delivery.accepted:
        await _reset(smtp)
        error = smtplib.SMTPRecipientsRefused(
            {rcpt: (code, _bytes(text)) for rcpt, (code, text) in delivery.refused.items()}
        )
        return failed_outcome(index, envelope.recipients, delivery, error)
    try:
        await smtp.data(envelope.data)
    except aiosmtplib.SMTPDataError as exc:
        await _reset(smtp)
        error = smtplib.SMTPDataError(exc.code, _bytes(exc.message))
        return failed_outcome(index, envelope.recipients, None, error)
    return Outcome(index, delivery, None)
