"""Django settings for running Django's mail tests against mailwright: what Django's
own test settings (``tests/test_sqlite.py``) set, and nothing about mail."""

SECRET_KEY = "django_tests_secret_key"
DATABASES: dict[str, dict[str, str]] = {}
INSTALLED_APPS: list[str] = []
USE_TZ = False
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
