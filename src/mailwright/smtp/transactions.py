"""Mail transactions: envelopes in, one ``Outcome`` per message out.

* **Classic** (no PIPELINING): MAIL, each RCPT, DATA and the content, one reply at a
  time.
* **Pipelined** (RFC 2920): MAIL, every RCPT and DATA go as one group; the content of a
  message, its final dot and the whole envelope of the next message go as the next
  group (content may open a group), so a batch costs one round trip per message.

In both, the next message is asked for (and so composed) while the server works on
the current one. The RFCs' corner cases are handled here once for every driver: RSET
after a refused transaction; a lone dot when the server says 354 although it accepted
no recipient (it must then refuse the empty message); a message the server cannot take
(no SMTPUTF8, over its SIZE) fails alone without a command sent for it; a ``421``
ends the session.

``stop_on_failure`` (``send_messages`` with ``fail_silently=False``): after the first
message that reaches nobody, no later message is delivered. With pipelining a later
message's DATA may already be open when the failure becomes known; then the
connection is dropped (``Abort``) before its end of data, so the server discards it.

Every message the conversation takes gets exactly one ``Outcome``; those it took but
never sent carry ``NotAttemptedError``. When the driver throws an I/O error in, each
message in flight gets an outcome with that error before it propagates.
"""

from __future__ import annotations

import smtplib
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

from ..message import Delivery
from .actions import NEED_DATA, NEED_ENVELOPE, Abort, Action, Outcome, Send
from .errors import NotAttemptedError, SMTPUTF8NotSupportedError
from .grammar import check_address, needs_smtputf8
from .protocol import ClientProtocol
from .replies import Reply
from .session import read_reply

if TYPE_CHECKING:
    from ..message import Envelope

__all__ = ["mail_parameters", "transactions"]

Item = tuple[int, "Envelope"]

# Sends are made once per group: built the way a named tuple's __new__ builds them,
# without the Python-level call.
_send = tuple.__new__


def mail_parameters(proto: ClientProtocol, envelope: Envelope) -> tuple[str, ...]:
    """MAIL FROM parameters for this message on this server; raises when the server
    cannot take it at all."""
    smtputf8, eightbit, size, limit = proto.capabilities
    data = envelope.data
    if not envelope.smtputf8 and not (eightbit and not data.isascii()):
        # The usual case: an ASCII message, at most SIZE.
        if not size:
            return ()
        if limit is None or len(data) <= limit:
            return (f"SIZE={len(data)}",)
    parameters: list[str] = []
    if envelope.smtputf8:
        if not smtputf8:
            raise SMTPUTF8NotSupportedError(
                f"message from {envelope.sender!r} to {envelope.recipients!r} has a "
                "non-ASCII address and the server does not offer SMTPUTF8"
            )
        parameters.append("SMTPUTF8")
    if eightbit and not data.isascii():
        parameters.append("BODY=8BITMIME")
    if size:
        if limit is not None and len(data) > limit:
            raise smtplib.SMTPDataError(
                552,
                f"5.3.4 the message is {len(data)} bytes; the server takes at most "
                f"{limit} (SIZE)".encode(),
            )
        parameters.append(f"SIZE={len(data)}")
    return tuple(parameters)


def _refusals(error: BaseException) -> tuple[int, str]:
    code = getattr(error, "smtp_code", 0)
    detail = getattr(error, "smtp_error", None)
    text = detail.decode("utf-8", "replace") if isinstance(detail, bytes) else str(error)
    return code, text


def failed(
    index: int, envelope: Envelope, error: Any, rcpt: dict[str, Reply] | None = None
) -> Outcome:
    """A message nobody received: each recipient is refused with its own RCPT reply
    when it got one, else with the reply that failed the message."""
    refused: dict[str, tuple[int, str]] = {}
    fallback = _refusals(error)
    for recipient in envelope.recipients:
        reply = (rcpt or {}).get(recipient)
        if reply is not None and not 200 <= reply.code < 300:
            refused[recipient] = (reply.code, reply.text)
        else:
            refused[recipient] = fallback
    return Outcome(index, Delivery([], refused, error), error)


def not_attempted(index: int, reason: str) -> Outcome:
    error = NotAttemptedError(reason)
    return Outcome(index, Delivery([], {}, error), error)


class _Transaction:
    """One message's transaction: its envelope, its MAIL parameters and the replies.
    (A plain class: one is made per message, and a dataclass's default factories
    cost more than the literals.)"""

    __slots__ = ("accepted", "data", "envelope", "index", "mail", "parameters", "rcpt")

    def __init__(self, index: int, envelope: Envelope, parameters: tuple[str, ...]) -> None:
        self.index = index
        self.envelope = envelope
        self.parameters = parameters
        self.mail: Reply | None = None
        self.rcpt: dict[str, Reply] = {}
        self.data: Reply | None = None
        self.accepted: list[str] = []

    def record_rcpt(self, recipient: str, reply: Reply) -> None:
        self.rcpt[recipient] = reply
        if 200 <= reply.code < 300:
            self.accepted.append(recipient)

    def queue(self, proto: ClientProtocol) -> None:
        # RCPT takes SMTPUTF8 from MAIL; nothing to repeat per recipient.
        proto.mail_transaction(self.envelope.sender, self.parameters, self.envelope.recipients)

    def refusal(self) -> smtplib.SMTPException | None:
        """Why nobody can get the message, once MAIL, RCPT and DATA are answered."""
        if self.mail is not None and self.mail.code != 250:
            return smtplib.SMTPSenderRefused(
                self.mail.code, self.mail.message, self.envelope.sender
            )
        if not self.accepted:
            return smtplib.SMTPRecipientsRefused(
                {rcpt: (reply.code, reply.message) for rcpt, reply in self.rcpt.items()}
            )
        if self.data is not None and self.data.code != 354:
            return smtplib.SMTPDataError(self.data.code, self.data.message)
        return None

    def stale(self, after_failure: bool) -> Outcome | None:
        """The outcome of a transaction whose MAIL got ``503`` right after a refused
        transaction (``after_failure``): the server still held that one, so this
        message was not tried; None otherwise."""
        if not after_failure or self.mail is None or self.mail.code != 503:
            return None
        error = NotAttemptedError(
            f"not sent: the server answered MAIL with {self.mail} right after refusing "
            "the message before; the session was reset (RSET) and the message can be "
            "sent again"
        )
        return Outcome(self.index, Delivery([], {}, error), error)

    def closed_error(self) -> smtplib.SMTPException:
        """Why the message failed when the server ended the session (421) before
        answering all of its envelope."""
        if self.mail is None:
            return smtplib.SMTPServerDisconnected(_closed_reason(None))
        refusal = self.refusal()
        if refusal is not None:
            return refusal
        last = self.data or (list(self.rcpt.values())[-1] if self.rcpt else self.mail)
        if last is None:
            return smtplib.SMTPServerDisconnected(_closed_reason(None))
        return smtplib.SMTPResponseException(last.code, last.message)

    def sent(self) -> Outcome:
        if len(self.accepted) < len(self.rcpt):
            refused = {
                rcpt: (reply.code, reply.text)
                for rcpt, reply in self.rcpt.items()
                if not 200 <= reply.code < 300
            }
            return Outcome(self.index, Delivery(self.accepted, refused, None), None)
        return Outcome(self.index, Delivery(self.accepted, {}, None), None)

    def failed(self, error: Any) -> Outcome:
        # After a refused MAIL, RCPT replies (pipelined: "503 need MAIL first") say
        # nothing about the recipients: the refusal of MAIL is what each one gets.
        mail_refused = self.mail is not None and self.mail.code != 250
        return failed(self.index, self.envelope, error, None if mail_refused else self.rcpt)


def _closed_reason(reply: Reply | None) -> str:
    return f"the server closed the session ({reply})" if reply else "the server closed the session"


def transactions(
    proto: ClientProtocol, *, stop_on_failure: bool, pipelining: bool = True
) -> Generator[Action, Any, None]:
    """Send every envelope the driver hands over; yield an ``Outcome`` for each."""
    if pipelining and proto.pipelining:
        return _pipelined(proto, stop_on_failure)
    return _classic(proto, stop_on_failure)


def _prepare(proto: ClientProtocol, item: Item) -> _Transaction | Outcome:
    """The transaction for an item, or the outcome of an item that fails on its own
    before any command is sent (a server that cannot take it)."""
    index, envelope = item
    try:
        return _Transaction(index, envelope, mail_parameters(proto, envelope))
    except smtplib.SMTPException as exc:
        return failed(index, envelope, exc)


def _pipelined(proto: ClientProtocol, stop_on_failure: bool) -> Generator[Action, Any, None]:
    ahead: Item | None = yield NEED_ENVELOPE
    exhausted = ahead is None  # the driver has no more items
    carry: _Transaction | None = None  # its DATA got 354: its content goes with the next group
    lone_dot = False  # 354 with no accepted recipient: end the data with a lone dot
    rset_due = False  # a transaction failed before its data: RSET goes with the next group
    stopped = False
    refused = False  # the transaction before the current one was refused
    current: _Transaction | None = None
    try:
        while ahead is not None or carry is not None or lone_dot or rset_due:
            current = None
            if ahead is not None:
                if stopped:
                    yield not_attempted(ahead[0], "not sent: an earlier message failed")
                    ahead = None
                else:
                    index, envelope = ahead
                    try:  # (_prepare(), inline: once per message)
                        current = _Transaction(index, envelope, mail_parameters(proto, envelope))
                    except smtplib.SMTPException as exc:  # fails alone, before any command
                        yield failed(index, envelope, exc)
                        stopped = stop_on_failure
                        ahead = None if stopped else (yield NEED_ENVELOPE)
                        exhausted = exhausted or (ahead is None and not stopped)
                        continue
                    ahead = None  # in flight now, no longer ahead
            # The usual group, the content of the message before (if any) and this
            # message's envelope, goes in one call; anything else, step by step.
            usual = current is not None and not (lone_dot or rset_due)
            if not usual:
                if carry is not None:
                    proto.content(carry.envelope.data)
                elif lone_dot:
                    proto.content(b"")
                if rset_due:
                    proto.rset()
            if current is not None:
                try:
                    if usual:
                        proto.mail_transaction(
                            current.envelope.sender,
                            current.parameters,
                            current.envelope.recipients,
                            None if carry is None else carry.envelope.data,
                        )
                    else:
                        current.queue(proto)
                except ValueError as exc:
                    # A path the protocol layer refuses (the message side's checks make
                    # it impossible): this message fails alone; nothing of it was queued.
                    if usual and carry is not None:
                        proto.content(carry.envelope.data)
                    yield current.failed(exc)
                    current = None
                    usual = False
                    stopped = stopped or stop_on_failure
            # With the group on its way, the next message is composed while the server
            # works through it.
            more = not (stopped or exhausted)
            ahead = yield _send(Send, (proto.data_to_send(), more))
            exhausted = exhausted or (more and ahead is None)

            # The replies, in the order the commands went (fewer if a 421 ended it).
            # Nothing can have been read for a group just sent: its replies are due.
            received: list[Reply] = []
            fast: tuple[Reply, Reply] | None = None
            try:
                if usual and not stopped:
                    # The usual outcome in one check (the content before accepted,
                    # MAIL 250, RCPT 2xx, DATA 354), else the general way.
                    fast = proto.take_usual((yield NEED_DATA))
                    if fast is None:
                        received = proto.next_replies()
                if fast is None:
                    due = len(received) + proto.waiting
                    while len(received) < due and not proto.closed:
                        proto.receive_data((yield NEED_DATA))
                        received += proto.next_replies()
            except (OSError, smtplib.SMTPException):
                # The connection failed part-way through the replies: the reply to
                # the end of data, when it came, still says what became of that message.
                if carry is not None and received:
                    end = received[0]
                    yield (
                        carry.sent()
                        if end.code == 250
                        else carry.failed(smtplib.SMTPDataError(end.code, end.message))
                    )
                    carry = None
                raise
            if fast is not None:
                assert current is not None
                if carry is not None:
                    yield carry.sent()
                    refused = False
                current.mail, current.data = fast
                current.accepted = list(current.envelope.recipients)
                carry, current = current, None
                continue
            replies = iter(received)
            reset = False  # RSET goes with the next group
            if carry is not None or lone_dot:
                reply = next(replies, None)
                if carry is not None and reply is not None:
                    if reply.code == 250:
                        yield carry.sent()
                        refused = False
                    else:
                        yield carry.failed(smtplib.SMTPDataError(reply.code, reply.message))
                        stopped = stopped or stop_on_failure
                        refused = True
                        # RSET after a refused end of data: a server may keep the
                        # refused transaction (Postfix does). A MAIL already in this
                        # group tells whether it did; with none, RSET goes next.
                        reset = current is None
                    carry = None
                lone_dot = False
            if rset_due:
                next(replies, None)
                rset_due = False
            if current is None:
                rset_due = reset
                if proto.closed:
                    break
                continue
            current.mail = next(replies, None)
            rcpt, accepted = current.rcpt, current.accepted
            for recipient in current.envelope.recipients:
                reply = next(replies, None)
                if reply is None:
                    break
                rcpt[recipient] = reply
                if 200 <= reply[0] < 300:
                    accepted.append(recipient)
            current.data = next(replies, None)
            if proto.closed:  # a 421 ended the session part-way through the envelope
                yield current.failed(current.closed_error())
                current = None
                break
            data_reply = current.data
            mail_reply = current.mail
            refusal = (
                None
                if data_reply is not None
                and data_reply[0] == 354
                and mail_reply is not None
                and mail_reply[0] == 250
                and current.accepted
                else current.refusal()
            )
            if refusal is None:
                if stopped:
                    # An earlier message failed while this one's DATA was open: drop the
                    # connection before its end of data, and the server discards it.
                    yield not_attempted(current.index, "not sent: an earlier message failed")
                    current = None
                    if ahead is not None:
                        yield not_attempted(ahead[0], "not sent: an earlier message failed")
                        ahead = None
                    yield Abort("an earlier message failed while this one's data was open")
                    return
                carry = current
            else:
                stale = current.stale(refused)
                if stale is not None:
                    yield stale  # the server still held the refused transaction before
                else:
                    yield current.failed(refusal)
                    stopped = stopped or stop_on_failure
                refused = True
                # The server wants data nobody may receive (a refused MAIL's RCPTs may
                # have joined a stale transaction): a lone dot ends it, RSET follows.
                lone_dot = data_reply is not None and data_reply[0] == 354
                rset_due = True
            current = None
        if proto.closed:
            for pending in (carry, current):
                if pending is not None:
                    yield pending.failed(smtplib.SMTPServerDisconnected(_closed_reason(None)))
            if ahead is not None:
                yield not_attempted(ahead[0], _closed_reason(None))
    except (OSError, smtplib.SMTPException) as exc:
        # The connection failed: whatever was in flight gets this error.
        if carry is not None:
            yield carry.failed(exc)
        if current is not None:
            yield current.failed(exc)
        if ahead is not None:
            yield not_attempted(ahead[0], f"not sent: the connection failed ({exc})")
        raise


def _classic(proto: ClientProtocol, stop_on_failure: bool) -> Generator[Action, Any, None]:
    ahead: Item | None = yield NEED_ENVELOPE
    current: _Transaction | None = None
    refused = False  # the last transaction sent was refused
    try:
        while ahead is not None:
            prepared = _prepare(proto, ahead)
            ahead = None
            reset = False
            if isinstance(prepared, Outcome):
                outcome, looked_ahead = prepared, False
            else:
                current = prepared
                outcome, looked_ahead, ahead, reset = yield from _classic_one(
                    proto, current, refused
                )
                refused = outcome.error is not None
                current = None
            yield outcome
            if reset and not proto.closed:
                # RSET after a refused end of data: a server may keep the refused
                # transaction (Postfix does), and refuse the next MAIL as nested.
                proto.rset()
                yield Send(proto.data_to_send())
                yield from read_reply(proto)
            end = (
                _closed_reason(None)
                if proto.closed
                else "not sent: an earlier message failed"
                if outcome.error is not None and stop_on_failure
                else None
            )
            if end is not None:
                if ahead is not None:
                    yield not_attempted(ahead[0], end)
                return
            if not looked_ahead:
                ahead = yield NEED_ENVELOPE
    except (OSError, smtplib.SMTPException) as exc:
        if current is not None:
            yield current.failed(exc)
        if ahead is not None:
            yield not_attempted(ahead[0], f"not sent: the connection failed ({exc})")
        raise


def _classic_one(
    proto: ClientProtocol, txn: _Transaction, after_failure: bool
) -> Generator[Action, Any, tuple[Outcome, bool, Item | None, bool]]:
    """One transaction, one command at a time. Returns its outcome, whether the next
    item was asked for (once the content is out, while the server works), that item,
    and whether RSET is due (the end of data was refused). ``after_failure``: the
    transaction before this one was refused."""
    try:  # every path first, so a refused one never leaves a transaction half-way
        check_address(txn.envelope.sender, allow_empty=True)
        for recipient in txn.envelope.recipients:
            check_address(recipient)
        if "SMTPUTF8" not in txn.parameters and needs_smtputf8(*txn.envelope.recipients):
            # as mail_transaction() refuses it pipelined: no 8-bit RCPT without SMTPUTF8
            raise ValueError(f"non-ASCII addresses need SMTPUTF8: {txn.envelope.recipients!r}")
    except ValueError as exc:
        return txn.failed(exc), False, None, False
    proto.mail(txn.envelope.sender, txn.parameters)
    yield Send(proto.data_to_send())
    _, txn.mail = yield from read_reply(proto)
    if txn.mail.code == 250:
        for recipient in txn.envelope.recipients:
            proto.rcpt(recipient)
            yield Send(proto.data_to_send())
            _, reply = yield from read_reply(proto)
            txn.record_rcpt(recipient, reply)
            if proto.closed:
                break
        if txn.accepted and not proto.closed:
            proto.data()
            yield Send(proto.data_to_send())
            _, txn.data = yield from read_reply(proto)
    if proto.closed:
        return txn.failed(txn.closed_error()), False, None, False
    refusal = txn.refusal()
    if refusal is not None:
        proto.rset()
        yield Send(proto.data_to_send())
        yield from read_reply(proto)
        return txn.stale(after_failure) or txn.failed(refusal), False, None, False
    proto.content(txn.envelope.data)
    ahead: Item | None = yield Send(proto.data_to_send(), then_envelope=True)
    try:
        _, reply = yield from read_reply(proto)
    except (OSError, smtplib.SMTPException) as exc:
        if ahead is not None:  # taken while the server worked, never sent
            yield not_attempted(ahead[0], f"not sent: the connection failed ({exc})")
        raise
    if reply.code == 250:
        return txn.sent(), True, ahead, False
    return txn.failed(smtplib.SMTPDataError(reply.code, reply.message)), True, ahead, True
