"""One-line, human descriptions of sending failures (for the command line, bulk
results and logs), never including a password.

Each kind of error maps to a describer in one table, most specific first; the first
entry whose type matches describes it.
"""

from __future__ import annotations

import smtplib
import socket
import ssl
from collections.abc import Callable
from typing import Any

from .smtp.errors import NotAttemptedError, SMTPProtocolError

__all__ = ["describe"]


def _reply(code: int, message: bytes | str) -> str:
    text = message.decode("utf-8", "replace") if isinstance(message, bytes) else message
    return f"{code} {' '.join(text.split())}".strip()


def _tls_failure(exc: ssl.SSLError, where: str) -> str:
    reason = exc.reason or str(exc)
    if reason == "WRONG_VERSION_NUMBER":
        return (
            f"TLS failed with {where}: the server did not answer in TLS; if this port speaks "
            "plain SMTP, use STARTTLS (tls=1 / EMAIL_USE_TLS) or no TLS, not implicit TLS "
            "(ssl=1 / EMAIL_USE_SSL)"
        )
    return f"TLS failed with {where}: {reason}"


def _certificate(exc: ssl.SSLCertVerificationError, where: str) -> str:
    return (
        f"TLS certificate of {where} not trusted: {exc.verify_message or exc.reason}; "
        "for a private CA, point EMAIL_SSL_CAFILE (cafile=) at its certificate"
    )


def _recipients(exc: smtplib.SMTPRecipientsRefused, where: str) -> str:
    refused = ", ".join(
        f"{address} ({_reply(code, message)})"
        for address, (code, message) in exc.recipients.items()
    )
    return f"all recipients refused: {refused}"


def _os_error(exc: OSError, where: str) -> str:
    if exc.strerror:
        return f"network error with {where}: {exc.strerror}"
    return str(exc) or type(exc).__name__


_Describer = Callable[[Any, str], str]

# (type, describer): the first type the error is an instance of wins.
_TABLE: tuple[tuple[type[BaseException], _Describer], ...] = (
    (
        ConnectionRefusedError,
        lambda e, where: f"connection refused by {where} (is an SMTP server running there?)",
    ),
    (socket.gaierror, lambda e, where: f"cannot resolve host of {where}: {e.strerror}"),
    (TimeoutError, lambda e, where: str(e) or f"timed out talking to {where}"),
    (ssl.SSLCertVerificationError, _certificate),
    (ssl.SSLError, _tls_failure),
    (
        smtplib.SMTPAuthenticationError,
        lambda e, where: f"authentication failed: {_reply(e.smtp_code, e.smtp_error)}",
    ),
    (smtplib.SMTPRecipientsRefused, _recipients),
    (
        smtplib.SMTPSenderRefused,
        lambda e, where: f"sender {e.sender} refused: {_reply(e.smtp_code, e.smtp_error)}",
    ),
    (
        smtplib.SMTPDataError,
        lambda e, where: f"message refused: {_reply(e.smtp_code, e.smtp_error)}",
    ),
    (
        smtplib.SMTPConnectError,
        lambda e, where: f"{where} refused the session: {_reply(e.smtp_code, e.smtp_error)}",
    ),
    (
        smtplib.SMTPHeloError,
        lambda e, where: f"{where} refused EHLO/HELO: {_reply(e.smtp_code, e.smtp_error)}",
    ),
    (
        smtplib.SMTPResponseException,
        lambda e, where: f"server replied {_reply(e.smtp_code, e.smtp_error)}",
    ),
    (
        smtplib.SMTPServerDisconnected,
        lambda e, where: f"{where} closed the connection: {e}",
    ),
    (SMTPProtocolError, lambda e, where: f"{where} broke the SMTP protocol: {e}"),
    (NotAttemptedError, lambda e, where: str(e)),
    (FileNotFoundError, lambda e, where: f"no such file: {e.filename}"),
    (IsADirectoryError, lambda e, where: f"{e.filename} is a directory, not a file"),
    (smtplib.SMTPException, lambda e, where: str(e) or type(e).__name__),
    (OSError, _os_error),
)


def describe(exc: BaseException, host: str | None = None, port: int | None = None) -> str:
    """What went wrong, in one line."""
    where = f"{host}:{port}" if host is not None else "the server"
    for kind, describer in _TABLE:
        if isinstance(exc, kind):
            return describer(exc, where)
    return str(exc) or type(exc).__name__
