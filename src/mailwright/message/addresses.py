"""Parsing and checking email addresses.

Every address mailwright puts in a header or an SMTP envelope is a ``Mailbox``, and a
``Mailbox`` cannot exist unless it passed the one validator here (``Mailbox``'s own
constructor runs it), whatever the address came as: a string, a ``(name, address)``
pair, a stdlib ``email.headerregistry.Address``, a ``Mailbox`` built by hand, or an
object whose ``str()`` is the address (a lazy translation string). So the sync and async
paths, the headers and the envelope all see the same checked values:

* a line break, NUL or another control character anywhere raises ``BadHeaderError``,
  and so does any character that Python or a mail program may read as a line break
  (U+0085, U+2028, U+2029) in the local part;
* the domain is a host name made of LDH labels (letters, digits, hyphens; not starting
  or ending with a hyphen) after IDNA encoding, or an IPv4 or IPv6 address literal; the
  address has no domain at all only when none was given (``"root"``, for a local MTA);
* the whole address fits an SMTP path (254 octets).

Strings are parsed strictly: a value that is not exactly one address raises
``ValueError`` naming it. Common forms (``a@x``, ``Name <a@x>``) take a regular
expression fast path; anything else goes through the stdlib's RFC 5322 parser.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from dataclasses import dataclass, field
from email.errors import InvalidHeaderDefect, NonASCIILocalPartDefect
from email.headerregistry import Address, HeaderRegistry
from typing import Any

from ..exceptions import BadHeaderError
from .lazy import as_text

__all__ = ["Group", "Mailbox", "parse_address_list", "parse_mailbox"]

_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]"
_DOT_ATOM = rf"{_ATEXT}+(?:\.{_ATEXT}+)*"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOST = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")
_SIMPLE_ADDR = rf"({_DOT_ATOM})@({_LABEL}(?:\.{_LABEL})*)"
_SIMPLE_NAME = rf"{_ATEXT}+(?: {_ATEXT}+)*"
_FAST_BARE = re.compile(_SIMPLE_ADDR)
_FAST_NAMED = re.compile(rf"({_SIMPLE_NAME}) <{_SIMPLE_ADDR}>")
# RFC 6532 lets a dot-atom hold any non-ASCII character too.
_UTF8_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~\x80-\U0010ffff-]"
_DOT_ATOM_RE = re.compile(rf"{_UTF8_ATEXT}+(?:\.{_UTF8_ATEXT}+)*")
_QUOTE_NEEDED = re.compile(r'(["\\])')
# Controls (C0 but tab, DEL, C1) and what str.splitlines() breaks on: never in a local part.
_BAD_IN_LOCAL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
# In display names, C0 controls but tab (other characters are encoded when written).
_BAD_IN_NAME = re.compile(r"[\x00-\x08\x0a-\x1f\ud800-\udfff]")
_LINE_BREAK = re.compile(r"[\r\n]")
LONE_SURROGATE_HINT = (
    "text decoded with errors='surrogateescape', such as a file name or command-line "
    "argument that was not UTF-8, or half of a UTF-16 pair"
)
MAX_ADDRESS = 254  # RFC 5321 section 4.5.3.1.3: a path is at most 256 octets with <>
MAX_DOMAIN = 253

_registry = HeaderRegistry()


def _refuse_controls(what: str, value: str, pattern: re.Pattern[str], original: object) -> None:
    if _LINE_BREAK.search(value):
        raise BadHeaderError(
            f"Invalid address {original!r}: Header values can't contain newlines "
            f"(a line break in the {what})"
        )
    bad = pattern.search(value)
    if bad and "\ud800" <= bad[0] <= "\udfff":
        raise ValueError(
            f"Invalid address {original!r}: its {what} contains the lone surrogate "
            f"U+{ord(bad[0]):04X}, which is not a character ({LONE_SURROGATE_HINT})"
        )
    if bad:
        raise BadHeaderError(
            f"Invalid address {original!r}: its {what} contains the control or "
            f"line-separator character U+{ord(bad[0]):04X}"
        )


def _domain_literal(literal: str, original: object) -> str:
    inner = literal[1:-1]
    try:
        if inner[:5].lower() == "ipv6:":
            return f"[IPv6:{ipaddress.IPv6Address(inner[5:]).compressed}]"
        return f"[{ipaddress.IPv4Address(inner)}]"
    except ValueError:
        raise ValueError(
            f"Invalid address {original!r}: {literal!r} is not an IPv4 or IPv6 address literal"
        ) from None


def _ascii_domain(domain: str, original: object) -> str:
    """The domain as the envelope and the headers carry it: LDH labels (IDNA-encoded
    when not ASCII) or an address literal."""
    if domain.startswith("[") and domain.endswith("]"):
        return _domain_literal(domain, original)
    ascii_domain = domain
    if not domain.isascii():
        try:
            ascii_domain = domain.encode("idna").decode("ascii")
        except UnicodeError as exc:
            raise ValueError(
                f"Invalid address {original!r}: IDNA cannot encode the domain {domain!r}: {exc}"
            ) from None
    if len(ascii_domain) > MAX_DOMAIN or not _HOST.fullmatch(ascii_domain):
        raise ValueError(
            f"Invalid address {original!r}: {domain!r} is not a valid domain (letters, "
            "digits and hyphens in dot-separated labels, or an address literal)"
        )
    return ascii_domain


def _quoted_local(local: str) -> str:
    if _DOT_ATOM_RE.fullmatch(local):
        return local
    return '"' + _QUOTE_NEEDED.sub(r"\\\1", local) + '"'


@dataclass(frozen=True, slots=True)
class Mailbox:
    """One checked address: a display name and an addr-spec.

    Constructing one runs the validator (see the module), so every ``Mailbox`` is safe
    to write into a header or an SMTP command. ``domain`` is always ASCII:
    internationalised domain names are stored IDNA-encoded, which is what both the
    envelope and the headers carry. ``domain`` is empty for a domain-less address
    (``root``), which local MTAs accept.
    """

    display_name: str
    local_part: str
    domain: str
    #: ``local@domain``, the local part quoted when it has to be (computed once).
    addr_spec: str = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        original = self._original()
        for name in ("display_name", "local_part", "domain"):
            if not isinstance(getattr(self, name), str):
                raise TypeError(f"Invalid address {original!r}: {name} must be a string")
        _refuse_controls("display name", self.display_name, _BAD_IN_NAME, original)
        _refuse_controls("local part", self.local_part, _BAD_IN_LOCAL, original)
        _refuse_controls("domain", self.domain, _BAD_IN_LOCAL, original)
        if not self.local_part:
            raise ValueError(f"Invalid address {original!r}: the local part is empty")
        domain = _ascii_domain(self.domain, original) if self.domain else ""
        object.__setattr__(self, "domain", domain)
        local = _quoted_local(self.local_part)
        spec = f"{local}@{domain}" if domain else local
        if len(spec.encode("utf-8")) > MAX_ADDRESS:
            raise ValueError(
                f"Invalid address {original!r}: longer than the {MAX_ADDRESS} octets "
                "an SMTP path allows"
            )
        object.__setattr__(self, "addr_spec", spec)

    @staticmethod
    def _valid(display_name: str, local_part: str, domain: str) -> Mailbox:
        """A mailbox from parts the fast-path expressions below already proved valid
        (an atom phrase, a dot-atom, LDH labels, short enough): the checks are skipped,
        as they are the most expensive step of composing a simple message."""
        return _valid_mailbox(display_name, local_part, domain, f"{local_part}@{domain}")

    def _original(self) -> str:
        spec = f"{self.local_part}@{self.domain}" if self.domain else f"{self.local_part}"
        return f"{self.display_name} <{spec}>" if self.display_name else spec

    @property
    def needs_smtputf8(self) -> bool:
        """A non-ASCII local part can only travel with the SMTPUTF8 extension."""
        return not self.local_part.isascii()

    def __str__(self) -> str:
        if not self.display_name:
            return self.addr_spec
        return f"{self.display_name} <{self.addr_spec}>"


class _MailboxFields:
    """``Mailbox``'s slots without its frozen ``__setattr__``: a checked mailbox is
    filled in here and then becomes a ``Mailbox`` (``__class__`` assignment, allowed
    between classes of the same layout). A frozen dataclass sets each field through
    ``object.__setattr__``: 8,200 instructions for a mailbox, 2,600 this way
    (callgrind), once per recipient of every message sent."""

    __slots__ = Mailbox.__slots__
    display_name: str
    local_part: str
    domain: str
    addr_spec: str


def _valid_mailbox(display_name: str, local_part: str, domain: str, addr_spec: str) -> Mailbox:
    self = object.__new__(_MailboxFields)
    self.display_name = display_name
    self.local_part = local_part
    self.domain = domain
    self.addr_spec = addr_spec
    self.__class__ = Mailbox  # type: ignore[assignment]
    return self  # type: ignore[return-value]


def _valid_mailbox_slowly(
    display_name: str, local_part: str, domain: str, addr_spec: str
) -> Mailbox:
    self = object.__new__(Mailbox)
    object.__setattr__(self, "display_name", display_name)
    object.__setattr__(self, "local_part", local_part)
    object.__setattr__(self, "domain", domain)
    object.__setattr__(self, "addr_spec", addr_spec)
    return self


# The layouts must match (they do on CPython 3.11 to 3.14); if a Python ever differs,
# the frozen way is used and nothing else changes.
try:
    if _MailboxFields.__slots__ != Mailbox.__slots__ or _valid_mailbox("", "a", "b", "a@b") != (
        _valid_mailbox_slowly("", "a", "b", "a@b")
    ):
        _valid_mailbox = _valid_mailbox_slowly
except TypeError:
    _valid_mailbox = _valid_mailbox_slowly


@dataclass(frozen=True, slots=True)
class Group:
    """An RFC 5322 group (``undisclosed-recipients:;``), allowed in display headers."""

    display_name: str
    mailboxes: tuple[Mailbox, ...]


def _without_domain(defects: list[Any]) -> bool:
    return all(
        isinstance(d, InvalidHeaderDefect) and "no domain" in str(d)
        for d in defects
        if not isinstance(d, NonASCIILocalPartDefect)
    )


def _why(value: str) -> str:
    """What is most likely wrong with an address the parser refused, in words."""
    text = value.strip()
    if "<" in text and ">" in text:
        text = text[text.rfind("<") + 1 : text.rfind(">")].strip()
    if "," in text or ";" in text:
        return "more than one address (give a list, one address per item)"
    if any(char.isspace() for char in text):
        return "a space inside the address (a display name goes before <address>)"
    local, at, domain = text.rpartition("@")
    if not at:
        return "no '@' and not a bare local name"
    if "@" in local and not local.startswith('"'):
        return "more than one '@' (quote a local part that holds one)"
    if not local:
        return "nothing before the '@'"
    if not domain:
        return "nothing after the '@'"
    if not domain.startswith("[") and "" in domain.split("."):
        return (
            f"the domain {domain!r} has an empty label (two dots in a row, or a dot "
            "at its start or end)"
        )
    if not local.startswith('"') and "" in local.split("."):
        return (
            f"the part before the '@', {local!r}, has two dots in a row or a dot at its "
            "start or end (quote it to keep it)"
        )
    return "not exactly one address"


def _parse_with_stdlib(value: str, field: str) -> Address:
    try:
        header: Any = _registry("To", value)  # an AddressHeader (typeshed lacks .defects)
    except Exception:  # the stdlib parser raises several types on malformed input
        raise ValueError(f"Invalid address {value!r} in {field}: {_why(value)}") from None
    defects = [d for d in header.defects if not isinstance(d, NonASCIILocalPartDefect)]
    groups = header.groups
    if (
        len(groups) != 1
        or groups[0].display_name is not None
        or len(groups[0].addresses) != 1
        or (defects and not ("@" not in value and _without_domain(defects)))
    ):
        raise ValueError(f"Invalid address {value!r} in {field}: {_why(value)}")
    address: Address = groups[0].addresses[0]
    return address


def _in_field(field: str, make: Any, *args: Any) -> Mailbox:
    """``make(*args)``, its errors saying which field the address came from."""
    try:
        mailbox: Mailbox = make(*args)
    except (ValueError, TypeError) as exc:
        raise type(exc)(f"{exc} (in {field})") from None
    return mailbox


# Domains that matched the bare-address expression (LDH labels, at most MAX_DOMAIN
# long): a pure property of the string, so it is kept, in a set cleared when full.
_PASSED_DOMAINS: set[str] = set()
_MAX_PASSED_DOMAINS = 1024


def _parse_string(value: str, field: str) -> Mailbox:
    if "\n" in value or "\r" in value:  # _LINE_BREAK, without a regular expression call
        raise BadHeaderError(
            f"Invalid address {value!r}: Header values can't contain newlines "
            f"(a line break, in {field})"
        )
    text = value.strip()
    if len(text) != len(value) and value.strip(" \t") != text:
        # str.strip() also takes controls and Unicode line breaks: only blanks may go.
        ends = value[: len(value) - len(value.lstrip())] + value[len(value.rstrip()) :]
        bad = next(char for char in ends if char not in " \t")
        raise BadHeaderError(
            f"Invalid address {value!r}: U+{ord(bad):04X} at its start or end (only "
            f"spaces and tabs may surround an address, in {field})"
        )
    if "=?" not in text:  # encoded words need the full parser to be decoded
        # A letters-and-digits local part at a domain the expression below has already
        # passed: what it would give, without it (about 4,500 instructions less per
        # recipient, callgrind). The partition is at the first "@": a domain of the set
        # holds none, so the text is exactly local@domain.
        local, _, domain = text.partition("@")
        if (
            domain in _PASSED_DOMAINS
            and local.isalnum()
            and local.isascii()
            and len(text) <= MAX_ADDRESS
        ):
            return _valid_mailbox("", local, domain, text)
        match = _FAST_BARE.fullmatch(text)
        if match and len(text) <= MAX_ADDRESS:
            local, domain = match.group(1, 2)
            if len(domain) <= MAX_DOMAIN:
                if len(_PASSED_DOMAINS) >= _MAX_PASSED_DOMAINS:
                    _PASSED_DOMAINS.clear()
                _PASSED_DOMAINS.add(domain)
                return _valid_mailbox("", local, domain, text)  # text is local@domain
        match = _FAST_NAMED.fullmatch(text)
        if match:
            name, local, domain = match.group(1, 2, 3)
            if len(local) + len(domain) < MAX_ADDRESS and len(domain) <= MAX_DOMAIN:
                return _valid_mailbox(name, local, domain, f"{local}@{domain}")
    return _parse_slowly(value, text, field)


# Only the full parser's results are cached: the fast path above costs less than the
# cache does when it misses, and in a bulk send nearly every recipient is new.
@functools.lru_cache(maxsize=4096)
def _parse_slowly(value: str, text: str, field: str) -> Mailbox:
    if _BAD_IN_NAME.search(text):
        try:
            _refuse_controls("text", text, _BAD_IN_NAME, value)
        except ValueError as exc:  # BadHeaderError too: keep the type, name the field
            raise type(exc)(f"{exc} (in {field})") from None
    address = _parse_with_stdlib(text, field)
    return _in_field(field, Mailbox, address.display_name, address.username, address.domain)


def parse_mailbox(value: object, field: str = "address") -> Mailbox:
    """Parse one address given as ``"a@x"``, ``"Name <a@x>"``, a ``(name, "a@x")`` pair,
    a ``Mailbox``, a stdlib ``email.headerregistry.Address``, or an object whose
    ``str()`` is one of the string forms (a lazy string).

    ``field`` names where the address came from, for error messages.
    """
    if isinstance(value, str):
        return _parse_string(value, field)
    if isinstance(value, Mailbox):
        return value  # checked when it was made
    if isinstance(value, Address):
        return _in_field(field, Mailbox, value.display_name, value.username, value.domain)
    if isinstance(value, tuple | list) and len(value) == 2:
        name, addr = (as_text(part) for part in value)
        if name is not None and addr is not None:
            bare = _parse_string(addr, field)
            if bare.display_name:
                raise ValueError(
                    f"Invalid address {addr!r} in {field}: in {value!r} it should be bare"
                )
            return _in_field(field, Mailbox, name, bare.local_part, bare.domain)
    text = as_text(value)
    if text is not None and not isinstance(value, tuple | list):
        return _parse_string(text, field)
    raise TypeError(
        f'{field}: expected an address string like "a@x" or "Name <a@x>", '
        f"or a (name, address) pair; got {value!r}"
    )


def parse_address_list(value: str, field: str) -> list[Mailbox | Group]:
    """Parse a whole address-list header value (used for From/To/Cc/Reply-To overrides)."""
    if _LINE_BREAK.search(value):
        raise BadHeaderError(
            f"Invalid address list {value!r}: Header values can't contain newlines "
            f"(a line break, in {field})"
        )
    try:
        header: Any = _registry("To", value)  # an AddressHeader (typeshed lacks .defects)
    except Exception:
        raise ValueError(f"Invalid address list {value!r} in {field}") from None
    defects = [d for d in header.defects if not isinstance(d, NonASCIILocalPartDefect)]
    if (defects and not _without_domain(defects)) or not header.groups:
        raise ValueError(f"Invalid address list {value!r} in {field}")
    items: list[Mailbox | Group] = []
    for group in header.groups:
        mailboxes = tuple(parse_mailbox(address, field) for address in group.addresses)
        if group.display_name is None:
            items.extend(mailboxes)
        else:
            items.append(Group(group.display_name, mailboxes))
    return items
