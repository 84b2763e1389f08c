"""Unit tests of two fixes found against real software (issue: Postfix, Nodemailer):
an attached 8-bit message made 7bit, and display names split over adjacent encoded
words shown without a stray space. The real-world tests are test_postfix.py and
test_real_clients.py."""

from __future__ import annotations

import base64
import email
import email.policy

from mailwright import EmailMessage
from mailwright.devserver.store import parse_message, summarize
from mailwright.message.mime import seven_bit_message


def parse(data: bytes) -> email.message.EmailMessage:
    parsed = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(parsed, email.message.EmailMessage)
    return parsed


def test_an_ascii_message_is_left_byte_for_byte() -> None:
    data = b"Subject: x\r\nContent-Transfer-Encoding: 8bit\r\n\r\nplain\r\n"
    assert seven_bit_message(data) is data


def test_8bit_leaves_headers_and_nested_messages_become_7bit() -> None:
    inner = (
        (
            "Subject: Grüße aus Köln\r\n"
            "From: Zoë <zoe@example.test>\r\n"
            "Content-Type: multipart/mixed; boundary=b1\r\n"
            "\r\n"
            "preamble ä\r\n"
            "--b1\r\n"
            "Content-Type: text/plain; charset=utf-8\r\n"
            "Content-Transfer-Encoding: 8bit\r\n"
            "\r\n"
            "Äpfel und Birnen\r\n"
            "--b1\r\n"
            "Content-Type: message/rfc822\r\n"
            "Content-Transfer-Encoding: 8bit\r\n"
            "\r\n"
            "Subject: deeper\r\n"
            "\r\n"
            "naïve\r\n"
            "--b1\r\n"
            "Content-Type: application/octet-stream\r\n"
            "Content-Transfer-Encoding: binary\r\n"
            "\r\n"
        ).encode()
        + bytes([0xFF, 0x00, 0x80])
        + b"\r\n--b1--\r\nepilogue\r\n"
    )
    out = seven_bit_message(inner)
    assert out.isascii()
    message = parse(out)
    assert message["Subject"] == "Grüße aus Köln"
    assert message["From"].addresses[0].display_name == "Zoë"
    text, nested, binary = message.iter_parts()
    assert text.get_content() == "Äpfel und Birnen"
    assert text["Content-Transfer-Encoding"] in ("base64", "quoted-printable")
    assert nested["Content-Transfer-Encoding"] == "7bit"
    assert nested.get_payload(0).get_content() == "naïve"
    assert binary.get_content() == bytes([0xFF, 0x00, 0x80])
    assert out.endswith(b"--b1--\r\nepilogue\r\n")


def test_a_non_ascii_address_is_left_for_smtputf8() -> None:
    data = "From: <jörg@example.test>\r\n\r\nbody\r\n".encode()
    assert seven_bit_message(data) == data


def test_an_attached_message_goes_7bit_whatever_it_was_given_as() -> None:
    inner = "Subject: x\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nÜber\r\n".encode()
    outer = EmailMessage("s", "b", "a@example.test", ["b@example.test"])
    outer.attach("in.eml", inner, "message/rfc822")
    data = outer.envelope().data
    assert data.isascii()
    (attached,) = [p for p in parse(data).walk() if p.get_content_type() == "message/rfc822"]
    assert attached.get_payload(0).get_content() == "Über\n"
    assert outer.message().as_bytes().isascii()


NAME = "=?UTF-8?B?" + base64.b64encode("送信".encode()).decode() + "?=\r\n =?UTF-8?B?"
NAME += base64.b64encode("者".encode()).decode() + "?="


def test_adjacent_encoded_words_show_without_the_space_between() -> None:
    raw = (
        f"From: {NAME} <a@example.test>\r\n"
        "To: =?UTF-8?Q?J=C3=B6rg?= =?UTF-8?Q?_M=C3=BCller?= <j@example.test>,"
        " Plain Name <p@example.test>\r\n"
        f"Subject: {NAME} und =?UTF-8?Q?mehr?=\r\n\r\nbody\r\n"
    ).encode()
    summary = summarize(raw)
    assert summary.from_header == "送信者 <a@example.test>"
    assert summary.to_header == "Jörg Müller <j@example.test>, Plain Name <p@example.test>"
    assert summary.subject == "送信者 und mehr"
    parsed = parse_message(raw)
    assert str(parsed["From"]) == "送信者 <a@example.test>"
    assert parsed["From"].addresses[0].display_name == "送信者"
