"""``mailwright worker --processes N``: how delivery scales with worker processes.

    pip install -e '.[bench]'
    python bench/worker_processes.py [--messages 20000] [--connections 2] [--repeat 3]

Each run queues ``--messages`` plain messages into a fresh outbox, then times
``mailwright worker --once --processes N`` (the command, as a user runs it) draining
it into a local sink (Postfix's ``smtp-sink`` when installed, else aiosmtpd), checked
against the sink's count. One process is the baseline; the ratio is messages per
second with N processes over that, measured in the same run, alternating, best of
``--repeat``. The client's work is CPU-bound in Python: a second core needs a second
process.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
TEXT = "Hello,\n\nthis is a short plain-text message from the benchmark.\n"


def fill(path: str, count: int) -> None:
    import mailwright
    from mailwright import EmailMessage

    backend = mailwright.get_connection("queue", path=path)
    backend.send_messages(
        EmailMessage(f"Newsletter {n}", TEXT, "news@example.com", [f"user{n}@example.com"])
        for n in range(count)
    )


def drain(path: str, port: int, processes: int, connections: int, batch: int) -> float:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("EMAIL_")},
        "EMAIL_QUEUE_PATH": path,
        "EMAIL_HOST": "127.0.0.1",
        "EMAIL_PORT": str(port),
    }
    command = [sys.executable, "-m", "mailwright", "worker", "--once", "--quiet", "--json"]
    command += ["--processes", str(processes), "--connections", str(connections)]
    command += ["--batch", str(batch)]
    started = time.perf_counter()
    output = subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout
    elapsed = time.perf_counter() - started
    stats = json.loads(output.splitlines()[-1])
    assert stats["failed"] == stats["deferred"] == 0, stats
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--connections", type=int, default=2, help="per process")
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--sink", choices=("auto", "smtp-sink", "aiosmtpd"), default="auto")
    parser.add_argument(
        "--sink-priority",
        type=int,
        default=10,
        metavar="N",
        help="run the sink N nice levels above the rest (as root; 0: no change)",
    )
    args = parser.parse_args()

    sys.path.insert(0, str(HERE))
    from bulk import Sink

    sink = Sink(args.sink)
    if args.sink_priority and os.geteuid() == 0:
        # On a busy machine the sink (one process) must not be what limits: the
        # client's processes are what is measured.
        os.setpriority(os.PRIO_PROCESS, sink.process.pid, -args.sink_priority)
    best: dict[int, float] = {}
    try:
        with tempfile.TemporaryDirectory(prefix="mailwright-processes-") as directory:
            for round_ in range(args.repeat):
                for processes in args.processes:
                    path = os.path.join(directory, f"outbox-{round_}-{processes}.sqlite3")
                    fill(path, args.messages)
                    before = sink.count
                    elapsed = drain(path, sink.port, processes, args.connections, args.batch)
                    arrived = sink.wait_count(before + args.messages) - before
                    assert arrived == args.messages, (arrived, args.messages)
                    rate = args.messages / elapsed
                    best[processes] = max(best.get(processes, 0.0), rate)
                    print(
                        f"round {round_ + 1}: {processes} process(es): {rate:,.0f} msg/s",
                        flush=True,
                    )
                    os.remove(path)
    finally:
        sink.stop()
    base = best[args.processes[0]]
    print(
        f"\nmailwright worker --once --connections {args.connections} --batch {args.batch}, "
        f"{args.messages:,} messages -> {sink.kind}, best of {args.repeat} (cores: "
        f"{os.cpu_count()})"
    )
    print(f"{'processes':>9} {'msg/s':>8} {'vs 1 process':>13}")
    for processes, rate in best.items():
        print(f"{processes:>9} {rate:>8,.0f} {rate / base:>12.2f}x")


if __name__ == "__main__":
    main()
