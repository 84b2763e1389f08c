"""SMTP mail transactions over an open ``smtplib`` connection, pipelined when possible.

Connection set-up (TCP, TLS, EHLO, AUTH) stays with ``smtplib``, which is proven; this
module takes over once the session is ready and runs the transactions:

* **Classic** (server without PIPELINING): ``MAIL``, each ``RCPT``, ``DATA``, one reply
  at a time.
* **Pipelined** (RFC 2920): ``MAIL``, every ``RCPT`` and ``DATA`` go out as one group and
  the replies are matched in order. The content of one message, its final dot, and the
  whole envelope of the next message also travel as one group (RFC 2920 section 3.1
  allows message content as the first "command" of a group), so a batch costs one
  round trip per message instead of four.

Failures follow the RFCs: a ``DATA`` refused after good recipients is followed by
``RSET``; a ``354`` with no accepted recipient is answered by a lone dot (the server
must then refuse the empty message), never by the content.
"""

from __future__ import annotations

import re
import smtplib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from .exceptions import SMTPUTF8NotSupportedError
from .message import Delivery, Envelope

__all__ = ["Outcome", "run_transactions"]

_LEADING_DOT = re.compile(rb"(?m)^\.")
_END = b".\r\n"


@dataclass(slots=True)
class Outcome:
    """The result of one transaction: a delivery, or the SMTP error that failed it."""

    index: int
    delivery: Delivery | None
    error: smtplib.SMTPException | None


def dot_stuffed(data: bytes) -> bytes:
    """DATA content with leading dots doubled (RFC 5321 section 4.5.2)."""
    if data.startswith(b".") or b"\n." in data:
        return _LEADING_DOT.sub(b"..", data)
    return data


def _mail_command(smtp: smtplib.SMTP, envelope: Envelope) -> bytes:
    options = []
    if envelope.smtputf8:
        if not smtp.has_extn("smtputf8"):
            raise SMTPUTF8NotSupportedError(
                f"message from {envelope.sender!r} to {envelope.recipients!r} has a "
                "non-ASCII address and the server does not offer SMTPUTF8"
            )
        options.append("SMTPUTF8")
    if smtp.has_extn("8bitmime") and not envelope.data.isascii():
        options.append("BODY=8BITMIME")
    if smtp.has_extn("size"):
        options.append(f"SIZE={len(envelope.data)}")
    suffix = "".join(" " + option for option in options)
    return f"MAIL FROM:<{envelope.sender}>{suffix}\r\n".encode()


def _rcpt_commands(envelope: Envelope) -> list[bytes]:
    return [f"RCPT TO:<{recipient}>\r\n".encode() for recipient in envelope.recipients]


def _text(message: bytes) -> str:
    return message.decode("utf-8", errors="replace")


def _split_recipients(envelope: Envelope, replies: list[tuple[int, bytes]]) -> Delivery:
    delivery = Delivery()
    for recipient, (code, message) in zip(envelope.recipients, replies, strict=True):
        if 200 <= code < 300:
            delivery.accepted.append(recipient)
        else:
            delivery.refused[recipient] = (code, _text(message))
    return delivery


def _rset(smtp: smtplib.SMTP) -> None:
    """Reset after a failed transaction so the connection can carry the next one."""
    try:
        smtp.rset()
    except smtplib.SMTPServerDisconnected:
        raise
    except smtplib.SMTPException:
        pass


def _refused_error(envelope: Envelope, delivery: Delivery) -> smtplib.SMTPRecipientsRefused:
    return smtplib.SMTPRecipientsRefused(
        {rcpt: (code, text.encode()) for rcpt, (code, text) in delivery.refused.items()}
    )


def _classic(smtp: smtplib.SMTP, index: int, envelope: Envelope) -> Outcome:
    smtp.send(_mail_command(smtp, envelope))
    code, message = smtp.getreply()
    if code != 250:
        _rset(smtp)
        return Outcome(index, None, smtplib.SMTPSenderRefused(code, message, envelope.sender))
    replies = []
    for command in _rcpt_commands(envelope):
        smtp.send(command)
        replies.append(smtp.getreply())
    delivery = _split_recipients(envelope, replies)
    if not delivery.accepted:
        _rset(smtp)
        return Outcome(index, delivery, _refused_error(envelope, delivery))
    smtp.send(b"DATA\r\n")
    code, message = smtp.getreply()
    if code != 354:
        _rset(smtp)
        return Outcome(index, delivery, smtplib.SMTPDataError(code, message))
    smtp.send(dot_stuffed(envelope.data) + _END)
    code, message = smtp.getreply()
    if code != 250:
        _rset(smtp)
        return Outcome(index, delivery, smtplib.SMTPDataError(code, message))
    return Outcome(index, delivery, None)


@dataclass(slots=True)
class _InFlight:
    """A pipelined transaction whose content went out and whose final reply is due."""

    index: int
    delivery: Delivery | None
    aborted: bool  # content replaced by a lone dot: the reply is expected to be a refusal
    refusal: smtplib.SMTPException | None = None


def _pipelined(smtp: smtplib.SMTP, items: Iterable[tuple[int, Envelope]]) -> Iterator[Outcome]:
    carry = b""  # content + dot of the previous message, sent ahead of the next envelope
    in_flight: _InFlight | None = None
    pending_rsets = 0
    for index, envelope in items:
        try:
            mail = _mail_command(smtp, envelope)
        except smtplib.SMTPException as exc:
            if carry:
                smtp.send(carry)
                carry = b""
            yield from _finish(smtp, in_flight, pending_rsets)
            in_flight, pending_rsets = None, 0
            yield Outcome(index, None, exc)
            continue
        rcpts = _rcpt_commands(envelope)
        smtp.send(carry + mail + b"".join(rcpts) + b"DATA\r\n")
        carry = b""
        yield from _finish(smtp, in_flight, pending_rsets)
        in_flight, pending_rsets = None, 0

        mail_reply = smtp.getreply()
        rcpt_replies = [smtp.getreply() for _ in rcpts]
        data_code, data_message = smtp.getreply()
        delivery: Delivery | None = _split_recipients(envelope, rcpt_replies)
        refusal: smtplib.SMTPException
        if mail_reply[0] != 250:
            # The RCPT replies only say "MAIL first": nothing to report per recipient.
            delivery = None
            refusal = smtplib.SMTPSenderRefused(mail_reply[0], mail_reply[1], envelope.sender)
        elif not delivery.accepted:
            refusal = _refused_error(envelope, delivery)
        else:
            refusal = smtplib.SMTPDataError(data_code, data_message)

        if data_code == 354 and delivery is not None and delivery.accepted:
            carry = dot_stuffed(envelope.data) + _END
            in_flight = _InFlight(index, delivery, aborted=False)
        elif data_code == 354:
            # The server wants content although nobody can receive it: end the
            # transaction with a lone dot, never the real content.
            carry = _END
            in_flight = _InFlight(index, delivery, aborted=True, refusal=refusal)
        else:
            # DATA refused: the transaction is over; RSET clears any state left
            # (its reply is read with the next group's).
            carry = b"RSET\r\n"
            pending_rsets = 1
            yield Outcome(index, delivery, refusal)
    if carry:
        smtp.send(carry)
    yield from _finish(smtp, in_flight, pending_rsets)


def _finish(
    smtp: smtplib.SMTP, in_flight: _InFlight | None, pending_rsets: int
) -> Iterator[Outcome]:
    """Read the replies owed for what went out in the last group."""
    for _ in range(pending_rsets):
        smtp.getreply()
    if in_flight is None:
        return
    code, message = smtp.getreply()
    if in_flight.aborted:
        yield Outcome(in_flight.index, in_flight.delivery, in_flight.refusal)
    elif code != 250:
        yield Outcome(in_flight.index, in_flight.delivery, smtplib.SMTPDataError(code, message))
    else:
        yield Outcome(in_flight.index, in_flight.delivery, None)


def run_transactions(
    smtp: smtplib.SMTP, envelopes: Iterable[tuple[int, Envelope]], *, pipelining: bool = True
) -> Iterator[Outcome]:
    """Send every (index, envelope); yield an ``Outcome`` for each, in order.

    SMTP refusals come back as outcomes; connection failures (``OSError``,
    ``SMTPServerDisconnected``) propagate. Stop iterating early only by closing the
    connection: a pipelined transaction may be half-way.
    """
    if pipelining and smtp.has_extn("pipelining"):
        yield from _pipelined(smtp, envelopes)
    else:
        for index, envelope in envelopes:
            try:
                yield _classic(smtp, index, envelope)
            except SMTPUTF8NotSupportedError as exc:
                yield Outcome(index, None, exc)
