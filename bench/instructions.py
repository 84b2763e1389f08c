"""Instructions per message, counted by callgrind: deterministic on a noisy machine.

    python bench/instructions.py [--small 200] [--large 1200] [--only build,sync]

Each scenario runs twice under ``valgrind --tool=callgrind`` (Debian ``valgrind``), once
with ``--small`` and once with ``--large`` messages; the difference divided by the
difference in messages is the cost of one message, without the interpreter's start-up
and the imports. Scenarios (a plain message, built inside the count):

* ``build``: ``EmailMessage(...)`` and its wire bytes (``message.envelope()``), no I/O;
* ``batch``: the same inside ``batch_settings()``, as a batch send composes (the two
  settings every composition reads are read once); only with ``--only``;
* ``sync``: ``send_messages`` over one connection to a sink (smtp-sink when installed,
  else ``bench/_sink.py``; the sink runs outside valgrind);
* ``async``: ``asend_bulk(connections=1)`` to the same sink;
* ``import``: ``import mailwright`` against a bare interpreter (one run each).

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

from bulk import Sink  # noqa: E402

SCENARIO = r"""
import asyncio, sys
import mailwright
from mailwright import EmailMessage

count, kind, port = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
TEXT = "Hello,\n\nthis is a short plain-text message from the benchmark.\n"


def messages():
    return [
        EmailMessage(f"Message {i}", TEXT, "bench@example.com", [f"user{i}@example.com"])
        for i in range(count)
    ]


# Warm every code path once, outside what the two runs differ by.
warm = EmailMessage("warm", TEXT, "bench@example.com", ["warm@example.com"])
if kind == "build":
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


def instructions(argv: list[str]) -> int:
    with tempfile.TemporaryDirectory() as directory:
        out = os.path.join(directory, "callgrind.out")
        subprocess.run(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", *argv],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
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
    parser.add_argument("--sink", default="auto", choices=["auto", "smtp-sink", "aiosmtpd"])
    parser.add_argument(
        "--only",
        default="import,build,sync,async",
        help="comma-separated scenarios to run (default: import,build,sync,async; "
        "batch runs only when named)",
    )
    args = parser.parse_args()
    only = {name.strip() for name in args.only.split(",") if name.strip()}
    unknown = only - {"import", "build", "batch", "sync", "async"}
    if unknown:
        parser.error(f"unknown scenario(s): {', '.join(sorted(unknown))}")
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is not installed (Debian: apt-get install valgrind)")
    python = sys.executable
    if "import" in only:
        bare = instructions([python, "-c", "pass"])
        imported = instructions([python, "-c", "import mailwright"])
        over = imported - bare
        print(f"{'import mailwright':10} {over:>12,} instructions over a bare interpreter")
    kinds = [kind for kind in ("build", "batch", "sync", "async") if kind in only]
    if not kinds:
        return
    sink = Sink(args.sink)
    try:
        with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as script:
            script.write(SCENARIO)
        for kind in kinds:
            small, large = (
                instructions([python, script.name, str(n), kind, str(sink.port)])
                for n in (args.small, args.large)
            )
            per_message = (large - small) / (args.large - args.small)
            print(f"{kind:10} {per_message:>12,.0f} instructions per message")
    finally:
        os.unlink(script.name)
        sink.stop()


if __name__ == "__main__":
    main()
