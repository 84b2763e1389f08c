"""Django's own ``send_messages`` through ``mailwright.django.EmailBackend`` against
Django's SMTP backend, same run, same Django messages.

    pip install -e '.[bench]'
    python bench/django_backend.py [--messages 2000] [--rich-messages 1000] [--repeat 5]

The sink is the one ``bench/bulk.py`` uses (Postfix's ``smtp-sink`` when installed,
else aiosmtpd, in its own process); every run is checked against its count. Each figure
is the best of ``--repeat`` runs; only ratios from one run mean anything on a shared
machine. The timed part includes building the messages, for every column. The last
column is a reference: mailwright's own messages through the same engine, so the cost
of taking Django's messages shows.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from bulk import SINK_KINDS, Sink, django_setup, measure, plain_messages, rich_messages

DJANGO_SMTP = "django.core.mail.backends.smtp.EmailBackend"
MAILWRIGHT_DJANGO = "mailwright.django.EmailBackend"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--rich-messages", type=int, default=1000)
    parser.add_argument("--sink", choices=SINK_KINDS, default="auto")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    import mailwright

    mail: Any = django_setup()
    import django

    sink = Sink(args.sink)
    options = {"host": "127.0.0.1", "port": sink.port}
    print(f"sink: {sink.kind}; Django {django.get_version()}; Python {sys.version.split()[0]}")

    def run(connect: Callable[[], Any], module: Any, make: Any, count: int) -> Callable[[], Any]:
        return lambda: connect().send_messages(make(module, count))

    rows = []
    try:
        for label, make, count in [
            ("plain", plain_messages, args.messages),
            ("HTML + 20 KB attachment", rich_messages, args.rich_messages),
        ]:
            django_backend = run(
                lambda: mail.get_connection(DJANGO_SMTP, **options), mail, make, count
            )
            ours = run(lambda: mail.get_connection(MAILWRIGHT_DJANGO, **options), mail, make, count)
            native = run(
                lambda: mailwright.get_connection("smtp", **options), mailwright, make, count
            )
            rows.append(
                (
                    label,
                    measure(f"Django {label}", count, django_backend, sink, args.repeat),
                    measure(f"mailwright.django {label}", count, ours, sink, args.repeat),
                    measure(f"mailwright API {label}", count, native, sink, args.repeat),
                )
            )
    finally:
        sink.stop()

    columns = f"{'Django SMTP/s':>13}  {'mailwright.django/s':>19}  ratio  (mailwright API/s)"
    print(f"\n{'send_messages':<24}  {columns}")
    for label, theirs, ours, native in rows:
        rates = f"{theirs.rate:>13.0f}  {ours.rate:>19.0f}  {ours.rate / theirs.rate:>4.1f}x"
        print(f"{label:<24}  {rates}  {native.rate:>18.0f}")


if __name__ == "__main__":
    main()
