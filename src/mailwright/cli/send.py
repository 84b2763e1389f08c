"""``mailwright send``: send one message with the configured settings."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from .common import EXIT_OK, fail

__all__ = ["register"]


def _read_text(path: str) -> str:
    if path == "-":
        return sys.stdin.read()
    return Path(path).read_text(encoding="utf-8")


def _cmd_send(args: argparse.Namespace) -> int:
    from ..conf import settings
    from ..describe import describe
    from ..message import EmailMultiAlternatives

    host = port = None
    try:
        host, port = settings.EMAIL_HOST, settings.EMAIL_PORT
        body = args.body if args.body is not None else _read_text(args.body_file)
        message = EmailMultiAlternatives(
            args.subject,
            body,
            args.from_email,
            args.to,
            bcc=args.bcc,
            cc=args.cc,
            reply_to=args.reply_to,
        )
        if args.html_file:
            message.attach_alternative(_read_text(args.html_file), "text/html")
        for path in args.attach:
            message.attach_file(path)
        sent = message.send()
    except Exception as exc:
        return fail("send", describe(exc, host, port))
    if not sent:
        return fail("send", "the message was not sent")
    delivery = message.delivery
    if delivery is not None and delivery.refused:
        for address, (code, text) in delivery.refused.items():
            print(f"mailwright send: warning: {address} refused: {code} {text}", file=sys.stderr)
    accepted = len(delivery.accepted) if delivery is not None else len(message.recipients())
    print(f"sent to {accepted} recipient{'s' if accepted != 1 else ''}")
    return EXIT_OK


def register(commands: Any) -> None:
    send = commands.add_parser(
        "send",
        help="send one message with the configured settings",
        description="Send one message through EMAIL_BACKEND (settings from the environment "
        "or EMAIL_URL). Exit status 0 when sent.",
    )
    send.add_argument("--to", action="append", required=True, metavar="ADDRESS")
    send.add_argument("--cc", action="append", default=[], metavar="ADDRESS")
    send.add_argument("--bcc", action="append", default=[], metavar="ADDRESS")
    send.add_argument("--reply-to", action="append", default=[], metavar="ADDRESS")
    send.add_argument("--from", dest="from_email", metavar="ADDRESS", help="(DEFAULT_FROM_EMAIL)")
    send.add_argument("--subject", required=True)
    body = send.add_mutually_exclusive_group(required=True)
    body.add_argument("--body", help="the text body")
    body.add_argument(
        "--body-file", metavar="FILE", help="read the text body from FILE (- for stdin)"
    )
    send.add_argument("--html-file", metavar="FILE", help="an HTML alternative")
    send.add_argument("--attach", action="append", default=[], metavar="FILE", help="attach FILE")
    send.set_defaults(handler=_cmd_send)
