"""``mailwright queue``: look into and manage the durable outbox (EMAIL_QUEUE_PATH).

    mailwright queue status
    mailwright queue list [--state S] [--limit N]
    mailwright queue show ID [--raw]
    mailwright queue retry ID [ID ...] | --all-failed
    mailwright queue purge --state sent|failed --older-than AGE

Each prints for people, or JSON with ``--json``. Times in JSON are ISO 8601 (UTC).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from .common import EXIT_FAILED, EXIT_OK, fail, positive_int

if TYPE_CHECKING:
    from ..queue import Detail, Outbox, Status, Summary

__all__ = ["register"]

_TIME_FIELDS = ("created", "due", "since", "overdue_since", "next_retry", "at")


def _iso(stamp: float | None) -> str | None:
    if stamp is None:
        return None
    return datetime.fromtimestamp(stamp, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _json_times(value: Any) -> Any:
    """``value`` with every timestamp field as ISO 8601 text."""
    if isinstance(value, dict):
        return {
            key: _iso(item) if key in _TIME_FIELDS and isinstance(item, int | float) else
            _json_times(item)
            for key, item in value.items()
        }  # fmt: skip
    if isinstance(value, list):
        return [_json_times(item) for item in value]
    return value


def _print_json(value: Any) -> None:
    print(json.dumps(_json_times(value), indent=2, ensure_ascii=False))


def _local(stamp: float) -> str:
    return datetime.fromtimestamp(stamp).strftime("%Y-%m-%d %H:%M:%S")


def _relative(stamp: float, now: float) -> str:
    seconds = stamp - now
    span = abs(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if span >= size or unit == "s":
            amount = f"{span / size:.0f}{unit}"
            break
    return f"in {amount}" if seconds > 0 else f"{amount} ago"


def _open(args: argparse.Namespace) -> Outbox:
    from ..conf import settings
    from ..queue import Outbox

    path = args.path or settings.EMAIL_QUEUE_PATH
    if not path:
        from ..exceptions import ImproperlyConfigured

        raise ImproperlyConfigured("EMAIL_QUEUE_PATH is not set (or give --path FILE)")
    return Outbox(path, create=False)


# --- status ---


def _status(outbox: Outbox, args: argparse.Namespace) -> int:
    # A damaged file fails here, as queueing and the worker fail on it, so that
    # monitoring sees it (the counts alone are kept apart and may still read fine).
    checked = outbox.check(CHECK_BUDGET)
    now = time.time()
    status = outbox.status(now)
    if args.json:
        _print_json({"path": outbox.path, **status.to_dict(), "checked": checked})
        return EXIT_OK
    print(_status_text(outbox.path, status, now))
    if not checked:
        print(
            f"file check: cut short after {CHECK_BUDGET:g} s (a large outbox); the pages "
            "it read are sound"
        )
    return EXIT_OK


#: Seconds ``queue status`` spends checking the file at most.
CHECK_BUDGET = 1.0


def _status_text(path: str, status: Status, now: float) -> str:
    counts = status.counts
    queued = f"{counts['queued']:,}"
    if counts["queued"]:
        queued += f" ({status.due_now:,} due now, {status.waiting:,} waiting to retry"
        if status.next_retry is not None:
            queued += f"; next retry {_relative(status.next_retry, now)}"
        queued += ")"
    lines = [
        f"outbox:  {path}",
        f"queued:  {queued}",
        f"sending: {counts['sending']:,}",
        f"sent:    {counts['sent']:,}",
        f"failed:  {counts['failed']:,}",
        f"total:   {status.total:,}",
    ]
    if status.overdue_since is not None:
        lines.append(f"longest wait for a worker: due {_relative(status.overdue_since, now)}")
    return "\n".join(lines)


# --- list ---


def _to(recipients: list[str]) -> str:
    if not recipients:
        return "-"
    more = f" (+{len(recipients) - 1})" if len(recipients) > 1 else ""
    return recipients[0] + more


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _list(outbox: Outbox, args: argparse.Namespace) -> int:
    messages = outbox.list_messages(args.state, limit=args.limit)
    if args.json:
        _print_json([message.to_dict() for message in messages])
        return EXIT_OK
    if not messages:
        print(f"no {args.state} messages" if args.state else "no messages")
        return EXIT_OK
    print(_list_text(messages))
    return EXIT_OK


def _list_text(messages: list[Summary]) -> str:
    now = time.time()
    lines = [f"{'ID':>8}  {'STATE':<7}  {'TRIES':>5}  {'CREATED':<19}  {'NEXT / DONE':<11}  "
             f"{'TO':<30}  SUBJECT"]  # fmt: skip
    for m in messages:
        when = _relative(m.due, now)
        lines.append(
            f"{m.id:>8}  {m.state:<7}  {m.attempts:>5}  {_local(m.created)}  {when:<11}  "
            f"{_clip(_to(m.recipients), 30):<30}  {_clip(m.subject, 40)}"
        )
        if m.last_error and m.state in ("queued", "failed"):
            lines.append(f"{'':>8}  {_clip(m.last_error, 110)}")
    return "\n".join(lines)


# --- show ---


def _show(outbox: Outbox, args: argparse.Namespace) -> int:
    if args.raw:
        data = outbox.data(args.id)
        if data is None:
            return fail("queue show", f"no message {args.id} in {outbox.path}")
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        return EXIT_OK
    detail = outbox.show(args.id)
    if detail is None:
        return fail("queue show", f"no message {args.id} in {outbox.path}")
    if args.json:
        _print_json(detail.to_dict())
        return EXIT_OK
    print(_show_text(detail))
    return EXIT_OK


def _show_text(d: Detail) -> str:
    now = time.time()
    due = {
        "queued": "next attempt",
        "sending": "lease ends",
        "sent": "finished",
        "failed": "finished",
    }[d.state]
    lines = [
        f"message {d.id}: {d.state}",
        f"created:       {_local(d.created)} ({_relative(d.created, now)})",
        f"{due + ':':<14} {_local(d.due)} ({_relative(d.due, now)})",
        f"attempts:      {d.attempts}",
        f"from:          {d.sender}",
        f"subject:       {d.subject}",
        f"size:          {d.size:,} bytes",
    ]
    if d.relay:
        lines.append(f"relay:         mailer {d.relay!r}")
    if d.owner:
        lines.append(f"worker:        {d.owner}")
    lines.append("recipients:")
    width = max(len(address) for address in d.recipients)
    for address in d.recipients:
        result = d.results.get(address)
        if result is None:
            lines.append(f"  {address:<{width}}  waiting")
            continue
        reply = f"{result.get('code') or ''} {result.get('reply', '')}".strip()
        when = f"{_local(result['at'])}, attempt {result.get('attempt', '?')}"
        lines.append(f"  {address:<{width}}  {result['status']:<8}  {when}  {reply}".rstrip())
    if d.last_error:
        lines.append(f"last error:    {d.last_error}")
    return "\n".join(lines)


# --- retry ---


def _retry(outbox: Outbox, args: argparse.Namespace) -> int:
    if args.all_failed == bool(args.ids):
        return fail("queue retry", "give message IDs or --all-failed (not both)")
    outcome = outbox.retry(None if args.all_failed else args.ids)
    done = {id: text for id, text in outcome.items() if text.startswith(("queued", "due"))}
    if args.json:
        _print_json({"retried": len(done), "messages": {str(k): v for k, v in outcome.items()}})
    elif args.all_failed and not outcome:
        print("no failed messages")
    else:
        for id, text in outcome.items():
            print(f"message {id}: {text}")
    return EXIT_OK if len(done) == len(outcome) else EXIT_FAILED


# --- purge ---


def _purge(outbox: Outbox, args: argparse.Namespace) -> int:
    from ..conf.registry import parse_duration

    try:
        older_than = parse_duration(args.older_than)
    except ValueError as exc:
        return fail("queue purge", f"--older-than: {exc}")
    deleted = outbox.purge(args.state, older_than)
    if args.json:
        _print_json({"purged": deleted, "state": args.state, "older_than": older_than})
    else:
        plural = "" if deleted == 1 else "s"
        print(
            f"purged {deleted:,} {args.state} message{plural} finished over {args.older_than} ago"
        )
    return EXIT_OK


def _run(
    action: Callable[[Outbox, argparse.Namespace], int],
) -> Callable[[argparse.Namespace], int]:
    def handler(args: argparse.Namespace) -> int:
        from ..exceptions import ImproperlyConfigured
        from ..queue import OutboxError

        try:
            outbox = _open(args)
        except (ImproperlyConfigured, OutboxError) as exc:
            return fail(f"queue {args.action}", str(exc))
        try:
            return action(outbox, args)
        except OutboxError as exc:
            return fail(f"queue {args.action}", str(exc))
        finally:
            outbox.close()

    return handler


def register(commands: Any) -> None:
    from ..queue.states import STATES

    queue = commands.add_parser(
        "queue",
        help="look into and manage the durable outbox (EMAIL_QUEUE_PATH)",
        description="Look into and manage the outbox the queue backend stores messages in.",
    )
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--path", metavar="FILE", help="the outbox (default EMAIL_QUEUE_PATH)")
    common.add_argument("--json", action="store_true", help="print JSON")
    actions = queue.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True

    status = actions.add_parser(
        "status",
        parents=[common],
        help="how many messages are in each state",
        description="How many messages are queued, being sent, sent and failed, and how "
        "long the oldest due message has waited for a worker.",
    )
    status.set_defaults(handler=_run(_status))

    listing = actions.add_parser(
        "list",
        parents=[common],
        help="list messages",
        description="List messages: those still to deliver (queued, sending) in the order "
        "they are due, then sent and failed ones, most recently finished first.",
    )
    listing.add_argument("--state", choices=STATES, help="only messages in this state")
    listing.add_argument(
        "--limit", type=positive_int(), default=50, metavar="N", help="(default 50)"
    )
    listing.set_defaults(handler=_run(_list))

    show = actions.add_parser(
        "show",
        parents=[common],
        help="one message: its recipients, replies and attempts",
        description="One message: its state, sender, each recipient with the server's "
        "last reply, attempts and times; --raw writes the stored message bytes instead.",
    )
    show.add_argument("id", type=positive_int("a message ID (a number)"), metavar="ID")
    show.add_argument("--raw", action="store_true", help="write the stored message bytes")
    show.set_defaults(handler=_run(_show))

    retry = actions.add_parser(
        "retry",
        parents=[common],
        help="queue failed messages again",
        description="Queue failed messages again, due now, for the recipients that have not "
        "accepted them, with a fresh EMAIL_QUEUE_MAX_AGE; a queued message is made due now.",
    )
    retry.add_argument("ids", type=positive_int("a message ID (a number)"), nargs="*", metavar="ID")
    retry.add_argument("--all-failed", action="store_true", help="every failed message")
    retry.set_defaults(handler=_run(_retry))

    purge = actions.add_parser(
        "purge",
        parents=[common],
        help="delete old sent or failed messages",
        description="Delete sent or failed messages that finished more than AGE ago "
        "(queued messages are mail not yet delivered: they cannot be purged).",
    )
    purge.add_argument("--state", choices=("sent", "failed"), required=True)
    purge.add_argument(
        "--older-than", required=True, metavar="AGE", help="like 90s, 15m, 12h, 7d or 2w"
    )
    purge.set_defaults(handler=_run(_purge))
