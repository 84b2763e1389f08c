"""``mailwright smtpd``: the development mail catcher."""

from __future__ import annotations

import argparse
from typing import Any

from .common import EXIT_OK, fail, positive_int

__all__ = ["register"]


def _cmd_smtpd(args: argparse.Namespace) -> int:
    # The SMTP side needs only the standard library; without aiohttp the web inbox is
    # skipped with a one-line note (printed with the banner).
    from ..devserver import DevServer, MaildirError, PortInUseError, TLSSetupError
    from ..devserver.release import ReleaseError

    if args.tls_key and not args.tls_cert:
        return fail("smtpd", "--tls-key needs --tls-cert")
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
            smtps_port=args.smtps_port,
            max_messages=args.max_messages or None,
            max_connections=args.max_connections or None,
            release_to=args.release_to,
            release_mailers=args.release_mailer,
            release_allow=args.release_allow,
        )
        server.run()
    except MaildirError as exc:
        return fail("smtpd", f"--maildir: {exc}")
    except (TLSSetupError, ReleaseError) as exc:
        return fail("smtpd", str(exc))
    except PortInUseError as exc:
        option = {"web": "--web-port", "SMTPS": "--smtps-port"}.get(exc.what, "--port")
        return fail(
            "smtpd",
            f"{exc.strerror}: another program (another catcher?) listens there; stop it, or "
            f"choose another port with {option} (0 picks a free one)",
        )
    except OSError as exc:
        return fail("smtpd", exc.strerror or str(exc))
    return EXIT_OK


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
        type=positive_int("a number of bytes"),
        default=32 * 1024 * 1024,
        help="largest message accepted, in bytes (33554432)",
    )
    smtpd.add_argument(
        "--max-messages",
        type=positive_int("a number of messages, or 0", allow_zero=True),
        default=5000,
        metavar="N",
        help="keep at most N messages: one more deletes the oldest (5000; 0: no limit)",
    )
    smtpd.add_argument(
        "--max-connections",
        type=positive_int("a number of connections, or 0", allow_zero=True),
        default=256,
        metavar="N",
        help="at most N SMTP clients at once; more are answered 421 (256; 0: no limit)",
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
        help="where the CA and certificate are kept (a per-user cache folder)",
    )
    smtpd.add_argument(
        "--tls-cert", metavar="FILE", help="your own certificate (PEM); implies --tls"
    )
    smtpd.add_argument("--tls-key", metavar="FILE", help="its private key, when not in --tls-cert")
    smtpd.add_argument(
        "--smtps-port",
        type=int,
        metavar="PORT",
        help="also listen for implicit TLS (EMAIL_USE_SSL, port 465 style); implies --tls",
    )
    smtpd.add_argument(
        "--web-host-allow",
        action="append",
        default=[],
        metavar="NAME",
        help="also serve the inbox to requests for this host name (repeatable)",
    )
    smtpd.add_argument(
        "--release-to",
        action="append",
        default=[],
        metavar="HOST:PORT",
        help="let the inbox release (send on) caught messages to this SMTP server; "
        "an smtp:// or smtps:// URL (smtp://user:pass@host:587?tls=1) for TLS and AUTH; "
        "repeatable, the first is the default; without it release is off",
    )
    smtpd.add_argument(
        "--release-mailer",
        action="append",
        default=[],
        metavar="ALIAS",
        help="let the inbox release to the SMTP server of this mailer (MAILERS); repeatable",
    )
    smtpd.add_argument(
        "--release-allow",
        metavar="REGEX",
        help="release only to recipients this regular expression matches (searched, as "
        r"in Mailpit: '@example\.com$')",
    )
    smtpd.set_defaults(handler=_cmd_smtpd)
