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
        # What a client starting TLS at once (implicit TLS) reads from a port that
        # greets in plain text (checked against the catcher's plain and STARTTLS ports).
        return (
            f"TLS failed with {where}: the server answered in plain text, not TLS: this "
            "port speaks plain SMTP, so use STARTTLS (tls=1 / EMAIL_USE_TLS) or no TLS "
            "there, and implicit TLS (ssl=1 / EMAIL_USE_SSL) only with a port that "
            "speaks it, such as 465"
        )
    return f"TLS failed with {where}: {reason}"


# OpenSSL's X509_V_ERR_* codes that a CA file does not fix.
_NAME_MISMATCH = (62, 64)  # HOSTNAME_MISMATCH, IP_ADDRESS_MISMATCH
_EXPIRED = 10


def _certificate(exc: ssl.SSLCertVerificationError, where: str) -> str:
    problem = f"TLS certificate of {where} not trusted: {exc.verify_message or exc.reason}"
    if exc.verify_code in _NAME_MISMATCH:
        return f"{problem}; set EMAIL_HOST to a name the certificate was issued for"
    if exc.verify_code == _EXPIRED:
        return f"{problem}; the server's certificate must be renewed"
    return f"{problem}; for a private CA, point EMAIL_SSL_CAFILE (cafile=) at its certificate"


def _not_supported(exc: smtplib.SMTPNotSupportedError, where: str) -> str:
    text = str(exc)
    if text.startswith("STARTTLS"):
        return (
            f"{where} does not offer STARTTLS (EMAIL_USE_TLS / tls=1): turn TLS off for this "
            "server, or use its TLS port (587 for STARTTLS; 465 with EMAIL_USE_SSL / ssl=1)"
        )
    if text.startswith("SMTP AUTH"):
        return (
            f"{where} does not offer AUTH: many servers offer it only after STARTTLS "
            "(EMAIL_USE_TLS / tls=1); a server that needs no login needs no "
            "EMAIL_HOST_USER"
        )
    return text or type(exc).__name__


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
    (
        socket.gaierror,
        lambda e, where: (
            f"cannot resolve the host name of {where} ({e.strerror}): check EMAIL_HOST"
        ),
    ),
    (TimeoutError, lambda e, where: str(e) or f"timed out talking to {where}"),
    (ssl.SSLCertVerificationError, _certificate),
    (ssl.SSLError, _tls_failure),
    (
        smtplib.SMTPAuthenticationError,
        lambda e, where: f"authentication failed: {_reply(e.smtp_code, e.smtp_error)}",
    ),
    (smtplib.SMTPRecipientsRefused, _recipients),
    (smtplib.SMTPNotSupportedError, _not_supported),
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
    described = getattr(exc, "mailwright_description", None)
    if isinstance(described, str):  # the engine's error, worded here already
        return described
    if host is not None and ":" in host and not host.startswith("["):
        host = f"[{host}]"
    where = f"{host}:{port}" if host is not None else "the server"
    for kind, describer in _TABLE:
        if isinstance(exc, kind):
            return describer(exc, where)
    return str(exc) or type(exc).__name__
