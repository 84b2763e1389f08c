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

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .database import OutboxError as OutboxError
    from .states import STATES as STATES
    from .store import Detail as Detail
    from .store import Outbox as Outbox
    from .store import Status as Status
    from .store import Stored as Stored
    from .store import Summary as Summary
    from .worker import Worker as Worker
    from .worker import WorkerStats as WorkerStats

#: Imported on first use (PEP 562): ``mailwright queue status`` needs the store, not the
#: worker and the SMTP engine behind it.
_EXPORTS = {
    "OutboxError": ".database",
    "STATES": ".states",
    "Detail": ".store",
    "Outbox": ".store",
    "Status": ".store",
    "Stored": ".store",
    "Summary": ".store",
    "Worker": ".worker",
    "WorkerStats": ".worker",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'mailwright.queue' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module, __name__), name)
