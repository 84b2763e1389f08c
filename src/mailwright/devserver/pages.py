"""HTML for the web inbox. Every value from a message is escaped here."""

from __future__ import annotations

from html import escape

from .report import human_size
from .store import StoredMessage

__all__ = ["inbox_page", "message_page"]

_STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 0; color: #222; }
header { background: #23395d; color: #fff; padding: .6em 1em; display: flex; gap: 1em;
         align-items: center; }
header a { color: #fff; text-decoration: none; font-weight: 600; }
header .count { opacity: .8; }
header button { margin-left: auto; }
main { padding: 1em; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: .35em .6em; border-bottom: 1px solid #e3e3e3;
         vertical-align: top; }
tr.message:hover { background: #f3f6fb; }
td.subject a { color: #1a4fa0; text-decoration: none; }
.empty { color: #777; padding: 2em 0; }
.pager { margin-top: 1em; display: flex; gap: 1em; }
pre { background: #f7f7f7; padding: .8em; overflow: auto; white-space: pre-wrap; }
iframe { width: 100%; height: 480px; border: 1px solid #ccc; background: #fff; }
h2 { font-size: 1.05em; margin-top: 1.6em; }
dl.headers { display: grid; grid-template-columns: max-content 1fr; gap: .2em 1em; }
dl.headers dt { font-weight: 600; }
dl.headers dd { margin: 0; word-break: break-word; }
"""

_DELETE_SCRIPT = """
document.getElementById('delete-all').addEventListener('click', async () => {
  if (!confirm('Delete all messages?')) return;
  await fetch('/api/messages', {method: 'DELETE'});
  location.href = '/';
});
"""

# On the first page, reload when new mail arrives.
_REFRESH_SCRIPT = """
let known = %d;
setInterval(async () => {
  try {
    const reply = await fetch('/api/messages?limit=0');
    const data = await reply.json();
    if (data.total !== known) location.reload();
  } catch (e) {}
}, 2000);
"""


def _layout(title: str, total: int, content: str, script: str = "") -> str:
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>{escape(title)} · mailwright inbox</title>
<style>{_STYLE}</style></head>
<body>
<header><a href="/">mailwright inbox</a><span class="count" id="count">{total} messages</span>
<button id="delete-all" type="button">Delete all</button></header>
<main>{content}</main>
<script>{_DELETE_SCRIPT}{script}</script>
</body></html>"""


def inbox_page(messages: list[StoredMessage], total: int, page: int, per_page: int) -> str:
    if messages:
        rows = "\n".join(
            f'<tr class="message" data-id="{escape(m.id)}">'
            f"<td>{escape(m.received.strftime('%Y-%m-%d %H:%M:%S'))}</td>"
            f"<td>{escape(m.from_header or m.mail_from)}</td>"
            f"<td>{escape(m.to_header or ', '.join(m.rcpt_tos))}</td>"
            f'<td class="subject"><a href="/messages/{escape(m.id)}">'
            f"{escape(m.subject or '(no subject)')}</a></td>"
            f"<td>{escape(human_size(m.size))}</td></tr>"
            for m in messages
        )
        table = (
            "<table><thead><tr><th>Received (UTC)</th><th>From</th><th>To</th>"
            f"<th>Subject</th><th>Size</th></tr></thead><tbody>{rows}</tbody></table>"
        )
    else:
        table = (
            '<p class="empty">No messages yet. Send mail to this server and it shows up here.</p>'
        )
    pager = []
    if page > 1:
        pager.append(f'<a href="/?page={page - 1}">&larr; newer</a>')
    if page * per_page < total:
        pager.append(f'<a href="/?page={page + 1}">older &rarr;</a>')
    script = _REFRESH_SCRIPT % total if page == 1 else ""
    content = table + f'<div class="pager">{"".join(pager)}</div>'
    return _layout("Inbox", total, content, script)


def message_page(
    stored: StoredMessage,
    headers: list[tuple[str, str]],
    text: str | None,
    has_html: bool,
    total: int,
) -> str:
    base = f"/messages/{escape(stored.id)}"
    header_list = "".join(
        f"<dt>{escape(name)}</dt><dd>{escape(value)}</dd>" for name, value in headers
    )
    sections = [
        f"<h1>{escape(stored.subject or '(no subject)')}</h1>",
        f'<dl class="headers">{header_list}</dl>',
        f"<p>Envelope: {escape(stored.mail_from or '<>')} &rarr; "
        f"{escape(', '.join(stored.rcpt_tos))} · {escape(human_size(stored.size))}</p>",
    ]
    if has_html:
        # sandbox without allow-scripts/allow-same-origin: the message's HTML gets an
        # opaque origin and cannot run scripts or reach the inbox.
        sections.append(
            f'<h2>HTML</h2><iframe id="html-part" sandbox title="HTML part" '
            f'src="{base}/html"></iframe>'
        )
    if text is not None:
        sections.append(f'<h2>Text</h2><pre id="text-part">{escape(text)}</pre>')
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
    sections.append(
        f'<h2>Source</h2><p><a href="{base}/raw">View raw source</a> · '
        f'<a href="/api/messages/{escape(stored.id)}">JSON</a></p>'
    )
    return _layout(stored.subject or "Message", total, "\n".join(sections))
