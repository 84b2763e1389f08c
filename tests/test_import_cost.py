"""What ``import mailwright`` and the quick commands load.

A command-line call, a serverless function or ``mailwright queue status`` should not pay
for the SMTP engine, the MIME builder, TLS or asyncio before it does anything. Counted in
modules, not seconds, so a busy machine cannot make this flaky; ``bench/startup.py``
measures the time.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

HEAVY = (
    "asyncio",
    "email.message",
    "email.headerregistry",
    "smtplib",
    "socket",
    "ssl",
    "unittest",
    "mailwright.message",
    "mailwright.smtp",
    "mailwright.bulk",
    "mailwright.api",
)


def loaded_after(code: str) -> set[str]:
    script = textwrap.dedent(
        """
        import json, sys
        before = set(sys.modules)
        {code}
        print(json.dumps(sorted(set(sys.modules) - before)))
        """
    ).format(code=textwrap.indent(textwrap.dedent(code), ""))
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    return set(json.loads(result.stdout.splitlines()[-1]))


def test_import_mailwright_loads_no_engine() -> None:
    loaded = loaded_after("import mailwright")
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))
    assert not [name for name in loaded if name.startswith("mailwright.")]


def test_names_load_on_first_use() -> None:
    loaded = loaded_after(
        """
        import mailwright
        assert mailwright.EmailMessage.__name__ == "EmailMessage"
        assert callable(mailwright.send_mail)
        assert "send_mail" in dir(mailwright)
        from mailwright import SMTPUTF8NotSupportedError, settings
        import smtplib
        assert issubclass(SMTPUTF8NotSupportedError, smtplib.SMTPNotSupportedError)
        from mailwright.exceptions import SMTPUTF8NotSupportedError as same
        assert same is SMTPUTF8NotSupportedError
        assert settings.EMAIL_PORT == 25
        """
    )
    assert {"mailwright.api", "mailwright.message"} <= loaded


def test_unknown_name_is_an_attribute_error() -> None:
    loaded_after(
        """
        import mailwright, mailwright.queue, mailwright.exceptions
        for module in (mailwright, mailwright.queue, mailwright.exceptions):
            try:
                module.no_such_name
            except AttributeError as exc:
                assert "no_such_name" in str(exc)
            else:
                raise AssertionError(module)
        """
    )


def test_help_and_queue_status_load_no_engine(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite3"
    loaded = loaded_after(
        f"""
        import contextlib, io
        from mailwright.cli import main
        from mailwright.queue import Outbox
        Outbox({str(path)!r}).close()
        for argv in (["--help"], ["queue", "status", "--path", {str(path)!r}]):
            with contextlib.redirect_stdout(io.StringIO()):
                try:
                    status = main(argv)
                except SystemExit as exc:
                    status = exc.code
            assert status == 0, (argv, status)
        """
    )
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))
