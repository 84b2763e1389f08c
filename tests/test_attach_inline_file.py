"""``attach_inline_file(path)``: ``attach_inline`` with the content read from disk."""

from __future__ import annotations

from email import message_from_bytes, policy
from pathlib import Path

import pytest

from mailwright import EmailMultiAlternatives

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256))


def test_attach_inline_file(tmp_path: Path) -> None:
    logo = tmp_path / "logo.png"
    logo.write_bytes(PNG)
    message = EmailMultiAlternatives("Hi", "plain", "a@example.com", ["b@example.com"])
    cid = message.attach_inline_file(logo)
    assert message.attach_inline_file(str(logo), "image/x-custom", cid="second@example") == (
        "second@example"
    )
    message.attach_alternative(f'<img src="cid:{cid}">', "text/html")
    parsed = message_from_bytes(message.as_bytes(), policy=policy.default)
    related = next(p for p in parsed.walk() if p.get_content_type() == "multipart/related")
    html, image, custom = related.iter_parts()
    assert html.get_content() == f'<img src="cid:{cid}">'
    assert image["Content-ID"] == f"<{cid}>"
    assert image.get_content_type() == "image/png"  # guessed from the file name
    assert image.get_filename() == "logo.png"
    assert image.get_content() == PNG
    assert custom.get_content_type() == "image/x-custom"


def test_attach_inline_file_missing(tmp_path: Path) -> None:
    message = EmailMultiAlternatives("Hi", "plain", "a@example.com", ["b@example.com"])
    with pytest.raises(FileNotFoundError):
        message.attach_inline_file(tmp_path / "missing.png")
    assert message.inline_attachments == []
