"""What ``mailwright send --template`` and ``mailwright render`` share: the template
options, the JSON context, and template errors as one-line reasons."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .common import CommandError

if TYPE_CHECKING:
    from ..message import EmailMultiAlternatives

__all__ = ["add_template_options", "template_from_args", "template_settings"]


def add_template_options(parser: argparse.ArgumentParser, *, positional: bool) -> None:
    if positional:
        parser.add_argument(
            "template", metavar="NAME", help="the template's name, e.g. welcome.html"
        )
    else:
        parser.add_argument(
            "--template",
            metavar="NAME",
            help="send a template message: subject, text and HTML rendered from the "
            "template NAME (extra templates) instead of --subject/--body",
        )
    parser.add_argument(
        "--context",
        metavar="FILE.json",
        help="the template's variables: a JSON object read from FILE (- for stdin)",
    )
    parser.add_argument(
        "--template-dir",
        action="append",
        default=[],
        metavar="DIR",
        help="look for templates (and their images) in DIR; repeatable; replaces "
        "EMAIL_TEMPLATE_DIRS",
    )


def _context(path: str | None) -> dict[str, Any]:
    if path is None:
        return {}
    try:
        data = sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
    except FileNotFoundError:
        raise CommandError(f"--context {path}: no such file") from None
    except OSError as exc:
        raise CommandError(f"--context {path}: cannot read it: {exc.strerror}") from None
    try:
        value = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CommandError(f"--context {path}: not valid JSON ({exc})") from None
    if not isinstance(value, dict):
        raise CommandError(
            f'--context {path}: expected a JSON object ({{"name": value, ...}}), '
            f"got {type(value).__name__}"
        )
    return value


@contextmanager
def template_settings(args: argparse.Namespace) -> Iterator[None]:
    """``--template-dir`` (when given) as EMAIL_TEMPLATE_DIRS for the block."""
    if not args.template_dir:
        yield
        return
    from ..conf import override_settings

    for directory in args.template_dir:
        if not Path(directory).is_dir():
            raise CommandError(f"--template-dir {directory}: no such directory")
    with override_settings(EMAIL_TEMPLATE_DIRS=list(args.template_dir)):
        yield


def template_from_args(args: argparse.Namespace) -> EmailMultiAlternatives:
    """The message ``args.template`` renders to; failures as ``CommandError``."""
    from ..compose import TemplateError, template_message

    context = _context(args.context)
    try:
        return template_message(
            args.template,
            context,
            to=getattr(args, "to", None),
            from_email=getattr(args, "from_email", None),
            cc=getattr(args, "cc", None),
            bcc=getattr(args, "bcc", None),
            reply_to=getattr(args, "reply_to", None),
        )
    except TemplateError as exc:
        raise CommandError(f"template {exc}") from None
    except (FileNotFoundError, ValueError) as exc:
        raise CommandError(f"template {args.template}: {exc}") from None
    except ImportError as exc:
        raise CommandError(str(exc)) from None
