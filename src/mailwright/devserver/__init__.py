"""The development mail catcher (``mailwright smtpd``): an SMTP server that accepts
every message, prints it, stores it (optionally in a Maildir) and shows it in a web
inbox. Needs the ``devserver`` extra (aiosmtpd, aiohttp)."""

from .server import DevServer, PortInUseError

__all__ = ["DevServer", "PortInUseError"]
