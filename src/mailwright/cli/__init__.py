"""The ``mailwright`` command line (also ``python -m mailwright``).

mailwright smtpd   development SMTP server and web inbox (the mail catcher)
mailwright send    send one message with the configured settings
mailwright render  render a template message without sending it
mailwright check   connect to the configured SMTP server, send nothing
mailwright demo    send sample messages to an embedded catcher and show them
mailwright worker  deliver the durable outbox (EMAIL_QUEUE_PATH)
mailwright queue   look into and manage the durable outbox
mailwright dkim    make a DKIM key and print its DNS record (dkim keygen)

Each command lives in its own module with a ``register(commands)`` function that adds
its sub-parser; the handler it sets receives the parsed arguments and returns the exit
status.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from .. import __version__
from . import check, demo, dkim, queue, render, send, smtpd, worker

__all__ = ["build_parser", "main"]

COMMANDS = (smtpd, send, render, check, demo, worker, queue, dkim)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mailwright",
        description="Send email, and catch it during development.",
    )
    parser.add_argument("--version", action="version", version=f"mailwright {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in COMMANDS:
        command.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:  # bare `mailwright`: what it can do
        parser.print_help()
        return 0
    return int(args.handler(args))
