"""``mailwright worker`` and ``mailwright queue``, run as a user runs them."""

from __future__ import annotations

import json
import sqlite3
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import pytest

import mailwright
from conftest import ServerFactory
from mailwright import EmailMessage, get_connection
from processes import clean_env, run_cli
from smtpserver import SMTPTestServer


@pytest.fixture
def outbox(start_server: ServerFactory, tmp_path: Path) -> dict[str, Any]:
    """An outbox where a worker has run: messages 1-3 sent, 4 failed (550 for one of
    its two recipients), 5 queued (waiting to retry a 454)."""
    server: SMTPTestServer = start_server(
        refuse={"bad@example.com"}, throttle={"later@example.com": 100}
    )
    path = str(tmp_path / "outbox.sqlite3")
    env = {
        "EMAIL_QUEUE_PATH": path,
        "EMAIL_HOST": server.host,
        "EMAIL_PORT": str(server.port),
        "EMAIL_QUEUE_RETRY_DELAY": "1h",
        "EMAIL_QUEUE_MAX_RETRY_DELAY": "2h",
    }
    messages = [
        EmailMessage(f"Hello {n}", "Body\n", "from@example.com", [f"user{n}@example.com"])
        for n in (1, 2, 3)
    ]
    messages.append(
        EmailMessage("Partly", "Body\n", "from@example.com", ["ok@example.com", "bad@example.com"])
    )
    messages.append(EmailMessage("Later", "Body\n", "from@example.com", ["later@example.com"]))
    backend = get_connection("mailwright.backends.queue.EmailBackend", path=path)
    assert backend.send_messages(messages) == 5
    worker = run_cli("worker", "--once", "--json", env=env)
    assert worker.returncode == 0, worker.stderr
    summary = json.loads(worker.stdout)
    assert summary["elapsed"] > 0 and summary["cpu"] > 0
    assert summary | {"elapsed": 0, "cpu": 0} == {
        "delivered": 3, "failed": 1, "deferred": 1, "untried": 0, "recipients": 4, "batches": 1,
        "lost_leases": 0, "elapsed": 0, "cpu": 0,
    }  # fmt: skip
    assert "message 4 failed: bad@example.com: 550 5.1.1 no such user here" in worker.stderr
    return {"path": path, "env": env, "server": server}


def test_status(outbox: dict[str, Any]) -> None:
    result = run_cli("queue", "status", env=outbox["env"])
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"outbox:  {outbox['path']}"
    assert lines[1].startswith("queued:  1 (0 due now, 1 waiting to retry; next retry in ")
    assert lines[2:] == ["sending: 0", "sent:    3", "failed:  1", "total:   5"]
    data = json.loads(run_cli("queue", "status", "--json", env=outbox["env"]).stdout)
    assert data["counts"] == {"queued": 1, "sending": 0, "sent": 3, "failed": 1}
    assert (data["total"], data["due_now"], data["waiting"]) == (5, 0, 1)
    assert data["path"] == outbox["path"] and data["next_retry"].endswith("Z")
    assert data["overdue_since"] is None  # nothing due: the worker keeps up
    retried = run_cli("queue", "retry", "5", env=outbox["env"])  # due now, nobody delivering
    assert retried.returncode == 0
    lines = run_cli("queue", "status", env=outbox["env"]).stdout.splitlines()
    assert lines[1] == "queued:  1 (1 due now, 0 waiting to retry)"
    assert lines[-1].startswith("longest wait for a worker: due ") and lines[-1].endswith(" ago")


def test_list(outbox: dict[str, Any]) -> None:
    result = run_cli("queue", "list", env=outbox["env"])
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["ID", "STATE", "TRIES", "CREATED", "NEXT", "/", "DONE", "TO",
                                "SUBJECT"]  # fmt: skip
    ids = [int(line.split()[0]) for line in lines[1:] if line.split()[0].isdigit()]
    assert ids == [5, 4, 3, 2, 1]  # newest first
    assert "later@example.com: 454 4.7.0 try again later" in result.stdout
    failed = json.loads(run_cli("queue", "list", "--state", "failed", "--json",
                                env=outbox["env"]).stdout)  # fmt: skip
    assert [m["id"] for m in failed] == [4]
    assert failed[0]["recipients"] == ["ok@example.com", "bad@example.com"]
    assert failed[0]["last_error"] == "bad@example.com: 550 5.1.1 no such user here"
    limited = json.loads(run_cli("queue", "list", "--limit", "2", "--json",
                                 env=outbox["env"]).stdout)  # fmt: skip
    assert [m["id"] for m in limited] == [5, 4]
    empty = run_cli("queue", "list", "--state", "sending", env=outbox["env"])
    assert empty.stdout.strip() == "no sending messages"


def test_list_orders_as_documented(outbox: dict[str, Any]) -> None:
    """Mail still to deliver in the order it is due, then finished mail, most recently
    finished first."""
    assert run_cli("queue", "retry", "4", env=outbox["env"]).returncode == 0  # due now
    listing = json.loads(run_cli("queue", "list", "--json", env=outbox["env"]).stdout)
    assert [(m["id"], m["state"]) for m in listing] == [
        (4, "queued"),  # due now
        (5, "queued"),  # due in an hour
        (3, "sent"),
        (2, "sent"),
        (1, "sent"),
    ]


def test_show(outbox: dict[str, Any]) -> None:
    result = run_cli("queue", "show", "4", env=outbox["env"])
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert text.splitlines()[0] == "message 4: failed"
    assert "subject:       Partly" in text
    assert any(line.split()[:2] == ["ok@example.com", "sent"] for line in text.splitlines()), text
    assert any(
        line.split()[:2] == ["bad@example.com", "failed"]
        and line.endswith("550 5.1.1 no such user here")
        for line in text.splitlines()
    ), text
    data = json.loads(run_cli("queue", "show", "4", "--json", env=outbox["env"]).stdout)
    assert data["results"]["bad@example.com"]["code"] == 550
    assert data["results"]["ok@example.com"]["status"] == "sent"
    raw = run_cli("queue", "show", "5", "--raw", env=outbox["env"])
    parsed = message_from_bytes(raw.stdout.encode(), policy=policy.default)
    assert parsed["Subject"] == "Later" and parsed["To"] == "later@example.com"
    missing = run_cli("queue", "show", "99", env=outbox["env"])
    assert missing.returncode == 1
    assert (
        missing.stderr.strip() == f"mailwright queue show: error: no message 99 in {outbox['path']}"
    )


def test_retry(outbox: dict[str, Any]) -> None:
    result = run_cli("queue", "retry", "4", "5", env=outbox["env"])
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "message 4: queued again for 1 recipient(s)",
        "message 5: due now",
    ]
    db = sqlite3.connect(outbox["path"])
    assert db.execute("SELECT state, attempts, pending FROM message WHERE id = 4").fetchone() == (
        "queued", 0, '["bad@example.com"]',
    )  # fmt: skip
    db.close()
    refused = run_cli("queue", "retry", "1", "77", env=outbox["env"])
    assert refused.returncode == 1
    assert refused.stdout.splitlines() == [
        "message 77: no such message",
        "message 1: already delivered to every recipient; not changed",
    ]
    neither = run_cli("queue", "retry", env=outbox["env"])
    assert neither.returncode == 1 and "give message IDs or --all-failed" in neither.stderr


def test_retry_all_failed_then_deliver(outbox: dict[str, Any]) -> None:
    server: SMTPTestServer = outbox["server"]
    server.options.refuse = set()
    result = run_cli("queue", "retry", "--all-failed", "--json", env=outbox["env"])
    assert json.loads(result.stdout) == {
        "retried": 1, "messages": {"4": "queued again for 1 recipient(s)"}
    }  # fmt: skip
    worker = run_cli("worker", "--once", "--json", "--quiet", env=outbox["env"])
    assert json.loads(worker.stdout)["delivered"] == 1
    assert [m.rcpt_tos for m in server.messages][-1] == ["bad@example.com"]
    assert sum(m.rcpt_tos == ["ok@example.com"] for m in server.messages) == 1


def test_purge(outbox: dict[str, Any]) -> None:
    result = run_cli("queue", "purge", "--state", "sent", "--older-than", "0s", env=outbox["env"])
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "purged 3 sent messages finished over 0s ago"
    kept = run_cli("queue", "purge", "--state", "failed", "--older-than", "1d", "--json",
                   env=outbox["env"])  # fmt: skip
    assert json.loads(kept.stdout) == {"purged": 0, "state": "failed", "older_than": 86400.0}
    status = json.loads(run_cli("queue", "status", "--json", env=outbox["env"]).stdout)
    assert status["counts"] == {"queued": 1, "sending": 0, "sent": 0, "failed": 1}
    bad = run_cli("queue", "purge", "--state", "sent", "--older-than", "soon", env=outbox["env"])
    assert bad.returncode == 1 and "--older-than: 'soon' is not a duration" in bad.stderr
    undelivered = run_cli("queue", "purge", "--state", "queued", "--older-than", "1d",
                          env=outbox["env"])  # fmt: skip
    assert undelivered.returncode == 2 and "invalid choice: 'queued'" in undelivered.stderr


def test_errors_name_the_problem(tmp_path: Path) -> None:
    unset = run_cli("queue", "status")
    assert unset.returncode == 1
    assert "EMAIL_QUEUE_PATH is not set" in unset.stderr
    missing = tmp_path / "absent.sqlite3"
    result = run_cli("queue", "status", "--path", str(missing))
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"mailwright queue status: error: outbox {missing}: no such file "
        "(nothing was ever queued there?)"
    )
    assert not missing.exists()
    junk = tmp_path / "junk.sqlite3"
    junk.write_bytes(b"\x00garbage" * 1000)
    for command in (("queue", "list"), ("worker", "--once")):
        result = run_cli(*command, "--path", str(junk))
        assert result.returncode == 1
        assert f"outbox {junk}: " in result.stderr and "not an SQLite database" in result.stderr
    worker = run_cli("worker", "--once")
    assert worker.returncode == 1 and "EMAIL_QUEUE_PATH is not set" in worker.stderr
    bad = run_cli("worker", "--connections", "0")
    assert bad.returncode == 2 and "'0' must be at least 1" in bad.stderr
    relay = run_cli(
        "worker", "--once", "--path", str(tmp_path / "o.sqlite3"),
        env={"EMAIL_QUEUE_RELAY_BACKEND": "no.such.Backend"},
    )  # fmt: skip
    assert relay.returncode == 1 and "no.such.Backend" in relay.stderr


def test_worker_uses_environment_settings(start_server: ServerFactory, tmp_path: Path) -> None:
    server = start_server()
    path = str(tmp_path / "outbox.sqlite3")
    mailwright.configure(EMAIL_BACKEND="mailwright.backends.queue.EmailBackend")
    with mailwright.override_settings(EMAIL_QUEUE_PATH=path):
        assert mailwright.send_mail("S", "B", "a@example.com", ["t@example.com"]) == 1
    env = clean_env({"EMAIL_URL": f"smtp://{server.host}:{server.port}"})
    result = run_cli("worker", "--once", "--json", "--path", path, env=env)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["delivered"] == 1
    assert [m.rcpt_tos for m in server.messages] == [["t@example.com"]]


def test_status_fails_on_a_damaged_outbox_as_the_worker_does(tmp_path: Path) -> None:
    """A damaged page of message rows: the counts (kept apart) still read, but
    ``queue status`` fails as the worker fails, so that monitoring sees it."""
    from mailwright.queue import Outbox, Stored

    path = tmp_path / "outbox.sqlite3"
    with Outbox(str(path)) as box:
        box.queue([Stored("a@example.com", ["t@example.com"], b"x" * 3000)] * 50)
        box.checkpoint()
    db = sqlite3.connect(path)
    pages = [
        page
        for (page,) in db.execute(
            "SELECT pageno FROM dbstat WHERE name = 'message' AND pagetype = 'leaf'"
        )
    ]
    db.close()
    data = bytearray(path.read_bytes())
    page = pages[0] - 1  # the rows the worker claims first
    data[page * 4096 : page * 4096 + 4096] = b"\xff" * 4096
    path.write_bytes(bytes(data))
    with Outbox(str(path)) as box:
        assert box.status().counts["queued"] == 50  # what status read before

    env = {"EMAIL_QUEUE_PATH": str(path), "EMAIL_PORT": "1"}
    worker = run_cli("worker", "--once", env=env)
    assert worker.returncode == 1 and "damaged" in worker.stderr, worker.stderr
    for args in (("queue", "status"), ("queue", "status", "--json")):
        status = run_cli(*args, env=env)
        assert status.returncode == 1, status.stdout
        assert f"outbox {path}: checking the file failed: the database is damaged" in status.stderr
        assert not status.stdout


def test_status_of_a_sound_outbox_says_it_was_checked(tmp_path: Path) -> None:
    from mailwright.queue import Outbox, Stored

    path = tmp_path / "outbox.sqlite3"
    with Outbox(str(path)) as box:
        box.queue([Stored("a@example.com", ["t@example.com"], b"x" * 300)] * 500)
        assert box.check() is True
        assert box.check(budget=0.0) is False  # cut short: not everything was read
    status = run_cli("queue", "status", "--json", env={"EMAIL_QUEUE_PATH": str(path)})
    assert status.returncode == 0, status.stderr
    report = json.loads(status.stdout)
    assert report["checked"] is True and report["counts"]["queued"] == 500
