"""How the catcher's web inbox copes with many stored messages.

    python bench/inbox.py [--messages 100000]

Sends the messages through mailwright's SMTP backend to an embedded catcher, waits
until the catcher has indexed them, then times (best and median of several requests,
over real HTTP) the inbox page, the last page, a search, and the JSON API.
"""

from __future__ import annotations

import argparse
import io
import statistics
import time
import urllib.request

from mailwright import EmailMessage, get_connection
from mailwright.devserver import DevServer


def timed_get(url: str, repeat: int) -> tuple[float, float, int]:
    timings = []
    size = 0
    for _ in range(repeat):
        start = time.perf_counter()
        with urllib.request.urlopen(url) as reply:
            size = len(reply.read())
        timings.append(time.perf_counter() - start)
    return min(timings), statistics.median(timings), size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()

    server = DevServer(
        "127.0.0.1", 0, 0, out=io.StringIO(), quiet=True, max_messages=None
    ).start_in_thread()
    try:
        messages = [
            EmailMessage(
                f"Order {i} shipped",
                f"Hello customer {i},\nyour order number {i} is on its way.\n",
                "shop@example.com",
                [f"customer{i}@example.com"],
            )
            for i in range(args.messages)
        ]
        start = time.perf_counter()
        with get_connection("smtp", host="127.0.0.1", port=server.smtp_port) as connection:
            sent = connection.send_messages(messages)
        elapsed = time.perf_counter() - start
        assert sent == args.messages == len(server.store), (sent, len(server.store))
        print(f"stored {sent:,} messages over SMTP in {elapsed:.1f} s ({sent / elapsed:,.0f}/s)")
        base = server.inbox_url
        assert base is not None
        best, _, _ = timed_get(base, 1)
        print(f"{'inbox page 1, first view (parses 50 headers)':<48} {best * 1000:8.1f} ms")
        start = time.perf_counter()
        server.wait_until_reported(timeout=3600)
        print(f"search index of {sent:,} messages built in the background in "
              f"{time.perf_counter() - start:.1f} s more")  # fmt: skip
        last_page = (args.messages + 49) // 50
        some = args.messages // 3
        for label, path in [
            ("inbox page 1 (HTML, 50 rows)", ""),
            (f"inbox page {last_page:,} (HTML, oldest)", f"?page={last_page}"),
            ("inbox search, 1 match (?q=customer{n}@)", f"?q=customer{some}@"),
            ("GET /api/messages (50 newest)", "api/messages"),
            ("GET /api/messages?offset=99950", f"api/messages?offset={args.messages - 50}"),
            ("GET /api/messages?q=shipped (all match)", "api/messages?q=shipped"),
            (f"GET /api/messages?q=order {some} (1 match)", f"api/messages?q=order+{some}+"),
            ("GET /api/messages/{id} (one message)", f"api/messages/{server.store.all()[some].id}"),
        ]:
            best, median, size = timed_get(base + path, args.repeat)
            print(
                f"{label:<48} {best * 1000:8.1f} ms best {median * 1000:8.1f} ms median"
                f"  ({size / 1024:.0f} KB)"
            )
    finally:
        server.stop_thread()


if __name__ == "__main__":
    main()
