"""SMTP AUTH mechanisms (RFC 4954): PLAIN and LOGIN with a password, XOAUTH2 and
OAUTHBEARER (RFC 7628) with an OAuth2 access token; pluggable.

A mechanism is an object with a ``name``, an ``initial_response()`` (sent with the
AUTH command, or None to wait for the server's first challenge) and ``respond()`` for
each ``334`` challenge. Responses are raw bytes; the session base64-encodes them. A
new mechanism is a class with these three members, passed in
``SMTPConfig.auth_mechanisms``. A mechanism may also keep an ``error``: what the server
said about a refusal in a challenge (the OAuth2 ones: the provider's JSON), which the
session adds to the AUTH error.

OAuth2: a *token provider* (a callable, or the dotted path of one, returning an
access token) is a configuration value (``EMAIL_OAUTH2_TOKEN``). The session asks for
a token with a ``FetchToken`` action (the driver calls ``FetchToken.fetch``), and after
a refused login asks once more for a fresh one and retries AUTH once.
"""

from __future__ import annotations

import importlib
import re
import smtplib
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from .grammar import plain_response

__all__ = [
    "DEFAULT_MECHANISMS",
    "AuthMechanism",
    "Login",
    "MechanismFactory",
    "OAuth2TokenError",
    "OAuthBearer",
    "Plain",
    "TokenProvider",
    "XOAuth2",
    "choose_mechanism",
    "choose_oauth2_mechanism",
    "fetch_token",
    "resolve_token_provider",
]


class AuthMechanism(Protocol):
    name: str

    def initial_response(self) -> bytes | None: ...

    def respond(self, challenge: bytes) -> bytes: ...


#: Makes a mechanism for a user name and a password.
MechanismFactory = Callable[[str, str], AuthMechanism]


class Plain:
    """RFC 4616: the credentials in one initial response."""

    name = "PLAIN"

    def __init__(self, username: str, password: str) -> None:
        self._response = plain_response(username, password)

    def __repr__(self) -> str:
        return "<Plain>"  # never the credentials

    def initial_response(self) -> bytes | None:
        return self._response

    def respond(self, challenge: bytes) -> bytes:
        return self._response  # a server that ignored the initial response asks again


class Login:
    """The widespread non-standard LOGIN: user name, then password, each on request."""

    name = "LOGIN"

    def __init__(self, username: str, password: str) -> None:
        self._answers = [username.encode(), password.encode()]
        self._step = 0

    def __repr__(self) -> str:
        return "<Login>"

    def initial_response(self) -> bytes | None:
        return None

    def respond(self, challenge: bytes) -> bytes:
        # Servers send "Username:" then "Password:"; trust the order, not the wording.
        answer = self._answers[min(self._step, 1)]
        self._step += 1
        return answer


DEFAULT_MECHANISMS: tuple[MechanismFactory, ...] = (Plain, Login)


def choose_mechanism(
    offered: str, factories: Sequence[MechanismFactory], username: str, password: str
) -> AuthMechanism | None:
    """The first of ``factories`` whose mechanism the server offers (EHLO's AUTH line)."""
    names = {name.upper() for name in offered.split()}
    for factory in factories:
        mechanism = factory(username, password)
        if mechanism.name.upper() in names:
            return mechanism
    return None


# --- OAuth2 ---

#: Returns an OAuth2 access token for the configured account.
TokenProvider = Callable[[], str]


class OAuth2TokenError(smtplib.SMTPException):
    """The token provider failed or returned something that is not a token."""


_DOTTED = re.compile(r"[A-Za-z_][\w]*(?:\.[A-Za-z_][\w]*)*(?::[A-Za-z_][\w.]*|\.[A-Za-z_]\w*)")


def resolve_token_provider(value: Any, name: str = "EMAIL_OAUTH2_TOKEN") -> TokenProvider | None:
    """The callable behind ``value``: None, a callable, or a dotted path
    (``package.module.function`` or ``package.module:object.method``)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if callable(value):
        return value  # type: ignore[no-any-return]
    if not isinstance(value, str) or not _DOTTED.fullmatch(value.strip()):
        from ..exceptions import ImproperlyConfigured

        raise ImproperlyConfigured(
            f"{name}: expected a callable or the dotted path of one "
            f"(such as 'myproject.mail.token'), got {type(value).__name__}"
        )
    path = value.strip()
    module_name, attribute = path.split(":", 1) if ":" in path else path.rsplit(".", 1)
    try:
        target: Any = importlib.import_module(module_name)
        for part in attribute.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError) as exc:
        from ..exceptions import ImproperlyConfigured

        raise ImproperlyConfigured(f"{name}: cannot import {path!r}: {exc}") from exc
    if not callable(target):
        from ..exceptions import ImproperlyConfigured

        raise ImproperlyConfigured(f"{name}: {path!r} is not callable")
    return target  # type: ignore[no-any-return]


def _provider_name(provider: TokenProvider) -> str:
    module = getattr(provider, "__module__", None)
    qualname = getattr(provider, "__qualname__", None) or type(provider).__name__
    return f"{module}.{qualname}" if module else qualname


def fetch_token(provider: TokenProvider) -> str:
    """Ask ``provider`` for an access token; ``OAuth2TokenError`` when it fails (the
    error names the provider, never a token)."""
    try:
        token = provider()
    except Exception as exc:
        raise OAuth2TokenError(
            f"the OAuth2 token provider {_provider_name(provider)} failed: "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    if not isinstance(token, str) or not token.strip():
        raise OAuth2TokenError(
            f"the OAuth2 token provider {_provider_name(provider)} returned "
            f"{type(token).__name__ if not isinstance(token, str) else 'an empty string'}, "
            "not an access token"
        )
    if any(c in token for c in "\x00\x01\r\n"):
        raise OAuth2TokenError(
            f"the OAuth2 token provider {_provider_name(provider)} returned a token with "
            "control characters"
        )
    return token.strip()


def _oauth2_error(challenge: bytes) -> str:
    text = challenge.decode("utf-8", "replace").strip()
    return text or "(no details)"


class XOAuth2:
    """Google's and Microsoft's XOAUTH2: the account and the token in one initial
    response. A refusal comes as a 334 challenge holding the provider's error (JSON),
    answered with an empty line; the server then says 535."""

    name = "XOAUTH2"

    def __init__(self, username: str, token: str) -> None:
        self._response = f"user={username}\x01auth=Bearer {token}\x01\x01".encode()
        self.error: str | None = None

    def __repr__(self) -> str:
        return "<XOAuth2>"  # never the token

    def initial_response(self) -> bytes | None:
        return self._response

    def respond(self, challenge: bytes) -> bytes:
        self.error = _oauth2_error(challenge)
        return b""


class OAuthBearer:
    """RFC 7628 OAUTHBEARER: a GS2 header naming the account, the host and port, and
    the token. A refusal comes as a 334 challenge (JSON), answered with ``%x01``."""

    name = "OAUTHBEARER"

    def __init__(self, username: str, token: str, host: str = "", port: int = 0) -> None:
        # RFC 5801: "," and "=" in the authorization identity are escaped.
        user = username.replace("=", "=3D").replace(",", "=2C")
        fields = ""
        if host:
            fields += f"host={host}\x01"
        if port:
            fields += f"port={port}\x01"
        self._response = f"n,a={user},\x01{fields}auth=Bearer {token}\x01\x01".encode()
        self.error: str | None = None

    def __repr__(self) -> str:
        return "<OAuthBearer>"

    def initial_response(self) -> bytes | None:
        return self._response

    def respond(self, challenge: bytes) -> bytes:
        self.error = _oauth2_error(challenge)
        return b"\x01"


def choose_oauth2_mechanism(
    offered: str, username: str, token: str, host: str, port: int
) -> AuthMechanism | None:
    """OAUTHBEARER where the server offers it, else XOAUTH2; None if it offers neither."""
    names = {name.upper() for name in offered.split()}
    if "OAUTHBEARER" in names:
        return OAuthBearer(username, token, host, port)
    if "XOAUTH2" in names:
        return XOAuth2(username, token)
    return None
