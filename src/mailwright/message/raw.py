"""``RawMessage``: a message already in wire form, with its SMTP envelope."""

from __future__ import annotations

import email.message
import email.policy
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from .addresses import parse_mailbox
from .envelope import Envelope
from .message import EmailMessage, address_list_arg, parse_mailboxes
from .mime import crlf_lines

if TYPE_CHECKING:
    from ..backends.base import BaseEmailBackend
    from .dkim import DKIMSigner

__all__ = ["RawMessage"]


class RawMessage(EmailMessage):
    """A message already in wire form: its bytes and its SMTP envelope.

    What the durable outbox, the Celery backend and the catcher's "release" hand to a
    backend: every backend sends it like any other message, and the SMTP backend sends
    ``data`` exactly as given (line breaks normalised to CRLF). The envelope addresses
    pass the same checks as every other address, so a stored or received envelope
    cannot inject SMTP parameters.

    ``to_dict()`` / ``from_dict()`` give a JSON-safe form (no pickle) for task queues.
    """

    def __init__(
        self,
        data: bytes,
        from_email: str,
        recipients: Iterable[Any],
        *,
        connection: BaseEmailBackend | None = None,
    ) -> None:
        if not isinstance(data, bytes | bytearray | memoryview):
            raise TypeError(f"RawMessage data must be bytes, got {type(data).__name__}")
        data = bytes(data)
        if not data.strip():
            raise ValueError("RawMessage data is empty")
        recipient_list = address_list_arg(recipients, "recipients")
        # from_email given: the base class then skips reading DEFAULT_FROM_EMAIL (a
        # settings lookup that cost a quarter of building a RawMessage).
        super().__init__(from_email=from_email, connection=connection)
        self._sender = parse_mailbox(from_email, "from_email")
        self._recipients = parse_mailboxes(recipient_list, "recipients")
        self.from_email = self._sender.addr_spec
        self.to = [mailbox.addr_spec for mailbox in self._recipients]
        self.data = crlf_lines(data)
        self._smtputf8 = not self._header().isascii() or any(
            mailbox.needs_smtputf8 for mailbox in (self._sender, *self._recipients)
        )
        self._subject: str | None = None  # parsed on first read: sending never needs it

    def _header(self) -> bytes:
        end = self.data.find(b"\r\n\r\n")
        return self.data if end < 0 else self.data[:end]

    @property
    def subject(self) -> str:
        """The Subject field, decoded (read from the data when first asked for: the
        stdlib parser costs more than sending the message)."""
        if self._subject is None:
            self._subject = _raw_subject(self._header())
        return self._subject

    @subject.setter
    def subject(self, value: str) -> None:
        self._subject = value

    def __repr__(self) -> str:
        return f"<RawMessage {len(self.data)} bytes from={self.from_email!r} to={self.to!r}>"

    def recipients(self) -> list[str]:
        return list(self.to)

    def message(self, *, policy: email.policy.Policy | None = None) -> email.message.EmailMessage:
        from email import message_from_bytes
        from email import policy as policies

        parsed = message_from_bytes(self.data, policy=policy or policies.default)
        assert isinstance(parsed, email.message.EmailMessage)
        return parsed

    def as_bytes(self) -> bytes:
        return self.data

    def envelope(self, dkim: DKIMSigner | None = None) -> Envelope:
        """The envelope, with ``data`` exactly as given: a message already in wire
        form is never signed (again), whatever ``dkim`` says. Mail queued by the
        outbox or Celery backends was signed by the sender, when it was queued."""
        return Envelope(self.from_email, list(self.to), self.data, self._smtputf8)

    def attach(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError("a RawMessage is already composed; attachments cannot be added")

    def list_unsubscribe(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError("a RawMessage is already composed; its header cannot change")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe form: ``{"sender", "recipients", "data"}`` (data in base64)."""
        import base64

        return {
            "sender": self.from_email,
            "recipients": list(self.to),
            "data": base64.b64encode(self.data).decode("ascii"),
        }

    @classmethod
    def from_dict(cls, payload: Any) -> RawMessage:
        """The message ``to_dict()`` made; a payload of any other shape raises
        ``ValueError`` saying what is wrong."""
        import base64
        import binascii

        if not isinstance(payload, Mapping):
            raise ValueError(f"message payload must be a mapping, got {type(payload).__name__}")
        expected = {"sender", "recipients", "data"}
        if set(payload) != expected:
            missing = sorted(expected - set(payload))
            extra = sorted(set(payload) - expected)
            raise ValueError(f"message payload keys wrong: missing {missing}, unexpected {extra}")
        sender, recipients, data = payload["sender"], payload["recipients"], payload["data"]
        if not isinstance(sender, str):
            raise ValueError("message payload 'sender' must be a string")
        if not isinstance(recipients, list) or not all(isinstance(r, str) for r in recipients):
            raise ValueError("message payload 'recipients' must be a list of strings")
        if not recipients:
            raise ValueError("message payload 'recipients' is empty")
        if not isinstance(data, str):
            raise ValueError("message payload 'data' must be a base64 string")
        try:
            raw = base64.b64decode(data.encode("ascii"), validate=True)
        except (binascii.Error, UnicodeEncodeError):
            raise ValueError("message payload 'data' is not valid base64") from None
        return cls(raw, sender, recipients)


def _raw_subject(header: bytes) -> str:
    from email.parser import BytesHeaderParser
    from email.policy import default

    try:
        return str(BytesHeaderParser(policy=default).parsebytes(header).get("Subject", ""))
    except Exception:  # an unreadable header still sends as given
        return ""
