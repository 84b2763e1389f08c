"""An SMTP server that misbehaves at random, with a fixed seed (for the outbox tests).

aiosmtpd on 127.0.0.1. Before answering MAIL, RCPT, DATA or the end of the content,
it may (each with its own probability): drop the connection without a reply, answer
``421`` and hang up, answer ``451``, or stall past the client's timeout and hang up.
Recipients in ``doomed_recipients`` get ``550`` and content containing
``doomed_marker`` gets ``554`` at the end of data: those messages must end in the
outbox's dead-letter state. A message counts as received only when the server
answered ``250`` to its content.
"""

from __future__ import annotations

import asyncio
import random
import threading
from collections import Counter
from dataclasses import dataclass, field

from aiosmtpd.smtp import SMTP


@dataclass
class Faults:
    seed: int = 1
    drop: float = 0.0  # close the connection instead of replying
    busy: float = 0.0  # 421, then close
    later: float = 0.0  # 451
    stall: float = 0.0  # wait ``stall_for`` seconds (past the client's timeout), then close
    stall_for: float = 1.0
    doomed_recipients: set[str] = field(default_factory=set)
    doomed_marker: bytes = b"X-Doomed: yes"
    # Faults to inject first, in order, per place ("MAIL", "RCPT", "DATA", "END"):
    # "drop", "busy", "later" or "stall"; the random ones come after.
    script: dict[str, list[str]] = field(default_factory=dict)


class _Handler:
    def __init__(self, server: FaultServer) -> None:
        self.server = server

    async def handle_EHLO(self, smtp, session, envelope, hostname, responses):
        session.host_name = hostname
        responses.insert(-1, "250-PIPELINING")
        return responses

    async def handle_MAIL(self, smtp, session, envelope, address, mail_options):
        fault = await self.server.fault(smtp, "MAIL")
        if fault:
            return fault
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, smtp, session, envelope, address, rcpt_options):
        fault = await self.server.fault(smtp, "RCPT")
        if fault:
            return fault
        if address in self.server.faults.doomed_recipients:
            self.server.injected["550"] += 1
            return "550 5.1.1 doomed recipient"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, smtp, session, envelope):
        fault = await self.server.fault(smtp, "END")
        if fault:
            return fault
        content = bytes(envelope.original_content or b"")
        if self.server.faults.doomed_marker in content:
            self.server.injected["554"] += 1
            return "554 5.6.0 doomed content"
        with self.server.lock:
            self.server.received.append((envelope.mail_from, list(envelope.rcpt_tos), content))
        return "250 2.0.0 accepted"


class _FaultySMTP(SMTP):
    def __init__(self, server: FaultServer, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._server = server

    async def smtp_DATA(self, arg: str) -> None:
        fault = await self._server.fault(self, "DATA")
        if fault:
            await self.push(fault)
            return
        await super().smtp_DATA(arg)


class FaultServer:
    def __init__(self, faults: Faults) -> None:
        self.faults = faults
        self.random = random.Random(faults.seed)
        self.received: list[tuple[str, list[str], bytes]] = []
        self.injected: Counter[str] = Counter()
        self.lock = threading.Lock()
        self.host = "127.0.0.1"
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.AbstractServer | None = None

    async def fault(self, smtp: SMTP, where: str) -> str | None:
        """A reply that replaces the normal one (None: behave)."""
        f = self.faults
        scripted = f.script.get(where)
        if scripted:  # this fault for sure: as if it were the only one possible
            f = Faults(stall_for=f.stall_for, **{scripted.pop(0): 1.0})
            roll = 0.0
        else:
            roll = self.random.random()
        if roll < f.drop:
            self.injected[f"drop at {where}"] += 1
            smtp.transport.abort()
            return "421 4.4.2 (never sent: connection dropped)"
        roll -= f.drop
        if roll < f.busy:
            self.injected["421"] += 1
            asyncio.get_running_loop().call_later(0.01, smtp.transport.close)
            return "421 4.7.0 too busy, closing"
        roll -= f.busy
        if roll < f.later:
            self.injected["451"] += 1
            return "451 4.3.0 try again later"
        roll -= f.later
        if roll < f.stall:
            self.injected[f"stall at {where}"] += 1
            await asyncio.sleep(f.stall_for)
            smtp.transport.abort()
            return "421 4.4.2 (never sent: stalled)"
        return None

    def _factory(self) -> SMTP:
        return _FaultySMTP(self, _Handler(self), hostname="faulty.local", enable_SMTPUTF8=True)

    def start(self) -> FaultServer:
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(
            self._loop.create_server(self._factory, self.host, 0), self._loop
        )
        self._server = future.result(10)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def stop(self) -> None:
        async def shutdown() -> None:
            assert self._server is not None
            self._server.close()
            await asyncio.sleep(0)

        asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()
