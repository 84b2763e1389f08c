"""The send side's shortcuts give exactly what the general paths give.

* ``ReplyParser.replies`` (a pipelined group's replies in a few C calls) against
  ``next_reply`` one at a time, on any mix of one-line, multi-line, bare-LF, malformed
  and split input;
* ``ClientProtocol.mail_transaction(..., content=...)`` (the content of the message
  before and the next envelope in one call) against ``content()`` then
  ``mail_transaction()``: the same bytes, the same replies due, the same refusals;
* a pipelined batch (accepted, partly refused and refused messages, so both the usual
  and the general handling of a group's replies) sent with the content in the
  envelope's call and on its own: the same outcomes, the same messages received;
* ``ClientProtocol.take_usual`` (the replies to the usual group in one match) against
  ``receive_data`` then ``next_replies``: the same replies taken, the same state after,
  the same errors;
* ``dot_stuff`` (counts and one ``replace``, no ``in`` test) against stuffing one line
  at a time.
"""

from __future__ import annotations

import smtplib
from collections.abc import Callable

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from examples import examples
from mailwright.smtp import SMTPConfig, SMTPConnection
from mailwright.smtp.errors import LocalProtocolError, SMTPProtocolError
from mailwright.smtp.grammar import dot_stuff
from mailwright.smtp.protocol import ClientProtocol
from mailwright.smtp.replies import ReplyParser
from smtpserver import SMTPTestServer

# --- the reply parser ---

_LINE = st.one_of(
    st.sampled_from(
        [
            b"250 2.1.0 Ok\r\n",
            b"354 End data with <CR><LF>.<CR><LF>\r\n",
            b"550 5.1.1 no such user\r\n",
            b"250-first\r\n250 last\r\n",
            b"250 bare LF\n",
            b"421 closing\r\n",
            b"250\r\n",
            b"999 out of range\r\n",
            b"25O typo\r\n",
            b"250-mixed\r\n251 codes\r\n",
        ]
    ),
    st.builds(lambda n: b"250 " + b"x" * n + b"\r\n", st.integers(0, 9000)),
)


def _general(data: list[bytes], limit: int) -> tuple[list[object], int]:
    parser = ReplyParser()
    found: list[object] = []
    for chunk in data:
        parser.feed(chunk)
        while len(found) < limit:
            try:
                reply = parser.next_reply()
            except SMTPProtocolError as exc:
                found.append(("error", str(exc)))
                return found, parser.buffered
            if reply is None:
                break
            found.append(reply)
    return found, parser.buffered


def _batched(data: list[bytes], limit: int) -> tuple[list[object], int]:
    parser = ReplyParser()
    found: list[object] = []
    for chunk in data:
        parser.feed(chunk)
        try:
            found += parser.replies(limit - len(found))
        except SMTPProtocolError as exc:
            found.append(("error", str(exc)))
            return found, parser.buffered
    return found, parser.buffered


@settings(max_examples=examples(600, 120), deadline=None)
@given(st.lists(_LINE, max_size=8), st.integers(0, 10), st.data())
def test_replies_in_one_go_match_one_at_a_time(
    lines: list[bytes], limit: int, data: st.DataObject
) -> None:
    stream = b"".join(lines)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=3)))
    chunks = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
    batched, general = _batched(chunks, limit), _general(chunks, limit)
    if batched[0][-1:] and isinstance(batched[0][-1], tuple) and batched[0][-1][0] == "error":
        # The same error; the replies parsed before it in the failing call are not
        # handed out (the session is over either way).
        assert general[0][-1] == batched[0][-1]
        assert general[0][: len(batched[0]) - 1] == batched[0][:-1]
    else:
        assert batched == general


# --- content and envelope in one call ---


def _protocol(extensions: bytes = b"250-PIPELINING\r\n250 SIZE 1000\r\n") -> ClientProtocol:
    proto = ClientProtocol()
    proto.receive_data(b"220 hi\r\n")
    proto.next_reply()
    proto.ehlo("client.example")
    proto.data_to_send()
    proto.receive_data(b"250-server.example\r\n" + extensions)
    proto.next_reply()
    return proto


def _in_data(proto: ClientProtocol) -> None:
    proto.mail_transaction("a@example.com", (), ["b@example.com"])
    proto.data_to_send()
    proto.receive_data(b"250 ok\r\n250 ok\r\n354 go\r\n")
    assert len(proto.next_replies()) == 3
    assert proto.in_data


CONTENTS = [b"Subject: x\r\n\r\nbody\r\n", b".lead\nbare\rbreaks\r\n.\r\n", b"no end", b""]
ENVELOPES = [
    ("s@example.com", ("SIZE=10",), ["r@example.com"]),
    ("", (), ["r1@example.com", "r2@example.com", "r3@example.com"]),
    ("s@example.com", ("SMTPUTF8",), ["jöran@example.com"]),
    ("s@example.com", (), []),
]


@pytest.mark.parametrize("content", CONTENTS)
@pytest.mark.parametrize("envelope", ENVELOPES)
def test_content_with_the_next_envelope_is_content_then_envelope(
    content: bytes, envelope: tuple[str, tuple[str, ...], list[str]]
) -> None:
    one, two = _protocol(), _protocol()
    _in_data(one)
    _in_data(two)
    one.mail_transaction(*envelope, content=content)
    two.content(content)
    two.mail_transaction(*envelope)
    assert one.data_to_send() == two.data_to_send()
    assert list(one._waiting) == list(two._waiting)
    assert not one.in_data and not two.in_data
    replies = b"250 queued\r\n250 ok\r\n" + b"250 ok\r\n" * len(envelope[2]) + b"354 go\r\n"
    for proto in (one, two):
        proto.receive_data(replies)
    assert one.next_replies() == two.next_replies()
    assert one.in_data and two.in_data


@pytest.mark.parametrize(
    "envelope",
    [
        ("s@example.com", (), ["bad\r\nRCPT TO:<x@example.com>"]),
        ("s@example.com", ("SIZE=1 X",), ["r@example.com"]),
        ("s@example.com", (), ["jöran@example.com"]),  # no SMTPUTF8 on MAIL
    ],
)
def test_a_refused_envelope_queues_nothing_not_even_the_content(
    envelope: tuple[str, tuple[str, ...], list[str]],
) -> None:
    proto = _protocol()
    _in_data(proto)
    with pytest.raises(ValueError):
        proto.mail_transaction(*envelope, content=b"body\r\n")
    assert proto.data_to_send() == b""
    assert proto.in_data  # the content is still due
    assert proto.waiting == 0


def test_content_with_an_envelope_needs_the_354() -> None:
    proto = _protocol()
    with pytest.raises(LocalProtocolError, match="DATA with 354"):
        proto.mail_transaction("s@example.com", (), ["r@example.com"], content=b"x\r\n")
    assert proto.data_to_send() == b""


# --- the usual group's replies in one match ---

_GROUP_LINE = st.one_of(
    st.sampled_from(
        [
            b"250 2.1.0 Ok\r\n",
            b"250 ok\r\n",
            b"251 2.1.5 forwarded\r\n",
            b"299 odd but positive\r\n",
            b"354 End data with <CR><LF>.<CR><LF>\r\n",
            b"354 bare LF\n",
            b"550 5.1.1 no such user\r\n",
            b"452 try later\r\n",
            b"250-first\r\n250 last\r\n",
            b"250\r\n",
            b"354\r\n",
            b"421 closing\r\n",
            b"250 cr\rinside\r\n",
            b"25O typo\r\n",
        ]
    ),
    st.builds(lambda n: b"250 " + b"x" * n + b"\r\n", st.sampled_from([8187, 8188, 8189])),
)


def _group_state(proto: ClientProtocol) -> tuple[int, bool, int, bool]:
    return proto.waiting, proto.in_data, proto.buffered, proto.closed


def _sent_group(content: bool, recipients: int) -> ClientProtocol:
    proto = _protocol()
    if content:
        _in_data(proto)
    proto.mail_transaction(
        "s@example.com",
        (),
        [f"r{i}@example.com" for i in range(recipients)],
        b"x\r\n" if content else None,
    )
    proto.data_to_send()
    return proto


def _replies_or_error(proto: ClientProtocol) -> list[object]:
    try:
        return list(proto.next_replies())
    except smtplib.SMTPException as exc:  # a malformed reply; the server hung up
        return [("error", type(exc).__name__, str(exc))]


_NOTHING_OR = st.one_of(st.just([]), st.lists(_GROUP_LINE, max_size=2))


@settings(max_examples=examples(1500, 200), deadline=None)
@given(
    st.booleans(),
    st.sampled_from([1, 1, 2]),
    st.one_of(st.just([]), st.lists(st.tuples(st.integers(0, 3), _GROUP_LINE), max_size=2)),
    _NOTHING_OR,
    st.sampled_from([0, 0, 0, 1]),
)
def test_the_usual_group_in_one_match_is_the_general_way(
    content: bool,
    recipients: int,
    swaps: list[tuple[int, bytes]],
    extra: list[bytes],
    dropped: int,
) -> None:
    # The usual replies, with the odd one swapped, dropped or added.
    group = ([b"250 2.0.0 Ok: queued\r\n"] if content else []) + [b"250 2.1.0 Ok\r\n"]
    group += [b"250 2.1.5 Ok\r\n"] * recipients + [b"354 End data\r\n"]
    for position, line in swaps:
        group[position % len(group)] = line
    stream = b"".join(group[: len(group) - dropped] + extra)
    general = _sent_group(content, recipients)
    general.receive_data(stream)
    expected = _replies_or_error(general)
    fast = _sent_group(content, recipients)
    taken = fast.take_usual(stream)
    event("taken in one match" if taken is not None else "the general way")
    if taken is None:
        assert _replies_or_error(fast) == expected
    else:
        assert recipients == 1
        assert len(expected) == (4 if content else 3)
        assert [reply.code for reply in expected][-1] == 354  # type: ignore[attr-defined]
        assert all(200 <= reply.code < 300 for reply in expected[:-1])  # type: ignore[attr-defined]
        assert taken == (expected[-3], expected[-1])
    assert _group_state(fast) == _group_state(general)


def test_the_usual_group_split_across_reads_goes_the_general_way() -> None:
    proto = _sent_group(content=True, recipients=1)
    assert proto.take_usual(b"250 ok\r\n250 ok\r\n") is None
    assert len(proto.next_replies()) == 2
    proto.receive_data(b"250 ok\r\n354 go\r\n")
    assert [reply.code for reply in proto.next_replies()] == [250, 354]
    assert proto.in_data and proto.waiting == 0


def test_take_usual_only_for_the_usual_group_alone() -> None:
    proto = _protocol()
    proto.rset()
    proto.mail_transaction("s@example.com", (), ["r@example.com"])
    proto.data_to_send()
    # RSET's reply is due first: the same bytes must not pass as the usual three.
    assert proto.take_usual(b"250 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n") is None
    assert [reply.code for reply in proto.next_replies()] == [250, 250, 250, 354]


# --- a batch, the usual path against the general one ---


def _without_content(original):  # type: ignore[no-untyped-def]
    """``mail_transaction`` that queues the content before it separately."""

    def mail_transaction(self, sender, parameters, recipients, content=None):  # type: ignore[no-untyped-def]
        if content is not None:
            self.content(content)
        return original(self, sender, parameters, recipients)

    return mail_transaction


def _send_all(port: int, count: int) -> list[str]:
    from mailwright.message import Envelope

    connection = SMTPConnection(SMTPConfig(host="127.0.0.1", port=port, timeout=10))
    connection.connect()
    items = [
        (
            i,
            Envelope(
                "s@example.com",
                [f"r{i}@example.com", f"bad{i}@example.com"] if i % 3 else [f"r{i}@example.com"],
                f"Subject: {i}\r\n\r\n.line {i}{' REJECT-ME' if i == 7 else ''}\r\n".encode(),
                False,
            ),
        )
        for i in range(count)
    ]
    try:
        outcomes = list(connection.send(items))
    finally:
        connection.quit()
    return [
        f"{o.index} {o.delivery.accepted} {sorted(o.delivery.refused)} {type(o.error).__name__}"
        for o in outcomes
    ]


def test_a_batch_takes_the_same_course_either_way(
    start_server: Callable[..., SMTPTestServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    options = {"refuse": {f"bad{i}@example.com" for i in range(12)}}
    one = start_server(refuse_data_containing=b"REJECT-ME", **options)
    usual = _send_all(one.port, 12)
    monkeypatch.setattr(
        ClientProtocol, "mail_transaction", _without_content(ClientProtocol.mail_transaction)
    )
    two = start_server(refuse_data_containing=b"REJECT-ME", **options)
    general = _send_all(two.port, 12)
    assert usual == general
    assert usual[0] == "0 ['r0@example.com'] [] NoneType"
    assert usual[1] == "1 ['r1@example.com'] ['bad1@example.com'] NoneType"
    assert usual[7].endswith("SMTPDataError")
    received, received_general = one.wait_for(11), two.wait_for(11)
    assert len(received) == len(received_general) == 11
    for a, b in zip(received, received_general, strict=True):
        assert a.data == b.data and a.rcpt_tos == b.rcpt_tos
        assert a.parsed().get_content().startswith(".line")


# --- dot-stuffing ---


def _stuffed_line_by_line(data: bytes) -> bytes:
    """What ``dot_stuff`` must give, one line at a time: each line ended by CRLF (a
    bare CR or LF is a line break too), a leading dot doubled, the final dot line."""
    lines = data.splitlines()
    return b"".join((b"." + line if line[:1] == b"." else line) + b"\r\n" for line in lines) + (
        b".\r\n"
    )


@settings(max_examples=examples(2000, 200), deadline=None)
@given(
    st.lists(
        st.sampled_from([b"a", b"Subject: x", b".", b"..", b"\r\n", b"\n", b"\r", b" ", b"\xc3"]),
        max_size=30,
    ).map(b"".join)
)
def test_dot_stuff_matches_line_by_line(data: bytes) -> None:
    stuffed = dot_stuff(data)
    assert stuffed == _stuffed_line_by_line(data)
    # No line break but CRLF, no line that ends the data early.
    body = stuffed[:-3]
    assert body.count(b"\r\n") == body.count(b"\n") == body.count(b"\r")
    assert not body.startswith(b".\r\n") and b"\r\n.\r\n" not in body
