"""Sending through Celery: messages/s through Redis and real ``celery worker`` processes
to an SMTP sink, against ``send_messages`` straight to the sink in the same run.

    pip install -e '.[bench]'
    python bench/celery_send.py [--messages 10000] [--repeat 2] [--redis URL]

Starts its own SMTP sink (Postfix's ``smtp-sink`` when installed) and ``redis-server``
(unless ``--redis`` is given), then workers with 1, then 2 processes delivering with the
SMTP backend. Two figures per scenario, each the best of ``--repeat`` runs:

* end to end: from the ``send_messages`` call (compose and enqueue, in this process)
  until the sink has counted every message, the workers running meanwhile on the
  same two cores;
* draining: workers started on a queue that already holds every message, until the
  sink has them all: the delivery capacity that adding workers (or machines) scales.

django-celery-email, when installed, runs beside it on the same broker and workers (its
task sends its messages one by one over a new connection per task; its default
``CELERY_EMAIL_CHUNK_SIZE`` is 10).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bulk import HERE, SINK_KINDS, Sink, free_port, plain_messages


class Redis:
    def __init__(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise SystemExit("redis-server is not installed (apt-get install redis-server)")
        self.port = free_port()
        self.dir = tempfile.TemporaryDirectory(prefix="mailwright-bench-redis-")
        self.process = subprocess.Popen(
            [binary, "--bind", "127.0.0.1", "--port", str(self.port), "--save", "",
             "--appendonly", "no", "--dir", self.dir.name],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        self.url = f"redis://127.0.0.1:{self.port}/0"
        import redis

        deadline = time.monotonic() + 10
        while True:
            try:
                redis.Redis.from_url(self.url).ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)
        self.dir.cleanup()


class Worker:
    """``celery worker`` with ``processes`` prefork processes, quiet (WARNING) logs."""

    def __init__(self, broker: str, sink_port: int, processes: int, queues: str) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="mailwright-bench-"))
        self.ready = self.dir / "ready"
        env = {
            **os.environ,
            "BENCH_BROKER": broker,
            "BENCH_READY_FILE": str(self.ready),
            "EMAIL_HOST": "127.0.0.1",
            "EMAIL_PORT": str(sink_port),
            "PYTHONPATH": os.pathsep.join(filter(None, [str(HERE), os.getenv("PYTHONPATH")])),
        }
        self.log = open(self.dir / "log", "wb")  # noqa: SIM115
        self.process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "_celery_app", "worker",
             "--pool", "prefork", "--concurrency", str(processes), "--queues", queues,
             "--loglevel", "WARNING", "--without-gossip", "--without-mingle",
             "--without-heartbeat"],
            env=env,
            cwd=HERE,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while not self.ready.exists():
            if time.monotonic() > deadline or self.process.poll() is not None:
                self.log.close()
                raise SystemExit("the celery worker did not start:\n" + self.read_log())
            time.sleep(0.01)
        self.started = time.perf_counter()

    def read_log(self) -> str:
        return (self.dir / "log").read_text(errors="replace")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(60)
        self.log.close()
        errors = [line for line in self.read_log().splitlines() if "ERROR" in line]
        shutil.rmtree(self.dir, ignore_errors=True)
        if errors:
            raise SystemExit("the worker logged errors:\n" + "\n".join(errors[:10]))


@dataclass
class Row:
    label: str
    end_to_end: float  # msg/s from send_messages() until the sink has them all
    drain: float | None = None  # msg/s of the workers alone, emptying a full queue
    enqueue: float | None = None  # seconds send_messages() took (workers running)


class Bench:
    def __init__(self, sink: Sink, broker: str, repeat: int) -> None:
        self.sink, self.broker, self.repeat = sink, broker, repeat

    def end_to_end(self, count: int, send: Callable[[], object]) -> tuple[float, float]:
        """Best msg/s from the call until the sink counted every message, and the best
        time the call itself took."""
        best, best_call = float("inf"), float("inf")
        for _ in range(self.repeat):
            before = self.sink.count
            start = time.perf_counter()
            send()
            called = time.perf_counter() - start
            self._wait(before + count)
            best, best_call = min(best, time.perf_counter() - start), min(best_call, called)
        return count / best, best_call

    def drain(self, count: int, send: Callable[[], object], processes: int, queues: str) -> float:
        """Best msg/s of freshly started workers emptying a queue already holding
        ``count`` messages (the producer's cost left out: what adding workers buys)."""
        best = float("inf")
        for _ in range(self.repeat):
            before = self.sink.count
            send()
            worker = Worker(self.broker, self.sink.port, processes, queues)
            try:
                self._wait(before + count)
                best = min(best, time.perf_counter() - worker.started)
            finally:
                worker.stop()
        return count / best

    def _wait(self, expected: int) -> None:
        got = self.sink.wait_count(expected, timeout=600)
        if got < expected:
            raise SystemExit(f"the sink counted {got}, expected {expected}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--chunks", type=int, nargs="+", default=[1, 50, 500])
    parser.add_argument("--peer-chunks", type=int, nargs="+", default=[1, 10])
    parser.add_argument("--sink", choices=SINK_KINDS, default="auto")
    parser.add_argument("--redis", help="a Redis URL to use instead of starting one")
    args = parser.parse_args()

    from _celery_app import app

    import mailwright
    from mailwright.backends.celery import EmailBackend

    try:
        import djcelery_email  # noqa: F401
        from django.conf import settings as dj_settings
        from django.core import mail as django_mail
    except ImportError:
        django_mail = None  # type: ignore[assignment]
    app.set_current()

    sink = Sink(args.sink)
    redis = None if args.redis else Redis()
    broker = args.redis or redis.url  # type: ignore[union-attr]
    app.conf.broker_url = broker
    n = args.messages
    bench = Bench(sink, broker, args.repeat)
    print(f"sink: {sink.kind}; broker: Redis; {n} plain messages; best of {args.repeat}")
    rows: list[Row] = []
    try:
        direct = mailwright.get_connection("smtp", host="127.0.0.1", port=sink.port)
        rate, _ = bench.end_to_end(n, lambda: direct.send_messages(plain_messages(mailwright, n)))
        rows.append(Row("send_messages straight to the sink (1 connection)", rate))
        for processes in args.processes:
            sends: list[tuple[str, Callable[[], object], str]] = []
            for chunk in args.chunks:
                backend = EmailBackend(app=app, queue="mail", chunk=chunk)
                sends.append(
                    (
                        f"mailwright Celery, {processes} process(es), chunk {chunk}",
                        lambda b=backend: b.send_messages(plain_messages(mailwright, n)),
                        "mail",
                    )
                )
            if django_mail is not None:
                for chunk in args.peer_chunks:

                    def peer(chunk: int = chunk) -> object:
                        dj_settings.CELERY_EMAIL_CHUNK_SIZE = chunk
                        connection = django_mail.get_connection()
                        return connection.send_messages(plain_messages(django_mail, n))

                    label = f"django-celery-email, {processes} process(es), chunk {chunk}"
                    sends.append((label, peer, "celery"))
            worker = Worker(broker, sink.port, processes, "mail,celery")
            try:
                for label, send, _ in sends:
                    rate, call = bench.end_to_end(n, send)
                    rows.append(Row(label, rate, enqueue=call))
            finally:
                worker.stop()
            for row, (label, send, queue) in zip(rows[-len(sends) :], sends, strict=True):
                row.drain = bench.drain(n, send, processes, queue)
                print(f"  {label}: {row.end_to_end:,.0f} msg/s end to end, "
                      f"{row.drain:,.0f} msg/s draining", flush=True)  # fmt: skip
    finally:
        sink.stop()
        if redis is not None:
            redis.stop()

    base = rows[0].end_to_end
    width = max(len(row.label) for row in rows)
    print(
        f"\n{'scenario':<{width}}  {'end to end':>10}  {'x direct':>8}  "
        f"{'draining':>8}  {'x direct':>8}  {'send_messages':>13}"
    )
    for row in rows:
        drain = f"{row.drain:>8,.0f}  {row.drain / base:>8.2f}" if row.drain else " " * 18
        enqueue = f"{row.enqueue:.2f} s" if row.enqueue is not None else "-"
        print(
            f"{row.label:<{width}}  {row.end_to_end:>10,.0f}  {row.end_to_end / base:>8.2f}  "
            f"{drain}  {enqueue:>13}"
        )


if __name__ == "__main__":
    main()
