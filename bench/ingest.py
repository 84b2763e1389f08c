"""How fast the catcher takes mail from many concurrent SMTP clients.

    python bench/ingest.py [--messages 20000] [--sessions 8] [--runs 3] [--maildir]

Starts ``mailwright smtpd`` in its own process (as a user runs it, output discarded),
drives it with Postfix's ``smtp-source`` (Debian package ``postfix``): ``--sessions``
concurrent clients, each sending its messages over one connection, and counts what
arrived through the JSON API, so a lost message fails the run. Prints msg/s per run and
the best (the machine is shared and noisy).
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

CPU_BEFORE: list[float] = [0.0, 0.0]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def total(web_port: int) -> int:
    url = f"http://127.0.0.1:{web_port}/api/messages?limit=0"
    with urllib.request.urlopen(url, timeout=30) as reply:
        count: int = json.load(reply)["total"]
        return count


def wait_listening(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit("the catcher exited")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)  # start-up only; the measured part waits on nothing
    raise SystemExit("the catcher did not start")


def one_run(args: argparse.Namespace, source: str) -> float:
    smtp_port, web_port = free_port(), free_port()
    command = [
        sys.executable, "-m", "mailwright", "smtpd",
        "--port", str(smtp_port), "--web-port", str(web_port),
        "--max-messages", "0",  # keep every message, so the count says none was lost
    ]  # fmt: skip
    with tempfile.TemporaryDirectory() as folder:
        if args.maildir:
            command += ["--maildir", f"{folder}/Maildir"]
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            wait_listening(smtp_port, process)
            wait_listening(web_port, process)
            start = time.perf_counter()
            subprocess.run(
                [
                    source, "-d", "-s", str(args.sessions), "-m", str(args.messages),
                    "-l", str(args.size), "-f", "bench@example.com", "-t", "inbox@example.com",
                    "-S", "ingest benchmark", f"127.0.0.1:{smtp_port}",
                ],
                check=True,
            )  # fmt: skip
            elapsed = time.perf_counter() - start
            # every 250 was given after the message was stored: all must be listed now
            arrived = total(web_port)
            if arrived != args.messages:
                raise SystemExit(f"lost mail: sent {args.messages}, the API lists {arrived}")
        finally:
            process.terminate()
            process.wait(30)
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    user, system = used.ru_utime - CPU_BEFORE[0], used.ru_stime - CPU_BEFORE[1]
    CPU_BEFORE[:] = [used.ru_utime, used.ru_stime]
    print(
        f"  catcher CPU per message (start-up included): {user / args.messages * 1e6:.0f} µs "
        f"user, {system / args.messages * 1e6:.0f} µs system"
    )
    return args.messages / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--sessions", type=int, default=8)
    parser.add_argument("--size", type=int, default=1000, help="body bytes per message")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--maildir", action="store_true", help="store in a Maildir too")
    args = parser.parse_args()
    source = shutil.which("smtp-source") or "/usr/sbin/smtp-source"
    if not shutil.which(source):
        raise SystemExit("smtp-source not found: apt-get install postfix")
    rates = []
    for run in range(1, args.runs + 1):
        rate = one_run(args, source)
        rates.append(rate)
        print(
            f"run {run}: {args.messages} messages from {args.sessions} clients, {rate:,.0f} msg/s"
        )
    where = "memory + Maildir" if args.maildir else "memory"
    print(f"best of {args.runs} ({where}): {max(rates):,.0f} msg/s, nothing lost")


if __name__ == "__main__":
    main()
