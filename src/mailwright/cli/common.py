"""What every command shares: the one-line error and the exit codes."""

from __future__ import annotations

import sys

__all__ = ["EXIT_FAILED", "EXIT_OK", "fail", "need_devserver"]

EXIT_OK = 0
EXIT_FAILED = 1


def fail(command: str, reason: str, code: int = EXIT_FAILED) -> int:
    """Print ``mailwright COMMAND: error: REASON`` on stderr; return the exit code."""
    print(f"mailwright {command}: error: {reason}", file=sys.stderr)
    return code


def need_devserver(command: str) -> int | None:
    try:
        import aiohttp  # noqa: F401
        import aiosmtpd  # noqa: F401
    except ImportError as exc:
        return fail(
            command,
            f"{exc.name} is not installed; install the catcher with: "
            "pip install 'mailwright[devserver]'",
        )
    return None
