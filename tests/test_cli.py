"""The command line, run as subprocesses."""

from __future__ import annotations

import json
import mailbox
import smtplib
import socket
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from certs import CertFiles
from conftest import ServerFactory
from processes import Catcher, run_cli
from smtpserver import SMTPTestServer


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_env(server: SMTPTestServer, **extra: str) -> dict[str, str]:
    return {"EMAIL_HOST": server.host, "EMAIL_PORT": str(server.port), **extra}


@pytest.fixture
def catcher(tmp_path: Path) -> Iterator[Catcher]:
    process = Catcher("--maildir", str(tmp_path / "Maildir"), "--max-size", "100000")
    yield process
    process.close()


# --- help ---


@pytest.mark.parametrize("command", [[], ["smtpd"], ["send"], ["check"], ["demo"]])
def test_help_on_every_command(command: list[str]) -> None:
    result = run_cli(*command, "--help")
    assert result.returncode == 0
    assert "usage: mailwright" in result.stdout


def test_no_command_prints_the_help() -> None:
    result = run_cli()
    assert result.returncode == 0
    assert result.stdout.startswith("usage: mailwright")
    for command in ("smtpd", "send", "check", "demo", "worker", "queue"):
        assert f"    {command} " in result.stdout


# --- smtpd ---


def test_catcher_prints_stores_and_serves(catcher: Catcher, tmp_path: Path) -> None:
    with smtplib.SMTP("127.0.0.1", catcher.smtp_port, timeout=10) as client:
        assert "pipelining" in client.ehlo()[1].decode().lower()
        assert client.has_extn("smtputf8") and client.has_extn("8bitmime")
    result = run_cli(
        "send",
        "--to",
        "Zoë <zoe@example.com>",
        "--from",
        "sender@example.com",
        "--subject",
        "Grüße from the CLI",
        "--body",
        "Body line one\nline two",
        env={"EMAIL_HOST": "127.0.0.1", "EMAIL_PORT": str(catcher.smtp_port)},
    )
    assert result.returncode == 0, result.stderr
    catcher.wait_for(r"Subject: Grüße from the CLI")
    catcher.wait_for(r"From:\s+sender@example.com")
    catcher.wait_for(r"To:\s+Zoë <zoe@example.com>")
    catcher.wait_for(r"Parts:\s+text/plain")
    catcher.wait_for(r"^Body line one$")
    # stored in a real Maildir that mail clients can open
    box = mailbox.Maildir(tmp_path / "Maildir", create=False)
    (stored,) = list(box)
    assert stored["Subject"] is not None and "Gr" in str(stored["Subject"])
    with urllib.request.urlopen(catcher.inbox_url + "api/messages") as reply:
        listing = json.load(reply)
    assert listing["total"] == 1
    assert listing["messages"][0]["subject"] == "Grüße from the CLI"


def test_catcher_refuses_malformed_and_oversized_and_keeps_running(catcher: Catcher) -> None:
    with smtplib.SMTP("127.0.0.1", catcher.smtp_port, timeout=10) as client:
        with pytest.raises(smtplib.SMTPDataError) as info:
            client.sendmail(
                "a@example.com", ["b@example.com"], b"this is not a header\r\n\r\nbody\r\n"
            )
        assert info.value.smtp_code == 550
        assert b"header" in info.value.smtp_error
        huge = b"Subject: huge\r\n\r\n" + (b"x" * 900 + b"\r\n") * 200
        # declared with SIZE: refused at MAIL FROM
        with pytest.raises(smtplib.SMTPSenderRefused) as info:
            client.sendmail("a@example.com", ["b@example.com"], huge)
        assert info.value.smtp_code == 552
        # undeclared: refused after DATA
        client.rset()
        assert client.mail("a@example.com")[0] == 250
        assert client.rcpt("b@example.com")[0] == 250
        code, reply = client.data(huge)
        assert code == 552, reply
    # still running and accepting good mail on a new connection
    with smtplib.SMTP("127.0.0.1", catcher.smtp_port, timeout=10) as client:
        client.sendmail("a@example.com", ["b@example.com"], b"Subject: fine\r\n\r\nok\r\n")
    catcher.wait_for(r"Subject: fine")
    with urllib.request.urlopen(catcher.inbox_url + "api/messages") as reply:
        assert json.load(reply)["total"] == 1


def test_catcher_stops_cleanly_on_ctrl_c(catcher: Catcher) -> None:
    assert catcher.interrupt() == 0
    assert "Traceback" not in (catcher.proc.stderr.read() if catcher.proc.stderr else "")


def test_second_catcher_on_busy_port_exits_with_clear_error(catcher: Catcher) -> None:
    result = run_cli("smtpd", "--port", str(catcher.smtp_port), "--no-web", timeout=30)
    assert result.returncode != 0
    assert f"port {catcher.smtp_port}" in result.stderr
    assert "already in use" in result.stderr
    assert "choose another port with --port (0 picks a free one)" in result.stderr
    assert "Traceback" not in result.stderr
    assert catcher.inbox_url is not None
    web_port = catcher.inbox_url.rstrip("/").rsplit(":", 1)[1]
    web = run_cli("smtpd", "--port", "0", "--web-port", web_port, timeout=30)
    assert web.returncode != 0 and "choose another port with --web-port" in web.stderr


def test_catcher_quiet_and_no_web() -> None:
    process = Catcher("--quiet", "--no-web")
    try:
        with smtplib.SMTP("127.0.0.1", process.smtp_port, timeout=10) as client:
            client.sendmail("a@example.com", ["b@example.com"], b"Subject: hush\r\n\r\nquiet\r\n")
        assert process.inbox_url is None
        assert process.interrupt() == 0
        assert not any("hush" in line for line in process.output)
    finally:
        process.close()


# --- send ---


def test_send_with_html_and_attachments(smtp_server: SMTPTestServer, tmp_path: Path) -> None:
    html = tmp_path / "page.html"
    html.write_text("<p>Hello <b>HTML</b></p>", encoding="utf-8")
    report = tmp_path / "report.pdf"
    report.write_bytes(b"%PDF-1.4 binary \x00\xff")
    body = tmp_path / "body.txt"
    body.write_text("Body from a file\n", encoding="utf-8")
    result = run_cli(
        "send",
        "--to",
        "a@example.com",
        "--to",
        "b@example.com",
        "--cc",
        "c@example.com",
        "--subject",
        "Report",
        "--body-file",
        str(body),
        "--html-file",
        str(html),
        "--attach",
        str(report),
        "--from",
        "Reports <reports@example.com>",
        env=server_env(smtp_server),
    )
    assert result.returncode == 0, result.stderr
    assert "sent to 3 recipients" in result.stdout
    (received,) = smtp_server.wait_for(1)
    assert received.mail_from == "reports@example.com"
    assert received.rcpt_tos == ["a@example.com", "b@example.com", "c@example.com"]
    parsed = received.parsed()
    assert parsed.get_body(("plain",)).get_content().strip() == "Body from a file"
    assert "<b>HTML</b>" in parsed.get_body(("html",)).get_content()
    (attachment,) = parsed.iter_attachments()
    assert attachment.get_filename() == "report.pdf"
    assert attachment.get_content() == b"%PDF-1.4 binary \x00\xff"


def test_send_body_from_stdin_and_email_url(smtp_server: SMTPTestServer) -> None:
    result = run_cli(
        "send",
        "--to",
        "a@example.com",
        "--subject",
        "stdin",
        "--body-file",
        "-",
        env={"EMAIL_URL": f"smtp://127.0.0.1:{smtp_server.port}"},
        stdin="from standard input\n",
    )
    assert result.returncode == 0, result.stderr
    (received,) = smtp_server.wait_for(1)
    assert received.parsed().get_content().strip() == "from standard input"


def one_line_error(result) -> str:  # type: ignore[no-untyped-def]
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


def test_send_connection_refused() -> None:
    port = closed_port()
    result = run_cli(
        "send",
        "--to",
        "a@example.com",
        "--subject",
        "s",
        "--body",
        "b",
        env={"EMAIL_HOST": "127.0.0.1", "EMAIL_PORT": str(port)},
    )
    line = one_line_error(result)
    assert "connection refused" in line and str(port) in line


def test_send_auth_failed(start_server: ServerFactory) -> None:
    server = start_server(auth=("user", "right-password"))
    result = run_cli(
        "send",
        "--to",
        "a@example.com",
        "--subject",
        "s",
        "--body",
        "b",
        env=server_env(server, EMAIL_HOST_USER="user", EMAIL_HOST_PASSWORD="wrong-password"),
    )
    line = one_line_error(result)
    assert "authentication failed" in line and "535" in line
    assert "wrong-password" not in result.stderr + result.stdout


def test_send_refused_recipients(start_server: ServerFactory) -> None:
    server = start_server(refuse={"nobody@example.com"})
    result = run_cli(
        "send",
        "--to",
        "nobody@example.com",
        "--subject",
        "s",
        "--body",
        "b",
        env=server_env(server),
    )
    line = one_line_error(result)
    assert "recipients refused" in line and "nobody@example.com" in line and "550" in line
    partial = run_cli(
        "send",
        "--to",
        "nobody@example.com",
        "--to",
        "ok@example.com",
        "--subject",
        "s",
        "--body",
        "b",
        env=server_env(server),
    )
    assert partial.returncode == 0
    assert "sent to 1 recipient" in partial.stdout
    assert "nobody@example.com refused" in partial.stderr


def test_send_bad_address(smtp_server: SMTPTestServer) -> None:
    result = run_cli(
        "send",
        "--to",
        "not an address",
        "--subject",
        "s",
        "--body",
        "b",
        env=server_env(smtp_server),
    )
    line = one_line_error(result)
    assert "not an address" in line
    assert smtp_server.connections == 0


def test_send_missing_attachment(smtp_server: SMTPTestServer, tmp_path: Path) -> None:
    result = run_cli(
        "send",
        "--to",
        "a@example.com",
        "--subject",
        "s",
        "--body",
        "b",
        "--attach",
        str(tmp_path / "missing.pdf"),
        env=server_env(smtp_server),
    )
    line = one_line_error(result)
    assert "missing.pdf" in line
    assert smtp_server.messages == []


def test_send_requires_a_body() -> None:
    result = run_cli("send", "--to", "a@example.com", "--subject", "s")
    assert result.returncode == 2
    assert "--body" in result.stderr


# --- check ---


def test_check_plain_server(smtp_server: SMTPTestServer) -> None:
    result = run_cli("check", env=server_env(smtp_server))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert f"connect   127.0.0.1:{smtp_server.port} ok" in out
    assert "size limit: 33554432 bytes" in out
    assert "PIPELINING: yes" in out and "SMTPUTF8: yes" in out
    assert "starttls  skipped" in out and "auth      skipped" in out
    assert "check passed" in out
    assert smtp_server.messages == []


def test_check_starttls_and_auth(start_server: ServerFactory, certs: CertFiles) -> None:
    server = start_server(
        starttls=certs.server_context(), auth=("user", "pa55word"), auth_require_tls=True
    )
    env = server_env(
        server,
        EMAIL_USE_TLS="1",
        EMAIL_SSL_CAFILE=certs.ca,
        EMAIL_HOST_USER="user",
        EMAIL_HOST_PASSWORD="pa55word",
    )
    result = run_cli("check", env=env)
    assert result.returncode == 0, result.stderr
    assert "STARTTLS: yes" in result.stdout
    assert "certificate verified" in result.stdout
    assert "AUTH: LOGIN PLAIN" in result.stdout
    assert "auth      ok as 'user'" in result.stdout
    assert "pa55word" not in result.stdout + result.stderr


def test_check_names_the_failed_step(start_server: ServerFactory, certs: CertFiles) -> None:
    server = start_server(auth=("user", "pa55word"))
    result = run_cli(
        "check", env=server_env(server, EMAIL_HOST_USER="user", EMAIL_HOST_PASSWORD="nope-nope")
    )
    line = one_line_error(result)
    assert "step 'auth'" in line
    assert "nope-nope" not in result.stdout + result.stderr
    result = run_cli("check", env={"EMAIL_HOST": "127.0.0.1", "EMAIL_PORT": str(closed_port())})
    assert "step 'connect'" in one_line_error(result)
    tls_server = start_server(starttls=certs.server_context())
    result = run_cli("check", env=server_env(tls_server, EMAIL_USE_TLS="1"))
    line = one_line_error(result)
    assert "step 'starttls'" in line and "not trusted" in line


# --- demo ---


def test_demo_needs_no_configuration() -> None:
    result = run_cli("demo", env={"EMAIL_URL": "smtp://unused.invalid:1"}, timeout=60)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "sent 3 messages through the SMTP backend; 3 arrived" in out
    assert "Subject: Welcome to mailwright" in out
    assert "image/png logo.png" in out and "report.csv" in out
    assert "Subject: Grüße aus Köln" in out
    assert "http://127.0.0.1:" in out
