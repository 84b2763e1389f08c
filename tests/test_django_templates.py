"""Template messages in a Django project: the same names render with Django's template
engine, from Django's template directories, and arrive at a real SMTP server."""

from __future__ import annotations

import re
from collections.abc import Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage as StdlibMessage
from pathlib import Path
from typing import Any

import pytest

django = pytest.importorskip("django")
pytest.importorskip("css_inline")
pytest.importorskip("inscriptis")

from django.conf import settings as django_settings  # noqa: E402
from django.utils.functional import empty  # noqa: E402

import mailwright  # noqa: E402
from conftest import ServerFactory  # noqa: E402
from smtpserver import SMTPTestServer  # noqa: E402

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(128))

BASE = """\
{% block subject %}[Shop] {% endblock %}
{% block html %}<html><head><style>
p { margin: 0 0 12px; }
@media (max-width: 600px) { p { font-size: 18px; } }
</style></head><body>{% block content %}{% endblock %}
<p class="footer"><a href="https://shop.example.com/unsubscribe">Unsubscribe</a></p>
</body></html>{% endblock %}
"""

ORDER = """\
{% extends "mail/base.html" %}
{% block subject %}{{ block.super }}Order {{ order.number }}
  shipped{% endblock %}
{% block content %}<img src="{% inline_image "mail/logo.png" %}" alt="Shop">
<p>Hello {{ name }}, order {{ order.number }} is on its way.</p>
<p><a href="https://shop.example.com/orders/{{ order.number }}">Track it</a></p>{% endblock %}
"""


def reset_template_engines() -> None:
    from django.template import engines
    from django.template.engine import Engine

    engines.__dict__.pop("templates", None)
    engines._templates = None
    engines._engines = {}
    Engine.get_default.cache_clear()


@pytest.fixture
def project(tmp_path: Path, start_server: ServerFactory) -> Iterator[SMTPTestServer]:
    templates = tmp_path / "templates"
    (templates / "mail").mkdir(parents=True)
    (templates / "mail" / "base.html").write_text(BASE)
    (templates / "mail" / "order.html").write_text(ORDER)
    (templates / "mail" / "logo.png").write_bytes(PNG)
    server = start_server()
    django_settings.configure(
        INSTALLED_APPS=[],
        TEMPLATES=[
            {"BACKEND": "django.template.backends.django.DjangoTemplates", "DIRS": [templates]}
        ],
        EMAIL_BACKEND="mailwright.django.EmailBackend",
        EMAIL_HOST=server.host,
        EMAIL_PORT=server.port,
        DEFAULT_FROM_EMAIL="Shop <shop@example.com>",
    )
    django.setup()
    reset_template_engines()
    yield server
    django_settings._wrapped = empty
    reset_template_engines()


def parsed(data: bytes) -> StdlibMessage:
    return message_from_bytes(data.replace(b"\r\n", b"\n"), policy=policy.default)  # type: ignore[return-value]


CONTEXT: dict[str, Any] = {"name": "Sam <b>", "order": {"number": 10482}}


def test_send_template_with_django_templates(project: SMTPTestServer) -> None:
    assert mailwright.send_template("mail/order.html", CONTEXT, to=["sam@example.com"]) == 1
    (received,) = project.wait_for(1)
    assert received.mail_from == "shop@example.com"
    message = parsed(received.data)
    assert message["Subject"] == "[Shop] Order 10482 shipped"
    parts = {p.get_content_type(): p for p in message.walk()}
    text = parts["text/plain"].get_content()
    assert "Hello Sam <b>, order 10482 is on its way." in text
    assert "Track it <https://shop.example.com/orders/10482>" in text
    assert "Unsubscribe <https://shop.example.com/unsubscribe>" in text
    html = parts["text/html"].get_content()
    assert "Hello Sam &lt;b&gt;" in html  # autoescaped
    assert '<p style="margin: 0 0 12px;">Hello' in html  # inlined
    assert re.search(r"<style>[^<]*@media \(max-width: 600px\)", html)  # kept
    (cid,) = re.findall(r'src="cid:([^"]+)"', html)
    assert parts["image/png"]["Content-ID"] == f"<{cid}>"
    assert parts["image/png"].get_content() == PNG


def test_django_template_errors_name_the_template_and_line(project: SMTPTestServer) -> None:
    templates = Path(django_settings.TEMPLATES[0]["DIRS"][0]) / "mail"
    (templates / "undefined.html").write_text(
        "{% block subject %}Hi{% endblock %}\n{% block html %}\n<p>{{ nobody.name }}</p>"
        "{% endblock %}"
    )
    (templates / "syntax.html").write_text(
        "{% block subject %}Hi{% endblock %}\n\n{% block html %}{% if %}{% endblock %}"
    )
    (templates / "nosubject.html").write_text("{% block html %}x{% endblock %}")
    (templates / "inherits.html").write_text(
        '{% extends "mail/base.html" %}\n{% block content %}\n\n{{ gone }}{% endblock %}'
    )
    cases = [
        (
            "mail/undefined.html",
            "mail/undefined.html, line 3: undefined variable in {{ nobody.name }}",
        ),
        ("mail/syntax.html", "mail/syntax.html, line 3: "),
        ("mail/inherits.html", "mail/inherits.html, line 4: undefined variable in {{ gone }}"),
        ("mail/nosubject.html", "mail/nosubject.html: no subject block"),
        ("mail/nope.html", "mail/nope.html: template not found in Django's template directories"),
    ]
    for name, expected in cases:
        with pytest.raises(mailwright.TemplateError) as caught:
            mailwright.send_template(name, {}, to=["a@x.test"])
        assert str(caught.value).startswith(expected), str(caught.value)
    assert project.connections == 0
    # not strict: Django's lenient rendering
    django_settings.EMAIL_TEMPLATE_STRICT = False
    message = mailwright.template_message("mail/undefined.html", {}, to=["a@x.test"])
    assert message.alternatives[0][0].count("<p></p>") == 1


def test_missing_inline_image_in_a_django_template(project: SMTPTestServer) -> None:
    (Path(django_settings.TEMPLATES[0]["DIRS"][0]) / "mail" / "logo.png").unlink()
    with pytest.raises(FileNotFoundError, match=r"mail/logo\.png"):
        mailwright.send_template("mail/order.html", CONTEXT, to=["a@x.test"])
    assert project.connections == 0


def test_email_template_engine_wins_over_django(project: SMTPTestServer, tmp_path: Path) -> None:
    pytest.importorskip("jinja2")
    jinja_dir = tmp_path / "jinja"
    jinja_dir.mkdir()
    (jinja_dir / "hi.txt").write_text(
        "{% block subject %}Jinja {{ n }}{% endblock %}{% block text %}{{ n * 2 }}{% endblock %}"
    )
    mailwright.configure(EMAIL_TEMPLATE_ENGINE=make_jinja, EMAIL_TEMPLATE_DIRS=[str(jinja_dir)])
    message = mailwright.template_message("hi.txt", {"n": 21}, to=["a@x.test"])
    assert (message.subject, message.body) == ("Jinja 21", "42\n")


def make_jinja() -> Any:
    import jinja2

    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(mailwright.settings.EMAIL_TEMPLATE_DIRS)
    )


def test_inline_image_at_the_top_of_a_template_directory(
    project: SMTPTestServer, tmp_path: Path
) -> None:
    # Django hands the tag a SafeString; a name with no directory once failed to become
    # a path on Python 3.11 ("can't intern SafeString").
    templates = tmp_path / "templates"
    (templates / "top.png").write_bytes(PNG)
    (templates / "welcome.html").write_text(
        '{% block subject %}Welcome{% endblock %}{% block html %}<img src="'
        '{% inline_image "top.png" %}">{% endblock %}'
    )
    assert mailwright.send_template("welcome.html", to=["sam@example.com"]) == 1
    (received,) = project.wait_for(1)
    message = parsed(received.data)
    parts = {p.get_content_type(): p for p in message.walk()}
    (cid,) = re.findall(r'src="cid:([^"]+)"', parts["text/html"].get_content())
    assert parts["image/png"]["Content-ID"] == f"<{cid}>"
    assert parts["image/png"].get_content() == PNG
