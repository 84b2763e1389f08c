"""``mailwright smtpd``: the development mail catcher."""

from __future__ import annotations

import argparse
from typing import Any

from .common import EXIT_OK, fail, need_devserver

__all__ = ["register"]


def _cmd_smtpd(args: argparse.Namespace) -> int:
    missing = need_devserver("smtpd")
    if missing is not None:
        return missing
    from ..devserver import DevServer

    try:
        server = DevServer(
            args.host,
            args.port,
            None if args.no_web else args.web_port,
            maildir=args.maildir,
            max_size=args.max_size,
            quiet=args.quiet,
        )
        server.run()
    except OSError as exc:
        return fail("smtpd", exc.strerror or str(exc))
    return EXIT_OK


def _positive_size(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of bytes") from None
    if value <= 0:
        raise argparse.ArgumentTypeError("the size must be positive")
    return value


def register(commands: Any) -> None:
    smtpd = commands.add_parser(
        "smtpd",
        help="development SMTP server with a web inbox",
        description="Accept every message, print it, keep it for the web inbox. "
        "The modern replacement for `python -m smtpd -n -c DebuggingServer`.",
    )
    smtpd.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    smtpd.add_argument("--port", type=int, default=1025, help="SMTP port (1025)")
    smtpd.add_argument("--web-port", type=int, default=8025, help="web inbox port (8025)")
    smtpd.add_argument("--no-web", action="store_true", help="do not serve the web inbox")
    smtpd.add_argument("--maildir", help="also store every message in this Maildir")
    smtpd.add_argument(
        "--max-size",
        type=_positive_size,
        default=32 * 1024 * 1024,
        help="largest message accepted, in bytes (33554432)",
    )
    smtpd.add_argument("--quiet", action="store_true", help="do not print messages")
    smtpd.set_defaults(handler=_cmd_smtpd)
