"""``SMTPConfig``: everything a session needs, checked once, shared by every path.

The SMTP backend builds one from its arguments and the settings; ``send_bulk``'s
connections, ``mailwright check``, the outbox worker and the Celery task all use the
same object, so they connect, verify TLS, log in and time out alike.
"""

from __future__ import annotations

import functools
import socket
import ssl
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..conf import clean_setting, settings
from ..exceptions import ImproperlyConfigured
from ..tls import client_context
from .auth import DEFAULT_MECHANISMS, MechanismFactory, TokenProvider, resolve_token_provider

__all__ = ["SMTPConfig", "local_hostname"]


@functools.lru_cache(maxsize=1)
def local_hostname() -> str:
    """The name sent in EHLO, looked up once per process."""
    name = socket.getfqdn()
    try:
        name = name.encode("idna").decode("ascii")
    except UnicodeError:
        return "localhost"
    # EHLO takes a domain or an address literal; anything odd becomes "localhost".
    if not name or any(not (c.isalnum() or c in "-.") for c in name):
        return "localhost"
    return name


def _value(value: Any, name: str, argument: str) -> Any:
    """An argument, or the setting when the argument is None; checked either way."""
    if value is None:
        return getattr(settings, name)
    try:
        return clean_setting(name, value)
    except ImproperlyConfigured as exc:
        raise ImproperlyConfigured(f"{argument}= ({name}): {exc}") from None


@dataclass(frozen=True, slots=True)
class SMTPConfig:
    """Where and how to connect. ``password`` never appears in ``repr()``.

    ``oauth2_token``: a callable returning an OAuth2 access token; with it, ``username``
    logs in with OAUTHBEARER or XOAUTH2 instead of a password."""

    host: str
    port: int
    username: str = ""
    password: str = field(default="", repr=False)
    use_tls: bool = False
    use_ssl: bool = False
    timeout: float | None = 60
    ssl_keyfile: str | None = None
    ssl_certfile: str | None = None
    ssl_cafile: str | None = None
    ssl_context: ssl.SSLContext | None = field(default=None, compare=False)
    local_hostname: str = field(default_factory=local_hostname)
    pipelining: bool = True
    auth_mechanisms: Sequence[MechanismFactory] = DEFAULT_MECHANISMS
    oauth2_token: TokenProvider | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.use_tls and self.use_ssl:
            raise ImproperlyConfigured(
                "EMAIL_USE_TLS and EMAIL_USE_SSL are both true: choose STARTTLS (EMAIL_USE_TLS) "
                "or implicit TLS (EMAIL_USE_SSL), not both"
            )

    @classmethod
    def from_settings(
        cls,
        host: str | None = None,
        port: int | None = None,
        username: str | None = None,
        password: str | None = None,
        use_tls: bool | None = None,
        use_ssl: bool | None = None,
        timeout: float | None = None,
        ssl_keyfile: str | None = None,
        ssl_certfile: str | None = None,
        ssl_cafile: str | None = None,
        *,
        ssl_context: ssl.SSLContext | None = None,
        pipelining: bool = True,
        auth_mechanisms: Sequence[MechanismFactory] | None = None,
        oauth2_token: TokenProvider | str | None = None,
    ) -> SMTPConfig:
        """The arguments given, each ``None`` filled from its setting. An argument
        that turns STARTTLS or implicit TLS on turns the other one's setting off (a
        mailer with ``use_ssl=True`` under a global EMAIL_USE_TLS=True)."""
        if use_tls is None and use_ssl is not None and _value(use_ssl, "EMAIL_USE_SSL", "use_ssl"):
            use_tls = False
        if use_ssl is None and use_tls is not None and _value(use_tls, "EMAIL_USE_TLS", "use_tls"):
            use_ssl = False
        return cls(
            host=_value(host, "EMAIL_HOST", "host"),
            port=_value(port, "EMAIL_PORT", "port"),
            username=_value(username, "EMAIL_HOST_USER", "username"),
            password=_value(password, "EMAIL_HOST_PASSWORD", "password"),
            use_tls=_value(use_tls, "EMAIL_USE_TLS", "use_tls"),
            use_ssl=_value(use_ssl, "EMAIL_USE_SSL", "use_ssl"),
            timeout=_value(timeout, "EMAIL_TIMEOUT", "timeout"),
            ssl_keyfile=_value(ssl_keyfile, "EMAIL_SSL_KEYFILE", "ssl_keyfile"),
            ssl_certfile=_value(ssl_certfile, "EMAIL_SSL_CERTFILE", "ssl_certfile"),
            ssl_cafile=_value(ssl_cafile, "EMAIL_SSL_CAFILE", "ssl_cafile"),
            ssl_context=ssl_context,
            pipelining=pipelining,
            auth_mechanisms=tuple(auth_mechanisms or DEFAULT_MECHANISMS),
            oauth2_token=(
                resolve_token_provider(oauth2_token, "oauth2_token")
                if oauth2_token is not None
                else resolve_token_provider(settings.EMAIL_OAUTH2_TOKEN)
            ),
        )

    @property
    def tls(self) -> bool:
        return self.use_tls or self.use_ssl

    def tls_context(self) -> ssl.SSLContext:
        """The context given, else one that verifies the server (system CAs plus
        ``ssl_cafile``) and presents the client certificate when one is set."""
        if self.ssl_context is not None:
            return self.ssl_context
        return client_context(self.ssl_cafile, self.ssl_certfile, self.ssl_keyfile)

    @property
    def mode(self) -> str:
        return "implicit TLS" if self.use_ssl else "STARTTLS" if self.use_tls else "plain"

    @property
    def address(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"
