"""Errors the library raises name host:port and the likely fix, as ``mailwright check``
words them, and keep their types (code written for Django's backend catches them by
type). Each runs with both drivers (the ``sender`` fixture)."""

from __future__ import annotations

import smtplib
import socket
import ssl
import threading
import time
from collections.abc import Iterator

import pytest

import mailwright
from certs import CertFiles
from conftest import ServerFactory
from senders import Sender


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def send(sender: Sender) -> int:
    return sender.send_mail("s", "b", "a@example.com", ["b@example.com"])


def test_refused_connection_names_the_server(sender: Sender) -> None:
    port = closed_port()
    mailwright.configure(EMAIL_HOST="127.0.0.1", EMAIL_PORT=port)
    with pytest.raises(ConnectionRefusedError) as info:
        send(sender)
    assert info.value.errno is not None
    assert f"connection refused by 127.0.0.1:{port} (is an SMTP server running there?)" in str(
        info.value
    )


def test_dns_failure_names_the_host_and_the_setting(
    sender: Sender, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The resolver's failure, injected: tests touch no network beyond loopback.
    def fail(host: object, *args: object, **kwargs: object) -> object:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", fail)
    mailwright.configure(EMAIL_HOST="mail.example.test", EMAIL_PORT=587)
    with pytest.raises(socket.gaierror) as info:
        send(sender)
    text = str(info.value)
    assert "cannot resolve the host name of mail.example.test:587" in text
    assert "check EMAIL_HOST" in text


@pytest.mark.parametrize("mode", ["starttls", "implicit"])
def test_untrusted_certificate_points_at_the_ca_file(
    mode: str, sender: Sender, start_server: ServerFactory, certs: CertFiles
) -> None:
    if mode == "starttls":
        server = start_server(starttls=certs.server_context())
    else:
        server = start_server(implicit_tls=certs.server_context())
    mailwright.configure(
        EMAIL_HOST="127.0.0.1",
        EMAIL_PORT=server.port,
        EMAIL_USE_TLS=mode == "starttls",
        EMAIL_USE_SSL=mode == "implicit",
    )
    with pytest.raises(ssl.SSLCertVerificationError) as info:
        send(sender)
    text = str(info.value)
    assert f"127.0.0.1:{server.port} not trusted" in text
    assert "point EMAIL_SSL_CAFILE (cafile=) at its certificate" in text
    assert info.value.verify_code == 20  # unable to get local issuer: kept for callers
    assert server.messages == []


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never says a word (as an implicit-TLS port
    waits for the client's TLS hello)."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except OSError:
                return

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    port = int(listener.getsockname()[1])
    yield port
    stop.set()
    # close() does not wake a thread blocked in accept(): one last connection does.
    socket.create_connection(("127.0.0.1", port)).close()
    thread.join(10)
    listener.close()
    for connection in accepted:
        connection.close()


def test_starttls_on_the_implicit_tls_port_fails_fast_with_the_fix(
    sender: Sender, silent_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The silent port stands for 465 (binding 465 itself could collide with another
    # process on the machine).
    monkeypatch.setattr("mailwright.smtp.driver.IMPLICIT_TLS_PORTS", frozenset({silent_port}))
    mailwright.configure(
        EMAIL_HOST="127.0.0.1", EMAIL_PORT=silent_port, EMAIL_USE_TLS=True, EMAIL_TIMEOUT=60
    )
    started = time.monotonic()
    with pytest.raises(TimeoutError) as info:
        send(sender)
    assert time.monotonic() - started < 30  # the probe (3 s), not EMAIL_TIMEOUT
    text = str(info.value)
    assert f"127.0.0.1:{silent_port}: no answer after 3 s waiting for the server's greeting" in text
    assert "set EMAIL_USE_SSL / ssl=1 instead of EMAIL_USE_TLS" in text


def test_connection_closed_before_the_greeting_says_so(sender: Sender) -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def hang_up() -> None:
        connection, _ = listener.accept()
        connection.close()

    thread = threading.Thread(target=hang_up, daemon=True)
    thread.start()
    mailwright.configure(EMAIL_HOST="127.0.0.1", EMAIL_PORT=port, EMAIL_USE_TLS=True)
    try:
        with pytest.raises(smtplib.SMTPServerDisconnected) as info:
            send(sender)
    finally:
        thread.join(10)
        listener.close()
    text = str(info.value)
    assert f"127.0.0.1:{port} closed the connection before greeting" in text
    assert "implicit TLS, such as 465, set EMAIL_USE_SSL" in text


def test_the_command_line_words_them_once(capsys: pytest.CaptureFixture[str]) -> None:
    """The CLI and the exception share one text (describe.py): not said twice."""
    from mailwright.cli import main

    port = closed_port()
    code = main(["send", "--to", "a@example.com", "--subject", "s", "--body", "b",
                 "--url", f"smtp://127.0.0.1:{port}"])  # fmt: skip
    err = capsys.readouterr().err
    assert code != 0
    assert err.count("connection refused") == 1 and f"127.0.0.1:{port}" in err
