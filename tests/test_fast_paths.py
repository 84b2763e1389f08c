"""Each shortcut on the path of a plain message gives what the general path gives.

Composing a message takes shortcuts for the usual values (issue 20: the instructions a
plain message costs). Each one is compared here with the general code it skips, over
generated inputs: same value out, same error in.
"""

from __future__ import annotations

import copy
import dataclasses
import pickle
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from examples import examples
from mailwright import BadHeaderError, EmailMessage, configure, override_settings
from mailwright.conf import settings as live_settings
from mailwright.conf.registry import SETTINGS
from mailwright.conf.settings import Settings
from mailwright.message import addresses as addresses_module
from mailwright.message import headers as hdr
from mailwright.message import wire
from mailwright.message.addresses import (
    Mailbox,
    _parse_slowly,
    _parse_string,
    _valid_mailbox,
    _valid_mailbox_slowly,
)
from mailwright.message.envelope import Envelope, new_envelope
from mailwright.message.message import batch_settings
from mailwright.message.mime import _charset_name, _encode_text, choose_cte, text_part

FAST = settings(max_examples=examples(1000, 150), deadline=None)


def outcome(function: Any, *args: Any) -> Any:
    """What a call gives: its value, or the type and text of what it raised."""
    try:
        return ("value", function(*args))
    except (ValueError, TypeError) as exc:
        return ("error", type(exc), str(exc))


# --- addresses: the regular-expression path against the full parser ---

ATEXT = "abcXYZ019!#$%&'*+/=?^_`{|}~-"
address_chars = st.sampled_from([*ATEXT, ".", "@", " ", "<", ">", '"', "é", "\t", "(", ")"])
address_text = st.text(address_chars, max_size=40)


@st.composite
def addresses(draw: st.DrawFn) -> str:
    """Strings near the fast path's grammar: bare and named forms, some broken."""
    word = st.text(st.sampled_from(ATEXT), min_size=1, max_size=12)
    label = st.text(st.sampled_from("abz09-"), min_size=1, max_size=70)
    local = ".".join(draw(st.lists(word, min_size=1, max_size=3)))
    domain = ".".join(draw(st.lists(label, min_size=1, max_size=3)))
    bare = f"{local}@{domain}"
    form = draw(st.sampled_from(["bare", "named", "noise", "padded"]))
    if form == "named":
        name = " ".join(draw(st.lists(word, min_size=1, max_size=3)))
        return f"{name} <{bare}>"
    if form == "padded":
        return f"  {bare} "
    if form == "noise":
        return draw(address_text)
    return bare


@FAST
@given(value=addresses())
def test_address_fast_path_gives_what_the_full_parser_gives(value: str) -> None:
    fast = outcome(_parse_string, value, "to")
    full = outcome(_parse_slowly, value, value.strip(), "to")
    assert fast == full
    if fast[0] == "value":
        mailbox = fast[1]
        # and what the validator makes of the same parts
        checked = Mailbox(mailbox.display_name, mailbox.local_part, mailbox.domain)
        assert (mailbox, mailbox.addr_spec) == (checked, checked.addr_spec)


@FAST
@given(
    local=st.text(st.sampled_from([*"aZ09", *"é٣ⅷ", ".", "@", "-", "+", " "]), max_size=12),
    domain=st.one_of(
        st.text(st.sampled_from([*"az09-.", "@", "é", " "]), max_size=20),
        st.sampled_from(["example.com", "a-b.example", "x" * 64 + ".com", "b" * 250 + ".c"]),
    ),
)
def test_a_local_part_at_a_passed_domain_is_what_the_full_parser_gives(
    local: str, domain: str
) -> None:
    # The first parse puts the domain among those passed (when the expression takes
    # it); the second then takes the shortcut when the local part allows it.
    seeded = outcome(_parse_string, f"seed@{domain}", "to")
    if seeded[0] == "value" and seeded[1].domain == domain:
        assert domain in addresses_module._PASSED_DOMAINS
    value = f"{local}@{domain}"
    full = outcome(_parse_slowly, value, value.strip(), "to")
    fast = outcome(_parse_string, value, "to")
    assert fast == full
    if fast[0] == "value":
        assert type(fast[1]) is Mailbox
        assert (repr(fast[1]), hash(fast[1])) == (repr(full[1]), hash(full[1]))
        with pytest.raises(dataclasses.FrozenInstanceError):
            fast[1].local_part = "other"
    assert outcome(_parse_string, f" {value}\t", "to") == outcome(
        _parse_slowly, f" {value}\t", value.strip(), "to"
    )


def test_passed_domains_are_bounded_and_only_the_expressions() -> None:
    passed = addresses_module._PASSED_DOMAINS
    _parse_string("a@good.example", "to")
    assert "good.example" in passed
    for bad in ("a@-bad.example", "a@bad..example", "Name <a@named.example>", "a@[127.0.0.1]"):
        outcome(_parse_string, bad, "to")
    assert not passed & {"-bad.example", "bad..example", "named.example", "[127.0.0.1]"}
    for index in range(addresses_module._MAX_PASSED_DOMAINS + 5):
        _parse_string(f"a@d{index}.example", "to")
    assert len(passed) <= addresses_module._MAX_PASSED_DOMAINS


@FAST
@given(
    name=st.text(st.sampled_from(ATEXT + " "), max_size=20),
    local=st.text(st.sampled_from(ATEXT), min_size=1, max_size=20),
    domain=st.text(st.sampled_from("abz09-."), min_size=1, max_size=20),
)
def test_a_fast_made_mailbox_is_a_mailbox(name: str, local: str, domain: str) -> None:
    fast = _valid_mailbox(name, local, domain, f"{local}@{domain}")
    slow = _valid_mailbox_slowly(name, local, domain, f"{local}@{domain}")
    assert type(fast) is Mailbox
    assert (fast, hash(fast), repr(fast), str(fast)) == (slow, hash(slow), repr(slow), str(slow))
    assert pickle.loads(pickle.dumps(fast)) == slow == copy.deepcopy(fast)
    with pytest.raises(dataclasses.FrozenInstanceError):
        fast.domain = "example.com"  # type: ignore[misc]


def test_a_fast_made_envelope_is_an_envelope() -> None:
    fast = new_envelope("a@example.com", ["b@example.com"], b"data\r\n", True)
    slow = Envelope("a@example.com", ["b@example.com"], b"data\r\n", True)
    assert type(fast) is Envelope
    assert (fast, repr(fast)) == (slow, repr(slow))
    assert pickle.loads(pickle.dumps(fast)) == slow
    with pytest.raises(dataclasses.FrozenInstanceError):
        fast.sender = "c@example.com"  # type: ignore[misc]


# --- header fields ---


@FAST
@given(value=st.text(max_size=100), name=st.sampled_from(["Subject", "X-A-Rather-Long-Name"]))
def test_unstructured_shortcut_only_skips_checks_that_pass(name: str, value: str) -> None:
    result = outcome(hdr.unstructured_value, name, value)
    shortcut = (
        value
        and len(name) + len(value) + 2 <= hdr.MAX_LINE
        and value.isascii()
        and value.isprintable()
        and value[0] != " "
        and value[-1] != " "
        and "=?" not in value
    )
    if shortcut:
        assert hdr.check_value(name, value) == value
        assert result == ("value", value)
    elif "\n" in value or "\r" in value:
        assert result[:2] == ("error", BadHeaderError)


@FAST
@given(
    subject=st.text(max_size=80),
    local=st.text(st.sampled_from(ATEXT), min_size=1, max_size=30),
    body=st.text(max_size=200),
    extra=st.sampled_from(["none", "cc", "header", "reply_to"]),
)
def test_written_head_is_the_fields_joined(subject: str, local: str, body: str, extra: str) -> None:
    kwargs: dict[str, Any] = {}
    if extra == "cc":
        kwargs["cc"] = ["cc@example.com"]
    elif extra == "header":
        kwargs["headers"] = {"X-Tag": "a"}
    elif extra == "reply_to":
        kwargs["reply_to"] = ["r@example.com"]
    message = EmailMessage(
        subject, body, "Sender <s@example.com>", [f"{local}@example.com"], **kwargs
    )
    try:
        fields, root, _, _, utf8, head = message._composed()
    except (ValueError, TypeError):
        return  # a refused subject: nothing is written either way
    assert (head is None) == (extra != "none")
    joined = "".join(f"{name}: {value}\r\n" for name, value in fields)
    if head is not None:
        assert head == joined
    assert wire.render(fields, root, utf8=utf8, head=head) == wire.render(fields, root, utf8=utf8)


# --- bodies ---


def choose_cte_reference(raw: bytes) -> str:
    """choose_cte as it was written before the shortcut (``in`` instead of find())."""
    if (
        raw.isascii()
        and b"\r" not in raw
        and b"\0" not in raw
        and all(len(line) <= 998 for line in raw.split(b"\n"))
    ):
        return "7bit"
    escaped = len(raw.translate(None, bytes(range(0x20, 0x7F)).replace(b"=", b"") + b"\n"))
    return "quoted-printable" if escaped * 6 <= len(raw) else "base64"


@FAST
@given(
    raw=st.one_of(
        st.binary(max_size=300),
        st.text(st.sampled_from("ab \n\r\0=é"), max_size=300).map(str.encode),
        st.integers(990, 1010).map(lambda n: b"a" * n),
    )
)
def test_choose_cte_is_unchanged(raw: bytes) -> None:
    assert choose_cte(raw) == choose_cte_reference(raw)


any_text = st.text(st.characters(blacklist_categories=[]), max_size=200)


@FAST
@given(
    text=st.one_of(any_text, st.integers(990, 1010).map(lambda n: "a" * n + "\r\0é"[: n % 4])),
    charset=st.sampled_from(["utf-8", "iso-8859-1", "us-ascii"]),
    cte=st.sampled_from([None, "7bit"]),
)
def test_text_part_encodes_as_encode_text_does(text: str, charset: str, cte: str | None) -> None:
    general = outcome(_encode_text, text, charset)
    part = outcome(lambda: text_part("plain", text, charset, cte=cte))
    if general[0] == "error":
        assert part == general
        return
    name, raw = general[1]
    assert part[0] == "value"
    assert (part[1].charset, part[1].raw) == (_charset_name(name), raw)
    assert part[1].cte == choose_cte(raw)


# --- settings ---


def test_every_setting_reads_through_its_descriptor(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in SETTINGS:
        assert getattr(live_settings, name) == live_settings._resolve(name)
        assert isinstance(Settings.__dict__[name].__get__(None, Settings), object)
    monkeypatch.setenv("DEFAULT_CHARSET", "iso-8859-1")
    assert live_settings.DEFAULT_CHARSET == "iso-8859-1"  # the environment, read now
    with override_settings(DEFAULT_CHARSET="utf-16"):
        assert live_settings.DEFAULT_CHARSET == "utf-16"
    monkeypatch.delenv("DEFAULT_CHARSET")
    assert live_settings.DEFAULT_CHARSET == "utf-8"
    with pytest.raises(AttributeError, match="DEFAULT_CHARSET"):
        live_settings.DEFAULT_CHARST  # noqa: B018


def test_configure_through_the_attribute_still_configures() -> None:
    before = live_settings._configured
    try:
        live_settings.EMAIL_USE_LOCALTIME = True
        assert live_settings.EMAIL_USE_LOCALTIME is True
        assert "EMAIL_USE_LOCALTIME" not in vars(live_settings)
        configure(EMAIL_USE_LOCALTIME=False)
        assert live_settings.EMAIL_USE_LOCALTIME is False
    finally:
        live_settings._configured = before


def test_a_batch_and_a_lone_message_write_the_same_bytes() -> None:
    def build() -> bytes:
        message = EmailMessage("Hi", "Body\n", "a@example.com", ["b@example.com"])
        message.extra_headers["Date"] = "Thu, 01 Jan 2026 00:00:00 -0000"
        message.extra_headers["Message-ID"] = "<1@example.com>"
        return message.envelope().data

    alone = build()
    with batch_settings():
        assert build() == alone


# --- the usual message: _composed_plain() against the general path ---

plain_address = st.one_of(
    addresses(),
    st.sampled_from(["", "Zoë <z@example.com>", "ünï@example.com", "a@bücher.example"]),
)


@FAST
@given(
    sender=plain_address,
    to=st.lists(plain_address, max_size=3),
    subject=st.one_of(  # printable ASCII, around the 69 characters that fit one line
        st.text(max_size=90),
        st.text(st.sampled_from([*"aZ9 =?-", "\t"]), max_size=75),
    ),
    body=st.text(max_size=50),
    attach=st.booleans(),
)
def test_plain_composition_is_the_general_one(
    sender: str, to: list[str], subject: str, body: str, attach: bool
) -> None:
    message = EmailMessage(subject, body, sender or "s@example.com", to)
    if attach:
        message.attach("a.txt", "text", "text/plain")

    def compose(general: bool) -> Any:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr("mailwright.message.message.now_date", lambda localtime: "DATE")
            patch.setattr("mailwright.message.message.make_message_id", lambda domain: domain)
            if general:
                patch.setattr(EmailMessage, "_composed_plain", lambda *args: None)
            result = outcome(message._composed)
        return result

    assert compose(general=False) == compose(general=True)


def test_message_ids_are_unique_dot_atoms() -> None:
    import re

    from mailwright.message.stamps import make_message_id

    ids = [make_message_id("example.com") for _ in range(5000)]
    assert len(set(ids)) == len(ids)
    dot_atom = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    for message_id in ids[:50]:
        assert re.fullmatch(rf"<{dot_atom}@example\.com>", message_id)
    # and a message carries one of this form
    head = EmailMessage("s", "b", "a@example.com", ["b@example.com"]).as_bytes()
    assert re.search(rb"\r\nMessage-ID: <[0-9a-f]+\.[0-9a-f]{12}[0-9]+@example\.com>\r\n", head)


@FAST
@given(
    subject=st.text(max_size=30),
    body=st.one_of(st.text(max_size=60), st.text(st.sampled_from([*"ab \n\r\t"]), max_size=60)),
    local=st.sampled_from(["user", "üser", "a.b"]),
    subtype=st.sampled_from(["plain", "html"]),
)
def test_envelope_bytes_are_what_render_writes(
    subject: str, body: str, local: str, subtype: str
) -> None:
    message = EmailMessage(subject, body, "s@example.com", [f"{local}@example.com"])
    message.content_subtype = subtype
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("mailwright.message.message.now_date", lambda localtime: "DATE")
        patch.setattr("mailwright.message.message.make_message_id", lambda domain: domain)

        def general() -> bytes:
            fields, root, _, _, smtputf8, head = message._composed()
            rendered = wire.render(fields, root, utf8=smtputf8, head=head)
            return rendered if rendered.endswith(b"\r\n") else rendered + b"\r\n"

        expected = outcome(general)
        got = outcome(lambda: message.envelope().data)
    assert got == expected
    if got[0] == "value":  # and the recipients, one or several
        assert message.envelope().recipients == message.recipients()
        message.to.append("Two <two@example.com>")
        assert message.envelope().recipients == [*message.recipients()[:1], "two@example.com"]
