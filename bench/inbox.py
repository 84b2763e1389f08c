"""How the catcher's web inbox copes with many stored messages.

    python bench/inbox.py [--messages 10000]

Sends the messages through the SMTP backend to an embedded catcher, then times the
inbox page, the last page, and the JSON list (one page, and everything at once).
"""

from __future__ import annotations

import argparse
import io
import statistics
import time
import urllib.request

from mailwright import EmailMessage, get_connection
from mailwright.devserver import DevServer


def timed_get(url: str, repeat: int = 20) -> tuple[float, int]:
    timings = []
    size = 0
    for _ in range(repeat):
        start = time.perf_counter()
        with urllib.request.urlopen(url) as reply:
            size = len(reply.read())
        timings.append(time.perf_counter() - start)
    return statistics.median(timings), size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=10_000)
    args = parser.parse_args()

    server = DevServer("127.0.0.1", 0, 0, out=io.StringIO(), quiet=True).start_in_thread()
    try:
        messages = [
            EmailMessage(
                f"Message number {i}", f"Body {i}\n", "bench@example.com", [f"user{i}@example.com"]
            )
            for i in range(args.messages)
        ]
        start = time.perf_counter()
        with get_connection("smtp", host="127.0.0.1", port=server.smtp_port) as connection:
            sent = connection.send_messages(messages)
        elapsed = time.perf_counter() - start
        assert sent == args.messages == len(server.store), (sent, len(server.store))
        print(f"stored {sent} messages over SMTP in {elapsed:.1f} s ({sent / elapsed:.0f}/s)")
        base = server.inbox_url
        last_page = (args.messages + 49) // 50
        for label, path in [
            ("inbox page 1 (HTML, 50 rows)", ""),
            (f"inbox page {last_page} (HTML, oldest)", f"?page={last_page}"),
            ("GET /api/messages (50 newest)", "api/messages"),
            (
                f"GET /api/messages?limit={args.messages} (all)",
                f"api/messages?limit={args.messages}",
            ),
        ]:
            median, size = timed_get(base + path, repeat=5 if "all" in label else 20)
            print(f"{label:<45} {median * 1000:8.1f} ms  ({size / 1024:.0f} KB)")
    finally:
        server.stop_thread()


if __name__ == "__main__":
    main()
