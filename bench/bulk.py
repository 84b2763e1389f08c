"""Bulk sending: mailwright against Django's mail module (and plain smtplib), same run.

    pip install -e '.[bench]'
    python bench/bulk.py [--messages 2000] [--latency-messages 300] [--sink auto]

Starts its own SMTP sink in a separate process (Postfix's ``smtp-sink`` when installed,
else an aiosmtpd sink), and a latency proxy (10 ms each way) for the last scenario.
Every run is checked against the sink's count of received messages. Prints messages/s
side by side with the ratio; the machine is shared and noisy, so each figure is the
best of ``--repeat`` runs and only ratios from one run mean anything.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import smtplib
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ATTACHMENT = bytes(range(256)) * 80  # 20 KB
HTML = "<html><body><h1>Hello</h1><p>This is the <b>HTML</b> version.</p></body></html>"
TEXT = "Hello,\n\nthis is a short plain-text message from the benchmark.\n"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port}")


#: What ``--sink`` takes on every benchmark (``Sink(kind)``).
SINK_KINDS = ("auto", "smtp-sink", "aiosmtpd", "epoll")


class Sink:
    """An SMTP sink in its own process, counting messages (``mesg=N`` lines).

    Its counter goes to a file, read only between runs: a reader thread in this
    process would compete with the sender for the GIL and skew the numbers.
    """

    def __init__(self, kind: str) -> None:
        self.port = free_port()
        smtp_sink = shutil.which("smtp-sink") or "/usr/sbin/smtp-sink"
        if kind == "auto":
            kind = "smtp-sink" if os.path.exists(smtp_sink) else "aiosmtpd"
        self.kind = kind
        if kind == "smtp-sink":
            command = [smtp_sink, "-c"]
            if os.geteuid() == 0:
                command += ["-u", "postfix"]
            command += [f"127.0.0.1:{self.port}", "1024"]
        elif kind == "epoll":
            command = [sys.executable, str(HERE / "_epoll_sink.py"), "--port", str(self.port)]
        else:
            command = [sys.executable, str(HERE / "_sink.py"), "--port", str(self.port)]
        self.log = tempfile.NamedTemporaryFile(prefix="mailwright-sink-", suffix=".log")  # noqa: SIM115
        self.process = subprocess.Popen(command, stdout=self.log, stderr=subprocess.STDOUT)
        wait_for_port(self.port)

    @property
    def count(self) -> int:
        with open(self.log.name, "rb") as log:
            log.seek(max(0, os.path.getsize(self.log.name) - 200))
            counts = re.findall(rb"mesg=(\d+)", log.read())
        return int(counts[-1]) if counts else 0

    def wait_count(self, expected: int, timeout: float = 30) -> int:
        deadline = time.monotonic() + timeout
        while (count := self.count) < expected and time.monotonic() < deadline:
            time.sleep(0.01)
        return count

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)
        self.log.close()


class Proxy:
    def __init__(self, target_port: int, delay_ms: float) -> None:
        self.port = free_port()
        self.process = subprocess.Popen(
            [
                sys.executable,
                str(HERE / "_proxy.py"),
                "--listen",
                str(self.port),
                "--target",
                f"127.0.0.1:{target_port}",
                "--delay-ms",
                str(delay_ms),
            ]
        )
        wait_for_port(self.port)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


@dataclass
class Measure:
    label: str
    rate: float  # messages (or builds) per second


def measure(
    label: str, count: int, run: Callable[[], object], sink: Sink | None, repeat: int
) -> Measure:
    best = float("inf")
    for _ in range(repeat):
        before = sink.count if sink else 0
        start = time.perf_counter()
        run()
        elapsed = time.perf_counter() - start
        if sink is not None:
            got = sink.wait_count(before + count) - before
            if got != count:
                raise SystemExit(f"{label}: the sink received {got} of {count} messages")
        best = min(best, elapsed)
    return Measure(label, count / best)


# --- message factories ---


def django_setup() -> object:
    import django
    from django.conf import settings

    if not settings.configured:
        settings.configure(EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend")
        django.setup()
    from django.core import mail

    return mail


def plain_messages(module: object, count: int) -> list[object]:
    return [
        module.EmailMessage(  # type: ignore[attr-defined]
            f"Message {i}", TEXT, "bench@example.com", [f"user{i}@example.com"]
        )
        for i in range(count)
    ]


def rich_messages(module: object, count: int) -> list[object]:
    messages = []
    for i in range(count):
        message = module.EmailMultiAlternatives(  # type: ignore[attr-defined]
            f"Report {i}", TEXT, "bench@example.com", [f"user{i}@example.com"]
        )
        message.attach_alternative(HTML, "text/html")
        message.attach("report.bin", ATTACHMENT, "application/octet-stream")
        messages.append(message)
    return messages


def datatuple(count: int) -> list[tuple[str, str, str, list[str]]]:
    return [
        (f"Message {i}", TEXT, "bench@example.com", [f"user{i}@example.com"]) for i in range(count)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--rich-messages", type=int, default=1000)
    parser.add_argument("--latency-messages", type=int, default=300)
    parser.add_argument("--latency-ms", type=float, default=10.0, help="added each way")
    parser.add_argument("--connections", type=int, default=16, help="for the latency scenario")
    parser.add_argument("--sink", choices=SINK_KINDS, default="auto")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    import mailwright

    dj = django_setup()
    import django

    sink = Sink(args.sink)
    host, port = "127.0.0.1", sink.port
    n, rich, repeat = args.messages, args.rich_messages, args.repeat
    python = sys.version.split()[0]
    print(f"sink: {sink.kind} on port {port}; Django {django.get_version()}; Python {python}")
    rows: list[tuple[str, Measure, Measure, str]] = []

    def dj_connection(**extra: object) -> object:
        return dj.get_connection(host=host, port=port, **extra)  # type: ignore[attr-defined]

    def mw_connection(**extra: object) -> mailwright.backends.base.BaseEmailBackend:
        return mailwright.get_connection("smtp", host=host, port=port, **extra)

    try:
        # 1. building wire bytes
        rows.append(
            (
                "build bytes, plain",
                measure(
                    "django build",
                    n,
                    lambda: [m.message().as_bytes() for m in plain_messages(dj, n)],
                    None,
                    repeat,
                ),
                measure(
                    "mailwright build",
                    n,
                    lambda: [m.as_bytes() for m in plain_messages(mailwright, n)],
                    None,
                    repeat,
                ),
                ">= 5x",
            )
        )
        rows.append(
            (
                "build bytes, HTML + 20 KB attachment",
                measure(
                    "django build rich",
                    rich,
                    lambda: [m.message().as_bytes() for m in rich_messages(dj, rich)],
                    None,
                    repeat,
                ),
                measure(
                    "mailwright build rich",
                    rich,
                    lambda: [m.as_bytes() for m in rich_messages(mailwright, rich)],
                    None,
                    repeat,
                ),
                "",
            )
        )

        # 2. plain messages over one connection
        django_send = measure(
            "django send_messages",
            n,
            lambda: dj_connection().send_messages(plain_messages(dj, n)),
            sink,
            repeat,
        )
        rows.append(
            (
                "plain, send_messages, 1 connection",
                django_send,
                measure(
                    "mailwright send_messages",
                    n,
                    lambda: mw_connection().send_messages(plain_messages(mailwright, n)),
                    sink,
                    repeat,
                ),
                ">= 10x",
            )
        )
        rows.append(
            (
                "plain, send_mass_mail, 1 connection",
                measure(
                    "django send_mass_mail",
                    n,
                    lambda: dj.send_mass_mail(datatuple(n), connection=dj_connection()),
                    sink,
                    repeat,
                ),  # type: ignore[attr-defined]
                measure(
                    "mailwright send_mass_mail",
                    n,
                    lambda: mailwright.send_mass_mail(datatuple(n), connection=mw_connection()),
                    sink,
                    repeat,
                ),
                ">= 10x",
            )
        )

        def smtplib_prebuilt() -> Callable[[], None]:
            payloads = [m.as_bytes() for m in plain_messages(mailwright, n)]

            def run() -> None:
                with smtplib.SMTP(host, port, local_hostname="bench") as client:
                    for i, data in enumerate(payloads):
                        client.sendmail("bench@example.com", [f"user{i}@example.com"], data)

            return run

        rows.append(
            (
                "plain, smtplib with pre-built bytes (reference)",
                django_send,
                measure("smtplib", n, smtplib_prebuilt(), sink, repeat),
                "",
            )
        )
        rows.append(
            (
                "plain, send_bulk, 4 connections",
                django_send,
                measure(
                    "mailwright send_bulk",
                    n,
                    lambda: mailwright.send_bulk(
                        plain_messages(mailwright, n),
                        connections=4,
                        backend="smtp",
                        host=host,
                        port=port,
                    ),
                    sink,
                    repeat,
                ),
                "",
            )
        )

        # 3. HTML + attachment over one connection
        rows.append(
            (
                "HTML + 20 KB attachment, 1 connection",
                measure(
                    "django rich",
                    rich,
                    lambda: dj_connection().send_messages(rich_messages(dj, rich)),
                    sink,
                    repeat,
                ),
                measure(
                    "mailwright rich",
                    rich,
                    lambda: mw_connection().send_messages(rich_messages(mailwright, rich)),
                    sink,
                    repeat,
                ),
                ">= 5x",
            )
        )

        # 4. through a proxy adding latency
        proxy = Proxy(port, args.latency_ms)
        try:
            lat = args.latency_messages
            rows.append(
                (
                    f"plain, {args.latency_ms:g} ms each way, "
                    f"Django 1 conn vs send_bulk {args.connections} conns",
                    measure(
                        "django latency",
                        lat,
                        lambda: dj.get_connection(host=host, port=proxy.port).send_messages(
                            plain_messages(dj, lat)
                        ),  # type: ignore[attr-defined]
                        sink,
                        1,
                    ),
                    measure(
                        "mailwright latency",
                        lat,
                        lambda: mailwright.send_bulk(
                            plain_messages(mailwright, lat),
                            connections=args.connections,
                            backend="smtp",
                            host=host,
                            port=proxy.port,
                        ),
                        sink,
                        repeat,
                    ),
                    ">= 20x",
                )
            )
            rows.append(
                (
                    f"plain, {args.latency_ms:g} ms each way, both 1 connection (pipelining alone)",
                    rows[-1][1],
                    measure(
                        "mailwright latency 1",
                        lat,
                        lambda: mailwright.get_connection(
                            "smtp", host=host, port=proxy.port
                        ).send_messages(plain_messages(mailwright, lat)),
                        sink,
                        repeat,
                    ),
                    "",
                )
            )
        finally:
            proxy.stop()
    finally:
        sink.stop()

    width = max(len(row[0]) for row in rows)
    print(f"\n{'scenario':<{width}}  {'Django/s':>10}  {'mailwright/s':>12}  {'ratio':>7}  goal")
    for label, django_result, ours, goal in rows:
        ratio = ours.rate / django_result.rate
        rates = f"{django_result.rate:>10.0f}  {ours.rate:>12.0f}"
        print(f"{label:<{width}}  {rates}  {ratio:>6.1f}x  {goal}")


if __name__ == "__main__":
    main()
