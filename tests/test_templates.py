"""Template messages (SPEC section 10): rendered, sent to a real SMTP server, and what
arrives parsed with the stdlib ``email`` parser."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from email import message_from_bytes, policy
from email.message import EmailMessage as StdlibMessage
from pathlib import Path

import pytest

pytest.importorskip("jinja2")
pytest.importorskip("css_inline")
pytest.importorskip("inscriptis")

import jinja2

import mailwright
from mailwright import BadHeaderError, EmailMultiAlternatives, TemplateError
from mailwright.conf import settings
from smtpserver import Received, SMTPTestServer

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256))

WELCOME = """\
{% block subject %}
  Welcome to {{ site }},
  {{ name }}!
{% endblock %}
{% block html %}<!DOCTYPE html>
<html>
<head>
<style>
  p { color: #333333; font-family: Helvetica, sans-serif; }
  .button { background: #4f46e5; color: #ffffff; }
  @media (max-width: 600px) { p { font-size: 18px !important; } }
</style>
</head>
<body>
<img src="{{ inline_image('img/logo.png') }}" alt="{{ site }}">
<p>Hello {{ name }},</p>
<p>Start with <a class="button" href="https://app.example.com/start?u={{ uid }}">your first
project</a> or read <a href="https://docs.example.com/guide">the guide</a>.</p>
<ul><li>One</li><li>Two</li></ul>
</body>
</html>
{% endblock %}
"""


def parsed(data: bytes) -> StdlibMessage:
    """A message as a reader's client sees it (line breaks as \\n)."""
    return message_from_bytes(data.replace(b"\r\n", b"\n"), policy=policy.default)  # type: ignore[return-value]


def arrived(received: Received) -> StdlibMessage:
    return parsed(received.data)


def part(message: StdlibMessage, content_type: str) -> StdlibMessage:
    found = [
        p
        for p in message.walk()
        if p.get_content_type() == content_type and p.get_content_disposition() != "attachment"
    ]
    assert len(found) == 1, f"{len(found)} {content_type} parts"
    return found[0]  # type: ignore[return-value]


@pytest.fixture
def templates(tmp_path: Path) -> Path:
    directory = tmp_path / "templates"
    (directory / "img").mkdir(parents=True)
    (directory / "img" / "logo.png").write_bytes(PNG)
    (directory / "welcome.html").write_text(WELCOME)
    mailwright.configure(EMAIL_TEMPLATE_DIRS=[str(directory)])
    return directory


CONTEXT = {"site": "Acme & Co", "name": "Ann", "uid": "42"}


def check_welcome(received: StdlibMessage) -> None:
    assert received["Subject"] == "Welcome to Acme & Co, Ann!"
    text = part(received, "text/plain").get_content()
    assert text.strip()
    assert "https://app.example.com/start?u=42" in text
    assert "https://docs.example.com/guide" in text
    assert "Hello Ann," in text
    assert "color" not in text and "@media" not in text  # no CSS in the text part
    html = part(received, "text/html").get_content()
    # CSS inlined into style attributes; @media kept in a <style> block
    assert re.search(r'<p style="[^"]*color: #333333', html)
    assert re.search(r'<a class="button" [^>]*style="[^"]*background: #4f46e5', html)
    assert re.search(r"<style>[^<]*@media \(max-width: 600px\)", html)
    assert "Acme &amp; Co" in html  # autoescaped
    # the inline image: in multipart/related with the HTML, Content-ID = the HTML's cid:
    related = part(received, "multipart/related")
    _, image = related.iter_parts()
    (cid,) = re.findall(r'src="cid:([^"]+)"', html)
    assert image["Content-ID"] == f"<{cid}>"
    assert image.get_content_type() == "image/png"
    assert image.get_content_disposition() == "inline"
    assert image.get_content() == PNG


def test_send_template_arrives_complete(templates: Path, smtp_server: SMTPTestServer) -> None:
    sent = mailwright.send_template(
        "welcome.html", CONTEXT, to=["ann@example.com"], from_email="hi@example.com"
    )
    assert sent == 1
    (received,) = smtp_server.wait_for(1)
    assert received.rcpt_tos == ["ann@example.com"]
    check_welcome(arrived(received))


def test_asend_template(templates: Path, smtp_server: SMTPTestServer) -> None:
    async def main() -> int:
        return await mailwright.asend_template(
            "welcome.html", CONTEXT, to=["ann@example.com"], cc=["cc@example.com"]
        )

    assert asyncio.run(main()) == 1
    (received,) = smtp_server.wait_for(1)
    assert sorted(received.rcpt_tos) == ["ann@example.com", "cc@example.com"]
    check_welcome(arrived(received))


def test_template_message_is_an_ordinary_message(templates: Path) -> None:
    message = mailwright.template_message(
        "welcome.html",
        CONTEXT,
        to=["ann@example.com"],
        bcc=["audit@example.com"],
        reply_to=["help@example.com"],
        headers={"X-Campaign": "welcome"},
        attachments=[("terms.txt", "Be nice.", "text/plain")],
    )
    assert isinstance(message, EmailMultiAlternatives)
    assert message.subject == "Welcome to Acme & Co, Ann!"
    assert message.recipients() == ["ann@example.com", "audit@example.com"]
    received = parsed(message.as_bytes())
    assert received.get_content_type() == "multipart/mixed"
    assert received["X-Campaign"] == "welcome" and received["Reply-To"] == "help@example.com"
    assert [p.get_filename() for p in received.iter_attachments()] == ["terms.txt"]
    check_welcome(received)


# --- safety ---


def test_context_cannot_inject_a_header(templates: Path, smtp_server: SMTPTestServer) -> None:
    name = "Ann\r\nBcc: evil@attacker.example\r\nX-Injected: yes\n\nbody"
    assert mailwright.send_template("welcome.html", {**CONTEXT, "name": name}, to=["a@x.test"])
    (received,) = smtp_server.wait_for(1)
    assert received.rcpt_tos == ["a@x.test"]
    message = arrived(received)
    assert message["X-Injected"] is None and message["Bcc"] is None
    assert message.get_all("Subject") == [
        "Welcome to Acme & Co, Ann Bcc: evil@attacker.example X-Injected: yes body!"
    ]
    header = received.data.split(b"\r\n\r\n", 1)[0]
    assert b"\r\nX-Injected" not in header and b"\r\nBcc" not in header


def test_control_characters_through_the_context_are_refused(
    templates: Path, smtp_server: SMTPTestServer
) -> None:
    with pytest.raises(BadHeaderError):
        mailwright.send_template("welcome.html", {**CONTEXT, "name": "Ann\x00"}, to=["a@x.test"])
    assert smtp_server.messages == []
    assert smtp_server.connections == 0


def test_html_is_autoescaped_and_text_is_not(templates: Path) -> None:
    (templates / "escape.html").write_text(
        "{% block subject %}{{ v }}{% endblock %}"
        "{% block html %}<p>{{ v }}</p>{% endblock %}"
        "{% block text %}{{ v }}{% endblock %}"
    )
    value = "<script>alert('x')</script> & more"
    message = mailwright.template_message("escape.html", {"v": value}, to=["a@x.test"])
    assert message.subject == value
    assert message.body == value + "\n"
    ((html, _),) = message.alternatives
    assert "<script>" not in html
    assert "<p>&lt;script&gt;alert(" in html and "&lt;/script&gt; &amp; more</p>" in html


# --- errors: one clear error naming the template and the line ---


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (
            "{% block subject %}Hi{% endblock %}\n{% block html %}\n<p>{{ user.name }}</p>\n"
            "{% endblock %}",
            "broken.html, line 3: 'user' is undefined",
        ),
        (
            "{% block subject %}Hi{% endblock %}\n\n{% block html %}{% if x %}<p>{% endblock %}",
            "broken.html, line 3: ",
        ),
        ("{% block html %}<p>no subject</p>{% endblock %}", "broken.html: no subject block"),
        ("{% block subject %}Hi {{ name }}{% endblock %}", "broken.html: no html and no text"),
    ],
    ids=["undefined", "syntax", "no-subject", "no-body"],
)
def test_template_errors(
    templates: Path, smtp_server: SMTPTestServer, source: str, expected: str
) -> None:
    (templates / "broken.html").write_text(source)
    with pytest.raises(TemplateError) as caught:
        mailwright.send_template("broken.html", {"name": "Ann"}, to=["a@x.test"])
    assert str(caught.value).startswith(expected), str(caught.value)
    assert "\n" not in str(caught.value)
    assert caught.value.template_name == "broken.html"
    assert smtp_server.connections == 0


def test_unknown_template(templates: Path) -> None:
    with pytest.raises(TemplateError) as caught:
        mailwright.template_message("nope.html", {}, to=["a@x.test"])
    assert str(caught.value) == (
        f"nope.html: template not found in the template directories ({templates})"
    )


def test_error_in_an_included_template_names_it(templates: Path) -> None:
    (templates / "part.html").write_text("<p>\n{{ missing }}</p>")
    (templates / "outer.html").write_text(
        "{% block subject %}S{% endblock %}{% block html %}{% include 'part.html' %}{% endblock %}"
    )
    with pytest.raises(TemplateError) as caught:
        mailwright.template_message("outer.html", {}, to=["a@x.test"])
    assert caught.value.lineno == 2
    assert str(caught.value).endswith("part.html, line 2: 'missing' is undefined")


def test_strict_off_renders_undefined_as_empty(templates: Path) -> None:
    (templates / "lenient.html").write_text(
        "{% block subject %}Hi {{ name }}{% endblock %}{% block text %}[{{ x }}]{% endblock %}"
    )
    with mailwright.override_settings(EMAIL_TEMPLATE_STRICT=False):
        message = mailwright.template_message("lenient.html", {}, to=["a@x.test"])
    assert message.subject == "Hi"
    assert message.body == "[]\n"


def test_missing_inline_image_fails_before_sending(
    templates: Path, smtp_server: SMTPTestServer
) -> None:
    (templates / "img" / "logo.png").unlink()
    with pytest.raises(FileNotFoundError, match=r"inline_image 'img/logo.png'"):
        mailwright.send_template("welcome.html", CONTEXT, to=["a@x.test"])
    assert smtp_server.connections == 0


@pytest.mark.parametrize("name", ["../secret.png", "/etc/hostname"])
def test_inline_image_stays_in_the_template_directories(templates: Path, name: str) -> None:
    (templates.parent / "secret.png").write_bytes(PNG)
    (templates / "escape.html").write_text(
        "{% block subject %}S{% endblock %}"
        '{% block html %}<img src="{{ inline_image(path) }}">{% endblock %}'
    )
    with pytest.raises(ValueError, match="relative to the template directories"):
        mailwright.template_message("escape.html", {"path": name}, to=["a@x.test"])


def test_using_and_connection_together(templates: Path) -> None:
    connection = mailwright.get_connection("locmem")
    with pytest.raises(TypeError, match="not compatible with 'using'"):
        mailwright.send_template(
            "welcome.html", CONTEXT, to=["a@x.test"], using="default", connection=connection
        )
    assert mailwright.outbox == []


def test_using_sends_with_the_named_mailer(templates: Path, smtp_server: SMTPTestServer) -> None:
    mailwright.configure(
        MAILERS={
            "default": {"BACKEND": "locmem"},
            "notifications": {
                "BACKEND": "smtp",
                "OPTIONS": {"host": smtp_server.host, "port": smtp_server.port},
            },
        }
    )
    assert mailwright.send_template("welcome.html", CONTEXT, to=["a@x.test"]) == 1
    assert len(mailwright.outbox) == 1 and smtp_server.messages == []

    async def main() -> int:
        return await mailwright.asend_template(
            "welcome.html", CONTEXT, to=["b@x.test"], using="notifications"
        )

    assert mailwright.send_template("welcome.html", CONTEXT, to=["a@x.test"], using="notifications")
    assert asyncio.run(main()) == 1
    first, second = smtp_server.wait_for(2)
    assert (first.rcpt_tos, second.rcpt_tos) == (["a@x.test"], ["b@x.test"])
    check_welcome(arrived(second))
    with pytest.raises(mailwright.MailerDoesNotExist):
        mailwright.send_template("welcome.html", CONTEXT, to=["a@x.test"], using="nope")
    assert len(mailwright.outbox) == 1


# --- blocks, CSS, engines ---


def test_text_block_is_used_as_written(templates: Path, smtp_server: SMTPTestServer) -> None:
    (templates / "both.html").write_text(
        "{% block subject %}Hi{% endblock %}\n"
        "{% block html %}<p>HTML for {{ name }}</p>{% endblock %}\n"
        "{% block text %}\nPlain for {{ name }} & co.\n  indented\n{% endblock %}\n"
    )
    (templates / "textonly.html").write_text(
        "{% block subject %}Only text{% endblock %}{% block text %}Just {{ name }}.{% endblock %}"
    )
    mailwright.send_template("both.html", {"name": "Ann"}, to=["a@x.test"])
    mailwright.send_template("textonly.html", {"name": "Bob"}, to=["a@x.test"])
    both, textonly = (arrived(received) for received in smtp_server.wait_for(2))
    assert part(both, "text/plain").get_content() == "Plain for Ann & co.\n  indented\n"
    assert part(both, "text/html").get_content().count("HTML for Ann") == 1
    assert textonly.get_content_type() == "text/plain"
    assert textonly.get_content() == "Just Bob.\n"


def test_inline_css_can_be_turned_off(templates: Path) -> None:
    with mailwright.override_settings(EMAIL_TEMPLATE_INLINE_CSS=False):
        message = mailwright.template_message("welcome.html", CONTEXT, to=["a@x.test"])
    ((html, _),) = message.alternatives
    assert "<p>Hello Ann,</p>" in html and "style=" not in html
    assert "p { color: #333333;" in html


def test_linked_local_stylesheet_is_inlined_and_remote_one_kept(templates: Path) -> None:
    (templates / "css").mkdir()
    (templates / "css" / "mail.css").write_text("h1 { color: #ff0000; }\n")
    (templates / "linked.html").write_text(
        "{% block subject %}S{% endblock %}{% block html %}<html><head>"
        '<link rel="stylesheet" href="css/mail.css">'
        '<link rel="stylesheet" href="https://fonts.example.com/css?family=Inter">'
        "</head><body><h1>Title</h1></body></html>{% endblock %}"
    )
    message = mailwright.template_message("linked.html", {}, to=["a@x.test"])
    ((html, _),) = message.alternatives
    assert '<h1 style="color: #ff0000;">Title</h1>' in html
    assert "css/mail.css" not in html
    assert 'href="https://fonts.example.com/css?family=Inter"' in html
    (templates / "css" / "mail.css").unlink()
    with pytest.raises(FileNotFoundError, match=r"stylesheet 'css/mail\.css'"):
        mailwright.template_message("linked.html", {}, to=["a@x.test"])


def test_extends_and_super(templates: Path) -> None:
    (templates / "base.html").write_text(
        "{% block subject %}[Acme] {% endblock %}"
        "{% block html %}<div>{% block content %}{% endblock %}</div><p>footer</p>"
        "{% endblock %}"
    )
    (templates / "child.html").write_text(
        '{% extends "base.html" %}'
        "{% block subject %}{{ super() }}Invoice {{ number }}{% endblock %}"
        "{% block content %}<p>Invoice {{ number }} is paid.</p>{% endblock %}"
    )
    message = mailwright.template_message("child.html", {"number": 7}, to=["a@x.test"])
    assert message.subject == "[Acme] Invoice 7"
    ((html, _),) = message.alternatives
    assert "<div><p>Invoice 7 is paid.</p></div><p>footer</p>" in html
    assert message.body == "Invoice 7 is paid.\n\nfooter"


def make_environment() -> jinja2.Environment:
    """The EMAIL_TEMPLATE_ENGINE of test_user_environment."""
    environment = jinja2.Environment(
        loader=jinja2.DictLoader(
            {
                "shout.html": "{% block subject %}{{ word|shout }}{% endblock %}"
                "{% block text %}{{ word|shout }} {{ word }}{% endblock %}"
            }
        )
    )
    environment.filters["shout"] = lambda value: f"{str(value).upper()}!"
    return environment


def not_an_environment() -> str:
    return "a string"


def test_user_environment(templates: Path) -> None:
    with mailwright.override_settings(EMAIL_TEMPLATE_ENGINE="test_templates.make_environment"):
        message = mailwright.template_message("shout.html", {"word": "hey"}, to=["a@x.test"])
        assert message.subject == "HEY!"
        assert message.body == "HEY! hey\n"
        with pytest.raises(TemplateError, match="'word' is undefined"):
            mailwright.template_message("shout.html", {}, to=["a@x.test"])


def test_engine_setting_errors() -> None:
    with (
        mailwright.override_settings(EMAIL_TEMPLATE_ENGINE="test_templates.no_such_thing"),
        pytest.raises(mailwright.ImproperlyConfigured, match="EMAIL_TEMPLATE_ENGINE"),
    ):
        mailwright.template_message("x.html", {}, to=["a@x.test"])
    with (
        mailwright.override_settings(EMAIL_TEMPLATE_ENGINE="test_templates.not_an_environment"),
        pytest.raises(mailwright.ImproperlyConfigured, match=r"not a jinja2\.Environment"),
    ):
        mailwright.template_message("x.html", {}, to=["a@x.test"])


def test_template_settings_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("EMAIL_TEMPLATE_DIRS", f"{tmp_path / 'a'}:{tmp_path / 'b'}")
    monkeypatch.setenv("EMAIL_TEMPLATE_INLINE_CSS", "off")
    monkeypatch.setenv("EMAIL_TEMPLATE_STRICT", "0")
    assert [str(tmp_path / "a"), str(tmp_path / "b")] == settings.EMAIL_TEMPLATE_DIRS
    assert settings.EMAIL_TEMPLATE_INLINE_CSS is False
    assert settings.EMAIL_TEMPLATE_STRICT is False
    assert settings.EMAIL_TEMPLATE_ENGINE is None
    with pytest.raises(mailwright.ImproperlyConfigured, match="EMAIL_TEMPLATE_DIRS"):
        mailwright.configure(EMAIL_TEMPLATE_DIRS=[3])


# --- auto_text ---


def test_auto_text_derives_the_text_part(smtp_server: SMTPTestServer) -> None:
    html = '<h1>Hi</h1><p>See <a href="https://example.com/x">this</a>.</p>'
    derived = EmailMultiAlternatives("S", "", to=["a@x.test"], auto_text=True)
    derived.attach_alternative(html, "text/html")
    django_like = EmailMultiAlternatives("S", "", to=["a@x.test"])
    django_like.attach_alternative(html, "text/html")
    with mailwright.get_connection() as connection:
        assert connection.send_messages([derived, django_like]) == 2
    first, second = (arrived(received) for received in smtp_server.wait_for(2))
    assert part(first, "text/plain").get_content() == "Hi\n\nSee this <https://example.com/x>."
    assert part(first, "text/html").get_content() == html
    # default: Django's behaviour, only the HTML
    assert [p.get_content_type() for p in second.walk()] == ["multipart/alternative", "text/html"]


# --- import time ---


def test_import_mailwright_does_not_import_the_template_libraries() -> None:
    code = (
        "import sys, mailwright;"
        "print(sorted(m for m in ('jinja2', 'css_inline', 'inscriptis', 'lxml') "
        "if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == "[]"
