"""Template messages from the command line (``send --template``, ``render``) and in the
catcher's HTML tab, where inline images show."""

from __future__ import annotations

import http.client
import io
import json
import re
from collections.abc import Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage as StdlibMessage
from pathlib import Path

import pytest

pytest.importorskip("jinja2")
pytest.importorskip("css_inline")
pytest.importorskip("inscriptis")

import mailwright
from processes import run_cli
from smtpserver import SMTPTestServer

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(64))

TEMPLATE = """\
{% block subject %}Your code, {{ name }}{% endblock %}
{% block html %}<html><head><style>h1 { color: #123456; }</style></head><body>
<img src="{{ inline_image('logo.png') }}" alt="logo">
<h1>Code {{ code }}</h1><p><a href="https://app.example.com/verify?c={{ code }}">Verify</a></p>
</body></html>{% endblock %}
"""


def parsed(data: bytes) -> StdlibMessage:
    return message_from_bytes(data.replace(b"\r\n", b"\n"), policy=policy.default)  # type: ignore[return-value]


@pytest.fixture
def template_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "mail"
    directory.mkdir()
    (directory / "code.html").write_text(TEMPLATE)
    (directory / "logo.png").write_bytes(PNG)
    (tmp_path / "context.json").write_text(json.dumps({"name": "Zoë", "code": "913"}))
    return directory


def check(message: StdlibMessage) -> None:
    assert message["Subject"] == "Your code, Zoë"
    parts = {p.get_content_type(): p for p in message.walk()}
    assert "https://app.example.com/verify?c=913" in parts["text/plain"].get_content()
    html = parts["text/html"].get_content()
    assert '<h1 style="color: #123456;">Code 913</h1>' in html
    (cid,) = re.findall(r'src="cid:([^"]+)"', html)
    assert parts["image/png"]["Content-ID"] == f"<{cid}>"
    assert parts["image/png"].get_content() == PNG


def test_send_template(template_dir: Path, smtp_server: SMTPTestServer) -> None:
    result = run_cli(
        "send",
        "--template",
        "code.html",
        "--context",
        str(template_dir.parent / "context.json"),
        "--to",
        "zoe@example.com",
        "--from",
        "codes@example.com",
        env={
            "EMAIL_HOST": smtp_server.host,
            "EMAIL_PORT": str(smtp_server.port),
            "EMAIL_TEMPLATE_DIRS": str(template_dir),
        },
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "sent to 1 recipient\n"
    (received,) = smtp_server.wait_for(1)
    assert received.rcpt_tos == ["zoe@example.com"] and received.mail_from == "codes@example.com"
    check(parsed(received.data))


def test_render_shows_and_writes_the_message(template_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "code.eml"
    result = run_cli(
        "render",
        "code.html",
        "--template-dir",
        str(template_dir),
        "--context",
        str(tmp_path / "context.json"),
        "--to",
        "zoe@example.com",
        "--out",
        str(out),
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Subject: Your code, Zoë\nInline image: logo.png (image/png, ")
    text = "--- text/plain ---\nCode 913\n\nVerify <https://app.example.com/verify?c=913>\n"
    assert text in result.stdout
    assert '--- text/html ---\n<html><head></head><body>\n<img src="cid:' in result.stdout
    assert result.stdout.endswith(f"--- written to {out} ---\n")
    message = parsed(out.read_bytes())
    assert message["To"] == "zoe@example.com"
    check(message)


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["--context", "{missing}"], "--context {missing}: no such file"),
        (["--context", "{bad}"], "--context {bad}: not valid JSON"),
        (["--context", "{list}"], "--context {list}: expected a JSON object"),
        ([], "template code.html, line 1: 'name' is undefined"),
    ],
    ids=["no-file", "bad-json", "not-an-object", "undefined"],
)
def test_render_errors_are_one_line(
    template_dir: Path, tmp_path: Path, args: list[str], reason: str
) -> None:
    files = {"missing": tmp_path / "nope.json", "bad": tmp_path / "bad.json"}
    files["list"] = tmp_path / "list.json"
    files["bad"].write_text("{")
    files["list"].write_text("[1]")
    names = {key: str(path) for key, path in files.items()}
    args = [arg.format(**names) for arg in args]
    result = run_cli("render", "code.html", "--template-dir", str(template_dir), *args)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.startswith(f"mailwright render: error: {reason.format(**names)}")
    assert result.stderr.count("\n") == 1


def test_send_template_options_conflict(template_dir: Path) -> None:
    result = run_cli("send", "--template", "code.html", "--subject", "S", "--to", "a@x.test")
    assert result.returncode == 2
    assert "--template makes the subject and body; leave out --subject" in result.stderr


def test_send_template_unknown(template_dir: Path, smtp_server: SMTPTestServer) -> None:
    result = run_cli(
        "send",
        "--template",
        "nope.html",
        "--template-dir",
        str(template_dir),
        "--to",
        "a@x.test",
        env={"EMAIL_HOST": smtp_server.host, "EMAIL_PORT": str(smtp_server.port)},
    )
    assert result.returncode == 1
    assert result.stderr == (
        "mailwright send: error: template nope.html: template not found in the template "
        f"directories ({template_dir})\n"
    )
    assert smtp_server.connections == 0


# --- the catcher's HTML tab ---


@pytest.fixture
def catcher() -> Iterator[object]:
    pytest.importorskip("aiohttp")
    from mailwright.devserver import DevServer

    server = DevServer("127.0.0.1", 0, 0, out=io.StringIO(), quiet=True).start_in_thread()
    yield server
    server.stop_thread()


def get(port: int, path: str) -> tuple[int, str, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", path)
        reply = connection.getresponse()
        return reply.status, reply.headers.get("Content-Type", ""), reply.read()
    finally:
        connection.close()


def test_catcher_html_tab_shows_inline_images(template_dir: Path, catcher: object) -> None:
    from mailwright.devserver import DevServer

    assert isinstance(catcher, DevServer) and catcher.web_port is not None
    mailwright.configure(EMAIL_TEMPLATE_DIRS=[str(template_dir)])
    message = mailwright.template_message(
        "code.html", {"name": "Zoë", "code": "913"}, to=["zoe@example.com"]
    )
    with mailwright.get_connection("smtp", host="127.0.0.1", port=catcher.smtp_port) as c:
        assert c.send_messages([message]) == 1
    assert catcher.wait_for_messages(1)
    status, _, listing = get(catcher.web_port, "/api/messages")
    assert status == 200
    (summary,) = json.loads(listing)["messages"]
    status, content_type, body = get(catcher.web_port, f"/messages/{summary['id']}/html")
    assert status == 200 and content_type.startswith("text/html")
    html = body.decode()
    assert "cid:" not in html
    (image_url,) = re.findall(r'<img src="(/messages/[^"]+/parts/\d+)"', html)
    status, content_type, image = get(catcher.web_port, image_url)
    assert (status, content_type, image) == (200, "image/png", PNG)
