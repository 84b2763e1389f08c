"""Celery backend: hands messages to Celery workers, which deliver them.

``send_messages`` turns each message into its wire form (``mailwright.RawMessage``),
groups them ``EMAIL_CELERY_CHUNK`` to a task and enqueues the tasks on the current
Celery app (or ``app=``), on ``EMAIL_CELERY_QUEUE``. It returns the number of messages
enqueued; delivery happens in the workers (``mailwright.celery.tasks``), so
``message.delivery`` stays unset here.

Needs the ``celery`` extra: ``pip install 'mailwright[celery]'``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..conf import clean_setting, settings
from ..exceptions import ImproperlyConfigured
from ..message.dkim import signer as dkim_signer
from .base import BaseEmailBackend, relay_alias

try:
    from celery import Celery, current_app
    from kombu.exceptions import OperationalError
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImproperlyConfigured(
        f"the Celery backend needs Celery ({exc}): pip install 'mailwright[celery]'"
    ) from exc

if TYPE_CHECKING:
    from ..message import EmailMessage

__all__ = ["EmailBackend"]


class EmailBackend(BaseEmailBackend):
    """Enqueues messages for Celery workers. ``queue`` and ``chunk`` override
    EMAIL_CELERY_QUEUE and EMAIL_CELERY_CHUNK; ``app`` picks a Celery app other than
    the current one; ``relay`` names the mailer the workers deliver through
    (``MAILERS``; it travels in each payload as its alias, never its settings).

    Credentials are not accepted here: the workers log in to the SMTP server with
    their own settings, and payloads never carry a password.
    """

    def __init__(
        self,
        fail_silently: bool = False,
        *,
        queue: str | None = None,
        chunk: int | None = None,
        app: Celery | None = None,
        relay: str | None = None,
        username: str | None = None,
        password: str | None = None,
        dkim_domain: str | None = None,
        dkim_selector: str | None = None,
        dkim_private_key: str | os.PathLike[str] | None = None,
        dkim_headers: Sequence[str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(fail_silently=fail_silently, **kwargs)
        if username or password:
            raise ImproperlyConfigured(
                "the Celery backend does not carry SMTP credentials (they would travel in "
                "task payloads): set EMAIL_HOST_USER and EMAIL_HOST_PASSWORD on the workers"
            )
        self.queue: str | None = (
            settings.EMAIL_CELERY_QUEUE
            if queue is None
            else clean_setting("EMAIL_CELERY_QUEUE", queue)
        )
        self.chunk: int = (
            settings.EMAIL_CELERY_CHUNK
            if chunk is None
            else clean_setting("EMAIL_CELERY_CHUNK", chunk)
        )
        self.app = app
        #: The mailer the workers deliver through (in each payload); None: their
        #: EMAIL_CELERY_RELAY_BACKEND.
        self.relay = relay_alias(relay, self.alias)
        # Signed here, by the sender that holds the key: payloads carry signed bytes,
        # and the workers need no key.
        self.dkim = dkim_signer(dkim_domain, dkim_selector, dkim_private_key, dkim_headers)

    def __repr__(self) -> str:
        relay = f" relay={self.relay!r}" if self.relay else ""
        return f"<celery.EmailBackend queue={self.queue!r} chunk={self.chunk}{relay}>"

    def send_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        """Enqueue the messages, ``chunk`` to a task; return how many were enqueued.

        A message that cannot be composed (a bad header, say) raises after the
        messages before it were enqueued, as the SMTP backend does. A broker that
        cannot be reached raises, or with ``fail_silently`` ends the batch there.
        """
        from ..celery.payload import dump_chunk, wire_form
        from ..celery.tasks import TASK_NAME

        app = self.app or current_app
        task = app.tasks[TASK_NAME]
        # argsrepr: monitoring tools and logs show a count, not the messages (and
        # Celery is spared a repr of the whole payload for each task).
        options: dict[str, Any] = {"serializer": "json", "kwargsrepr": "{}"}
        if self.queue is not None:
            options["queue"] = self.queue
        enqueued = 0
        chunk: list[dict[str, Any]] = []
        try:
            with app.producer_or_acquire() as producer:

                def flush() -> None:
                    nonlocal enqueued
                    if chunk:
                        options["argsrepr"] = f"(<{len(chunk)} messages>,)"
                        payload = dump_chunk(chunk, relay=self.relay)
                        task.apply_async((payload,), producer=producer, **options)
                        enqueued += len(chunk)
                        chunk.clear()

                for message in email_messages:
                    try:
                        form = wire_form(message, self.dkim)
                    except Exception:
                        flush()  # the messages before it go, as with the SMTP backend
                        raise
                    if form is not None:
                        chunk.append(form)
                        if len(chunk) >= self.chunk:
                            flush()
                flush()
        except OperationalError:  # the broker cannot be reached (kombu's wrapper)
            if not self.fail_silently:
                raise
        return enqueued
