"""Files a template names: its inline images and linked stylesheets, found in the
template directories."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from ..message.content import guess_mimetype

__all__ = ["InlineImages", "find_file"]


def find_file(name: str, dirs: Sequence[Path], what: str) -> Path:
    """The file ``name`` (a relative path such as ``img/logo.png``) in the first of
    ``dirs`` that has it. A name that climbs out of its directory (``../x``) or is
    absolute raises ``ValueError``; a file in none of them ``FileNotFoundError``."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"{what}: expected a file name, got {name!r}")
    # A plain str: pathlib on Python 3.11 interns parts, which a str subclass (Django's
    # SafeString, from a template tag) cannot be.
    relative = Path(str.__str__(name))
    if relative.is_absolute() or ".." in relative.parts:
        raise ValueError(
            f"{what} {name!r}: give a path relative to the template directories, without '..'"
        )
    for directory in dirs:
        candidate = directory / relative
        if candidate.is_file():
            return candidate
    searched = ", ".join(os.fspath(directory) for directory in dirs) or "none configured"
    raise FileNotFoundError(
        f"{what} {name!r}: no such file in the template directories ({searched})"
    )


class InlineImages:
    """What ``inline_image()`` collected while one message was rendered: each file is
    read once, when the template names it, and gets one Content-ID."""

    def __init__(self, dirs: Sequence[Path]) -> None:
        self.dirs = list(dirs)
        # path -> (file name, content, mimetype, content id)
        self.parts: dict[Path, tuple[str, bytes, str, str]] = {}

    def __call__(self, name: str) -> str:
        """The ``cid:`` URL of image ``name`` (the template's ``inline_image``)."""
        path = find_file(name, self.dirs, "inline_image")
        part = self.parts.get(path)
        if part is None:
            cid = f"{os.urandom(10).hex()}@mailwright.inline"
            part = (path.name, path.read_bytes(), guess_mimetype(path.name), cid)
            self.parts[path] = part
        return f"cid:{part[3]}"
