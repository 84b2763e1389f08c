"""The outbox file: opening it, checking it is an outbox, creating the schema.

An outbox is an SQLite database in WAL mode (readers never wait for the writer, and
one commit costs one fsync of the log) marked with its own ``application_id``, so a
file of any other kind is refused by name instead of being written into. Every SQLite
error is turned into an ``OutboxError`` that names the file and says what was wrong.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress

__all__ = ["APPLICATION_ID", "SCHEMA_VERSION", "OutboxError", "connect", "failure", "transaction"]

#: Written into the file's header; "MWOB" (mailwright outbox).
APPLICATION_ID = 0x4D574F42
SCHEMA_VERSION = 2  # 2: ``relay``, the mailer a message is delivered through
BUSY_TIMEOUT = 60.0  # seconds a writer waits for another one's transaction

# One row per message. ``due`` is what the state waits for: the next attempt
# (queued), the end of the lease (sending), or when it finished (sent, failed). The
# one index serves every query the worker and the command line make: claiming the
# next due messages, reclaiming expired leases, finding the next retry, purging.
# ``tally`` keeps the number of messages in each state, updated in the same
# transaction as every change of state, so counting never scans.
_SCHEMA = (
    """CREATE TABLE message (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    state TEXT NOT NULL CHECK (state IN ('queued', 'sending', 'sent', 'failed')),
    due REAL NOT NULL,
    created REAL NOT NULL,
    since REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    owner TEXT,
    sender TEXT NOT NULL,
    recipients TEXT NOT NULL,
    pending TEXT NOT NULL,
    results TEXT,
    last_error TEXT,
    subject TEXT NOT NULL DEFAULT '',
    data BLOB NOT NULL,
    relay TEXT
)""",
    "CREATE INDEX message_state_due ON message (state, due)",
    "CREATE TABLE tally (state TEXT PRIMARY KEY, count INTEGER NOT NULL) WITHOUT ROWID",
    "INSERT INTO tally VALUES ('queued', 0), ('sending', 0), ('sent', 0), ('failed', 0)",
)


class OutboxError(Exception):
    """The outbox cannot be used: its directory is missing, the file is not an outbox
    or is damaged, the disk is full, or another process holds it too long. The message
    names the file. When raised while queueing, nothing of that call was queued."""


def failure(path: str, exc: sqlite3.Error, doing: str) -> OutboxError:
    """An ``OutboxError`` for ``exc``, naming the file and what was being done."""
    reason = str(exc)
    code = getattr(exc, "sqlite_errorcode", None)
    if code == sqlite3.SQLITE_FULL:
        reason = "the disk (or the database's size limit) is full"
    elif code == sqlite3.SQLITE_NOTADB:
        reason = "the file is not an SQLite database (damaged, or another kind of file)"
    elif code == sqlite3.SQLITE_CORRUPT:
        reason = "the database is damaged (SQLite reports it malformed)"
    elif code == sqlite3.SQLITE_BUSY:
        reason = f"another process held the outbox locked for over {BUSY_TIMEOUT:.0f} s"
    elif code == sqlite3.SQLITE_READONLY:
        reason = "the file is read-only for this process"
    elif code == sqlite3.SQLITE_CANTOPEN:
        reason = "the file cannot be opened (permissions?)"
    elif code is not None and code & 0xFF == sqlite3.SQLITE_IOERR:
        reason = f"an I/O error writing or reading the file ({exc})"
    return OutboxError(f"outbox {path}: {doing} failed: {reason}")


@contextmanager
def transaction(db: sqlite3.Connection, path: str, doing: str) -> Iterator[sqlite3.Connection]:
    """``BEGIN IMMEDIATE`` (the write lock first, so two writers never deadlock)
    ... ``COMMIT``; on any error, roll back and raise (SQLite errors as ``OutboxError``)."""
    try:
        db.execute("BEGIN IMMEDIATE")
    except sqlite3.Error as exc:
        raise failure(path, exc, doing) from exc
    try:
        yield db
        db.execute("COMMIT")
    except BaseException as exc:
        with suppress(sqlite3.Error):  # SQLite may have rolled back already (full disk)
            db.execute("ROLLBACK")
        if isinstance(exc, sqlite3.Error):
            raise failure(path, exc, doing) from exc
        raise


def connect(path: str, *, create: bool = True, durable: bool = True) -> sqlite3.Connection:
    """Open the outbox at ``path``, creating it (not its directory) when ``create``.

    ``durable``: each commit is on disk when it returns (an fsync of the log). Without
    it a commit survives the process (it is in the OS) but not a power failure; the
    log is synced before each checkpoint, and by the next durable commit of any
    process. Raises ``OutboxError`` naming the file when it cannot be used.
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        raise OutboxError(f"outbox {path}: is a directory, not a file")
    exists = os.path.exists(path)
    if not exists:
        directory = os.path.dirname(os.path.abspath(path))
        if not create:
            raise OutboxError(f"outbox {path}: no such file (nothing was ever queued there?)")
        if not os.path.isdir(directory):
            raise OutboxError(f"outbox {path}: the directory {directory} does not exist")
    try:
        db = sqlite3.connect(
            path, timeout=BUSY_TIMEOUT, isolation_level=None, check_same_thread=False
        )
    except sqlite3.Error as exc:
        raise failure(path, exc, "opening") from exc
    try:
        _prepare(db, path, durable)
    except BaseException:
        db.close()
        raise
    return db


def _prepare(db: sqlite3.Connection, path: str, durable: bool) -> None:
    try:
        db.execute("BEGIN")  # one snapshot: another process may be creating it now
        try:
            application_id, version, tables = _identity(db)
        finally:
            db.execute("COMMIT")
    except sqlite3.Error as exc:
        raise failure(path, exc, "reading the file") from exc
    if application_id == 0 and not tables:
        _create(db, path)
    elif application_id != APPLICATION_ID:
        raise OutboxError(
            f"outbox {path}: this SQLite database is not a mailwright outbox "
            f"(application id {application_id:#x}, tables: {', '.join(tables) or 'none'}); "
            "point EMAIL_QUEUE_PATH at a new file"
        )
    elif version > SCHEMA_VERSION:
        raise OutboxError(
            f"outbox {path}: written by a newer mailwright (schema {version}, this one "
            f"knows {SCHEMA_VERSION}); upgrade mailwright"
        )
    elif version < SCHEMA_VERSION:
        _upgrade(db, path)
    try:
        mode = _use_wal(db)
        # FULL: in WAL mode, every commit syncs the log, so a message queued is on
        # disk when queueing returns; one transaction, one fsync.
        db.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
        if not durable:
            # The worker's connections never stop to copy the log into the file (and
            # sync it) in the middle of a batch: the worker does it on the side
            # (``Outbox.checkpoint``).
            db.execute("PRAGMA wal_autocheckpoint=0")
    except sqlite3.Error as exc:
        raise failure(path, exc, "setting up") from exc
    if mode != "wal":
        raise OutboxError(f"outbox {path}: the file system does not support WAL mode ({mode})")


def _use_wal(db: sqlite3.Connection) -> str:
    """Put the file in WAL mode (a no-op once it is); the journal mode it is in after.

    Switching takes the exclusive lock, and when another connection is switching or
    creating the file at the same moment, SQLite answers "database is locked" at once
    instead of calling the busy handler: several threads or processes opening a new
    outbox together would fail. Retried here, up to the same ``BUSY_TIMEOUT``."""
    deadline = time.monotonic() + BUSY_TIMEOUT
    delay = 0.001
    while True:
        try:
            mode: str = db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            return mode
        except sqlite3.OperationalError as exc:
            if getattr(exc, "sqlite_errorcode", None) != sqlite3.SQLITE_BUSY:
                raise
            if time.monotonic() >= deadline:
                raise
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


def _identity(db: sqlite3.Connection) -> tuple[int, int, list[str]]:
    application_id = db.execute("PRAGMA application_id").fetchone()[0]
    version = db.execute("PRAGMA user_version").fetchone()[0]
    tables = [
        row[0]
        for row in db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        )
    ]
    return application_id, version, tables


#: What takes an outbox of each older schema to the next one.
_UPGRADES = {1: ("ALTER TABLE message ADD COLUMN relay TEXT",)}


def _upgrade(db: sqlite3.Connection, path: str) -> None:
    """Bring an outbox an older mailwright made up to this schema (the rows stay)."""
    with transaction(db, path, "upgrading the outbox"):
        # Another process may have upgraded it meanwhile: look again under the lock.
        version = db.execute("PRAGMA user_version").fetchone()[0]
        while version < SCHEMA_VERSION:
            for statement in _UPGRADES[version]:
                db.execute(statement)
            version += 1
        db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")


def _create(db: sqlite3.Connection, path: str) -> None:
    try:
        # Before the first table exists: purged space can go back to the file system.
        db.execute("PRAGMA auto_vacuum=INCREMENTAL")
        with transaction(db, path, "creating the outbox"):
            # Another process may have created it meanwhile: look again under the lock.
            application_id, _, tables = _identity(db)
            if application_id == 0 and not tables:
                for statement in _SCHEMA:
                    db.execute(statement)
                db.execute(f"PRAGMA application_id={APPLICATION_ID}")
                db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
    except sqlite3.Error as exc:
        raise failure(path, exc, "creating the outbox") from exc
    application_id, _, tables = _identity(db)
    if application_id != APPLICATION_ID:
        raise OutboxError(f"outbox {path}: another program took the file while it was created")
