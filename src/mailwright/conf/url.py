"""``EMAIL_URL``: several settings in one URL (``smtp://user:pass@host:587?tls=1``)."""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import SplitResult, parse_qsl, unquote, urlsplit

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


_ENCODE_HINT = (
    "if the user name or password holds one of : / ? # [ ] @, percent-encode it "
    "(%3A %2F %3F %23 %5B %5D %40)"
)


def redact_url(url: str) -> str:
    """The URL with its user name and password (everything before the last ``@``)
    replaced by ``***``, for error messages.

    The last ``@`` is used, not a parser's idea of where the user info ends: a
    password holding an unencoded ``/ ? #`` ends a parser's authority early, and the
    rest of it would be shown.
    """
    at = url.rfind("@")
    if at < 0:
        return url
    slashes = url.find("//", 0, at)
    start = slashes + 2 if slashes >= 0 else 0
    return f"{url[:start]}***{url[at:]}"


def _host_port_hint(url: str) -> str:
    """``; did you mean smtp://HOST:PORT?`` for a URL given as a bare ``host:port``."""
    text = url.strip()
    if "://" not in text and re.fullmatch(r"[\w.-]+:\d{1,5}|\[[0-9a-fA-F:.]+\]:\d{1,5}", text):
        return f"; for an SMTP server, write smtp://{text}"
    return ""


def _check_authority(url: str, parts: SplitResult) -> None:
    """Refuse a URL whose host a reader and a parser could see differently.

    ``smtp://user:pw#1@host`` parses as host ``user`` (port from the password) and a
    fragment; ``smtp://user:p/w@host`` as host ``user`` and a path. Either way an
    ``@`` is left after where the parser ended the host, or a fragment is present
    (an EMAIL_URL never needs one).
    """
    if "@" in url.strip()[len(parts.scheme) + 3 + len(parts.netloc) :] or "#" in url:
        raise ImproperlyConfigured(
            f"EMAIL_URL: ambiguous {redact_url(url)!r}: it has an '@' after the host or "
            f"a '#', so where the password ends is unclear; {_ENCODE_HINT}"
        )


@functools.lru_cache(maxsize=32)
def parse_email_url(url: str) -> Mapping[str, Any]:
    """Turn an ``EMAIL_URL`` into the settings it stands for.

    >>> parse_email_url("smtp://user:pw@mail.example.com:587?tls=1")["EMAIL_PORT"]
    587

    No error message holds the URL's user name or password (see ``redact_url``).
    """
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        # urllib's text may quote a piece of the password (as a "port").
        why = f"{_ENCODE_HINT}" if "@" in url else str(exc)
        raise ImproperlyConfigured(f"EMAIL_URL: cannot parse {redact_url(url)!r}: {why}") from None
    scheme = parts.scheme.lower()
    if scheme not in _URL_BACKENDS:
        known = ", ".join(f"{s}:" for s in _URL_BACKENDS)
        # The "scheme" of user:pw@host is the user name: name it only without an "@".
        what = f" {parts.scheme!r}" if "@" not in url else ""
        raise ImproperlyConfigured(
            f"EMAIL_URL: unknown scheme{what} in {redact_url(url)!r} (known: {known})"
            + _host_port_hint(url)
        )
    values: dict[str, Any] = {"EMAIL_BACKEND": _URL_BACKENDS[scheme]}
    if scheme == "file":
        path = unquote(parts.path) or unquote(parts.netloc)
        if not path:
            raise ImproperlyConfigured(f"EMAIL_URL: {redact_url(url)!r} names no directory")
        values["EMAIL_FILE_PATH"] = path
    elif scheme in ("smtp", "smtps"):
        _check_authority(url, parts)
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
