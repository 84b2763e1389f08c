"""Finding and making backends: ``get_connection`` and the backend names it knows.

Below the module-level functions (``api``), the bulk layer and the message classes, which
all make backends through it.
"""

from __future__ import annotations

import difflib
import importlib
from typing import Any

from ..conf import settings
from ..exceptions import ImproperlyConfigured
from .base import BaseEmailBackend

__all__ = ["BACKEND_ALIASES", "SHORT_NAMES", "get_connection", "import_backend"]

#: The backends' short names (SPEC §8), for EMAIL_BACKEND, get_connection and MAILERS.
SHORT_NAMES = ("smtp", "console", "file", "locmem", "dummy", "queue", "celery")
BACKEND_ALIASES = {
    name: f"mailwright.backends.{'filebased' if name == 'file' else name}.EmailBackend"
    for name in SHORT_NAMES
}
BACKEND_ALIASES["filebased"] = BACKEND_ALIASES["file"]  # the module's own name


def import_backend(path: Any) -> type[BaseEmailBackend]:
    if isinstance(path, type):
        backend = path
    else:
        dotted = BACKEND_ALIASES.get(path, path)
        module_name, _, class_name = str(dotted).rpartition(".")
        if not module_name:  # neither a short name nor a dotted path
            raise ImproperlyConfigured(_unknown_short_name(path))
        try:
            module = importlib.import_module(module_name) if module_name else None
            backend = getattr(module, class_name)
        except (ImportError, AttributeError, TypeError, ValueError) as exc:
            raise ImproperlyConfigured(f"email backend {path!r} cannot be imported: {exc}") from exc
    if not (isinstance(backend, type) and issubclass(backend, BaseEmailBackend)):
        raise ImproperlyConfigured(
            f"email backend {path!r} is not a subclass of mailwright.backends.base.BaseEmailBackend"
        )
    return backend


def _unknown_short_name(path: Any) -> str:
    names = ", ".join(BACKEND_ALIASES)
    close = difflib.get_close_matches(str(path), BACKEND_ALIASES, n=1, cutoff=0.6)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return (
        f"unknown email backend {path!r}: {hint}the short names are {names}; anything "
        "else is a dotted path such as 'myproject.mail.EmailBackend'"
    )


def get_connection(
    backend: str | type[BaseEmailBackend] | None = None,
    fail_silently: bool = False,
    **kwargs: Any,
) -> BaseEmailBackend:
    """An instance of ``backend`` (a dotted path, or EMAIL_BACKEND when ``None``).

    >>> with get_connection() as connection:  # doctest: +SKIP
    ...     connection.send_messages(messages)
    """
    klass = import_backend(backend or settings.EMAIL_BACKEND)
    return klass(fail_silently=fail_silently, **kwargs)
