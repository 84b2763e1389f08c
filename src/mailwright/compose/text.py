"""``html_to_text``: the plain-text version of an HTML message.

The converter is inscriptis (Apache-2.0, on lxml), chosen after measuring the
candidates on the three newsletter-style files in ``tests/data/newsletters/`` (tables
for layout, a hidden preheader, ``<style>`` and ``<script>``, links, lists, headings):

- inscriptis: the best text. Tables come out as aligned columns (an order's items and
  prices stay on one line), lists keep their bullets and numbers, paragraphs and
  headings their blank lines; it reads ``display: none`` in style attributes.
- html2text: Markdown rather than text (layout tables turn into ``| --- |`` rows,
  ``**bold**``, ``#`` headings), hidden preheaders kept; 1.8 times inscriptis' time;
  and its GPL-3.0 licence does not go with a BSD library.
- html-text (lxml): a third of inscriptis' time, but it drops every link's URL and
  keeps hidden elements and the ``<title>``.
- html2text-rs (Rust): a third of inscriptis' time, but its plain mode drops URLs,
  keeps hidden elements and draws box-drawing frames, as wide as the page, around
  layout tables.

(Times from one run over the three files; on an idle core inscriptis takes 2-3 ms a
file, and the work below adds about a tenth.)

What this module adds around inscriptis, so the result is right for mail: every
hidden element (``display:none``, ``visibility:hidden``, ``mso-hide:all``, the
``hidden`` attribute; inscriptis misses ``display: none !important``) is removed with
its content, and so are ``<head>``, ``<style>``, ``<script>`` and comments; each link
keeps its URL as ``text <url>`` (the delimiters RFC 3986, appendix C, recommends for
URLs in plain text); trailing spaces, runs of blank lines and invisible padding
characters are dropped.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

__all__ = ["html_to_text"]

_HIDDEN_STYLE = re.compile(
    r"(?:^|;)\s*(?:display\s*:\s*none|visibility\s*:\s*hidden|mso-hide\s*:\s*all)\b",
    re.IGNORECASE,
)
_LAYOUT_STYLE = re.compile(r"display|white-space", re.IGNORECASE)
_DROPPED_TAGS = ("head", "style", "script", "template", "noscript", "title")
_LINK_SCHEMES = ("http://", "https://", "mailto:", "tel:")
# Zero-width and soft characters newsletters use to pad a preheader.
_INVISIBLE = dict.fromkeys(map(ord, "\u00ad\u034f\u200b\u200c\u200d\u2060\ufeff"), None)
_BLANK_RUNS = re.compile(r"\n{3,}")


@cache
def _config() -> Any:
    from inscriptis.css_profiles import CSS_PROFILES
    from inscriptis.model.config import ParserConfig

    return ParserConfig(
        css=CSS_PROFILES["strict"],
        display_images=False,
        display_links=False,
        display_anchors=False,
    )


def _missing_extra() -> ImportError:
    return ImportError("html_to_text needs inscriptis: pip install 'mailwright[templates]'")


def html_to_text(html: str) -> str:
    """The plain-text rendering of ``html``: headings, paragraphs, lists and tables
    laid out as text, each link followed by its URL (``Read more <https://...>``);
    hidden elements, ``<style>`` and ``<script>`` left out. Needs the ``templates``
    extra."""
    if not isinstance(html, str):
        raise TypeError(f"html_to_text() takes a str, not {type(html).__name__}")
    try:
        from inscriptis import Inscriptis
        from lxml import etree
        from lxml.html import document_fromstring
    except ImportError:
        raise _missing_extra() from None

    source = html.strip()
    if not source:
        return ""
    if source.startswith("<?xml"):
        source = source[source.find(">") + 1 :]
    try:
        tree = document_fromstring(source)
    except etree.ParserError:
        return ""
    _prepare(tree, etree)
    text = Inscriptis(tree, _config()).get_text()
    return _tidy(text)


def _prepare(tree: Any, etree: Any) -> None:
    """Drop what a reader does not see; write each link's URL after its text."""
    doomed = [
        element
        for element in tree.iter()
        if not isinstance(element.tag, str)  # comments, processing instructions
        or element.tag in _DROPPED_TAGS
        or element.get("hidden") is not None
        or _HIDDEN_STYLE.search(element.get("style") or "")
    ]
    for element in doomed:
        if element.getparent() is not None:
            element.drop_tree()  # keeps the text that follows the element
    # Inlined CSS puts a style attribute on nearly every element; inscriptis reads only
    # display and white-space from it, and parsing the rest is a third of its time.
    for element in tree.iter():
        style = element.get("style")
        if style is not None and not _LAYOUT_STYLE.search(style):
            del element.attrib["style"]
    for link in tree.iter("a"):
        _spell_out(link)


def _spell_out(link: Any) -> None:
    href = (link.get("href") or "").strip()
    if not href.lower().startswith(_LINK_SCHEMES):
        return  # a fragment (#top), a relative or a javascript: link: nothing to follow
    text = " ".join(link.text_content().split())
    shown = href[len("mailto:") :] if href.lower().startswith("mailto:") else href
    if text in (href, shown):
        return  # the text already is the URL
    if text:
        suffix = f" <{href}>"
    else:  # an image link: its alt text stands for the link's text
        alt = " ".join(word for img in link.iter("img") for word in (img.get("alt") or "").split())
        suffix = f"{alt} <{href}>" if alt else f"<{href}>"
    if len(link):
        last = link[-1]
        last.tail = (last.tail or "") + suffix
    else:
        link.text = (link.text or "") + suffix


def _tidy(text: str) -> str:
    # Trailing spaces first: inscriptis pads table cells to the widest line.
    text = "\n".join(line.rstrip() for line in text.splitlines())
    text = text.translate(_INVISIBLE).replace("\u00a0", " ")
    lines = [line.rstrip() for line in text.splitlines()]
    return _BLANK_RUNS.sub("\n\n", "\n".join(lines)).strip("\n")
