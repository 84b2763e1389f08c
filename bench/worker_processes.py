"""``mailwright worker --processes N``: how delivery scales with worker processes.

    pip install -e '.[bench]'
    python bench/worker_processes.py [--messages 40000] [--connections 1] [--repeat 3]

Each run queues ``--messages`` plain messages into a fresh outbox, then times
``mailwright worker --once --processes N`` (the command, as a user runs it) draining
it into a local sink (Postfix's ``smtp-sink`` when installed, else aiosmtpd), checked
against the sink's count. One process is the baseline; ratios are messages per
second with N processes over that, measured in the same run, alternating, best of
``--repeat`` (and, steadier on a busy machine, the median of each round's ratio).
The client's work is CPU-bound in Python: a second core needs a second process.

Two rates per run: the command's (start-up and exit included), and delivery's (the
messages over the longest time a worker process spent delivering, from its ``--json``
summary). And where the CPU went, per message: each worker process's own (``cpu`` in
its summary), and the sink's (read from /proc). On a machine of C cores that also runs
the sink, N processes can at best reach ``C x cpu(1) / (cpu(N) + sink)`` times one
process's rate (the "ceiling" column): what is left of the cores once the sink is
served. Other work on the machine takes its share too; the load average is printed.

The workers run as an installed package does, from byte-compiled modules (a cache
directory of this run's own, filled by a first, unmeasured run), even where
PYTHONDONTWRITEBYTECODE is set: compiling every module at each start-up is not what a
deployed worker pays.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bulk import SINK_KINDS, Sink

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


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of process ``pid`` so far (Linux; 0 elsewhere)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Run:
    processes: int
    command: float  # the command's wall-clock seconds
    delivery: float  # the longest a worker process spent delivering
    cpu: list[float]  # CPU seconds per message, per worker process
    split: list[int]  # messages each worker process delivered
    sink: float  # the sink's CPU seconds per message
    load: float  # the load average (1 minute) after the run


def drain(
    path: str, port: int, processes: int, connections: int, batch: int, cache: str
) -> tuple[float, dict[str, object]]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("EMAIL_") and key != "PYTHONDONTWRITEBYTECODE"
    }
    env.update(
        EMAIL_QUEUE_PATH=path,
        EMAIL_HOST="127.0.0.1",
        EMAIL_PORT=str(port),
        PYTHONPYCACHEPREFIX=cache,
    )
    command = [sys.executable, "-m", "mailwright", "worker", "--once", "--quiet", "--json"]
    command += ["--processes", str(processes), "--connections", str(connections)]
    command += ["--batch", str(batch)]
    started = time.perf_counter()
    output = subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout
    elapsed = time.perf_counter() - started
    stats = json.loads(output.splitlines()[-1])
    assert stats["failed"] == stats["deferred"] == 0, stats
    return elapsed, stats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=40_000)
    parser.add_argument("--connections", type=int, default=1, help="per process")
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--sink", choices=SINK_KINDS, default="auto")
    parser.add_argument(
        "--sink-priority",
        type=int,
        default=10,
        metavar="N",
        help="run the sink N nice levels above the rest (as root; 0: no change)",
    )
    args = parser.parse_args()
    sink = Sink(args.sink)
    if args.sink_priority and os.geteuid() == 0:
        # On a busy machine the sink (one process) must not be what limits: the
        # client's processes are what is measured.
        os.setpriority(os.PRIO_PROCESS, sink.process.pid, -args.sink_priority)
    best: dict[int, Run] = {}
    rounds: list[dict[int, Run]] = []
    try:
        with tempfile.TemporaryDirectory(prefix="mailwright-processes-") as directory:
            cache = os.path.join(directory, "pycache")
            warm = os.path.join(directory, "warm.sqlite3")
            fill(warm, 10)
            before = sink.count
            drain(warm, sink.port, 1, args.connections, args.batch, cache)
            sink.wait_count(before + 10)
            for round_ in range(args.repeat):
                rounds.append({})
                for processes in args.processes:
                    path = os.path.join(directory, f"outbox-{round_}-{processes}.sqlite3")
                    fill(path, args.messages)
                    before, sink_cpu = sink.count, cpu_seconds(sink.process.pid)
                    elapsed, stats = drain(
                        path, sink.port, processes, args.connections, args.batch, cache
                    )
                    arrived = sink.wait_count(before + args.messages) - before
                    assert arrived == args.messages, (arrived, args.messages)
                    each = stats.get("processes", [stats])
                    assert isinstance(each, list)
                    run = Run(
                        processes,
                        elapsed,
                        max(float(one["elapsed"]) for one in each),
                        [float(one["cpu"]) / max(1, int(one["delivered"])) for one in each],
                        [int(one["delivered"]) for one in each],
                        (cpu_seconds(sink.process.pid) - sink_cpu) / args.messages,
                        os.getloadavg()[0],
                    )
                    rounds[-1][processes] = run
                    if processes not in best or run.command < best[processes].command:
                        best[processes] = run
                    print(
                        f"round {round_ + 1}: {processes} process(es): "
                        f"{args.messages / run.command:,.0f} msg/s (command), "
                        f"{args.messages / run.delivery:,.0f} msg/s (delivery), CPU per "
                        f"message {', '.join(f'{c * 1e6:.0f}' for c in run.cpu)} µs, "
                        f"sink {run.sink * 1e6:.0f} µs, split {run.split}, "
                        f"load {run.load:.1f}",
                        flush=True,
                    )
                    os.remove(path)
    finally:
        sink.stop()
    base = best[args.processes[0]]
    cores = os.cpu_count() or 1
    print(
        f"\nmailwright worker --once --connections {args.connections} --batch {args.batch}, "
        f"{args.messages:,} messages -> {sink.kind}, best of {args.repeat} (cores: {cores})"
    )
    print(
        f"{'processes':>9} {'command msg/s':>14} {'ratio':>6} {'delivery msg/s':>15} "
        f"{'ratio':>6} {'CPU µs/msg (each)':>18} {'sink µs/msg':>12} {'ceiling':>8} {'load':>5}"
    )
    base_cpu = sum(base.cpu) / len(base.cpu)
    for processes, run in best.items():
        run_cpu = sum(run.cpu) / len(run.cpu)
        ceiling = min(processes, cores * base_cpu / (run_cpu + run.sink))
        print(
            f"{processes:>9} {args.messages / run.command:>14,.0f} "
            f"{base.command / run.command:>5.2f}x {args.messages / run.delivery:>15,.0f} "
            f"{base.delivery / run.delivery:>5.2f}x "
            f"{' / '.join(f'{c * 1e6:.0f}' for c in run.cpu):>18} {run.sink * 1e6:>12.0f} "
            f"{ceiling:>7.2f}x {run.load:>5.1f}"
        )
    # Each round's runs follow one another: on a machine whose load moves, their
    # ratio is steadier than the ratio of two bests taken minutes apart.
    for processes in args.processes[1:]:
        ratios = sorted(one[args.processes[0]].command / one[processes].command for one in rounds)
        print(
            f"{processes} processes, the command's ratio round by round: "
            f"{', '.join(f'{r:.2f}x' for r in ratios)} (median {statistics.median(ratios):.2f}x)"
        )


if __name__ == "__main__":
    main()
