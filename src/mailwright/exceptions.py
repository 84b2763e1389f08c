"""Exceptions raised by mailwright."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .smtp.errors import SMTPUTF8NotSupportedError as SMTPUTF8NotSupportedError


class ImproperlyConfigured(Exception):
    """A setting is unknown, has a bad value, or settings contradict each other."""


class BadHeaderError(ValueError):
    """A header name, header value or address contains a line break.

    Raised before anything touches the network, so a message with an injected
    header is never sent.
    """


def __getattr__(name: str) -> Any:
    # SMTPUTF8NotSupportedError derives from smtplib's exceptions; it lives with the SMTP
    # engine's errors so that importing this module does not import smtplib.
    if name == "SMTPUTF8NotSupportedError":
        from .smtp.errors import SMTPUTF8NotSupportedError

        return SMTPUTF8NotSupportedError
    raise AttributeError(f"module 'mailwright.exceptions' has no attribute {name!r}")
