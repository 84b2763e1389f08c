"""One way to send for each SMTP driver, so a behaviour test runs once per driver.

``SyncSender`` goes through the blocking API (``send_mail``, ``send_messages``,
``open``/``close``, ``send_bulk``); ``AsyncSender`` through the asyncio one
(``asend_mail``, ``asend_messages``, ``aopen``/``aclose``, ``asend_bulk``) on one event
loop kept for the whole test, so a connection opened in one call is used in the next.
Tests take the ``sender`` fixture (conftest.py), which is parametrised over both.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
from collections.abc import Coroutine, Iterable, Iterator, Sequence
from typing import Any

import mailwright
from mailwright import EmailMessage, get_connection
from mailwright.backends.base import BaseEmailBackend
from mailwright.bulk import BulkResult


class Sender:
    name: str

    def __repr__(self) -> str:
        return f"<{self.name} sender>"

    def send_mail(self, *args: Any, **kwargs: Any) -> int:
        raise NotImplementedError

    def send_mass_mail(self, datatuple: Sequence[Any], **kwargs: Any) -> int:
        raise NotImplementedError

    def send_messages(
        self,
        messages: Iterable[EmailMessage],
        connection: BaseEmailBackend | None = None,
        **kwargs: Any,
    ) -> int:
        """``messages`` through ``connection`` (or a new ``get_connection(**kwargs)``)."""
        raise NotImplementedError

    def open(self, connection: BaseEmailBackend) -> bool | None:
        raise NotImplementedError

    def close(self, connection: BaseEmailBackend) -> None:
        raise NotImplementedError

    def session(self, connection: BaseEmailBackend) -> contextlib.AbstractContextManager[Any]:
        """``with connection:`` or ``async with connection:``."""
        raise NotImplementedError

    def send_bulk(self, messages: Iterable[EmailMessage], **kwargs: Any) -> BulkResult:
        raise NotImplementedError

    def is_open(self, connection: Any) -> bool:
        """Does the backend hold an open connection of this driver?"""
        raise NotImplementedError


class SyncSender(Sender):
    name = "sync"

    def send_mail(self, *args: Any, **kwargs: Any) -> int:
        return mailwright.send_mail(*args, **kwargs)

    def send_mass_mail(self, datatuple: Sequence[Any], **kwargs: Any) -> int:
        return mailwright.send_mass_mail(datatuple, **kwargs)

    def send_messages(
        self,
        messages: Iterable[EmailMessage],
        connection: BaseEmailBackend | None = None,
        **kwargs: Any,
    ) -> int:
        return (connection or get_connection(**kwargs)).send_messages(messages)

    def open(self, connection: BaseEmailBackend) -> bool | None:
        return connection.open()

    def close(self, connection: BaseEmailBackend) -> None:
        connection.close()

    def session(self, connection: BaseEmailBackend) -> contextlib.AbstractContextManager[Any]:
        return connection

    def send_bulk(self, messages: Iterable[EmailMessage], **kwargs: Any) -> BulkResult:
        return mailwright.send_bulk(messages, **kwargs)

    def is_open(self, connection: Any) -> bool:
        return connection.connection is not None


class AsyncSender(Sender):
    name = "async"

    def __init__(self, runner: asyncio.Runner) -> None:
        self.runner = runner

    def run(self, coroutine: Coroutine[Any, Any, Any]) -> Any:
        # In a copy of the test's context, as asyncio.run would (override_settings).
        return self.runner.run(coroutine, context=contextvars.copy_context())

    def send_mail(self, *args: Any, **kwargs: Any) -> int:
        return self.run(mailwright.asend_mail(*args, **kwargs))  # type: ignore[no-any-return]

    def send_mass_mail(self, datatuple: Sequence[Any], **kwargs: Any) -> int:
        return self.run(mailwright.asend_mass_mail(datatuple, **kwargs))  # type: ignore[no-any-return]

    def send_messages(
        self,
        messages: Iterable[EmailMessage],
        connection: BaseEmailBackend | None = None,
        **kwargs: Any,
    ) -> int:
        backend = connection or get_connection(**kwargs)
        return self.run(backend.asend_messages(messages))  # type: ignore[no-any-return]

    def open(self, connection: BaseEmailBackend) -> bool | None:
        return self.run(connection.aopen())  # type: ignore[no-any-return]

    def close(self, connection: BaseEmailBackend) -> None:
        self.run(connection.aclose())

    @contextlib.contextmanager
    def session(self, connection: BaseEmailBackend) -> Iterator[Any]:
        entered = self.run(connection.__aenter__())
        try:
            yield entered
        except BaseException as exc:
            if not self.run(connection.__aexit__(type(exc), exc, exc.__traceback__)):
                raise
        else:
            self.run(connection.__aexit__(None, None, None))

    def send_bulk(self, messages: Iterable[EmailMessage], **kwargs: Any) -> BulkResult:
        return self.run(mailwright.asend_bulk(messages, **kwargs))  # type: ignore[no-any-return]

    def is_open(self, connection: Any) -> bool:
        return connection.aconnection is not None


@contextlib.contextmanager
def make(name: str) -> Iterator[Sender]:
    if name == "sync":
        yield SyncSender()
        return
    with asyncio.Runner() as runner:
        yield AsyncSender(runner)


DRIVERS = ("sync", "async")
