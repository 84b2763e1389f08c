"""SPEC 2, "Content is exact", as a Hypothesis property over a real SMTP server.

Random Unicode text (any characters, any mix of line breaks, lines far over 998 octets,
with or without a final line break) as the body, as an HTML alternative and as text
attachments, in several charsets, and random bytes as binary attachments: the stdlib
parser (``policy.default``) decodes every one of them exactly from what the server
received, read as a mailbox stores it (the wire's CRLF line breaks as "\\n"), and from
``message()``. The one change allowed is SMTP's: a single-part 7bit body that does not
end with a line break gains one.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage as StdlibMessage
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from examples import examples
from mailwright import EmailMultiAlternatives, get_connection
from smtpserver import SMTPTestServer

# Any character a str can be encoded from (lone surrogates aside: no charset holds them).
characters = st.characters(blacklist_categories=["Cs"])
short_lines = st.text(characters, max_size=60)
# Lines over 998 octets: a random piece repeated, so generating them stays cheap.
long_lines = st.builds(
    lambda piece, n: piece * n, st.text(characters, min_size=1, max_size=8), st.integers(130, 400)
)
texts = st.builds(
    lambda lines, breaks, final: "".join(
        line + breaks[i % len(breaks)] for i, line in enumerate(lines)
    )[: None if final else -1 or None],
    st.lists(st.one_of(short_lines, short_lines, long_lines), min_size=1, max_size=5),
    st.lists(st.sampled_from(["\n", "\n", "\n", "\r\n", "\r", "\n\n"]), min_size=1, max_size=3),
    st.booleans(),
)  # fmt: skip
charsets = st.sampled_from([None, "utf-8", "iso-8859-1", "koi8-r", "shift_jis"])


@pytest.fixture(scope="module")
def server() -> Iterator[SMTPTestServer]:
    server = SMTPTestServer().start()
    yield server
    server.stop()


def stored(data: bytes) -> StdlibMessage:
    return message_from_bytes(data.replace(b"\r\n", b"\n"), policy=policy.default)  # type: ignore[return-value]


def leaves(message: StdlibMessage) -> list[tuple[str, Any]]:
    return [
        (part.get_content_type(), part.get_content())
        for part in message.walk()
        if not part.is_multipart()
    ]


@settings(
    max_examples=int(os.environ.get("EXACT_EXAMPLES", examples(800, 100))),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    body=st.one_of(st.just(""), texts),
    html=st.one_of(st.none(), texts),
    text_attachments=st.lists(texts, max_size=2),
    binary_attachments=st.lists(st.binary(max_size=3000), max_size=2),
    charset=charsets,
)
def test_content_arrives_exactly(
    server: SMTPTestServer,
    body: str,
    html: str | None,
    text_attachments: list[str],
    binary_attachments: list[bytes],
    charset: str | None,
) -> None:
    server.messages.clear()
    msg = EmailMultiAlternatives("Exact", body, "from@example.com", ["to@example.com"])
    msg.encoding = charset
    if html is not None:
        msg.attach_alternative(html, "text/html")
    for index, text in enumerate(text_attachments):
        msg.attach(f"t{index}.txt", text, "text/plain")
    for index, data in enumerate(binary_attachments):
        msg.attach(f"b{index}.bin", data, "application/octet-stream")

    expected: list[tuple[str, Any]] = []
    if body or (html is None and not text_attachments and not binary_attachments):
        expected.append(("text/plain", body))
    if html is not None:
        expected.append(("text/html", html))
    expected += [("text/plain", text) for text in text_attachments]
    expected += [("application/octet-stream", data) for data in binary_attachments]

    assert leaves(msg.message()) == expected  # message() holds it exactly

    assert get_connection("smtp", host=server.host, port=server.port).send_messages([msg]) == 1
    (received,) = server.wait_for(1)
    parsed = stored(received.data)
    single_7bit = not parsed.is_multipart() and parsed["Content-Transfer-Encoding"] == "7bit"
    if single_7bit and body and not body.endswith("\n"):
        expected = [("text/plain", body + "\n")]  # the one change SMTP forces
    assert leaves(parsed) == expected
    assert max(len(line) for line in received.data.split(b"\r\n")) <= 998


@pytest.mark.parametrize(
    ("charset", "text"),
    [("shift_jis", "¥100"), ("shift_jis", "a‾b"), ("shift_jis", "¥ 円 \\")],
)
def test_a_charset_that_would_change_the_text_is_not_used(
    server: SMTPTestServer, charset: str, text: str
) -> None:
    # Shift_JIS writes U+00A5 as 0x5C, a backslash when read back: the text goes as
    # UTF-8 instead, and arrives exactly.
    server.messages.clear()
    msg = EmailMultiAlternatives("Exact", text, "from@example.com", ["to@example.com"])
    msg.encoding = charset
    msg.attach("t.txt", text, "text/plain")
    assert leaves(msg.message()) == [("text/plain", text), ("text/plain", text)]
    assert get_connection("smtp", host=server.host, port=server.port).send_messages([msg]) == 1
    (received,) = server.wait_for(1)
    assert leaves(stored(received.data)) == [("text/plain", text), ("text/plain", text)]
