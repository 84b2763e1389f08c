"""mailwright's pytest plugin (entry point ``pytest11``, name ``mailwright``).

* No test sends real mail by accident: from the start of the session to its end, every
  send that picks its backend from the settings or a mailer (``send_mail``,
  ``EmailMessage.send``, ``get_connection()``, ``using=``, ``mailers[alias]``...) uses
  an in-memory backend — in every thread, whatever
  ``configure()``, the environment, ``EMAIL_URL`` or Django's settings say — and each
  test starts with an empty outbox, as Django's test runner does.
* ``@pytest.mark.mailwright_real_backend`` lets a test (class, module) use the
  configured backend.
* ``mailoutbox``: the list of messages sent in this test (``mailwright.outbox``).
* ``mail_catcher``: a development catcher on a free port with mailwright sending to it
  through the real SMTP backend: ``.messages``, ``.wait_for(n)``, ``.clear()``.

``-p no:mailwright`` turns the plugin off. Under pytest-xdist each worker is its own
process, with its own outbox and catcher. Under Django's test setup (Django's runner,
pytest-django) ``mailoutbox`` is ``django.core.mail.outbox``, where Django's messages and
mailwright's both land (the setup picks Django's locmem backend, which mailwright
follows), the same list as pytest-django's fixture of that name.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager
from typing import Any

import pytest

from .backends.mailers import follow_settings
from .conf import settings
from .testing import LocmemDefault, MailCatcher, current_outbox, reset_outbox

__all__ = ["REAL_BACKEND_MARKER"]

REAL_BACKEND_MARKER = "mailwright_real_backend"

_default_key = pytest.StashKey[LocmemDefault]()
_following_key = pytest.StashKey[AbstractContextManager[None]]()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{REAL_BACKEND_MARKER}: send with the configured EMAIL_BACKEND instead of "
        "mailwright's in-memory one (the default of its pytest plugin)",
    )
    default = LocmemDefault()
    settings.push_process_override(default)
    config.stash[_default_key] = default
    # Every mailer (MAILERS) follows EMAIL_BACKEND while the in-memory one is in force.
    following = follow_settings(lambda: default.active)
    following.__enter__()
    config.stash[_following_key] = following
    # Registered last, so that it is the ``mailoutbox`` used when pytest-django (whose
    # fixture skips the test outside a Django project) is installed too; inside one,
    # both give django.core.mail.outbox.
    config.pluginmanager.register(_OutboxFixture(), "mailwright-mailoutbox")


def pytest_unconfigure(config: pytest.Config) -> None:
    following = config.stash.get(_following_key, None)
    if following is not None:
        following.__exit__(None, None, None)
        del config.stash[_following_key]
    default = config.stash.get(_default_key, None)
    if default is not None:
        settings.pop_process_override(default)
        del config.stash[_default_key]


def pytest_report_header(config: pytest.Config) -> str:
    return (
        "mailwright: tests send with the in-memory backend "
        f"(opt out: @pytest.mark.{REAL_BACKEND_MARKER})"
    )


@pytest.fixture(autouse=True)
def _mailwright_isolation(request: pytest.FixtureRequest) -> Iterator[None]:
    """An empty outbox for each test; the configured backend for opted-out tests."""
    reset_outbox()
    if request.node.get_closest_marker(REAL_BACKEND_MARKER) is None:
        yield
        return
    with request.config.stash[_default_key].suspended():
        yield


class _OutboxFixture:
    """``mailoutbox`` (see ``pytest_configure``)."""

    @pytest.fixture
    def mailoutbox(self, _mailwright_isolation: None) -> list[Any]:
        """The messages sent in this test with the in-memory backend, oldest first."""
        return current_outbox()


@pytest.fixture(scope="session")
def _mailwright_catcher() -> Iterator[MailCatcher]:
    catcher = MailCatcher().start()
    try:
        yield catcher
    finally:
        catcher.stop()


@pytest.fixture
def mail_catcher(
    _mailwright_catcher: MailCatcher, _mailwright_isolation: None
) -> Iterator[MailCatcher]:
    """A development mail catcher (started once per session, emptied for each test),
    with mailwright sending to it through the real SMTP backend during the test."""
    _mailwright_catcher.clear()
    with _mailwright_catcher.route():
        yield _mailwright_catcher
    _mailwright_catcher.clear()
