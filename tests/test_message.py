"""Building messages: structure, headers, encodings, attachments (no network)."""

from __future__ import annotations

import email.policy
from email import message_from_bytes
from email.message import EmailMessage as StdlibMessage
from email.mime.text import MIMEText
from pathlib import Path
from typing import Any

import pytest

import mailwright
from mailwright import (
    BadHeaderError,
    EmailMessage,
    EmailMultiAlternatives,
    configure,
)
from mailwright.message.stdlib_build import POLICY as SMTP  # CRLF, fields kept as stored


def parse(data: bytes) -> StdlibMessage:
    return message_from_bytes(data, policy=email.policy.default)  # type: ignore[return-value]


def stored(data: bytes) -> StdlibMessage:
    """``data`` parsed as a mailbox holds it: the wire's CRLF line breaks read as "\\n"."""
    return parse(data.replace(b"\r\n", b"\n"))


def both(msg: EmailMessage) -> list[StdlibMessage]:
    """The message as sent (wire bytes) and as message() serialises it, both parsed."""
    return [stored(msg.as_bytes()), stored(msg.message().as_bytes())]


def text(part: StdlibMessage) -> str:
    content: str = part.get_content()
    return content


def test_constructor_positional_order_and_attributes() -> None:
    connection = mailwright.get_connection("dummy")
    msg = EmailMessage(
        "Subject",
        "Body",
        "from@example.com",
        ["to@example.com"],
        ["bcc@example.com"],
        connection,
        [("a.txt", "A", "text/plain")],
        {"X-Custom": "1"},
        ["cc@example.com"],
        ["reply@example.com"],
    )
    assert msg.subject == "Subject"
    assert msg.body == "Body"
    assert msg.from_email == "from@example.com"
    assert msg.to == ["to@example.com"]
    assert msg.bcc == ["bcc@example.com"]
    assert msg.cc == ["cc@example.com"]
    assert msg.reply_to == ["reply@example.com"]
    assert msg.connection is connection
    assert msg.attachments == [("a.txt", "A", "text/plain")]
    assert msg.extra_headers == {"X-Custom": "1"}
    assert msg.content_subtype == "plain"
    assert msg.mixed_subtype == "mixed"
    assert msg.encoding is None


@pytest.mark.parametrize("field", ["to", "cc", "bcc", "reply_to"])
def test_bare_string_for_address_list_is_type_error(field: str) -> None:
    with pytest.raises(TypeError, match=field):
        EmailMessage(**{field: "someone@example.com"})


def test_tuples_are_accepted_as_lists() -> None:
    msg = EmailMessage(to=("a@example.com", "b@example.com"))
    assert msg.to == ["a@example.com", "b@example.com"]


def test_default_from_email() -> None:
    assert EmailMessage().from_email == "webmaster@localhost"
    configure(DEFAULT_FROM_EMAIL="noreply@example.com")
    msg = EmailMessage("s", "b", None, ["to@example.com"])
    assert msg.from_email == "noreply@example.com"
    assert parse(msg.as_bytes())["From"] == "noreply@example.com"


def test_plain_message_headers() -> None:
    msg = EmailMessage(
        "Hello",
        "Body text",
        "Sender <from@example.com>",
        ["to1@example.com", "Second <to2@example.com>"],
        ["hidden@example.com"],
        cc=["cc@example.com"],
        reply_to=["reply@example.com"],
    )
    for parsed in both(msg):
        assert parsed["Subject"] == "Hello"
        assert parsed["From"].addresses[0].display_name == "Sender"
        assert [a.addr_spec for a in parsed["To"].addresses] == [
            "to1@example.com",
            "to2@example.com",
        ]
        assert parsed["Cc"] == "cc@example.com"
        assert parsed["Reply-To"] == "reply@example.com"
        assert parsed["Bcc"] is None
        assert parsed["Date"] is not None and parsed["Date"].datetime is not None
        assert parsed["Message-ID"].startswith("<") and parsed["Message-ID"].endswith(
            "@example.com>"
        )
        assert parsed["MIME-Version"] == "1.0"
        assert parsed.get_content_type() == "text/plain"
        assert parsed.get_content_charset() == "utf-8"
        assert text(parsed) == "Body text"
    assert b"hidden@example.com" not in msg.as_bytes()
    assert b"hidden@example.com" not in msg.message().as_bytes()


def test_message_returns_stdlib_email_message() -> None:
    msg = EmailMessage("Hi", "Body", "a@example.com", ["b@example.com"]).message()
    assert isinstance(msg, StdlibMessage)
    assert msg["Subject"] == "Hi"
    assert msg.get_content().strip() == "Body"


def test_message_ids_are_unique_and_date_and_id_can_be_given() -> None:
    ids = {parse(EmailMessage(to=["a@b.c"]).as_bytes())["Message-ID"] for _ in range(50)}
    assert len(ids) == 50
    msg = EmailMessage(
        to=["a@example.com"],
        headers={"Message-ID": "<given@example.com>", "Date": "Fri, 01 Jan 2021 00:00:00 +0000"},
    )
    for parsed in both(msg):
        assert parsed.get_all("Message-ID") == ["<given@example.com>"]
        assert parsed.get_all("Date") == ["Fri, 01 Jan 2021 00:00:00 +0000"]


def test_recipients_are_bare_envelope_addresses() -> None:
    msg = EmailMessage(
        to=["To Person <to@example.com>", ""],
        cc=["cc@example.com"],
        bcc=["Hidden <bcc@example.com>", None],
    )
    assert msg.recipients() == ["to@example.com", "cc@example.com", "bcc@example.com"]


def test_header_overrides_change_display_not_envelope() -> None:
    msg = EmailMessage(
        "s",
        "b",
        "real-sender@example.com",
        ["real-to@example.com"],
        headers={
            "From": "Shown <shown@example.com>",
            "To": "Mailing List <list@example.com>",
            "Cc": "shown-cc@example.com",
            "Reply-To": "shown-reply@example.com",
            "X-Mailer": "mailwright",
        },
        cc=["real-cc@example.com"],
    )
    envelope = msg.envelope()
    assert envelope.sender == "real-sender@example.com"
    assert envelope.recipients == ["real-to@example.com", "real-cc@example.com"]
    for parsed in both(msg):
        assert parsed.get_all("From") == ["Shown <shown@example.com>"]
        assert parsed.get_all("To") == ["Mailing List <list@example.com>"]
        assert parsed.get_all("Cc") == ["shown-cc@example.com"]
        assert parsed.get_all("Reply-To") == ["shown-reply@example.com"]
        assert parsed["X-Mailer"] == "mailwright"


def test_undisclosed_recipients_group_in_to_header() -> None:
    msg = EmailMessage(
        "s", "b", "a@example.com", bcc=["b@example.com"], headers={"To": "undisclosed-recipients:;"}
    )
    parsed = parse(msg.as_bytes())
    assert parsed["To"] == "undisclosed-recipients:;"
    assert msg.recipients() == ["b@example.com"]


def test_structural_headers_cannot_be_overridden() -> None:
    msg = EmailMessage(to=["a@example.com"], headers={"Content-Type": "text/html"})
    with pytest.raises(ValueError, match="Content-Type"):
        msg.as_bytes()


def test_bcc_given_in_headers_is_never_written() -> None:
    msg = EmailMessage(to=["a@example.com"], headers={"Bcc": "secret@example.com"})
    assert b"secret@example.com" not in msg.as_bytes()


def test_header_values_other_than_strings() -> None:
    import datetime

    when = datetime.datetime(2024, 5, 6, 7, 8, 9, tzinfo=datetime.UTC)
    msg = EmailMessage(to=["a@example.com"], headers={"Date": when, "X-Priority": 1})
    parsed = parse(msg.as_bytes())
    assert parsed["Date"].datetime == when
    assert parsed["X-Priority"] == "1"
    with pytest.raises(TypeError, match="X-Bad"):
        EmailMessage(to=["a@example.com"], headers={"X-Bad": object()}).as_bytes()


@pytest.mark.parametrize("name", ["Bad Name", "Bad:Name", "", "Ünïcode"])
def test_invalid_header_names(name: str) -> None:
    with pytest.raises(ValueError, match="header name"):
        EmailMessage(to=["a@example.com"], headers={name: "v"}).as_bytes()


# --- encodings ---


def test_non_ascii_subject_and_names_are_rfc2047_encoded() -> None:
    msg = EmailMessage(
        "Grüße aus Köln — 東京",
        "Body",
        "Jörg Müller <joerg@example.com>",
        ["Zoë <zoe@example.com>"],
    )
    data = msg.as_bytes()
    assert data.isascii()
    head = data.split(b"\r\n\r\n", 1)[0]
    assert b"=?utf-8?" in head
    for parsed in both(msg):
        assert parsed["Subject"] == "Grüße aus Köln — 東京"
        assert parsed["From"].addresses[0].display_name == "Jörg Müller"
        assert parsed["To"].addresses[0].display_name == "Zoë"


def test_display_names_with_specials_are_quoted() -> None:
    msg = EmailMessage(
        to=['"Doe, John \\"JD\\"" <jd@example.com>', ("Roe, Jane", "jr@example.com")],
        from_email=("A. Person (x)", "a@example.com"),
    )
    for parsed in both(msg):
        names = [a.display_name for a in parsed["To"].addresses]
        assert names == ['Doe, John "JD"', "Roe, Jane"]
        assert parsed["From"].addresses[0].display_name == "A. Person (x)"
    with pytest.raises(ValueError, match="exactly one"):
        EmailMessage(to=["Doe, John <jd@example.com>"]).as_bytes()


def test_idna_domains_in_envelope_and_headers() -> None:
    msg = EmailMessage("s", "b", "info@bücher.de", ["Ünï <user@münchen.example>"])
    envelope = msg.envelope()
    assert envelope.sender == "info@xn--bcher-kva.de"
    assert envelope.recipients == ["user@xn--mnchen-3ya.example"]
    assert not envelope.smtputf8
    head = envelope.data.split(b"\r\n\r\n", 1)[0]
    assert b"user@xn--mnchen-3ya.example" in head
    assert b"info@xn--bcher-kva.de" in head
    assert head.isascii()


def test_non_ascii_local_part_needs_smtputf8() -> None:
    msg = EmailMessage("s", "b", "from@example.com", ["jörg@example.com"])
    envelope = msg.envelope()
    assert envelope.smtputf8
    assert envelope.recipients == ["jörg@example.com"]
    # (the stdlib parser reads 8-bit headers only from str, not bytes)
    parsed = email.message_from_string(envelope.data.decode(), policy=email.policy.SMTPUTF8)
    assert parsed["To"].addresses[0].username == "jörg"
    assert msg.message().policy.utf8


def test_long_lines_are_kept_under_998_octets_and_crlf() -> None:
    body = ("word " * 1000) + "\n" + ("é" * 3000) + "\nshort\n"
    subject = "A subject " * 30
    msg = EmailMultiAlternatives(subject, body, "a@example.com", ["b@example.com"])
    msg.attach_alternative("<p>" + "x" * 5000 + "</p>", "text/html")
    msg.attach("data.bin", bytes(range(256)) * 200)
    for data in (msg.as_bytes(), msg.message(policy=SMTP).as_bytes()):
        lines = data.split(b"\r\n")
        assert max(len(line) for line in lines) <= 998
        assert b"\n" not in data.replace(b"\r\n", b"")
        assert b"\r" not in data.replace(b"\r\n", b"")
        head = data.split(b"\r\n\r\n", 1)[0]
        assert max(len(line) for line in head.split(b"\r\n")) <= 78
    for parsed in both(msg):
        assert parsed["Subject"] == subject
        plain = parsed.get_body(("plain",))
        assert text(plain) == body
        assert parsed.get_body(("html",)).get_content().strip() == "<p>" + "x" * 5000 + "</p>"


def test_body_with_header_looking_text_stays_body() -> None:
    body = "To: victim@example.com\nSubject: injected\n\nreal body"
    parsed = stored(EmailMessage("s", body, "a@example.com", ["b@example.com"]).as_bytes())
    assert parsed["Subject"] == "s"
    assert parsed.get_all("To") == ["b@example.com"]
    assert text(parsed) == body


def test_default_charset_setting_and_encoding_attribute() -> None:
    configure(DEFAULT_CHARSET="iso-8859-1")
    msg = EmailMessage("s", "Café", "a@example.com", ["b@example.com"])
    for parsed in both(msg):
        assert parsed.get_content_charset() == "iso-8859-1"
        assert parsed.get_content().strip() == "Café"
    msg.encoding = "utf-8"
    assert parse(msg.as_bytes()).get_content_charset() == "utf-8"
    # characters the charset cannot hold fall back to UTF-8 rather than being lost
    msg = EmailMessage("s", "Café 東京", "a@example.com", ["b@example.com"])
    parsed = parse(msg.as_bytes())
    assert parsed.get_content_charset() == "utf-8"
    assert parsed.get_content().strip() == "Café 東京"


def test_content_subtype_html() -> None:
    msg = EmailMessage("s", "<p>Hi</p>", "a@example.com", ["b@example.com"])
    msg.content_subtype = "html"
    for parsed in both(msg):
        assert parsed.get_content_type() == "text/html"
        assert parsed.get_content().strip() == "<p>Hi</p>"


# --- structure ---


def test_alternatives_structure() -> None:
    msg = EmailMultiAlternatives("s", "plain text", "a@example.com", ["b@example.com"])
    msg.attach_alternative("<p>html</p>", "text/html")
    assert msg.alternatives == [("<p>html</p>", "text/html")]
    for parsed in both(msg):
        assert parsed.get_content_type() == "multipart/alternative"
        parts = list(parsed.iter_parts())
        assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
        assert text(parts[0]) == "plain text"
        assert text(parts[1]) == "<p>html</p>"


def test_alternatives_with_attachments_are_mixed() -> None:
    msg = EmailMultiAlternatives("s", "plain", "a@example.com", ["b@example.com"])
    msg.attach_alternative("<b>html</b>", "text/html")
    msg.attach("report.pdf", b"%PDF-1.4 data", "application/pdf")
    for parsed in both(msg):
        assert parsed.get_content_type() == "multipart/mixed"
        alternative, attachment = parsed.iter_parts()
        assert alternative.get_content_type() == "multipart/alternative"
        assert attachment.get_content_type() == "application/pdf"
        assert attachment.get_filename() == "report.pdf"
        assert attachment.get_content() == b"%PDF-1.4 data"
        assert attachment.get_content_disposition() == "attachment"


def test_alternative_without_body_sends_only_the_html() -> None:
    # Issue 9 item 6: no empty text/plain part next to the HTML (as Django).
    msg = EmailMultiAlternatives(to=["b@example.com"])
    msg.attach_alternative("<p>only html</p>", "text/html")
    for parsed in both(msg):
        assert parsed.get_content_type() == "multipart/alternative"
        parts = list(parsed.iter_parts())
        assert [p.get_content_type() for p in parts] == ["text/html"]
        assert text(parts[0]) == "<p>only html</p>"


def test_attach_alternative_needs_content_and_type() -> None:
    msg = EmailMultiAlternatives()
    with pytest.raises(ValueError):
        msg.attach_alternative(None, "text/html")
    with pytest.raises(ValueError):
        msg.attach_alternative("<p></p>", "not a type")


def test_inline_images_are_related_to_the_html() -> None:
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256))
    msg = EmailMultiAlternatives("s", "plain", "a@example.com", ["b@example.com"])
    cid = msg.attach_inline("logo.png", png)
    msg.attach_alternative(f'<img src="cid:{cid}">', "text/html")
    msg.attach("notes.txt", "notes")
    for parsed in both(msg):
        assert parsed.get_content_type() == "multipart/mixed"
        alternative, notes = parsed.iter_parts()
        plain, related = alternative.iter_parts()
        assert plain.get_content_type() == "text/plain"
        assert related.get_content_type() == "multipart/related"
        html, image = related.iter_parts()
        assert html.get_content_type() == "text/html"
        assert f"cid:{cid}" in html.get_content()
        assert image.get_content_type() == "image/png"
        assert image["Content-ID"] == f"<{cid}>"
        assert image.get_content_disposition() == "inline"
        assert image.get_content() == png
        assert notes.get_filename() == "notes.txt"


def test_inline_image_with_html_body_and_given_cid() -> None:
    msg = EmailMessage("s", '<img src="cid:logo@example.com">', "a@example.com", ["b@example.com"])
    msg.content_subtype = "html"
    assert msg.attach_inline("logo.gif", b"GIF89a", cid="logo@example.com") == "logo@example.com"
    parsed = parse(msg.as_bytes())
    assert parsed.get_content_type() == "multipart/related"
    _html, image = parsed.iter_parts()
    assert image["Content-ID"] == "<logo@example.com>"
    assert image.get_content_type() == "image/gif"
    with pytest.raises(ValueError, match="content id"):
        msg.attach_inline("x.gif", b"x", cid="<bad id>")
    with pytest.raises(BadHeaderError):
        msg.attach_inline("x.gif", b"x", cid="a\r\nBcc: x@y")


def test_inline_image_without_html_is_still_sent() -> None:
    msg = EmailMessage("s", "plain only", "a@example.com", ["b@example.com"])
    msg.attach_inline("logo.png", b"png-bytes")
    parsed = parse(msg.as_bytes())
    _body, image = parsed.iter_parts()
    assert image.get_content() == b"png-bytes"
    assert image.get_content_disposition() == "inline"


# --- attachments ---


def test_attachment_mimetype_guessing_and_text_handling() -> None:
    msg = EmailMessage("s", "body", "a@example.com", ["b@example.com"])
    msg.attach("photo.jpg", b"\xff\xd8\xff")
    msg.attach("unknown.zzqq", b"\x00\x01")
    msg.attach("notes.txt", "héllo text")
    msg.attach("utf8.txt", "ünïcode bytes".encode())
    msg.attach("binary.txt", b"\xff\xfe\x00 not utf-8")
    assert msg.attachments[3] == ("utf8.txt", "ünïcode bytes", "text/plain")
    assert msg.attachments[4].mimetype == "application/octet-stream"
    for parsed in both(msg):
        parts = list(parsed.iter_attachments())
        types = [p.get_content_type() for p in parts]
        assert types == [
            "image/jpeg",
            "application/octet-stream",
            "text/plain",
            "text/plain",
            "application/octet-stream",
        ]
        assert parts[0].get_content() == b"\xff\xd8\xff"
        assert parts[1].get_content() == b"\x00\x01"
        assert text(parts[2]) == "héllo text"
        assert parts[2].get_content_charset() == "utf-8"
        assert text(parts[3]) == "ünïcode bytes"
        assert parts[4].get_content() == b"\xff\xfe\x00 not utf-8"


def test_attachments_in_constructor_and_mime_parts() -> None:
    part = MIMEText("from a MIME part", "plain", "utf-8")
    part.add_header("Content-Disposition", "attachment", filename="part.txt")
    msg = EmailMessage(
        "s",
        "body",
        "a@example.com",
        ["b@example.com"],
        attachments=[("a.csv", "x,y", "text/csv"), part],
    )
    assert msg.attachments[1] is part
    for parsed in both(msg):
        csv, mime = parsed.iter_attachments()
        assert csv.get_content_type() == "text/csv"
        assert mime.get_filename() == "part.txt"
        assert mime.get_content().strip() == "from a MIME part"


def test_attach_rejects_bad_combinations() -> None:
    msg = EmailMessage()
    with pytest.raises(ValueError):
        msg.attach(MIMEText("x"), "content")
    with pytest.raises(ValueError):
        msg.attach("file.txt", None)
    with pytest.raises(ValueError, match="MIME type"):
        msg.attach("file.txt", "x", "texthtml")


def test_non_ascii_and_long_filenames_round_trip() -> None:
    names = [
        "résumé.pdf",
        "日本語のファイル名.txt",
        "a" * 120 + ".bin",
        'quote"and\\slash.txt',
        "tab\tand  spaces.txt",
    ]
    msg = EmailMessage("s", "b", "a@example.com", ["b@example.com"])
    for name in names:
        msg.attach(name, b"data", "application/octet-stream")
    for data in (msg.as_bytes(), msg.message(policy=SMTP).as_bytes()):
        parsed = parse(data)
        assert [p.get_filename() for p in parsed.iter_attachments()] == names
        head_lines = [line for line in data.split(b"\r\n") if not line.startswith(b" ")]
        assert all(len(line) <= 998 for line in head_lines)


def test_attach_file(tmp_path: Path) -> None:
    path = tmp_path / "data.json"
    path.write_bytes(b'{"a": 1}')
    msg = EmailMessage("s", "b", "a@example.com", ["b@example.com"])
    msg.attach_file(path)
    msg.attach_file(str(path), "application/x-custom")
    assert msg.attachments[0] == ("data.json", '{"a": 1}', "application/json") or (
        msg.attachments[0].mimetype == "application/json"
    )
    first, second = parse(msg.as_bytes()).iter_attachments()
    assert first.get_filename() == "data.json"
    assert second.get_content_type() == "application/x-custom"
    assert second.get_content() == b'{"a": 1}'


def test_attach_missing_file_raises_before_sending(tmp_path: Path) -> None:
    msg = EmailMessage("s", "b", "a@example.com", ["b@example.com"])
    with pytest.raises(FileNotFoundError):
        msg.attach_file(tmp_path / "missing.pdf")
    assert msg.attachments == []


def test_rfc822_attachment_is_a_message_part_never_base64() -> None:
    inner = EmailMessage("Inner subject", "Inner body", "x@example.com", ["y@example.com"])
    stdlib_inner = StdlibMessage()
    stdlib_inner["Subject"] = "Stdlib inner"
    stdlib_inner.set_content("stdlib body")
    msg = EmailMessage("Outer", "outer body", "a@example.com", ["b@example.com"])
    msg.attach("forward.eml", inner, "message/rfc822")
    msg.attach(None, stdlib_inner, "message/rfc822")
    msg.attach("raw.eml", b"Subject: Raw bytes\n\nraw body\n", "message/rfc822")
    for data in (msg.as_bytes(), msg.message().as_bytes()):
        parsed = parse(data)
        parts = list(parsed.iter_attachments())
        assert [p.get_content_type() for p in parts] == ["message/rfc822"] * 3
        for part in parts:
            assert part["Content-Transfer-Encoding"] in ("7bit", "8bit")
        subjects = [p.get_payload(0)["Subject"] for p in parts]
        assert subjects == ["Inner subject", "Stdlib inner", "Raw bytes"]
        assert parts[0].get_payload(0).get_content().strip() == "Inner body"
        assert b"base64" not in data


def test_empty_body_with_attachment_has_no_empty_text_part() -> None:
    msg = EmailMessage("s", "", "a@example.com", ["b@example.com"])
    msg.attach("a.bin", b"x")
    parsed = parse(msg.as_bytes())
    assert [p.get_content_type() for p in parsed.iter_parts()] == ["application/octet-stream"]


# --- bad input ---


@pytest.mark.parametrize(
    "address",
    ["not an address", "a@", "@example.com", "a@b@c", "two@example.com, three@example.com", "x <y"],
)
def test_unparsable_address_is_value_error_naming_it(address: str) -> None:
    msg = EmailMessage("s", "b", "a@example.com", [address])
    with pytest.raises(ValueError, match="address") as info:
        msg.as_bytes()
    assert repr(address) in str(info.value)
    with pytest.raises(ValueError):
        msg.send()


def test_bad_from_address_is_value_error() -> None:
    with pytest.raises(ValueError, match="from_email"):
        EmailMessage("s", "b", "nobody@", ["b@example.com"]).as_bytes()


def test_message_ids_differ_in_a_forked_child() -> None:
    import os

    def random_part(message_id: str) -> str:
        return message_id.split(".", 1)[1].split("@", 1)[0][:12]

    parent = parse(EmailMessage(to=["a@b.c"]).as_bytes())["Message-ID"]
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report one Message-ID and leave at once
        child = parse(EmailMessage(to=["a@b.c"]).as_bytes())["Message-ID"]
        os.write(write_end, child.encode())
        os._exit(0)
    os.close(write_end)
    child = os.read(read_end, 1000).decode()
    os.close(read_end)
    os.waitpid(pid, 0)
    assert random_part(child) != random_part(parent)


def test_filenames_with_unicode_line_separators_work_in_message_too() -> None:
    # str.splitlines() breaks on these; the stdlib's set_param refuses them, RFC 2231
    # encodes them fine. Found by the differential Hypothesis test. (The C0 controls
    # among them, \x0b and \x1c, are refused since issue 9: see test_message_side.)
    names = ["para\u2028sep.pdf", "next\x85line.bin", "para\u2029.txt"]
    msg = EmailMessage("s", "b", "a@example.com", ["b@example.com"])
    for name in names:
        msg.attach(name, b"data", "application/octet-stream")
    for parsed in both(msg):
        assert [part.get_filename() for part in parsed.iter_attachments()] == names


def test_text_bytes_set_directly_in_attachments_are_decoded_like_attach() -> None:
    """Bytes of a text/* type put straight into ``attachments`` (not through attach())
    follow attach()'s rule: UTF-8 is text with its charset, anything else is sent as
    application/octet-stream, never as text without a charset no reader can decode."""
    msg = EmailMessage("s", "b", "a@example.com", ["b@example.com"])
    msg.attachments = [
        ("utf8.txt", "ütƒ-8\n".encode(), "text/plain"),
        ("latin1.txt", "é\n".encode("latin-1"), "text/plain"),
    ]
    for parsed in both(msg):
        utf8, latin1 = parsed.iter_attachments()
        assert (utf8.get_content_type(), utf8.get_content_charset()) == ("text/plain", "utf-8")
        assert utf8.get_content() == "ütƒ-8\n"
        assert latin1.get_content_type() == "application/octet-stream"
        assert latin1.get_content() == "é\n".encode("latin-1")


@pytest.mark.parametrize(
    ("address", "why"),
    [
        ("ann@example..com", "the domain 'example..com' has an empty label"),
        ("ann@.example.com", "the domain '.example.com' has an empty label"),
        ("Ann <ann@example.com.>", "the domain 'example.com.' has an empty label"),
        ("ann@", "nothing after the '@'"),
        ("@example.com", "nothing before the '@'"),
        ("ann..lee@example.com", "the part before the '@', 'ann..lee', has two dots"),
        ("ann lee@example.com", "a space inside the address"),
        ("a@b@example.com", "more than one '@'"),
        ("a@example.com, b@example.com", "more than one address"),
    ],
)
def test_address_errors_say_why(address: str, why: str) -> None:
    with pytest.raises(ValueError) as info:
        EmailMessage("s", "b", "from@example.com", [address]).message()
    text = str(info.value)
    assert why in text and repr(address) in text
    assert "not exactly one address" not in text


def _with_attachment(name: str) -> EmailMessage:
    message = EmailMessage("s", "b", "from@example.com", ["to@example.com"])
    message.attach(name, "x", "text/plain")
    return message


@pytest.mark.parametrize(
    ("make", "names"),
    [
        (lambda: EmailMessage("bad \udc80", "b", "a@example.com", ["b@example.com"]), "'Subject'"),
        (lambda: EmailMessage("s", "b", "Ann \udc80 <a@example.com>", []), "from_email"),
        (lambda: EmailMessage("s", "b", ("Ann \ud800", "a@example.com"), []), "display name"),
        (lambda: EmailMessage("s", "b", "a@example.com", ["Bob \ud800 <b@example.com>"]), "in to"),
        (lambda: EmailMessage("s", "b", "a@example.com", ["b\udfff@example.com"]), "in to"),
        (
            lambda: EmailMessage("s", "b", "a@example.com", [], headers={"X-Tag": "v\udc80"}),
            "'X-Tag'",
        ),
        (lambda: _with_attachment("report\udc80.txt"), "'filename'"),
    ],
)
def test_lone_surrogates_are_named(make: Any, names: str) -> None:
    with pytest.raises(ValueError) as info:
        make().message()
    assert not isinstance(info.value, UnicodeEncodeError)
    text = str(info.value)
    assert "lone surrogate U+D" in text and names in text
