"""Fields whose grammar has no encoded words (Message-ID, In-Reply-To, References,
List-*, Return-Path...) arrive exactly as given: never RFC 2047-encoded, folded only
at their own whitespace, and refused before sending when a token cannot fit a line.
Also ``EmailMessage.list_unsubscribe`` (RFC 2369, RFC 8058)."""

from __future__ import annotations

import re
from email import message_from_bytes, policy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import mailwright
from conftest import ServerFactory
from mailwright import BadHeaderError, EmailMessage, get_connection

GMAIL_ID = "<CAKq8" + "Zx9" * 25 + "=w@mail.gmail.com>"  # about 90 characters
FIELDS = ["Message-ID", "In-Reply-To", "References", "List-Unsubscribe", "List-Id", "Return-Path"]


def wire(headers: dict[str, Any], **kwargs: Any) -> bytes:
    return EmailMessage(
        "s", "b\n", "a@example.com", ["b@example.com"], headers=headers, **kwargs
    ).as_bytes()


def header_lines(data: bytes, name: str) -> list[bytes]:
    """The physical lines of field ``name`` (its first line and continuations)."""
    head = data.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
    prefix = name.lower().encode() + b":"
    start = next(i for i, line in enumerate(head) if line.lower().startswith(prefix))
    lines = [head[start]]
    for line in head[start + 1 :]:
        if line[:1] not in (b" ", b"\t"):
            break
        lines.append(line)
    return lines


def unfolded(data: bytes, name: str) -> str:
    lines = header_lines(data, name)
    return b"\r\n".join(lines).replace(b"\r\n", b"").decode().split(":", 1)[1].strip()


@pytest.mark.parametrize("name", FIELDS)
def test_a_long_structured_value_is_never_encoded(name: str) -> None:
    value = " ".join([GMAIL_ID] * 3) if name == "References" else GMAIL_ID
    data = wire({name: value})
    assert b"=?" not in data
    assert unfolded(data, name) == value
    parsed = message_from_bytes(data, policy=policy.default)
    assert str(parsed[name]).replace("\r\n", "") in (value, value.replace("  ", " "))
    for line in header_lines(data, name):
        assert len(line) <= 998


def test_folding_happens_only_between_tokens() -> None:
    ids = [f"<{i}.{'k' * 50}@example.com>" for i in range(30)]
    data = wire({"References": " ".join(ids)})
    lines = header_lines(data, "References")
    assert len(lines) > 1
    tokens = [token.decode() for line in lines for token in line.split()]
    assert tokens == ["References:", *ids]  # every break falls between two ids
    assert unfolded(data, "References") == " ".join(ids)


def test_a_url_too_long_for_a_line_is_refused_before_anything_is_sent(
    start_server: ServerFactory,
) -> None:
    server = start_server()
    long_url = "https://example.com/u/" + "a" * 990
    message = EmailMessage("s", "b", "a@example.com", ["b@example.com"])
    message.list_unsubscribe(long_url)
    with pytest.raises(ValueError, match="998"):
        get_connection(host=server.host, port=server.port).send_messages([message])
    with pytest.raises(ValueError, match="998"):
        wire({"Message-ID": "<" + "x" * 1000 + "@example.com>"})
    # A URL that fits on a line of its own is sent whole on that line.
    fits = "https://example.com/u/" + "a" * 900
    data = wire({"List-Unsubscribe": f"<{fits}>, <mailto:u@example.com>"})
    assert f"<{fits}>,".encode() in data
    assert server.connections == 0


def test_non_ascii_in_a_structured_field_is_an_error_not_an_encoded_word() -> None:
    with pytest.raises(ValueError, match="ASCII"):
        wire({"In-Reply-To": "<grüße@example.com>"})
    with pytest.raises(ValueError, match="ASCII"):
        wire({"List-Unsubscribe": "<https://example.com/ünsubscribe>"})


@pytest.mark.parametrize("name", FIELDS)
def test_structured_fields_stay_injection_proof(name: str) -> None:
    for evil in ("<a@b>\r\nBcc: victim@example.com", "<a@b>\nX: y", "<a@b>\x00", "<a@b>\rX"):
        with pytest.raises(BadHeaderError):
            wire({name: evil})


def test_an_unstructured_field_still_encodes() -> None:
    data = wire({"X-Note": "grüße " * 20})
    assert b"=?utf-8?" in data


@settings(max_examples=60, deadline=None)
@given(
    tokens=st.lists(
        st.text(
            alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters="<>"),
            min_size=1,
            max_size=120,
        ),
        min_size=1,
        max_size=12,
    ),
    gaps=st.lists(st.sampled_from([" ", "  ", "\t", " \t"]), min_size=11, max_size=11),
)
def test_any_ascii_value_reads_back_exactly(tokens: list[str], gaps: list[str]) -> None:
    value = "".join(f"<{token}>" + gap for token, gap in zip(tokens, gaps, strict=False)).strip()
    value = value.strip(" \t")
    data = wire({"References": value})
    assert b"=?" not in data.split(b"\r\n\r\n")[0].split(b"References:")[1].split(b"\r\nMIME")[0]
    assert unfolded(data, "References") == value
    assert all(len(line) <= 998 for line in header_lines(data, "References"))


# --- list_unsubscribe ---


def test_list_unsubscribe_sets_both_fields() -> None:
    message = EmailMessage("s", "b", "a@example.com", ["b@example.com"])
    message.list_unsubscribe("https://example.com/u?id=1&t=x", "unsubscribe@example.com")
    parsed = message_from_bytes(message.as_bytes(), policy=policy.default)
    assert parsed["List-Unsubscribe"] == (
        "<https://example.com/u?id=1&t=x>, <mailto:unsubscribe@example.com>"
    )
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert str(message.message()["List-Unsubscribe-Post"]) == "List-Unsubscribe=One-Click"


def test_list_unsubscribe_variants() -> None:
    message = EmailMessage("s", "b", "a@example.com", ["b@example.com"])
    message.list_unsubscribe(mailto="mailto:u@example.com?subject=unsubscribe")
    assert message.extra_headers == {
        "List-Unsubscribe": "<mailto:u@example.com?subject=unsubscribe>"
    }
    message.list_unsubscribe("http://example.com/u", one_click=False)
    assert message.extra_headers == {"List-Unsubscribe": "<http://example.com/u>"}
    message.list_unsubscribe("https://example.com/u", one_click=False)
    assert "List-Unsubscribe-Post" not in message.extra_headers
    # A field given in headers= (any spelling) is replaced, never doubled.
    message = EmailMessage(
        "s", "b", "a@example.com", ["b@example.com"],
        headers={"list-unsubscribe": "<mailto:old@example.com>", "LIST-UNSUBSCRIBE-POST": "x"},
    )  # fmt: skip
    message.list_unsubscribe("https://example.com/new")
    data = message.as_bytes()
    assert len(re.findall(rb"(?im)^list-unsubscribe:", data)) == 1
    assert len(re.findall(rb"(?im)^list-unsubscribe-post:", data)) == 1
    assert b"old@example.com" not in data


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({}, ValueError),
        ({"url": "http://example.com/u"}, ValueError),  # one-click needs https
        ({"url": "ftp://example.com/u", "one_click": False}, ValueError),
        ({"url": "https://example.com/a b"}, ValueError),
        ({"url": "https://example.com/a>,<x"}, ValueError),
        ({"url": "https:///nohost"}, ValueError),
        ({"url": "https://example.com/ü"}, ValueError),
        ({"url": "https://example.com/u\r\nBcc: x@example.com"}, BadHeaderError),
        ({"mailto": "not an address"}, ValueError),
        ({"mailto": "u@example.com\nBcc: x@example.com"}, BadHeaderError),
        ({"mailto": "Name <u@example.com>"}, ValueError),
        ({"url": 5}, TypeError),
    ],
)
def test_list_unsubscribe_refuses(kwargs: dict[str, Any], error: type[Exception]) -> None:
    message = EmailMessage("s", "b", "a@example.com", ["b@example.com"])
    with pytest.raises(error):
        message.list_unsubscribe(**kwargs)
    assert message.extra_headers == {}


def test_list_unsubscribe_arrives_per_recipient_in_send_bulk(start_server: ServerFactory) -> None:
    server = start_server()
    mailwright.configure(EMAIL_HOST=server.host, EMAIL_PORT=server.port)
    messages = []
    for i in range(20):
        message = EmailMessage("News", "b", "news@example.com", [f"user{i}@example.com"])
        message.list_unsubscribe(f"https://example.com/unsubscribe/{i}/" + "t" * 80)
        messages.append(message)
    assert mailwright.send_bulk(messages, connections=3).sent == 20
    for received in server.wait_for(20):
        parsed = received.parsed()
        number = received.rcpt_tos[0].removeprefix("user").split("@")[0]
        link = f"https://example.com/unsubscribe/{number}/{'t' * 80}"
        assert parsed["List-Unsubscribe"] == f"<{link}>"
        assert b"=?" not in received.data


def test_list_unsubscribe_on_a_raw_message_is_an_error() -> None:
    raw = mailwright.RawMessage(b"Subject: x\r\n\r\nbody\r\n", "a@example.com", ["b@example.com"])
    with pytest.raises(TypeError, match="already composed"):
        raw.list_unsubscribe("https://example.com/u")
