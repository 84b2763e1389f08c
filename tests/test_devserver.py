"""The catcher's web inbox and JSON API (server in a thread, real SMTP and HTTP)."""

from __future__ import annotations

import io
import json
import mailbox
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mailwright import EmailMessage, EmailMultiAlternatives, get_connection
from mailwright.demo import sample_messages
from mailwright.devserver import DevServer, PortInUseError
from mailwright.devserver.smtp import malformed_reason


@pytest.fixture
def catcher(tmp_path: Path) -> Iterator[DevServer]:
    server = DevServer("127.0.0.1", 0, 0, maildir=tmp_path / "mail", out=io.StringIO())
    server.start_in_thread()
    yield server
    server.stop_thread()


def send(server: DevServer, *messages: EmailMessage) -> None:
    connection = get_connection("smtp", host="127.0.0.1", port=server.smtp_port)
    assert connection.send_messages(list(messages)) == len(messages)


def http(server: DevServer, path: str, method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(f"{server.inbox_url}{path.lstrip('/')}", method=method)
    try:
        with urllib.request.urlopen(request) as reply:
            return reply.status, dict(reply.headers), reply.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def api(server: DevServer, path: str, method: str = "GET") -> Any:
    status, _, body = http(server, path, method)
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
    assert 'filename="report.csv"' in headers["Content-Disposition"]
    assert "sandbox" in headers["Content-Security-Policy"]
    # the HTML part is sandboxed and its cid: image points at the image part
    status, headers, body = http(catcher, f"/messages/{report['id']}/html")
    assert status == 200
    assert headers["Content-Security-Policy"].startswith("sandbox")
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
    assert b"<iframe" in page and b" sandbox " in page
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


def test_ten_thousand_messages_stay_listable(tmp_path: Path) -> None:
    server = DevServer("127.0.0.1", 0, 0, out=io.StringIO(), quiet=True).start_in_thread()
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
