"""What ``send_bulk`` and ``asend_bulk`` share before their drivers take over:
checking the arguments and deciding how each connection sends."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sized
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .policy import BULK_POLICY, RetryPolicy
from .rate import RateLimiter

if TYPE_CHECKING:
    from ..backends.base import BaseEmailBackend
    from ..message import EmailMessage
    from ..message.dkim import DKIMSigner
    from ..smtp import SMTPConfig

__all__ = ["CONNECT_ATTEMPTS", "Plan"]

CONNECT_ATTEMPTS = 3


@dataclass
class Plan:
    """The messages (any iterable, read as they are sent), how many connections, and
    either one SMTP configuration shared by every connection (the engine is driven
    directly, pipelined) or one backend instance per connection (any other backend:
    a message at a time)."""

    messages: Iterable[EmailMessage]
    workers: int
    limiter: RateLimiter | None
    policy: RetryPolicy
    config: SMTPConfig | None
    backends: list[BaseEmailBackend]
    #: With ``config``: the DKIM signer of the messages this plan composes. (A backend
    #: instance signs in its own ``send_messages``.)
    dkim: DKIMSigner | None = None
    on_result: Callable[[int, EmailMessage], None] | None = None

    @classmethod
    def make(
        cls,
        messages: Iterable[EmailMessage],
        connections: int,
        rate_limit: float | None,
        backend: str | type[BaseEmailBackend] | None,
        backend_kwargs: dict[str, Any],
        config: SMTPConfig | None = None,
        dkim: DKIMSigner | None = None,
        policy: RetryPolicy | None = None,
        *,
        using: str | None = None,
        on_result: Callable[[int, EmailMessage], None] | None = None,
    ) -> Plan:
        from ..backends.loading import get_connection
        from ..backends.mailers import DEFAULT_MAILER_ALIAS, accepted_options, mailers
        from ..smtp import SMTPConfig

        if using is not None and (backend is not None or config is not None or backend_kwargs):
            given = [name for name, value in (("backend", backend), ("config", config)) if value]
            given += sorted(backend_kwargs)
            raise TypeError(
                f"using={using!r} cannot be given with {', '.join(given)}: the mailer's "
                "OPTIONS configure its backend"
            )

        if "connection" in backend_kwargs:
            raise TypeError(
                "connection= cannot be given: bulk sending opens its own connections; name a "
                "mailer with using=, or give backend= and the backend's options"
            )
        if isinstance(connections, bool) or not isinstance(connections, int) or connections < 1:
            raise ValueError(f"connections must be a positive integer, got {connections!r}")
        if on_result is not None and not callable(on_result):
            raise TypeError(f"on_result must be callable, got {on_result!r}")
        limiter = RateLimiter(rate_limit) if rate_limit is not None else None
        workers = connections
        if isinstance(messages, Sized):  # a list: no more connections than messages
            workers = max(1, min(connections, len(messages)))
        backends: list[BaseEmailBackend] = []
        if config is None:
            kwargs = {**backend_kwargs, "fail_silently": False}
            kwargs.pop("connections", None)

            def make() -> BaseEmailBackend:
                # A backend given: as get_connection makes it. Else a mailer (the
                # default one, with the keyword arguments over its options).
                if backend is not None:
                    return get_connection(backend, **kwargs)
                return mailers.create(DEFAULT_MAILER_ALIAS if using is None else using, **kwargs)

            first = make()
            accepted = accepted_options(type(first))
            unknown = sorted(name for name in backend_kwargs if name not in (accepted or ()))
            if accepted is not None and unknown:
                name = f"{type(first).__module__}.{type(first).__qualname__}"
                raise TypeError(
                    f"unknown keyword argument(s) {', '.join(map(repr, unknown))}: "
                    f"{name} does not take them"
                )
            # An SMTP backend (one that carries an engine configuration and does not
            # change how it sends) is driven through the engine directly, pipelined.
            engine_config = getattr(first, "config", None)
            if isinstance(engine_config, SMTPConfig) and getattr(first, "engine_bulk", False):
                config = engine_config
                dkim = getattr(first, "dkim", None)
            else:
                backends = [first, *(make() for _ in range(workers - 1))]
        return cls(
            messages,
            workers,
            limiter,
            policy or BULK_POLICY,
            config,
            backends,
            dkim if config is not None else None,
            on_result,
        )
