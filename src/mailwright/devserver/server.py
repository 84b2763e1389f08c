"""The development mail catcher: SMTP and the web inbox in one event loop.

The SMTP side needs nothing beyond the standard library; the web inbox needs aiohttp
(the ``devserver`` extra) and is skipped with a note when it is missing.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import errno
import importlib.util
import os
import secrets
import signal
import ssl
import sys
import threading
from collections.abc import Callable, Iterable
from typing import IO, Any

from .certs import TLSFiles, default_tls_dir, ensure_certificates, server_context
from .release import Relay, ReleasePolicy
from .report import format_message
from .smtp import SMTPService
from .store import MessageStore, StoredMessage

__all__ = ["WEB_EXTRA_NOTE", "DevServer", "PortInUseError", "web_available"]

DEFAULT_MAX_SIZE = 32 * 1024 * 1024
DEFAULT_MAX_MESSAGES = 5_000  # as Mailpit keeps (its default is 500)
DEFAULT_MAX_CONNECTIONS = 256  # concurrent SMTP sessions; more are told 421 and closed
WEB_EXTRA_NOTE = (
    "the web inbox needs aiohttp, not installed: pip install 'mailwright[devserver]' "
    "(running without the inbox)"
)
# Reporting and search indexing wait until no message has arrived for this long, so
# under a flood of mail nearly all CPU goes to accepting it (printing catches up
# afterwards); they run in slices, and take one slice a second even during a flood.
QUIET_SECONDS = 0.01
SLICE_SECONDS = 0.01
MAX_LAG = 1.0
BIG_MESSAGE = 256 * 1024  # printed and indexed in a thread: parsing it takes a while


def _release_heap() -> None:
    """Hand freed heap memory back to the system (glibc's ``malloc_trim``): after a
    big message is received, parsed and put on disk, the C allocator would otherwise
    keep its high-water mark as resident memory. A no-op elsewhere."""
    global _malloc_trim
    if _malloc_trim is None:
        try:
            import ctypes

            _malloc_trim = ctypes.CDLL("libc.so.6").malloc_trim
        except (OSError, AttributeError):
            _malloc_trim = False
    if _malloc_trim:
        _malloc_trim(0)


_malloc_trim: Any = None


class PortInUseError(OSError):
    """The port the catcher should listen on is taken; ``what`` says which ("SMTP",
    "SMTPS" or "web")."""

    what = "SMTP"


def web_available() -> bool:
    return importlib.util.find_spec("aiohttp") is not None


class DevServer:
    """Accepts every message on ``host:smtp_port``, prints it, keeps it for the web inbox
    on ``host:web_port`` (``web_port=None``: no inbox). Port 0 picks a free port; the
    chosen ports are in ``smtp_port`` / ``web_port`` once started.

    ``tls=True`` offers STARTTLS with a certificate made by a local CA kept in
    ``tls_dir`` (default: a per-user cache folder; the CA file is ``ca_file``), or with
    your own ``tls_cert``/``tls_key``. AUTH PLAIN and LOGIN take any credentials.
    ``web_host_allow`` adds host names the inbox answers to (besides the listening
    address, localhost, 127.0.0.1 and [::1]).

    ``max_messages`` (5,000; None: no limit) caps how many are kept: one more drops
    the oldest. ``max_connections`` (256; None: no limit) caps concurrent SMTP
    sessions: a client beyond it is answered 421 and closed. With a Maildir, a
    message's bytes are read from its file when needed, not held in memory.

    Release (send a caught message on) goes only to the relays in ``release_to``
    (``HOST:PORT``, or an ``smtp://``/``smtps://`` URL for TLS and AUTH) and to the
    SMTP servers of the mailers named in ``release_mailers`` (``MAILERS``), and, with
    ``release_allow`` (a regular expression searched in each address), only to
    recipients it matches. Without ``release_to`` release is off. Deleting and
    releasing need the inbox page or the header ``X-Mailwright-Token: api_token``.

    Run it in the foreground (``run()``, stops on Ctrl-C) or in a background thread
    (``start_in_thread()`` / ``stop_thread()``, or ``with DevServer(...) as server:``).
    Received messages are in ``store`` (see ``MessageStore``: ``messages()``,
    ``get(id)``, ``clear()``).

    It prints each message it receives only when asked: ``quiet=False``, or an ``out``
    stream to print to (``mailwright smtpd`` prints to standard output). Warnings (a
    Maildir file that cannot be written) go to ``err`` (standard error) regardless.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        smtp_port: int = 1025,
        web_port: int | None = 8025,
        *,
        maildir: str | os.PathLike[str] | None = None,
        max_size: int = DEFAULT_MAX_SIZE,
        quiet: bool | None = None,
        out: IO[str] | None = None,
        err: IO[str] | None = None,
        on_message: Callable[[StoredMessage], None] | None = None,
        tls: bool = False,
        tls_dir: str | os.PathLike[str] | None = None,
        tls_cert: str | os.PathLike[str] | None = None,
        tls_key: str | os.PathLike[str] | None = None,
        web_host_allow: Iterable[str] = (),
        smtps_port: int | None = None,
        max_messages: int | None = DEFAULT_MAX_MESSAGES,
        max_connections: int | None = DEFAULT_MAX_CONNECTIONS,
        release_to: Iterable[str] = (),
        release_mailers: Iterable[str] = (),
        release_allow: str | None = None,
        api_token: str | None = None,
    ) -> None:
        self.host = host
        self.smtp_port = smtp_port
        self.web_port = web_port
        # Quiet unless asked: by quiet=False, or by giving a stream to print to.
        self.quiet = (out is None) if quiet is None else quiet
        self.out = out if out is not None else sys.stdout
        self.err = err if err is not None else sys.stderr
        self.store = MessageStore(maildir, max_messages)
        self.max_connections = max_connections
        self.smtps_port = smtps_port
        self.tls = tls or tls_cert is not None or smtps_port is not None
        self.tls_dir = tls_dir
        self.tls_cert = tls_cert
        self.tls_key = tls_key
        self.tls_files: TLSFiles | None = None
        self.web_host_allow = [name.lower() for name in web_host_allow]
        # Raises ReleaseError (a ValueError) for a relay or pattern that cannot be used.
        self.release_policy = ReleasePolicy(
            [
                *(Relay.parse(text) for text in release_to),
                *(Relay.from_mailer(alias) for alias in release_mailers),
            ],
            release_allow,
        )
        #: What a script sends as X-Mailwright-Token to delete or release (browsers on
        #: the inbox page need none); printed in the banner.
        self.api_token = api_token or secrets.token_urlsafe(18)
        self.notes: list[str] = []
        self._on_message = on_message
        self._max_size = max_size
        self._smtp: SMTPService | None = None
        self._smtp_server: asyncio.AbstractServer | None = None
        self._smtps_server: asyncio.AbstractServer | None = None
        self._web_runner: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stopped: asyncio.Event | None = None
        self._pending: collections.deque[tuple[StoredMessage, bool]] = collections.deque()
        self._work: asyncio.Event | None = None
        self._worker: asyncio.Task[None] | None = None
        self._last_accept = 0.0
        self._loop_thread: int | None = None
        self._inflight = 0  # messages being written, not yet in _pending
        self._reported = threading.Event()
        self._reported.set()

    # --- reporting ---

    def _print(self, text: str, stream: IO[str] | None = None) -> None:
        print(text, file=stream or self.out, flush=True)

    def warn(self, text: str) -> None:
        """A line on the error stream (Maildir problems, failed releases)."""
        self._print(f"mailwright smtpd: warning: {text}", self.err)

    _warn = warn

    @property
    def inbox_url(self) -> str | None:
        if self.web_port is None:
            return None
        host = self.host
        if host in ("", "0.0.0.0"):
            host = "127.0.0.1"
        elif host == "::":
            host = "::1"
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.web_port}/"

    @property
    def ca_file(self) -> str | None:
        """The CA certificate a client should trust (EMAIL_SSL_CAFILE), when made here."""
        if self.tls_files is None or self.tls_files.ca is None:
            return None
        return str(self.tls_files.ca)

    # --- life cycle (in the event loop) ---

    def _tls_context(self) -> ssl.SSLContext | None:
        if not self.tls:
            return None
        if self.tls_cert is not None:
            key = os.fspath(self.tls_key) if self.tls_key is not None else None
            from pathlib import Path

            self.tls_files = TLSFiles(None, Path(self.tls_cert), Path(key) if key else None)
        else:
            folder = self.tls_dir if self.tls_dir is not None else default_tls_dir()
            self.tls_files = ensure_certificates(folder, self.host)
        return server_context(self.tls_files)

    async def start(self) -> None:
        loop = self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        tls_context = self._tls_context()
        if self.store.maildir_path is not None:
            loaded = await asyncio.to_thread(self.store.load_maildir, self._warn)
            if loaded:
                self._pending.extend((stored, False) for stored in self.store.all())

        def deliver_batch(
            results: list[tuple[Callable[[BaseException | None], None], Any]],
        ) -> None:
            def run() -> None:
                for done, error in results:
                    done(error)

            loop.call_soon_threadsafe(run)

        self.store.start_writer(deliver_batch)
        self._smtp = SMTPService(
            self._deliver,
            max_size=self._max_size,
            tls_context=tls_context,
            max_connections=self.max_connections,
        )
        try:
            self._smtp_server = await loop.create_server(
                self._smtp.factory(), self.host or None, self.smtp_port
            )
        except OSError as exc:
            self.store.close()
            raise self._bind_error("SMTP", self.smtp_port, exc) from exc
        self.smtp_port = self._smtp_server.sockets[0].getsockname()[1]
        if self.smtps_port is not None:
            try:
                self._smtps_server = await loop.create_server(
                    self._smtp.factory(implicit_tls=True),
                    self.host or None,
                    self.smtps_port,
                    ssl=tls_context,
                    ssl_handshake_timeout=30,
                )
            except OSError as exc:
                await self.stop()
                raise self._bind_error("SMTPS", self.smtps_port, exc) from exc
            self.smtps_port = self._smtps_server.sockets[0].getsockname()[1]
        self._smtp.start_sweeping()
        self._work = asyncio.Event()
        self._worker = loop.create_task(self._background())
        if self._pending:
            self._work.set()
        if self.web_port is not None:
            if not web_available():
                self.notes.append(WEB_EXTRA_NOTE)
                self.web_port = None
            else:
                await self._start_web()

    async def _start_web(self) -> None:
        from aiohttp import web

        from .web import make_app

        assert self.web_port is not None
        app = make_app(self.store, self, self.web_host_allow)
        self._web_runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._web_runner.setup()
        site = web.TCPSite(self._web_runner, self.host or None, self.web_port)
        try:
            await site.start()
        except OSError as exc:
            await self.stop()
            raise self._bind_error("web", self.web_port, exc) from exc
        self.web_port = self._web_runner.addresses[0][1]

    def _deliver(
        self, raw: bytes, mail_from: str, rcpt_tos: list[str], auth_user: str | None
    ) -> asyncio.Future[str | None] | None:
        loop = self._loop
        assert loop is not None
        self._last_accept = loop.time()
        self._reported.clear()
        self._inflight += 1
        future: asyncio.Future[str | None] | None = None

        def written(stored: StoredMessage, error: BaseException | None) -> None:
            assert future is not None
            if error is not None:
                self._inflight -= 1
                if self._work is not None:
                    self._work.set()
                self._warn(f"cannot write to the Maildir: {error}")
                future.set_result(getattr(error, "strerror", None) or str(error))
            else:
                self._received(stored)
                future.set_result(None)

        stored = self.store.accept(raw, mail_from, rcpt_tos, auth_user, written)
        if stored is not None:
            self._received(stored)
            return None
        future = loop.create_future()
        return future

    def _received(self, stored: StoredMessage) -> None:
        self._inflight -= 1
        self._pending.append((stored, True))
        if self._work is not None:
            self._work.set()
        if self._on_message is not None:
            self._on_message(stored)

    async def _background(self) -> None:
        """Print new messages and build the search index when mail is not arriving."""
        assert self._work is not None and self._loop is not None
        loop = self._loop
        while True:
            await self._work.wait()
            self._work.clear()
            starved_since: float | None = None
            while self._pending:
                now = loop.time()
                quiet_for = now - self._last_accept
                if quiet_for < QUIET_SECONDS:
                    # Mail is arriving: wait for a pause, but never fall more than
                    # MAX_LAG behind a steady stream (then take one slice anyway).
                    starved_since = starved_since if starved_since is not None else now
                    if now - starved_since < MAX_LAG:
                        await asyncio.sleep(QUIET_SECONDS)
                        continue
                    starved_since = now
                else:
                    starved_since = None
                # One time slice, so the event loop is never held up for long.
                deadline = loop.time() + SLICE_SECONDS
                while self._pending and loop.time() < deadline:
                    stored, report = self._pending.popleft()
                    if stored.size > BIG_MESSAGE:  # parse it in a thread
                        await asyncio.to_thread(self._report_and_index, stored, report)
                    else:
                        self._report_and_index(stored, report)
                await asyncio.sleep(0)
            if self._inflight == 0 and not self._pending:
                self._reported.set()

    def _report_and_index(self, stored: StoredMessage, report: bool) -> None:
        if report and not self.quiet:
            self._print(format_message(stored))
        _ = stored.search_text
        _ = stored.summary
        if stored.spill() and stored.size > BIG_MESSAGE:
            _release_heap()

    def _bind_error(self, what: str, port: int, exc: OSError) -> OSError:
        if exc.errno == errno.EADDRINUSE:
            text = f"{what} port {port} on {self.host} is already in use"
            error = PortInUseError(exc.errno, text)
            error.what = what
            return error
        return OSError(exc.errno, f"cannot listen for {what} on {self.host}:{port}: {exc.strerror}")

    async def stop(self) -> None:
        if self._smtps_server is not None:
            self._smtps_server.close()
            await self._smtps_server.wait_closed()
            self._smtps_server = None
        if self._smtp_server is not None:
            self._smtp_server.close()
            if self._smtp is not None:
                self._smtp.close_all()
            await self._smtp_server.wait_closed()
            self._smtp_server = None
        if self._web_runner is not None:
            await self._web_runner.cleanup()
            self._web_runner = None
        if self._worker is not None:
            self._worker.cancel()
            self._worker = None
        await asyncio.to_thread(self.store.close)

    def banner(self) -> str:
        tls = ", STARTTLS" if self.tls else ""
        lines = [
            f"mailwright development SMTP server on {self.host}:{self.smtp_port} "
            f"(AUTH PLAIN/LOGIN with any credentials{tls})"
        ]
        if self.smtps_port is not None:
            lines.append(f"SMTPS (implicit TLS) on {self.host}:{self.smtps_port}")
        if self.ca_file:
            lines.append(f"TLS: clients trust the catcher with EMAIL_SSL_CAFILE={self.ca_file}")
        if self.inbox_url:
            lines.append(f"web inbox: {self.inbox_url}")
            lines.append(
                f"scripts that delete or release send the header X-Mailwright-Token: "
                f"{self.api_token}"
            )
            policy = self.release_policy
            if policy.enabled:
                allow = f" (recipients matching {policy.allow_text!r})" if policy.allow else ""
                relays = ", ".join(
                    name if name == relay.config.address else f"{name} ({relay.config.address})"
                    for name, relay in policy.relays.items()
                )
                lines.append(f"release to: {relays}{allow}")
        if self.store.maildir_path is not None:
            lines.append(
                f"storing messages in Maildir {self.store.maildir_path} "
                f"({len(self.store)} there at start)"
            )
        if self.host not in ("localhost", "::1") and not self.host.startswith("127."):
            lines.append(
                f"note: listening on {self.host or 'every address'}: other machines can reach "
                "the catcher, and the inbox shows them every caught message"
            )
        lines.extend(f"note: {note}" for note in self.notes)
        return "\n".join(lines)

    async def serve(self) -> None:
        """Start, print the banner, and run until cancelled."""
        await self.start()
        self._print(self.banner())
        try:
            await asyncio.Event().wait()
        finally:
            await self.stop()

    def run(self) -> None:
        """Run in the foreground until Ctrl-C or SIGTERM (``docker stop``)."""

        async def main() -> None:
            task = asyncio.current_task()
            if task is not None:
                with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
            await self.serve()

        try:
            asyncio.run(main())
        except (KeyboardInterrupt, asyncio.CancelledError):
            self._print("stopped")

    # --- in a background thread ---

    def start_in_thread(self) -> DevServer:
        ready = threading.Event()
        failure: list[BaseException] = []

        async def main() -> None:
            self._stopped = asyncio.Event()
            try:
                await self.start()
            except BaseException as exc:
                failure.append(exc)
                ready.set()
                return
            ready.set()
            try:
                await self._stopped.wait()
            finally:
                await self.stop()

        self._thread = threading.Thread(
            target=asyncio.run, args=(main(),), name="mailwright-devserver", daemon=True
        )
        self._thread.start()
        ready.wait(60)
        if failure:
            self._thread.join(5)
            raise failure[0]
        return self

    def __enter__(self) -> DevServer:
        return self.start_in_thread()

    def __exit__(self, *exc_info: object) -> None:
        self.stop_thread()

    def stop_thread(self) -> None:
        if self._loop is not None and self._stopped is not None:
            self._loop.call_soon_threadsafe(self._stopped.set)
        if self._thread is not None:
            self._thread.join(15)
        self._thread = None

    def wait_for_messages(self, count: int, timeout: float = 30) -> bool:
        """Block until at least ``count`` messages are stored (False on timeout)."""
        return self.store.wait_for_count(count, timeout)

    def wait_until_reported(self, timeout: float = 30) -> bool:
        """Block until every message received so far has been printed and indexed."""
        return self._reported.wait(timeout)

    def call_in_loop(self, function: Callable[[], None]) -> None:
        """Run ``function`` in the server's event loop thread (soon)."""
        if self._loop is not None:
            if threading.get_ident() == self._loop_thread:
                function()
            else:
                self._loop.call_soon_threadsafe(function)
