"""``mailwright.django.EmailBackend`` in a Django project (``settings.configure()``), with
a real aiosmtpd server: Django's own ``django.core.mail`` code sends through mailwright's
engine, and what arrives parses like what Django's own SMTP backend sends.

Also: inside a Django project mailwright's functions read Django's settings, but only
those the project set (Django's defaults, such as ``EMAIL_TIMEOUT = None``, do not
override mailwright's).
"""

from __future__ import annotations

import asyncio
import socket
import warnings
from collections.abc import Callable, Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage as StdlibMessage
from typing import Any

import pytest

django = pytest.importorskip("django")

from django.conf import settings as django_settings  # noqa: E402
from django.core import mail as django_mail  # noqa: E402
from django.utils.functional import empty  # noqa: E402

import mailwright  # noqa: E402
from certs import CertFiles  # noqa: E402
from conftest import ServerFactory  # noqa: E402
from mailwright.conf import settings  # noqa: E402
from smtpserver import Received, SMTPTestServer  # noqa: E402

#: Django 6.1's MAILERS setting, mail.mailers and using=.
HAS_MAILERS = django.VERSION >= (6, 1)
needs_mailers = pytest.mark.skipif(not HAS_MAILERS, reason="MAILERS is new in Django 6.1")

# Django 6.1 deprecates the EMAIL_BACKEND form these tests also use (the EMAIL_*
# settings, get_connection(), connection=, (name, address) pairs in ADMINS): its own
# notices about that are expected; any other warning is not.
pytestmark = [
    pytest.mark.filterwarnings(f"ignore:{message}:PendingDeprecationWarning")
    for message in (
        r"The EMAIL_\w+ setting is deprecated",
        r"get_connection\(\) is deprecated",
        r"The 'connection' argument is deprecated",
        r"Using \(name, address\) pairs in the ADMINS setting is deprecated",
    )
]

MAILWRIGHT = "mailwright.django.EmailBackend"
DJANGO_SMTP = "django.core.mail.backends.smtp.EmailBackend"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4


@pytest.fixture
def project() -> Iterator[Callable[..., None]]:
    """Configure a Django project (once per test); unconfigured again afterwards, so
    the rest of the suite sees no Django settings."""

    def configure(**values: Any) -> None:
        django_settings.configure(**values)

    yield configure
    django_settings._wrapped = empty
    if hasattr(django_mail, "outbox"):
        del django_mail.outbox


@pytest.fixture
def server(start_server: ServerFactory, project: Callable[..., None]) -> SMTPTestServer:
    server = start_server()
    project(
        EMAIL_BACKEND=MAILWRIGHT,
        EMAIL_HOST=server.host,
        EMAIL_PORT=server.port,
        DEFAULT_FROM_EMAIL="Site <site@example.com>",
        SERVER_EMAIL="errors@example.com",
        ADMINS=[("Ann Admin", "ann@example.com"), ("Bob", "bob@example.com")],
        MANAGERS=[("Meg", "meg@example.com")],
    )
    return server


def stored(received: Received) -> StdlibMessage:
    """What arrived, parsed as a mailbox holds it (CRLF line breaks read as "\\n")."""
    data = received.data.replace(b"\r\n", b"\n")
    return message_from_bytes(data, policy=policy.default)  # type: ignore[return-value]


def view(received: Received, *, final_line_break: bool = False) -> dict[str, Any]:
    """Everything a reader gets from a message; not how it was encoded. With
    ``final_line_break``, a text part that ends without a line break reads as ending
    with one: Django 6 composes text with the stdlib's ``set_content``, which adds it."""
    parsed = stored(received)

    def text(content: Any) -> Any:
        if final_line_break and isinstance(content, str) and not content.endswith("\n"):
            return content + "\n"
        return content

    def addresses(name: str) -> list[tuple[str, str]]:
        header = parsed[name]
        if header is None:
            return []
        return [(a.display_name, a.addr_spec) for a in header.addresses]

    bodies, attachments = [], []
    for part in parsed.walk():
        if part.is_multipart():
            continue
        if part.get_content_disposition() in ("attachment", "inline"):
            attachments.append(
                (part.get_filename(), part.get_content_type(), text(part.get_content()))
            )
        else:
            bodies.append((part.get_content_type(), text(part.get_content())))
    return {
        "envelope": (received.mail_from, sorted(received.rcpt_tos)),
        "subject": str(parsed["Subject"]),
        "from": addresses("From"),
        "to": addresses("To"),
        "cc": addresses("Cc"),
        "reply-to": addresses("Reply-To"),
        "x-tag": str(parsed["X-Tag"]),
        "bodies": bodies,
        "attachments": attachments,
    }


def scenarios() -> list[tuple[str, Callable[[Any], Any]]]:
    """(name, send(connection)): the same Django code, run once per backend."""

    def plain(connection: Any) -> Any:
        return django_mail.send_mail(
            "Hello", "Plain text.\n", None, ["to@example.com"], connection=connection
        )

    def html(connection: Any) -> Any:
        return django_mail.send_mail(
            "Grüße",
            "Grüße aus Köln\nZweite Zeile",
            "Jörg <joerg@example.com>",
            ["Zoë <zoe@example.com>", "plain@example.com"],
            html_message="<p>Grüße aus <b>Köln</b></p>",
            connection=connection,
        )

    def full(connection: Any) -> Any:
        message = django_mail.EmailMultiAlternatives(
            "Report for Zoë",
            "See the attachments.",
            "reports@example.com",
            ["Zoë Ünal <zoe@example.com>"],
            bcc=["audit@example.com"],
            cc=["cc@example.com"],
            reply_to=["Help Desk <help@example.com>"],
            headers={"X-Tag": "monthly"},
            connection=connection,
        )
        message.attach_alternative("<h1>Report</h1><p>See the attachments.</p>", "text/html")
        message.attach("data.csv", "a,b\n1,2", "text/csv")
        message.attach("résumé.txt", "Ünïcode\ntext\n", "text/plain")
        message.attach("logo.png", PNG, "image/png")
        message.attach("blob.bin", bytes(range(256)), "application/octet-stream")
        return message.send()

    def admins(connection: Any) -> Any:
        django_mail.mail_admins(  # returns None in Django
            "Server error", "Traceback...", html_message="<pre>Traceback...</pre>",
            connection=connection,
        )  # fmt: skip
        return 1

    return [("plain", plain), ("html", html), ("full", full), ("admins", admins)]


@pytest.mark.parametrize(("name", "send"), scenarios(), ids=[name for name, _ in scenarios()])
def test_arrives_as_with_djangos_own_smtp_backend(
    server: SMTPTestServer, name: str, send: Callable[[Any], Any]
) -> None:
    assert send(django_mail.get_connection(DJANGO_SMTP)) == 1
    (django_sent,) = server.wait_for(1)
    server.messages.clear()
    connection = django_mail.get_connection()  # EMAIL_BACKEND: mailwright's
    assert type(connection).__module__ == "mailwright.django.backend"
    assert send(connection) == 1
    (mailwright_sent,) = server.wait_for(1)
    assert view(mailwright_sent, final_line_break=True) == view(django_sent, final_line_break=True)


def test_full_message_content(server: SMTPTestServer) -> None:
    """What the comparison above compares, spelled out once."""
    send = dict(scenarios())["full"]
    assert send(django_mail.get_connection()) == 1
    (received,) = server.wait_for(1)
    got = view(received)
    assert got["envelope"] == (
        "reports@example.com",
        ["audit@example.com", "cc@example.com", "zoe@example.com"],
    )
    assert got["subject"] == "Report for Zoë"
    assert got["to"] == [("Zoë Ünal", "zoe@example.com")]
    assert got["reply-to"] == [("Help Desk", "help@example.com")]
    assert got["x-tag"] == "monthly"
    assert got["bodies"] == [
        ("text/plain", "See the attachments."),
        ("text/html", "<h1>Report</h1><p>See the attachments.</p>"),
    ]
    assert got["attachments"] == [
        ("data.csv", "text/csv", "a,b\n1,2"),
        ("résumé.txt", "text/plain", "Ünïcode\ntext\n"),
        ("logo.png", "image/png", PNG),
        ("blob.bin", "application/octet-stream", bytes(range(256))),
    ]
    assert b"audit@example.com" not in received.data  # Bcc: envelope only


def test_delivery_per_recipient_and_pipelining(start_server: ServerFactory, project: Any) -> None:
    server = start_server(refuse={"gone@example.com"})
    project(EMAIL_BACKEND=MAILWRIGHT, EMAIL_HOST=server.host, EMAIL_PORT=server.port)
    messages = [
        django_mail.EmailMessage(f"n{i}", "b", "a@example.com", [f"u{i}@example.com"])
        for i in range(3)
    ]
    messages[1].to.append("gone@example.com")
    with django_mail.get_connection() as connection:
        assert connection.send_messages(messages) == 3
    assert len(server.wait_for(3)) == 3
    assert messages[1].delivery.accepted == ["u1@example.com"]
    assert messages[1].delivery.refused["gone@example.com"][0] == 550
    assert all(m.delivery.sent for m in messages)
    # Pipelined: the envelope of the next message travels with the content before it.
    assert any(b"\r\n.\r\nMAIL FROM:" in chunk for _, chunk in server.chunks)
    assert server.connections == 1


def test_iterators_and_connections_keyword(server: SMTPTestServer) -> None:
    messages = [
        django_mail.EmailMessage(f"m{i}", "b", None, [f"u{i}@example.com"]) for i in range(12)
    ]
    connection = django_mail.get_connection(connections=3)
    assert connection.connections == 3  # the engine's attributes read through
    server.options.mail_after_connections = 3  # each connection gets a message
    assert connection.send_messages(iter(messages)) == 12
    assert sorted(r.rcpt_tos[0] for r in server.wait_for(12)) == sorted(
        f"u{i}@example.com" for i in range(12)
    )
    assert server.connections == 3
    assert all(m.delivery.accepted for m in messages)


def test_verified_tls_from_django_settings(
    start_server: ServerFactory, project: Any, certs: CertFiles
) -> None:
    server = start_server(starttls=certs.server_context(), require_starttls=True)
    project(
        EMAIL_BACKEND=MAILWRIGHT,
        EMAIL_HOST="localhost",
        EMAIL_PORT=server.port,
        EMAIL_USE_TLS=True,
        EMAIL_SSL_CAFILE=certs.ca,  # mailwright's setting, read from Django's too
    )
    assert django_mail.send_mail("s", "b", "a@example.com", ["b@example.com"]) == 1
    (received,) = server.wait_for(1)
    assert received.tls
    # The same server, without the CA that signed its certificate: refused.
    import ssl

    with pytest.raises(ssl.SSLCertVerificationError):
        django_mail.get_connection(ssl_cafile=certs.other_ca).send_messages(
            [django_mail.EmailMessage("s", "b", "a@example.com", ["b@example.com"])]
        )
    assert len(server.messages) == 1


def test_a_bad_message_stops_the_batch_after_the_good_ones(server: SMTPTestServer) -> None:
    good = django_mail.EmailMessage("good", "b", "a@example.com", ["u@example.com"])
    bad = django_mail.EmailMessage("bad", "b", "a@example.com", ["u@example.com"])
    bad.extra_headers["X-Bad"] = "line\r\nBcc: victim@example.com"
    with pytest.raises(mailwright.BadHeaderError):
        django_mail.get_connection().send_messages([good, bad])
    assert [str(stored(r)["Subject"]) for r in server.wait_for(1)] == ["good"]
    assert good.delivery.sent


def test_subclass_that_overrides_message_is_sent_as_it_serialises(server: SMTPTestServer) -> None:
    class Stamped(django_mail.EmailMessage):  # type: ignore[misc]
        def message(self, *args: Any, **kwargs: Any) -> Any:
            msg = super().message(*args, **kwargs)
            msg["X-Stamp"] = "added in message()"
            return msg

    assert Stamped("s", "body", "a@example.com", ["b@example.com"]).send() == 1
    (received,) = server.wait_for(1)
    assert stored(received)["X-Stamp"] == "added in message()"
    assert received.rcpt_tos == ["b@example.com"]


def test_mailwright_functions_read_the_projects_settings(server: SMTPTestServer) -> None:
    # EMAIL_BACKEND (mailwright.django's) maps to the engine it drives; the rest as set.
    assert settings.EMAIL_BACKEND == "mailwright.backends.smtp.EmailBackend"
    assert server.port == settings.EMAIL_PORT
    assert mailwright.mail_admins("Disk full", "db1") == 1
    (received,) = server.wait_for(1)
    parsed = stored(received)
    assert received.mail_from == "errors@example.com"
    assert received.rcpt_tos == ["ann@example.com", "bob@example.com"]
    assert [a.addr_spec for a in parsed["To"].addresses] == ["ann@example.com", "bob@example.com"]
    # Django's defaults are the project's too, but for the timeout: mailwright's is safer.
    assert parsed["Subject"] == "[Django] Disk full"
    assert settings.EMAIL_TIMEOUT == 60  # Django's default: None (wait forever)
    assert mailwright.EmailMessage().from_email == "Site <site@example.com>"


def test_explicit_django_values_win_even_when_equal_to_djangos_default(project: Any) -> None:
    project(EMAIL_TIMEOUT=None, EMAIL_SUBJECT_PREFIX="[Django] ")
    assert settings.EMAIL_TIMEOUT is None
    assert settings.EMAIL_SUBJECT_PREFIX == "[Django] "
    # configure() and override_settings() still win over Django's settings
    with mailwright.override_settings(EMAIL_TIMEOUT=5):
        assert settings.EMAIL_TIMEOUT == 5


def test_djangos_test_runner_locmem_fills_djangos_outbox(project: Any) -> None:
    from django.test.utils import setup_test_environment, teardown_test_environment

    project()
    setup_test_environment()  # what Django's test runner does: locmem, mail.outbox = []
    try:
        assert mailwright.send_mail("Welcome", "Hi", "a@example.com", ["new@example.com"]) == 1
        assert [m.subject for m in django_mail.outbox] == ["Welcome"]
        assert django_mail.outbox[0].recipients() == ["new@example.com"]
        assert mailwright.outbox == []
    finally:
        teardown_test_environment()


def test_without_a_configured_project_django_is_not_consulted(project: Any) -> None:
    assert not django_settings.configured
    assert settings.EMAIL_PORT == 25
    assert settings.EMAIL_SUBJECT_PREFIX == "[mailwright] "


def test_the_backend_takes_alias_and_options_without_a_warning(server: SMTPTestServer) -> None:
    from mailwright.django import EmailBackend

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Django 6.1 warned: "does not support 'fail_silently'"
        quiet = EmailBackend(fail_silently=True)
        named = EmailBackend(alias="alerts", connections=2, timeout=7)
    assert (quiet.alias, quiet.fail_silently, quiet.engine.fail_silently) == (None, True, True)
    assert (named.alias, named.fail_silently, named.connections, named.timeout) == (
        "alerts",
        False,
        2,
        7,
    )
    assert "alias='alerts'" in repr(named)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert named.send_messages([django_mail.EmailMessage("s", "b", None, ["u@example.com"])])
    assert server.wait_for(1)[0].rcpt_tos == ["u@example.com"]


def test_undocumented_attributes_are_left_to_djangos_serialiser(server: SMTPTestServer) -> None:
    """A message that sets what Django does not document (here ``encoding``) is sent as
    Django serialises it, not converted with the setting dropped."""
    message = django_mail.EmailMessage("Grüße", "Grüße aus Köln", None, ["u@example.com"])
    message.encoding = "iso-8859-1"
    assert django_mail.get_connection().send_messages([message]) == 1
    (received,) = server.wait_for(1)
    parsed = stored(received)
    assert parsed.get_content_charset() == "iso-8859-1"
    assert parsed.get_content().rstrip("\n") == "Grüße aus Köln"
    assert message.delivery.accepted == ["u@example.com"]


def test_async_path_sends_django_messages(server: SMTPTestServer) -> None:
    messages = [
        django_mail.EmailMessage(f"a{i}", "b", None, [f"u{i}@example.com"]) for i in range(3)
    ]

    async def send() -> int:
        async with django_mail.get_connection() as connection:
            return await connection.asend_messages(messages)

    assert asyncio.run(send()) == 3
    assert sorted(str(stored(r)["Subject"]) for r in server.wait_for(3)) == ["a0", "a1", "a2"]
    assert server.connections == 1
    assert all(m.delivery.accepted for m in messages)


# --- Django 6.1: the MAILERS form ---


@pytest.fixture
def mailers_project(
    start_server: ServerFactory, project: Callable[..., None]
) -> tuple[SMTPTestServer, SMTPTestServer]:
    """Two catchers: "default" and "alerts" deliver to the first, "bulk" to the second."""
    first, second = start_server(), start_server()
    project(
        MAILERS={
            "default": {
                "BACKEND": MAILWRIGHT,
                "OPTIONS": {"host": first.host, "port": first.port},
            },
            "alerts": {
                "BACKEND": MAILWRIGHT,
                "OPTIONS": {"host": first.host, "port": first.port, "timeout": 5},
            },
            "bulk": {
                "BACKEND": MAILWRIGHT,
                "OPTIONS": {"host": second.host, "port": second.port, "connections": 2},
            },
        },
        DEFAULT_FROM_EMAIL="site@example.com",
        SERVER_EMAIL="errors@example.com",
        ADMINS=["ann@example.com"],
        MANAGERS=["meg@example.com"],
    )
    return first, second


@needs_mailers
@pytest.mark.filterwarnings("error")
def test_mailers_form_every_sending_function(
    mailers_project: tuple[SMTPTestServer, SMTPTestServer],
) -> None:
    first, second = mailers_project
    mailers = django_mail.mailers
    assert list(mailers) == ["default", "alerts", "bulk"]
    bulk = mailers["bulk"]
    assert type(bulk).__module__ == "mailwright.django.backend"
    assert (bulk.alias, bulk.connections, bulk.port) == ("bulk", 2, second.port)
    assert mailers.default.alias == "default"

    assert django_mail.send_mail("one", "b", None, ["u1@example.com"]) == 1
    assert django_mail.send_mail("two", "b", None, ["u2@example.com"], using="bulk") == 1
    message = django_mail.EmailMultiAlternatives("three", "b", None, ["u3@example.com"])
    message.attach_alternative("<p>b</p>", "text/html")
    assert message.send(using="bulk") == 1
    assert message.delivery.accepted == ["u3@example.com"]
    assert (
        django_mail.send_mass_mail(
            [("four", "b", None, ["u4@example.com"]), ("five", "b", None, ["u5@example.com"])],
            using="alerts",
        )
        == 2
    )
    django_mail.mail_admins("six", "b", using="alerts")
    django_mail.mail_managers("seven", "b")

    def subjects(server: SMTPTestServer, count: int) -> list[str]:
        return sorted(str(stored(r)["Subject"]) for r in server.wait_for(count))

    assert subjects(first, 5) == ["[Django] seven", "[Django] six", "five", "four", "one"]
    assert subjects(second, 2) == ["three", "two"]
    (html,) = [r for r in second.messages if stored(r)["Subject"] == "three"]
    assert stored(html).get_content_type() == "multipart/alternative"
    assert sorted(r.rcpt_tos[0] for r in first.messages) == [
        "ann@example.com", "meg@example.com", "u1@example.com", "u4@example.com",
        "u5@example.com",
    ]  # fmt: skip


@needs_mailers
@pytest.mark.filterwarnings("error")
def test_mailers_form_async_path(mailers_project: tuple[SMTPTestServer, SMTPTestServer]) -> None:
    _, second = mailers_project
    messages = [
        django_mail.EmailMessage(f"a{i}", "b", None, [f"u{i}@example.com"]) for i in range(4)
    ]

    async def send() -> int:
        async with django_mail.mailers["bulk"] as connection:
            return await connection.asend_messages(messages)

    assert asyncio.run(send()) == 4
    assert sorted(r.rcpt_tos[0] for r in second.wait_for(4)) == [
        f"u{i}@example.com" for i in range(4)
    ]


@needs_mailers
def test_mailers_form_errors_name_the_mailer(project: Callable[..., None]) -> None:
    from django.core.mail import InvalidMailer, MailerDoesNotExist

    project(
        MAILERS={
            "typo": {"BACKEND": MAILWRIGHT, "OPTIONS": {"hots": "smtp.example.com"}},
            "aliased": {"BACKEND": MAILWRIGHT, "OPTIONS": {"alias": "other"}},
        }
    )
    with pytest.raises(InvalidMailer, match=r"^MAILERS\['typo'\]: .*'hots'"):
        django_mail.mailers["typo"]
    with pytest.raises(InvalidMailer, match=r"^MAILERS\['aliased'\]: .*'alias'"):
        django_mail.mailers["aliased"]
    with pytest.raises(MailerDoesNotExist, match="'missing'"):
        django_mail.mailers["missing"]


@needs_mailers
def test_mailers_form_deprecated_fail_silently_reaches_the_engine(
    project: Callable[..., None],
) -> None:
    """Django 6.1 still passes get_connection()'s keyword arguments to the default
    mailer (with a list of them for its base class); fail_silently must take effect."""
    with socket.socket() as bound:  # bound, not listening: connections are refused
        bound.bind(("127.0.0.1", 0))
        port = bound.getsockname()[1]
        project(
            MAILERS={
                "default": {"BACKEND": MAILWRIGHT, "OPTIONS": {"host": "127.0.0.1", "port": port}}
            }
        )
        message = django_mail.EmailMessage("s", "b", "a@example.com", ["u@example.com"])
        with pytest.warns(PendingDeprecationWarning, match="'fail_silently' argument is deprec"):
            assert message.send(fail_silently=True) == 0
        with pytest.raises(ConnectionRefusedError):
            message.send()


@needs_mailers
@pytest.mark.filterwarnings("error")
def test_mailwrights_functions_see_the_projects_mailers(
    mailers_project: tuple[SMTPTestServer, SMTPTestServer],
) -> None:
    first, second = mailers_project
    assert list(mailwright.mailers) == ["default", "alerts", "bulk"]
    bulk = mailwright.mailers["bulk"]
    assert type(bulk).__module__ == "mailwright.backends.smtp"  # the engine, directly
    assert (bulk.alias, bulk.connections, bulk.port) == ("bulk", 2, second.port)
    assert mailwright.send_mail("one", "b", None, ["u1@example.com"], using="bulk") == 1
    assert mailwright.send_mail("two", "b", None, ["u2@example.com"]) == 1
    assert [r.rcpt_tos for r in second.wait_for(1)] == [["u1@example.com"]]
    assert [r.rcpt_tos for r in first.wait_for(1)] == [["u2@example.com"]]
    assert asyncio.run(mailwright.asend_mail("three", "b", None, ["u3@example.com"], using="bulk"))
    assert sorted(r.rcpt_tos[0] for r in second.wait_for(2)) == ["u1@example.com", "u3@example.com"]


@needs_mailers
def test_djangos_test_runner_sends_every_mailer_to_djangos_outbox(
    mailers_project: tuple[SMTPTestServer, SMTPTestServer],
) -> None:
    from django.test.utils import setup_test_environment, teardown_test_environment

    first, second = mailers_project
    setup_test_environment()  # Django 6.1: every MAILERS entry becomes locmem
    try:
        assert django_mail.send_mail("a", "b", None, ["u1@example.com"], using="bulk") == 1
        assert mailwright.send_mail("c", "d", None, ["u2@example.com"], using="alerts") == 1
        assert [m.subject for m in django_mail.outbox] == ["a", "c"]
    finally:
        teardown_test_environment()
    assert first.messages == [] and second.messages == []


def test_mailwright_functions_read_a_projects_mailers(
    start_server: ServerFactory, project: Any
) -> None:
    # Django 6.1's MAILERS form: Django's backend names map to mailwright's, as for
    # EMAIL_BACKEND, so mailwright's own functions send through the project's mailers.
    server = start_server()
    project(
        MAILERS={
            "default": {
                "BACKEND": "mailwright.django.EmailBackend",
                "OPTIONS": {"host": server.host, "port": server.port},
            },
            "console": {"BACKEND": "django.core.mail.backends.console.EmailBackend"},
            "outbox": {
                "BACKEND": "mailwright.django.EmailBackend",
                "OPTIONS": {"backend": "mailwright.backends.locmem.EmailBackend"},
            },
        }
    )
    assert list(mailwright.mailers) == ["default", "console", "outbox"]
    assert mailwright.send_mail("via default", "b", "f@example.com", ["a@example.com"]) == 1
    assert server.wait_for(1)[0].rcpt_tos == ["a@example.com"]
    console = mailwright.mailers["console"]
    assert type(console).__module__ == "mailwright.backends.console"
    assert mailwright.send_mail("kept", "b", "f@example.com", ["b@example.com"], using="outbox")
    assert [m.sent_using for m in mailwright.outbox] == ["outbox"]
