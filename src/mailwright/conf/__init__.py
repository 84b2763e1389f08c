"""Settings: defaults, ``configure()``, ``override_settings()``, the environment and
``EMAIL_URL``.

* ``registry``: every setting's default and the parser that checks its values;
* ``url``: ``EMAIL_URL``;
* ``settings``: the live object, its lookup order, ``configure()`` and sources;
* ``override``: ``override_settings`` (per context: task or thread).
"""

# Inside a Django project, Django's settings are read too (a no-op elsewhere; importing
# mailwright.django.settings does not import Django).
from ..django.settings import django_setting
from .override import override_settings
from .registry import SETTING_NAMES, clean_setting
from .settings import MISSING, Settings, configure, settings
from .url import parse_email_url

settings.add_source(django_setting)

__all__ = [
    "MISSING",
    "SETTING_NAMES",
    "Settings",
    "clean_setting",
    "configure",
    "override_settings",
    "parse_email_url",
    "settings",
]
