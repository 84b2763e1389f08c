"""Django integration.

* ``EmailBackend`` (``EMAIL_BACKEND = "mailwright.django.EmailBackend"``): Django's own
  ``django.core.mail`` code sends through mailwright's engine;
* ``settings``: inside a Django project, mailwright reads Django's settings (registered
  when mailwright is imported; it looks at Django only once Django's settings are
  configured, and never imports Django itself);
* ``convert``: a Django message as a mailwright message;
* ``locmem``: the mailwright backend that stands for Django's locmem backend (it fills
  ``django.core.mail.outbox``).

Importing this package does not import Django; ``EmailBackend`` does (extra ``django``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .backend import EmailBackend

__all__ = ["EmailBackend"]


def __getattr__(name: str) -> Any:
    if name == "EmailBackend":
        from .backend import EmailBackend

        return EmailBackend
    raise AttributeError(f"module 'mailwright.django' has no attribute {name!r}")
