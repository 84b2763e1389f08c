"""The development mail catcher: SMTP and the web inbox in one event loop."""

from __future__ import annotations

import asyncio
import errno
import os
import sys
import threading
from collections.abc import Callable
from typing import IO

from aiohttp import web

from .report import format_message
from .smtp import CatcherHandler, smtp_factory
from .store import MessageStore, StoredMessage
from .web import make_app

__all__ = ["DevServer", "PortInUseError"]

DEFAULT_MAX_SIZE = 32 * 1024 * 1024


class PortInUseError(OSError):
    """The port the catcher should listen on is taken."""


class DevServer:
    """Accepts every message on ``host:smtp_port``, prints it, keeps it for the web inbox
    on ``host:web_port`` (``web_port=None``: no inbox). Port 0 picks a free port; the
    chosen ports are in ``smtp_port`` / ``web_port`` once started.

    Run it in the foreground (``run()``, stops on Ctrl-C) or in a background thread
    (``start_in_thread()`` / ``stop_thread()``).
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        smtp_port: int = 1025,
        web_port: int | None = 8025,
        *,
        maildir: str | os.PathLike[str] | None = None,
        max_size: int = DEFAULT_MAX_SIZE,
        quiet: bool = False,
        out: IO[str] | None = None,
        on_message: Callable[[StoredMessage], None] | None = None,
    ) -> None:
        self.host = host
        self.smtp_port = smtp_port
        self.web_port = web_port
        self.quiet = quiet
        self.out = out if out is not None else sys.stdout
        self.store = MessageStore(maildir)
        self._on_message = on_message
        self._handler = CatcherHandler(self.store, self._report)
        self._max_size = max_size
        self._smtp_server: asyncio.AbstractServer | None = None
        self._web_runner: web.AppRunner | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stopped: asyncio.Event | None = None

    # --- reporting ---

    def _print(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def _report(self, stored: StoredMessage) -> None:
        if not self.quiet:
            self._print(format_message(stored))
        if self._on_message is not None:
            self._on_message(stored)

    @property
    def inbox_url(self) -> str | None:
        if self.web_port is None:
            return None
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.web_port}/"

    # --- life cycle (in the event loop) ---

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            self._smtp_server = await loop.create_server(
                smtp_factory(self._handler, self._max_size), self.host, self.smtp_port
            )
        except OSError as exc:
            raise self._bind_error("SMTP", self.smtp_port, exc) from exc
        self.smtp_port = self._smtp_server.sockets[0].getsockname()[1]
        if self.web_port is not None:
            self._web_runner = web.AppRunner(make_app(self.store), access_log=None)
            await self._web_runner.setup()
            site = web.TCPSite(self._web_runner, self.host, self.web_port)
            try:
                await site.start()
            except OSError as exc:
                await self.stop()
                raise self._bind_error("web", self.web_port, exc) from exc
            self.web_port = self._web_runner.addresses[0][1]

    def _bind_error(self, what: str, port: int, exc: OSError) -> OSError:
        if exc.errno == errno.EADDRINUSE:
            return PortInUseError(exc.errno, f"{what} port {port} on {self.host} is already in use")
        return OSError(exc.errno, f"cannot listen for {what} on {self.host}:{port}: {exc.strerror}")

    async def stop(self) -> None:
        if self._smtp_server is not None:
            self._smtp_server.close()
            await self._smtp_server.wait_closed()
            self._smtp_server = None
        if self._web_runner is not None:
            await self._web_runner.cleanup()
            self._web_runner = None

    def banner(self) -> str:
        lines = [f"mailwright development SMTP server on {self.host}:{self.smtp_port}"]
        if self.inbox_url:
            lines.append(f"web inbox: {self.inbox_url}")
        if self.store.maildir_path is not None:
            lines.append(f"storing messages in Maildir {self.store.maildir_path}")
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
        """Run in the foreground until Ctrl-C."""
        try:
            asyncio.run(self.serve())
        except KeyboardInterrupt:
            self._print("stopped")

    # --- in a background thread ---

    def start_in_thread(self) -> DevServer:
        ready = threading.Event()
        failure: list[BaseException] = []

        async def main() -> None:
            self._loop = asyncio.get_running_loop()
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

        self._thread = threading.Thread(target=asyncio.run, args=(main(),), daemon=True)
        self._thread.start()
        ready.wait(30)
        if failure:
            self._thread.join(5)
            raise failure[0]
        return self

    def stop_thread(self) -> None:
        if self._loop is not None and self._stopped is not None:
            self._loop.call_soon_threadsafe(self._stopped.set)
        if self._thread is not None:
            self._thread.join(10)
        self._thread = None
