"""mailwright: send email from any Python program.

The ``django.core.mail`` API, standalone::

    import mailwright
    mailwright.send_mail("Subject", "Body", "from@example.com", ["to@example.com"])

``import mailwright`` itself loads almost nothing: each public name is imported on first
use (PEP 562), so a command-line call or a short-lived function pays only for what it
uses. The names and their modules are listed once, in ``_EXPORTS``; the type checker
reads the same names from the ``TYPE_CHECKING`` block.
"""

from __future__ import annotations

import importlib

# Not typing's: importing typing would double the cost of ``import mailwright``. Type
# checkers treat any TYPE_CHECKING as true.
TYPE_CHECKING = False

__version__ = "0.1.0"

#: Messages sent with the locmem backend land here (tests may clear or replace it).
outbox: list[Any] = []

#: Each public name and the module (relative to this package) that defines it.
_EXPORTS: dict[str, str] = {
    "amail_admins": ".api",
    "amail_managers": ".api",
    "asend_mail": ".api",
    "asend_mass_mail": ".api",
    "get_connection": ".api",
    "mail_admins": ".api",
    "mail_managers": ".api",
    "send_mail": ".api",
    "send_mass_mail": ".api",
    "BulkResult": ".bulk",
    "Failure": ".bulk",
    "Refusal": ".bulk",
    "asend_bulk": ".bulk",
    "send_bulk": ".bulk",
    "TemplateError": ".compose",
    "asend_template": ".compose",
    "html_to_text": ".compose",
    "send_template": ".compose",
    "template_message": ".compose",
    "configure": ".conf",
    "override_settings": ".conf",
    "settings": ".conf",
    "BadHeaderError": ".exceptions",
    "ImproperlyConfigured": ".exceptions",
    "InvalidMailer": ".exceptions",
    "MailerDoesNotExist": ".exceptions",
    "SMTPUTF8NotSupportedError": ".exceptions",
    "DEFAULT_ATTACHMENT_MIME_TYPE": ".message",
    "Delivery": ".message",
    "EmailAlternative": ".message",
    "EmailAttachment": ".message",
    "EmailMessage": ".message",
    "EmailMultiAlternatives": ".message",
    "InlineAttachment": ".message",
    "RawMessage": ".message",
    "Mailbox": ".message.addresses",
    "DEFAULT_MAILER_ALIAS": ".backends.mailers",
    "mailers": ".backends.mailers",
}

if TYPE_CHECKING:
    from typing import Any

    from .api import amail_admins as amail_admins
    from .api import amail_managers as amail_managers
    from .api import asend_mail as asend_mail
    from .api import asend_mass_mail as asend_mass_mail
    from .api import get_connection as get_connection
    from .api import mail_admins as mail_admins
    from .api import mail_managers as mail_managers
    from .api import send_mail as send_mail
    from .api import send_mass_mail as send_mass_mail
    from .backends.mailers import DEFAULT_MAILER_ALIAS as DEFAULT_MAILER_ALIAS
    from .backends.mailers import mailers as mailers
    from .bulk import BulkResult as BulkResult
    from .bulk import Failure as Failure
    from .bulk import Refusal as Refusal
    from .bulk import asend_bulk as asend_bulk
    from .bulk import send_bulk as send_bulk
    from .compose import TemplateError as TemplateError
    from .compose import asend_template as asend_template
    from .compose import html_to_text as html_to_text
    from .compose import send_template as send_template
    from .compose import template_message as template_message
    from .conf import configure as configure
    from .conf import override_settings as override_settings
    from .conf import settings as settings
    from .exceptions import BadHeaderError as BadHeaderError
    from .exceptions import ImproperlyConfigured as ImproperlyConfigured
    from .exceptions import InvalidMailer as InvalidMailer
    from .exceptions import MailerDoesNotExist as MailerDoesNotExist
    from .exceptions import SMTPUTF8NotSupportedError as SMTPUTF8NotSupportedError
    from .message import DEFAULT_ATTACHMENT_MIME_TYPE as DEFAULT_ATTACHMENT_MIME_TYPE
    from .message import Delivery as Delivery
    from .message import EmailAlternative as EmailAlternative
    from .message import EmailAttachment as EmailAttachment
    from .message import EmailMessage as EmailMessage
    from .message import EmailMultiAlternatives as EmailMultiAlternatives
    from .message import InlineAttachment as InlineAttachment
    from .message import RawMessage as RawMessage
    from .message.addresses import Mailbox as Mailbox


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'mailwright' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value  # later reads skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})


__all__ = [*sorted(_EXPORTS), "outbox"]
