"""The drifts issue 8 lists between the sync and the asyncio paths, each tested through
both drivers, and timeouts on every path (sync, async, ``mailwright check``,
``send_bulk``, ``asend_bulk``).

Nothing here measures time except from above, with bounds a busy machine meets:
round trips are counted as the server's reads."""

from __future__ import annotations

import asyncio
import smtplib
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

import senders
from certs import CertFiles
from conftest import ServerFactory
from mailwright import EmailMessage, RawMessage, configure, get_connection
from mailwright.message import Envelope
from mailwright.smtp import (
    AsyncSMTPConnection,
    Login,
    NotAttemptedError,
    SMTPConfig,
    SMTPConnection,
)
from processes import run_cli
from scripted import STALL, ScriptedServer
from senders import Sender


@pytest.fixture
def scripted() -> Iterator[Any]:
    servers: list[ScriptedServer] = []

    def start(replies: dict[bytes, list[bytes]], features: list[bytes], **kw: Any) -> Any:
        server = ScriptedServer(replies, features, **kw)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


def numbered(count: int) -> list[EmailMessage]:
    return [
        EmailMessage(f"m{i}", f"BODY-OF-M{i}", "from@example.com", [f"m{i}@example.com"])
        for i in range(1, count + 1)
    ]


# --- async pipelines exactly as sync does: one round trip per message ---


@pytest.mark.parametrize("pipelining", [True, False])
def test_one_round_trip_per_message(scripted, sender: Sender, pipelining: bool) -> None:  # type: ignore[no-untyped-def]
    server = scripted({}, features=[b"PIPELINING"] if pipelining else [])
    count = 6
    assert sender.send_messages(numbered(count), host="127.0.0.1", port=server.port) == count
    server.wait_closed()
    reads = server.chunks
    if pipelining:
        # EHLO; MAIL+RCPT+DATA of m1; then, per message, the content of the one before
        # with the envelope of the next; the last content; QUIT.
        assert len(reads) <= count + 3, reads
        for i in range(2, count + 1):
            (group,) = [r for r in reads if f"RCPT TO:<m{i}@".encode() in r]
            assert f"BODY-OF-M{i - 1}".encode() in group
            assert group.endswith(b"DATA\r\n") and b"MAIL FROM:" in group
    else:
        # the control: one command per read, so the count above means something
        assert len(reads) >= 4 * count + 2, reads


# --- a QUIT refusal raises from close() / aclose() unless fail_silently ---


def test_a_refused_quit_raises_from_close(scripted, sender: Sender) -> None:  # type: ignore[no-untyped-def]
    server = scripted({b"QUIT": [b"500 5.5.1 not now"] * 3}, features=[b"PIPELINING"])
    connection = get_connection("smtp", host="127.0.0.1", port=server.port)
    assert sender.open(connection) is True
    assert sender.send_messages(numbered(1), connection) == 1
    with pytest.raises(smtplib.SMTPResponseException) as info:
        sender.close(connection)
    assert info.value.smtp_code == 500
    assert not sender.is_open(connection)  # closed all the same
    # ... also when leaving a with block
    leaving = get_connection("smtp", host="127.0.0.1", port=server.port)
    with pytest.raises(smtplib.SMTPResponseException), sender.session(leaving):
        pass
    # ... and not when failing silently
    quiet = get_connection("smtp", host="127.0.0.1", port=server.port, fail_silently=True)
    assert sender.open(quiet) is True
    sender.close(quiet)
    assert not sender.is_open(quiet)
    server.wait_closed(3)
    assert server.received.count(b"QUIT\r\n") == 3


def test_a_server_gone_before_quit_is_not_an_error(scripted, sender: Sender) -> None:  # type: ignore[no-untyped-def]
    from scripted import HANG_UP

    server = scripted({b"NOOP": [], b"QUIT": [HANG_UP]}, features=[])
    connection = get_connection("smtp", host="127.0.0.1", port=server.port)
    sender.open(connection)
    sender.close(connection)  # SMTPServerDisconnected on QUIT: already gone, fine
    assert not sender.is_open(connection)


# --- sync and async accept exactly the same addresses ---

TRICKY_ADDRESSES = [
    "user@example.com",
    "a+tag@example.com",
    "o'brien@example.com",
    '"john doe"@example.com',
    '"a>b"@example.com',
    "user@[192.0.2.1]",
    "user@[IPv6:2001:db8::1]",
    "root",
    "jörg@example.com",
    "user@bücher.de",
    "Name <named@example.com>",
    "<angle@example.com>",
    "a@x.com> NOTIFY=SUCCESS",
    "a@x.com>NOTIFY=SUCCESS",
    "a@x.com\r\nRCPT TO:<evil@example.com>",
    "a@[x>NOTIFY=SUCCESS]",
    "a\u2028b@example.com",
    "a\u0085b@example.com",
    "a\x00b@example.com",
    "a b@example.com",
    "a@",
    "@example.com",
    "a..b@example.com",
]


class EnvelopeOnly:
    """A message that is only an envelope: the addresses reach the engine as given,
    past the message layer's own checks."""

    def __init__(self, recipient: str) -> None:
        self.recipient = recipient
        self.delivery: Any = None

    def envelope(self, dkim: Any = None) -> Envelope:
        return Envelope(
            "from@example.com",
            [self.recipient],
            b"Subject: envelope only\r\n\r\nbody\r\n",
            not self.recipient.isascii(),
        )


def _outcomes(driver: str, port: int) -> list[tuple[str, Any]]:
    """Each tricky address through the message layer and as a bare envelope."""
    results: list[tuple[str, Any]] = []
    with senders.make(driver) as sender:
        for address in TRICKY_ADDRESSES:
            try:
                msg = EmailMessage("s", "b", "from@example.com", [address])
                sender.send_messages([msg], host="127.0.0.1", port=port, fail_silently=True)
                results.append(("message", (msg.delivery.accepted, repr(msg.delivery.error))))
            except Exception as exc:
                results.append(("message", repr(exc)))
        bare = [EnvelopeOnly(address) for address in TRICKY_ADDRESSES]
        sender.send_messages(bare, host="127.0.0.1", port=port, fail_silently=True)  # type: ignore[arg-type]
        results += [("envelope", (m.delivery.accepted, repr(m.delivery.error))) for m in bare]
    return results


def test_sync_and_async_accept_exactly_the_same_addresses(scripted) -> None:  # type: ignore[no-untyped-def]
    features = [b"PIPELINING", b"SMTPUTF8", b"8BITMIME"]
    sync_server, async_server = scripted({}, features), scripted({}, features)
    sync = _outcomes("sync", sync_server.port)
    asynchronous = _outcomes("async", async_server.port)
    assert sync == asynchronous
    sync_server.wait_closed(sync_server.accepted)
    async_server.wait_closed(async_server.accepted)
    rcpt = [line for line in sync_server.received.split(b"\r\n") if line.startswith(b"RCPT")]
    assert rcpt == [
        line for line in async_server.received.split(b"\r\n") if line.startswith(b"RCPT")
    ]
    # what the engine let through, and nothing else
    envelope_results = [v for k, v in sync if k == "envelope"]
    let_through = {
        address
        for address, (accepted_list, _) in zip(TRICKY_ADDRESSES, envelope_results, strict=True)
        if accepted_list
    }
    assert let_through == {
        "user@example.com",
        "a+tag@example.com",
        "o'brien@example.com",
        '"john doe"@example.com',
        '"a>b"@example.com',
        "user@[192.0.2.1]",
        "user@[IPv6:2001:db8::1]",
        "root",
        "jörg@example.com",
    }
    assert not any(b"NOTIFY" in line or b"evil" in line for line in rcpt)
    assert "RCPT TO:<jörg@example.com>".encode() in rcpt
    assert b"RCPT TO:<user@xn--bcher-kva.de>" in rcpt  # the message layer's IDNA


# --- with PIPELINING, nothing after a message refused at end of data ---


@pytest.mark.parametrize("pipelining", [True, False])
def test_nothing_after_a_message_refused_at_end_of_data(
    start_server: ServerFactory, sender: Sender, pipelining: bool
) -> None:
    server = start_server(refuse_data_containing=b"BODY-OF-M3", pipelining=pipelining)
    configure(**server.settings)
    batch = numbered(6)
    with pytest.raises(smtplib.SMTPDataError) as info:
        sender.send_messages(batch)
    assert info.value.smtp_code == 554
    server.wait_ended()  # everything the client sent has arrived
    assert [r.parsed()["Subject"] for r in server.messages] == ["m1", "m2"]
    received = b"".join(chunk for _, chunk in server.chunks)
    assert not any(f"BODY-OF-M{i}".encode() in received for i in (4, 5, 6))
    deliveries = [m.delivery for m in batch]
    assert all(d is not None for d in deliveries)
    assert [d.accepted for d in deliveries[:2]] == [["m1@example.com"], ["m2@example.com"]]
    assert deliveries[2].error is info.value and deliveries[2].accepted == []
    for later in deliveries[3:]:
        assert isinstance(later.error, NotAttemptedError) and later.accepted == []


def test_a_later_message_whose_data_is_open_is_dropped_before_its_end(
    scripted,  # type: ignore[no-untyped-def]
    sender: Sender,
) -> None:
    server = scripted(
        {b".": [b"250 ok", b"250 ok", b"554 5.6.0 refused"]}, features=[b"PIPELINING"]
    )
    batch = numbered(6)
    with pytest.raises(smtplib.SMTPDataError):
        sender.send_messages(batch, host="127.0.0.1", port=server.port)
    server.wait_closed()
    # m4's envelope travelled with m3's content and got its 354; the client then hung
    # up without another byte, so the server never saw m4's content or end of data.
    assert server.received.endswith(b"RCPT TO:<m4@example.com>\r\nDATA\r\n")
    assert b"BODY-OF-M3" in server.received and b"BODY-OF-M4" not in server.received
    assert b"QUIT" not in server.received
    assert [m.delivery.sent for m in batch] == [True, True, False, False, False, False]
    assert all(isinstance(m.delivery.error, NotAttemptedError) for m in batch[3:])


# --- timeouts: a one-line error within the timeout, on every path ---

TIMEOUT = 0.5
# The bound a busy machine meets: bulk makes 3 connection attempts per connection
# with back-off, and `check` starts a Python process first.
WITHIN = 30.0


def silent_port() -> Iterator[int]:
    """A port that accepts connections (the kernel's backlog) and never says a word."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()


@dataclass
class Mute:
    settings: dict[str, Any]
    waiting: str  # what the error says it waited for
    step: str  # the step `mailwright check` names


@pytest.fixture(params=["silent", "implicit-tls-port", "implicit-tls-client"])
def mute_server(request, start_server: ServerFactory, certs: CertFiles) -> Iterator[Mute]:  # type: ignore[no-untyped-def]
    """A server that never gets a session going: one that never answers; an
    implicit-TLS port (waiting for a TLS hello) seen by a STARTTLS client; and an
    implicit-TLS client at a port that never answers its TLS hello."""
    if request.param == "implicit-tls-port":
        server = start_server(implicit_tls=certs.server_context())
        settings = {**server.settings, "EMAIL_USE_TLS": True, "EMAIL_SSL_CAFILE": certs.ca}
        yield Mute(settings, "waiting for the server's greeting", "greeting")
        return
    for port in silent_port():
        settings = {"EMAIL_HOST": "127.0.0.1", "EMAIL_PORT": port}
        if request.param == "silent":
            yield Mute(settings, "waiting for the server's greeting", "greeting")
        else:
            settings |= {"EMAIL_USE_SSL": True, "EMAIL_SSL_CAFILE": certs.ca}
            yield Mute(settings, "waiting to connect", "connect")


PATHS = ["send_messages", "asend_messages", "check", "send_bulk", "asend_bulk"]


@pytest.mark.parametrize("path", PATHS)
def test_a_server_that_never_greets_times_out_on_every_path(mute_server: Mute, path: str) -> None:
    configure(**mute_server.settings, EMAIL_TIMEOUT=TIMEOUT)
    started = time.monotonic()
    if path == "check":
        env = {
            name: str(int(value) if isinstance(value, bool) else value)
            for name, value in mute_server.settings.items()
        }
        result = run_cli("check", env={**env, "EMAIL_TIMEOUT": str(TIMEOUT)}, timeout=WITHIN)
        assert result.returncode != 0
        (error,) = result.stderr.strip().splitlines()
        assert f"step '{mute_server.step}'" in error
    elif path.endswith("bulk"):
        batch = numbered(3)
        with senders.make("async" if path == "asend_bulk" else "sync") as sender:
            outcome = sender.send_bulk(batch, connections=2)
        assert outcome.sent == 0 and sorted(f.index for f in outcome.failed) == [0, 1, 2]
        error = outcome.failed[0].reason
        assert all(f.reason == error for f in outcome.failed)
    else:
        driver = "async" if path == "asend_messages" else "sync"
        with senders.make(driver) as sender, pytest.raises(TimeoutError) as info:
            sender.send_messages(numbered(1))
        error = str(info.value)
    elapsed = time.monotonic() - started
    assert "\n" not in error
    assert f"no answer after {TIMEOUT:g} s {mute_server.waiting}" in error
    if mute_server.settings.get("EMAIL_USE_TLS"):
        assert "implicit TLS" in error and "EMAIL_USE_SSL" in error
    assert elapsed < WITHIN


@pytest.fixture
def stalled_server(start_server: ServerFactory) -> Any:
    """A server that stops reading once it said 354: the client's writes block."""
    server = start_server(stall_until=threading.Event())
    configure(**server.settings, EMAIL_TIMEOUT=TIMEOUT)
    return server


def big(count: int) -> list[RawMessage]:
    line = b"y" * 998 + b"\r\n"
    data = b"Subject: big\r\n\r\n" + line * 16_000  # 16 MB: more than socket buffers
    return [RawMessage(data, "a@example.com", [f"r{i}@example.com"]) for i in range(count)]


def test_a_write_that_blocks_times_out_and_every_message_has_an_outcome(
    stalled_server: Any, sender: Sender
) -> None:
    batch = big(2)
    started = time.monotonic()
    with pytest.raises(TimeoutError, match=rf"no answer after {TIMEOUT:g} s waiting") as info:
        sender.send_messages(batch)
    assert time.monotonic() - started < WITHIN
    assert "\n" not in str(info.value)
    assert batch[0].delivery is not None and batch[0].delivery.error is info.value
    assert batch[1].delivery is not None and not batch[1].delivery.sent
    assert stalled_server.messages == []


def test_bulk_with_writes_that_block_settles_every_message_once(
    stalled_server: Any, sender: Sender
) -> None:
    batch = big(2)
    started = time.monotonic()
    result = sender.send_bulk(batch, connections=1)
    assert time.monotonic() - started < WITHIN
    assert result.sent == 0
    assert sorted(f.index for f in result.failed) == [0, 1]
    assert all(f"no answer after {TIMEOUT:g} s" in f.reason for f in result.failed)
    assert all(m.delivery is not None and m.delivery.error is not None for m in batch)


def test_a_reply_that_never_comes_mid_batch(scripted, sender: Sender) -> None:  # type: ignore[no-untyped-def]
    server = scripted({b".": [b"250 ok", STALL]}, features=[b"PIPELINING"])
    batch = numbered(4)
    started = time.monotonic()
    with pytest.raises(TimeoutError, match=r"no answer after 0\.5 s waiting for the server to"):
        sender.send_messages(batch, host="127.0.0.1", port=server.port, timeout=TIMEOUT)
    assert time.monotonic() - started < WITHIN
    assert batch[0].delivery.sent
    # m2's end of data and m3's envelope were in flight; m4 was only taken
    assert isinstance(batch[1].delivery.error, TimeoutError)
    assert isinstance(batch[2].delivery.error, TimeoutError)
    assert isinstance(batch[3].delivery.error, NotAttemptedError)


def test_asyncio_timeouts_leave_the_loop_usable() -> None:
    """A timed-out async send leaves no task or timer behind to fire later."""

    async def scenario() -> None:
        for port in silent_port():
            configure(EMAIL_HOST="127.0.0.1", EMAIL_PORT=port, EMAIL_TIMEOUT=0.2)
            for _ in range(3):
                with pytest.raises(TimeoutError):
                    await get_connection().asend_messages(numbered(1))
        current = asyncio.current_task()
        assert [t for t in asyncio.all_tasks() if t is not current] == []

    asyncio.run(scenario())


@pytest.mark.parametrize("path", ["send_messages", "asend_messages", "check"])
def test_a_tls_handshake_that_never_comes_after_starttls(scripted, path: str) -> None:  # type: ignore[no-untyped-def]
    server = scripted({b"STARTTLS": [b"220 2.0.0 go ahead"]}, features=[b"STARTTLS"])
    settings = {"EMAIL_HOST": "127.0.0.1", "EMAIL_PORT": server.port, "EMAIL_USE_TLS": True}
    configure(**settings, EMAIL_TIMEOUT=TIMEOUT)
    started = time.monotonic()
    if path == "check":
        env = {"EMAIL_HOST": "127.0.0.1", "EMAIL_PORT": str(server.port), "EMAIL_USE_TLS": "1"}
        result = run_cli("check", env={**env, "EMAIL_TIMEOUT": str(TIMEOUT)}, timeout=WITHIN)
        (error,) = result.stderr.strip().splitlines()
        assert "step 'starttls'" in error
    else:
        driver = "async" if path == "asend_messages" else "sync"
        with senders.make(driver) as sender, pytest.raises(TimeoutError) as info:
            sender.send_messages(numbered(1))
        error = str(info.value)
    assert time.monotonic() - started < WITHIN
    assert f"no answer after {TIMEOUT:g} s waiting for the TLS handshake after STARTTLS" in error
    assert b"MAIL" not in server.received  # nothing in the clear after the 220


# --- the engine's connection classes, used directly (the outbox and Celery do) ---


@pytest.mark.parametrize("driver", senders.DRIVERS)
def test_the_connection_classes_report_the_same_steps_and_outcomes(
    start_server: ServerFactory, certs: CertFiles, driver: str
) -> None:
    server = start_server(
        starttls=certs.server_context(), auth=("user", "pw"), auth_require_tls=True
    )
    config = SMTPConfig(
        host=server.host,
        port=server.port,
        username="user",
        password="pw",
        use_tls=True,
        ssl_cafile=certs.ca,
        timeout=10,
        auth_mechanisms=(Login,),  # PLAIN comes first by default; LOGIN against a real server
    )
    items = [
        (i, Envelope("from@example.com", [f"r{i}@example.com"], b"Subject: x\r\n\r\nhi\r\n", False))
        for i in range(3)
    ]
    steps: list[str] = []

    def step(name: str, detail: str) -> None:
        steps.append(name)

    if driver == "sync":
        connection = SMTPConnection(config, on_step=step)
        connection.connect()
        outcomes = list(connection.send(iter(items)))
        connection.quit()
        assert not connection.is_open
    else:

        async def scenario() -> list[Any]:
            connection = AsyncSMTPConnection(config, on_step=step)
            await connection.connect()
            source = iter(items)

            async def next_item() -> Any:
                return next(source, None)

            found = [outcome async for outcome in connection.send(next_item)]
            await connection.quit()
            assert not connection.is_open
            return found

        outcomes = asyncio.run(scenario())
    assert steps == ["connect", "greeting", "ehlo", "starttls", "ehlo", "auth"]
    assert [(o.index, o.error, o.delivery.accepted) for o in outcomes] == [
        (i, None, [f"r{i}@example.com"]) for i in range(3)
    ]
    received = server.wait_for(3)
    assert all(r.tls and r.authenticated for r in received)
    assert any(chunk.startswith(b"AUTH LOGIN") for _, chunk in server.chunks)
