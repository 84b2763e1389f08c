"""The outbox with real worker processes (``mailwright worker``) and real SMTP servers:
a worker killed with SIGKILL mid-way, a server that misbehaves at random, two workers
on one outbox, signals.

Each test waits on a signal (the server's count of received messages, the outbox's
counts), never on a fixed sleep. The figures are printed (``pytest -s``).
"""

from __future__ import annotations

import asyncio
import json
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import ServerFactory
from faultserver import Faults, FaultServer
from mailwright import EmailMessage, get_connection
from mailwright.queue import Outbox
from processes import clean_env

FAST = {
    "EMAIL_QUEUE_RETRY_DELAY": "0.05",
    "EMAIL_QUEUE_MAX_RETRY_DELAY": "0.5",
    "EMAIL_QUEUE_LEASE": "1",
    "EMAIL_QUEUE_MAX_AGE": "10m",
    "EMAIL_TIMEOUT": "5",
}


class WorkerProcess:
    """``mailwright worker`` in a subprocess; its log goes to a file."""

    def __init__(self, env: dict[str, str], log: Path, *args: str) -> None:
        self.log = log
        self._log = log.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mailwright", "worker", *args],
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
            env=clean_env(env),
        )

    def stop(self, timeout: float = 30) -> tuple[int, str]:
        """SIGTERM; the exit status and what it printed."""
        self.proc.send_signal(signal.SIGTERM)
        output, _ = self.proc.communicate(timeout=timeout)
        self._log.close()
        return self.proc.returncode, output

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(10)
        self._log.close()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self._log.close()


@pytest.fixture
def workers() -> Iterator[Callable[..., WorkerProcess]]:
    started: list[WorkerProcess] = []

    def start(env: dict[str, str], log: Path, *args: str) -> WorkerProcess:
        worker = WorkerProcess(env, log, *args)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.close()


def until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def counts(path: str) -> dict[str, int]:
    with Outbox(path) as outbox:
        return outbox.status().counts


def settled(path: str) -> bool:
    c = counts(path)
    return c["queued"] == c["sending"] == 0


def check_tally(path: str) -> None:
    """The counts kept as messages change state are the real ones."""
    with Outbox(path) as outbox:
        assert outbox.recount() == outbox.status().counts


def queue(path: str, messages: list[EmailMessage]) -> None:
    backend = get_connection("mailwright.backends.queue.EmailBackend", path=path)
    assert backend.send_messages(messages) == len(messages)


def numbered(count: int, start: int = 0, **headers: str) -> list[EmailMessage]:
    return [
        EmailMessage(
            f"Message {n}", f"Body {n}\n", "sender@example.com", [f"user{n}@example.com"],
            headers={"X-Seq": str(n), **headers},
        )
        for n in range(start, start + count)
    ]  # fmt: skip


def seqs(received: list[Any]) -> Counter[int]:
    return Counter(int(message.parsed()["X-Seq"]) for message in received)


def test_kill_9_mid_way_loses_nothing(
    start_server: ServerFactory, tmp_path: Path, workers: Callable[..., WorkerProcess]
) -> None:
    total = 2000
    server = start_server()
    path = str(tmp_path / "outbox.sqlite3")
    env = {**FAST, "EMAIL_QUEUE_PATH": path, "EMAIL_HOST": server.host}
    env["EMAIL_PORT"] = str(server.port)
    queue(path, numbered(total))

    first = workers(env, tmp_path / "first.log", "--connections", "2")
    until(lambda: len(server.messages) >= total // 3, 60, "a third of the messages")
    first.kill()
    received_at_kill = len(server.messages)
    with Outbox(path) as outbox:
        in_flight = outbox.status().counts["sending"]  # claimed, outcome not recorded
    assert 0 < received_at_kill < total, "the kill did not happen mid-way"

    second = workers(env, tmp_path / "second.log", "--connections", "2", "--json")
    until(lambda: settled(path) and len(seqs(server.messages)) == total, 90, "every message")
    status, output = second.stop()
    assert status == 0, second.log.read_text()

    got = seqs(server.messages)
    duplicates = sum(got.values()) - total
    assert sorted(got) == list(range(total))  # every message arrived
    assert counts(path) == {"queued": 0, "sending": 0, "sent": total, "failed": 0}
    check_tally(path)
    assert duplicates <= in_flight
    print(
        f"\ncrash test: {total} messages, kill -9 after {received_at_kill} received with "
        f"{in_flight} in flight; delivered {len(got)}, duplicates {duplicates}, "
        f"dead-lettered 0; second worker: {json.loads(output)}"
    )


def test_random_faults_end_delivered_or_dead_lettered(
    tmp_path: Path, workers: Callable[..., WorkerProcess]
) -> None:
    total = 2000
    chooser = random.Random(7)
    doomed_recipients = {f"user{n}@example.com" for n in chooser.sample(range(total), 60)}
    doomed_content = set(chooser.sample(range(total), 40))
    faults = Faults(
        seed=20261126,
        drop=0.004,
        busy=0.004,
        later=0.02,
        stall=0.001,
        stall_for=1.0,
        doomed_recipients=doomed_recipients,
    )
    server = FaultServer(faults).start()
    try:
        path = str(tmp_path / "outbox.sqlite3")
        messages = [
            EmailMessage(
                f"Message {n}", f"Body {n}\n", "sender@example.com", [f"user{n}@example.com"],
                headers={"X-Seq": str(n), **({"X-Doomed": "yes"} if n in doomed_content else {})},
            )
            for n in range(total)
        ]  # fmt: skip
        queue(path, messages)
        env = {**FAST, "EMAIL_QUEUE_PATH": path, "EMAIL_HOST": server.host}
        env.update(EMAIL_PORT=str(server.port), EMAIL_TIMEOUT="0.4")
        worker = workers(env, tmp_path / "worker.log", "--connections", "4", "--json")
        until(lambda: settled(path), 150, "every message to settle")
        status, output = worker.stop()
        assert status == 0, worker.log.read_text()
    finally:
        server.stop()

    got = Counter(
        int(line.split(b"X-Seq: ", 1)[1].split(b"\r\n", 1)[0]) for _, _, line in server.received
    )
    with Outbox(path) as outbox:
        rows = {}
        for id in range(1, total + 1):
            detail = outbox.show(id)
            assert detail is not None
            rows[id - 1] = (detail.state, detail.results)
    doomed = {n for n in range(total) if f"user{n}@example.com" in doomed_recipients}
    doomed |= doomed_content
    for n in range(total):
        state, results = rows[n]
        if n in doomed:
            # dead-lettered with the server's own reply, never delivered
            assert state == "failed" and n not in got, n
            [result] = results.values()
            expected = (
                (550, "5.1.1 doomed recipient")
                if f"user{n}@example.com" in doomed_recipients
                else (554, "5.6.0 doomed content")
            )
            assert (result["code"], result["reply"]) == expected, (n, result)
        else:
            assert state == "sent" and got[n] >= 1, (n, state, results)
    assert counts(path)["queued"] == counts(path)["sending"] == 0  # none stuck
    check_tally(path)
    duplicates = sum(got.values()) - len(got)
    stats = json.loads(output)
    print(
        f"\nfault test: {total} messages; delivered {len(got)}, dead-lettered {len(doomed)}, "
        f"duplicates {duplicates}; faults injected: {dict(sorted(server.injected.items()))}; "
        f"worker: {stats}"
    )


def test_two_workers_deliver_each_message_exactly_once(
    start_server: ServerFactory, tmp_path: Path, workers: Callable[..., WorkerProcess]
) -> None:
    total = 2000
    server = start_server(reply_delay=0.001)
    path = str(tmp_path / "outbox.sqlite3")
    Outbox(path).close()
    env = {**FAST, "EMAIL_QUEUE_PATH": path, "EMAIL_HOST": server.host}
    # A lease that cannot lapse on a busy machine: this test is about two workers sharing
    # the outbox, not about taking over a stalled worker's messages (that duplicates by
    # design: at least once), which the crash tests cover.
    env.update(EMAIL_PORT=str(server.port), EMAIL_QUEUE_LEASE="60")
    args = ("--connections", "2", "--batch", "25", "--json")
    pair = [workers(env, tmp_path / f"worker{n}.log", *args) for n in (1, 2)]
    for start in range(0, total, 500):
        queue(path, numbered(500, start))
    until(lambda: settled(path) and len(server.messages) >= total, 90, "every message")
    results = [worker.stop() for worker in pair]
    assert [status for status, _ in results] == [0, 0]
    delivered = [json.loads(output)["delivered"] for _, output in results]
    got = seqs(server.messages)
    assert sorted(got) == list(range(total))
    assert set(got.values()) == {1}  # exactly once
    assert sum(delivered) == total and all(delivered), delivered
    check_tally(path)
    print(f"\ntwo workers: {total} messages, each delivered once; split {delivered}")


def test_sigterm_finishes_in_hand_and_a_second_signal_gives_back_at_once(
    start_server: ServerFactory, tmp_path: Path, workers: Callable[..., WorkerProcess]
) -> None:
    server = start_server(reply_delay=0.005)
    path = str(tmp_path / "outbox.sqlite3")
    env = {**FAST, "EMAIL_QUEUE_PATH": path, "EMAIL_HOST": server.host}
    env.update(EMAIL_PORT=str(server.port), EMAIL_QUEUE_LEASE="60")
    queue(path, numbered(400))

    worker = workers(env, tmp_path / "worker.log", "--batch", "20", "--json")
    until(lambda: len(server.messages) >= 30, 30, "some deliveries")
    status, output = worker.stop()
    assert status == 0, worker.log.read_text()
    c = counts(path)
    assert c["sending"] == 0  # nothing held: finished or given back
    assert json.loads(output)["delivered"] == c["sent"] == len(server.messages) < 400
    assert c["sent"] + c["queued"] == 400

    # A second signal while a batch is in progress: gives back at once, exit 1.
    server.options.reply_delay = 0.05
    worker = workers(env, tmp_path / "worker2.log", "--batch", "20")
    before = len(server.messages)
    until(lambda: len(server.messages) > before, 30, "a delivery")
    worker.proc.send_signal(signal.SIGTERM)
    until(lambda: "finishing what it holds" in worker.log.read_text(), 30, "the first signal")
    worker.proc.send_signal(signal.SIGTERM)
    assert worker.proc.wait(30) == 1
    assert "stopped at once; recorded" in worker.log.read_text()
    assert counts(path)["sending"] == 0

    server.options.reply_delay = 0
    worker = workers(env, tmp_path / "worker3.log")
    until(lambda: settled(path), 60, "the rest")
    assert worker.stop()[0] == 0
    got = seqs(server.messages)
    assert sorted(got) == list(range(400))
    check_tally(path)


def test_a_second_signal_records_what_the_server_accepted(
    tmp_path: Path, workers: Callable[..., WorkerProcess]
) -> None:
    """The server accepts 7 messages of a batch of 20 and stalls on the 8th: a second
    SIGTERM then records those 7 as sent (they are not given back to be sent again)
    and gives back the other 13, which a later worker delivers, each exactly once."""
    from smtpserver import SMTPTestServer, _Handler

    release = threading.Event()

    class StallAfterSeven(_Handler):
        async def handle_DATA(self, smtp: Any, session: Any, envelope: Any) -> str:
            if len(self.server.messages) >= 7:
                self.server.stalled.set()
                while not release.is_set():
                    await asyncio.sleep(0.01)
                return "451 4.3.0 not now"
            return await super().handle_DATA(smtp, session, envelope)  # type: ignore[no-any-return]

    server = SMTPTestServer()
    server.handler_class = StallAfterSeven
    server.start()
    path = str(tmp_path / "outbox.sqlite3")
    env = {**FAST, "EMAIL_QUEUE_PATH": path, "EMAIL_HOST": server.host}
    env.update(EMAIL_PORT=str(server.port), EMAIL_QUEUE_LEASE="60")
    queue(path, numbered(20))
    try:
        worker = workers(env, tmp_path / "worker.log", "--batch", "20")
        assert server.stalled.wait(30), worker.log.read_text()
        worker.proc.send_signal(signal.SIGTERM)
        until(lambda: "finishing what it holds" in worker.log.read_text(), 30, "the first signal")
        worker.proc.send_signal(signal.SIGTERM)
        assert worker.proc.wait(30) == 1
        log = worker.log.read_text()
        assert "recorded 7 outcome(s) the server had given, gave back 13 message(s)" in log, log
        assert counts(path) == {"queued": 13, "sending": 0, "sent": 7, "failed": 0}
    finally:
        release.set()
        server.stop()
    accepted = seqs(server.messages)
    assert sum(accepted.values()) == 7

    second = SMTPTestServer().start()
    try:
        env.update(EMAIL_PORT=str(second.port))
        worker = workers(env, tmp_path / "worker2.log", "--once")
        assert worker.proc.wait(60) == 0, worker.log.read_text()
    finally:
        second.stop()
    again = seqs(second.messages)
    assert set(again.values()) == {1} and not set(again) & set(accepted)
    assert sorted(accepted + again) == list(range(20))
    check_tally(path)


def test_concurrency_runs_several_processes(start_server: ServerFactory, tmp_path: Path) -> None:
    server = start_server()
    path = str(tmp_path / "outbox.sqlite3")
    queue(path, numbered(300))
    env = {**FAST, "EMAIL_QUEUE_PATH": path, "EMAIL_HOST": server.host}
    env["EMAIL_PORT"] = str(server.port)
    process = subprocess.run(
        [sys.executable, "-m", "mailwright", "worker", "--once", "--processes", "2",
         "--batch", "10", "--json", "--quiet"],
        capture_output=True, text=True, env=clean_env(env), timeout=60,
    )  # fmt: skip
    assert process.returncode == 0, process.stderr
    assert json.loads(process.stdout)["delivered"] == 300
    got = seqs(server.messages)
    assert sorted(got) == list(range(300)) and set(got.values()) == {1}


def test_processes_each_claim_their_own_batches(
    start_server: ServerFactory, tmp_path: Path
) -> None:
    """``--processes 2``: both processes deliver from the one outbox, every message
    arrives exactly once, and ``--json`` adds each process's own summary."""
    go = threading.Event()
    server = start_server(hold={"MAIL": go})
    path = str(tmp_path / "outbox.sqlite3")
    total = 600
    queue(path, numbered(total))
    env = {**FAST, "EMAIL_QUEUE_PATH": path, "EMAIL_HOST": server.host}
    env.update(EMAIL_PORT=str(server.port), EMAIL_QUEUE_LEASE="60", EMAIL_TIMEOUT="60")
    process = subprocess.Popen(
        [sys.executable, "-m", "mailwright", "worker", "--once", "--processes", "2",
         "--connections", "1", "--batch", "20", "--json", "--quiet"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=clean_env(env),
    )  # fmt: skip
    try:
        # A worker connects once it holds a batch, and the server answers no MAIL
        # until two connections are open: both processes have work in hand before
        # either delivers anything.
        until(lambda: server.connections >= 2 or process.poll() is not None, 60, "two workers")
        go.set()
        output, errors = process.communicate(timeout=120)
    finally:
        go.set()
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, errors
    summary = json.loads(output)
    split = [each["delivered"] for each in summary["processes"]]
    assert summary["delivered"] == sum(split) == total
    assert len(split) == 2 and min(split) >= 20, split
    got = seqs(server.messages)
    assert sorted(got) == list(range(total)) and set(got.values()) == {1}
    check_tally(path)
    print(f"\n--processes 2: {total} messages, each delivered once; split {split}")


def test_processes_pass_sigterm_on_and_sum_up(
    start_server: ServerFactory, tmp_path: Path, workers: Callable[..., WorkerProcess]
) -> None:
    """SIGTERM to ``--processes 2`` reaches both processes while the supervisor waits
    on them; each finishes what it holds, and the summary has both."""
    server = start_server()
    path = str(tmp_path / "outbox.sqlite3")
    queue(path, numbered(50))
    env = {**FAST, "EMAIL_QUEUE_PATH": path, "EMAIL_HOST": server.host}
    env.update(EMAIL_PORT=str(server.port), EMAIL_QUEUE_LEASE="60")
    supervisor = workers(env, tmp_path / "workers.log", "--processes", "2", "--json")
    until(lambda: settled(path), 60, "the queue delivered")
    until(lambda: supervisor.log.read_text().count("delivering") == 2, 60, "both processes running")
    status, output = supervisor.stop()
    assert status == 0, supervisor.log.read_text()
    assert supervisor.log.read_text().count("finishing what it holds") == 2
    summary = json.loads(output)
    each = summary.pop("processes")
    assert len(each) == 2 and all(one.keys() == summary.keys() for one in each)
    assert summary["elapsed"] == max(one["elapsed"] for one in each)
    assert summary["delivered"] == sum(one["delivered"] for one in each) == 50
    got = seqs(server.messages)
    assert sorted(got) == list(range(50)) and set(got.values()) == {1}
