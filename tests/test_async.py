"""The async API against the real aiosmtpd servers (each test drives its own loop)."""

from __future__ import annotations

import asyncio
import smtplib
import socket
import ssl
import threading
import time
from collections import Counter
from collections.abc import Sequence

import pytest

import mailwright
from certs import CertFiles
from conftest import ServerFactory
from mailwright import (
    BadHeaderError,
    EmailMessage,
    SMTPUTF8NotSupportedError,
    amail_admins,
    amail_managers,
    asend_bulk,
    asend_mail,
    asend_mass_mail,
    configure,
    get_connection,
)
from mailwright.backends.base import BaseEmailBackend
from smtpserver import SMTPTestServer


def run(coroutine):  # type: ignore[no-untyped-def]
    return asyncio.run(coroutine)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- the SMTP behaviours, through the async API ---


def test_asend_mail_plain(smtp_server: SMTPTestServer) -> None:
    assert run(asend_mail("Async hello", "Body", "Sender <a@example.com>", ["b@example.com"])) == 1
    (received,) = smtp_server.wait_for(1)
    assert received.mail_from == "a@example.com"
    assert received.rcpt_tos == ["b@example.com"]
    parsed = received.parsed()
    assert parsed["Subject"] == "Async hello"
    assert parsed.get_content().strip() == "Body"
    assert not received.tls


def test_asend_mail_html(smtp_server: SMTPTestServer) -> None:
    run(asend_mail("s", "plain", "a@example.com", ["b@example.com"], html_message="<b>html</b>"))
    parsed = smtp_server.wait_for(1)[0].parsed()
    assert parsed.get_content_type() == "multipart/alternative"
    assert parsed.get_body(("html",)).get_content().strip() == "<b>html</b>"


def test_starttls(start_server: ServerFactory, certs: CertFiles) -> None:
    server = start_server(starttls=certs.server_context(), require_starttls=True)
    configure(**server.settings, EMAIL_USE_TLS=True, EMAIL_SSL_CAFILE=certs.ca)
    assert run(asend_mail("s", "b", "a@example.com", ["b@example.com"])) == 1
    assert server.wait_for(1)[0].tls


def test_starttls_verifies_by_default(start_server: ServerFactory, certs: CertFiles) -> None:
    server = start_server(starttls=certs.server_context())
    configure(**server.settings, EMAIL_USE_TLS=True)
    with pytest.raises(ssl.SSLCertVerificationError):
        run(asend_mail("s", "b", "a@example.com", ["b@example.com"]))
    assert server.messages == []


def test_starttls_verifies_host_name(start_server: ServerFactory, certs: CertFiles) -> None:
    server = start_server(starttls=certs.server_context("wrong-host"))
    configure(**server.settings, EMAIL_USE_TLS=True, EMAIL_SSL_CAFILE=certs.ca)
    with pytest.raises(ssl.SSLCertVerificationError):
        run(asend_mail("s", "b", "a@example.com", ["b@example.com"]))


def test_implicit_tls(start_server: ServerFactory, certs: CertFiles) -> None:
    server = start_server(implicit_tls=certs.server_context())
    configure(**server.settings, EMAIL_USE_SSL=True, EMAIL_SSL_CAFILE=certs.ca)
    assert run(asend_mail("s", "b", "a@example.com", ["b@example.com"])) == 1
    assert server.wait_for(1)[0].tls
    configure(EMAIL_SSL_CAFILE=certs.other_ca)
    with pytest.raises(ssl.SSLCertVerificationError):
        run(asend_mail("s", "b", "a@example.com", ["b@example.com"]))


def test_client_certificate(start_server: ServerFactory, certs: CertFiles) -> None:
    server = start_server(implicit_tls=certs.server_context(client_ca=True))
    certfile, keyfile = certs.client_files()
    configure(
        **server.settings,
        EMAIL_USE_SSL=True,
        EMAIL_SSL_CAFILE=certs.ca,
        EMAIL_SSL_CERTFILE=certfile,
        EMAIL_SSL_KEYFILE=keyfile,
    )
    assert run(asend_mail("s", "b", "a@example.com", ["b@example.com"])) == 1


def test_auth_ok_and_wrong(start_server: ServerFactory, certs: CertFiles) -> None:
    server = start_server(
        starttls=certs.server_context(), auth=("user", "pw"), auth_require_tls=True
    )
    configure(**server.settings, EMAIL_USE_TLS=True, EMAIL_SSL_CAFILE=certs.ca)
    assert (
        run(
            asend_mail(
                "s", "b", "a@example.com", ["b@example.com"], auth_user="user", auth_password="pw"
            )
        )
        == 1
    )
    assert server.wait_for(1)[0].authenticated
    with pytest.raises(smtplib.SMTPAuthenticationError) as info:
        run(
            asend_mail(
                "s", "b", "a@example.com", ["b@example.com"], auth_user="user", auth_password="nope"
            )
        )
    assert info.value.smtp_code == 535
    assert (
        run(
            asend_mail(
                "s",
                "b",
                "a@example.com",
                ["b@example.com"],
                fail_silently=True,
                auth_user="user",
                auth_password="nope",
            )
        )
        == 0
    )


def test_refused_recipients(start_server: ServerFactory) -> None:
    server = start_server(refuse={"gone@example.com"})
    configure(**server.settings)
    msg = EmailMessage("s", "b", "a@example.com", ["ok@example.com", "gone@example.com"])
    assert run(msg.asend()) == 1
    assert msg.delivery is not None
    assert msg.delivery.accepted == ["ok@example.com"]
    assert msg.delivery.refused["gone@example.com"][0] == 550
    assert server.wait_for(1)[0].rcpt_tos == ["ok@example.com"]
    with pytest.raises(smtplib.SMTPRecipientsRefused) as info:
        run(asend_mail("s", "b", "a@example.com", ["gone@example.com"]))
    assert list(info.value.recipients) == ["gone@example.com"]
    assert run(asend_mail("s", "b", "a@example.com", ["gone@example.com"], fail_silently=True)) == 0


def test_refused_data_and_missing_smtputf8(start_server: ServerFactory) -> None:
    server = start_server(refuse_data_containing=b"REJECT", smtputf8=False)
    configure(**server.settings)
    with pytest.raises(smtplib.SMTPDataError):
        run(asend_mail("s", "REJECT", "a@example.com", ["b@example.com"]))
    with pytest.raises(SMTPUTF8NotSupportedError):
        run(asend_mail("s", "b", "a@example.com", ["jörg@example.com"]))
    assert run(asend_mail("s", "fine", "a@example.com", ["b@example.com"])) == 1


def test_server_down() -> None:
    configure(EMAIL_HOST="127.0.0.1", EMAIL_PORT=closed_port())
    with pytest.raises(ConnectionRefusedError):
        run(asend_mail("s", "b", "a@example.com", ["b@example.com"]))
    assert run(asend_mail("s", "b", "a@example.com", ["b@example.com"], fail_silently=True)) == 0


def test_timeout(start_server: ServerFactory) -> None:
    server = start_server(reply_delay=1.0)
    configure(**server.settings, EMAIL_TIMEOUT=0.2)
    with pytest.raises(TimeoutError):
        run(asend_mail("s", "b", "a@example.com", ["b@example.com"]))


def test_bad_header_touches_no_connection(smtp_server: SMTPTestServer) -> None:
    with pytest.raises(BadHeaderError):
        run(asend_mail("s\r\nBcc: victim@example.com", "b", "a@example.com", ["b@example.com"]))
    assert smtp_server.connections == 0


# --- connection reuse ---


def test_asend_mass_mail_uses_one_connection(smtp_server: SMTPTestServer) -> None:
    data = [(f"S{i}", "b", "a@example.com", [f"u{i}@example.com"]) for i in range(4)]
    assert run(asend_mass_mail(data)) == 4
    assert len(smtp_server.wait_for(4)) == 4
    assert smtp_server.connections == 1


def test_open_connection_stays_open_until_closed(smtp_server: SMTPTestServer) -> None:
    async def scenario() -> None:
        async with get_connection() as connection:
            assert connection.aconnection is not None
            await connection.asend_messages(
                [EmailMessage("1", "b", "a@example.com", ["b@example.com"])]
            )
            assert connection.aconnection is not None
            await connection.asend_messages(
                [EmailMessage("2", "b", "a@example.com", ["b@example.com"])]
            )
        assert connection.aconnection is None
        # without an open connection, asend_messages opens and closes its own
        connection = get_connection()
        await connection.asend_messages(
            [EmailMessage("3", "b", "a@example.com", ["b@example.com"])]
        )
        assert connection.aconnection is None
        assert await connection.aopen() is True
        assert await connection.aopen() is False
        await connection.aclose()
        await connection.aclose()

    run(scenario())
    smtp_server.wait_for(3)
    assert smtp_server.connections == 3


def test_amail_admins_and_managers(smtp_server: SMTPTestServer) -> None:
    configure(
        ADMINS=["admin@example.com"],
        MANAGERS=[("Boss", "boss@example.com")],
        SERVER_EMAIL="srv@example.com",
    )
    assert run(amail_admins("Down", "db1 is down")) == 1
    assert run(amail_managers("Report", "numbers")) == 1
    first, second = smtp_server.wait_for(2)
    assert first.parsed()["Subject"] == "[mailwright] Down" and first.rcpt_tos == [
        "admin@example.com"
    ]
    assert second.rcpt_tos == ["boss@example.com"] and second.mail_from == "srv@example.com"
    configure(ADMINS=[])
    assert run(amail_admins("x", "y")) == 0


# --- the loop is never blocked; cancellation is clean ---


def test_loop_keeps_running_while_sending_to_a_slow_server(start_server: ServerFactory) -> None:
    server = start_server(reply_delay=0.15)
    configure(**server.settings)

    async def scenario() -> tuple[int, int, float]:
        ticks = 0
        done = asyncio.Event()

        async def ticker() -> None:
            nonlocal ticks
            while not done.is_set():
                await asyncio.sleep(0.01)
                ticks += 1

        ticking = asyncio.create_task(ticker())
        started = time.monotonic()
        sent = await asend_mail("slow", "b", "a@example.com", ["b@example.com"])
        elapsed = time.monotonic() - started
        done.set()
        await ticking
        return sent, ticks, elapsed

    sent, ticks, elapsed = run(scenario())
    assert sent == 1
    assert elapsed >= 0.45  # MAIL, RCPT, DATA and the final reply each waited
    assert ticks >= elapsed / 0.01 * 0.3  # the loop kept ticking all along


def test_cancel_during_data_sends_nothing(start_server: ServerFactory) -> None:
    server = start_server(data_command_delay=0.5)
    configure(**server.settings)

    async def scenario() -> None:
        task = asyncio.create_task(
            asend_mail(
                "cancel me", "CONTENT-THAT-MUST-NOT-ARRIVE", "a@example.com", ["b@example.com"]
            )
        )
        # wait until DATA reached the server, then cancel while the client waits for 354
        while not any(b"DATA\r\n" in chunk for _, chunk in server.chunks):
            await asyncio.sleep(0.005)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    run(scenario())
    time.sleep(0.8)  # anything in flight would have arrived by now
    assert server.messages == []
    assert not any(b"CONTENT-THAT-MUST-NOT-ARRIVE" in chunk for _, chunk in server.chunks)


def test_cancel_while_content_is_being_written_leaves_no_message(
    start_server: ServerFactory,
) -> None:
    # The server stops reading after DATA, so the client's buffers fill with a big
    # message; cancelling then must drop what was not sent, never finish it.
    server = start_server(stall_data=1.0)
    configure(**server.settings)
    body = ("x" * 900 + "\n") * 22_000  # about 20 MB: more than the socket buffers hold

    async def scenario() -> None:
        task = asyncio.create_task(asend_mail("big", body, "a@example.com", ["b@example.com"]))
        while not any(b"DATA\r\n" in chunk for _, chunk in server.chunks):
            await asyncio.sleep(0.005)
        await asyncio.sleep(0.3)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    run(scenario())
    time.sleep(1.5)  # the server reads again and sees what the client had sent
    assert server.messages == []
    received = b"".join(chunk for _, chunk in server.chunks)
    assert len(received) < len(body)
    assert not received.endswith(b"\r\n.\r\n")


def test_cancel_drops_the_connection_of_an_open_backend(start_server: ServerFactory) -> None:
    server = start_server(reply_delay=0.3)
    configure(**server.settings)

    async def scenario() -> None:
        connection = get_connection()
        await connection.aopen()
        task = asyncio.create_task(
            connection.asend_messages([EmailMessage("s", "b", "a@example.com", ["b@example.com"])])
        )
        await asyncio.sleep(0.1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert connection.aconnection is None  # dropped, not left half-way

    run(scenario())
    time.sleep(0.5)
    assert server.messages == []


# --- any backend works from async code ---


class SyncOnlyBackend(BaseEmailBackend):
    """A custom backend that knows nothing about asyncio."""

    threads: list[int] = []

    def send_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        SyncOnlyBackend.threads.append(threading.get_ident())
        time.sleep(0.05)  # blocking work, off the event loop
        return len(email_messages)


def test_custom_sync_backend_runs_in_a_worker_thread() -> None:
    async def scenario() -> tuple[int, int]:
        connection = get_connection(f"{__name__}.SyncOnlyBackend")
        sent = await connection.asend_messages(
            [EmailMessage("s", "b", "a@example.com", ["b@example.com"])]
        )
        return sent, threading.get_ident()

    SyncOnlyBackend.threads.clear()
    sent, loop_thread = run(scenario())
    assert sent == 1
    assert SyncOnlyBackend.threads and SyncOnlyBackend.threads[0] != loop_thread


@pytest.mark.parametrize("backend", ["locmem", "console", "dummy"])
def test_simple_backends_are_native(backend: str, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_threads(*args: object, **kwargs: object) -> None:
        raise AssertionError("a native backend must not use a thread")

    monkeypatch.setattr(asyncio, "to_thread", no_threads)
    configure(EMAIL_BACKEND=backend)
    assert run(asend_mail("native", "b", "a@example.com", ["b@example.com"])) == 1
    if backend == "locmem":
        assert mailwright.outbox[0].subject == "native"


def test_filebased_is_native(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(asyncio, "to_thread", None)
    configure(EMAIL_BACKEND="filebased", EMAIL_FILE_PATH=str(tmp_path))
    assert run(asend_mass_mail([("a", "b", "a@example.com", ["b@example.com"])] * 2)) == 2
    (written,) = tmp_path.iterdir()
    assert written.read_bytes().count(b"Subject: a") == 2


# --- asend_bulk ---


def test_asend_bulk_over_n_connections(smtp_server: SMTPTestServer) -> None:
    batch = [EmailMessage(f"M{i}", "b", "a@example.com", [f"u{i}@example.com"]) for i in range(120)]
    result = run(asend_bulk(batch, connections=4))
    assert result.ok and result.sent == 120
    smtp_server.wait_for(120)
    assert Counter(str(r.parsed()["Subject"]) for r in smtp_server.messages) == Counter(
        f"M{i}" for i in range(120)
    )
    assert smtp_server.connections == 4


def test_asend_bulk_reports_failures_and_retries_throttling(start_server: ServerFactory) -> None:
    server = start_server(refuse={"gone@example.com"}, throttle={"slow@example.com": 2})
    configure(**server.settings)
    batch = [
        EmailMessage("ok", "b", "a@example.com", ["ok@example.com"]),
        EmailMessage("gone", "b", "a@example.com", ["gone@example.com"]),
        EmailMessage("slow", "b", "a@example.com", ["slow@example.com"]),
        EmailMessage("bad\nheader", "b", "a@example.com", ["x@example.com"]),
    ]
    result = run(asend_bulk(batch, connections=2))
    assert result.sent == 2
    assert [f.index for f in result.failed] == [1, 3]
    assert [(r.index, r.code) for r in result.refused] == [(1, 550)]
    assert sorted(str(r.parsed()["Subject"]) for r in server.wait_for(2)) == ["ok", "slow"]


def test_asend_bulk_rate_limit(smtp_server: SMTPTestServer) -> None:
    batch = [EmailMessage(f"R{i}", "b", "a@example.com", [f"u{i}@example.com"]) for i in range(41)]
    result = run(asend_bulk(batch, connections=3, rate_limit=40))
    assert result.sent == 41
    assert result.elapsed >= 40 / 40 * 0.9


def test_backend_connections_option_async(smtp_server: SMTPTestServer) -> None:
    connection = get_connection(connections=3)
    batch = [EmailMessage(f"C{i}", "b", "a@example.com", [f"u{i}@example.com"]) for i in range(30)]
    assert run(connection.asend_messages(batch)) == 30
    smtp_server.wait_for(30)
    assert smtp_server.connections == 3


def test_asend_bulk_misconfigured_tls_fails_every_message(
    smtp_server: SMTPTestServer, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    missing = str(tmp_path / "missing-ca.pem")
    batch = [EmailMessage(f"X{i}", "b", "a@example.com", [f"u{i}@example.com"]) for i in range(4)]
    result = run(asend_bulk(batch, connections=2, use_tls=True, ssl_cafile=missing))
    assert result.sent == 0
    assert all("EMAIL_SSL_CAFILE" in f.reason for f in result.failed)
    assert len(result.failed) == 4
