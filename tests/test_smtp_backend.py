"""The SMTP backend against a real aiosmtpd server on 127.0.0.1."""

from __future__ import annotations

import smtplib
import socket
import ssl

import pytest

import mailwright
from certs import CertFiles
from conftest import ServerFactory
from mailwright import (
    BadHeaderError,
    EmailMessage,
    EmailMultiAlternatives,
    SMTPUTF8NotSupportedError,
    configure,
    get_connection,
    send_mail,
    send_mass_mail,
)
from mailwright.backends.smtp import EmailBackend
from smtpserver import SMTPTestServer


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_send_mail_arrives_intact(smtp_server: SMTPTestServer) -> None:
    body = "Hello there.\n.A line starting with a dot\n..two dots\n.\nend"
    assert send_mail("Greetings", body, "Sender <from@example.com>", ["to@example.com"]) == 1
    (received,) = smtp_server.wait_for(1)
    assert received.mail_from == "from@example.com"
    assert received.rcpt_tos == ["to@example.com"]
    assert not received.tls
    parsed = received.parsed()
    assert parsed["Subject"] == "Greetings"
    assert parsed["From"] == "Sender <from@example.com>"
    assert parsed["To"] == "to@example.com"
    assert parsed.get_content().replace("\r\n", "\n") == body + "\n"


def test_wire_bytes_are_what_the_server_receives(smtp_server: SMTPTestServer) -> None:
    msg = EmailMultiAlternatives(
        "Subject",
        "text",
        "a@example.com",
        ["b@example.com"],
        headers={"Message-ID": "<fixed@x>", "Date": "Fri, 01 Jan 2021 00:00:00 +0000"},
    )
    msg.attach_alternative("<p>html</p>", "text/html")
    msg.attach("data.bin", bytes(range(256)) * 64)
    msg.send()
    (received,) = smtp_server.wait_for(1)
    expected = msg.as_bytes()
    # Boundaries are random per rendering; everything else must match byte for byte.
    assert len(received.data) == len(expected)
    (attachment,) = received.parsed().iter_attachments()
    assert attachment.get_content() == bytes(range(256)) * 64


def test_all_recipients_and_bcc_in_envelope_only(smtp_server: SMTPTestServer) -> None:
    msg = EmailMessage(
        "s",
        "b",
        "from@example.com",
        ["To <to@example.com>"],
        ["bcc@example.com"],
        cc=["cc@example.com"],
    )
    assert msg.send() == 1
    (received,) = smtp_server.wait_for(1)
    assert received.rcpt_tos == ["to@example.com", "cc@example.com", "bcc@example.com"]
    assert b"bcc@example.com" not in received.data
    assert received.parsed()["Bcc"] is None


def test_idna_domains_travel_encoded(smtp_server: SMTPTestServer) -> None:
    send_mail("s", "b", "Jörg <info@bücher.de>", ["user@münchen.example"])
    (received,) = smtp_server.wait_for(1)
    assert received.mail_from == "info@xn--bcher-kva.de"
    assert received.rcpt_tos == ["user@xn--mnchen-3ya.example"]
    assert "SMTPUTF8" not in received.mail_options
    assert received.parsed()["From"].addresses[0].display_name == "Jörg"


def test_smtputf8_local_part(start_server: ServerFactory) -> None:
    server = start_server(smtputf8=True)
    configure(**server.settings)
    assert send_mail("s", "b", "from@example.com", ["jörg@example.com"]) == 1
    (received,) = server.wait_for(1)
    assert received.rcpt_tos == ["jörg@example.com"]
    assert "SMTPUTF8" in received.mail_options


def test_smtputf8_refused_clearly_when_server_lacks_it(start_server: ServerFactory) -> None:
    server = start_server(smtputf8=False)
    configure(**server.settings)
    with pytest.raises(SMTPUTF8NotSupportedError, match="SMTPUTF8"):
        send_mail("s", "b", "from@example.com", ["jörg@example.com"])
    assert send_mail("s", "b", "from@example.com", ["jörg@example.com"], fail_silently=True) == 0
    assert server.messages == []


@pytest.mark.parametrize("pipelining", [True, False])
def test_send_mass_mail_uses_one_connection(start_server: ServerFactory, pipelining: bool) -> None:
    server = start_server(pipelining=pipelining)
    configure(**server.settings)
    datatuple = [
        (f"Subject {i}", f"Body {i}", "from@example.com", [f"to{i}@example.com"]) for i in range(5)
    ]
    assert send_mass_mail(datatuple) == 5
    received = server.wait_for(5)
    assert server.connections == 1
    assert [r.parsed()["Subject"] for r in received] == [f"Subject {i}" for i in range(5)]
    assert [r.rcpt_tos for r in received] == [[f"to{i}@example.com"] for i in range(5)]


def test_connection_reuse_and_context_manager(smtp_server: SMTPTestServer) -> None:
    messages = [EmailMessage(f"m{i}", "b", "a@example.com", ["b@example.com"]) for i in range(3)]
    with get_connection() as connection:
        assert connection.connection is not None
        assert connection.send_messages(messages[:1]) == 1
        assert connection.connection is not None  # an open connection stays open
        assert connection.send_messages(messages[1:]) == 2
    assert connection.connection is None
    smtp_server.wait_for(3)
    assert smtp_server.connections == 1


def test_explicit_open_close(smtp_server: SMTPTestServer) -> None:
    connection = get_connection()
    assert connection.open() is True
    assert connection.open() is False  # already open
    connection.send_messages([EmailMessage("x", "y", "a@example.com", ["b@example.com"])])
    assert connection.connection is not None
    connection.close()
    assert connection.connection is None
    connection.close()  # closing twice is harmless
    # send_messages opens and closes what it opened itself
    connection.send_messages([EmailMessage("x", "y", "a@example.com", ["b@example.com"])])
    assert connection.connection is None
    assert smtp_server.connections == 2


def test_message_without_recipients_sends_nothing(smtp_server: SMTPTestServer) -> None:
    assert EmailMessage("s", "b", "a@example.com").send() == 0
    assert get_connection().send_messages([EmailMessage("s", "b", "a@example.com", [""])]) == 0
    assert smtp_server.connections <= 1
    assert smtp_server.messages == []


def test_empty_list_sends_nothing(smtp_server: SMTPTestServer) -> None:
    assert get_connection().send_messages([]) == 0
    assert smtp_server.connections == 0


# --- refusals and failures ---


def test_partial_refusal_counts_as_sent(start_server: ServerFactory) -> None:
    server = start_server(refuse={"nobody@example.com"})
    configure(**server.settings)
    msg = EmailMessage("s", "b", "a@example.com", ["ok@example.com", "nobody@example.com"])
    assert msg.send() == 1
    (received,) = server.wait_for(1)
    assert received.rcpt_tos == ["ok@example.com"]
    assert msg.delivery is not None
    assert msg.delivery.accepted == ["ok@example.com"]
    assert msg.delivery.refused["nobody@example.com"][0] == 550


@pytest.mark.parametrize("pipelining", [True, False])
def test_all_recipients_refused(start_server: ServerFactory, pipelining: bool) -> None:
    server = start_server(refuse={"x@example.com", "y@example.com"}, pipelining=pipelining)
    configure(**server.settings)
    msg = EmailMessage("s", "b", "a@example.com", ["x@example.com", "y@example.com"])
    with pytest.raises(smtplib.SMTPRecipientsRefused) as info:
        msg.send()
    assert set(info.value.recipients) == {"x@example.com", "y@example.com"}
    again = EmailMessage("s", "b", "a@example.com", ["x@example.com", "y@example.com"])
    assert again.send(fail_silently=True) == 0
    assert server.messages == []


@pytest.mark.parametrize("pipelining", [True, False])
def test_refused_data(start_server: ServerFactory, pipelining: bool) -> None:
    server = start_server(data_reply="554 5.7.1 message rejected", pipelining=pipelining)
    configure(**server.settings)
    with pytest.raises(smtplib.SMTPDataError) as info:
        send_mail("s", "b", "a@example.com", ["b@example.com"])
    assert info.value.smtp_code == 554
    assert send_mail("s", "b", "a@example.com", ["b@example.com"], fail_silently=True) == 0


def test_refused_sender(start_server: ServerFactory) -> None:
    server = start_server(mail_reply="553 5.7.1 sender not allowed")
    configure(**server.settings)
    with pytest.raises(smtplib.SMTPSenderRefused):
        send_mail("s", "b", "a@example.com", ["b@example.com"])


def test_failure_mid_batch_keeps_connection_usable(start_server: ServerFactory) -> None:
    server = start_server(refuse={"bad@example.com"})
    configure(**server.settings)
    messages = [
        EmailMessage("one", "b", "a@example.com", ["ok1@example.com"]),
        EmailMessage("two", "b", "a@example.com", ["bad@example.com"]),
        EmailMessage("three", "b", "a@example.com", ["ok3@example.com"]),
    ]
    assert get_connection(fail_silently=True).send_messages(messages) == 2
    received = server.wait_for(2)
    assert [r.parsed()["Subject"] for r in received] == ["one", "three"]
    assert server.connections == 1


def test_error_mid_batch_raises_after_finishing_in_flight(start_server: ServerFactory) -> None:
    server = start_server(refuse={"bad@example.com"})
    configure(**server.settings)
    messages = [
        EmailMessage("one", "b", "a@example.com", ["ok1@example.com"]),
        EmailMessage("two", "b", "a@example.com", ["bad@example.com"]),
        EmailMessage("three", "b", "a@example.com", ["ok3@example.com"]),
    ]
    with pytest.raises(smtplib.SMTPRecipientsRefused):
        get_connection().send_messages(messages)
    received = server.wait_for(1)
    assert [r.parsed()["Subject"] for r in received] == ["one"]


def test_server_down() -> None:
    configure(EMAIL_HOST="127.0.0.1", EMAIL_PORT=closed_port())
    with pytest.raises(ConnectionRefusedError):
        send_mail("s", "b", "a@example.com", ["b@example.com"])
    assert send_mail("s", "b", "a@example.com", ["b@example.com"], fail_silently=True) == 0
    connection = get_connection(fail_silently=True)
    assert connection.open() is None
    assert (
        connection.send_messages([EmailMessage("s", "b", "a@example.com", ["b@example.com"])]) == 0
    )


def test_timeout(start_server: ServerFactory) -> None:
    server = start_server(reply_delay=1.0)
    configure(**server.settings, EMAIL_TIMEOUT=0.2)
    with pytest.raises((TimeoutError, smtplib.SMTPServerDisconnected)):
        send_mail("s", "b", "a@example.com", ["b@example.com"])
    assert send_mail("s", "b", "a@example.com", ["b@example.com"], fail_silently=True) == 0


def test_bad_header_touches_no_connection(smtp_server: SMTPTestServer) -> None:
    with pytest.raises(BadHeaderError):
        send_mail("Subject\r\nBcc: victim@example.com", "b", "a@example.com", ["b@example.com"])
    with pytest.raises(BadHeaderError):
        send_mail(
            "fine",
            "b",
            "a@example.com",
            ["b@example.com\nBcc: victim@example.com"],
            fail_silently=True,
        )
    assert smtp_server.connections == 0
    assert smtp_server.messages == []


def test_bad_message_mid_batch_stops_cleanly(smtp_server: SMTPTestServer) -> None:
    messages = [
        EmailMessage("one", "b", "a@example.com", ["ok@example.com"]),
        EmailMessage("two\nBcc: evil@example.com", "b", "a@example.com", ["ok@example.com"]),
        EmailMessage("three", "b", "a@example.com", ["ok@example.com"]),
    ]
    with pytest.raises(BadHeaderError):
        get_connection().send_messages(messages)
    received = smtp_server.wait_for(1)
    assert [r.parsed()["Subject"] for r in received] == ["one"]


# --- TLS ---


def test_starttls_verified_with_cafile(start_server: ServerFactory, certs: CertFiles) -> None:
    server = start_server(starttls=certs.server_context(), require_starttls=True)
    configure(**server.settings, EMAIL_USE_TLS=True, EMAIL_SSL_CAFILE=certs.ca)
    assert send_mail("s", "b", "a@example.com", ["b@example.com"]) == 1
    (received,) = server.wait_for(1)
    assert received.tls


def test_starttls_verifies_certificate_by_default(
    start_server: ServerFactory, certs: CertFiles
) -> None:
    server = start_server(starttls=certs.server_context())
    configure(**server.settings, EMAIL_USE_TLS=True)
    with pytest.raises(ssl.SSLCertVerificationError):
        send_mail("s", "b", "a@example.com", ["b@example.com"])
    assert server.messages == []


def test_starttls_verifies_host_name(start_server: ServerFactory, certs: CertFiles) -> None:
    server = start_server(starttls=certs.server_context("wrong-host"))
    configure(**server.settings, EMAIL_USE_TLS=True, EMAIL_SSL_CAFILE=certs.ca)
    with pytest.raises(ssl.SSLCertVerificationError, match=r"(?i)hostname|IP address mismatch"):
        send_mail("s", "b", "a@example.com", ["b@example.com"])


def test_starttls_untrusted_ca(start_server: ServerFactory, certs: CertFiles) -> None:
    server = start_server(starttls=certs.server_context("untrusted"))
    configure(**server.settings, EMAIL_USE_TLS=True, EMAIL_SSL_CAFILE=certs.ca)
    with pytest.raises(ssl.SSLCertVerificationError):
        send_mail("s", "b", "a@example.com", ["b@example.com"])
    assert send_mail("s", "b", "a@example.com", ["b@example.com"], fail_silently=True) == 0


def test_starttls_not_offered(smtp_server: SMTPTestServer) -> None:
    configure(EMAIL_USE_TLS=True)
    with pytest.raises(smtplib.SMTPNotSupportedError):
        send_mail("s", "b", "a@example.com", ["b@example.com"])


def test_implicit_tls(start_server: ServerFactory, certs: CertFiles) -> None:
    server = start_server(implicit_tls=certs.server_context())
    configure(**server.settings, EMAIL_USE_SSL=True, EMAIL_SSL_CAFILE=certs.ca)
    assert send_mail("s", "b", "a@example.com", ["b@example.com"]) == 1
    (received,) = server.wait_for(1)
    assert received.tls


def test_implicit_tls_verifies_by_default(start_server: ServerFactory, certs: CertFiles) -> None:
    server = start_server(implicit_tls=certs.server_context())
    configure(**server.settings, EMAIL_USE_SSL=True)
    with pytest.raises(ssl.SSLCertVerificationError):
        send_mail("s", "b", "a@example.com", ["b@example.com"])


def test_client_certificate(start_server: ServerFactory, certs: CertFiles) -> None:
    server = start_server(implicit_tls=certs.server_context(client_ca=True))
    certfile, keyfile = certs.client_files()
    configure(**server.settings, EMAIL_USE_SSL=True, EMAIL_SSL_CAFILE=certs.ca)
    with pytest.raises((ssl.SSLError, smtplib.SMTPServerDisconnected, ConnectionResetError)):
        send_mail("s", "b", "a@example.com", ["b@example.com"])
    configure(EMAIL_SSL_CERTFILE=certfile, EMAIL_SSL_KEYFILE=keyfile)
    assert send_mail("s", "b", "a@example.com", ["b@example.com"]) == 1


def test_missing_cafile_is_configuration_error(smtp_server: SMTPTestServer, tmp_path) -> None:
    connection = get_connection(use_tls=True, ssl_cafile=str(tmp_path / "missing.pem"))
    with pytest.raises(mailwright.ImproperlyConfigured, match="EMAIL_SSL_CAFILE"):
        connection.open()


# --- AUTH ---


def test_auth_success_over_starttls(start_server: ServerFactory, certs: CertFiles) -> None:
    server = start_server(
        starttls=certs.server_context(), auth=("user", "s3cret"), auth_require_tls=True
    )
    configure(
        **server.settings,
        EMAIL_USE_TLS=True,
        EMAIL_SSL_CAFILE=certs.ca,
        EMAIL_HOST_USER="user",
        EMAIL_HOST_PASSWORD="s3cret",
    )
    assert send_mail("s", "b", "a@example.com", ["b@example.com"]) == 1
    (received,) = server.wait_for(1)
    assert received.authenticated and received.tls


def test_auth_wrong_password(start_server: ServerFactory) -> None:
    server = start_server(auth=("user", "s3cret"))
    configure(**server.settings)
    with pytest.raises(smtplib.SMTPAuthenticationError):
        send_mail(
            "s", "b", "a@example.com", ["b@example.com"], auth_user="user", auth_password="wrong"
        )
    assert (
        send_mail(
            "s",
            "b",
            "a@example.com",
            ["b@example.com"],
            auth_user="user",
            auth_password="wrong",
            fail_silently=True,
        )
        == 0
    )
    assert (
        send_mail(
            "s", "b", "a@example.com", ["b@example.com"], auth_user="user", auth_password="s3cret"
        )
        == 1
    )
    (received,) = server.wait_for(1)
    assert received.authenticated


def test_no_auth_without_username(start_server: ServerFactory) -> None:
    server = start_server(auth=("user", "s3cret"))
    configure(**server.settings, EMAIL_HOST_PASSWORD="s3cret")
    # The server requires AUTH; without a username none is attempted, so MAIL is refused.
    with pytest.raises(smtplib.SMTPSenderRefused) as info:
        send_mail("s", "b", "a@example.com", ["b@example.com"])
    assert info.value.smtp_code == 530


def test_repr_never_shows_password() -> None:
    backend = EmailBackend(host="h", port=1, username="me", password="hunter2")
    assert "hunter2" not in repr(backend)
    assert "me" in repr(backend)


def test_arguments_fall_back_to_settings_and_are_checked() -> None:
    configure(EMAIL_HOST="configured", EMAIL_PORT=2525, EMAIL_TIMEOUT=3)
    backend = EmailBackend()
    assert (backend.host, backend.port, backend.timeout) == ("configured", 2525, 3)
    backend = EmailBackend(host="given", port=26, timeout=1.5)
    assert (backend.host, backend.port, backend.timeout) == ("given", 26, 1.5)
    with pytest.raises(mailwright.ImproperlyConfigured, match="EMAIL_PORT"):
        EmailBackend(port="not-a-port")
