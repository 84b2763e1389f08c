"""The durable outbox: messages wait on disk (SQLite) until a worker delivers them.

The package is ``mailwright.queue``: ``mailwright.outbox`` is Django's locmem list, and
nothing else may take that name.

* ``database``: opening the file, checking it is an outbox, the schema;
* ``store``: ``Outbox``, every read and write (queue, claim, record, inspect, manage);
* ``outcome``: from a backend's report to each recipient's outcome (with the shared
  retry policy, ``mailwright.bulk.policy``);
* ``worker``: ``Worker``, what ``mailwright worker`` runs.

Applications queue through ``mailwright.backends.queue.EmailBackend``.
"""

from .database import OutboxError
from .store import STATES, Detail, Outbox, Status, Stored, Summary
from .worker import Worker, WorkerStats

__all__ = [
    "STATES",
    "Detail",
    "Outbox",
    "OutboxError",
    "Status",
    "Stored",
    "Summary",
    "Worker",
    "WorkerStats",
]
