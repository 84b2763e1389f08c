"""send_bulk and the SMTP backend's ``connections`` option, against real servers."""

from __future__ import annotations

import smtplib
import threading
from collections import Counter

import pytest

import mailwright
from conftest import ServerFactory
from mailwright import EmailMessage, configure, get_connection, send_bulk
from mailwright.bulk import RateLimiter
from smtpserver import SMTPTestServer


def messages(count: int, prefix: str = "Message") -> list[EmailMessage]:
    return [
        EmailMessage(f"{prefix} {i}", f"Body {i}", "from@example.com", [f"user{i}@example.com"])
        for i in range(count)
    ]


def subjects(server: SMTPTestServer) -> Counter[str]:
    return Counter(str(received.parsed()["Subject"]) for received in server.messages)


def test_every_message_arrives_exactly_once_over_n_connections(smtp_server: SMTPTestServer) -> None:
    batch = messages(300)
    result = send_bulk(batch, connections=4)
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


def test_rate_limit_holds_over_a_two_second_window(smtp_server: SMTPTestServer) -> None:
    rate = 40
    batch = messages(130)
    result = send_bulk(batch, connections=3, rate_limit=rate)
    assert result.sent == 130
    arrivals = sorted(received.at for received in smtp_server.wait_for(130))
    start = arrivals[0] + 0.5  # a window in the middle of the run
    in_window = sum(1 for at in arrivals if start <= at < start + 2.0)
    assert abs(in_window - 2 * rate) <= 0.1 * 2 * rate, in_window
    assert result.elapsed >= (130 - 1) / rate * 0.9


def test_rate_limiter_paces_threads_together() -> None:
    import time

    limiter = RateLimiter(200)
    stamps: list[float] = []
    lock = threading.Lock()

    def take(n: int) -> None:
        for _ in range(n):
            limiter.wait()
            with lock:
                stamps.append(time.monotonic())

    threads = [threading.Thread(target=take, args=(50,)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stamps.sort()
    assert (stamps[-1] - stamps[0]) >= 199 / 200 * 0.9
    with pytest.raises(ValueError):
        RateLimiter(0)


def test_throttled_messages_are_retried_and_delivered(start_server: ServerFactory) -> None:
    server = start_server(throttle={"user3@example.com": 2, "user7@example.com": 1})
    configure(**server.settings)
    batch = messages(10)
    result = send_bulk(batch, connections=2)
    assert result.ok, (result.failed, result.refused)
    assert result.sent == 10
    server.wait_for(10)
    assert subjects(server) == Counter(f"Message {i}" for i in range(10))
    assert batch[3].delivery is not None and batch[3].delivery.accepted == ["user3@example.com"]


def test_partly_throttled_message_retries_only_the_refused_recipient(
    start_server: ServerFactory,
) -> None:
    server = start_server(throttle={"slow@example.com": 1})
    configure(**server.settings)
    msg = EmailMessage("both", "b", "from@example.com", ["fast@example.com", "slow@example.com"])
    result = send_bulk([msg], connections=1)
    assert result.ok and result.sent == 1
    deliveries = server.wait_for(2)
    assert sorted(r.rcpt_tos[0] for r in deliveries) == ["fast@example.com", "slow@example.com"]
    assert all(len(r.rcpt_tos) == 1 for r in deliveries)  # nobody got it twice
    assert msg.delivery is not None
    assert sorted(msg.delivery.accepted) == ["fast@example.com", "slow@example.com"]


def test_421_reconnects_and_delivers(start_server: ServerFactory) -> None:
    server = start_server(mail_421=1)
    configure(**server.settings)
    result = send_bulk(messages(5), connections=1)
    assert result.ok, result.failed
    server.wait_for(5)
    assert subjects(server) == Counter(f"Message {i}" for i in range(5))
    assert server.connections >= 2


def test_refusals_and_bad_messages_are_reported_not_raised(start_server: ServerFactory) -> None:
    server = start_server(refuse={"gone@example.com"})
    configure(**server.settings)
    batch = [
        EmailMessage("fine", "b", "from@example.com", ["ok@example.com"]),
        EmailMessage("half", "b", "from@example.com", ["ok2@example.com", "gone@example.com"]),
        EmailMessage("none", "b", "from@example.com", ["gone@example.com"]),
        EmailMessage("bad\r\nBcc: x@example.com", "b", "from@example.com", ["ok3@example.com"]),
    ]
    result = send_bulk(batch, connections=2)
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


def test_server_down_fails_every_message_with_the_reason() -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = send_bulk(messages(20), connections=3, backend="smtp", host="127.0.0.1", port=port)
    assert result.sent == 0
    assert sorted(f.index for f in result.failed) == list(range(20))
    assert all("connection refused" in f.reason for f in result.failed)


def test_concurrent_calls_from_threads(smtp_server: SMTPTestServer) -> None:
    results = []

    def run(prefix: str) -> None:
        results.append(send_bulk(messages(60, prefix), connections=2))

    threads = [threading.Thread(target=run, args=(f"T{n}",)) for n in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [r.sent for r in results] == [60, 60, 60]
    smtp_server.wait_for(180)
    assert subjects(smtp_server) == Counter(f"T{n} {i}" for n in range(3) for i in range(60))


def test_backend_connections_option(smtp_server: SMTPTestServer) -> None:
    connection = get_connection(connections=3)
    assert connection.send_messages(messages(90)) == 90
    smtp_server.wait_for(90)
    assert smtp_server.connections == 3
    assert len(subjects(smtp_server)) == 90


def test_backend_connections_option_raises_on_failure(start_server: ServerFactory) -> None:
    server = start_server(refuse={"user1@example.com"})
    configure(**server.settings)
    with pytest.raises(smtplib.SMTPRecipientsRefused, match=r"user1@example\.com"):
        get_connection(connections=2).send_messages(messages(4))
    assert get_connection(connections=2, fail_silently=True).send_messages(messages(4)) == 3


def test_other_backends_work_too() -> None:
    result = send_bulk(messages(25), connections=3, backend="locmem")
    assert result.ok and result.sent == 25
    assert sorted(m.subject for m in mailwright.outbox) == sorted(f"Message {i}" for i in range(25))


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="connections"):
        send_bulk([], connections=0)
    with pytest.raises(ValueError, match="rate_limit"):
        send_bulk(messages(1), rate_limit=-5, backend="dummy")
    assert send_bulk([], backend="dummy").ok


def test_misconfigured_tls_fails_every_message_without_hanging(
    smtp_server: SMTPTestServer, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    missing = str(tmp_path / "missing-ca.pem")
    result = send_bulk(messages(6), connections=2, use_tls=True, ssl_cafile=missing)
    assert result.sent == 0
    assert sorted(f.index for f in result.failed) == list(range(6))
    assert all("EMAIL_SSL_CAFILE" in f.reason for f in result.failed)
