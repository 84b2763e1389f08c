"""HTML for the web inbox. Every value from a message is escaped here; the pages carry
no inline script or style (the CSP forbids both), only /static/inbox.{css,js}."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from urllib.parse import quote, urlencode

from .assets import VERSION
from .report import human_size
from .store import StoredMessage

__all__ = ["inbox_list", "inbox_page", "message_page"]

RAW_INLINE_LIMIT = 1024 * 1024


def _id(stored: StoredMessage) -> str:
    return escape(quote(stored.id, safe=""))


def _layout(title: str, total: int, content: str, query: str = "", page_class: str = "") -> str:
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)} · mailwright inbox</title>
<link rel="stylesheet" href="/static/inbox.css?v={VERSION}">
<script src="/static/inbox.js?v={VERSION}" defer></script></head>
<body class="{page_class}">
<header class="bar"><a class="home" href="/">mailwright inbox</a>
<form class="search" role="search" action="/" method="get">
<input id="search" type="search" name="q" value="{escape(query)}" autocomplete="off"
 placeholder="Search subject, from, to, text" aria-label="Search messages">
</form>
<span class="count" id="count">{total} message{"" if total == 1 else "s"}</span>
<button id="delete-all" type="button">Delete all</button></header>
<main>{content}</main>
</body></html>"""


def _row(stored: StoredMessage) -> str:
    summary = stored.summary
    subject = summary.subject or "(no subject)"
    subject_class = ' class="unparsable"' if summary.parse_error else ""
    title = f' title="{escape(summary.parse_error)}"' if summary.parse_error else ""
    received = stored.received.strftime("%Y-%m-%d %H:%M:%S")
    return (
        f'<tr class="message" data-id="{escape(stored.id)}">'
        f'<td class="subject"><a href="/messages/{_id(stored)}"{subject_class}{title}>'
        f"{escape(subject)}</a></td>"
        f'<td class="from">{escape(summary.from_header or stored.mail_from)}</td>'
        f'<td class="to">{escape(summary.to_header or ", ".join(stored.rcpt_tos))}</td>'
        f'<td class="received"><time datetime="{escape(stored.received.isoformat())}">'
        f"{escape(received)}</time></td>"
        f'<td class="size">{escape(human_size(stored.size))}</td>'
        f'<td class="actions"><button type="button" class="delete" data-id="{escape(stored.id)}" '
        f'title="Delete this message" aria-label="Delete">&times;</button></td></tr>'
    )


def inbox_list(
    messages: list[StoredMessage], matching: int, total: int, page: int, per_page: int, query: str
) -> str:
    """The part of the inbox page that live updates replace."""
    if messages:
        rows = "\n".join(_row(stored) for stored in messages)
        table = (
            '<table class="messages"><thead><tr><th>Subject</th><th>From</th><th>To</th>'
            "<th>Received (UTC)</th><th>Size</th><th></th></tr></thead>"
            f"<tbody>{rows}</tbody></table>"
        )
    elif query:
        table = f'<p class="empty">No messages match “{escape(query)}”.</p>'
    else:
        table = (
            '<p class="empty">No messages yet. Send mail to this server and it shows up here.</p>'
        )
    pager = []
    base = {"q": query} if query else {}
    if page > 1:
        pager.append(
            f'<a href="/?{escape(urlencode({**base, "page": page - 1}))}">&larr; newer</a>'
        )
    if page * per_page < matching:
        pager.append(
            f'<a href="/?{escape(urlencode({**base, "page": page + 1}))}">older &rarr;</a>'
        )
    status = (
        f"{matching} of {total} match" if query else f"{total} message{'' if total == 1 else 's'}"
    )
    return (
        f'<div id="list-meta" data-total="{total}" data-matching="{matching}" '
        f'data-status="{escape(status)}"></div>'
        + table
        + f'<nav class="pager">{"".join(pager)}</nav>'
    )


def inbox_page(
    messages: list[StoredMessage], matching: int, total: int, page: int, per_page: int, query: str
) -> str:
    listing = inbox_list(messages, matching, total, page, per_page, query)
    content = f'<div id="list" data-page="{page}" data-state="idle">{listing}</div>'
    return _layout("Inbox", total, content, query, "inbox")


def _release_form(stored: StoredMessage, relays: Sequence[str]) -> str:
    if not relays:
        return (
            '<details class="release" id="release"><summary>Release</summary>'
            '<p id="release-off">Release is off: start the catcher with '
            "<code>--release-to HOST:PORT</code> to send caught messages on to that "
            "server.</p></details>"
        )
    options = "".join(f'<option value="{escape(name)}">{escape(name)}</option>' for name in relays)
    recipients = ", ".join(stored.rcpt_tos)
    return (
        '<details class="release" id="release"><summary>Release to an SMTP server</summary>'
        f'<form id="release-form" data-id="{escape(stored.id)}">'
        f'<label>Relay <select name="relay">{options}</select></label>'
        f'<label class="wide">To <input name="to" value="{escape(recipients)}" '
        'placeholder="envelope recipients, comma-separated"></label>'
        '<button type="submit">Release</button></form>'
        '<p id="release-result" role="status"></p></details>'
    )


def message_page(
    stored: StoredMessage,
    headers: list[tuple[str, str]],
    text: str | None,
    has_html: bool,
    parse_error: str | None,
    total: int,
    tab: str = "",
    relays: Sequence[str] = (),
) -> str:
    base = f"/messages/{_id(stored)}"
    summary = stored.summary
    available = {"html": has_html, "text": text is not None, "headers": True, "raw": True}
    if not available.get(tab):
        tab = "html" if has_html else "text" if text is not None else "headers"

    def field(label: str, value: str) -> str:
        return f"<dt>{escape(label)}</dt><dd>{escape(value)}</dd>" if value else ""

    header_map = {name.lower(): value for name, value in headers}
    facts = "".join(
        [
            field("From", summary.from_header),
            field("To", summary.to_header),
            field("Cc", header_map.get("cc", "")),
            field("Date", header_map.get("date", "")),
            field(
                "Envelope",
                f"{stored.mail_from or '<>'} → {', '.join(stored.rcpt_tos) or '(not known)'}",
            ),
            field("AUTH user", stored.auth_user or ""),
            field("Received", stored.received.strftime("%Y-%m-%d %H:%M:%S UTC")),
            field("Size", human_size(stored.size)),
        ]
    )
    sections = [
        f'<h1 id="subject">{escape(summary.subject or "(no subject)")}</h1>',
        f'<dl class="facts">{facts}</dl>',
        '<div class="actions">'
        f'<button type="button" id="delete-message" data-id="{escape(stored.id)}">Delete</button> '
        f'<a href="/api/messages/{_id(stored)}/raw?download=1">Download .eml</a> '
        f'<a href="/api/messages/{_id(stored)}">JSON</a></div>',
    ]
    if parse_error:
        sections.append(
            f'<p class="error" id="parse-error">The stdlib parser cannot read this message: '
            f"{escape(parse_error)}. The raw source is shown as received.</p>"
        )
    labels = {"html": "HTML", "text": "Text", "headers": "Headers", "raw": "Raw"}
    tabs = []
    for name, label in labels.items():
        if not available[name]:
            tabs.append(f'<span class="tab disabled" aria-disabled="true">{label}</span>')
            continue
        current = ' aria-selected="true" class="tab active"' if name == tab else ' class="tab"'
        tabs.append(
            f'<a href="?tab={name}" role="tab" data-tab="{name}" id="tab-{name}"{current}>'
            f"{label}</a>"
        )
    sections.append(f'<nav class="tabs" role="tablist">{"".join(tabs)}</nav>')

    def panel(name: str, content: str) -> str:
        hidden = "" if name == tab else " hidden"
        return (
            f'<section class="panel" id="panel-{name}" role="tabpanel"{hidden}>{content}</section>'
        )

    if has_html:
        # sandbox without allow-scripts/allow-same-origin: the message's HTML gets an
        # opaque origin and cannot run scripts or reach the inbox; its links open in a
        # new tab (allow-popups), outside the sandbox.
        sections.append(
            panel(
                "html",
                '<iframe id="html-part" sandbox="allow-popups allow-popups-to-escape-sandbox" '
                f'title="HTML part" src="{base}/html"></iframe>',
            )
        )
    if text is not None:
        sections.append(panel("text", f'<pre id="text-part">{escape(text)}</pre>'))
    header_rows = "".join(
        f"<tr><th>{escape(name)}</th><td>{escape(value)}</td></tr>" for name, value in headers
    )
    sections.append(panel("headers", f'<table class="headers" id="headers">{header_rows}</table>'))
    raw = stored.raw[:RAW_INLINE_LIMIT].decode("utf-8", "replace")
    more = (
        f"<p>Showing the first {human_size(RAW_INLINE_LIMIT)}; "
        f'<a href="{base}/raw">the whole source</a>.</p>'
        if stored.size > RAW_INLINE_LIMIT
        else ""
    )
    sections.append(panel("raw", f'{more}<pre id="raw-source">{escape(raw)}</pre>'))
    attachments = [
        part for part in stored.parts if part.filename or part.disposition == "attachment"
    ]
    if attachments:
        items = "".join(
            f'<li><a href="{base}/parts/{part.index}?download=1">'
            f"{escape(part.filename or f'part {part.index}')}</a> "
            f"({escape(part.content_type)}, {escape(human_size(part.size))})</li>"
            for part in attachments
        )
        sections.append(f'<h2>Attachments</h2><ul id="attachments">{items}</ul>')
    sections.append(_release_form(stored, relays))
    return _layout(summary.subject or "Message", total, "\n".join(sections), "", "message")
