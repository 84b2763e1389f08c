"""The states a queued message goes through (its own module: ``mailwright queue --help``
needs them, not the store)."""

from __future__ import annotations

__all__ = ["STATES"]

STATES = ("queued", "sending", "sent", "failed")
