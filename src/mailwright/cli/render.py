"""``mailwright render``: a template message rendered, not sent, for a developer to
see its subject, text and HTML (or, with ``--out``, the whole message as a .eml file)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from .common import EXIT_OK, CommandError, fail
from .templates import add_template_options, template_from_args, template_settings

__all__ = ["register"]


def _cmd_render(args: argparse.Namespace) -> int:
    try:
        with template_settings(args):
            message = template_from_args(args)
        if args.out is not None:
            try:
                Path(args.out).write_bytes(message.as_bytes())
            except OSError as exc:
                raise CommandError(f"--out {args.out}: cannot write it: {exc.strerror}") from None
    except CommandError as exc:
        return fail("render", str(exc))
    except Exception as exc:  # a bad address in --to/--from, a bad header
        return fail("render", f"{type(exc).__name__}: {exc}")
    html = next(
        (str(content) for content, mimetype in message.alternatives if mimetype == "text/html"),
        None,
    )
    print(f"Subject: {message.subject}")
    for item in message.inline_attachments:
        print(f"Inline image: {item.filename} ({item.mimetype}, cid:{item.cid})")
    print()
    print("--- text/plain ---")
    print(message.body.rstrip("\n"))
    if html is not None:
        print("--- text/html ---")
        print(html.rstrip("\n"))
    if args.out is not None:
        print(f"--- written to {args.out} ---")
    return EXIT_OK


def register(commands: Any) -> None:
    render = commands.add_parser(
        "render",
        help="render a template message without sending it",
        description="Render the template NAME with the variables of --context and show "
        "its subject, text and HTML; --out FILE.eml also writes the whole message "
        "(inline images included), for a mail client to open. Sends nothing.",
    )
    add_template_options(render, positional=True)
    render.add_argument(
        "--to",
        action="append",
        default=[],
        metavar="ADDRESS",
        help="a recipient to show (repeatable)",
    )
    render.add_argument("--from", dest="from_email", metavar="ADDRESS", help="the sender to show")
    render.add_argument("--out", metavar="FILE.eml", help="write the message to FILE.eml")
    render.set_defaults(handler=_cmd_render)
