"""Helpers for the Celery tests: a real Redis, real ``celery worker`` processes, and an
SMTP test server that can fail or hold chosen messages.

Redis: ``MAILWRIGHT_REDIS_URL`` when set (``.ci/run`` starts one and sets it); else a
``redis-server`` started here on a free port when the binary exists; else the tests
skip with the reason, except with ``MAILWRIGHT_REQUIRE_REDIS=1`` (CI), where they fail.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Mapping
from pathlib import Path

from processes import clean_env
from smtpserver import SMTPTestServer, _Handler

TESTS = Path(__file__).resolve().parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def redis_answers(url: str) -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_timeout=2).ping())
    except redis.RedisError:
        return False


_next_database = 0


def fresh_database(url: str) -> str:
    """``url`` on a Redis database of this test's own, emptied first.

    Tests in one process take the server's databases in turn (0 is left alone). Under
    pytest-xdist each worker has a share of its own, so that tests running at the same
    time in two workers never empty or read each other's database."""
    import redis

    global _next_database
    base = url.rstrip("/")
    if base.rsplit("/", 1)[-1].isdigit() and base.count("/") > 2:
        base = base.rsplit("/", 1)[0]
    try:
        databases = int(redis.Redis.from_url(base).config_get("databases")["databases"])
    except (redis.RedisError, KeyError, ValueError):
        databases = 16  # the server's default, when CONFIG is not allowed
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    worker = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw"))
    share = (databases - 1) // workers
    if share < 1:
        raise RuntimeError(f"Redis at {base}: {databases} databases, too few for {workers} workers")
    number = 1 + worker * share + _next_database % share
    _next_database += 1
    broker = f"{base}/{number}"
    redis.Redis.from_url(broker).flushdb()
    return broker


class RedisServer:
    """``redis-server`` on 127.0.0.1, a free port, no persistence; for local runs."""

    def __init__(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise FileNotFoundError("redis-server")
        self.port = free_port()
        self.dir = tempfile.TemporaryDirectory(prefix="mailwright-redis-")
        self.process = subprocess.Popen(
            [binary, "--bind", "127.0.0.1", "--port", str(self.port), "--save", "",
             "--appendonly", "no", "--dir", self.dir.name],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        self.url = f"redis://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 10
        while not redis_answers(self.url):
            if time.monotonic() > deadline or self.process.poll() is not None:
                self.stop()
                raise RuntimeError("redis-server did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        self.dir.cleanup()


class Worker:
    """A real ``celery -A celeryapp worker`` (prefork pool) in its own session, with
    the given environment; its log lines are collected as they come."""

    def __init__(
        self,
        broker: str,
        queue_name: str,
        env: Mapping[str, str],
        *,
        processes: int = 2,
        visibility_timeout: float = 3600,
        name: str = "w1",
    ) -> None:
        environment = clean_env(
            {
                **env,
                "MAILWRIGHT_CELERY_BROKER": broker,
                "MAILWRIGHT_CELERY_VISIBILITY": str(visibility_timeout),
                "PYTHONPATH": os.pathsep.join(
                    filter(None, [str(TESTS), os.environ.get("PYTHONPATH")])
                ),
            }
        )
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "celeryapp", "worker",
             "--pool", "prefork", "--concurrency", str(processes), "--queues", queue_name,
             "--loglevel", "INFO", "--hostname", f"{name}@%h",
             "--without-gossip", "--without-mingle", "--without-heartbeat"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=environment,
            cwd=TESTS,
            start_new_session=True,
        )  # fmt: skip
        self.lines: list[str] = []
        self._new: queue.Queue[str] = queue.Queue()
        self._lock = threading.Lock()
        threading.Thread(target=self._pump, daemon=True).start()
        self.wait_for(r"\bready\.", timeout=60)

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._lock:
                self.lines.append(line.rstrip("\n"))

    def matches(self, pattern: str) -> list[re.Match[str]]:
        regex = re.compile(pattern)
        with self._lock:
            lines = list(self.lines)
        return [m for m in map(regex.search, lines) if m]

    def wait_for(self, pattern: str, count: int = 1, timeout: float = 60) -> list[re.Match[str]]:
        """The log lines matching ``pattern`` once there are ``count`` of them."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.matches(pattern)
            if len(found) >= count:
                return found
            if time.monotonic() > deadline or self.proc.poll() is not None:
                tail = "\n".join(self.lines[-40:])
                raise AssertionError(
                    f"worker log: {len(found)} of {count} lines matching {pattern!r}\n{tail}"
                )
            time.sleep(0.02)

    def finished_tasks(self) -> set[str]:
        """Ids of the tasks that ended (delivered, gave up or rejected) for good."""
        done = self.matches(r"deliver_messages\[([0-9a-f-]+)\] (?:succeeded|reject requeue=False)")
        return {match[1] for match in done}

    def wait_finished(self, tasks: int, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while len(self.finished_tasks()) < tasks:
            if time.monotonic() > deadline or self.proc.poll() is not None:
                tail = "\n".join(self.lines[-40:])
                raise AssertionError(f"{len(self.finished_tasks())} of {tasks} tasks ended\n{tail}")
            time.sleep(0.02)

    def pool_pids(self) -> list[int]:
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text()
        return [int(pid) for pid in children.split()]

    def kill_everything(self) -> None:
        """``kill -9`` the whole worker: the main process and its pool at once."""
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()  # warm shutdown: finish what runs
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(30)
        if self.proc.poll() is None or _group_alive(self.proc.pid):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def pid_with_connection(pids: list[int], local_port: int) -> int | None:
    """Which of ``pids`` owns the TCP socket bound to 127.0.0.1:``local_port``."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except FileNotFoundError:
            continue
        for row in rows:
            fields = row.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == local_port:
                inodes.add(f"socket:[{fields[9]}]")
    for pid in pids:
        try:
            fds = list(Path(f"/proc/{pid}/fd").iterdir())
        except FileNotFoundError:
            continue
        for fd in fds:
            try:
                if os.readlink(fd) in inodes:
                    return pid
            except OSError:
                continue
    return None


# --- an SMTP server that fails or holds chosen messages ---

_MARK = re.compile(rb"^X-Test: (\w+)", re.MULTILINE)
_ID = re.compile(rb"^Message-ID: (<[^>]+>)", re.MULTILINE)


class ChaosHandler(_Handler):
    """Answers by a message's ``X-Test`` header: ``tempfail`` gets 451 on its first
    attempt, ``hold`` makes the first attempt wait until the test releases it; the
    recipient ``busy@...`` always gets 450. Counts attempts per Message-ID and
    recipient."""

    server: ChaosServer

    async def handle_RCPT(self, smtp, session, envelope, address, rcpt_options):  # type: ignore[no-untyped-def]
        self.server.rcpt_attempts[address] += 1
        if address.startswith("busy@"):
            return "450 4.2.1 mailbox busy, try again later"
        return await super().handle_RCPT(smtp, session, envelope, address, rcpt_options)

    async def handle_DATA(self, smtp, session, envelope):  # type: ignore[no-untyped-def]
        server = self.server
        content = bytes(envelope.original_content or b"")
        found = _ID.search(content)
        message_id = found[1].decode() if found else ""
        server.attempts[message_id] += 1
        mark = _MARK.search(content)
        kind = mark[1].decode() if mark else ""
        if kind == "tempfail" and server.attempts[message_id] == 1:
            return "451 4.3.0 temporary local problem, try again"
        if kind == "hold" and not server.held.is_set():
            server.held_peer = session.peer
            server.held.set()
            while not server.release.is_set():
                await asyncio.sleep(0.01)
            if smtp.transport is None or smtp.transport.is_closing():
                return "421 4.4.2 the client went away"
        return await super().handle_DATA(smtp, session, envelope)


class ChaosServer(SMTPTestServer):
    handler_class = ChaosHandler

    def __init__(self, **options: object) -> None:
        from smtpserver import ServerOptions

        super().__init__(ServerOptions(**options))  # type: ignore[arg-type]
        self.attempts: Counter[str] = Counter()
        self.rcpt_attempts: Counter[str] = Counter()
        self.held = threading.Event()
        self.release = threading.Event()
        self.held_peer: tuple[str, int] | None = None

    def stop(self) -> None:
        self.release.set()  # a held reply must not keep the server from stopping
        super().stop()

    def received_ids(self) -> Counter[str]:
        ids: Counter[str] = Counter()
        for received in list(self.messages):
            found = _ID.search(received.data)
            ids[found[1].decode() if found else ""] += 1
        return ids
