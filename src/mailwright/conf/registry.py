"""The settings mailwright knows: each name's default and the parser that checks a value.

Every value, wherever it comes from (``configure()``, an override, the environment,
``EMAIL_URL``, a backend argument), passes its setting's parser, which returns the clean
value or raises ``ImproperlyConfigured`` naming the setting.
"""

from __future__ import annotations

import codecs
import functools
import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..exceptions import ImproperlyConfigured, InvalidMailer

__all__ = [
    "SETTINGS",
    "SETTING_NAMES",
    "Setting",
    "bad_value",
    "clean_setting",
    "default",
    "parse_duration",
]

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


# --- value parsers: each takes (setting name, raw value) and returns the clean value ---


def bad_value(name: str, value: Any, expected: str) -> ImproperlyConfigured:
    return ImproperlyConfigured(f"{name}: {value!r} is not {expected}")


def _parse_str(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise bad_value(name, value, "a string")
    return value


def _parse_secret(name: str, value: Any) -> str:
    # Never echo a password back in an error message.
    if not isinstance(value, str):
        raise ImproperlyConfigured(f"{name} must be a string (got {type(value).__name__})")
    return value


def _parse_token_provider(name: str, value: Any) -> Any:
    # A callable, or the dotted path of one (imported when a backend is made).
    if value is None or callable(value):
        return value
    if isinstance(value, str):
        return value.strip() or None
    raise bad_value(name, type(value).__name__, "a callable or the dotted path of one")


def _parse_port(name: str, value: Any) -> int:
    if isinstance(value, bool):
        raise bad_value(name, value, "an integer port")
    if isinstance(value, str):
        text = value.strip()
        if not text.isdigit():
            raise bad_value(name, value, "an integer port")
        value = int(text)
    if not isinstance(value, int) or not 0 <= value <= 65535:
        raise bad_value(name, value, "an integer port between 0 and 65535")
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
    raise bad_value(name, value, "a boolean (1/true/yes/on or 0/false/no/off)")


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
            raise bad_value(name, value, "a number of seconds") from None
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise bad_value(name, value, "a positive number of seconds or None")
    return value


def _parse_optional_path(name: str, value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if not isinstance(value, str):
        raise bad_value(name, value, "a path or None")
    return value or None


def _parse_charset(name: str, value: Any) -> str:
    text = _parse_str(name, value)
    try:
        codecs.lookup(text)
    except LookupError:
        raise bad_value(name, text, "a known character set") from None
    return text


def _parse_backend(name: str, value: Any) -> Any:
    if isinstance(value, str) and value.strip():
        return value.strip()
    if isinstance(value, type):
        return value
    raise bad_value(name, value, "a dotted path to a backend class")


_DURATION_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_SECONDS = re.compile(r"\d+(?:\.\d*)?|\.\d+")
_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)\s*([smhdw])")


def parse_duration(text: str) -> float:
    """Seconds in ``text``: a number of seconds (``"90"``, ``"0.5"``) or amounts with
    units ``s m h d w`` (``"5d"``, ``"1h30m"``). Raises ``ValueError`` otherwise."""
    compact = text.strip().lower()
    if _SECONDS.fullmatch(compact):
        return float(compact)
    parts = _DURATION.findall(compact)
    if not parts or "".join(number + unit for number, unit in parts) != compact.replace(" ", ""):
        raise ValueError(f"{text!r} is not a duration (like 90, 30s, 15m, 12h, 5d or 1h30m)")
    return sum(float(number) * _DURATION_UNITS[unit] for number, unit in parts)


def _parse_duration(name: str, value: Any) -> float:
    if isinstance(value, str):
        try:
            value = parse_duration(value)
        except ValueError:
            raise bad_value(
                name, value, "a duration (seconds, or like 30s, 15m, 12h, 5d)"
            ) from None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 1e10:
        raise bad_value(name, value, "a positive duration in seconds")
    return float(value)


def _stands_for_text(value: Any) -> bool:
    """An object with its own ``__str__`` that is not a container or number: a lazy
    string, read as the string it stands for (as ``message.lazy.as_text`` does)."""
    if value is None or isinstance(value, list | tuple | bytes | bytearray | int | float):
        return False
    own_str: object = type(value).__str__
    return own_str is not object.__str__


def _parse_address_list(name: str, value: Any) -> list[str | tuple[str, str]]:
    if isinstance(value, str):
        # The environment form: "Ann <ann@example.com>, bob@example.com".
        if not value.strip():
            return []
        from email.utils import getaddresses  # the environment form only: keeps import light

        pairs = getaddresses([value])
        if not all(addr for _, addr in pairs):
            raise bad_value(name, value, "a comma-separated list of addresses")
        return [(display, addr) if display else addr for display, addr in pairs]
    if not isinstance(value, list | tuple):
        raise bad_value(name, value, 'a list of "a@x" strings or (name, "a@x") pairs')
    entries: list[str | tuple[str, str]] = []
    for entry in value:
        if isinstance(entry, str):
            entries.append(entry)
        elif _stands_for_text(entry):  # a lazy translation string (gettext_lazy)
            entries.append(str(entry))
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


def _parse_queue_name(name: str, value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise bad_value(name, value, "a queue name or None")
    text = value.strip()
    if not text or text.lower() == "none":
        return None
    if any(ch.isspace() or not ch.isprintable() for ch in text):
        raise bad_value(name, value, "a queue name without spaces or control characters")
    return text


def _int_between(name: str, value: Any, low: int, high: int, what: str) -> int:
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise bad_value(name, value, f"{what} between {low} and {high}")
    return value


def _parse_chunk(name: str, value: Any) -> int:
    return _int_between(name, value, 1, 10_000, "a number of messages per task")


def _parse_retries(name: str, value: Any) -> int:
    return _int_between(name, value, 0, 100, "a number of retries")


def _parse_positive_number(name: str, value: Any, what: str) -> float:
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise bad_value(name, value, what) from None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 1e9:
        raise bad_value(name, value, what)
    return float(value)


def _parse_rate(name: str, value: Any) -> float | None:
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "none")):
        return None
    return _parse_positive_number(name, value, "a positive number of messages per second or None")


def _parse_delay(name: str, value: Any) -> float:
    return _parse_positive_number(name, value, "a positive number of seconds")


def _parse_dirs(name: str, value: Any) -> list[str]:
    if isinstance(value, str):
        # The environment form: directories separated by os.pathsep (":" on POSIX).
        return [part for part in value.split(os.pathsep) if part.strip()]
    if isinstance(value, os.PathLike):
        return [os.fspath(value)]
    if not isinstance(value, list | tuple):
        raise bad_value(name, value, "a list of directories")
    dirs: list[str] = []
    for entry in value:
        if isinstance(entry, os.PathLike):
            entry = os.fspath(entry)
        if not isinstance(entry, str) or not entry:
            raise ImproperlyConfigured(f"{name}: entry {entry!r} is not a directory path")
        dirs.append(entry)
    return dirs


def _parse_callable_path(name: str, value: Any) -> Any:
    if value is None or callable(value):
        return value
    if isinstance(value, str):
        text = value.strip()
        if not text or text.lower() == "none":
            return None
        return text
    raise bad_value(name, value, "a dotted path to a callable, a callable, or None")


def _parse_optional_str(name: str, value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise bad_value(name, value, "a string or None")
    return value.strip() or None


def _parse_private_key(name: str, value: Any) -> str | None:
    # PEM text or a path. Never echoed back: it may be the key itself.
    if value is None:
        return None
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if isinstance(value, bytes):
        try:
            value = value.decode("ascii")
        except UnicodeDecodeError:
            raise ImproperlyConfigured(f"{name} must be PEM text or a file path") from None
    if not isinstance(value, str):
        raise ImproperlyConfigured(
            f"{name} must be PEM text or a file path (got {type(value).__name__})"
        )
    return value.strip() or None


_HEADER_NAME = re.compile(r"[\x21-\x39\x3b-\x7e]+")


def _parse_header_names(name: str, value: Any) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str):
        # The environment form: "From, To, Subject" (or colon-separated, as in h=).
        if value.strip().lower() in ("", "none"):
            return None
        value = [part for part in re.split(r"[,:\s]+", value) if part]
    if not isinstance(value, list | tuple) or not value:
        raise bad_value(name, value, "a list of header names or None")
    names = []
    for entry in value:
        if not isinstance(entry, str) or not _HEADER_NAME.fullmatch(entry.strip()):
            raise bad_value(name, entry, "a header name")
        names.append(entry.strip())
    return tuple(names)


def _parse_mailers(name: str, value: Any) -> dict[str, Any] | None:
    """``MAILERS``: None (not set: one mailer, "default", from EMAIL_*), or a mapping
    of aliases to entries, or that mapping as JSON (the environment form).

    Only the outer shape is checked here; each entry is checked when its mailer is
    made (``mailwright.mailers``), so one bad entry does not stop the others. The
    value is never echoed: entries may hold passwords."""
    if value is None:
        return None
    if isinstance(value, str):
        value = _mailers_json(value)
    if not isinstance(value, dict):
        raise InvalidMailer(
            f"{name} must be a dict of mailers (or that dict as JSON), got {type(value).__name__}"
        )
    for alias in value:
        if not isinstance(alias, str) or not alias:
            raise InvalidMailer(f"{name}: the alias {alias!r} is not a non-empty string")
    return value


@functools.lru_cache(maxsize=8)
def _mailers_json(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        # Where it failed, never the text itself (it may hold a password).
        raise InvalidMailer(
            f"MAILERS is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None


@dataclass(frozen=True)
class Setting:
    default: Any
    parse: Callable[[str, Any], Any]


SETTINGS: dict[str, Setting] = {
    "EMAIL_BACKEND": Setting("mailwright.backends.smtp.EmailBackend", _parse_backend),
    "EMAIL_HOST": Setting("localhost", _parse_str),
    "EMAIL_PORT": Setting(25, _parse_port),
    "EMAIL_HOST_USER": Setting("", _parse_str),
    "EMAIL_HOST_PASSWORD": Setting("", _parse_secret),
    # OAuth2 (XOAUTH2/OAUTHBEARER): a callable returning an access token, or its path.
    "EMAIL_OAUTH2_TOKEN": Setting(None, _parse_token_provider),
    "EMAIL_USE_TLS": Setting(False, _parse_bool),
    "EMAIL_USE_SSL": Setting(False, _parse_bool),
    "EMAIL_USE_LOCALTIME": Setting(False, _parse_bool),
    # Django's default is None (wait forever), a known way to hang a worker.
    "EMAIL_TIMEOUT": Setting(60, _parse_timeout),
    "EMAIL_SSL_KEYFILE": Setting(None, _parse_optional_path),
    "EMAIL_SSL_CERTFILE": Setting(None, _parse_optional_path),
    "EMAIL_SSL_CAFILE": Setting(None, _parse_optional_path),
    "EMAIL_FILE_PATH": Setting(None, _parse_optional_path),
    "EMAIL_SUBJECT_PREFIX": Setting("[mailwright] ", _parse_str),
    "DEFAULT_FROM_EMAIL": Setting("webmaster@localhost", _parse_str),
    "SERVER_EMAIL": Setting("root@localhost", _parse_str),
    "ADMINS": Setting([], _parse_address_list),
    "MANAGERS": Setting([], _parse_address_list),
    "DEFAULT_CHARSET": Setting("utf-8", _parse_charset),
    # Celery backend (issue 11). None: the app's default queue.
    "EMAIL_CELERY_QUEUE": Setting(None, _parse_queue_name),
    "EMAIL_CELERY_RELAY_BACKEND": Setting("mailwright.backends.smtp.EmailBackend", _parse_backend),
    "EMAIL_CELERY_CHUNK": Setting(50, _parse_chunk),
    # Messages per second for each worker process; None: as fast as the server takes them.
    "EMAIL_CELERY_RATE_LIMIT": Setting(None, _parse_rate),
    "EMAIL_CELERY_MAX_RETRIES": Setting(8, _parse_retries),
    # Seconds before the first retry of a temporary failure; doubles on each further one.
    "EMAIL_CELERY_RETRY_DELAY": Setting(10.0, _parse_delay),
    # The durable outbox (mailwright.backends.queue, ``mailwright worker``).
    "EMAIL_QUEUE_PATH": Setting(None, _parse_optional_path),
    "EMAIL_QUEUE_RELAY_BACKEND": Setting("mailwright.backends.smtp.EmailBackend", _parse_backend),
    "EMAIL_QUEUE_MAX_AGE": Setting(5 * 86400.0, _parse_duration),
    "EMAIL_QUEUE_RETRY_DELAY": Setting(60.0, _parse_duration),
    "EMAIL_QUEUE_MAX_RETRY_DELAY": Setting(3600.0, _parse_duration),
    "EMAIL_QUEUE_LEASE": Setting(60.0, _parse_duration),
    # Templates (mailwright.compose, extra ``templates``).
    "EMAIL_TEMPLATE_DIRS": Setting([], _parse_dirs),
    # None: a Jinja2 environment over EMAIL_TEMPLATE_DIRS (in a Django project: Django's
    # template engine); else the dotted path of a callable returning a jinja2.Environment.
    "EMAIL_TEMPLATE_ENGINE": Setting(None, _parse_callable_path),
    "EMAIL_TEMPLATE_INLINE_CSS": Setting(True, _parse_bool),
    "EMAIL_TEMPLATE_STRICT": Setting(True, _parse_bool),
    # DKIM signing (message/dkim.py): on when domain, selector and key are all set.
    "EMAIL_DKIM_DOMAIN": Setting(None, _parse_optional_str),
    "EMAIL_DKIM_SELECTOR": Setting(None, _parse_optional_str),
    "EMAIL_DKIM_PRIVATE_KEY": Setting(None, _parse_private_key),
    "EMAIL_DKIM_HEADERS": Setting(None, _parse_header_names),
    # Named mailers (mailwright.mailers); None: one mailer, "default", from EMAIL_*.
    "MAILERS": Setting(None, _parse_mailers),
}

SETTING_NAMES: frozenset[str] = frozenset(SETTINGS)


def clean_setting(name: str, value: Any) -> Any:
    """Check and normalise a value for setting ``name`` (used for backend arguments)."""
    return SETTINGS[name].parse(name, value)


def default(name: str) -> Any:
    """The default of setting ``name`` (a fresh copy of a list, never shared)."""
    value = SETTINGS[name].default
    return list(value) if isinstance(value, list) else value
