"""mailwright against a real MTA: a private Postfix (tests/postfix.py), started once per
test session, with Dovecot SASL, STARTTLS and implicit TLS, a policy service at RCPT and
at the end of data, and ports without PIPELINING, without 8BITMIME/SMTPUTF8, with SIZE
and recipient limits, and with a rate limit.

What lands in the Maildirs is compared byte for byte with what mailwright sent (less the
Return-Path, Delivered-To and Received lines Postfix puts on top). Every wait is on a
file appearing in a Maildir or a line in Postfix's log, never a fixed sleep.

``MAILWRIGHT_INTEROP_LARGE=1`` sends more messages (an opt-in run; CI sends few).
``MAILWRIGHT_REQUIRE_POSTFIX=1`` (CI) fails instead of skipping when Postfix cannot run.
"""

from __future__ import annotations

import email
import email.policy
import os
import re
import smtplib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import mailwright
import postfix
import senders
from celeryworker import Worker as CeleryWorker
from certs import CertFiles
from mailwright import EmailMessage, EmailMultiAlternatives
from mailwright.message import Envelope
from postfix import DOMAIN, PASSWORD, USER, PostfixServer, added, as_sent, return_path
from test_celery import broker, redis_url, workers  # noqa: F401 - the Celery tests' fixtures

LARGE = os.environ.get("MAILWRIGHT_INTEROP_LARGE") == "1"
BULK = 1000 if LARGE else 40

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="session")
def mta(certs: CertFiles) -> Iterator[PostfixServer]:
    reason = postfix.available()
    if reason is not None:
        if os.environ.get("MAILWRIGHT_REQUIRE_POSTFIX") == "1":
            pytest.fail(f"MAILWRIGHT_REQUIRE_POSTFIX=1 but {reason}")
        pytest.skip(reason)
    server = PostfixServer(certs).start()
    yield server
    server.stop()


class Recorded(EmailMessage):
    """An EmailMessage that keeps the bytes of its last rendering for the wire (each
    rendering draws new MIME boundaries)."""

    wire: bytes = b""

    def envelope(self) -> Envelope:
        made = super().envelope()
        self.wire = made.data
        return made


class RecordedAlternatives(EmailMultiAlternatives, Recorded):
    pass


def configure(mta: PostfixServer, port: str = "main", **settings: Any) -> None:
    mailwright.configure(
        EMAIL_BACKEND="mailwright.backends.smtp.EmailBackend",
        EMAIL_HOST="127.0.0.1",
        EMAIL_PORT=mta.ports[port],
        EMAIL_SSL_CAFILE=mta.certs.ca,
        EMAIL_TIMEOUT=30,
        **settings,
    )


def addr(user: str) -> str:
    return f"{user}@{DOMAIN}"


def by_message_id(messages: list[bytes]) -> dict[str, bytes]:
    found = {}
    for raw in messages:
        match = re.search(rb"^Message-ID: (<[^>]+>)", raw, re.MULTILINE | re.IGNORECASE)
        assert match, raw[:500]
        found[match.group(1).decode()] = raw
    return found


def message_id(message: EmailMessage) -> str:
    match = re.search(rb"^Message-ID: (<[^>]+>)", message.wire, re.MULTILINE)  # type: ignore[attr-defined]
    assert match
    return match.group(1).decode()


def assert_exact(delivered: bytes, message: Recorded, sender: str) -> None:
    assert return_path(delivered) == sender
    assert message.wire, "the message was never rendered for sending"
    assert as_sent(delivered) == message.wire


def rich(n: int, to: list[str], **kwargs: Any) -> RecordedAlternatives:
    """A message with most of what mail carries: non-ASCII names and subject, text and
    HTML, lines that start with dots, a binary attachment, an attached message."""
    inner = EmailMessage("Inner", "Forwarded text.\n", addr("erin"), [addr("frank")])
    message = RecordedAlternatives(
        f"Nachricht {n}: Grüße, 送信テスト",
        f"Hallo {n},\n.a line with a leading dot\n..two dots\n.\nÄrger über Öl\n" + "x" * 200,
        f"Jörg Müller <{addr('carol')}>",
        to,
        **kwargs,
    )
    message.attach_alternative(f"<p>Hallo {n} &amp; <b>Grüße</b></p>", "text/html")
    message.attach("data.bin", bytes(range(256)) * (40 + n), "application/octet-stream")
    message.attach("notes.txt", "Zeile eins\nZeile zwei ✓\n", "text/plain")
    message.attach(None, inner, "message/rfc822")
    return message


# --- sync and asyncio, one connection ---


def test_starttls_auth_delivers_the_exact_bytes(mta: PostfixServer, sender: senders.Sender) -> None:
    user = "bob" if sender.name == "sync" else "dave"
    bcc = "grace" if sender.name == "sync" else "heidi"
    configure(mta, EMAIL_USE_TLS=True, EMAIL_HOST_USER=USER, EMAIL_HOST_PASSWORD=PASSWORD)
    message = rich(1, [addr(user)], bcc=[addr(bcc)])
    assert sender.send_messages([message]) == 1
    for mailbox in (user, bcc):
        (delivered,) = mta.wait_for(mailbox, 1)
        assert_exact(delivered, message, addr("carol"))
        assert b"Bcc" not in as_sent(delivered)
        received = added(delivered)[0]
        assert b"with ESMTPSA" in received  # ESMTP, TLS, authenticated
        assert re.search(rb"using TLSv1\.[23]", received)
    assert mta.wait_for_log(rf"sasl_method=(PLAIN|LOGIN), sasl_username={USER}")
    parsed = email.message_from_bytes(as_sent(delivered), policy=email.policy.default)
    assert parsed["Subject"] == "Nachricht 1: Grüße, 送信テスト"
    assert parsed["From"].addresses[0].display_name == "Jörg Müller"


def test_implicit_tls_delivers_the_exact_bytes(mta: PostfixServer, sender: senders.Sender) -> None:
    user = "user0" if sender.name == "sync" else "user1"
    configure(
        mta, "implicit", EMAIL_USE_SSL=True, EMAIL_HOST_USER=USER, EMAIL_HOST_PASSWORD=PASSWORD
    )
    messages = [rich(n, [addr(user)]) for n in range(3)]
    assert sender.send_messages(messages) == 3
    delivered = by_message_id(mta.wait_for(user, 3))
    for message in messages:
        assert_exact(delivered[message_id(message)], message, addr("carol"))


def test_each_recipient_gets_its_own_reply(mta: PostfixServer, sender: senders.Sender) -> None:
    """A policy 550 and 450 and an unknown user at RCPT: the others still get it."""
    user = "user2" if sender.name == "sync" else "user3"
    configure(mta)
    message = Recorded(
        "mixed", "body\n", addr("carol"),
        [addr(user), addr("refuse550"), addr("defer450"), addr("nosuchuser")],
    )  # fmt: skip
    assert sender.send_messages([message]) == 1
    assert message.delivery is not None
    assert message.delivery.accepted == [addr(user)]
    refused = {a: code for a, (code, _) in message.delivery.refused.items()}
    assert refused == {addr("refuse550"): 550, addr("defer450"): 450, addr("nosuchuser"): 550}
    assert "refused by the test policy" in message.delivery.refused[addr("refuse550")][1]
    assert "User unknown" in message.delivery.refused[addr("nosuchuser")][1]
    (delivered,) = mta.wait_for(user, 1)
    assert_exact(delivered, message, addr("carol"))
    assert mta.delivered("refuse550") == mta.delivered("defer450") == []


# --- bulk: pipelined, several connections ---


def test_send_bulk_delivers_every_message_exactly(
    mta: PostfixServer, sender: senders.Sender
) -> None:
    prefix = "bulk0" if sender.name == "sync" else "bulk1"
    configure(mta)
    messages = [
        Recorded(f"bulk {n}", f"Body {n}\n.dot\n", addr(f"user{10 + n % 10}"), [addr(prefix)])
        for n in range(BULK)
    ]
    result = sender.send_bulk(messages, connections=2)
    assert result.ok, result
    delivered = by_message_id(mta.wait_for(prefix, BULK, timeout=300 if LARGE else 60))
    for n, message in enumerate(messages):
        assert_exact(delivered[message_id(message)], message, addr(f"user{10 + n % 10}"))
    assert "improper command pipelining" not in mta.log()


def test_without_pipelining_one_command_at_a_time(
    mta: PostfixServer, sender: senders.Sender
) -> None:
    user = "user4" if sender.name == "sync" else "user5"
    configure(mta, "nopipelining")
    messages = [Recorded(f"np {n}", f"Body {n}\n", addr("carol"), [addr(user)]) for n in range(5)]
    assert sender.send_messages(messages) == 5
    delivered = by_message_id(mta.wait_for(user, 5))
    for message in messages:
        assert_exact(delivered[message_id(message)], message, addr("carol"))
    assert "improper command pipelining" not in mta.log()


# --- limits ---


def test_size_limit_refuses_before_sending(mta: PostfixServer, sender: senders.Sender) -> None:
    user = "user6" if sender.name == "sync" else "user7"
    configure(mta, "limits")
    small = Recorded("small", "ok\n", addr("carol"), [addr(user)])
    small.attach("a.bin", b"\x00" * 20_000, "application/octet-stream")
    big = Recorded("big", "too big\n", addr("carol"), [addr(user)])
    big.attach("b.bin", b"\x00" * 40_000, "application/octet-stream")
    with pytest.raises(smtplib.SMTPDataError) as caught:
        sender.send_messages([big])
    assert caught.value.smtp_code == 552
    assert sender.send_messages([small]) == 1
    (delivered,) = mta.wait_for(user, 1)
    assert_exact(delivered, small, addr("carol"))


def test_recipient_limit(mta: PostfixServer, sender: senders.Sender) -> None:
    """Postfix takes 3 recipients per message here and answers 452 to the others."""
    users = [
        f"user{n}"
        for n in ((20, 21, 22, 23, 24) if sender.name == "sync" else (25, 26, 27, 28, 29))
    ]
    configure(mta, "limits")
    message = Recorded("many", "body\n", addr("carol"), [addr(u) for u in users])
    assert sender.send_messages([message]) == 1
    assert message.delivery is not None
    assert message.delivery.accepted == [addr(u) for u in users[:3]]
    assert {a: r[0] for a, r in message.delivery.refused.items()} == {
        addr(u): 452 for u in users[3:]
    }
    for user in users[:3]:
        (delivered,) = mta.wait_for(user, 1)
        assert_exact(delivered, message, addr("carol"))


def test_rate_limit_refuses_the_fourth_message(mta: PostfixServer) -> None:
    """3 messages a minute on this port: the fourth gets 450 at MAIL, and the
    three before it count as sent."""
    configure(mta, "rate")
    messages = [Recorded(f"rate {n}", "b\n", addr("carol"), [addr("user8")]) for n in range(4)]
    connection = mailwright.get_connection()
    with pytest.raises(smtplib.SMTPSenderRefused) as caught, connection:
        connection.send_messages(messages)
    assert caught.value.smtp_code == 450
    assert b"too much mail" in caught.value.smtp_error
    for message in messages[:3]:
        assert message.delivery is not None and message.delivery.accepted == [addr("user8")]
    assert messages[3].delivery is not None and messages[3].delivery.accepted == []
    delivered = by_message_id(mta.wait_for("user8", 3))
    for message in messages[:3]:
        assert_exact(delivered[message_id(message)], message, addr("carol"))


# --- a refused end of data (policy service in smtpd_end_of_data_restrictions) ---


@pytest.mark.parametrize("port", ["main", "nopipelining"])
def test_a_refused_end_of_data_ends_only_that_message(
    mta: PostfixServer, sender: senders.Sender, port: str
) -> None:
    """Postfix answers a MAIL after a refused end of data with 503 (nested MAIL) unless
    the client sends RSET; the messages after a refused one must reach their
    recipients with their own envelope sender, and the refused ones nobody."""
    box = f"user{30 + 2 * (sender.name != 'sync') + (port != 'main')}"
    configure(mta, port)
    senders_ = ["carol", "eod450", "dave", "eod550", "erin"]
    messages = [
        Recorded(f"eod {n}", f"from {who}\n", addr(who), [addr(box)])
        for n, who in enumerate(senders_)
    ]
    result = sender.send_bulk(messages, connections=1)
    assert result.sent == 3, result
    failed = {f.index: f.reason for f in result.failed}
    assert sorted(failed) == [1, 3], result
    assert "450" in failed[1] and "550" in failed[3]
    delivered = by_message_id(mta.wait_for(box, 3))
    for n in (0, 2, 4):
        assert_exact(delivered[message_id(messages[n])], messages[n], addr(senders_[n]))
    assert "nested MAIL command" not in mta.log()


# --- 8-bit content and a server without 8BITMIME ---

INNER_8BIT = (
    (
        "From: =?utf-8?q?J=C3=B6rg?= <joerg@example.test>\r\n"
        "To: frank@example.test\r\n"
        "Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\n"
        "Message-ID: <inner.8bit@example.test>\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: multipart/mixed; boundary=inner\r\n"
        "\r\n"
        "--inner\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: 8bit\r\n"
        "\r\n"
        "Grüße aus Köln ✓\r\n"
        ".a dot line\r\n"
        "--inner\r\n"
        "Content-Type: text/plain; charset=iso-8859-1\r\n"
        "Content-Transfer-Encoding: 8bit\r\n"
        "\r\n"
    ).encode()
    + "Ärger\r\n".encode("iso-8859-1")
    + b"--inner--\r\n"
)


def test_an_attached_8bit_message_goes_7bit_to_a_server_without_8bitmime(
    mta: PostfixServer, sender: senders.Sender
) -> None:
    user = "user34" if sender.name == "sync" else "user35"
    configure(mta, "seven_bit")
    message = Recorded("Fwd: Grüße", "Forwarded below.\n", addr("carol"), [addr(user)])
    message.attach("original.eml", INNER_8BIT, "message/rfc822")
    assert sender.send_messages([message]) == 1
    (delivered,) = mta.wait_for(user, 1)
    assert_exact(delivered, message, addr("carol"))
    assert as_sent(delivered).isascii()
    outer = email.message_from_bytes(as_sent(delivered), policy=email.policy.default)
    (attached,) = [p for p in outer.walk() if p.get_content_type() == "message/rfc822"]
    assert attached["Content-Transfer-Encoding"] in (None, "7bit")
    inner = attached.get_payload(0)
    assert inner["Subject"] == "Grüße" and inner["Message-ID"] == "<inner.8bit@example.test>"
    texts = [p.get_content() for p in inner.walk() if p.get_content_maintype() == "text"]
    assert [t.replace("\r\n", "\n") for t in texts] == ["Grüße aus Köln ✓\n.a dot line", "Ärger"]


# --- AUTH failures end with QUIT ---


def test_a_failed_auth_ends_the_session_with_quit(
    mta: PostfixServer, sender: senders.Sender
) -> None:
    configure(mta, EMAIL_USE_TLS=True, EMAIL_HOST_USER=USER, EMAIL_HOST_PASSWORD="wrong")
    start = mta.log_size()
    with pytest.raises(smtplib.SMTPAuthenticationError) as caught:
        sender.send_messages([Recorded("s", "b\n", addr("carol"), [addr("bob")])])
    assert caught.value.smtp_code == 535
    line = mta.wait_for_log(r"^.*main/smtpd.*disconnect from .*$", since=start).group(0)
    assert "auth=0/1" in line and "quit=1" in line, line
    assert "lost connection after AUTH" not in mta.log()[start:]


def test_no_auth_mechanism_ends_the_session_with_quit(
    mta: PostfixServer, sender: senders.Sender
) -> None:
    """Without TLS this Postfix offers no AUTH (smtpd_tls_auth_only)."""
    configure(mta, EMAIL_HOST_USER=USER, EMAIL_HOST_PASSWORD=PASSWORD)
    start = mta.log_size()
    with pytest.raises(smtplib.SMTPException):
        sender.send_messages([Recorded("s", "b\n", addr("carol"), [addr("bob")])])
    line = mta.wait_for_log(r"^.*main/smtpd.*disconnect from .*$", since=start).group(0)
    assert "quit=1" in line, line


# --- the durable outbox's worker, and Celery workers ---


def test_the_outbox_worker_delivers_to_postfix(mta: PostfixServer, tmp_path: Path) -> None:
    from mailwright.queue import Outbox, Worker

    path = str(tmp_path / "outbox.sqlite3")
    configure(
        mta,
        EMAIL_USE_TLS=True,
        EMAIL_HOST_USER=USER,
        EMAIL_HOST_PASSWORD=PASSWORD,
        EMAIL_QUEUE_PATH=path,
        EMAIL_QUEUE_RETRY_DELAY=0.02,
    )
    messages = [rich(n, [addr("user36")]) for n in range(5)]
    messages.append(Recorded("two", "b\n", addr("dave"), [addr("user36"), addr("refuse550")]))
    queued = mailwright.get_connection("mailwright.backends.queue.EmailBackend")
    assert queued.send_messages(messages) == 6
    stats = Worker(once=True).run()
    # The last one reached one recipient and was refused for good for the other.
    assert (stats.delivered, stats.failed, stats.deferred, stats.recipients) == (5, 1, 0, 6)
    delivered = by_message_id(mta.wait_for("user36", 6))
    with Outbox(path) as outbox:
        rows = outbox.list_messages(limit=10)
        stored = {row.id: outbox.data(row.id) for row in rows}
        details = {row.id: outbox.show(row.id) for row in rows}
    assert sorted(m.wire for m in messages) == sorted(stored.values())  # type: ignore[type-var]
    for message in messages:
        envelope_sender = addr("dave") if message.subject == "two" else addr("carol")
        assert_exact(delivered[message_id(message)], message, envelope_sender)
    last = details[max(details)]
    assert last is not None
    assert last.results[addr("refuse550")]["status"] == "failed"
    assert last.results[addr("user36")]["status"] == "sent"


@pytest.mark.timeout(150)
def test_celery_workers_deliver_to_postfix(
    mta: PostfixServer,
    broker: str,  # noqa: F811 - the fixture imported above
    workers: Callable[..., CeleryWorker],  # noqa: F811
) -> None:
    """A real ``celery worker`` (prefork) on Redis, relaying with STARTTLS and AUTH."""
    from celeryapp import make_app
    from mailwright.backends.celery import EmailBackend

    env = {
        "EMAIL_HOST": "127.0.0.1",
        "EMAIL_PORT": str(mta.ports["main"]),
        "EMAIL_USE_TLS": "true",
        "EMAIL_SSL_CAFILE": mta.certs.ca,
        "EMAIL_HOST_USER": USER,
        "EMAIL_HOST_PASSWORD": PASSWORD,
        "EMAIL_CELERY_RETRY_DELAY": "0.1",
    }
    worker = workers(broker, "mail-postfix", env, processes=2)
    messages = [rich(n, [addr("user37")]) for n in range(6)]
    messages.append(Recorded("two", "b\n", addr("dave"), [addr("user37"), addr("refuse550")]))
    backend = EmailBackend(app=make_app(broker), queue="mail-postfix", chunk=3)
    assert backend.send_messages(messages) == 7
    worker.wait_finished(3)
    delivered = by_message_id(mta.wait_for("user37", 7))
    for message in messages:
        envelope_sender = addr("dave") if message.subject == "two" else addr("carol")
        assert_exact(delivered[message_id(message)], message, envelope_sender)
    assert worker.matches(r"refuse550@example\.test.*550")
    assert mta.delivered("refuse550") == []
