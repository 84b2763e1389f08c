"""The ``mailwright`` command line (also ``python -m mailwright``).

mailwright smtpd   development SMTP server and web inbox (the mail catcher)
mailwright send    send one message with the configured settings
mailwright check   connect to the configured SMTP server, send nothing
mailwright demo    send sample messages to an embedded catcher and show them
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from . import __version__

__all__ = ["main"]

EXIT_OK = 0
EXIT_FAILED = 1


def _fail(command: str, reason: str, code: int = EXIT_FAILED) -> int:
    print(f"mailwright {command}: error: {reason}", file=sys.stderr)
    return code


# --- smtpd ---


def _cmd_smtpd(args: argparse.Namespace) -> int:
    from .devserver import DevServer, MaildirError, TLSSetupError

    if args.tls_key and not args.tls_cert:
        return _fail("smtpd", "--tls-key needs --tls-cert")
    try:
        server = DevServer(
            args.host,
            args.port,
            None if args.no_web else args.web_port,
            maildir=args.maildir,
            max_size=args.max_size,
            quiet=args.quiet,
            tls=args.tls,
            tls_dir=args.tls_dir,
            tls_cert=args.tls_cert,
            tls_key=args.tls_key,
            web_host_allow=args.web_host_allow,
        )
        server.run()
    except MaildirError as exc:
        return _fail("smtpd", f"--maildir: {exc}")
    except TLSSetupError as exc:
        return _fail("smtpd", str(exc))
    except OSError as exc:
        return _fail("smtpd", exc.strerror or str(exc))
    return EXIT_OK


# --- send ---


def _read_text(path: str) -> str:
    if path == "-":
        return sys.stdin.read()
    return Path(path).read_text(encoding="utf-8")


def _cmd_send(args: argparse.Namespace) -> int:
    from .conf import settings
    from .errors import describe
    from .message import EmailMultiAlternatives

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
        return _fail("send", describe(exc, host, port))
    if not sent:
        return _fail("send", "the message was not sent")
    delivery = message.delivery
    if delivery is not None and delivery.refused:
        for address, (code, text) in delivery.refused.items():
            print(f"mailwright send: warning: {address} refused: {code} {text}", file=sys.stderr)
    accepted = len(delivery.accepted) if delivery is not None else len(message.recipients())
    print(f"sent to {accepted} recipient{'s' if accepted != 1 else ''}")
    return EXIT_OK


# --- check ---


def _cmd_check(args: argparse.Namespace) -> int:
    from .check import run_check

    def report(step: str, text: str) -> None:
        print(f"{step:<9} {text}", flush=True)

    try:
        run_check(report=report)
    except (
        Exception
    ) as exc:  # CheckFailed names the step; configuration errors speak for themselves
        return _fail("check", str(exc))
    print("check passed")
    return EXIT_OK


# --- demo ---


def _cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    return run_demo(keep=args.keep)


def _positive_size(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of bytes") from None
    if value <= 0:
        raise argparse.ArgumentTypeError("the size must be positive")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mailwright",
        description="Send email, and catch it during development.",
    )
    parser.add_argument("--version", action="version", version=f"mailwright {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

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
    smtpd.add_argument(
        "--tls",
        action="store_true",
        help="offer STARTTLS with a certificate from a local CA made once in --tls-dir "
        "(its path is printed: give it to clients as EMAIL_SSL_CAFILE)",
    )
    smtpd.add_argument(
        "--tls-dir",
        metavar="DIR",
        help="where the CA and certificate are kept (a user cache folder)",
    )
    smtpd.add_argument(
        "--tls-cert", metavar="FILE", help="your own certificate (PEM); implies --tls"
    )
    smtpd.add_argument("--tls-key", metavar="FILE", help="its private key, when not in --tls-cert")
    smtpd.add_argument(
        "--web-host-allow",
        action="append",
        default=[],
        metavar="NAME",
        help="also serve the inbox to requests for this host name (repeatable)",
    )
    smtpd.set_defaults(handler=_cmd_smtpd)

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

    check = commands.add_parser(
        "check",
        help="check the connection to the configured SMTP server",
        description="Connect, EHLO, STARTTLS or implicit TLS, and AUTH as configured; "
        "report each step and what the server offers. Sends nothing.",
    )
    check.set_defaults(handler=_cmd_check)

    demo = commands.add_parser(
        "demo",
        help="send sample messages to an embedded catcher and show what arrived",
        description="Start the catcher on free ports, send a plain, an HTML (inline image "
        "and attachment) and a non-ASCII message through the SMTP backend, and show them.",
    )
    demo.add_argument("--keep", action="store_true", help="keep the catcher running")
    demo.set_defaults(handler=_cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.handler(args))
