"""The SMTP grammar (``mailwright.smtp.grammar``) is one rule for both sides: what the
client engine sends and what the catcher's server accepts."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from examples import examples
from mailwright.devserver import DevServer
from mailwright.smtp.grammar import (
    _checked_path,
    _parameter_matches,
    check_address,
    check_parameter,
    checked_recipient,
    dot_stuff,
    dot_unstuff,
    encode_command,
    needs_smtputf8,
    parse_path_argument,
    parse_plain,
    plain_response,
)
from test_catcher_smtp import Conversation

# Characters that matter to the path grammar, and some that do not.
_PATHISH = st.text(alphabet='ab.@"\\ <>[]:\t\x00\r\n-=+é\u2028üx', max_size=12)


@settings(max_examples=examples(2000, 300), deadline=None)
@given(_PATHISH)
def test_the_server_accepts_exactly_the_paths_the_client_sends(address: str) -> None:
    try:
        check_address(address)
        client_ok = True
    except ValueError:
        client_ok = False
    parsed = parse_path_argument(f"<{address}>")
    server_ok = parsed is not None and parsed[0] == address and address != ""
    assert client_ok == server_ok, address


def _passes(check: object, address: str) -> bool:
    try:
        check(address)  # type: ignore[operator]
    except ValueError:
        return False
    return True


# Domains the grammar takes and domain-like text it refuses, as the part after "@".
_DOMAINS = st.sampled_from(
    ["example.com", "b", "[1.2.3.4]", "[a@b]", "b]", "a..b", "-a.com", "é.com", "a.com.", ""]
)


@settings(max_examples=examples(3000, 300), deadline=None)
@given(
    st.lists(st.tuples(st.one_of(st.text("ab1", min_size=1, max_size=4), _PATHISH), _DOMAINS)),
    st.one_of(st.text("ab1é", max_size=4), _PATHISH),
    _DOMAINS,
    st.booleans(),
)
@example([("x", "[a@b]")], "ab1", "b]", False)  # an address literal holds "@"
@example([("a", "b")], "ab1", "b", True)  # a path without a domain teaches none
def test_a_recipient_is_checked_as_any_path_once_its_domain_is_known(
    learned: list[tuple[str, str]], local: str, domain: str, bare: bool
) -> None:
    # Checks made before (of the sender, of other recipients) teach the shortcut which
    # domains passed; whatever they taught, a recipient passes exactly when the grammar
    # takes it, checked without any cache.
    for known_local, known_domain in learned:
        _passes(check_address, f"{known_local}@{known_domain}")
    address = local if bare else f"{local}@{domain}"
    assert _passes(checked_recipient, address) == _passes(_checked_path.__wrapped__, address)


@settings(max_examples=examples(2000, 300), deadline=None)
@given(st.text("SIZE=0123456789\u0663\u00b2 \r\nx", max_size=10))
@example("SIZE=\u0663")  # a digit, not an ASCII one
@example("SIZE=12\r\nRSET")
def test_the_size_shortcut_takes_what_the_parameter_grammar_takes(parameter: str) -> None:
    _parameter_matches.cache_clear()
    assert check_parameter(parameter) == _parameter_matches.__wrapped__(parameter), parameter


@settings(max_examples=examples(1000, 200), deadline=None)
@given(st.binary(max_size=200))
def test_dot_unstuff_undoes_dot_stuff(data: bytes) -> None:
    wire = dot_stuff(data)
    assert wire.endswith(b".\r\n")
    received = dot_unstuff(wire[:-3])
    assert received == (b"\r\n".join(data.splitlines()) + b"\r\n" if data else b"")


def test_parameters_and_paths_as_the_server_reads_them() -> None:
    assert parse_path_argument("<a@example.com> SIZE=12 body=8BITMIME smtputf8") == (
        "a@example.com",
        [("SIZE", "12"), ("BODY", "8BITMIME"), ("SMTPUTF8", None)],
    )
    assert parse_path_argument("<>") == ("", [])
    assert parse_path_argument(" a@example.com") == ("a@example.com", [])  # lenient form
    assert parse_path_argument('<"john smith"@example.com>') == ('"john smith"@example.com', [])
    for bad in ("<a@example.com>X=", "<a@example.com> X=a=b", "<a b@example.com>", "<<a>>"):
        assert parse_path_argument(bad) is None, bad


def test_one_smtputf8_rule() -> None:
    assert needs_smtputf8("ü@example.com") and not needs_smtputf8("u@example.com", "")
    assert encode_command("RCPT TO:<u@example.com>\r\n", False) == b"RCPT TO:<u@example.com>\r\n"
    assert encode_command("RCPT TO:<ü@x>\r\n", True) == "RCPT TO:<ü@x>\r\n".encode()
    with pytest.raises(ValueError, match="need SMTPUTF8"):
        encode_command("RCPT TO:<ü@x>\r\n", False)


def test_auth_plain_both_ways() -> None:
    assert plain_response("ann", "pw") == b"\0ann\0pw"
    assert parse_plain(plain_response("änn", "p w")) == (b"", "änn".encode(), b"p w")
    assert parse_plain(b"ann\0pw") is None


@pytest.fixture
def catcher() -> Iterator[DevServer]:
    server = DevServer("127.0.0.1", 0, None, out=io.StringIO(), quiet=True).start_in_thread()
    yield server
    server.stop_thread()


def test_the_catcher_applies_the_same_rules(catcher: DevServer) -> None:
    talk = Conversation(catcher.smtp_port)
    try:
        assert talk.command(b"EHLO x")[0] == 250
        # A quoted local part with a space: valid, and the client sends it.
        assert talk.command(b'MAIL FROM:<"john smith"@example.com>')[0] == 250
        assert talk.command(b"RSET")[0] == 250
        # A non-ASCII path needs SMTPUTF8 on MAIL, for MAIL and RCPT alike.
        assert talk.command("MAIL FROM:<ü@example.com>".encode())[0] == 553
        assert talk.command(b"MAIL FROM:<a@example.com>")[0] == 250
        assert talk.command("RCPT TO:<ü@example.com>".encode())[0] == 553
        assert talk.command(b"RSET")[0] == 250
        assert talk.command("MAIL FROM:<ü@example.com> SMTPUTF8".encode())[0] == 250
        assert talk.command("RCPT TO:<ü@example.com>".encode())[0] == 250
        assert talk.command(b"RSET")[0] == 250
        plain = base64.b64encode(plain_response("ann", "pw"))
        assert talk.command(b"AUTH PLAIN " + plain)[0] == 235
    finally:
        talk.close()


@pytest.mark.parametrize("char", ["\x80", "\x85", "\x9b", "\x9f", "\u2028", "\u2029"])
def test_a_path_with_a_c1_control_or_unicode_line_break_is_refused(char: str) -> None:
    with pytest.raises(ValueError, match="not a valid SMTP envelope address"):
        check_address(f"a{char}b@example.com")
    assert check_address("\u00fc\u00a0b@example.com")  # not a control: SMTPUTF8 text
