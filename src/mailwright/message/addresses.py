"""Parsing and checking email addresses.

Every address mailwright puts in a header or an SMTP envelope is parsed here into a
``Mailbox``. Parsing is strict: a value that is not exactly one address raises
``ValueError`` naming it, and a line break raises ``BadHeaderError`` — so an address
can never smuggle in a header.

Common forms (``a@x``, ``Name <a@x>``) take a regular-expression fast path; anything
else goes through the stdlib's RFC 5322 parser (``email.headerregistry``).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from email.errors import NonASCIILocalPartDefect
from email.headerregistry import Address, HeaderRegistry

from ..exceptions import BadHeaderError

__all__ = ["Group", "Mailbox", "parse_address_list", "parse_mailbox"]

_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]"
_DOT_ATOM = rf"{_ATEXT}+(?:\.{_ATEXT}+)*"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_SIMPLE_ADDR = rf"({_DOT_ATOM})@({_LABEL}(?:\.{_LABEL})*)"
_SIMPLE_NAME = rf"{_ATEXT}+(?: {_ATEXT}+)*"
_FAST_BARE = re.compile(_SIMPLE_ADDR)
_FAST_NAMED = re.compile(rf"({_SIMPLE_NAME}) <{_SIMPLE_ADDR}>")
# RFC 6532 lets a dot-atom hold any non-ASCII character too.
_UTF8_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~\x80-\U0010ffff-]"
_DOT_ATOM_RE = re.compile(rf"{_UTF8_ATEXT}+(?:\.{_UTF8_ATEXT}+)*")
_QUOTE_NEEDED = re.compile(r'(["\\])')

_registry = HeaderRegistry()


@dataclass(frozen=True, slots=True)
class Mailbox:
    """One address: a display name and an addr-spec.

    ``domain`` is always ASCII: internationalised domain names are stored IDNA-encoded,
    which is what both the envelope and the headers carry.
    """

    display_name: str
    local_part: str
    domain: str
    #: ``local@domain``, the local part quoted when it has to be (computed once).
    addr_spec: str = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        local = self.local_part
        if not _DOT_ATOM_RE.fullmatch(local):
            local = '"' + _QUOTE_NEEDED.sub(r"\\\1", local) + '"'
        object.__setattr__(self, "addr_spec", f"{local}@{self.domain}")

    @property
    def needs_smtputf8(self) -> bool:
        """A non-ASCII local part can only travel with the SMTPUTF8 extension."""
        return not self.local_part.isascii()

    def __str__(self) -> str:
        if not self.display_name:
            return self.addr_spec
        return f"{self.display_name} <{self.addr_spec}>"


@dataclass(frozen=True, slots=True)
class Group:
    """An RFC 5322 group (``undisclosed-recipients:;``), allowed in display headers."""

    display_name: str
    mailboxes: tuple[Mailbox, ...]


def _reject_line_breaks(field: str, *values: str) -> None:
    for value in values:
        if "\n" in value or "\r" in value:
            raise BadHeaderError(f"{field}: line break in address {value!r}")


def _ascii_domain(domain: str, field: str, original: object) -> str:
    if domain.startswith("["):
        if not domain.isascii():
            raise ValueError(f"{field}: {original!r} has a non-ASCII domain literal")
        return domain
    if domain.isascii():
        labels = domain.split(".")
        if all(labels) and all(len(label) <= 63 for label in labels):
            return domain
        raise ValueError(f"{field}: {original!r} has an invalid domain {domain!r}")
    try:
        return domain.encode("idna").decode("ascii")
    except UnicodeError as exc:
        raise ValueError(
            f"{field}: {original!r} has a domain that IDNA cannot encode: {exc}"
        ) from None


def _parse_with_stdlib(value: str, field: str) -> Address:
    try:
        header = _registry("To", value)
    except Exception:  # the stdlib parser raises several types on malformed input
        raise ValueError(f"{field}: {value!r} is not a valid email address") from None
    defects = [d for d in header.defects if not isinstance(d, NonASCIILocalPartDefect)]
    groups = header.groups
    if (
        defects
        or len(groups) != 1
        or groups[0].display_name is not None
        or len(groups[0].addresses) != 1
    ):
        raise ValueError(f"{field}: {value!r} is not exactly one valid email address")
    address = groups[0].addresses[0]
    if not address.username or not address.domain:
        raise ValueError(f"{field}: {value!r} is not a valid email address")
    return address


@functools.lru_cache(maxsize=4096)
def _parse_string(value: str, field: str) -> Mailbox:
    _reject_line_breaks(field, value)
    text = value.strip()
    if "=?" not in text:  # encoded words need the full parser to be decoded
        match = _FAST_BARE.fullmatch(text)
        if match:
            return Mailbox("", match[1], match[2])
        match = _FAST_NAMED.fullmatch(text)
        if match:
            return Mailbox(match[1], match[2], match[3])
    address = _parse_with_stdlib(text, field)
    return Mailbox(
        address.display_name,
        address.username,
        _ascii_domain(address.domain, field, value),
    )


def parse_mailbox(value: object, field: str = "address") -> Mailbox:
    """Parse one address given as ``"a@x"``, ``"Name <a@x>"``, a ``(name, "a@x")`` pair,
    a ``Mailbox`` or a stdlib ``email.headerregistry.Address``.

    ``field`` names where the address came from, for error messages.
    """
    if isinstance(value, Mailbox):
        _reject_line_breaks(field, value.display_name, value.local_part, value.domain)
        return value
    if isinstance(value, str):
        return _parse_string(value, field)
    if isinstance(value, Address):
        _reject_line_breaks(field, value.display_name, value.username, value.domain)
        if not value.username or not value.domain:
            raise ValueError(f"{field}: {value!r} is not a complete email address")
        return Mailbox(
            value.display_name,
            value.username,
            _ascii_domain(value.domain, field, value),
        )
    if (
        isinstance(value, tuple | list)
        and len(value) == 2
        and all(isinstance(part, str) for part in value)
    ):
        name, addr = value
        _reject_line_breaks(field, name, addr)
        bare = _parse_string(addr, field)
        if bare.display_name:
            raise ValueError(f"{field}: {addr!r} in {value!r} should be a bare address")
        return Mailbox(name, bare.local_part, bare.domain)
    raise TypeError(
        f'{field}: expected an address string like "a@x" or "Name <a@x>", '
        f"or a (name, address) pair; got {value!r}"
    )


def parse_address_list(value: str, field: str) -> list[Mailbox | Group]:
    """Parse a whole address-list header value (used for From/To/Cc/Reply-To overrides)."""
    _reject_line_breaks(field, value)
    try:
        header = _registry("To", value)
    except Exception:
        raise ValueError(f"{field}: {value!r} is not a valid address list") from None
    defects = [d for d in header.defects if not isinstance(d, NonASCIILocalPartDefect)]
    if defects or not header.groups:
        raise ValueError(f"{field}: {value!r} is not a valid address list")
    items: list[Mailbox | Group] = []
    for group in header.groups:
        mailboxes = tuple(parse_mailbox(address, field) for address in group.addresses)
        if any(not mb.local_part or not mb.domain for mb in mailboxes):
            raise ValueError(f"{field}: {value!r} is not a valid address list")
        if group.display_name is None:
            items.extend(mailboxes)
        else:
            items.append(Group(group.display_name, mailboxes))
    return items
