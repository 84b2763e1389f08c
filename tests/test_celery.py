"""Sending through Celery: the backend, the payload, the delivery task, and real
``celery worker`` processes on a real Redis delivering to a real SMTP server.

Redis comes from ``MAILWRIGHT_REDIS_URL`` (CI) or a ``redis-server`` started here; see
``celeryworker``. Every wait is on a signal (the server's count, the worker's log),
never a fixed sleep.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import signal
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import mailwright
from celeryapp import make_app
from celeryworker import (
    ChaosServer,
    RedisServer,
    Worker,
    free_port,
    fresh_database,
    pid_with_connection,
    redis_answers,
)
from mailwright import EmailMessage, EmailMultiAlternatives, ImproperlyConfigured, RawMessage
from mailwright.backends.celery import EmailBackend
from mailwright.celery.payload import PAYLOAD_VERSION, dump_chunk, load_chunk, wire_form
from mailwright.celery.tasks import TASK_NAME, deliver_chunk, retry_policy

ATTACHMENT = bytes(range(256)) * 8


# --- fixtures ---


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    required = os.environ.get("MAILWRIGHT_REQUIRE_REDIS") == "1"
    url = os.environ.get("MAILWRIGHT_REDIS_URL")
    server = None
    if url:
        if not redis_answers(url):
            pytest.fail(f"MAILWRIGHT_REDIS_URL={url} does not answer")
    else:
        try:
            server = RedisServer()
        except FileNotFoundError:
            if required:
                pytest.fail("MAILWRIGHT_REQUIRE_REDIS=1 but there is no Redis (redis-server)")
            pytest.skip("no Redis: set MAILWRIGHT_REDIS_URL or install redis-server")
        url = server.url
    yield url.rstrip("/")
    if server is not None:
        server.stop()


@pytest.fixture
def broker(redis_url: str) -> str:
    """A Redis database of its own for this test (emptied first)."""
    return fresh_database(redis_url)


@pytest.fixture
def chaos_server() -> Iterator[Callable[..., ChaosServer]]:
    servers: list[ChaosServer] = []

    def start(**options: Any) -> ChaosServer:
        server = ChaosServer(**options)
        server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def workers() -> Iterator[Callable[..., Worker]]:
    started: list[Worker] = []

    def start(*args: Any, **kwargs: Any) -> Worker:
        worker = Worker(*args, **kwargs)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


def worker_env(server: ChaosServer, **settings: object) -> dict[str, str]:
    return {
        "EMAIL_HOST": server.host,
        "EMAIL_PORT": str(server.port),
        **{name: str(value) for name, value in settings.items()},
    }


def numbered(count: int, prefix: str, mark: Callable[[int], str | None] = lambda i: None):
    """Plain messages with known Message-IDs; ``mark(i)`` sets their X-Test header."""
    result = []
    for i in range(count):
        headers = {"Message-ID": f"<{prefix}.{i}@test.example>"}
        if (kind := mark(i)) is not None:
            headers["X-Test"] = kind
        result.append(
            EmailMessage(
                f"{prefix} {i}",
                f"Body {i}\n",
                "sender@example.com",
                [f"user{i}@example.com"],
                headers=headers,
            )
        )
    return result


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def all_arrived(server: ChaosServer, messages: list[EmailMessage]) -> Callable[[], bool]:
    wanted = {m.extra_headers["Message-ID"] for m in messages}
    return lambda: wanted <= set(server.received_ids())


# --- settings, payload, policy (no broker) ---


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("EMAIL_CELERY_CHUNK", "0"),
        ("EMAIL_CELERY_CHUNK", "lots"),
        ("EMAIL_CELERY_CHUNK", 10_001),
        ("EMAIL_CELERY_QUEUE", "two words"),
        ("EMAIL_CELERY_QUEUE", 5),
        ("EMAIL_CELERY_RELAY_BACKEND", ""),
        ("EMAIL_CELERY_RATE_LIMIT", "-3"),
        ("EMAIL_CELERY_RATE_LIMIT", "fast"),
        ("EMAIL_CELERY_MAX_RETRIES", "-1"),
        ("EMAIL_CELERY_RETRY_DELAY", "0"),
    ],
)
def test_bad_settings_name_the_setting(
    monkeypatch: pytest.MonkeyPatch, name: str, value: object
) -> None:
    with pytest.raises(ImproperlyConfigured, match=name):
        if isinstance(value, str):  # from the environment: checked when read
            monkeypatch.setenv(name, value)
        else:  # given in code: checked at once
            mailwright.configure(**{name: value})
        getattr(mailwright.settings, name)


def test_settings_defaults_and_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    s = mailwright.settings
    assert s.EMAIL_CELERY_QUEUE is None
    assert s.EMAIL_CELERY_RELAY_BACKEND == "mailwright.backends.smtp.EmailBackend"
    assert s.EMAIL_CELERY_CHUNK == 50
    assert s.EMAIL_CELERY_RATE_LIMIT is None
    monkeypatch.setenv("EMAIL_CELERY_QUEUE", "mail")
    monkeypatch.setenv("EMAIL_CELERY_CHUNK", "200")
    monkeypatch.setenv("EMAIL_CELERY_RATE_LIMIT", "12.5")
    monkeypatch.setenv("EMAIL_CELERY_RETRY_DELAY", "0.5")
    assert (s.EMAIL_CELERY_QUEUE, s.EMAIL_CELERY_CHUNK) == ("mail", 200)
    assert (s.EMAIL_CELERY_RATE_LIMIT, s.EMAIL_CELERY_RETRY_DELAY) == (12.5, 0.5)
    backend = EmailBackend(chunk=7, queue="other")
    assert (backend.queue, backend.chunk) == ("other", 7)
    with pytest.raises(ImproperlyConfigured, match="EMAIL_CELERY_CHUNK"):
        EmailBackend(chunk=0)


def test_backend_refuses_credentials_rather_than_ship_them() -> None:
    with pytest.raises(ImproperlyConfigured, match="EMAIL_HOST_PASSWORD on the workers"):
        mailwright.get_connection(
            "mailwright.backends.celery.EmailBackend", username="u", password="p"
        )
    # send_mail passes auth_user=None/auth_password=None: that is fine.
    assert isinstance(
        mailwright.get_connection(
            "mailwright.backends.celery.EmailBackend", username=None, password=None
        ),
        EmailBackend,
    )


def test_payload_round_trip_and_every_bad_shape_named() -> None:
    messages = [RawMessage(b"Subject: a\r\n\r\nhi\r\n", "a@example.com", ["b@example.com"])]
    payload = json.loads(json.dumps(dump_chunk(messages)))
    assert payload["version"] == PAYLOAD_VERSION
    [back] = load_chunk(payload)
    assert (back.data, back.from_email, back.to) == (
        messages[0].data,
        "a@example.com",
        ["b@example.com"],
    )
    good = payload["messages"][0]
    cases: list[tuple[Any, str]] = [
        ("text", "must be a mapping"),
        ({"messages": []}, "missing: \\['version'\\]"),
        ({**payload, "password": "x"}, "unexpected: \\['password'\\]"),
        ({"version": 2, "messages": [good]}, "version 2 is not supported"),
        ({"version": True, "messages": [good]}, "version True"),
        ({"version": 1, "messages": []}, "non-empty list"),
        ({"version": 1, "messages": [good, {**good, "data": "@@@"}]}, "message 1: .*base64"),
        (
            {
                "version": 1,
                "messages": [{**good, "recipients": ["x@example.com\r\nRCPT TO:<e@x>"]}],
            },
            "message 0:",
        ),
        ({"version": 1, "messages": [{**good, "sender": 5}]}, "message 0: .*sender"),
    ]
    for bad, reason in cases:
        with pytest.raises(ValueError, match=reason):
            load_chunk(bad)


def test_the_backend_payload_is_raw_message_serialisation() -> None:
    """The backend writes ``RawMessage(...).to_dict()`` of each envelope itself (it
    skips checking again what composing just checked): the same form, every kind."""
    messages: list[EmailMessage] = [
        EmailMessage("plain", "body\n", "a@example.com", ["b@example.com"]),
        EmailMessage("Grüße ✓", "Ünïcode\r\nbody", "Jörg <j@bücher.example>", ["x@bücher.example"]),
        EmailMessage("utf8 local", "b", "a@example.com", ["jöran@example.com"], cc=["c@x.org"],
                     bcc=["d@x.org"], reply_to=["r@x.org"]),
        RawMessage(b"Subject: raw\nX: y\n\nline\n", "s@example.com", ["t@example.com"]),
    ]  # fmt: skip
    alternative = EmailMultiAlternatives("alt", "text", "a@example.com", ["b@example.com"])
    alternative.attach_alternative("<p>html</p>", "text/html")
    alternative.attach("f.bin", ATTACHMENT, "application/octet-stream")
    messages.append(alternative)
    for message in messages:
        envelope = message.envelope()
        message.envelope = lambda envelope=envelope: envelope  # type: ignore[method-assign]
        expected = RawMessage(envelope.data, envelope.sender, envelope.recipients).to_dict()
        assert wire_form(message) == expected
    assert wire_form(EmailMessage("nobody", "b", "a@example.com", [])) is None


def test_retry_policy_follows_the_worker_settings() -> None:
    mailwright.configure(EMAIL_CELERY_RETRY_DELAY=10, EMAIL_CELERY_MAX_RETRIES=8)
    policy = retry_policy()
    assert [policy.can_retry(attempt) for attempt in (1, 8, 9)] == [True, True, False]
    delays = [policy.delay(attempt) for attempt in range(1, 10)]
    for attempt, delay in enumerate(delays[:6], 1):  # 10 s doubled, spread by 20 %
        assert 0.8 * 10 * 2 ** (attempt - 1) <= delay <= 1.2 * 10 * 2 ** (attempt - 1)
    assert max(delays) <= 900  # 15 minutes: under the brokers' timeouts (README)
    mailwright.configure(EMAIL_CELERY_MAX_RETRIES=0)
    assert not retry_policy().can_retry(1)


def test_deliver_chunk_sorts_every_recipient(chaos_server: Callable[..., ChaosServer]) -> None:
    """The task's core, in process against a real server: accepted recipients are
    done, temporary refusals come back holding only the recipients still due."""
    server = chaos_server(
        refuse={"nobody@example.com"},
        throttle={"later@example.com": 1},
        refuse_data_containing=b"X-Test: permfail",
    )
    mailwright.configure(EMAIL_HOST=server.host, EMAIL_PORT=server.port)

    def raw(i: int, recipients: list[str], kind: str | None = None) -> RawMessage:
        headers = {"Message-ID": f"<c.{i}@test.example>", **({"X-Test": kind} if kind else {})}
        message = EmailMessage(f"chunk {i}", "body", "s@example.com", recipients, headers=headers)
        envelope = message.envelope()
        return RawMessage(envelope.data, envelope.sender, envelope.recipients)

    chunk = [
        raw(0, ["a@example.com"]),
        raw(1, ["b@example.com", "later@example.com", "nobody@example.com"]),
        raw(2, ["c@example.com"], "tempfail"),
        raw(3, ["d@example.com"], "permfail"),
        raw(4, ["busy@example.com"]),
    ]
    report = deliver_chunk(chunk)
    assert (report.delivered, report.accepted) == (2, 2)
    retry = {message.subject: message.to for message, _ in report.retry}
    assert retry == {
        "chunk 1": ["later@example.com"],
        "chunk 2": ["c@example.com"],
        "chunk 4": ["busy@example.com"],
    }
    refused = {(label, address): reason for label, address, reason in report.refused}
    assert refused.keys() == {
        ("<c.1@test.example>", "nobody@example.com"),
        ("<c.3@test.example>", "d@example.com"),
    }
    assert refused["<c.1@test.example>", "nobody@example.com"].startswith("550 5.1.1")
    assert refused["<c.3@test.example>", "d@example.com"].startswith("554 5.6.0")
    assert [r.rcpt_tos for r in server.messages] == [["a@example.com"], ["b@example.com"]]
    # The retry holds the same bytes, for the recipients still due only.
    second = deliver_chunk([message for message, _ in report.retry])
    assert [m.to for m, _ in second.retry] == [["busy@example.com"]]
    assert second.accepted == 2 and not second.refused
    assert [r.rcpt_tos for r in server.messages[2:]] == [["later@example.com"], ["c@example.com"]]
    assert server.messages[2].data == server.messages[1].data


def test_deliver_chunk_with_no_server_or_a_looping_relay_retries_everything(
    caplog: pytest.LogCaptureFixture,
) -> None:
    message = RawMessage(b"Subject: x\r\n\r\nx\r\n", "a@example.com", ["b@example.com"])
    mailwright.configure(EMAIL_HOST="127.0.0.1", EMAIL_PORT=free_port(), EMAIL_TIMEOUT=5)
    report = deliver_chunk([message])
    assert [m.to for m, _ in report.retry] == [["b@example.com"]] and not report.refused
    mailwright.configure(EMAIL_CELERY_RELAY_BACKEND="mailwright.backends.celery.EmailBackend")
    report = deliver_chunk([message])
    assert len(report.retry) == 1
    assert "EMAIL_CELERY_RELAY_BACKEND is the Celery backend" in caplog.text


def test_a_relay_that_reports_only_a_count_is_taken_at_its_word() -> None:
    mailwright.configure(EMAIL_CELERY_RELAY_BACKEND="mailwright.backends.locmem.EmailBackend")
    chunk = [
        RawMessage(b"Subject: %d\r\n\r\nx\r\n" % i, "a@example.com", [f"u{i}@x.org", "c@x.org"])
        for i in range(3)
    ]
    report = deliver_chunk(chunk)
    assert (report.delivered, report.accepted, report.retry) == (3, 6, [])
    assert [m.recipients() for m in mailwright.outbox] == [
        [f"u{i}@x.org", "c@x.org"] for i in range(3)
    ]


def test_rate_limit_paces_a_chunk_over_one_connection(
    chaos_server: Callable[..., ChaosServer],
) -> None:
    server = chaos_server()
    rate, count = 40.0, 21
    mailwright.configure(
        EMAIL_HOST=server.host, EMAIL_PORT=server.port, EMAIL_CELERY_RATE_LIMIT=rate
    )
    chunk = [
        RawMessage(b"Subject: %d\r\n\r\nx\r\n" % i, "a@example.com", [f"u{i}@example.com"])
        for i in range(count)
    ]
    report = deliver_chunk(chunk)
    assert report.accepted == count and not report.retry
    assert server.connections == 1
    arrivals = [received.at for received in server.wait_for(count)]
    assert arrivals[-1] - arrivals[0] >= (count - 1) / rate * 0.9  # never faster


def test_rate_limited_chunk_stops_at_a_silent_server() -> None:
    """A server that takes the connection and never answers: the paced chunk gives up
    on the rest after the first timeout instead of waiting one timeout per message."""
    import socket
    import threading

    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []

    def accept() -> None:
        with contextlib.suppress(OSError):
            while True:
                accepted.append(listener.accept()[0])

    threading.Thread(target=accept, daemon=True).start()
    port = listener.getsockname()[1]
    mailwright.configure(
        EMAIL_HOST="127.0.0.1", EMAIL_PORT=port, EMAIL_TIMEOUT=0.3, EMAIL_CELERY_RATE_LIMIT=1000
    )
    chunk = [
        RawMessage(b"Subject: x\r\n\r\nx\r\n", "a@example.com", [f"b{i}@example.com"])
        for i in range(6)
    ]
    try:
        report = deliver_chunk(chunk)
    finally:
        listener.close()
        for connection in accepted:
            connection.close()
    assert len(report.retry) == 6 and not report.refused
    assert len(accepted) <= 2  # open(), and the first message's own try


def test_unreachable_broker_raises_or_fails_silently() -> None:
    app = make_app(f"redis://127.0.0.1:{free_port()}/0")
    messages = numbered(3, "down")
    with pytest.raises(Exception, match=r"(?i)connect|refused") as info:
        EmailBackend(app=app).send_messages(messages)
    assert "kombu" in type(info.value).__module__
    assert EmailBackend(app=app, fail_silently=True).send_messages(messages) == 0


# --- real broker, real workers ---

with_workers = pytest.mark.timeout(150)


@with_workers
def test_a_thousand_messages_through_two_worker_processes(
    broker: str, chaos_server: Callable[..., ChaosServer], workers: Callable[..., Worker]
) -> None:
    server = chaos_server()
    worker = workers(broker, "mail-1000", worker_env(server), processes=2)
    sent: dict[str, EmailMessage] = {}
    batch: list[EmailMessage] = []
    for i in range(1000):
        headers = {"Message-ID": f"<k.{i}@test.example>"}
        subject, body = f"Message {i}", f"Hello {i}\nsecond line\n"
        if i % 7 == 0:
            subject, body = f"Grüße {i} ✓", f"Überall Umlaute {i}\n.leading dot\n"
        message = EmailMultiAlternatives(
            subject,
            body,
            f"Sender {i % 3} <sender{i % 3}@example.com>",
            [f"user{i}@example.com"],
            cc=[f"cc{i}@example.com"] if i % 13 == 0 else None,
            bcc=[f"bcc{i}@example.com"] if i % 13 == 0 else None,
            headers=headers,
        )
        if i % 10 == 0:
            message.attach_alternative(f"<p>HTML {i}</p>\n", "text/html")
            message.attach(f"data-{i}.bin", ATTACHMENT, "application/octet-stream")
        sent[headers["Message-ID"]] = message
        batch.append(message)
    # Every other one goes already in wire form: those must arrive byte for byte.
    exact: dict[str, bytes] = {}
    for i in range(1, 1000, 2):
        envelope = batch[i].envelope()
        batch[i] = RawMessage(envelope.data, envelope.sender, envelope.recipients)
        exact[f"<k.{i}@test.example>"] = envelope.data

    backend = EmailBackend(app=make_app(broker), queue="mail-1000", chunk=64)
    assert backend.send_messages(batch) == 1000
    server.wait_for(1000, timeout=120)
    worker.wait_finished(16)  # 1000 messages, 64 to a task
    ids = server.received_ids()
    assert sorted(ids) == sorted(sent) and set(ids.values()) == {1}
    for received in server.messages:
        parsed = received.parsed()
        original = sent[parsed["Message-ID"]]
        if parsed["Message-ID"] in exact:
            assert received.data == exact[parsed["Message-ID"]]
        assert parsed["Subject"] == original.subject
        assert received.mail_from == original.from_email.split("<")[-1].rstrip(">")
        assert received.rcpt_tos == original.recipients()
        assert "Bcc" not in parsed
        plain = parsed.get_body(("plain",))
        # The stdlib parser keeps the wire's CRLF in 8bit parts: compare the lines.
        assert plain is not None and plain.get_content().replace("\r\n", "\n") == original.body
        if original.alternatives:
            html = parsed.get_body(("html",))
            assert html is not None
            assert html.get_content().replace("\r\n", "\n") == original.alternatives[0].content
            [attachment] = list(parsed.iter_attachments())
            assert attachment.get_filename() == original.attachments[0].filename
            assert attachment.get_content() == ATTACHMENT


@with_workers
def test_payload_is_json_holds_no_secret_and_tampering_is_rejected(
    broker: str,
    chaos_server: Callable[..., ChaosServer],
    workers: Callable[..., Worker],
) -> None:
    import redis

    mailwright.configure(EMAIL_HOST_USER="mailer", EMAIL_HOST_PASSWORD="hunter2-very-secret")
    app = make_app(broker)
    messages = numbered(3, "json")
    assert EmailBackend(app=app, queue="mail-json", chunk=2).send_messages(messages) == 3

    queued = redis.Redis.from_url(broker).lrange("mail-json", 0, -1)
    assert len(queued) == 2  # 2 + 1
    payloads = []
    for raw in queued:
        assert b"hunter2-very-secret" not in raw and b"mailer" not in raw
        envelope = json.loads(raw)
        assert envelope["content-type"] == "application/json"
        assert envelope["headers"]["task"] == TASK_NAME
        assert envelope["headers"]["argsrepr"] in ("(<2 messages>,)", "(<1 messages>,)")
        body = base64.b64decode(envelope["body"])
        assert b"hunter2-very-secret" not in body
        args, kwargs, _ = json.loads(body)
        assert kwargs == {} and len(args) == 1
        payloads.append(args[0])
    found = [m for p in payloads for m in load_chunk(p)]
    assert sorted(m.subject for m in found) == ["json 0", "json 1", "json 2"]
    assert all(set(p) == {"version", "messages"} for p in payloads)
    good = payloads[0]["messages"][0]

    # Tampered payloads, sent as a forger with broker access would.
    injected = {**good, "recipients": ["victim@example.com>\r\nRCPT TO:<evil@example.com"]}
    tampered = [
        ({"version": 1, "messages": [injected]}, "payload message 0"),
        ({"version": 99, "messages": [good]}, "payload version 99 is not supported"),
        ({"version": 1, "messages": "all of them"}, "must be a non-empty list"),
        ({"version": 1, "messages": [{**good, "data": "not base64!"}]}, "not valid base64"),
        ("just a string", "payload must be a mapping"),
    ]
    for payload, _ in tampered:
        app.send_task(TASK_NAME, args=[payload], queue="mail-json", serializer="json")

    server = chaos_server()
    env = worker_env(server, EMAIL_HOST_USER="", EMAIL_CELERY_RETRY_DELAY=0.1)
    worker = workers(broker, "mail-json", env, processes=1)
    worker.wait_finished(2 + len(tampered))
    rejected = worker.matches(r"task (\S+) rejected, invalid payload: (.*) \(not retried\)")
    assert len(rejected) == len(tampered)
    for _, reason in tampered:
        assert any(reason in match[2] for match in rejected), (reason, rejected)
    assert not worker.matches(r"Retry in|retry \d+ of")
    assert sorted(str(r.parsed()["Subject"]) for r in server.messages) == [
        "json 0",
        "json 1",
        "json 2",
    ]
    assert all(r.rcpt_tos != ["evil@example.com"] for r in server.messages)


def test_a_bad_message_stops_the_batch_after_the_ones_before_it(broker: str) -> None:
    import redis

    batch = [
        *numbered(3, "ok"),
        EmailMessage("bad\nBcc: x@evil.example", "b", "a@x.org", ["b@x.org"]),
    ]
    batch += numbered(2, "after")
    backend = EmailBackend(app=make_app(broker), queue="mail-bad", chunk=2)
    with pytest.raises(mailwright.BadHeaderError):
        backend.send_messages(batch)
    queued = redis.Redis.from_url(broker).lrange("mail-bad", 0, -1)
    payloads = [json.loads(base64.b64decode(json.loads(raw)["body"]))[0][0] for raw in queued]
    subjects = sorted(m.subject for p in payloads for m in load_chunk(p))
    assert subjects == ["ok 0", "ok 1", "ok 2"]  # both chunks, nothing of the rest


@with_workers
def test_temporary_failures_retry_permanent_ones_are_reported(
    broker: str, chaos_server: Callable[..., ChaosServer], workers: Callable[..., Worker]
) -> None:
    server = chaos_server(
        refuse={"nobody@example.com"},
        throttle={"later@example.com": 1},
        refuse_data_containing=b"X-Test: permfail",
    )
    env = worker_env(server, EMAIL_CELERY_RETRY_DELAY=0.2, EMAIL_CELERY_MAX_RETRIES=3)
    worker = workers(broker, "mail-retry", env)

    def mark(i: int) -> str | None:
        return "tempfail" if i % 5 == 1 else "permfail" if i in (12, 22, 32) else None

    plain = numbered(40, "r", mark)
    special = [
        EmailMessage("both", "b", "s@example.com", ["ok1@example.com", "later@example.com"],
                     headers={"Message-ID": "<both@test.example>"}),
        EmailMessage("half", "h", "s@example.com", ["ok2@example.com", "nobody@example.com"],
                     headers={"Message-ID": "<half@test.example>"}),
        EmailMessage("busy", "x", "s@example.com", ["busy@example.com"],
                     headers={"Message-ID": "<busy@test.example>"}),
    ]  # fmt: skip
    backend = EmailBackend(app=make_app(broker), queue="mail-retry", chunk=10)
    assert backend.send_messages(plain + special) == 43
    worker.wait_finished(5)  # every task ended: delivered, refused or given up

    ids = server.received_ids()
    permanent = {f"<r.{i}@test.example>" for i in (12, 22, 32)}
    for message in plain:
        message_id = message.extra_headers["Message-ID"]
        if message_id in permanent:
            assert message_id not in ids and server.attempts[message_id] == 1
        else:
            assert ids[message_id] == 1, message_id
            expected = 2 if message.extra_headers.get("X-Test") == "tempfail" else 1
            assert server.attempts[message_id] == expected, message_id
    # Partly accepted: the accepted recipient is never sent the message again.
    both = [r.rcpt_tos for r in server.messages if b"<both@test.example>" in r.data]
    assert both == [["ok1@example.com"], ["later@example.com"]]
    assert server.rcpt_attempts["ok1@example.com"] == 1
    half = [r.rcpt_tos for r in server.messages if b"<half@test.example>" in r.data]
    assert half == [["ok2@example.com"]] and server.rcpt_attempts["nobody@example.com"] == 1
    # Always temporary: tried 1 + EMAIL_CELERY_MAX_RETRIES times, then reported.
    assert server.rcpt_attempts["busy@example.com"] == 4
    gave_up = worker.matches(r"<busy@test.example> to busy@example.com not delivered, gave up "
                             r"after 4 attempts: .*450 4\.2\.1 mailbox busy")  # fmt: skip
    assert len(gave_up) == 1
    refused = worker.matches(r"(<[^>]+>) to (\S+) refused for good: (\d{3} [^(]*)")
    assert sorted((m[1], m[2], m[3][:9]) for m in refused) == sorted(
        [(f"<r.{i}@test.example>", f"user{i}@example.com", "554 5.6.0") for i in (12, 22, 32)]
        + [("<half@test.example>", "nobody@example.com", "550 5.1.1")]
    )
    assert worker.matches(r"retry 1 of 3 in [\d.]+s: .*451 4\.3\.0")


def _hold_and_messages(count: int, hold_at: int, prefix: str) -> list[EmailMessage]:
    return numbered(count, prefix, lambda i: "hold" if i == hold_at else None)


@with_workers
def test_killed_pool_process_mid_chunk_loses_nothing(
    broker: str, chaos_server: Callable[..., ChaosServer], workers: Callable[..., Worker]
) -> None:
    chunk = 20
    server = chaos_server()
    worker = workers(broker, "mail-kill", worker_env(server), processes=2)
    messages = _hold_and_messages(400, hold_at=150, prefix="p")
    backend = EmailBackend(app=make_app(broker), queue="mail-kill", chunk=chunk)
    assert backend.send_messages(messages) == 400

    assert server.held.wait(60), "the held message never arrived"
    assert server.held_peer is not None
    victim = pid_with_connection(worker.pool_pids(), server.held_peer[1])
    assert victim is not None, "no pool process holds the held connection"
    os.kill(victim, signal.SIGKILL)  # mid-chunk: its SMTP transaction is open
    worker.wait_for(rf"pid:{victim} exited with 'signal 9 \(SIGKILL\)'|WorkerLostError")
    server.release.set()

    wait_until(all_arrived(server, messages), 90, "every message after the kill")
    ids = server.received_ids()
    duplicates = sum(ids.values()) - len(ids)
    assert duplicates <= chunk, duplicates  # at most the chunk that was in flight
    assert worker.proc.poll() is None and len(worker.pool_pids()) == 2  # replaced


@with_workers
def test_killed_worker_tasks_come_back_after_visibility_timeout(
    broker: str, chaos_server: Callable[..., ChaosServer], workers: Callable[..., Worker]
) -> None:
    chunk, processes, visibility = 20, 2, 4
    server = chaos_server()
    env = worker_env(server)
    first = workers(broker, "mail-dead", env, processes=processes, visibility_timeout=visibility)
    messages = _hold_and_messages(300, hold_at=100, prefix="d")
    backend = EmailBackend(app=make_app(broker), queue="mail-dead", chunk=chunk)
    assert backend.send_messages(messages) == 300

    assert server.held.wait(60), "the held message never arrived"
    first.kill_everything()  # kill -9 the main process and its pool together
    server.release.set()
    before = len(server.messages)
    assert before < 300

    workers(broker, "mail-dead", env, processes=processes, visibility_timeout=visibility,
            name="w2")  # fmt: skip
    wait_until(all_arrived(server, messages), 90, "every message after the worker died")
    ids = server.received_ids()
    duplicates = sum(ids.values()) - len(ids)
    assert duplicates <= processes * chunk, duplicates  # the chunks in flight at most


# --- mailers: the backend's relay option ---


def test_payload_carries_the_relay_alias_and_nothing_else_of_it() -> None:
    from mailwright.celery.payload import payload_relay

    messages = [RawMessage(b"Subject: a\r\n\r\nhi\r\n", "a@example.com", ["b@example.com"])]
    payload = json.loads(json.dumps(dump_chunk(messages, relay="bulk")))
    assert set(payload) == {"version", "messages", "relay"}
    assert payload_relay(payload) == "bulk" and len(load_chunk(payload)) == 1
    assert "relay" not in dump_chunk(messages)  # read by workers of earlier releases too
    for bad in (5, "", "x" * 201):
        with pytest.raises(ValueError, match="'relay' must be a mailer alias"):
            load_chunk({**payload, "relay": bad})


@with_workers
def test_a_worker_delivers_through_the_relay_mailer_the_payload_names(
    broker: str, chaos_server: Callable[..., ChaosServer], workers: Callable[..., Worker]
) -> None:
    fallback, bulk = chaos_server(), chaos_server()
    bulk_url = f"smtp://{bulk.host}:{bulk.port}"
    # The worker's own settings: EMAIL_HOST for EMAIL_CELERY_RELAY_BACKEND, and the
    # mailer "bulk" (its alias is all a payload carries).
    env = worker_env(fallback, MAILERS=json.dumps({"bulk": bulk_url}))
    worker = workers(broker, "mail-relay", env, processes=1)
    app = make_app(broker)
    mailwright.configure(
        MAILERS={
            "newsletters": {
                "BACKEND": "celery",
                "OPTIONS": {"app": app, "queue": "mail-relay", "relay": "bulk"},
            },
            "direct": {"BACKEND": "celery", "OPTIONS": {"app": app, "queue": "mail-relay"}},
            "bulk": bulk_url,
        }
    )
    news, direct = numbered(3, "news"), numbered(2, "direct")
    assert mailwright.mailers["newsletters"].send_messages(news) == 3
    assert mailwright.mailers["direct"].send_messages(direct) == 2
    wait_until(all_arrived(bulk, news), 60, "the newsletters at the bulk relay")
    wait_until(all_arrived(fallback, direct), 60, "the others at EMAIL_HOST")
    worker.wait_finished(2)
    assert set(bulk.received_ids()) == {m.extra_headers["Message-ID"] for m in news}
    assert set(fallback.received_ids()) == {m.extra_headers["Message-ID"] for m in direct}
