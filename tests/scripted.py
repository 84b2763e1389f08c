"""A scripted SMTP peer for protocol corner cases no ordinary server produces.

It answers each command with the next reply from a script and records every byte it
receives, on a real socket (127.0.0.1, random port). Connections are served one
after another, each in its own thread, from one shared script.

A scripted reply may also be ``HANG_UP`` (close the connection instead of answering)
or ``STALL`` (never answer again on this connection; keep reading).
"""

from __future__ import annotations

import contextlib
import socket
import threading

HANG_UP = b"<hang up>"
STALL = b"<stall>"
_DEFAULTS = {b"DATA": b"354 go ahead", b"QUIT": b"221 bye"}


class ScriptedServer:
    def __init__(
        self,
        replies: dict[bytes, list[bytes]],
        features: list[bytes],
        *,
        greeting: bytes = b"220 scripted ESMTP",
        connections: int | None = None,
    ) -> None:
        """``replies`` maps a command verb (b"MAIL", b"RCPT", b"DATA", b".", b"QUIT",
        ...) to the replies to give, in order; ``features`` are the EHLO extensions.
        ``connections``: how many connections to accept (None: any number); once that
        many were accepted the port refuses new ones."""
        self.replies = {verb: list(answers) for verb, answers in replies.items()}
        self.features = features
        self.greeting = greeting
        self.received = b""  # every byte, of every connection
        self.chunks: list[bytes] = []  # what each read returned
        self.closed = 0  # connections that ended (the client hung up, or we did)
        self.accepted = 0
        self._limit = connections
        self._lock = threading.Condition()
        self._threads: list[threading.Thread] = []
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    # --- serving ---

    def _accept(self) -> None:
        while self._limit is None or self.accepted < self._limit:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self._threads.append(thread)
            thread.start()
        self.sock.close()  # no more connections: new ones are refused

    def _reply(self, conn: socket.socket, verb: bytes) -> bytes:
        with self._lock:
            answers = self.replies.get(verb)
            reply = answers.pop(0) if answers else _DEFAULTS.get(verb, b"250 OK")
        if reply not in (HANG_UP, STALL):
            conn.sendall(reply + b"\r\n")
        return reply

    def _serve(self, conn: socket.socket) -> None:
        try:
            with conn, contextlib.suppress(OSError):
                self._session(conn)
        finally:
            with self._lock:
                self.closed += 1
                self._lock.notify_all()

    def _session(self, conn: socket.socket) -> None:
        if self.greeting:
            conn.sendall(self.greeting + b"\r\n")
        buffer = b""
        in_data = False
        stalled = False
        while True:
            chunk = conn.recv(65536)
            if not chunk:
                return
            with self._lock:
                self.received += chunk
                self.chunks.append(chunk)
                self._lock.notify_all()
            if stalled:
                continue
            buffer += chunk
            while b"\r\n" in buffer:
                line, buffer = buffer.split(b"\r\n", 1)
                if in_data:
                    if line == b".":
                        in_data = False
                        reply = self._reply(conn, b".")
                        if reply == HANG_UP:
                            return
                        if reply == STALL:
                            stalled = True
                            break
                    continue
                verb = line.split(b" ", 1)[0].split(b":", 1)[0].upper()
                if verb == b"EHLO":
                    lines = [b"scripted", *self.features]
                    text = b"".join(
                        b"250" + (b" " if i == len(lines) - 1 else b"-") + item + b"\r\n"
                        for i, item in enumerate(lines)
                    )
                    conn.sendall(text)
                    continue
                reply = self._reply(conn, verb)
                if reply == HANG_UP or (verb == b"QUIT" and reply != STALL):
                    return
                if reply == STALL:
                    stalled = True
                    break
                in_data = verb == b"DATA" and reply.startswith(b"354")

    # --- for the tests ---

    def wait_closed(self, count: int = 1, timeout: float = 15) -> None:
        """Until ``count`` connections have ended (the client hung up or quit)."""
        with self._lock:
            if not self._lock.wait_for(lambda: self.closed >= count, timeout):
                raise AssertionError(f"{self.closed} of {count} connections ended")

    def wait_received(self, needle: bytes, timeout: float = 15) -> None:
        with self._lock:
            if not self._lock.wait_for(lambda: needle in self.received, timeout):
                raise AssertionError(f"{needle!r} never arrived")

    def command_reads(self) -> list[bytes]:
        """The reads that held at least one command (content only reads excluded)."""
        verbs = (b"EHLO", b"HELO", b"MAIL", b"RCPT", b"DATA", b"RSET", b"QUIT", b"NOOP")
        return [c for c in self.chunks if any(v in c for v in verbs)]

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes the accept() in progress
        self.sock.close()
