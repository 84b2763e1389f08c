"""Where the catcher keeps messages: in memory, newest last, and optionally in a Maildir.

Every message is kept exactly as received (``raw``) before anything reads it. Parsing
is lazy: the summary shown in lists (Subject, From, To) is computed on first use, the
search text and part list when asked for, so accepting mail never waits on the parser,
and a message the parser chokes on is still stored and listed, as "(unparsable)" with
the parser's error.

With a Maildir, each message is written to ``new/`` before the SMTP server answers 250;
writes are batched by one writer thread so many concurrent clients share the cost. The
SMTP envelope (MAIL FROM, RCPT TOs, AUTH user, arrival time) is kept in one
``X-Mailwright-Envelope`` header line at the top of the file (JSON, ASCII only) and
taken off again when the Maildir is loaded, so the raw source shown is what arrived.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import queue
import re
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.header import decode_header, make_header
from email.message import EmailMessage, Message
from email.parser import BytesParser
from email.policy import EmailPolicy
from html import unescape
from pathlib import Path
from typing import Any

__all__ = [
    "MaildirError",
    "MessageStore",
    "PartInfo",
    "StoredMessage",
    "Summary",
    "header_fields",
    "leaf_parts",
    "parse_message",
]

UNPARSABLE = "(unparsable)"
ENVELOPE_HEADER = b"X-Mailwright-Envelope:"
# Search looks at this much of a message's text (a whole 30 MB attachment is not text).
SEARCH_TEXT_LIMIT = 64 * 1024
# How much of a Maildir file is read at start (its envelope header line); the rest
# is read when the message is looked at.
_HEAD_SIZE = 64 * 1024

# Whitespace between two adjacent encoded words, which RFC 2047 section 6.2 says to
# ignore. policy.default's address parser keeps it in a display name (a sender split
# over several encoded words would show as "送信 者"), so it is taken out first.
_BETWEEN_ENCODED_WORDS = re.compile(r"(?<=\?=)[ \t\r\n]+(?==\?[^?\s]+\?[BbQq]\?[^?\s]*\?=)")


class _Policy(EmailPolicy):
    """policy.default, less that stray space: every header the catcher shows goes
    through here (the list, the API, the message page)."""

    def header_fetch_parse(self, name: str, value: Any) -> Any:
        if isinstance(value, str) and "=?" in value:
            value = _BETWEEN_ENCODED_WORDS.sub("", value)
        return super().header_fetch_parse(name, value)


_policy = _Policy()
_parser = BytesParser(policy=_policy)
_compat_parser = BytesParser()  # compat32: about 10x faster, used for the search text
_header_factory = _policy.header_factory
_FOLD = re.compile(r"\r?\n(?=[ \t])")
_TAG = re.compile(r"<[^>]*>|<!--.*?-->", re.DOTALL)
_STYLE_SCRIPT = re.compile(r"<(style|script)\b.*?</\1\s*>", re.DOTALL | re.IGNORECASE)


class MaildirError(Exception):
    """The ``--maildir`` path cannot be used; the message names the path."""


def parse_message(raw: bytes) -> EmailMessage:
    """The stdlib parser with ``policy.default`` (less the stray space, see _Policy);
    may raise on hostile input."""
    parsed = _parser.parsebytes(raw)
    assert isinstance(parsed, EmailMessage)  # the policy's message_factory
    return parsed


def _header_block(raw: bytes) -> bytes:
    for separator in (b"\r\n\r\n", b"\n\n"):
        end = raw.find(separator)
        if end >= 0:
            return raw[:end]
    return raw


def header_fields(raw: bytes) -> list[tuple[str, str]]:
    """The header section as (name, unfolded value) pairs, in order; 8-bit values are
    read as UTF-8 (SMTPUTF8). Never raises."""
    block = _FOLD.sub("", _header_block(raw).decode("utf-8", "replace"))
    fields = []
    for line in block.split("\n"):
        name, colon, value = line.rstrip("\r").partition(":")
        if colon and name and not name[0].isspace():
            fields.append((name.strip(), value.strip()))
    return fields


def _first(fields: list[tuple[str, str]], name: str) -> str:
    lowered = name.lower()
    return next((value for key, value in fields if key.lower() == lowered), "")


def _all(fields: list[tuple[str, str]], name: str) -> list[str]:
    lowered = name.lower()
    return [value for key, value in fields if key.lower() == lowered]


# Values policy.default would give back unchanged: plain text, or plain addresses with
# an optional word-only display name. Skipping its header parser for them makes the
# first view of an inbox page about 5x faster (its address parser costs ~110 µs).
_PLAIN_TEXT = re.compile(r"[\x20-\x7e]*")
_ADDRESS = (
    r"(?:[A-Za-z0-9]+(?: [A-Za-z0-9]+)* <[A-Za-z0-9_+-]+(?:\.[A-Za-z0-9_+-]+)*@[A-Za-z0-9-]+"
    r"(?:\.[A-Za-z0-9-]+)*>|[A-Za-z0-9_+-]+(?:\.[A-Za-z0-9_+-]+)*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*)"
)
_PLAIN_ADDRESSES = re.compile(f"{_ADDRESS}(?:, {_ADDRESS})*")


def decoded_header(name: str, value: str) -> str:
    """What the stdlib parser (policy.default) makes of one header; may raise."""
    if "=?" not in value:
        if name == "Subject" and _PLAIN_TEXT.fullmatch(value):
            return value
        if name in ("From", "To") and _PLAIN_ADDRESSES.fullmatch(value):
            return value
    else:
        value = _BETWEEN_ENCODED_WORDS.sub("", value)
    return str(_header_factory(name, value))


def quick_decode(value: str) -> str:
    """RFC 2047 decoding without policy.default's parser (for the search text)."""
    if "=?" not in value:
        return value
    try:
        return str(make_header(decode_header(value)))
    except Exception:
        return value


@dataclass(frozen=True, slots=True)
class Summary:
    subject: str
    from_header: str
    to_header: str
    parse_error: str | None = None


def summarize(raw: bytes) -> Summary:
    fields = header_fields(raw)
    current = "Subject"
    try:
        subject = decoded_header("Subject", _first(fields, "Subject"))
        current = "From"
        from_header = ", ".join(decoded_header("From", value) for value in _all(fields, "From"))
        current = "To"
        to_header = ", ".join(decoded_header("To", value) for value in _all(fields, "To"))
    except Exception as exc:  # the stdlib parser raises IndexError & co. on hostile input
        return Summary(
            UNPARSABLE,
            ", ".join(_all(fields, "From")),
            ", ".join(_all(fields, "To")),
            f"the {current} header cannot be parsed ({type(exc).__name__}: {exc})",
        )
    return Summary(subject, from_header, to_header)


@dataclass(frozen=True, slots=True)
class PartInfo:
    index: int  # position among the message's leaf parts (walk order)
    content_type: str
    filename: str | None
    content_id: str | None
    disposition: str | None
    size: int  # decoded bytes


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


def _decode_payload(part: Message) -> str:
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return ""
    charset = part.get_content_charset() or "utf-8"
    try:
        return payload.decode(charset, "replace")
    except LookupError:
        return payload.decode("utf-8", "replace")


_SIMPLE_TYPE = re.compile(r"text/plain\s*(?:;\s*charset=\"?([A-Za-z0-9_.:-]+)\"?\s*)?", re.I)


def _simple_body(raw: bytes) -> str | None:
    """The body of a single-part, unencoded text/plain message without the parser (the
    common case, about 10x faster); None for anything else."""
    fields = header_fields(raw)
    content_type = _first(fields, "Content-Type") or "text/plain"
    encoding = (_first(fields, "Content-Transfer-Encoding") or "7bit").lower()
    match = _SIMPLE_TYPE.fullmatch(content_type.strip())
    if match is None or encoding not in ("7bit", "8bit", "binary"):
        return None
    end = raw.find(b"\r\n\r\n")
    body = raw[end + 4 :] if end >= 0 else b""
    try:
        return body.decode(match[1] or "utf-8", "replace")
    except LookupError:
        return body.decode("utf-8", "replace")


def body_text(raw: bytes) -> str:
    """The message's readable text for search: the text/plain parts and the HTML parts
    without tags. Never raises."""
    simple = _simple_body(raw)
    if simple is not None:
        return simple
    try:
        message = _compat_parser.parsebytes(raw)
        plain, html = [], []
        for part in message.walk():
            if part.is_multipart() or part.get_content_maintype() != "text":
                continue
            if part.get_content_disposition() == "attachment":
                continue
            if part.get_content_subtype() == "plain":
                plain.append(_decode_payload(part))
            elif part.get_content_subtype() == "html":
                html.append(_decode_payload(part))
        stripped = unescape(_TAG.sub(" ", _STYLE_SCRIPT.sub(" ", "\n".join(html))))
        return "\n".join([*plain, stripped])
    except Exception:
        end = raw.find(b"\r\n\r\n")
        return raw[end + 4 :].decode("utf-8", "replace") if end >= 0 else ""


@dataclass(slots=True, eq=False)
class StoredMessage:
    """A caught message. ``raw`` is exactly what arrived; everything else about its
    content is computed on first use.

    With a Maildir, the bytes live in the message's file once it is written and
    summarized (``spill()``); ``raw`` then reads them from there, so a catcher full of
    big messages holds their summaries in memory, not their bodies.
    """

    id: str
    received: datetime
    mail_from: str
    rcpt_tos: list[str]
    _raw: bytes | None
    auth_user: str | None = None
    _summary: Summary | None = field(default=None, repr=False)
    _search: str | None = field(default=None, repr=False)
    _parts: list[PartInfo] | None = field(default=None, repr=False)
    _file: str | None = field(default=None, repr=False)  # its Maildir file
    _offset: int = field(default=0, repr=False)  # where the message starts in the file
    _size: int = field(default=-1, repr=False)

    @property
    def raw(self) -> bytes:
        raw = self._raw
        if raw is not None:
            return raw
        return self._read()

    def _read(self) -> bytes:
        """The bytes from the Maildir file (a mail client may have moved it to cur/);
        empty when the file is gone."""
        assert self._file is not None
        path = Path(self._file)
        candidates = [
            path,
            path.parent.parent / "new" / self.id,
            path.parent.parent / "cur" / self.id,
        ]
        candidates += sorted((path.parent.parent / "cur").glob(f"{glob_escape(self.id)}:*"))
        for candidate in candidates:
            try:
                with open(candidate, "rb") as file:
                    file.seek(self._offset)
                    return file.read()
            except OSError:
                continue
        return b""

    def spill(self) -> bool:
        """Forget the bytes when they are on disk (``raw`` reads them back); True when
        they were forgotten now."""
        if self._file is not None and self._raw is not None:
            self._size = len(self._raw)
            self._raw = None
            return True
        return False

    @property
    def size(self) -> int:
        raw = self._raw
        return len(raw) if raw is not None else self._size

    @property
    def summary(self) -> Summary:
        if self._summary is None:
            self._summary = summarize(self.raw)
        return self._summary

    @property
    def subject(self) -> str:
        return self.summary.subject

    @property
    def from_header(self) -> str:
        return self.summary.from_header

    @property
    def to_header(self) -> str:
        return self.summary.to_header

    @property
    def parse_error(self) -> str | None:
        return self.summary.parse_error

    @property
    def indexed(self) -> bool:
        return self._search is not None

    @property
    def search_text(self) -> str:
        if self._search is None:
            fields = header_fields(self.raw)
            self._search = "\n".join(
                [
                    *(
                        quick_decode(value)
                        for name, value in fields
                        if name.lower() in ("subject", "from", "to", "cc")
                    ),
                    self.mail_from,
                    *self.rcpt_tos,
                    body_text(self.raw)[:SEARCH_TEXT_LIMIT],
                ]
            ).casefold()
        return self._search

    def parsed(self) -> EmailMessage:
        """The whole message parsed with ``policy.default`` (may raise)."""
        return parse_message(self.raw)

    @property
    def parts(self) -> list[PartInfo]:
        if self._parts is None:
            try:
                self._parts = describe_parts(self.parsed())
            except Exception:
                self._parts = []
        return self._parts

    def summary_dict(self) -> dict[str, object]:
        summary = self.summary
        return {
            "id": self.id,
            "received": self.received.isoformat(),
            "mail_from": self.mail_from,
            "rcpt_tos": self.rcpt_tos,
            "auth_user": self.auth_user,
            "from": summary.from_header,
            "to": summary.to_header,
            "subject": summary.subject,
            "size": self.size,
            "parse_error": summary.parse_error,
        }


# --- Maildir files ---


def _envelope_line(stored: StoredMessage) -> bytes:
    envelope = {
        "mail_from": stored.mail_from,
        "rcpt_tos": stored.rcpt_tos,
        "received": stored.received.isoformat(),
        "auth_user": stored.auth_user,
    }
    text = json.dumps(envelope, ensure_ascii=True, separators=(", ", ": "))
    # Keep header lines under 998 octets: fold after ", " (unfolding restores it).
    lines, line = [], ENVELOPE_HEADER.decode()
    for piece in text.split(", "):
        if len(line) + len(piece) > 900:
            lines.append(line + ",")
            line = " " + piece
        else:
            line = f"{line} {piece}" if line.endswith(":") else f"{line}, {piece}"
    lines.append(line)
    return ("\r\n".join(lines) + "\r\n").encode("ascii")


def _split_envelope(data: bytes) -> tuple[dict[str, Any] | None, bytes]:
    """(envelope, message) from a Maildir file; (None, data) when it has none."""
    if not data.startswith(ENVELOPE_HEADER):
        return None, data
    end = 0
    while True:
        end = data.find(b"\n", end)
        if end < 0 or data[end + 1 : end + 2] not in (b" ", b"\t"):
            break
        end += 1
    if end < 0:
        return None, data
    line = data[len(ENVELOPE_HEADER) : end].replace(b"\r\n", b"").replace(b"\n", b"")
    try:
        envelope = json.loads(line)
    except ValueError:
        return None, data
    if not isinstance(envelope, dict):
        return None, data
    return envelope, data[end + 1 :]


def _read_envelope(
    envelope: dict[str, Any],
) -> tuple[str, list[str], str | None, datetime | None]:
    """(mail_from, rcpt_tos, auth_user, received) from an envelope header's JSON;
    ValueError naming the field that is not what the catcher writes."""
    mail_from = envelope.get("mail_from") or ""
    if not isinstance(mail_from, str):
        raise ValueError("malformed envelope header: 'mail_from' is not a string")
    rcpt_tos = envelope.get("rcpt_tos") or []
    if not isinstance(rcpt_tos, list) or not all(isinstance(a, str) for a in rcpt_tos):
        raise ValueError("malformed envelope header: 'rcpt_tos' is not a list of strings")
    auth_user = envelope.get("auth_user")
    if auth_user is not None and not isinstance(auth_user, str):
        raise ValueError("malformed envelope header: 'auth_user' is not a string")
    received: datetime | None = None
    stamp = envelope.get("received")
    if stamp is not None:
        try:
            received = datetime.fromisoformat(stamp) if isinstance(stamp, str) else None
        except ValueError:
            received = None
        if received is None or received.tzinfo is None:
            raise ValueError(
                "malformed envelope header: 'received' is not an ISO 8601 time with a time zone"
            )
    return mail_from, rcpt_tos, auth_user, received


def prepare_maildir(path: str | os.PathLike[str]) -> Path:
    """Make ``path`` a Maildir (creating it and its parents when missing, or filling an
    empty folder); raise MaildirError naming the path when that cannot be done."""
    folder = Path(path).expanduser().absolute()
    subdirs = [folder / name for name in ("cur", "new", "tmp")]
    try:
        if folder.exists() and not folder.is_dir():
            raise MaildirError(f"{folder} exists and is not a folder")
        if folder.is_dir() and not any(sub.is_dir() for sub in subdirs) and any(folder.iterdir()):
            raise MaildirError(
                f"{folder} is a folder with files but not a Maildir (no cur/, new/, "
                "tmp/); give a new or empty folder, or an existing Maildir"
            )
        for sub in subdirs:
            sub.mkdir(parents=True, exist_ok=True)
        probe = folder / "tmp" / f".mailwright-probe-{os.getpid()}"
        probe.touch()
        probe.unlink()
    except MaildirError:
        raise
    except OSError as exc:
        where = exc.filename or folder
        raise MaildirError(
            f"{folder}: cannot use it as a Maildir: {exc.strerror} ({where})"
        ) from exc
    return folder


_hostname = socket.gethostname().replace("/", r"\057").replace(":", r"\072")


class _MaildirWriter:
    """Threads that write queued messages to a Maildir, in batches: each batch's
    completion callbacks are handed back together (one wake-up of the event loop per
    batch instead of one per message). Several threads, because file creation waits
    on the disk (and releases the GIL): on the shared 2-core machine 4 threads create
    files several times faster than one."""

    threads = 4

    def __init__(
        self,
        folder: Path,
        deliver: Callable[
            [list[tuple[Callable[[BaseException | None], None], BaseException | None]]], None
        ],
    ) -> None:
        self.folder = folder
        self._deliver = deliver
        self._queue: queue.SimpleQueue[
            tuple[StoredMessage, Callable[[BaseException | None], None]] | None
        ] = queue.SimpleQueue()
        self._threads = [
            threading.Thread(target=self._run, name=f"mailwright-maildir-{n}", daemon=True)
            for n in range(self.threads)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, stored: StoredMessage, done: Callable[[BaseException | None], None]) -> None:
        self._queue.put((stored, done))

    def close(self) -> None:
        for _ in self._threads:
            self._queue.put(None)
        for thread in self._threads:
            thread.join(30)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            batch = []
            stop = item is None
            if item is not None:
                batch.append(item)
            while not stop and len(batch) < 64:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                else:
                    batch.append(item)
            results: list[tuple[Callable[[BaseException | None], None], BaseException | None]] = []
            for stored, done in batch:
                try:
                    write_maildir_file(self.folder, stored)
                    results.append((done, None))
                except OSError as exc:
                    results.append((done, exc))
            if results:
                self._deliver(results)
            if stop:
                return


def write_maildir_file(folder: Path, stored: StoredMessage) -> None:
    """Write to tmp/ and rename into new/, as the Maildir convention asks."""
    base = os.fspath(folder)
    tmp = f"{base}/tmp/{stored.id}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    envelope = _envelope_line(stored)
    try:
        try:
            for piece in (envelope, stored.raw):  # not joined: no copy of a big message
                data = memoryview(piece)
                while data:
                    data = data[os.write(fd, data) :]
        finally:
            os.close(fd)
        os.rename(tmp, f"{base}/new/{stored.id}")
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    stored._file = f"{base}/new/{stored.id}"
    stored._offset = len(envelope)


class MessageStore:
    """Received messages, oldest first, with an index by id. Thread-safe.

    For scripts and tests (``server.store``):

    * ``messages()``: every message, oldest first (newest last), as ``StoredMessage``
      (``id``, ``received``, ``mail_from``, ``rcpt_tos``, ``auth_user``, ``raw`` — the
      bytes as received —, ``subject``, and ``parsed()``: the stdlib parser's
      ``email.message.EmailMessage``);
    * ``get(id)``: one message, or None;
    * ``clear()``: forget every message (and delete their Maildir files); returns how
      many there were;
    * ``wait_for_count(n, timeout)``: block until ``n`` are stored (signalled, no
      polling); ``len(store)``: how many there are.

    ``add()`` stores a message at once (writing the Maildir file in the caller's
    thread); ``accept()`` is the SMTP server's path: with a Maildir the file is written
    by the writer thread and ``done`` is called once it is on disk and listed.
    """

    def __init__(
        self, maildir: str | os.PathLike[str] | None = None, max_messages: int | None = None
    ) -> None:
        if max_messages is not None and max_messages < 1:
            raise ValueError(f"max_messages must be at least 1 (or None), got {max_messages}")
        #: At most this many are kept: adding one more drops the oldest (None: no limit).
        self.max_messages = max_messages
        self._messages: list[StoredMessage] = []
        self._by_id: dict[str, StoredMessage] = {}
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._counter = itertools.count(1)
        # Ids name Maildir files and appear in URLs: unique, and not guessable by a
        # page on another site.
        self._prefix = f"{int(time.time())}.{secrets.token_hex(6)}Q"
        self._listeners: list[Callable[[str, StoredMessage | None], None]] = []
        self._version = 0  # counts deletions: the search text cache is valid within one
        self._texts: list[str] = []
        self._texts_version = -1
        self._writer: _MaildirWriter | None = None
        self.maildir_path: Path | None = None
        if maildir is not None:
            self.maildir_path = prepare_maildir(maildir)

    # --- Maildir ---

    def load_maildir(self, warn: Callable[[str], None]) -> int:
        """Read every message in the Maildir (new/ and cur/); a file that cannot be
        read is skipped with a warning naming it. Returns how many were loaded."""
        if self.maildir_path is None:
            return 0
        loaded: list[StoredMessage] = []
        for sub in ("new", "cur"):
            folder = self.maildir_path / sub
            try:
                entries = sorted(os.scandir(folder), key=lambda entry: entry.name)
            except OSError as exc:
                warn(f"cannot read Maildir folder {folder}: {exc.strerror}")
                continue
            for entry in entries:
                if entry.name.startswith("."):
                    continue
                key = entry.name.split(":", 1)[0]
                try:
                    with open(entry.path, "rb") as file:
                        head = file.read(_HEAD_SIZE)
                        stat = os.fstat(file.fileno())
                        if head.startswith(ENVELOPE_HEADER) and len(head) < stat.st_size:
                            envelope, _ = _split_envelope(head)
                            if envelope is None:  # an envelope line longer than the head
                                head += file.read()
                except OSError as exc:
                    warn(f"skipping unreadable Maildir file {entry.path}: {exc.strerror}")
                    continue
                try:
                    loaded.append(self._from_file(key, head, stat, entry.path))
                except ValueError as exc:
                    warn(f"skipping Maildir file {entry.path}: {exc}")
        loaded.sort(key=lambda stored: stored.received)
        with self._lock:
            for stored in loaded:
                if stored.id not in self._by_id:
                    self._messages.append(stored)
                    self._by_id[stored.id] = stored
            dropped = self._trim()
            self._changed.notify_all()
        if dropped:
            self._unlink(stored.id for stored in dropped)
            warn(
                f"deleted the {len(dropped)} oldest messages of the Maildir: more than "
                f"--max-messages {self.max_messages}"
            )
        return len(loaded) - len(dropped)

    @staticmethod
    def _from_file(key: str, head: bytes, stat: os.stat_result, path: str) -> StoredMessage:
        """The message in a Maildir file, from its first bytes (the body stays on
        disk); ValueError for an envelope header that is there but malformed (what
        another program or a hand edit may leave)."""
        envelope, rest = _split_envelope(head)
        offset = len(head) - len(rest)
        received = datetime.fromtimestamp(stat.st_mtime, UTC)
        mail_from, auth_user = "", None
        rcpt_tos: list[str] = []
        if envelope is not None:
            mail_from, rcpt_tos, auth_user, stamped = _read_envelope(envelope)
            received = stamped or received
        return StoredMessage(
            key,
            received,
            mail_from,
            rcpt_tos,
            None,
            auth_user,
            _file=path,
            _offset=offset,
            _size=stat.st_size - offset,
        )

    def start_writer(
        self,
        deliver: Callable[
            [list[tuple[Callable[[BaseException | None], None], BaseException | None]]], None
        ],
    ) -> None:
        """Start the batching writer thread; ``deliver`` receives each batch's callbacks
        (run them in the thread that should see the result)."""
        if self.maildir_path is not None and self._writer is None:
            self._writer = _MaildirWriter(self.maildir_path, deliver)

    def close(self) -> None:
        """Finish pending Maildir writes and stop the writer thread."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    # --- adding ---

    def new_id(self) -> str:
        return f"{self._prefix}{next(self._counter)}"

    def _trim(self) -> list[StoredMessage]:
        """Drop the oldest beyond ``max_messages`` (under the lock); return them."""
        if self.max_messages is None:
            return []
        excess = len(self._messages) - self.max_messages
        if excess <= 0:
            return []
        dropped = self._messages[:excess]
        del self._messages[:excess]
        for stored in dropped:
            del self._by_id[stored.id]
        self._version += 1
        return dropped

    def _insert(self, stored: StoredMessage) -> None:
        with self._lock:
            self._messages.append(stored)
            self._by_id[stored.id] = stored
            dropped = self._trim()
            self._changed.notify_all()
        if dropped:
            self._unlink(old.id for old in dropped)
            for old in dropped:
                for listener in self._listeners:
                    listener("deleted", old)
        for listener in self._listeners:
            listener("added", stored)

    def add(
        self, raw: bytes, mail_from: str, rcpt_tos: list[str], auth_user: str | None = None
    ) -> StoredMessage:
        """Store a message now; with a Maildir it is written there first."""
        stored = StoredMessage(
            self.new_id(), datetime.now(UTC), mail_from, rcpt_tos, raw, auth_user
        )
        if self.maildir_path is not None:
            write_maildir_file(self.maildir_path, stored)
        self._insert(stored)
        return stored

    def accept(
        self,
        raw: bytes,
        mail_from: str,
        rcpt_tos: list[str],
        auth_user: str | None,
        done: Callable[[StoredMessage, BaseException | None], None],
    ) -> StoredMessage | None:
        """The SMTP path. Without a Maildir (or writer) the message is stored and
        returned at once; otherwise None is returned and ``done(stored, error)`` is
        called when the file is written (error None) or could not be (not stored)."""
        stored = StoredMessage(
            self.new_id(), datetime.now(UTC), mail_from, rcpt_tos, raw, auth_user
        )
        if self._writer is None:
            if self.maildir_path is not None:
                write_maildir_file(self.maildir_path, stored)
            self._insert(stored)
            return stored

        def written(error: BaseException | None) -> None:
            if error is None:
                self._insert(stored)
            done(stored, error)

        self._writer.submit(stored, written)
        return None

    # --- reading ---

    def add_listener(self, listener: Callable[[str, StoredMessage | None], None]) -> None:
        """``listener(event, message)`` after each change: "added", "deleted", "cleared"."""
        self._listeners.append(listener)

    def __len__(self) -> int:
        return len(self._messages)

    def get(self, message_id: str) -> StoredMessage | None:
        """The message with this id, or None."""
        return self._by_id.get(message_id)

    def messages(self) -> list[StoredMessage]:
        """Every message, oldest first (a copy of the list)."""
        with self._lock:
            return list(self._messages)

    all = messages

    def newest_first(self, offset: int = 0, limit: int = 50) -> list[StoredMessage]:
        with self._lock:
            end = len(self._messages) - offset
            start = max(0, end - limit)
            page = self._messages[start : max(end, 0)]
        return page[::-1]

    def search(
        self, query: str, offset: int = 0, limit: int = 50
    ) -> tuple[int, list[StoredMessage]]:
        """Messages whose subject, addresses or text contain every word of ``query``
        (case-insensitive), newest first: (how many match, the requested page)."""
        words = query.casefold().split()
        if not words:
            with self._lock:
                total = len(self._messages)
            return total, self.newest_first(offset, limit)
        with self._lock:
            messages = list(self._messages)
            version = self._version
        texts = self._texts
        if self._texts_version != version or len(texts) > len(messages):
            texts = []
        # (between two deletions, messages are only ever appended)
        texts += [stored.search_text for stored in messages[len(texts) :]]
        self._texts, self._texts_version = texts, version
        # One tight comprehension per word, the longest (likely the rarest) first:
        # about 15 ms for 100,000 messages.
        first, *others = sorted(words, key=len, reverse=True)
        matches = [index for index, text in enumerate(texts) if first in text]
        for word in others:
            matches = [index for index in matches if word in texts[index]]
        total = len(matches)
        newest = matches[::-1][offset : offset + limit]
        return total, [messages[index] for index in newest]

    def wait_for_count(self, count: int, timeout: float | None = None) -> bool:
        """Block until at least ``count`` messages are stored; False on timeout."""
        with self._changed:
            return self._changed.wait_for(lambda: len(self._messages) >= count, timeout)

    # --- deleting ---

    def _unlink(self, ids: Iterable[str]) -> None:
        if self.maildir_path is None:
            return
        for message_id in ids:
            for sub in ("new", "cur"):
                folder = self.maildir_path / sub
                path = folder / message_id
                try:
                    path.unlink()
                    break
                except FileNotFoundError:
                    # in cur/ a mail client may have added ":2,FLAGS"
                    for candidate in folder.glob(f"{glob_escape(message_id)}:*"):
                        candidate.unlink(missing_ok=True)

    def delete(self, message_id: str) -> bool:
        with self._lock:
            stored = self._by_id.pop(message_id, None)
            if stored is None:
                return False
            self._messages.remove(stored)
            self._version += 1
        self._unlink([message_id])
        for listener in self._listeners:
            listener("deleted", stored)
        return True

    def clear(self) -> int:
        """Forget every message (and delete their Maildir files); return how many."""
        with self._lock:
            ids = list(self._by_id)
            self._messages.clear()
            self._by_id.clear()
            self._version += 1
        self._unlink(ids)
        for listener in self._listeners:
            listener("cleared", None)
        return len(ids)


def glob_escape(text: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", text)
