"""The SMTP grammar, written once for the client engine (``protocol``, ``transactions``,
``auth``) and the catcher's server (``devserver.smtp``).

* **Paths** (RFC 5321 section 4.1.2, RFC 6531 for UTF-8): a dot-string or quoted local
  part, and an LDH domain or an address literal; the domain may be absent (``root``,
  for a local MTA), and MAIL FROM's may be empty (``<>``). No line break, control
  character, ``<``, ``>`` or unquoted space can be in one, so nothing can smuggle a
  parameter or a command through it.
* **ESMTP parameters**: ``keyword["=" value]``, the value printable ASCII without ``=``.
* **SMTPUTF8** (RFC 6531), one rule: a path that is not ASCII travels only in a
  transaction whose MAIL carries the ``SMTPUTF8`` parameter; everything else in a
  command is ASCII.
* **Dot-stuffing** and un-stuffing of message content (RFC 5321 section 4.5.2).
* **AUTH PLAIN** (RFC 4616): ``authzid NUL authcid NUL password``.

Pure functions on strings and bytes, no I/O. What they remember (the caches of paths
and parameters, the set of domains that passed) changes no answer, only its cost.
"""

from __future__ import annotations

import functools
import re

__all__ = [
    "check_address",
    "check_parameter",
    "checked_recipient",
    "dot_stuff",
    "dot_unstuff",
    "encode_command",
    "hello_line",
    "needs_smtputf8",
    "parse_path_argument",
    "parse_plain",
    "plain_response",
]

_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~\-\u0080-\U0010ffff]"
_QTEXT = r"[\x20\x21\x23-\x5b\x5d-\x7e\u0080-\U0010ffff]|\\[\x20-\x7e]"
_LOCAL = rf'(?:{_ATEXT}+(?:\.{_ATEXT}+)*|"(?:{_QTEXT})*")'
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
# (An address literal's dcontent, less "<" and ">": no path may hold them.)
_DOMAIN = rf"(?:{_LABEL}(?:\.{_LABEL})*\.?|\[[\x21-\x3b\x3d\x3f-\x5a\x5e-\x7e]+\])"
_PATH_TEXT = rf"{_LOCAL}(?:@{_DOMAIN})?"
_PATH = re.compile(_PATH_TEXT)
# RFC 5321 section 4.1.2: esmtp-keyword ["=" esmtp-value].
_PARAMETER = re.compile(r"([A-Za-z0-9][A-Za-z0-9-]*)(?:=([\x21-\x3c\x3e-\x7e]+))?")
# Unicode line and paragraph separators and other breaks no path may hold.
_BREAKS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")  # C0, DEL, C1, LS, PS
# What follows "MAIL FROM:" or "RCPT TO:": a path in angle brackets (empty allowed
# here; RCPT refuses it), or bare as lenient servers take it, then the parameters.
_ARGUMENT = re.compile(rf"[ \t]*(?:<({_PATH_TEXT})?>|({_PATH_TEXT}))(?:[ \t]+(.*?))?[ \t]*")
# EHLO/HELO take a domain or an address literal: printable ASCII, no space.
_HELLO_NAME = re.compile(r"[\x21-\x7e]+")


# --- paths and parameters ---


_DOMAIN_ONLY = re.compile(_DOMAIN)
# Domains that matched _DOMAIN (bounded: cleared when full). A path that is a
# letters-and-digits ASCII local part, "@" and one of them is what _PATH takes. (The
# message side keeps its own set, for the header grammar of RFC 5322: a different rule.)
_PASSED_DOMAINS: set[str] = set()
_MAX_PASSED_DOMAINS = 1024


@functools.lru_cache(maxsize=4096)
def _checked_path(address: str) -> str:
    # An ASCII path that matches the grammar holds no control character (no class of
    # _PATH takes one); only a non-ASCII one can hide a Unicode line break.
    if not _PATH.fullmatch(address) or (not address.isascii() and _BREAKS.search(address)):
        raise ValueError(f"{address!r} is not a valid SMTP envelope address")
    domain = address.rpartition("@")[2]
    if domain != address and _DOMAIN_ONLY.fullmatch(domain):
        if len(_PASSED_DOMAINS) >= _MAX_PASSED_DOMAINS:
            _PASSED_DOMAINS.clear()
        _PASSED_DOMAINS.add(domain)
    return address


def checked_recipient(address: str) -> None:
    """``check_address(address)`` for a recipient, made once per message: each is
    usually new, so a cache of them only misses. The usual path (a letters-and-digits
    local part at a domain already checked) is taken without the expression, which is
    most of the cost (about 0.6 of 0.7 µs); the partition is at the first "@", and a
    checked domain holds none, so the path is exactly local@domain."""
    local, _, domain = address.partition("@")
    if not (domain in _PASSED_DOMAINS and local.isalnum() and local.isascii()):
        _checked_path(address)


def check_address(address: str, *, allow_empty: bool = False) -> str:
    """``address`` if it is safe as an SMTP path, else ``ValueError`` naming it.
    (Cached: a bulk send checks the same sender for every message.)"""
    if address == "" and allow_empty:
        return address
    return _checked_path(address)


def check_parameter(parameter: str) -> bool:
    """Is ``parameter`` a valid ESMTP parameter (``SIZE=123``, ``SMTPUTF8``)?

    ``SIZE=`` and ASCII digits, which a server that announces SIZE gets with every
    message and a different number each time, is taken without the expression and
    the cache (where it would only miss); the rest is cached."""
    if parameter[:5] == "SIZE=" and parameter[5:].isdigit() and parameter.isascii():
        return True
    return _parameter_matches(parameter)


@functools.lru_cache(maxsize=256)
def _parameter_matches(parameter: str) -> bool:
    return _PARAMETER.fullmatch(parameter) is not None


def parse_path_argument(text: str) -> tuple[str, list[tuple[str, str | None]]] | None:
    """A MAIL or RCPT argument (after the colon) as ``(path, [(KEYWORD, value)])``, the
    keywords upper-cased; None when it is not a path and parameters."""
    match = _ARGUMENT.fullmatch(text)
    if match is None:
        return None
    address = match[1] if match[2] is None else match[2]
    address = address or ""
    if _BREAKS.search(address):
        return None
    parameters: list[tuple[str, str | None]] = []
    for word in (match[3] or "").split():
        parameter = _PARAMETER.fullmatch(word)
        if parameter is None:
            return None
        parameters.append((parameter[1].upper(), parameter[2]))
    return address, parameters


def hello_line(verb: str, name: str) -> bytes:
    """``EHLO name`` / ``HELO name`` with its CRLF; ``ValueError`` for a bad name."""
    if not _HELLO_NAME.fullmatch(name):
        raise ValueError(f"{name!r} is not a valid {verb} name")
    return f"{verb} {name}\r\n".encode("ascii")


# --- SMTPUTF8 ---


def needs_smtputf8(*paths: str) -> bool:
    """RFC 6531: a path that is not ASCII needs SMTPUTF8 (on its transaction's MAIL)."""
    return not all(path.isascii() for path in paths)


def encode_command(text: str, smtputf8: bool) -> bytes:
    """A command line as bytes: ASCII, or UTF-8 in a transaction with SMTPUTF8;
    ``ValueError`` for non-ASCII without it."""
    if text.isascii():
        return text.encode("ascii")
    if not smtputf8:
        raise ValueError(f"non-ASCII addresses need SMTPUTF8: {text.strip()!r}")
    return text.encode("utf-8")


# --- message content ---


def dot_stuff(data: bytes) -> bytes:
    """Message content as DATA sends it: every line break CRLF, a final CRLF, leading
    dots doubled (RFC 5321 section 4.5.2), and the terminating ``.`` line.

    (Counting line breaks is a few C-level passes; a regular expression with
    look-around costs ten times as much on a typical message. In CPython 3.11 a
    ``bytes`` method called with a one-byte ``bytes`` argument, or the ``in``
    operator, first tries the operand as an integer and clears the ``TypeError``
    inside: the counts take integers, and ``replace`` is called without a test, as it
    returns the object itself when there is nothing to replace.)
    """
    crlf = data.count(b"\r\n")
    if data.count(10) != crlf or data.count(13) != crlf:  # a bare LF or CR
        data = b"\r\n".join(data.splitlines()) + b"\r\n"
    elif data[-2:] != b"\r\n" and data:  # (slices: cheaper than the methods' calls)
        data += b"\r\n"
    data = data.replace(b"\n.", b"\n..")
    if data[:1] == b".":
        return b"." + data + b".\r\n"
    return data + b".\r\n"


def dot_unstuff(content: bytes) -> bytes:
    """Content as received between DATA's 354 and the final ``.`` line (without it),
    with the dot that starts a line removed: the inverse of ``dot_stuff``."""
    if content.startswith(b"."):
        content = content[1:]
    return content.replace(b"\r\n.", b"\r\n")


# --- AUTH PLAIN ---


def plain_response(username: str, password: str, authzid: str = "") -> bytes:
    """RFC 4616's message: ``authzid NUL authcid NUL password`` (UTF-8)."""
    return f"{authzid}\0{username}\0{password}".encode()


def parse_plain(message: bytes) -> tuple[bytes, bytes, bytes] | None:
    """``(authzid, authcid, password)`` from a decoded PLAIN response; None when it
    does not have the three parts."""
    parts = message.split(b"\0")
    if len(parts) != 3:
        return None
    return parts[0], parts[1], parts[2]
