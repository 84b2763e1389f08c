"""The relay: what the outbox worker and the Celery task send envelopes with.

``load_relay`` turns a relay (a mailer alias, else the relay setting: a backend
name, dotted path or class) into a ``Relay``: one connection that takes ``(index, Envelope)``
items and gives back one ``Outcome`` each, as the SMTP engine does.

* The SMTP backend (not a subclass that changes how it sends) becomes an
  ``EngineRelay``: the engine driven directly with the backend's configuration,
  pipelined, as ``send_bulk`` drives it. The bytes go out exactly as given.
* Any other backend becomes a ``BackendRelay``: each envelope as a ``RawMessage``
  through ``send_messages``, its outcome read from the message's ``delivery``.

The workers decide what an outcome means with ``policy.sort_recipients``. The relay
may not be a backend that queues (the worker would queue each message again instead
of delivering it); the caller names which one it refuses, so this module imports no
backend and no worker.
"""

from __future__ import annotations

import logging
import smtplib
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from ..exceptions import ImproperlyConfigured

if TYPE_CHECKING:
    from ..backends.base import BaseEmailBackend
    from ..message import Envelope
    from ..smtp import Outcome, SMTPConfig, SMTPConnection

__all__ = ["BackendRelay", "EngineRelay", "Item", "Relay", "load_relay"]

log = logging.getLogger("mailwright.relay")

Item = tuple[int, "Envelope"]


class Relay:
    """One connection to send envelopes over. ``open()`` raises what kept it from
    connecting; ``send()`` never raises for a delivery problem."""

    #: How the relay is named in logs: host:port for SMTP (never a credential).
    label: str = ""

    @property
    def is_open(self) -> bool:
        raise NotImplementedError

    def open(self) -> None:
        raise NotImplementedError

    def send(
        self,
        items: Sequence[Item],
        before_each: Callable[[], bool] | None = None,
        on_outcome: Callable[[Outcome], None] | None = None,
    ) -> list[Outcome]:
        """Send ``items``; return one outcome per item, in order. ``before_each()``
        runs before each item is taken (a rate limit waits there); when it returns
        False, no further item is sent. ``on_outcome`` hears each outcome as soon as
        it is known. Items never sent (the connection broke, or ``before_each`` said
        stop) come back as never tried (``NotAttemptedError``)."""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Relay:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _complete(items: Sequence[Item], outcomes: dict[int, Outcome], why: str) -> list[Outcome]:
    from ..smtp.transactions import not_attempted

    return [outcomes.get(index) or not_attempted(index, why) for index, _ in items]


class EngineRelay(Relay):
    """The SMTP engine, driven directly with one configuration."""

    def __init__(self, config: SMTPConfig) -> None:
        self.config = config
        self.label = config.address
        self.connection: SMTPConnection | None = None

    def __repr__(self) -> str:
        return f"<EngineRelay {self.config.address} {self.config.mode}>"

    @property
    def is_open(self) -> bool:
        return self.connection is not None and self.connection.is_open

    def open(self) -> None:
        from ..smtp import SMTPConnection

        if self.is_open:
            return
        self.abort()
        connection = SMTPConnection(self.config)
        connection.connect()
        self.connection = connection

    def send(
        self,
        items: Sequence[Item],
        before_each: Callable[[], bool] | None = None,
        on_outcome: Callable[[Outcome], None] | None = None,
    ) -> list[Outcome]:
        if not self.is_open:
            self.open()
        assert self.connection is not None
        outcomes: dict[int, Outcome] = {}
        why = "not sent: the worker is stopping"
        try:
            for outcome in self.connection.send(_fed(items, before_each) if before_each else items):
                outcomes[outcome.index] = outcome
                if on_outcome is not None:
                    on_outcome(outcome)
        except (smtplib.SMTPException, OSError) as exc:
            # Every item in flight got its outcome first; the rest was never tried.
            why = f"not sent: the connection failed ({exc})"
            self.abort()
        if self.connection is not None and not self.connection.is_open:
            why = "not sent: the server ended the session"
            self.abort()  # a 421 ended the session
        return _complete(items, outcomes, why)

    def abort(self) -> None:
        connection, self.connection = self.connection, None
        if connection is not None:
            connection.abort()

    def close(self) -> None:
        connection, self.connection = self.connection, None
        if connection is not None:
            try:
                connection.quit()
            except (smtplib.SMTPException, OSError) as exc:  # closed anyway
                log.debug("closing the relay connection: %s", exc)


def _fed(items: Sequence[Item], before_each: Callable[[], bool]) -> Iterator[Item]:
    for item in items:
        if not before_each():
            return
        yield item


class BackendRelay(Relay):
    """Any other backend: each envelope as a ``RawMessage`` through ``send_messages``
    (failing silently, so that one refusal does not end the batch; the message's
    ``delivery`` tells what happened)."""

    def __init__(self, backend: BaseEmailBackend) -> None:
        self.backend = backend
        self.label = repr(backend)
        self._open = False

    def __repr__(self) -> str:
        return f"<BackendRelay {self.backend!r}>"

    @property
    def is_open(self) -> bool:
        return self._open

    def open(self) -> None:
        """Open the backend, raising what kept it from connecting (the reason belongs
        in the outbox and the log, which a backend failing silently would not give)."""
        if self._open:
            return
        self.backend.fail_silently = False
        try:
            self.backend.open()
        finally:
            self.backend.fail_silently = True
        self._open = True

    def send(
        self,
        items: Sequence[Item],
        before_each: Callable[[], bool] | None = None,
        on_outcome: Callable[[Outcome], None] | None = None,
    ) -> list[Outcome]:
        from ..message import RawMessage
        from .generic import outcome_of
        from .policy import error_code, is_temporary

        if not self._open:
            self.open()
        outcomes: dict[int, Outcome] = {}
        why = "not sent: the worker is stopping"
        for index, envelope in items:
            if before_each is not None and not before_each():
                break
            message = RawMessage(envelope.data, envelope.sender, envelope.recipients)
            try:
                sent, error = self.backend.send_messages([message]), None
            except Exception as exc:  # the backend broke its fail_silently promise
                sent, error = 0, exc
            outcome = outcomes[index] = outcome_of(index, message, envelope.recipients, sent, error)
            if on_outcome is not None:
                on_outcome(outcome)
            lost = outcome.error
            if lost is not None and error_code(lost) is None and is_temporary(lost):
                # The connection is gone: the rest waits for a retry, not for one
                # timeout each.
                why = f"not sent: the connection failed ({lost})"
                self.close()
                break
        return _complete(items, outcomes, why)

    def close(self) -> None:
        self._open = False
        try:
            self.backend.close()
        except Exception as exc:  # a QUIT refused or a broken connection: closed anyway
            log.debug("closing the relay backend: %s", exc)


def load_relay(
    alias: str | None,
    fallback: str | type[BaseEmailBackend] | BaseEmailBackend,
    *,
    setting: str,
    refuse: str,
    refusal: str,
) -> Relay:
    """The relay: the mailer ``alias`` (``MAILERS``) when one is named, else
    ``fallback`` (a backend name, dotted path or class: the worker's relay setting, or
    a backend instance). ``refuse`` is the module of the backend that may not be the
    relay (the caller's own queueing backend): it raises ``ImproperlyConfigured``
    saying "``setting`` (or the relay mailer) is ``refusal``"."""
    from ..backends.mailers import relay_backend
    from ..smtp import SMTPConfig

    if alias is None and not isinstance(fallback, str | type):
        backend = fallback
        backend.fail_silently = True
    else:
        backend = relay_backend(alias, fallback)
    if any(klass.__module__ == refuse for klass in type(backend).__mro__):
        where = setting if alias is None else f"the relay mailer {alias!r}"
        raise ImproperlyConfigured(f"{where} is {refusal}")
    config: Any = getattr(backend, "config", None)
    if isinstance(config, SMTPConfig) and getattr(backend, "engine_bulk", False):
        return EngineRelay(config)
    return BackendRelay(backend)
