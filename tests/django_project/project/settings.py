"""The test project's settings: mail goes through ``mailwright.django.EmailBackend`` to
the SMTP server on 127.0.0.1 at ``PROJECT_SMTP_PORT`` (receipts to
``PROJECT_RECEIPTS_PORT``), in the form ``PROJECT_MAIL_FORM`` names:

* ``EMAIL_BACKEND``: the settings of every Django from 4.2 to 6.1;
* ``MAILERS``: Django 6.1's named mailers, the engine's options in ``OPTIONS``.
"""

import os
import warnings

import django

FORM = os.environ["PROJECT_MAIL_FORM"]
HOST = "127.0.0.1"
PORT = int(os.environ["PROJECT_SMTP_PORT"])
RECEIPTS_PORT = int(os.environ.get("PROJECT_RECEIPTS_PORT", PORT))

SECRET_KEY = "test-project-not-secret"
DEBUG = False
ALLOWED_HOSTS: list[str] = []
INSTALLED_APPS = ["shop"]
DATABASES: dict[str, dict[str, str]] = {}
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"

DEFAULT_FROM_EMAIL = "Shop <shop@example.com>"
SERVER_EMAIL = "errors@example.com"
if django.VERSION >= (6, 0):  # Django 6.0 deprecates (name, address) pairs here
    ADMINS = ["ann@example.com"]
    MANAGERS = ["meg@example.com"]
else:
    ADMINS = [("Ann", "ann@example.com")]
    MANAGERS = [("Meg", "meg@example.com")]

if FORM == "MAILERS":
    MAILERS = {
        "default": {
            "BACKEND": "mailwright.django.EmailBackend",
            "OPTIONS": {"host": HOST, "port": PORT, "timeout": 10},
        },
        "receipts": {
            "BACKEND": "mailwright.django.EmailBackend",
            "OPTIONS": {"host": HOST, "port": RECEIPTS_PORT, "connections": 2},
        },
    }
elif FORM == "EMAIL_BACKEND":
    if django.VERSION >= (6, 1):
        # Django 6.1 deprecates the EMAIL_* settings (MAILERS replaces them) and says so
        # once, here; this project uses them on purpose.
        warnings.filterwarnings(
            "ignore", r"The EMAIL_\w+ setting is deprecated", PendingDeprecationWarning
        )
    EMAIL_BACKEND = "mailwright.django.EmailBackend"
    EMAIL_HOST = HOST
    EMAIL_PORT = PORT
    EMAIL_TIMEOUT = 10
else:
    raise ValueError(f"PROJECT_MAIL_FORM is EMAIL_BACKEND or MAILERS, not {FORM!r}")
