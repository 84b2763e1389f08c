"""How many examples a property test runs.

The default run (and CI, which must stay quick on two cores) runs a fraction of each
test's full count; ``MAILWRIGHT_FULL_PROPERTIES=1`` runs the full count (the opt-in run
before a release, or after touching the message side or the engine).
"""

from __future__ import annotations

import os

FULL = os.environ.get("MAILWRIGHT_FULL_PROPERTIES", "") not in ("", "0")


def examples(full: int, quick: int) -> int:
    """``full`` in the full run, else ``quick``."""
    return full if FULL else quick
