"""The SMTP engine's I/O-free core on its own: no sockets, no threads, no event loop.

* the reply parser (``replies``);
* ``ClientProtocol``: the rules of the protocol on both sides, RFC 2920 pipelining,
  STARTTLS and AUTH states, envelope checks, dot-stuffing;
* the conversations (``session.handshake``, ``transactions.transactions``) driven by a
  tiny driver in this module that plays the server from canned replies, in memory.
"""

from __future__ import annotations

import base64
import smtplib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from examples import examples
from mailwright.message import Envelope
from mailwright.smtp import (
    ClientProtocol,
    Command,
    LocalProtocolError,
    NotAttemptedError,
    Outcome,
    Reply,
    ReplyParser,
    SMTPConfig,
    SMTPProtocolError,
)
from mailwright.smtp.actions import NEED_DATA, NEED_ENVELOPE, Abort, Send, StartTLS, Step
from mailwright.smtp.auth import Login, Plain
from mailwright.smtp.protocol import check_address, dot_stuff
from mailwright.smtp.replies import MAX_LINE, MAX_REPLY
from mailwright.smtp.session import handshake, quit
from mailwright.smtp.transactions import transactions

MODEST = settings(
    max_examples=examples(150, 40), deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


# ---------------------------------------------------------------------------
# Reply parsing
# ---------------------------------------------------------------------------


def parse_all(*chunks: bytes, limit: int = 100) -> list[Reply]:
    parser = ReplyParser()
    replies: list[Reply] = []
    for chunk in chunks:
        parser.feed(chunk)
        replies += parser.replies(limit - len(replies))
    return replies


def parse_one_by_one(data: bytes) -> list[Reply]:
    parser = ReplyParser()
    parser.feed(data)
    replies = []
    while (reply := parser.next_reply()) is not None:
        replies.append(reply)
    return replies


def test_one_line_reply() -> None:
    (reply,) = parse_all(b"250 2.0.0 Ok: queued as 1234\r\n")
    assert reply.code == 250
    assert reply.lines == (b"2.0.0 Ok: queued as 1234",)
    assert reply.message == b"2.0.0 Ok: queued as 1234"
    assert reply.ok and not reply.temporary
    assert str(reply) == "250 2.0.0 Ok: queued as 1234"


def test_multi_line_reply_keeps_every_line() -> None:
    (reply,) = parse_all(
        b"250-mx.example.com\r\n250-PIPELINING\r\n250-SIZE 1000\r\n250 8BITMIME\r\n"
    )
    assert reply.code == 250
    assert reply.lines == (b"mx.example.com", b"PIPELINING", b"SIZE 1000", b"8BITMIME")
    assert reply.message == b"mx.example.com\nPIPELINING\nSIZE 1000\n8BITMIME"


def test_reply_line_without_text() -> None:
    assert parse_all(b"250\r\n354\r\n") == [Reply(250, (b"",)), Reply(354, (b"",))]


def test_lf_only_line_ends_are_accepted() -> None:
    replies = parse_all(b"250-a\n250 b\n550 no\n", limit=2)
    assert replies == [Reply(250, (b"a", b"b")), Reply(550, (b"no",))]


def test_lf_only_line_followed_by_a_crlf_line_is_two_replies() -> None:
    # Mixed line ends must not glue two replies together (which would leave the
    # client one reply short and every later reply matched to the wrong command).
    assert parse_all(b"250 a\n250 b\r\n", limit=2) == [Reply(250, (b"a",)), Reply(250, (b"b",))]
    assert parse_all(b"250 a\n", b"354 b\r\n", limit=2) == [
        Reply(250, (b"a",)),
        Reply(354, (b"b",)),
    ]


def test_replies_are_handed_out_up_to_the_limit() -> None:
    parser = ReplyParser()
    parser.feed(b"250 one\r\n250 two\r\n250 three\r\n")
    assert [r.lines for r in parser.replies(2)] == [(b"one",), (b"two",)]
    assert parser.buffered == len(b"250 three\r\n")
    assert [r.lines for r in parser.replies(5)] == [(b"three",)]
    assert parser.buffered == 0
    assert parser.replies(5) == []


GROUP = (
    b"250-mx.example.com greets you\r\n250-PIPELINING\r\n250 SIZE 10240000\r\n"
    b"250 2.1.0 Ok\r\n"
    b"550 5.1.1 <x@example.com>: Recipient address rejected\r\n"
    b"250 2.1.5 Ok\n"
    b"354 End data with <CR><LF>.<CR><LF>\r\n"
    b"452-4.5.3 Too many recipients\n452 4.5.3 come back later\r\n"
    b"221 2.0.0 Bye\r\n"
)
GROUP_REPLIES = [
    Reply(250, (b"mx.example.com greets you", b"PIPELINING", b"SIZE 10240000")),
    Reply(250, (b"2.1.0 Ok",)),
    Reply(550, (b"5.1.1 <x@example.com>: Recipient address rejected",)),
    Reply(250, (b"2.1.5 Ok",)),
    Reply(354, (b"End data with <CR><LF>.<CR><LF>",)),
    Reply(452, (b"4.5.3 Too many recipients", b"4.5.3 come back later")),
    Reply(221, (b"2.0.0 Bye",)),
]


def test_a_group_of_replies_at_once() -> None:
    assert parse_all(GROUP) == GROUP_REPLIES
    assert parse_one_by_one(GROUP) == GROUP_REPLIES


def test_a_group_split_at_every_byte_boundary_gives_the_same_replies() -> None:
    for cut in range(1, len(GROUP)):
        assert parse_all(GROUP[:cut], GROUP[cut:]) == GROUP_REPLIES, cut
    assert parse_all(*(GROUP[i : i + 1] for i in range(len(GROUP)))) == GROUP_REPLIES


@MODEST
@given(st.lists(st.integers(min_value=0, max_value=len(GROUP)), max_size=12))
def test_a_group_split_anywhere_gives_the_same_replies(cuts: list[int]) -> None:
    points = sorted(set(cuts))
    pieces = [GROUP[a:b] for a, b in zip([0, *points], [*points, len(GROUP)], strict=True)]
    assert parse_all(*pieces) == GROUP_REPLIES


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"25x ok\r\n", "malformed"),
        (b"abc ok\r\n", "malformed"),
        (b"2500 ok\r\n", "malformed"),
        (b"25\r\n", "malformed"),
        (b"\r\n", "malformed"),
        (b"250_ok\r\n", "malformed"),
        (b"250:ok\r\n", "malformed"),
        (b" 250 ok\r\n", "malformed"),
        (b"150 ok\r\n", "out of range"),
        (b"650 ok\r\n", "out of range"),
        (b"050 ok\r\n", "out of range"),
        (b"250-first\r\n550 second\r\n", "changes its code"),
        (b"250-first\r\n251 second\r\n", "changes its code"),
    ],
)
def test_bad_syntax_is_a_protocol_error(data: bytes, match: str) -> None:
    with pytest.raises(SMTPProtocolError, match=match):
        parse_all(data)
    with pytest.raises(SMTPProtocolError, match=match):
        parse_one_by_one(data)


def test_an_over_long_line_is_refused_before_its_end_arrives() -> None:
    parser = ReplyParser()
    parser.feed(b"250 " + b"x" * (MAX_LINE - 4))  # exactly MAX_LINE, no line end yet
    assert parser.replies(1) == []
    parser.feed(b"x")  # one byte more and still no line end: refused, not buffered
    with pytest.raises(SMTPProtocolError, match="longer than"):
        parser.replies(1)


def test_a_complete_over_long_line_is_refused() -> None:
    with pytest.raises(SMTPProtocolError, match="longer than"):
        parse_all(b"250 " + b"x" * MAX_LINE + b"\r\n")
    assert parse_all(b"250 " + b"x" * (MAX_LINE - 4) + b"\r\n")[0].code == 250


def test_a_line_that_never_ends_is_never_buffered_without_bound() -> None:
    parser = ReplyParser()
    with pytest.raises(SMTPProtocolError, match="longer than"):
        for _ in range(100):  # 100 * 1000 bytes, no line end
            parser.feed(b"2" * 1000)
            parser.replies(1)
    assert parser.buffered <= MAX_LINE + 1000


def test_an_endless_multi_line_reply_is_refused() -> None:
    parser = ReplyParser()
    line = b"250-" + b"y" * 1000 + b"\r\n"
    with pytest.raises(SMTPProtocolError, match=f"reply longer than {MAX_REPLY}"):
        for _ in range(MAX_REPLY // 1000 + 5):
            parser.feed(line)
            parser.replies(1)


@pytest.mark.parametrize(
    ("line", "status"),
    [
        (b"250 2.1.5 Ok", "2.1.5"),
        (b"550 5.1.1 <x@example.com>: no such user", "5.1.1"),
        (b"451 4.7.1 try later", "4.7.1"),
        (b"452 4.5.3", "4.5.3"),
        (b"250 2.0.0", "2.0.0"),
        (b"554 5.7.123 blocked", "5.7.123"),
        (b"250 Ok", None),
        (b"550 2.1.1 class disagrees with the code", None),
        (b"250 2.0.0.1 not a status", None),
        (b"250 2.0.0Ok", None),
        (b"250 6.0.0 no such class", None),
        (b"250", None),
    ],
)
def test_enhanced_status_codes(line: bytes, status: str | None) -> None:
    (reply,) = parse_all(line + b"\r\n")
    assert reply.enhanced_status == status


def test_reply_classes() -> None:
    assert Reply(354, (b"go",)).ok
    assert Reply(451, (b"later",)).temporary and not Reply(451, (b"",)).ok
    assert not Reply(550, (b"no",)).temporary


def test_eof_is_remembered() -> None:
    parser = ReplyParser()
    parser.feed(b"250 partial")
    parser.feed(b"")
    assert parser.eof
    assert parser.next_reply() is None


# ---------------------------------------------------------------------------
# ClientProtocol: the rules
# ---------------------------------------------------------------------------

EHLO_PIPELINING = b"250-mx.example.com\r\n250-PIPELINING\r\n250-SIZE 1000\r\n250 8BITMIME\r\n"
EHLO_PLAIN = b"250-mx.example.com\r\n250 SIZE 1000\r\n"


def feed(proto: ClientProtocol, data: bytes) -> list[tuple[Command, Reply]]:
    """Feed ``data`` and take every reply it completes."""
    proto.receive_data(data)
    events = []
    while (event := proto.next_reply()) is not None:
        events.append(event)
    return events


def ready(pipelining: bool = True, **extensions: str) -> ClientProtocol:
    """A protocol past greeting and EHLO."""
    proto = ClientProtocol()
    feed(proto, b"220 mx ESMTP\r\n")
    proto.ehlo("client.example")
    proto.data_to_send()
    lines = [b"mx.example.com"]
    if pipelining:
        lines.append(b"PIPELINING")
    lines += [f"{k.upper()} {v}".strip().encode() for k, v in extensions.items()]
    text = b"".join(
        b"250" + (b" " if i == len(lines) - 1 else b"-") + line + b"\r\n"
        for i, line in enumerate(lines)
    )
    ((command, reply),) = feed(proto, text)
    assert command is Command.EHLO and reply.code == 250
    return proto


def test_greeting_then_ehlo_learns_the_extensions() -> None:
    proto = ClientProtocol()
    assert proto.awaiting is Command.GREETING
    with pytest.raises(LocalProtocolError, match="PIPELINING"):
        proto.ehlo("client.example")  # before the greeting: nothing may be sent
    assert feed(proto, b"220 mx.example.com ESMTP\r\n")[0][0] is Command.GREETING
    assert proto.greeting == Reply(220, (b"mx.example.com ESMTP",))
    proto.ehlo("client.example")
    assert proto.data_to_send() == b"EHLO client.example\r\n"
    assert proto.data_to_send() == b""
    feed(
        proto,
        b"250-mx.example.com\r\n250-PIPELINING\r\n250-SIZE 1000\r\n250-AUTH PLAIN LOGIN\r\n"
        b"250-AUTH=XOAUTH2\r\n250-smtputf8\r\n250 8BITMIME\r\n",
    )
    assert proto.esmtp and proto.pipelining
    assert proto.extensions == {
        "pipelining": "",
        "size": "1000",
        "auth": "PLAIN LOGIN XOAUTH2",
        "smtputf8": "",
        "8bitmime": "",
    }
    assert proto.offers("SMTPUTF8") and not proto.offers("starttls")
    assert proto.size_limit() == 1000
    assert proto.capabilities == (True, True, True, 1000)


def test_size_zero_means_no_limit() -> None:
    assert ready(size="0").size_limit() is None
    assert ready(size="").capabilities[2:] == (True, None)


def test_without_pipelining_one_command_at_a_time() -> None:
    proto = ready(pipelining=False)
    proto.mail("a@example.com")
    for second in (
        lambda: proto.rcpt("b@example.com"),
        proto.rset,
        proto.noop,
        proto.quit,
        proto.data,
    ):
        with pytest.raises(LocalProtocolError, match="does not offer PIPELINING"):
            second()
    with pytest.raises(LocalProtocolError, match="PIPELINING"):
        proto.mail_transaction("a@example.com", (), ["b@example.com"])
    assert proto.data_to_send() == b"MAIL FROM:<a@example.com>\r\n"
    feed(proto, b"250 ok\r\n")
    proto.rcpt("b@example.com")  # the reply came: the next command may go
    assert proto.data_to_send() == b"RCPT TO:<b@example.com>\r\n"


@pytest.mark.parametrize("first", ["rset", "mail", "rcpt"], ids=["RSET", "MAIL", "RCPT"])
def test_rset_mail_rcpt_may_be_followed_in_a_group(first: str) -> None:
    proto = ready()
    {
        "rset": proto.rset,
        "mail": lambda: proto.mail("a@example.com"),
        "rcpt": lambda: proto.rcpt("b@example.com"),
    }[first]()
    proto.mail("a@example.com")
    proto.rcpt("b@example.com")
    proto.rcpt("c@example.com")
    proto.data()
    assert proto.waiting == 5
    sent = proto.data_to_send()
    assert sent.endswith(
        b"MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nRCPT TO:<c@example.com>\r\n"
        b"DATA\r\n"
    )


ENDERS = {
    "EHLO": lambda p: p.ehlo("client.example"),
    "HELO": lambda p: p.helo("client.example"),
    "DATA": lambda p: p.data(),
    "NOOP": lambda p: p.noop(),
    "QUIT": lambda p: p.quit(),
    "STARTTLS": lambda p: p.starttls(),
    "AUTH": lambda p: p.auth("PLAIN", b"AGEAYg=="),
}
FOLLOWERS = {
    "MAIL": lambda p: p.mail("a@example.com"),
    "RCPT": lambda p: p.rcpt("b@example.com"),
    "RSET": lambda p: p.rset(),
    "NOOP": lambda p: p.noop(),
    "EHLO": lambda p: p.ehlo("client.example"),
    "QUIT": lambda p: p.quit(),
    "group": lambda p: p.mail_transaction("a@example.com", (), ["b@example.com"]),
}


@pytest.mark.parametrize("ender", list(ENDERS))
@pytest.mark.parametrize("follower", list(FOLLOWERS))
def test_group_enders_must_end_a_group(ender: str, follower: str) -> None:
    proto = ready(starttls="", auth="PLAIN")
    ENDERS[ender](proto)
    with pytest.raises(LocalProtocolError, match=f"{ender} must end a pipelined group"):
        FOLLOWERS[follower](proto)
    assert proto.waiting == 1  # nothing of the refused command was queued


def test_the_greeting_must_come_before_anything() -> None:
    proto = ClientProtocol()
    proto.pipelining = True  # even a (wrongly) pipelining caller waits for the greeting
    with pytest.raises(LocalProtocolError, match="greeting must end"):
        proto.ehlo("client.example")


def test_content_only_after_354_and_only_content_then() -> None:
    proto = ready()
    with pytest.raises(LocalProtocolError, match="before the server answered DATA"):
        proto.content(b"Subject: x\r\n\r\nbody\r\n")
    proto.mail("a@example.com")
    proto.rcpt("b@example.com")
    proto.data()
    with pytest.raises(LocalProtocolError, match="before the server answered DATA"):
        proto.content(b"early")  # DATA is sent but not answered yet
    proto.data_to_send()
    events = feed(proto, b"250 ok\r\n250 ok\r\n354 go\r\n")
    assert [c for c, _ in events] == [Command.MAIL, Command.RCPT, Command.DATA]
    assert proto.in_data
    for command in (
        proto.rset,
        proto.quit,
        proto.noop,
        proto.data,
        lambda: proto.mail("a@example.com"),
        lambda: proto.rcpt("a@example.com"),
        lambda: proto.mail_transaction("a@example.com", (), ["b@example.com"]),
    ):
        with pytest.raises(LocalProtocolError, match="expects message content"):
            command()
    proto.content(b"Subject: x\r\n\r\nbody\r\n")
    assert not proto.in_data
    # content may open a group: the next envelope travels with it
    proto.mail_transaction("a@example.com", (), ["c@example.com"])
    assert proto.data_to_send() == (
        b"Subject: x\r\n\r\nbody\r\n.\r\n"
        b"MAIL FROM:<a@example.com>\r\nRCPT TO:<c@example.com>\r\nDATA\r\n"
    )
    events = feed(proto, b"250 queued\r\n250 ok\r\n250 ok\r\n354 go\r\n")
    assert [c for c, _ in events] == [Command.CONTENT, Command.MAIL, Command.RCPT, Command.DATA]


def test_content_after_refused_data_is_a_local_error() -> None:
    proto = ready()
    proto.mail_transaction("a@example.com", (), ["b@example.com"])
    proto.data_to_send()
    feed(proto, b"250 ok\r\n250 ok\r\n554 no\r\n")
    assert not proto.in_data
    with pytest.raises(LocalProtocolError):
        proto.content(b"body")


def test_nothing_after_starttls_220_until_tls_started() -> None:
    proto = ready(starttls="")
    proto.starttls()
    assert proto.data_to_send() == b"STARTTLS\r\n"
    # A man in the middle appends a plaintext reply to the 220: it must not count.
    events = feed(proto, b"220 2.0.0 go ahead\r\n")
    assert events == [(Command.STARTTLS, Reply(220, (b"2.0.0 go ahead",)))]
    proto.receive_data(b"250-injected\r\n250 AUTH PLAIN\r\n")
    for command in (
        lambda: proto.ehlo("client.example"),
        lambda: proto.mail("a@example.com"),
        proto.quit,
        proto.noop,
    ):
        with pytest.raises(LocalProtocolError, match="start TLS first"):
            command()
    proto.tls_started()
    assert proto.tls
    # extensions and every buffered byte from before the handshake are forgotten
    assert proto.extensions == {} and not proto.esmtp and not proto.pipelining
    assert proto.buffered == 0
    assert proto.capabilities == (False, False, False, None)
    proto.ehlo("client.example")
    assert proto.data_to_send() == b"EHLO client.example\r\n"
    events = feed(proto, b"250-mx.example.com\r\n250 SMTPUTF8\r\n")
    assert events[0][0] is Command.EHLO
    assert proto.extensions == {"smtputf8": ""}
    with pytest.raises(LocalProtocolError, match="already encrypted"):
        proto.starttls()


def test_tls_started_needs_a_220() -> None:
    proto = ready(starttls="")
    with pytest.raises(LocalProtocolError, match="without a 220"):
        proto.tls_started()
    proto.starttls()
    proto.data_to_send()
    feed(proto, b"454 4.7.0 TLS not available\r\n")
    with pytest.raises(LocalProtocolError, match="without a 220"):
        proto.tls_started()
    proto.noop()  # a refused STARTTLS leaves the session as it was


def test_auth_challenges() -> None:
    proto = ready(auth="LOGIN")
    with pytest.raises(LocalProtocolError, match="without a 334"):
        proto.auth_response(b"dXNlcg==")
    proto.auth("LOGIN")
    assert proto.data_to_send() == b"AUTH LOGIN\r\n"
    assert feed(proto, b"334 VXNlcm5hbWU6\r\n")[0][1].code == 334
    for command in (lambda: proto.mail("a@example.com"), proto.quit, proto.noop):
        with pytest.raises(LocalProtocolError, match="answer the AUTH challenge"):
            command()
    proto.auth_response(b"dXNlcg==")
    with pytest.raises(LocalProtocolError):
        proto.auth_response(b"again")  # one response per challenge
    assert proto.data_to_send() == b"dXNlcg==\r\n"
    feed(proto, b"334 UGFzc3dvcmQ6\r\n")
    proto.auth_response(b"cGFzcw==")
    proto.data_to_send()
    assert feed(proto, b"235 2.7.0 ok\r\n")[0] == (Command.AUTH, Reply(235, (b"2.7.0 ok",)))
    proto.mail("a@example.com")


def test_auth_initial_response_and_empty_one() -> None:
    proto = ready(auth="PLAIN")
    proto.auth("PLAIN", base64.b64encode(b"\0user\0pw"))
    assert proto.data_to_send() == b"AUTH PLAIN AHVzZXIAcHc=\r\n"
    feed(proto, b"235 ok\r\n")
    proto.auth("EXTERNAL", b"")
    assert proto.data_to_send() == b"AUTH EXTERNAL =\r\n"


def test_quit_closes_and_nothing_follows() -> None:
    proto = ready()
    proto.quit()
    proto.data_to_send()
    assert feed(proto, b"221 bye\r\n")[0][0] is Command.QUIT
    assert proto.closed
    with pytest.raises(LocalProtocolError, match="closed"):
        proto.noop()


# --- out of order or unexpected replies: a protocol error, never a hang ---


def test_a_reply_nobody_asked_for() -> None:
    proto = ready()
    with pytest.raises(SMTPProtocolError, match="unexpected reply"):
        feed(proto, b"250 surprise\r\n")


def test_a_reply_nobody_asked_for_in_a_group() -> None:
    proto = ready()
    proto.mail_transaction("a@example.com", (), ["b@example.com"])
    proto.data_to_send()
    proto.receive_data(b"250 ok\r\n250 ok\r\n354 go\r\n250 extra\r\n")
    with pytest.raises(SMTPProtocolError, match="unexpected reply"):
        proto.next_replies()


def test_354_to_mail_is_a_protocol_error() -> None:
    proto = ready()
    proto.mail("a@example.com")
    proto.data_to_send()
    with pytest.raises(SMTPProtocolError, match="does not answer MAIL"):
        feed(proto, b"354 go ahead\r\n")


def test_334_to_rcpt_is_a_protocol_error() -> None:
    proto = ready()
    proto.mail_transaction("a@example.com", (), ["b@example.com"])
    proto.data_to_send()
    proto.receive_data(b"250 ok\r\n334 VXNlcm5hbWU6\r\n354 go\r\n")
    with pytest.raises(SMTPProtocolError, match="does not answer RCPT"):
        proto.next_replies()


@pytest.mark.parametrize("reply", [b"354 go\r\n", b"334 eA==\r\n"])
def test_intermediate_replies_to_the_greeting_are_protocol_errors(reply: bytes) -> None:
    with pytest.raises(SMTPProtocolError, match="does not answer greeting"):
        feed(ClientProtocol(), reply)


def test_eof_with_replies_due() -> None:
    proto = ready()
    proto.mail_transaction("a@example.com", (), ["b@example.com"])
    proto.data_to_send()
    proto.receive_data(b"250 ok\r\n")
    assert len(proto.next_replies()) == 1
    proto.receive_data(b"")
    with pytest.raises(smtplib.SMTPServerDisconnected):
        proto.next_replies()
    assert proto.closed
    proto2 = ready()
    proto2.noop()
    proto2.receive_data(b"250 partial line")
    proto2.receive_data(b"")
    with pytest.raises(smtplib.SMTPServerDisconnected):
        proto2.next_reply()


def test_eof_with_nothing_due_is_just_the_end() -> None:
    proto = ready()
    proto.receive_data(b"")
    assert proto.next_reply() is None
    assert proto.closed


def test_421_closes_the_session_part_way_through_a_group() -> None:
    proto = ready()
    proto.mail_transaction("a@example.com", (), ["b@example.com", "c@example.com"])
    proto.data_to_send()
    proto.receive_data(b"250 ok\r\n421 4.3.2 shutting down\r\n250 stray\r\n")
    replies = proto.next_replies()
    assert [r.code for r in replies] == [250, 421]
    assert proto.closed and proto.waiting == 0 and not proto.in_data
    with pytest.raises(LocalProtocolError, match="closed"):
        proto.rset()


def test_421_one_at_a_time() -> None:
    proto = ready(pipelining=False)
    proto.mail("a@example.com")
    proto.data_to_send()
    assert feed(proto, b"421 bye\r\n")[0][1].code == 421
    assert proto.closed and proto.waiting == 0


def test_next_replies_returns_what_is_complete() -> None:
    proto = ready()
    proto.mail_transaction("a@example.com", (), ["b@example.com"])
    proto.data_to_send()
    assert proto.next_replies() == []
    proto.receive_data(b"250 ok\r\n250 o")
    assert [r.code for r in proto.next_replies()] == [250]
    proto.receive_data(b"k\r\n354 go\r\n")
    assert [r.code for r in proto.next_replies(1)] == [250]
    assert [r.code for r in proto.next_replies()] == [354]
    assert proto.in_data and proto.waiting == 0


# --- envelope addresses and parameters ---

GOOD_ADDRESSES = [
    "user@example.com",
    "first.last+tag@sub.example.co.uk",
    "o'brien@example.com",
    "!#$%&'*+/=?^_`{|}~-@example.com",
    '"john doe"@example.com',
    '"quoted\\"escape"@example.com',
    '""@example.com',
    "user@[192.0.2.1]",
    "user@[IPv6:2001:db8::1]",
    "root",
    "postmaster",
    "user@example.com.",
    "jörg@example.com",
    "用户@example.com",
]

BAD_ADDRESSES = [
    "",
    "a@x.com> NOTIFY=SUCCESS",
    "a@x.com>NOTIFY=SUCCESS",
    "a@x.com ORCPT=rfc822;b@y.com",
    "<a@x.com>",
    "a<b@x.com",
    "a@x.com\r\nRCPT TO:<evil@y.com>",
    "a@x.com\nDATA",
    "a@x.com\r",
    "a\x00@x.com",
    "a b@x.com",
    " a@x.com",
    "a@x.com ",
    "a\tb@x.com",
    "a@x\u2028.com",
    "a\u0085@x.com",
    "a\u2029@x.com",
    "a\x7f@x.com",
    "a@",
    "@x.com",
    "a@@x.com",
    "a..b@x.com",
    ".a@x.com",
    "a.@x.com",
    "a@-x.com",
    "a@x-.com",
    "a@x..com",
    "a@x_y.com",
    "a@[1.2.3.4",
    "a@[1.2.3.4]x",
    "a@[1.2 3.4]",
    "a@[x>NOTIFY=SUCCESS]",
    "a@[1.2.3.4>]",
    '"unterminated@x.com',
    '"a\r\nb"@x.com',
    '"a\\\nb"@x.com',
]


@pytest.mark.parametrize("address", GOOD_ADDRESSES)
def test_valid_envelope_addresses_are_accepted(address: str) -> None:
    assert check_address(address) == address
    proto = ready(smtputf8="")
    params = () if address.isascii() else ("SMTPUTF8",)
    proto.mail(address, params)
    proto.rcpt(address)
    proto.mail_transaction(address, params, [address])
    sent = proto.data_to_send().decode("utf-8")
    assert sent.count(f"FROM:<{address}>") == 2 and sent.count(f"TO:<{address}>") == 2


@pytest.mark.parametrize("address", BAD_ADDRESSES)
def test_unsafe_envelope_addresses_are_refused(address: str) -> None:
    with pytest.raises(ValueError, match="not a valid SMTP envelope address"):
        check_address(address)
    proto = ready(smtputf8="")
    for command in (
        lambda: proto.rcpt(address),
        lambda: proto.mail_transaction("a@example.com", (), [address]),
        lambda: proto.mail_transaction("a@example.com", (), ["ok@example.com", address]),
    ):
        with pytest.raises(ValueError):
            command()
    if address:
        for command in (
            lambda: proto.mail(address),
            lambda: proto.mail_transaction(address, (), ["b@example.com"]),
        ):
            with pytest.raises(ValueError):
                command()
    assert proto.data_to_send() == b"" and proto.waiting == 0  # nothing queued


def test_empty_reverse_path_is_accepted_for_mail_only() -> None:
    proto = ready()
    assert check_address("", allow_empty=True) == ""
    proto.mail("")
    proto.mail_transaction("", (), ["b@example.com"])
    assert proto.data_to_send() == (
        b"MAIL FROM:<>\r\nMAIL FROM:<>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n"
    )
    with pytest.raises(ValueError):
        proto.rcpt("")


def test_non_ascii_addresses_need_smtputf8() -> None:
    proto = ready(smtputf8="")
    with pytest.raises(ValueError, match="SMTPUTF8"):
        proto.mail("jörg@example.com")
    with pytest.raises(ValueError, match="SMTPUTF8"):
        proto.mail_transaction("a@example.com", (), ["jörg@example.com"])
    proto.mail_transaction("a@example.com", ("SMTPUTF8",), ["jörg@example.com"])
    assert "RCPT TO:<jörg@example.com>" in proto.data_to_send().decode("utf-8")


@pytest.mark.parametrize(
    "parameter", ["SIZE=1000", "BODY=8BITMIME", "SMTPUTF8", "RET=HDRS", "X-EXT=a+b/c"]
)
def test_valid_parameters(parameter: str) -> None:
    proto = ready()
    proto.mail("a@example.com", (parameter,))
    assert proto.data_to_send() == f"MAIL FROM:<a@example.com> {parameter}\r\n".encode()


@pytest.mark.parametrize(
    "parameter",
    [
        "",
        "SIZE=",
        "=1",
        "-SIZE=1",
        "SIZE=1 NOTIFY=SUCCESS",
        "SIZE=1\r\nRCPT TO:<x@y.com>",
        "SIZE=1\n",
        "A=b=c",
        "SIZE=\x00",
        "SIZE=é",
        "S_IZE=1",
    ],
)
def test_unsafe_parameters_are_refused(parameter: str) -> None:
    proto = ready()
    with pytest.raises(ValueError, match="ESMTP parameter"):
        proto.mail("a@example.com", (parameter,))
    with pytest.raises(ValueError, match="ESMTP parameter"):
        proto.mail_transaction("a@example.com", (parameter,), ["b@example.com"])
    with pytest.raises(ValueError, match="ESMTP parameter"):
        proto.rcpt("b@example.com", (parameter,))
    assert proto.data_to_send() == b"" and proto.waiting == 0


@pytest.mark.parametrize(
    "name", ["bad name", "x\r\nMAIL FROM:<evil@example.com>", "x\n", "", "é.example"]
)
def test_unsafe_hello_names_are_refused(name: str) -> None:
    proto = ClientProtocol()
    feed(proto, b"220 hi\r\n")
    with pytest.raises(ValueError, match="EHLO"):
        proto.ehlo(name)
    with pytest.raises(ValueError, match="HELO"):
        proto.helo(name)
    assert proto.data_to_send() == b""


# --- dot-stuffing ---


@pytest.mark.parametrize(
    ("data", "wire"),
    [
        (b"", b".\r\n"),
        (b"a", b"a\r\n.\r\n"),
        (b"a\r\n", b"a\r\n.\r\n"),
        (b".", b"..\r\n.\r\n"),
        (b".a\r\n.\r\n..b\r\n", b"..a\r\n..\r\n...b\r\n.\r\n"),
        (b"a\n.\nb", b"a\r\n..\r\nb\r\n.\r\n"),
        (b"a\r.\rb\r", b"a\r\n..\r\nb\r\n.\r\n"),
        (b"a\r\r\nb", b"a\r\n\r\nb\r\n.\r\n"),
        (b"a\n\r\n.", b"a\r\n\r\n..\r\n.\r\n"),
        (b"x.\r\ny .\r\n", b"x.\r\ny .\r\n.\r\n"),
    ],
)
def test_dot_stuff(data: bytes, wire: bytes) -> None:
    assert dot_stuff(data) == wire


def unstuff(wire: bytes) -> tuple[bytes, bytes]:
    """What a strict server makes of DATA content: the message up to the first line
    that is a lone dot, and whatever follows it."""
    lines = wire.split(b"\r\n")
    for number, line in enumerate(lines):
        if line == b".":
            body = [ln[1:] if ln.startswith(b".") else ln for ln in lines[:number]]
            return b"".join(ln + b"\r\n" for ln in body), b"\r\n".join(lines[number + 1 :])
    raise AssertionError("no end of data")


@MODEST
@given(
    st.binary(max_size=200) | st.lists(st.sampled_from([b"\r", b"\n", b".", b"a"])).map(b"".join)
)
def test_dot_stuffed_content_ends_exactly_at_its_end(data: bytes) -> None:
    wire = dot_stuff(data)
    assert wire.endswith(b"\r\n.\r\n") or wire == b".\r\n"
    # Only CRLF line breaks: no bare CR or LF a lenient server could take as a line end.
    assert wire.count(b"\n") == wire.count(b"\r\n") == wire.count(b"\r")
    # Neither a strict server nor a lenient one (bare LF as line end) finds the end of
    # data anywhere but at the end.
    body, rest = unstuff(wire)
    assert rest == b""
    assert b"\n.\n" not in wire and b"\n.\r\n" not in wire[:-3]
    normalised = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    expected = normalised.replace(b"\n", b"\r\n")
    if expected and not expected.endswith(b"\r\n"):
        expected += b"\r\n"
    assert body == expected


# ---------------------------------------------------------------------------
# The conversations, driven from canned replies
# ---------------------------------------------------------------------------

HANG_UP = b""  # a scripted "reply" that closes the connection instead


class FakeServer:
    """The server side, in memory: answers each command with the next scripted reply
    for its verb (a default otherwise), the way a real server would, and checks the
    client's side of RFC 2920 as it goes."""

    DEFAULTS = {
        b"EHLO": b"250 ok",
        b"HELO": b"250 ok",
        b"MAIL": b"250 2.1.0 ok",
        b"RCPT": b"250 2.1.5 ok",
        b"DATA": b"354 go ahead",
        b".": b"250 2.0.0 queued",
        b"RSET": b"250 ok",
        b"NOOP": b"250 ok",
        b"QUIT": b"221 bye",
        b"STARTTLS": b"220 go ahead",
        b"AUTH": b"235 ok",
    }

    def __init__(
        self,
        script: dict[bytes, list[bytes]] | None = None,
        features: Iterable[bytes] = (b"PIPELINING", b"SIZE 100000", b"8BITMIME"),
        greeting: bytes = b"220 fake ESMTP",
        chunk: int = 1 << 20,
    ) -> None:
        self.script = {verb: list(replies) for verb, replies in (script or {}).items()}
        self.features = list(features)
        self.chunk = chunk
        self.out = bytearray(greeting + b"\r\n" if greeting else b"")
        self.buffer = b""
        self.in_data = False
        self.content: list[bytes] = []
        self.closed = greeting == HANG_UP
        self.tls = False
        self.auth_step = 0
        self.lines: list[bytes] = []  # every command line (content excluded)
        self.groups: list[list[bytes]] = []  # verbs per write of the client
        self.messages: list[bytes] = []  # content the server accepted (250 to its dot)
        self.refused_content: list[bytes] = []  # content it received and refused
        self.mail_from: bytes | None = None

    def _reply(self, verb: bytes) -> bytes:
        queue = self.script.get(verb)
        return queue.pop(0) if queue else self.DEFAULTS.get(verb, b"500 unknown")

    def _send(self, reply: bytes) -> None:
        if reply == HANG_UP:
            self.closed = True
            return
        self.out += reply + b"\r\n"
        if reply.startswith(b"421"):
            self.closed = True

    def receive(self, data: bytes) -> None:
        group: list[bytes] = []
        self.groups.append(group)
        self.buffer += data
        while not self.closed and b"\r\n" in self.buffer:
            line, self.buffer = self.buffer.split(b"\r\n", 1)
            if self.in_data:
                if line == b".":
                    group.append(b".")
                    self.in_data = False
                    reply = self._reply(b".")
                    content = b"".join(self.content)
                    (self.messages if reply.startswith(b"250") else self.refused_content).append(
                        content
                    )
                    self._send(reply)
                else:
                    if not self.content:
                        group.append(b"content")
                    self.content.append((line[1:] if line.startswith(b".") else line) + b"\r\n")
                continue
            verb = line.split(b" ", 1)[0].split(b":", 1)[0].upper()
            if self.auth_step:  # a response to our 334
                verb = b"AUTH"
            group.append(verb)
            self.lines.append(line)
            if verb == b"EHLO":
                reply = self._reply(b"EHLO")
                if reply.startswith(b"250"):
                    lines = [b"fake.example", *self.features]
                    reply = b"\r\n".join(
                        b"250" + (b" " if i == len(lines) - 1 else b"-") + item
                        for i, item in enumerate(lines)
                    )
                self._send(reply)
                continue
            reply = self._reply(verb)
            if verb == b"AUTH":
                self.auth_step = 1 if reply.startswith(b"334") else 0
            if verb == b"DATA" and reply.startswith(b"354"):
                self.in_data = True
                self.content = []
            if verb == b"QUIT":
                self._send(reply)
                self.closed = True
                return
            self._send(reply)

    def read(self) -> bytes:
        if not self.out:
            if self.closed:
                return b""
            raise AssertionError("the client waits for a reply the server does not owe (a hang)")
        data = bytes(self.out[: self.chunk])
        del self.out[: self.chunk]
        return data


@dataclass
class Run:
    """What a conversation did."""

    outcomes: list[Outcome] = field(default_factory=list)
    actions: list[Any] = field(default_factory=list)
    taken: list[int] = field(default_factory=list)
    result: Any = None
    error: BaseException | None = None
    aborted: bool = False

    def by_index(self) -> dict[int, Outcome]:
        found: dict[int, Outcome] = {}
        for outcome in self.outcomes:
            assert outcome.index not in found, f"message {outcome.index} got two outcomes"
            found[outcome.index] = outcome
        return found


def drive(
    conversation: Any,
    server: FakeServer,
    items: Iterable[tuple[int, Envelope]] = (),
    fail_at: int | None = None,
    error: BaseException | None = None,
    run: Run | None = None,
) -> Run:
    """Run a conversation against ``server`` the way a driver does. ``fail_at``: the
    I/O action (counting writes and reads from 0) that fails with ``error`` instead."""
    run = run or Run()
    source: Iterator[tuple[int, Envelope]] = iter(items)
    answer: Any = None
    failure: BaseException | None = None
    io_count = 0

    def take() -> tuple[int, Envelope] | None:
        item = next(source, None)
        if item is not None:
            run.taken.append(item[0])
        return item

    for _ in range(10_000):
        try:
            if failure is not None:
                action = conversation.throw(failure)
                failure = None
            else:
                action = conversation.send(answer)
        except StopIteration as stop:
            run.result = stop.value
            return run
        except (OSError, smtplib.SMTPException) as exc:
            run.error = exc
            return run
        answer = None
        run.actions.append(action)
        if isinstance(action, Outcome):
            run.outcomes.append(action)
            continue
        assert not run.aborted, f"{action!r} after Abort"
        assert run.error is None
        if isinstance(action, Send) or action is NEED_DATA:
            if fail_at is not None and io_count == fail_at:
                io_count += 1
                failure = error or ConnectionResetError("connection reset by peer")
                fail_at = None
                continue
            io_count += 1
            if isinstance(action, Send):
                server.receive(action.data)
                if action.then_envelope:
                    answer = take()
            else:
                answer = server.read()
        elif action is NEED_ENVELOPE:
            answer = take()
        elif isinstance(action, StartTLS):
            server.tls = True
        elif isinstance(action, Abort):
            run.aborted = True
        else:
            assert isinstance(action, Step), action
    raise AssertionError("the conversation never ends")


def session(server: FakeServer) -> ClientProtocol:
    proto = ClientProtocol()
    run = drive(handshake(proto, config()), server)
    assert run.error is None, run.error
    return proto


def config(**kwargs: Any) -> SMTPConfig:
    return SMTPConfig(host="mx.example.com", port=25, local_hostname="client.example", **kwargs)


def envelope(i: int, *recipients: str) -> tuple[int, Envelope]:
    return i, Envelope(
        "from@example.com",
        list(recipients or [f"to{i}@example.com"]),
        f"Subject: {i}\r\n\r\nBody of message {i}\r\n".encode(),
        False,
    )


def body(i: int) -> bytes:
    return f"Subject: {i}\r\n\r\nBody of message {i}\r\n".encode()


def send(
    server: FakeServer,
    items: Iterable[tuple[int, Envelope]],
    *,
    stop_on_failure: bool = True,
    pipelining: bool = True,
    **kwargs: Any,
) -> Run:
    proto = session(server)
    server.groups.clear()
    server.lines.clear()
    return drive(
        transactions(proto, stop_on_failure=stop_on_failure, pipelining=pipelining),
        server,
        items,
        **kwargs,
    )


# --- the session ---


def test_handshake_plain() -> None:
    server = FakeServer()
    proto = ClientProtocol()
    run = drive(handshake(proto, config()), server)
    steps = [a.name for a in run.actions if isinstance(a, Step)]
    assert steps == ["greeting", "ehlo"]
    assert server.lines == [b"EHLO client.example"]
    assert proto.pipelining and proto.size_limit() == 100000


def test_handshake_starttls_and_auth_plain() -> None:
    server = FakeServer(features=[b"PIPELINING", b"STARTTLS", b"AUTH LOGIN PLAIN"])
    proto = ClientProtocol()
    run = drive(handshake(proto, config(use_tls=True, username="user", password="pw")), server)
    assert run.error is None
    steps = [a.name for a in run.actions if isinstance(a, Step)]
    assert steps == ["greeting", "ehlo", "starttls", "ehlo", "auth"]
    assert server.tls and proto.tls
    assert server.lines == [
        b"EHLO client.example",
        b"STARTTLS",
        b"EHLO client.example",
        b"AUTH PLAIN " + base64.b64encode(b"\0user\0pw"),
    ]


def test_handshake_auth_login() -> None:
    server = FakeServer(
        script={b"AUTH": [b"334 VXNlcm5hbWU6", b"334 UGFzc3dvcmQ6", b"235 2.7.0 ok"]},
        features=[b"AUTH LOGIN"],
    )
    run = drive(handshake(ClientProtocol(), config(username="user", password="pw")), server)
    assert run.error is None
    assert server.lines == [b"EHLO client.example", b"AUTH LOGIN", b"dXNlcg==", b"cHc="]


def test_handshake_auth_refused() -> None:
    server = FakeServer(script={b"AUTH": [b"535 5.7.8 bad credentials"]}, features=[b"AUTH PLAIN"])
    run = drive(handshake(ClientProtocol(), config(username="user", password="pw")), server)
    assert isinstance(run.error, smtplib.SMTPAuthenticationError)
    assert run.error.smtp_code == 535


def test_auth_challenge_not_base64_is_cancelled() -> None:
    server = FakeServer(
        script={b"AUTH": [b"334 not base64!", b"501 cancelled"]}, features=[b"AUTH LOGIN"]
    )
    run = drive(handshake(ClientProtocol(), config(username="u", password="p")), server)
    assert isinstance(run.error, smtplib.SMTPAuthenticationError)
    assert server.lines[-2:] == [b"*", b"QUIT"]  # cancelled, then a polite goodbye


def test_auth_endless_challenges_end() -> None:
    server = FakeServer(script={b"AUTH": [b"334 VXNlcm5hbWU6"] * 50}, features=[b"AUTH LOGIN"])
    run = drive(handshake(ClientProtocol(), config(username="u", password="p")), server)
    assert isinstance(run.error, smtplib.SMTPAuthenticationError)
    assert len(server.lines) < 20


def test_auth_not_offered_or_no_common_mechanism() -> None:
    run = drive(handshake(ClientProtocol(), config(username="u", password="p")), FakeServer())
    assert isinstance(run.error, smtplib.SMTPNotSupportedError)
    run = drive(
        handshake(ClientProtocol(), config(username="u", password="p")),
        FakeServer(features=[b"AUTH CRAM-MD5"]),
    )
    assert isinstance(run.error, smtplib.SMTPException)
    assert "CRAM-MD5" in str(run.error)


def test_mechanisms_never_show_credentials() -> None:
    assert "pw" not in repr(Plain("user", "pw")) and "pw" not in repr(Login("user", "pw"))


def test_starttls_not_offered_or_refused() -> None:
    run = drive(handshake(ClientProtocol(), config(use_tls=True)), FakeServer())
    assert isinstance(run.error, smtplib.SMTPNotSupportedError)
    server = FakeServer(script={b"STARTTLS": [b"454 4.7.0 no TLS today"]}, features=[b"STARTTLS"])
    run = drive(handshake(ClientProtocol(), config(use_tls=True)), server)
    assert isinstance(run.error, smtplib.SMTPResponseException)
    assert run.error.smtp_code == 454
    assert not any(isinstance(a, StartTLS) for a in run.actions)


def test_greeting_refused() -> None:
    run = drive(handshake(ClientProtocol(), config()), FakeServer(greeting=b"554 go away"))
    assert isinstance(run.error, smtplib.SMTPConnectError)
    assert run.error.smtp_code == 554


def test_ehlo_refused_falls_back_to_helo() -> None:
    server = FakeServer(script={b"EHLO": [b"502 5.5.2 what?"]})
    proto = ClientProtocol()
    run = drive(handshake(proto, config()), server)
    assert run.error is None
    assert server.lines == [b"EHLO client.example", b"HELO client.example"]
    assert not proto.esmtp and not proto.pipelining
    server = FakeServer(script={b"EHLO": [b"502 no"], b"HELO": [b"501 no"]})
    run = drive(handshake(ClientProtocol(), config()), server)
    assert isinstance(run.error, smtplib.SMTPHeloError)


def test_421_to_ehlo_ends_the_session() -> None:
    server = FakeServer(script={b"EHLO": [b"421 4.3.2 busy"]})
    run = drive(handshake(ClientProtocol(), config()), server)
    assert isinstance(run.error, smtplib.SMTPHeloError) and run.error.smtp_code == 421
    assert server.lines == [b"EHLO client.example"]


def test_server_hangs_up_instead_of_greeting() -> None:
    run = drive(handshake(ClientProtocol(), config()), FakeServer(greeting=HANG_UP))
    assert isinstance(run.error, smtplib.SMTPServerDisconnected)


@pytest.mark.parametrize(("reply", "raises"), [(b"221 bye", False), (b"500 no", True)])
def test_quit(reply: bytes, raises: bool) -> None:
    server = FakeServer(script={b"QUIT": [reply]})
    proto = session(server)
    run = drive(quit(proto), server)
    assert isinstance(run.error, smtplib.SMTPResponseException) == raises
    assert proto.closed or raises


# --- transactions ---


@pytest.mark.parametrize("chunk", [1, 7, 1 << 20], ids=["byte", "7-bytes", "whole"])
def test_pipelined_batch_is_one_group_per_message(chunk: int) -> None:
    server = FakeServer(chunk=chunk)
    run = send(server, [envelope(0), envelope(1), envelope(2, "a@x.com", "b@x.com")])
    assert [o.index for o in run.outcomes] == [0, 1, 2]
    assert all(o.error is None for o in run.outcomes)
    assert run.outcomes[2].delivery.accepted == ["a@x.com", "b@x.com"]
    assert server.messages == [body(0), body(1), body(2)]
    sends = [g for g in server.groups if g]
    assert sends == [
        [b"MAIL", b"RCPT", b"DATA"],
        [b"content", b".", b"MAIL", b"RCPT", b"DATA"],
        [b"content", b".", b"MAIL", b"RCPT", b"RCPT", b"DATA"],
        [b"content", b"."],
    ]


def test_pipelined_batch_asks_for_the_next_message_while_the_server_works() -> None:
    server = FakeServer()
    run = send(server, [envelope(0), envelope(1)])
    first_read = next(i for i, a in enumerate(run.actions) if a is NEED_DATA)
    sends = [i for i, a in enumerate(run.actions) if isinstance(a, Send)]
    # the next envelope was asked for with the first group, before any reply was read
    assert run.actions[sends[0]].then_envelope and sends[0] < first_read
    assert run.taken == [0, 1]


@pytest.mark.parametrize("chunk", [1, 1 << 20], ids=["byte", "whole"])
def test_classic_batch_is_one_command_at_a_time(chunk: int) -> None:
    server = FakeServer(features=[b"SIZE 100000"], chunk=chunk)
    run = send(server, [envelope(0), envelope(1, "a@x.com", "b@x.com")])
    assert [o.error for o in run.outcomes] == [None, None]
    assert server.messages == [body(0), body(1)]
    sends = [g for g in server.groups if g]
    assert sends == [
        [b"MAIL"],
        [b"RCPT"],
        [b"DATA"],
        [b"content", b"."],
        [b"MAIL"],
        [b"RCPT"],
        [b"RCPT"],
        [b"DATA"],
        [b"content", b"."],
    ]
    assert all(b"SIZE=" in line for line in server.lines if line.startswith(b"MAIL"))


def test_pipelining_turned_off_by_the_caller() -> None:
    server = FakeServer()
    send(server, [envelope(0), envelope(1)], pipelining=False)
    assert all(len(g) <= 2 for g in server.groups)
    assert server.messages == [body(0), body(1)]


@pytest.mark.parametrize("pipelining", [True, False])
def test_refused_recipients_are_reported_per_recipient(pipelining: bool) -> None:
    server = FakeServer(
        script={b"RCPT": [b"550 5.1.1 no such user", b"250 ok", b"452 4.2.2 full"]},
        features=[b"PIPELINING"] if pipelining else [],
    )
    run = send(server, [envelope(0, "gone@x.com", "ok@x.com", "full@x.com")])
    (outcome,) = run.outcomes
    assert outcome.error is None
    assert outcome.delivery.accepted == ["ok@x.com"]
    assert outcome.delivery.refused == {
        "gone@x.com": (550, "5.1.1 no such user"),
        "full@x.com": (452, "4.2.2 full"),
    }


@pytest.mark.parametrize("pipelining", [True, False])
def test_rset_after_a_refused_transaction(pipelining: bool) -> None:
    script = {b"MAIL": [b"550 5.7.1 sender blocked"]}
    if pipelining:  # what a server says to the rest of a group whose MAIL it refused
        script |= {b"RCPT": [b"503 5.5.1 need MAIL first"], b"DATA": [b"503 5.5.1 need RCPT"]}
    server = FakeServer(script=script, features=[b"PIPELINING"] if pipelining else [])
    run = send(server, [envelope(0), envelope(1)], stop_on_failure=False)
    first, second = run.outcomes
    assert isinstance(first.error, smtplib.SMTPSenderRefused) and first.error.smtp_code == 550
    # every recipient is refused with the reply that failed the message, in both modes
    # (not with the "503 need MAIL first" a pipelined RCPT got after it)
    assert first.delivery.refused == {"to0@example.com": (550, "5.7.1 sender blocked")}
    assert second.error is None
    assert server.messages == [body(1)]
    if pipelining:
        # the RSET travels ahead of the next envelope, in the same group
        assert [g for g in server.groups if g] == [
            [b"MAIL", b"RCPT", b"DATA"],
            [b"RSET", b"MAIL", b"RCPT", b"DATA"],
            [b"content", b"."],
        ]
    else:
        verbs = [line.split(b":")[0] for line in server.lines]
        assert verbs == [b"MAIL FROM", b"RSET", b"MAIL FROM", b"RCPT TO", b"DATA"]


@pytest.mark.parametrize("pipelining", [True, False])
def test_refused_data_command_then_rset(pipelining: bool) -> None:
    server = FakeServer(
        script={b"DATA": [b"554 5.7.1 not now"]}, features=[b"PIPELINING"] if pipelining else []
    )
    run = send(server, [envelope(0), envelope(1)], stop_on_failure=False)
    assert isinstance(run.outcomes[0].error, smtplib.SMTPDataError)
    assert run.outcomes[0].delivery.accepted == []
    assert run.outcomes[0].delivery.refused == {"to0@example.com": (554, "5.7.1 not now")}
    assert run.outcomes[1].error is None
    assert server.messages == [body(1)]
    assert body(0) not in server.refused_content
    assert b"RSET" in server.lines


@pytest.mark.parametrize("pipelining", [True, False])
def test_354_with_no_accepted_recipient_gets_the_lone_dot(pipelining: bool) -> None:
    script = {b"RCPT": [b"550 no such user"]}
    if pipelining:  # the server's answer to the lone dot
        script[b"."] = [b"554 5.5.1 no valid recipients"]
    server = FakeServer(script=script, features=[b"PIPELINING"] if pipelining else [])
    run = send(server, [envelope(0), envelope(1)], stop_on_failure=False)
    first, second = run.outcomes
    assert isinstance(first.error, smtplib.SMTPRecipientsRefused)
    assert first.delivery.refused == {"to0@example.com": (550, "no such user")}
    assert second.error is None and server.messages == [body(1)]
    assert body(0) not in server.refused_content
    if pipelining:
        # DATA went with the group and the server asked for content nobody can
        # receive: a lone dot ends it and RSET follows (a refused end of data may
        # leave the transaction open), then the next envelope; never the content
        assert [g for g in server.groups if g][:2] == [
            [b"MAIL", b"RCPT", b"DATA"],
            [b".", b"RSET", b"MAIL", b"RCPT", b"DATA"],
        ]
        assert server.refused_content == [b""]
    else:
        # one command at a time, DATA is never sent without an accepted recipient
        assert [line.split(b":")[0] for line in server.lines[:3]] == [
            b"MAIL FROM",
            b"RCPT TO",
            b"RSET",
        ]


def test_stop_on_failure_drops_the_connection_before_a_later_end_of_data() -> None:
    # Six messages, pipelined; the third is refused at its end of data, when the
    # fourth's DATA is already open.
    server = FakeServer(script={b".": [b"250 ok", b"250 ok", b"554 5.6.0 content refused"]})
    run = send(server, [envelope(i) for i in range(6)])
    outcomes = run.by_index()
    assert sorted(outcomes) == run.taken  # every message taken has an outcome
    assert [outcomes[i].error for i in (0, 1)] == [None, None]
    assert isinstance(outcomes[2].error, smtplib.SMTPDataError)
    assert outcomes[2].error.smtp_code == 554
    for later in run.taken[3:]:
        assert isinstance(outcomes[later].error, NotAttemptedError)
        assert outcomes[later].delivery.accepted == []
    assert 3 in run.taken and run.taken[-1] <= 4  # only what was looked ahead was taken
    assert run.aborted and isinstance(run.actions[-1], Abort)
    # the server got m1 and m2, refused m3, answered m4's DATA with 354 and never got
    # m4's content nor an end of data: it discards the transaction when the client hangs up
    assert server.messages == [body(0), body(1)]
    assert server.refused_content == [body(2)]
    assert server.in_data and server.content == []
    assert body(3) not in b"".join(server.content)


def test_without_stop_on_failure_the_batch_goes_on() -> None:
    server = FakeServer(script={b".": [b"250 ok", b"554 5.6.0 content refused"]})
    run = send(server, [envelope(i) for i in range(4)], stop_on_failure=False)
    assert [o.error is None for o in sorted(run.outcomes, key=lambda o: o.index)] == [
        True,
        False,
        True,
        True,
    ]
    assert server.messages == [body(0), body(2), body(3)]
    assert not run.aborted


@pytest.mark.parametrize("pipelining", [True, False])
def test_stop_on_failure_at_rcpt_sends_nothing_after(pipelining: bool) -> None:
    server = FakeServer(
        script={b"RCPT": [b"250 ok", b"550 gone"], b"DATA": [b"354 go", b"554 no rcpt"]},
        features=[b"PIPELINING"] if pipelining else [],
    )
    run = send(server, [envelope(i) for i in range(4)])
    outcomes = run.by_index()
    assert outcomes[0].error is None
    assert isinstance(outcomes[1].error, smtplib.SMTPRecipientsRefused)
    assert sorted(outcomes) == run.taken
    assert all(isinstance(outcomes[i].error, NotAttemptedError) for i in run.taken[2:])
    assert server.messages == [body(0)]
    assert sum(line.startswith(b"MAIL") for line in server.lines) == 2


def test_a_message_the_server_cannot_take_fails_alone() -> None:
    server = FakeServer(features=[b"PIPELINING", b"SIZE 60"])
    big = (1, Envelope("from@example.com", ["to1@example.com"], b"x" * 100, False))
    utf8 = (2, Envelope("from@example.com", ["jörg@example.com"], b"x", True))
    run = send(server, [envelope(0), big, utf8, envelope(3)], stop_on_failure=False)
    outcomes = run.by_index()
    assert isinstance(outcomes[1].error, smtplib.SMTPDataError)
    assert outcomes[1].error.smtp_code == 552
    assert "SMTPUTF8" in str(outcomes[2].error)
    assert outcomes[0].error is None and outcomes[3].error is None
    assert server.messages == [body(0), body(3)]
    assert sum(line.startswith(b"MAIL") for line in server.lines) == 2
    assert b"SIZE=" in server.lines[0]


@pytest.mark.parametrize("pipelining", [True, False])
def test_an_address_the_protocol_refuses_fails_that_message_alone(pipelining: bool) -> None:
    server = FakeServer(features=[b"PIPELINING"] if pipelining else [])
    bad = (1, Envelope("from@example.com", ["a@x.com> NOTIFY=SUCCESS"], b"x", False))
    run = send(server, [envelope(0), bad, envelope(2)], stop_on_failure=False)
    outcomes = run.by_index()
    assert isinstance(outcomes[1].error, ValueError)
    assert outcomes[0].error is None and outcomes[2].error is None
    assert not any(b"NOTIFY" in line for line in server.lines)
    assert server.messages == [body(0), body(2)]


@pytest.mark.parametrize("pipelining", [True, False])
def test_a_non_ascii_address_without_smtputf8_fails_alone_in_both_modes(pipelining: bool) -> None:
    # The envelope's flag says no SMTPUTF8, yet a recipient is not ASCII: no command
    # of it may go (an 8-bit RCPT without SMTPUTF8 breaks RFC 6531), in either mode.
    server = FakeServer(features=[b"PIPELINING", b"SMTPUTF8"] if pipelining else [b"SMTPUTF8"])
    odd = (1, Envelope("from@example.com", ["ok@example.com", "jörg@example.com"], b"x", False))
    run = send(server, [envelope(0), odd, envelope(2)], stop_on_failure=False)
    outcomes = run.by_index()
    assert isinstance(outcomes[1].error, ValueError) and "SMTPUTF8" in str(outcomes[1].error)
    assert outcomes[0].error is None and outcomes[2].error is None
    assert sum(line.startswith(b"MAIL") for line in server.lines) == 2
    assert all(line.isascii() for line in server.lines)


@pytest.mark.parametrize("pipelining", [True, False])
def test_421_part_way_ends_the_batch_with_an_outcome_for_each(pipelining: bool) -> None:
    server = FakeServer(
        script={b"RCPT": [b"250 ok", b"421 4.3.2 shutting down"]},
        features=[b"PIPELINING"] if pipelining else [],
    )
    run = send(server, [envelope(i) for i in range(4)], stop_on_failure=False)
    outcomes = run.by_index()
    assert sorted(outcomes) == run.taken
    assert outcomes[0].error is None
    assert outcomes[1].error is not None
    assert outcomes[1].delivery.refused == {"to1@example.com": (421, "4.3.2 shutting down")}
    assert all(isinstance(outcomes[i].error, NotAttemptedError) for i in run.taken[2:])
    assert server.messages == [body(0)]
    assert run.error is None  # a 421 ends the batch; it is not an I/O error


def test_eof_mid_batch_gives_outcomes_then_raises() -> None:
    # The server accepts m1's content, answers m2's MAIL and hangs up at its RCPT: the
    # replies that did arrive still count.
    server = FakeServer(script={b"RCPT": [b"250 ok", HANG_UP]})
    run = send(server, [envelope(i) for i in range(4)])
    assert isinstance(run.error, smtplib.SMTPServerDisconnected)
    outcomes = run.by_index()
    assert sorted(outcomes) == run.taken
    assert server.messages == [body(0)]
    assert outcomes[0].error is None and outcomes[0].delivery.accepted == ["to0@example.com"]
    assert isinstance(outcomes[1].error, smtplib.SMTPServerDisconnected)
    assert all(isinstance(outcomes[i].error, NotAttemptedError) for i in run.taken[2:])


def test_a_stray_reply_with_a_group_is_a_protocol_error_not_a_delivery() -> None:
    # An extra 250 right behind the 354 must not be taken for the reply to the
    # content (the server then refuses the message at its end of data).
    server = FakeServer(script={b"DATA": [b"354 go\r\n250 stray"], b".": [b"554 refused"]})
    run = send(server, [envelope(0)])
    assert isinstance(run.error, SMTPProtocolError)
    assert run.by_index()[0].error is run.error
    assert run.by_index()[0].delivery.accepted == []


def test_421_to_the_content_fails_that_message_and_ends_the_batch() -> None:
    server = FakeServer(script={b".": [b"250 ok", b"421 4.3.2 shutting down"]})
    run = send(server, [envelope(i) for i in range(5)])
    outcomes = run.by_index()
    assert sorted(outcomes) == run.taken
    assert outcomes[0].error is None
    assert isinstance(outcomes[1].error, smtplib.SMTPDataError)
    assert outcomes[1].error.smtp_code == 421
    # the envelope that travelled with it got no reply: the server was gone
    assert isinstance(outcomes[2].error, smtplib.SMTPServerDisconnected)
    assert all(isinstance(outcomes[i].error, NotAttemptedError) for i in run.taken[3:])
    assert server.messages == [body(0)] and run.error is None


@pytest.mark.parametrize("pipelining", [True, False])
@pytest.mark.parametrize("fail_at", range(12))
def test_io_errors_thrown_in_give_an_outcome_for_each_message_in_flight(
    pipelining: bool, fail_at: int
) -> None:
    server = FakeServer(features=[b"PIPELINING"] if pipelining else [])
    error = TimeoutError("no answer after 1 s")
    run = send(server, [envelope(i) for i in range(3)], fail_at=fail_at, error=error)
    outcomes = run.by_index()
    assert sorted(outcomes) == sorted(run.taken)
    if run.error is not None:
        assert run.error is error
        failed = [o for o in outcomes.values() if o.error is not None]
        assert failed and all(
            o.error is error or isinstance(o.error, NotAttemptedError) for o in failed
        )
    for index, outcome in outcomes.items():
        if outcome.error is None:
            assert body(index) in server.messages
        assert outcome.delivery.error is outcome.error


# --- one property over all of it ---

MAIL_CODES = [b"250 ok"] * 6 + [b"451 4.3.0 later", b"550 5.7.1 no", b"421 4.3.2 bye"]
RCPT_CODES = [b"250 ok"] * 6 + [b"450 4.2.1 busy", b"550 5.1.1 gone", b"421 4.3.2 bye"]
DATA_CODES = [b"354 go"] * 6 + [b"451 4.3.0 later", b"554 5.5.1 no", b"421 4.3.2 bye"]
DOT_CODES = [b"250 queued"] * 6 + [b"452 4.3.1 full", b"554 5.6.0 no", b"421 4.3.2 bye", HANG_UP]


@st.composite
def scenarios(draw: st.DrawFn) -> dict[str, Any]:
    count = draw(st.integers(1, 5))
    items = [
        envelope(i, *[f"r{i}.{j}@example.com" for j in range(draw(st.integers(1, 3)))])
        for i in range(count)
    ]
    script = {
        b"MAIL": draw(st.lists(st.sampled_from(MAIL_CODES), max_size=6)),
        b"RCPT": draw(st.lists(st.sampled_from(RCPT_CODES), max_size=12)),
        b"DATA": draw(st.lists(st.sampled_from(DATA_CODES), max_size=6)),
        b".": draw(st.lists(st.sampled_from(DOT_CODES), max_size=6)),
    }
    return {
        "items": items,
        "script": script,
        "pipelining": draw(st.booleans()),
        "stop_on_failure": draw(st.booleans()),
        "fail_at": draw(st.none() | st.integers(0, 25)),
        "chunk": draw(st.sampled_from([1, 5, 1 << 20])),
    }


@settings(max_examples=examples(300, 60), deadline=None)
@given(scenarios())
def test_every_message_taken_gets_exactly_one_true_outcome(scenario: dict[str, Any]) -> None:
    features = [b"PIPELINING"] if scenario["pipelining"] else []
    server = FakeServer(script=scenario["script"], features=features, chunk=scenario["chunk"])
    run = send(
        server,
        scenario["items"],
        stop_on_failure=scenario["stop_on_failure"],
        fail_at=scenario["fail_at"],
    )
    outcomes = run.by_index()  # raises on a second outcome for a message
    assert sorted(outcomes) == sorted(run.taken)
    assert run.taken == sorted(run.taken) and len(set(run.taken)) == len(run.taken)
    io_error = isinstance(run.error, ConnectionResetError)
    for index, outcome in outcomes.items():
        content = body(index)
        assert outcome.delivery.error is outcome.error
        if outcome.error is None:
            # reported sent: the server accepted it, for exactly the recipients reported
            assert content in server.messages
            assert outcome.delivery.accepted
        else:
            assert outcome.delivery.accepted == []
            if not io_error:
                assert content not in server.messages
        if outcome.error is not None and not isinstance(
            outcome.error, NotAttemptedError | ConnectionResetError
        ):
            # refused (or cut off by the server): the server did not take the content
            assert content not in server.messages
    if scenario["stop_on_failure"]:
        failures = sorted(
            i
            for i, o in outcomes.items()
            if o.error is not None and not isinstance(o.error, NotAttemptedError)
        )
        if failures:
            # nothing after the first failing message reached the server
            assert all(body(i) not in server.messages for i in range(failures[0] + 1, 6))
    if run.error is not None:
        assert isinstance(run.error, ConnectionResetError | smtplib.SMTPServerDisconnected), (
            run.error
        )
