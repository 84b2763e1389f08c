"""Django's settings as a mailwright settings source.

Inside a Django project, ``mailwright.send_mail`` and friends read ``EMAIL_HOST``,
``DEFAULT_FROM_EMAIL``, ``ADMINS``... from Django's settings, below ``configure()`` and
``override_settings()`` and above the environment. Only values the project chose are
Django's settings, its defaults included, are the project's truth (``EMAIL_SUBJECT_PREFIX``
is ``"[Django] "`` unless the project says otherwise), with one exception where
mailwright's contract is deliberately safer: Django's default ``EMAIL_TIMEOUT = None``
(wait forever, a known way to hang a worker) is not taken; mailwright's 60 seconds
stay unless the project sets a timeout itself.

``EMAIL_BACKEND`` names a Django backend class; mailwright's functions need a mailwright
backend, so Django's built-in backends map to their mailwright equivalents (locmem to
one that fills ``django.core.mail.outbox``, as Django's does), and
``mailwright.django.EmailBackend`` to the engine it drives (the SMTP backend).
"""

from __future__ import annotations

import sys
from typing import Any

from ..conf.settings import MISSING

__all__ = ["BACKEND_EQUIVALENTS", "django_setting"]

_UNSET = object()

#: Settings whose Django default mailwright does not take (SPEC: safer defaults).
_SAFER_DEFAULTS = frozenset({"EMAIL_TIMEOUT"})

#: Django's EMAIL_BACKEND values and the mailwright backend that does the same.
BACKEND_EQUIVALENTS: dict[str, str] = {
    **{
        f"django.core.mail.backends.{name}.EmailBackend": f"mailwright.backends.{name}.EmailBackend"
        for name in ("smtp", "console", "filebased", "dummy")
    },
    "django.core.mail.backends.locmem.EmailBackend": "mailwright.django.locmem.EmailBackend",
    "mailwright.django.EmailBackend": "mailwright.backends.smtp.EmailBackend",
}


def django_setting(name: str) -> Any:
    """The value of ``name`` in Django's settings when the project chose it, else
    ``MISSING``. Cheap when Django is not in use: Django is never imported here."""
    conf = sys.modules.get("django.conf")
    if conf is None:
        return MISSING
    holder = _configured_holder(conf.settings)
    if holder is None:
        return MISSING
    value = getattr(holder, name, _UNSET)
    if value is _UNSET:
        return MISSING
    if name in _SAFER_DEFAULTS:
        default = getattr(sys.modules.get("django.conf.global_settings"), name, _UNSET)
        if default is not _UNSET and value == default and not holder.is_overridden(name):
            return MISSING  # Django's unsafe default, not the project's choice
    if name == "EMAIL_BACKEND" and isinstance(value, str):
        return BACKEND_EQUIVALENTS.get(value, value)
    if name == "MAILERS" and isinstance(value, dict):
        return {alias: _mailwright_mailer(entry) for alias, entry in value.items()}
    return value


def _mailwright_mailer(entry: Any) -> Any:
    """A Django 6.1 ``MAILERS`` entry as mailwright's functions read it: Django's
    backends (and ``mailwright.django.EmailBackend``) mapped to their mailwright
    equivalents, as for EMAIL_BACKEND; a BACKEND left out is Django's default, SMTP."""
    if not isinstance(entry, dict):
        return entry
    backend = entry.get("BACKEND", "django.core.mail.backends.smtp.EmailBackend")
    options = entry.get("OPTIONS")
    if backend == "mailwright.django.EmailBackend" and isinstance(options, dict):
        engine = options.get("backend")
        if engine is not None:
            rest = {k: v for k, v in options.items() if k != "backend"}
            return {**entry, "BACKEND": engine, "OPTIONS": rest}
    if isinstance(backend, str):
        backend = BACKEND_EQUIVALENTS.get(backend, backend)
    return {**entry, "BACKEND": backend}


def _configured_holder(settings: Any) -> Any:
    """The object behind Django's lazy ``settings`` (``Settings`` or, under
    ``override_settings`` and ``configure()``, ``UserSettingsHolder``), or None when
    Django is not configured.

    Read directly: every attribute of the lazy object costs a Python-level
    ``__getattribute__``, and mailwright reads settings for every message it composes
    (measured: a quarter of the CPU time of a plain message through
    ``mailwright.django.EmailBackend``). Falls back to the public API should the
    private ``_wrapped`` attribute ever go away.
    """
    try:
        holder = object.__getattribute__(settings, "_wrapped")
    except AttributeError:
        return settings if settings.configured else None
    functional = sys.modules.get("django.utils.functional")
    if holder is getattr(functional, "empty", None):
        return None
    return holder
