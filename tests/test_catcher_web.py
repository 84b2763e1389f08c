"""The web inbox's defences, over real HTTP: Host allow-list (DNS rebinding), nosniff and
CSP on every response, RFC 6266 download names, same-origin checks."""

from __future__ import annotations

import http.client
import io
import json
import urllib.parse
from collections.abc import Iterator
from email.message import EmailMessage as StdlibMessage

import pytest

from mailwright import EmailMessage, get_connection
from mailwright.devserver import DevServer
from mailwright.devserver.web import content_disposition


@pytest.fixture
def catcher() -> Iterator[DevServer]:
    server = DevServer(
        "127.0.0.1", 0, 0, out=io.StringIO(), quiet=True, web_host_allow=["mail.dev.test"]
    ).start_in_thread()
    yield server
    server.stop_thread()


def request(
    server: DevServer,
    method: str,
    path: str,
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
) -> tuple[int, http.client.HTTPMessage, bytes]:
    assert server.web_port is not None
    connection = http.client.HTTPConnection("127.0.0.1", server.web_port, timeout=10)
    try:
        connection.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        headers = {"Host": f"127.0.0.1:{server.web_port}", **(headers or {})}
        for name, value in headers.items():
            if value:
                connection.putheader(name, value)
        if body is not None:
            connection.putheader("Content-Length", str(len(body)))
        connection.endheaders(body)
        reply = connection.getresponse()
        return reply.status, reply.headers, reply.read()
    finally:
        connection.close()


def one_message(server: DevServer, message: EmailMessage | None = None) -> str:
    message = message or EmailMessage(
        "Reset", "https://app.test/reset/TOKEN", "a@x.test", ["b@x.test"]
    )
    with get_connection("smtp", host="127.0.0.1", port=server.smtp_port) as connection:
        connection.send_messages([message])
    assert server.wait_for_messages(1)
    return server.store.newest_first(0, 1)[0].id


@pytest.mark.parametrize(
    "host",
    ["localhost", "127.0.0.1", "[::1]", "LOCALHOST:8025", "mail.dev.test", "mail.dev.test:80"],
)
def test_allowed_host_names(catcher: DevServer, host: str) -> None:
    status, _, _ = request(catcher, "GET", "/api/messages", {"Host": host})
    assert status == 200


@pytest.mark.parametrize(
    "host",
    ["attacker.example", "attacker.example:8025", "127.0.0.1.nip.io", "10.0.0.1", "localhost.", ""],
)
def test_other_host_names_are_refused(catcher: DevServer, host: str) -> None:
    """A DNS-rebinding page has its own name in Host: it must read and delete nothing."""
    one_message(catcher)
    for method, path in [("GET", "/api/messages"), ("GET", "/"), ("DELETE", "/api/messages")]:
        status, headers, body = request(catcher, method, path, {"Host": host})
        assert b"TOKEN" not in body and b"Reset" not in body
        if not host:  # HTTP/1.1 without Host: aiohttp's parser answers 400 itself
            assert status == 400
            continue
        assert status == 403, (method, path)
        assert headers["X-Content-Type-Options"] == "nosniff"
    assert len(catcher.store) == 1


def test_the_listening_address_is_allowed() -> None:
    # another loopback address (all of 127/8 is loopback on Linux) is "the listening
    # address" when the catcher listens on it, without being in the fixed list
    server = DevServer("127.0.0.2", 0, 0, out=io.StringIO()).start_in_thread()
    try:
        assert server.web_port is not None
        for host, status in [("127.0.0.2", 200), ("127.0.0.3", 403)]:
            connection = http.client.HTTPConnection("127.0.0.2", server.web_port, timeout=10)
            connection.request("GET", "/api/messages", headers={"Host": f"{host}:80"})
            assert connection.getresponse().status == status
            connection.close()
    finally:
        server.stop_thread()


def test_every_response_has_nosniff_csp_and_no_store(catcher: DevServer) -> None:
    message_id = one_message(catcher)
    paths = [
        "/",
        "/?q=reset",
        "/_list",
        f"/messages/{message_id}",
        f"/messages/{message_id}/raw",
        f"/messages/{message_id}/parts/0",
        "/api/messages",
        f"/api/messages/{message_id}",
        f"/api/messages/{message_id}/raw",
        "/static/inbox.js",
        "/static/inbox.css",
        "/no/such/page",
        "/api/messages/nope",
        "/api/messages?limit=x",
    ]
    for path in paths:
        status, headers, _ = request(catcher, "GET", path)
        assert status in (200, 400, 404), path
        assert headers["X-Content-Type-Options"] == "nosniff", path
        assert headers["Content-Security-Policy"], path
        assert "unsafe-inline" not in headers["Content-Security-Policy"] or path.startswith(
            f"/messages/{message_id}/"
        ), path
        assert headers["Referrer-Policy"] == "no-referrer", path
    status, headers, _ = request(catcher, "GET", "/")
    assert "script-src 'self'" in headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    assert headers["Cache-Control"] == "no-store"
    status, headers, _ = request(catcher, "GET", f"/messages/{message_id}/raw")
    assert headers["Content-Security-Policy"].startswith("sandbox")


@pytest.mark.parametrize(
    ("name", "fallback", "encoded"),
    [
        ("report.csv", "report.csv", "report.csv"),
        ("Grüße.pdf", "Gru_e.pdf", "Gr%C3%BC%C3%9Fe.pdf"),
        ("日本語.txt", "download.txt", "%E6%97%A5%E6%9C%AC%E8%AA%9E.txt"),
        ('a"b\\c.txt', "a_b_c.txt", "a%22b_c.txt"),
        ("bad\x07name\r\n.txt", "badname.txt", "badname.txt"),
        ("../../etc/passwd", "_.._etc_passwd", "_.._etc_passwd"),
        ("\x01\x02", "download", "download"),
    ],
)
def test_content_disposition_follows_rfc_6266(name: str, fallback: str, encoded: str) -> None:
    value = content_disposition(name)
    assert value == f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}"
    assert value.isascii() and all(ord(char) >= 32 for char in value)


def test_attachment_names_download_intact(catcher: DevServer) -> None:
    message = EmailMessage("Files", "see attached", "a@x.test", ["b@x.test"])
    message.attach("Grüße 日本.txt", "hello", "text/plain")
    part = StdlibMessage()
    part.set_content(b"raw", maintype="application", subtype="octet-stream")
    # a control character in a file name (the seed dropped the connection on this one)
    part.add_header("Content-Disposition", "attachment", filename="evil\x07name.bin")
    message.attach(part)
    message_id = one_message(catcher, message)
    status, _, body = request(catcher, "GET", f"/api/messages/{message_id}")
    parts = {p["index"]: p for p in json.loads(body)["parts"] if p["filename"]}
    names = []
    for index in parts:
        status, headers, _ = request(catcher, "GET", f"/messages/{message_id}/parts/{index}")
        assert status == 200
        disposition = headers["Content-Disposition"]
        assert disposition.isascii()
        # browsers take filename* (RFC 6266 section 4.3)
        encoded = disposition.split("filename*=UTF-8''", 1)[1]
        names.append(urllib.parse.unquote(encoded, errors="strict"))
    assert sorted(names) == ["Grüße 日本.txt", "evilname.bin"]


@pytest.mark.parametrize(
    ("headers", "allowed"),
    [
        ({}, False),  # scripts, curl: they need the token
        ({"X-Mailwright-Token": "{token}"}, True),
        ({"X-Mailwright-Token": "wrong"}, False),
        ({"X-Mailwright-Token": ""}, False),
        ({"Origin": "http://127.0.0.1:{port}"}, True),
        ({"Origin": "http://127.0.0.1:{port}", "Sec-Fetch-Site": "same-origin"}, True),
        ({"Origin": "http://attacker.example"}, False),
        ({"Origin": "http://127.0.0.1:1"}, False),
        ({"Origin": "null"}, False),
        ({"Sec-Fetch-Site": "cross-site"}, False),
        ({"Sec-Fetch-Site": "same-site"}, False),
    ],
)
def test_state_changing_requests_need_the_same_origin(
    catcher: DevServer, headers: dict[str, str], allowed: bool
) -> None:
    message_id = one_message(catcher)
    headers = {
        name: value.format(port=catcher.web_port, token=catcher.api_token)
        for name, value in headers.items()
    }
    status, _, _ = request(catcher, "DELETE", f"/api/messages/{message_id}", headers)
    assert status == (200 if allowed else 403)
    assert (catcher.store.get(message_id) is None) == allowed
    body = json.dumps({}).encode()
    if not allowed:
        status, _, _ = request(catcher, "POST", "/api/messages/x/release", headers, body)
        assert status == 403
        status, _, _ = request(catcher, "DELETE", "/api/messages", headers)
        assert status == 403
