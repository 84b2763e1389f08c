"""OAuth2 login (XOAUTH2, OAUTHBEARER where offered) against aiosmtpd checking the
token: the first token is refused once, and the engine asks the provider for a fresh
one. Every sending path, ``mailwright check`` and the catcher."""

from __future__ import annotations

import io
import smtplib
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import ServerFactory
from mailwright import EmailMessage, ImproperlyConfigured, configure, get_connection
from mailwright.backends.smtp import EmailBackend
from mailwright.check import run_check
from mailwright.devserver import DevServer
from mailwright.smtp.auth import OAuth2TokenError
from senders import Sender
from smtpserver import SMTPTestServer

USER = "me@example.com"
STALE = "ya29.stale-token-0123456789"
FRESH = "ya29.fresh-token-9876543210"


class Provider:
    """Hands out the given tokens in turn (the last one again when they run out)."""

    def __init__(self, *tokens: str) -> None:
        self.tokens = list(tokens)
        self.calls = 0
        self.lock = threading.Lock()

    def __call__(self) -> str:
        with self.lock:
            self.calls += 1
            return self.tokens[min(self.calls, len(self.tokens)) - 1]


#: For the dotted-path form of the setting ("test_oauth2:PATH_PROVIDER").
PATH_PROVIDER = Provider(STALE, FRESH)


@pytest.fixture
def oauth_server(start_server: ServerFactory) -> SMTPTestServer:
    """Accepts only FRESH for USER; offers XOAUTH2 (as Microsoft 365 does)."""
    return start_server(auth=(USER, "no password"), oauth2_user=USER, oauth2_tokens={FRESH})


def message(subject: str = "hello") -> EmailMessage:
    return EmailMessage(subject, "body", "from@example.com", ["to@example.com"])


def test_a_refused_token_is_replaced_once_and_the_mail_goes(
    oauth_server: SMTPTestServer, sender: Sender
) -> None:
    provider = Provider(STALE, FRESH)
    configure(**oauth_server.settings, EMAIL_HOST_USER=USER, EMAIL_OAUTH2_TOKEN=provider)
    assert sender.send_messages([message()]) == 1
    (received,) = oauth_server.wait_for(1)
    assert received.authenticated
    assert provider.calls == 2
    assert oauth_server.oauth2_logins == [("XOAUTH2", USER, STALE), ("XOAUTH2", USER, FRESH)]
    assert oauth_server.oauth2_error_answers == [True]  # the error challenge answered empty


def test_oauthbearer_where_the_server_offers_it(
    start_server: ServerFactory, sender: Sender
) -> None:
    # Gmail offers both; OAUTHBEARER (RFC 7628) is the standard one.
    server = start_server(
        auth=(USER, "-"),
        oauth2_user=USER,
        oauth2_tokens={FRESH},
        oauth2_mechanisms=("XOAUTH2", "OAUTHBEARER"),
    )
    connection = get_connection(
        host=server.host, port=server.port, username=USER, oauth2_token=Provider(STALE, FRESH)
    )
    assert sender.send_messages([message()], connection) == 1
    assert [m for m, _, _ in server.oauth2_logins] == ["OAUTHBEARER", "OAUTHBEARER"]
    assert server.oauth2_error_answers == [True]  # answered with %x01 (RFC 7628 3.2.3)
    assert server.wait_for(1)[0].authenticated


def test_a_token_refused_twice_fails_with_the_providers_error_and_no_token(
    oauth_server: SMTPTestServer, sender: Sender
) -> None:
    provider = Provider(STALE, "ya29.also-refused-token")
    configure(**oauth_server.settings, EMAIL_HOST_USER=USER, EMAIL_OAUTH2_TOKEN=provider)
    with pytest.raises(smtplib.SMTPAuthenticationError) as info:
        sender.send_messages([message()])
    assert provider.calls == 2  # one fresh token, one retry: no loop
    error = info.value
    assert error.smtp_code == 535
    text = f"{error} {error!r} {error.smtp_error!r}"
    assert '"scope":"https://mail.google.com/"' in text  # the provider's JSON, decoded
    assert "ya29" not in text
    oauth_server.wait_ended(1)
    sent = b"".join(chunk for _, chunk in oauth_server.chunks)
    assert sent.endswith(b"QUIT\r\n")
    assert oauth_server.messages == []


def test_the_setting_takes_a_dotted_path(
    oauth_server: SMTPTestServer, sender: Sender, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(PATH_PROVIDER, "calls", 0)
    monkeypatch.setenv("EMAIL_OAUTH2_TOKEN", "test_oauth2:PATH_PROVIDER")
    configure(**oauth_server.settings, EMAIL_HOST_USER=USER)
    assert sender.send_messages([message()]) == 1
    assert PATH_PROVIDER.calls == 2


def test_send_bulk_logs_every_connection_in(oauth_server: SMTPTestServer, sender: Sender) -> None:
    provider = Provider(STALE, FRESH)  # the first connection meets the stale token
    messages = [message(f"m{i}") for i in range(12)]
    result = sender.send_bulk(
        messages,
        connections=3,
        host=oauth_server.host,
        port=oauth_server.port,
        username=USER,
        oauth2_token=provider,
    )
    assert result.sent == 12 and not result.failed
    assert len(oauth_server.wait_for(12)) == 12
    assert all(received.authenticated for received in oauth_server.messages)
    assert provider.calls == oauth_server.connections + 1  # one token each, one retry


def test_check_reports_the_oauth2_login(oauth_server: SMTPTestServer) -> None:
    lines: list[str] = []
    backend = EmailBackend(
        host=oauth_server.host,
        port=oauth_server.port,
        username=USER,
        oauth2_token=Provider(FRESH),
    )
    run_check(backend, report=lambda step, text: lines.append(f"{step}: {text}"))
    assert f"auth: ok as {USER!r} with OAuth2" in lines
    assert not any("ya29" in line for line in lines)


def test_provider_failures_are_clear_and_never_show_a_token(
    oauth_server: SMTPTestServer, sender: Sender
) -> None:
    def broken() -> str:
        raise RuntimeError("the token endpoint said 503")

    configure(**oauth_server.settings, EMAIL_HOST_USER=USER, EMAIL_OAUTH2_TOKEN=broken)
    with pytest.raises(OAuth2TokenError, match="broken failed: RuntimeError: the token endpoint"):
        sender.send_messages([message()])
    configure(EMAIL_OAUTH2_TOKEN=lambda: None)
    with pytest.raises(OAuth2TokenError, match="returned NoneType, not an access token"):
        sender.send_messages([message()])


def test_bad_settings_fail_when_the_backend_is_made() -> None:
    with pytest.raises(ImproperlyConfigured, match="EMAIL_OAUTH2_TOKEN: cannot import"):
        configure(EMAIL_OAUTH2_TOKEN="no_such_module_here.token")
        EmailBackend()
    with pytest.raises(ImproperlyConfigured, match="EMAIL_OAUTH2_TOKEN"):
        configure(EMAIL_OAUTH2_TOKEN=42)
    with pytest.raises(ImproperlyConfigured, match=r"oauth2_token: .* is not callable"):
        EmailBackend(oauth2_token="test_oauth2.USER")


def test_the_token_is_never_in_a_repr() -> None:
    backend = EmailBackend(host="h", username=USER, oauth2_token=Provider(FRESH))
    assert "ya29" not in repr(backend) and "ya29" not in repr(backend.config)
    from mailwright.smtp.auth import OAuthBearer, XOAuth2

    assert "ya29" not in repr(XOAuth2(USER, FRESH)) + repr(OAuthBearer(USER, FRESH))


@pytest.fixture
def catcher() -> Iterator[DevServer]:
    server = DevServer("127.0.0.1", 0, None, out=io.StringIO(), quiet=True).start_in_thread()
    yield server
    server.stop_thread()


@pytest.mark.parametrize("mechanism", ["XOAUTH2", "OAUTHBEARER"])
def test_the_catcher_takes_an_oauth2_login_and_shows_the_user(
    catcher: DevServer, mechanism: str
) -> None:
    import base64

    from mailwright.smtp.auth import OAuthBearer, XOAuth2

    if mechanism == "XOAUTH2":
        response = XOAuth2(USER, FRESH).initial_response()
    else:
        response = OAuthBearer(USER, FRESH, "127.0.0.1", catcher.smtp_port).initial_response()
    assert response is not None
    with smtplib.SMTP("127.0.0.1", catcher.smtp_port, timeout=10) as client:
        client.ehlo("x")
        assert mechanism in client.esmtp_features["auth"].split()
        code, _ = client.docmd("AUTH", f"{mechanism} {base64.b64encode(response).decode()}")
        assert code == 235
        client.sendmail("from@example.com", ["to@example.com"], b"Subject: s\r\n\r\nbody\r\n")
    assert catcher.wait_for_messages(1)
    (stored,) = catcher.store.all()
    assert stored.auth_user == USER


def test_the_catcher_through_the_backend(catcher: DevServer, sender: Sender) -> None:
    connection = get_connection(
        host="127.0.0.1", port=catcher.smtp_port, username=USER, oauth2_token=Provider(FRESH)
    )
    assert sender.send_messages([message()], connection) == 1
    assert catcher.wait_for_messages(1)
    assert catcher.store.all()[0].auth_user == USER


def test_the_outbox_worker_logs_in_with_oauth2(
    oauth_server: SMTPTestServer, tmp_path: Path
) -> None:
    from mailwright.queue import Worker

    provider = Provider(STALE, FRESH)
    configure(
        EMAIL_BACKEND="mailwright.backends.queue.EmailBackend",
        EMAIL_QUEUE_PATH=str(tmp_path / "outbox.sqlite3"),
        EMAIL_HOST=oauth_server.host,
        EMAIL_PORT=oauth_server.port,
        EMAIL_HOST_USER=USER,
        EMAIL_OAUTH2_TOKEN=provider,
        EMAIL_TIMEOUT=5,
    )
    assert get_connection().send_messages([message(f"m{i}") for i in range(3)]) == 3
    stats = Worker(once=True).run()
    assert (stats.delivered, stats.failed, stats.deferred) == (3, 0, 0)
    assert all(received.authenticated for received in oauth_server.wait_for(3))
    assert provider.calls == 2


def test_the_celery_task_logs_in_with_oauth2(oauth_server: SMTPTestServer) -> None:
    pytest.importorskip("celery")
    from mailwright import RawMessage
    from mailwright.celery.tasks import deliver_chunk

    provider = Provider(STALE, FRESH)
    configure(
        EMAIL_HOST=oauth_server.host,
        EMAIL_PORT=oauth_server.port,
        EMAIL_HOST_USER=USER,
        EMAIL_OAUTH2_TOKEN=provider,
    )
    envelopes = [message(f"c{i}").envelope() for i in range(2)]
    chunk = [RawMessage(e.data, e.sender, e.recipients) for e in envelopes]
    report = deliver_chunk(chunk)
    assert (report.delivered, report.retry, report.refused) == (2, [], [])
    assert all(received.authenticated for received in oauth_server.wait_for(2))
    assert provider.calls == 2


def test_a_mailer_takes_the_oauth2_option(oauth_server: SMTPTestServer) -> None:
    import mailwright

    provider = Provider(FRESH)
    options = {
        "host": oauth_server.host,
        "port": oauth_server.port,
        "username": USER,
        "oauth2_token": provider,
    }
    configure(MAILERS={"default": "locmem:", "gmail": {"BACKEND": "smtp", "OPTIONS": options}})
    assert mailwright.send_mail("s", "b", "a@example.com", ["b@example.com"], using="gmail") == 1
    assert oauth_server.wait_for(1)[0].authenticated and provider.calls == 1
