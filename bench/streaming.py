"""Streaming: a million generated messages through ``send_bulk`` and into the outbox,
with flat memory.

    pip install -e '.[bench]'
    python bench/streaming.py [--messages 1000000] [--baseline 10000] [--connections 2]

Each run is its own process, so its peak RSS (``ru_maxrss``) is its own:

1. ``send_bulk`` of a generator of ``--messages`` plain messages to a local sink
   (Postfix's ``smtp-sink`` when installed, else aiosmtpd), checked against the
   sink's count;
2. the queue backend's ``send_messages`` of the same generator into a fresh outbox,
   checked against the outbox's count.

Each is compared with the same run over ``--baseline`` messages (what the
interpreter, mailwright and the connections cost): flat memory means the ratio of the
two peaks stays near 1 however many messages go through.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent
TEXT = "Hello,\n\nthis is a short plain-text message from the benchmark.\n"


def generate(count: int) -> Iterator[object]:
    from mailwright import EmailMessage

    for n in range(count):
        yield EmailMessage(f"Newsletter {n}", TEXT, "news@example.com", [f"user{n}@example.com"])


def child(args: argparse.Namespace) -> None:
    """One measured run, in its own process; prints a JSON line."""
    import mailwright

    started = time.perf_counter()
    if args.child == "send":
        result = mailwright.send_bulk(
            generate(args.messages),
            connections=args.connections,
            backend="smtp",
            host="127.0.0.1",
            port=args.port,
        )
        done = {"sent": result.sent, "failed": len(result.failed), "total": result.total}
    else:
        backend = mailwright.get_connection("queue", path=args.path)
        done = {"queued": backend.send_messages(generate(args.messages))}
    elapsed = time.perf_counter() - started
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({**done, "elapsed": elapsed, "peak_mb": peak_kb / 1024}), flush=True)


def run(kind: str, messages: int, **options: object) -> dict[str, float]:
    command = [sys.executable, __file__, "--child", kind, "--messages", str(messages)]
    for name, value in options.items():
        command += [f"--{name}", str(value)]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    figures: dict[str, float] = json.loads(output.splitlines()[-1])
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--baseline", type=int, default=10_000)
    parser.add_argument("--connections", type=int, default=2)
    # (bulk.SINK_KINDS, written out: this script's child processes measure their own
    # memory, and bench/bulk.py is imported only where the sink is started.)
    parser.add_argument(
        "--sink", choices=("auto", "smtp-sink", "aiosmtpd", "epoll"), default="auto"
    )
    parser.add_argument("--only", choices=("send", "queue"))
    parser.add_argument("--child", choices=("send", "queue"), help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--path", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return

    sys.path.insert(0, str(HERE))
    from bulk import Sink

    rows = []
    if args.only in (None, "send"):
        sink = Sink(args.sink)
        try:
            figures = []
            for count in (args.baseline, args.messages):
                before = sink.count
                figure = run("send", count, connections=args.connections, port=sink.port)
                arrived = sink.wait_count(before + count) - before
                assert figure["sent"] == figure["total"] == count == arrived, (figure, arrived)
                figures.append(figure)
        finally:
            sink.stop()
        name = f"send_bulk(generator, connections={args.connections}) -> {sink.kind}"
        rows.append((name, figures))
    if args.only in (None, "queue"):
        figures = []
        for count in (args.baseline, args.messages):
            with tempfile.TemporaryDirectory(prefix="mailwright-stream-") as directory:
                path = os.path.join(directory, "outbox.sqlite3")
                figure = run("queue", count, path=path)
                from mailwright.queue import Outbox

                with Outbox(path) as outbox:
                    stored = outbox.status().counts["queued"]
                assert figure["queued"] == stored == count, (figure, stored)
                figures.append(figure)
        rows.append(("queue backend send_messages(generator)", figures))

    print(f"\n{'path':<52} {'messages':>10} {'msg/s':>8} {'peak RSS':>9} {'vs baseline':>11}")
    for name, (base, full) in rows:
        for figure, count in ((base, args.baseline), (full, args.messages)):
            rate = count / figure["elapsed"]
            ratio = figure["peak_mb"] / base["peak_mb"]
            print(
                f"{name if count == args.baseline else '':<52} {count:>10,} {rate:>8,.0f} "
                f"{figure['peak_mb']:>7.1f} MB {ratio:>10.2f}x"
            )


if __name__ == "__main__":
    main()
