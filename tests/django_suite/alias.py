"""The module alias: ``django.core.mail`` and its submodules become mailwright's.

Django's tests import ``django.core.mail`` (and ``.message``, ``.backends.*``); here each
of those names is mailwright's module, so the tests exercise mailwright only. The alias
holds no mail behaviour: attribute reads and writes go to the mailwright module
(``mail.outbox = []`` empties ``mailwright.outbox``). A few names are Django internals
mailwright does not have (``DNS_NAME``, ``sanitize_address``); they are placeholders
that fail when used, so only the tests that use them fail (listed in
``expected_failures_<version>.txt``), instead of the import failing the whole module.
"""

from __future__ import annotations

import sys
import types
from typing import Any

import mailwright
import mailwright.backends
import mailwright.message

BACKENDS = ("base", "console", "dummy", "filebased", "locmem", "smtp")

#: Names Django's tests import that are Django internals, not part of the API.
DJANGO_INTERNALS = {
    "django.core.mail": ("DNS_NAME", "CachedDnsName", "forbid_multi_line_headers"),
    "django.core.mail.message": ("sanitize_address", "forbid_multi_line_headers"),
}

#: Django's own modules under ``django.core.mail`` that hold no mail behaviour, only the
#: texts of Django 6.1's deprecation warnings, which its tests import to filter them.
DJANGO_OWN = ("deprecation",)


class NotInMailwright:
    """A placeholder for a Django internal: any use of it raises."""

    def __init__(self, name: str) -> None:
        object.__setattr__(self, "_name", name)

    def _fail(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(
            f"{self._name} is a Django internal that mailwright does not provide"
        )

    __call__ = _fail
    __getattr__ = _fail
    __setattr__ = _fail
    __delattr__ = _fail


class DjangoMailers:
    """``mailwright.mailers`` as Django 6.1's tests see it: everything is mailwright's,
    plus Django's private ``_is_configured`` (has the project set ``MAILERS``?), which
    the tests read to choose what to expect."""

    def __getattr__(self, attr: str) -> Any:
        return getattr(mailwright.mailers, attr)

    def __getitem__(self, alias: str) -> Any:
        return mailwright.mailers[alias]

    def __contains__(self, alias: object) -> bool:
        return alias in mailwright.mailers

    def __iter__(self) -> Any:
        return iter(mailwright.mailers)

    @property
    def _is_configured(self) -> bool:
        from django.conf import settings

        return hasattr(settings, "MAILERS")


#: Names whose Django view differs from the bare mailwright object.
DJANGO_VIEWS: dict[str, dict[str, Any]] = {"django.core.mail": {"mailers": DjangoMailers()}}


class Alias(types.ModuleType):
    """A module that forwards every attribute to ``target``."""

    def __init__(self, name: str, target: types.ModuleType, internals: tuple[str, ...]):
        super().__init__(name)
        object.__setattr__(self, "_target", target)
        object.__setattr__(self, "_internals", {n: NotInMailwright(n) for n in internals})
        object.__setattr__(self, "_views", DJANGO_VIEWS.get(name, {}))
        object.__setattr__(self, "__path__", [])  # a package: submodules come from sys.modules

    def __getattr__(self, attr: str) -> Any:
        if attr in self._views:
            return self._views[attr]
        try:
            return getattr(self._target, attr)
        except AttributeError:
            if attr in self._internals:
                return self._internals[attr]
            raise

    def __setattr__(self, attr: str, value: Any) -> None:
        setattr(self._target, attr, value)

    def __delattr__(self, attr: str) -> None:
        delattr(self._target, attr)


def install() -> None:
    """Put the aliases in ``sys.modules``; call before Django imports its mail module."""
    import importlib

    import django.core

    modules: dict[str, types.ModuleType] = {
        "django.core.mail": mailwright,
        "django.core.mail.message": mailwright.message,
        "django.core.mail.backends": mailwright.backends,
    }
    for name in BACKENDS:
        modules[f"django.core.mail.backends.{name}"] = importlib.import_module(
            f"mailwright.backends.{name}"
        )
    for name, target in modules.items():
        sys.modules[name] = Alias(name, target, DJANGO_INTERNALS.get(name, ()))
    django.core.mail = sys.modules["django.core.mail"]  # type: ignore[attr-defined]
    for name in DJANGO_OWN:
        _load_djangos(name)


def _load_djangos(name: str) -> None:
    """Django's own ``django/core/mail/NAME.py`` as ``django.core.mail.NAME``, if this
    Django has it."""
    import importlib.util
    from pathlib import Path

    import django

    path = Path(django.__file__).parent / "core" / "mail" / f"{name}.py"
    if not path.exists():
        return
    full_name = f"django.core.mail.{name}"
    spec = importlib.util.spec_from_file_location(full_name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[full_name] = module
    spec.loader.exec_module(module)
