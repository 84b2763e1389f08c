"""A Django project (``tests/django_project``) sending through
``mailwright.django.EmailBackend`` to real SMTP servers, run as a user runs it:
``python -W error manage.py ...`` in its own process, so any warning fails the run.

Both forms: ``EMAIL_BACKEND`` (every Django) and Django 6.1's ``MAILERS``. The commands
are Django's own ``sendtestemail`` (``send_mail``, ``mail_admins``, ``mail_managers``)
and the project's ``send_receipt`` (an ``EmailMultiAlternatives`` with a PDF and an
inline image).
"""

from __future__ import annotations

import os
import subprocess
import sys
from email import message_from_bytes, policy
from email.message import EmailMessage as StdlibMessage
from pathlib import Path

import pytest

django = pytest.importorskip("django")

from conftest import ServerFactory  # noqa: E402
from smtpserver import Received, SMTPTestServer  # noqa: E402

PROJECT = Path(__file__).parent / "django_project"
FORMS = [
    "EMAIL_BACKEND",
    pytest.param(
        "MAILERS",
        marks=pytest.mark.skipif(django.VERSION < (6, 1), reason="MAILERS is new in Django 6.1"),
    ),
]


def manage(form: str, ports: tuple[int, int], *args: str) -> str:
    """Run ``python -W error manage.py ARGS``; return its output (it must be silent on
    stderr and succeed)."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("EMAIL_", "DJANGO_", "MAILWRIGHT_", "PYTHONWARNINGS"))
    }
    env |= {
        "PROJECT_MAIL_FORM": form,
        "PROJECT_SMTP_PORT": str(ports[0]),
        "PROJECT_RECEIPTS_PORT": str(ports[1]),
    }
    done = subprocess.run(
        [sys.executable, "-W", "error", "manage.py", *args],
        cwd=PROJECT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (done.returncode, done.stderr) == (0, ""), done.stderr
    return done.stdout


def parsed(received: Received) -> StdlibMessage:
    data = received.data.replace(b"\r\n", b"\n")
    return message_from_bytes(data, policy=policy.default)  # type: ignore[return-value]


@pytest.fixture
def servers(start_server: ServerFactory) -> tuple[SMTPTestServer, SMTPTestServer]:
    return start_server(), start_server()


@pytest.mark.parametrize("form", FORMS)
def test_sendtestemail(form: str, servers: tuple[SMTPTestServer, SMTPTestServer]) -> None:
    main, _ = servers
    ports = (main.port, main.port)
    manage(form, ports, "sendtestemail", "--admins", "--managers", "to@example.com")
    received = main.wait_for(3)
    by_recipient = {r.rcpt_tos[0]: r for r in received}
    assert sorted(by_recipient) == ["ann@example.com", "meg@example.com", "to@example.com"]
    test_mail = parsed(by_recipient["to@example.com"])
    assert test_mail["Subject"].startswith("Test email from ")
    assert test_mail.get_content().startswith("If you're reading this, it was successful.")
    assert by_recipient["to@example.com"].mail_from == "shop@example.com"
    assert by_recipient["ann@example.com"].mail_from == "errors@example.com"
    assert parsed(by_recipient["ann@example.com"])["Subject"].startswith("[Django] Test email")


@pytest.mark.parametrize("form", FORMS)
def test_receipt(form: str, servers: tuple[SMTPTestServer, SMTPTestServer]) -> None:
    main, receipts = servers
    using = ["--using", "receipts"] if form == "MAILERS" else []
    out = manage(form, (main.port, receipts.port), "send_receipt", "zoe@example.com", *using)
    assert "sent=1 accepted=zoe@example.com" in out
    target = receipts if form == "MAILERS" else main
    (received,) = target.wait_for(1)
    if form == "MAILERS":
        assert "mailer=<mailwright.django.EmailBackend alias='receipts'" in out
        assert main.messages == []
    message = parsed(received)
    assert received.mail_from == "shop@example.com"
    assert received.rcpt_tos == ["zoe@example.com"]
    assert message["Subject"] == "Your receipt, Zoë"
    assert message["X-Order"] == "1234"
    assert [a.addr_spec for a in message["Reply-To"].addresses] == ["help@example.com"]
    assert message.get_body(("plain",)).get_content() == "Thank you for your order.\n"
    html = message.get_body(("html",)).get_content()
    parts = {part.get_content_type(): part for part in message.iter_attachments()}
    assert parts["application/pdf"].get_filename() == "receipt.pdf"
    assert parts["application/pdf"].get_content().startswith(b"%PDF-1.4\n")
    logo = parts["image/png"]
    assert logo.get_content().startswith(b"\x89PNG")
    assert f'src="cid:{logo["Content-ID"].strip("<>")}"' in html
