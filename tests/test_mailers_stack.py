"""Mailers across the whole stack: the queue and Celery backends' ``relay``, real
``mailwright worker`` and ``celery worker`` processes, ``--mailer`` on the command line,
and the outbox's schema upgrade. Real SMTP servers on 127.0.0.1; every wait is on a
signal (a server's count, a process's exit), never a fixed sleep."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from conftest import ServerFactory
from mailwright import (
    ImproperlyConfigured,
    InvalidMailer,
    configure,
    mailers,
    send_mail,
)
from mailwright.queue import Outbox, Worker
from mailwright.queue.database import SCHEMA_VERSION
from processes import clean_env, run_cli
from smtpserver import SMTPTestServer


def url(server: SMTPTestServer) -> str:
    return f"smtp://{server.host}:{server.port}"


def queue_entry(path: Path, relay: str | None = None) -> dict[str, Any]:
    options: dict[str, Any] = {"path": str(path)}
    if relay is not None:
        options["relay"] = relay
    return {"BACKEND": "queue", "OPTIONS": options}


def send(to: str, using: str | None = None) -> int:
    return send_mail(f"to {to}", "body", "from@example.com", [to], using=using)


# --- the queue backend's relay ---


def test_the_worker_delivers_each_message_through_its_relay_mailer(
    start_server: ServerFactory, tmp_path: Path
) -> None:
    fallback, bulk, alerts = start_server(), start_server(), start_server()
    outbox = tmp_path / "outbox.db"
    configure(
        EMAIL_HOST=fallback.host,  # EMAIL_QUEUE_RELAY_BACKEND (SMTP) sends here
        EMAIL_PORT=fallback.port,
        MAILERS={
            "newsletters": queue_entry(outbox, relay="bulk"),
            "alerts-later": queue_entry(outbox, relay="alerts"),
            "legacy": queue_entry(outbox),  # no relay: as before
            "bulk": url(bulk),
            "alerts": url(alerts),
        },
    )
    assert repr(mailers["newsletters"]).endswith("relay='bulk'>")
    for n in range(3):
        assert send(f"news{n}@example.com", using="newsletters") == 1
        assert send(f"alert{n}@example.com", using="alerts-later") == 1
        assert send(f"old{n}@example.com", using="legacy") == 1
    assert bulk.connections == alerts.connections == fallback.connections == 0
    with Outbox(str(outbox)) as box:
        assert box.show(1).relay == "bulk"  # type: ignore[union-attr]
        assert box.show(3).relay is None  # type: ignore[union-attr]
    stats = Worker(str(outbox), once=True, batch=100).run()
    assert stats.delivered == 9
    assert sorted(r.rcpt_tos[0] for r in bulk.wait_for(3)) == [
        f"news{n}@example.com" for n in range(3)
    ]
    assert sorted(r.rcpt_tos[0] for r in alerts.wait_for(3)) == [
        f"alert{n}@example.com" for n in range(3)
    ]
    assert sorted(r.rcpt_tos[0] for r in fallback.wait_for(3)) == [
        f"old{n}@example.com" for n in range(3)
    ]
    # One relay connection per mailer, kept across the batch.
    assert (bulk.connections, alerts.connections, fallback.connections) == (1, 1, 1)


def test_a_worker_without_the_relay_mailer_defers_the_message(
    start_server: ServerFactory, tmp_path: Path
) -> None:
    bulk = start_server()
    outbox = tmp_path / "outbox.db"
    configure(MAILERS={"default": queue_entry(outbox, relay="bulk"), "bulk": url(bulk)})
    assert send("a@example.com") == 1
    # The worker's settings lack "bulk": the message waits; nothing is lost.
    configure(MAILERS={"default": "dummy:"}, EMAIL_QUEUE_RETRY_DELAY=3600)
    stats = Worker(str(outbox), once=True).run()
    assert (stats.delivered, stats.failed, stats.deferred) == (0, 0, 1)
    with Outbox(str(outbox)) as box:
        detail = box.show(1)
    assert detail is not None and detail.state == "queued"
    assert detail.last_error is not None and "relay mailer 'bulk'" in detail.last_error
    assert "is not configured" in detail.last_error
    assert bulk.connections == 0


def test_relay_must_name_another_configured_mailer(tmp_path: Path) -> None:
    outbox = str(tmp_path / "outbox.db")
    configure(
        MAILERS={
            "typo": queue_entry(tmp_path / "o.db", relay="bluk"),
            "loop": queue_entry(tmp_path / "o.db", relay="loop"),
            "bulk": "dummy:",
        }
    )
    with pytest.raises(InvalidMailer, match=r"^MAILERS\['typo'\]: relay='bluk': no mailer"):
        send("a@example.com", using="typo")
    with pytest.raises(InvalidMailer, match=r"^MAILERS\['loop'\]: relay='loop' is this mailer"):
        mailers["loop"]
    from mailwright.backends.queue import EmailBackend

    with pytest.raises(ImproperlyConfigured, match="relay='nope'"):
        EmailBackend(path=outbox, relay="nope")
    assert EmailBackend(path=outbox, relay="bulk").relay == "bulk"


def test_a_schema_1_outbox_is_upgraded_in_place(
    start_server: ServerFactory, tmp_path: Path
) -> None:
    server = start_server()
    path = tmp_path / "old.db"
    configure(EMAIL_HOST=server.host, EMAIL_PORT=server.port)
    # Make the file what an outbox of schema 1 was: no relay column.
    Outbox(str(path)).close()
    db = sqlite3.connect(path)
    db.execute("ALTER TABLE message DROP COLUMN relay")
    db.execute(
        "INSERT INTO message (state, due, created, since, sender, recipients, pending, data)"
        " VALUES ('queued', 0, 0, 0, 'f@example.com', '[\"old@example.com\"]',"
        " '[\"old@example.com\"]', ?)",
        (b"Subject: old\r\n\r\nold body\r\n",),
    )
    db.execute("UPDATE tally SET count = 1 WHERE state = 'queued'")
    db.execute("PRAGMA user_version=1")
    db.commit()
    db.close()
    stats = Worker(str(path), once=True).run()
    assert stats.delivered == 1
    assert server.wait_for(1)[0].rcpt_tos == ["old@example.com"]
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert "relay" in [row[1] for row in db.execute("PRAGMA table_info(message)")]
    db.close()


# --- real worker processes and the command line ---


def test_mailwright_worker_mailer_delivers_that_mailers_outbox(
    start_server: ServerFactory, tmp_path: Path
) -> None:
    bulk = start_server()
    outbox = tmp_path / "outbox.db"
    settings = {"newsletters": queue_entry(outbox, relay="bulk"), "bulk": url(bulk)}
    configure(MAILERS=settings)
    for n in range(5):
        assert send(f"r{n}@example.com", using="newsletters") == 1
    env = {"MAILERS": json.dumps(settings), "EMAIL_QUEUE_PATH": str(tmp_path / "unused.db")}
    result = run_cli("worker", "--mailer", "newsletters", "--once", "--json", "-q", env=env)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["delivered"] == 5
    assert len(bulk.wait_for(5)) == 5
    assert not (tmp_path / "unused.db").exists()

    not_a_queue = run_cli("worker", "--mailer", "bulk", "--once", env=env)
    assert not_a_queue.returncode == 1
    assert "MAILERS['bulk']: not a queue mailer" in not_a_queue.stderr
    unknown = run_cli("worker", "--mailer", "nope", "--once", env=env)
    assert unknown.returncode == 1 and "MAILERS['nope']: The mailer 'nope' is not" in unknown.stderr


def test_two_worker_processes_share_an_outbox_with_two_relays(
    start_server: ServerFactory, tmp_path: Path
) -> None:
    bulk, alerts = start_server(), start_server()
    outbox = tmp_path / "outbox.db"
    settings = {
        "news": queue_entry(outbox, relay="bulk"),
        "later": queue_entry(outbox, relay="alerts"),
        "bulk": url(bulk),
        "alerts": url(alerts),
    }
    configure(MAILERS=settings)
    for n in range(20):
        send(f"n{n}@example.com", using="news" if n % 2 else "later")
    env = {"MAILERS": json.dumps(settings)}
    process = subprocess.run(
        [sys.executable, "-m", "mailwright", "worker", "--mailer", "news", "--once",
         "--concurrency", "2", "--batch", "3", "--json", "-q"],
        capture_output=True, text=True, env=clean_env(env), timeout=120,
    )  # fmt: skip
    assert process.returncode == 0, process.stderr
    assert json.loads(process.stdout)["delivered"] == 20
    assert sorted(int(r.rcpt_tos[0][1:].split("@")[0]) for r in bulk.wait_for(10)) == list(
        range(1, 20, 2)
    )
    assert sorted(int(r.rcpt_tos[0][1:].split("@")[0]) for r in alerts.wait_for(10)) == list(
        range(0, 20, 2)
    )


def test_send_and_check_take_mailer(start_server: ServerFactory, tmp_path: Path) -> None:
    default, other = start_server(), start_server()
    settings = {
        "default": url(default),
        "other": url(other),
        "queued": queue_entry(tmp_path / "outbox.db", relay="other"),
    }
    env = {"MAILERS": json.dumps(settings)}
    args = ["--to", "a@example.com", "--subject", "S", "--body", "b"]
    result = run_cli("send", *args, "--mailer", "other", env=env)
    assert result.returncode == 0, result.stderr
    assert other.wait_for(1)[0].rcpt_tos == ["a@example.com"]
    result = run_cli("send", *args, env=env)  # the default mailer
    assert result.returncode == 0, result.stderr
    assert default.wait_for(1)[0].rcpt_tos == ["a@example.com"]
    result = run_cli("send", *args, "--mailer", "queued", env=env)
    assert result.returncode == 0, result.stderr
    assert "the queue backend" in result.stdout and "the mailer 'other'" in result.stdout
    result = run_cli("send", *args, "--mailer", "nope", env=env)
    assert result.returncode == 1
    assert "MAILERS['nope']: The mailer 'nope' is not" in result.stderr
    result = run_cli("send", *args, "--mailer", "other", "--url", "dummy:", env=env)
    assert result.returncode == 1 and "--url or --mailer, not both" in result.stderr

    result = run_cli("check", "--mailer", "other", env=env)
    assert result.returncode == 0, result.stderr
    assert f"connect   127.0.0.1:{other.port} ok" in result.stdout
    result = run_cli("check", "--mailer", "queued", env=env)  # checks its relay
    assert result.returncode == 0, result.stderr
    assert "checking the mailer 'other'" in result.stdout
    assert f"connect   127.0.0.1:{other.port} ok" in result.stdout
    assert other.connections == 3 and len(other.messages) == 1


# --- DKIM options per mailer ---


def test_each_mailer_signs_with_its_own_dkim_key(
    start_server: ServerFactory, tmp_path: Path
) -> None:
    from dkimcheck import assert_verified, key, perl_available, signatures

    rsa, ed25519 = key("rsa", "mailers-rsa"), key("ed25519", "mailers-ed")
    transactional, bulk = start_server(), start_server()
    outbox = tmp_path / "outbox.db"
    configure(
        MAILERS={
            "default": url(transactional),  # signs nothing
            "signed": {
                "BACKEND": "smtp",
                "OPTIONS": {"host": transactional.host, "port": transactional.port,
                            **ed25519.options},
            },
            # signed when queued: the worker delivers the stored, signed bytes
            "newsletters": {
                "BACKEND": "queue",
                "OPTIONS": {"path": str(outbox), "relay": "bulk", **rsa.options},
            },
            "bulk": url(bulk),
        }
    )  # fmt: skip
    assert send("plain@example.com") == 1
    assert send("signed@example.com", using="signed") == 1
    assert send("news@example.com", using="newsletters") == 1
    assert Worker(str(outbox), once=True).run().delivered == 1
    by_rcpt = {r.rcpt_tos[0]: r.data for r in transactional.wait_for(2)}
    assert signatures(by_rcpt["plain@example.com"]) == []
    assert_verified([by_rcpt["signed@example.com"]], ed25519, perl=False)
    (news,) = bulk.wait_for(1)
    assert_verified([news.data], rsa, perl=perl_available())


def test_send_url_wins_over_the_default_mailer(
    start_server: ServerFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    from mailwright.cli import main

    default, other = start_server(), start_server()
    configure(MAILERS={"default": url(default)})
    args = ["send", "--to", "a@example.com", "--subject", "S", "--body", "b"]
    assert main([*args, "--url", url(other)]) == 0, capsys.readouterr().err
    assert other.wait_for(1)[0].rcpt_tos == ["a@example.com"]
    assert main(args) == 0, capsys.readouterr().err
    assert default.wait_for(1)[0].rcpt_tos == ["a@example.com"]
    assert len(other.messages) == 1
