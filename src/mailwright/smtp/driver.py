"""What the sync and asyncio drivers share besides the conversations: naming what a
timed-out or failed session was waiting for, in one line a user can act on."""

from __future__ import annotations

import smtplib

from .config import SMTPConfig
from .protocol import ClientProtocol, Command

__all__ = [
    "GREETING_PROBE",
    "IMPLICIT_TLS_PORTS",
    "READ_SIZE",
    "connect_error",
    "greeting_probe",
    "timeout_error",
]

#: How long a client configured for plain SMTP or STARTTLS waits for the greeting of
#: port 465 before saying that port most likely speaks implicit TLS: a server there
#: that speaks TLS waits for the client's TLS hello and never greets.
GREETING_PROBE = 3.0
#: Ports that, by convention, speak implicit TLS (RFC 8314).
IMPLICIT_TLS_PORTS = frozenset({465})
#: The most one read takes: each driver reads into one buffer this size per connection
#: (a pipelined group's replies are a few hundred bytes).
READ_SIZE = 65536


def greeting_probe(config: SMTPConfig, timeout: float | None) -> float | None:
    """The shorter wait for the greeting on port 465 without EMAIL_USE_SSL (None: no
    probe, the usual timeout applies)."""
    if config.port not in IMPLICIT_TLS_PORTS or config.use_ssl:
        return None
    return GREETING_PROBE if timeout is None else min(timeout, GREETING_PROBE)


def _implicit_tls_hint(config: SMTPConfig) -> str:
    if config.use_ssl:
        return ""
    if config.use_tls or config.port in IMPLICIT_TLS_PORTS:
        return (
            " (if this port speaks implicit TLS, such as 465, set EMAIL_USE_SSL / ssl=1 "
            "instead of EMAIL_USE_TLS)"
        )
    return " (is this port an SMTP server? one that speaks implicit TLS needs EMAIL_USE_SSL)"


def connect_error(
    config: SMTPConfig, proto: ClientProtocol | None, exc: BaseException
) -> BaseException:
    """What to raise for ``exc`` while connecting and setting the session up: the same
    type (code that catches ``ConnectionRefusedError``, ``socket.gaierror``,
    ``ssl.SSLCertVerificationError`` or ``smtplib.SMTPServerDisconnected`` still
    does), its message naming host:port and the likely fix, as ``mailwright check``
    words it (``describe``). Errors that already say so, SMTP replies among them, are
    returned as they are."""
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        if proto is not None and proto.awaiting is Command.GREETING:
            return smtplib.SMTPServerDisconnected(
                f"{config.address} closed the connection before greeting"
                f"{_implicit_tls_hint(config)}"
            )
        return exc
    if (
        not isinstance(exc, OSError)
        or isinstance(exc, smtplib.SMTPException | TimeoutError)
        or getattr(exc, "mailwright_description", None)
    ):
        return exc
    from ..describe import describe

    text = describe(exc, config.host, config.port)
    try:
        new = type(exc)(exc.errno, text)
    except Exception:  # an OSError subclass with another constructor: keep it
        return exc
    for name in ("reason", "library", "verify_code", "verify_message"):
        if hasattr(exc, name):
            setattr(new, name, getattr(exc, name))
    new.mailwright_description = text  # type: ignore[attr-defined]
    return new


def timeout_error(
    config: SMTPConfig, proto: ClientProtocol | None, seconds: float | None
) -> TimeoutError:
    """The error for an operation that took longer than the timeout."""
    waited = f"{seconds:g} s" if seconds is not None else "the timeout"
    awaiting = proto.awaiting if proto is not None else None
    if proto is None:
        what = "to connect"
    elif awaiting is Command.GREETING:
        what = "for the server's greeting"
    elif awaiting is Command.CONTENT:
        what = "for the server to accept the message"
    elif awaiting is not None:
        what = f"for the reply to {awaiting.value}"
    elif proto.starting_tls:
        what = "for the TLS handshake after STARTTLS"
    else:
        what = "to send"
    hint = _implicit_tls_hint(config) if awaiting is Command.GREETING else ""
    return TimeoutError(f"{config.address}: no answer after {waited} waiting {what}{hint}")
