"""Settings: defaults, ``configure()``, ``override_settings()``, the environment and EMAIL_URL.

A value is looked up every time it is read, in this order:

1. ``override_settings`` layers and ``configure()`` (newest first; in each layer a name
   given directly wins over one derived from that layer's ``EMAIL_URL``),
2. an environment variable of the same name,
3. the environment variable ``EMAIL_URL``,
4. the default.

Reading on every access (instead of snapshotting at import) is what lets tests and
long-running processes change the environment and see the effect.
"""

from __future__ import annotations

import codecs
import functools
import inspect
import os
import threading
import unittest
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from email.utils import getaddresses
from typing import Any, TypeVar
from urllib.parse import parse_qsl, unquote, urlsplit

from .exceptions import ImproperlyConfigured

__all__ = ["Settings", "configure", "override_settings", "settings"]

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


# --- value parsers: each takes (setting name, raw value) and returns the clean value ---


def _bad(name: str, value: Any, expected: str) -> ImproperlyConfigured:
    return ImproperlyConfigured(f"{name}: {value!r} is not {expected}")


def _parse_str(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise _bad(name, value, "a string")
    return value


def _parse_secret(name: str, value: Any) -> str:
    # Never echo a password back in an error message.
    if not isinstance(value, str):
        raise ImproperlyConfigured(f"{name} must be a string (got {type(value).__name__})")
    return value


def _parse_port(name: str, value: Any) -> int:
    if isinstance(value, bool):
        raise _bad(name, value, "an integer port")
    if isinstance(value, str):
        text = value.strip()
        if not text.isdigit():
            raise _bad(name, value, "an integer port")
        value = int(text)
    if not isinstance(value, int) or not 0 <= value <= 65535:
        raise _bad(name, value, "an integer port between 0 and 65535")
    return value


def _parse_bool(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
    raise _bad(name, value, "a boolean (1/true/yes/on or 0/false/no/off)")


def _parse_timeout(name: str, value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        if text.lower() in ("", "none"):
            return None
        try:
            value = float(text)
        except ValueError:
            raise _bad(name, value, "a number of seconds") from None
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise _bad(name, value, "a positive number of seconds or None")
    return value


def _parse_optional_path(name: str, value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if not isinstance(value, str):
        raise _bad(name, value, "a path or None")
    return value or None


def _parse_charset(name: str, value: Any) -> str:
    value = _parse_str(name, value)
    try:
        codecs.lookup(value)
    except LookupError:
        raise _bad(name, value, "a known character set") from None
    return value


def _parse_backend(name: str, value: Any) -> Any:
    if isinstance(value, str) and value.strip():
        return value.strip()
    if isinstance(value, type):
        return value
    raise _bad(name, value, "a dotted path to a backend class")


def _parse_address_list(name: str, value: Any) -> list[str | tuple[str, str]]:
    if isinstance(value, str):
        # The environment form: "Ann <ann@example.com>, bob@example.com".
        if not value.strip():
            return []
        pairs = getaddresses([value])
        if not all(addr for _, addr in pairs):
            raise _bad(name, value, "a comma-separated list of addresses")
        return [(display, addr) if display else addr for display, addr in pairs]
    if not isinstance(value, list | tuple):
        raise _bad(name, value, 'a list of "a@x" strings or (name, "a@x") pairs')
    entries: list[str | tuple[str, str]] = []
    for entry in value:
        if isinstance(entry, str):
            entries.append(entry)
        elif (
            isinstance(entry, list | tuple)
            and len(entry) == 2
            and all(isinstance(part, str) for part in entry)
        ):
            entries.append((entry[0], entry[1]))
        else:
            raise ImproperlyConfigured(
                f'{name}: entry {entry!r} is not an "a@x" string or a (name, "a@x") pair'
            )
    return entries


@dataclass(frozen=True)
class _Setting:
    default: Any
    parse: Callable[[str, Any], Any]


_SETTINGS: dict[str, _Setting] = {
    "EMAIL_BACKEND": _Setting("mailwright.backends.smtp.EmailBackend", _parse_backend),
    "EMAIL_HOST": _Setting("localhost", _parse_str),
    "EMAIL_PORT": _Setting(25, _parse_port),
    "EMAIL_HOST_USER": _Setting("", _parse_str),
    "EMAIL_HOST_PASSWORD": _Setting("", _parse_secret),
    "EMAIL_USE_TLS": _Setting(False, _parse_bool),
    "EMAIL_USE_SSL": _Setting(False, _parse_bool),
    "EMAIL_TIMEOUT": _Setting(None, _parse_timeout),
    "EMAIL_SSL_KEYFILE": _Setting(None, _parse_optional_path),
    "EMAIL_SSL_CERTFILE": _Setting(None, _parse_optional_path),
    "EMAIL_SSL_CAFILE": _Setting(None, _parse_optional_path),
    "EMAIL_FILE_PATH": _Setting(None, _parse_optional_path),
    "EMAIL_SUBJECT_PREFIX": _Setting("[mailwright] ", _parse_str),
    "DEFAULT_FROM_EMAIL": _Setting("webmaster@localhost", _parse_str),
    "SERVER_EMAIL": _Setting("root@localhost", _parse_str),
    "ADMINS": _Setting([], _parse_address_list),
    "MANAGERS": _Setting([], _parse_address_list),
    "DEFAULT_CHARSET": _Setting("utf-8", _parse_charset),
}

SETTING_NAMES: frozenset[str] = frozenset(_SETTINGS)


def clean_setting(name: str, value: Any) -> Any:
    """Check and normalise a value for setting ``name`` (used for backend arguments)."""
    return _SETTINGS[name].parse(name, value)


# --- EMAIL_URL ---

_URL_BACKENDS = {
    "smtp": "mailwright.backends.smtp.EmailBackend",
    "smtps": "mailwright.backends.smtp.EmailBackend",
    "console": "mailwright.backends.console.EmailBackend",
    "file": "mailwright.backends.filebased.EmailBackend",
    "locmem": "mailwright.backends.locmem.EmailBackend",
    "dummy": "mailwright.backends.dummy.EmailBackend",
}

_URL_QUERY = {
    "tls": "EMAIL_USE_TLS",
    "ssl": "EMAIL_USE_SSL",
    "timeout": "EMAIL_TIMEOUT",
    "cafile": "EMAIL_SSL_CAFILE",
    "certfile": "EMAIL_SSL_CERTFILE",
    "keyfile": "EMAIL_SSL_KEYFILE",
}


# The settings an EMAIL_URL can give (others skip looking at it).
_URL_SETTINGS = frozenset(
    {
        "EMAIL_BACKEND",
        "EMAIL_HOST",
        "EMAIL_PORT",
        "EMAIL_HOST_USER",
        "EMAIL_HOST_PASSWORD",
        "EMAIL_FILE_PATH",
        *_URL_QUERY.values(),
    }
)


def _redact(url: str) -> str:
    """The URL with any password replaced, for error messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(":" + parts.password + "@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


@functools.lru_cache(maxsize=32)
def parse_email_url(url: str) -> Mapping[str, Any]:
    """Turn an ``EMAIL_URL`` into the settings it stands for.

    >>> parse_email_url("smtp://user:pw@mail.example.com:587?tls=1")["EMAIL_PORT"]
    587
    """
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise ImproperlyConfigured(f"EMAIL_URL: cannot parse {_redact(url)!r}: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in _URL_BACKENDS:
        known = ", ".join(f"{s}:" for s in _URL_BACKENDS)
        raise ImproperlyConfigured(
            f"EMAIL_URL: unknown scheme {parts.scheme!r} in {_redact(url)!r} (known: {known})"
        )
    values: dict[str, Any] = {"EMAIL_BACKEND": _URL_BACKENDS[scheme]}
    if scheme == "file":
        path = unquote(parts.path) or unquote(parts.netloc)
        if not path:
            raise ImproperlyConfigured(f"EMAIL_URL: {url!r} names no directory")
        values["EMAIL_FILE_PATH"] = path
    elif scheme in ("smtp", "smtps"):
        if parts.hostname:
            values["EMAIL_HOST"] = parts.hostname
        if parts.username:
            values["EMAIL_HOST_USER"] = unquote(parts.username)
        if parts.password:
            values["EMAIL_HOST_PASSWORD"] = unquote(parts.password)
        if scheme == "smtps":
            values["EMAIL_USE_SSL"] = True
        for key, raw in parse_qsl(parts.query, keep_blank_values=True):
            name = _URL_QUERY.get(key.lower())
            if name is None:
                raise ImproperlyConfigured(
                    f"EMAIL_URL: unknown option {key!r} (known: {', '.join(_URL_QUERY)})"
                )
            values[name] = _SETTINGS[name].parse(f"EMAIL_URL option {key}", raw)
        if port is not None:
            values["EMAIL_PORT"] = port
        elif values.get("EMAIL_USE_SSL"):
            values["EMAIL_PORT"] = 465
        elif values.get("EMAIL_USE_TLS"):
            values["EMAIL_PORT"] = 587
    return values


# --- the settings object ---


class Settings:
    """The live settings. Attribute access resolves a value each time it is read."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # Newest last. Each layer maps names (including EMAIL_URL) to clean values.
        self._layers: tuple[dict[str, Any], ...] = ({},)

    def __getattr__(self, name: str) -> Any:
        if name == "EMAIL_URL":
            return self._effective_url()
        if name not in _SETTINGS:
            raise AttributeError(f"mailwright has no setting named {name!r}")
        return self._resolve(name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name.startswith("_"):
            object.__setattr__(self, name, value)
        else:
            self.configure(**{name: value})

    def __dir__(self) -> list[str]:
        return sorted({*_SETTINGS, "EMAIL_URL", *super().__dir__()})

    def _resolve(self, name: str) -> Any:
        setting = _SETTINGS[name]
        for layer in reversed(self._layers):
            if name in layer:
                return layer[name]
            url = layer.get("EMAIL_URL")
            if url is not None:
                derived = parse_email_url(url)
                if name in derived:
                    return derived[name]
        raw = os.environ.get(name)
        if raw is not None:
            return setting.parse(name, raw)
        url = os.environ.get("EMAIL_URL") if name in _URL_SETTINGS else None
        if url:
            derived = parse_email_url(url)
            if name in derived:
                return derived[name]
        default = setting.default
        return list(default) if isinstance(default, list) else default  # never share it

    def _effective_url(self) -> str | None:
        for layer in reversed(self._layers):
            if "EMAIL_URL" in layer:
                return layer["EMAIL_URL"]
        return os.environ.get("EMAIL_URL") or None

    @staticmethod
    def _clean(values: Mapping[str, Any]) -> dict[str, Any]:
        clean: dict[str, Any] = {}
        for name, value in values.items():
            if name == "EMAIL_URL":
                if value is not None:
                    if not isinstance(value, str):
                        raise _bad(name, value, "a URL string")
                    parse_email_url(value)  # fail now, not at first use
                clean[name] = value
            elif name in _SETTINGS:
                clean[name] = _SETTINGS[name].parse(name, value)
            else:
                raise ImproperlyConfigured(
                    f"unknown setting {name!r}; known settings: {', '.join(sorted(_SETTINGS))}"
                )
        return clean

    def configure(self, **values: Any) -> None:
        """Set values for the whole process (they win over the environment)."""
        clean = self._clean(values)
        with self._lock:
            base = {**self._layers[0], **clean}
            self._layers = (base, *self._layers[1:])

    def _push(self, values: Mapping[str, Any]) -> dict[str, Any]:
        layer = self._clean(values)
        with self._lock:
            self._layers = (*self._layers, layer)
        return layer

    def _pop(self, layer: dict[str, Any]) -> None:
        # Remove this exact layer, wherever it is: overlapping async tasks may exit
        # their overrides in any order.
        with self._lock:
            self._layers = tuple(item for item in self._layers if item is not layer)

    def _reset(self) -> None:
        """Forget every configure()d value; active overrides stay (for tests)."""
        with self._lock:
            self._layers = ({}, *self._layers[1:])


settings = Settings()


def configure(**values: Any) -> None:
    """Set settings for the process. An unknown name raises ``ImproperlyConfigured``.

    >>> configure(EMAIL_HOST="smtp.example.com", EMAIL_PORT=587, EMAIL_USE_TLS=True)
    """
    settings.configure(**values)


_F = TypeVar("_F", bound=Callable[..., Any])


class override_settings:
    """Temporarily set settings: a context manager and a decorator.

    Decorates sync functions, async functions, and classes (every ``test*`` method of a
    plain class; the whole class life of a ``unittest.TestCase``).
    Values are checked when the override starts, so a typo fails at once.
    """

    def __init__(self, **values: Any) -> None:
        Settings._clean(values)
        self._values = values
        self._layers: list[dict[str, Any]] = []

    def __enter__(self) -> override_settings:
        self._layers.append(settings._push(self._values))
        return self

    def __exit__(self, *exc_info: object) -> None:
        settings._pop(self._layers.pop())

    @contextmanager
    def _applied(self) -> Iterator[None]:
        layer = settings._push(self._values)
        try:
            yield
        finally:
            settings._pop(layer)

    def __call__(self, target: _F) -> _F:
        if isinstance(target, type):
            return self._decorate_class(target)  # type: ignore[return-value]
        if inspect.iscoroutinefunction(target):

            @functools.wraps(target)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                with self._applied():
                    return await target(*args, **kwargs)

            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(target)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with self._applied():
                return target(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    def _decorate_class(self, cls: type) -> type:
        if issubclass(cls, unittest.TestCase):
            original_setup = cls.__dict__.get("setUpClass")
            override = self

            @classmethod  # type: ignore[misc]
            def setUpClass(klass: type[unittest.TestCase]) -> None:
                layer = settings._push(override._values)
                klass.addClassCleanup(settings._pop, layer)
                if original_setup is not None:
                    original_setup.__func__(klass)
                else:
                    super(cls, klass).setUpClass()

            cls.setUpClass = setUpClass  # type: ignore[method-assign,assignment]
            return cls
        for attr, value in list(vars(cls).items()):
            if attr.startswith("test") and callable(value):
                setattr(cls, attr, self(value))
        return cls
