"""``mailwright.html_to_text`` on real-world newsletter HTML (tests/data/newsletters/):
what a reader sees stays, with every link's URL; what is hidden does not."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

pytest.importorskip("inscriptis")

from mailwright import html_to_text

NEWSLETTERS = Path(__file__).parent / "data" / "newsletters"


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        href = dict(attrs).get("href")
        if tag == "a" and href:
            self.hrefs.append(href)


def links(html: str) -> list[str]:
    parser = _Links()
    parser.feed(html)
    return parser.hrefs


@pytest.mark.parametrize("name", ["product-update", "order-receipt", "event-digest"])
def test_every_link_keeps_its_url(name: str) -> None:
    html = (NEWSLETTERS / f"{name}.html").read_text()
    text = html_to_text(html)
    hrefs = links(html)
    assert len(hrefs) >= 4
    for href in hrefs:
        assert href in text, href
    # nothing of the markup or the CSS is left, no line ends in spaces
    assert "<" not in text.replace("<http", "").replace("<mailto", "")
    assert "{" not in text and "font-family" not in text
    assert all(line == line.rstrip() for line in text.splitlines())
    assert "\n\n\n" not in text


def test_hidden_style_and_script_are_dropped() -> None:
    texts = {path.stem: html_to_text(path.read_text()) for path in NEWSLETTERS.glob("*.html")}
    hidden = {
        "product-update": ["Saved views, faster search", "trackOpen", "open.gif"],
        "order-receipt": ["Tracking number inside", "internal-ref", "never shown"],
        "event-digest": ["Two talks on Thursday", "tracking-id", "prefers-color-scheme"],
    }
    for name, phrases in hidden.items():
        for phrase in phrases:
            assert phrase not in texts[name], (name, phrase)
        assert "\u200c" not in texts[name] and "\xa0" not in texts[name]


def test_headings_lists_and_tables_read_as_text() -> None:
    update = html_to_text((NEWSLETTERS / "product-update.html").read_text())
    assert "\nWhat's new in March\n" in update
    assert "\n  * Share a view with a link\n" in update
    assert "\n 2. Sign in with your work account\n" in update
    assert re.search(r"\nTeam +Unlimited +Yes\n", update)
    # an image link reads as its alt text and URL
    assert update.startswith("Acme Tracker <https://acme.example.com/?utm_source=newsletter>")
    receipt = html_to_text((NEWSLETTERS / "order-receipt.html").read_text())
    assert re.search(r"\nPour-over coffee dripper +£18\.50\n", receipt)
    assert "Sam Okafor\nFlat 3, 41 Mill Lane\nYork YO1 7HF" in receipt
    assert receipt.startswith("Good news, Sam: your order is on its way\n")


@pytest.mark.parametrize(
    ("html", "text"),
    [
        ("", ""),
        ("   ", ""),
        ("<p>Hi</p>", "Hi"),
        ('<a href="https://x.test/">https://x.test/</a>', "https://x.test/"),
        ('<a href="mailto:a@x.test">a@x.test</a>', "a@x.test"),
        ('<a href="#top">Top</a> <a href="/rel">Rel</a>', "Top Rel"),
        ('<p hidden>secret</p><p style="DISPLAY : NONE">secret</p><p>shown</p>', "shown"),
        (
            '<p>A <a href="https://x.test/a"><b>bold</b> link</a>.</p>',
            "A bold link <https://x.test/a>.",
        ),
        ("<p>one</p><!-- a comment --><p>two</p>", "one\n\ntwo"),
    ],
)
def test_small_cases(html: str, text: str) -> None:
    assert html_to_text(html) == text


def test_not_a_string() -> None:
    with pytest.raises(TypeError, match="takes a str"):
        html_to_text(b"<p>x</p>")  # type: ignore[arg-type]
