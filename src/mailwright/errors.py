"""One-line, human explanations of sending failures (for the command line)."""

from __future__ import annotations

import smtplib
import socket
import ssl

__all__ = ["describe"]


def _reply(code: int, message: bytes | str) -> str:
    text = message.decode("utf-8", "replace") if isinstance(message, bytes) else message
    return f"{code} {' '.join(text.split())}".strip()


def describe(exc: BaseException, host: str | None = None, port: int | None = None) -> str:
    """What went wrong, in one line, never including a password."""
    where = f"{host}:{port}" if host is not None else "the server"
    if isinstance(exc, ConnectionRefusedError):
        return f"connection refused by {where} (is an SMTP server running there?)"
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve host {host!r}: {exc.strerror}"
    if isinstance(exc, TimeoutError | socket.timeout):
        return f"timed out talking to {where}"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS certificate of {where} not trusted: {exc.verify_message or exc.reason}"
    if isinstance(exc, ssl.SSLError):
        return f"TLS failed with {where}: {exc.reason or exc}"
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return f"authentication failed: {_reply(exc.smtp_code, exc.smtp_error)}"
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        refused = ", ".join(
            f"{address} ({_reply(code, message)})"
            for address, (code, message) in exc.recipients.items()
        )
        return f"all recipients refused: {refused}"
    if isinstance(exc, smtplib.SMTPSenderRefused):
        return f"sender {exc.sender} refused: {_reply(exc.smtp_code, exc.smtp_error)}"
    if isinstance(exc, smtplib.SMTPDataError):
        return f"message refused: {_reply(exc.smtp_code, exc.smtp_error)}"
    if isinstance(exc, smtplib.SMTPResponseException):
        return f"server replied {_reply(exc.smtp_code, exc.smtp_error)}"
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return f"{where} closed the connection: {exc}"
    if isinstance(exc, FileNotFoundError):
        return f"no such file: {exc.filename}"
    if isinstance(exc, OSError) and exc.strerror:
        return f"network error with {where}: {exc.strerror}"
    return str(exc) or type(exc).__name__
