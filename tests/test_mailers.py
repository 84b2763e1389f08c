"""Named mailers (SPEC §8): MAILERS, mailwright.mailers, using= on every sending path,
sync and async, against real SMTP servers on 127.0.0.1."""

from __future__ import annotations

import asyncio
import io
import json
import os
import pickle
import socket
import subprocess
import sys
from collections.abc import Callable, Coroutine
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import pytest

import mailwright
from conftest import ServerFactory
from mailwright import (
    DEFAULT_MAILER_ALIAS,
    EmailMessage,
    ImproperlyConfigured,
    InvalidMailer,
    MailerDoesNotExist,
    amail_admins,
    amail_managers,
    asend_bulk,
    asend_mail,
    asend_mass_mail,
    configure,
    get_connection,
    mail_admins,
    mail_managers,
    mailers,
    send_bulk,
    send_mail,
    send_mass_mail,
)
from mailwright.backends.base import BaseEmailBackend
from mailwright.testing import capture_mail
from smtpserver import SMTPTestServer

pytest_plugins = ["pytester"]


def run(coroutine: Coroutine[Any, Any, Any]) -> Any:
    return asyncio.run(coroutine)


def smtp_entry(server: SMTPTestServer, **options: Any) -> dict[str, Any]:
    return {"BACKEND": "smtp", "OPTIONS": {"host": server.host, "port": server.port, **options}}


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def message(to: str = "to@example.com", subject: str = "s") -> EmailMessage:
    return EmailMessage(subject, "body", "from@example.com", [to])


# --- without MAILERS: one mailer, "default", as before ---


def test_without_mailers_there_is_exactly_the_default_mailer(smtp_server: SMTPTestServer) -> None:
    assert DEFAULT_MAILER_ALIAS == "default"
    assert list(mailers) == ["default"]
    assert "default" in mailers and "other" not in mailers
    default = mailers.default
    assert default.alias == "default"
    assert default is not mailers["default"]  # a new backend every time
    assert mailers.get("other") is None
    assert mailers.get("other", "fallback") == "fallback"
    assert send_mail("s", "b", "from@example.com", ["to@example.com"]) == 1
    assert send_mail("s", "b", "from@example.com", ["to@example.com"], using="default") == 1
    assert len(smtp_server.wait_for(2)) == 2


def test_without_mailers_the_default_mailer_reads_email_url(start_server: ServerFactory) -> None:
    server = start_server()
    configure(EMAIL_URL=f"smtp://{server.host}:{server.port}")
    assert mailers.default.port == server.port
    assert send_mail("s", "b", "from@example.com", ["to@example.com"], using="default") == 1
    assert server.wait_for(1)[0].rcpt_tos == ["to@example.com"]


def test_empty_mailers_means_none() -> None:
    configure(MAILERS={})
    assert list(mailers) == []
    assert "default" not in mailers
    with pytest.raises(MailerDoesNotExist, match=r"^MAILERS\['default'\]: .*MAILERS is empty"):
        _ = mailers.default
    with pytest.raises(MailerDoesNotExist):
        send_mail("s", "b", "from@example.com", ["to@example.com"])


# --- sending through named mailers ---


def test_each_function_sends_through_the_mailer_it_names(start_server: ServerFactory) -> None:
    main, other = start_server(), start_server()
    configure(
        MAILERS={"default": smtp_entry(main), "other": smtp_entry(other)},
        ADMINS=["admin@example.com"],
        MANAGERS=["manager@example.com"],
    )
    assert list(mailers) == ["default", "other"]
    assert send_mail("s", "b", "f@example.com", ["a@example.com"]) == 1
    assert send_mail("s", "b", "f@example.com", ["b@example.com"], using="other") == 1
    datatuple = [("s", "b", "f@example.com", ["c@example.com"])] * 2
    assert send_mass_mail(datatuple, using="other") == 2
    mail_admins("s", "b", using="other")
    mail_managers("s", "b", using="other")
    assert message("d@example.com").send(using="other") == 1
    assert message("e@example.com").send() == 1
    assert sorted(r.rcpt_tos[0] for r in main.wait_for(2)) == ["a@example.com", "e@example.com"]
    assert sorted(r.rcpt_tos[0] for r in other.wait_for(6)) == [
        "admin@example.com",
        "b@example.com",
        "c@example.com",
        "c@example.com",
        "d@example.com",
        "manager@example.com",
    ]
    assert other.connections == 5  # send_mass_mail: one connection for both


def test_each_async_function_sends_through_the_mailer_it_names(
    start_server: ServerFactory,
) -> None:
    main, other = start_server(), start_server()
    configure(
        MAILERS={"default": smtp_entry(main), "other": smtp_entry(other)},
        ADMINS=["admin@example.com"],
        MANAGERS=["manager@example.com"],
    )

    async def main_() -> list[int]:
        return [
            await asend_mail("s", "b", "f@example.com", ["a@example.com"]),
            await asend_mail("s", "b", "f@example.com", ["b@example.com"], using="other"),
            await asend_mass_mail([("s", "b", "f@example.com", ["c@example.com"])], using="other"),
            await amail_admins("s", "b", using="other"),
            await amail_managers("s", "b", using="other"),
            await message("d@example.com").asend(using="other"),
        ]

    assert run(main_()) == [1, 1, 1, 1, 1, 1]
    assert [r.rcpt_tos for r in main.wait_for(1)] == [["a@example.com"]]
    assert sorted(r.rcpt_tos[0] for r in other.wait_for(5)) == [
        "admin@example.com",
        "b@example.com",
        "c@example.com",
        "d@example.com",
        "manager@example.com",
    ]


def test_send_bulk_and_asend_bulk_take_using(start_server: ServerFactory) -> None:
    main, bulk = start_server(), start_server()
    configure(MAILERS={"default": smtp_entry(main), "bulk": smtp_entry(bulk)})
    messages = [message(f"r{n}@example.com") for n in range(6)]
    result = send_bulk(messages, connections=2, using="bulk")
    assert result.sent == 6
    result = run(asend_bulk([message("x@example.com")], using="bulk"))
    assert result.sent == 1
    result = send_bulk([message("y@example.com")])  # the default mailer
    assert result.sent == 1
    assert len(bulk.wait_for(7)) == 7
    assert [r.rcpt_tos for r in main.wait_for(1)] == [["y@example.com"]]
    assert len(bulk.messages) == 7


def test_send_bulk_through_a_mailer_that_is_not_smtp() -> None:
    configure(MAILERS={"test": {"BACKEND": "locmem"}})
    result = send_bulk([message("a@example.com"), message("b@example.com")], using="test")
    assert result.sent == 2
    assert sorted(m.to[0] for m in mailwright.outbox) == ["a@example.com", "b@example.com"]
    assert {m.sent_using for m in mailwright.outbox} == {"test"}


def test_mailer_options_fall_back_to_the_global_settings(start_server: ServerFactory) -> None:
    server = start_server()
    # The entry gives only the port; the host and timeout are the global settings'.
    configure(
        EMAIL_HOST=server.host,
        EMAIL_TIMEOUT=7,
        MAILERS={"default": {"OPTIONS": {"port": server.port}}},
    )
    backend = mailers.default
    assert (backend.host, backend.port, backend.timeout) == (server.host, server.port, 7)
    assert send_mail("s", "b", "f@example.com", ["a@example.com"]) == 1
    assert server.wait_for(1)[0].rcpt_tos == ["a@example.com"]


def test_a_silent_backend_falls_back_to_email_backend() -> None:
    configure(EMAIL_BACKEND="mailwright.backends.locmem.EmailBackend", MAILERS={"x": {}})
    assert send_mail("s", "b", "f@example.com", ["a@example.com"], using="x") == 1
    assert mailwright.outbox[0].sent_using == "x"


def test_a_mailer_naming_its_own_host_does_not_log_in_with_the_global_user(
    start_server: ServerFactory,
) -> None:
    authenticated = start_server(auth=("ann", "pw"))
    open_relay = start_server()  # offers no AUTH: a client that tries it fails
    configure(
        EMAIL_HOST=authenticated.host,
        EMAIL_PORT=authenticated.port,
        EMAIL_HOST_USER="ann",
        EMAIL_HOST_PASSWORD="pw",
        MAILERS={"default": {}, "relay": smtp_entry(open_relay)},
    )
    assert send_mail("s", "b", "f@example.com", ["a@example.com"]) == 1
    assert send_mail("s", "b", "f@example.com", ["b@example.com"], using="relay") == 1
    (logged_in,) = authenticated.wait_for(1)
    (plain,) = open_relay.wait_for(1)
    assert logged_in.authenticated and not plain.authenticated


def test_use_ssl_in_a_mailer_turns_the_global_starttls_off() -> None:
    configure(EMAIL_USE_TLS=True, MAILERS={"tls": {"OPTIONS": {"use_ssl": True}}})
    backend = mailers["tls"]
    assert (backend.use_ssl, backend.use_tls) == (True, False)


def test_every_backend_takes_alias() -> None:
    for name in ("smtp", "console", "locmem", "dummy"):
        assert get_connection(name, alias="x").alias == "x"
        assert get_connection(name).alias is None


# --- URL entries and the environment ---


def test_url_entries_log_in_with_the_url_credentials(start_server: ServerFactory) -> None:
    server = start_server(auth=("user@example.com", "p@ss:w/rd"))
    plain = start_server()
    configure(
        EMAIL_USE_TLS=True,  # not borrowed by URL entries: the URL says how to connect
        EMAIL_HOST_USER="global",
        MAILERS={
            "auth": f"smtp://user%40example.com:p%40ss%3Aw%2Frd@{server.host}:{server.port}",
            "plain": f"smtp://{plain.host}:{plain.port}",
        },
    )
    assert send_mail("s", "b", "f@example.com", ["a@example.com"], using="auth") == 1
    assert send_mail("s", "b", "f@example.com", ["b@example.com"], using="plain") == 1
    assert server.wait_for(1)[0].authenticated
    assert not plain.wait_for(1)[0].authenticated


def test_mailers_from_the_environment_as_json(
    start_server: ServerFactory, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    server = start_server()
    monkeypatch.setenv(
        "MAILERS",
        json.dumps(
            {
                "default": f"smtp://{server.host}:{server.port}",
                "files": {"BACKEND": "file", "OPTIONS": {"file_path": str(tmp_path)}},
            }
        ),
    )
    assert list(mailers) == ["default", "files"]
    assert send_mail("s", "b", "f@example.com", ["a@example.com"]) == 1
    assert send_mail("Filed", "b", "f@example.com", ["b@example.com"], using="files") == 1
    assert server.wait_for(1)[0].rcpt_tos == ["a@example.com"]
    (written,) = tmp_path.iterdir()
    parsed = message_from_bytes(written.read_bytes(), policy=policy.default)
    assert parsed["Subject"] == "Filed"
    # configure() wins over the environment.
    configure(MAILERS={"only": {"BACKEND": "dummy"}})
    assert list(mailers) == ["only"]


def test_console_locmem_and_dummy_mailers(capsys: pytest.CaptureFixture[str]) -> None:
    stream = io.StringIO()
    configure(
        MAILERS={
            "console": {"BACKEND": "console", "OPTIONS": {"stream": stream}},
            "stdout": "console:",
            "memory": "locmem:",
            "nowhere": {"BACKEND": "mailwright.backends.dummy.EmailBackend"},
        }
    )
    assert send_mail("To a stream", "b", "f@example.com", ["a@example.com"], using="console")
    assert send_mail("To stdout", "b", "f@example.com", ["a@example.com"], using="stdout")
    assert send_mail("To memory", "b", "f@example.com", ["a@example.com"], using="memory")
    assert send_mail("To nowhere", "b", "f@example.com", ["a@example.com"], using="nowhere")
    assert "Subject: To a stream" in stream.getvalue()
    assert "Subject: To stdout" in capsys.readouterr().out
    assert [(m.subject, m.sent_using) for m in mailwright.outbox] == [("To memory", "memory")]


# --- in tests, every mailer delivers to the outbox ---


def test_capture_mail_sends_every_mailer_to_the_outbox(start_server: ServerFactory) -> None:
    server = start_server()
    configure(
        MAILERS={
            "default": smtp_entry(server),
            "nowhere": f"smtp://127.0.0.1:{closed_port()}",
            "files": {"BACKEND": "file", "OPTIONS": {"file_path": "/nonexistent/x"}},
        }
    )
    with capture_mail() as outbox:
        send_mail("a", "b", "f@example.com", ["a@example.com"])
        send_mail("b", "b", "f@example.com", ["a@example.com"], using="nowhere")
        run(asend_mail("c", "b", "f@example.com", ["a@example.com"], using="files"))
        with pytest.raises(MailerDoesNotExist):  # a typo still fails in tests
            send_mail("d", "b", "f@example.com", ["a@example.com"], using="nwhere")
    assert [(m.subject, m.sent_using) for m in outbox] == [
        ("a", "default"),
        ("b", "nowhere"),
        ("c", "files"),
    ]
    assert server.connections == 0
    send_mail("after", "b", "f@example.com", ["a@example.com"])
    assert server.wait_for(1)[0].parsed()["Subject"] == "after"


# --- errors ---


def test_unknown_alias() -> None:
    configure(MAILERS={"default": "dummy:"})
    with pytest.raises(MailerDoesNotExist) as raised:
        mailers["transactional"]
    error = raised.value
    assert isinstance(error, InvalidMailer) and isinstance(error, KeyError)
    assert isinstance(error, ImproperlyConfigured)
    assert str(error) == (
        "MAILERS['transactional']: The mailer 'transactional' is not configured. "
        "Configured: 'default'."
    )
    assert error.alias == "transactional"
    copy = pickle.loads(pickle.dumps(error))  # it crosses process boundaries intact
    assert (type(copy), str(copy), copy.alias) == (type(error), str(error), error.alias)
    for send in (
        lambda: send_mail("s", "b", "f@example.com", ["a@example.com"], using="transactional"),
        lambda: message().send(using="transactional"),
        lambda: send_bulk([message()], using="transactional"),
        lambda: run(message().asend(using="transactional")),
        lambda: run(asend_bulk([message()], using="transactional")),
    ):
        with pytest.raises(MailerDoesNotExist, match=r"^MAILERS\['transactional'\]: "):
            send()


def test_unknown_alias_without_mailers() -> None:
    with pytest.raises(MailerDoesNotExist, match=r"^MAILERS\['news'\]: .*'default'"):
        send_mail("s", "b", "f@example.com", ["a@example.com"], using="news")


def test_unknown_backend() -> None:
    configure(
        MAILERS={
            "missing": {"BACKEND": "myapp.mail.NoSuchBackend"},
            "not_a_backend": {"BACKEND": "json.JSONDecoder"},
            "not_a_string": {"BACKEND": 42},
        }
    )
    with pytest.raises(
        InvalidMailer, match=r"^MAILERS\['missing'\]: Could not find BACKEND .*NoSuchBackend"
    ):
        mailers["missing"]
    with pytest.raises(InvalidMailer, match=r"^MAILERS\['not_a_backend'\]: .*BaseEmailBackend"):
        send_mail("s", "b", "f@example.com", ["a@example.com"], using="not_a_backend")
    with pytest.raises(InvalidMailer, match=r"^MAILERS\['not_a_string'\]: BACKEND must be"):
        mailers["not_a_string"]


def test_unknown_option_fails_before_anything_is_sent_or_made(
    start_server: ServerFactory, tmp_path: Path
) -> None:
    server = start_server()
    directory = tmp_path / "not-created"
    configure(
        MAILERS={
            "default": {"BACKEND": "smtp", "OPTIONS": {"hots": "x", "port": server.port}},
            "files": {"BACKEND": "file", "OPTIONS": {"file_path": str(directory), "mode": 1}},
        }
    )
    with pytest.raises(InvalidMailer, match=r"^MAILERS\['default'\]: Unknown options 'hots'\."):
        send_mail("s", "b", "f@example.com", ["a@example.com"])
    with pytest.raises(InvalidMailer, match=r"^MAILERS\['files'\]: Unknown options 'mode'\."):
        run(asend_mail("s", "b", "f@example.com", ["a@example.com"], using="files"))
    assert server.connections == 0
    assert not directory.exists()


def test_alias_in_options() -> None:
    configure(MAILERS={"default": {"BACKEND": "locmem", "OPTIONS": {"alias": "other"}}})
    with pytest.raises(InvalidMailer, match=r"^MAILERS\['default'\]: OPTIONS must not define"):
        _ = mailers.default


def test_a_bad_entry_spoils_only_its_own_mailer() -> None:
    configure(MAILERS={"good": "locmem:", "bad": {"BACKND": "smtp"}, "worse": 3})
    assert mailers["good"].alias == "good"
    with pytest.raises(InvalidMailer, match=r"^MAILERS\['bad'\]: unknown key\(s\) 'BACKND'"):
        mailers["bad"]
    with pytest.raises(InvalidMailer, match=r"^MAILERS\['worse'\]: an entry is a dict"):
        mailers["worse"]
    with pytest.raises(InvalidMailer, match=r"^MAILERS\['bad'\]: "):
        mailers.check()


def test_using_with_connection_is_a_type_error() -> None:
    connection = get_connection("locmem")
    configure(MAILERS={"x": "locmem:"}, ADMINS=["a@example.com"], MANAGERS=[])
    calls: list[Callable[[], object]] = [
        lambda: send_mail("s", "b", None, ["a@example.com"], connection=connection, using="x"),
        lambda: send_mass_mail([], connection=connection, using="x"),
        lambda: mail_admins("s", "b", connection=connection, using="x"),
        lambda: mail_managers("s", "b", connection=connection, using="x"),  # even when empty
        lambda: EmailMessage(to=["a@example.com"], connection=connection).send(using="x"),
        lambda: send_bulk([message()], using="x", backend="locmem"),
        lambda: run(
            asend_mail("s", "b", None, ["a@example.com"], connection=connection, using="x")
        ),
        lambda: run(asend_mass_mail([], connection=connection, using="x")),
        lambda: run(amail_admins("s", "b", connection=connection, using="x")),
        lambda: run(amail_managers("s", "b", connection=connection, using="x")),
        lambda: run(EmailMessage(to=["a@example.com"], connection=connection).asend(using="x")),
        lambda: run(asend_bulk([message()], using="x", host="localhost")),
    ]
    for call in calls:
        with pytest.raises(TypeError, match="using='x'"):
            call()
    assert mailwright.outbox == []


def test_using_is_keyword_only() -> None:
    with pytest.raises(TypeError):
        send_mail("s", "b", None, ["a@example.com"], False, None, None, None, None, "x")  # type: ignore[misc]
    with pytest.raises(TypeError):
        message().send(False, "x")  # type: ignore[misc]


def test_a_url_password_never_shows_in_an_error() -> None:
    secret = "s3cr%40t-pw"
    for url in (
        f"smtp://user:{secret}@mail.example.com:notaport",
        f"smtp://user:{secret}@mail.example.com:587?bogus=1",
        f"smtp://user:{secret}@mail.example.com:587?tls=maybe",
        f"smtps://user:{secret}@mail.example.com?tls=1&ssl=1",
        f"gopher://user:{secret}@mail.example.com",
    ):
        configure(MAILERS={"default": url})
        with pytest.raises(ImproperlyConfigured) as raised:
            mailers.default.open()
        text = f"{raised.value} {raised.value!r}"
        assert "s3cr" not in text, text
        assert str(raised.value).startswith("MAILERS['default']: "), text


def test_mailers_json_that_does_not_parse_is_not_echoed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAILERS", '{"default": "smtp://user:s3cr@t@host", }')
    with pytest.raises(InvalidMailer, match="not valid JSON") as raised:
        list(mailers)
    assert "s3cr" not in str(raised.value)


def test_mailers_of_the_wrong_shape() -> None:
    with pytest.raises(InvalidMailer, match="MAILERS must be a dict"):
        configure(MAILERS=["default"])
    with pytest.raises(InvalidMailer, match="alias"):
        configure(MAILERS={"": "dummy:"})


def test_fail_silently_applies_to_the_mailer_used() -> None:
    configure(MAILERS={"down": f"smtp://127.0.0.1:{closed_port()}?timeout=5"})
    assert send_mail("s", "b", "f@example.com", ["a@example.com"], using="down",
                     fail_silently=True) == 0  # fmt: skip
    with pytest.raises(OSError):
        send_mail("s", "b", "f@example.com", ["a@example.com"], using="down")
    with pytest.raises(TypeError, match="OPTIONS"):
        send_mail("s", "b", None, ["a@example.com"], auth_user="u", using="down")


# --- custom backends ---


class Forwarding(BaseEmailBackend):
    def __init__(self, *, region: str = "eu", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.region = region

    def send_messages(self, email_messages: Any) -> int:
        return len(list(email_messages))


class Legacy(BaseEmailBackend):
    """Written before mailers: a fixed signature without alias."""

    def __init__(self, fail_silently: bool = False) -> None:
        super().__init__(fail_silently)

    def send_messages(self, email_messages: Any) -> int:
        return len(list(email_messages))


def test_custom_backends_get_their_options_and_alias() -> None:
    configure(
        MAILERS={
            "fwd": {"BACKEND": Forwarding, "OPTIONS": {"region": "us"}},
            "bad": {"BACKEND": Forwarding, "OPTIONS": {"zone": "us"}},
            "legacy": {"BACKEND": f"{__name__}.Legacy"},
        }
    )
    backend = mailers["fwd"]
    assert isinstance(backend, Forwarding)
    assert (backend.alias, backend.region) == ("fwd", "us")
    with pytest.raises(InvalidMailer, match=r"^MAILERS\['bad'\]: Unknown options 'zone'\."):
        mailers["bad"]
    # The base class refuses it too, for a backend made directly for a mailer.
    with pytest.raises(InvalidMailer, match=r"^MAILERS\['y'\]: Unknown options 'zone'\."):
        Forwarding(alias="y", zone="us")
    assert Forwarding(zone="us").alias is None  # made directly: ignored, as before
    legacy = mailers["legacy"]
    assert isinstance(legacy, Legacy) and legacy.alias == "legacy"
    assert send_mail("s", "b", "f@example.com", ["a@example.com"], using="legacy") == 1


def test_mailers_repr_and_check_never_show_a_password() -> None:
    configure(MAILERS={"a": "smtp://u:hunter2@mail.example.com", "b": "dummy:"})
    assert repr(mailers) == "<Mailers ['a', 'b']>"
    configs = mailers.check()
    assert [c.alias for c in configs] == ["a", "b"]
    assert "hunter2" not in repr(configs)
    assert os.environ.get("MAILERS") is None


# --- the README's example runs as written ---


def test_the_readme_example(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import re
    from types import SimpleNamespace

    text = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    start = text.index("\n## Mailers\n")
    example = re.findall(r"```python\n(.*?)```", text[start : text.index("\n## ", start + 1)], re.S)
    monkeypatch.setenv("SMTP_PASSWORD", "secret")
    monkeypatch.setenv("APP_ENV", "dev")
    names = {
        "body": "Follow the link.",
        "news": "News.",
        "user": SimpleNamespace(email="ann@example.com"),
        "subscriber": "bob@example.com",
    }
    exec(example[0], names)  # development: both go to the console
    out = capsys.readouterr().out
    assert "Subject: Reset your password" in out and "Subject: Our news" in out
    assert names["PRODUCTION"]["newsletters"]["OPTIONS"]["relay"] == "bulk"
    configure(MAILERS=names["PRODUCTION"])
    assert [type(mailers[a]).__module__ for a in ("default", "bulk")] == [
        "mailwright.backends.smtp"
    ] * 2
    assert mailers.default.password == "secret"


def test_the_pytest_plugin_sends_every_mailer_to_the_outbox(
    pytester: pytest.Pytester, start_server: ServerFactory
) -> None:
    server = start_server()
    pytester.makeini(
        "[pytest]\nasyncio_default_fixture_loop_scope = function\n"
        "addopts = -p no:cacheprovider -p no:hypothesispytest\n"
    )
    settings = {
        "default": f"smtp://{server.host}:{server.port}",
        "newsletters": {"BACKEND": "file", "OPTIONS": {"file_path": "/nonexistent/dir"}},
    }
    pytester.makepyfile(
        test_inner=f"""
        import asyncio
        import pytest
        import mailwright

        mailwright.configure(MAILERS={settings!r})

        def test_every_mailer_lands_in_the_outbox(mailoutbox):
            mailwright.send_mail("a", "b", "f@example.com", ["x@example.com"])
            mailwright.send_mail("n", "b", "f@example.com", ["y@example.com"],
                                 using="newsletters")
            asyncio.run(mailwright.asend_mail("c", "b", "f@example.com", ["z@example.com"],
                                              using="newsletters"))
            assert [(m.subject, m.sent_using) for m in mailoutbox] == [
                ("a", "default"), ("n", "newsletters"), ("c", "newsletters")]

        def test_catcher(mail_catcher):
            mailwright.send_mail("d", "b", "f@example.com", ["x@example.com"],
                                 using="newsletters")
            assert mail_catcher.wait_for(1)[0]["Subject"] == "d"

        @pytest.mark.mailwright_real_backend
        def test_real(mailoutbox):
            mailwright.send_mail("real", "b", "f@example.com", ["x@example.com"])
            assert mailoutbox == []
        """
    )
    result = pytester.runpytest("-p", "mailwright")
    result.assert_outcomes(passed=3)
    (received,) = server.wait_for(1)
    assert received.parsed()["Subject"] == "real"


def test_a_message_sent_before_can_be_sent_through_a_mailer() -> None:
    configure(EMAIL_BACKEND="locmem", MAILERS={"default": "locmem:", "other": "dummy:"})
    sent = message()
    assert sent.send() == 1  # makes and keeps the default mailer's backend
    assert sent.send(using="other") == 1  # not a connection the caller gave
    assert run(sent.asend(using="other")) == 1
    assert [m.sent_using for m in mailwright.outbox] == ["default"]


def test_get_connection_makes_email_backend_whatever_mailers_says() -> None:
    configure(EMAIL_BACKEND="dummy", MAILERS={"default": "locmem:"})
    assert type(get_connection()).__module__ == "mailwright.backends.dummy"
    assert get_connection().alias is None
    assert type(mailers.default).__module__ == "mailwright.backends.locmem"


def test_mailwright_mailers_is_the_object_whatever_was_imported_first() -> None:
    # A submodule named mailwright.mailers would replace the lazily exported object.
    code = (
        "import mailwright.api, mailwright.testing, mailwright\n"
        "from mailwright import mailers\n"
        "assert list(mailers) == ['default'] and list(mailwright.mailers) == ['default']\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_without_mailers_a_bad_setting_is_reported_as_a_setting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # No MAILERS: the one mailer is EMAIL_*, and its errors speak of EMAIL_* alone.
    monkeypatch.setenv("EMAIL_PORT", "abc")
    with pytest.raises(ImproperlyConfigured) as raised:
        mailwright.mailers.default  # noqa: B018
    assert not isinstance(raised.value, InvalidMailer)
    assert "EMAIL_PORT" in str(raised.value)
    assert "MAILERS" not in str(raised.value)


def test_a_mailer_config_never_shows_its_secrets() -> None:
    from mailwright.backends.mailers import MailerConfig

    shown = repr(
        MailerConfig(
            "out",
            "smtp",
            {
                "password": "pw-123",
                "dkim_private_key": "-----BEGIN PRIVATE KEY-----\nMIIsecret",
                "oauth2_token": "ya29.token",
                "host": "mail.example.com",
            },
        )
    )
    for secret in ("pw-123", "MIIsecret", "ya29.token"):
        assert secret not in shown
    assert "mail.example.com" in shown


def test_a_relay_mailer_with_a_dkim_key_warns_that_the_key_is_unused(tmp_path: Path) -> None:
    from mailwright.backends.mailers import relay_backend
    from mailwright.message.dkim import generate_key

    pem, _ = generate_key(ed25519=True)
    mailers_setting = {
        "out": {
            "BACKEND": "smtp",
            "OPTIONS": {
                "dkim_domain": "example.org",
                "dkim_selector": "s1",
                "dkim_private_key": pem,
            },
        }
    }
    with (
        mailwright.override_settings(MAILERS=mailers_setting),
        pytest.warns(UserWarning, match="dkim"),
    ):
        relay_backend("out", None)
