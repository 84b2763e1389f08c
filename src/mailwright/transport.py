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
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from .exceptions import SMTPUTF8NotSupportedError
from .message import Delivery, Envelope

__all__ = ["Outcome", "dot_stuffed", "failed_outcome", "run_transactions"]

_LEADING_DOT = re.compile(rb"(?m)^\.")
_MAX_REPLY_LINE = 8192  # as smtplib: far above RFC 5321's 512
_END = b".\r\n"


@dataclass(slots=True)
class Outcome:
    """The result of one transaction. ``delivery`` says who got the message; when
    ``error`` is set nobody did, and ``delivery.refused`` lists every recipient."""

    index: int
    delivery: Delivery
    error: smtplib.SMTPException | None


def dot_stuffed(data: bytes) -> bytes:
    """DATA content with leading dots doubled (RFC 5321 section 4.5.2)."""
    if data.startswith(b".") or b"\n." in data:
        return _LEADING_DOT.sub(b"..", data)
    return data


def _getreply(smtp: smtplib.SMTP) -> tuple[int, bytes]:
    """``smtp.getreply()`` with a fast path for the usual one-line reply.

    A batch reads four or more replies per message; smtplib's general loop is a good
    part of the client's time then.
    """
    file = smtp.file
    if file is None:
        return smtp.getreply()
    try:
        line = file.readline(_MAX_REPLY_LINE + 1)
    except OSError as exc:
        smtp.close()
        raise smtplib.SMTPServerDisconnected(f"Connection unexpectedly closed: {exc}") from exc
    if line[3:4] == b" " and line[:3].isdigit() and line.endswith(b"\r\n"):
        return int(line[:3]), line[4:-2].strip(b" \t")
    return _rest_of_reply(smtp, line)


def _rest_of_reply(smtp: smtplib.SMTP, line: bytes) -> tuple[int, bytes]:
    """The general case: continuation lines, odd line ends, end of file."""
    lines = []
    while True:
        if not line:
            smtp.close()
            raise smtplib.SMTPServerDisconnected("Connection unexpectedly closed")
        if len(line) > _MAX_REPLY_LINE:
            smtp.close()
            raise smtplib.SMTPResponseException(500, b"Line too long.")
        lines.append(line[4:].strip(b" \t\r\n"))
        code = line[:3]
        if not code.isdigit():
            return -1, b"\n".join(lines)
        if line[3:4] != b"-":
            return int(code), b"\n".join(lines)
        assert smtp.file is not None
        line = smtp.file.readline(_MAX_REPLY_LINE + 1)


def _mail_command(smtp: smtplib.SMTP, envelope: Envelope) -> bytes:
    features = smtp.esmtp_features
    options = ""
    if envelope.smtputf8:
        if "smtputf8" not in features:
            raise SMTPUTF8NotSupportedError(
                f"message from {envelope.sender!r} to {envelope.recipients!r} has a "
                "non-ASCII address and the server does not offer SMTPUTF8"
            )
        options += " SMTPUTF8"
    if "8bitmime" in features and not envelope.data.isascii():
        options += " BODY=8BITMIME"
    if "size" in features:
        options += f" SIZE={len(envelope.data)}"
    return f"MAIL FROM:<{envelope.sender}>{options}\r\n".encode()


def _rcpt_commands(envelope: Envelope) -> bytes:
    return "".join([f"RCPT TO:<{recipient}>\r\n" for recipient in envelope.recipients]).encode()


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


def failed_outcome(
    index: int,
    recipients: list[str],
    delivery: Delivery | None,
    error: smtplib.SMTPException,
) -> Outcome:
    """The outcome of a message nobody received: every recipient is listed as refused,
    with its own RCPT reply when it got one, else with the reply that failed the
    message (MAIL or DATA refused, SMTPUTF8 missing)."""
    code = getattr(error, "smtp_code", 0)
    detail = getattr(error, "smtp_error", None)
    text = _text(detail) if isinstance(detail, bytes) else str(detail or error)
    refused = dict(delivery.refused) if delivery is not None else {}
    for recipient in recipients:
        refused.setdefault(recipient, (code, text))
    return Outcome(index, Delivery(accepted=[], refused=refused), error)


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
    code, message = _getreply(smtp)
    if code != 250:
        _rset(smtp)
        error = smtplib.SMTPSenderRefused(code, message, envelope.sender)
        return failed_outcome(index, envelope.recipients, None, error)
    replies = []
    for recipient in envelope.recipients:
        smtp.send(f"RCPT TO:<{recipient}>\r\n".encode())
        replies.append(_getreply(smtp))
    delivery = _split_recipients(envelope, replies)
    if not delivery.accepted:
        _rset(smtp)
        return failed_outcome(
            index, envelope.recipients, delivery, _refused_error(envelope, delivery)
        )
    smtp.send(b"DATA\r\n")
    code, message = _getreply(smtp)
    if code != 354:
        _rset(smtp)
        return failed_outcome(
            index, envelope.recipients, None, smtplib.SMTPDataError(code, message)
        )
    smtp.send(dot_stuffed(envelope.data) + _END)
    code, message = _getreply(smtp)
    if code != 250:
        _rset(smtp)
        return failed_outcome(
            index, envelope.recipients, None, smtplib.SMTPDataError(code, message)
        )
    return Outcome(index, delivery, None)


@dataclass(slots=True)
class _InFlight:
    """A pipelined transaction whose content went out and whose final reply is due."""

    index: int
    recipients: list[str]
    delivery: Delivery | None
    aborted: bool  # content replaced by a lone dot: the reply is expected to be a refusal
    refusal: smtplib.SMTPException | None = None


def _pipelined(
    smtp: smtplib.SMTP,
    items: Iterable[tuple[int, Envelope]],
    proceed: Callable[[], bool],
) -> Iterator[Outcome]:
    carry = b""  # content + dot of the previous message, sent ahead of the next envelope
    in_flight: _InFlight | None = None
    pending_rsets = 0
    upcoming = iter(items)
    item = next(upcoming, None)
    while item is not None:
        index, envelope = item
        try:
            mail = _mail_command(smtp, envelope)
        except smtplib.SMTPException as exc:
            if carry:
                smtp.send(carry)
                carry = b""
            yield from _finish(smtp, in_flight, pending_rsets)
            in_flight, pending_rsets = None, 0
            yield failed_outcome(index, envelope.recipients, None, exc)
            item = next(upcoming, None) if proceed() else None
            continue
        smtp.send(carry + mail + _rcpt_commands(envelope) + b"DATA\r\n")
        carry = b""
        # While the server works through this group, build the next message: its
        # composition costs no extra time then.
        item = next(upcoming, None)
        yield from _finish(smtp, in_flight, pending_rsets)
        in_flight, pending_rsets = None, 0

        mail_reply = _getreply(smtp)
        rcpt_replies = [_getreply(smtp) for _ in envelope.recipients]
        data_code, data_message = _getreply(smtp)
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
            in_flight = _InFlight(index, envelope.recipients, delivery, aborted=False)
        elif data_code == 354:
            # The server wants content although nobody can receive it: end the
            # transaction with a lone dot, never the real content.
            carry = _END
            in_flight = _InFlight(
                index, envelope.recipients, delivery, aborted=True, refusal=refusal
            )
        else:
            # DATA refused: the transaction is over; RSET clears any state left
            # (its reply is read with the next group's).
            carry = b"RSET\r\n"
            pending_rsets = 1
            yield failed_outcome(index, envelope.recipients, delivery, refusal)
        if item is not None and not proceed():
            item = None  # built but never sent: it has no outcome
    if carry:
        smtp.send(carry)
    yield from _finish(smtp, in_flight, pending_rsets)


def _finish(
    smtp: smtplib.SMTP, in_flight: _InFlight | None, pending_rsets: int
) -> Iterator[Outcome]:
    """Read the replies owed for what went out in the last group."""
    for _ in range(pending_rsets):
        _getreply(smtp)
    if in_flight is None:
        return
    code, message = _getreply(smtp)
    if in_flight.aborted:
        assert in_flight.refusal is not None
        yield failed_outcome(
            in_flight.index, in_flight.recipients, in_flight.delivery, in_flight.refusal
        )
    elif code != 250:
        error = smtplib.SMTPDataError(code, message)
        yield failed_outcome(in_flight.index, in_flight.recipients, None, error)
    else:
        assert in_flight.delivery is not None
        yield Outcome(in_flight.index, in_flight.delivery, None)


def _always() -> bool:
    return True


def run_transactions(
    smtp: smtplib.SMTP,
    envelopes: Iterable[tuple[int, Envelope]],
    *,
    pipelining: bool = True,
    proceed: Callable[[], bool] = _always,
) -> Iterator[Outcome]:
    """Send every (index, envelope); yield an ``Outcome`` for each, in order.

    SMTP refusals come back as outcomes; connection failures (``OSError``,
    ``SMTPServerDisconnected``) propagate. When pipelining, the next envelope is taken
    from ``envelopes`` one step early (so it is built while the server works); before
    it is sent, ``proceed()`` is asked, and when it says no the batch ends there, the
    taken envelope unsent. Stop iterating early only by closing the connection: a
    pipelined transaction may be half-way.
    """
    if pipelining and smtp.has_extn("pipelining"):
        yield from _pipelined(smtp, envelopes, proceed)
    else:
        for index, envelope in envelopes:
            try:
                yield _classic(smtp, index, envelope)
            except SMTPUTF8NotSupportedError as exc:
                yield failed_outcome(index, envelope.recipients, None, exc)
