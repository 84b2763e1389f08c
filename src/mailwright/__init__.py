"""mailwright: send email from any Python program.

The ``django.core.mail`` API, standalone::

    import mailwright
    mailwright.send_mail("Subject", "Body", "from@example.com", ["to@example.com"])
"""

from __future__ import annotations

from typing import Any

from .api import (
    amail_admins,
    amail_managers,
    asend_mail,
    asend_mass_mail,
    get_connection,
    mail_admins,
    mail_managers,
    send_mail,
    send_mass_mail,
)
from .bulk import BulkResult, Failure, Refusal, asend_bulk, send_bulk
from .conf import configure, override_settings, settings
from .django.settings import django_setting
from .exceptions import (
    BadHeaderError,
    ImproperlyConfigured,
    InvalidMailer,
    MailerDoesNotExist,
    SMTPUTF8NotSupportedError,
)
from .mailers import DEFAULT_MAILER_ALIAS, mailers
from .message import (
    DEFAULT_ATTACHMENT_MIME_TYPE,
    Delivery,
    EmailAlternative,
    EmailAttachment,
    EmailMessage,
    EmailMultiAlternatives,
    InlineAttachment,
    RawMessage,
)
from .message.addresses import Mailbox

# Inside a Django project, Django's settings are read too (a no-op elsewhere).
settings.add_source(django_setting)

__version__ = "0.1.0"

#: Messages sent with the locmem backend land here (tests may clear or replace it).
outbox: list[Any] = []

__all__ = [
    "DEFAULT_ATTACHMENT_MIME_TYPE",
    "DEFAULT_MAILER_ALIAS",
    "BadHeaderError",
    "BulkResult",
    "Delivery",
    "EmailAlternative",
    "EmailAttachment",
    "EmailMessage",
    "EmailMultiAlternatives",
    "Failure",
    "ImproperlyConfigured",
    "InlineAttachment",
    "InvalidMailer",
    "Mailbox",
    "MailerDoesNotExist",
    "RawMessage",
    "Refusal",
    "SMTPUTF8NotSupportedError",
    "amail_admins",
    "amail_managers",
    "asend_bulk",
    "asend_mail",
    "asend_mass_mail",
    "configure",
    "get_connection",
    "mail_admins",
    "mail_managers",
    "mailers",
    "outbox",
    "override_settings",
    "send_bulk",
    "send_mail",
    "send_mass_mail",
    "settings",
]
