"""SMTP PIPELINING (RFC 2920): grouping, reply matching, and the failure rules, against
aiosmtpd and a scripted server, once per driver."""

from __future__ import annotations

import smtplib
from email import message_from_bytes, policy

import pytest

from conftest import ServerFactory
from mailwright import EmailMessage, RawMessage, get_connection
from mailwright.smtp import NotAttemptedError
from scripted import PostfixLike, ScriptedServer
from senders import Sender


def batch(count: int, **kwargs: object) -> list[EmailMessage]:
    return [
        EmailMessage(
            f"Message {i}", f"Body {i}", "from@example.com", [f"to{i}@example.com"], **kwargs
        )  # type: ignore[arg-type]
        for i in range(count)
    ]


def chunks_with(server, needle: bytes) -> list[bytes]:  # type: ignore[no-untyped-def]
    return [chunk for _, chunk in server.chunks if needle in chunk]


@pytest.fixture
def scripted():  # type: ignore[no-untyped-def]
    """Start scripted servers; all close after the test."""
    servers: list[ScriptedServer] = []

    def start(replies: dict[bytes, list[bytes]], features: list[bytes]) -> ScriptedServer:
        server = ScriptedServer(replies, features)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


def test_commands_arrive_grouped(start_server: ServerFactory, sender: Sender) -> None:
    server = start_server(pipelining=True)
    connection = get_connection("smtp", host=server.host, port=server.port)
    assert sender.send_messages(batch(3), connection) == 3
    assert len(server.wait_for(3)) == 3
    for i in range(3):
        (group,) = chunks_with(server, f"RCPT TO:<to{i}@example.com>".encode())
        # MAIL, RCPT and DATA of one message travel together...
        assert b"MAIL FROM:<from@example.com>" in group and group.endswith(b"DATA\r\n")
        if i:
            # ...behind the content and final dot of the message before.
            assert f"Body {i - 1}".encode() in group
            assert b"\r\n.\r\nMAIL FROM:" in group


def test_without_pipelining_the_exchange_is_classic(
    start_server: ServerFactory, sender: Sender
) -> None:
    server = start_server(pipelining=False)
    connection = get_connection("smtp", host=server.host, port=server.port)
    assert sender.send_messages(batch(2), connection) == 2
    server.wait_for(2)
    for _, chunk in server.chunks:
        commands = [
            line for line in chunk.split(b"\r\n") if line[:4] in (b"MAIL", b"RCPT", b"DATA")
        ]
        assert len(commands) <= 1, chunk


def test_pipelining_can_be_turned_off(start_server: ServerFactory, sender: Sender) -> None:
    server = start_server(pipelining=True)
    connection = get_connection("smtp", host=server.host, port=server.port, pipelining=False)
    assert sender.send_messages(batch(2), connection) == 2
    server.wait_for(2)
    assert not chunks_with(server, b"\r\nRCPT TO")
    assert not chunks_with(server, b"\r\nDATA")


@pytest.mark.parametrize("pipelining", [True, False])
def test_mixed_replies_map_to_the_right_recipients(
    start_server: ServerFactory, sender: Sender, pipelining: bool
) -> None:
    refused = {"b@example.com", "d@example.com"}
    server = start_server(refuse=refused, pipelining=pipelining)
    msg = EmailMessage(
        "s",
        "b",
        "from@example.com",
        ["a@example.com", "b@example.com"],
        cc=["c@example.com"],
        bcc=["d@example.com"],
    )
    connection = get_connection("smtp", host=server.host, port=server.port)
    assert sender.send_messages([msg], connection) == 1
    (received,) = server.wait_for(1)
    assert received.rcpt_tos == ["a@example.com", "c@example.com"]
    assert msg.delivery is not None
    assert msg.delivery.accepted == ["a@example.com", "c@example.com"]
    assert set(msg.delivery.refused) == refused
    assert all(code == 550 for code, _ in msg.delivery.refused.values())


@pytest.mark.parametrize("pipelining", [True, False])
def test_data_refused_after_good_recipients(
    start_server: ServerFactory, sender: Sender, pipelining: bool
) -> None:
    server = start_server(refuse_data_containing=b"REJECT-ME", pipelining=pipelining)
    messages = [
        EmailMessage("first", "fine", "from@example.com", ["a@example.com"]),
        EmailMessage("second", "REJECT-ME", "from@example.com", ["b@example.com"]),
        EmailMessage("third", "fine", "from@example.com", ["c@example.com"]),
    ]
    connection = get_connection("smtp", host=server.host, port=server.port, fail_silently=True)
    assert sender.send_messages(messages, connection) == 2
    assert [r.parsed()["Subject"] for r in server.wait_for(2)] == ["first", "third"]
    assert server.connections == 1  # the connection stayed usable
    with pytest.raises(smtplib.SMTPDataError) as info:
        sender.send_messages(messages[1:2], host=server.host, port=server.port)
    assert info.value.smtp_code == 554


def test_data_command_refused_after_good_recipients_then_rset(
    scripted,  # type: ignore[no-untyped-def]
    sender: Sender,
) -> None:
    server = scripted(
        {
            b"RCPT": [b"250 ok", b"250 ok"],
            b"DATA": [b"554 5.7.1 not now", b"354 go ahead"],
            b".": [b"250 queued"],
        },
        features=[b"PIPELINING"],
    )
    messages = [
        EmailMessage("one", "FIRST-CONTENT", "a@example.com", ["x@example.com"]),
        EmailMessage("two", "SECOND-CONTENT", "a@example.com", ["y@example.com"]),
    ]
    connection = get_connection("smtp", host="127.0.0.1", port=server.port, fail_silently=True)
    assert sender.send_messages(messages, connection) == 1
    # the refused message reached nobody; its delivery says why
    assert messages[0].delivery is not None
    assert messages[0].delivery.accepted == []
    assert messages[0].delivery.refused == {"x@example.com": (554, "5.7.1 not now")}
    assert messages[1].delivery is not None
    assert messages[1].delivery.accepted == ["y@example.com"]
    assert b"FIRST-CONTENT" not in server.received
    assert b"SECOND-CONTENT" in server.received
    # RSET after the refused DATA, pipelined ahead of the next envelope
    assert b"RSET\r\nMAIL FROM:<a@example.com>" in server.received


def test_354_without_accepted_recipients_gets_a_lone_dot(
    scripted,  # type: ignore[no-untyped-def]
    sender: Sender,
) -> None:
    # A server that asks for content although it refused every recipient: the client
    # must end the transaction with a lone dot and never send the content.
    server = scripted(
        {
            b"RCPT": [b"550 no such user"],
            b"DATA": [b"354 go ahead"],
            b".": [b"554 no valid recipients"],
        },
        features=[b"PIPELINING"],
    )
    msg = EmailMessage(
        "secret", "CONTENT-MUST-NOT-BE-SENT", "a@example.com", ["nobody@example.com"]
    )
    with pytest.raises(smtplib.SMTPRecipientsRefused):
        sender.send_messages([msg], host="127.0.0.1", port=server.port)
    assert b"CONTENT-MUST-NOT-BE-SENT" not in server.received
    assert b"DATA\r\n.\r\n" in server.received
    assert msg.delivery is not None and msg.delivery.refused == {
        "nobody@example.com": (550, "no such user")
    }


def test_refused_sender_in_a_pipelined_group(
    scripted,  # type: ignore[no-untyped-def]
    sender: Sender,
) -> None:
    server = scripted(
        {
            b"MAIL": [b"550 sender blocked"],
            b"RCPT": [b"503 need MAIL first"],
            b"DATA": [b"503 need RCPT first"],
        },
        features=[b"PIPELINING"],
    )
    msg = EmailMessage("s", "CONTENT", "blocked@example.com", ["to@example.com"])
    with pytest.raises(smtplib.SMTPSenderRefused) as info:
        sender.send_messages([msg], host="127.0.0.1", port=server.port)
    assert info.value.smtp_code == 550
    assert b"CONTENT" not in server.received
    assert b"RSET\r\n" in server.received
    assert msg.delivery is not None
    assert msg.delivery.refused == {"to@example.com": (550, "sender blocked")}


def test_size_and_8bitmime_and_smtputf8_options(
    start_server: ServerFactory, sender: Sender
) -> None:
    server = start_server(smtputf8=True)
    msg = EmailMessage("s", "b", "from@example.com", ["jörg@example.com"])
    eight_bit = RawMessage(
        "Subject: 8bit\r\n\r\nGrüße\r\n".encode(), "from@example.com", ["x@example.com"]
    )
    connection = get_connection("smtp", host=server.host, port=server.port)
    assert sender.send_messages([msg, eight_bit], connection) == 2
    first, second = server.wait_for(2)
    # a UTF-8 header (To: jörg@...) is 8-bit data too
    assert first.mail_options == ["SMTPUTF8", "BODY=8BITMIME", f"SIZE={len(first.data)}"]
    assert second.mail_options == ["BODY=8BITMIME", f"SIZE={len(second.data)}"]
    assert second.data == "Subject: 8bit\r\n\r\nGrüße\r\n".encode()


def _eod_batch(code: int) -> list[EmailMessage]:
    return [
        EmailMessage("refused", "one", f"eod{code}@example.com", ["a@example.com"]),
        EmailMessage("second", "two", "good@example.com", ["b@example.com"]),
        EmailMessage("third", "three", "other@example.com", ["c@example.com"]),
    ]


def _check_senders(server: PostfixLike) -> list[str]:
    """Every message that arrived has its own envelope sender; their subjects."""
    subjects = []
    for mail_from, _, content in server.delivered:
        parsed = message_from_bytes(content, policy=policy.default)
        assert parsed["From"] == mail_from, (parsed["Subject"], mail_from)
        subjects.append(str(parsed["Subject"]))
    return subjects


@pytest.mark.parametrize("code", [450, 550])
@pytest.mark.parametrize("pipelining", [True, False])
def test_a_refused_end_of_data_never_lends_its_sender_to_the_next_message(
    sender: Sender, pipelining: bool, code: int
) -> None:
    # Postfix keeps a transaction its end-of-data policy refused: the next MAIL gets
    # "503 nested MAIL command" while RCPT gets 250 and DATA 354. Sending that content
    # delivered it with the refused message's sender.
    server = PostfixLike(pipelining=pipelining)
    try:
        messages = _eod_batch(code)
        connection = get_connection("smtp", host="127.0.0.1", port=server.port, fail_silently=True)
        sent = sender.send_messages(messages, connection)
        server.wait_closed()
    finally:
        server.close()
    subjects = _check_senders(server)
    first = messages[0].delivery
    assert first is not None and isinstance(first.error, smtplib.SMTPDataError)
    assert first.error.smtp_code == code
    assert b"RSET\r\n" in server.received
    second = messages[1].delivery
    assert second is not None
    if pipelining:
        # Its MAIL went before the refusal was known: it fails as not tried (temporary),
        # its data is ended with a lone dot, and its content never goes.
        assert isinstance(second.error, NotAttemptedError)
        assert "503" in str(second.error)
        assert second.accepted == [] and second.refused == {}
        assert b"Subject: second" not in server.received
        assert subjects == ["third"] and sent == 1
    else:
        # One command at a time, RSET goes before the next MAIL: nothing fails.
        assert second.error is None and second.accepted == ["b@example.com"]
        assert subjects == ["second", "third"] and sent == 2


def test_a_refused_end_of_data_in_send_bulk(sender: Sender) -> None:
    server = PostfixLike()
    try:
        messages = _eod_batch(450)
        result = sender.send_bulk(messages, connections=1, host="127.0.0.1", port=server.port)
    finally:
        server.close()
    # The message that met the stale transaction is sent again, with its own sender.
    assert sorted(_check_senders(server)) == ["second", "third"]
    assert result.sent == 2
    assert [failure.index for failure in result.failed] == [0]


@pytest.mark.parametrize("pipelining", [True, False])
def test_a_refused_end_of_data_at_the_end_of_a_batch_is_followed_by_rset(
    sender: Sender, pipelining: bool
) -> None:
    # The connection stays open for the next batch: it must not start on a stale
    # transaction.
    server = PostfixLike(pipelining=pipelining)
    try:
        connection = get_connection("smtp", host="127.0.0.1", port=server.port, fail_silently=True)
        with sender.session(connection):
            first = _eod_batch(550)[:1]
            assert sender.send_messages(first, connection) == 0
            later = _eod_batch(550)[1:]
            assert sender.send_messages(later, connection) == 2
        server.wait_closed()
    finally:
        server.close()
    assert _check_senders(server) == ["second", "third"]
