"""What an SMTP transaction needs (``Envelope``) and what came of it (``Delivery``)."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Delivery", "Envelope"]


@dataclass(slots=True)
class Delivery:
    """What happened to a message on its last send.

    ``accepted`` lists the recipients the server took; ``refused`` maps the others to
    the server's reply (code, text). ``error`` says why the message did not reach
    every recipient when that was not a per-recipient refusal: the server refused it
    at MAIL or end of data, the connection broke, or it was never tried because an
    earlier message of the batch failed. A message counts as sent when ``accepted``
    is not empty.
    """

    accepted: list[str] = field(default_factory=list)
    refused: dict[str, tuple[int, str]] = field(default_factory=dict)
    error: BaseException | None = None

    @property
    def sent(self) -> bool:
        return bool(self.accepted)


@dataclass(frozen=True, slots=True)
class Envelope:
    """What an SMTP transaction needs: MAIL FROM, RCPT TOs and the DATA bytes."""

    sender: str
    recipients: list[str]
    data: bytes
    smtputf8: bool
