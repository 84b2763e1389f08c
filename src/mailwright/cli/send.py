"""``mailwright send``: send one message with the configured settings."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

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
from .templates import add_template_options

if TYPE_CHECKING:
    from ..message import EmailMultiAlternatives

__all__ = ["register"]


def _decode(data: bytes, what: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CommandError(
            f"{what} is not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}); "
            "convert it first, e.g. iconv -f latin1 -t utf-8"
        ) from None


def _read_text(path: str, option: str) -> str:
    if path == "-":
        return _decode(sys.stdin.buffer.read(), f"{option} -: standard input")
    file = Path(path)
    if file.is_dir():
        raise CommandError(f"{option} {path}: is a directory, not a file")
    try:
        data = file.read_bytes()
    except FileNotFoundError:
        raise CommandError(f"{option} {path}: no such file") from None
    except OSError as exc:
        raise CommandError(f"{option} {path}: cannot read it: {exc.strerror}") from None
    return _decode(data, f"{option} {path}")


def _check_attachment(path: str) -> None:
    file = Path(path)
    if file.is_dir():
        raise CommandError(
            f"--attach {path}: is a directory; attach its files one by one "
            f"(--attach {path.rstrip('/')}/FILE, repeated)"
        )
    if not file.exists():
        raise CommandError(f"--attach {path}: no such file")


def _check_form(args: argparse.Namespace) -> None:
    """--template, or --subject with --body/--body-file: the two ways to say what to send."""
    if args.template is not None:
        given = [
            option
            for option, value in (
                ("--subject", args.subject),
                ("--body", args.body),
                ("--body-file", args.body_file),
                ("--html-file", args.html_file),
            )
            if value is not None
        ]
        if given:
            raise CommandError(
                f"--template makes the subject and body; leave out {', '.join(given)}"
            )
        return
    if args.context is not None or args.template_dir:
        raise CommandError("--context and --template-dir go with --template NAME")
    if args.subject is None:
        raise CommandError("give --subject (or --template NAME)")
    if args.body is None and args.body_file is None:
        raise CommandError("give --body or --body-file (or --template NAME)")


def _message(args: argparse.Namespace) -> EmailMultiAlternatives:
    from ..message import EmailMultiAlternatives

    if args.template is not None:
        from .templates import template_from_args, template_settings

        with template_settings(args):
            return template_from_args(args)
    body = args.body if args.body is not None else _read_text(args.body_file, "--body-file")
    html = _read_text(args.html_file, "--html-file") if args.html_file else None
    message = EmailMultiAlternatives(
        args.subject,
        body,
        args.from_email,
        args.to,
        bcc=args.bcc,
        cc=args.cc,
        reply_to=args.reply_to,
    )
    if html is not None:
        message.attach_alternative(html, "text/html")
    return message


def _cmd_send(args: argparse.Namespace) -> int:
    from ..conf import settings
    from ..describe import describe

    try:
        _check_form(args)
    except CommandError as exc:
        args.parser.error(str(exc))  # a usage error: exit status 2, as argparse's own
    host = port = None
    try:
        with using_url(args.url):
            host, port = settings.EMAIL_HOST, settings.EMAIL_PORT
            for path in args.attach:
                _check_attachment(path)
            message = _message(args)
            for path in args.attach:
                message.attach_file(path)
            connection = command_backend(args.url, args.mailer)
            host = getattr(connection, "host", host)
            port = getattr(connection, "port", port)
            sent = connection.send_messages([message])
    except CommandError as exc:
        return fail("send", str(exc))
    except Exception as exc:
        return fail("send", describe(exc, host, port))
    if not sent:
        return fail("send", "the message was not sent")
    note = non_smtp_backend(connection)
    if note is not None:
        print(f"nothing was sent to a server: {note}")
        return EXIT_OK
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
        description="Send one message through the default mailer (EMAIL_BACKEND; settings "
        "from the environment, EMAIL_URL or --url), or the mailer --mailer names. Exit "
        "status 0 when sent; otherwise 1 and a one-line reason. What to send: --subject and "
        "--body (or --body-file), or a template message (--template NAME --context "
        "FILE.json).",
    )
    send.add_argument(
        "--to",
        action="append",
        required=True,
        metavar="ADDRESS",
        help="a recipient (repeat for more)",
    )
    send.add_argument(
        "--cc", action="append", default=[], metavar="ADDRESS", help="a Cc recipient (repeatable)"
    )
    send.add_argument(
        "--bcc",
        action="append",
        default=[],
        metavar="ADDRESS",
        help="a Bcc recipient, in the envelope only (repeatable)",
    )
    send.add_argument(
        "--reply-to",
        action="append",
        default=[],
        metavar="ADDRESS",
        help="a Reply-To address (repeatable)",
    )
    send.add_argument(
        "--from",
        dest="from_email",
        metavar="ADDRESS",
        help="the sender (default: DEFAULT_FROM_EMAIL)",
    )
    send.add_argument("--subject", help="the subject (required without --template)")
    body = send.add_mutually_exclusive_group()
    body.add_argument(
        "--body", metavar="TEXT", help="the text body (this, --body-file or --template)"
    )
    body.add_argument(
        "--body-file", metavar="FILE", help="read the text body from FILE, UTF-8 (- for stdin)"
    )
    send.add_argument(
        "--html-file", metavar="FILE", help="an HTML alternative read from FILE, UTF-8"
    )
    send.add_argument(
        "--attach",
        action="append",
        default=[],
        metavar="FILE",
        help="attach FILE, its type guessed from its name (repeatable)",
    )
    add_template_options(send, positional=False)
    add_url_option(send)
    add_mailer_option(send, "send through this mailer")
    send.set_defaults(handler=_cmd_send, parser=send)
