"""Instructions per message, counted by callgrind: deterministic on a noisy machine.

    python bench/instructions.py [--small 200] [--large 1200]

Each scenario runs twice under ``valgrind --tool=callgrind`` (Debian ``valgrind``), once
with ``--small`` and once with ``--large`` messages; the difference divided by the
difference in messages is the cost of one message, without the interpreter's start-up
and the imports. Scenarios (a plain message, built inside the count):

* ``build``: ``EmailMessage(...)`` and its wire bytes (``message.envelope()``), no I/O;
* ``batch``: the same inside ``batch_settings()``, as a batch send composes (the two
  settings every composition reads are read once for the batch);
* ``sync``: ``send_messages`` over one connection to a sink (smtp-sink when installed,
  else ``bench/_sink.py``; the sink runs outside valgrind);
* ``async``: ``asend_bulk(connections=1)`` to the same sink;
* ``async8``, ``bulk8``: ``asend_bulk(connections=8)`` and ``send_bulk(connections=8)``
  (which runs its connections on an event loop of its own; until 2026-12 it ran
  eight threads, and the scenario was called ``threads8``), to the same sink;
* ``sync-send``, ``async-send``: the send side alone, ``send_messages`` and
  ``asend_bulk(connections=1)`` of messages whose envelope (wire bytes and addresses)
  was composed before: each is a stand-in whose ``envelope()`` returns it. Making the
  stand-ins is inside the count (``prep``, a few thousand instructions) and is taken
  off the figure printed;
* ``engine``: the sync engine alone, ``SMTPConnection.send`` of ready envelopes over an
  in-process stand-in for the socket that answers each pipelined group in one read
  (no network, no backend; making the envelopes is taken off as for ``-send``). The
  rows over a real socket vary by a few percent from run to run, with how the sink's
  replies happen to be split across reads; this one does not;
* ``raw8``: the reference of issue 20, ``bench/engine.py``'s buffered raw client: one
  message's bytes pipelined over eight connections, nothing built, checked or booked.
  With it, each path's count is also printed as a ratio to it: the instruction side of
  ``bench/engine.py``'s CPU ratios, without their noise (system calls are not counted:
  callgrind counts the instructions of the process, not the kernel's);
* ``import``: ``import mailwright`` against a bare interpreter (one run each).

``--only sync,async8`` runs some scenarios alone.

Instruction counts are the same from run to run for the same interpreter and code, so
a change's cost shows even when wall-clock benchmarks are drowned in noise. They are
not time: a cache miss costs more than an add. Read them with bench/engine.py's rates.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bulk import SINK_KINDS, Sink  # noqa: E402

SCENARIO = r"""
import asyncio, sys
import mailwright
from mailwright import EmailMessage
from mailwright.message import Envelope

count, kind, port = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
TEXT = "Hello,\n\nthis is a short plain-text message from the benchmark.\n"


def messages():
    return [
        EmailMessage(f"Message {i}", TEXT, "bench@example.com", [f"user{i}@example.com"])
        for i in range(count)
    ]


class Composed(EmailMessage):
    # A message whose envelope is ready: what is left is the send side.

    def __init__(self, envelope):
        self.ready = envelope

    def envelope(self, dkim=None):
        return self.ready


def composed(first=0):
    data = EmailMessage("Message", TEXT, "bench@example.com", ["user@example.com"]).envelope().data
    return [
        Composed(Envelope("bench@example.com", [f"user{i}@example.com"], data, False))
        for i in range(first, first + count)
    ]


# Warm every code path once, outside what the two runs differ by.
warm = EmailMessage("warm", TEXT, "bench@example.com", ["warm@example.com"])
if kind == "prep":
    composed()
elif kind == "sync-send":
    with mailwright.get_connection(host="127.0.0.1", port=port) as connection:
        connection.send_messages([warm])
        connection.send_messages(composed())
elif kind == "async-send":
    async def main():
        await mailwright.asend_bulk([warm], connections=1, host="127.0.0.1", port=port)
        result = await mailwright.asend_bulk(composed(), connections=1, host="127.0.0.1", port=port)
        assert result.ok, result
    asyncio.run(main())
elif kind in ("engine", "engine-prep"):
    import socket

    from mailwright.smtp import SMTPConfig, SMTPConnection

    EHLO = b"250-sink\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250 8BITMIME\r\n"
    FIRST = b"250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n"
    QUEUED = b"250 2.0.0 Ok: queued\r\n"

    class Answering:
        # Each write gets its replies at once: a group (MAIL, RCPT, DATA), the end of
        # data and the next group, the last end of data, QUIT.
        def __init__(self, *args, **kwargs):
            self.due = [b"220 sink ESMTP\r\n"]

        def sendall(self, data):
            if data.startswith(b"EHLO"):
                self.due.append(EHLO)
            elif data.startswith(b"MAIL"):
                self.due.append(FIRST)
            elif data.startswith(b"QUIT"):
                self.due.append(b"221 bye\r\n")
            elif b"\r\nMAIL FROM:" in data:
                self.due.append(QUEUED + FIRST)
            else:
                self.due.append(QUEUED)

        def recv(self, size, flags=0):
            return self.due.pop(0) if self.due else b""

        def recv_into(self, buffer, nbytes=0, flags=0):
            data = self.recv(len(buffer))
            buffer[: len(data)] = data
            return len(data)

        def settimeout(self, timeout):
            pass

        def setsockopt(self, *args):
            pass

        def close(self):
            pass

    socket.create_connection = Answering
    connection = SMTPConnection(SMTPConfig(host="127.0.0.1", port=port))
    connection.connect()
    list(connection.send([(0, warm.envelope())]))
    items = [(index, message.ready) for index, message in enumerate(composed())]
    if kind == "engine":
        for outcome in connection.send(items):
            assert outcome.error is None
    connection.quit()
elif kind == "async8":
    async def main():
        await mailwright.asend_bulk([warm], connections=1, host="127.0.0.1", port=port)
        result = await mailwright.asend_bulk(messages(), connections=8, host="127.0.0.1", port=port)
        assert result.ok, result
    asyncio.run(main())
elif kind == "raw8":
    # The reference: bench/engine.py's buffered raw client, the same message's bytes
    # pipelined over eight connections, nothing built or checked.
    sys.path.insert(0, "@BENCH@")
    from engine import raw_buffered_client

    data = EmailMessage("Message", TEXT, "bench@example.com", ["user@example.com"]).as_bytes()
    asyncio.run(raw_buffered_client(port, [data] * count, 8))
elif kind == "bulk8":
    mailwright.send_bulk([warm], connections=1, host="127.0.0.1", port=port)
    result = mailwright.send_bulk(messages(), connections=8, host="127.0.0.1", port=port)
    assert result.ok, result
elif kind == "build":
    warm.envelope()
    for message in messages():
        message.envelope()
elif kind == "batch":
    from mailwright.message.message import batch_settings

    with batch_settings():
        warm.envelope()
        for message in messages():
            message.envelope()
elif kind == "sync":
    with mailwright.get_connection(host="127.0.0.1", port=port) as connection:
        connection.send_messages([warm])
        connection.send_messages(messages())
elif kind == "async":
    async def main():
        await mailwright.asend_bulk([warm], connections=1, host="127.0.0.1", port=port)
        await mailwright.asend_bulk(messages(), connections=1, host="127.0.0.1", port=port)
    asyncio.run(main())
"""


SCENARIOS = (
    "build",
    "batch",
    "sync",
    "async",
    "async8",
    "bulk8",
    "sync-send",
    "async-send",
    "engine",
    "raw8",
)


def instructions(argv: list[str]) -> int:
    # A fixed hash seed: with a random one, string hashes, and so the probing of every
    # dict and set, differ from run to run, and the count per message moved by about
    # 1,500 between two runs of the same code.
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    with tempfile.TemporaryDirectory() as directory:
        out = os.path.join(directory, "callgrind.out")
        subprocess.run(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", *argv],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        text = Path(out).read_text()
    match = re.search(r"^(?:summary|totals): (\d+)", text, re.M)
    if match is None:
        raise RuntimeError("callgrind wrote no total")
    return int(match.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=200)
    parser.add_argument("--large", type=int, default=1200)
    parser.add_argument("--sink", default="auto", choices=SINK_KINDS)
    parser.add_argument("--only", default="", help="comma-separated scenarios (default: all)")
    args = parser.parse_args()
    kinds = [kind for kind in args.only.split(",") if kind] or list(SCENARIOS)
    unknown = sorted(set(kinds) - set(SCENARIOS) - {"import"})
    if unknown:
        parser.error(f"unknown scenarios {unknown}; choose from {['import', *SCENARIOS]}")
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is not installed (Debian: apt-get install valgrind)")
    python = sys.executable
    if "import" in kinds or not args.only:
        bare = instructions([python, "-c", "pass"])
        imported = instructions([python, "-c", "import mailwright"])
        over = imported - bare
        print(f"{'import mailwright':10} {over:>12,} instructions over a bare interpreter")
    sink = Sink(args.sink)
    try:
        with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as script:
            script.write(SCENARIO.replace("@BENCH@", str(HERE)))

        def per_message(kind: str) -> float:
            small, large = (
                instructions([python, script.name, str(n), kind, str(sink.port)])
                for n in (args.small, args.large)
            )
            return (large - small) / (args.large - args.small)

        prep = None
        costs: dict[str, float] = {}
        for kind in SCENARIOS:
            if kind not in kinds:
                continue
            cost = per_message(kind)
            if kind.endswith("-send"):
                prep = per_message("prep") if prep is None else prep
                cost -= prep
            elif kind == "engine":
                cost -= per_message("engine-prep")
            costs[kind] = cost
            print(f"{kind:10} {cost:>12,.0f} instructions per message")
        if "raw8" in costs:
            compared = [kind for kind in ("sync", "async", "async8", "bulk8") if kind in costs]
            for kind in compared:
                print(f"{kind:10} {costs[kind] / costs['raw8']:>12.2f}x the raw client's")
    finally:
        os.unlink(script.name)
        sink.stop()


if __name__ == "__main__":
    main()
