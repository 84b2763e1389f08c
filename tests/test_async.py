"""What only the asyncio API has: its own functions, a loop that is never blocked,
cancellation, and any backend from async code. (The SMTP behaviours themselves —
TLS, AUTH, refusals, timeouts, pipelining — run once per driver in
test_smtp_backend.py, test_pipelining.py, test_bulk.py and test_driver_parity.py.)

Every wait is on a signal from the test server, never on the clock."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence

import pytest

import mailwright
from conftest import ServerFactory
from mailwright import (
    EmailMessage,
    RawMessage,
    amail_admins,
    amail_managers,
    asend_mail,
    asend_mass_mail,
    configure,
    get_connection,
)
from mailwright.backends.base import BaseEmailBackend
from smtpserver import SMTPTestServer


def run(coroutine):  # type: ignore[no-untyped-def]
    return asyncio.run(coroutine)


async def wait(event: threading.Event) -> None:
    """Until the test server sets ``event`` (a thread of its own), without blocking."""
    assert await asyncio.to_thread(event.wait, 15), "the server never signalled"


# --- the async functions ---


def test_asend_mail_html(smtp_server: SMTPTestServer) -> None:
    run(asend_mail("s", "plain", "a@example.com", ["b@example.com"], html_message="<b>html</b>"))
    parsed = smtp_server.wait_for(1)[0].parsed()
    assert parsed.get_content_type() == "multipart/alternative"
    assert parsed.get_body(("html",)).get_content().strip() == "<b>html</b>"


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


def test_loop_keeps_running_while_waiting_for_the_server(start_server: ServerFactory) -> None:
    # The server answers MAIL only when a task on the client's own loop tells it to:
    # if waiting for the reply blocked the loop, that task could never run, and the
    # send would end in a timeout instead.
    release = threading.Event()
    server = start_server(hold={"MAIL": release})
    configure(**server.settings, EMAIL_TIMEOUT=20)

    async def scenario() -> int:
        async def release_once_mail_arrived() -> None:
            await wait(server.arrived["MAIL"])  # the client sent MAIL and waits
            release.set()

        releaser = asyncio.create_task(release_once_mail_arrived())
        sent = await asend_mail("slow", "b", "a@example.com", ["b@example.com"])
        await releaser
        return sent

    assert run(scenario()) == 1
    assert server.wait_for(1)[0].parsed()["Subject"] == "slow"


def test_cancel_during_data_sends_nothing(start_server: ServerFactory) -> None:
    release = threading.Event()
    server = start_server(hold={"DATA": release})  # no 354 until released
    configure(**server.settings)

    async def scenario() -> None:
        task = asyncio.create_task(
            asend_mail(
                "cancel me", "CONTENT-THAT-MUST-NOT-ARRIVE", "a@example.com", ["b@example.com"]
            )
        )
        await wait(server.arrived["DATA"])  # the client waits for 354
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    run(scenario())
    release.set()  # the 354 goes to a connection the client dropped
    server.wait_ended()  # everything the client sent has arrived
    assert server.messages == []
    assert not any(b"CONTENT-THAT-MUST-NOT-ARRIVE" in chunk for _, chunk in server.chunks)


def test_cancel_while_content_is_being_written_leaves_no_message(
    start_server: ServerFactory,
) -> None:
    # The server stops reading after DATA, so the client's buffers fill with a big
    # message; cancelling then must drop what was not sent, never finish it.
    release = threading.Event()
    server = start_server(stall_until=release)
    configure(**server.settings)
    line = b"x" * 998 + b"\r\n"
    data = b"Subject: big\r\n\r\n" + line * 20_000  # 20 MB: more than socket buffers hold
    connection = get_connection()

    async def scenario() -> None:
        task = asyncio.create_task(
            connection.asend_messages([RawMessage(data, "a@example.com", ["b@example.com"])])
        )
        await wait(server.stalled)  # the server stopped reading
        # ...and the client's writes block: bytes wait in its own buffer
        async with asyncio.timeout(30):
            while True:
                session = connection.aconnection
                transport = session.transport if session is not None else None
                if transport is not None and transport.get_write_buffer_size() > 0:
                    break
                assert not task.done(), task
                await asyncio.sleep(0.001)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    run(scenario())
    assert connection.aconnection is None  # dropped, not left half-way
    release.set()  # the server reads again what the client had sent, then the end
    server.wait_ended()
    assert server.messages == []
    received = b"".join(chunk for _, chunk in server.chunks)
    assert len(received) < len(data)
    assert not received.endswith(b"\r\n.\r\n")


def test_cancel_drops_the_connection_of_an_open_backend(start_server: ServerFactory) -> None:
    release = threading.Event()
    server = start_server(hold={"MAIL": release})
    configure(**server.settings)

    async def scenario() -> BaseEmailBackend:
        connection = get_connection()
        assert await connection.aopen() is True
        task = asyncio.create_task(
            connection.asend_messages([EmailMessage("s", "b", "a@example.com", ["b@example.com"])])
        )
        await wait(server.arrived["MAIL"])
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return connection

    connection = run(scenario())
    assert connection.aconnection is None  # dropped, not left half-way
    release.set()
    server.wait_ended()
    assert server.messages == []


# --- any backend works from async code ---


class SyncOnlyBackend(BaseEmailBackend):
    """A custom backend that knows nothing about asyncio."""

    threads: list[int] = []

    def send_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        SyncOnlyBackend.threads.append(threading.get_ident())
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


# --- the asyncio driver gathers the writes of one turn ---


def test_the_writes_of_one_turn_go_out_together_at_its_end() -> None:
    """With several connections on a loop, what each writes in a turn goes out once
    the loop has run that turn's callbacks, in order per connection; a connection
    dropped meanwhile sends nothing; a lone connection writes at once."""
    import socket

    from mailwright.smtp.aio import _Writes

    async def main() -> None:
        loop = asyncio.get_running_loop()
        pairs = [socket.socketpair() for _ in range(3)]
        transports = [
            (await loop.connect_accepted_socket(asyncio.Protocol, ours))[0] for ours, _ in pairs
        ]
        peers = [theirs for _, theirs in pairs]
        for peer in peers:
            peer.setblocking(False)

        def received(peer: socket.socket) -> bytes:
            try:
                return peer.recv(1000)
            except BlockingIOError:
                return b""

        writes = _Writes()
        writes.links = 3
        writes.write(loop, transports[0], b"MAIL one")  # type: ignore[arg-type]
        writes.write(loop, transports[1], b"MAIL two")  # type: ignore[arg-type]
        writes.write(loop, transports[2], b"MAIL three")  # type: ignore[arg-type]
        writes.write(loop, transports[0], b", RCPT one")  # type: ignore[arg-type]
        assert [received(peer) for peer in peers] == [b"", b"", b""]  # not yet
        transports[2].abort()
        await asyncio.sleep(0)  # the end of this turn
        assert [received(peer) for peer in peers] == [b"MAIL one, RCPT one", b"MAIL two", b""]
        writes.links = 1  # alone on the loop: at once
        writes.write(loop, transports[1], b", RCPT two")  # type: ignore[arg-type]
        assert received(peers[1]) == b", RCPT two"
        for transport in transports[:2]:
            transport.close()
        for ours, theirs in pairs:
            ours.close()
            theirs.close()

    run(main())


def test_connections_are_counted_off_the_loop_as_they_close(smtp_server: SMTPTestServer) -> None:
    """The count that decides whether writes are gathered falls back to zero once a
    send's connections are closed (else a lone connection would wait a turn)."""
    from mailwright.smtp.aio import _writes

    async def main() -> None:
        batch = [
            EmailMessage(f"M {n}", "b", "a@example.com", [f"u{n}@example.com"]) for n in range(30)
        ]
        result = await mailwright.asend_bulk(batch, connections=3)
        assert result.sent == 30
        assert _writes(asyncio.get_running_loop()).links == 0

    run(main())
    smtp_server.wait_for(30)
