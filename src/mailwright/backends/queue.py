"""Queue backend: stores messages in the durable outbox; ``mailwright worker`` sends them.

``send_messages`` returns as soon as the messages are on disk (one SQLite
transaction, one fsync, however many messages), so a web request never waits for an
SMTP server, and a server that is down, slow or throttling costs nothing but time.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from ..conf import clean_setting, settings
from ..exceptions import ImproperlyConfigured
from ..message.dkim import signer as dkim_signer
from .base import BaseEmailBackend, relay_alias

if TYPE_CHECKING:
    from ..message import EmailMessage
    from ..queue import Outbox, Stored

__all__ = ["QUEUE_CHUNK", "EmailBackend"]

#: Messages stored per transaction (and at most this many bytes of them).
QUEUE_CHUNK = 1000
QUEUE_CHUNK_BYTES = 16 * 1024 * 1024


class EmailBackend(BaseEmailBackend):
    """Stores each message (its wire bytes, envelope sender and recipients) in the
    outbox at ``path`` (EMAIL_QUEUE_PATH) and returns how many were queued.
    ``relay`` names the mailer the worker delivers them through (``MAILERS``).

    Any iterable works (a generator, a database cursor): messages are composed and
    stored ``QUEUE_CHUNK`` at a time, one transaction (one fsync) each, so memory
    stays flat however many there are. Up to ``QUEUE_CHUNK`` messages, it is all or
    nothing: a message that cannot be composed (a bad address, a header with a line
    break) raises before anything is stored; past that, the chunks before it stay
    queued, as the SMTP backend has sent the messages before a bad one. An outbox
    that cannot be written (a full disk, a damaged file) raises
    ``mailwright.queue.OutboxError``, even with ``fail_silently=True``: that flag is
    about delivery, which happens later, and a message the caller believes queued
    must never be lost. A message without recipients is not queued (nor counted), as
    the SMTP backend does not send one.

    With ``dkim_*`` options (or EMAIL_DKIM_* settings) each message is DKIM-signed
    before it is stored; the worker sends the signed bytes as they are.

    ``open()`` keeps the database open across calls; otherwise each call opens and
    closes it (cheap next to the fsync; safe in forked web workers).
    """

    def __init__(
        self,
        fail_silently: bool = False,
        *,
        path: str | None = None,
        relay: str | None = None,
        dkim_domain: str | None = None,
        dkim_selector: str | None = None,
        dkim_private_key: str | os.PathLike[str] | None = None,
        dkim_headers: Sequence[str] | None = None,
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
        # Signed here, by the sender that holds the key: the rows hold signed bytes
        # and the worker delivers them as they are.
        self.dkim = dkim_signer(dkim_domain, dkim_selector, dkim_private_key, dkim_headers)
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

    def send_messages(self, email_messages: Iterable[EmailMessage]) -> int:
        """Queue the messages, ``QUEUE_CHUNK`` to a transaction; return how many were
        queued."""
        from ..queue import Stored

        queued = 0
        stored: list[Stored] = []
        size = 0
        opened = False
        try:
            for message in email_messages:
                # Composes, checks and signs; raises before anything is stored.
                envelope = message.envelope(self.dkim) if self.dkim else message.envelope()
                if not envelope.recipients:
                    continue
                stored.append(
                    Stored(
                        envelope.sender,
                        envelope.recipients,
                        envelope.data,
                        str(message.subject),
                        self.relay,
                    )
                )
                size += len(envelope.data)
                if len(stored) >= QUEUE_CHUNK or size >= QUEUE_CHUNK_BYTES:
                    opened = self.open() or opened
                    queued += self._store(stored)
                    stored, size = [], 0
            if stored:
                opened = self.open() or opened
                queued += self._store(stored)
        finally:
            if opened:
                self.close()
        return queued

    def _store(self, stored: list[Stored]) -> int:
        assert self.outbox is not None
        self.outbox.queue(stored)
        return len(stored)
