"""The one error a template raises for what is wrong in it."""

from __future__ import annotations

__all__ = ["TemplateError"]


class TemplateError(Exception):
    """A template that cannot be rendered: not found, a syntax error, an undefined
    variable, no ``subject`` block. The message names the template and, where there is
    one, the line: ``welcome.html, line 4: 'user' is undefined``.

    ``template_name`` and ``lineno`` (None when no line applies) say the same for code.
    The engine's own exception is chained as ``__cause__``."""

    def __init__(self, message: str, template_name: str, lineno: int | None = None) -> None:
        where = template_name if lineno is None else f"{template_name}, line {lineno}"
        super().__init__(f"{where}: {message}")
        self.template_name = template_name
        self.lineno = lineno
