"""Setting up and ending a session: greeting, EHLO/HELO, STARTTLS, AUTH, QUIT.

Each function is a conversation (see ``actions``) over a ``ClientProtocol``. Failures
raise the ``smtplib`` exception that ``smtplib`` itself raises for the same reply.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import functools
import smtplib
from collections.abc import Generator
from typing import Any

from .actions import NEED_DATA, Action, FetchToken, Send, StartTLS, Step
from .auth import AuthMechanism, choose_mechanism, choose_oauth2_mechanism, fetch_token
from .config import SMTPConfig
from .errors import LocalProtocolError
from .protocol import ClientProtocol, Command
from .replies import Reply

__all__ = [
    "Conversation",
    "authenticate",
    "handshake",
    "hello",
    "quit",
    "quit_quietly",
    "read_reply",
]

#: A conversation yields actions, receives the driver's answers, returns its result.
Conversation = Generator[Action, Any, Any]

_MAX_AUTH_ROUNDS = 8  # a mechanism needs two or three; more is a confused server


def read_reply(proto: ClientProtocol) -> Generator[Action, Any, tuple[Command, Reply]]:
    """The next reply; asks the driver for bytes until one is complete."""
    if not proto.waiting:
        raise LocalProtocolError("no reply is due")
    while True:
        event = proto.next_reply()
        if event is not None:
            return event
        proto.receive_data((yield NEED_DATA))


def _flush(proto: ClientProtocol) -> Send:
    return Send(proto.data_to_send())


def hello(proto: ClientProtocol, name: str) -> Generator[Action, Any, Reply]:
    """EHLO, or HELO when the server does not speak ESMTP."""
    proto.ehlo(name)
    yield _flush(proto)
    _, reply = yield from read_reply(proto)
    if reply.code == 250:
        return reply
    if proto.closed:
        raise smtplib.SMTPHeloError(reply.code, reply.message)
    proto.helo(name)
    yield _flush(proto)
    _, reply = yield from read_reply(proto)
    if reply.code != 250:
        raise smtplib.SMTPHeloError(reply.code, reply.message)
    return reply


def handshake(proto: ClientProtocol, config: SMTPConfig) -> Generator[Action, Any, None]:
    """From the greeting to a session ready for mail: EHLO, STARTTLS and AUTH as
    configured. Each step is announced with a ``Step`` before it starts."""
    yield Step("greeting", f"waiting for {config.address} to greet")
    _, greeting = yield from read_reply(proto)
    if greeting.code != 220:
        raise smtplib.SMTPConnectError(greeting.code, greeting.message)
    yield Step("ehlo", config.local_hostname)
    yield from hello(proto, config.local_hostname)
    if config.use_tls:
        yield Step("starttls")
        if not proto.offers("starttls"):
            raise smtplib.SMTPNotSupportedError("STARTTLS extension not supported by server.")
        proto.starttls()
        yield _flush(proto)
        _, reply = yield from read_reply(proto)
        if reply.code != 220:
            raise smtplib.SMTPResponseException(reply.code, reply.message)
        yield StartTLS()
        proto.tls_started()
        yield Step("ehlo", f"{config.local_hostname} (again, over TLS)")
        yield from hello(proto, config.local_hostname)
    if config.username:
        yield Step(
            "auth", f"{config.username} (OAuth2)" if config.oauth2_token else config.username
        )
        try:
            yield from authenticate(proto, config)
        except smtplib.SMTPException:
            # Refused, or no mechanism in common: say goodbye before hanging up (a
            # server logs a silent close as a lost connection).
            yield from quit_quietly(proto)
            raise


def authenticate(proto: ClientProtocol, config: SMTPConfig) -> Generator[Action, Any, None]:
    """AUTH with the first configured mechanism the server offers (RFC 4954); with an
    OAuth2 token provider, OAUTHBEARER or XOAUTH2, and after a refusal once more with
    a fresh token."""
    if not proto.offers("auth"):
        raise smtplib.SMTPNotSupportedError("SMTP AUTH extension not supported by server.")
    offered = proto.extensions["auth"]
    provider = config.oauth2_token
    if provider is None:
        mechanism = choose_mechanism(
            offered, config.auth_mechanisms, config.username, config.password
        )
        if mechanism is None:
            raise smtplib.SMTPException(
                f"No suitable authentication method found (the server offers {offered or 'none'})."
            )
        yield from _exchange(proto, mechanism)
        return
    names = {name.upper() for name in offered.split()}
    if not names & {"XOAUTH2", "OAUTHBEARER"}:
        raise smtplib.SMTPException(
            "No suitable authentication method found: OAuth2 needs XOAUTH2 or OAUTHBEARER "
            f"(the server offers {offered or 'none'})."
        )
    fetch = functools.partial(fetch_token, provider)
    for attempt in (1, 2):
        token: str = yield FetchToken(fetch)
        mechanism = choose_oauth2_mechanism(
            offered, config.username, token, config.host, config.port
        )
        assert mechanism is not None
        try:
            yield from _exchange(proto, mechanism)
            return
        except smtplib.SMTPAuthenticationError:
            # The token may have expired or been revoked: a fresh one, once.
            if attempt == 2 or proto.closed or proto.waiting:
                raise


def _exchange(proto: ClientProtocol, mechanism: AuthMechanism) -> Generator[Action, Any, None]:
    """One AUTH exchange; ``SMTPAuthenticationError`` when it is refused (with what the
    mechanism learnt of the refusal, such as an OAuth2 provider's error)."""
    initial = mechanism.initial_response()
    proto.auth(mechanism.name, None if initial is None else base64.b64encode(initial))
    for _ in range(_MAX_AUTH_ROUNDS):
        yield _flush(proto)
        _, reply = yield from read_reply(proto)
        if reply.code == 235:
            return
        if reply.code != 334:
            detail = getattr(mechanism, "error", None)
            message = reply.message
            if detail:
                message += f" ({mechanism.name}: {detail})".encode()
            raise smtplib.SMTPAuthenticationError(reply.code, message)
        try:
            challenge = base64.b64decode(reply.message, validate=True)
        except binascii.Error:
            proto.auth_response(b"*")  # cancel (RFC 4954 section 4)
            yield _flush(proto)
            yield from read_reply(proto)
            raise smtplib.SMTPAuthenticationError(
                reply.code, b"the server's challenge is not base64: " + reply.message[:80]
            ) from None
        proto.auth_response(base64.b64encode(mechanism.respond(challenge)))
    raise smtplib.SMTPAuthenticationError(535, b"too many AUTH challenges")


def quit_quietly(proto: ClientProtocol) -> Generator[Action, Any, None]:
    """QUIT when the session can take it, ignoring what becomes of it: for a session
    that is about to fail with another error."""
    if proto.closed or proto.waiting or proto.in_data or proto.starting_tls:
        return
    with contextlib.suppress(OSError, smtplib.SMTPException, LocalProtocolError):
        yield from quit(proto)


def quit(proto: ClientProtocol) -> Generator[Action, Any, None]:
    """QUIT; a reply other than 221 raises ``SMTPResponseException``."""
    proto.quit()
    yield _flush(proto)
    _, reply = yield from read_reply(proto)
    if reply.code != 221:
        raise smtplib.SMTPResponseException(reply.code, reply.message)
