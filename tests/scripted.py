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


class PostfixLike:
    """A stateful peer that keeps a transaction refused at its end of data, as Postfix
    3.7 does when ``smtpd_end_of_data_restrictions`` (a policy service) refuses it.

    Seen against Postfix: after ``450`` (or ``550``) at the end of data, Postfix keeps
    the refused transaction's sender. The next MAIL gets ``503 5.5.1 Error: nested MAIL
    command``; RCPT then gets 250 (the recipient joins the stale transaction), DATA
    354, and the end of that data is judged with the stale sender, which the policy
    refuses again. RSET clears it. Senders whose local part is ``eod450`` or
    ``eod550`` are refused at the end of data. ``delivered`` holds ``(sender,
    recipients, content)`` for every message accepted."""

    def __init__(self, *, pipelining: bool = True) -> None:
        self.features = [b"PIPELINING", b"8BITMIME"] if pipelining else [b"8BITMIME"]
        self.received = b""
        self.delivered: list[tuple[str, list[str], bytes]] = []
        self.closed = 0
        self._lock = threading.Condition()
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            with conn, contextlib.suppress(OSError):
                self._session(conn)
        finally:
            with self._lock:
                self.closed += 1
                self._lock.notify_all()

    @staticmethod
    def _path(line: bytes) -> str:
        return line.split(b"<", 1)[1].split(b">", 1)[0].decode()

    def _session(self, conn: socket.socket) -> None:
        conn.sendall(b"220 postfix-like ESMTP\r\n")
        sender: str | None = None
        recipients: list[str] = []
        content: list[bytes] | None = None  # collecting DATA
        buffer = b""
        while True:
            chunk = conn.recv(65536)
            if not chunk:
                return
            with self._lock:
                self.received += chunk
                self._lock.notify_all()
            buffer += chunk
            out: list[bytes] = []
            while b"\r\n" in buffer:
                line, buffer = buffer.split(b"\r\n", 1)
                if content is not None:
                    if line != b".":
                        content.append(line[1:] if line.startswith(b".") else line)
                        continue
                    assert sender is not None
                    verdict = sender.split("@")[0]
                    if verdict in ("eod450", "eod550"):
                        # Refused; the transaction stays (no reset), as Postfix's does.
                        out.append(f"{verdict[3:]} 4.7.1 <END-OF-MESSAGE>: refused".encode())
                    else:
                        with self._lock:
                            self.delivered.append(
                                (sender, recipients, b"\r\n".join(content) + b"\r\n")
                            )
                        out.append(b"250 2.0.0 Ok: queued")
                        sender, recipients = None, []
                    content = None
                    continue
                verb = line[:4].upper()
                if verb == b"EHLO":
                    lines = [b"postfix-like", *self.features]
                    out.append(
                        b"\r\n".join(
                            b"250" + (b" " if i == len(lines) - 1 else b"-") + item
                            for i, item in enumerate(lines)
                        )
                    )
                elif verb == b"MAIL":
                    if sender is not None:
                        out.append(b"503 5.5.1 Error: nested MAIL command")
                    else:
                        sender, recipients = self._path(line), []
                        out.append(b"250 2.1.0 Ok")
                elif verb == b"RCPT":
                    if sender is None:
                        out.append(b"503 5.5.1 Error: need MAIL command")
                    else:
                        recipients.append(self._path(line))
                        out.append(b"250 2.1.5 Ok")
                elif verb == b"DATA":
                    if sender is None or not recipients:
                        out.append(b"503 5.5.1 Error: need RCPT command")
                    else:
                        content = []
                        out.append(b"354 End data with <CR><LF>.<CR><LF>")
                elif verb == b"RSET":
                    sender, recipients = None, []
                    out.append(b"250 2.0.0 Ok")
                elif verb == b"QUIT":
                    conn.sendall(b"".join(o + b"\r\n" for o in out) + b"221 2.0.0 Bye\r\n")
                    return
                else:
                    out.append(b"250 2.0.0 Ok")
            if out:
                conn.sendall(b"".join(o + b"\r\n" for o in out))

    def wait_closed(self, count: int = 1, timeout: float = 15) -> None:
        with self._lock:
            if not self._lock.wait_for(lambda: self.closed >= count, timeout):
                raise AssertionError(f"{self.closed} of {count} connections ended")

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
