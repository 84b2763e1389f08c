"""send_bulk / asend_bulk and the SMTP backend's ``connections`` option, against real
servers. Every test taking ``sender`` runs through both ``send_bulk`` (its SMTP
connections on an event loop of its own; another backend's on threads) and
``asend_bulk``.

No timing windows: rates are checked from below only (a slow machine can only make
a send slower), and everything else by order and counts."""

from __future__ import annotations

import asyncio
import signal
import smtplib
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator

import pytest

import mailwright
from conftest import ServerFactory
from mailwright import EmailMessage, configure, send_bulk
from mailwright.backends.base import BaseEmailBackend
from mailwright.bulk import RateLimiter
from mailwright.bulk.queue import Job, JobQueue
from mailwright.message import Envelope
from scripted import HANG_UP, ScriptedServer
from senders import Sender
from smtpserver import SMTPTestServer


def messages(count: int, prefix: str = "Message") -> list[EmailMessage]:
    return [
        EmailMessage(f"{prefix} {i}", f"Body {i}", "from@example.com", [f"user{i}@example.com"])
        for i in range(count)
    ]


def subjects(server: SMTPTestServer) -> Counter[str]:
    return Counter(str(received.parsed()["Subject"]) for received in server.messages)


def settled(result: mailwright.BulkResult, batch: list[EmailMessage]) -> mailwright.BulkResult:
    """Every message is sent or failed, never both, and its delivery says the same."""
    failed = [failure.index for failure in result.failed]
    assert len(set(failed)) == len(failed)
    assert result.sent + len(failed) == result.total == len(batch)
    for index, message in enumerate(batch):
        assert message.delivery is not None, index
        assert message.delivery.sent == (index not in failed), (index, message.delivery)
    return result


def test_every_message_arrives_exactly_once_over_n_connections(
    smtp_server: SMTPTestServer, sender: Sender
) -> None:
    batch = messages(300)
    smtp_server.options.mail_after_connections = 4  # each connection gets a message
    result = settled(sender.send_bulk(batch, connections=4), batch)
    assert result.ok, (result.failed, result.refused)
    assert (result.total, result.sent) == (300, 300)
    smtp_server.wait_for(300)
    assert subjects(smtp_server) == Counter(f"Message {i}" for i in range(300))
    assert smtp_server.connections == 4
    used = Counter(received.connection for received in smtp_server.messages)
    assert len(used) == 4 and all(count > 0 for count in used.values())
    assert all(
        m.delivery is not None and m.delivery.accepted == [f"user{i}@example.com"]
        for i, m in enumerate(batch)
    )
    assert result.rate > 0 and result.elapsed > 0


def test_rate_limit_is_never_exceeded(smtp_server: SMTPTestServer, sender: Sender) -> None:
    rate, count = 40, 21
    started = time.monotonic()
    batch = messages(count)
    result = settled(sender.send_bulk(batch, connections=3, rate_limit=rate), batch)
    assert result.sent == count
    arrivals = sorted(received.at for received in smtp_server.wait_for(count))
    # The n-th slot is (n - 1) / rate after the first: neither the call nor the last
    # arrival at the server can come sooner (1 ms for the event loop's clock rounding).
    assert result.elapsed >= (count - 1) / rate - 0.001
    assert arrivals[-1] - started >= (count - 1) / rate - 0.001
    assert subjects(smtp_server) == Counter(f"Message {i}" for i in range(count))


def test_rate_limiter_hands_out_evenly_spaced_slots_across_threads(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = [1000.0]  # a clock that stands still: every delay is the slot's distance
    monkeypatch.setattr("mailwright.bulk.rate.time.monotonic", lambda: clock[0])
    limiter = RateLimiter(200)
    delays: list[float] = []
    lock = threading.Lock()

    def take(n: int) -> None:
        for _ in range(n):
            delay = limiter.reserve()
            with lock:
                delays.append(delay)

    threads = [threading.Thread(target=take, args=(50,)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(delays) == pytest.approx([i / 200 for i in range(200)])
    clock[0] += 10  # idle for a while: no burst of saved-up slots afterwards
    assert limiter.reserve() == 0
    assert limiter.reserve() == pytest.approx(1 / 200)
    for bad in (0, -5, True):
        with pytest.raises(ValueError):
            RateLimiter(bad)


def test_rate_limiter_waits_on_the_real_clock() -> None:
    started = time.monotonic()
    limiter = RateLimiter(200)
    threads = [
        threading.Thread(target=lambda: [limiter.wait() for _ in range(10)]) for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert time.monotonic() - started >= 39 / 200


def test_throttled_messages_are_retried_and_delivered(
    start_server: ServerFactory, sender: Sender
) -> None:
    server = start_server(throttle={"user3@example.com": 2, "user7@example.com": 1})
    configure(**server.settings)
    batch = messages(10)
    result = settled(sender.send_bulk(batch, connections=2), batch)
    assert result.ok, (result.failed, result.refused)
    assert result.sent == 10
    server.wait_for(10)
    assert subjects(server) == Counter(f"Message {i}" for i in range(10))
    assert batch[3].delivery is not None and batch[3].delivery.accepted == ["user3@example.com"]


def test_idle_connections_hear_of_a_retry_and_of_the_end(
    start_server: ServerFactory, sender: Sender
) -> None:
    # More connections than messages: most wait with nothing due from the start. The
    # books change while they wait (a retry is queued, the last message settles), and
    # each change must reach them (the thread driver notifies only while one waits):
    # the retry is delivered and the send ends, nothing hangs.
    server = start_server(throttle={"user1@example.com": 1})
    configure(**server.settings)
    batch = messages(2)
    result = settled(sender.send_bulk(batch, connections=8), batch)
    assert result.ok, (result.failed, result.refused)
    server.wait_for(2)
    assert subjects(server) == Counter(["Message 0", "Message 1"])
    assert batch[1].delivery is not None and batch[1].delivery.accepted == ["user1@example.com"]


def test_partly_throttled_message_retries_only_the_refused_recipient(
    start_server: ServerFactory, sender: Sender
) -> None:
    server = start_server(throttle={"slow@example.com": 1})
    configure(**server.settings)
    msg = EmailMessage("both", "b", "from@example.com", ["fast@example.com", "slow@example.com"])
    result = settled(sender.send_bulk([msg], connections=1), [msg])
    assert result.ok and result.sent == 1
    deliveries = server.wait_for(2)
    assert sorted(r.rcpt_tos[0] for r in deliveries) == ["fast@example.com", "slow@example.com"]
    assert all(len(r.rcpt_tos) == 1 for r in deliveries)  # nobody got it twice
    assert msg.delivery is not None
    assert sorted(msg.delivery.accepted) == ["fast@example.com", "slow@example.com"]


def test_421_reconnects_and_delivers(start_server: ServerFactory, sender: Sender) -> None:
    server = start_server(mail_421=1)
    configure(**server.settings)
    batch = messages(5)
    result = settled(sender.send_bulk(batch, connections=1), batch)
    assert result.ok, result.failed
    server.wait_for(5)
    assert subjects(server) == Counter(f"Message {i}" for i in range(5))
    assert server.connections >= 2


def test_refusals_and_bad_messages_are_reported_not_raised(
    start_server: ServerFactory, sender: Sender
) -> None:
    server = start_server(refuse={"gone@example.com"})
    configure(**server.settings)
    batch = [
        EmailMessage("fine", "b", "from@example.com", ["ok@example.com"]),
        EmailMessage("half", "b", "from@example.com", ["ok2@example.com", "gone@example.com"]),
        EmailMessage("none", "b", "from@example.com", ["gone@example.com"]),
        EmailMessage("bad\r\nBcc: x@example.com", "b", "from@example.com", ["ok3@example.com"]),
    ]
    result = settled(sender.send_bulk(batch, connections=2), batch)
    assert result.sent == 2
    assert not result.ok
    assert [(r.index, r.address, r.code) for r in result.refused] == [
        (1, "gone@example.com", 550),
        (2, "gone@example.com", 550),
    ]
    assert [failure.index for failure in result.failed] == [2, 3]
    assert "all recipients refused" in result.failed[0].reason
    assert "line break" in result.failed[1].reason
    server.wait_for(2)
    assert subjects(server) == Counter({"fine": 1, "half": 1})


def test_server_down_fails_every_message_with_the_reason(sender: Sender) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    batch = messages(20)
    result = settled(
        sender.send_bulk(batch, connections=3, backend="smtp", host="127.0.0.1", port=port),
        batch,
    )
    assert result.sent == 0
    assert sorted(f.index for f in result.failed) == list(range(20))
    assert all("connection refused" in f.reason for f in result.failed)


def test_concurrent_calls(smtp_server: SMTPTestServer, sender: Sender) -> None:
    """From several threads (send_bulk) or tasks (asend_bulk) at once."""
    batches = {f"T{n}": messages(60, f"T{n}") for n in range(3)}
    if sender.name == "sync":
        results = []
        threads = [
            threading.Thread(target=lambda b=b: results.append(send_bulk(b, connections=2)))
            for b in batches.values()
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    else:

        async def together() -> list[mailwright.BulkResult]:
            return await asyncio.gather(
                *(mailwright.asend_bulk(b, connections=2) for b in batches.values())
            )

        results = asyncio.run(together())
    assert [r.sent for r in results] == [60, 60, 60]
    smtp_server.wait_for(180)
    assert subjects(smtp_server) == Counter(f"T{n} {i}" for n in range(3) for i in range(60))


def test_send_bulk_runs_its_own_loop_wherever_it_is_called(
    smtp_server: SMTPTestServer,
) -> None:
    """``send_bulk`` over SMTP runs its connections on an event loop of its own: called
    where a loop runs (a coroutine) it still sends and blocks; a loop the thread set
    stays set; the caller's settings hold while the messages are composed."""

    async def from_a_coroutine() -> mailwright.BulkResult:
        with mailwright.override_settings(DEFAULT_CHARSET="iso-8859-1"):
            return send_bulk(messages(20, "Café C"), connections=2)

    assert asyncio.run(from_a_coroutine()).sent == 20
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        with mailwright.override_settings(DEFAULT_CHARSET="iso-8859-1"):
            assert send_bulk(messages(20, "Café L"), connections=2).sent == 20
        assert asyncio.get_event_loop() is loop
    finally:
        asyncio.set_event_loop(None)
        loop.close()
    smtp_server.wait_for(40)
    assert subjects(smtp_server) == Counter(f"Café {kind} {i}" for kind in "CL" for i in range(20))
    for received in smtp_server.messages:
        assert received.parsed().get_content_charset() == "iso-8859-1"


_INTERRUPTED = """
import sys
import mailwright
from mailwright import EmailMessage

batch = [EmailMessage(f"M {n}", "b", "a@example.com", [f"u{n}@example.com"]) for n in range(20)]
try:
    mailwright.send_bulk(batch, connections=1, host="127.0.0.1", port=int(sys.argv[1]))
except KeyboardInterrupt:
    print("interrupted", flush=True)
    sys.stdin.read()  # alive until the test has looked at the connection
    sys.exit(3)
"""


def test_ctrl_c_stops_send_bulk_and_drops_its_connection(start_server: ServerFactory) -> None:
    """SIGINT in the middle of a send: ``KeyboardInterrupt`` comes out of
    ``send_bulk`` with its connection already dropped, while the process lives on (no
    connection is left open behind it, no thread sends on)."""
    server = start_server(hold={"MAIL": threading.Event()})  # never answers MAIL
    process = subprocess.Popen(
        [sys.executable, "-c", _INTERRUPTED, str(server.port)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdin is not None and process.stdout is not None
    try:
        assert server.arrived["MAIL"].wait(30), "the send never reached MAIL"
        process.send_signal(signal.SIGINT)
        assert process.stdout.readline() == "interrupted\n"
        server.wait_ended(1)
        assert process.poll() is None  # dropped by send_bulk, not by the exit
        process.stdin.close()
        assert process.wait(30) == 3
    finally:
        process.kill()
        process.wait()
    assert server.messages == []


def test_backend_connections_option(smtp_server: SMTPTestServer, sender: Sender) -> None:
    smtp_server.options.mail_after_connections = 3  # each connection gets a message
    assert sender.send_messages(messages(90), connections=3) == 90
    smtp_server.wait_for(90)
    assert smtp_server.connections == 3
    assert len(subjects(smtp_server)) == 90


def test_backend_connections_option_raises_on_failure(
    start_server: ServerFactory, sender: Sender
) -> None:
    server = start_server(refuse={"user1@example.com"})
    configure(**server.settings)
    with pytest.raises(smtplib.SMTPRecipientsRefused, match=r"user1@example\.com"):
        sender.send_messages(messages(4), connections=2)
    assert sender.send_messages(messages(4), connections=2, fail_silently=True) == 3


def test_other_backends_work_too(sender: Sender) -> None:
    batch = messages(25)
    result = settled(sender.send_bulk(batch, connections=3, backend="locmem"), batch)
    assert result.ok and result.sent == 25
    assert sorted(m.subject for m in mailwright.outbox) == sorted(f"Message {i}" for i in range(25))


class _FlakyBackend(BaseEmailBackend):
    """Refuses each message's first try with 451 (temporary), takes the second."""

    lock = threading.Lock()
    tries: Counter[str] = Counter()
    taken: list[str] = []

    def send_messages(self, email_messages: Iterable[EmailMessage]) -> int:
        sent = 0
        for message in email_messages:
            with self.lock:
                self.tries[message.subject] += 1
                if self.tries[message.subject] == 1:
                    raise smtplib.SMTPResponseException(451, b"4.7.1 try again later")
                self.taken.append(message.subject)
            sent += 1
        return sent


def test_other_backends_retry_a_temporary_refusal(sender: Sender) -> None:
    """Through any other backend (one thread per connection for ``send_bulk``): a
    temporary refusal puts the message back, an idle connection waits for it to be
    due, and it is sent on its second try."""
    _FlakyBackend.tries.clear()
    _FlakyBackend.taken.clear()
    batch = messages(30)
    result = settled(sender.send_bulk(batch, connections=3, backend=_FlakyBackend), batch)
    assert result.ok and result.sent == 30, (result.failed, result.refused)
    assert _FlakyBackend.tries == Counter({f"Message {i}": 2 for i in range(30)})
    assert sorted(_FlakyBackend.taken) == sorted(f"Message {i}" for i in range(30))


def test_bad_arguments(sender: Sender) -> None:
    with pytest.raises(ValueError, match="connections"):
        sender.send_bulk([], connections=0)
    with pytest.raises(ValueError, match="rate_limit"):
        sender.send_bulk(messages(1), rate_limit=-5, backend="dummy")
    assert sender.send_bulk([], backend="dummy").ok


def test_misconfigured_tls_fails_every_message_without_hanging(
    smtp_server: SMTPTestServer, sender: Sender, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    missing = str(tmp_path / "missing-ca.pem")
    batch = messages(6)
    result = settled(
        sender.send_bulk(batch, connections=2, use_tls=True, ssl_cafile=missing), batch
    )
    assert result.sent == 0
    assert sorted(f.index for f in result.failed) == list(range(6))
    assert all("EMAIL_SSL_CAFILE" in f.reason for f in result.failed)
    assert smtp_server.connections == 0


# --- a message is sent or failed, never both (issue 8) ---


def test_a_partly_refused_message_is_sent_with_its_refusals(
    start_server: ServerFactory, sender: Sender
) -> None:
    # gone@ is refused for good; slow@ is throttled more often than attempts allow.
    server = start_server(refuse={"gone@example.com"}, throttle={"slow@example.com": 50})
    configure(**server.settings)
    batch = [
        EmailMessage("partly", "b", "from@example.com", ["ok@example.com", "gone@example.com"]),
        EmailMessage("slowly", "b", "from@example.com", ["ok2@example.com", "slow@example.com"]),
        EmailMessage("never", "b", "from@example.com", ["gone@example.com"]),
    ]
    result = settled(sender.send_bulk(batch, connections=1), batch)
    assert result.sent + len(result.failed) == result.total == 3
    assert result.sent == 2
    assert [f.index for f in result.failed] == [2]
    assert [(r.index, r.address, r.code) for r in result.refused] == [
        (0, "gone@example.com", 550),
        (1, "slow@example.com", 454),
        (2, "gone@example.com", 550),
    ]
    assert batch[1].delivery is not None and batch[1].delivery.accepted == ["ok2@example.com"]
    assert batch[1].delivery.refused == {"slow@example.com": (454, "4.7.0 try again later")}
    assert batch[1].delivery.sent and batch[1].delivery.error is None
    # ok2@ got it exactly once, however often slow@ was retried
    assert [r.rcpt_tos for r in server.wait_for(2)] == [["ok@example.com"], ["ok2@example.com"]]


def test_a_partly_sent_message_whose_retry_never_runs_reports_the_recipient(
    sender: Sender,
) -> None:
    # ok@ takes the message, slow@ gets a 451; the retry's connection is hung up on and
    # the server then refuses every new one: slow@ must be reported, not forgotten.
    server = ScriptedServer(
        {b"RCPT": [b"250 ok", b"451 4.3.0 later"], b"MAIL": [b"250 ok", HANG_UP]},
        features=[b"PIPELINING"],
        connections=1,
    )
    try:
        msg = EmailMessage("s", "b", "from@example.com", ["ok@example.com", "slow@example.com"])
        result = settled(
            sender.send_bulk(
                [msg], connections=1, backend="smtp", host="127.0.0.1", port=server.port
            ),
            [msg],
        )
    finally:
        server.close()
    assert (result.sent, result.failed) == (1, [])
    assert not result.ok
    (refusal,) = result.refused
    assert (refusal.index, refusal.address) == (0, "slow@example.com")
    assert "connection refused" in refusal.text
    assert msg.delivery is not None and msg.delivery.accepted == ["ok@example.com"]
    assert set(msg.delivery.refused) == {"slow@example.com"}


# --- streaming: any iterable, read as the messages go out ---


class _Watching:
    """A server that notes, as it accepts each message, how many messages the
    caller's generator had produced by then."""

    def __init__(self) -> None:
        from smtpserver import _Handler

        self.produced = 0
        self.seen: list[int] = []
        watch = self

        class Handler(_Handler):
            async def handle_DATA(self, smtp, session, envelope):  # type: ignore[no-untyped-def]
                watch.seen.append(watch.produced)
                return await super().handle_DATA(smtp, session, envelope)

        self.server = SMTPTestServer()
        self.server.handler_class = Handler

    def generate(self, count: int, fail_at: int | None = None):  # type: ignore[no-untyped-def]
        for n in range(count):
            if n == fail_at:
                raise LookupError("the cursor broke")
            self.produced += 1
            yield EmailMessage(f"Message {n}", "body\n", "s@example.com", [f"u{n}@example.com"])


@pytest.fixture
def watching() -> Iterator[_Watching]:
    watch = _Watching()
    watch.server.start()
    configure(EMAIL_HOST=watch.server.host, EMAIL_PORT=watch.server.port)
    yield watch
    watch.server.stop()


def test_a_generator_is_never_read_more_than_a_window_ahead(
    sender: Sender, watching: _Watching
) -> None:
    """Each message the server accepts: the generator had produced at most a window
    (a few messages per connection) more than the server had accepted before it. A
    send that read the input into a list would have produced all 1,500 first."""
    from mailwright.bulk.queue import WINDOW_PER_CONNECTION

    total, connections = 1500, 2
    reported: list[tuple[int, bool]] = []
    result = sender.send_bulk(
        watching.generate(total),
        connections=connections,
        on_result=lambda index, message: reported.append((index, message.delivery.sent)),
    )
    assert result.ok and result.total == result.sent == total
    window = WINDOW_PER_CONNECTION * connections
    assert len(watching.seen) == total
    ahead = max(produced - accepted for accepted, produced in enumerate(watching.seen))
    assert 0 < ahead <= window, ahead
    assert watching.seen[0] <= window < total
    assert sorted(index for index, _ in reported) == list(range(total))
    assert all(sent for _, sent in reported)
    assert subjects(watching.server) == Counter(f"Message {n}" for n in range(total))


def test_what_the_iterable_or_on_result_raises_comes_out_after_the_rest_was_sent(
    sender: Sender, watching: _Watching
) -> None:
    with pytest.raises(LookupError, match="the cursor broke"):
        sender.send_bulk(watching.generate(50, fail_at=30), connections=2)
    assert subjects(watching.server) == Counter(f"Message {n}" for n in range(30))

    def explode(index: int, message: EmailMessage) -> None:
        raise ValueError(f"callback failed at {index}")

    with pytest.raises(ValueError, match="callback failed at"):
        sender.send_bulk(watching.generate(20), connections=2, on_result=explode)
    assert len(watching.server.messages) == 50  # all 20 went out


def test_bulk_sending_refuses_a_connection_and_unknown_options(
    smtp_server: SMTPTestServer,
) -> None:
    message = mailwright.EmailMessage("s", "b", "a@example.com", ["b@example.com"])
    given = mailwright.get_connection(host=smtp_server.host, port=smtp_server.port)
    with pytest.raises(TypeError, match="connection="):
        mailwright.send_bulk([message], connection=given)
    with pytest.raises(TypeError, match="'hots'"):
        mailwright.send_bulk([message], host=smtp_server.host, port=smtp_server.port, hots="x")
    with pytest.raises(TypeError, match="connection="):
        asyncio.run(mailwright.asend_bulk([message], connection=given))
    assert smtp_server.messages == []


def test_a_connection_s_next_job_reads_the_clock_only_when_a_retry_waits() -> None:
    from mailwright.bulk.policy import RetryPolicy
    from mailwright.bulk.queue import JobQueue
    from mailwright.message import Delivery
    from mailwright.smtp import Outcome

    messages = [EmailMessage("s", "b", "a@example.com", [f"u{i}@example.com"]) for i in range(3)]
    queue = JobQueue(messages, RetryPolicy(base=5.0, cap=5.0))
    reads: list[float] = []
    now = 100.0

    def clock() -> float:
        reads.append(now)
        return now

    first = queue.take_due(clock)
    assert first is not None and first.index == 0 and reads == []  # nothing to retry yet
    first.envelope = messages[0].envelope()
    error = smtplib.SMTPRecipientsRefused({"u0@example.com": (451, b"try later")})
    refused = {"u0@example.com": (451, "try later")}
    queue.settle(first, Outcome(0, Delivery([], refused, error), error), now)  # due at 105
    second = queue.take_due(clock)
    assert second is not None and second.index == 1 and reads == [100.0]  # not due yet
    now = 105.0
    retry = queue.take_due(clock)  # a due retry comes before new messages
    assert retry is not None and (retry.index, retry.attempt) == (0, 2) and reads[-1] == 105.0
    third = queue.take_due(clock)
    assert third is not None and third.index == 2


# --- composing: a group in a row with several connections, each in time with one ---


@pytest.fixture
def no_compose_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    """Groups are cut short after COMPOSE_BUDGET seconds: a busy machine could cut
    one anywhere. The tests that count a whole group lift the limit."""
    monkeypatch.setattr("mailwright.bulk.queue.COMPOSE_BUDGET", 3600.0)


def test_several_connections_compose_a_group_in_a_row_one_composes_each_in_time(
    smtp_server: SMTPTestServer, sender: Sender, no_compose_budget: None
) -> None:
    """With several connections the first messages are composed in a row before any
    is sent (the processor's caches stay warm); with one connection each message is
    composed while the server works on the one before, never more than two ahead of
    what is settled (composing in a row there would leave it waiting round trips)."""
    from mailwright.bulk.queue import COMPOSE_AHEAD

    settled_then: list[int] = []  # for each message composed: how many were settled
    settled: list[int] = []

    class Counted(EmailMessage):
        def envelope(self, dkim=None):  # type: ignore[no-untyped-def]
            settled_then.append(len(settled))
            return super().envelope(dkim)

    def batch(count: int) -> list[EmailMessage]:
        return [
            Counted(f"M {n}", "body\n", "s@example.com", [f"u{n}@example.com"])
            for n in range(count)
        ]

    total = 3 * COMPOSE_AHEAD
    result = sender.send_bulk(
        batch(total), connections=4, on_result=lambda index, message: settled.append(index)
    )
    assert result.ok and result.sent == total
    assert settled_then[:COMPOSE_AHEAD] == [0] * COMPOSE_AHEAD
    assert len(settled_then) == total  # each composed once

    settled_then.clear()
    settled.clear()
    result = sender.send_bulk(
        batch(total), connections=1, on_result=lambda index, message: settled.append(index)
    )
    assert result.ok and result.sent == total
    assert len(settled_then) == total
    assert all(done >= n - 2 for n, done in enumerate(settled_then)), settled_then
    smtp_server.wait_for(2 * total)


def _composing_queue(
    count: int, bad: int | None = None, window: int | None = None
) -> tuple[JobQueue, list[int], list[EmailMessage]]:
    from mailwright.bulk.compose import compose
    from mailwright.bulk.policy import RetryPolicy

    batch = messages(count)
    if bad is not None:
        batch[bad].subject = "bad\r\nBcc: x@example.com"
    composed: list[int] = []

    def counting(job: Job) -> tuple[Envelope | None, BaseException | None, str]:
        composed.append(job.index)
        return compose(job)

    queue = JobQueue(batch, RetryPolicy(), 2, window=window, compose=counting)
    return queue, composed, batch


def test_the_queue_composes_a_group_and_a_bad_message_fails_in_its_place(
    no_compose_budget: None,
) -> None:
    from mailwright.bulk.queue import COMPOSE_AHEAD

    queue, composed, batch = _composing_queue(COMPOSE_AHEAD + 8, bad=5)
    first = queue.take(0.0)
    assert first is not None and first.index == 0 and first.envelope is not None
    assert composed == list(range(COMPOSE_AHEAD))  # the group, in a row
    assert [f.index for f in queue.result.failed] == [5]
    assert "line break" in queue.result.failed[0].reason
    assert batch[5].delivery is not None and not batch[5].delivery.sent
    taken = [first.index]
    while (job := queue.take(0.0)) is not None:
        assert job.envelope is not None  # handed out composed
        taken.append(job.index)
    assert taken == [n for n in range(COMPOSE_AHEAD + 8) if n != 5]
    assert composed == list(range(COMPOSE_AHEAD + 8))  # each once, in order


def test_the_queue_composes_no_further_than_its_window(no_compose_budget: None) -> None:
    queue, composed, _ = _composing_queue(50, window=10)
    assert queue.take(0.0) is not None
    assert composed == list(range(10))


def test_the_queue_composes_no_longer_than_its_time() -> None:
    from mailwright.bulk.compose import compose
    from mailwright.bulk.policy import RetryPolicy
    from mailwright.bulk.queue import COMPOSE_BUDGET

    slow: list[int] = []

    def slowly(job: Job) -> tuple[Envelope | None, BaseException | None, str]:
        slow.append(job.index)
        time.sleep(2 * COMPOSE_BUDGET)  # longer than the budget: one message a group
        return compose(job)

    queue = JobQueue(messages(5), RetryPolicy(), 2, compose=slowly)
    assert queue.take(0.0) is not None and slow == [0]
    assert queue.take(0.0) is not None and slow == [0, 1]


def test_jobs_composed_ahead_are_reported_when_no_connection_is_left(
    no_compose_budget: None,
) -> None:
    from mailwright.bulk.queue import COMPOSE_AHEAD

    total = COMPOSE_AHEAD + 8
    queue, composed, batch = _composing_queue(total)
    queue.connections = 1
    job = queue.take(0.0)
    assert job is not None and len(composed) == COMPOSE_AHEAD  # the rest wait, composed
    queue.connection_gone(job, ConnectionRefusedError("refused"))
    assert queue.finished
    result = queue.result
    assert result.total == total and result.sent == 0
    assert sorted(f.index for f in result.failed) == list(range(total))
    assert all("could not connect" in f.reason for f in result.failed)
    assert all(m.delivery is not None and not m.delivery.sent for m in batch)
    assert len(composed) == COMPOSE_AHEAD  # what was never composed is not composed now
