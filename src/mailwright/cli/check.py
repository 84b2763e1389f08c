"""``mailwright check``: connect to the configured SMTP server, send nothing."""

from __future__ import annotations

import argparse
from typing import Any

from .common import (
    EXIT_OK,
    CommandError,
    add_mailer_option,
    add_url_option,
    command_backend,
    fail,
    non_smtp_backend,
    using_url,
)

__all__ = ["register"]


def _cmd_check(args: argparse.Namespace) -> int:
    from ..backends.mailers import mailers
    from ..backends.smtp import EmailBackend
    from ..check import run_check

    def report(step: str, text: str) -> None:
        print(f"{step:<9} {text}", flush=True)

    try:
        with using_url(args.url):
            # Creating a backend connects to nothing; it checks the settings (and the
            # file backend's directory).
            backend = command_backend(args.url, args.mailer)
            relay = getattr(backend, "relay", None)
            if relay and not isinstance(backend, EmailBackend):
                # A queue or Celery mailer: what connects to a server is its relay.
                print(f"{non_smtp_backend(backend)}; checking the mailer {relay!r}")
                backend = mailers[relay]
            note = non_smtp_backend(backend)
            if note is not None:
                print(
                    f"nothing to check: {note}, and connects to no server. To check an SMTP "
                    "server, set EMAIL_BACKEND to mailwright.backends.smtp.EmailBackend or "
                    "EMAIL_URL (or --url) to smtp://HOST:PORT."
                )
                return EXIT_OK
            assert isinstance(backend, EmailBackend)
            run_check(backend, report=report)
    except CommandError as exc:
        return fail("check", str(exc))
    except (
        Exception
    ) as exc:  # CheckFailed names the step; configuration errors speak for themselves
        return fail("check", str(exc))
    print("check passed")
    return EXIT_OK


def register(commands: Any) -> None:
    check = commands.add_parser(
        "check",
        help="check the connection to the configured SMTP server",
        description="Connect, EHLO, STARTTLS or implicit TLS, and AUTH as configured; "
        "report each step and what the server offers. Sends nothing. With a backend that "
        "is not SMTP (console, file, locmem, dummy), says what it does instead.",
    )
    add_url_option(check)
    add_mailer_option(check, "check this mailer's server (a queue or Celery mailer: its relay's)")
    check.set_defaults(handler=_cmd_check)
