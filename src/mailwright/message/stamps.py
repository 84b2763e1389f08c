"""The generated ``Date`` and ``Message-ID`` fields."""

from __future__ import annotations

import itertools
import os
import time
from datetime import UTC, datetime
from email.utils import format_datetime

__all__ = ["make_message_id", "now_date"]


_date_cache: tuple[int, str] = (0, "")


def now_date() -> str:
    """The Date field for now; formatting is cached for the current second."""
    global _date_cache
    second = int(time.time())
    if _date_cache[0] != second:
        stamp = datetime.fromtimestamp(second, UTC)
        _date_cache = (second, format_datetime(stamp))
    return _date_cache[1]


# Message-IDs: time, a per-process random part and a counter make each one unique
# without a system call per message. A forked child (prefork servers, task-queue
# workers) draws its own random part, or parent and children would share it.
_id_prefix = ""
_id_counter = itertools.count()


def _new_id_prefix() -> None:
    global _id_prefix
    _id_prefix = os.urandom(6).hex()


_new_id_prefix()
os.register_at_fork(after_in_child=_new_id_prefix)


def make_message_id(domain: str) -> str:
    return f"<{time.time_ns():x}.{_id_prefix}{next(_id_counter):x}@{domain}>"
