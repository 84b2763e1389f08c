"""CSS inlining: rules from ``<style>`` blocks and linked local stylesheets become
``style`` attributes (Gmail and Outlook ignore much of a ``<style>`` block); ``@media``
rules stay in a ``<style>`` block, where the clients that honour them find them.

css-inline (Rust, MIT) does the work. It never fetches anything here: a stylesheet
linked by a relative path is read from the template directories, like an inline
image, and a remote one (``https://fonts...``) stays a ``<link>`` for the reader's
client.
"""

from __future__ import annotations

from collections.abc import Sequence
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from .files import find_file

__all__ = ["inline_css"]


class _StylesheetLinks(HTMLParser):
    """The ``<link rel="stylesheet" href="...">`` tags of a document, as written."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[tuple[str, str]] = []  # (tag text, href)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag != "link":
            return
        values = {name: value or "" for name, value in attrs}
        if "stylesheet" in values.get("rel", "").lower().split() and values.get("href"):
            text = self.get_starttag_text()
            if text is not None:
                self.links.append((text, values["href"].strip()))

    handle_startendtag = handle_starttag


def _is_local(href: str) -> bool:
    lowered = href.lower()
    return not (lowered.startswith("//") or "://" in lowered or lowered.startswith("data:"))


def inline_css(html: str, dirs: Sequence[Path]) -> str:
    """``html`` with its CSS inlined. Local stylesheets are found in ``dirs``; a
    missing one raises ``FileNotFoundError``."""
    try:
        import css_inline
    except ImportError:
        raise ImportError(
            "inlining CSS needs css-inline: pip install 'mailwright[templates]' "
            "(or set EMAIL_TEMPLATE_INLINE_CSS = False)"
        ) from None
    links: list[tuple[str, str]] = []
    if "<link" in html.lower():  # parsing costs more than inlining; most mail links nothing
        parser = _StylesheetLinks()
        parser.feed(html)
        parser.close()
        links = parser.links
    extra: list[str] = []
    for tag, href in links:
        if _is_local(href):
            path = find_file(href.split("?", 1)[0].split("#", 1)[0], dirs, "stylesheet")
            extra.append(path.read_text(encoding="utf-8"))
            html = html.replace(tag, "", 1)
    inliner: Any = css_inline.CSSInliner(
        keep_at_rules=True,
        keep_link_tags=True,
        load_remote_stylesheets=False,
        extra_css="\n".join(extra) or None,
    )
    result: str = inliner.inline(html)
    return result
