"""The SMTP backend against a real aiosmtpd server on 127.0.0.1, once per driver.

Every test taking ``sender`` runs twice: through the blocking API (``send_mail``,
``send_messages``, ``open``/``close``) and through the asyncio one (``asend_mail``,
``asend_messages``, ``aopen``/``aclose``) — the same engine, two drivers.
"""

from __future__ import annotations

import smtplib
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

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
)
from mailwright.backends.smtp import EmailBackend
from scripted import ScriptedServer
from senders import Sender
from smtpserver import SMTPTestServer


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_send_mail_arrives_intact(smtp_server: SMTPTestServer, sender: Sender) -> None:
    body = "Hello there.\n.A line starting with a dot\n..two dots\n.\nend"
    assert sender.send_mail("Greetings", body, "Sender <from@example.com>", ["to@example.com"]) == 1
    (received,) = smtp_server.wait_for(1)
    assert received.mail_from == "from@example.com"
    assert received.rcpt_tos == ["to@example.com"]
    assert not received.tls
    parsed = received.parsed()
    assert parsed["Subject"] == "Greetings"
    assert parsed["From"] == "Sender <from@example.com>"
    assert parsed["To"] == "to@example.com"
    assert parsed.get_content().replace("\r\n", "\n") == body + "\n"


def test_wire_bytes_are_what_the_server_receives(
    smtp_server: SMTPTestServer, sender: Sender
) -> None:
    msg = EmailMultiAlternatives(
        "Subject",
        "text",
        "a@example.com",
        ["b@example.com"],
        headers={"Message-ID": "<fixed@x>", "Date": "Fri, 01 Jan 2021 00:00:00 +0000"},
    )
    msg.attach_alternative("<p>html</p>", "text/html")
    msg.attach("data.bin", bytes(range(256)) * 64)
    assert sender.send_messages([msg]) == 1
    (received,) = smtp_server.wait_for(1)
    expected = msg.as_bytes()
    # Boundaries are random per rendering; everything else must match byte for byte.
    assert len(received.data) == len(expected)
    (attachment,) = received.parsed().iter_attachments()
    assert attachment.get_content() == bytes(range(256)) * 64


def test_all_recipients_and_bcc_in_envelope_only(
    smtp_server: SMTPTestServer, sender: Sender
) -> None:
    msg = EmailMessage(
        "s",
        "b",
        "from@example.com",
        ["To <to@example.com>"],
        ["bcc@example.com"],
        cc=["cc@example.com"],
    )
    assert sender.send_messages([msg]) == 1
    (received,) = smtp_server.wait_for(1)
    assert received.rcpt_tos == ["to@example.com", "cc@example.com", "bcc@example.com"]
    assert b"bcc@example.com" not in received.data
    assert received.parsed()["Bcc"] is None


def test_idna_domains_travel_encoded(smtp_server: SMTPTestServer, sender: Sender) -> None:
    sender.send_mail("s", "b", "Jörg <info@bücher.de>", ["user@münchen.example"])
    (received,) = smtp_server.wait_for(1)
    assert received.mail_from == "info@xn--bcher-kva.de"
    assert received.rcpt_tos == ["user@xn--mnchen-3ya.example"]
    assert "SMTPUTF8" not in received.mail_options
    assert received.parsed()["From"].addresses[0].display_name == "Jörg"


def test_smtputf8_local_part(start_server: ServerFactory, sender: Sender) -> None:
    server = start_server(smtputf8=True)
    configure(**server.settings)
    assert sender.send_mail("s", "b", "from@example.com", ["jörg@example.com"]) == 1
    (received,) = server.wait_for(1)
    assert received.rcpt_tos == ["jörg@example.com"]
    assert "SMTPUTF8" in received.mail_options


def test_smtputf8_refused_clearly_when_server_lacks_it(
    start_server: ServerFactory, sender: Sender
) -> None:
    server = start_server(smtputf8=False)
    configure(**server.settings)
    with pytest.raises(SMTPUTF8NotSupportedError, match="SMTPUTF8"):
        sender.send_mail("s", "b", "from@example.com", ["jörg@example.com"])
    assert (
        sender.send_mail("s", "b", "from@example.com", ["jörg@example.com"], fail_silently=True)
        == 0
    )
    # the connection stays usable for messages the server can take
    assert sender.send_mail("s", "fine", "from@example.com", ["b@example.com"]) == 1
    assert [r.rcpt_tos for r in server.wait_for(1)] == [["b@example.com"]]


@pytest.mark.parametrize("pipelining", [True, False])
def test_send_mass_mail_uses_one_connection(
    start_server: ServerFactory, sender: Sender, pipelining: bool
) -> None:
    server = start_server(pipelining=pipelining)
    configure(**server.settings)
    datatuple = [
        (f"Subject {i}", f"Body {i}", "from@example.com", [f"to{i}@example.com"]) for i in range(5)
    ]
    assert sender.send_mass_mail(datatuple) == 5
    received = server.wait_for(5)
    assert server.connections == 1
    assert [r.parsed()["Subject"] for r in received] == [f"Subject {i}" for i in range(5)]
    assert [r.rcpt_tos for r in received] == [[f"to{i}@example.com"] for i in range(5)]


def test_send_messages_takes_any_iterable_even_a_generator(
    smtp_server: SMTPTestServer, sender: Sender
) -> None:
    composed: list[int] = []

    def messages():  # type: ignore[no-untyped-def]
        for i in range(4):
            composed.append(i)
            yield EmailMessage(f"gen {i}", "b", "a@example.com", [f"u{i}@example.com"])

    assert sender.send_messages(messages()) == 4
    assert composed == [0, 1, 2, 3]
    assert [r.parsed()["Subject"] for r in smtp_server.wait_for(4)] == [
        f"gen {i}" for i in range(4)
    ]
    assert smtp_server.connections == 1


def test_connection_reuse_and_context_manager(smtp_server: SMTPTestServer, sender: Sender) -> None:
    messages = [EmailMessage(f"m{i}", "b", "a@example.com", ["b@example.com"]) for i in range(3)]
    with sender.session(get_connection()) as connection:
        assert sender.is_open(connection)
        assert sender.send_messages(messages[:1], connection) == 1
        assert sender.is_open(connection)  # an open connection stays open
        assert sender.send_messages(messages[1:], connection) == 2
    assert not sender.is_open(connection)
    smtp_server.wait_for(3)
    assert smtp_server.connections == 1


def test_explicit_open_close(smtp_server: SMTPTestServer, sender: Sender) -> None:
    connection = get_connection()
    assert sender.open(connection) is True
    assert sender.open(connection) is False  # already open
    sender.send_messages([EmailMessage("x", "y", "a@example.com", ["b@example.com"])], connection)
    assert sender.is_open(connection)
    sender.close(connection)
    assert not sender.is_open(connection)
    sender.close(connection)  # closing twice is harmless
    # send_messages opens and closes what it opened itself
    sender.send_messages([EmailMessage("x", "y", "a@example.com", ["b@example.com"])], connection)
    assert not sender.is_open(connection)
    assert smtp_server.connections == 2
    assert len(smtp_server.wait_for(2)) == 2


def test_message_without_recipients_sends_nothing(
    smtp_server: SMTPTestServer, sender: Sender
) -> None:
    msg = EmailMessage("s", "b", "a@example.com")
    assert sender.send_messages([msg]) == 0
    assert msg.delivery is not None and not msg.delivery.sent
    assert sender.send_messages([EmailMessage("s", "b", "a@example.com", [""])]) == 0
    assert smtp_server.connections == 0
    assert smtp_server.messages == []


def test_empty_list_sends_nothing(smtp_server: SMTPTestServer, sender: Sender) -> None:
    assert sender.send_messages([]) == 0
    assert smtp_server.connections == 0


# --- refusals and failures ---


def test_partial_refusal_counts_as_sent(start_server: ServerFactory, sender: Sender) -> None:
    server = start_server(refuse={"nobody@example.com"})
    configure(**server.settings)
    msg = EmailMessage("s", "b", "a@example.com", ["ok@example.com", "nobody@example.com"])
    assert sender.send_messages([msg]) == 1
    (received,) = server.wait_for(1)
    assert received.rcpt_tos == ["ok@example.com"]
    assert msg.delivery is not None
    assert msg.delivery.accepted == ["ok@example.com"]
    assert msg.delivery.refused["nobody@example.com"][0] == 550
    assert msg.delivery.error is None and msg.delivery.sent


@pytest.mark.parametrize("pipelining", [True, False])
def test_all_recipients_refused(
    start_server: ServerFactory, sender: Sender, pipelining: bool
) -> None:
    server = start_server(refuse={"x@example.com", "y@example.com"}, pipelining=pipelining)
    configure(**server.settings)
    msg = EmailMessage("s", "b", "a@example.com", ["x@example.com", "y@example.com"])
    with pytest.raises(smtplib.SMTPRecipientsRefused) as info:
        sender.send_messages([msg])
    assert set(info.value.recipients) == {"x@example.com", "y@example.com"}
    assert msg.delivery is not None and msg.delivery.error is info.value
    again = EmailMessage("s", "b", "a@example.com", ["x@example.com", "y@example.com"])
    assert sender.send_messages([again], fail_silently=True) == 0
    assert again.delivery is not None and again.delivery.accepted == []
    assert {code for code, _ in again.delivery.refused.values()} == {550}
    assert server.messages == []


@pytest.mark.parametrize("pipelining", [True, False])
def test_refused_data(start_server: ServerFactory, sender: Sender, pipelining: bool) -> None:
    server = start_server(data_reply="554 5.7.1 message rejected", pipelining=pipelining)
    configure(**server.settings)
    with pytest.raises(smtplib.SMTPDataError) as info:
        sender.send_mail("s", "b", "a@example.com", ["b@example.com"])
    assert info.value.smtp_code == 554
    assert sender.send_mail("s", "b", "a@example.com", ["b@example.com"], fail_silently=True) == 0


def test_refused_sender(start_server: ServerFactory, sender: Sender) -> None:
    server = start_server(mail_reply="553 5.7.1 sender not allowed")
    configure(**server.settings)
    with pytest.raises(smtplib.SMTPSenderRefused) as info:
        sender.send_mail("s", "b", "a@example.com", ["b@example.com"])
    assert info.value.smtp_code == 553 and info.value.sender == "a@example.com"


@pytest.mark.parametrize("pipelining", [True, False])
def test_failure_mid_batch_keeps_connection_usable(
    start_server: ServerFactory, sender: Sender, pipelining: bool
) -> None:
    server = start_server(refuse={"bad@example.com"}, pipelining=pipelining)
    configure(**server.settings)
    messages = [
        EmailMessage("one", "b", "a@example.com", ["ok1@example.com"]),
        EmailMessage("two", "b", "a@example.com", ["bad@example.com"]),
        EmailMessage("three", "b", "a@example.com", ["ok3@example.com"]),
    ]
    assert sender.send_messages(messages, fail_silently=True) == 2
    received = server.wait_for(2)
    assert [r.parsed()["Subject"] for r in received] == ["one", "three"]
    assert server.connections == 1
    assert [bool(m.delivery and m.delivery.sent) for m in messages] == [True, False, True]


@pytest.mark.parametrize("pipelining", [True, False])
def test_error_mid_batch_raises_and_every_message_has_a_delivery(
    start_server: ServerFactory, sender: Sender, pipelining: bool
) -> None:
    server = start_server(refuse={"bad@example.com"}, pipelining=pipelining)
    configure(**server.settings)
    messages = [
        EmailMessage("one", "b", "a@example.com", ["ok1@example.com"]),
        EmailMessage("two", "b", "a@example.com", ["bad@example.com"]),
        EmailMessage("three", "b", "a@example.com", ["ok3@example.com"]),
        EmailMessage("four", "b", "a@example.com", ["ok4@example.com"]),
    ]
    with pytest.raises(smtplib.SMTPRecipientsRefused) as info:
        sender.send_messages(messages)
    server.wait_ended()
    assert [r.parsed()["Subject"] for r in server.messages] == ["one"]
    deliveries = [m.delivery for m in messages]
    assert all(d is not None for d in deliveries)
    assert deliveries[0].accepted == ["ok1@example.com"] and deliveries[0].error is None
    assert deliveries[1].error is info.value
    assert deliveries[1].refused == {"bad@example.com": (550, "5.1.1 no such user here")}
    for later in deliveries[2:]:
        assert isinstance(later.error, mailwright.smtp.NotAttemptedError)
        assert later.accepted == [] and not later.sent


def test_server_down(sender: Sender) -> None:
    configure(EMAIL_HOST="127.0.0.1", EMAIL_PORT=closed_port())
    with pytest.raises(ConnectionRefusedError):
        sender.send_mail("s", "b", "a@example.com", ["b@example.com"])
    assert sender.send_mail("s", "b", "a@example.com", ["b@example.com"], fail_silently=True) == 0
    connection = get_connection(fail_silently=True)
    assert sender.open(connection) is None
    msg = EmailMessage("s", "b", "a@example.com", ["b@example.com"])
    assert sender.send_messages([msg], connection) == 0
    assert msg.delivery is not None and isinstance(
        msg.delivery.error, mailwright.smtp.NotAttemptedError
    )


def test_a_server_that_stops_answering_times_out_naming_the_step(
    start_server: ServerFactory, sender: Sender
) -> None:
    server = start_server(hold={"MAIL": threading.Event()})  # never answers MAIL
    configure(**server.settings, EMAIL_TIMEOUT=0.3)
    with pytest.raises(TimeoutError, match=r"no answer after 0\.3 s waiting for the reply to MAIL"):
        sender.send_mail("s", "b", "a@example.com", ["b@example.com"])
    msg = EmailMessage("s", "b", "a@example.com", ["b@example.com"])
    assert sender.send_messages([msg], fail_silently=True) == 0
    assert isinstance(msg.delivery and msg.delivery.error, TimeoutError)
    assert server.messages == []


def test_bad_header_touches_no_connection(smtp_server: SMTPTestServer, sender: Sender) -> None:
    with pytest.raises(BadHeaderError):
        sender.send_mail(
            "Subject\r\nBcc: victim@example.com", "b", "a@example.com", ["b@example.com"]
        )
    with pytest.raises(BadHeaderError):
        sender.send_mail(
            "fine",
            "b",
            "a@example.com",
            ["b@example.com\nBcc: victim@example.com"],
            fail_silently=True,
        )
    assert smtp_server.connections == 0
    assert smtp_server.messages == []


def test_bad_message_mid_batch_stops_cleanly(smtp_server: SMTPTestServer, sender: Sender) -> None:
    messages = [
        EmailMessage("one", "b", "a@example.com", ["ok@example.com"]),
        EmailMessage("two\nBcc: evil@example.com", "b", "a@example.com", ["ok@example.com"]),
        EmailMessage("three", "b", "a@example.com", ["ok@example.com"]),
    ]
    with pytest.raises(BadHeaderError) as info:
        sender.send_messages(messages)
    received = smtp_server.wait_for(1)
    assert [r.parsed()["Subject"] for r in received] == ["one"]
    assert messages[0].delivery is not None and messages[0].delivery.sent
    assert messages[1].delivery is not None and messages[1].delivery.error is info.value
    assert messages[2].delivery is not None
    assert isinstance(messages[2].delivery.error, mailwright.smtp.NotAttemptedError)


# --- TLS ---


def test_starttls_verified_with_cafile(
    start_server: ServerFactory, certs: CertFiles, sender: Sender
) -> None:
    server = start_server(starttls=certs.server_context(), require_starttls=True)
    configure(**server.settings, EMAIL_USE_TLS=True, EMAIL_SSL_CAFILE=certs.ca)
    assert sender.send_mail("s", "b", "a@example.com", ["b@example.com"]) == 1
    (received,) = server.wait_for(1)
    assert received.tls


def test_starttls_verifies_certificate_by_default(
    start_server: ServerFactory, certs: CertFiles, sender: Sender
) -> None:
    server = start_server(starttls=certs.server_context())
    configure(**server.settings, EMAIL_USE_TLS=True)
    with pytest.raises(ssl.SSLCertVerificationError):
        sender.send_mail("s", "b", "a@example.com", ["b@example.com"])
    assert server.messages == []


def test_starttls_verifies_host_name(
    start_server: ServerFactory, certs: CertFiles, sender: Sender
) -> None:
    server = start_server(starttls=certs.server_context("wrong-host"))
    configure(**server.settings, EMAIL_USE_TLS=True, EMAIL_SSL_CAFILE=certs.ca)
    with pytest.raises(ssl.SSLCertVerificationError, match=r"(?i)hostname|IP address mismatch"):
        sender.send_mail("s", "b", "a@example.com", ["b@example.com"])


def test_starttls_untrusted_ca(
    start_server: ServerFactory, certs: CertFiles, sender: Sender
) -> None:
    server = start_server(starttls=certs.server_context("untrusted"))
    configure(**server.settings, EMAIL_USE_TLS=True, EMAIL_SSL_CAFILE=certs.ca)
    with pytest.raises(ssl.SSLCertVerificationError):
        sender.send_mail("s", "b", "a@example.com", ["b@example.com"])
    assert sender.send_mail("s", "b", "a@example.com", ["b@example.com"], fail_silently=True) == 0


def test_starttls_not_offered(smtp_server: SMTPTestServer, sender: Sender) -> None:
    configure(EMAIL_USE_TLS=True)
    with pytest.raises(smtplib.SMTPNotSupportedError):
        sender.send_mail("s", "b", "a@example.com", ["b@example.com"])
    assert smtp_server.messages == []


def test_implicit_tls(start_server: ServerFactory, certs: CertFiles, sender: Sender) -> None:
    server = start_server(implicit_tls=certs.server_context())
    configure(**server.settings, EMAIL_USE_SSL=True, EMAIL_SSL_CAFILE=certs.ca)
    assert sender.send_mail("s", "b", "a@example.com", ["b@example.com"]) == 1
    (received,) = server.wait_for(1)
    assert received.tls
    configure(EMAIL_SSL_CAFILE=certs.other_ca)
    with pytest.raises(ssl.SSLCertVerificationError):
        sender.send_mail("s", "b", "a@example.com", ["b@example.com"])


def test_implicit_tls_verifies_by_default(
    start_server: ServerFactory, certs: CertFiles, sender: Sender
) -> None:
    server = start_server(implicit_tls=certs.server_context())
    configure(**server.settings, EMAIL_USE_SSL=True)
    with pytest.raises(ssl.SSLCertVerificationError):
        sender.send_mail("s", "b", "a@example.com", ["b@example.com"])
    assert server.messages == []


def test_client_certificate(start_server: ServerFactory, certs: CertFiles, sender: Sender) -> None:
    server = start_server(implicit_tls=certs.server_context(client_ca=True))
    certfile, keyfile = certs.client_files()
    configure(**server.settings, EMAIL_USE_SSL=True, EMAIL_SSL_CAFILE=certs.ca)
    with pytest.raises((ssl.SSLError, smtplib.SMTPServerDisconnected, ConnectionResetError)):
        sender.send_mail("s", "b", "a@example.com", ["b@example.com"])
    assert server.messages == []
    configure(EMAIL_SSL_CERTFILE=certfile, EMAIL_SSL_KEYFILE=keyfile)
    assert sender.send_mail("s", "b", "a@example.com", ["b@example.com"]) == 1
    assert server.wait_for(1)[0].tls


def test_missing_cafile_is_configuration_error(
    smtp_server: SMTPTestServer, sender: Sender, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    connection = get_connection(use_tls=True, ssl_cafile=str(tmp_path / "missing.pem"))
    with pytest.raises(mailwright.ImproperlyConfigured, match="EMAIL_SSL_CAFILE"):
        sender.open(connection)
    assert smtp_server.connections == 0  # checked before the network is touched


# --- AUTH ---


def test_auth_success_over_starttls(
    start_server: ServerFactory, certs: CertFiles, sender: Sender
) -> None:
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
    assert sender.send_mail("s", "b", "a@example.com", ["b@example.com"]) == 1
    (received,) = server.wait_for(1)
    assert received.authenticated and received.tls


def test_auth_wrong_password(start_server: ServerFactory, sender: Sender) -> None:
    server = start_server(auth=("user", "s3cret"))
    configure(**server.settings)
    args = ("s", "b", "a@example.com", ["b@example.com"])
    with pytest.raises(smtplib.SMTPAuthenticationError) as info:
        sender.send_mail(*args, auth_user="user", auth_password="wrong")
    assert info.value.smtp_code == 535
    assert "wrong" not in str(info.value)
    assert sender.send_mail(*args, auth_user="user", auth_password="wrong", fail_silently=True) == 0
    assert sender.send_mail(*args, auth_user="user", auth_password="s3cret") == 1
    (received,) = server.wait_for(1)
    assert received.authenticated


def test_a_refused_login_says_quit_before_closing(
    start_server: ServerFactory, sender: Sender
) -> None:
    # Postfix logged "lost connection after AUTH": the client hung up without QUIT.
    server = start_server(auth=("user", "s3cret"))
    configure(**server.settings)
    with pytest.raises(smtplib.SMTPAuthenticationError):
        sender.send_mail(
            "s", "b", "a@example.com", ["b@example.com"], auth_user="user", auth_password="wrong"
        )
    server.wait_ended(1)
    commands = b"".join(chunk for _, chunk in server.chunks)
    assert commands.endswith(b"QUIT\r\n"), commands[-60:]


def test_no_mechanism_in_common_says_quit_before_closing(sender: Sender) -> None:
    server = ScriptedServer({}, [b"AUTH CRAM-MD5 GSSAPI"])
    configure(EMAIL_HOST="127.0.0.1", EMAIL_PORT=server.port)
    try:
        with pytest.raises(smtplib.SMTPException, match="CRAM-MD5 GSSAPI"):
            sender.send_mail(
                "s", "b", "a@example.com", ["b@example.com"], auth_user="u", auth_password="pw"
            )
        server.wait_closed()
    finally:
        server.close()
    assert server.received.endswith(b"QUIT\r\n"), server.received
    assert b"AUTH" not in server.received


def test_no_auth_without_username(start_server: ServerFactory, sender: Sender) -> None:
    server = start_server(auth=("user", "s3cret"))
    configure(**server.settings, EMAIL_HOST_PASSWORD="s3cret")
    # The server requires AUTH; without a username none is attempted, so MAIL is refused.
    with pytest.raises(smtplib.SMTPSenderRefused) as info:
        sender.send_mail("s", "b", "a@example.com", ["b@example.com"])
    assert info.value.smtp_code == 530


# --- configuration (no driver involved) ---


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


def test_fail_silently_stops_the_batch_when_the_connection_drops() -> None:
    """As the README says: a dropped connection ends the batch, also when failing
    silently; the rest count as not sent and say they were not tried."""
    from faultserver import Faults, FaultServer
    from mailwright.smtp import NotAttemptedError

    server = FaultServer(Faults(script={"END": ["drop"]})).start()
    try:
        messages = [
            EmailMessage(f"m{i}", "b", "a@example.com", [f"r{i}@example.com"]) for i in range(3)
        ]
        connection = get_connection("smtp", host=server.host, port=server.port, fail_silently=True)
        assert connection.send_messages(messages) == 0
    finally:
        server.stop()
    assert server.received == []
    assert all(m.delivery.error is not None and not m.delivery.accepted for m in messages)
    # (the second was pipelined behind the first, so it was under way when the line died)
    assert isinstance(messages[2].delivery.error, NotAttemptedError)
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    assert "goes on with the next message\n(those that failed count as not sent)" not in readme
    assert "when the connection itself\nfails (dropped, timed out), the batch stops there" in readme


def test_composition_settings_hold_for_the_whole_batch(
    smtp_server: SMTPTestServer, sender: Sender
) -> None:
    """A batch reads DEFAULT_CHARSET when it starts: a change made while it runs
    applies from the next batch on, and a message composed on its own sees it."""
    configure(DEFAULT_CHARSET="iso-8859-1")

    def messages() -> Iterator[EmailMessage]:
        yield EmailMessage("one", "Café", "from@example.com", ["to@example.com"])
        configure(DEFAULT_CHARSET="utf-8")  # during the batch
        yield EmailMessage("two", "Café", "from@example.com", ["to@example.com"])

    assert sender.send_messages(messages()) == 2
    assert (
        sender.send_messages(
            [EmailMessage("three", "Café", "from@example.com", ["to@example.com"])]
        )
        == 1
    )
    received = smtp_server.wait_for(3)
    charsets = {m.parsed()["Subject"]: m.parsed().get_content_charset() for m in received}
    assert charsets == {"one": "iso-8859-1", "two": "iso-8859-1", "three": "utf-8"}
    for message in received:
        assert message.parsed().get_content().strip() == "Café"
    alone = EmailMessage("four", "Café", "from@example.com", ["to@example.com"])
    assert b'charset="utf-8"' in alone.as_bytes()
