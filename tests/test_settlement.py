"""One rule sorts each recipient of a transaction (accepted, temporary, permanent, not
tried): ``mailwright.bulk.policy.sort_recipients``, used by ``send_bulk``, the outbox
worker and the Celery task. The same replies from a real server get the same verdict
in all three."""

from __future__ import annotations

import smtplib
from pathlib import Path
from typing import Any

import pytest

import mailwright
from mailwright import EmailMessage, RawMessage, send_bulk
from mailwright.bulk.policy import sort_recipients
from mailwright.message import Delivery
from mailwright.queue import Outbox, Worker
from mailwright.smtp import NotAttemptedError
from smtpserver import ServerOptions, SMTPTestServer, _Handler

# --- the rule itself ---


def test_a_recipient_s_own_reply_decides() -> None:
    delivery = Delivery(
        ["a@x.org"],
        {"b@x.org": (450, "mailbox busy"), "c@x.org": (550, "no such user")},
    )
    results = sort_recipients(["a@x.org", "b@x.org", "c@x.org"], delivery, None)
    assert results.accepted == ["a@x.org"]
    assert results.temporary == {"b@x.org": (450, "mailbox busy")}
    assert results.permanent == {"c@x.org": (550, "no such user")}
    assert not results.not_tried and not results.throttled


def test_503_is_the_echo_of_an_earlier_refusal_and_is_tried_again() -> None:
    delivery = Delivery([], {"a@x.org": (503, "bad sequence of commands")})
    results = sort_recipients(["a@x.org"], delivery, None)
    assert results.temporary == {"a@x.org": (503, "bad sequence of commands")}


def test_a_refused_mail_command_answers_for_every_recipient() -> None:
    error = smtplib.SMTPSenderRefused(550, b"sender blocked", "s@x.org")
    delivery = Delivery([], {"a@x.org": (503, "need MAIL"), "b@x.org": (503, "need MAIL")}, error)
    results = sort_recipients(["a@x.org", "b@x.org"], delivery, error)
    assert results.permanent == {
        "a@x.org": (550, "sender blocked"),
        "b@x.org": (550, "sender blocked"),
    }


def test_without_a_reply_of_its_own_the_error_decides() -> None:
    auth = smtplib.SMTPAuthenticationError(535, b"5.7.8 bad credentials")
    results = sort_recipients(["a@x.org"], None, auth)
    assert list(results.permanent) == ["a@x.org"] and results.permanent["a@x.org"][0] == 535
    refused = ConnectionRefusedError(111, "Connection refused")
    results = sort_recipients(["a@x.org"], None, refused)
    assert list(results.temporary) == ["a@x.org"] and results.temporary["a@x.org"][0] == 0
    nothing = sort_recipients(["a@x.org"], Delivery(), None)  # no report at all
    assert list(nothing.temporary) == ["a@x.org"]


def test_never_tried_and_throttling() -> None:
    untried = NotAttemptedError("not sent: an earlier message failed")
    results = sort_recipients(["a@x.org", "b@x.org"], Delivery([], {}, untried), untried)
    assert results.not_tried == ["a@x.org", "b@x.org"] and not results.temporary
    results = sort_recipients(["a@x.org"], Delivery([], {"a@x.org": (421, "closing")}), None)
    assert results.throttled and results.reconnect and list(results.temporary) == ["a@x.org"]
    results = sort_recipients(["a@x.org"], Delivery([], {"a@x.org": (451, "slow down")}), None)
    assert results.throttled and not results.reconnect


# --- the same verdict in send_bulk, the outbox worker and the Celery task ---


class _Echo503Once(_Handler):
    """Answers 503 to the first RCPT for odd@example.com, 550 to gone@, 250 to others."""

    async def handle_RCPT(
        self, smtp: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if address == "odd@example.com" and not getattr(self.server, "echoed", False):
            self.server.echoed = True  # type: ignore[attr-defined]
            return "503 5.5.1 bad sequence of commands"
        if address == "gone@example.com":
            return "550 5.1.1 no such user"
        result: str = await super().handle_RCPT(smtp, session, envelope, address, options)
        return result


@pytest.fixture
def echo_server() -> Any:
    server = SMTPTestServer(ServerOptions())
    server.handler_class = _Echo503Once
    server.start()
    mailwright.configure(EMAIL_HOST=server.host, EMAIL_PORT=server.port, EMAIL_TIMEOUT=10)
    yield server
    server.stop()


RECIPIENTS = ["a@example.com", "odd@example.com", "gone@example.com"]


def _message() -> EmailMessage:
    return EmailMessage("hi", "body\n", "s@example.com", RECIPIENTS)


def _delivered(server: SMTPTestServer) -> list[list[str]]:
    return [received.rcpt_tos for received in server.messages]


def test_send_bulk_sorts_by_the_rule(echo_server: SMTPTestServer) -> None:
    result = send_bulk([_message()], connections=1)
    assert result.sent == 1 and not result.failed
    assert [(r.address, r.code) for r in result.refused] == [("gone@example.com", 550)]
    assert _delivered(echo_server) == [["a@example.com"], ["odd@example.com"]]


def test_the_outbox_worker_sorts_by_the_rule(echo_server: SMTPTestServer, tmp_path: Path) -> None:
    path = str(tmp_path / "outbox.sqlite3")
    mailwright.configure(EMAIL_BACKEND="queue", EMAIL_QUEUE_PATH=path)
    assert mailwright.get_connection().send_messages([_message()]) == 1
    for _ in range(50):
        Worker(once=True, retry_delay=0.001, max_retry_delay=0.002).run()
        with Outbox(path) as outbox:
            if outbox.status().counts["failed"] == 1:
                break
    with Outbox(path) as outbox:
        detail = outbox.show(1)
    assert detail is not None and detail.state == "failed"
    statuses = {address: entry["status"] for address, entry in detail.results.items()}
    assert statuses == {
        "a@example.com": "sent",
        "odd@example.com": "sent",
        "gone@example.com": "failed",
    }
    assert detail.results["gone@example.com"]["code"] == 550
    assert _delivered(echo_server) == [["a@example.com"], ["odd@example.com"]]


def test_the_celery_task_sorts_by_the_rule(echo_server: SMTPTestServer) -> None:
    pytest.importorskip("celery")
    from mailwright.celery.tasks import deliver_chunk

    envelope = _message().envelope()
    report = deliver_chunk([RawMessage(envelope.data, envelope.sender, envelope.recipients)])
    assert (report.delivered, report.accepted) == (1, 1)
    assert [(message.to, why) for message, why in report.retry] == [
        (["odd@example.com"], "odd@example.com: 503 5.5.1 bad sequence of commands")
    ]
    assert [(address, reason[:3]) for _, address, reason in report.refused] == [
        ("gone@example.com", "550")
    ]


def test_the_celery_task_refuses_a_535_for_good(
    start_server: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """An AUTH refusal is a permanent failure, as the outbox worker treats it: not
    retried, and logged with the server's reply (not as "could not connect")."""
    pytest.importorskip("celery")
    from mailwright.celery.tasks import deliver_chunk

    server = start_server(auth=("ann", "right"))
    mailwright.configure(
        EMAIL_HOST=server.host,
        EMAIL_PORT=server.port,
        EMAIL_HOST_USER="ann",
        EMAIL_HOST_PASSWORD="wrong",
    )
    message = RawMessage(b"Subject: x\r\n\r\nx\r\n", "a@example.com", ["b@example.com"])
    report = deliver_chunk([message])
    assert not report.retry
    assert [(address, reason[:3]) for _, address, reason in report.refused] == [
        ("b@example.com", "535")
    ]
    assert "wrong" not in str(report.refused)
    assert not server.messages
