"""Run ``mailwright`` commands as subprocesses, the way a user does."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping

ENV_NAMES = (
    "EMAIL_",
    "DEFAULT_FROM_EMAIL",
    "SERVER_EMAIL",
    "ADMINS",
    "MANAGERS",
    "DEFAULT_CHARSET",
    "MAILERS",
)


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(ENV_NAMES)}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


def run_cli(
    *args: str, env: Mapping[str, str] | None = None, stdin: str | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mailwright", *args],
        capture_output=True,
        text=True,
        env=clean_env(env),
        input=stdin,
        timeout=timeout,
    )


class Catcher:
    """``mailwright smtpd`` in a subprocess on free ports; its output is collected."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mailwright", "smtpd", "--port", "0", "--web-port", "0", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=clean_env(),
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.output: list[str] = []
        threading.Thread(target=self._pump, daemon=True).start()
        self.smtp_port = int(self.wait_for(r"SMTP server on [\d.]+:(\d+)")[1])
        web = self.wait_for(r"web inbox: (http://\S+)") if "--no-web" not in args else None
        self.inbox_url = web[1] if web else None

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))

    def wait_for(self, pattern: str, timeout: float = 15) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        regex = re.compile(pattern)
        for line in self.output:
            match = regex.search(line)
            if match:
                return match
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.1)
            except queue.Empty:
                if self.proc.poll() is not None and self.lines.empty():
                    break
                continue
            self.output.append(line)
            match = regex.search(line)
            if match:
                return match
        stderr = (
            self.proc.stderr.read() if self.proc.poll() is not None and self.proc.stderr else ""
        )
        raise AssertionError(f"no line matching {pattern!r}; output: {self.output!r} {stderr}")

    def interrupt(self, timeout: float = 15) -> int:
        self.proc.send_signal(signal.SIGINT)
        return self.proc.wait(timeout)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()
