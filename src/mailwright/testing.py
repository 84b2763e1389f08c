"""Testing code that sends mail: no real mail by accident, and the messages to look at.

* ``capture_mail()``: a context manager; inside it every send that picks its backend
  from the settings or a mailer (``MAILERS``, ``using=``) uses the locmem backend, in
  every thread, and lands in the fresh list it yields.
* ``MailTestMixin``: the same around each test of a ``unittest.TestCase`` (``self.outbox``).
* ``MailCatcher``: the development catcher on a free port, with mailwright sending to
  it through the real SMTP backend (the ``mail_catcher`` fixture of the pytest plugin).
* ``LocmemDefault``: the settings layer the pytest plugin installs for a whole session.

The pytest plugin (``mailwright.pytest_plugin``) builds its fixtures on these.

Why process-wide: ``override_settings`` holds in one context (a ``ContextVar``), so a
thread that the code under test starts would not see it and would send for real. These
tools use ``settings.push_process_override`` instead, which every thread and task sees,
above ``configure()``, the environment and Django's settings (an ``override_settings``
in the code itself still wins: that is an explicit choice). Being process-wide, two
captures in different threads at once share one backend: use one at a time.
"""

from __future__ import annotations

import asyncio
import unittest
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from typing import TYPE_CHECKING, Any

from .backends.mailers import follow_settings
from .conf import settings
from .django.settings import django_setting

if TYPE_CHECKING:
    from .devserver import DevServer, StoredMessage

__all__ = [
    "LOCMEM_BACKEND",
    "LocmemDefault",
    "MailCatcher",
    "MailTestMixin",
    "capture_mail",
    "current_outbox",
]

LOCMEM_BACKEND = "mailwright.backends.locmem.EmailBackend"
DJANGO_LOCMEM_BACKEND = "mailwright.django.locmem.EmailBackend"
SMTP_BACKEND = "mailwright.backends.smtp.EmailBackend"

_parser = BytesParser(policy=policy.default)


def _django_locmem() -> bool:
    """True inside a Django project whose test setup chose Django's locmem backend
    (Django's test runner, pytest-django): mailwright's messages then belong in
    ``django.core.mail.outbox``, where the project's tests look for them."""
    return bool(django_setting("EMAIL_BACKEND") == DJANGO_LOCMEM_BACKEND)


def current_outbox() -> list[Any]:
    """The list the in-memory backend of the current test setup fills:
    ``django.core.mail.outbox`` under Django's test setup, else ``mailwright.outbox``."""
    if _django_locmem():
        from django.core import mail  # type: ignore[import-untyped]

        if not hasattr(mail, "outbox"):
            mail.outbox = []
        django_outbox: list[Any] = mail.outbox
        return django_outbox
    import mailwright

    outbox: list[Any] = mailwright.outbox
    return outbox


def reset_outbox() -> list[Any]:
    """Give the current in-memory backend an empty outbox and return it (Django's is
    emptied in place, as pytest-django does)."""
    if _django_locmem():
        from django.core import mail

        if isinstance(getattr(mail, "outbox", None), list):
            mail.outbox.clear()
        else:
            mail.outbox = []
    else:
        import mailwright

        mailwright.outbox = []
    return current_outbox()


class LocmemDefault(Mapping[str, Any]):
    """A settings layer that makes EMAIL_BACKEND an in-memory backend while ``active``:
    mailwright's locmem (``mailwright.outbox``), or, under Django's test setup, the one
    that fills ``django.core.mail.outbox``. It sets nothing else."""

    def __init__(self) -> None:
        self.active = True

    def _backend(self) -> str:
        return DJANGO_LOCMEM_BACKEND if _django_locmem() else LOCMEM_BACKEND

    def __contains__(self, name: object) -> bool:
        return self.active and name == "EMAIL_BACKEND"

    def __getitem__(self, name: str) -> Any:
        if name in self:
            return self._backend()
        raise KeyError(name)

    def __iter__(self) -> Iterator[str]:
        return iter(("EMAIL_BACKEND",) if self.active else ())

    def __len__(self) -> int:
        return 1 if self.active else 0

    @contextmanager
    def suspended(self) -> Iterator[None]:
        """Let the configured backend through for the block."""
        self.active = False
        try:
            yield
        finally:
            self.active = True


@contextmanager
def capture_mail() -> Iterator[list[Any]]:
    """Send with the locmem backend, in every thread, into a new list, which is yielded.

    ::

        with capture_mail() as outbox:
            send_welcome_mail(user)
        assert outbox[0].subject == "Welcome"

    ``mailwright.outbox`` is that list inside the block, and what it was before after.
    """
    import mailwright

    previous = mailwright.outbox
    outbox: list[Any] = []
    layer = settings.push_process_override({"EMAIL_BACKEND": LOCMEM_BACKEND})
    mailwright.outbox = outbox
    try:
        with follow_settings():  # every mailer, too
            yield outbox
    finally:
        settings.pop_process_override(layer)
        if mailwright.outbox is outbox:
            mailwright.outbox = previous


if TYPE_CHECKING:
    _TestCaseBase = unittest.TestCase
else:
    _TestCaseBase = object


class MailTestMixin(_TestCaseBase):
    """Mix into a ``unittest.TestCase`` (or ``IsolatedAsyncioTestCase``): each test, its
    ``setUp``, ``tearDown`` and cleanups run inside ``capture_mail()``, and
    ``self.outbox`` is the list the messages they send land in (empty at the start).

    ::

        class SignupTests(MailTestMixin, unittest.TestCase):
            def test_welcome(self):
                signup("ann@example.com")
                self.assertEqual(self.outbox[0].to, ["ann@example.com"])
    """

    outbox: list[Any]

    def run(self, result: Any = None) -> Any:
        with capture_mail() as outbox:
            self.outbox = outbox
            return super().run(result)


class MailCatcher:
    """The development catcher (``mailwright.devserver.DevServer``, SMTP only, quiet) on
    a free port of ``host``, and the settings that send to it through the real SMTP
    backend. ``start()``/``stop()``; ``route()`` points mailwright at it (process-wide);
    as a context manager it does both::

        with MailCatcher() as catcher:
            send_welcome_mail(user)
            (message,) = catcher.wait_for(1)
            assert message["Subject"] == "Welcome"
    """

    def __init__(self, host: str = "127.0.0.1", *, timeout: float = 10.0) -> None:
        from .devserver import DevServer

        self.server: DevServer = DevServer(host, 0, None, quiet=True, max_messages=None)
        self.timeout = timeout

    @property
    def host(self) -> str:
        return self.server.host

    @property
    def port(self) -> int:
        return self.server.smtp_port

    @property
    def settings(self) -> dict[str, Any]:
        """The settings that send to the catcher through the real SMTP backend."""
        return {
            "EMAIL_BACKEND": SMTP_BACKEND,
            "EMAIL_HOST": self.host,
            "EMAIL_PORT": self.port,
            "EMAIL_USE_TLS": False,
            "EMAIL_USE_SSL": False,
            "EMAIL_HOST_USER": "",
            "EMAIL_HOST_PASSWORD": "",
            "EMAIL_SSL_CAFILE": None,
            "EMAIL_SSL_CERTFILE": None,
            "EMAIL_SSL_KEYFILE": None,
            "EMAIL_TIMEOUT": self.timeout,
        }

    def start(self) -> MailCatcher:
        self.server.start_in_thread()
        return self

    def stop(self) -> None:
        self.server.stop_thread()

    @contextmanager
    def route(self) -> Iterator[MailCatcher]:
        """Send to the catcher (every thread) for the block."""
        layer = settings.push_process_override(settings.clean(self.settings))
        try:
            with follow_settings():  # every mailer sends to the catcher
                yield self
        finally:
            settings.pop_process_override(layer)

    def __enter__(self) -> MailCatcher:
        self.start()
        self._routing = self.route()
        self._routing.__enter__()
        return self

    def __exit__(self, *exc_info: object) -> None:
        try:
            self._routing.__exit__(None, None, None)
        finally:
            self.stop()

    # --- what arrived ---

    @property
    def stored(self) -> list[StoredMessage]:
        """What arrived, oldest first, with its envelope (``mail_from``, ``rcpt_tos``:
        Bcc recipients are only there) and ``raw`` bytes."""
        return self.server.store.messages()

    @property
    def messages(self) -> list[EmailMessage]:
        """What arrived, newest last, parsed by the stdlib parser (``policy.default``)
        with line breaks as a mailbox stores them (``\\n``: CRLF is only SMTP's), so a
        text part's ``get_content()`` is the text that was sent."""
        return [_parser.parsebytes(stored.raw.replace(b"\r\n", b"\n")) for stored in self.stored]

    def wait_for(self, count: int, timeout: float | None = None) -> list[EmailMessage]:
        """Block until at least ``count`` messages have arrived and return ``messages``;
        raise ``AssertionError`` saying how many did when ``timeout`` seconds (default
        ``self.timeout``) pass first. The server signals each arrival: no polling."""
        timeout = self.timeout if timeout is None else timeout
        if not self.server.wait_for_messages(count, timeout):
            arrived = len(self.server.store)
            raise AssertionError(
                f"mail_catcher: {arrived} message{'s' if arrived != 1 else ''} arrived, "
                f"not {count}, within {timeout:g} s"
            )
        return self.messages

    async def wait_for_async(self, count: int, timeout: float | None = None) -> list[EmailMessage]:
        """``wait_for`` for async tests: waits in a worker thread, so the event loop
        (and code under test sending from it) keeps running."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:  # trio, through anyio
            import anyio.to_thread

            return await anyio.to_thread.run_sync(self.wait_for, count, timeout)
        return await asyncio.to_thread(self.wait_for, count, timeout)

    def clear(self) -> None:
        """Forget every message caught so far."""
        self.server.store.clear()

    def __len__(self) -> int:
        return len(self.server.store)

    def __repr__(self) -> str:
        return f"<MailCatcher {self.host}:{self.port}, {len(self)} messages>"
