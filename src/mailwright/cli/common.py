"""What every command shares: the one-line error, the exit codes, ``--url``, and what a
backend that is not SMTP does with a message."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

__all__ = [
    "EXIT_FAILED",
    "EXIT_OK",
    "CommandError",
    "add_mailer_option",
    "add_url_option",
    "command_backend",
    "fail",
    "non_smtp_backend",
    "positive_float",
    "positive_int",
    "url_settings",
    "using_url",
]

EXIT_OK = 0
EXIT_FAILED = 1


class CommandError(Exception):
    """A failure whose message is the whole one-line reason."""


def fail(command: str, reason: str, code: int = EXIT_FAILED) -> int:
    """Print ``mailwright COMMAND: error: REASON`` on stderr; return the exit code."""
    print(f"mailwright {command}: error: {reason}", file=sys.stderr)
    return code


def positive_int(what: str = "a whole number", *, allow_zero: bool = False) -> Callable[[str], int]:
    """An argparse ``type`` for whole numbers of at least 1 (or 0, with
    ``allow_zero``); errors say ``what``."""
    lowest = 0 if allow_zero else 1

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
        if value < lowest:
            raise argparse.ArgumentTypeError(f"{text!r} must be at least {lowest}")
        return value

    return parse


def positive_float(text: str) -> float:
    """An argparse ``type`` for a positive, finite number."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} must be a positive number")
    return value


def add_url_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--url",
        metavar="EMAIL_URL",
        help="the server (or backend) to use, as an EMAIL_URL such as "
        "smtp://user:pass@host:587?tls=1, smtps://host, console: or dummy:; it replaces "
        "EMAIL_URL and the settings a URL can give (EMAIL_HOST, EMAIL_PORT, EMAIL_USE_TLS...) "
        "from the environment; those it leaves out take their defaults",
    )


def add_mailer_option(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument(
        "--mailer",
        metavar="ALIAS",
        help=f"{what} (an alias in MAILERS; default: the default mailer)",
    )


def command_backend(url: str | None, mailer: str | None) -> Any:
    """The backend a command sends with or checks: with ``--url``, the one the URL
    describes (call inside ``using_url``); else the mailer ``--mailer`` names, or the
    default mailer (EMAIL_BACKEND without MAILERS)."""
    from ..backends.loading import get_connection
    from ..backends.mailers import backend_for

    if url is not None and mailer is not None:
        raise CommandError("give --url or --mailer, not both")
    if url is not None:
        return get_connection()
    return backend_for(mailer)


def url_settings(url: str) -> dict[str, Any]:
    """The settings ``--url URL`` stands for: those the URL gives, and the defaults of
    the others a URL can give (so ``smtp://host`` does not log in with an
    EMAIL_HOST_USER left in the environment). Raises ``ImproperlyConfigured``."""
    from ..conf.registry import default
    from ..conf.url import URL_SETTINGS, parse_email_url

    values = {name: default(name) for name in URL_SETTINGS}
    values.update(parse_email_url(url))
    values["EMAIL_URL"] = url
    return values


@contextmanager
def using_url(url: str | None) -> Iterator[None]:
    """Apply ``--url`` (when given) for the block."""
    if url is None:
        yield
        return
    from ..conf import override_settings
    from ..conf.url import redact_url
    from ..exceptions import ImproperlyConfigured

    try:
        override = override_settings(**url_settings(url))
    except ImproperlyConfigured as exc:
        raise CommandError(f"--url {redact_url(url)}: {exc}") from None
    with override:
        yield


def non_smtp_backend(backend: object) -> str | None:
    """What ``backend`` does with a message when it is not the SMTP backend (None when
    it is: it sends to a server)."""
    from ..backends import console, dummy, filebased, locmem, smtp
    from ..conf import settings

    if isinstance(backend, smtp.EmailBackend):
        return None
    kind = type(backend)
    name = f"{kind.__module__}.{kind.__qualname__}"
    if isinstance(backend, filebased.EmailBackend):
        return f"the file backend ({name}) writes each message to a file in {backend.file_path}"
    if isinstance(backend, console.EmailBackend):
        return f"the console backend ({name}) writes each message to standard output"
    if isinstance(backend, locmem.EmailBackend):
        return (
            f"the locmem backend ({name}) keeps messages in memory, for tests; they are "
            "gone when this command ends"
        )
    if isinstance(backend, dummy.EmailBackend):
        return f"the dummy backend ({name}) discards every message"
    # By name: importing the Celery backend would import Celery.
    relay = getattr(backend, "relay", None)
    if name == "mailwright.backends.queue.EmailBackend":
        through = (
            f"the mailer {relay!r}"
            if relay
            else f"EMAIL_QUEUE_RELAY_BACKEND ({settings.EMAIL_QUEUE_RELAY_BACKEND})"
        )
        return (
            f"the queue backend ({name}) stores each message in the outbox "
            f"{getattr(backend, 'path', '')}; `mailwright worker` delivers them with {through}"
        )
    if name == "mailwright.backends.celery.EmailBackend":
        through = (
            f"the mailer {relay!r}"
            if relay
            else f"EMAIL_CELERY_RELAY_BACKEND ({settings.EMAIL_CELERY_RELAY_BACKEND})"
        )
        return (
            f"the celery backend ({name}) enqueues each message as a Celery task; the "
            f"workers deliver them with {through}"
        )
    return f"EMAIL_BACKEND is {name}, not mailwright's SMTP backend; it decides what happens"
