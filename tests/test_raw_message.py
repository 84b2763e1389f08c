"""RawMessage: a message in wire form, sent as given by every backend."""

from __future__ import annotations

import json

import pytest

import mailwright
from mailwright import BadHeaderError, EmailMessage, RawMessage
from smtpserver import SMTPTestServer


def _raw() -> RawMessage:
    built = EmailMessage("Grüße", "line one\nline two\n", "a@example.com", ["b@example.com"])
    return RawMessage(built.as_bytes(), "bounce@example.com", ["b@example.com", "c@example.com"])


def test_smtp_sends_the_bytes_and_envelope_as_given(smtp_server: SMTPTestServer) -> None:
    raw = _raw()
    assert raw.send() == 1
    (received,) = smtp_server.messages
    assert received.mail_from == "bounce@example.com"
    assert received.rcpt_tos == ["b@example.com", "c@example.com"]
    assert received.data.replace(b"\r\n", b"\n") == raw.data.replace(b"\r\n", b"\n")
    assert received.parsed()["Subject"] == "Grüße"
    assert raw.delivery is not None and raw.delivery.accepted == raw.to


def test_line_breaks_become_crlf() -> None:
    raw = RawMessage(b"Subject: x\n\nbody\rmore", "a@example.com", ["b@example.com"])
    assert raw.as_bytes() == b"Subject: x\r\n\r\nbody\r\nmore\r\n"


def test_json_round_trip_and_bad_payloads() -> None:
    raw = _raw()
    payload = json.loads(json.dumps(raw.to_dict()))
    assert RawMessage.from_dict(payload).as_bytes() == raw.as_bytes()
    for bad, words in [
        ([], "mapping"),
        ({**payload, "extra": 1}, "unexpected ['extra']"),
        ({k: v for k, v in payload.items() if k != "data"}, "missing ['data']"),
        ({**payload, "recipients": "b@example.com"}, "list of strings"),
        ({**payload, "recipients": []}, "empty"),
        ({**payload, "data": "not base64!"}, "base64"),
    ]:
        with pytest.raises(ValueError, match=words.replace("[", r"\[").replace("]", r"\]")):
            RawMessage.from_dict(bad)


def test_envelope_addresses_are_checked() -> None:
    with pytest.raises(ValueError):
        RawMessage(b"Subject: x\r\n\r\nx\r\n", "a@example.com", ["b@example.com> NOTIFY=NEVER"])
    with pytest.raises(BadHeaderError):
        RawMessage(b"Subject: x\r\n\r\nx\r\n", "a@example.com\r\nRCPT TO:<c@x.com>", ["b@x.com"])
    with pytest.raises(TypeError):
        RawMessage(b"Subject: x\r\n\r\nx\r\n", "a@example.com", "b@example.com")


def test_locmem_keeps_it() -> None:
    mailwright.configure(EMAIL_BACKEND="mailwright.backends.locmem.EmailBackend")
    raw = _raw()
    assert raw.send() == 1
    assert mailwright.outbox[0].as_bytes() == raw.as_bytes()
    assert mailwright.outbox[0].subject == "Grüße"
