"""``manage.py send_receipt ADDRESS [--using ALIAS]``: a receipt with an HTML
alternative, a PDF attachment and an inline logo, sent with Django's own classes."""

from __future__ import annotations

import email.utils
from email.message import MIMEPart
from email.mime.image import MIMEImage
from typing import Any

import django
from django.core.mail import EmailMultiAlternatives
from django.core.management.base import BaseCommand

LOGO = b"\x89PNG\r\n\x1a\n" + bytes(range(256))
PDF = b"%PDF-1.4\n" + bytes(range(256)) + b"\n%%EOF\n"


def _inline_image(data: bytes, cid: str) -> Any:
    """A ready-made MIME part, as each Django documents it: a ``MIMEPart`` from Django
    6.0 on (which deprecates ``MIMEBase`` attachments), a ``MIMEImage`` before."""
    if django.VERSION >= (6, 0):
        part = MIMEPart()
        part.set_content(data, maintype="image", subtype="png", disposition="inline", cid=cid)
        return part
    image = MIMEImage(data, "png")
    image["Content-ID"] = cid
    image["Content-Disposition"] = "inline"
    return image


class Command(BaseCommand):
    help = "Send a receipt."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("address")
        parser.add_argument("--using", default=None, help="a MAILERS alias (Django 6.1)")

    def handle(self, *args: Any, address: str, using: str | None, **options: Any) -> None:
        message = EmailMultiAlternatives(
            "Your receipt, Zoë",
            "Thank you for your order.\n",
            to=[address],
            reply_to=["Help <help@example.com>"],
            headers={"X-Order": "1234"},
        )
        cid = email.utils.make_msgid()
        message.attach_alternative(
            f'<p>Thank you for your order.</p><img src="cid:{cid[1:-1]}">', "text/html"
        )
        message.attach("receipt.pdf", PDF, "application/pdf")
        message.attach(_inline_image(LOGO, cid))
        sent = message.send() if using is None else message.send(using=using)
        delivery = message.delivery  # set by mailwright.django.EmailBackend
        self.stdout.write(f"sent={sent} accepted={','.join(delivery.accepted)}")
        if django.VERSION >= (6, 1) and using is not None:
            from django.core.mail import mailers

            self.stdout.write(f"mailer={mailers[using]!r}")
