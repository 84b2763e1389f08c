"""Sending through Celery workers: the delivery task and what it is made of.

* ``mailwright.backends.celery.EmailBackend`` (the sending side) turns messages into
  JSON payloads and enqueues them;
* ``mailwright.celery.tasks`` holds the task the workers run (import it in the
  worker: ``Celery(..., include=["mailwright.celery.tasks"])``);
* ``payload`` is the payload format; the retry rules are ``mailwright.bulk.policy``.

Needs the ``celery`` extra: ``pip install 'mailwright[celery]'``.
"""
