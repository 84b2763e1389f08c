"""Start-up cost: ``import mailwright`` and the quick commands, against a bare interpreter.

    python bench/startup.py [--repeat 20]

Each row is the best wall time of ``--repeat`` fresh interpreters (``sys.executable``),
and the difference from a bare ``python -c pass`` measured in the same run. The import
row also gives what ``-X importtime`` counts for the ``mailwright`` package itself.
Goals (issue 20): ``import mailwright`` at most 30 ms over bare; ``mailwright --help``
and ``mailwright queue status`` under 100 ms.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

BUILD = "import mailwright; mailwright.EmailMessage('s', 'b', 'a@x.org', ['b@x.org']).message()"


def best_wall(argv: list[str], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        best = min(best, time.perf_counter() - start)
    return best


def importtime_us(repeat: int) -> int:
    """The least cumulative microseconds ``-X importtime`` gives the mailwright package."""
    best = sys.maxsize
    for _ in range(repeat):
        result = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", "import mailwright"],
            check=True,
            capture_output=True,
            text=True,
        )
        for line in result.stderr.splitlines():
            fields = [field.strip() for field in line.split("|")]
            if len(fields) == 3 and fields[2] == "mailwright":
                best = min(best, int(fields[1]))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    # As installed, a package runs from its byte-compiled files: with
    # PYTHONDONTWRITEBYTECODE set (some containers set it) every process would compile
    # every module again, which is not what a user's start-up costs. The first run of
    # each row writes the files; the best of the runs is reported.
    if os.environ.pop("PYTHONDONTWRITEBYTECODE", None):
        print("(PYTHONDONTWRITEBYTECODE was set: unset for these runs)")
    python = sys.executable
    # The console script, as a user runs it (python -m adds runpy's own imports).
    script = shutil.which("mailwright", path=os.path.dirname(python))
    command = [script] if script else [python, "-m", "mailwright"]
    with tempfile.TemporaryDirectory() as directory:
        outbox = os.path.join(directory, "outbox.sqlite3")
        subprocess.run(
            [python, "-c", f"from mailwright.queue import Outbox; Outbox({outbox!r}).close()"],
            check=True,
        )
        bare = best_wall([python, "-c", "pass"], args.repeat)
        rows = [
            ("import mailwright", [python, "-c", "import mailwright"]),
            ("mailwright --help", [*command, "--help"]),
            (
                "mailwright queue status",
                [*command, "queue", "status", "--path", outbox],
            ),
            ("import + a message built", [python, "-c", BUILD]),
        ]
        print(f"{'bare interpreter':32} {bare * 1000:7.1f} ms")
        for label, argv in rows:
            wall = best_wall(argv, args.repeat)
            print(f"{label:32} {wall * 1000:7.1f} ms   (+{(wall - bare) * 1000:.1f} ms over bare)")
    print(f"-X importtime, package mailwright: {importtime_us(args.repeat) / 1000:.1f} ms")


if __name__ == "__main__":
    main()
