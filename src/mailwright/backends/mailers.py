"""Named mailers: the ``MAILERS`` setting and ``mailwright.mailers``.

A mailer is a name for a backend and its options, nothing more::

    MAILERS = {
        "default": {"BACKEND": "smtp", "OPTIONS": {"host": "smtp.example.com", "use_tls": True}},
        "newsletters": {"BACKEND": "queue", "OPTIONS": {"path": "/var/spool/app/outbox.db"}},
        "alerts": "smtp://relay.internal:25",
    }

``mailers[alias]`` makes a new backend, ``backend(alias=alias, **OPTIONS)``. Options an
entry does not give fall back to the global settings, through the backends' own rule
(each ``None`` argument reads its setting). Without ``MAILERS`` there is one mailer,
``"default"``, built from ``EMAIL_BACKEND`` and the other settings as before.

``backend_for`` turns the ``using=`` and ``connection=`` arguments of every sending
function into a backend; ``relay_backend`` turns a worker's relay (a mailer alias or
the old ``*_RELAY_BACKEND`` setting) into one.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from ..conf import settings
from ..conf.url import parse_email_url
from ..exceptions import ImproperlyConfigured, InvalidMailer, MailerDoesNotExist
from .base import BaseEmailBackend
from .loading import BACKEND_ALIASES, SHORT_NAMES, get_connection, import_backend

__all__ = [
    "DEFAULT_MAILER_ALIAS",
    "MailerConfig",
    "Mailers",
    "backend_for",
    "check_using",
    "follow_settings",
    "mailer_config",
    "mailers",
    "relay_backend",
]

DEFAULT_MAILER_ALIAS = "default"

#: The keys a MAILERS entry may have.
_ENTRY_KEYS = frozenset({"BACKEND", "OPTIONS"})

#: What an EMAIL_URL-form entry gives, as backend options.
_URL_OPTIONS = {
    "EMAIL_HOST": "host",
    "EMAIL_PORT": "port",
    "EMAIL_HOST_USER": "username",
    "EMAIL_HOST_PASSWORD": "password",
    "EMAIL_USE_TLS": "use_tls",
    "EMAIL_USE_SSL": "use_ssl",
    "EMAIL_TIMEOUT": "timeout",
    "EMAIL_SSL_CAFILE": "ssl_cafile",
    "EMAIL_SSL_CERTFILE": "ssl_certfile",
    "EMAIL_SSL_KEYFILE": "ssl_keyfile",
    "EMAIL_FILE_PATH": "file_path",
}


@dataclass(frozen=True)
class MailerConfig:
    """One mailer: its alias, its backend (a dotted path, short name or class) and the
    options its entry gives (``password`` never shown by ``repr``)."""

    alias: str
    backend: Any
    options: Mapping[str, Any]

    def __repr__(self) -> str:
        shown = {k: ("***" if k in _SECRET_OPTIONS else v) for k, v in self.options.items()}
        return f"MailerConfig(alias={self.alias!r}, backend={self.backend!r}, options={shown!r})"


#: Options whose values are never shown (a string token or a PEM key is a secret; a
#: callable or a dotted path is not, but is hidden all the same for one simple rule).
_SECRET_OPTIONS = frozenset({"password", "dkim_private_key", "oauth2_token"})


# --- reading MAILERS ---


def _scrub(text: str, url: str) -> str:
    """``text`` with the URL's password taken out, in every form it may appear."""
    try:
        password = urlsplit(url.strip()).password
    except ValueError:
        password = None
    if password:
        for form in {password, unquote(password)}:
            text = text.replace(form, "***")
    return text


def _url_options(alias: str, url: str) -> tuple[str, dict[str, Any]]:
    """The backend and options an ``EMAIL_URL``-form entry stands for.

    The connection is exactly what the URL says, as with ``mailwright send --url``:
    host, port, login and TLS mode are not borrowed from the global settings (a URL
    without a user does not log in with EMAIL_HOST_USER, ``smtp://`` without
    ``?tls=1`` does not STARTTLS). What a URL cannot say (a client certificate left
    out, say; DKIM) falls back to the settings."""
    try:
        values = dict(parse_email_url(url))
    except ImproperlyConfigured as exc:
        reason = str(exc).removeprefix("EMAIL_URL: ")
        raise InvalidMailer(_scrub(reason, url), alias=alias) from None
    backend = values.pop("EMAIL_BACKEND")
    options = {_URL_OPTIONS[name]: value for name, value in values.items()}
    if backend == BACKEND_ALIASES["smtp"]:
        options.setdefault("port", 25)
        options.setdefault("username", "")
        options.setdefault("password", "")
        options.setdefault("use_tls", False)
        options.setdefault("use_ssl", False)
    return backend, options


def _entry(alias: str, entry: Any) -> MailerConfig:
    if isinstance(entry, str):
        url_backend, url_options = _url_options(alias, entry)
        return MailerConfig(alias, url_backend, url_options)
    if not isinstance(entry, Mapping):
        raise InvalidMailer(
            "an entry is a dict with BACKEND and OPTIONS, or an EMAIL_URL-form URL string, "
            f"not {type(entry).__name__}",
            alias=alias,
        )
    unknown = sorted(map(str, set(entry) - _ENTRY_KEYS))
    if unknown:
        raise InvalidMailer(
            f"unknown key(s) {', '.join(map(repr, unknown))} (an entry has BACKEND and OPTIONS)",
            alias=alias,
        )
    backend = entry.get("BACKEND")
    if backend is None:
        backend = settings.EMAIL_BACKEND  # silent: the global setting
    elif not (isinstance(backend, type) or (isinstance(backend, str) and backend.strip())):
        raise InvalidMailer(
            f"BACKEND must be a dotted path or a short name ({', '.join(SHORT_NAMES)}), "
            f"not {type(backend).__name__}",
            alias=alias,
        )
    options = entry.get("OPTIONS") or {}
    if not isinstance(options, Mapping):
        raise InvalidMailer(f"OPTIONS must be a dict, not {type(options).__name__}", alias=alias)
    for name in options:
        if not isinstance(name, str) or not name.isidentifier():
            raise InvalidMailer(f"the option name {name!r} is not an identifier", alias=alias)
    if "alias" in options:
        raise InvalidMailer(
            "OPTIONS must not define 'alias'. A mailer's alias is its key in MAILERS.",
            alias=alias,
        )
    return MailerConfig(alias, backend.strip() if isinstance(backend, str) else backend, options)


def _unknown(alias: str, configured: Mapping[str, Any] | None) -> MailerDoesNotExist:
    known = list(configured) if configured is not None else [DEFAULT_MAILER_ALIAS]
    listed = ", ".join(map(repr, known)) if known else "none: MAILERS is empty"
    return MailerDoesNotExist(
        f"The mailer '{alias}' is not configured. Configured: {listed}.", alias=alias
    )


def mailer_config(alias: str) -> MailerConfig:
    """The configuration of mailer ``alias``; ``MailerDoesNotExist`` when there is none,
    ``InvalidMailer`` when its entry is wrong (nothing is imported or made here)."""
    if not isinstance(alias, str):
        raise TypeError(f"a mailer alias is a string, not {type(alias).__name__}")
    configured: dict[str, Any] | None = settings.MAILERS
    if configured is None:
        if alias != DEFAULT_MAILER_ALIAS:
            raise _unknown(alias, None)
        return MailerConfig(alias, settings.EMAIL_BACKEND, {})
    if alias not in configured:
        raise _unknown(alias, configured)
    return _entry(alias, configured[alias])


# --- checking options against the backend ---


_accepted: dict[type[Any], frozenset[str] | None] = {}


def accepted_options(backend: type[BaseEmailBackend]) -> frozenset[str] | None:
    """The keyword arguments ``backend``'s constructor takes, or None when that cannot
    be known (a class outside mailwright takes ``**kwargs`` and may use them itself).

    mailwright's backends pass the keywords they do not take on to their base class,
    which takes ``alias`` and ``fail_silently`` and refuses the rest for a mailer."""
    try:
        return _accepted[backend]
    except KeyError:
        accepted = _accepted[backend] = _signature_options(backend)
        return accepted


def _signature_options(backend: type[BaseEmailBackend]) -> frozenset[str] | None:
    import inspect  # once per backend class; sending code that never asks pays nothing

    names: set[str] = set()
    for klass in backend.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None or klass is object:
            continue
        try:
            parameters = list(inspect.signature(init).parameters.values())[1:]
        except (TypeError, ValueError):
            return None
        more = False
        for parameter in parameters:
            if parameter.kind in (parameter.POSITIONAL_OR_KEYWORD, parameter.KEYWORD_ONLY):
                names.add(parameter.name)
            elif parameter.kind is parameter.VAR_KEYWORD:
                more = True
        if not more or klass is BaseEmailBackend:
            return frozenset(names)
        if not klass.__module__.startswith("mailwright."):
            return None
    return frozenset(names)


def _check_options(config: MailerConfig, backend: type[BaseEmailBackend]) -> None:
    accepted = accepted_options(backend)
    if accepted is None:
        return  # the constructor decides
    unknown = [name for name in config.options if name not in accepted]
    if unknown:
        name = f"{backend.__module__}.{backend.__qualname__}"
        known = ", ".join(sorted(n for n in accepted if n not in ("alias", "args", "kwargs")))
        raise InvalidMailer(
            f"Unknown options {', '.join(map(repr, unknown))}. {name} takes: {known}.",
            alias=config.alias,
        )


def _import(config: MailerConfig) -> type[BaseEmailBackend]:
    try:
        return import_backend(config.backend)
    except ImproperlyConfigured as exc:
        reason = exc.__cause__ if isinstance(exc.__cause__, ImportError) else exc
        raise InvalidMailer(
            f"Could not find BACKEND {config.backend!r}: {reason}", alias=config.alias
        ) from None


def _construct(
    backend: type[BaseEmailBackend], alias: str, options: dict[str, Any]
) -> BaseEmailBackend:
    accepted = accepted_options(backend)
    try:
        if accepted is None or "alias" in accepted:
            return backend(alias=alias, **options)
        # A custom backend written before mailers (a fixed signature without alias).
        instance = backend(**options)
    except InvalidMailer:
        raise
    except ImproperlyConfigured as exc:  # a bad value: say which mailer has it
        if settings.MAILERS is None:
            raise  # the one implicit mailer: the error is about EMAIL_*, as it always was
        raise InvalidMailer(str(exc), alias=alias) from exc
    instance.alias = alias
    return instance


# --- tests: every mailer follows the global settings ---

_followers: list[Callable[[], bool]] = []
_followers_lock = threading.Lock()


@contextmanager
def follow_settings(active: Callable[[], bool] = lambda: True) -> Iterator[None]:
    """While ``active()`` is true, every mailer is made from the global settings
    (``EMAIL_BACKEND`` and the rest), its entry's BACKEND and OPTIONS set aside; an
    unknown alias is still an error. For test tools: ``capture_mail()`` and the pytest
    plugin send every mailer to the in-memory outbox this way, and ``mail_catcher``
    every mailer to the catcher. Process-wide, as they are."""
    with _followers_lock:
        _followers.append(active)
    try:
        yield
    finally:
        with _followers_lock:
            _followers.remove(active)


def _following() -> bool:
    return any(active() for active in tuple(_followers))


# --- the handler ---


class Mailers:
    """``mailwright.mailers``: ``mailers[alias]`` is a new backend for that mailer.

    ``alias in mailers``, ``iter(mailers)`` (the aliases), ``mailers.get(alias)``
    (None for an unknown alias) and ``mailers.default``.
    """

    def __getitem__(self, alias: str) -> BaseEmailBackend:
        return self.create(alias)

    def create(self, alias: str, **overrides: Any) -> BaseEmailBackend:
        """A new backend for mailer ``alias``: ``backend(alias=alias, **OPTIONS)``.

        ``overrides`` are laid over the options, where the backend takes them (what
        ``send_mail``'s ``fail_silently``, ``auth_user`` and ``auth_password`` give the
        default mailer)."""
        config = mailer_config(alias)
        if _following():
            config = MailerConfig(alias, settings.EMAIL_BACKEND, {})
        backend = _import(config)
        _check_options(config, backend)
        options = dict(config.options)
        accepted = accepted_options(backend)
        if (
            "host" in options
            and "username" not in options
            and "password" not in options
            and accepted is not None
            and {"username", "password"} <= accepted
        ):
            # A mailer that names its own server never logs in there with the global
            # EMAIL_HOST_USER / EMAIL_HOST_PASSWORD, which are for EMAIL_HOST.
            options.update(username="", password="")
        if overrides:
            options.update(
                (name, value)
                for name, value in overrides.items()
                if accepted is None or name in accepted
            )
        return _construct(backend, alias, options)

    def __contains__(self, alias: object) -> bool:
        configured = settings.MAILERS
        if configured is None:
            return alias == DEFAULT_MAILER_ALIAS
        return alias in configured

    def __iter__(self) -> Iterator[str]:
        configured = settings.MAILERS
        return iter([DEFAULT_MAILER_ALIAS] if configured is None else list(configured))

    def __len__(self) -> int:
        configured = settings.MAILERS
        return 1 if configured is None else len(configured)

    def get(self, alias: str, default: Any = None) -> Any:
        """``self[alias]``, or ``default`` when no mailer has that alias."""
        try:
            return self[alias]
        except MailerDoesNotExist:
            return default

    @property
    def default(self) -> BaseEmailBackend:
        """A new backend for the ``"default"`` mailer."""
        return self[DEFAULT_MAILER_ALIAS]

    def check(self) -> list[MailerConfig]:
        """Check every mailer's entry, backend and options without making any; return
        their configurations. Raises the first ``InvalidMailer``."""
        configs = []
        for alias in self:
            config = mailer_config(alias)
            _check_options(config, _import(config))
            configs.append(config)
        return configs

    def __repr__(self) -> str:
        return f"<Mailers {list(self)!r}>"


mailers = Mailers()


# --- what the sending functions and the workers call ---


def backend_for(
    using: str | None = None,
    connection: BaseEmailBackend | None = None,
    *,
    fail_silently: bool = False,
    auth_user: str | None = None,
    auth_password: str | None = None,
) -> BaseEmailBackend:
    """The backend a sending function sends with: ``connection`` when given, else the
    mailer ``using``, else the default mailer (``EMAIL_BACKEND`` without ``MAILERS``).

    ``using`` with ``connection`` (or with ``auth_user``/``auth_password``, which belong
    in the mailer's OPTIONS) raises ``TypeError``. ``fail_silently`` applies to the
    backend made here, not to a ``connection`` given."""
    if using is not None:
        check_using(using, connection)
        if auth_user is not None or auth_password is not None:
            raise TypeError(
                "'auth_user' and 'auth_password' are not compatible with 'using'. Set "
                f"'username' and 'password' OPTIONS in MAILERS instead. (using={using!r})"
            )
    elif connection is not None:
        return connection
    overrides: dict[str, Any] = {}
    if fail_silently:
        overrides["fail_silently"] = True
    if auth_user is not None:
        overrides["username"] = auth_user
    if auth_password is not None:
        overrides["password"] = auth_password
    return mailers.create(DEFAULT_MAILER_ALIAS if using is None else using, **overrides)


def check_using(using: str | None, connection: BaseEmailBackend | None) -> None:
    """``TypeError`` when both ``using`` and ``connection`` are given."""
    if using is not None and connection is not None:
        raise TypeError(
            f"'connection' is not compatible with 'using'. A mailer (using={using!r}) "
            "makes its own connection."
        )


def relay_backend(alias: str | None, fallback: Any) -> BaseEmailBackend:
    """The backend a worker delivers with, failing silently (each message's
    ``delivery`` tells what happened): mailer ``alias``, or without one ``fallback``,
    a backend path or class (the worker's ``EMAIL_QUEUE_RELAY_BACKEND`` or
    ``EMAIL_CELERY_RELAY_BACKEND``)."""
    if alias is None:
        return get_connection(fallback, fail_silently=True)
    backend = mailers.create(alias, fail_silently=True)
    if getattr(backend, "dkim", None) is not None:
        # Queued mail is signed by the sender (README, "Deliverability"): the worker
        # delivers the stored bytes as they are, so a key here signs nothing.
        warnings.warn(
            f"MAILERS[{alias!r}]: the dkim_* options of a relay mailer are not used; queued "
            "mail is signed when it is queued: give them to the queue or Celery mailer",
            stacklevel=2,
        )
    return backend
