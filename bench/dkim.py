"""What DKIM signing costs: ``send_messages`` throughput over one connection without
signing, with an RSA-2048 key and with an Ed25519 key, in one run.

    pip install -e '.[bench,dkim]'
    python bench/dkim.py [--messages 1000] [--repeat 3] [--sink auto]

The sink (Postfix's ``smtp-sink`` when installed, else an aiosmtpd sink) runs in its
own process and every figure is checked against its count. Messages are built inside
the timing, as a program sends them. Each figure is the best of ``--repeat`` runs;
the machine is shared and noisy, so only the ratios of one run mean anything. The
signing cost per message is the difference of the per-message times.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from bulk import TEXT, Sink

# This file is named dkim.py, as dkimpy's package is: with bench/ first on sys.path,
# ``import dkim`` would find this script instead of dkimpy.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent]

import mailwright  # noqa: E402
from mailwright.message.dkim import generate_key  # noqa: E402


def messages(count: int, kind: str) -> list[mailwright.EmailMessage]:
    result = []
    for i in range(count):
        message = mailwright.EmailMessage(
            f"Message {i}", TEXT, "News <news@example.com>", [f"user{i}@example.com"]
        )
        message.list_unsubscribe(f"https://example.com/unsubscribe/{kind}/{i}")
        result.append(message)
    return result


def rate(sink: Sink, count: int, repeat: int, kind: str, options: dict[str, str]) -> float:
    best = 0.0
    for _ in range(repeat):
        backend = mailwright.get_connection("smtp", host="127.0.0.1", port=sink.port, **options)
        before = sink.count
        start = time.perf_counter()
        sent = backend.send_messages(messages(count, kind))
        elapsed = time.perf_counter() - start
        got = sink.wait_count(before + count) - before
        if sent != count or got != count:
            raise SystemExit(f"{kind}: sent {sent}, the sink received {got} of {count}")
        best = max(best, count / elapsed)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--sink", choices=["auto", "smtp-sink", "aiosmtpd"], default="auto")
    args = parser.parse_args()
    keys = {
        "RSA-2048": generate_key(bits=2048)[0],
        "Ed25519": generate_key(ed25519=True)[0],
    }
    sink = Sink(args.sink)
    try:
        print(f"{sink.kind} sink, {args.messages} plain messages, best of {args.repeat}\n")
        base = rate(sink, args.messages, args.repeat, "unsigned", {})
        rows = [("no signing", base)]
        for name, pem in keys.items():
            options = {
                "dkim_domain": "example.com",
                "dkim_selector": "bench",
                "dkim_private_key": pem,
            }
            rows.append((name, rate(sink, args.messages, args.repeat, name, options)))
    finally:
        sink.stop()
    print(f"{'':<12} {'messages/s':>11} {'ratio':>11} {'signing, µs/message':>20}")
    for name, value in rows:
        cost = (1 / value - 1 / base) * 1e6
        print(f"{name:<12} {value:>11,.0f} {value / base:>10.2f}x {cost:>20,.0f}")


if __name__ == "__main__":
    main()
