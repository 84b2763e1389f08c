"""Django's own ``send_messages`` through ``mailwright.django.EmailBackend`` against
Django's SMTP backend, same run, same Django messages.

    pip install -e '.[bench]'
    python bench/django_backend.py [--messages 2000] [--rich-messages 1000] [--repeat 5]

The sink is the one ``bench/bulk.py`` uses (Postfix's ``smtp-sink`` when installed,
else aiosmtpd, in its own process); every run is checked against its count. Each figure
is the best of ``--repeat`` runs; only the ratio from one run means anything on a
shared machine. The timed part includes building the Django messages, for both.
"""

from __future__ import annotations

import argparse
import sys

from bulk import Sink, django_setup, measure, plain_messages, rich_messages


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--rich-messages", type=int, default=1000)
    parser.add_argument("--sink", choices=["auto", "smtp-sink", "aiosmtpd"], default="auto")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    mail = django_setup()
    import django

    sink = Sink(args.sink)
    options = {"host": "127.0.0.1", "port": sink.port}
    python = sys.version.split()[0]
    print(f"sink: {sink.kind}; Django {django.get_version()}; Python {python}")

    def django_send(make: object, count: int) -> object:
        backend = "django.core.mail.backends.smtp.EmailBackend"
        return lambda: mail.get_connection(backend, **options).send_messages(make(mail, count))  # type: ignore[attr-defined, operator]

    def mailwright_send(make: object, count: int) -> object:
        backend = "mailwright.django.EmailBackend"
        return lambda: mail.get_connection(backend, **options).send_messages(make(mail, count))  # type: ignore[attr-defined, operator]

    rows = []
    try:
        for label, make, count in [
            ("plain", plain_messages, args.messages),
            ("HTML + 20 KB attachment", rich_messages, args.rich_messages),
        ]:
            theirs = measure(f"django {label}", count, django_send(make, count), sink, args.repeat)  # type: ignore[arg-type]
            ours = measure(
                f"mailwright {label}", count, mailwright_send(make, count), sink, args.repeat
            )  # type: ignore[arg-type]
            rows.append((label, theirs, ours))
    finally:
        sink.stop()

    print(
        f"\n{'Django send_messages':<26}  {'Django SMTP/s':>13}  {'mailwright.django/s':>19}  ratio"
    )
    for label, theirs, ours in rows:
        ratio = ours.rate / theirs.rate
        print(f"{label:<26}  {theirs.rate:>13.0f}  {ours.rate:>19.0f}  {ratio:>4.1f}x")


if __name__ == "__main__":
    main()
