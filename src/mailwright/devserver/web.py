"""The web inbox and its JSON API, on aiohttp (the ``devserver`` extra).

Pages (HTML): ``/`` (newest first, paged, ``?q=`` search), ``/messages/{id}`` (tabs
HTML / Text / Headers / Raw). The HTML part, parts and raw source are served from
``/messages/{id}/...`` with a ``sandbox`` Content Security Policy, so nothing from a
message runs in the inbox's origin.

API (JSON): ``GET /api/messages?limit=50&offset=0&q=``, ``GET /api/messages/{id}``,
``GET /api/messages/{id}/raw``, ``DELETE /api/messages``, ``DELETE /api/messages/{id}``,
``POST /api/messages/{id}/release``, and ``GET /api/events`` (server-sent events).

Security: caught mail holds password-reset links, so only requests whose ``Host``
names this server (the address the connection came in on, localhost, 127.0.0.1,
[::1], or a name given with ``--web-host-allow``) are answered, which defeats DNS
rebinding. A request that changes something (DELETE, POST) must come from the inbox's
own page (a same-origin browser request, with ``Origin``) or carry the token printed
at start-up (``X-Mailwright-Token``). Release goes only to relays set at start-up
(``release.py``). Every response has ``nosniff``, a CSP and no caching.
"""

from __future__ import annotations

import asyncio
import email.utils
import hmac
import ipaddress
import json
import re
import unicodedata
from collections.abc import Awaitable, Callable, Iterable
from email.message import EmailMessage
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote, unquote, urlsplit

from aiohttp import web

from ..message.addresses import parse_mailbox
from . import assets
from .pages import inbox_list, inbox_page, message_page
from .release import ReleasePolicy, failure_text, release
from .store import MessageStore, StoredMessage, header_fields, leaf_parts

if TYPE_CHECKING:
    from .server import DevServer

__all__ = ["content_disposition", "make_app"]

_T = TypeVar("_T")

PER_PAGE = 50
MAX_LIMIT = 10_000
STORE_KEY = web.AppKey("store", MessageStore)

# Inline-safe image types; anything else is served as a download (never as a page of
# the inbox's origin). SVG is deliberately absent: it can carry script.
_INLINE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp", "image/bmp"})
_CID_REF = re.compile(r"""cid:([^"'\s)>]+)""", re.IGNORECASE)
_MIME_TYPE = re.compile(r"^[a-z0-9!#$&^_.+-]+/[a-z0-9!#$&^_.+-]+$")
_LOCAL_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
_UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-src 'self'; form-action 'self'; base-uri 'none'; "
    "frame-ancestors 'none'"
)
API_CSP = "default-src 'none'; frame-ancestors 'none'; sandbox"


# --- live updates ---


class EventHub:
    """Wakes every server-sent-events stream when the store changes. Streams send at
    most one event per ``interval`` seconds, so a flood of mail costs a few events,
    not one per message."""

    interval = 0.2

    def __init__(self) -> None:
        self.version = 0
        self.closing = False
        self._waiters: set[asyncio.Event] = set()

    def changed(self) -> None:
        self.version += 1
        for waiter in self._waiters:
            waiter.set()

    def close(self) -> None:
        self.closing = True
        self.changed()

    async def wait(self, seen: int, timeout: float) -> None:
        if self.version != seen or self.closing:
            return
        waiter = asyncio.Event()
        self._waiters.add(waiter)
        try:
            await asyncio.wait_for(waiter.wait(), timeout)
        except TimeoutError:
            pass
        finally:
            self._waiters.discard(waiter)


# --- middlewares and headers ---


def _host_name(value: str) -> str:
    """The host part of a Host header or netloc, lower-case, without port or brackets."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1 : value.find("]")] if "]" in value else value
    if value.count(":") == 1:
        return value.split(":", 1)[0]
    return value


HUB_KEY = web.AppKey("hub", EventHub)
ALLOW_KEY: web.AppKey[frozenset[str]] = web.AppKey("allow")
TOKEN_KEY: web.AppKey[str | None] = web.AppKey("token")
RELEASE_KEY = web.AppKey("release", ReleasePolicy)
SERVER_KEY: web.AppKey[DevServer] = web.AppKey("server")


def host_allowed(host_header: str | None, local_address: str | None, allow: frozenset[str]) -> bool:
    if not host_header:
        return False
    name = _host_name(host_header)
    if name in _LOCAL_NAMES or name in allow:
        return True
    if local_address is not None:
        try:
            return ipaddress.ip_address(name) == ipaddress.ip_address(local_address.split("%")[0])
        except ValueError:
            return False
    return False


@web.middleware
async def _guard(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    sockname = request.transport.get_extra_info("sockname") if request.transport else None
    local = sockname[0] if isinstance(sockname, tuple) else None
    if not host_allowed(request.headers.get("Host"), local, request.app[ALLOW_KEY]):
        raise web.HTTPForbidden(
            text="This mailwright inbox answers only to its own address, localhost, "
            "127.0.0.1 and [::1]; start it with --web-host-allow NAME to add a name.\n"
        )
    if request.method in _UNSAFE_METHODS and not (_has_token(request) or _same_origin(request)):
        raise web.HTTPForbidden(
            text="A request that changes something needs the inbox page (a same-origin "
            f"browser request) or the header {TOKEN_HEADER} with the token the catcher "
            "printed when it started.\n"
        )
    return await handler(request)


TOKEN_HEADER = "X-Mailwright-Token"


def _has_token(request: web.Request) -> bool:
    """The start-up token, for scripts (compared in constant time)."""
    token = request.app[TOKEN_KEY]
    given = request.headers.get(TOKEN_HEADER)
    if not token or given is None:
        return False
    return hmac.compare_digest(given.encode("utf-8", "replace"), token.encode())


def _same_origin(request: web.Request) -> bool:
    """Browsers send Origin with every state-changing request (and Sec-Fetch-Site);
    a request without Origin is a script's or curl's, and needs the token instead:
    otherwise anything that can reach the port could delete or release mail."""
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None and site not in ("same-origin", "none"):
        return False
    origin = request.headers.get("Origin")
    if origin is None or origin == "null":
        return False
    parts = urlsplit(origin)
    host = request.headers.get("Host", "")
    default_port = {"http": 80, "https": 443}.get(parts.scheme)
    try:
        origin_port = parts.port or default_port
    except ValueError:
        return False
    host_port: int | None
    try:
        host_port = urlsplit(f"//{host}").port or default_port
    except ValueError:
        return False
    return (parts.hostname or "") == _host_name(host) and origin_port == host_port


async def _security_headers(request: web.Request, response: web.StreamResponse) -> None:
    headers = response.headers
    headers["X-Content-Type-Options"] = "nosniff"
    headers.setdefault("Content-Security-Policy", PAGE_CSP)
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Referrer-Policy", "no-referrer")
    headers.setdefault("Cross-Origin-Resource-Policy", "same-origin")
    headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
    headers.setdefault("Cache-Control", "no-store")


# Links in a message (a password-reset link) open in a new tab, outside the sandbox;
# nothing else is allowed: no scripts, no forms, no same-origin access.
HTML_SANDBOX = "allow-popups allow-popups-to-escape-sandbox"


def _sandboxed(
    response: web.StreamResponse, img_origin: str | None = None, flags: str = ""
) -> web.StreamResponse:
    """For anything that comes from a message: an opaque origin, no scripts."""
    images = f"img-src data: {img_origin}" if img_origin else "img-src data:"
    response.headers["Content-Security-Policy"] = (
        f"sandbox {flags}; default-src 'none'; style-src 'unsafe-inline'; {images}".replace(
            "sandbox ;", "sandbox;"
        )
    )
    # The HTML part is shown in the inbox's own iframe.
    response.headers["X-Frame-Options"] = "SAMEORIGIN"
    return response


def content_disposition(filename: str, kind: str = "attachment") -> str:
    """RFC 6266: ``filename*`` in UTF-8 and a plain-ASCII ``filename`` fallback; control
    characters, quotes, backslashes and path separators never reach the header."""
    cleaned = (
        "".join(char for char in filename if unicodedata.category(char)[0] != "C")
        .replace("/", "_")
        .replace("\\", "_")
    )
    cleaned = cleaned.strip().strip(".") or "download"
    decomposed = unicodedata.normalize("NFKD", cleaned)
    ascii_name = "".join(char for char in decomposed if not unicodedata.combining(char))
    ascii_name = re.sub(r"[^A-Za-z0-9 !#$&+,.;=@^_`{}~()\[\]-]", "_", ascii_name)
    stem, dot, suffix = ascii_name.rpartition(".")
    if not re.search(r"[A-Za-z0-9]", ascii_name):
        ascii_name = "download"
    elif dot and not re.search(r"[A-Za-z0-9]", stem) and suffix.isalnum() and len(suffix) <= 10:
        ascii_name = f"download.{suffix}"  # "日本語.txt": keep the type at least
    encoded = quote(cleaned, safe="!#$&+-.^_`|~")
    return f"{kind}; filename=\"{ascii_name}\"; filename*=UTF-8''{encoded}"


# --- helpers ---


def _store(request: web.Request) -> MessageStore:
    return request.app[STORE_KEY]


def _message(request: web.Request) -> StoredMessage:
    stored = _store(request).get(request.match_info["id"])
    if stored is None:
        raise web.HTTPNotFound(text="no such message\n")
    return stored


def _int_query(request: web.Request, name: str, default: int, maximum: int) -> int:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise web.HTTPBadRequest(text=f"{name} must be an integer\n") from None
    if value < 0:
        raise web.HTTPBadRequest(text=f"{name} must not be negative\n")
    return min(value, maximum)


def _text_of(part: Any) -> str | None:
    if part is None:
        return None
    try:
        return str(part.get_content()).replace("\r\n", "\n")
    except Exception:
        payload = part.get_payload(decode=True)
        return payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""


def url_id(stored: StoredMessage) -> str:
    return quote(stored.id, safe="")


class Detail:
    """What the message page and the API show; built so that no input makes it fail."""

    def __init__(self, stored: StoredMessage) -> None:
        self.stored = stored
        self.parse_error = stored.parse_error
        self.headers: list[tuple[str, str]] = []
        self.text: str | None = None
        self.html: str | None = None
        try:
            parsed = stored.parsed()
            for name in dict.fromkeys(parsed.keys()):
                values = []
                for value in parsed.get_all(name) or []:
                    values.append(str(value))
                self.headers.append((name, ", ".join(values)))
            self.text = _text_of(parsed.get_body(("plain",)))
            self.html = _text_of(parsed.get_body(("html",)))
        except Exception as exc:  # the stdlib parser raises on some hostile input
            self.parse_error = self.parse_error or f"{type(exc).__name__}: {exc}"
            self.headers = header_fields(stored.raw)
            end = stored.raw.find(b"\r\n\r\n")
            self.text = stored.raw[end + 4 :].decode("utf-8", "replace") if end >= 0 else ""
            self.html = None

    def as_json(self) -> dict[str, Any]:
        stored = self.stored
        base = f"/messages/{url_id(stored)}"
        return {
            **stored.summary_dict(),
            "parse_error": self.parse_error,
            "headers": self.headers,
            "text": self.text,
            "html": self.html,
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
            "raw_url": f"/api/messages/{url_id(stored)}/raw",
        }


# --- pages ---


def _listing(request: web.Request) -> tuple[str, int, int, list[StoredMessage]]:
    query = request.query.get("q", "").strip()
    page = max(1, _int_query(request, "page", 1, 1_000_000))
    total, messages = _store(request).search(query, (page - 1) * PER_PAGE, PER_PAGE)
    return query, page, total, messages


async def inbox(request: web.Request) -> web.Response:
    query, page, total, messages = _listing(request)
    body = inbox_page(messages, total, len(_store(request)), page, PER_PAGE, query)
    return web.Response(text=body, content_type="text/html")


async def inbox_fragment(request: web.Request) -> web.Response:
    query, page, total, messages = _listing(request)
    body = inbox_list(messages, total, len(_store(request)), page, PER_PAGE, query)
    return web.Response(text=body, content_type="text/html")


# Parsing a big message takes long (seconds for 30 MB): do it off the event loop, so
# SMTP sessions keep going while someone looks at it.
BIG_MESSAGE = 256 * 1024


async def _off_loop(stored: StoredMessage, work: Callable[[], _T]) -> _T:
    if stored.size < BIG_MESSAGE:
        return work()
    return await asyncio.to_thread(work)


async def _detail(stored: StoredMessage) -> Detail:
    def build() -> Detail:
        detail = Detail(stored)
        _ = stored.parts
        return detail

    return await _off_loop(stored, build)


async def message_view(request: web.Request) -> web.Response:
    stored = _message(request)
    detail = await _detail(stored)
    tab = request.query.get("tab", "")
    body = message_page(
        stored,
        detail.headers,
        detail.text,
        detail.html is not None,
        detail.parse_error,
        len(_store(request)),
        tab,
        list(request.app[RELEASE_KEY].relays),
    )
    return web.Response(text=body, content_type="text/html")


async def static(request: web.Request) -> web.Response:
    asset = assets.ASSETS.get(request.match_info["name"])
    if asset is None:
        raise web.HTTPNotFound()
    content_type, text = asset
    response = web.Response(text=text, content_type=content_type)
    response.headers["Cache-Control"] = "no-cache"
    return response


async def html_part(request: web.Request) -> web.StreamResponse:
    stored = _message(request)
    html = (await _detail(stored)).html
    if html is None:
        raise web.HTTPNotFound(text="this message has no HTML part\n")
    by_cid = {part.content_id: part.index for part in stored.parts if part.content_id}

    def link(match: re.Match[str]) -> str:
        # RFC 2392: a cid: URL is the Content-ID percent-encoded.
        index = by_cid.get(match[1], by_cid.get(unquote(match[1])))
        return f"/messages/{url_id(stored)}/parts/{index}" if index is not None else match[0]

    text = '<base target="_blank">' + _CID_REF.sub(link, html)
    response = web.Response(text=text, content_type="text/html")
    return _sandboxed(response, f"{request.scheme}://{request.host}", HTML_SANDBOX)


async def part_content(request: web.Request) -> web.StreamResponse:
    stored = _message(request)
    try:
        wanted = int(request.match_info["index"])
        parsed = await _off_loop(stored, stored.parsed)
        for index, part in leaf_parts(parsed):
            if index != wanted:
                continue
            content_type = part.get_content_type()
            if not _MIME_TYPE.match(content_type):
                content_type = "application/octet-stream"
            if content_type.startswith("message/"):
                inner = part.get_payload(0)
                data = inner.as_bytes() if isinstance(inner, EmailMessage) else b""
            else:
                payload = part.get_payload(decode=True)
                data = payload if isinstance(payload, bytes) else b""
            filename = part.get_filename() or f"part-{index}"
            break
        else:
            raise web.HTTPNotFound(text="no such part\n")
    except web.HTTPException:
        raise
    except Exception:
        raise web.HTTPNotFound(text="no such part (the message cannot be parsed)\n") from None
    response = web.Response(body=data, content_type=content_type)
    if request.query.get("download") or content_type not in _INLINE_TYPES:
        response.headers["Content-Disposition"] = content_disposition(filename)
    else:
        # An inline image is loaded by the HTML part, whose sandbox gives it an opaque
        # origin: same-origin CORP would block it.
        response.headers["Cross-Origin-Resource-Policy"] = "cross-origin"
    return _sandboxed(response)


async def raw_view(request: web.Request) -> web.StreamResponse:
    stored = _message(request)
    response = web.Response(
        text=stored.raw.decode("utf-8", "replace"), content_type="text/plain", charset="utf-8"
    )
    return _sandboxed(response)


# --- JSON API ---


def _json(data: Any, status: int = 200) -> web.Response:
    response = web.json_response(data, status=status, dumps=json.dumps)
    response.headers["Content-Security-Policy"] = API_CSP
    return response


async def api_list(request: web.Request) -> web.Response:
    store = _store(request)
    limit = _int_query(request, "limit", PER_PAGE, MAX_LIMIT)
    offset = _int_query(request, "offset", 0, 10**9)
    query = request.query.get("q", "").strip()
    if limit:
        total, messages = store.search(query, offset, limit)
    else:
        total, messages = (store.search(query, 0, 0)[0] if query else len(store)), []
    return _json(
        {
            "total": total,
            "offset": offset,
            "limit": limit,
            "query": query,
            "messages": [message.summary_dict() for message in messages],
        }
    )


async def api_detail(request: web.Request) -> web.Response:
    return _json((await _detail(_message(request))).as_json())


async def api_raw(request: web.Request) -> web.StreamResponse:
    stored = _message(request)
    response = web.Response(body=stored.raw, content_type="message/rfc822")
    name = stored.subject if not stored.parse_error else "message"
    response.headers["Content-Disposition"] = content_disposition(
        f"{name or 'message'}.eml", "inline" if not request.query.get("download") else "attachment"
    )
    response.headers["Content-Security-Policy"] = API_CSP
    return response


async def api_delete_all(request: web.Request) -> web.Response:
    count = await asyncio.to_thread(_store(request).clear)
    return _json({"deleted": count})


async def api_delete(request: web.Request) -> web.Response:
    if not _store(request).delete(request.match_info["id"]):
        raise web.HTTPNotFound(text="no such message\n")
    return _json({"deleted": 1})


def _release_addresses(value: Any) -> list[str]:
    """The addresses given as 'to': each entry exactly one address, checked by the
    same validator as every address mailwright sends to."""
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise web.HTTPBadRequest(text="'to' must be a list of addresses\n")
    addresses = []
    for item in value:
        try:
            addresses.append(parse_mailbox(item, "to").addr_spec)
        except ValueError as exc:
            raise web.HTTPBadRequest(text=f"{exc}\n") from None
    return addresses


def _header_addresses(values: list[str]) -> list[str]:
    """The valid addresses in To/Cc header values (the rest are left out)."""
    addresses = []
    for _, address in email.utils.getaddresses(values):
        try:
            addresses.append(parse_mailbox(address, "to").addr_spec)
        except ValueError:
            continue
    return addresses


_REMOVED_RELEASE_OPTIONS = ("host", "port", "security", "username", "password", "mail_from")


async def api_release(request: web.Request) -> web.Response:
    """Send a caught message on, exactly as it was received, to one of the relays
    configured when the catcher started (``--release-to``)."""
    stored = _message(request)
    policy = request.app[RELEASE_KEY]
    if not policy.enabled:
        return _json(
            {"error": "release is off: start the catcher with --release-to HOST:PORT"}, 403
        )
    try:
        options = await request.json()
    except ValueError:
        return _json({"error": "the request body must be JSON"}, 400)
    if not isinstance(options, dict):
        return _json({"error": "the request body must be a JSON object"}, 400)
    given = [name for name in _REMOVED_RELEASE_OPTIONS if name in options]
    if given:
        return _json(
            {
                "error": f"{given[0]!r} is not accepted: the catcher releases only to the "
                f"relays set when it started ({', '.join(policy.relays)}); choose one "
                "with 'relay'"
            },
            400,
        )
    relay_name = options.get("relay")
    relay = policy.relay(relay_name if isinstance(relay_name, str) else None)
    if relay is None:
        return _json(
            {"error": f"'relay' must be one of: {', '.join(policy.relays)}"},
            400,
        )
    try:
        recipients = _release_addresses(options.get("to")) or list(stored.rcpt_tos)
    except web.HTTPBadRequest as exc:
        return _json({"error": exc.text.strip() if exc.text else "bad 'to'"}, 400)
    if not recipients:
        fields = header_fields(stored.raw)
        recipients = _header_addresses(
            [value for name, value in fields if name.lower() in ("to", "cc")]
        )
    if not recipients:
        return _json({"error": "no recipients: give 'to'"}, 400)
    refused = policy.refused_recipient(recipients)
    if refused is not None:
        return _json(
            {"error": f"{refused} is not allowed: --release-allow is {policy.allow_text!r}"},
            403,
        )
    sender = stored.mail_from
    if not sender:
        fields = header_fields(stored.raw)
        senders = _header_addresses([value for name, value in fields if name.lower() == "from"])
        sender = senders[0] if senders else ""
    if not sender:
        return _json({"error": "the message has no envelope sender or From address"}, 400)
    server = request.app.get(SERVER_KEY)
    try:
        result = await asyncio.to_thread(release, relay, stored.raw, sender, recipients)
    except ValueError as exc:  # a bad address (BadHeaderError is a ValueError)
        return _json({"error": str(exc)}, 400)
    except Exception as exc:
        if server is not None:  # the full story, relay's words included, for the terminal
            from ..describe import describe

            server.warn(
                f"release of {stored.id} to {relay.name} failed: "
                f"{describe(exc, relay.config.host, relay.config.port)}"
            )
        return _json({"error": f"release to {relay.name} failed: {failure_text(exc)}"}, 502)
    return _json(
        {
            "sent": result.sent,
            "relay": relay.name,
            "mail_from": sender,
            "accepted": result.accepted,
            "refused": result.refused,
            "error": result.error,
        }
    )


async def api_events(request: web.Request) -> web.StreamResponse:
    """Server-sent events: ``change`` (data: {"total": n}) whenever messages arrive or
    are deleted, at most every EventHub.interval seconds; a comment every 15 s keeps
    proxies from closing the stream."""
    hub = request.app[HUB_KEY]
    store = _store(request)
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Accel-Buffering"] = "no"
    await response.prepare(request)
    seen = hub.version
    await response.write(
        f"retry: 1000\nevent: hello\ndata: {json.dumps({'total': len(store)})}\n\n".encode()
    )
    try:
        while not hub.closing:
            await hub.wait(seen, 15)
            if hub.closing:
                break
            if hub.version == seen:
                await response.write(b": keep-alive\n\n")
                continue
            seen = hub.version
            await response.write(
                f"event: change\ndata: {json.dumps({'total': len(store)})}\n\n".encode()
            )
            await asyncio.sleep(hub.interval)
    except ConnectionResetError:  # the page went away
        pass
    return response


def make_app(
    store: MessageStore, server: DevServer | None = None, allow: Iterable[str] = ()
) -> web.Application:
    app = web.Application(middlewares=[_guard], client_max_size=64 * 1024)
    app[STORE_KEY] = store
    hub = EventHub()
    app[HUB_KEY] = hub
    app[ALLOW_KEY] = frozenset(_host_name(name) for name in allow)
    app[TOKEN_KEY] = server.api_token if server is not None else None
    app[RELEASE_KEY] = server.release_policy if server is not None else ReleasePolicy()
    if server is not None:
        app[SERVER_KEY] = server
    app.on_response_prepare.append(_security_headers)

    def on_change(event: str, message: StoredMessage | None) -> None:
        if server is not None:
            server.call_in_loop(hub.changed)
        else:
            hub.changed()

    store.add_listener(on_change)

    async def on_shutdown(app: web.Application) -> None:
        hub.close()

    app.on_shutdown.append(on_shutdown)
    app.add_routes(
        [
            web.get("/", inbox),
            web.get("/_list", inbox_fragment),
            web.get("/static/{name}", static),
            web.get("/messages/{id}", message_view),
            web.get("/messages/{id}/html", html_part),
            web.get("/messages/{id}/parts/{index}", part_content),
            web.get("/messages/{id}/raw", raw_view),
            web.get("/api/events", api_events),
            web.get("/api/messages", api_list),
            web.delete("/api/messages", api_delete_all),
            web.get("/api/messages/{id}", api_detail),
            web.delete("/api/messages/{id}", api_delete),
            web.get("/api/messages/{id}/raw", api_raw),
            web.post("/api/messages/{id}/release", api_release),
        ]
    )
    return app
