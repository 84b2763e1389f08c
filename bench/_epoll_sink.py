"""A lean counting SMTP sink for the benchmarks: one thread, ``select.epoll``, no
asyncio, one read and one write per pipelined group.

Why: Postfix's ``smtp-sink`` makes about ten system calls a message (strace: five
``rt_sigprocmask``, three ``poll``, a ``read``, two ``write``s, one of them its
counter). Against the buffered raw client of ``bench/engine.py`` (eight connections,
so several groups per wake-up) this sink costs about 13.5 µs of CPU a message against
smtp-sink's 18.5, and lets that client reach about 71,000 messages a second where
smtp-sink holds it at 52,000: the raw reference is bound by smtp-sink. Against a
client that sends one message per round trip (a worker process, ``send_messages``)
both cost 20 to 30 µs a message: the sink is woken for each, and the wake-up is the
cost.

It speaks just enough SMTP for a client under test: EHLO (PIPELINING, 8BITMIME,
SIZE), HELO, MAIL, RCPT, RSET, NOOP (250), DATA (354, then the content up to the
final dot, 250), QUIT (221). It keeps no message. Prints ``mesg=N`` as ``smtp-sink
-c`` does (the count of messages received so far) when it has nothing to do, and when
a session ends.

    python bench/_epoll_sink.py --port 2525
"""

from __future__ import annotations

import argparse
import os
import select
import socket
import sys

EHLO = b"250-sink\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 SIZE 0\r\n"
OK = b"250 2.0.0 Ok\r\n"
QUEUED = b"250 2.0.0 Ok: queued\r\n"
START_DATA = b"354 End data with <CR><LF>.<CR><LF>\r\n"
REPLIES = {
    b"MAIL": OK,
    b"RCPT": OK,
    b"RSET": OK,
    b"NOOP": OK,
    b"HELO": b"250 sink\r\n",
    b"EHLO": EHLO,
}


class Session:
    __slots__ = ("closing", "data", "out", "pending", "sock", "waiting_to_write")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.data = False  # between DATA's 354 and the final dot
        self.pending = b""  # command bytes without their line end yet, or the tail of data
        self.out = b""  # replies the socket did not take yet
        self.waiting_to_write = False  # registered for EPOLLOUT (only while out is left)
        self.closing = False

    def feed(self, chunk: bytes) -> tuple[bytes, int]:
        """The replies to ``chunk`` and the number of messages it ended."""
        buffer = self.pending + chunk
        replies: list[bytes] = []
        ended = 0
        start = 0
        while True:
            if self.data:
                # The final dot: CRLF "." CRLF, the first CRLF perhaps DATA's own.
                end = buffer.find(b"\r\n.\r\n", start)
                if end < 0:  # keep what may be the start of the final dot
                    self.pending = buffer[max(start, len(buffer) - 4) :]
                    break
                self.data = False
                ended += 1
                replies.append(QUEUED)
                start = end + 5
                continue
            end = buffer.find(b"\r\n", start)
            if end < 0:
                self.pending = buffer[start:]
                break
            verb = buffer[start : start + 4].upper()
            start = end + 2
            reply = REPLIES.get(verb)
            if reply is not None:
                replies.append(reply)
            elif verb == b"DATA":
                replies.append(START_DATA)
                self.data = True
                # The content may be empty: its final dot then follows DATA's CRLF.
                start -= 2
            elif verb == b"QUIT":
                replies.append(b"221 2.0.0 Bye\r\n")
                self.closing = True
                self.pending = b""
                break
            else:
                replies.append(b"502 5.5.2 Error: command not recognized\r\n")
        return b"".join(replies), ended


def serve(port: int) -> None:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(128)
    listener.setblocking(False)
    poller = select.epoll()
    listener_fd = listener.fileno()
    poller.register(listener_fd, select.EPOLLIN)
    sessions: dict[int, Session] = {}
    count = shown = 0
    out = sys.stdout.fileno()

    def close(fd: int) -> None:
        session = sessions.pop(fd)
        poller.unregister(fd)
        session.sock.close()

    while True:
        # Busy: no counter written (a write a message would double the sink's system
        # calls). It is written once nothing arrives for 10 ms, and when a session ends.
        events = poller.poll(0.01 if count != shown else -1)
        if not events:
            os.write(out, f"mesg={count}\n".encode())
            shown = count
            continue
        for fd, mask in events:
            if fd == listener_fd:
                try:
                    sock, _ = listener.accept()
                except BlockingIOError:
                    continue
                sock.setblocking(False)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                sock.send(b"220 sink ESMTP\r\n")
                sessions[sock.fileno()] = Session(sock)
                poller.register(sock.fileno(), select.EPOLLIN)
                continue
            session = sessions[fd]
            if mask & select.EPOLLIN:
                try:
                    chunk = session.sock.recv(65536)
                except ConnectionError:
                    chunk = b""
                if not chunk:
                    close(fd)
                    continue
                replies, ended = session.feed(chunk)
                count += ended
                session.out += replies
            if session.out:
                try:
                    sent = session.sock.send(session.out)
                except BlockingIOError:
                    sent = 0
                except ConnectionError:
                    close(fd)
                    continue
                session.out = session.out[sent:]
                if bool(session.out) != session.waiting_to_write:  # (a system call: on change)
                    session.waiting_to_write = bool(session.out)
                    poller.modify(fd, select.EPOLLIN | (select.EPOLLOUT if session.out else 0))
            if session.closing and not session.out:
                close(fd)
                os.write(out, f"mesg={count}\n".encode())
                shown = count


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    serve(parser.parse_args().port)
