"""``mailwright check``: connect to the configured SMTP server step by step, send nothing."""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Callable
from dataclasses import dataclass

from .backends.smtp import EmailBackend
from .errors import describe

__all__ = ["CheckFailed", "run_check"]


@dataclass
class CheckFailed(Exception):
    step: str
    reason: str

    def __str__(self) -> str:
        return f"check failed at step {self.step!r}: {self.reason}"


def _offers(connection: smtplib.SMTP) -> str:
    features = connection.esmtp_features
    size = features.get("size", "").strip()
    auth = features.get("auth", "").strip()
    parts = [
        f"size limit: {size + ' bytes' if size and size != '0' else 'none given'}",
        f"PIPELINING: {'yes' if 'pipelining' in features else 'no'}",
        f"SMTPUTF8: {'yes' if 'smtputf8' in features else 'no'}",
        f"8BITMIME: {'yes' if '8bitmime' in features else 'no'}",
        f"STARTTLS: {'yes' if 'starttls' in features else 'no'}",
        f"AUTH: {auth or 'not offered'}",
    ]
    return "; ".join(parts)


def _tls_description(connection: smtplib.SMTP, host: str) -> str:
    sock = connection.sock
    if isinstance(sock, ssl.SSLSocket):
        return f"{sock.version()}, certificate verified for {host}"
    return "encrypted"


def run_check(
    backend: EmailBackend | None = None, report: Callable[[str, str], None] = print
) -> None:
    """Run the steps, calling ``report(step, text)`` for each; raise ``CheckFailed``
    naming the step that failed. The password is never reported."""
    backend = backend or EmailBackend()
    step = "connect"
    mode = "implicit TLS" if backend.use_ssl else "plain"
    connection: smtplib.SMTP | None = None
    try:
        connection = backend.new_connection()
        report(step, f"{backend.host}:{backend.port} ok ({mode})")
        if backend.use_ssl:
            report("tls", _tls_description(connection, backend.host))
        step = "ehlo"
        code, _ = connection.ehlo()
        if code != 250:
            connection.helo()
        greeting = (connection.ehlo_resp or b"").decode("utf-8", "replace").splitlines()
        report(step, f"ok, server name {greeting[0] if greeting else '(none)'}")
        report("offers", _offers(connection))
        step = "starttls"
        if backend.use_tls:
            connection.starttls(context=backend.ssl_context)
            connection.ehlo()
            report(step, f"ok: {_tls_description(connection, backend.host)}")
            report("offers", _offers(connection))
        else:
            report(step, "skipped (EMAIL_USE_TLS is off)")
        step = "auth"
        if backend.username:
            connection.login(backend.username, backend.password)
            report(step, f"ok as {backend.username!r}")
        else:
            report(step, "skipped (no EMAIL_HOST_USER)")
        step = "quit"
        connection.quit()
        connection = None
        report(step, "ok")
    except (smtplib.SMTPException, OSError) as exc:
        raise CheckFailed(step, describe(exc, backend.host, backend.port)) from exc
    finally:
        if connection is not None:
            connection.close()
