"""What ``mailwright send`` and ``check`` tell a newcomer: ``--url``, backends that are not
SMTP, TLS mistakes and their fix, files that cannot be used, and the help of every
option. Run in-process (``mailwright.cli.main``) for speed; ``test_cli.py`` runs the
commands as subprocesses."""

from __future__ import annotations

import argparse
import io
import os
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from certs import CertFiles
from conftest import ServerFactory
from mailwright.cli import build_parser, main
from smtpserver import SMTPTestServer

SEND = ("send", "--to", "a@example.com", "--subject", "Hi", "--body", "Hello")


def run(
    capsys: pytest.CaptureFixture[str], *argv: str, env: dict[str, str] | None = None
) -> tuple[int, str, str]:
    saved = {name: os.environ.get(name) for name in env or {}}
    os.environ.update(env or {})
    try:
        code = main(list(argv))
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    out, err = capsys.readouterr()
    return code, out, err


def error_line(code: int, err: str) -> str:
    assert code != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- --url ---


def test_url_replaces_the_environment(
    smtp_server: SMTPTestServer, capsys: pytest.CaptureFixture[str]
) -> None:
    env = {
        "EMAIL_URL": f"smtp://127.0.0.1:{closed_port()}",
        "EMAIL_HOST_USER": "left-over-user",  # the URL names no user: no login
    }
    url = f"smtp://127.0.0.1:{smtp_server.port}"
    code, out, err = run(capsys, "check", "--url", url, env=env)
    assert code == 0, err
    assert f"connect   127.0.0.1:{smtp_server.port} ok" in out
    assert "auth      skipped" in out
    code, out, err = run(capsys, *SEND, "--url", url, env=env)
    assert code == 0, err
    assert out == "sent to 1 recipient\n"
    (received,) = smtp_server.messages
    assert received.rcpt_tos == ["a@example.com"]


def test_bad_url_is_one_line_without_the_password(capsys: pytest.CaptureFixture[str]) -> None:
    for command in (["check"], list(SEND)):
        code, _, err = run(capsys, *command, "--url", "smpt://me:s3cret@host")
        line = error_line(code, err)
        assert "--url smpt://***@host" in line and "unknown scheme" in line
        assert "s3cret" not in err and "me:" not in err


@pytest.mark.parametrize(
    "url",
    [
        "smtp://qzuser:Sup3r#S3cretPw@127.0.0.1:1",  # '#' ends the authority early
        "smtp://qzuser:Sup3r/S3cretPw@127.0.0.1:1",  # '/' too
        "smtp://qzuser:4242#S3cretPw@127.0.0.1:1",  # parses as host 'qzuser', port 4242
        "smtp://qzuser:Sup3r[S3cretPw@127.0.0.1:1",
    ],
)
def test_a_password_with_unencoded_delimiters_is_never_shown(
    url: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # From the environment, as a deployment sets it: send, check and the worker.
    env = {"EMAIL_URL": url, "EMAIL_QUEUE_PATH": str(tmp_path / "o.sqlite3")}
    for command in (["check"], list(SEND), ["worker", "--once"]):
        code, out, err = run(capsys, *command, env=env)
        assert code != 0, command
        assert "S3cretPw" not in out + err and "qzuser" not in out + err, command
        assert "percent-encode" in err, command


# --- backends that are not SMTP ---


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("console:", "the console backend (mailwright.backends.console.EmailBackend) writes"),
        ("locmem:", "the locmem backend (mailwright.backends.locmem.EmailBackend) keeps"),
        ("dummy:", "the dummy backend (mailwright.backends.dummy.EmailBackend) discards"),
        ("file:///{tmp}", "the file backend (mailwright.backends.filebased.EmailBackend) writes"),
    ],
)
def test_check_with_a_backend_that_is_not_smtp(
    url: str,
    says: str,
    start_server: ServerFactory,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """EMAIL_HOST and EMAIL_PORT point at a listening server: check says what the
    backend does and connects to nothing."""
    server = start_server()
    env = {"EMAIL_URL": url.format(tmp=tmp_path), "EMAIL_HOST": "127.0.0.1"}
    code, out, err = run(capsys, "check", env={**env, "EMAIL_PORT": str(server.port)})
    assert code == 0, err
    assert out.startswith(f"nothing to check: {says}")
    assert "connects to no server" in out and "smtp://HOST:PORT" in out
    assert server.connections == 0


def test_check_and_send_with_the_queue_backend(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    outbox = tmp_path / "outbox.sqlite3"
    env = {"EMAIL_BACKEND": "queue", "EMAIL_QUEUE_PATH": str(outbox)}
    code, out, err = run(capsys, "check", env=env)
    assert code == 0, err
    assert out.startswith(
        "nothing to check: the queue backend (mailwright.backends.queue.EmailBackend) "
        f"stores each message in the outbox {outbox}; `mailwright worker` delivers them "
        "with EMAIL_QUEUE_RELAY_BACKEND (mailwright.backends.smtp.EmailBackend)"
    )
    code, out, err = run(capsys, *SEND, env=env)
    assert code == 0, err
    assert out.startswith("nothing was sent to a server: the queue backend")


def test_check_with_an_unusable_file_backend_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    afile = tmp_path / "afile"
    afile.write_text("")
    code, _, err = run(capsys, "check", "--url", f"file://{afile}")
    line = error_line(code, err)
    assert "EMAIL_FILE_PATH" in line and str(afile) in line


def test_send_with_the_dummy_backend_says_nothing_was_sent(
    smtp_server: SMTPTestServer, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, *SEND, "--url", "dummy:")
    assert (code, err) == (0, "")
    assert out == (
        "nothing was sent to a server: the dummy backend "
        "(mailwright.backends.dummy.EmailBackend) discards every message\n"
    )
    assert smtp_server.connections == 0


def test_send_with_the_console_and_locmem_backends(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, *SEND, "--url", "console:")
    assert code == 0
    assert "Subject: Hi" in out  # what the console backend writes...
    assert out.endswith("writes each message to standard output\n")  # ...and what it means
    code, out, _ = run(capsys, *SEND, "--url", "locmem:")
    assert code == 0
    assert "keeps messages in memory" in out and "gone when this command ends" in out


# --- TLS mistakes name the fix ---


def test_a_bare_host_and_port_suggests_smtp_scheme(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "check", "--url", "127.0.0.1:2525")
    assert "write smtp://127.0.0.1:2525" in error_line(code, err)


def test_implicit_tls_on_a_plain_port(
    smtp_server: SMTPTestServer, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"smtps://127.0.0.1:{smtp_server.port}"
    for command in (["check"], list(SEND)):
        code, _, err = run(capsys, *command, "--url", url)
        line = error_line(code, err)
        assert "answered in plain text, not TLS" in line
        assert "STARTTLS (tls=1 / EMAIL_USE_TLS)" in line
        assert "implicit TLS (ssl=1 / EMAIL_USE_SSL) only with a port that speaks it" in line
    assert smtp_server.messages == []


def test_starttls_on_an_implicit_tls_port(
    start_server: ServerFactory, certs: CertFiles, capsys: pytest.CaptureFixture[str]
) -> None:
    server = start_server(implicit_tls=certs.server_context())
    url = f"smtp://127.0.0.1:{server.port}?tls=1&timeout=0.5&cafile={certs.ca}"
    code, _, err = run(capsys, "check", "--url", url)
    line = error_line(code, err)
    assert "waiting for the server's greeting" in line
    assert "implicit TLS, such as 465, set EMAIL_USE_SSL / ssl=1" in line


def test_starttls_not_offered(
    smtp_server: SMTPTestServer, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, *SEND, "--url", f"smtp://127.0.0.1:{smtp_server.port}?tls=1")
    line = error_line(code, err)
    assert f"127.0.0.1:{smtp_server.port} does not offer STARTTLS" in line
    assert "turn TLS off for this server" in line


def test_auth_not_offered(start_server: ServerFactory, capsys: pytest.CaptureFixture[str]) -> None:
    server = start_server(auth=("user", "pw"), auth_require_tls=True)  # AUTH after TLS only
    url = f"smtp://user:pw@127.0.0.1:{server.port}"
    code, _, err = run(capsys, "check", "--url", url)
    line = error_line(code, err)
    assert "step 'auth'" in line and "does not offer AUTH" in line
    assert "only after STARTTLS" in line


@pytest.mark.parametrize(
    ("cert", "host", "fix"),
    [
        ("server", "127.0.0.1", "point EMAIL_SSL_CAFILE (cafile=) at its certificate"),
        ("wrong-host", "localhost", "set EMAIL_HOST to a name the certificate was issued for"),
    ],
)
def test_certificate_problems_name_the_fix(
    cert: str,
    host: str,
    fix: str,
    start_server: ServerFactory,
    certs: CertFiles,
    capsys: pytest.CaptureFixture[str],
) -> None:
    server = start_server(starttls=certs.server_context(cert))
    cafile = f"&cafile={certs.ca}" if cert == "wrong-host" else ""
    url = f"smtp://{host}:{server.port}?tls=1{cafile}"
    code, _, err = run(capsys, "check", "--url", url)
    line = error_line(code, err)
    assert "step 'starttls'" in line and "not trusted" in line and fix in line


# --- files ---


def test_attach_a_directory(
    smtp_server: SMTPTestServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, *SEND, "--attach", str(tmp_path), "--url", "dummy:")
    line = error_line(code, err)
    assert f"--attach {tmp_path}: is a directory" in line
    assert "--attach" in line and "repeated" in line


@pytest.mark.parametrize("option", ["--body-file", "--html-file"])
def test_a_file_that_is_not_utf8_is_named(
    option: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    latin1 = tmp_path / "body-latin1.txt"
    latin1.write_bytes("Grüße\n".encode("latin-1"))
    argv = ["send", "--to", "a@example.com", "--subject", "s", "--url", "dummy:"]
    argv += (
        [option, str(latin1)] if option == "--body-file" else ["--body", "b", option, str(latin1)]
    )
    code, _, err = run(capsys, *argv)
    line = error_line(code, err)
    assert f"{option} {latin1} is not UTF-8 text (byte 0xfc at offset 2)" in line
    missing = tmp_path / "missing.txt"
    argv[-1] = str(missing)
    code, _, err = run(capsys, *argv)
    assert f"{option} {missing}: no such file" in error_line(code, err)


def test_standard_input_that_is_not_utf8(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    stdin = io.TextIOWrapper(io.BytesIO(b"caf\xe9\n"), encoding="latin-1")
    monkeypatch.setattr(sys, "stdin", stdin)
    code, _, err = run(
        capsys, "send", "--to", "a@example.com", "--subject", "s", "--body-file", "-"
    )
    line = error_line(code, err)
    assert "--body-file -: standard input is not UTF-8 text (byte 0xe9 at offset 3)" in line


# --- help ---


def _commands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    (subparsers,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return {"": parser, **subparsers.choices}


def test_every_option_has_help_and_says_when_it_repeats() -> None:
    commands = _commands()
    assert set(commands) >= {"", "smtpd", "send", "check", "demo"}
    for name, parser in commands.items():
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                continue
            what = f"mailwright {name} {'/'.join(action.option_strings)}"
            assert action.help and action.help.strip(), f"{what} has no help"
            if isinstance(action, argparse._AppendAction):
                assert "repeat" in action.help, f"{what} repeats but its help does not say so"


def _all_parsers(
    parser: argparse.ArgumentParser, name: str = "mailwright"
) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    yield name, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub, subparser in action.choices.items():
                yield from _all_parsers(subparser, f"{name} {sub}")


def test_every_command_has_a_description() -> None:
    parsers = dict(_all_parsers(build_parser()))
    assert {"mailwright queue status", "mailwright queue show", "mailwright smtpd"} <= set(parsers)
    for name, parser in parsers.items():
        assert parser.description and parser.description.strip(), f"{name} has no description"


def test_help_shows_url(capsys: pytest.CaptureFixture[str]) -> None:
    for command in ("send", "check"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        assert "--url EMAIL_URL" in capsys.readouterr().out
