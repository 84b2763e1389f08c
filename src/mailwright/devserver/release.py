"""Release: send a caught message on, byte for byte, to a relay chosen when the
catcher started.

The web inbox never takes a host, port, sender or password from a request: a page or
a script that can reach the inbox must not be able to use the catcher as a relay to
anywhere (or as a port scanner). What it may choose is which of the configured relays
(``--release-to``) and, within ``--release-allow``, which recipients.

A release goes through mailwright's SMTP engine (``smtp.SMTPConnection``), one
connection per release. The answer to the web client says what happened in the
catcher's own words and reply codes; the relay's reply texts and banners are shown
only on the catcher's terminal.
"""

from __future__ import annotations

import contextlib
import re
import smtplib
import socket
import ssl
from collections.abc import Sequence
from dataclasses import dataclass, field

from ..smtp import SMTPConfig

__all__ = ["RELEASE_TIMEOUT", "Relay", "ReleaseError", "ReleasePolicy", "ReleaseResult"]

RELEASE_TIMEOUT = 30.0
_HOST_PORT = re.compile(
    r"(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<host>[A-Za-z0-9_.-]+)):(?P<port>\d{1,5})"
)


class ReleaseError(ValueError):
    """A ``--release-to`` or ``--release-allow`` value that cannot be used."""


@dataclass(frozen=True)
class Relay:
    """One place releases may go: ``name`` (``host:port``, no user name or password)
    and the engine configuration."""

    name: str
    config: SMTPConfig = field(repr=False)

    @classmethod
    def parse(cls, text: str) -> Relay:
        """``HOST:PORT`` (plain SMTP), or an EMAIL_URL such as
        ``smtp://user:pass@host:587?tls=1`` or ``smtps://host`` for TLS and AUTH."""
        text = text.strip()
        match = _HOST_PORT.fullmatch(text)
        if match is not None:
            host = match["v6"] or match["host"]
            port = int(match["port"])
            if not 0 < port < 65536:
                raise ReleaseError(f"--release-to {text}: {port} is not a port number")
            return cls._make(SMTPConfig(host=host, port=port, timeout=RELEASE_TIMEOUT))
        if "://" not in text:
            raise ReleaseError(
                f"--release-to {_redacted(text)}: give HOST:PORT, or an smtp:// or smtps:// "
                "URL for TLS and AUTH"
            )
        from ..conf.url import parse_email_url
        from ..exceptions import ImproperlyConfigured

        try:
            values = parse_email_url(text)
        except ImproperlyConfigured as exc:
            raise ReleaseError(f"--release-to: {exc}") from None
        if values["EMAIL_BACKEND"] != "mailwright.backends.smtp.EmailBackend":
            raise ReleaseError(f"--release-to {_redacted(text)}: only smtp:// and smtps://")
        if "EMAIL_HOST" not in values:
            raise ReleaseError(f"--release-to {_redacted(text)}: no host")
        try:
            config = SMTPConfig(
                host=values["EMAIL_HOST"],
                port=values.get("EMAIL_PORT", 25),
                username=values.get("EMAIL_HOST_USER", ""),
                password=values.get("EMAIL_HOST_PASSWORD", ""),
                use_tls=values.get("EMAIL_USE_TLS", False),
                use_ssl=values.get("EMAIL_USE_SSL", False),
                timeout=values.get("EMAIL_TIMEOUT", RELEASE_TIMEOUT),
                ssl_cafile=values.get("EMAIL_SSL_CAFILE"),
                ssl_certfile=values.get("EMAIL_SSL_CERTFILE"),
                ssl_keyfile=values.get("EMAIL_SSL_KEYFILE"),
            )
        except ImproperlyConfigured as exc:
            raise ReleaseError(f"--release-to {_redacted(text)}: {exc}") from None
        return cls._make(config)

    @classmethod
    def from_mailer(cls, alias: str) -> Relay:
        """The SMTP server of the named mailer (``MAILERS``); its alias is the name."""
        from ..backends.mailers import mailers
        from ..exceptions import ImproperlyConfigured

        try:
            backend = mailers[alias]
        except ImproperlyConfigured as exc:  # InvalidMailer, MailerDoesNotExist
            raise ReleaseError(f"--release-mailer {alias}: {exc}") from None
        config = getattr(backend, "config", None)
        if not isinstance(config, SMTPConfig):
            kind = type(backend)
            raise ReleaseError(
                f"--release-mailer {alias}: its backend ({kind.__module__}.{kind.__qualname__}) "
                "does not send to an SMTP server; release needs one"
            )
        return cls(alias, config)

    @classmethod
    def _make(cls, config: SMTPConfig) -> Relay:
        return cls(config.address, config)


def _redacted(text: str) -> str:
    from ..conf.url import redact_url

    return redact_url(text)


@dataclass(frozen=True)
class ReleaseResult:
    """What the web client is told: reply codes, never the relay's texts."""

    accepted: list[str]
    refused: dict[str, int]
    error: str | None

    @property
    def sent(self) -> bool:
        return bool(self.accepted)


def failure_text(exc: BaseException) -> str:
    """What went wrong, in the catcher's words: a reply code at most, never the text
    or banner a remote server sent."""
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, socket.gaierror):
        return "host name not found"
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return "the relay's TLS certificate is not trusted"
    if isinstance(exc, ssl.SSLError):
        return "TLS failed"
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return f"authentication refused (reply {exc.smtp_code})"
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        return "the relay does not offer what the catcher is set to use (STARTTLS or AUTH)"
    if isinstance(exc, smtplib.SMTPResponseException):
        return f"the relay refused it (reply {exc.smtp_code})"
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return "the relay closed the connection"
    if isinstance(exc, OSError):
        return "network error"
    return "the relay broke the SMTP protocol"


class ReleasePolicy:
    """Where releases may go and to whom; ``relays`` empty means release is off."""

    def __init__(self, relays: Sequence[Relay] = (), allow: str | None = None) -> None:
        self.relays = {relay.name: relay for relay in relays}
        try:
            self.allow = re.compile(allow) if allow is not None else None
        except re.error as exc:
            raise ReleaseError(
                f"--release-allow {allow!r}: not a regular expression: {exc}"
            ) from None
        self.allow_text = allow

    @property
    def enabled(self) -> bool:
        return bool(self.relays)

    def relay(self, name: str | None) -> Relay | None:
        if name is None:
            return next(iter(self.relays.values()), None)
        return self.relays.get(name)

    def refused_recipient(self, recipients: Sequence[str]) -> str | None:
        """The first recipient ``--release-allow`` does not let through (None: all may)."""
        if self.allow is None:
            return None
        return next((r for r in recipients if self.allow.search(r) is None), None)


def release(relay: Relay, raw: bytes, sender: str, recipients: list[str]) -> ReleaseResult:
    """Send ``raw`` as it is through the SMTP engine; raises what connecting raises."""
    from ..message.raw import RawMessage
    from ..smtp import SMTPConnection

    envelope = RawMessage(raw, sender, recipients).envelope()
    connection = SMTPConnection(relay.config)
    connection.connect()
    try:
        (outcome,) = list(connection.send([(0, envelope)]))
    except BaseException:
        connection.abort()
        raise
    with contextlib.suppress(Exception):  # the message's fate is known already
        connection.quit()
    delivery = outcome.delivery
    error = outcome.error
    return ReleaseResult(
        list(delivery.accepted),
        {address: code for address, (code, _) in delivery.refused.items()},
        failure_text(error) if error is not None else None,
    )
