"""DKIM signing on every sending path, verified by two independent implementations
(dkimpy and Perl's Mail::DKIM, see ``dkimcheck``) with their DNS answered locally.

Every message is sent for real, to an SMTP server on 127.0.0.1, and checked as it
arrived there: exactly one signature, and it verifies. The set of messages covers plain
text, SMTPUTF8 with 8bit content, long folded headers, attachments and inline images,
and one-click unsubscribe per recipient.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import mailwright
from conftest import ServerFactory
from dkimcheck import (
    DOMAIN,
    Key,
    assert_verified,
    dkimpy_verify,
    key,
    perl_available,
    perl_verify,
    signatures,
    signed_headers,
    zone,
)
from mailwright import EmailMessage, EmailMultiAlternatives, ImproperlyConfigured, get_connection
from mailwright.exceptions import DKIMSigningError
from mailwright.message.dkim import DKIMSigner, signer
from smtpserver import SMTPTestServer

KINDS = ["rsa", "ed25519"]
# In CI (and wherever Mail::DKIM is installed) the second verifier is required.
PERL = perl_available()
if os.environ.get("CI") and not PERL:  # pragma: no cover - a broken CI machine
    raise RuntimeError("Mail::DKIM (libmail-dkim-perl) is needed for the DKIM tests")

IMAGE = bytes(range(256)) * 4
INNER = "From: a@example.com\r\nSubject: innen\r\n\r\nÜberall 8bit ✓\r\n".encode()


def sample(tag: str, n: int = 0) -> list[EmailMessage]:
    """The messages every path sends: plain, SMTPUTF8 and 8bit, long headers, and
    attachments with an inline image; each with its own one-click unsubscribe URL."""
    plain = EmailMessage(
        f"Plain {tag}", "Hello.\n.a leading dot\n", f"News <news@{DOMAIN}>", ["ann@example.org"]
    )
    utf8 = EmailMessage(
        f"Grüße {tag} ✓",
        "Überall Umlaute, ünd Zeilen.\n" * 3,
        f"Jörg <jörg@{DOMAIN}>",
        ["用户@example.org"],
        headers={"X-Note": "naïve ✓"},
    )
    utf8.attach("inner.eml", INNER, "message/rfc822")  # an 8bit part
    long = EmailMessage(
        f"Long {tag} " + "word " * 60,
        "x" * 2000 + "\n",  # one line longer than SMTP allows: encoded
        f"news@{DOMAIN}",
        [f"user{i}@example.org" for i in range(12)],
        headers={
            "In-Reply-To": "<CAKq8" + "x" * 120 + "@mail.gmail.com>",
            "References": " ".join(f"<{i}.{'r' * 60}@mail.gmail.com>" for i in range(8)),
            "X-Long": "value " * 80,
        },
    )
    rich = EmailMultiAlternatives(
        f"Rich {tag}", "Text version\n", f"news@{DOMAIN}", ["bob@example.org"]
    )
    rich.attach_alternative('<p>HTML <img src="cid:logo@x"></p>', "text/html")
    rich.attach_inline("logo.png", IMAGE, "image/png", cid="logo@x")
    rich.attach("report.bin", IMAGE, "application/octet-stream")
    rich.attach("notes.txt", "ünïcode notes\n", "text/plain")
    messages = [plain, utf8, long, rich]
    for index, message in enumerate(messages):
        message.list_unsubscribe(
            f"https://{DOMAIN}/unsubscribe/{tag}/{n}/{index}?t=abc",
            f"unsubscribe+{index}@{DOMAIN}",
        )
    return messages


def check_arrived(server: Any, count: int, *keys: Key) -> list[bytes]:
    received = server.wait_for(count)
    data = [r.data for r in received]
    assert len(data) == count
    assert_verified(data, *keys, perl=PERL)
    for message in data:
        headers = signed_headers(message)
        assert headers.count("from") == 2  # oversigned, as are the unsubscribe fields
        assert headers.count("list-unsubscribe") == headers.count("list-unsubscribe-post") == 2
        for name in ("to", "subject", "date", "message-id", "mime-version", "content-type"):
            assert name in headers
    return data


@pytest.fixture
def server(start_server: ServerFactory) -> SMTPTestServer:
    server = start_server()
    mailwright.configure(EMAIL_HOST=server.host, EMAIL_PORT=server.port)
    return server


# --- every path ---


@pytest.mark.parametrize("kind", KINDS)
def test_send_mail_signs_from_settings(server: SMTPTestServer, kind: str) -> None:
    mailwright.configure(**key(kind).settings, DEFAULT_FROM_EMAIL=f"site@{DOMAIN}")
    assert mailwright.send_mail("Hi", "Body ✓\n", None, ["a@example.org"], html_message="<b>")
    assert_verified([r.data for r in server.wait_for(1)], key(kind), perl=PERL)


@pytest.mark.parametrize("kind", KINDS)
def test_send_messages_sync(server: SMTPTestServer, kind: str) -> None:
    backend = get_connection(**key(kind).options)
    assert backend.send_messages(sample("sync")) == 4
    check_arrived(server, 4, key(kind))


@pytest.mark.parametrize("kind", KINDS)
def test_send_messages_async(server: SMTPTestServer, kind: str) -> None:
    backend = get_connection(**key(kind).options)
    assert asyncio.run(backend.asend_messages(sample("async"))) == 4
    check_arrived(server, 4, key(kind))


@pytest.mark.parametrize("kind", KINDS)
def test_send_messages_over_parallel_connections(server: SMTPTestServer, kind: str) -> None:
    backend = get_connection(connections=3, **key(kind).options)
    assert backend.send_messages(sample("parallel")) == 4
    check_arrived(server, 4, key(kind))


@pytest.mark.parametrize("kind", KINDS)
def test_send_bulk_signs_each_recipients_unsubscribe_link(
    server: SMTPTestServer, kind: str
) -> None:
    messages = [message for n in range(3) for message in sample("bulk", n)]
    result = mailwright.send_bulk(messages, connections=3, **key(kind).options)
    assert result.sent == 12 and not result.failed
    data = check_arrived(server, 12, key(kind))
    links = {
        mailwright.RawMessage(d, "a@example.org", ["b@example.org"]).message()["List-Unsubscribe"]
        for d in data
    }
    assert len(links) == 12  # each message its own link, each signed


@pytest.mark.parametrize("kind", KINDS)
def test_asend_bulk(server: SMTPTestServer, kind: str) -> None:
    messages = [message for n in range(2) for message in sample("abulk", n)]
    result = asyncio.run(mailwright.asend_bulk(messages, connections=2, **key(kind).options))
    assert result.sent == 8 and not result.failed
    check_arrived(server, 8, key(kind))


@pytest.mark.parametrize("kind", KINDS)
def test_a_retried_message_keeps_one_signature(start_server: ServerFactory, kind: str) -> None:
    # 454 twice: the message goes out three times, signed once when first composed.
    server = start_server(throttle={"ann@example.org": 2})
    mailwright.configure(EMAIL_HOST=server.host, EMAIL_PORT=server.port)
    result = mailwright.send_bulk(sample("retry")[:1], connections=1, **key(kind).options)
    assert result.sent == 1
    check_arrived(server, 1, key(kind))


def test_django_backend_signs_from_django_settings(start_server: ServerFactory) -> None:
    pytest.importorskip("django")
    from django.conf import settings as django_settings
    from django.core import mail as django_mail
    from django.utils.functional import empty

    server = start_server()
    rsa, ed = key("rsa"), key("ed25519")
    django_settings.configure(
        EMAIL_BACKEND="mailwright.django.EmailBackend",
        EMAIL_HOST=server.host,
        EMAIL_PORT=server.port,
        DEFAULT_FROM_EMAIL=f"site@{DOMAIN}",
        **rsa.settings,
    )
    try:
        message = django_mail.EmailMultiAlternatives(
            "Django ✓", "Body\n", None, ["a@example.org"], headers={"List-Id": "<l.example.com>"}
        )
        message.attach_alternative("<p>HTML</p>", "text/html")
        message.attach("a.bin", IMAGE, "application/octet-stream")
        assert message.send() == 1
        # The engine's options override Django's settings: the Ed25519 key.
        connection = django_mail.get_connection(**ed.options)
        assert django_mail.send_mail("Two", "B\n", None, ["b@example.org"], connection=connection)
    finally:
        django_settings._wrapped = empty
    first, second = server.wait_for(2)
    assert_verified([first.data], rsa, perl=PERL)
    assert_verified([second.data], ed, perl=PERL)
    assert "list-id" in signed_headers(first.data)


@pytest.mark.parametrize("kind", KINDS)
def test_outbox_worker_delivers_what_the_sender_signed(
    server: SMTPTestServer, tmp_path: Path, kind: str
) -> None:
    from mailwright.queue import Worker

    path = str(tmp_path / "outbox.sqlite3")
    sender_key, worker_key = key(kind), key(kind, f"worker-{kind}")
    backend = mailwright.get_connection(
        "mailwright.backends.queue.EmailBackend", path=path, **sender_key.options
    )
    assert backend.send_messages(sample("queue")) == 4
    # The worker's own settings sign too: a stored message must not be signed again.
    mailwright.configure(**worker_key.settings, EMAIL_QUEUE_RETRY_DELAY=0.05)
    stats = Worker(path, once=True).run()
    assert stats.delivered == 4
    check_arrived(server, 4, sender_key, worker_key)
    assert all(signatures(r.data)[0][b"s"] == sender_key.selector.encode() for r in server.messages)


def test_a_raw_message_is_sent_as_it_is(server: SMTPTestServer) -> None:
    signed = sample("raw")[0].envelope(signer(DOMAIN, key("rsa").selector, key("rsa").pem))
    raw = mailwright.RawMessage(signed.data, signed.sender, signed.recipients)
    assert get_connection(**key("ed25519").options).send_messages([raw]) == 1
    (received,) = server.wait_for(1)
    assert received.data == signed.data
    assert_verified([received.data], key("rsa"), perl=PERL)


# --- Celery: a real worker process on a real Redis ---


@pytest.mark.timeout(150)
def test_celery_workers_deliver_what_the_sender_signed(start_server: ServerFactory) -> None:
    pytest.importorskip("celery")

    from celeryapp import make_app
    from celeryworker import RedisServer, Worker, fresh_database
    from mailwright.backends.celery import EmailBackend

    local = None
    redis_url = os.environ.get("MAILWRIGHT_REDIS_URL")
    if not redis_url:
        if os.environ.get("MAILWRIGHT_REQUIRE_REDIS") == "1":
            pytest.fail("MAILWRIGHT_REQUIRE_REDIS=1 but MAILWRIGHT_REDIS_URL is not set")
        try:
            local = RedisServer()
        except FileNotFoundError:
            pytest.skip("no Redis: set MAILWRIGHT_REDIS_URL or install redis-server")
        redis_url = local.url
    broker = fresh_database(redis_url)
    server = start_server()
    rsa, ed, theirs = key("rsa"), key("ed25519"), key("rsa", "worker-rsa")
    env = {
        "EMAIL_HOST": server.host,
        "EMAIL_PORT": str(server.port),
        **theirs.settings,  # the workers' own key must not sign again
    }
    worker = Worker(broker, "mail-dkim", env, processes=1)
    try:
        app = make_app(broker)
        for k in (rsa, ed):
            backend = EmailBackend(app=app, queue="mail-dkim", chunk=3, **k.options)
            assert backend.send_messages(sample(f"celery-{k.kind}")) == 4
        received = server.wait_for(8, timeout=120)
    finally:
        worker.stop()
        if local is not None:
            local.stop()
    assert_verified([r.data for r in received], rsa, ed, theirs, perl=PERL)
    used = sorted(signatures(r.data)[0][b"s"].decode() for r in received)
    assert used == sorted([rsa.selector] * 4 + [ed.selector] * 4)


# --- what verification catches ---


def tampered(data: bytes) -> dict[str, bytes]:
    head, _, body = data.partition(b"\r\n\r\n")
    return {
        "body": head + b"\r\n\r\n" + body.replace(b"Hello.", b"Hellp."),
        "subject": data.replace(b"Subject: Plain", b"Subject: Plane", 1),
        "unsubscribe link": data.replace(b"/unsubscribe/", b"/unsubscrib3/", 1),
        "added From": head + b"\r\nFrom: evil@example.net\r\n\r\n" + body,
        "List-Unsubscribe added on top": b"List-Unsubscribe: <https://evil.example/u>\r\n" + data,
    }


@pytest.mark.parametrize("kind", KINDS)
def test_tampering_fails_verification(server: SMTPTestServer, kind: str) -> None:
    k = key(kind)
    assert get_connection(**k.options).send_messages(sample("tamper")[:1]) == 1
    (received,) = server.wait_for(1)
    assert_verified([received.data], k, perl=PERL)
    changed = tampered(received.data)
    for what, data in changed.items():
        assert data != received.data, what
        ok, _ = dkimpy_verify(data, zone(k))
        assert not ok, f"dkimpy accepted a message with a changed {what}"
    if PERL and kind == "rsa":
        for what, line in zip(changed, perl_verify(list(changed.values()), zone(k)), strict=True):
            assert line.startswith("fail"), f"Mail::DKIM on a changed {what}: {line}"


# --- a message that cannot be signed fails alone ---


def test_an_unsignable_message_fails_alone_in_send_bulk(
    server: SMTPTestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    import dkim

    # A fault injected in dkimpy for one message (no real message makes it fail: the
    # key and the header list are checked when the backend is made).
    original = dkim.DKIM.sign

    def failing(self: Any, *args: Any, **kwargs: Any) -> Any:
        if any(b"poison" in value for _, value in self.headers):
            raise dkim.DKIMException("injected failure")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(dkim.DKIM, "sign", failing)
    messages = sample("iso")
    messages[1].subject = "poison"
    result = mailwright.send_bulk(messages, connections=2, **key("ed25519").options)
    assert result.sent == 3
    [failure] = result.failed
    assert failure.index == 1 and isinstance(failure.error, DKIMSigningError)
    assert "injected failure" in str(failure.error)
    arrived = server.wait_for(3)
    assert_verified([r.data for r in arrived], key("ed25519"), perl=PERL)

    # send_messages failing silently: the same, the batch goes on.
    server.messages.clear()
    backend = get_connection(fail_silently=True, **key("ed25519").options)
    assert backend.send_messages(messages) == 3
    assert isinstance(messages[1].delivery.error, DKIMSigningError)  # type: ignore[union-attr]
    server.wait_for(3)
    # Not failing silently it stops there, as for any message that reaches nobody.
    server.messages.clear()
    with pytest.raises(DKIMSigningError):
        get_connection(**key("ed25519").options).send_messages(messages)
    assert [m.delivery.sent for m in messages] == [True, False, False, False]  # type: ignore[union-attr]


# --- configuration: one clear error when the backend is made ---


@pytest.mark.parametrize(
    ("given", "missing"),
    [
        ({"EMAIL_DKIM_DOMAIN": DOMAIN}, ["EMAIL_DKIM_SELECTOR", "EMAIL_DKIM_PRIVATE_KEY"]),
        ({"EMAIL_DKIM_DOMAIN": DOMAIN, "EMAIL_DKIM_SELECTOR": "s"}, ["EMAIL_DKIM_PRIVATE_KEY"]),
        ({"EMAIL_DKIM_SELECTOR": "s"}, ["EMAIL_DKIM_DOMAIN", "EMAIL_DKIM_PRIVATE_KEY"]),
    ],
)
def test_a_missing_setting_fails_when_the_backend_is_made(
    server: SMTPTestServer, given: dict[str, str], missing: list[str]
) -> None:
    mailwright.configure(**given)
    for backend in ("smtp", "mailwright.backends.queue.EmailBackend"):
        with pytest.raises(ImproperlyConfigured) as raised:
            get_connection(backend, path="/nonexistent/outbox.sqlite3")
        for name in missing:
            assert name in str(raised.value)
    with pytest.raises(ImproperlyConfigured):
        mailwright.send_mail("s", "b", "a@example.com", ["b@example.com"])
    assert server.connections == 0  # nothing was sent, not even a connection


BAD_KEYS = {
    "not a key": "-----BEGIN PRIVATE KEY-----\nnot base64 at all\n-----END PRIVATE KEY-----",
    "missing file": "/nonexistent/dkim/key.pem",
}


def _keys() -> dict[str, tuple[str, str]]:
    """(key text, what the error says) for keys that cannot sign."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    def pem(private: Any, encryption: Any = None) -> str:
        return str(
            private.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                encryption or serialization.NoEncryption(),
            ).decode()
        )

    short = _short_rsa_key(768)
    return {
        "garbage": (BAD_KEYS["not a key"], "not a PEM private key"),
        "missing file": (BAD_KEYS["missing file"], "/nonexistent/dkim/key.pem"),
        "short RSA": (pem(short), "too short"),
        "EC": (pem(ec.generate_private_key(ec.SECP256R1())), "RSA (2048 bits) or Ed25519"),
        "encrypted": (
            pem(short, serialization.BestAvailableEncryption(b"pw")),
            "encrypted",
        ),
    }


def _short_rsa_key(bits: int) -> Any:
    """An RSA key shorter than cryptography will generate (it still loads one)."""
    import secrets

    from cryptography.hazmat.primitives.asymmetric import rsa

    def prime(size: int) -> int:
        while True:
            candidate = secrets.randbits(size) | (1 << (size - 1)) | 1
            probable = all(pow(a, candidate - 1, candidate) == 1 for a in (2, 3, 5, 7, 11))
            if probable and candidate % 65537 != 1:
                return candidate

    p, q = prime(bits // 2), prime(bits // 2)
    d = pow(65537, -1, (p - 1) * (q - 1))
    numbers = rsa.RSAPrivateNumbers(
        p, q, d, d % (p - 1), d % (q - 1), pow(q, -1, p), rsa.RSAPublicNumbers(65537, p * q)
    )
    return numbers.private_key()


def test_a_bad_key_fails_when_the_backend_is_made_and_is_never_shown() -> None:
    for name, (text, says) in _keys().items():
        with pytest.raises(ImproperlyConfigured) as raised:
            get_connection(dkim_domain=DOMAIN, dkim_selector="s", dkim_private_key=text)
        message = str(raised.value)
        assert says in message, name
        assert "EMAIL_DKIM_PRIVATE_KEY" in message, name
        if "BEGIN" in text:
            body = text.splitlines()[1]
            assert body not in message and body not in repr(raised.value), name


def test_bad_names_and_header_lists_are_refused() -> None:
    pem = key("ed25519").pem
    cases = [
        ({"dkim_domain": "not a domain"}, "EMAIL_DKIM_DOMAIN"),
        ({"dkim_domain": "localhost"}, "EMAIL_DKIM_DOMAIN"),
        ({"dkim_selector": "bad selector"}, "EMAIL_DKIM_SELECTOR"),
        ({"dkim_headers": ["To", "Subject"]}, "must include From"),
        ({"dkim_headers": ["From", "Received"]}, "received"),
        ({"dkim_headers": ["From", "Bad:Name"]}, "EMAIL_DKIM_HEADERS"),
    ]
    for change, says in cases:
        options = {"dkim_domain": DOMAIN, "dkim_selector": "s", "dkim_private_key": pem}
        options.update(change)  # type: ignore[arg-type]
        with pytest.raises(ImproperlyConfigured, match=says):
            get_connection(**options)


def test_key_forms_files_and_the_environment(
    server: SMTPTestServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cryptography.hazmat.primitives import serialization

    rsa, ed = key("rsa"), key("ed25519")
    loaded: Any = serialization.load_pem_private_key(rsa.pem.encode(), None)
    pkcs1 = loaded.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()
    (tmp_path / "rsa.pem").write_text(pkcs1.replace("\n", "\r\n"))  # PKCS#1, CRLF
    seed: Any = serialization.load_pem_private_key(ed.pem.encode(), None)
    bare = __import__("base64").b64encode(
        seed.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
    )
    (tmp_path / "ed.key").write_bytes(bare + b"\n")  # dkimpy's dknewkey form
    # PEM text on one line with \n escapes, as .env files hold it.
    escaped = rsa.pem.replace("\n", "\\n")
    one_line = get_connection(
        dkim_domain=DOMAIN, dkim_selector=rsa.selector, dkim_private_key=escaped
    )
    assert one_line.dkim.dns_record == rsa.record  # type: ignore[attr-defined]
    monkeypatch.setenv("EMAIL_DKIM_DOMAIN", DOMAIN)
    monkeypatch.setenv("EMAIL_DKIM_SELECTOR", rsa.selector)
    monkeypatch.setenv("EMAIL_DKIM_PRIVATE_KEY", str(tmp_path / "rsa.pem"))
    monkeypatch.setenv("EMAIL_DKIM_HEADERS", "From, To, Subject, List-Unsubscribe, From")
    assert get_connection().send_messages(sample("env")[:1]) == 1
    (first,) = server.wait_for(1)
    assert_verified([first.data], rsa, perl=PERL)
    assert signed_headers(first.data) == ["from", "to", "subject", "list-unsubscribe", "from"]
    server.messages.clear()
    backend = get_connection(
        dkim_selector=ed.selector, dkim_private_key=tmp_path / "ed.key", dkim_headers=None
    )
    assert repr(backend.dkim) == f"<DKIMSigner d={DOMAIN} s={ed.selector} a=ed25519-sha256>"  # type: ignore[attr-defined]
    assert backend.send_messages(sample("env2")[:1]) == 1
    assert_verified([server.wait_for(1)[0].data], ed, perl=PERL)


def test_signing_is_off_without_settings_and_signers_are_shared() -> None:
    assert get_connection().dkim is None  # type: ignore[attr-defined]
    options = key("ed25519").options
    assert get_connection(**options).dkim is get_connection(**options).dkim  # type: ignore[attr-defined]
    assert isinstance(get_connection(**options).dkim, DKIMSigner)  # type: ignore[attr-defined]


# --- mailwright dkim keygen ---


@pytest.mark.parametrize("ed25519", [False, True])
def test_keygen_writes_a_key_and_prints_the_record_that_verifies_it(
    server: SMTPTestServer, tmp_path: Path, ed25519: bool
) -> None:
    out = tmp_path / "dkim.pem"
    args = ["--domain", DOMAIN, "--selector", "gen1", "--out", str(out)]
    done = subprocess.run(
        [sys.executable, "-m", "mailwright", "dkim", "keygen", *args]
        + (["--ed25519"] if ed25519 else []),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert oct(out.stat().st_mode & 0o777) == "0o600"
    record = _record_from(done.stdout)
    assert record.startswith("v=DKIM1; k=" + ("ed25519" if ed25519 else "rsa") + "; p=")
    assert f"gen1._domainkey.{DOMAIN}" in done.stdout
    backend = get_connection(dkim_domain=DOMAIN, dkim_selector="gen1", dkim_private_key=out)
    assert backend.send_messages(sample("keygen")[:1]) == 1
    data = server.wait_for(1)[0].data
    ok, why = dkimpy_verify(data, {f"gen1._domainkey.{DOMAIN}": record})
    assert ok, why
    if PERL and not ed25519:
        assert perl_verify([data], {f"gen1._domainkey.{DOMAIN}": record})[0].startswith("pass")
    # An existing file is never overwritten.
    again = subprocess.run(
        [sys.executable, "-m", "mailwright", "dkim", "keygen", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert again.returncode != 0 and "exists" in again.stderr


def test_dkim_record_prints_the_configured_keys_record(tmp_path: Path) -> None:
    rsa = key("rsa")
    (tmp_path / "k.pem").write_text(rsa.pem)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("EMAIL_")},
        "EMAIL_DKIM_DOMAIN": DOMAIN,
        "EMAIL_DKIM_SELECTOR": rsa.selector,
        "EMAIL_DKIM_PRIVATE_KEY": str(tmp_path / "k.pem"),
    }
    command = [sys.executable, "-m", "mailwright", "dkim", "record"]
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    assert _record_from(done.stdout) == rsa.record
    assert f"dig +short TXT {rsa.dns_name}" in done.stdout
    assert rsa.pem.splitlines()[1] not in done.stdout
    del env["EMAIL_DKIM_SELECTOR"]
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 1 and "EMAIL_DKIM_SELECTOR" in done.stderr


def _record_from(output: str) -> str:
    """The record's text from the zone-file line keygen prints (quoted strings)."""
    import re

    line = next(line for line in output.splitlines() if "IN TXT" in line)
    return "".join(re.findall(r'"([^"]*)"', line))


def test_rsa_signatures_from_openssl_are_dkimpys_own_bytes() -> None:
    import hashlib

    import dkim
    import dkim.crypto

    made = signer(DOMAIN, key("rsa").selector, key("rsa").pem)
    assert made is not None and dkim.RSASSA_PKCS1_v1_5_sign.openssl
    private = dkim.crypto.parse_pem_private_key(made._key.private)
    for data in (b"", b"x", bytes(range(256)) * 50):
        digest = dkim.HashThrough(hashlib.sha256(data))
        fast = bytes(dkim.RSASSA_PKCS1_v1_5_sign(digest, private))
        assert fast == bytes(dkim.crypto.RSASSA_PKCS1_v1_5_sign(digest, private))
        assert len(fast) == 256


def test_a_mailer_signs_with_its_options(server: SMTPTestServer) -> None:
    rsa, ed = key("rsa"), key("ed25519")
    mailwright.configure(
        **rsa.settings,  # the global settings: the default mailer's
        MAILERS={
            "default": {"BACKEND": "smtp", "OPTIONS": {}},
            "news": {
                "BACKEND": "smtp",
                "OPTIONS": {"dkim_selector": ed.selector, "dkim_private_key": ed.pem},
            },
        },
    )
    assert mailwright.send_mail("S", "B\n", f"a@{DOMAIN}", ["b@example.org"], using="news")
    assert mailwright.send_mail("S", "B\n", f"a@{DOMAIN}", ["b@example.org"])
    result = mailwright.send_bulk(sample("mailer"), connections=2, using="news")
    assert result.sent == 4
    received = server.wait_for(6)
    used = [signatures(r.data)[0][b"s"].decode() for r in received]
    assert used.count(ed.selector) == 5 and used.count(rsa.selector) == 1
    assert_verified([r.data for r in received], rsa, ed, perl=PERL)


_HEADER_TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), max_size=150
)


@settings(max_examples=60, deadline=None)
@given(
    subject=_HEADER_TEXT,
    body=st.text(max_size=1500),
    note=_HEADER_TEXT,
    name=_HEADER_TEXT,
    kind=st.sampled_from(KINDS),
)
def test_any_message_mailwright_composes_verifies(
    subject: str, body: str, note: str, name: str, kind: str
) -> None:
    """Whatever the content (any Unicode, line breaks of every kind in the body, dots,
    trailing space), what mailwright signs verifies: the signature is over the final
    bytes."""
    k = key(kind)
    made = signer(DOMAIN, k.selector, k.pem)
    message = EmailMultiAlternatives(subject, body, f"news@{DOMAIN}", [(name, "ann@example.org")])
    message.extra_headers["X-Note"] = note
    message.attach_alternative(f"<p>{body}</p>", "text/html")
    ok, why = dkimpy_verify(message.envelope(made).data, zone(k))
    assert ok, why
