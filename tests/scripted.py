"""A scripted SMTP peer for protocol corner cases no ordinary server produces.

It answers each command with the next reply from a script and records every byte it
receives, on a real socket (127.0.0.1, random port).
"""

from __future__ import annotations

import socket
import threading


class ScriptedServer:
    def __init__(self, replies: dict[bytes, list[bytes]], features: list[bytes]) -> None:
        """``replies`` maps a command verb (b"MAIL", b"RCPT", b"DATA", b".") to the
        replies to give, in order; ``features`` are the EHLO extensions."""
        self.replies = {verb: list(answers) for verb, answers in replies.items()}
        self.features = features
        self.received = b""
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1)
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _reply(self, conn: socket.socket, verb: bytes) -> bytes:
        answers = self.replies.get(verb)
        reply = answers.pop(0) if answers else b"250 OK"
        conn.sendall(reply + b"\r\n")
        return reply

    def _serve(self) -> None:
        conn, _ = self.sock.accept()
        with conn:
            conn.sendall(b"220 scripted ESMTP\r\n")
            buffer = b""
            in_data = False
            while True:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                self.received += chunk
                buffer += chunk
                while b"\r\n" in buffer:
                    line, buffer = buffer.split(b"\r\n", 1)
                    if in_data:
                        if line == b".":
                            in_data = False
                            self._reply(conn, b".")
                        continue
                    verb = line.split(b" ", 1)[0].split(b":", 1)[0].upper()
                    if verb == b"EHLO":
                        lines = [b"scripted", *self.features]
                        text = b"".join(
                            b"250" + (b" " if i == len(lines) - 1 else b"-") + item + b"\r\n"
                            for i, item in enumerate(lines)
                        )
                        conn.sendall(text)
                    elif verb == b"QUIT":
                        conn.sendall(b"221 bye\r\n")
                        return
                    else:
                        reply = self._reply(conn, verb)
                        in_data = verb == b"DATA" and reply.startswith(b"354")

    def close(self) -> None:
        self.sock.close()
