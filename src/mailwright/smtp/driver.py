"""What the sync and asyncio drivers share besides the conversations: naming what a
timed-out session was waiting for, in one line a user can act on."""

from __future__ import annotations

from .config import SMTPConfig
from .protocol import ClientProtocol, Command

__all__ = ["timeout_error"]


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
    hint = ""
    if awaiting is Command.GREETING and not config.use_ssl:
        hint = (
            " (if this port speaks implicit TLS, such as 465, set EMAIL_USE_SSL / ssl=1 "
            "instead of EMAIL_USE_TLS)"
            if config.use_tls or config.port == 465
            else " (is this port an SMTP server? one that speaks implicit TLS needs EMAIL_USE_SSL)"
        )
    return TimeoutError(f"{config.address}: no answer after {waited} waiting {what}{hint}")
