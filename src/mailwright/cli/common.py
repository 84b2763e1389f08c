"""What every command shares: the one-line error and the exit codes."""

from __future__ import annotations

import sys

__all__ = ["EXIT_FAILED", "EXIT_OK", "fail"]

EXIT_OK = 0
EXIT_FAILED = 1


def fail(command: str, reason: str, code: int = EXIT_FAILED) -> int:
    """Print ``mailwright COMMAND: error: REASON`` on stderr; return the exit code."""
    print(f"mailwright {command}: error: {reason}", file=sys.stderr)
    return code
