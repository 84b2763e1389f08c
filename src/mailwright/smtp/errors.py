"""Errors of the SMTP engine.

Failures the server reports are raised as the ``smtplib`` exception types Django users
already catch (``SMTPSenderRefused``, ``SMTPRecipientsRefused``, ``SMTPDataError``,
``SMTPAuthenticationError`` …). Three more, all under ``smtplib.SMTPException`` except
the one that signals a bug:

* ``SMTPProtocolError``: the server broke the protocol (a malformed or unexpected reply);
* ``NotAttemptedError``: a message of a batch was never tried, because the batch stopped
  before it (an earlier failure, or the connection ended);
* ``LocalProtocolError``: the code driving the state machine broke a rule of the
  protocol (sending while a reply is due without PIPELINING, say) — a bug, not a
  network condition.
"""

from __future__ import annotations

import smtplib

__all__ = [
    "LocalProtocolError",
    "NotAttemptedError",
    "SMTPProtocolError",
    "SMTPUTF8NotSupportedError",
]


class SMTPUTF8NotSupportedError(smtplib.SMTPNotSupportedError):
    """The message needs SMTPUTF8 (a non-ASCII local part) but the server lacks it.

    Also ``mailwright.SMTPUTF8NotSupportedError`` and ``mailwright.exceptions``'s."""


class SMTPProtocolError(smtplib.SMTPException):
    """The server sent something SMTP does not allow here."""


class NotAttemptedError(smtplib.SMTPException):
    """The message was not tried: the batch stopped before it."""


class LocalProtocolError(RuntimeError):
    """The client side broke a protocol rule (a bug in the caller of the state machine)."""
