"""Differential tests: the fast wire serialiser against the stdlib generator.

For Hypothesis-generated messages (Unicode subjects and names, alternatives, attachments,
inline images, message/rfc822 parts, long lines, odd charsets), ``as_bytes()`` (what is
sent) and ``message().as_bytes()`` (the stdlib generator) must parse, with the stdlib
parser, to the same headers, the same structure and the same payload bytes.
"""

from __future__ import annotations

import email.policy
import os
from email import message_from_bytes
from email.message import EmailMessage as StdlibMessage
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from examples import examples
from mailwright import EmailMessage, EmailMultiAlternatives
from mailwright.message.stdlib_build import POLICY as SMTP  # CRLF, fields kept as stored
from mailwright.message.wire import _base64_cache

# Header text: anything but line breaks and the other C0 controls (refused, tab aside).
no_breaks = st.text(
    st.characters(
        blacklist_categories=["Cs"], blacklist_characters=[chr(c) for c in range(32) if c != 9]
    )
)
long_lines = st.builds(
    lambda word, n: (word + " ") * n, st.text(min_size=1, max_size=12), st.integers(70, 120)
)
bodies = st.one_of(
    st.text(max_size=200), long_lines, st.text(alphabet="abc \n\r\t.é€😀", max_size=1200)
)
local_parts = st.from_regex(r"[a-z][a-z0-9._+-]{0,15}", fullmatch=True).filter(
    lambda s: ".." not in s and not s.endswith(".")
)
domains = st.sampled_from(["example.com", "mail.example.org", "bücher.example", "例え.テスト"])
addresses = st.builds(lambda local, domain: f"{local}@{domain}", local_parts, domains)
mailboxes = st.builds(lambda name, addr: (name, addr), no_breaks, addresses)
charsets = st.sampled_from(
    [None, "utf-8", "iso-8859-1", "koi8-r", "shift_jis", "iso-2022-jp", "latin-1", "cp1252"]
)
filenames = st.one_of(
    st.none(),
    no_breaks.filter(lambda s: s.strip() == s),
    st.text(alphabet="abcé €.", min_size=60, max_size=200),
)
binary = st.binary(max_size=1500)
attachment_types = st.sampled_from(
    [
        "application/pdf",
        "image/png",
        "application/octet-stream",
        "text/plain",
        "text/csv",
        "text/html",
    ]
)


@st.composite
def attachments(draw: st.DrawFn) -> tuple[Any, Any, str]:
    mimetype = draw(attachment_types)
    if mimetype.startswith("text/"):
        content: Any = draw(st.one_of(bodies, binary))
    else:
        content = draw(binary)
    return draw(filenames), content, mimetype


@st.composite
def messages(draw: st.DrawFn, depth: int = 0) -> EmailMessage:
    multi = draw(st.booleans())
    cls = EmailMultiAlternatives if multi else EmailMessage
    msg = cls(
        draw(no_breaks),
        draw(bodies),
        draw(mailboxes),
        draw(st.lists(mailboxes, min_size=1, max_size=3)),
        cc=draw(st.lists(mailboxes, max_size=2)),
        reply_to=draw(st.lists(addresses, max_size=1)),
        headers={
            "Date": "Fri, 01 Jan 2021 00:00:00 +0000",
            "Message-ID": "<fixed@example.com>",
            "X-Note": draw(no_breaks),
        },
    )
    msg.encoding = draw(charsets)
    if draw(st.booleans()):
        msg.content_subtype = "html"
    if multi:
        for html in draw(st.lists(bodies, max_size=2)):
            msg.attach_alternative(html, "text/html")
    for filename, content, mimetype in draw(st.lists(attachments(), max_size=3)):
        msg.attach(filename, content, mimetype)
    for content in draw(st.lists(binary, max_size=2)):
        msg.attach_inline(
            draw(st.sampled_from(["logo.png", "pic.gif", None])), content, "image/png"
        )
    if depth == 0 and draw(st.booleans()):
        msg.attach(draw(filenames), draw(messages(depth=1)), "message/rfc822")
    return msg


def parse(data: bytes) -> StdlibMessage:
    return message_from_bytes(data, policy=email.policy.default)  # type: ignore[return-value]


def header_view(part: StdlibMessage) -> list[tuple[str, str]]:
    skip = {"content-type"}  # compared through its parts below (boundaries are random)
    return [(name.lower(), str(value)) for name, value in part.items() if name.lower() not in skip]


def view(part: StdlibMessage) -> dict[str, Any]:
    """Everything a reader sees of a part, recursively; not the encoding details."""
    content_type = part.get_content_type()
    described: dict[str, Any] = {
        "headers": header_view(part),
        "type": content_type,
        "params": sorted((k, v) for k, v in part.get_params() or [] if k != "boundary"),
        "filename": part.get_filename(),
        "defects": [type(d).__name__ for d in part.defects],
    }
    if content_type == "message/rfc822":
        described["inner"] = view(part.get_payload(0))
    elif part.is_multipart():
        described["children"] = [view(child) for child in part.iter_parts()]
    else:
        described["payload"] = part.get_payload(decode=True)
    return described


@pytest.mark.timeout(900)
@settings(max_examples=int(os.environ.get("WIRE_EXAMPLES", examples(2000, 80))), deadline=None)
@given(msg=messages())
def test_wire_bytes_parse_like_stdlib_generator_output(msg: EmailMessage) -> None:
    fast = msg.as_bytes()
    stdlib = msg.message(policy=SMTP).as_bytes()
    assert view(parse(fast)) == view(parse(stdlib))
    for data in (fast, stdlib):
        assert max(len(line) for line in data.split(b"\r\n")) <= 998


def test_repeated_attachments_are_encoded_once(monkeypatch: Any) -> None:
    import mailwright.message.wire as wire

    calls: list[int] = []
    real = wire._base64_lines

    def counting(data: bytes) -> bytes:
        calls.append(len(data))
        return real(data)

    monkeypatch.setattr(wire, "_base64_lines", counting)
    attachment = bytes(range(256)) * 100  # 25 KB, the same in every message
    for i in range(20):
        msg = EmailMessage(f"s{i}", "b", "a@example.com", [f"u{i}@example.com"])
        msg.attach("report.pdf", attachment, "application/pdf")
        (part,) = parse(msg.as_bytes()).iter_attachments()
        assert part.get_content() == attachment
    assert calls.count(len(attachment)) == 1
    assert _base64_cache.encode(attachment) == real(attachment)
