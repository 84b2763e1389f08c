"""Issue 9, the message side: one test (or a few) per item, against a real aiosmtpd
server where sending matters; items 9-11 on both the sync and the async sending paths.

What arrives is parsed with the stdlib parser as a mailbox stores it: the wire's CRLF
line breaks read as "\\n" (``stored``).
"""

from __future__ import annotations

import asyncio
import copy
import email.charset
import os
import time
from collections.abc import Callable
from email import message_from_bytes, policy
from email.headerregistry import Address
from email.message import EmailMessage as StdlibMessage
from typing import Any

import pytest

import mailwright
from mailwright import (
    BadHeaderError,
    EmailMessage,
    EmailMultiAlternatives,
    Mailbox,
    RawMessage,
    configure,
    get_connection,
)
from mailwright.message.stdlib_build import POLICY as SMTP  # CRLF, fields kept as stored
from smtpserver import SMTPTestServer


def stored(data: bytes) -> StdlibMessage:
    return message_from_bytes(data.replace(b"\r\n", b"\n"), policy=policy.default)  # type: ignore[return-value]


def arrived(server: SMTPTestServer) -> StdlibMessage:
    (received,) = server.wait_for(1)
    return stored(received.data)


class Lazy:
    """Stands for a lazy translation string: ``str()`` gives the value."""

    def __init__(self, value: str) -> None:
        self.value = value

    def __str__(self) -> str:
        return self.value


# The two ways to send: the sync backend and the native async one.
def send_sync(message: EmailMessage) -> int:
    return get_connection().send_messages([message])


def send_async(message: EmailMessage) -> int:
    async def go() -> int:
        return await get_connection().asend_messages([message])

    return asyncio.run(go())


PATHS = pytest.mark.parametrize("send", [send_sync, send_async], ids=["sync", "async"])


# --- 1: content is exact ---


def test_text_attachment_arrives_without_an_added_line_break(smtp_server: SMTPTestServer) -> None:
    msg = EmailMessage("s", "body", "a@example.com", ["b@example.com"])
    msg.attach("a.csv", "a,b", "text/csv")
    msg.send()
    (attachment,) = arrived(smtp_server).iter_attachments()
    assert attachment.get_content() == "a,b"


def test_base64_text_keeps_lf(smtp_server: SMTPTestServer) -> None:
    EmailMessage("s", "Grüße\n", "a@example.com", ["b@example.com"]).send()
    (received,) = smtp_server.wait_for(1)
    parsed = received.parsed()  # even the raw CRLF data: base64 carries the text's own "\n"
    assert parsed["Content-Transfer-Encoding"] == "base64"
    assert parsed.get_content() == "Grüße\n"


def test_message_holds_the_content_exactly() -> None:
    msg = EmailMessage("S", "Content", "a@example.com", ["b@example.com"])
    assert msg.message().get_payload() == "Content"
    assert msg.message().get_content() == "Content"
    msg.body = "Zwei\nZeilen ä\n"
    assert msg.message().get_content() == "Zwei\nZeilen ä\n"


@pytest.mark.parametrize(
    "body",
    ["ends without a break", "x" * 2000, "é" * 10 + "x" * 200, "carriage\rreturn\r\nand lf\n"],
)
def test_every_transfer_encoding_is_exact(smtp_server: SMTPTestServer, body: str) -> None:
    EmailMessage("s", body, "a@example.com", ["b@example.com"]).send()
    parsed = arrived(smtp_server)
    expected = body
    if parsed["Content-Transfer-Encoding"] == "7bit" and not body.endswith("\n"):
        expected += "\n"  # SPEC 2: the one change SMTP forces (single part, 7bit)
    assert parsed.get_content() == expected


def test_quoted_printable_single_part_ends_with_a_soft_break() -> None:
    msg = EmailMessage("s", "x" * 100 + "é", "a@example.com", ["b@example.com"])
    data = msg.as_bytes()
    assert b"Content-Transfer-Encoding: quoted-printable" in data
    assert data.endswith(b"=\r\n")  # decodes to nothing: the text stays exact
    assert stored(data).get_content() == "x" * 100 + "é"


# --- 3: addresses without a domain, lazy strings ---


def test_domain_less_addresses_are_sent(smtp_server: SMTPTestServer) -> None:
    assert mailwright.send_mail("s", "b", "tester", ["django", "Root <root>"]) == 1
    (received,) = smtp_server.wait_for(1)
    assert received.mail_from == "tester"
    assert received.rcpt_tos == ["django", "root"]
    parsed = stored(received.data)
    assert parsed["From"] == "tester"
    assert [a.username for a in parsed["To"].addresses] == ["django", "root"]


def test_lazy_strings_everywhere(smtp_server: SMTPTestServer) -> None:
    msg = EmailMultiAlternatives(
        Lazy("Lazy subject"),  # type: ignore[arg-type]
        Lazy("Lazy body"),  # type: ignore[arg-type]
        Lazy("Sender <from@example.com>"),  # type: ignore[arg-type]
        [Lazy("to@example.com"), (Lazy("Name"), Lazy("named@example.com"))],
        headers={"X-Lazy": Lazy("value")},
    )
    msg.attach_alternative(Lazy("<p>lazy</p>"), "text/html")
    assert msg.recipients() == ["to@example.com", "named@example.com"]
    assert msg.send() == 1
    parsed = arrived(smtp_server)
    assert parsed["Subject"] == "Lazy subject"
    assert parsed["X-Lazy"] == "value"
    assert parsed.get_body(("plain",)).get_content() == "Lazy body"
    assert parsed.get_body(("html",)).get_content() == "<p>lazy</p>"
    assert parsed["To"].addresses[1].display_name == "Name"
    with pytest.raises(BadHeaderError):
        EmailMessage(Lazy("Sub\nject"), to=["a@example.com"]).message()  # type: ignore[arg-type]


# --- 4: locmem stores deep copies ---


def test_locmem_outbox_is_not_changed_by_later_edits() -> None:
    configure(EMAIL_BACKEND="locmem")
    msg = EmailMessage("correct", "b", "a@example.com", ["to@example.com"])
    msg.attach("a.txt", "attached")
    msg.send()
    msg.subject = "changed"
    msg.to.append("other@example.com")
    msg.attachments.clear()
    (sent,) = mailwright.outbox
    assert sent.subject == "correct"
    assert sent.to == ["to@example.com"]
    assert [a.filename for a in sent.attachments] == ["a.txt"]


def test_every_backend_accepts_any_iterable(tmp_path: Any) -> None:
    def messages() -> Any:
        for i in range(3):
            yield EmailMessage(f"m{i}", "b", "a@example.com", [f"u{i}@example.com"])

    for name, kwargs in [
        ("locmem", {}),
        ("dummy", {}),
        ("console", {"stream": __import__("io").StringIO()}),
        ("filebased", {"file_path": tmp_path}),
    ]:
        assert get_connection(name, **kwargs).send_messages(messages()) == 3, name
        assert get_connection(name, **kwargs).send_messages(iter(())) == 0, name
    assert len(mailwright.outbox) == 3
    assert len(os.listdir(tmp_path)) == 1  # the empty batch opened no file


# --- 5 and 6: body_contains, HTML-only alternatives ---


def test_body_contains() -> None:
    msg = EmailMultiAlternatives(body="I am content.")
    assert msg.body_contains("I am content.")
    msg.attach_alternative("<p>I am different.</p>", "text/html")
    msg.attach_alternative(b"\x00audio", "audio/mpeg")  # not text: not looked at
    assert msg.body_contains("I am")
    assert not msg.body_contains("content")


def test_html_only_message_has_no_empty_plain_part(smtp_server: SMTPTestServer) -> None:
    msg = EmailMultiAlternatives("s", "", "a@example.com", ["b@example.com"])
    msg.attach_alternative("<p>only html</p>", "text/html")
    msg.send()
    parsed = arrived(smtp_server)
    assert [p.get_content_type() for p in parsed.walk()] == [
        "multipart/alternative",
        "text/html",
    ]


# --- 8: Charset objects, EMAIL_USE_LOCALTIME, surrogate escapes ---


@pytest.mark.parametrize(
    ("body_encoding", "cte"),
    [(email.charset.QP, "quoted-printable"), (email.charset.BASE64, "base64"), (None, "7bit")],
)
def test_encoding_may_be_a_charset(body_encoding: Any, cte: str) -> None:
    msg = EmailMessage("s", "ascii body", "a@example.com", ["b@example.com"])
    charset = email.charset.Charset("utf-8")
    charset.body_encoding = body_encoding
    msg.encoding = charset
    parsed = stored(msg.as_bytes())
    assert parsed["Content-Transfer-Encoding"] == cte
    assert parsed.get_content_charset() == "utf-8"
    assert parsed.get_content() == "ascii body"


@pytest.fixture
def timezone() -> Any:
    """Set the process's local time zone (restored afterwards)."""
    saved = os.environ.get("TZ")

    def set_zone(zone: str) -> None:
        os.environ["TZ"] = zone
        time.tzset()

    yield set_zone
    if saved is None:
        os.environ.pop("TZ", None)
    else:
        os.environ["TZ"] = saved
    time.tzset()


def test_email_use_localtime(timezone: Callable[[str], None]) -> None:
    timezone("Asia/Kolkata")  # +0530 all year
    msg = EmailMessage(to=["a@example.com"])
    assert stored(msg.as_bytes())["Date"].endswith("-0000")  # UTC, no local zone given
    configure(EMAIL_USE_LOCALTIME=True)
    assert stored(msg.as_bytes())["Date"].endswith("+0530")
    assert msg.message()["Date"].endswith("+0530")


def test_surrogate_escaped_body_sends_its_bytes(smtp_server: SMTPTestServer) -> None:
    raw = "Föö bär".encode("iso-8859-1")
    body = raw.decode("ascii", errors="surrogateescape")
    msg = EmailMessage("s", body, "a@example.com", ["b@example.com"])
    assert msg.message().get_payload(decode=True) == raw
    msg.send()
    assert arrived(smtp_server).get_payload(decode=True) == raw


# --- 9: address objects pass the same checks as strings, on every path ---

BAD_ADDRESSES: list[tuple[str, Callable[[], Any]]] = [
    ("parameter in domain", lambda: Address("", "a", "x.com> NOTIFY=SUCCESS")),
    ("second address in domain", lambda: Address("", "a", "y.com, b@evil.com")),
    ("angle brackets in literal", lambda: "a@[<b@evil.com>]"),
    ("leading hyphen", lambda: "a@-x.com"),
    ("underscore label", lambda: Address("", "a", "x_y.com")),
    ("U+2028 in local part", lambda: "a\u2028b@x.com"),
    ("U+0085 in local part", lambda: Address("", "a\x85b", "x.com")),
    ("U+2028 via Mailbox", lambda: ("", "a\u2028b", "x.com")),
    ("lazy with parameter", lambda: Lazy("a@x.com> NOTIFY=SUCCESS")),
    ("pair with parameter", lambda: ("Name", "a@x.com> NOTIFY=SUCCESS")),
]


def _address(factory: Callable[[], Any]) -> Any:
    value = factory()
    if isinstance(value, tuple) and len(value) == 3:
        return Mailbox(*value)  # raises: a Mailbox cannot be made invalid
    return value


@PATHS
@pytest.mark.parametrize("field", ["to", "bcc", "from_email", "reply_to"])
@pytest.mark.parametrize(("case", "factory"), BAD_ADDRESSES, ids=[c for c, _ in BAD_ADDRESSES])
def test_bad_addresses_are_refused_on_every_path(
    smtp_server: SMTPTestServer,
    send: Callable[[EmailMessage], int],
    field: str,
    case: str,
    factory: Callable[[], Any],
) -> None:
    with pytest.raises(ValueError):  # BadHeaderError is a ValueError
        address = _address(factory)
        kwargs: dict[str, Any] = {"to": ["ok@example.com"]}
        if field == "from_email":
            kwargs["from_email"] = address
        else:
            kwargs[field] = [*kwargs.get(field, []), address]
        send(EmailMessage("s", "b", **kwargs))
    assert smtp_server.connections == 0
    assert smtp_server.messages == []


@pytest.mark.parametrize(("case", "factory"), BAD_ADDRESSES, ids=[c for c, _ in BAD_ADDRESSES])
def test_bad_addresses_are_refused_by_message_and_raw_messages(
    case: str, factory: Callable[[], Any]
) -> None:
    with pytest.raises(ValueError):
        EmailMessage("s", "b", "a@example.com", [_address(factory)]).message()
    with pytest.raises(ValueError):
        RawMessage(b"Subject: s\r\n\r\nb\r\n", "a@example.com", [_address(factory)])


@pytest.mark.parametrize(
    "address",
    ["a@[192.0.2.1]", "a@[IPv6:2001:db8::1]", Address("", "a", "bücher.de"), "root"],
)
def test_valid_literals_idna_and_local_names_pass(
    smtp_server: SMTPTestServer, address: Any
) -> None:
    assert EmailMessage("s", "b", "a@example.com", [address]).send() == 1
    assert len(smtp_server.wait_for(1)[0].rcpt_tos) == 1


# --- 10: no header line over 998 octets ---

LONG_HEADERS: list[tuple[str, Callable[[], EmailMessage]]] = [
    ("400 non-ASCII characters in a display name",
     lambda: EmailMessage("s", "b", "a@example.com", [("é" * 400, "to@example.com")])),
    ("1,200-character word in a display name",
     lambda: EmailMessage("s", "b", "a@example.com", [("x" * 1200, "to@example.com")])),
    ("1,200-character word in the subject",
     lambda: EmailMessage("y" * 1200, "b", "a@example.com", ["to@example.com"])),
    ("1,200-character word in a header",
     lambda: EmailMessage("s", "b", "a@example.com", ["to@x.com"], headers={"X-W": "w" * 1200})),
    ("long spaced display name",
     lambda: EmailMessage("s", "b", "a@example.com", [("ab " * 500, "to@example.com")])),
]  # fmt: skip


@PATHS
@pytest.mark.parametrize(("case", "build"), LONG_HEADERS, ids=[c for c, _ in LONG_HEADERS])
def test_long_headers_are_folded_under_998_octets(
    smtp_server: SMTPTestServer, send: Callable[[EmailMessage], int], case: str, build: Any
) -> None:
    message = build()
    assert send(message) == 1
    (received,) = smtp_server.wait_for(1)
    head = received.data.split(b"\r\n\r\n", 1)[0]
    assert max(len(line) for line in head.split(b"\r\n")) <= 998
    for data in (message.as_bytes(), message.message(policy=SMTP).as_bytes()):
        assert max(len(line) for line in data.split(b"\r\n")) <= 998
    parsed = stored(received.data)
    # Read back exactly, but for the spaces the stdlib parser puts between the encoded
    # words of a name too long for one (RFC 2047 readers join them exactly).
    name = parsed["To"].addresses[0].display_name
    given = message.to[0][0] if isinstance(message.to[0], tuple) else ""
    assert name.replace(" ", "") == given.replace(" ", "")
    assert str(parsed["Subject"]) == message.subject
    if "X-W" in message.extra_headers:
        assert parsed["X-W"] == message.extra_headers["X-W"]


def _long_name() -> EmailMessage:
    return EmailMessage("s", "b", "a@example.com", ["to@example.com"], headers={"X" * 1000: "v"})


def _long_mimetype() -> EmailMessage:
    msg = EmailMessage("s", "b", "a@example.com", ["to@example.com"])
    msg.attachments.append(("f.bin", b"data", "application/" + "x" * 1000))
    return msg


def _long_address() -> EmailMessage:
    return EmailMessage("s", "b", "a@example.com", ["x" * 1200 + "@example.com"])


@PATHS
@pytest.mark.parametrize("build", [_long_name, _long_mimetype, _long_address])
def test_what_cannot_be_folded_raises_before_sending(
    smtp_server: SMTPTestServer, send: Callable[[EmailMessage], int], build: Any
) -> None:
    with pytest.raises(ValueError):
        send(build())
    with pytest.raises(ValueError):
        build().message()
    assert smtp_server.connections == 0


def test_overlong_content_id_is_refused_at_once() -> None:
    msg = EmailMessage("s", "b", "a@example.com", ["to@example.com"])
    with pytest.raises(ValueError, match="content id"):
        msg.attach_inline("logo.png", b"png", cid="c" * 1000 + "@example.com")


# --- 11: control characters; headers given twice ---

CONTROLS: list[tuple[str, Callable[[EmailMessage], None]]] = [
    ("NUL in a file name", lambda m: m.attach("x\x00y.txt", b"data", "application/octet-stream")),
    ("the .exe NUL trick", lambda m: m.attach("evil.exe\x00.txt", "text")),
    ("escape in a file name", lambda m: m.attach("a\x1bb.pdf", b"%PDF", "application/pdf")),
    ("NUL in a header value", lambda m: m.extra_headers.update({"X-A": "a\x00b"})),
    ("vertical tab in the subject", lambda m: setattr(m, "subject", "a\x0bb")),
    ("form feed in a display name", lambda m: m.to.append(("a\x0cb", "c@example.com"))),
]


@PATHS
@pytest.mark.parametrize(("case", "spoil"), CONTROLS, ids=[c for c, _ in CONTROLS])
def test_control_characters_are_refused(
    smtp_server: SMTPTestServer, send: Callable[[EmailMessage], int], case: str, spoil: Any
) -> None:
    msg = EmailMessage("s", "b", "a@example.com", ["to@example.com"])
    spoil(msg)
    with pytest.raises(BadHeaderError):
        send(msg)
    with pytest.raises(BadHeaderError):
        msg.message()
    assert smtp_server.connections == 0


def test_tab_is_allowed_in_header_values() -> None:
    msg = EmailMessage("a\tb", "b", "a@example.com", ["to@example.com"])
    assert stored(msg.as_bytes())["Subject"] == "a\tb"


@PATHS
def test_fields_that_may_appear_once_appear_once(
    smtp_server: SMTPTestServer, send: Callable[[EmailMessage], int]
) -> None:
    msg = EmailMessage(
        "s",
        "b",
        "a@example.com",
        ["envelope@example.com"],
        headers={
            "To": "first@example.com",
            "to": "second@example.com",
            "Subject": "one",
            "SUBJECT": "two",
            "X-Tag": "a",
            "x-tag": "b",  # a field that may repeat: both are written
        },
    )
    assert send(msg) == 1
    (received,) = smtp_server.wait_for(1)
    parsed = stored(received.data)
    assert parsed.get_all("To") == ["second@example.com"]
    assert parsed.get_all("Subject") == ["two"]
    assert parsed.get_all("X-Tag") == ["a", "b"]
    assert received.rcpt_tos == ["envelope@example.com"]  # headers never the envelope
    assert copy.deepcopy(msg).message().get_all("To") == ["second@example.com"]


@pytest.mark.parametrize("value", ["a@example.com\u2028", "\x1ca@example.com", "\x0ba@example.com",
                                   "Ann <a@example.com>\x85", "\u3000a@example.com"])  # fmt: skip
def test_an_address_ending_in_a_control_or_line_break_is_refused_not_trimmed(value: str) -> None:
    with pytest.raises(BadHeaderError, match=r"U\+[0-9A-F]{4} at its start or end .*in to"):
        EmailMessage("s", "b", "from@example.com", [value]).envelope()
    # blanks around an address are trimmed, as before
    envelope = EmailMessage("s", "b", "from@example.com", [" \ta@example.com \t"]).envelope()
    assert envelope.recipients == ["a@example.com"]
