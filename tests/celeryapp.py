"""The Celery app the Celery tests run: real workers load it with ``-A celeryapp``.

Configured from the environment, as a user's app would be:
MAILWRIGHT_CELERY_BROKER (the Redis URL) and MAILWRIGHT_CELERY_VISIBILITY (seconds
before an unacknowledged task goes back to the queue). mailwright itself reads its
settings (EMAIL_HOST, EMAIL_CELERY_*) from the worker's environment.
"""

from __future__ import annotations

import os

from celery import Celery


def make_app(broker: str, visibility_timeout: float = 3600) -> Celery:
    app = Celery(
        "mailwright_tests",
        broker=broker,
        include=["mailwright.celery.tasks"],
        set_as_current=False,
    )
    app.conf.update(
        accept_content=["json"],
        task_serializer="json",
        # One task at a time per process: with acks_late, what a dead worker held
        # comes back, and no process hoards tasks another could run.
        worker_prefetch_multiplier=1,
        broker_connection_retry_on_startup=True,
        broker_transport_options={
            "visibility_timeout": visibility_timeout,
            # Look for abandoned tasks every second (the default is far rarer).
            "unacked_restore_interval": 1,
            "unacked_restore_throttle": 1,
        },
        task_publish_retry_policy={"max_retries": 1, "interval_start": 0, "interval_step": 0.1},
    )
    return app


app = make_app(
    os.environ.get("MAILWRIGHT_CELERY_BROKER", "redis://127.0.0.1:6379/0"),
    float(os.environ.get("MAILWRIGHT_CELERY_VISIBILITY", "3600")),
)
