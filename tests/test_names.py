"""``mailwright.outbox`` is the locmem list (Django's API); the durable queue package is
``mailwright.queue``, so importing it can never replace the list."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def test_importing_the_queue_package_keeps_the_locmem_outbox() -> None:
    code = textwrap.dedent(
        """
        import mailwright
        import mailwright.queue
        import mailwright.backends.queue
        from mailwright import EmailMessage, get_connection

        with get_connection("mailwright.backends.locmem.EmailBackend") as connection:
            message = EmailMessage("s", "b", "a@example.com", ["b@example.com"])
            sent = connection.send_messages([message])
        assert sent == 1, sent
        assert isinstance(mailwright.outbox, list), type(mailwright.outbox)
        assert [m.subject for m in mailwright.outbox] == ["s"]
        print("ok")
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
