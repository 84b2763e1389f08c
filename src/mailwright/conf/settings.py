"""The live settings object and ``configure()``.

A value is looked up every time it is read, in this order:

1. ``override_settings`` layers active in the current context (newest first),
2. process overrides (newest first): test tools (``mailwright.testing``, the pytest
   plugin) put the locmem backend here, so that it holds in every thread, task and
   process-wide client the code under test starts, and wins over ``configure()``,
3. ``configure()`` (for the whole process),
4. registered sources (the Django integration registers Django's settings here),
5. an environment variable of the same name,
6. the environment variable ``EMAIL_URL``,
7. the default.

In each layer of 1 to 3 a name given directly wins over one derived from that layer's
``EMAIL_URL``. Overrides live in a ``contextvars.ContextVar``: concurrent asyncio tasks
and threads each see their own, and ``asyncio.to_thread`` or a copied context carries
them along. Reading on every access (instead of snapshotting at import) is what lets
tests and long-running processes change the environment and see the effect.
"""

from __future__ import annotations

import contextvars
import difflib
import os
import threading
import warnings
from collections.abc import Callable, Mapping
from typing import Any, Final

from ..exceptions import ImproperlyConfigured
from .registry import SETTINGS, bad_value, default
from .url import URL_SETTINGS, parse_email_url

__all__ = ["MISSING", "Settings", "UnknownSettingWarning", "configure", "settings"]


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


#: What a settings source returns for a name it does not set.
MISSING: Final = _Missing()

Layer = Mapping[str, Any]
Source = Callable[[str], Any]

_overrides: contextvars.ContextVar[tuple[Layer, ...]] = contextvars.ContextVar(
    "mailwright_overrides", default=()
)


def _from_layer(layer: Layer, name: str) -> Any:
    if name in layer:
        return layer[name]
    url = layer.get("EMAIL_URL")
    if url is not None and name in URL_SETTINGS:
        derived = parse_email_url(url)
        if name in derived:
            return derived[name]
    return MISSING


def _getenv(name: str) -> str | None:
    """``os.environ.get(name)``, read the way ``os.environ`` itself reads it.

    ``os.environ.get`` takes three Python-level calls (``Mapping.get``,
    ``__getitem__``, ``encodekey``): about 8,000 instructions, a third of a settings
    read (callgrind), and settings are read for every message composed. On POSIX,
    CPython's ``os.environ`` keeps its entries in a bytes dict, which is read
    directly; anything else (another platform, a replaced ``os.environ``) takes the
    public path.
    """
    environ = os.environ
    if _POSIX and type(environ) is _ENVIRON_TYPE:
        data = environ._data  # type: ignore[attr-defined]
        if type(data) is dict:
            key = _ENV_KEYS.get(name)
            raw = data.get(name.encode() if key is None else key)
            return None if raw is None else os.fsdecode(raw)
    return environ.get(name)


_POSIX = os.name == "posix"
_ENVIRON_TYPE = type(os.environ)
# The environment keys of the settings, encoded once (``os.environ`` encodes the key
# of every read; setting names are ASCII, so this is the same key).
_ENV_KEYS = {name: name.encode() for name in (*SETTINGS, "EMAIL_URL")}


def _did_you_mean(name: str) -> str:
    """``; did you mean EMAIL_HOST?`` for a name close to a setting's, else a pointer
    to where they are listed (not the whole list)."""
    match = difflib.get_close_matches(name.upper(), [*SETTINGS, "EMAIL_URL"], n=1, cutoff=0.7)
    if match:
        return f"; did you mean {match[0]}?"
    return " (dir(mailwright.settings) lists the settings)"


# Checked once per process, on the first read from the environment.
_environment_checked = False


def _check_environment() -> None:
    """One warning for each environment variable that looks like a misspelt setting
    (``EMAIL_HOTS``): otherwise the typo is silently ignored and the default used."""
    global _environment_checked
    _environment_checked = True
    known = {*SETTINGS, "EMAIL_URL"}
    for name in os.environ:
        if name in known or not name.startswith(("EMAIL_", "DEFAULT_", "SERVER_")):
            continue
        match = difflib.get_close_matches(name, known, n=1, cutoff=0.85)
        if match:
            warnings.warn(
                f"environment variable {name} is not a mailwright setting and is ignored; "
                f"did you mean {match[0]}?",
                UnknownSettingWarning,
                stacklevel=4,
            )


class UnknownSettingWarning(UserWarning):
    """An environment variable looks like a misspelt mailwright setting."""


class Settings:
    """The live settings. Attribute access resolves a value each time it is read."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._configured: Layer = {}
        self._sources: tuple[Source, ...] = ()
        self._process: tuple[Layer, ...] = ()  # process overrides, newest first

    def __getattr__(self, name: str) -> Any:
        if name == "EMAIL_URL":
            return self._effective_url()
        if name not in SETTINGS:
            raise AttributeError(f"mailwright has no setting named {name!r}{_did_you_mean(name)}")
        return self._resolve(name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name.startswith("_"):
            object.__setattr__(self, name, value)
        else:
            self.configure(**{name: value})

    def __dir__(self) -> list[str]:
        return sorted({*SETTINGS, "EMAIL_URL", *super().__dir__()})

    def _resolve(self, name: str) -> Any:
        # Read for every message composed on its own (DEFAULT_CHARSET,
        # EMAIL_USE_LOCALTIME), so the usual case — nothing overridden, configured or
        # registered for the name — is kept short.
        overrides = _overrides.get()
        if overrides or self._process:
            layers: tuple[Layer, ...] = (*reversed(overrides), *self._process, self._configured)
        else:
            layers = (self._configured,)
        for layer in layers:
            if name in layer:
                return layer[name]
            if "EMAIL_URL" in layer:
                value = _from_layer(layer, name)
                if value is not MISSING:
                    return value
        for source in self._sources:
            raw = source(name)
            if raw is not MISSING:
                return SETTINGS[name].parse(name, raw)
        if not _environment_checked:
            _check_environment()
        raw = _getenv(name)
        if raw is not None:
            return SETTINGS[name].parse(name, raw)
        if name in URL_SETTINGS:
            url = _getenv("EMAIL_URL")
            if url:
                derived = parse_email_url(url)
                if name in derived:
                    return derived[name]
        return default(name)

    def _effective_url(self) -> str | None:
        for layer in (*reversed(_overrides.get()), *self._process, self._configured):
            if "EMAIL_URL" in layer:
                url: str | None = layer["EMAIL_URL"]
                return url
        return _getenv("EMAIL_URL") or None

    @staticmethod
    def clean(values: Mapping[str, Any]) -> dict[str, Any]:
        """Check every value; an unknown name or a bad value raises ``ImproperlyConfigured``."""
        clean: dict[str, Any] = {}
        for name, value in values.items():
            if name == "EMAIL_URL":
                if value is not None:
                    if not isinstance(value, str):
                        raise bad_value(name, value, "a URL string")
                    parse_email_url(value)  # fail now, not at first use
                clean[name] = value
            elif name in SETTINGS:
                clean[name] = SETTINGS[name].parse(name, value)
            else:
                raise ImproperlyConfigured(f"unknown setting {name!r}{_did_you_mean(name)}")
        return clean

    def configure(self, **values: Any) -> None:
        """Set values for the whole process (they win over the environment)."""
        clean = self.clean(values)
        with self._lock:
            self._configured = {**self._configured, **clean}

    def add_source(self, source: Source) -> None:
        """Add a source of settings below ``configure()`` and above the environment:
        ``source(name)`` returns the raw value, or ``MISSING``. Adding one twice is
        a no-op."""
        with self._lock:
            if source not in self._sources:
                self._sources = (*self._sources, source)

    def remove_source(self, source: Source) -> None:
        with self._lock:
            self._sources = tuple(s for s in self._sources if s is not source)

    def push_override(self, values: Mapping[str, Any]) -> Layer:
        """Make ``values`` win in the current context until ``pop_override``."""
        layer = self.clean(values)
        _overrides.set((*_overrides.get(), layer))
        return layer

    def pop_override(self, layer: Layer) -> None:
        # Remove this exact layer, wherever it is: overlapping overrides in one
        # context may end in any order.
        _overrides.set(tuple(item for item in _overrides.get() if item is not layer))

    def push_process_override(self, layer: Layer) -> Layer:
        """Make ``layer`` win over ``configure()`` in every thread and task (but not over
        ``override_settings``) until ``pop_process_override(layer)``.

        For test tools: ``override_settings`` holds in one context only, so code a test
        starts in another thread would not see it. ``layer`` is used as given, not
        checked (a ``Mapping``; it may compute its values when read)."""
        with self._lock:
            self._process = (layer, *self._process)
        return layer

    def pop_process_override(self, layer: Layer) -> None:
        """Remove ``layer`` (wherever it is in the stack)."""
        with self._lock:
            self._process = tuple(item for item in self._process if item is not layer)

    def _reset(self) -> None:
        """Forget every configure()d value; overrides and sources stay (for tests)."""
        with self._lock:
            self._configured = {}


class _SettingValue:
    """Reads one setting: ``settings.EMAIL_HOST`` resolves through here.

    Without it, every read went through ``__getattr__``, which Python calls only after
    the normal lookup has failed and raised an ``AttributeError`` inside: about 5,700
    instructions of a 14,000-instruction read (callgrind, Python 3.11), and composing a
    message on its own reads two settings. A non-data descriptor on the class is found
    by the normal lookup instead; writes still go through ``Settings.__setattr__``."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __get__(self, instance: Settings | None, owner: type[Settings]) -> Any:
        if instance is None:
            return self
        return instance._resolve(self.name)


for _name in SETTINGS:
    setattr(Settings, _name, _SettingValue(_name))
del _name

settings = Settings()


def configure(**values: Any) -> None:
    """Set settings for the process. An unknown name raises ``ImproperlyConfigured``.

    >>> configure(EMAIL_HOST="smtp.example.com", EMAIL_PORT=587, EMAIL_USE_TLS=True)
    """
    settings.configure(**values)
