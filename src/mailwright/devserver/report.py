"""What the catcher prints for each message: a readable summary and the text body."""

from __future__ import annotations

from .store import PartInfo, StoredMessage

__all__ = ["format_message", "human_size", "text_body"]

RULE = "-" * 79


def human_size(size: int) -> str:
    if size < 1024:
        return f"{size} B"
    if size < 1024 * 1024:
        return f"{size / 1024:.1f} KB"
    return f"{size / (1024 * 1024):.1f} MB"


def _describe(part: PartInfo) -> str:
    details = [human_size(part.size)]
    if part.disposition:
        details.append(part.disposition)
    name = f" {part.filename}" if part.filename else ""
    return f"{part.content_type}{name} ({', '.join(details)})"


def text_body(stored: StoredMessage) -> str:
    """The plain-text body, decoded; a note when there is none or it cannot be read."""
    try:
        parsed = stored.parsed()
        body = parsed.get_body(("plain",))
        if body is None:
            html = parsed.get_body(("html",))
            return "(no text part; HTML only)" if html is not None else "(no text body)"
        text = body.get_content()
    except Exception as exc:  # hostile input can make the stdlib parser raise anything
        return f"(the text cannot be decoded: {type(exc).__name__}: {exc})"
    return str(text).replace("\r\n", "\n").rstrip("\n")


def format_message(stored: StoredMessage) -> str:
    summary = stored.summary
    lines = [
        f"{RULE}",
        f"Message {stored.id}   envelope: {stored.mail_from or '<>'} -> "
        f"{', '.join(stored.rcpt_tos)}",
    ]
    if stored.auth_user is not None:
        lines.append(f"AUTH:    {stored.auth_user}")
    lines += [
        f"From:    {summary.from_header}",
        f"To:      {summary.to_header}",
        f"Subject: {summary.subject}",
        f"Size:    {human_size(stored.size)}",
    ]
    if summary.parse_error:
        lines.append(f"Error:   {summary.parse_error}")
    lines += [
        "Parts:   " + ("; ".join(_describe(part) for part in stored.parts) or "(none)"),
        "",
        text_body(stored),
    ]
    return "\n".join(lines)
