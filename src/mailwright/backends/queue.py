"""Queue backend: stores messages in the durable outbox; ``mailwright worker`` sends them.

``send_messages`` returns as soon as the messages are on disk (one SQLite
transaction, one fsync, however many messages), so a web request never waits for an
SMTP server, and a server that is down, slow or throttling costs nothing but time.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..conf import clean_setting, settings
from ..exceptions import ImproperlyConfigured
from .base import BaseEmailBackend, relay_alias

if TYPE_CHECKING:
    from ..message import EmailMessage
    from ..queue import Outbox

__all__ = ["EmailBackend"]


class EmailBackend(BaseEmailBackend):
    """Stores each message (its wire bytes, envelope sender and recipients) in the
    outbox at ``path`` (EMAIL_QUEUE_PATH) and returns how many were queued.
    ``relay`` names the mailer the worker delivers them through (``MAILERS``).

    All or nothing: a message that cannot be composed (a bad address, a header with a
    line break) raises before anything is stored, and an outbox that cannot be
    written (a full disk, a damaged file) raises ``mailwright.queue.OutboxError``,
    even with ``fail_silently=True``: that flag is about delivery, which happens
    later, and a message the caller believes queued must never be lost. A message
    without recipients is not queued (nor counted), as the SMTP backend does not
    send one.

    ``open()`` keeps the database open across calls; otherwise each call opens and
    closes it (cheap next to the fsync; safe in forked web workers).
    """

    def __init__(
        self,
        fail_silently: bool = False,
        *,
        path: str | None = None,
        relay: str | None = None,
        **kwargs: Any,
    ):
        super().__init__(fail_silently=fail_silently, **kwargs)
        #: The mailer ``mailwright worker`` delivers these messages through (stored with
        #: each one); None: the worker's EMAIL_QUEUE_RELAY_BACKEND.
        self.relay = relay_alias(relay, self.alias)
        if path is None:
            path = settings.EMAIL_QUEUE_PATH
        else:
            path = clean_setting("EMAIL_QUEUE_PATH", path)
        if not path:
            raise ImproperlyConfigured(
                "EMAIL_QUEUE_PATH is not set: the queue backend needs the outbox file "
                "(e.g. EMAIL_QUEUE_PATH=/var/spool/myapp/outbox.sqlite3)"
            )
        self.path: str = os.fspath(path)
        self.outbox: Outbox | None = None
        self._lock = threading.Lock()
        self._pid = 0

    def __repr__(self) -> str:
        relay = f" relay={self.relay!r}" if self.relay else ""
        return f"<queue.EmailBackend {self.path}{relay}>"

    def open(self) -> bool:
        """Open the outbox (creating the file if needed). True if opened now."""
        from ..queue import Outbox

        with self._lock:
            if self.outbox is not None and self._pid == os.getpid():
                return False
            # A connection inherited through fork() must not be used: SQLite's locks
            # belong to the process that opened it.
            self.outbox = Outbox(self.path)
            self._pid = os.getpid()
            return True

    def close(self) -> None:
        with self._lock:
            outbox, self.outbox = self.outbox, None
            if outbox is not None and self._pid == os.getpid():
                outbox.close()

    def send_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        """Queue the messages in one transaction; return how many were queued."""
        from ..queue import Stored

        stored = []
        for message in email_messages:
            envelope = message.envelope()  # composes and checks; raises before storing
            if envelope.recipients:
                stored.append(
                    Stored(
                        envelope.sender,
                        envelope.recipients,
                        envelope.data,
                        str(message.subject),
                        self.relay,
                    )
                )
        if not stored:
            return 0
        opened = self.open()
        try:
            assert self.outbox is not None
            self.outbox.queue(stored)
        finally:
            if opened:
                self.close()
        return len(stored)
