"""``mailwright worker``: deliver the durable outbox (EMAIL_QUEUE_PATH).

One process with ``--connections`` SMTP connections; ``--processes N`` (also spelt
``--concurrency N``) runs N such processes (the client's work is CPU-bound in Python,
so more cores need more processes) and passes signals on to them.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from types import FrameType

from .common import EXIT_FAILED, EXIT_OK, fail, positive_float, positive_int

__all__ = ["register"]


# The modules a run needs are imported by the run, not by ``mailwright --help``.


def _configure_logging(args: argparse.Namespace) -> None:
    import logging

    level = logging.DEBUG if args.verbose else logging.WARNING if args.quiet else logging.INFO
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        logging.Formatter("%(asctime)s mailwright worker[%(process)d] %(levelname)s %(message)s")
    )
    logger = logging.getLogger("mailwright.queue")
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False


def _cmd_worker(args: argparse.Namespace) -> int:
    if args.processes > 1:
        return _supervise(args)
    from ..exceptions import ImproperlyConfigured
    from ..queue import OutboxError, Worker

    _configure_logging(args)
    try:
        path = args.path if args.mailer is None else _mailer_outbox(args)
        worker = Worker(
            path,
            connections=args.connections,
            batch=args.batch,
            rate=args.rate,
            once=args.once,
        )
        stats = worker.run()
    except (ImproperlyConfigured, OutboxError) as exc:
        return fail("worker", str(exc))
    if args.json:
        import json

        print(json.dumps(stats.to_dict()), flush=True)
    return EXIT_OK


def _mailer_outbox(args: argparse.Namespace) -> str:
    """The outbox of the queue mailer ``--mailer`` names."""
    from ..backends.mailers import mailers
    from ..backends.queue import EmailBackend as QueueBackend
    from ..exceptions import ImproperlyConfigured, InvalidMailer

    if args.path is not None:
        raise ImproperlyConfigured("give --path or --mailer, not both")
    backend = mailers[args.mailer]
    if not isinstance(backend, QueueBackend):
        kind = type(backend)
        raise InvalidMailer(
            f"not a queue mailer ({kind.__module__}.{kind.__qualname__}); --mailer names "
            "the queue mailer whose outbox the worker delivers",
            alias=args.mailer,
        )
    return backend.path


def _child_command(args: argparse.Namespace) -> list[str]:
    command = [sys.executable, "-m", "mailwright", "worker", "--processes", "1"]
    command += ["--connections", str(args.connections), "--batch", str(args.batch)]
    if args.rate is not None:  # the rate is for all processes together
        command += ["--rate", repr(args.rate / args.processes)]
    if args.path is not None:
        command += ["--path", args.path]
    if args.mailer is not None:
        command += ["--mailer", args.mailer]
    for flag in ("once", "json", "quiet", "verbose"):
        if getattr(args, flag):
            command.append(f"--{flag}")
    return command


def _supervise(args: argparse.Namespace) -> int:
    """Run ``--processes`` worker processes; pass SIGTERM/SIGINT on; when one fails,
    stop the others (a service manager then restarts the whole)."""
    import json
    import operator
    import queue
    import signal
    import subprocess
    import threading

    command = _child_command(args)
    children = [
        subprocess.Popen(command, stdout=subprocess.PIPE if args.json else None)
        for _ in range(args.processes)
    ]
    # One thread per child waits for it to end (and, with --json, reads what it
    # prints, so a full pipe never blocks it): the supervisor wakes when a child
    # ends, not on a timer.
    ended: queue.SimpleQueue[subprocess.Popen[bytes]] = queue.SimpleQueue()
    printed: dict[int, bytes] = {}

    def watch(child: subprocess.Popen[bytes]) -> None:
        if child.stdout is not None:
            printed[child.pid] = child.stdout.read()
            child.stdout.close()
        child.wait()
        ended.put(child)

    for child in children:
        threading.Thread(target=watch, args=(child,), daemon=True).start()

    def forward(number: int, frame: FrameType | None) -> None:
        for child in children:
            if child.poll() is None:
                child.send_signal(number)

    previous = {
        number: signal.signal(number, forward) for number in (signal.SIGTERM, signal.SIGINT)
    }
    status = EXIT_OK
    try:
        for _ in children:
            while True:
                try:  # a timeout, so that signals are handled while waiting
                    child = ended.get(timeout=1.0)
                    break
                except queue.Empty:
                    continue
            if child.returncode != 0 and status == EXIT_OK:
                status = EXIT_FAILED
                forward(signal.SIGTERM, None)
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
    if any(child.returncode != 0 for child in children):
        status = EXIT_FAILED
    if args.json:
        totals: dict[str, Any] = {}
        each: list[dict[str, Any]] = []
        for child in children:
            lines = printed.get(child.pid, b"").decode().splitlines()
            stats = json.loads(lines[-1]) if lines else {}
            each.append(stats)
            for key, value in stats.items():
                combine = max if key == "elapsed" else operator.add
                totals[key] = combine(totals.get(key, 0), value)
        totals["processes"] = each
        print(json.dumps(totals), flush=True)
    return status


def register(commands: Any) -> None:
    worker = commands.add_parser(
        "worker",
        help="deliver the durable outbox (EMAIL_QUEUE_PATH)",
        description="Deliver the messages the queue backend stored in the outbox "
        "(EMAIL_QUEUE_PATH, or the queue mailer --mailer names), each through the mailer "
        "its queue backend's relay option named, else EMAIL_QUEUE_RELAY_BACKEND (SMTP by "
        "default), retrying "
        "temporary failures until EMAIL_QUEUE_MAX_AGE. Runs until SIGTERM or Ctrl-C "
        "(it finishes the batches in progress; a second signal stops it at once). "
        "Several workers may share one outbox.",
    )
    worker.add_argument("--once", action="store_true", help="deliver what is due, then exit")
    worker.add_argument(
        "--connections",
        type=positive_int(),
        default=1,
        metavar="N",
        help="parallel SMTP connections per process (default 1)",
    )
    worker.add_argument(
        "--processes",
        "--concurrency",
        dest="processes",
        type=positive_int(),
        default=1,
        metavar="N",
        help="worker processes, each with --connections connections (default 1)",
    )
    worker.add_argument(
        "--rate",
        type=positive_float,
        metavar="R",
        help="send at most R messages per second in all",
    )
    worker.add_argument(
        "--batch",
        type=positive_int(),
        default=100,
        metavar="N",
        help="messages per claim and per pipelined batch (default 100); a crash can "
        "send at most this many twice per connection",
    )
    worker.add_argument("--path", metavar="FILE", help="the outbox (default EMAIL_QUEUE_PATH)")
    worker.add_argument(
        "--mailer",
        metavar="ALIAS",
        help="deliver the outbox of this queue mailer (MAILERS; its 'path' option)",
    )
    worker.add_argument("--json", action="store_true", help="print a JSON summary on exit")
    noise = worker.add_mutually_exclusive_group()
    noise.add_argument("-q", "--quiet", action="store_true", help="log only failures")
    noise.add_argument("-v", "--verbose", action="store_true", help="log more")
    worker.set_defaults(handler=_cmd_worker)
