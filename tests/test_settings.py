from __future__ import annotations

import asyncio
import unittest

import pytest

import mailwright
from mailwright import ImproperlyConfigured, configure, override_settings, settings
from mailwright.conf import parse_email_url

DEFAULTS = {
    "EMAIL_BACKEND": "mailwright.backends.smtp.EmailBackend",
    "EMAIL_HOST": "localhost",
    "EMAIL_PORT": 25,
    "EMAIL_HOST_USER": "",
    "EMAIL_HOST_PASSWORD": "",
    "EMAIL_USE_TLS": False,
    "EMAIL_USE_SSL": False,
    "EMAIL_USE_LOCALTIME": False,
    "EMAIL_TIMEOUT": 60,
    "EMAIL_SSL_KEYFILE": None,
    "EMAIL_SSL_CERTFILE": None,
    "EMAIL_SSL_CAFILE": None,
    "EMAIL_FILE_PATH": None,
    "EMAIL_SUBJECT_PREFIX": "[mailwright] ",
    "DEFAULT_FROM_EMAIL": "webmaster@localhost",
    "SERVER_EMAIL": "root@localhost",
    "ADMINS": [],
    "MANAGERS": [],
    "DEFAULT_CHARSET": "utf-8",
}


@pytest.mark.parametrize(("name", "default"), DEFAULTS.items())
def test_defaults(name: str, default: object) -> None:
    assert getattr(settings, name) == default


def test_configure_sets_values_and_unknown_name_is_named() -> None:
    configure(EMAIL_HOST="smtp.example.com", EMAIL_PORT=587)
    assert (settings.EMAIL_HOST, settings.EMAIL_PORT) == ("smtp.example.com", 587)
    with pytest.raises(ImproperlyConfigured, match="EMAIL_HOTS"):
        configure(EMAIL_HOTS="typo")
    assert issubclass(ImproperlyConfigured, Exception)


def test_unknown_attribute_is_attribute_error() -> None:
    with pytest.raises(AttributeError):
        settings.NOT_A_SETTING  # noqa: B018


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("EMAIL_PORT", "not-a-port"),
        ("EMAIL_PORT", 70000),
        ("EMAIL_USE_TLS", "maybe"),
        ("EMAIL_TIMEOUT", "soon"),
        ("EMAIL_TIMEOUT", -1),
        ("DEFAULT_CHARSET", "no-such-charset"),
        ("ADMINS", [("only-a-name",)]),
        ("EMAIL_HOST", 42),
    ],
)
def test_bad_configured_value_names_the_setting(name: str, value: object) -> None:
    with pytest.raises(ImproperlyConfigured, match=name):
        configure(**{name: value})


def test_password_never_echoed_in_errors() -> None:
    with pytest.raises(ImproperlyConfigured) as info:
        configure(EMAIL_HOST_PASSWORD=12345678)
    assert "12345678" not in str(info.value)


def test_assignment_is_configure() -> None:
    settings.EMAIL_HOST = "assigned.example.com"
    assert settings.EMAIL_HOST == "assigned.example.com"
    with pytest.raises(ImproperlyConfigured):
        settings.EMAIL_PROT = 1


# --- environment ---


def test_environment_values_are_parsed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EMAIL_PORT", "2525")
    monkeypatch.setenv("EMAIL_USE_TLS", "yes")
    monkeypatch.setenv("EMAIL_USE_SSL", "off")
    monkeypatch.setenv("EMAIL_TIMEOUT", "2.5")
    monkeypatch.setenv("ADMINS", "Ann Admin <ann@example.com>, bob@example.com")
    monkeypatch.setenv("MANAGERS", "")
    assert settings.EMAIL_PORT == 2525
    assert settings.EMAIL_USE_TLS is True
    assert settings.EMAIL_USE_SSL is False
    assert settings.EMAIL_TIMEOUT == 2.5
    assert settings.ADMINS == [("Ann Admin", "ann@example.com"), "bob@example.com"]
    assert settings.MANAGERS == []


@pytest.mark.parametrize("text", ["1", "true", "YES", "on"])
def test_environment_true_values(monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    monkeypatch.setenv("EMAIL_USE_SSL", text)
    assert settings.EMAIL_USE_SSL is True


@pytest.mark.parametrize("text", ["0", "false", "No", "off"])
def test_environment_false_values(monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    monkeypatch.setenv("EMAIL_USE_SSL", text)
    assert settings.EMAIL_USE_SSL is False


def test_bad_environment_value_raises_when_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EMAIL_PORT", "twenty-five")
    with pytest.raises(ImproperlyConfigured, match="EMAIL_PORT"):
        settings.EMAIL_PORT  # noqa: B018
    with pytest.raises(ImproperlyConfigured, match="EMAIL_PORT"):
        mailwright.get_connection()


def test_environment_is_read_at_every_access(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EMAIL_HOST", "first.example.com")
    assert settings.EMAIL_HOST == "first.example.com"
    monkeypatch.setenv("EMAIL_HOST", "second.example.com")
    assert settings.EMAIL_HOST == "second.example.com"


# --- EMAIL_URL ---


def test_email_url_fills_several_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EMAIL_URL", "smtp://user%40x:p%3Ass@mail.example.com:587?tls=1&timeout=7")
    assert settings.EMAIL_BACKEND == "mailwright.backends.smtp.EmailBackend"
    assert settings.EMAIL_HOST == "mail.example.com"
    assert settings.EMAIL_PORT == 587
    assert settings.EMAIL_HOST_USER == "user@x"
    assert settings.EMAIL_HOST_PASSWORD == "p:ss"
    assert settings.EMAIL_USE_TLS is True
    assert settings.EMAIL_TIMEOUT == 7
    assert settings.EMAIL_URL.startswith("smtp://")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("smtps://mail.example.com", {"EMAIL_USE_SSL": True, "EMAIL_PORT": 465}),
        ("smtp://mail.example.com?tls=1", {"EMAIL_USE_TLS": True, "EMAIL_PORT": 587}),
        ("smtp://[::1]:2525", {"EMAIL_HOST": "::1", "EMAIL_PORT": 2525}),
        ("console:", {"EMAIL_BACKEND": "mailwright.backends.console.EmailBackend"}),
        ("locmem:", {"EMAIL_BACKEND": "mailwright.backends.locmem.EmailBackend"}),
        ("dummy:", {"EMAIL_BACKEND": "mailwright.backends.dummy.EmailBackend"}),
        (
            "file:///var/mail-out",
            {
                "EMAIL_BACKEND": "mailwright.backends.filebased.EmailBackend",
                "EMAIL_FILE_PATH": "/var/mail-out",
            },
        ),
    ],
)
def test_email_url_forms(url: str, expected: dict[str, object]) -> None:
    parsed = parse_email_url(url)
    for name, value in expected.items():
        assert parsed[name] == value


@pytest.mark.parametrize(
    "url", ["gopher://x", "smtp://host:notaport", "smtp://host?colour=blue", "smtp://h?tls=perhaps"]
)
def test_bad_email_url(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    monkeypatch.setenv("EMAIL_URL", url)
    with pytest.raises(ImproperlyConfigured, match="EMAIL_URL"):
        settings.EMAIL_HOST  # noqa: B018


def test_email_url_errors_hide_the_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EMAIL_URL", "smtp://user:hunter2@host?colour=blue")
    with pytest.raises(ImproperlyConfigured) as info:
        settings.EMAIL_HOST  # noqa: B018
    assert "hunter2" not in str(info.value)
    monkeypatch.setenv("EMAIL_URL", "gopher://user:hunter2@host")
    with pytest.raises(ImproperlyConfigured) as info:
        settings.EMAIL_HOST  # noqa: B018
    assert "hunter2" not in str(info.value)


@pytest.mark.parametrize(
    "url",
    [
        "smtp://qzuser:Sup3r#S3cretPw@mail.example.com:587",
        "smtp://qzuser:Sup3r?S3cretPw@mail.example.com",
        "smtp://qzuser:Sup3r/S3cretPw@mail.example.com",
        "smtp://qzuser:Sup3r]S3cretPw@mail.example.com",
        "smtp://qzuser:1234#S3cretPw@mail.example.com",  # host 'qzuser' port 1234, if accepted
        "smtp://qzuser:S3cretPw@mail.example.com:9999#x",
        "qzuser:S3cretPw@mail.example.com:9999#x",
    ],
)
def test_ambiguous_email_url_is_refused_without_its_userinfo(url: str) -> None:
    with pytest.raises(ImproperlyConfigured) as info:
        parse_email_url(url)
    text = str(info.value)
    assert "S3cretPw" not in text and "qzuser" not in text
    assert text.startswith("EMAIL_URL: ")


def test_ambiguous_email_url_hints_at_percent_encoding() -> None:
    with pytest.raises(ImproperlyConfigured, match=r"percent-encode.*%23"):
        parse_email_url("smtp://qzuser:1234#x@mail.example.com")
    # Encoded, the same password is read as meant.
    parsed = parse_email_url("smtp://qzuser:1234%23x@mail.example.com")
    assert (parsed["EMAIL_HOST"], parsed["EMAIL_HOST_PASSWORD"]) == ("mail.example.com", "1234#x")


def test_precedence(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EMAIL_URL", "smtp://url-host:1000")
    assert (settings.EMAIL_HOST, settings.EMAIL_PORT) == ("url-host", 1000)
    # a separate variable wins over EMAIL_URL
    monkeypatch.setenv("EMAIL_HOST", "env-host")
    assert (settings.EMAIL_HOST, settings.EMAIL_PORT) == ("env-host", 1000)
    # configure() wins over the environment
    configure(EMAIL_HOST="configured-host")
    assert settings.EMAIL_HOST == "configured-host"
    assert settings.EMAIL_PORT == 1000
    # override_settings wins over configure()
    with override_settings(EMAIL_HOST="override-host"):
        assert settings.EMAIL_HOST == "override-host"
    assert settings.EMAIL_HOST == "configured-host"


def test_configured_email_url_wins_over_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EMAIL_HOST", "env-host")
    configure(EMAIL_URL="smtp://configured-url-host:2525")
    assert settings.EMAIL_HOST == "configured-url-host"
    configure(EMAIL_HOST="configured-host")
    assert settings.EMAIL_HOST == "configured-host"


# --- override_settings ---


def test_override_settings_context_manager_restores() -> None:
    configure(EMAIL_PORT=2525)
    with override_settings(EMAIL_PORT=26, EMAIL_USE_TLS=True):
        assert settings.EMAIL_PORT == 26
        assert settings.EMAIL_USE_TLS is True
        with override_settings(EMAIL_PORT=27):
            assert settings.EMAIL_PORT == 27
        assert settings.EMAIL_PORT == 26
    assert settings.EMAIL_PORT == 2525
    assert settings.EMAIL_USE_TLS is False


def test_override_settings_restores_after_exception() -> None:
    with pytest.raises(RuntimeError), override_settings(EMAIL_HOST="temporary"):
        raise RuntimeError
    assert settings.EMAIL_HOST == "localhost"


def test_override_settings_rejects_unknown_name_at_once() -> None:
    with pytest.raises(ImproperlyConfigured, match="EMAIL_PROT"):
        override_settings(EMAIL_PROT=1)


def test_override_settings_decorates_functions() -> None:
    @override_settings(EMAIL_HOST="decorated")
    def read() -> str:
        return settings.EMAIL_HOST

    assert read() == "decorated"
    assert settings.EMAIL_HOST == "localhost"


def test_override_settings_decorates_async_functions() -> None:
    @override_settings(EMAIL_HOST="async-decorated")
    async def read() -> str:
        await asyncio.sleep(0)
        return settings.EMAIL_HOST

    assert asyncio.iscoroutinefunction(read)
    assert asyncio.run(read()) == "async-decorated"
    assert settings.EMAIL_HOST == "localhost"


@override_settings(EMAIL_HOST="class-decorated")
class TestDecoratedPlainClass:
    def test_sees_override(self) -> None:
        assert settings.EMAIL_HOST == "class-decorated"


@override_settings(EMAIL_SUBJECT_PREFIX="[unit] ")
class DecoratedTestCase(unittest.TestCase):
    def setUp(self) -> None:
        self.prefix_in_setup = settings.EMAIL_SUBJECT_PREFIX

    def test_sees_override(self) -> None:
        self.assertEqual(self.prefix_in_setup, "[unit] ")
        self.assertEqual(settings.EMAIL_SUBJECT_PREFIX, "[unit] ")


def test_unittest_class_override_ends_with_the_class() -> None:
    suite = unittest.defaultTestLoader.loadTestsFromTestCase(DecoratedTestCase)
    result = unittest.TestResult()
    suite.run(result)
    assert result.wasSuccessful(), result.failures + result.errors
    assert settings.EMAIL_SUBJECT_PREFIX == "[mailwright] "


def test_tls_and_ssl_together_is_a_configuration_error() -> None:
    with (
        override_settings(EMAIL_USE_TLS=True, EMAIL_USE_SSL=True),
        pytest.raises(ImproperlyConfigured, match="EMAIL_USE_TLS"),
    ):
        mailwright.get_connection()
    with pytest.raises(ImproperlyConfigured, match="EMAIL_USE_SSL"):
        mailwright.get_connection("smtp", use_tls=True, use_ssl=True)


# --- overrides are per context; sources ---


def test_concurrent_tasks_each_see_their_own_override() -> None:
    async def read_under(host: str, entered: asyncio.Event, other: asyncio.Event) -> str:
        with override_settings(EMAIL_HOST=host):
            entered.set()
            await other.wait()  # both overrides are active now
            return str(settings.EMAIL_HOST)

    async def main() -> list[str]:
        a, b = asyncio.Event(), asyncio.Event()
        return list(await asyncio.gather(read_under("a.example", a, b), read_under("b", b, a)))

    assert asyncio.run(main()) == ["a.example", "b"]
    assert settings.EMAIL_HOST == "localhost"


def test_threads_each_see_their_own_override() -> None:
    import threading

    barrier = threading.Barrier(2)
    seen: dict[str, str] = {}

    def run(host: str) -> None:
        with override_settings(EMAIL_HOST=host):
            barrier.wait()
            seen[host] = settings.EMAIL_HOST
            barrier.wait()

    threads = [threading.Thread(target=run, args=(host,)) for host in ("one", "two")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert seen == {"one": "one", "two": "two"}


def test_to_thread_carries_the_override() -> None:
    async def main() -> str:
        with override_settings(EMAIL_HOST="carried"):
            return await asyncio.to_thread(lambda: str(settings.EMAIL_HOST))

    assert asyncio.run(main()) == "carried"


def test_a_source_sits_between_configure_and_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from mailwright.conf import MISSING

    values = {"EMAIL_HOST": "from-source", "EMAIL_PORT": "2525"}

    def source(name: str) -> object:
        return values.get(name, MISSING)

    monkeypatch.setenv("EMAIL_HOST", "from-env")
    monkeypatch.setenv("EMAIL_USE_TLS", "1")
    settings.add_source(source)
    try:
        assert settings.EMAIL_HOST == "from-source"
        assert settings.EMAIL_PORT == 2525  # parsed like any other value
        assert settings.EMAIL_USE_TLS is True  # not in the source: the environment
        configure(EMAIL_HOST="configured")
        assert settings.EMAIL_HOST == "configured"
        values["EMAIL_PORT"] = "not a port"
        with pytest.raises(ImproperlyConfigured, match="EMAIL_PORT"):
            _ = settings.EMAIL_PORT
    finally:
        settings.remove_source(source)
    assert settings.EMAIL_PORT == 25


# --- names a user may get wrong ---


def test_unknown_setting_suggests_the_close_one() -> None:
    with pytest.raises(ImproperlyConfigured) as info:
        configure(EMAIL_HOTS="typo")
    assert str(info.value) == "unknown setting 'EMAIL_HOTS'; did you mean EMAIL_HOST?"
    with pytest.raises(ImproperlyConfigured) as info:
        configure(NOTHING_LIKE_IT=1)
    assert len(str(info.value)) < 120  # not the whole list
    with pytest.raises(AttributeError, match="did you mean EMAIL_PORT"):
        settings.EMAIL_PROT  # noqa: B018


def test_misspelt_environment_variable_warns_once(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib
    import warnings

    settings_module = importlib.import_module("mailwright.conf.settings")

    monkeypatch.setenv("EMAIL_HOTS", "smtp.example.com")
    monkeypatch.setenv("EMAIL_TEMPLATES_OF_MY_APP", "x")  # not close to any: no warning
    monkeypatch.setattr(settings_module, "_environment_checked", False)
    with pytest.warns(settings_module.UnknownSettingWarning) as caught:
        assert settings.EMAIL_HOST == "localhost"
    assert [str(w.message) for w in caught] == [
        "environment variable EMAIL_HOTS is not a mailwright setting and is ignored; "
        "did you mean EMAIL_HOST?"
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert settings.EMAIL_HOST == "localhost"  # once per process, not per read


@pytest.mark.parametrize("name", ["consol", "smpt", "locmen"])
def test_unknown_short_backend_name_lists_the_short_names(name: str) -> None:
    with pytest.raises(ImproperlyConfigured) as info:
        mailwright.get_connection(name)
    text = str(info.value)
    assert "NoneType" not in text
    assert "did you mean" in text
    assert "smtp, console, file, locmem, dummy, queue, celery;" in text
