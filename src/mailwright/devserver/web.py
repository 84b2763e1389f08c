"""The web inbox and its JSON API, on aiohttp.

Pages (HTML): ``/`` (newest first, paged), ``/messages/{id}``; the HTML part, parts and
raw source are served from ``/messages/{id}/...`` with a ``sandbox`` Content Security
Policy, so nothing from a message runs in the inbox's origin.

API (JSON): ``GET /api/messages?limit=50&offset=0``, ``GET /api/messages/{id}``,
``GET /api/messages/{id}/raw``, ``DELETE /api/messages``, ``DELETE /api/messages/{id}``.
"""

from __future__ import annotations

import re
from email.message import EmailMessage
from typing import Any

from aiohttp import web

from .pages import inbox_page, message_page
from .store import MessageStore, StoredMessage, header_text, leaf_parts

__all__ = ["make_app"]

PER_PAGE = 50
MAX_LIMIT = 10_000
STORE_KEY = web.AppKey("store", MessageStore)

# Inline-safe image types; anything else is served as a download (never as a page of
# the inbox's origin). SVG is deliberately absent: it can carry script.
_INLINE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp", "image/bmp"})
_CID_REF = re.compile(r"""cid:([^"'\s)>]+)""", re.IGNORECASE)


def _store(request: web.Request) -> MessageStore:
    return request.app[STORE_KEY]


def _message(request: web.Request) -> StoredMessage:
    stored = _store(request).get(request.match_info["id"])
    if stored is None:
        raise web.HTTPNotFound(text="no such message")
    return stored


def _int_query(request: web.Request, name: str, default: int, maximum: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise web.HTTPBadRequest(text=f"{name} must be an integer") from None
    if value < 0:
        raise web.HTTPBadRequest(text=f"{name} must not be negative")
    return min(value, maximum)


def _sandboxed(response: web.StreamResponse, img_origin: str | None = None) -> web.StreamResponse:
    images = f"img-src data: {img_origin}" if img_origin else "img-src data:"
    response.headers["Content-Security-Policy"] = (
        f"sandbox; default-src 'none'; style-src 'unsafe-inline'; {images}"
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def _text_of(part: EmailMessage | None) -> str | None:
    if part is None:
        return None
    try:
        return str(part.get_content()).replace("\r\n", "\n")
    except (LookupError, UnicodeError):
        payload = part.get_payload(decode=True)
        return payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""


def _headers(parsed: EmailMessage) -> list[tuple[str, str]]:
    names = dict.fromkeys(parsed)  # field names in order, each once
    return [(name, header_text(parsed, name)) for name in names]


def _detail(stored: StoredMessage) -> dict[str, Any]:
    parsed = stored.parsed()
    base = f"/messages/{stored.id}"
    return {
        **stored.summary(),
        "headers": _headers(parsed),
        "text": _text_of(parsed.get_body(("plain",))),
        "html": _text_of(parsed.get_body(("html",))),
        "parts": [
            {
                "index": part.index,
                "content_type": part.content_type,
                "filename": part.filename,
                "content_id": part.content_id,
                "disposition": part.disposition,
                "size": part.size,
                "url": f"{base}/parts/{part.index}",
            }
            for part in stored.parts
        ],
        "raw_url": f"/api/messages/{stored.id}/raw",
    }


# --- pages ---


async def inbox(request: web.Request) -> web.Response:
    store = _store(request)
    page = max(1, _int_query(request, "page", 1, 1_000_000))
    messages = store.newest_first((page - 1) * PER_PAGE, PER_PAGE)
    body = inbox_page(messages, len(store), page, PER_PAGE)
    return web.Response(text=body, content_type="text/html")


async def message_view(request: web.Request) -> web.Response:
    stored = _message(request)
    parsed = stored.parsed()
    body = message_page(
        stored,
        _headers(parsed),
        _text_of(parsed.get_body(("plain",))),
        parsed.get_body(("html",)) is not None,
        len(_store(request)),
    )
    return web.Response(text=body, content_type="text/html")


async def html_part(request: web.Request) -> web.StreamResponse:
    stored = _message(request)
    html = _text_of(stored.parsed().get_body(("html",)))
    if html is None:
        raise web.HTTPNotFound(text="this message has no HTML part")
    by_cid = {part.content_id: part.index for part in stored.parts if part.content_id}

    def link(match: re.Match[str]) -> str:
        index = by_cid.get(match[1])
        return f"/messages/{stored.id}/parts/{index}" if index is not None else match[0]

    response = web.Response(text=_CID_REF.sub(link, html), content_type="text/html")
    return _sandboxed(response, img_origin=f"{request.scheme}://{request.host}")


async def part_content(request: web.Request) -> web.StreamResponse:
    stored = _message(request)
    try:
        wanted = int(request.match_info["index"])
    except ValueError:
        raise web.HTTPNotFound() from None
    for index, part in leaf_parts(stored.parsed()):
        if index != wanted:
            continue
        content_type = part.get_content_type()
        if content_type.startswith("message/"):
            data = part.get_payload(0).as_bytes()
        else:
            payload = part.get_payload(decode=True)
            data = payload if isinstance(payload, bytes) else b""
        response = web.Response(body=data, content_type=content_type)
        filename = part.get_filename() or f"part-{index}"
        if request.query.get("download") or content_type not in _INLINE_TYPES:
            safe = filename.replace('"', "").replace("\\", "")
            response.headers["Content-Disposition"] = f'attachment; filename="{safe}"'
        return _sandboxed(response)
    raise web.HTTPNotFound(text="no such part")


async def raw_view(request: web.Request) -> web.StreamResponse:
    stored = _message(request)
    response = web.Response(
        text=stored.raw.decode("utf-8", "replace"), content_type="text/plain", charset="utf-8"
    )
    return _sandboxed(response)


# --- JSON API ---


async def api_list(request: web.Request) -> web.Response:
    store = _store(request)
    limit = _int_query(request, "limit", PER_PAGE, MAX_LIMIT)
    offset = _int_query(request, "offset", 0, 10**9)
    messages = store.newest_first(offset, limit) if limit else []
    return web.json_response(
        {
            "total": len(store),
            "offset": offset,
            "limit": limit,
            "messages": [message.summary() for message in messages],
        }
    )


async def api_detail(request: web.Request) -> web.Response:
    return web.json_response(_detail(_message(request)))


async def api_raw(request: web.Request) -> web.Response:
    stored = _message(request)
    return web.Response(body=stored.raw, content_type="message/rfc822")


async def api_delete_all(request: web.Request) -> web.Response:
    store = _store(request)
    count = len(store)
    store.clear()
    return web.json_response({"deleted": count})


async def api_delete(request: web.Request) -> web.Response:
    if not _store(request).delete(request.match_info["id"]):
        raise web.HTTPNotFound(text="no such message")
    return web.json_response({"deleted": 1})


def make_app(store: MessageStore) -> web.Application:
    app = web.Application()
    app[STORE_KEY] = store
    app.add_routes(
        [
            web.get("/", inbox),
            web.get("/messages/{id}", message_view),
            web.get("/messages/{id}/html", html_part),
            web.get("/messages/{id}/parts/{index}", part_content),
            web.get("/messages/{id}/raw", raw_view),
            web.get("/api/messages", api_list),
            web.delete("/api/messages", api_delete_all),
            web.get("/api/messages/{id}", api_detail),
            web.delete("/api/messages/{id}", api_delete),
            web.get("/api/messages/{id}/raw", api_raw),
        ]
    )
    return app
