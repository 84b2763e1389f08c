"""Console backend: writes each message to a stream (stdout by default)."""

from __future__ import annotations

import itertools
import sys
import threading
from collections.abc import Iterable
from typing import IO, TYPE_CHECKING, Any

from .base import BaseEmailBackend

if TYPE_CHECKING:
    from ..message import EmailMessage

__all__ = ["EmailBackend"]

SEPARATOR = "-" * 79


class EmailBackend(BaseEmailBackend):
    """Writes every message, as sent on the wire, followed by a line of 79 dashes.

    One lock per backend keeps messages from interleaving when threads share it.
    Writing to a stream needs no thread, so the async methods run inline.
    """

    async_inline = True

    def __init__(self, *args: Any, stream: IO[str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.stream: Any = stream if stream is not None else sys.stdout
        self._lock = threading.RLock()

    def write_message(self, message: EmailMessage) -> None:
        text = message.as_bytes().decode("utf-8", errors="replace").replace("\r\n", "\n")
        self.stream.write(f"{text}\n{SEPARATOR}\n")

    def send_messages(self, email_messages: Iterable[EmailMessage]) -> int:
        messages = iter(email_messages)
        first = next(messages, None)
        if first is None:
            return 0  # nothing to write: no file is opened
        sent = 0
        with self._lock:
            try:
                opened = self.open()
                try:
                    for message in itertools.chain([first], messages):
                        self.write_message(message)
                        self.stream.flush()
                        sent += 1
                finally:
                    if opened:
                        self.close()
            except Exception:
                if not self.fail_silently:
                    raise
        return sent
