"""Values that stand for strings: lazy translation strings and the like.

Django projects pass ``gettext_lazy(...)`` results as subjects, bodies and addresses;
any object with its own ``__str__`` is read as the string it stands for, and then goes
through exactly the checks a ``str`` would.
"""

from __future__ import annotations

__all__ = ["as_text"]


def as_text(value: object) -> str | None:
    """``value`` as a string when it stands for one: a ``str``, or an object with its own
    ``__str__`` such as a lazy translation string (``gettext_lazy``). None otherwise."""
    if type(value) is str or isinstance(value, str):
        return value
    if value is None or isinstance(value, bytes | bytearray | int | float):
        return None
    if type(value).__str__ is object.__str__:
        return None
    text = str(value)
    return text if isinstance(text, str) else None
