"""The durable outbox: queueing, draining, and a million messages.

    pip install -e '.[bench]'
    python bench/outbox.py [--messages 10000] [--latency-messages 300] [--scale 1000000]

1. Queueing: one ``send_messages`` of ``--messages`` plain messages through the queue
   backend into a fresh outbox (one transaction, one fsync).
2. Draining against a local sink (Postfix's ``smtp-sink`` when installed, else
   aiosmtpd, in its own process): ``send_messages`` straight to the sink on one
   connection (the baseline), then ``mailwright worker --once`` (the ``Worker`` the
   command runs, in this process) with 1, 2 and 4 connections. Every run is checked
   against the sink's count.
3. The same through a proxy adding ``--latency-ms`` each way.
4. Scale: an outbox with ``--scale`` messages: ``mailwright queue status`` (the
   command, as a user runs it) and claiming a batch, against an outbox of 1,000;
   SQLite's query plans.

The machine is shared and noisy: each figure is the best of ``--repeat`` runs, and
only ratios measured in the same run mean much.
"""

from __future__ import annotations

import argparse
import os
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bulk import SINK_KINDS, TEXT, Proxy, Sink

import mailwright
from mailwright.queue import Outbox, Stored, Worker

HERE = Path(__file__).resolve().parent


def plain_messages(count: int) -> list[mailwright.EmailMessage]:
    return [
        mailwright.EmailMessage(f"Message {i}", TEXT, "bench@example.com", [f"user{i}@example.com"])
        for i in range(count)
    ]


def fresh_outbox(directory: str) -> str:
    path = os.path.join(directory, f"outbox-{time.monotonic_ns()}.sqlite3")
    Outbox(path).close()
    return path


def best(repeat: int, run: Callable[[], float]) -> float:
    return min(run() for _ in range(repeat))


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)  # every thread of this process
    return usage.ru_utime + usage.ru_stime


@dataclass
class Run:
    seconds: float
    cpu: float  # seconds of this process's CPU


@dataclass
class Best:
    runs: list[Run] = field(default_factory=list)

    def rate(self, count: int) -> float:
        return count / min(run.seconds for run in self.runs)

    def cpu_us(self, count: int) -> float:
        return min(run.cpu for run in self.runs) / count * 1e6


def queueing(directory: str, count: int, repeat: int) -> tuple[float, float, float]:
    """Messages/s for one send_messages of ``count``; seconds for one send_mail, with
    a worker running and without."""

    def bulk() -> float:
        path = fresh_outbox(directory)
        messages = plain_messages(count)
        backend = mailwright.get_connection("mailwright.backends.queue.EmailBackend", path=path)
        start = time.perf_counter()
        queued = backend.send_messages(messages)
        elapsed = time.perf_counter() - start
        assert queued == count
        with Outbox(path) as outbox:
            assert outbox.status().counts["queued"] == count
        os.unlink(path)
        return elapsed

    def one(worker_running: bool) -> float:
        path = fresh_outbox(directory)
        # A running worker keeps the outbox open; without one, the last connection
        # to close also checkpoints the log into the file (more syncs).
        held = Outbox(path, durable=False) if worker_running else None
        with mailwright.override_settings(
            EMAIL_BACKEND="mailwright.backends.queue.EmailBackend", EMAIL_QUEUE_PATH=path
        ):
            start = time.perf_counter()
            for i in range(20):
                mailwright.send_mail("Hi", TEXT, "bench@example.com", [f"user{i}@example.com"])
            elapsed = (time.perf_counter() - start) / 20
        if held is not None:
            held.close()
        os.unlink(path)
        return elapsed

    return (
        count / best(repeat, bulk),
        best(repeat, lambda: one(True)),
        best(repeat, lambda: one(False)),
    )


def drain(directory: str, count: int, sink: Sink, port: int, connections: int) -> Run:
    """A worker (``--once``) delivering ``count`` queued messages."""
    path = fresh_outbox(directory)
    backend = mailwright.get_connection("mailwright.backends.queue.EmailBackend", path=path)
    backend.send_messages(plain_messages(count))
    before = sink.count
    with mailwright.override_settings(EMAIL_HOST="127.0.0.1", EMAIL_PORT=port):
        worker = Worker(path, connections=connections, once=True)
        used = cpu()
        start = time.perf_counter()
        stats = worker.run()
        run = Run(time.perf_counter() - start, cpu() - used)
    got = sink.wait_count(before + count) - before
    if stats.delivered != count or got != count:
        raise SystemExit(f"worker: delivered {stats.delivered}, sink got {got} of {count}")
    os.unlink(path)
    return run


def direct(count: int, sink: Sink, port: int) -> Run:
    """send_messages straight to the sink, one connection (the baseline)."""
    messages = plain_messages(count)
    before = sink.count
    used = cpu()
    start = time.perf_counter()
    mailwright.get_connection("smtp", host="127.0.0.1", port=port).send_messages(messages)
    run = Run(time.perf_counter() - start, cpu() - used)
    got = sink.wait_count(before + count) - before
    if got != count:
        raise SystemExit(f"send_messages: sink got {got} of {count}")
    return run


def compare(
    directory: str, count: int, sink: Sink, port: int, connections: list[int], repeat: int
) -> None:
    """The baseline and the worker in turns (the machine's load shifts over time)."""
    results = {0: Best(), **{n: Best() for n in connections}}
    for _ in range(repeat):
        results[0].runs.append(direct(count, sink, port))
        for n in connections:
            results[n].runs.append(drain(directory, count, sink, port, n))
    baseline = results[0].rate(count)
    print(
        f"send_messages straight to the sink, 1 connection: {baseline:,.1f}/s "
        f"(client CPU {results[0].cpu_us(count):.0f} us/message)"
    )
    for n in connections:
        rate = results[n].rate(count)
        print(
            f"worker --once --connections {n}: {rate:,.1f}/s ({rate / baseline:.2f}x "
            f"send_messages; client CPU {results[n].cpu_us(count):.0f} us/message)"
        )


def fill(path: str, count: int) -> None:
    """``count`` queued messages, queued 20,000 per transaction (the backend's path
    minus composing: one composed message, many envelopes)."""
    data = mailwright.EmailMessage("Scale", TEXT, "bench@example.com", ["x@example.com"])
    wire = data.as_bytes()
    with Outbox(path) as outbox:
        for start in range(0, count, 20000):
            chunk = range(start, min(count, start + 20000))
            outbox.queue(
                [
                    Stored("bench@example.com", [f"user{i}@example.com"], wire, "Scale")
                    for i in chunk
                ]
            )


def claim_time(path: str, repeat: int = 50, batch: int = 100) -> float:
    """Seconds to claim a batch (and give it back, so the outbox is unchanged)."""
    times = []
    with Outbox(path, durable=False) as outbox:
        for _ in range(repeat):
            start = time.perf_counter()
            claimed = outbox.claim("bench", batch, 60)
            times.append(time.perf_counter() - start)
            assert len(claimed) == batch
            outbox.release("bench", [item.id for item in claimed])
    return min(times)


def status_time(path: str, repeat: int) -> float:
    """Wall time of ``mailwright queue status`` (a new process, as a user runs it)."""

    def run() -> float:
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "mailwright", "queue", "status", "--path", path],
            check=True,
            capture_output=True,
        )
        return time.perf_counter() - start

    return best(repeat, run)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=10000)
    parser.add_argument("--latency-messages", type=int, default=300, help="0 to skip")
    parser.add_argument("--latency-ms", type=float, default=10.0, help="added each way")
    parser.add_argument("--scale", type=int, default=1_000_000, help="0 to skip")
    parser.add_argument("--sink", choices=SINK_KINDS, default="auto")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--dir", help="where the outboxes go (default: a temporary directory)")
    args = parser.parse_args()
    n, repeat = args.messages, args.repeat

    with tempfile.TemporaryDirectory(prefix="mailwright-bench-", dir=args.dir) as directory:
        rate, single, alone = queueing(directory, n, repeat)
        print(f"queueing: one send_messages of {n:,} plain messages: {rate:,.0f} messages/s")
        print(
            f"queueing: one send_mail (one message, one fsync): {single * 1000:.2f} ms "
            f"with a worker running, {alone * 1000:.2f} ms with none"
        )

        sink = Sink(args.sink)
        try:
            print(f"\nsink: {sink.kind} on port {sink.port}; {n:,} messages, best of {repeat}")
            compare(directory, n, sink, sink.port, [1, 2, 4], repeat)
            if args.latency_messages:
                proxy = Proxy(sink.port, args.latency_ms)
                try:
                    lat = args.latency_messages
                    print(
                        f"\nthrough a proxy adding {args.latency_ms:g} ms each way ({lat} messages)"
                    )
                    compare(directory, lat, sink, proxy.port, [1, 4], 1)
                finally:
                    proxy.stop()
        finally:
            sink.stop()

        if args.scale:
            small = fresh_outbox(directory)
            fill(small, 1000)
            big = fresh_outbox(directory)
            start = time.perf_counter()
            fill(big, args.scale)
            print(f"\nscale: queued {args.scale:,} messages in {time.perf_counter() - start:.0f} s")
            startup = best(
                5,
                lambda: _timed(
                    lambda: subprocess.run(
                        [sys.executable, "-m", "mailwright", "--version"],
                        check=True,
                        capture_output=True,
                    )
                ),
            )
            print(f"`mailwright --version` (starting Python and importing): {startup:.3f} s")
            scale(small, "1,000 due")
            scale(big, f"{args.scale:,} due")
            db = sqlite3.connect(big)
            db.execute("UPDATE message SET due = due + 3600")  # all of them waiting to retry
            db.commit()
            db.close()
            scale(big, f"{args.scale:,} waiting to retry", claim=False)
            with Outbox(big) as outbox:
                print("\nEXPLAIN QUERY PLAN")
                for name, plan in outbox.explain().items():
                    print(f"  {name}: {' / '.join(plan)}")


def _timed(run: Callable[[], object]) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def scale(path: str, label: str, claim: bool = True) -> None:
    with Outbox(path) as outbox:
        start = time.perf_counter()
        outbox.status()
        inside = time.perf_counter() - start
    claiming = f"; claiming 100: {claim_time(path) * 1000:.2f} ms" if claim else ""
    print(
        f"outbox of {label}: `mailwright queue status` {status_time(path, 5):.3f} s "
        f"(wall, a new process; status() itself {inside * 1000:.1f} ms){claiming}"
    )


if __name__ == "__main__":
    main()
