"""console, filebased, locmem, dummy, custom backends and get_connection."""

from __future__ import annotations

import io
import threading
from email import message_from_bytes, policy
from pathlib import Path

import pytest

import mailwright
from mailwright import (
    BadHeaderError,
    EmailMessage,
    ImproperlyConfigured,
    configure,
    get_connection,
    send_mail,
)
from mailwright.backends.base import BaseEmailBackend

SEPARATOR = "-" * 79


def sample(subject: str = "Subject", to: str = "to@example.com") -> EmailMessage:
    return EmailMessage(subject, "Body", "from@example.com", [to])


# --- console ---


def test_console_writes_messages_and_separator() -> None:
    stream = io.StringIO()
    connection = get_connection("mailwright.backends.console.EmailBackend", stream=stream)
    assert connection.send_messages([sample("First"), sample("Second")]) == 2
    output = stream.getvalue()
    chunks = output.split(SEPARATOR + "\n")
    assert chunks[-1] == ""
    assert len(chunks) == 3
    first = message_from_bytes(chunks[0].encode(), policy=policy.default)
    assert first["Subject"] == "First"
    assert first.get_content().strip() == "Body"
    assert "\r" not in output


def test_console_defaults_to_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    configure(EMAIL_BACKEND="mailwright.backends.console.EmailBackend")
    assert send_mail("Hello console", "Body", "a@example.com", ["b@example.com"]) == 1
    out = capsys.readouterr().out
    assert "Subject: Hello console" in out
    assert out.rstrip("\n").endswith(SEPARATOR)


def test_console_is_safe_between_threads() -> None:
    stream = io.StringIO()
    connection = get_connection("console", stream=stream)

    def send(n: int) -> None:
        connection.send_messages([sample(f"thread {n} message {i}") for i in range(20)])

    threads = [threading.Thread(target=send, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    chunks = stream.getvalue().split(SEPARATOR + "\n")[:-1]
    assert len(chunks) == 80
    subjects = {message_from_bytes(c.encode(), policy=policy.default)["Subject"] for c in chunks}
    assert subjects == {f"thread {n} message {i}" for n in range(4) for i in range(20)}


def test_console_fail_silently_and_errors() -> None:
    stream = io.StringIO()
    bad = sample("bad\nBcc: x@example.com")
    with pytest.raises(BadHeaderError):
        get_connection("console", stream=stream).send_messages([bad])
    assert get_connection("console", stream=stream, fail_silently=True).send_messages([bad]) == 0
    assert stream.getvalue() == ""


# --- filebased ---


def test_filebased_new_file_per_session(tmp_path: Path) -> None:
    out = tmp_path / "mail" / "nested"
    connection = get_connection("mailwright.backends.filebased.EmailBackend", file_path=out)
    assert out.is_dir()  # created
    assert connection.send_messages([sample("one"), sample("two")]) == 2
    assert connection.send_messages([sample("three")]) == 1
    with connection:
        connection.send_messages([sample("four")])
        connection.send_messages([sample("five")])
    files = sorted(out.iterdir())
    assert len(files) == 3
    contents = [f.read_bytes() for f in files]
    subjects = sorted(
        message_from_bytes(chunk, policy=policy.default)["Subject"]
        for content in contents
        for chunk in content.split(SEPARATOR.encode() + b"\n")
        if chunk.strip()
    )
    assert subjects == ["five", "four", "one", "three", "two"]
    assert any(content.count(SEPARATOR.encode()) == 2 for content in contents)


def test_filebased_uses_setting(tmp_path: Path) -> None:
    configure(
        EMAIL_BACKEND="mailwright.backends.filebased.EmailBackend", EMAIL_FILE_PATH=str(tmp_path)
    )
    assert send_mail("s", "b", "a@example.com", ["b@example.com"]) == 1
    (written,) = tmp_path.iterdir()
    assert b"Subject: s" in written.read_bytes()


def test_filebased_path_that_is_a_file(tmp_path: Path) -> None:
    not_a_dir = tmp_path / "file.txt"
    not_a_dir.write_text("x")
    with pytest.raises(ImproperlyConfigured, match="not a directory"):
        get_connection("filebased", file_path=not_a_dir)
    with pytest.raises(ImproperlyConfigured, match="EMAIL_FILE_PATH"):
        get_connection("filebased", file_path=not_a_dir / "below")


def test_filebased_without_path() -> None:
    with pytest.raises(ImproperlyConfigured, match="EMAIL_FILE_PATH"):
        get_connection("filebased")


# --- locmem ---


def test_locmem_outbox() -> None:
    configure(EMAIL_BACKEND="mailwright.backends.locmem.EmailBackend")
    assert send_mail("First", "b", "a@example.com", ["b@example.com"]) == 1
    assert mailwright.send_mass_mail([("Second", "b", "a@example.com", ["c@example.com"])]) == 1
    assert [m.subject for m in mailwright.outbox] == ["First", "Second"]
    assert mailwright.outbox[0].to == ["b@example.com"]
    mailwright.outbox.clear()
    assert send_mail("Third", "b", "a@example.com", ["b@example.com"]) == 1
    assert [m.subject for m in mailwright.outbox] == ["Third"]


def test_locmem_stores_copies_and_validates() -> None:
    connection = get_connection("locmem")
    msg = sample("original")
    connection.send_messages([msg])
    msg.subject = "changed later"
    assert mailwright.outbox[0].subject == "original"
    with pytest.raises(BadHeaderError):
        connection.send_messages([sample("bad\r\nX: y")])
    assert len(mailwright.outbox) == 1


def test_locmem_outbox_may_be_replaced() -> None:
    connection = get_connection("locmem")
    mailwright.outbox = []
    connection.send_messages([sample()])
    assert len(mailwright.outbox) == 1


# --- dummy ---


def test_dummy_sends_nothing_and_counts() -> None:
    connection = get_connection("mailwright.backends.dummy.EmailBackend")
    assert connection.send_messages([sample(), sample()]) == 2
    assert mailwright.outbox == []


# --- custom backends and get_connection ---


class RecordingBackend(BaseEmailBackend):
    instances: list[RecordingBackend] = []

    def __init__(self, fail_silently: bool = False, **kwargs: object) -> None:
        super().__init__(fail_silently=fail_silently)
        self.kwargs = kwargs
        self.sent: list[EmailMessage] = []
        self.opened = self.closed = 0
        RecordingBackend.instances.append(self)

    def open(self) -> bool:
        self.opened += 1
        return True

    def close(self) -> None:
        self.closed += 1

    def send_messages(self, email_messages):  # type: ignore[no-untyped-def]
        self.sent.extend(email_messages)
        return len(email_messages)


def test_custom_backend_by_dotted_path() -> None:
    path = f"{__name__}.RecordingBackend"
    connection = get_connection(path, fail_silently=True, extra="value")
    assert isinstance(connection, RecordingBackend)
    assert connection.fail_silently is True
    assert connection.kwargs == {"extra": "value"}
    with connection as entered:
        assert entered is connection
        assert connection.opened == 1
    assert connection.closed == 1
    configure(EMAIL_BACKEND=path)
    assert send_mail("s", "b", "a@example.com", ["b@example.com"]) == 1
    assert RecordingBackend.instances[-1].sent[0].subject == "s"


def test_base_backend_requires_send_messages() -> None:
    with pytest.raises(NotImplementedError):
        BaseEmailBackend().send_messages([])


@pytest.mark.parametrize(
    "path", ["no.such.module.Backend", "mailwright.backends.smtp.NoSuchClass", "nodots"]
)
def test_backend_path_that_does_not_import(path: str) -> None:
    with pytest.raises(ImproperlyConfigured, match=path):
        get_connection(path)


def test_backend_that_is_not_a_backend() -> None:
    with pytest.raises(ImproperlyConfigured, match="BaseEmailBackend"):
        get_connection("mailwright.message.EmailMessage")


def test_email_url_selects_backend(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("EMAIL_URL", "locmem:")
    assert send_mail("via url", "b", "a@example.com", ["b@example.com"]) == 1
    assert mailwright.outbox[0].subject == "via url"
    monkeypatch.setenv("EMAIL_URL", f"file://{tmp_path}")
    assert send_mail("to file", "b", "a@example.com", ["b@example.com"]) == 1
    assert len(list(tmp_path.iterdir())) == 1
