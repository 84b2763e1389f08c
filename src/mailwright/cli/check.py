"""``mailwright check``: connect to the configured SMTP server, send nothing."""

from __future__ import annotations

import argparse
from typing import Any

from .common import EXIT_OK, fail

__all__ = ["register"]


def _cmd_check(args: argparse.Namespace) -> int:
    from ..check import run_check

    def report(step: str, text: str) -> None:
        print(f"{step:<9} {text}", flush=True)

    try:
        run_check(report=report)
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
        "report each step and what the server offers. Sends nothing.",
    )
    check.set_defaults(handler=_cmd_check)
