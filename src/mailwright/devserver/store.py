"""The catcher's message store: in memory, optionally mirrored to a Maildir.

Each message is summarised once, when it arrives (from, to, subject, size, parts), so
listing stays cheap however many messages are stored: a page of the list touches only
the messages on that page.
"""

from __future__ import annotations

import itertools
import mailbox
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

__all__ = ["MessageStore", "PartInfo", "StoredMessage", "header_text", "parse_message"]

_parser = BytesParser(policy=policy.default)


def parse_message(raw: bytes) -> EmailMessage:
    return _parser.parsebytes(raw)  # type: ignore[return-value]


def header_text(message: EmailMessage, name: str) -> str:
    """A header's decoded value; 8-bit (SMTPUTF8) headers are read as UTF-8."""
    values = message.get_all(name) or []
    text = ", ".join(str(value) for value in values)
    if any("\udc80" <= char <= "\udcff" for char in text):
        text = text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return text


@dataclass(frozen=True, slots=True)
class PartInfo:
    index: int  # position among the message's leaf parts (walk order)
    content_type: str
    filename: str | None
    content_id: str | None
    disposition: str | None
    size: int  # decoded bytes


@dataclass(slots=True)
class StoredMessage:
    id: str
    received: datetime
    mail_from: str
    rcpt_tos: list[str]
    raw: bytes
    subject: str = ""
    from_header: str = ""
    to_header: str = ""
    parts: list[PartInfo] = field(default_factory=list)

    @property
    def size(self) -> int:
        return len(self.raw)

    def parsed(self) -> EmailMessage:
        return parse_message(self.raw)

    def summary(self) -> dict[str, object]:
        return {
            "id": self.id,
            "received": self.received.isoformat(),
            "mail_from": self.mail_from,
            "rcpt_tos": self.rcpt_tos,
            "from": self.from_header,
            "to": self.to_header,
            "subject": self.subject,
            "size": self.size,
        }


def leaf_parts(message: EmailMessage) -> Iterator[tuple[int, EmailMessage]]:
    """The non-multipart parts in walk order, numbered; a message/rfc822 part counts as
    one leaf (its insides belong to the attached message)."""
    index = 0
    stack: list[EmailMessage] = [message]
    while stack:
        part = stack.pop()
        if part.is_multipart() and part.get_content_maintype() != "message":
            stack.extend(reversed(list(part.iter_parts())))  # type: ignore[arg-type]
            continue
        yield index, part
        index += 1


def _part_size(part: EmailMessage) -> int:
    if part.get_content_maintype() == "message":
        return len(part.as_bytes())
    payload = part.get_payload(decode=True)
    return len(payload) if isinstance(payload, bytes) else 0


def describe_parts(message: EmailMessage) -> list[PartInfo]:
    return [
        PartInfo(
            index,
            part.get_content_type(),
            part.get_filename(),
            (part.get("Content-ID") or "").strip("<> ") or None,
            part.get_content_disposition(),
            _part_size(part),
        )
        for index, part in leaf_parts(message)
    ]


class MessageStore:
    """Received messages, oldest first, with an index by id. Thread-safe."""

    def __init__(self, maildir: str | os.PathLike[str] | None = None) -> None:
        self._messages: list[StoredMessage] = []
        self._by_id: dict[str, StoredMessage] = {}
        self._lock = threading.Lock()
        self._counter = itertools.count(1)
        self.maildir: mailbox.Maildir | None = None
        self.maildir_path: Path | None = None
        if maildir is not None:
            path = self.maildir_path = Path(maildir).resolve()
            if path.exists() and not path.is_dir():
                raise NotADirectoryError(f"--maildir: {path} exists and is not a directory")
            self.maildir = mailbox.Maildir(path, create=True)
            self._load_maildir()

    def _load_maildir(self) -> None:
        assert self.maildir is not None
        loaded = []
        for key in self.maildir.iterkeys():
            raw = self.maildir.get_bytes(key)
            # MaildirMessage's date is the delivery time (the file's mtime).
            received = datetime.fromtimestamp(self.maildir.get_message(key).get_date(), UTC)
            loaded.append(self._build(key, raw, "", [], received))
        loaded.sort(key=lambda stored: stored.received)
        for stored in loaded:
            self._append(stored)

    @staticmethod
    def _build(
        message_id: str,
        raw: bytes,
        mail_from: str,
        rcpt_tos: list[str],
        received: datetime | None = None,
    ) -> StoredMessage:
        parsed = parse_message(raw)
        return StoredMessage(
            id=message_id,
            received=received or datetime.now(UTC),
            mail_from=mail_from,
            rcpt_tos=rcpt_tos,
            raw=raw,
            subject=header_text(parsed, "Subject"),
            from_header=header_text(parsed, "From"),
            to_header=header_text(parsed, "To"),
            parts=describe_parts(parsed),
        )

    def _append(self, stored: StoredMessage) -> None:
        with self._lock:
            self._messages.append(stored)
            self._by_id[stored.id] = stored

    def add(self, raw: bytes, mail_from: str, rcpt_tos: list[str]) -> StoredMessage:
        """Store a message; with a Maildir it is written there first (new/ folder)."""
        if self.maildir is not None:
            message_id = self.maildir.add(mailbox.MaildirMessage(raw))
        else:
            message_id = str(next(self._counter))
        stored = self._build(message_id, raw, mail_from, rcpt_tos)
        self._append(stored)
        return stored

    def __len__(self) -> int:
        return len(self._messages)

    def get(self, message_id: str) -> StoredMessage | None:
        return self._by_id.get(message_id)

    def newest_first(self, offset: int = 0, limit: int = 50) -> list[StoredMessage]:
        with self._lock:
            end = len(self._messages) - offset
            start = max(0, end - limit)
            page = self._messages[start : max(end, 0)]
        return page[::-1]

    def delete(self, message_id: str) -> bool:
        with self._lock:
            stored = self._by_id.pop(message_id, None)
            if stored is None:
                return False
            self._messages.remove(stored)
        if self.maildir is not None:
            self.maildir.discard(message_id)
        return True

    def clear(self) -> None:
        with self._lock:
            ids = list(self._by_id)
            self._messages.clear()
            self._by_id.clear()
        if self.maildir is not None:
            for message_id in ids:
                self.maildir.discard(message_id)
