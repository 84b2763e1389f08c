"""``mailwright demo``: sample messages through the SMTP backend to an embedded catcher."""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["register"]


def _cmd_demo(args: argparse.Namespace) -> int:
    from ..demo import run_demo

    return run_demo(keep=args.keep)


def register(commands: Any) -> None:
    demo = commands.add_parser(
        "demo",
        help="send sample messages to an embedded catcher and show what arrived",
        description="Start the catcher on free ports, send a plain, an HTML (inline image "
        "and attachment) and a non-ASCII message through the SMTP backend, and show them.",
    )
    demo.add_argument("--keep", action="store_true", help="keep the catcher running")
    demo.set_defaults(handler=_cmd_demo)
