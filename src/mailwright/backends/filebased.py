"""File backend: writes messages to a new file in a directory for every session."""

from __future__ import annotations

import os
import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ..conf import settings
from ..exceptions import ImproperlyConfigured
from . import console

if TYPE_CHECKING:
    from ..message import EmailMessage

__all__ = ["EmailBackend"]


def _writable_directory(path: str) -> str:
    path = os.path.abspath(os.path.expanduser(path))
    if os.path.exists(path) and not os.path.isdir(path):
        raise ImproperlyConfigured(f"EMAIL_FILE_PATH: {path!r} exists but is not a directory")
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as exc:
        raise ImproperlyConfigured(f"EMAIL_FILE_PATH: cannot create {path!r}: {exc}") from exc
    if not os.access(path, os.W_OK | os.X_OK):
        raise ImproperlyConfigured(f"EMAIL_FILE_PATH: {path!r} is not writable")
    return path


class EmailBackend(console.EmailBackend):
    """Each opened session (``open()`` … ``close()``) writes one new ``.log`` file in
    ``file_path`` (or EMAIL_FILE_PATH): the messages as sent, each followed by a line
    of 79 dashes."""

    def __init__(self, *args: Any, file_path: str | os.PathLike[str] | None = None, **kwargs: Any):
        path = file_path if file_path is not None else settings.EMAIL_FILE_PATH
        if path is None:
            raise ImproperlyConfigured(
                "EMAIL_FILE_PATH: the file backend needs a directory (file_path= or setting)"
            )
        self.file_path = _writable_directory(os.fspath(path))
        self._fname: str | None = None
        kwargs.pop("stream", None)
        super().__init__(*args, **kwargs)
        self.stream = None

    def _new_filename(self) -> str:
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        return os.path.join(self.file_path, f"{stamp}-{uuid.uuid4().hex[:12]}.log")

    def write_message(self, message: EmailMessage) -> None:
        self.stream.write(message.as_bytes() + b"\n" + console.SEPARATOR.encode() + b"\n")

    def open(self) -> bool:
        if self.stream is None:
            self._fname = self._new_filename()
            self.stream = open(self._fname, "ab")  # noqa: SIM115 - closed in close()
            return True
        return False

    def close(self) -> None:
        try:
            if self.stream is not None:
                self.stream.close()
        finally:
            self.stream = None
