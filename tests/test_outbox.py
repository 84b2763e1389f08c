"""The durable outbox's store and the queue backend: what is stored, all or nothing,
claims, settings, and bad input (damaged or foreign files, a full disk)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import textwrap
import threading
from email import message_from_bytes, policy
from pathlib import Path

import pytest

import mailwright
from mailwright import EmailMessage, ImproperlyConfigured, RawMessage, get_connection, settings
from mailwright.queue import Outbox, OutboxError, Stored

QUEUE = "mailwright.backends.queue.EmailBackend"


@pytest.fixture
def outbox_path(tmp_path: Path) -> str:
    path = str(tmp_path / "outbox.sqlite3")
    mailwright.configure(EMAIL_BACKEND=QUEUE, EMAIL_QUEUE_PATH=path)
    return path


def rows(path: str, sql: str = "SELECT * FROM message ORDER BY id") -> list[sqlite3.Row]:
    db = sqlite3.connect(path)
    db.row_factory = sqlite3.Row
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()


# --- queueing ---


def test_send_mail_stores_wire_bytes_and_envelope(outbox_path: str) -> None:
    sent = mailwright.send_mail(
        "Grüße", "Hello\n", "Ann <ann@example.com>", ["bob@example.com"], html_message="<p>Hi</p>"
    )
    assert sent == 1
    [row] = rows(outbox_path)
    assert (row["state"], row["attempts"], row["sender"]) == ("queued", 0, "ann@example.com")
    assert json.loads(row["recipients"]) == json.loads(row["pending"]) == ["bob@example.com"]
    assert row["subject"] == "Grüße"
    parsed = message_from_bytes(row["data"].replace(b"\r\n", b"\n"), policy=policy.default)
    assert parsed["Subject"] == "Grüße"
    assert parsed.get_body(("plain",)).get_content() == "Hello\n"  # type: ignore[union-attr]
    assert parsed.get_body(("html",)).get_content() == "<p>Hi</p>"  # type: ignore[union-attr]
    assert b"\r\n" in row["data"] and b"\n" not in row["data"].replace(b"\r\n", b"")


def test_bcc_is_in_the_envelope_not_the_message(outbox_path: str) -> None:
    message = EmailMessage(
        "S", "B", "a@example.com", ["to@example.com"], bcc=["hidden@example.com"]
    )
    assert get_connection().send_messages([message]) == 1
    [row] = rows(outbox_path)
    assert json.loads(row["recipients"]) == ["to@example.com", "hidden@example.com"]
    assert b"hidden@example.com" not in row["data"]


def test_raw_messages_are_stored_exactly(outbox_path: str) -> None:
    data = b"From: a@example.com\r\nSubject: raw\r\n\r\nbody line\r\n.leading dot\r\n"
    message = RawMessage(data, "bounce@example.com", ["x@example.com", "y@example.com"])
    assert get_connection().send_messages([message]) == 1
    [row] = rows(outbox_path)
    assert bytes(row["data"]) == data
    assert row["sender"] == "bounce@example.com"
    assert json.loads(row["pending"]) == ["x@example.com", "y@example.com"]


def test_one_call_is_one_transaction_and_ids_are_returned(outbox_path: str) -> None:
    messages = [
        Stored("a@example.com", [f"u{i}@example.com"], b"Subject: s\r\n\r\nb\r\n") for i in range(5)
    ]
    with Outbox(outbox_path) as outbox:
        first = outbox.queue(messages)
        second = outbox.queue(messages[:2])
    assert first == [1, 2, 3, 4, 5] and second == [6, 7]
    assert [r["id"] for r in rows(outbox_path)] == list(range(1, 8))


def test_a_bad_message_queues_nothing_of_its_call(outbox_path: str) -> None:
    good = EmailMessage("ok", "b", "a@example.com", ["to@example.com"])
    bad = EmailMessage("bad\nSubject: injected", "b", "a@example.com", ["to@example.com"])
    with pytest.raises(mailwright.BadHeaderError):
        get_connection().send_messages([good, bad])
    assert not os.path.exists(outbox_path) or rows(outbox_path) == []
    assert get_connection().send_messages([good]) == 1
    assert len(rows(outbox_path)) == 1


def test_message_without_recipients_is_not_queued(outbox_path: str) -> None:
    empty = EmailMessage("none", "b", "a@example.com", [])
    one = EmailMessage("one", "b", "a@example.com", ["to@example.com"])
    assert get_connection().send_messages([empty]) == 0
    assert get_connection().send_messages([empty, one]) == 1
    assert [r["subject"] for r in rows(outbox_path)] == ["one"]


def test_open_connection_is_reused_and_closed(outbox_path: str) -> None:
    with get_connection() as connection:
        outbox = connection.outbox  # type: ignore[attr-defined]
        assert outbox is not None
        connection.send_messages([EmailMessage("1", "b", "a@example.com", ["t@example.com"])])
        connection.send_messages([EmailMessage("2", "b", "a@example.com", ["t@example.com"])])
        assert connection.outbox is outbox  # type: ignore[attr-defined]
    assert connection.outbox is None  # type: ignore[attr-defined]
    assert len(rows(outbox_path)) == 2


def test_asend_messages_does_not_block_the_event_loop(outbox_path: str) -> None:
    """Another process holds the write lock; queueing waits for it. The coroutine that
    releases the lock can only run if the event loop is not blocked by the wait."""
    Outbox(outbox_path).close()
    holder = sqlite3.connect(outbox_path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")

    async def main() -> int:
        backend = get_connection()
        task = asyncio.ensure_future(
            backend.asend_messages([EmailMessage("s", "b", "a@example.com", ["t@example.com"])])
        )
        await asyncio.sleep(0.2)
        assert not task.done()  # waiting for the lock, in a thread
        holder.execute("COMMIT")  # runs only because the loop is free
        return await asyncio.wait_for(task, 30)

    assert asyncio.run(main()) == 1
    holder.close()
    assert len(rows(outbox_path)) == 1


def test_queueing_from_many_threads_loses_nothing(outbox_path: str) -> None:
    def queue(n: int) -> None:
        for i in range(20):
            message = EmailMessage(f"{n}-{i}", "b", "a@example.com", ["t@example.com"])
            assert get_connection().send_messages([message]) == 1

    threads = [threading.Thread(target=queue, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    subjects = sorted(r["subject"] for r in rows(outbox_path))
    assert subjects == sorted(f"{n}-{i}" for n in range(4) for i in range(20))


# --- claiming ---


def fill(path: str, count: int) -> None:
    with Outbox(path) as outbox:
        outbox.queue(
            [
                Stored("a@example.com", [f"u{i}@example.com"], b"S: x\r\n\r\nb\r\n")
                for i in range(count)
            ]
        )


def test_concurrent_claims_take_each_message_exactly_once(tmp_path: Path) -> None:
    path = str(tmp_path / "outbox.sqlite3")
    fill(path, 2000)
    taken: dict[str, list[int]] = {}

    def claimer(owner: str) -> None:
        with Outbox(path, durable=False) as outbox:
            mine = taken.setdefault(owner, [])
            while claimed := outbox.claim(owner, 37, 60):
                mine.extend(item.id for item in claimed)

    threads = [threading.Thread(target=claimer, args=(f"w{n}",)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    everything = [id for ids in taken.values() for id in ids]
    assert sorted(everything) == list(range(1, 2001))
    with Outbox(path) as outbox:
        assert outbox.status().counts == outbox.recount() == {
            "queued": 0, "sending": 2000, "sent": 0, "failed": 0
        }  # fmt: skip
    owners = {r["id"]: r["owner"] for r in rows(path)}
    assert all(owners[id] == owner for owner, ids in taken.items() for id in ids)


def test_an_expired_lease_returns_the_message(tmp_path: Path) -> None:
    path = str(tmp_path / "outbox.sqlite3")
    fill(path, 3)
    with Outbox(path) as outbox:
        assert len(outbox.claim("dead", 10, lease=30, now=1e10)) == 3
        assert outbox.claim("alive", 10, lease=30, now=1e10 + 29) == []
        again = outbox.claim("alive", 10, lease=30, now=1e10 + 31)
        assert [item.attempts for item in again] == [2, 2, 2]
        # the dead worker's late outcome is not recorded: the message is not its own
        from mailwright.queue.store import Settlement

        lost = Settlement(again[0].id, "sent", 1e10, [], {}, None)
        assert outbox.record("dead", [lost]) == 0
        assert outbox.record("alive", [lost]) == 1
        assert outbox.status().counts == outbox.recount() == {
            "queued": 0, "sending": 2, "sent": 1, "failed": 0
        }  # fmt: skip


def test_renew_keeps_a_lease(tmp_path: Path) -> None:
    path = str(tmp_path / "outbox.sqlite3")
    fill(path, 2)
    with Outbox(path) as outbox:
        outbox.claim("w", 10, lease=30, now=1e10)
        assert outbox.renew("w", lease=30, now=1e10 + 25) == 2
        assert outbox.claim("other", 10, lease=30, now=1e10 + 40) == []
        assert len(outbox.claim("other", 10, lease=30, now=1e10 + 56)) == 2


def test_queries_use_the_index(tmp_path: Path) -> None:
    path = str(tmp_path / "outbox.sqlite3")
    fill(path, 10)
    with Outbox(path) as outbox:
        plans = outbox.explain()
    for name, plan in plans.items():
        # The table is never scanned: each query searches a range of the index.
        assert not any(line.startswith("SCAN message") for line in plan), (name, plan)
        assert any(
            line.startswith("SEARCH message USING") and "INDEX message_state_due" in line
            for line in plan
        ), (name, plan)


def test_status_splits_due_and_waiting(tmp_path: Path) -> None:
    path = str(tmp_path / "outbox.sqlite3")
    message = Stored("a@example.com", ["t@example.com"], b"S: x\r\n\r\nb\r\n")
    with Outbox(path) as outbox:
        outbox.queue([message] * 2500, now=100)  # more than one counting round
        outbox.queue([message] * 1500, now=300)
        seen = {
            now: (s.counts["queued"], s.due_now, s.waiting, s.overdue_since, s.next_retry)
            for now in (50, 100, 200, 300)
            for s in [outbox.status(now)]
        }
    assert seen == {
        50: (4000, 0, 4000, None, 100),
        100: (4000, 2500, 1500, 100, 300),
        200: (4000, 2500, 1500, 100, 300),
        300: (4000, 4000, 0, 100, None),
    }


# --- retries (the shared policy, mailwright.bulk.policy, with the outbox's delays) ---


def test_retry_delays_double_with_jitter_up_to_the_ceiling() -> None:
    from mailwright.queue.outcome import RetryRules

    rules = RetryRules(max_age=86400, first_delay=10, max_delay=60)
    for attempt, nominal in ((1, 10), (2, 20), (3, 40), (4, 60), (9, 60)):
        delays = [rules.delay(attempt) for _ in range(200)]
        assert all(nominal * 0.5 <= d <= nominal * 1.5 for d in delays), (attempt, delays)
        assert len(set(delays)) > 1  # jittered


# --- settings ---


def test_queue_settings_defaults() -> None:
    assert settings.EMAIL_QUEUE_PATH is None
    assert settings.EMAIL_QUEUE_RELAY_BACKEND == "mailwright.backends.smtp.EmailBackend"
    assert settings.EMAIL_QUEUE_MAX_AGE == 5 * 86400
    assert settings.EMAIL_QUEUE_LEASE == 60


def test_queue_settings_parse_durations(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EMAIL_QUEUE_MAX_AGE", "2d12h")
    monkeypatch.setenv("EMAIL_QUEUE_RETRY_DELAY", "30s")
    monkeypatch.setenv("EMAIL_QUEUE_LEASE", "90")
    assert settings.EMAIL_QUEUE_MAX_AGE == 2.5 * 86400
    assert settings.EMAIL_QUEUE_RETRY_DELAY == 30
    assert settings.EMAIL_QUEUE_LEASE == 90


@pytest.mark.parametrize("value", ["soon", "-5", "0", "5x", 0, -1, True, "1h30"])
def test_bad_durations_name_the_setting(value: object) -> None:
    with pytest.raises(ImproperlyConfigured, match="EMAIL_QUEUE_MAX_AGE"):
        mailwright.configure(EMAIL_QUEUE_MAX_AGE=value)


def test_queue_backend_without_a_path_says_so() -> None:
    with pytest.raises(ImproperlyConfigured, match="EMAIL_QUEUE_PATH"):
        get_connection(QUEUE)


def test_worker_refuses_the_queue_backend_as_relay(outbox_path: str) -> None:
    from mailwright.queue import Worker

    with pytest.raises(ImproperlyConfigured, match="EMAIL_QUEUE_RELAY_BACKEND"):
        Worker(relay_backend=QUEUE)
    with pytest.raises(ImproperlyConfigured, match="MAX_RETRY_DELAY"):
        Worker(retry_delay=60, max_retry_delay=10)


# --- damaged, foreign and unusable files ---


def queue_one(path: str) -> int:
    backend = get_connection(QUEUE, path=path)
    return backend.send_messages([EmailMessage("s", "b", "a@example.com", ["t@example.com"])])


def test_a_file_that_is_not_a_database_is_named(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_bytes(b"these are my notes, not a database\n" * 100)
    with pytest.raises(OutboxError, match=rf"{path}.*not an SQLite database"):
        queue_one(str(path))
    assert path.read_bytes() == b"these are my notes, not a database\n" * 100


def test_a_foreign_sqlite_database_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "app.sqlite3"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE users (name TEXT)")
    db.commit()
    db.close()
    before = path.read_bytes()
    with pytest.raises(OutboxError, match=rf"{path}.*not a mailwright outbox.*users"):
        queue_one(str(path))
    assert path.read_bytes() == before


def test_an_outbox_from_a_newer_mailwright_is_refused(tmp_path: Path) -> None:
    path = str(tmp_path / "outbox.sqlite3")
    Outbox(path).close()
    db = sqlite3.connect(path)
    db.execute("PRAGMA user_version = 99")
    db.close()
    with pytest.raises(OutboxError, match="newer mailwright"):
        Outbox(path)


def test_damaged_pages_give_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite3"
    with Outbox(str(path)) as outbox:
        outbox.queue([Stored("a@example.com", ["t@example.com"], b"x" * 3000)] * 200)
    data = bytearray(path.read_bytes())
    assert len(data) > 40 * 4096
    for page in range(2, len(data) // 4096):
        data[page * 4096 + 100 : page * 4096 + 300] = os.urandom(200)
    path.write_bytes(bytes(data))
    with (
        pytest.raises(OutboxError, match=rf"{path}.*(damaged|not an SQLite)"),
        Outbox(str(path)) as outbox,
    ):
        outbox.status()
        outbox.list_messages()
        outbox.claim("w", 300, 60)


def test_a_directory_or_missing_directory_is_named(tmp_path: Path) -> None:
    with pytest.raises(OutboxError, match="is a directory"):
        queue_one(str(tmp_path))
    with pytest.raises(OutboxError, match=r"directory .*nowhere.* does not exist"):
        queue_one(str(tmp_path / "nowhere" / "outbox.sqlite3"))
    with pytest.raises(OutboxError, match="no such file"):
        Outbox(str(tmp_path / "absent.sqlite3"), create=False)


# --- a full disk ---
#
# Three ways to run out of space while queueing, each taking SQLite's real write
# path: its own size limit (PRAGMA max_page_count: SQLITE_FULL, what a full disk
# returns), a file-size limit (RLIMIT_FSIZE: the kernel fails the write() itself),
# and a real 512 KB tmpfs in a user namespace (ENOSPC from a file system; skipped
# where unprivileged user namespaces are not allowed). In each, the call raises,
# nothing of it is stored, what was queued before is intact, and once there is room
# again queueing works.

BIG = "x" * 20000


def big_messages(count: int, tag: str) -> list[EmailMessage]:
    return [
        EmailMessage(f"{tag} {i}", BIG, "a@example.com", ["t@example.com"]) for i in range(count)
    ]


def test_full_database_raises_to_the_caller(outbox_path: str) -> None:
    assert get_connection().send_messages(big_messages(3, "before")) == 3
    backend = get_connection()
    backend.open()
    db = backend.outbox._db  # type: ignore[attr-defined]
    pages = db.execute("PRAGMA page_count").fetchone()[0]
    db.execute(f"PRAGMA max_page_count = {pages + 8}")
    with pytest.raises(OutboxError, match=rf"{outbox_path}.*queueing failed.*full"):
        backend.send_messages(big_messages(20, "lost"))
    db.execute("PRAGMA max_page_count = 1073741823")
    assert backend.send_messages(big_messages(1, "after")) == 1
    backend.close()
    subjects = [r["subject"] for r in rows(outbox_path)]
    assert subjects == ["before 0", "before 1", "before 2", "after 0"]
    assert rows(outbox_path, "PRAGMA integrity_check")[0][0] == "ok"


_FULL_SCRIPT = textwrap.dedent(
    """
    import json, os, resource, signal, sys
    import mailwright
    from mailwright import EmailMessage, get_connection
    from mailwright.queue import OutboxError

    path, mode = sys.argv[1], sys.argv[2]
    backend = get_connection("mailwright.backends.queue.EmailBackend", path=path)
    def batch(n, tag):
        return [EmailMessage(f"{tag} {i}", "x" * 20000, "a@example.com", ["t@example.com"])
                for i in range(n)]
    result = {"before": backend.send_messages(batch(3, "before"))}
    if mode == "fsize":
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        size = max(os.path.getsize(p) for p in (path, path + "-wal") if os.path.exists(p))
        resource.setrlimit(resource.RLIMIT_FSIZE, (size + 65536, resource.RLIM_INFINITY))
    else:
        filler = os.path.join(os.path.dirname(path), "filler")
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
        try:
            while True:
                os.write(fd, b"\\0" * 4096)
        except OSError:
            pass
        os.close(fd)
        os.truncate(filler, max(0, os.path.getsize(filler) - 100000))
    try:
        backend.send_messages(batch(100, "lost"))
        result["error"] = None
    except OutboxError as exc:
        result["error"] = str(exc)
    if mode == "fsize":
        resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY,) * 2)
    else:
        os.unlink(filler)
    result["after"] = backend.send_messages(batch(1, "after"))
    import sqlite3
    db = sqlite3.connect(path)
    result["subjects"] = [r[0] for r in db.execute("SELECT subject FROM message ORDER BY id")]
    result["integrity"] = db.execute("PRAGMA integrity_check").fetchone()[0]
    print(json.dumps(result))
    """
)


def check_full_disk_result(output: str, path: str, reason: str) -> None:
    result = json.loads(output.strip().splitlines()[-1])
    assert result["before"] == 3 and result["after"] == 1
    assert result["error"] is not None, "queueing into a full disk did not raise"
    assert path in result["error"] and "queueing failed" in result["error"]
    assert reason in result["error"]
    assert result["subjects"] == ["before 0", "before 1", "before 2", "after 0"]
    assert result["integrity"] == "ok"


def test_file_size_limit_raises_to_the_caller(tmp_path: Path) -> None:
    path = str(tmp_path / "outbox.sqlite3")
    process = subprocess.run(
        [sys.executable, "-c", _FULL_SCRIPT, path, "fsize"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert process.returncode == 0, process.stderr
    check_full_disk_result(process.stdout, path, "I/O error")


def test_full_file_system_raises_to_the_caller(tmp_path: Path) -> None:
    unshare = shutil.which("unshare")
    mount_point = tmp_path / "small"
    mount_point.mkdir()
    path = str(mount_point / "outbox.sqlite3")
    script = tmp_path / "full.py"
    script.write_text(_FULL_SCRIPT)
    if unshare is None:
        pytest.skip("no unshare(1) to mount a small tmpfs")
    command = (
        f"mount -t tmpfs -o size=512k mailwright-test {mount_point} && "
        f"{sys.executable} {script} {path} enospc"
    )
    process = subprocess.run(
        [unshare, "--user", "--map-root-user", "--mount", "sh", "-c", command],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if process.returncode != 0 and "mount" in process.stderr and not process.stdout:
        pytest.skip(f"cannot mount a tmpfs in a user namespace here: {process.stderr.strip()}")
    assert process.returncode == 0, process.stderr
    check_full_disk_result(process.stdout, path, "full")


def test_queueing_reads_any_iterable_a_chunk_at_a_time(outbox_path: str) -> None:
    """A generator is stored as it is read: when it produces each message, the
    outbox (read through its own connection) already holds all but at most one chunk
    of those produced before. A bad message past the first chunk leaves the chunks
    before it queued, and raises."""
    from mailwright.backends.queue import QUEUE_CHUNK

    total = 2 * QUEUE_CHUNK + 500
    behind: list[int] = []

    def generate(bad_at: int | None = None):  # type: ignore[no-untyped-def]
        with Outbox(outbox_path) as watcher:
            for n in range(total):
                behind.append(n - watcher.status().total)
                to = "bad@@example.com" if n == bad_at else f"u{n}@example.com"
                yield EmailMessage(f"s{n}", "b", "a@example.com", [to])

    assert get_connection(QUEUE).send_messages(generate()) == total
    with Outbox(outbox_path) as outbox:
        assert outbox.status().counts["queued"] == total
    assert max(behind) == QUEUE_CHUNK - 1  # never a whole chunk read ahead

    with pytest.raises(ValueError, match=r"bad@@example\.com"):
        get_connection(QUEUE).send_messages(generate(bad_at=QUEUE_CHUNK + 10))
    with Outbox(outbox_path) as outbox:
        assert outbox.status().counts["queued"] == total + QUEUE_CHUNK


def test_record_and_claim_is_one_transaction_of_both(outbox_path: str) -> None:
    from mailwright.queue.store import Settlement

    with Outbox(outbox_path) as outbox:
        outbox.queue([Stored("a@example.com", [f"u{n}@example.com"], b"x\r\n") for n in range(5)])
        first = outbox.claim("w", 2, 60)
        done = [Settlement(item.id, "sent", 1.0, [], None, None) for item in first]
        recorded, second = outbox.record_and_claim("w", done, 2, 60)
        assert recorded == 2 and [item.id for item in second] == [3, 4]
        assert outbox.status().counts == {"queued": 1, "sending": 2, "sent": 2, "failed": 0}
        assert outbox.recount() == outbox.status().counts
        recorded, third = outbox.record_and_claim("w", [], 5, 60)  # nothing to record
        assert recorded == 0 and [item.id for item in third] == [5]


def test_recording_a_batch_of_every_kind_only_what_the_owner_holds(tmp_path: Path) -> None:
    """Messages delivered at the first try are recorded with one statement, beside
    the others (retries, dead letters, untried); only the claims the recording worker
    still holds are written, whichever kind."""
    from mailwright.queue.store import Settlement

    path = str(tmp_path / "outbox.sqlite3")
    fill(path, 1203)  # more than one statement's worth of delivered messages
    with Outbox(path) as outbox:
        mine = outbox.claim("w", 1200, lease=30, now=1e10)
        theirs = outbox.claim("other", 3, lease=30, now=1e10)
        delivered = [Settlement(item.id, "sent", 1e10 + 1, [], None, None) for item in mine]
        retry = Settlement(mine[0].id, "queued", 1e10 + 60, ["u0@example.com"], {}, "451 later")
        dead = Settlement(mine[1].id, "failed", 1e10 + 1, [], {}, "550 no")
        untried = Settlement(mine[2].id, "queued", 1e10 + 1, ["u2@example.com"], {}, None, False)
        stolen = [Settlement(item.id, "sent", 1e10 + 1, [], None, None) for item in theirs]
        outcomes = [retry, dead, untried, *delivered[3:], *stolen]
        assert outbox.record("w", outcomes) == 1200
        assert outbox.status().counts == outbox.recount() == {
            "queued": 2, "sending": 3, "sent": 1197, "failed": 1
        }  # fmt: skip
    found = {row["id"]: row for row in rows(path)}
    assert all(found[item.id]["owner"] == "other" for item in theirs)
    sent = [found[item.id] for item in mine[3:]]
    assert {(r["state"], r["due"], r["owner"], r["pending"], r["results"]) for r in sent} == {
        ("sent", 1e10 + 1, None, "[]", None)
    }
    assert found[mine[0].id]["state"] == "queued" and found[mine[0].id]["attempts"] == 1
    assert found[mine[1].id]["last_error"] == "550 no"
    assert found[mine[2].id]["attempts"] == 0  # untried: the attempt is not counted
