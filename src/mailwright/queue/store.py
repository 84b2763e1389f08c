"""``Outbox``: every read and write of the outbox database, one method per operation.

States: ``queued`` (waiting for its next attempt, at ``due``), ``sending`` (claimed by
a worker until its lease ends at ``due``), ``sent`` (every recipient accepted) and
``failed`` (the dead-letter state: a recipient refused for good or the message
expired; the server's reply is kept). Each recipient's own outcome is in ``results``;
``pending`` lists the recipients still to deliver, so a retry never goes to a
recipient that already accepted the message.

Each method is one transaction. An ``Outbox`` object may be shared by threads (its
calls are serialised); every process opens its own.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

from .database import OutboxError, connect, failure, transaction
from .states import STATES

__all__ = [
    "STATES",
    "Claimed",
    "Detail",
    "Outbox",
    "OutboxError",
    "Settlement",
    "Status",
    "Stored",
    "Summary",
]

# Listing every state: mail still to deliver first, soonest due first; then finished
# mail, most recently finished first (a finished message's due is when it finished).
_ALL_ORDER = (
    "CASE WHEN state IN ('queued', 'sending') THEN 0 ELSE 1 END,"
    " CASE WHEN state IN ('queued', 'sending') THEN due ELSE -due END, id DESC"
)

#: Why a claim came back to the queue without an outcome.
LOST_WORKER = "the worker delivering it stopped without saying what happened (lease expired)"


@dataclass(frozen=True, slots=True)
class Stored:
    """A message to queue: its envelope and wire bytes."""

    sender: str
    recipients: list[str]
    data: bytes
    subject: str = ""
    relay: str | None = None  # the mailer to deliver through (None: the worker's relay)


@dataclass(frozen=True, slots=True)
class Claimed:
    """A message a worker holds: the recipients still to deliver, and its books."""

    id: int
    sender: str
    recipients: list[str]
    attempts: int  # including this one
    since: float  # when its delivery effort started (queued, or retried by hand)
    results: dict[str, dict[str, Any]]
    data: bytes
    problem: str | None = None  # why the stored row cannot be sent at all
    relay: str | None = None  # the mailer to deliver through (None: the worker's relay)


@dataclass(frozen=True, slots=True)
class Settlement:
    """What a delivery attempt did to one message, as the worker records it."""

    id: int
    state: str  # queued (to retry at ``due``), sent or failed
    due: float
    pending: list[str]
    # None: every recipient accepted it at ``due`` on this attempt (the common case,
    # stored as NULL: no JSON to write or read)
    results: dict[str, dict[str, Any]] | None
    last_error: str | None
    # False: the backend says it never tried the message (its batch ended before
    # it): back to the queue, due at once, the attempt not counted.
    tried: bool = True


@dataclass(slots=True)
class Summary:
    """One message as ``mailwright queue list`` shows it."""

    id: int
    state: str
    attempts: int
    created: float
    due: float
    sender: str
    recipients: list[str]
    subject: str
    last_error: str | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(slots=True)
class Detail(Summary):
    """One message as ``mailwright queue show`` shows it."""

    since: float = 0.0
    owner: str | None = None
    pending: list[str] = field(default_factory=list)
    results: dict[str, dict[str, Any]] = field(default_factory=dict)
    size: int = 0
    relay: str | None = None  # the mailer it is delivered through (None: the worker's)


@dataclass(slots=True)
class Status:
    """Counts per state, and what waits."""

    counts: dict[str, int]
    due_now: int  # queued and due
    waiting: int  # queued, waiting for a retry
    overdue_since: float | None  # when the message due longest ago fell due
    next_retry: float | None  # the earliest retry that is not due yet

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "total": self.total}


def _json(text: str | None) -> Any:
    return json.loads(text) if text else None


class Outbox:
    """The outbox at ``path`` (created when missing, unless ``create=False``).

    ``durable=False`` is for the worker: its commits survive its own crash but not
    a power failure, and what it writes only ever spares a second delivery (a lost
    outcome means the message is sent again, never that it is lost), so it does not
    pay an fsync per batch. The queue backend always queues durably.
    """

    def __init__(self, path: str, *, create: bool = True, durable: bool = True) -> None:
        self.path = str(path)
        self._db = connect(self.path, create=create, durable=durable)
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<Outbox {self.path}>"

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> Outbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _write(self, doing: str) -> Iterator[sqlite3.Connection]:
        with self._lock, transaction(self._db, self.path, doing) as db:
            yield db

    @contextmanager
    def _read(self, doing: str) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                yield self._db
            except sqlite3.Error as exc:
                raise failure(self.path, exc, doing) from exc

    # --- the application side ---

    def queue(self, messages: Sequence[Stored], now: float | None = None) -> list[int]:
        """Store ``messages`` in one transaction (one fsync); return their ids. All of
        them are queued, or (an ``OutboxError`` raised) none."""
        if not messages:
            return []
        now = time.time() if now is None else now
        rows = []
        for m in messages:
            recipients = json.dumps(m.recipients)
            rows.append(
                (now, now, now, m.sender, recipients, recipients, m.subject, m.data, m.relay)
            )
        with self._write("queueing") as db:
            row = db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'message'").fetchone()
            first = (row[0] if row else 0) + 1
            db.executemany(
                "INSERT INTO message (state, due, created, since, sender, recipients, pending,"
                " subject, data, relay) VALUES ('queued', ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
            _tally(db, queued=len(rows))
        # AUTOINCREMENT under the write lock: the ids are consecutive.
        return list(range(first, first + len(rows)))

    # --- the worker side ---

    def claim(
        self, owner: str, limit: int, lease: float, now: float | None = None
    ) -> list[Claimed]:
        """Take up to ``limit`` due messages for ``owner`` until ``now + lease``
        (earliest due first). Expired leases of other workers return to the queue
        first. Exactly one claimant gets each message."""
        now = time.time() if now is None else now
        with self._write("claiming messages") as db:
            rows = self._claim(db, owner, limit, lease, now)
        # Read into Claimed after the commit: the write lock, which every worker
        # process waits for, is held for the SQL alone.
        return [_claimed(*row) for row in rows]

    @staticmethod
    def _claim(
        db: sqlite3.Connection, owner: str, limit: int, lease: float, now: float
    ) -> list[Any]:
        lapsed = db.execute(
            "UPDATE message SET state = 'queued', owner = NULL, due = ?, last_error = ?"
            " WHERE state = 'sending' AND due <= ?",
            (now, LOST_WORKER, now),
        ).rowcount
        rows = db.execute(
            "UPDATE message SET state = 'sending', owner = ?, due = ?, attempts = attempts + 1"
            " WHERE id IN (SELECT id FROM message WHERE state = 'queued' AND due <= ?"
            " ORDER BY due LIMIT ?)"
            " RETURNING id, sender, pending, attempts, since, results, data, relay",
            (owner, now + lease, now, limit),
        ).fetchall()
        _tally(db, queued=lapsed - len(rows), sending=len(rows) - lapsed)
        return rows

    def renew(self, owner: str, lease: float, now: float | None = None) -> int:
        """Extend every lease ``owner`` holds to ``now + lease``; return how many."""
        now = time.time() if now is None else now
        with self._write("renewing leases") as db:
            cursor = db.execute(
                "UPDATE message SET due = ? WHERE state = 'sending' AND owner = ?",
                (now + lease, owner),
            )
            return cursor.rowcount

    def record(self, owner: str, settlements: Iterable[Settlement]) -> int:
        """Write the outcome of attempts ``owner`` made, in one transaction; return
        how many were recorded (a message whose lease ``owner`` lost is not)."""
        rows = self._record_rows(owner, settlements)
        if not _any(rows):
            return 0
        with self._write("recording delivery outcomes") as db:
            return self._record(db, owner, rows)

    def record_and_claim(
        self,
        owner: str,
        settlements: Iterable[Settlement],
        limit: int,
        lease: float,
        now: float | None = None,
    ) -> tuple[int, list[Claimed]]:
        """``record()`` then ``claim()``, in one transaction: a worker that keeps
        busy takes the write lock once per batch instead of twice (with several
        worker processes on one file, the lock is what they wait for)."""
        now = time.time() if now is None else now
        rows = self._record_rows(owner, settlements)
        with self._write("recording delivery outcomes") as db:
            recorded = self._record(db, owner, rows) if _any(rows) else 0
            claimed = self._claim(db, owner, limit, lease, now)
        return recorded, [_claimed(*row) for row in claimed]

    @staticmethod
    def _record_rows(owner: str, settlements: Iterable[Settlement]) -> _Rows:
        rows: dict[str, list[tuple[Any, ...]]] = {}
        untried: list[tuple[Any, ...]] = []
        delivered: list[int] = []  # sent to everyone at the first try: no books to keep
        finished = 0.0
        for s in settlements:
            if not s.tried:
                untried.append((s.due, s.id, owner))
            elif s.state == "sent" and s.results is None and not s.pending and s.last_error is None:
                delivered.append(s.id)
                finished = max(finished, s.due)
            else:
                pending = json.dumps(s.pending) if s.pending else "[]"
                results = None if s.results is None else json.dumps(s.results)
                rows.setdefault(s.state, []).append(
                    (s.due, pending, results, s.last_error, s.id, owner)
                )
        return rows, untried, (finished, delivered)

    def _record(self, db: sqlite3.Connection, owner: str, rows: _Rows) -> int:
        by_state, untried, (finished, delivered) = rows
        changes: dict[str, int] = {}
        for state, group in by_state.items():
            changes[state] = db.executemany(self._RECORD[state], group).rowcount
        # The common case, one statement for the lot (a statement per message costs
        # more than the update itself).
        for chunk in _chunks(delivered, 500):
            changes["sent"] = changes.get("sent", 0) + (
                db.execute(
                    f"{self._DELIVERED} ({','.join('?' * len(chunk))})",
                    (finished, owner, *chunk),
                ).rowcount
            )
        if untried:
            released = db.executemany(self._RELEASE, untried).rowcount
            changes["queued"] = changes.get("queued", 0) + released
        recorded = sum(changes.values())
        _tally(db, sending=-recorded, **changes)
        return recorded

    _RECORD = {
        state: f"UPDATE message SET state = '{state}', due = ?, owner = NULL, pending = ?,"
        " results = ?, last_error = ? WHERE id = ? AND owner = ? AND state = 'sending'"
        for state in ("queued", "sent", "failed")
    }
    _DELIVERED = (
        "UPDATE message SET state = 'sent', due = ?, owner = NULL, pending = '[]',"
        " results = NULL, last_error = NULL WHERE owner = ? AND state = 'sending' AND id IN"
    )
    _RELEASE = (
        "UPDATE message SET state = 'queued', owner = NULL, due = ?,"
        " attempts = max(attempts - 1, 0) WHERE id = ? AND owner = ? AND state = 'sending'"
    )

    def release(
        self, owner: str, ids: Iterable[int] | None = None, now: float | None = None
    ) -> int:
        """Give back claims ``owner`` holds without an attempt (all of them when
        ``ids`` is None): due at once, the attempt not counted."""
        now = time.time() if now is None else now
        with self._write("releasing messages") as db:
            if ids is None:
                released = db.execute(
                    "UPDATE message SET state = 'queued', owner = NULL, due = ?,"
                    " attempts = max(attempts - 1, 0) WHERE state = 'sending' AND owner = ?",
                    (now, owner),
                ).rowcount
            else:
                released = db.executemany(self._RELEASE, [(now, id, owner) for id in ids]).rowcount
            _tally(db, queued=released, sending=-released)
            return released

    def next_due(self) -> float | None:
        """When the earliest queued message is due (None when none is queued)."""
        with self._read("looking for work") as db:
            due: float | None = db.execute(
                "SELECT min(due) FROM message WHERE state = 'queued'"
            ).fetchone()[0]
            return due

    def checkpoint(self) -> None:
        """Copy what the log holds into the database file, as far as readers allow
        (SQLite's passive checkpoint), so the log stays short."""
        with self._read("checkpointing"):
            self._db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()

    def data_version(self) -> int:
        """A number that changes when another connection commits (SQLite's
        ``data_version``): a cheap way to notice newly queued mail."""
        with self._read("looking for work") as db:
            version: int = db.execute("PRAGMA data_version").fetchone()[0]
            return version

    # --- inspecting and managing (``mailwright queue``) ---

    def status(self, now: float | None = None) -> Status:
        """Counts per state (kept in ``tally``) and what waits, from index probes:
        the time it takes does not grow with the outbox (only with the smaller of
        "due now" and "waiting to retry", which are counted)."""
        now = time.time() if now is None else now
        with self._read("counting messages") as db:
            counts = dict.fromkeys(STATES, 0)
            counts.update(db.execute("SELECT state, count FROM tally").fetchall())
            due_now = self._due_now(db, counts["queued"], now)
            next_retry, overdue_since = db.execute(
                "SELECT (SELECT min(due) FROM message WHERE state = 'queued' AND due > ?),"
                " (SELECT min(due) FROM message WHERE state = 'queued' AND due <= ?)",
                (now, now),
            ).fetchone()
        return Status(counts, due_now, counts["queued"] - due_now, overdue_since, next_retry)

    @staticmethod
    def _due_now(db: sqlite3.Connection, queued: int, now: float) -> int:
        """How many queued messages are due, counting whichever side (due, or not
        yet) is the smaller: up to ``limit`` entries of each, ten times more each
        round."""
        limit = 1000
        while True:
            for operator, due in (("<=", True), (">", False)):
                found = db.execute(
                    "SELECT count(*) FROM (SELECT 1 FROM message WHERE state = 'queued'"
                    f" AND due {operator} ? LIMIT ?)",
                    (now, limit),
                ).fetchone()[0]
                if found < limit:
                    return int(found) if due else queued - int(found)
            limit *= 10

    def check(self, budget: float = 1.0) -> bool:
        """Read the whole file as SQLite's ``quick_check`` does, for at most ``budget``
        seconds. Raises ``OutboxError`` when the file is damaged (as queueing and the
        worker would when they reach the damage); returns True when every page was
        read and sound, False when the budget ran out first (a large outbox)."""
        deadline = time.monotonic() + budget

        def over() -> int:
            return int(time.monotonic() > deadline)

        with self._read("checking the file") as db:
            db.set_progress_handler(over, 1000)
            try:
                rows = db.execute("PRAGMA quick_check(3)").fetchall()
            except sqlite3.OperationalError as exc:
                if "interrupt" in str(exc):
                    return False
                raise
            finally:
                db.set_progress_handler(None, 0)
        if rows != [("ok",)]:
            found = "; ".join(str(row[0]) for row in rows)
            raise OutboxError(
                f"outbox {self.path}: checking the file failed: the database is damaged ({found})"
            )
        return True

    def recount(self) -> dict[str, int]:
        """Count every state by reading the whole index, and correct ``tally`` with
        it (only an edit by hand can make them differ); return the counts."""
        with self._write("counting messages") as db:
            counts = dict.fromkeys(STATES, 0)
            counts.update(db.execute("SELECT state, count(*) FROM message GROUP BY state"))
            db.executemany(
                "UPDATE tally SET count = ? WHERE state = ?",
                [(count, state) for state, count in counts.items()],
            )
        return counts

    _SUMMARY = "id, state, attempts, created, due, sender, recipients, subject, last_error"

    def list_messages(
        self, state: str | None = None, limit: int = 50, offset: int = 0
    ) -> list[Summary]:
        """Messages in ``state`` (any state when None): queued and sending ones in the
        order they are due, then sent and failed ones most recently finished first."""
        if state is not None and state not in STATES:
            raise ValueError(f"unknown state {state!r}; states: {', '.join(STATES)}")
        order = {None: _ALL_ORDER, "queued": "due", "sending": "due"}.get(state, "due DESC")
        where = "" if state is None else "WHERE state = ?"
        arguments: tuple[Any, ...] = () if state is None else (state,)
        with self._read("listing messages") as db:
            rows = db.execute(
                f"SELECT {self._SUMMARY} FROM message {where} ORDER BY {order} LIMIT ? OFFSET ?",
                (*arguments, limit, offset),
            ).fetchall()
        return [self._summary(row) for row in rows]

    @staticmethod
    def _summary(row: Sequence[Any]) -> Summary:
        id, state, attempts, created, due, sender, recipients, subject, last_error = row
        return Summary(
            id, state, attempts, created, due, sender, json.loads(recipients), subject, last_error
        )

    def show(self, id: int) -> Detail | None:
        with self._read("reading a message") as db:
            row = db.execute(
                f"SELECT {self._SUMMARY}, since, owner, pending, results, length(data), relay"
                " FROM message WHERE id = ?",
                (id,),
            ).fetchone()
        if row is None:
            return None
        id, state, attempts, created, due, sender, recipients, subject, last_error = row[:9]
        since, owner, pending, results, size, relay = row[9:]
        everyone = json.loads(recipients)
        return Detail(
            id, state, attempts, created, due, sender, everyone, subject, last_error,
            since=since,
            owner=owner,
            pending=json.loads(pending),
            results=_results(state, results, everyone, due, attempts),
            size=size,
            relay=relay,
        )  # fmt: skip

    def data(self, id: int) -> bytes | None:
        """The stored wire bytes of message ``id``."""
        with self._read("reading a message") as db:
            row = db.execute("SELECT data FROM message WHERE id = ?", (id,)).fetchone()
        return None if row is None else bytes(row[0])

    def retry(self, ids: Iterable[int] | None = None, now: float | None = None) -> dict[int, str]:
        """Queue again, due now, failed messages (``ids``, or every failed one when
        None) for the recipients that did not accept them, with a fresh expiry; a
        queued message is made due now. Returns {id: what was done or why not}."""
        now = time.time() if now is None else now
        outcome: dict[int, str] = {}
        with self._write("queueing messages again") as db:
            if ids is None:
                rows = db.execute(
                    "SELECT id, state, recipients, results FROM message WHERE state = 'failed'"
                ).fetchall()
            else:
                wanted = list(dict.fromkeys(ids))
                found = {
                    row[0]: row
                    for chunk in _chunks(wanted, 500)
                    for row in db.execute(
                        "SELECT id, state, recipients, results FROM message"
                        f" WHERE id IN ({','.join('?' * len(chunk))})",
                        chunk,
                    )
                }
                rows = []
                for id in wanted:
                    if id in found:
                        rows.append(found[id])
                    else:
                        outcome[id] = "no such message"
            for id, state, recipients, results in rows:
                if state == "queued":
                    db.execute("UPDATE message SET due = ? WHERE id = ?", (now, id))
                    outcome[id] = "due now"
                elif state == "sending":
                    outcome[id] = "being delivered right now; not changed"
                elif state == "sent":
                    outcome[id] = "already delivered to every recipient; not changed"
                else:
                    done = _json(results) or {}
                    pending = [
                        address
                        for address in json.loads(recipients)
                        if done.get(address, {}).get("status") != "sent"
                    ]
                    db.execute(
                        "UPDATE message SET state = 'queued', due = ?, since = ?, attempts = 0,"
                        " owner = NULL, pending = ? WHERE id = ?",
                        (now, now, json.dumps(pending), id),
                    )
                    _tally(db, failed=-1, queued=1)
                    outcome[id] = f"queued again for {len(pending)} recipient(s)"
        return outcome

    def purge(self, state: str, older_than: float, now: float | None = None) -> int:
        """Delete ``sent`` or ``failed`` messages that finished more than
        ``older_than`` seconds ago; return how many. Undelivered mail cannot be purged."""
        if state not in ("sent", "failed"):
            raise ValueError(
                f"only sent or failed messages can be purged, not {state!r} "
                "(queued and sending messages are mail not yet delivered)"
            )
        if older_than < 0:
            raise ValueError("older_than must not be negative")
        now = time.time() if now is None else now
        with self._write("purging messages") as db:
            deleted = db.execute(
                "DELETE FROM message WHERE state = ? AND due < ?", (state, now - older_than)
            ).rowcount
            _tally(db, **{state: -deleted})
        with self._read("freeing space"):
            self._db.execute("PRAGMA incremental_vacuum")
        return deleted

    def explain(self) -> dict[str, list[str]]:
        """SQLite's plan for each query the worker and ``status`` run (for the docs
        and the benchmark: every one goes through the index)."""
        queries = {
            "claim": (
                "SELECT id FROM message WHERE state = 'queued' AND due <= ? ORDER BY due LIMIT ?",
                (0.0, 1),
            ),
            "reclaim expired leases": (
                "UPDATE message SET state = 'queued' WHERE state = 'sending' AND due <= ?",
                (0.0,),
            ),
            "renew leases": (
                "UPDATE message SET due = ? WHERE state = 'sending' AND owner = ?",
                (0.0, ""),
            ),
            "status: due now": (
                "SELECT count(*) FROM (SELECT 1 FROM message WHERE state = 'queued'"
                " AND due <= ? LIMIT ?)",
                (0.0, 1000),
            ),
            "status: next retry": (
                "SELECT min(due) FROM message WHERE state = 'queued' AND due > ?",
                (0.0,),
            ),
            "status: overdue since": (
                "SELECT min(due) FROM message WHERE state = 'queued' AND due <= ?",
                (0.0,),
            ),
            "purge": ("DELETE FROM message WHERE state = ? AND due < ?", ("sent", 0.0)),
        }
        with self._read("explaining queries") as db:
            return {
                name: [row[-1] for row in db.execute(f"EXPLAIN QUERY PLAN {sql}", arguments)]
                for name, (sql, arguments) in queries.items()
            }


#: Outcomes to write, by kind: rows per state, releases, and (when, ids) of messages
#: every recipient accepted at the first try.
_Rows = tuple[dict[str, list[tuple[Any, ...]]], list[tuple[Any, ...]], tuple[float, list[int]]]


def _any(rows: _Rows) -> bool:
    by_state, untried, (_, delivered) = rows
    return bool(by_state or untried or delivered)


def _tally(db: sqlite3.Connection, **changes: int) -> None:
    """Move the per-state counts by ``changes`` (in the caller's transaction)."""
    db.executemany(
        "UPDATE tally SET count = count + ? WHERE state = ?",
        [(change, state) for state, change in changes.items() if change],
    )


def _results(
    state: str, results: str | None, recipients: list[str], due: float, attempts: int
) -> dict[str, dict[str, Any]]:
    """Each recipient's outcome; a message sent to everyone at its first try keeps
    none (NULL), so it is written out here."""
    if results is None and state == "sent":
        entry = {"at": due, "attempt": attempts, "status": "sent"}
        return {address: dict(entry) for address in recipients}
    found: dict[str, dict[str, Any]] = _json(results) or {}
    return found


def _claimed(
    id: int,
    sender: Any,
    pending: Any,
    attempts: int,
    since: float,
    results: Any,
    data: Any,
    relay: Any = None,
) -> Claimed:
    """A claimed row; one damaged by hand (unreadable JSON) is marked, not raised,
    so the worker can dead-letter it instead of stumbling on it forever."""
    problem = None
    try:
        recipients = json.loads(pending)
        done = _json(results) or {}
        if not (
            isinstance(recipients, list)
            and recipients
            and all(isinstance(item, str) for item in recipients)
            and isinstance(done, dict)
        ):
            raise ValueError("not a non-empty list of addresses")
    except (ValueError, TypeError) as exc:
        recipients, done, problem = [], {}, f"the stored recipients are unreadable ({exc})"
    if relay is not None and not isinstance(relay, str):
        problem = f"the stored relay is unreadable ({relay!r})"
        relay = None
    return Claimed(id, sender, recipients, attempts, since, done, data, problem, relay)


def _chunks(items: list[int], size: int) -> Iterator[list[int]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
