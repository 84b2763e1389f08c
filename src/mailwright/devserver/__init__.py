"""The development mail catcher (``mailwright smtpd``): an SMTP server that accepts
every message, prints it, stores it (optionally in a Maildir) and shows it in a web
inbox. The SMTP side needs only the standard library; the web inbox needs aiohttp and
generating TLS certificates needs cryptography (both in the ``devserver`` extra)."""

from .certs import TLSSetupError
from .server import DevServer, PortInUseError
from .store import MaildirError, MessageStore, StoredMessage

__all__ = [
    "DevServer",
    "MaildirError",
    "MessageStore",
    "PortInUseError",
    "StoredMessage",
    "TLSSetupError",
]
