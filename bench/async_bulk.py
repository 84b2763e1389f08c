"""Throughput of the async concurrent sender (``asend_bulk``) with 1, 4 and 8 connections.

    python bench/async_bulk.py [--messages 2000] [--sink aiosmtpd] [--latency-ms 0]

Runs against an SMTP sink in its own process (aiosmtpd, like the test server, by
default) and checks the sink received every message. With ``--latency-ms`` the
connections go through the latency proxy, where concurrency matters most.
"""

from __future__ import annotations

import argparse
import asyncio
import time

from bulk import SINK_KINDS, Proxy, Sink, plain_messages

import mailwright


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--sink", choices=SINK_KINDS, default="aiosmtpd")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="added each way")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    sink = Sink(args.sink)
    proxy = Proxy(sink.port, args.latency_ms) if args.latency_ms else None
    port = proxy.port if proxy else sink.port
    where = f"{sink.kind} sink" + (f" behind {args.latency_ms:g} ms each way" if proxy else "")
    print(f"asend_bulk, {args.messages} plain messages, {where}")
    try:
        for connections in (1, 4, 8):
            best = 0.0
            for _ in range(args.repeat):
                before = sink.count
                messages = plain_messages(mailwright, args.messages)
                start = time.perf_counter()
                result = asyncio.run(
                    mailwright.asend_bulk(
                        messages, connections, backend="smtp", host="127.0.0.1", port=port
                    )
                )
                elapsed = time.perf_counter() - start
                got = sink.wait_count(before + args.messages) - before
                if not result.ok or got != args.messages:
                    raise SystemExit(
                        f"{connections} connections: sent {result.sent}, sink got {got}"
                    )
                best = max(best, args.messages / elapsed)
            print(
                f"{connections} connection{'s' if connections > 1 else ' '}: {best:8.0f} messages/s"
            )
    finally:
        if proxy:
            proxy.stop()
        sink.stop()


if __name__ == "__main__":
    main()
