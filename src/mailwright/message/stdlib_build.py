"""Build a stdlib ``email.message.EmailMessage`` from a MIME tree.

This is what ``EmailMessage.message()`` returns: a normal stdlib object users can
inspect, change and serialise. Bodies and structure go through the stdlib's own content
manager; header fields are stored already encoded and folded (``set_raw``) with a policy
that never refolds them, so ``as_bytes()`` keeps mailwright's lossless header encoding.
"""

from __future__ import annotations

import email.policy
from email import message_from_bytes
from email.message import EmailMessage, Message, MIMEPart

from .headers import disposition_fields
from .mime import BinaryPart, ForeignPart, MessagePart, Multipart, Part, TextPart

__all__ = ["POLICY", "POLICY_UTF8", "build"]

# SMTP: CRLF line breaks. refold_source="none": fields stored raw are written as stored.
POLICY = email.policy.SMTP.clone(refold_source="none")
POLICY_UTF8 = email.policy.SMTPUTF8.clone(refold_source="none")


def _add_disposition(
    target: MIMEPart, disposition: str | None, filename: str | None, content_id: str | None
) -> None:
    # Written by mailwright's own encoder, as on the wire: the stdlib's set_param
    # refuses file names holding characters str.splitlines() breaks on (\x0b,
    # \x1c, U+2028...), which RFC 2231 encodes without trouble.
    for name, value in disposition_fields(disposition, filename, content_id):
        target.set_raw(name, value)


def _fill(target: MIMEPart, part: Part, policy: email.policy.Policy) -> None:
    if isinstance(part, TextPart):
        # Not set_content(): it appends a line break to every text. The payload is
        # stored encoded, exactly as the wire carries it.
        target.set_raw("Content-Type", f'text/{part.subtype}; charset="{part.charset}"')
        target.set_raw("Content-Transfer-Encoding", part.cte)
        target.set_payload(part.encoded.decode("ascii"))
        _add_disposition(target, part.disposition, part.filename, part.content_id)
    elif isinstance(part, BinaryPart):
        target.set_content(part.data, part.maintype, part.subtype)
        _add_disposition(target, part.disposition, part.filename, part.content_id)
    elif isinstance(part, MessagePart):
        inner = message_from_bytes(part.data, _class=EmailMessage, policy=policy)
        target.set_content(inner, cte=part.cte)
        _add_disposition(target, part.disposition, part.filename, None)
    elif isinstance(part, Multipart):
        target["Content-Type"] = f"multipart/{part.subtype}"
        children: list[Message | str] = []
        for child in part.children:
            if isinstance(child, ForeignPart):
                children.append(child.part)
                continue
            sub = MIMEPart(policy=policy)
            _fill(sub, child, policy)
            children.append(sub)
        target.set_payload(children)
    else:
        raise TypeError("a ready-made MIME part can only sit inside a multipart")


def build(
    fields: list[tuple[str, str]],
    root: Part,
    *,
    utf8: bool = False,
    policy: email.policy.Policy | None = None,
) -> EmailMessage:
    """The stdlib message for ``fields`` (name, folded value) and the tree ``root``,
    with ``policy`` (by default SMTP's, CRLF line breaks)."""
    if policy is None:
        policy = POLICY_UTF8 if utf8 else POLICY
    # The content is built apart and then moved under the fields: set_content() clears
    # every Content-* field first, which would drop one a user gave (Content-Language).
    content = MIMEPart(policy=policy)
    _fill(content, root, policy)
    msg = EmailMessage(policy=policy)
    for name, value in fields:
        msg.set_raw(name, value)
    msg.set_raw("MIME-Version", "1.0")
    for name, value in content.raw_items():
        msg.set_raw(name, value)
    msg.set_payload(content.get_payload())
    return msg
