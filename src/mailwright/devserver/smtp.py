"""The catcher's SMTP side: an aiosmtpd handler that accepts every well-formed message."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from typing import Any

from aiosmtpd.smtp import SMTP

from .store import MessageStore, StoredMessage

__all__ = ["CatcherHandler", "malformed_reason", "smtp_factory"]

_HEADER_FIELD = re.compile(rb"[\x21-\x39\x3b-\x7e]+[ \t]*:")
_MAX_LINE = 998


def malformed_reason(raw: bytes) -> str | None:
    """Why ``raw`` is not an RFC 5322 message, or None when it is one.

    The catcher is meant to show what an application really sends, so it refuses only
    what no mail system would carry: no header section, a line in the header section
    that is not a field, NUL bytes, or lines over 998 octets.
    """
    if not raw.strip():
        return "the message is empty"
    if b"\x00" in raw:
        return "the message contains a NUL byte"
    lines = raw.split(b"\n")
    for number, line in enumerate(lines, 1):
        if len(line.rstrip(b"\r")) > _MAX_LINE:
            return f"line {number} is longer than {_MAX_LINE} octets"
    fields = 0
    for number, line in enumerate(lines, 1):
        line = line.rstrip(b"\r")
        if not line:
            break
        if line[:1] in (b" ", b"\t"):
            if fields == 0:
                return "the message starts with a continuation line"
            continue
        if not _HEADER_FIELD.match(line):
            return f"line {number} of the header section is not a header field"
        fields += 1
    if fields == 0:
        return "the message has no header section"
    return None


class CatcherHandler:
    """aiosmtpd handler: check, store, report."""

    def __init__(
        self, store: MessageStore, report: Callable[[StoredMessage], None] | None = None
    ) -> None:
        self.store = store
        self.report = report

    async def handle_EHLO(
        self, server: SMTP, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        # aiosmtpd reads commands in order, so it can take them pipelined.
        responses.insert(-1, "250-PIPELINING")
        return responses

    async def handle_DATA(self, server: SMTP, session: Any, envelope: Any) -> str:
        raw = bytes(envelope.original_content or b"")
        problem = malformed_reason(raw)
        if problem is not None:
            return f"550 5.6.0 Malformed message refused: {problem}"
        stored = await asyncio.to_thread(
            self.store.add, raw, envelope.mail_from or "", list(envelope.rcpt_tos)
        )
        if self.report is not None:
            self.report(stored)
        return f"250 2.0.0 Ok: queued as {stored.id}"


def smtp_factory(handler: CatcherHandler, max_size: int) -> Callable[[], SMTP]:
    def factory() -> SMTP:
        return SMTP(
            handler,
            hostname="mailwright.devserver",
            enable_SMTPUTF8=True,
            data_size_limit=max_size,
            ident="mailwright development SMTP server",
        )

    return factory
