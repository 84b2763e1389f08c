"""``mailwright check``: set up a session with the configured SMTP server step by step
and report each step, sending nothing.

It runs the same engine as sending (``mailwright.smtp``): the same TLS verification,
AUTH and errors. Each step is announced before it starts and bounded by 10 seconds
(or EMAIL_TIMEOUT when that is shorter), so a server that never answers cannot hang it.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
from dataclasses import dataclass

from .backends.smtp import EmailBackend
from .describe import describe
from .smtp import SMTPConfig, SMTPConnection

__all__ = ["STEP_TIMEOUT", "CheckFailed", "run_check"]

STEP_TIMEOUT = 10.0


@dataclass
class CheckFailed(Exception):
    step: str
    reason: str

    def __str__(self) -> str:
        return f"check failed at step {self.step!r}: {self.reason}"


def _offers(extensions: dict[str, str]) -> str:
    size = extensions.get("size", "").strip()
    auth = extensions.get("auth", "").strip()
    parts = [
        f"size limit: {size + ' bytes' if size and size != '0' else 'none given'}",
        f"PIPELINING: {'yes' if 'pipelining' in extensions else 'no'}",
        f"SMTPUTF8: {'yes' if 'smtputf8' in extensions else 'no'}",
        f"8BITMIME: {'yes' if '8bitmime' in extensions else 'no'}",
        f"STARTTLS: {'yes' if 'starttls' in extensions else 'no'}",
        f"AUTH: {auth or 'not offered'}",
    ]
    return "; ".join(parts)


class _Progress:
    """Turns the engine's step announcements into report lines: each step when it
    starts, and how it ended when the next one starts; skipped steps in their place."""

    def __init__(
        self, config: SMTPConfig, connection: SMTPConnection, report: Callable[[str, str], None]
    ) -> None:
        self.config = config
        self.connection = connection
        self.report = report
        self.step = "connect"  # the step in progress, or the last one
        self.running = False
        self.skipped_tls = False

    def __call__(self, step: str, detail: str) -> None:
        self.finish()
        if step in ("auth", "quit") and not self.config.use_tls:
            self.skip_tls()
        if step == "quit" and not self.config.username:
            self.report("auth", "skipped (no EMAIL_HOST_USER)")
        self.step, self.running = step, True
        self.report(step, f"{detail} ..." if detail else "...")

    def skip_tls(self) -> None:
        if not self.skipped_tls:
            self.skipped_tls = True
            self.report("starttls", "skipped (EMAIL_USE_TLS is off)")

    def _tls(self) -> str:
        sock = self.connection.socket
        version = sock.version() if isinstance(sock, ssl.SSLSocket) else "TLS"
        return f"{version}, certificate verified for {self.config.host}"

    def finish(self) -> None:
        """Report how the step in progress ended (it succeeded: the next one starts)."""
        if not self.running:
            return
        self.running = False
        protocol = self.connection.protocol
        step = self.step
        if step == "connect":
            self.report(step, f"{self.config.address} ok ({self.config.mode})")
            if self.config.use_ssl:
                self.report("tls", self._tls())
        elif step == "greeting" and protocol is not None and protocol.greeting is not None:
            self.report(step, f"ok: {protocol.greeting}")
        elif step == "ehlo" and protocol is not None:
            hello = protocol.hello
            name = hello.lines[0].decode("utf-8", "replace") if hello and hello.lines else "?"
            self.report(step, f"ok, server name {name}")
            self.report("offers", _offers(protocol.extensions))
        elif step == "starttls":
            self.report(step, f"ok: {self._tls()}")
        elif step == "auth":
            oauth2 = " with OAuth2" if self.config.oauth2_token is not None else ""
            self.report(step, f"ok as {self.config.username!r}{oauth2}")
        elif step == "quit":
            self.report(step, "ok")


def run_check(
    backend: EmailBackend | None = None, report: Callable[[str, str], None] = print
) -> None:
    """Run the steps, calling ``report(step, text)`` for each; raise ``CheckFailed``
    naming the step that failed. The password is never reported."""
    config = (backend or EmailBackend()).config
    timeout = min(STEP_TIMEOUT, config.timeout) if config.timeout else STEP_TIMEOUT
    connection = SMTPConnection(config, timeout=timeout)
    progress = _Progress(config, connection, report)
    connection.on_step = progress
    try:
        connection.connect()
        progress("quit", "")
        connection.quit()
        progress.finish()
    except Exception as exc:
        raise CheckFailed(progress.step, describe(exc, config.host, config.port)) from exc
    finally:
        connection.abort()
