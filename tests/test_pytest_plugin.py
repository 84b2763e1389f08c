"""mailwright's pytest plugin, run the way a user's project runs it: each test here
writes a small test suite and runs pytest on it with ``pytester`` (the plugin loads
through its ``pytest11`` entry point, as in any project that installs mailwright).

mailwright's own suite runs with the plugin off (``-p no:mailwright`` in pyproject),
because its tests use real backends on purpose; the inner runs here have it on.
"""

from __future__ import annotations

import importlib.metadata
import json
from pathlib import Path

import pytest

from conftest import ServerFactory

pytest_plugins = ["pytester"]

# Inner runs: their own ini (not the outer project's), no cache, quiet pytest-asyncio,
# and no Hypothesis plugin (pytester drops the modules an in-process run imports, so
# it would import Hypothesis anew, a second, in every run).
INI = """
[pytest]
asyncio_default_fixture_loop_scope = function
addopts = -p no:cacheprovider -p no:hypothesispytest
"""


@pytest.fixture
def inner(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeini(INI)
    return pytester


def test_entry_point_loads_the_plugin_and_registers_the_marker(inner: pytest.Pytester) -> None:
    entries = importlib.metadata.entry_points(group="pytest11")
    (entry,) = [e for e in entries if e.name == "mailwright"]
    assert entry.value == "mailwright.pytest_plugin"
    inner.makepyfile(
        """
        import pytest

        @pytest.mark.mailwright_real_backend
        def test_marked():
            pass
        """
    )
    result = inner.runpytest("--strict-markers")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["mailwright: tests send with the in-memory backend*"])
    markers = inner.runpytest("--markers")
    markers.stdout.fnmatch_lines(["@pytest.mark.mailwright_real_backend: *"])
    # -p no:mailwright turns it off
    inner.makepyfile(test_plugin_off="def test_fixture(mailoutbox): pass")
    off = inner.runpytest("-p", "no:mailwright", "-p", "no:django", "test_plugin_off.py")
    off.assert_outcomes(errors=1)
    off.stdout.fnmatch_lines(["*fixture 'mailoutbox' not found*"])


def test_each_test_starts_with_an_empty_outbox(inner: pytest.Pytester) -> None:
    inner.makepyfile(
        """
        import mailwright

        def test_first(mailoutbox):
            mailwright.send_mail("one", "body", "a@example.com", ["b@example.com"])
            mailwright.send_mail("two", "body", "a@example.com", ["b@example.com"])
            assert [m.subject for m in mailoutbox] == ["one", "two"]
            assert mailwright.outbox is mailoutbox

        def test_second_sees_nothing_of_the_first():
            assert mailwright.outbox == []
            mailwright.send_mail("three", "body", "a@example.com", ["b@example.com"])
            assert len(mailwright.outbox) == 1

        def test_third(mailoutbox):
            assert mailoutbox == []
        """
    )
    inner.runpytest().assert_outcomes(passed=3)


def test_a_test_that_sends_through_smtp_without_opting_in_reaches_no_server(
    inner: pytest.Pytester, start_server: ServerFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """configure(), EMAIL_URL in the environment, threads and asyncio tasks: none of it
    reaches a listening server. The opted-in test (same settings) does reach it, so
    the server would have seen the others."""
    server = start_server()
    monkeypatch.setenv("PLUGIN_TEST_PORT", str(server.port))
    inner.makepyfile(
        """
        import asyncio
        import os
        import threading

        import pytest

        import mailwright

        PORT = int(os.environ["PLUGIN_TEST_PORT"])

        @pytest.fixture
        def smtp_configured(monkeypatch):
            monkeypatch.setenv("EMAIL_URL", f"smtp://127.0.0.1:{PORT}")
            mailwright.configure(
                EMAIL_BACKEND="mailwright.backends.smtp.EmailBackend",
                EMAIL_HOST="127.0.0.1",
                EMAIL_PORT=PORT,
            )
            yield
            mailwright.settings._reset()

        def test_not_opted_in(smtp_configured, mailoutbox):
            mailwright.send_mail("main thread", "b", "a@example.com", ["b@example.com"])
            worker = threading.Thread(
                target=mailwright.send_mail,
                args=("other thread", "b", "a@example.com", ["b@example.com"]),
            )
            worker.start()
            worker.join()
            asyncio.run(mailwright.asend_mail("task", "b", "a@example.com", ["b@example.com"]))
            with mailwright.get_connection() as connection:
                connection.send_messages(
                    [mailwright.EmailMessage("connection", "b", "a@example.com", ["c@example.com"])]
                )
            assert sorted(m.subject for m in mailoutbox) == [
                "connection", "main thread", "other thread", "task"
            ]

        @pytest.mark.mailwright_real_backend
        def test_opted_in(smtp_configured, mailoutbox):
            assert mailwright.send_mail("real", "b", "a@example.com", ["b@example.com"]) == 1
            assert mailoutbox == []
        """
    )
    result = inner.runpytest()
    result.assert_outcomes(passed=2)
    (received,) = server.messages
    assert received.parsed()["Subject"] == "real"
    assert server.connections == 1


def test_opting_out_by_class_and_module(
    inner: pytest.Pytester, start_server: ServerFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = start_server()
    monkeypatch.setenv("EMAIL_URL", f"smtp://127.0.0.1:{server.port}")
    inner.makepyfile(
        test_plugin_module="""
        import pytest
        import mailwright

        pytestmark = pytest.mark.mailwright_real_backend

        def test_module_marked():
            assert mailwright.send_mail("module", "b", "a@example.com", ["b@example.com"])
        """,
        test_plugin_class="""
        import pytest
        import mailwright

        @pytest.mark.mailwright_real_backend
        class TestReal:
            def test_class_marked(self):
                assert mailwright.send_mail("class", "b", "a@example.com", ["b@example.com"])

        def test_unmarked_neighbour(mailoutbox):
            mailwright.send_mail("memory", "b", "a@example.com", ["b@example.com"])
            assert len(mailoutbox) == 1
        """,
    )
    inner.runpytest().assert_outcomes(passed=3)
    assert sorted(str(r.parsed()["Subject"]) for r in server.messages) == ["class", "module"]


def test_mailoutbox_holds_what_each_api_sent(inner: pytest.Pytester) -> None:
    inner.makepyfile(
        """
        import mailwright

        def test_apis(mailoutbox):
            mailwright.configure(ADMINS=["ops@example.com"])
            try:
                mailwright.send_mail("plain", "b", "a@example.com", ["b@example.com"])
                mailwright.send_mass_mail(
                    [
                        ("mass 1", "b", None, ["c@example.com"]),
                        ("mass 2", "b", None, ["d@example.com"]),
                    ]
                )
                mailwright.mail_admins("admins", "b")
                message = mailwright.EmailMultiAlternatives(
                    "multi", "text", "a@example.com", ["e@example.com"], bcc=["f@example.com"]
                )
                message.attach_alternative("<p>html</p>", "text/html")
                message.send()
            finally:
                mailwright.settings._reset()
            assert [m.subject for m in mailoutbox] == [
                "plain", "mass 1", "mass 2", "[mailwright] admins", "multi"
            ]
            assert mailoutbox[3].to == ["ops@example.com"]
            assert mailoutbox[4].recipients() == ["e@example.com", "f@example.com"]
            assert mailoutbox[4].alternatives[0].content == "<p>html</p>"
        """
    )
    inner.runpytest().assert_outcomes(passed=1)


CATCHER_TESTS = """
import json
import os
import threading

import pytest

import mailwright

def record(name, catcher):
    with open(os.environ["PLUGIN_TEST_RECORD"], "a") as out:
        out.write(json.dumps([name, catcher.port, os.environ.get("PYTEST_XDIST_WORKER")]) + "\\n")

def test_sync(mail_catcher, mailoutbox):
    record("sync", mail_catcher)
    mailwright.EmailMessage(
        "Grüße", "Hallo\\n", "Zoë <zoe@example.com>", ["b@example.com"], ["hidden@example.com"]
    ).send()
    (message,) = mail_catcher.wait_for(1, timeout=10)
    assert message["Subject"] == "Grüße"
    assert message["From"].addresses[0].display_name == "Zoë"
    assert message.get_content() == "Hallo\\n"
    assert "Bcc" not in message
    assert mail_catcher.stored[0].rcpt_tos == ["b@example.com", "hidden@example.com"]
    assert mailoutbox == []  # it went to the catcher, through SMTP

def test_emptied_for_each_test_and_newest_last(mail_catcher):
    record("second", mail_catcher)
    assert mail_catcher.messages == []
    for n in range(3):
        mailwright.send_mail(f"n{n}", "b", "a@example.com", ["b@example.com"])
    assert [m["Subject"] for m in mail_catcher.messages] == ["n0", "n1", "n2"]
    mail_catcher.clear()
    assert mail_catcher.messages == [] and len(mail_catcher) == 0

def test_waits_for_a_sender_in_another_thread(mail_catcher):
    record("thread", mail_catcher)
    go = threading.Event()
    def later():
        go.wait(10)
        mailwright.send_mail("from a thread", "b", "a@example.com", ["b@example.com"])
    worker = threading.Thread(target=later)
    worker.start()
    go.set()
    assert [m["Subject"] for m in mail_catcher.wait_for(1, timeout=10)] == ["from a thread"]
    worker.join()

def test_wait_for_says_how_many_arrived(mail_catcher):
    record("timeout", mail_catcher)
    mailwright.send_mail("only one", "b", "a@example.com", ["b@example.com"])
    with pytest.raises(AssertionError, match=r"1 message arrived, not 2, within 0\\.2 s"):
        mail_catcher.wait_for(2, timeout=0.2)

def test_not_using_the_catcher_is_back_to_memory(mailoutbox):
    mailwright.send_mail("memory", "b", "a@example.com", ["b@example.com"])
    assert len(mailoutbox) == 1
"""

ASYNC_CATCHER_TESTS = """
import asyncio
import json
import os

import pytest

import mailwright

def record(name, catcher):
    with open(os.environ["PLUGIN_TEST_RECORD"], "a") as out:
        out.write(json.dumps([name, catcher.port, os.environ.get("PYTEST_XDIST_WORKER")]) + "\\n")

@pytest.mark.asyncio
async def test_pytest_asyncio(mail_catcher):
    record("asyncio", mail_catcher)
    # sent by a task while the test waits: the loop must keep running
    task = asyncio.create_task(
        mailwright.asend_mail("async", "b", "a@example.com", ["b@example.com"])
    )
    (message,) = await mail_catcher.wait_for_async(1, timeout=10)
    assert message["Subject"] == "async"
    assert await task == 1

@pytest.mark.anyio
async def test_anyio(mail_catcher, mailoutbox):
    record("anyio", mail_catcher)
    await mailwright.asend_mail("anyio", "b", "a@example.com", ["b@example.com"])
    assert [m["Subject"] for m in mail_catcher.messages] == ["anyio"]
    assert mailoutbox == []

@pytest.mark.asyncio
async def test_async_outbox(mailoutbox):
    await mailwright.asend_mail("in memory", "b", "a@example.com", ["b@example.com"])
    assert len(mailoutbox) == 1
"""


def records(path: Path) -> list[list[object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_mail_catcher_sync_and_async(
    inner: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    record = tmp_path / "record.jsonl"
    monkeypatch.setenv("PLUGIN_TEST_RECORD", str(record))
    inner.makeconftest(
        """
        import pytest

        @pytest.fixture
        def anyio_backend():
            return "asyncio"
        """
    )
    inner.makepyfile(test_plugin_catcher=CATCHER_TESTS, test_plugin_async=ASYNC_CATCHER_TESTS)
    inner.runpytest().assert_outcomes(passed=8)
    ports = {port for _, port, _ in records(record)}
    assert len(ports) == 1  # started once for the session


def test_xdist_workers_have_their_own_outbox_and_catcher(
    inner: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    record = tmp_path / "record.jsonl"
    monkeypatch.setenv("PLUGIN_TEST_RECORD", str(record))
    inner.makeconftest(
        """
        import pytest

        @pytest.fixture
        def anyio_backend():
            return "asyncio"
        """
    )
    isolation = "\n".join(
        f"""
def test_outbox_{n}(mailoutbox):
    import mailwright
    mailwright.send_mail("n{n}", "b", "a@example.com", ["b@example.com"])
    assert [m.subject for m in mailoutbox] == ["n{n}"]
"""
        for n in range(6)
    )
    inner.makepyfile(
        test_plugin_catcher=CATCHER_TESTS,
        test_plugin_async=ASYNC_CATCHER_TESTS,
        test_plugin_isolation=isolation,
    )
    # loadfile: each module to one worker, so both workers run catcher tests
    result = inner.runpytest("-n", "2", "--dist", "loadfile")
    result.assert_outcomes(passed=14)
    seen = records(record)
    workers = {worker for _, _, worker in seen}
    assert workers == {"gw0", "gw1"}
    by_worker = {worker: {port for _, port, w in seen if w == worker} for worker in workers}
    assert all(len(ports) == 1 for ports in by_worker.values())  # one catcher per worker
    assert by_worker["gw0"] != by_worker["gw1"]


def test_django_test_setup_keeps_its_outbox(inner: pytest.Pytester) -> None:
    """A Django project using mailwright.django, set up as Django's test runner (and
    pytest-django) do: Django's own mail and mailwright's both land in
    django.core.mail.outbox, which is what ``mailoutbox`` gives."""
    pytest.importorskip("django")
    inner.makeconftest(
        """
        import django
        from django.conf import settings
        from django.test.utils import setup_test_environment

        settings.configure(
            EMAIL_BACKEND="mailwright.django.EmailBackend", DEFAULT_FROM_EMAIL="site@example.com"
        )
        django.setup()
        setup_test_environment()
        """
    )
    inner.makepyfile(
        """
        from django.core import mail

        import mailwright

        def test_both_apis(mailoutbox):
            mail.send_mail("from django", "b", None, ["a@example.com"])
            mailwright.send_mail("from mailwright", "b", None, ["a@example.com"])
            assert mailoutbox is mail.outbox
            assert [m.subject for m in mail.outbox] == ["from django", "from mailwright"]
            assert mail.outbox[1].from_email == "site@example.com"

        def test_emptied(mailoutbox):
            assert mail.outbox == [] and mailoutbox == []
        """
    )
    # its own process: Django's settings are process-wide
    inner.runpytest_subprocess("-p", "no:django").assert_outcomes(passed=2)


PYTEST_DJANGO_TESTS = """
from django.core import mail

import mailwright

def test_both_apis(mailoutbox):
    mail.send_mail("from django", "b", None, ["a@example.com"])
    mailwright.send_mail("from mailwright", "b", None, ["a@example.com"])
    assert mailoutbox is mail.outbox
    assert [m.subject for m in mailoutbox] == ["from django", "from mailwright"]

def test_emptied(mailoutbox):
    assert mailoutbox == [] and mail.outbox == []
"""


def test_pytest_django_project(inner: pytest.Pytester) -> None:
    """pytest-django with a settings module that uses mailwright.django."""
    pytest.importorskip("pytest_django")
    inner.makeini(INI + "pythonpath = .\nDJANGO_SETTINGS_MODULE = dj_settings\n")
    inner.makepyfile(
        dj_settings="""
        SECRET_KEY = "test"
        EMAIL_BACKEND = "mailwright.django.EmailBackend"
        EMAIL_HOST = "smtp.invalid"
        DEFAULT_FROM_EMAIL = "site@example.com"
        """,
        test_plugin_django=PYTEST_DJANGO_TESTS,
    )
    result = inner.runpytest_subprocess()
    result.assert_outcomes(passed=2)


def test_pytest_django_installed_outside_a_django_project(inner: pytest.Pytester) -> None:
    """pytest-django's own ``mailoutbox`` would skip the test here; mailwright's is used."""
    pytest.importorskip("pytest_django")
    inner.makepyfile(
        test_plugin_no_django="""
        import mailwright

        def test_outbox(mailoutbox):
            mailwright.send_mail("s", "b", "a@example.com", ["b@example.com"])
            assert [m.subject for m in mailoutbox] == ["s"]
        """
    )
    result = inner.runpytest("-p", "django")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["plugins:*django*"])
