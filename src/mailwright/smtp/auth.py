"""SMTP AUTH mechanisms (RFC 4954): PLAIN and LOGIN, pluggable.

A mechanism is an object with a ``name``, an ``initial_response()`` (sent with the
AUTH command, or None to wait for the server's first challenge) and ``respond()`` for
each ``334`` challenge. Responses are raw bytes; the session base64-encodes them. A
new mechanism (XOAUTH2, say) is a class with these three members, passed in
``SMTPConfig.auth_mechanisms``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

__all__ = [
    "DEFAULT_MECHANISMS",
    "AuthMechanism",
    "Login",
    "MechanismFactory",
    "Plain",
    "choose_mechanism",
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
        self._response = b"\0" + username.encode() + b"\0" + password.encode()

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
