"""TLS client contexts: certificate and host name verified by default."""

from __future__ import annotations

import functools
import os
import ssl

from .exceptions import ImproperlyConfigured

__all__ = ["client_context"]


def _stamp(path: str | None) -> float | None:
    if path is None:
        return None
    try:
        return os.stat(path).st_mtime
    except OSError:
        return None


def client_context(
    cafile: str | None = None,
    certfile: str | None = None,
    keyfile: str | None = None,
) -> ssl.SSLContext:
    """A context that verifies the server against the system CAs plus ``cafile``
    (EMAIL_SSL_CAFILE), and presents a client certificate when ``certfile`` is given.

    Contexts are cached (loading the system store costs milliseconds), keyed by the
    files and their modification times so a renewed certificate is picked up.
    """
    return _cached_context(
        cafile, _stamp(cafile), certfile, _stamp(certfile), keyfile, _stamp(keyfile)
    )


@functools.lru_cache(maxsize=16)
def _cached_context(
    cafile: str | None,
    _cafile_stamp: float | None,
    certfile: str | None,
    _certfile_stamp: float | None,
    keyfile: str | None,
    _keyfile_stamp: float | None,
) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    if cafile:
        try:
            context.load_verify_locations(cafile=cafile)
        except (OSError, ssl.SSLError) as exc:
            raise ImproperlyConfigured(f"EMAIL_SSL_CAFILE: cannot load {cafile!r}: {exc}") from exc
    if certfile:
        try:
            context.load_cert_chain(certfile, keyfile)
        except (OSError, ssl.SSLError) as exc:
            raise ImproperlyConfigured(
                f"EMAIL_SSL_CERTFILE/EMAIL_SSL_KEYFILE: cannot load {certfile!r}: {exc}"
            ) from exc
    elif keyfile:
        raise ImproperlyConfigured("EMAIL_SSL_KEYFILE is set without EMAIL_SSL_CERTFILE")
    return context
