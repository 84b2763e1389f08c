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


class InvalidMailer(ImproperlyConfigured):
    """A ``MAILERS`` entry is wrong: an unknown BACKEND, an unknown OPTION, ``alias``
    inside OPTIONS, an entry of the wrong shape. The message begins
    ``MAILERS['alias']: `` when it is about one mailer."""

    def __init__(self, message: str, *, alias: str | None = None) -> None:
        self.alias = alias
        if alias is not None:
            message = f"MAILERS[{alias!r}]: {message}"
        super().__init__(message)

    def __reduce__(self) -> tuple[Any, ...]:
        # The message already names the mailer: rebuild from it, then restore alias.
        return (type(self), (self.args[0],), {"alias": self.alias})


class MailerDoesNotExist(InvalidMailer, KeyError):
    """No mailer has this alias (with ``MAILERS`` set, it has no entry for it; without
    it, the only mailer is ``"default"``)."""

    def __init__(self, message: str | None = None, *, alias: str | None = None) -> None:
        if message is None:
            message = "no mailer has this alias"
        super().__init__(message, alias=alias)

    def __str__(self) -> str:
        # KeyError would show the repr of its argument; this is a sentence.
        return str(self.args[0])


def __getattr__(name: str) -> Any:
    # SMTPUTF8NotSupportedError derives from smtplib's exceptions; it lives with the SMTP
    # engine's errors so that importing this module does not import smtplib.
    if name == "SMTPUTF8NotSupportedError":
        from .smtp.errors import SMTPUTF8NotSupportedError

        return SMTPUTF8NotSupportedError
    raise AttributeError(f"module 'mailwright.exceptions' has no attribute {name!r}")


class DKIMSigningError(Exception):
    """A message could not be DKIM-signed. That message is not sent; the others of
    the batch are (``send_bulk`` lists it among the failures)."""
