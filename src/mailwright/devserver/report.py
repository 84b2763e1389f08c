"""What the catcher prints for each message: a readable summary and the text body."""

from __future__ import annotations

from .store import PartInfo, StoredMessage

__all__ = ["format_message", "human_size"]

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
    """The plain-text body, decoded; a note when there is none."""
    parsed = stored.parsed()
    body = parsed.get_body(("plain",))
    if body is None:
        html = parsed.get_body(("html",))
        return "(no text part; HTML only)" if html is not None else "(no text body)"
    try:
        text = body.get_content()
    except (LookupError, UnicodeError) as exc:
        return f"(text part cannot be decoded: {exc})"
    return text.replace("\r\n", "\n").rstrip("\n")


def format_message(stored: StoredMessage) -> str:
    lines = [
        f"{RULE}",
        f"Message {stored.id}   envelope: {stored.mail_from or '<>'} -> "
        f"{', '.join(stored.rcpt_tos)}",
        f"From:    {stored.from_header}",
        f"To:      {stored.to_header}",
        f"Subject: {stored.subject}",
        f"Size:    {human_size(stored.size)}",
        "Parts:   " + ("; ".join(_describe(part) for part in stored.parts) or "(none)"),
        "",
        text_body(stored),
    ]
    return "\n".join(lines)
