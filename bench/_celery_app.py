"""The Celery app of ``bench/celery_send.py``: its workers load it (``-A _celery_app``).

From the environment: BENCH_BROKER (Redis URL), BENCH_READY_FILE (written when the
worker is ready), and EMAIL_HOST/EMAIL_PORT (the sink), which mailwright reads itself
and which Django's settings (for django-celery-email) are given here.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from celery import Celery
from celery.signals import worker_ready

tasks = ["mailwright.celery.tasks"]
try:  # the peer, when installed
    import django
    import djcelery_email  # noqa: F401
    from django.conf import settings
except ImportError:
    pass
else:
    if not settings.configured:
        settings.configure(
            EMAIL_BACKEND="djcelery_email.backends.CeleryEmailBackend",
            CELERY_EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
            EMAIL_HOST=os.environ.get("EMAIL_HOST", "127.0.0.1"),
            EMAIL_PORT=int(os.environ.get("EMAIL_PORT", "25")),
        )
        django.setup()
    tasks.append("djcelery_email.tasks")

app = Celery(
    "mailwright_bench",
    broker=os.environ.get("BENCH_BROKER", "redis://127.0.0.1:6379/0"),
    include=tasks,
)
# The configuration the README recommends for mail: JSON only, one task prefetched
# per process (with acks_late, a dead worker holds back as little as possible).
app.conf.update(
    accept_content=["json"],
    task_serializer="json",
    worker_prefetch_multiplier=1,
    broker_connection_retry_on_startup=True,
    task_ignore_result=True,
)


@worker_ready.connect
def _ready(**_: Any) -> None:
    ready = os.environ.get("BENCH_READY_FILE")
    if ready:
        Path(ready).write_text("ready")
