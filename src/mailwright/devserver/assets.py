"""The inbox's stylesheet and script, served from /static/ (the pages' CSP allows no
inline script or style). Kept here as strings so the package needs no data files."""

from __future__ import annotations

import hashlib

__all__ = ["ASSETS", "VERSION"]

CSS = """
*, *::before, *::after { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0;
       color: #1f2328; background: #fff; }
a { color: #1a4fa0; }
.bar { background: #23395d; color: #fff; padding: .5em 1em; display: flex; flex-wrap: wrap;
       gap: .5em 1em; align-items: center; position: sticky; top: 0; z-index: 1; }
.bar a.home { color: #fff; text-decoration: none; font-weight: 600; white-space: nowrap; }
.bar .search { flex: 1 1 16em; min-width: 0; display: flex; }
.bar .search input { width: 100%; padding: .35em .6em; border-radius: 4px; border: 0;
       font: inherit; }
.bar .count { opacity: .85; white-space: nowrap; }
button { font: inherit; cursor: pointer; }
#delete-all { margin-left: auto; }
main { padding: 1em; max-width: 100%; }
table.messages { border-collapse: collapse; width: 100%; table-layout: fixed; }
table.messages th, table.messages td { text-align: left; padding: .4em .6em;
       vertical-align: middle; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
table.messages tr { border-bottom: 1px solid #e3e6ea; }
table.messages th:nth-child(1) { width: 38%; }
table.messages th:nth-child(2), table.messages th:nth-child(3) { width: 20%; }
table.messages th:nth-child(4) { width: 12.5em; }
table.messages th:nth-child(5) { width: 5.5em; }
table.messages th:nth-child(6) { width: 2.5em; }
tr.message:hover { background: #f3f6fb; }
td.subject a { text-decoration: none; font-weight: 500; }
a.unparsable { color: #a40e26; font-style: italic; }
td.actions { padding-top: .2em; padding-bottom: .2em; text-align: center; }
button.delete { border: 0; background: none; color: #6e7781; font-size: 1.2em; line-height: 1.2;
       padding: 0 .3em; }
button.delete:hover { color: #a40e26; }
.empty { color: #6e7781; padding: 2em 0; }
.pager { margin-top: 1em; display: flex; gap: 1.5em; }
h1 { font-size: 1.3em; margin: .2em 0 .6em; overflow-wrap: anywhere; }
h2 { font-size: 1.05em; margin-top: 1.6em; }
dl.facts { display: grid; grid-template-columns: max-content minmax(0, 1fr); gap: .15em 1em;
       margin: 0 0 .8em; }
dl.facts dt { font-weight: 600; color: #57606a; }
dl.facts dd { margin: 0; overflow-wrap: anywhere; }
.actions { display: flex; flex-wrap: wrap; gap: .5em 1em; align-items: center; margin-bottom: 1em; }
.error { background: #fff1f0; border: 1px solid #f5c2c0; padding: .6em .8em; border-radius: 4px; }
.tabs { display: flex; gap: .25em; border-bottom: 1px solid #d0d7de; margin-bottom: .8em;
       overflow-x: auto; overflow-y: hidden; }
.tab { padding: .45em .9em; text-decoration: none; border: 1px solid transparent;
       border-bottom: 0; border-radius: 4px 4px 0 0; color: #1f2328; white-space: nowrap; }
.tab.active { border-color: #d0d7de; background: #fff; margin-bottom: -1px; font-weight: 600; }
.tab.disabled { color: #8c959f; }
pre { background: #f6f8fa; padding: .8em; overflow: auto; white-space: pre-wrap;
      overflow-wrap: anywhere; margin: 0; }
iframe { width: 100%; height: 520px; border: 1px solid #d0d7de; background: #fff; }
table.headers { border-collapse: collapse; width: 100%; }
table.headers th, table.headers td { text-align: left; vertical-align: top; padding: .25em .6em;
       border-bottom: 1px solid #eaeef2; overflow-wrap: anywhere; }
table.headers th { white-space: nowrap; color: #57606a; }
details.release { margin-top: 1.6em; }
details.release summary { cursor: pointer; font-weight: 600; }
#release-form { display: grid; grid-template-columns: repeat(auto-fill, minmax(12em, 1fr));
       gap: .6em 1em; margin-top: .8em; align-items: end; }
#release-form label { display: flex; flex-direction: column; gap: .2em; font-size: .92em; }
#release-form label.wide { grid-column: 1 / -1; }
#release-form input, #release-form select { font: inherit; padding: .3em .4em; }
@media (max-width: 640px) {
  .bar { padding: .5em .6em; }
  main { padding: .6em; }
  table.messages, table.messages tbody { display: block; }
  table.messages thead { display: none; }
  table.messages tr.message { display: grid; grid-template-columns: minmax(0, 1fr) auto;
       grid-template-areas: "subject actions" "from received" "to size";
       border-bottom: 1px solid #e3e6ea; padding: .45em 0; }
  table.messages td { display: block; border: 0; padding: .05em .2em; }
  table.messages td.subject { grid-area: subject; white-space: normal; overflow-wrap: anywhere; }
  table.messages td.from { grid-area: from; color: #57606a; }
  table.messages td.to { grid-area: to; color: #57606a; }
  table.messages td.received { grid-area: received; color: #57606a; font-size: .9em;
       text-align: right; }
  table.messages td.size { grid-area: size; color: #57606a; font-size: .9em; text-align: right; }
  table.messages td.actions { grid-area: actions; }
  iframe { height: 420px; }
}
"""

JS = """
'use strict';
(() => {
  const $ = (selector, root = document) => root.querySelector(selector);

  const deleteAll = $('#delete-all');
  if (deleteAll) {
    deleteAll.addEventListener('click', async () => {
      if (!confirm('Delete all messages?')) return;
      const reply = await fetch('/api/messages', {method: 'DELETE'});
      if (reply.ok) location.href = '/';
    });
  }

  // --- the inbox: search, live updates, per-message delete ---
  const list = $('#list');
  const search = $('#search');
  if (list) {
    let busy = false;
    let again = false;
    const showStatus = () => {
      const meta = $('#list-meta', list);
      if (meta) $('#count').textContent = meta.dataset.status;
    };
    // data-state tells tests (and curious users) whether the list is settled
    const refresh = async () => {
      list.dataset.state = 'loading';
      if (busy) { again = true; return; }
      busy = true;
      try {
        const reply = await fetch('/_list' + location.search);
        if (reply.ok) {
          list.innerHTML = await reply.text();
          showStatus();
        }
      } catch (error) {
        // the catcher stopped; EventSource reconnects by itself
      } finally {
        busy = false;
        if (again) { again = false; refresh(); } else if (!timer) list.dataset.state = 'idle';
      }
    };
    showStatus();
    let timer = null;
    const searchNow = () => {
      const params = new URLSearchParams();
      if (search.value.trim()) params.set('q', search.value.trim());
      const query = params.toString();
      history.replaceState(null, '', query ? '/?' + query : '/');
      refresh();
    };
    search.addEventListener('input', () => {
      clearTimeout(timer);
      list.dataset.state = 'typing';
      timer = setTimeout(() => { timer = null; searchNow(); }, 150);
    });
    search.form.addEventListener('submit', (event) => {
      event.preventDefault();
      clearTimeout(timer);
      timer = null;
      searchNow();
    });
    list.addEventListener('click', async (event) => {
      const button = event.target.closest('button.delete');
      if (!button) return;
      event.preventDefault();
      const reply = await fetch('/api/messages/' + encodeURIComponent(button.dataset.id),
                                {method: 'DELETE'});
      if (reply.ok || reply.status === 404) {
        button.closest('tr').remove();
        refresh();
      }
    });
    const events = new EventSource('/api/events');
    events.addEventListener('change', refresh);
    document.body.dataset.live = 'connecting';
    events.addEventListener('hello', () => { document.body.dataset.live = 'on'; });
  }

  // --- a message: tabs, delete, release ---
  const tabs = document.querySelectorAll('.tabs a[data-tab]');
  tabs.forEach((tab) => {
    tab.addEventListener('click', (event) => {
      event.preventDefault();
      tabs.forEach((other) => {
        const selected = other === tab;
        other.classList.toggle('active', selected);
        if (selected) other.setAttribute('aria-selected', 'true');
        else other.removeAttribute('aria-selected');
        const panel = document.getElementById('panel-' + other.dataset.tab);
        if (panel) panel.hidden = !selected;
      });
      history.replaceState(null, '', '?tab=' + tab.dataset.tab);
    });
  });
  const deleteMessage = $('#delete-message');
  if (deleteMessage) {
    deleteMessage.addEventListener('click', async () => {
      const reply = await fetch('/api/messages/' + encodeURIComponent(deleteMessage.dataset.id),
                                {method: 'DELETE'});
      if (reply.ok || reply.status === 404) location.href = '/';
    });
  }
  const release = $('#release-form');
  if (release) {
    release.addEventListener('submit', async (event) => {
      event.preventDefault();
      const result = $('#release-result');
      const form = new FormData(release);
      const body = {
        relay: form.get('relay'),
        to: String(form.get('to') || '').split(',').map((s) => s.trim()).filter(Boolean),
      };
      result.textContent = 'Sending…';
      try {
        const reply = await fetch('/api/messages/' + encodeURIComponent(release.dataset.id)
                                  + '/release', {method: 'POST', body: JSON.stringify(body),
                                  headers: {'Content-Type': 'application/json'}});
        const data = await reply.json();
        if (!reply.ok) result.textContent = data.error;
        else if (data.sent) result.textContent = 'Released to ' + data.accepted.join(', ')
          + (Object.keys(data.refused).length
             ? '; refused: ' + Object.keys(data.refused).join(', ') : '');
        else result.textContent = 'Not released: ' + (data.error || 'every recipient was refused');
      } catch (error) {
        result.textContent = 'Release failed: ' + error;
      }
    });
  }
})();
"""

ASSETS: dict[str, tuple[str, str]] = {
    "inbox.css": ("text/css", CSS),
    "inbox.js": ("text/javascript", JS),
}
VERSION = hashlib.sha256((CSS + JS).encode()).hexdigest()[:12]
