"""The catcher's web inbox and JSON API (server in a thread, real SMTP and HTTP)."""

from __future__ import annotations

import contextlib
import io
import json
import mailbox
import os
import smtplib
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from email import policy
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from examples import examples
from mailwright import EmailMessage, EmailMultiAlternatives, get_connection
from mailwright.demo import sample_messages
from mailwright.devserver import DevServer, MaildirError, PortInUseError
from mailwright.devserver.smtp import malformed_reason
from mailwright.devserver.store import decoded_header


@pytest.fixture
def catcher(tmp_path: Path) -> Iterator[DevServer]:
    server = DevServer("127.0.0.1", 0, 0, maildir=tmp_path / "mail", out=io.StringIO())
    server.start_in_thread()
    yield server
    server.stop_thread()


def send(server: DevServer, *messages: EmailMessage) -> None:
    connection = get_connection("smtp", host="127.0.0.1", port=server.smtp_port)
    assert connection.send_messages(list(messages)) == len(messages)


def send_raw(server: DevServer, *raws: bytes) -> None:
    with smtplib.SMTP("127.0.0.1", server.smtp_port, timeout=10) as client:
        for raw in raws:
            assert client.sendmail("a@example.com", ["b@example.com"], raw) == {}


def http(
    server: DevServer,
    path: str,
    method: str = "GET",
    body: bytes | None = None,
    token: bool = True,
) -> tuple[int, dict[str, str], bytes]:
    """A request as a script makes it: no Origin; the start-up token when asked."""
    headers = {"X-Mailwright-Token": server.api_token} if token else {}
    request = urllib.request.Request(
        f"{server.inbox_url}{path.lstrip('/')}", method=method, data=body, headers=headers
    )
    try:
        with urllib.request.urlopen(request) as reply:
            return reply.status, dict(reply.headers), reply.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def api(server: DevServer, path: str, method: str = "GET", body: Any = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    status, _, body = http(server, path, method, data)
    assert status == 200, body
    return json.loads(body)


def test_list_is_newest_first_and_paged(catcher: DevServer) -> None:
    send(
        catcher,
        *(EmailMessage(f"Message {i}", "b", "a@example.com", ["b@example.com"]) for i in range(5)),
    )
    listing = api(catcher, "/api/messages")
    assert listing["total"] == 5
    assert [m["subject"] for m in listing["messages"]] == [f"Message {i}" for i in range(4, -1, -1)]
    page = api(catcher, "/api/messages?limit=2&offset=1")
    assert [m["subject"] for m in page["messages"]] == ["Message 3", "Message 2"]
    first = listing["messages"][0]
    assert first["from"] == "a@example.com" and first["to"] == "b@example.com"
    assert first["mail_from"] == "a@example.com" and first["rcpt_tos"] == ["b@example.com"]
    assert first["size"] > 0 and first["received"]
    status, _, _ = http(catcher, "/api/messages?limit=abc")
    assert status == 400


def test_detail_parts_html_and_raw(catcher: DevServer) -> None:
    send(catcher, *sample_messages())
    listing = api(catcher, "/api/messages")
    report = next(m for m in listing["messages"] if m["subject"] == "Your monthly report")
    detail = api(catcher, f"/api/messages/{report['id']}")
    assert (
        detail["text"].strip() == "Your report is attached. (This is the plain-text alternative.)"
    )
    assert "<h1" in detail["html"]
    assert dict(detail["headers"])["Cc"] == "team@example.com"
    types = [part["content_type"] for part in detail["parts"]]
    assert types == ["text/plain", "text/html", "image/png", "text/csv"]
    csv = detail["parts"][3]
    status, headers, body = http(catcher, csv["url"] + "?download=1")
    assert status == 200
    assert body == b"month,orders\n2026-10,1280\n2026-11,1432\n".replace(b"\n", b"\r\n")
    assert headers["Content-Disposition"] == (
        "attachment; filename=\"report.csv\"; filename*=UTF-8''report.csv"
    )
    assert "sandbox" in headers["Content-Security-Policy"]
    # the HTML part is sandboxed and its cid: image points at the image part
    status, headers, body = http(catcher, f"/messages/{report['id']}/html")
    assert status == 200
    csp = headers["Content-Security-Policy"]
    assert csp.startswith("sandbox allow-popups allow-popups-to-escape-sandbox;")
    assert "allow-scripts" not in csp and "allow-same-origin" not in csp
    assert body.startswith(b'<base target="_blank">')  # links open in a new tab
    image = detail["parts"][2]
    assert f'src="/messages/{report["id"]}/parts/{image["index"]}"'.encode() in body
    status, headers, png = http(catcher, image["url"])
    assert status == 200 and png.startswith(b"\x89PNG") and headers["Content-Type"] == "image/png"
    status, headers, raw = http(catcher, detail["raw_url"])
    assert status == 200 and b"Subject: Your monthly report" in raw


def test_pages_escape_message_content(catcher: DevServer) -> None:
    msg = EmailMultiAlternatives(
        '<script>alert("subject")</script>', "<b>not bold</b>", "a@example.com", ["b@example.com"]
    )
    msg.attach_alternative("<script>parent.document.title='owned'</script><p>hi</p>", "text/html")
    msg.attach("evil.html", "<script>alert(1)</script>", "text/html")
    send(catcher, msg)
    message_id = api(catcher, "/api/messages")["messages"][0]["id"]
    _, _, inbox = http(catcher, "/")
    assert b'<script>alert("subject")</script>' not in inbox
    assert b"&lt;script&gt;alert(&quot;subject&quot;)&lt;/script&gt;" in inbox
    _, _, page = http(catcher, f"/messages/{message_id}")
    assert b"<b>not bold</b>" not in page and b"&lt;b&gt;not bold&lt;/b&gt;" in page
    assert b'<iframe id="html-part" sandbox="allow-popups allow-popups-to-escape-sandbox"' in page
    # an attached HTML file is served as a download, never as a page of the inbox
    detail = api(catcher, f"/api/messages/{message_id}")
    evil = next(p for p in detail["parts"] if p["filename"] == "evil.html")
    _, headers, _ = http(catcher, evil["url"])
    assert headers["Content-Disposition"].startswith("attachment")
    assert headers["Content-Security-Policy"].startswith("sandbox")


def test_delete_one_and_all(catcher: DevServer, tmp_path: Path) -> None:
    send(
        catcher, *(EmailMessage(f"m{i}", "b", "a@example.com", ["b@example.com"]) for i in range(3))
    )
    box = mailbox.Maildir(tmp_path / "mail", create=False)
    assert len(box) == 3
    first = api(catcher, "/api/messages")["messages"][0]["id"]
    assert api(catcher, f"/api/messages/{first}", "DELETE") == {"deleted": 1}
    assert http(catcher, f"/api/messages/{first}")[0] == 404
    assert len(box) == 2
    assert api(catcher, "/api/messages", "DELETE") == {"deleted": 2}
    assert api(catcher, "/api/messages")["total"] == 0
    assert len(box) == 0


def test_maildir_is_loaded_on_restart(tmp_path: Path) -> None:
    first = DevServer(
        "127.0.0.1", 0, 0, maildir=tmp_path / "mail", out=io.StringIO()
    ).start_in_thread()
    try:
        send(first, EmailMessage("kept", "b", "a@example.com", ["b@example.com"]))
    finally:
        first.stop_thread()
    second = DevServer(
        "127.0.0.1", 0, 0, maildir=tmp_path / "mail", out=io.StringIO()
    ).start_in_thread()
    try:
        assert [m["subject"] for m in api(second, "/api/messages")["messages"]] == ["kept"]
    finally:
        second.stop_thread()


def test_max_messages_drops_the_oldest_and_its_file(tmp_path: Path) -> None:
    maildir = tmp_path / "mail"
    server = DevServer("127.0.0.1", 0, 0, maildir=maildir, out=io.StringIO(), max_messages=3)
    server.start_in_thread()
    try:
        for i in range(5):  # one connection each: arrival order is sending order
            send(server, EmailMessage(f"m{i}", "b", "a@example.com", ["b@example.com"]))
        assert server.wait_until_reported()
        listing = api(server, "/api/messages")
        assert listing["total"] == 3
        assert [m["subject"] for m in listing["messages"]] == ["m4", "m3", "m2"]
        assert sorted(os.listdir(maildir / "new")) == sorted(m["id"] for m in listing["messages"])
    finally:
        server.stop_thread()
    # a Maildir with more than --max-messages: the newest are kept, the others deleted
    err = io.StringIO()
    again = DevServer("127.0.0.1", 0, None, maildir=maildir, err=err, max_messages=2)
    again.start_in_thread()
    try:
        assert [m.subject for m in again.store.messages()] == ["m3", "m4"]
        assert len(os.listdir(maildir / "new")) == 2
    finally:
        again.stop_thread()
    assert "deleted the 1 oldest messages of the Maildir" in err.getvalue()


def test_with_a_maildir_bodies_stay_on_disk(tmp_path: Path) -> None:
    import tracemalloc

    server = DevServer("127.0.0.1", 0, 0, maildir=tmp_path / "mail", quiet=True)
    server.start_in_thread()
    body = "0123456789abcdef" * 200_000  # 3.2 MB of text each
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(4):
            send(server, EmailMessage(f"big {i}", body, "a@example.com", ["b@example.com"]))
        assert server.wait_until_reported()
        held = tracemalloc.get_traced_memory()[0] - before
        # 13 MB arrived; what stays is the summaries and search text (64 KB each)
        assert held < 2_000_000, held
        caught = server.store.messages()[0]
        raw = http(server, f"/api/messages/{caught.id}/raw")[2]
        assert caught.size == len(raw) > 3_200_000 and b"Subject: big 0" in raw
        assert body[:64] in api(server, f"/api/messages/{caught.id}")["text"]
    finally:
        tracemalloc.stop()
        server.stop_thread()


def test_ten_thousand_messages_stay_listable(tmp_path: Path) -> None:
    server = DevServer(
        "127.0.0.1", 0, 0, out=io.StringIO(), quiet=True, max_messages=None
    ).start_in_thread()
    try:
        raw = EmailMessage("bulk", "body", "a@example.com", ["b@example.com"]).as_bytes()
        for i in range(10_000):
            server.store.add(
                raw.replace(b"Subject: bulk", f"Subject: bulk {i}".encode()),
                "a@example.com",
                ["b@example.com"],
            )
        listing = api(server, "/api/messages")
        assert listing["total"] == 10_000
        assert [m["subject"] for m in listing["messages"][:2]] == ["bulk 9999", "bulk 9998"]
        assert len(listing["messages"]) == 50
        everything = api(server, "/api/messages?limit=10000")
        assert len(everything["messages"]) == 10_000
        status, _, page = http(server, "/?page=200")
        assert status == 200 and b"bulk 49<" in page and b"newer" in page
    finally:
        server.stop_thread()


def test_busy_port_is_reported(catcher: DevServer) -> None:
    with pytest.raises(PortInUseError, match=f"port {catcher.smtp_port} .* already in use"):
        DevServer("127.0.0.1", catcher.smtp_port, None, out=io.StringIO()).start_in_thread()
    with pytest.raises(PortInUseError, match="web port"):
        DevServer("127.0.0.1", 0, catcher.web_port, out=io.StringIO()).start_in_thread()


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"", "empty"),
        (b"no header here\r\n\r\nbody", "not a header field"),
        (b" continuation\r\nSubject: x\r\n\r\n", "continuation"),
        (b"\r\nbody only", "no header section"),
        (b"Subject: x\r\n\r\n" + b"y" * 1000 + b"\r\n", "longer than 998"),
        (b"Subject: x\x00\r\n\r\n", "NUL"),
    ],
)
def test_malformed_messages(raw: bytes, reason: str) -> None:
    assert reason in (malformed_reason(raw) or "")


def test_well_formed_message_is_accepted() -> None:
    assert (
        malformed_reason(EmailMessage("s", "b", "a@example.com", ["b@example.com"]).as_bytes())
        is None
    )


# --- never lose or choke on mail ---

# Header sections the stdlib parser (policy.default) raises on when the header is read.
UNPARSABLE = [
    b'From: "\r\nSubject: quote\r\n\r\nbody one\r\n',
    b"From: <\r\nSubject: bracket\r\n\r\nbody two\r\n",
    b"From: a@example.com\r\nTo: <\r\nSubject: to\r\n\r\nbody three\r\n",
]


def test_unparsable_messages_are_stored_listed_and_shown(catcher: DevServer) -> None:
    send_raw(catcher, *UNPARSABLE)
    listing = api(catcher, "/api/messages")
    assert listing["total"] == 3
    for summary, raw in zip(listing["messages"], reversed(UNPARSABLE), strict=True):
        assert summary["subject"] == "(unparsable)"
        assert "cannot be parsed" in summary["parse_error"]
        assert "Error" in summary["parse_error"]  # IndexError & co., named
        status, _, body = http(catcher, f"/api/messages/{summary['id']}/raw")
        assert status == 200 and body == raw
        detail = api(catcher, f"/api/messages/{summary['id']}")
        assert detail["parse_error"] and detail["text"].startswith("body")
        status, _, page = http(catcher, f"/messages/{summary['id']}")
        assert status == 200 and b"cannot read this message" in page
    status, _, inbox = http(catcher, "/")
    assert status == 200 and inbox.count(b'class="unparsable"') == 3


def test_restart_lists_unparsable_and_skips_unreadable_files(tmp_path: Path) -> None:
    maildir = tmp_path / "mail"
    first = DevServer("127.0.0.1", 0, 0, maildir=maildir, out=io.StringIO()).start_in_thread()
    try:
        send_raw(first, UNPARSABLE[0], b"Subject: fine\r\n\r\nok\r\n")
    finally:
        first.stop_thread()
    # a file nobody can read (root reads anything: use a folder, which open() refuses)
    (maildir / "new" / "1700000000.broken").mkdir()
    unreadable = maildir / "cur" / "1700000001.noperm:2,S"
    unreadable.write_bytes(b"Subject: secret\r\n\r\nx\r\n")
    unreadable.chmod(0)
    readable_by_us = os.access(unreadable, os.R_OK)
    err = io.StringIO()
    second = DevServer("127.0.0.1", 0, 0, maildir=maildir, out=io.StringIO(), err=err)
    second.start_in_thread()
    try:
        listing = [m for m in api(second, "/api/messages")["messages"] if m["subject"] != "secret"]
        subjects = [m["subject"] for m in listing]
        assert subjects == ["fine", "(unparsable)"]
        first_message = listing[1]
        assert first_message["mail_from"] == "a@example.com"  # the envelope survives
        assert first_message["rcpt_tos"] == ["b@example.com"]
        _, _, raw = http(second, f"/api/messages/{first_message['id']}/raw")
        assert raw == UNPARSABLE[0]  # as received: the stored envelope line is taken off
    finally:
        second.stop_thread()
    warnings = err.getvalue()
    assert f"skipping unreadable Maildir file {maildir / 'new' / '1700000000.broken'}" in warnings
    if not readable_by_us:  # (root reads it anyway)
        assert str(unreadable) in warnings


@pytest.mark.parametrize(
    ("envelope", "why"),
    [
        ('{"mail_from": "a@x", "rcpt_tos": 5}', "'rcpt_tos' is not a list of strings"),
        ('{"mail_from": "a@x", "rcpt_tos": [1]}', "'rcpt_tos' is not a list of strings"),
        ('{"mail_from": ["a@x"]}', "'mail_from' is not a string"),
        ('{"auth_user": {}}', "'auth_user' is not a string"),
        ('{"received": "2026-01-02T03:04:05"}', "'received' is not an ISO 8601 time"),
        ('{"received": "yesterday"}', "'received' is not an ISO 8601 time"),
        ('{"received": 17}', "'received' is not an ISO 8601 time"),
    ],
)
def test_restart_skips_a_malformed_envelope_header(envelope: str, why: str, tmp_path: Path) -> None:
    maildir = tmp_path / "mail"
    first = DevServer("127.0.0.1", 0, None, maildir=maildir, out=io.StringIO()).start_in_thread()
    try:
        send_raw(first, b"Subject: kept\r\n\r\nok\r\n")
    finally:
        first.stop_thread()
    bad = maildir / "new" / "1700000000.bad"
    bad.write_bytes(f"X-Mailwright-Envelope: {envelope}\r\nSubject: bad\r\n\r\nx\r\n".encode())
    err = io.StringIO()
    second = DevServer("127.0.0.1", 0, None, maildir=maildir, out=io.StringIO(), err=err)
    second.start_in_thread()
    try:
        assert [m.subject for m in second.store.messages()] == ["kept"]
    finally:
        second.stop_thread()
    assert f"skipping Maildir file {bad}: malformed envelope header: {why}" in err.getvalue()


def test_maildir_path_problems_name_the_path(tmp_path: Path) -> None:
    afile = tmp_path / "afile"
    afile.write_text("x")
    with pytest.raises(MaildirError, match=f"{afile} exists and is not a folder"):
        DevServer(maildir=afile)
    busy = tmp_path / "home"
    (busy / "Documents").mkdir(parents=True)
    with pytest.raises(MaildirError, match=f"{busy} is a folder with files but not a Maildir"):
        DevServer(maildir=busy)
    with pytest.raises(MaildirError, match=f"{afile / 'below'}"):
        DevServer(maildir=afile / "below")
    # an empty folder and a missing parent are made into a Maildir
    (tmp_path / "empty").mkdir()
    for folder in (tmp_path / "empty", tmp_path / "new" / "parent" / "mail"):
        DevServer(maildir=folder)
        assert all((folder / sub).is_dir() for sub in ("cur", "new", "tmp"))


# --- search, delete, live updates, release ---


def test_search_in_api_and_page(catcher: DevServer) -> None:
    html = EmailMultiAlternatives(
        "Newsletter", "plain words", "news@example.com", ["z@example.com"]
    )
    html.attach_alternative("<p>Only in <b>HTML</b>: pineapple</p>", "text/html")
    send(
        catcher,
        EmailMessage("Invoice 42", "Amount due", "billing@example.com", ["ann@example.com"]),
        EmailMessage("Grüße", "Body with Pineapple inside", "x@example.com", ["bob@example.com"]),
        EmailMessage("Reset your password", "Click", "noreply@example.com", ["ann@example.com"]),
        html,
    )

    def subjects(query: str) -> list[str]:
        listing = api(catcher, "/api/messages?q=" + urllib.parse.quote(query))
        assert listing["total"] == len(listing["messages"])
        return [m["subject"] for m in listing["messages"]]

    assert subjects("invoice") == ["Invoice 42"]  # subject, case-insensitive
    assert subjects("billing@") == ["Invoice 42"]  # from
    assert subjects("ann@example.com") == ["Reset your password", "Invoice 42"]  # to
    assert subjects("pineapple") == ["Newsletter", "Grüße"]  # text and HTML bodies
    assert subjects("grüße") == ["Grüße"]  # RFC 2047 decoded
    assert subjects("ann reset") == ["Reset your password"]  # every word must match
    assert subjects("nothing-like-this") == []
    status, _, page = http(catcher, "/?q=invoice")
    assert status == 200 and b"Invoice 42" in page and b"Newsletter" not in page
    assert b'value="invoice"' in page


def test_delete_one_removes_it_everywhere(catcher: DevServer, tmp_path: Path) -> None:
    send(
        catcher, *(EmailMessage(f"d{i}", "b", "a@example.com", ["b@example.com"]) for i in range(2))
    )
    keep, gone = (m["id"] for m in api(catcher, "/api/messages")["messages"])
    assert api(catcher, f"/api/messages/{gone}", "DELETE") == {"deleted": 1}
    assert http(catcher, f"/api/messages/{gone}", "DELETE")[0] == 404
    assert [m["id"] for m in api(catcher, "/api/messages")["messages"]] == [keep]
    assert sorted(os.listdir(tmp_path / "mail" / "new")) == [keep]


def test_server_sent_events_announce_changes(catcher: DevServer) -> None:
    request = urllib.request.Request(f"{catcher.inbox_url}api/events")
    with urllib.request.urlopen(request, timeout=20) as stream:
        assert stream.headers["Content-Type"] == "text/event-stream"
        assert stream.headers["X-Content-Type-Options"] == "nosniff"

        def next_event() -> tuple[str, dict[str, Any]]:
            event, data = "", ""
            for line in stream:
                text = line.decode().rstrip("\n")
                if text.startswith("event: "):
                    event = text[7:]
                elif text.startswith("data: "):
                    data = text[6:]
                elif not text and event:
                    return event, json.loads(data)
            raise AssertionError("stream ended")

        assert next_event() == ("hello", {"total": 0})
        send(catcher, EmailMessage("live", "b", "a@example.com", ["b@example.com"]))
        assert next_event() == ("change", {"total": 1})
        api(catcher, "/api/messages", "DELETE")
        assert next_event() == ("change", {"total": 0})


@pytest.fixture
def relay() -> Iterator[DevServer]:
    """Where releases go: another catcher, SMTP only."""
    server = DevServer("127.0.0.1", 0, None, out=io.StringIO()).start_in_thread()
    yield server
    server.stop_thread()


def releasing(tmp_path: Path, *relays: DevServer, **options: Any) -> DevServer:
    release_to = [f"127.0.0.1:{relay.smtp_port}" for relay in relays]
    server = DevServer(
        "127.0.0.1", 0, 0, out=io.StringIO(), err=io.StringIO(), release_to=release_to, **options
    )
    return server.start_in_thread()


def release(server: DevServer, message_id: str, body: Any) -> tuple[int, dict[str, Any]]:
    path = f"/api/messages/{message_id}/release"
    status, _, reply = http(server, path, "POST", json.dumps(body).encode())
    return status, json.loads(reply)


def test_release_sends_the_raw_message_to_the_configured_relay(
    relay: DevServer, tmp_path: Path
) -> None:
    catcher = releasing(tmp_path, relay)
    try:
        original = EmailMessage("Release me", "as is\n", "app@example.com", ["user@example.com"])
        send(catcher, original)
        caught = api(catcher, "/api/messages")["messages"][0]
        raw = http(catcher, f"/api/messages/{caught['id']}/raw")[2]
        status, result = release(catcher, caught["id"], {"to": ["qa@example.com"]})
        assert status == 200, result
        assert result["sent"] is True and result["accepted"] == ["qa@example.com"]
        assert result["relay"] == f"127.0.0.1:{relay.smtp_port}"
        assert relay.wait_for_messages(1, 10)
        (released,) = relay.store.all()
        assert released.raw == raw  # byte for byte
        assert released.mail_from == "app@example.com" and released.rcpt_tos == ["qa@example.com"]
        # bad input is answered, not crashed on
        for body in ({"to": ["not an address"]}, {"relay": "127.0.0.1:1"}, [1]):
            status, reply = release(catcher, caught["id"], body)
            assert status == 400 and reply["error"], body
        # without "to": the envelope recipients
        status, result = release(catcher, caught["id"], {})
        assert result["accepted"] == ["user@example.com"]
    finally:
        catcher.stop_thread()


@pytest.mark.parametrize(
    "body",
    [
        {"host": "127.0.0.1", "port": 25},
        {"port": 2525},
        {"mail_from": "ceo@example.com"},
        {"username": "u", "password": "p"},
        {"security": "ssl"},
    ],
)
def test_release_takes_no_host_port_sender_or_login_from_the_request(
    relay: DevServer, tmp_path: Path, body: dict[str, Any]
) -> None:
    catcher = releasing(tmp_path, relay)
    try:
        send(catcher, EmailMessage("s", "b", "app@example.com", ["user@example.com"]))
        message_id = api(catcher, "/api/messages")["messages"][0]["id"]
        status, reply = release(catcher, message_id, body)
        assert status == 400 and "releases only to the relays set when it started" in reply["error"]
        assert f"127.0.0.1:{relay.smtp_port}" in reply["error"]
        assert relay.store.messages() == []
    finally:
        catcher.stop_thread()


def test_release_is_off_without_release_to(catcher: DevServer) -> None:
    send(catcher, EmailMessage("s", "b", "app@example.com", ["user@example.com"]))
    message_id = api(catcher, "/api/messages")["messages"][0]["id"]
    status, reply = release(catcher, message_id, {})
    assert status == 403 and "--release-to HOST:PORT" in reply["error"]
    assert b"Release is off" in http(catcher, f"/messages/{message_id}")[2]


def test_release_allow_limits_the_recipients(relay: DevServer, tmp_path: Path) -> None:
    catcher = releasing(tmp_path, relay, release_allow=r"@example\.com$")
    try:
        send(catcher, EmailMessage("s", "b", "app@example.com", ["user@example.com"]))
        message_id = api(catcher, "/api/messages")["messages"][0]["id"]
        status, reply = release(catcher, message_id, {"to": ["a@example.com", "b@elsewhere.test"]})
        assert status == 403 and "b@elsewhere.test is not allowed" in reply["error"]
        assert relay.store.messages() == []
        status, reply = release(catcher, message_id, {"to": ["a@example.com"]})
        assert status == 200 and reply["accepted"] == ["a@example.com"]
    finally:
        catcher.stop_thread()


def test_release_errors_never_quote_the_relay(tmp_path: Path) -> None:
    import socket
    import threading

    # A "relay" that greets with a banner an attacker would like to read, then refuses.
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve() -> None:
        with contextlib.suppress(OSError):
            connection, _ = listener.accept()
            with connection:
                connection.sendall(b"554 SECRET-BANNER-OpenSSH_9.6 go away\r\n")
                connection.recv(1024)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    err = io.StringIO()
    catcher = DevServer(
        "127.0.0.1", 0, 0, out=io.StringIO(), err=err, release_to=[f"127.0.0.1:{port}"]
    ).start_in_thread()
    try:
        send(catcher, EmailMessage("s", "b", "app@example.com", ["user@example.com"]))
        message_id = api(catcher, "/api/messages")["messages"][0]["id"]
        status, reply = release(catcher, message_id, {})
        assert status == 502
        expected = f"release to 127.0.0.1:{port} failed: the relay refused it (reply 554)"
        assert reply["error"] == expected
        thread.join(10)
        # a refused connection: the same, in the catcher's words
        listener.close()
        status, reply = release(catcher, message_id, {})
        assert status == 502 and reply["error"].endswith("failed: connection refused")
    finally:
        catcher.stop_thread()
        listener.close()
    assert "SECRET-BANNER" in err.getvalue()  # the terminal gets the whole story


def test_release_to_checks_its_values() -> None:
    from mailwright.devserver.release import ReleaseError

    for bad in ("nohost", "host:99999", "console:", "smtp://u:p#w@host", "gopher://x"):
        with pytest.raises(ReleaseError, match="--release-to"):
            DevServer(release_to=[bad])
    with pytest.raises(ReleaseError, match="--release-allow"):
        DevServer(release_allow="(")
    server = DevServer(release_to=["smtp://u:s3cret@[::1]:2525?tls=1", "localhost:25"])
    assert list(server.release_policy.relays) == ["[::1]:2525", "localhost:25"]
    assert "s3cret" not in server.banner()


def test_store_waits_for_messages_without_polling(tmp_path: Path) -> None:
    server = DevServer("127.0.0.1", 0, None, out=io.StringIO(), maildir=tmp_path / "m")
    server.start_in_thread()
    try:
        assert not server.wait_for_messages(1, timeout=0.05)
        send(server, EmailMessage("one", "b", "a@example.com", ["b@example.com"]))
        assert server.wait_for_messages(1, timeout=10)
        assert server.wait_until_reported(timeout=10)
        assert "Subject: one" in server.out.getvalue()  # type: ignore[attr-defined]
    finally:
        server.stop_thread()


@settings(max_examples=examples(400, 50), deadline=None)
@given(
    name=st.sampled_from(["Subject", "From", "To"]),
    value=st.text(alphabet='abcAB01 .<>@,"-_+=?\t()', max_size=40),
)
def test_fast_header_decoding_agrees_with_policy_default(name: str, value: str) -> None:
    """The summary skips the stdlib header parser for plain values: it must give what
    the parser gives, and still report what the parser cannot read."""
    try:
        expected: str | None = str(policy.default.header_factory(name, value))
    except Exception:
        expected = None
    try:
        got: str | None = decoded_header(name, value)
    except Exception:
        got = None
    assert got == expected


_HEADER_TEXT = st.text(alphabet='ab@.<>"(),:;\\[] =?Q', max_size=24)


@settings(
    max_examples=examples(60, 15),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(from_=_HEADER_TEXT, to=_HEADER_TEXT, subject=_HEADER_TEXT)
def test_fuzzed_headers_are_stored_listed_and_shown(
    catcher: DevServer, from_: str, to: str, subject: str
) -> None:
    """Whatever the header values, the message is stored as sent, listed, and every view
    of it answers; the subject is the parser's, or "(unparsable)" when it chokes."""
    raw = f"From: {from_}\r\nTo: {to}\r\nSubject: {subject}\r\n\r\nfuzz body\r\n".encode()
    before = len(catcher.store)
    send_raw(catcher, raw)
    assert catcher.wait_for_messages(before + 1)
    stored = catcher.store.newest_first(0, 1)[0]
    assert stored.raw == raw
    try:
        for name, value in (("From", from_), ("To", to)):
            str(policy.default.header_factory(name, value.strip()))
        expected = str(policy.default.header_factory("Subject", subject.strip()))
    except Exception:
        expected = "(unparsable)"
    listing = api(catcher, "/api/messages?limit=1")
    assert listing["messages"][0]["subject"] == expected
    for path in (f"/api/messages/{stored.id}", f"/messages/{stored.id}", "/"):
        assert http(catcher, path)[0] == 200, path


def test_big_message_is_parsed_off_the_event_loop_and_served(catcher: DevServer) -> None:
    blob = os.urandom(1024 * 1024)
    message = EmailMessage("big one", "see the attachment", "a@example.com", ["b@example.com"])
    message.attach("blob.bin", blob, "application/octet-stream")
    send(catcher, message)
    assert catcher.wait_until_reported(timeout=60)
    assert "Subject: big one" in catcher.out.getvalue()  # type: ignore[attr-defined]
    summary = api(catcher, "/api/messages?q=attachment")["messages"][0]
    assert summary["subject"] == "big one" and summary["size"] > len(blob)
    detail = api(catcher, f"/api/messages/{summary['id']}")
    (part,) = [p for p in detail["parts"] if p["filename"] == "blob.bin"]
    status, _, data = http(catcher, part["url"])
    assert status == 200 and data == blob
    status, _, page = http(catcher, f"/messages/{summary['id']}?tab=raw")
    assert status == 200 and b"Showing the first 1.0 MB" in page


def test_release_through_a_mailer(relay: DevServer) -> None:
    from mailwright import configure
    from mailwright.devserver.release import ReleaseError

    configure(
        MAILERS={
            "staging": f"smtp://127.0.0.1:{relay.smtp_port}",
            "console": {"BACKEND": "console"},
        }
    )
    catcher = DevServer(
        "127.0.0.1", 0, 0, out=io.StringIO(), release_mailers=["staging"]
    ).start_in_thread()
    try:
        assert f"release to: staging (127.0.0.1:{relay.smtp_port})" in catcher.banner()
        send(catcher, EmailMessage("via mailer", "b", "app@example.com", ["user@example.com"]))
        message_id = api(catcher, "/api/messages")["messages"][0]["id"]
        status, reply = release(catcher, message_id, {"relay": "staging"})
        assert status == 200 and reply["accepted"] == ["user@example.com"]
        assert relay.wait_for_messages(1, 10)
    finally:
        catcher.stop_thread()
    with pytest.raises(ReleaseError, match=r"--release-mailer console: .* not send to an SMTP"):
        DevServer(release_mailers=["console"])
    with pytest.raises(ReleaseError, match="--release-mailer nope"):
        DevServer(release_mailers=["nope"])
