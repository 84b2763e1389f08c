"""The SMTP client protocol as an I/O-free state machine (in the manner of h11).

``ClientProtocol`` never touches a socket: the caller queues commands (each method
returns nothing and appends to an output buffer), writes ``data_to_send()`` to the
peer however it likes, feeds what it reads to ``receive_data()`` and takes replies from
``next_reply()``, each paired with the command it answers. The object knows what it
sent and what replies are due, so it enforces the rules of the protocol on both sides:

* replies come in order, one per command; a reply nobody asked for, or a malformed
  one, raises ``SMTPProtocolError`` (never a hang);
* without PIPELINING one command at a time; with it (RFC 2920 section 3.1), RSET,
  MAIL and RCPT may be followed by more commands before their replies, while EHLO,
  HELO, DATA, NOOP, QUIT, STARTTLS and AUTH must end a group; message content may open
  a group (so the content of one message and the envelope of the next travel together);
* after ``354`` only message content may be sent; after STARTTLS's ``220`` nothing
  until the caller reports TLS is up, and then the server's extensions are forgotten
  (RFC 3207) until the next EHLO;
* envelope addresses and ESMTP parameters are checked here (with ``grammar``), the
  last line of defence: no line break, ``<``/``>`` or space can reach a command outside
  a quoted local part, so nothing can smuggle a parameter or a command; a non-ASCII
  path needs SMTPUTF8 on its transaction's MAIL;
* content is dot-stuffed and every line break sent as CRLF, so no bare ``\\n.\\n`` can
  end the data early at a lenient server ("SMTP smuggling").

Breaking a rule from the client side raises ``LocalProtocolError``.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Sequence

from .errors import LocalProtocolError, SMTPProtocolError
from .grammar import (
    _checked_path,
    check_address,
    check_parameter,
    checked_recipient,
    dot_stuff,
    encode_command,
    hello_line,
    needs_smtputf8,
)
from .replies import Reply, ReplyParser

__all__ = ["ClientProtocol", "Command", "check_address", "dot_stuff", "needs_smtputf8"]


class Command(enum.StrEnum):
    # A StrEnum: members hash as strings (in C), which the hot path relies on.

    GREETING = "greeting"  # not sent: the reply the server owes on connecting
    EHLO = "EHLO"
    HELO = "HELO"
    STARTTLS = "STARTTLS"
    AUTH = "AUTH"  # the command, and each response to a 334 challenge
    MAIL = "MAIL"
    RCPT = "RCPT"
    DATA = "DATA"
    CONTENT = "content"  # message content and its final dot
    RSET = "RSET"
    NOOP = "NOOP"
    QUIT = "QUIT"


# RFC 2920 section 3.1: these change the session's state, so they end a group.
_GROUP_ENDERS = frozenset(
    {
        Command.GREETING,
        Command.EHLO,
        Command.HELO,
        Command.STARTTLS,
        Command.AUTH,
        Command.DATA,
        Command.NOOP,
        Command.QUIT,
    }
)

_DATA = Command.DATA

# The replies due for the content of one message and the envelope of the next, to one
# recipient: the usual group of a pipelined batch.
_CONTENT_AND_ONE = (Command.CONTENT, Command.MAIL, Command.RCPT, Command.DATA)

# Commands for which a 250 reply changes nothing in the session's state.
_PLAIN_250 = frozenset({Command.MAIL, Command.RCPT, Command.RSET, Command.CONTENT, Command.NOOP})


def _parse_extensions(reply: Reply) -> dict[str, str]:
    """EHLO keywords (lower case, as ``smtplib`` keeps them) and their parameters.
    The old ``AUTH=LOGIN`` form is merged into ``auth``."""
    extensions: dict[str, str] = {}
    for raw in reply.lines[1:]:
        line = raw.decode("ascii", "replace").strip()
        if line[:5].upper() == "AUTH=":
            keyword, params = "auth", line[5:]
        else:
            keyword, _, params = line.partition(" ")
            keyword = keyword.lower()
        if not keyword:
            continue
        if keyword == "auth" and extensions.get("auth"):
            params = f"{extensions['auth']} {params}"
        extensions[keyword] = params.strip()
    return extensions


class ClientProtocol:
    """One SMTP client session, without I/O."""

    __slots__ = (
        "_auth_challenge",
        "_in_data",
        "_out",
        "_parser",
        "_smtputf8",
        "_tls_pending",
        "_usual",
        "_waiting",
        "capabilities",
        "closed",
        "esmtp",
        "extensions",
        "greeting",
        "hello",
        "pipelining",
        "tls",
    )

    def __init__(self, *, tls: bool = False) -> None:
        self._parser = ReplyParser()
        self._out: list[bytes] = []
        self._waiting: deque[Command] = deque([Command.GREETING])
        self._in_data = False
        self._tls_pending = False
        self._auth_challenge = False
        self._smtputf8 = False  # the transaction's MAIL carries SMTPUTF8
        # The replies due are those of the usual group alone (take_usual): 4 with the
        # content before, 3 without; 0 otherwise.
        self._usual = 0
        #: True once the session ended (QUIT, 421, or the server closed it).
        self.closed = False
        #: The server offers PIPELINING (RFC 2920).
        self.pipelining = False
        #: ``(SMTPUTF8, 8BITMIME, SIZE offered, size limit)``, worked out once per EHLO
        #: (every message's MAIL command needs them; an attribute, not a property: a
        #: property is a call per message).
        self.capabilities: tuple[bool, bool, bool, int | None] = (False, False, False, None)
        #: True when the connection is encrypted (implicit TLS, or after STARTTLS).
        self.tls = tls
        #: The server's greeting, once it arrived.
        self.greeting: Reply | None = None
        #: The server's reply to EHLO (or HELO), once it accepted one.
        self.hello: Reply | None = None
        #: True after a successful EHLO; ``extensions`` holds what it offered.
        self.esmtp = False
        self.extensions: dict[str, str] = {}

    # --- state ---

    @property
    def buffered(self) -> int:
        """Bytes received and not yet parsed into replies."""
        return self._parser.buffered

    @property
    def waiting(self) -> int:
        """How many replies are due."""
        return len(self._waiting)

    @property
    def awaiting(self) -> Command | None:
        """The command whose reply is due next."""
        return self._waiting[0] if self._waiting else None

    @property
    def starting_tls(self) -> bool:
        """The server said 220 to STARTTLS: the TLS handshake is due."""
        return self._tls_pending

    @property
    def in_data(self) -> bool:
        """The server answered DATA with 354: message content must follow."""
        return self._in_data

    def offers(self, extension: str) -> bool:
        return extension.lower() in self.extensions

    def size_limit(self) -> int | None:
        """The SIZE the server announced (None: none, or zero meaning no limit)."""
        value = self.extensions.get("size", "")
        return int(value) if value.isdigit() and int(value) > 0 else None

    def _learn_capabilities(self) -> None:
        offers = self.extensions.__contains__
        self.capabilities = (
            offers("smtputf8"),
            offers("8bitmime"),
            offers("size"),
            self.size_limit(),
        )

    # --- output ---

    def data_to_send(self) -> bytes:
        out = b"".join(self._out)
        self._out.clear()
        return out

    def _check_may_send(self, command: Command) -> None:
        if self.closed:
            raise LocalProtocolError(f"{command.value}: the session is closed")
        if self._tls_pending:
            raise LocalProtocolError(f"{command.value}: start TLS first (the server said 220)")
        if self._in_data != (command is Command.CONTENT):
            if self._in_data:
                raise LocalProtocolError(f"{command.value}: the server expects message content")
            raise LocalProtocolError("message content before the server answered DATA with 354")
        if self._auth_challenge and command is not Command.AUTH:
            raise LocalProtocolError(f"{command.value}: answer the AUTH challenge first")
        if not self._waiting:
            return
        if not self.pipelining:
            raise LocalProtocolError(
                f"{command.value}: a reply is due and the server does not offer PIPELINING"
            )
        last = self._waiting[-1]
        if last in _GROUP_ENDERS:
            raise LocalProtocolError(
                f"{command.value}: {last.value} must end a pipelined group (RFC 2920 3.1); "
                "wait for its reply"
            )

    def _queue(self, command: Command, data: bytes) -> None:
        self._check_may_send(command)
        self._out.append(data)
        self._waiting.append(command)
        if command is Command.AUTH:
            self._auth_challenge = False

    def ehlo(self, name: str) -> None:
        self._queue(Command.EHLO, hello_line("EHLO", name))

    def helo(self, name: str) -> None:
        self._queue(Command.HELO, hello_line("HELO", name))

    def starttls(self) -> None:
        if self.tls:
            raise LocalProtocolError("STARTTLS: the connection is already encrypted")
        self._queue(Command.STARTTLS, b"STARTTLS\r\n")

    def auth(self, mechanism: str, initial_response: bytes | None = None) -> None:
        line = f"AUTH {mechanism}".encode("ascii")
        if initial_response is not None:
            line += b" " + (initial_response or b"=")  # RFC 4954: "=" for an empty one
        self._queue(Command.AUTH, line + b"\r\n")

    def auth_response(self, response: bytes) -> None:
        """Answer a 334 challenge (``b"*"`` cancels the exchange)."""
        if not self._auth_challenge:
            raise LocalProtocolError("AUTH response without a 334 challenge")
        self._queue(Command.AUTH, response + b"\r\n")

    def mail(self, sender: str, parameters: tuple[str, ...] = ()) -> None:
        smtputf8 = any(p.upper() == "SMTPUTF8" for p in parameters)
        self._queue(Command.MAIL, self._path_command("MAIL FROM", sender, parameters, smtputf8))
        self._smtputf8 = smtputf8

    def rcpt(self, recipient: str, parameters: tuple[str, ...] = ()) -> None:
        line = self._path_command("RCPT TO", recipient, parameters, self._smtputf8)
        self._queue(Command.RCPT, line)

    def data(self) -> None:
        self._queue(Command.DATA, b"DATA\r\n")

    def mail_transaction(
        self,
        sender: str,
        parameters: tuple[str, ...],
        recipients: Sequence[str],
        content: bytes | None = None,
    ) -> None:
        """MAIL, an RCPT per recipient and DATA as one pipelined group (RFC 2920):
        the same checks as one command at a time, made once for the group. With
        ``content``, the content of the transaction before (its DATA got 354) opens the
        group, as ``content()`` would send it. Nothing is queued when a check fails."""
        if not self.pipelining:
            raise LocalProtocolError("MAIL: a pipelined group needs the server's PIPELINING")
        if content is None:
            self._check_may_send(Command.MAIL)
        elif not self._in_data or self.closed:
            self._check_may_send(Command.CONTENT)  # raises: content is not due
        if sender:
            _checked_path(sender)
        for parameter in parameters:
            if not check_parameter(parameter):
                raise ValueError(f"{parameter!r} is not a valid ESMTP parameter")
        for recipient in recipients:
            checked_recipient(recipient)
        smtputf8 = "SMTPUTF8" in parameters
        text = (
            f"MAIL FROM:<{sender}> {' '.join(parameters)}\r\n"
            if parameters
            else f"MAIL FROM:<{sender}>\r\n"
        )
        if len(recipients) == 1:
            text += f"RCPT TO:<{recipients[0]}>\r\nDATA\r\n"
        else:
            text += "".join([f"RCPT TO:<{recipient}>\r\n" for recipient in recipients])
            text += "DATA\r\n"
        # (ASCII, the usual case, inline: this runs once per message of a batch.)
        data = text.encode("ascii") if text.isascii() else encode_command(text, smtputf8)
        self._smtputf8 = smtputf8
        if content is not None:
            self._out.append((dot_stuff(content) if content else b".\r\n") + data)
            self._in_data = False
            if len(recipients) == 1:  # the usual group: one deque call, not four
                self._waiting.extend(_CONTENT_AND_ONE)
                self._usual = 4 if len(self._waiting) == 4 else 0
                return
            self._waiting.append(Command.CONTENT)
        else:
            self._out.append(data)
        self._waiting.extend((Command.MAIL, *([Command.RCPT] * len(recipients)), Command.DATA))
        self._usual = 3 if len(recipients) == 1 and len(self._waiting) == 3 else 0

    def content(self, data: bytes) -> None:
        """Message content after 354, sent with its final dot. ``b""`` sends the lone
        dot (an empty message, which a server with no accepted recipient refuses)."""
        if not self._in_data or self.closed:  # the only state content may be sent in
            self._check_may_send(Command.CONTENT)
        self._out.append(dot_stuff(data) if data else b".\r\n")
        self._waiting.append(Command.CONTENT)
        self._in_data = False

    def rset(self) -> None:
        self._queue(Command.RSET, b"RSET\r\n")

    def noop(self) -> None:
        self._queue(Command.NOOP, b"NOOP\r\n")

    def quit(self) -> None:
        self._queue(Command.QUIT, b"QUIT\r\n")

    def _path_command(
        self, verb: str, address: str, parameters: tuple[str, ...], smtputf8: bool
    ) -> bytes:
        if address or verb != "MAIL FROM":
            _checked_path(address)
        for parameter in parameters:
            if not check_parameter(parameter):
                raise ValueError(f"{parameter!r} is not a valid ESMTP parameter")
        line = (
            f"{verb}:<{address}> {' '.join(parameters)}\r\n"
            if parameters
            else f"{verb}:<{address}>\r\n"
        )
        return encode_command(line, smtputf8)

    # --- input ---

    def receive_data(self, data: bytes) -> None:
        """Bytes read from the server; ``b""`` when it closed the connection."""
        self._parser.feed(data)

    def take_usual(self, data: bytes) -> tuple[Reply, Reply] | None:
        """``receive_data(data)`` for the replies to a usual group just sent (MAIL, one
        RCPT and DATA, perhaps after the content before; nothing else due): when
        ``data`` is exactly those replies and all are positive (250, 250, 2xx, 354),
        they are taken at once, the session is in data, and MAIL's and DATA's replies
        are returned. Else None: ``data`` is buffered as ``receive_data`` does and
        ``next_replies`` goes on the general way (a refusal, a multi-line reply, a
        group split across reads)."""
        usual, self._usual = self._usual, 0
        if usual and len(self._waiting) == usual:
            replies = self._parser.take_usual(data, usual == 4)
            if replies is not None:
                self._waiting.clear()
                self._in_data = True
            return replies
        self._parser.feed(data)
        return None

    def next_reply(self) -> tuple[Command, Reply] | None:
        """The next reply and the command it answers, or None until more bytes come.

        Raises ``SMTPProtocolError`` for a malformed reply or one nobody asked for, and
        ``smtplib.SMTPServerDisconnected`` when the server closed the connection with a
        reply still due.
        """
        self._usual = 0
        reply = self._parser.next_reply()
        if reply is None:
            if self._parser.eof:
                self.closed = True
                if self._waiting:
                    import smtplib

                    raise smtplib.SMTPServerDisconnected("Connection unexpectedly closed")
            return None
        if not self._waiting:
            raise SMTPProtocolError(f"unexpected reply {reply} (no command was waiting for it)")
        command = self._waiting.popleft()
        self._after(command, reply)
        return command, reply

    def next_replies(self, limit: int | None = None) -> list[Reply]:
        """Up to ``limit`` (default: all that are due) replies that are complete now,
        perhaps none: the batch form of ``next_reply`` for pipelined groups, with the
        same checks."""
        self._usual = 0
        waiting = self._waiting
        if limit is None or limit > len(waiting):
            limit = len(waiting)
        parser = self._parser
        if parser._pos >= len(parser._buffer) and not parser.eof:
            return []  # nothing received yet: the usual case right after sending
        replies = parser.replies(limit)
        popleft = waiting.popleft
        for reply in replies:
            command = popleft()
            code = reply[0]
            if code == 354 and command is _DATA:
                self._in_data = True  # what _after() does for it, inline: once per message
            elif code != 250 or command not in _PLAIN_250:
                self._after(command, reply)
                if self.closed:
                    # Nothing more is due; what the server sent after a 421 is noise.
                    return replies[: replies.index(reply) + 1]
        if len(replies) < limit and waiting and parser.eof:
            self.next_reply()  # raises: the server closed with replies due
        if not waiting and parser._pos < len(parser._buffer):
            # Bytes after the last reply due: kept, they would be taken as the reply
            # to the next command (a refused message reported as sent).
            raise SMTPProtocolError(
                f"unexpected reply {parser._buffer[parser._pos :][:80]!r} "
                "(no command was waiting for it)"
            )
        return replies

    def _after(self, command: Command, reply: Reply) -> None:
        code = reply.code
        if (code == 354 and command is not Command.DATA) or (
            code == 334 and command is not Command.AUTH
        ):
            raise SMTPProtocolError(f"reply {reply} does not answer {command.value}")
        if code == 421 or command is Command.QUIT:
            # 421: the server is closing the session (RFC 5321 section 3.8).
            self.closed = True
            self._waiting.clear()
            self._in_data = self._auth_challenge = False
            return
        if command is Command.GREETING:
            self.greeting = reply
        elif command is Command.EHLO and code == 250:
            self.esmtp = True
            self.hello = reply
            self.extensions = _parse_extensions(reply)
            self.pipelining = "pipelining" in self.extensions
            self._learn_capabilities()
        elif command is Command.HELO and code == 250:
            self.hello = reply
        elif command is Command.STARTTLS and code == 220:
            self._tls_pending = True
        elif command is Command.DATA and code == 354:
            self._in_data = True
        elif command is Command.AUTH and code == 334:
            self._auth_challenge = True

    def tls_started(self) -> None:
        """The caller wrapped the connection in TLS after STARTTLS's 220."""
        if not self._tls_pending:
            raise LocalProtocolError("TLS started without a 220 reply to STARTTLS")
        self._tls_pending = False
        self.tls = True
        self.esmtp = False
        self.hello = None
        self.extensions = {}  # RFC 3207 section 4.2: forget what was learnt before
        self.pipelining = False
        self._learn_capabilities()
        self._parser = ReplyParser()  # nothing read before the handshake counts
