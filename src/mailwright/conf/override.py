"""``override_settings``: settings for a block, a function or a test class.

The values hold in the current context only (see ``settings``): two asyncio tasks or
two threads overriding at once do not see each other's values.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar, cast

if TYPE_CHECKING:
    import unittest

from .settings import Layer, settings

__all__ = ["override_settings"]

_F = TypeVar("_F", bound=Callable[..., Any])


class override_settings:
    """Temporarily set settings: a context manager and a decorator.

    Decorates sync functions, async functions, and classes (every ``test*`` method of a
    plain class; the whole class life of a ``unittest.TestCase``).
    Values are checked when the override starts, so a typo fails at once.
    """

    def __init__(self, **values: Any) -> None:
        settings.clean(values)
        self._values = values
        self._layers: list[Layer] = []

    def __enter__(self) -> override_settings:
        self._layers.append(settings.push_override(self._values))
        return self

    def __exit__(self, *exc_info: object) -> None:
        settings.pop_override(self._layers.pop())

    @contextmanager
    def _applied(self) -> Iterator[None]:
        layer = settings.push_override(self._values)
        try:
            yield
        finally:
            settings.pop_override(layer)

    def __call__(self, target: _F) -> _F:
        if isinstance(target, type):
            return self._decorate_class(target)  # type: ignore[return-value]
        import inspect  # only when decorating: keeps `import mailwright` light

        if inspect.iscoroutinefunction(target):

            @functools.wraps(target)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                with self._applied():
                    return await target(*args, **kwargs)

            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(target)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with self._applied():
                return target(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    def _decorate_class(self, cls: type) -> type:
        # A TestCase subclass exists only once unittest is imported: no need to import it.
        unittest_module = sys.modules.get("unittest")
        if unittest_module is not None and issubclass(cls, unittest_module.TestCase):
            return self._decorate_test_case(cast("type[unittest.TestCase]", cls))
        for attr, value in list(vars(cls).items()):
            if attr.startswith("test") and callable(value):
                setattr(cls, attr, self(value))
        return cls

    def _decorate_test_case(self, cls: type[unittest.TestCase]) -> type:
        original_setup = cls.__dict__.get("setUpClass")
        override = self

        @classmethod  # type: ignore[misc]
        def setUpClass(klass: type[unittest.TestCase]) -> None:
            layer = settings.push_override(override._values)
            klass.addClassCleanup(settings.pop_override, layer)
            if original_setup is not None:
                original_setup.__func__(klass)
            else:
                super(cls, klass).setUpClass()  # type: ignore[misc]

        cls.setUpClass = setUpClass  # type: ignore[method-assign,assignment]
        return cls
