"""The task payload: a chunk of messages in wire form, as JSON-safe data.

``{"version": 1, "messages": [RawMessage.to_dict(), ...]}`` — the envelope sender, the
recipients and the message bytes (base64), nothing else: no settings, no credentials.
The worker delivers with its own configuration. ``"relay": alias``, when present,
names the mailer (in the worker's ``MAILERS``) to deliver through; a payload without
it reads as before.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from ..message import EmailMessage, RawMessage

if TYPE_CHECKING:
    from ..message.dkim import DKIMSigner

__all__ = [
    "MAX_MESSAGES",
    "PAYLOAD_VERSION",
    "dump_chunk",
    "load_chunk",
    "payload_relay",
    "wire_form",
]

_KEYS = frozenset({"version", "messages"})
_OPTIONAL_KEYS = frozenset({"relay"})

PAYLOAD_VERSION = 1
MAX_MESSAGES = 10_000  # the largest EMAIL_CELERY_CHUNK


def wire_form(message: EmailMessage, dkim: DKIMSigner | None = None) -> dict[str, Any] | None:
    """``RawMessage(data, sender, recipients).to_dict()`` of the message's envelope, or
    None when it has no recipients (not sent).

    Written out rather than built through ``RawMessage``: composing the envelope has
    just checked every address and made the CRLF bytes, and checking them again cost
    28 of the 90 us a message takes in ``send_messages`` (measured, 10,000 plain
    messages). The form is the same (the tests compare them); the worker rebuilds a
    ``RawMessage`` from it with ``from_dict``, which checks everything again there.
    With ``dkim`` the message is signed (a ``RawMessage`` is sent as it is).
    """
    if isinstance(message, RawMessage):
        return message.to_dict() if message.to else None
    envelope = message.envelope(dkim) if dkim else message.envelope()
    if not envelope.recipients:
        return None
    return {
        "sender": envelope.sender,
        "recipients": list(envelope.recipients),
        "data": base64.b64encode(envelope.data).decode("ascii"),
    }


def dump_chunk(
    messages: Iterable[RawMessage | dict[str, Any]], relay: str | None = None
) -> dict[str, Any]:
    """The payload of a chunk: RawMessages, or their ``to_dict()`` forms, and the
    alias of the mailer to deliver them through (left out when None)."""
    payload: dict[str, Any] = {
        "version": PAYLOAD_VERSION,
        "messages": [m if isinstance(m, dict) else m.to_dict() for m in messages],
    }
    if relay is not None:
        payload["relay"] = relay
    return payload


def payload_relay(payload: Mapping[str, Any]) -> str | None:
    """The relay mailer's alias in a payload ``load_chunk`` accepted, or None."""
    relay = payload.get("relay")
    if relay is not None and (not isinstance(relay, str) or not 0 < len(relay) <= 200):
        raise ValueError("payload 'relay' must be a mailer alias (a short string)")
    return relay


def load_chunk(payload: Any) -> list[RawMessage]:
    """The messages of a payload ``dump_chunk`` made. Anything else raises
    ``ValueError`` saying what is wrong: the whole payload is refused, so nothing of
    a damaged or forged payload is sent."""
    if not isinstance(payload, Mapping):
        raise ValueError(f"payload must be a mapping, got {type(payload).__name__}")
    keys = set(payload)
    if not _KEYS <= keys <= _KEYS | _OPTIONAL_KEYS:
        extra, missing = (
            sorted(map(str, keys - _KEYS - _OPTIONAL_KEYS)),
            sorted(_KEYS - keys),
        )
        raise ValueError(f"payload keys are wrong (unexpected: {extra}, missing: {missing})")
    payload_relay(payload)
    version = payload["version"]
    if version != PAYLOAD_VERSION or isinstance(version, bool):
        raise ValueError(
            f"payload version {version!r} is not supported (this mailwright reads "
            f"version {PAYLOAD_VERSION}; are senders and workers on the same release?)"
        )
    entries = payload["messages"]
    if not isinstance(entries, list) or not entries:
        raise ValueError("payload 'messages' must be a non-empty list")
    if len(entries) > MAX_MESSAGES:
        raise ValueError(f"payload has {len(entries)} messages, more than {MAX_MESSAGES}")
    messages = []
    for index, entry in enumerate(entries):
        try:
            message = RawMessage.from_dict(entry)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"payload message {index}: {exc}") from None
        if not message.recipients():
            raise ValueError(f"payload message {index}: no recipients")
        messages.append(message)
    return messages
