"""Header fields: the one checked path from Python values to folded header text.

Every header mailwright writes is built here. Values are checked for line breaks first
(``BadHeaderError``), then encoded (RFC 2047 encoded words, RFC 2231 parameters) and
folded to lines of at most 78 characters.

Why not the stdlib's header folding: it is not lossless. It drops leading whitespace,
decodes text that merely looks like an encoded word, and sometimes loses a space when it
refolds (checked on Python 3.11). The encoding here is built so that what the stdlib
*parser* reads back is exactly what was given, and that is what the tests prove.

A folded value is the text after ``"Name: "``, with ``"\\r\\n "`` (or ``"\\r\\n\\t"``)
between its lines.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Sequence

from ..exceptions import BadHeaderError
from .addresses import LONE_SURROGATE_HINT, Group, Mailbox

__all__ = [
    "STRUCTURED",
    "address_value",
    "check_name",
    "check_value",
    "content_value",
    "disposition_fields",
    "is_structured",
    "structured_value",
    "unstructured_value",
]

MAX_LINE = 78
MAX_LINE_OCTETS = 998  # RFC 5322 section 2.1.1, without the CRLF
#: An encoded word in a display name is kept whole (see ``phrase_atoms``) up to this
#: length; a longer one could not fit a line, and is split.
_LONG_WORD = 900
_ENCODED_WORD_MAX = 75  # RFC 2047 section 2
_OVERHEAD = len("=?utf-8?q??=")

# C0 controls but tab, and lone surrogates (which no encoding can write)
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\ud800-\udfff]")
_FIELD_NAME = re.compile(r"[\x21-\x39\x3b-\x7e]+")
_PLAIN_TEXT = re.compile(r"[\x21-\x7e](?:[\x20-\x7e\t]*[\x21-\x7e])?")
_WHITESPACE_SPLIT = re.compile(r"(?=[ \t])(?<![ \t])")
_ATOM_PHRASE = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?: [A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
_PRINTABLE_PHRASE = re.compile(r"[\x20-\x7e\t]*")
_PRINTABLE_WORD = re.compile(r"[\x21-\x7e]+")
_WSP_RUN = re.compile(r"([ \t]+)")
_SINGLE_SPACED = re.compile(r"\S+(?: \S+)*")
_PARAM_PLAIN = re.compile(
    r"[\x21\x23-\x5b\x5d-\x7e](?:[\x20\x21\x23-\x5b\x5d-\x7e]*[\x21\x23-\x5b\x5d-\x7e])?"
)
# RFC 2047 section 5 (3): in a phrase only these may appear unencoded in a 'Q' word.
_Q_SAFE = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!*+-/")
# RFC 2231 attribute-char.
_PARAM_SAFE = frozenset(
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!#$&+-.^_`|~"
)
_Q_BYTE = {b: (chr(b) if b in _Q_SAFE else "_" if b == 0x20 else f"={b:02X}") for b in range(256)}
_PCT_BYTE = {b: (chr(b) if b in _PARAM_SAFE else f"%{b:02X}") for b in range(256)}


# --- checks ---


def check_value(field: str, value: str) -> str:
    """Refuse a value with a line break (that is how headers are injected) or another
    control character (NUL, the ``.exe\\0.txt`` trick); tab is allowed."""
    if "\n" in value or "\r" in value:
        raise BadHeaderError(
            f"Header values can't contain newlines (header {field!r} has a line break: {value!r})"
        )
    bad = _CONTROL.search(value)
    if bad and bad[0] >= "\ud800":
        raise ValueError(
            f"header {field!r}: value contains the lone surrogate U+{ord(bad[0]):04X}, which "
            f"is not a character ({LONE_SURROGATE_HINT}): {value!r}"
        )
    if bad:
        raise BadHeaderError(
            f"header {field!r}: value contains the control character U+{ord(bad[0]):04X}: {value!r}"
        )
    return value


def check_name(name: object) -> str:
    """A header name: printable ASCII without spaces or colons."""
    if not isinstance(name, str):
        raise TypeError(f"header names must be strings, got {name!r}")
    if "\n" in name or "\r" in name:
        raise BadHeaderError(f"header name contains a line break: {name!r}")
    if not _FIELD_NAME.fullmatch(name):
        raise ValueError(f"invalid header name {name!r}: use printable ASCII without ':' or spaces")
    return name


# --- folding ---


def fold(name: str, atoms: Sequence[str]) -> str:
    """Join atoms into lines of at most MAX_LINE characters (counting ``"Name: "``).

    Every atom after the first starts with the whitespace before which a line may be
    broken; breaking there and unfolding again gives back the same text. An atom that
    is longer than a line on its own stays whole, up to the hard limit: a line that
    would exceed 998 octets raises ``ValueError``, so it is never sent.
    """
    used = len(name) + 2
    if used + sum(map(len, atoms)) <= MAX_LINE:
        return "".join(atoms)
    lines: list[str] = []
    line = ""
    for atom in atoms:
        if line and used + len(atom) > MAX_LINE:
            lines.append(line)
            line = atom
            used = len(atom)
        else:
            line += atom
            used += len(atom)
    lines.append(line)
    first = len(name) + 2
    for index, text in enumerate(lines):
        size = (first if index == 0 else 0) + len(text.encode("utf-8"))
        if size > MAX_LINE_OCTETS:
            raise ValueError(
                f"header {name!r}: a line of it would be {size} octets, over the "
                f"{MAX_LINE_OCTETS} RFC 5322 allows, and it cannot be folded there"
            )
    return "\r\n".join(lines)


# --- encoded words (RFC 2047) ---


def _q_cost(data: bytes) -> int:
    return sum(1 if b in _Q_SAFE or b == 0x20 else 3 for b in data)


def _use_q(data: bytes) -> bool:
    return _encoded_length(data, True) <= _encoded_length(data, False)


def _encoded_length(data: bytes, use_q: bool) -> int:
    return _q_cost(data) if use_q else 4 * ((len(data) + 2) // 3)


def _encode_word(data: bytes, use_q: bool) -> str:
    if use_q:
        return "=?utf-8?q?" + "".join(_Q_BYTE[b] for b in data) + "?="
    return "=?utf-8?b?" + base64.b64encode(data).decode("ascii") + "?="


def encoded_words(text: str, first_room: int) -> list[str]:
    """Text as a list of encoded words; the first fits in ``first_room`` characters,
    the rest in a continuation line (each atom after the first carries its leading space).

    Words are cut between characters, never inside one (RFC 2047 section 5).
    """
    use_q = _use_q(text.encode("utf-8"))
    words: list[str] = []
    room = max(first_room, _OVERHEAD + 12) - _OVERHEAD
    chunk = b""
    for char in text:
        candidate = chunk + char.encode("utf-8")
        if chunk and _encoded_length(candidate, use_q) > room:
            words.append(_encode_word(chunk, use_q))
            candidate = char.encode("utf-8")
            room = min(_ENCODED_WORD_MAX, MAX_LINE - 1) - _OVERHEAD
        chunk = candidate
    if chunk or not words:
        words.append(_encode_word(chunk, use_q))
    return [words[0], *(" " + word for word in words[1:])]


# --- unstructured fields (Subject and most others) ---


def unstructured_value(name: str, value: str) -> str:
    """Fold an unstructured field; plain ASCII stays readable, anything else is encoded."""
    if (
        value
        and len(name) + len(value) + 2 <= MAX_LINE
        and value.isascii()
        and value.isprintable()
        and value[0] != " "
        and value[-1] != " "
        and "=?" not in value
    ):
        # The common case: short, plain, nothing to fold or encode. Printable ASCII
        # holds no line break, control character or surrogate, so check_value() has
        # nothing to refuse in it (tests/test_properties.py compares the two paths).
        return value
    check_value(name, value)
    if not value:
        return ""
    if "=?" not in value and _PLAIN_TEXT.fullmatch(value):
        atoms = _WHITESPACE_SPLIT.split(value)
        if len(name) + 2 + len(atoms[0]) <= MAX_LINE and all(
            len(atom) <= MAX_LINE for atom in atoms[1:]
        ):
            return fold(name, atoms)
    return fold(name, encoded_words(value, MAX_LINE - len(name) - 2))


# --- structured fields that have no encoded words (Message-ID, References, List-*) ---

#: Fields whose grammar has no place for an RFC 2047 encoded word: message ids, URLs
#: in angle brackets, paths, trace and signature fields. Also every ``List-*`` field.
STRUCTURED = frozenset(
    {
        "message-id",
        "in-reply-to",
        "references",
        "resent-message-id",
        "original-message-id",
        "content-id",
        "return-path",
        "archived-at",
        "received",
        "dkim-signature",
        "authentication-results",
        "arc-seal",
        "arc-message-signature",
        "arc-authentication-results",
    }
)


def is_structured(name: str) -> bool:
    """Whether ``name`` is a field that must never hold encoded words."""
    key = name.lower()
    return key in STRUCTURED or key.startswith("list-")


def structured_value(name: str, value: str) -> str:
    """A field whose grammar forbids encoded words, exactly as given (edge whitespace
    aside), folded only at its own whitespace, that is between tokens; never encoded.

    Non-ASCII text raises ``ValueError`` (these fields are ASCII: percent-encode a URL),
    and so does a token too long for a 998-octet line, before anything is sent."""
    check_value(name, value)
    text = value.strip(" \t")
    if not text.isascii():
        raise ValueError(
            f"header {name!r} must be ASCII: its grammar has no encoded words "
            f"(percent-encode non-ASCII in a URL): {value!r}"
        )
    if len(name) + len(text) + 2 <= MAX_LINE:
        return text
    return fold(name, _WHITESPACE_SPLIT.split(text))


# --- address fields ---


def _quoted(text: str) -> str:
    if text and _ATOM_PHRASE.fullmatch(text) and "=?" not in text:
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _phrase_items(display_name: str) -> list[tuple[bool, str]]:
    """Split a display name into (encoded?, text) items whose values, joined by one
    space each, give the name back.

    Words holding anything but printable ASCII become encoded words; everything else,
    whitespace included, goes into quoted strings. Two rules keep this exact both for
    RFC 2047 readers and for the stdlib parser (which differ):

    * an encoded word never holds a run of whitespace (the stdlib folds it to one
      space) and never sits right next to another encoded word (RFC 2047 drops the
      space between them, the stdlib keeps it);
    * the space between two items is a real space of the name.
    """
    items: list[tuple[bool, str]] = []
    plain: str | None = None  # quoted-string text being gathered
    after_encoded = False
    for index, part in enumerate(_WSP_RUN.split(display_name)):
        is_gap = index % 2 == 1
        if not part:
            continue
        if is_gap or (_PRINTABLE_WORD.fullmatch(part) and "=?" not in part):
            if after_encoded and plain is None:
                # The separator after an encoded word is one space of this gap.
                plain = part[1:] if part.startswith(" ") else part
            else:
                plain = (plain or "") + part
            continue
        # A word that needs encoding.
        if plain is not None:
            if plain == "" and items and items[-1][0]:
                # encoded, one space, encoded: one encoded word with the space inside
                # (a single space inside an encoded word reads back exactly, unless a
                # Unicode space follows it, which the stdlib then drops)
                items[-1] = (True, items[-1][1] + " " + part)
                plain = None
                continue
            items.append((False, plain[:-1] if plain.endswith(" ") else plain))
        items.append((True, part))
        plain = None
        after_encoded = True
    if plain is not None:
        items.append((False, plain))
    return items


def phrase_atoms(display_name: str) -> list[str]:
    """A display name as an RFC 5322 phrase, in atoms that may be folded apart.

    Printable ASCII stays readable (atoms or a quoted string, which may be folded at its
    spaces); other words become encoded words, each kept whole: the stdlib parser keeps
    the whitespace between adjacent encoded words in a phrase (RFC 2047 says to drop
    it), so a word is not split into several while it fits a line. A word too long for
    any line (over ~900 octets) is the exception: the whole name is then written as
    standard encoded words of at most 75 characters, which RFC 2047 readers join
    exactly (the stdlib parser shows a space at each split).
    """
    check_value("display name", display_name)
    if not display_name:
        return []
    atoms: list[str] = []
    if _PRINTABLE_PHRASE.fullmatch(display_name) and "=?" not in display_name:
        atoms = _split_at_spaces(_quoted(display_name))
    elif _SINGLE_SPACED.fullmatch(display_name):
        # Words with single spaces: one encoded word reads back exactly, and it is how
        # most mailers (and Django) write such a name.
        data = display_name.encode("utf-8")
        atoms = [_encode_word(data, _use_q(data))]
    else:
        for encoded, text in _phrase_items(display_name):
            if encoded:
                data = text.encode("utf-8")
                pieces = [_encode_word(data, _use_q(data))]
            else:
                pieces = _split_at_spaces(_quoted(text))
            if atoms:
                pieces[0] = " " + pieces[0]
            atoms.extend(pieces)
    if max(map(len, atoms)) > _LONG_WORD:
        return encoded_words(display_name, _ENCODED_WORD_MAX)
    return atoms


def _split_at_spaces(text: str) -> list[str]:
    """Atoms of ``text`` (an atom phrase or a quoted string) breaking before each run of
    whitespace: folding there and unfolding gives back the same text, quotes included."""
    return _WHITESPACE_SPLIT.split(text)


def _mailbox_atoms(mailbox: Mailbox) -> list[str]:
    spec = mailbox.addr_spec
    if not mailbox.display_name:
        return [spec]
    return [*phrase_atoms(mailbox.display_name), f" <{spec}>"]


def address_value(name: str, items: Sequence[Mailbox | Group]) -> str:
    """Fold an address-list field (From, To, Cc, Reply-To), breaking between addresses."""
    if len(items) == 1 and isinstance(items[0], Mailbox) and not items[0].display_name:
        spec = items[0].addr_spec  # the common case: one bare address
        return spec if len(name) + 2 + len(spec) <= MAX_LINE else fold(name, [spec])
    atoms: list[str] = []
    for index, item in enumerate(items):
        if isinstance(item, Group):
            group_atoms = phrase_atoms(item.display_name) or ['""']
            group_atoms[-1] += ":"
            for position, mailbox in enumerate(item.mailboxes):
                mailbox_atoms = _mailbox_atoms(mailbox)
                mailbox_atoms[0] = " " + mailbox_atoms[0]
                if position < len(item.mailboxes) - 1:
                    mailbox_atoms[-1] += ","
                group_atoms.extend(mailbox_atoms)
            group_atoms[-1] += ";"
            item_atoms = group_atoms
        else:
            item_atoms = _mailbox_atoms(item)
        if index:
            atoms[-1] += ","
            item_atoms[0] = " " + item_atoms[0]
        atoms.extend(item_atoms)
    return fold(name, atoms)


# --- MIME parameters (RFC 2045, RFC 2231) ---


def _param_atoms(key: str, value: str) -> list[str]:
    """``key="value"`` when that is safe and short, else RFC 2231 (with continuations)."""
    check_value(key, value)
    if _PARAM_PLAIN.fullmatch(value) and len(key) + len(value) + 4 <= MAX_LINE:
        return [f' {key}="{value}"']
    encoded = "".join(_PCT_BYTE[b] for b in value.encode("utf-8"))
    single = f" {key}*=utf-8''{encoded}"
    if len(single) <= MAX_LINE:
        return [single]
    pieces: list[str] = []
    start = 0
    section = 0
    while start < len(encoded):
        prefix = f" {key}*{section}*=" + ("utf-8''" if section == 0 else "")
        end = min(len(encoded), start + MAX_LINE - len(prefix) - 1)
        # never cut a %XX escape in two
        if end < len(encoded):
            percent = encoded.rfind("%", end - 2, end)
            if percent != -1:
                end = percent
        pieces.append(prefix + encoded[start:end])
        start = end
        section += 1
    return pieces


def content_value(name: str, value: str, params: Sequence[tuple[str, str]] = ()) -> str:
    """A MIME field such as ``Content-Type: text/plain; charset="utf-8"``."""
    atoms = [value]
    for key, param_value in params:
        atoms[-1] += ";"
        param_atoms = _param_atoms(key, param_value)
        for extra in param_atoms[:-1]:
            atoms.append(extra + ";")
        atoms.append(param_atoms[-1])
    return fold(name, atoms)


def disposition_fields(
    disposition: str | None, filename: str | None, content_id: str | None
) -> list[tuple[str, str]]:
    """Content-Disposition (with an RFC 2231 file name) and Content-ID of a part, as
    (name, folded value) pairs, for both serialisers."""
    fields = []
    if disposition is not None:
        params = [("filename", filename)] if filename is not None else []
        fields.append(
            (
                "Content-Disposition",
                content_value("Content-Disposition", disposition, params),
            )
        )
    if content_id is not None:
        fields.append(("Content-ID", f"<{content_id}>"))
    return fields
