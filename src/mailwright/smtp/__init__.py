"""mailwright's SMTP engine: one protocol core, two thin drivers.

* ``replies``: reply values and the incremental reply parser;
* ``grammar``: paths, ESMTP parameters, SMTPUTF8, dot-stuffing, AUTH PLAIN (shared
  with the catcher's server);
* ``protocol``: ``ClientProtocol``, the I/O-free client state machine (commands and
  pipelining rules, bytes in and out, no sockets);
* ``auth``: AUTH mechanisms (PLAIN, LOGIN, XOAUTH2, OAUTHBEARER; pluggable);
* ``actions``: what the conversations ask a driver to do;
* ``session``: greeting, EHLO/HELO, STARTTLS, AUTH, QUIT;
* ``transactions``: MAIL/RCPT/DATA, classic or pipelined (RFC 2920), one ``Outcome``
  per message;
* ``config``: ``SMTPConfig``, built once from settings and arguments;
* ``sync`` / ``aio``: the blocking-socket and asyncio drivers (``SMTPConnection``,
  ``AsyncSMTPConnection``); ``driver``: what they share.

Everything in mailwright that speaks SMTP (the backend, ``send_bulk``, ``mailwright
check``, the outbox worker, the Celery task) goes through these.
"""

from typing import TYPE_CHECKING, Any

from .actions import Outcome
from .auth import AuthMechanism, Login, OAuth2TokenError, OAuthBearer, Plain, XOAuth2
from .config import SMTPConfig, local_hostname
from .errors import LocalProtocolError, NotAttemptedError, SMTPProtocolError
from .protocol import ClientProtocol, Command
from .replies import Reply, ReplyParser
from .sync import SMTPConnection

if TYPE_CHECKING:
    from .aio import AsyncSMTPConnection


def __getattr__(name: str) -> Any:
    # The asyncio driver (and asyncio itself, a good part of mailwright's import time)
    # loads on first use: sync-only programs and the command line never pay for it.
    if name == "AsyncSMTPConnection":
        from .aio import AsyncSMTPConnection

        return AsyncSMTPConnection
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "AsyncSMTPConnection",
    "AuthMechanism",
    "ClientProtocol",
    "Command",
    "LocalProtocolError",
    "Login",
    "NotAttemptedError",
    "OAuth2TokenError",
    "OAuthBearer",
    "Outcome",
    "Plain",
    "Reply",
    "ReplyParser",
    "SMTPConfig",
    "SMTPConnection",
    "SMTPProtocolError",
    "XOAuth2",
    "local_hostname",
]
