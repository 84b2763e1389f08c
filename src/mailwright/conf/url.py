"""``EMAIL_URL``: several settings in one URL (``smtp://user:pass@host:587?tls=1``)."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from ..exceptions import ImproperlyConfigured
from .registry import SETTINGS

__all__ = ["URL_SETTINGS", "parse_email_url", "redact_url"]

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
URL_SETTINGS = frozenset(
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


def redact_url(url: str) -> str:
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
        raise ImproperlyConfigured(f"EMAIL_URL: cannot parse {redact_url(url)!r}: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in _URL_BACKENDS:
        known = ", ".join(f"{s}:" for s in _URL_BACKENDS)
        raise ImproperlyConfigured(
            f"EMAIL_URL: unknown scheme {parts.scheme!r} in {redact_url(url)!r} (known: {known})"
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
            values[name] = SETTINGS[name].parse(f"EMAIL_URL option {key}", raw)
        if port is not None:
            values["EMAIL_PORT"] = port
        elif values.get("EMAIL_USE_SSL"):
            values["EMAIL_PORT"] = 465
        elif values.get("EMAIL_USE_TLS"):
            values["EMAIL_PORT"] = 587
    return values
