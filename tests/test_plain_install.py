"""A plain ``pip install mailwright`` (no extras) in a fresh virtual environment: the
catcher and the demo work, the web inbox is skipped with a one-line note.

Needs the package index for the runtime dependencies (and setuptools to build), as any
user's install does."""

from __future__ import annotations

import queue
import shutil
import signal
import smtplib
import socket
import subprocess
import threading
import time
import venv
from pathlib import Path

import pytest

from processes import clean_env

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def plain_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("plain")
    source = base / "mailwright"
    source.mkdir()
    # Copy what a source distribution holds, not the developer's .venv or build files.
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(
        ROOT / "src",
        source / "src",
        ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "*.pyc"),
    )
    env_dir = base / "venv"
    venv.create(env_dir, with_pip=True)
    result = subprocess.run(
        [str(env_dir / "bin" / "python"), "-m", "pip", "install", "--quiet", str(source)],
        capture_output=True,
        text=True,
        timeout=600,
        env=clean_env(),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return env_dir


def run(env_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(env_dir / "bin" / "mailwright"), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=clean_env(),
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.mark.timeout(900)
def test_plain_install_has_no_extras(plain_venv: Path) -> None:
    probe = subprocess.run(
        [
            str(plain_venv / "bin" / "python"),
            "-c",
            "import importlib.util as u; "
            "print([m for m in ('aiohttp', 'cryptography', 'aiosmtpd') if u.find_spec(m)]); "
            "from mailwright.devserver import DevServer; print(DevServer.__name__)",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.split() == ["[]", "DevServer"]


@pytest.mark.timeout(300)
def test_plain_install_runs_the_demo(plain_venv: Path) -> None:
    result = run(plain_venv, "demo")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "sent 3 messages through the SMTP backend; 3 arrived" in result.stdout
    assert "Subject: Welcome to mailwright" in result.stdout
    notes = [line for line in result.stdout.splitlines() if "aiohttp" in line]
    assert notes == [
        "note: the web inbox needs aiohttp, not installed: pip install 'mailwright[devserver]' "
        "(running without the inbox)"
    ]


@pytest.mark.timeout(300)
def test_plain_install_runs_smtpd_and_receives(plain_venv: Path) -> None:
    port = free_port()
    process = subprocess.Popen(
        [str(plain_venv / "bin" / "mailwright"), "smtpd", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=clean_env(),
    )
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line.rstrip("\n"))

    threading.Thread(target=pump, daemon=True).start()
    seen: list[str] = []

    def wait_for(text: str) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                line = lines.get(timeout=1)
            except queue.Empty:
                assert process.poll() is None, (seen, process.stderr and process.stderr.read())
                continue
            seen.append(line)
            if text in line:
                return
        raise AssertionError(f"{text!r} not in {seen}")

    try:
        wait_for(f"SMTP server on 127.0.0.1:{port}")
        wait_for("note: the web inbox needs aiohttp")
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
            client.login("any", "thing")
            client.sendmail(
                "a@example.com", ["b@example.com"], b"Subject: plain install\r\n\r\nhello\r\n"
            )
        wait_for("Subject: plain install")
        wait_for("hello")
        process.send_signal(signal.SIGINT)
        assert process.wait(30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
    # --tls without cryptography says in one line how to get it
    result = run(plain_venv, "smtpd", "--port", "0", "--tls")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "mailwright smtpd: error: --tls needs the cryptography package to make a "
        "certificate: pip install 'mailwright[devserver]' (or give --tls-cert and --tls-key)"
    ]


@pytest.mark.timeout(300)
def test_plain_install_template_commands_say_which_extra(plain_venv: Path, tmp_path: Path) -> None:
    (tmp_path / "hi.html").write_text("{% block subject %}Hi{% endblock %}")
    result = run(plain_venv, "render", "hi.html", "--template-dir", str(tmp_path))
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "mailwright render: error: template messages need Jinja2: "
        "pip install 'mailwright[templates]'"
    ]
    probe = subprocess.run(
        [
            str(plain_venv / "bin" / "python"),
            "-c",
            "import mailwright\n"
            "try:\n    mailwright.html_to_text('<p>x</p>')\n"
            "except ImportError as exc:\n    print(exc)",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (
        probe.stdout.strip() == "html_to_text needs inscriptis: pip install 'mailwright[templates]'"
    )
