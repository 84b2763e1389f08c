"""Exceptions raised by mailwright."""

from __future__ import annotations

import smtplib


class ImproperlyConfigured(Exception):
    """A setting is unknown, has a bad value, or settings contradict each other."""


class BadHeaderError(ValueError):
    """A header name, header value or address contains a line break.

    Raised before anything touches the network, so a message with an injected
    header is never sent.
    """


class SMTPUTF8NotSupportedError(smtplib.SMTPNotSupportedError):
    """The message needs SMTPUTF8 (a non-ASCII local part) but the server lacks it."""


class DKIMSigningError(Exception):
    """A message could not be DKIM-signed. That message is not sent; the others of
    the batch are (``send_bulk`` lists it among the failures)."""
