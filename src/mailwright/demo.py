"""``mailwright demo``: send sample messages through the real SMTP backend to an
embedded catcher and show what arrived. Needs no configuration."""

from __future__ import annotations

import struct
import sys
import time
import zlib
from typing import IO

from .api import get_connection
from .conf import override_settings
from .message import EmailMessage, EmailMultiAlternatives

__all__ = ["run_demo", "sample_messages"]


def _png(width: int = 48, height: int = 48) -> bytes:
    """A small gradient PNG, made here so the demo ships no binary files."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    rows = b"".join(
        b"\x00" + b"".join(bytes((35 + 4 * x, 57 + 2 * y, 93 + 3 * x)) for x in range(width))
        for y in range(height)
    )
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def sample_messages() -> list[EmailMessage]:
    plain = EmailMessage(
        "Welcome to mailwright",
        "Hello!\n\nThis plain-text message went through mailwright's SMTP backend.\n",
        "Demo Sender <demo@example.com>",
        ["Ada Lovelace <ada@example.com>"],
    )

    html = EmailMultiAlternatives(
        "Your monthly report",
        "Your report is attached. (This is the plain-text alternative.)\n",
        "Reports <reports@example.com>",
        ["grace@example.com"],
        cc=["team@example.com"],
    )
    cid = html.attach_inline("logo.png", _png())
    html.attach_alternative(
        '<html><body><h1 style="color:#23395d">Monthly report</h1>'
        f'<p><img src="cid:{cid}" alt="logo" width="48" height="48"></p>'
        "<p>Your report is <b>attached</b>.</p></body></html>",
        "text/html",
    )
    html.attach("report.csv", "month,orders\n2026-10,1280\n2026-11,1432\n", "text/csv")

    unicode = EmailMessage(
        "Grüße aus Köln — こんにちは — Привет",
        "Hallo Zoë,\nこんにちは世界。\nПривет, мир!\n😀\n",  # noqa: RUF001 - Cyrillic on purpose
        "Jörg Müller <joerg@bücher.example>",
        ["Zoë Ünal <zoe@example.com>"],
    )
    return [plain, html, unicode]


def run_demo(keep: bool = False, out: IO[str] | None = None) -> int:
    from .devserver import DevServer

    out = out if out is not None else sys.stdout
    server = DevServer("127.0.0.1", 0, 0, out=out).start_in_thread()
    try:
        print(server.banner(), file=out, flush=True)
        messages = sample_messages()
        with (
            override_settings(
                EMAIL_BACKEND="mailwright.backends.smtp.EmailBackend",
                EMAIL_HOST="127.0.0.1",
                EMAIL_PORT=server.smtp_port,
                EMAIL_USE_TLS=False,
                EMAIL_USE_SSL=False,
                EMAIL_HOST_USER="",
                EMAIL_HOST_PASSWORD="",
                EMAIL_TIMEOUT=10,
            ),
            get_connection() as connection,
        ):
            sent = connection.send_messages(messages)
        server.wait_for_messages(sent, timeout=10)
        server.wait_until_reported(timeout=10)
        arrived = len(server.store)
        print(
            f"demo: sent {sent} messages through the SMTP backend; {arrived} arrived.",
            file=out,
            flush=True,
        )
        if keep:
            where = server.inbox_url or f"SMTP port {server.smtp_port} (no web inbox)"
            print(f"The catcher keeps running at {where} (Ctrl-C to stop).", file=out, flush=True)
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                pass
        elif server.inbox_url:
            print(
                f"The web inbox was at {server.inbox_url}; run `mailwright demo --keep` "
                "to keep it open and look in a browser.",
                file=out,
                flush=True,
            )
        return 0 if arrived == sent == len(messages) else 1
    finally:
        server.stop_thread()
