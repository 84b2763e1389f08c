"""What DKIM signing costs: ``send_messages`` throughput over one connection without
signing, with an RSA-2048 key and with an Ed25519 key, in one run.

    pip install -e '.[bench,dkim]'
    python bench/dkim.py [--messages 1000] [--repeat 3] [--sink auto]

The sink (Postfix's ``smtp-sink`` when installed, else an aiosmtpd sink) runs in its
own process and every figure is checked against its count. Messages are built inside
the timing, as a program sends them. One more row signs with dkimpy's own RSA
arithmetic (Python's ``pow``) instead of OpenSSL, on a tenth of the messages. The rows
run in turn, ``--repeat`` rounds, and each figure is its best round; the machine is
shared and noisy, so only the ratios of one run mean anything. The signing cost is the
difference in the sender's CPU time per message (``time.process_time``), which other
processes on the machine disturb less than the throughput.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

from bulk import SINK_KINDS, TEXT, Sink

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


def measure(sink: Sink, count: int, kind: str, options: dict[str, str]) -> tuple[float, float]:
    """(messages/s, client CPU µs per message) of one ``send_messages`` run."""
    backend = mailwright.get_connection("smtp", host="127.0.0.1", port=sink.port, **options)
    before = sink.count
    start, cpu = time.perf_counter(), time.process_time()
    sent = backend.send_messages(messages(count, kind))
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    got = sink.wait_count(before + count) - before
    if sent != count or got != count:
        raise SystemExit(f"{kind}: sent {sent}, the sink received {got} of {count}")
    return count / elapsed, cpu / count * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--sink", choices=SINK_KINDS, default="auto")
    args = parser.parse_args()
    import dkim

    def options(pem: str) -> dict[str, str]:
        return {"dkim_domain": "example.com", "dkim_selector": "bench", "dkim_private_key": pem}

    rsa, ed25519 = options(generate_key()[0]), options(generate_key(ed25519=True)[0])
    mailwright.get_connection(**rsa)  # installs the OpenSSL step in dkimpy
    fast = dkim.RSASSA_PKCS1_v1_5_sign

    def pure(count: int) -> tuple[float, float]:
        # The same with dkimpy's own RSA arithmetic (Python's pow), for scale.
        dkim.RSASSA_PKCS1_v1_5_sign = fast.original
        try:
            return measure(sink, count, "pure", rsa)
        finally:
            dkim.RSASSA_PKCS1_v1_5_sign = fast

    n = args.messages
    variants: dict[str, Callable[[], tuple[float, float]]] = {
        "no signing": lambda: measure(sink, n, "unsigned", {}),
        "RSA-2048": lambda: measure(sink, n, "rsa", rsa),
        "RSA-2048, dkimpy's pow": lambda: pure(max(50, n // 10)),
        "Ed25519": lambda: measure(sink, n, "ed25519", ed25519),
    }
    best = {name: (0.0, float("inf")) for name in variants}
    sink = Sink(args.sink)
    try:
        print(f"{sink.kind} sink, {n} plain messages, best of {args.repeat}, interleaved\n")
        for _ in range(args.repeat):  # round after round, so load changes hit every row
            for name, run in variants.items():
                rate, cpu = run()
                best[name] = (max(best[name][0], rate), min(best[name][1], cpu))
    finally:
        sink.stop()
    base_rate, base_cpu = best["no signing"]
    print(f"{'':<24} {'messages/s':>11} {'ratio':>7} {'CPU µs/msg':>11} {'signing µs':>11}")
    for name, (rate, cpu) in best.items():
        print(
            f"{name:<24} {rate:>11,.0f} {rate / base_rate:>6.2f}x {cpu:>11,.0f} "
            f"{cpu - base_cpu:>11,.0f}"
        )


if __name__ == "__main__":
    main()
