"""The outbox worker against a real SMTP server (aiosmtpd on 127.0.0.1): what
arrives, per-recipient outcomes, retries, dead letters, expiry, leases, throttling."""

from __future__ import annotations

import socket
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import mailwright
from conftest import ServerFactory
from mailwright import EmailMessage, RawMessage, get_connection
from mailwright.queue import Outbox, Worker, WorkerStats
from smtpserver import SMTPTestServer

FAST = {
    "EMAIL_QUEUE_RETRY_DELAY": 0.02,
    "EMAIL_QUEUE_MAX_RETRY_DELAY": 0.1,
    "EMAIL_QUEUE_LEASE": 5,
    "EMAIL_TIMEOUT": 5,
}


@pytest.fixture
def outbox_path(tmp_path: Path) -> str:
    path = str(tmp_path / "outbox.sqlite3")
    mailwright.configure(
        EMAIL_BACKEND="mailwright.backends.queue.EmailBackend", EMAIL_QUEUE_PATH=path, **FAST
    )
    return path


@pytest.fixture
def server(start_server: ServerFactory, outbox_path: str) -> SMTPTestServer:
    server = start_server()
    mailwright.configure(EMAIL_HOST=server.host, EMAIL_PORT=server.port)
    return server


def queue(*messages: EmailMessage) -> None:
    assert get_connection().send_messages(list(messages)) == len(messages)


def message(n: int, to: list[str] | None = None, **kwargs: Any) -> EmailMessage:
    return EmailMessage(
        f"Message {n}",
        f"Body {n}\n",
        "sender@example.com",
        to or [f"user{n}@example.com"],
        headers={"X-Seq": str(n)},
        **kwargs,
    )


def content(received: Any) -> str:
    """The text body as a receiver reads it (line breaks normalised)."""
    text: str = received.parsed().get_content()
    return text.replace("\r\n", "\n")


def settled(path: str) -> bool:
    with Outbox(path) as outbox:
        counts = outbox.status().counts
        done = counts["queued"] == counts["sending"] == 0
        if done:  # the counts kept as messages change state are the real ones
            assert outbox.recount() == counts
    return done


def until(condition: Any, timeout: float = 30) -> None:
    """Wait for ``condition()`` (checked every 20 ms); fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.02)


@pytest.fixture
def run_worker() -> Iterator[Any]:
    """Start Workers in threads (in this test's settings); all stop after the test."""
    running: list[tuple[Worker, threading.Thread, list[WorkerStats]]] = []

    def start(**options: Any) -> tuple[Worker, list[WorkerStats]]:
        import contextvars

        worker = Worker(**options)
        result: list[WorkerStats] = []
        context = contextvars.copy_context()
        thread = threading.Thread(target=lambda: result.append(context.run(worker.run)))
        thread.start()
        running.append((worker, thread, result))
        return worker, result

    yield start
    for worker, thread, _ in running:
        worker.stop()
        thread.join(30)
        assert not thread.is_alive()


def drain(path: str, run_worker: Any, **options: Any) -> WorkerStats:
    """Run a worker until nothing is queued or being sent, then stop it."""
    worker, result = run_worker(**options)
    until(lambda: settled(path))
    worker.stop()
    until(lambda: bool(result))
    return result[0]


def stored(path: str, id: int) -> Any:
    with Outbox(path) as outbox:
        return outbox.show(id)


def test_delivers_what_was_queued_exactly(server: SMTPTestServer, outbox_path: str) -> None:
    odd = EmailMessage(
        "Ünïcödé", ".leading dot\n..two dots\nÄ line\n", "Ann <ann@example.com>",
        ["x@example.com", "y@example.com"], bcc=["z@example.com"],
    )  # fmt: skip
    queue(*(message(n) for n in range(40)), odd)
    with Outbox(outbox_path) as outbox:
        data = {m.id: outbox.data(m.id) for m in outbox.list_messages(limit=100)}
    stats = Worker(once=True).run()
    assert (stats.delivered, stats.failed, stats.deferred) == (41, 0, 0)
    received = server.messages
    assert len(received) == 41
    by_seq = {r.parsed()["X-Seq"]: r for r in received}
    for n in range(40):
        r = by_seq[str(n)]
        assert (r.mail_from, r.rcpt_tos) == ("sender@example.com", [f"user{n}@example.com"])
        assert content(r) == f"Body {n}\n"
    last = by_seq[None]
    assert last.rcpt_tos == ["x@example.com", "y@example.com", "z@example.com"]
    assert last.parsed()["Subject"] == "Ünïcödé"
    assert content(last) == ".leading dot\n..two dots\nÄ line\n"
    assert last.data.replace(b"\r\n", b"\n") == data[41].replace(b"\r\n", b"\n")  # type: ignore[union-attr]
    assert settled(outbox_path)
    detail = stored(outbox_path, 41)
    assert detail.state == "sent" and detail.attempts == 1
    assert {a: r["status"] for a, r in detail.results.items()} == dict.fromkeys(
        ["x@example.com", "y@example.com", "z@example.com"], "sent"
    )


def test_accepted_recipients_are_never_sent_again(
    server: SMTPTestServer, outbox_path: str, run_worker: Any
) -> None:
    server.options.throttle = {"slow@example.com": 2}  # 454 twice, then accepted
    server.options.refuse = {"bad@example.com"}  # 550
    queue(message(1, ["ok@example.com", "slow@example.com", "bad@example.com"]))
    stats = drain(outbox_path, run_worker)
    rcpts = [r.rcpt_tos for r in server.messages]
    assert rcpts == [["ok@example.com"], ["slow@example.com"]]
    assert (stats.failed, stats.deferred) == (1, 2)
    detail = stored(outbox_path, 1)
    assert detail.state == "failed" and detail.attempts == 3
    assert detail.results["ok@example.com"]["status"] == "sent"
    assert detail.results["ok@example.com"]["attempt"] == 1
    assert detail.results["slow@example.com"]["status"] == "sent"
    assert detail.results["slow@example.com"]["attempt"] == 3
    bad = detail.results["bad@example.com"]
    assert (bad["status"], bad["code"], bad["reply"]) == ("failed", 550, "5.1.1 no such user here")
    assert detail.last_error == "bad@example.com: 550 5.1.1 no such user here"

    # Retried by hand (the address fixed on the server's side): only bad@ gets it.
    server.options.refuse = set()
    with Outbox(outbox_path) as outbox:
        assert outbox.retry([1]) == {1: "queued again for 1 recipient(s)"}
    drain(outbox_path, run_worker)
    assert [r.rcpt_tos for r in server.messages][2:] == [["bad@example.com"]]
    assert stored(outbox_path, 1).state == "sent"


def test_refused_content_is_dead_lettered_with_the_reply(
    server: SMTPTestServer, outbox_path: str
) -> None:
    server.options.data_reply = "554 5.7.1 message content rejected"
    queue(message(1), message(2))
    stats = Worker(once=True).run()
    assert (stats.delivered, stats.failed) == (0, 2)
    assert server.messages == []
    for id in (1, 2):
        detail = stored(outbox_path, id)
        assert detail.state == "failed"
        [result] = detail.results.values()
        assert (result["code"], result["reply"]) == (554, "5.7.1 message content rejected")


def test_a_message_that_never_gets_through_expires(
    server: SMTPTestServer, outbox_path: str, run_worker: Any
) -> None:
    server.options.mail_reply = "451 4.3.0 mailbox busy"
    mailwright.configure(EMAIL_QUEUE_MAX_AGE=0.3)
    queue(message(1))
    stats = drain(outbox_path, run_worker)
    assert stats.failed == 1 and stats.deferred >= 1
    detail = stored(outbox_path, 1)
    assert detail.state == "failed" and detail.attempts >= 2
    reply = detail.results["user1@example.com"]["reply"]
    assert reply.startswith("expired: not delivered within 0.3s")
    assert reply.endswith("last: 451 4.3.0 mailbox busy")


def test_server_down_then_up(
    start_server: ServerFactory, outbox_path: str, run_worker: Any
) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    mailwright.configure(EMAIL_HOST="127.0.0.1", EMAIL_PORT=port)
    queue(message(1), message(2))
    stats = Worker(once=True).run()
    assert stats.deferred == 2 and stats.delivered == 0
    detail = stored(outbox_path, 1)
    assert detail.state == "queued" and detail.attempts == 1
    assert "connection refused" in (detail.last_error or "")
    up = start_server()
    mailwright.configure(EMAIL_PORT=up.port)
    stats = drain(outbox_path, run_worker)
    assert stats.delivered == 2
    assert sorted(r.parsed()["X-Seq"] for r in up.messages) == ["1", "2"]
    assert stored(outbox_path, 1).attempts == 2


def test_421_reconnects_and_nothing_is_lost_or_doubled(
    server: SMTPTestServer, outbox_path: str, run_worker: Any
) -> None:
    server.options.mail_421 = 2
    queue(*(message(n) for n in range(30)))
    stats = drain(outbox_path, run_worker)
    assert stats.delivered == 30
    seqs = [int(r.parsed()["X-Seq"]) for r in server.messages]
    assert sorted(set(seqs)) == list(range(30))
    assert server.connections >= 2
    # The server hangs up shortly after its 421, while pipelined messages are still
    # arriving: the one whose final reply was outstanding when the connection broke
    # may have been accepted unbeknownst to the client, and is sent again. At most
    # one per broken connection.
    assert len(seqs) - 30 <= server.connections - 1


def test_rate_limit_spaces_messages(server: SMTPTestServer, outbox_path: str) -> None:
    queue(*(message(n) for n in range(11)))
    Worker(once=True, rate=20).run()
    times = sorted(r.at for r in server.messages)
    assert len(times) == 11
    # 11 messages at 20/s: at least 10 intervals of 50 ms (a slow machine only adds).
    assert times[-1] - times[0] >= 0.45


def test_a_crashed_workers_claims_come_back(
    server: SMTPTestServer, outbox_path: str, run_worker: Any
) -> None:
    queue(*(message(n) for n in range(5)))
    with Outbox(outbox_path) as outbox:
        assert len(outbox.claim("crashed-worker", 3, lease=0.5)) == 3
    stats = drain(outbox_path, run_worker, lease=0.5)
    assert stats.delivered == 5
    assert sorted(int(r.parsed()["X-Seq"]) for r in server.messages) == list(range(5))
    lost = [stored(outbox_path, id) for id in (1, 2, 3)]
    assert all(d.attempts == 2 for d in lost)


def test_damaged_rows_are_dead_lettered_and_never_reach_the_server(
    server: SMTPTestServer, outbox_path: str
) -> None:
    queue(message(1), message(2), message(3))
    db = sqlite3.connect(outbox_path)
    db.execute("UPDATE message SET pending = 'not json' WHERE id = 2")
    db.execute(
        "UPDATE message SET sender = 'a@example.com> RCPT TO:<evil@example.com' WHERE id = 3"
    )
    db.commit()
    db.close()
    stats = Worker(once=True).run()
    assert (stats.delivered, stats.failed) == (1, 2)
    assert [r.rcpt_tos for r in server.messages] == [["user1@example.com"]]
    assert "recipients are unreadable" in (stored(outbox_path, 2).last_error or "")
    assert "stored message is unusable" in (stored(outbox_path, 3).last_error or "")


def test_any_backend_can_relay(outbox_path: str) -> None:
    mailwright.configure(EMAIL_QUEUE_RELAY_BACKEND="mailwright.backends.locmem.EmailBackend")
    queue(message(1), message(2, ["a@example.com", "b@example.com"]))
    stats = Worker(once=True).run()
    assert stats.delivered == 2
    assert [type(m) for m in mailwright.outbox] == [RawMessage, RawMessage]
    assert [m.recipients() for m in mailwright.outbox] == [
        ["user1@example.com"],
        ["a@example.com", "b@example.com"],
    ]
    assert mailwright.outbox[1].message()["X-Seq"] == "2"


def test_stop_finishes_the_batch_in_hand_and_gives_back_the_rest(
    server: SMTPTestServer, outbox_path: str, run_worker: Any
) -> None:
    server.options.reply_delay = 0.01
    queue(*(message(n) for n in range(200)))
    worker, result = run_worker(batch=20, connections=2)
    until(lambda: len(server.messages) >= 10)
    worker.stop()
    until(lambda: bool(result))
    with Outbox(outbox_path) as outbox:
        counts = outbox.status().counts
        assert counts["sending"] == 0
        sent = {m.id for m in outbox.list_messages("sent", limit=300)}
    assert counts["sent"] == len(server.messages) == result[0].delivered
    assert counts["sent"] + counts["queued"] == 200
    assert 10 <= counts["sent"] < 200
    received = {int(r.parsed()["X-Seq"]) + 1 for r in server.messages}
    assert received == sent  # ids are 1-based, X-Seq 0-based
    server.options.reply_delay = 0
    drain(outbox_path, run_worker)
    assert sorted(int(r.parsed()["X-Seq"]) for r in server.messages) == list(range(200))


def test_a_refused_mail_then_a_timeout_is_retried_not_dead_lettered(
    outbox_path: str, run_worker: Any
) -> None:
    """MAIL gets 451, so the pipelined RCPT gets "503 need MAIL command"; then the
    server stalls at DATA past the timeout. The 503 echoes the refused MAIL: the
    message is tried again (and delivered), not dead-lettered for a 503."""
    from faultserver import Faults, FaultServer

    faults = Faults(stall_for=1.0, script={"MAIL": ["later"], "DATA": ["stall"]})
    server = FaultServer(faults).start()
    try:
        mailwright.configure(EMAIL_HOST=server.host, EMAIL_PORT=server.port, EMAIL_TIMEOUT=0.3)
        queue(message(1))
        stats = drain(outbox_path, run_worker)
    finally:
        server.stop()
    assert (stats.delivered, stats.failed) == (1, 0)
    assert [rcpts for _, rcpts, _ in server.received] == [["user1@example.com"]]
    assert stored(outbox_path, 1).attempts >= 2


class _SabotagingBackend(mailwright.backends.base.BaseEmailBackend):
    """Sends nothing; makes the outbox unusable behind the worker's back."""

    path = ""

    def send_messages(self, email_messages: Any) -> int:
        db = sqlite3.connect(self.path)
        db.execute("ALTER TABLE message RENAME TO gone")
        db.commit()
        db.close()
        return 0


def test_an_outbox_failure_stops_the_worker_with_the_error(outbox_path: str) -> None:
    from mailwright.queue import OutboxError

    _SabotagingBackend.path = outbox_path
    queue(message(1))
    worker = Worker(once=True, relay_backend=_SabotagingBackend, connections=2)
    with pytest.raises(OutboxError, match=rf"outbox {outbox_path}: .* failed: no such table"):
        worker.run()


def test_an_outage_is_logged_once_and_its_end_once(
    outbox_path: str, run_worker: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """While nothing listens at host:port the worker says so in one line (naming
    host:port and what it does), not one per message and recipient; one more line
    when the server is back."""
    import logging

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    mailwright.configure(EMAIL_HOST="127.0.0.1", EMAIL_PORT=port)
    queue(*(message(n, [f"u{n}@example.com", f"v{n}@example.com"]) for n in range(30)))
    caplog.set_level(logging.DEBUG, logger="mailwright")
    worker, result = run_worker(connections=2, batch=10)
    # Several rounds of attempts against the closed port: the signal is the outbox.
    until(lambda: stored(outbox_path, 1).attempts >= 4 and stored(outbox_path, 30).attempts >= 2)
    server = SMTPTestServer()
    server.port = port
    server.start()
    try:
        until(lambda: settled(outbox_path))
        worker.stop()
        until(lambda: bool(result))
    finally:
        server.stop()
    assert sorted(r.rcpt_tos[0] for r in server.messages) == sorted(
        f"u{n}@example.com" for n in range(30)
    )
    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO]
    down = [line for line in lines if "cannot reach" in line]
    back = [line for line in lines if "is back" in line]
    assert len(down) == 1 and len(back) == 1, lines
    assert f"the relay 127.0.0.1:{port}: " in down[0]
    assert "stay queued and are tried again" in down[0]
    assert f"the relay 127.0.0.1:{port} is back after" in back[0]
    assert not [line for line in lines if " deferred: " in line], lines
    assert len(lines) <= 4, lines  # started, down, back, stopped
