"""send_mail, send_mass_mail, mail_admins, mail_managers over a real SMTP server."""

from __future__ import annotations

import pytest

import mailwright
from conftest import ServerFactory
from mailwright import (
    EmailMessage,
    configure,
    get_connection,
    mail_admins,
    mail_managers,
    send_mail,
    send_mass_mail,
)
from smtpserver import SMTPTestServer


def test_send_mail_puts_every_recipient_in_to(smtp_server: SMTPTestServer) -> None:
    assert send_mail("s", "b", "from@example.com", ["one@example.com", "two@example.com"]) == 1
    (received,) = smtp_server.wait_for(1)
    parsed = received.parsed()
    assert [a.addr_spec for a in parsed["To"].addresses] == ["one@example.com", "two@example.com"]
    assert received.rcpt_tos == ["one@example.com", "two@example.com"]
    assert parsed.get_content_type() == "text/plain"


def test_send_mail_html_message(smtp_server: SMTPTestServer) -> None:
    send_mail(
        "s", "plain version", "from@example.com", ["to@example.com"], html_message="<h1>html</h1>"
    )
    (received,) = smtp_server.wait_for(1)
    parsed = received.parsed()
    assert parsed.get_content_type() == "multipart/alternative"
    plain, html = parsed.iter_parts()
    assert plain.get_content_type() == "text/plain"
    assert plain.get_content().strip() == "plain version"
    assert html.get_content_type() == "text/html"
    assert html.get_content().strip() == "<h1>html</h1>"


def test_send_mail_default_from(smtp_server: SMTPTestServer) -> None:
    configure(DEFAULT_FROM_EMAIL="Site <site@example.com>")
    send_mail("s", "b", None, ["to@example.com"])
    (received,) = smtp_server.wait_for(1)
    assert received.mail_from == "site@example.com"
    assert received.parsed()["From"] == "Site <site@example.com>"


def test_send_mail_uses_given_connection(smtp_server: SMTPTestServer) -> None:
    connection = get_connection("locmem")
    assert send_mail("s", "b", "a@example.com", ["b@example.com"], connection=connection) == 1
    assert len(mailwright.outbox) == 1
    assert smtp_server.connections == 0


def test_send_mass_mail_one_connection_separate_messages(smtp_server: SMTPTestServer) -> None:
    message1 = (
        "Subject here",
        "Here is the message",
        "from@example.com",
        ["first@example.com", "other@example.com"],
    )
    message2 = (
        "Another Subject",
        "Here is another message",
        "from@example.com",
        ["second@test.com"],
    )
    assert send_mass_mail((message1, message2), fail_silently=False) == 2
    first, second = smtp_server.wait_for(2)
    assert first.rcpt_tos == ["first@example.com", "other@example.com"]
    assert second.rcpt_tos == ["second@test.com"]
    assert second.parsed()["Subject"] == "Another Subject"
    assert smtp_server.connections == 1


def test_send_mass_mail_auth_arguments(start_server: ServerFactory) -> None:
    server = start_server(auth=("mass", "pw"))
    configure(**server.settings)
    data = [("s", "b", "a@example.com", ["b@example.com"])]
    assert send_mass_mail(data, auth_user="mass", auth_password="pw") == 1
    assert server.wait_for(1)[0].authenticated


def test_mail_admins(smtp_server: SMTPTestServer) -> None:
    configure(
        ADMINS=[("Ann Admin", "ann@example.com"), "bob@example.com"],
        SERVER_EMAIL="server@example.com",
        EMAIL_SUBJECT_PREFIX="[site] ",
    )
    assert mail_admins("Error", "Something broke", html_message="<b>broke</b>") == 1
    (received,) = smtp_server.wait_for(1)
    parsed = received.parsed()
    assert parsed["Subject"] == "[site] Error"
    assert received.mail_from == "server@example.com"
    assert received.rcpt_tos == ["ann@example.com", "bob@example.com"]
    # To holds the addresses only, as Django's mail_admins (issue 9 item 7)
    assert [(a.display_name, a.addr_spec) for a in parsed["To"].addresses] == [
        ("", "ann@example.com"),
        ("", "bob@example.com"),
    ]
    assert parsed.get_content_type() == "multipart/alternative"


def test_mail_managers_default_prefix(smtp_server: SMTPTestServer) -> None:
    configure(MANAGERS=["manager@example.com"])
    assert mail_managers("Report", "Numbers") == 1
    (received,) = smtp_server.wait_for(1)
    assert received.parsed()["Subject"] == "[mailwright] Report"
    assert received.mail_from == "root@localhost"


def test_mail_admins_and_managers_with_empty_lists_send_nothing(
    smtp_server: SMTPTestServer,
) -> None:
    assert mail_admins("s", "b") == 0
    assert mail_managers("s", "b") == 0
    assert smtp_server.connections == 0


def test_admins_from_environment(
    smtp_server: SMTPTestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ADMINS", "Ops Team <ops@example.com>, dev@example.com")
    mail_admins("s", "b")
    (received,) = smtp_server.wait_for(1)
    assert received.rcpt_tos == ["ops@example.com", "dev@example.com"]


def test_bad_admin_address_is_named(smtp_server: SMTPTestServer) -> None:
    configure(ADMINS=["not an address"])
    with pytest.raises(ValueError, match="not an address"):
        mail_admins("s", "b")


def test_email_message_send_and_connection_attribute(smtp_server: SMTPTestServer) -> None:
    msg = EmailMessage("s", "b", "a@example.com", ["b@example.com"])
    assert msg.send() == 1
    assert msg.connection is not None
    assert msg.send() == 1
    assert len(smtp_server.wait_for(2)) == 2
