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


class InvalidMailer(ImproperlyConfigured):
    """A ``MAILERS`` entry is wrong: an unknown BACKEND, an unknown OPTION, ``alias``
    inside OPTIONS, an entry of the wrong shape. The message begins
    ``MAILERS['alias']: `` when it is about one mailer."""

    def __init__(self, message: str, *, alias: str | None = None) -> None:
        self.alias = alias
        if alias is not None:
            message = f"MAILERS[{alias!r}]: {message}"
        super().__init__(message)


class MailerDoesNotExist(InvalidMailer, KeyError):
    """No mailer has this alias (with ``MAILERS`` set, it has no entry for it; without
    it, the only mailer is ``"default"``)."""

    def __init__(self, *, alias: str, detail: str = "") -> None:
        # Keyword-only, as Django's: it means exactly "no such alias", nothing else.
        message = f"The mailer '{alias}' is not configured."
        super().__init__(f"{message} {detail}" if detail else message, alias=alias)

    def __str__(self) -> str:
        # KeyError would show the repr of its argument; this is a sentence.
        return str(self.args[0])
