"""``mailwright.testing`` for code outside pytest's plugin (unittest, scripts), and the
catcher's API for scripts: ``DevServer`` as a context manager and its store."""

from __future__ import annotations

import asyncio
import io
import smtplib
import threading
import unittest
from typing import Any

import pytest

import mailwright
from conftest import ServerFactory
from mailwright.devserver import DevServer
from mailwright.testing import MailCatcher, MailTestMixin, capture_mail
from smtpserver import SMTPTestServer


def send_everywhere(subject: str) -> None:
    """Send in this thread, in another thread and in an asyncio task."""
    mailwright.send_mail(f"{subject} main", "b", "a@example.com", ["b@example.com"])
    worker = threading.Thread(
        target=mailwright.send_mail,
        args=(f"{subject} thread", "b", "a@example.com", ["b@example.com"]),
    )
    worker.start()
    worker.join()
    asyncio.run(mailwright.asend_mail(f"{subject} task", "b", "a@example.com", ["b@example.com"]))


def test_capture_mail_keeps_every_thread_off_the_configured_server(
    smtp_server: SMTPTestServer,
) -> None:
    before = mailwright.outbox
    with capture_mail() as outbox:
        send_everywhere("captured")
        assert mailwright.outbox is outbox
    assert sorted(m.subject for m in outbox) == [
        "captured main",
        "captured task",
        "captured thread",
    ]
    assert smtp_server.connections == 0 and smtp_server.messages == []
    assert mailwright.outbox is before == []
    # after the block the configured SMTP server is used again
    send_everywhere("after")
    assert len(smtp_server.messages) == 3
    assert outbox[0].subject == "captured main" and len(outbox) == 3


def test_capture_mail_wins_over_the_environment_and_nests(
    start_server: ServerFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = start_server()
    monkeypatch.setenv("EMAIL_URL", f"smtp://127.0.0.1:{server.port}")
    with capture_mail() as outer:
        mailwright.send_mail("outer", "b", "a@example.com", ["b@example.com"])
        with capture_mail() as inner:
            mailwright.send_mail("inner", "b", "a@example.com", ["b@example.com"])
        assert mailwright.outbox is outer
        mailwright.send_mail("outer again", "b", "a@example.com", ["b@example.com"])
    assert [m.subject for m in outer] == ["outer", "outer again"]
    assert [m.subject for m in inner] == ["inner"]
    assert server.connections == 0
    # an explicit override_settings in the code still wins: an explicit choice
    with (
        capture_mail() as outbox,
        mailwright.override_settings(EMAIL_BACKEND="mailwright.backends.dummy.EmailBackend"),
    ):
        assert mailwright.send_mail("dummy", "b", "a@example.com", ["b@example.com"]) == 1
    assert outbox == []


class _Signup(MailTestMixin, unittest.TestCase):
    __test__ = False  # run by test_unittest_mixin's runner, not collected by pytest
    seen: list[list[Any]] = []

    def setUp(self) -> None:  # no super().setUp(): the mixin does not depend on it
        self.seen.append(list(self.outbox))

    def test_a(self) -> None:
        send_everywhere("a")
        self.assertEqual(len(self.outbox), 3)

    def test_b(self) -> None:
        mailwright.send_mail("b", "body", "a@example.com", ["b@example.com"])
        self.assertEqual([m.subject for m in self.outbox], ["b"])


class _AsyncSignup(MailTestMixin, unittest.IsolatedAsyncioTestCase):
    __test__ = False

    async def test_async(self) -> None:
        await mailwright.asend_mail("async", "body", "a@example.com", ["b@example.com"])
        self.assertEqual([m.subject for m in self.outbox], ["async"])


def test_unittest_mixin(smtp_server: SMTPTestServer) -> None:
    suite = unittest.TestSuite(
        [
            unittest.defaultTestLoader.loadTestsFromTestCase(_Signup),
            unittest.defaultTestLoader.loadTestsFromTestCase(_AsyncSignup),
        ]
    )
    result = unittest.TextTestRunner(stream=io.StringIO()).run(suite)
    assert result.testsRun == 3
    assert result.wasSuccessful(), result.failures + result.errors
    assert _Signup.seen == [[], []]  # each test starts empty
    assert smtp_server.connections == 0


def test_unittest_mixin_failure_is_reported() -> None:
    class Failing(MailTestMixin, unittest.TestCase):
        def test_expects_mail(self) -> None:
            self.assertEqual(len(self.outbox), 1)

    result = unittest.TextTestRunner(stream=io.StringIO()).run(Failing("test_expects_mail"))
    assert len(result.failures) == 1


def test_mail_catcher_context_manager() -> None:
    mailwright.configure(EMAIL_HOST="smtp.invalid", EMAIL_HOST_USER="me", EMAIL_USE_TLS=True)
    with MailCatcher() as catcher:
        send_everywhere("caught")
        messages = catcher.wait_for(3, timeout=10)
        assert sorted(str(m["Subject"]) for m in messages) == [
            "caught main",
            "caught task",
            "caught thread",
        ]
        assert repr(catcher) == f"<MailCatcher 127.0.0.1:{catcher.port}, 3 messages>"
        with pytest.raises(AssertionError, match=r"3 messages arrived, not 4, within 0\.1 s"):
            catcher.wait_for(4, timeout=0.1)
    assert mailwright.settings.EMAIL_HOST == "smtp.invalid"  # routing ended with the block


def test_devserver_context_manager_is_quiet_and_has_a_store(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with DevServer("127.0.0.1", 0, None) as server:
        with smtplib.SMTP("127.0.0.1", server.smtp_port, timeout=10) as client:
            client.sendmail("a@example.com", ["b@example.com"], b"Subject: one\r\n\r\nfirst\r\n")
            client.sendmail("a@example.com", ["c@example.com"], b"Subject: two\r\n\r\nsecond\r\n")
        assert server.wait_for_messages(2, timeout=10)
        assert server.wait_until_reported(timeout=10)
        first, second = server.store.messages()
        assert (first.subject, second.subject) == ("one", "two")
        assert second.rcpt_tos == ["c@example.com"] and second.mail_from == "a@example.com"
        assert second.parsed().get_content() == "second\r\n"
        assert server.store.get(first.id) is first
        assert server.store.get("no-such-id") is None
        assert server.store.clear() == 2
        assert server.store.messages() == [] and server.store.get(first.id) is None
    assert capsys.readouterr() == ("", "")  # nothing printed
    with pytest.raises(OSError), smtplib.SMTP("127.0.0.1", server.smtp_port, timeout=5):
        pass  # stopped on leaving the block


@pytest.mark.parametrize("asked", ["quiet=False", "out"])
def test_devserver_prints_when_asked(asked: str, capsys: pytest.CaptureFixture[str]) -> None:
    out = io.StringIO()
    options: dict[str, Any] = {"quiet": False} if asked == "quiet=False" else {"out": out}
    with DevServer("127.0.0.1", 0, None, **options) as server:
        with smtplib.SMTP("127.0.0.1", server.smtp_port, timeout=10) as client:
            client.sendmail("a@example.com", ["b@example.com"], b"Subject: loud\r\n\r\nhi\r\n")
        assert server.wait_for_messages(1, timeout=10)
        assert server.wait_until_reported(timeout=10)
    printed = capsys.readouterr().out if asked == "quiet=False" else out.getvalue()
    assert "Subject: loud" in printed
