"""The catcher's SMTP side: real clients (smtplib, mailwright's backend, the CLI) against
the catcher's own asyncio server; AUTH, STARTTLS with the generated CA, pipelining and
what a hostile or broken client may send."""

from __future__ import annotations

import base64
import io
import socket
import ssl
import string
from collections.abc import Iterator
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from examples import examples
from mailwright import EmailMessage, get_connection
from mailwright.devserver import DevServer, TLSSetupError
from processes import Catcher, run_cli


@pytest.fixture
def catcher() -> Iterator[DevServer]:
    server = DevServer("127.0.0.1", 0, None, out=io.StringIO(), quiet=True).start_in_thread()
    yield server
    server.stop_thread()


@pytest.fixture(scope="module")
def tls_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("tls")


@pytest.fixture
def tls_catcher(tls_dir: Path) -> Iterator[DevServer]:
    server = DevServer(
        "127.0.0.1", 0, None, out=io.StringIO(), quiet=True, tls=True, tls_dir=tls_dir
    ).start_in_thread()
    yield server
    server.stop_thread()


class Conversation:
    """A raw SMTP client: send bytes, read whole replies."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.file = self.sock.makefile("rb")
        assert self.reply()[0] == 220

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def reply(self) -> tuple[int, list[bytes]]:
        lines = []
        while True:
            line = self.file.readline()
            if not line:
                raise ConnectionError("closed")
            lines.append(line.rstrip(b"\r\n"))
            if line[3:4] != b"-":
                return int(line[:3]), lines

    def command(self, line: bytes) -> tuple[int, list[bytes]]:
        self.send(line + b"\r\n")
        return self.reply()

    def closed(self) -> bool:
        return self.file.readline() == b""

    def close(self) -> None:
        self.file.close()
        self.sock.close()


def test_auth_plain_and_login_accept_any_credentials_and_keep_the_user(
    catcher: DevServer,
) -> None:
    import smtplib

    for mechanism in ("PLAIN", "LOGIN"):
        with smtplib.SMTP("127.0.0.1", catcher.smtp_port, timeout=10) as client:
            client.ehlo()
            assert client.has_extn("auth")
            offered = set(client.esmtp_features["auth"].split())
            assert offered == {"PLAIN", "LOGIN", "XOAUTH2", "OAUTHBEARER"}
            client.user, client.password = f"user-{mechanism}", "any password"
            code, _ = client.auth(mechanism, getattr(client, f"auth_{mechanism.lower()}"))
            assert code == 235
            client.sendmail(
                "a@example.com", ["b@example.com"], f"Subject: {mechanism}\r\n\r\nx\r\n"
            )
    # mailwright's own backend with a username and password, as an app's config has it
    connection = get_connection(
        "smtp", host="127.0.0.1", port=catcher.smtp_port, username="app", password="secret"
    )
    assert connection.send_messages(
        [EmailMessage("via backend", "b", "a@x.example", ["c@x.example"])]
    )
    assert catcher.wait_for_messages(3)
    users = {m.subject: m.auth_user for m in catcher.store.all()}
    assert users == {"PLAIN": "user-PLAIN", "LOGIN": "user-LOGIN", "via backend": "app"}


def test_auth_conversation_details(catcher: DevServer) -> None:
    talk = Conversation(catcher.smtp_port)
    try:
        assert talk.command(b"AUTH PLAIN")[0] == 503  # EHLO first
        assert talk.command(b"EHLO client.example")[0] == 250
        assert talk.command(b"AUTH CRAM-MD5")[0] == 504
        code, lines = talk.command(b"AUTH LOGIN")
        assert code == 334 and base64.b64decode(lines[0][4:]) == b"Username:"
        assert talk.command(b"*")[0] == 501  # cancelled
        assert talk.command(b"AUTH PLAIN !!!notbase64")[0] == 501
        assert talk.command(b"AUTH PLAIN " + base64.b64encode(b"only-one-part"))[0] == 501
        plain = base64.b64encode(b"\x00j\xc3\xb6rg\x00pw")
        assert talk.command(b"AUTH PLAIN " + plain)[0] == 235
        assert talk.command(b"AUTH PLAIN " + plain)[0] == 503  # already
    finally:
        talk.close()


def test_pipelined_session_in_one_write_is_answered_in_order(catcher: DevServer) -> None:
    talk = Conversation(catcher.smtp_port)
    try:
        assert talk.command(b"EHLO client.example")[0] == 250
        talk.send(
            b"MAIL FROM:<a@example.com> BODY=8BITMIME SIZE=100\r\n"
            b"RCPT TO:<b@example.com>\r\nRCPT TO:<c@example.com>\r\nDATA\r\n"
            b"Subject: one\r\n\r\n..leading dot\r\n.\r\n"
            b"MAIL FROM:<>\r\nRCPT TO:<d@example.com>\r\nDATA\r\n"
            b"Subject: two\r\n\r\n.\r\nNOOP\r\n"
        )
        codes = [talk.reply()[0] for _ in range(10)]
        assert codes == [250, 250, 250, 354, 250, 250, 250, 354, 250, 250]
    finally:
        talk.close()
    assert catcher.wait_for_messages(2)
    one, two = catcher.store.all()
    assert one.raw == b"Subject: one\r\n\r\n.leading dot\r\n"  # dot-stuffing undone
    assert one.rcpt_tos == ["b@example.com", "c@example.com"]
    assert two.mail_from == "" and two.raw == b"Subject: two\r\n\r\n"


@settings(
    max_examples=examples(40, 15),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(cuts=st.lists(st.integers(min_value=1, max_value=400), min_size=1, max_size=30))
def test_any_split_of_the_input_gives_the_same_messages(
    catcher: DevServer, cuts: list[int]
) -> None:
    """TCP may deliver a pipelined session in any pieces: the server must not care."""
    body = b"Subject: split\r\n\r\n" + b"".join(
        f"line {i} .\r\n.{i}\r\n".encode() for i in range(20)
    )
    stuffed = body.replace(b"\r\n.", b"\r\n..")
    session = (
        b"EHLO x\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n"
        + stuffed
        + b".\r\nQUIT\r\n"
    )
    before = len(catcher.store)
    talk = Conversation(catcher.smtp_port)
    try:
        talk.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        position = 0
        for cut in cuts:
            talk.send(session[position : position + cut])
            position += cut
        talk.send(session[position:])
        codes = [talk.reply()[0] for _ in range(6)]
        assert codes == [250, 250, 250, 354, 250, 221]
    finally:
        talk.close()
    assert catcher.wait_for_messages(before + 1)
    assert catcher.store.all()[-1].raw == body


def test_protocol_errors_are_answered_and_the_session_goes_on(catcher: DevServer) -> None:
    talk = Conversation(catcher.smtp_port)
    try:
        assert talk.command(b"MAIL FROM:<a@example.com>")[0] == 503  # no EHLO yet
        assert talk.command(b"EHLO")[0] == 501
        assert talk.command(b"EHLO client.example")[0] == 250
        assert talk.command(b"RCPT TO:<b@example.com>")[0] == 503
        assert talk.command(b"DATA")[0] == 503
        assert talk.command(b"MAIL FROM:<a@example.com> FOO=BAR")[0] == 555
        assert talk.command(b"MAIL FROM:<a@example.com> SIZE=999999999999")[0] == 552
        assert talk.command(b"MAIL FROM:a@example.com")[0] == 250  # no brackets: tolerated
        assert talk.command(b"MAIL FROM:<a@example.com>")[0] == 503  # nested
        assert talk.command(b"RCPT TO:<>")[0] == 501
        assert talk.command(b"DATA")[0] == 503  # no recipient yet
        assert talk.command(b"RSET")[0] == 250
        assert talk.command(b"STARTTLS")[0] == 502  # not started with --tls
        assert talk.command(b"X" * 5000)[0] == 500
        assert talk.command(b"BOGUS")[0] == 500
        assert talk.command(b"VRFY someone")[0] == 252
        assert talk.command(b"NOOP")[0] == 250
        assert talk.command(b"QUIT")[0] == 221
        assert talk.closed()
    finally:
        talk.close()


@pytest.mark.parametrize("split", [False, True])
def test_a_line_too_long_ends_an_auth_exchange(catcher: DevServer, split: bool) -> None:
    talk = Conversation(catcher.smtp_port)
    try:
        assert talk.command(b"EHLO x")[0] == 250
        assert talk.command(b"AUTH LOGIN")[0] == 334
        long = base64.b64encode(b"u" * 6000)
        if split:  # the line arrives in pieces: refused before its end is seen
            talk.send(long[:5000])
            assert talk.reply()[0] == 500
            talk.send(long[5000:] + b"\r\n")
        else:
            assert talk.command(long)[0] == 500
        # The next line is a command, not the AUTH user name.
        assert talk.command(base64.b64encode(b"MAIL FROM:<a@example.com>"))[0] == 500
        assert talk.command(b"MAIL FROM:<a@example.com>")[0] == 250
        assert talk.command(b"QUIT")[0] == 221
    finally:
        talk.close()


def test_an_http_request_to_the_smtp_port_is_refused(catcher: DevServer) -> None:
    """A web page cannot make the browser POST mail into the catcher."""
    talk = Conversation(catcher.smtp_port)
    try:
        talk.send(
            b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 80\r\n\r\n"
            b"EHLO x\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@x>\r\nDATA\r\nSubject: smuggled\r\n\r\n.\r\n"
        )
        code, lines = talk.reply()
        assert code == 221 and b"not HTTP" in lines[0]
        assert talk.closed()
    finally:
        talk.close()
    assert len(catcher.store) == 0


def test_too_many_errors_end_the_session(catcher: DevServer) -> None:
    talk = Conversation(catcher.smtp_port)
    try:
        codes = [talk.command(b"BOGUS")[0] for _ in range(20)]
        assert codes[:19] == [500] * 19 and codes[19] == 421
        assert talk.closed()
    finally:
        talk.close()


# --- STARTTLS with the generated CA ---


def test_starttls_with_the_generated_ca_verifies_and_delivers(
    tls_catcher: DevServer, tls_dir: Path
) -> None:
    ca = tls_catcher.ca_file
    assert ca == str(tls_dir / "ca.pem")
    assert (tls_dir / "ca-key.pem").stat().st_mode & 0o077 == 0
    assert (tls_dir / "server-key.pem").stat().st_mode & 0o077 == 0
    assert f"EMAIL_SSL_CAFILE={ca}" in tls_catcher.banner()
    connection = get_connection(
        "smtp",
        host="127.0.0.1",
        port=tls_catcher.smtp_port,
        username="tls-user",
        password="pw",
        use_tls=True,
        ssl_cafile=ca,
    )
    message = EmailMessage("over TLS", "secret link\n", "a@example.com", ["b@example.com"])
    assert connection.send_messages([message]) == 1
    assert tls_catcher.wait_for_messages(1)
    (stored,) = tls_catcher.store.all()
    assert stored.auth_user == "tls-user"
    parsed = message_from_bytes(stored.raw, policy=policy.default)
    assert parsed["Subject"] == "over TLS"
    # "localhost" is in the certificate too
    context = ssl.create_default_context(cafile=ca)
    import smtplib

    with smtplib.SMTP("localhost", tls_catcher.smtp_port, timeout=10) as client:
        client.starttls(context=context)
        client.ehlo()
        assert not client.has_extn("starttls")  # not offered twice
    # without the CA the certificate is not trusted
    with (
        smtplib.SMTP("127.0.0.1", tls_catcher.smtp_port, timeout=10) as client,
        pytest.raises(ssl.SSLCertVerificationError),
    ):
        client.starttls(context=ssl.create_default_context())


def test_the_ca_is_kept_and_the_server_certificate_follows_the_host(tls_dir: Path) -> None:
    from mailwright.devserver.certs import ensure_certificates

    first = ensure_certificates(tls_dir, "127.0.0.1")
    assert first.ca is not None
    ca, cert = first.ca.read_bytes(), first.cert.read_bytes()
    again = ensure_certificates(tls_dir, "127.0.0.1")
    assert again.ca is not None
    assert again.ca.read_bytes() == ca and again.cert.read_bytes() == cert  # made once
    other = ensure_certificates(tls_dir, "mail.test")
    assert other.ca is not None
    assert other.ca.read_bytes() == ca and other.cert.read_bytes() != cert
    from cryptography import x509

    names = (
        x509.load_pem_x509_certificate(other.cert.read_bytes())
        .extensions.get_extension_for_class(x509.SubjectAlternativeName)
        .value.get_values_for_type(x509.DNSName)
    )
    assert "mail.test" in names and "localhost" in names


def test_commands_pipelined_after_starttls_are_dropped(tls_catcher: DevServer) -> None:
    """Text sent in the clear with STARTTLS must not be run inside TLS."""
    talk = Conversation(tls_catcher.smtp_port)
    try:
        assert talk.command(b"EHLO x")[0] == 250
        talk.send(b"STARTTLS\r\nMAIL FROM:<injected@example.com>\r\n")
        assert talk.reply()[0] == 220
        context = ssl.create_default_context(cafile=tls_catcher.ca_file)
        wrapped = context.wrap_socket(talk.sock, server_hostname="127.0.0.1")
        wrapped.sendall(b"RCPT TO:<b@example.com>\r\n")
        reply = wrapped.recv(1000)
        assert reply.startswith(b"503"), reply  # no MAIL was run, and EHLO is needed again
        wrapped.close()
    finally:
        talk.close()


def _tls_client(context: ssl.SSLContext, sock: socket.socket) -> tuple[ssl.SSLObject, Any]:
    """A TLS client over ``sock`` whose bytes go out only when the test says so."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_hostname="127.0.0.1")

    def pump(need_more: bool) -> None:
        if outgoing.pending:
            sock.sendall(outgoing.read())
        if need_more:
            data = sock.recv(65536)
            if not data:
                raise ConnectionError("the catcher closed the connection")
            incoming.write(data)

    return tls, (incoming, outgoing, pump)


def test_the_first_command_in_the_segment_that_ends_the_handshake_is_answered(
    tls_catcher: DevServer,
) -> None:
    # TLS 1.3 clients (Nodemailer, our own asyncio driver) send their Finished and the
    # EHLO that follows in one segment; the catcher dropped that EHLO and the client
    # waited for a reply until the idle timeout.
    talk = Conversation(tls_catcher.smtp_port)
    try:
        assert talk.command(b"EHLO x")[0] == 250
        assert talk.command(b"STARTTLS")[0] == 220
        context = ssl.create_default_context(cafile=tls_catcher.ca_file)
        context.minimum_version = ssl.TLSVersion.TLSv1_3
        tls, (_, outgoing, pump) = _tls_client(context, talk.sock)
        while True:
            try:
                tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                pump(True)
        assert tls.version() == "TLSv1.3"
        # Finished (still in the outgoing buffer) and EHLO leave in one write.
        tls.write(b"EHLO again\r\nNOOP\r\n")
        talk.sock.sendall(outgoing.read())
        replies = b""
        while not replies.endswith(b"250 2.0.0 Ok\r\n"):
            try:
                replies += tls.read(65536)
            except ssl.SSLWantReadError:
                pump(True)
        assert replies.startswith(b"250-")  # EHLO's answer, then NOOP's
        assert b"AUTH PLAIN" in replies and b"STARTTLS" not in replies
    finally:
        talk.close()


def test_plaintext_sent_after_starttls_never_runs(tls_catcher: DevServer) -> None:
    """Cleartext written after the 220 (before the handshake) is no TLS record: the
    handshake fails; it is never run as a command."""
    talk = Conversation(tls_catcher.smtp_port)
    try:
        assert talk.command(b"EHLO x")[0] == 250
        assert talk.command(b"STARTTLS")[0] == 220
        talk.send(b"MAIL FROM:<injected@example.com>\r\n")
        context = ssl.create_default_context(cafile=tls_catcher.ca_file)
        with pytest.raises((ssl.SSLError, ConnectionError)):
            wrapped = context.wrap_socket(talk.sock, server_hostname="127.0.0.1")
            wrapped.sendall(b"RCPT TO:<b@example.com>\r\n")
            wrapped.recv(1000)
    finally:
        talk.close()


def test_a_hundred_starttls_sessions_of_the_asyncio_driver_all_deliver(
    tls_catcher: DevServer,
) -> None:
    import asyncio

    from mailwright.message import Envelope
    from mailwright.smtp import AsyncSMTPConnection, SMTPConfig

    context = ssl.create_default_context(cafile=tls_catcher.ca_file)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    config = SMTPConfig(
        "127.0.0.1", tls_catcher.smtp_port, use_tls=True, ssl_context=context, timeout=10
    )
    raw = b"From: a@example.com\r\nTo: b@example.com\r\nSubject: tls\r\n\r\nbody\r\n"

    async def session() -> None:
        connection = AsyncSMTPConnection(config)
        await connection.connect()
        envelope = Envelope("a@example.com", ["b@example.com"], raw, False)
        outcomes = [o async for o in connection.send(_one(envelope))]
        assert [o.error for o in outcomes] == [None]
        await connection.quit()

    async def main() -> None:
        for _ in range(100):  # one after another: each a full STARTTLS handshake
            await session()

    asyncio.run(main())
    assert tls_catcher.wait_for_messages(100)


def _one(envelope: Any) -> Any:
    items = [(0, envelope)]

    async def source() -> Any:
        return items.pop() if items else None

    return source


def test_check_and_send_commands_pass_against_the_catcher_with_auth_and_tls(
    tmp_path: Path,
) -> None:
    process = Catcher("--tls", "--tls-dir", str(tmp_path / "tls"), "--no-web")
    try:
        ca = process.wait_for(r"EMAIL_SSL_CAFILE=(\S+)")[1]
        assert ca == str(tmp_path / "tls" / "ca.pem")
        env = {
            "EMAIL_HOST": "127.0.0.1",
            "EMAIL_PORT": str(process.smtp_port),
            "EMAIL_HOST_USER": "deploy",
            "EMAIL_HOST_PASSWORD": "hunter2",
            "EMAIL_USE_TLS": "1",
            "EMAIL_SSL_CAFILE": ca,
        }
        result = run_cli("check", env=env)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "check passed" in result.stdout
        result = run_cli(
            "send", "--to", "b@example.com", "--subject", "Real config", "--body", "x", env=env
        )
        assert result.returncode == 0, result.stderr
        process.wait_for(r"^AUTH:\s+deploy$")
        process.wait_for(r"Subject: Real config")
    finally:
        process.close()


def test_tls_errors_are_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(TLSSetupError, match="choose another --tls-dir"):
        DevServer("127.0.0.1", 0, None, tls=True, tls_dir=blocker / "tls").start_in_thread()
    result = run_cli(
        "smtpd", "--port", "0", "--no-web", "--tls-cert", str(tmp_path / "missing.pem"), timeout=30
    )
    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    assert "missing.pem" in line and "Traceback" not in line
    assert run_cli("smtpd", "--tls-key", "k.pem", timeout=30).stderr.strip() == (
        "mailwright smtpd: error: --tls-key needs --tls-cert"
    )


@pytest.mark.parametrize("chars", [string.printable])
def test_size_limit_is_enforced_while_reading(chars: str) -> None:
    server = DevServer("127.0.0.1", 0, None, out=io.StringIO(), max_size=1000).start_in_thread()
    try:
        talk = Conversation(server.smtp_port)
        try:
            assert talk.command(b"EHLO x")[0] == 250
            assert talk.command(b"MAIL FROM:<a@example.com>")[0] == 250
            assert talk.command(b"RCPT TO:<b@example.com>")[0] == 250
            assert talk.command(b"DATA")[0] == 354
            talk.send(b"Subject: big\r\n\r\n" + (chars[:90].encode() + b"\r\n") * 200)
            assert talk.command(b".")[0] == 552
            assert talk.command(b"NOOP")[0] == 250  # the session goes on
        finally:
            talk.close()
        assert len(server.store) == 0
    finally:
        server.stop_thread()


def test_implicit_tls_port_for_ssl_configurations(tls_dir: Path) -> None:
    """EMAIL_USE_SSL (port 465 style) configurations work too."""
    server = DevServer(
        "127.0.0.1", 0, None, out=io.StringIO(), quiet=True, tls_dir=tls_dir, smtps_port=0
    ).start_in_thread()
    try:
        assert server.smtps_port and server.smtps_port != server.smtp_port
        assert f"SMTPS (implicit TLS) on 127.0.0.1:{server.smtps_port}" in server.banner()
        connection = get_connection(
            "smtp",
            host="127.0.0.1",
            port=server.smtps_port,
            username="ssl-user",
            password="pw",
            use_ssl=True,
            ssl_cafile=server.ca_file,
        )
        message = EmailMessage("over SMTPS", "b", "a@example.com", ["b@example.com"])
        assert connection.send_messages([message]) == 1
        assert server.wait_for_messages(1)
        assert server.store.all()[0].auth_user == "ssl-user"
        import smtplib

        with smtplib.SMTP_SSL(
            "127.0.0.1",
            server.smtps_port,
            context=ssl.create_default_context(cafile=server.ca_file),
            timeout=10,
        ) as client:
            client.ehlo()
            assert not client.has_extn("starttls")  # already encrypted
    finally:
        server.stop_thread()


def test_banner_warns_when_other_machines_can_connect() -> None:
    server = DevServer("0.0.0.0", 0, None, out=io.StringIO())
    assert "other machines can reach the catcher" in server.banner()
    assert "other machines" not in DevServer("127.0.0.1", 0, None).banner()


def test_maildir_problems_are_one_line_errors_naming_the_path(tmp_path: Path) -> None:
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("x")
    (tmp_path / "busy" / "notes").mkdir(parents=True)
    for path, reason in [
        (not_a_folder, "exists and is not a folder"),
        (tmp_path / "busy", "is a folder with files but not a Maildir"),
        (not_a_folder / "mail", "cannot use it as a Maildir"),
    ]:
        result = run_cli("smtpd", "--port", "0", "--no-web", "--maildir", str(path), timeout=30)
        assert result.returncode == 1
        (line,) = result.stderr.strip().splitlines()
        assert line.startswith(f"mailwright smtpd: error: --maildir: {path}")
        assert reason in line


def test_connections_beyond_the_cap_are_told_421() -> None:
    server = DevServer(
        "127.0.0.1", 0, None, out=io.StringIO(), quiet=True, max_connections=2
    ).start_in_thread()
    clients = []
    try:
        for _ in range(2):
            client = socket.create_connection(("127.0.0.1", server.smtp_port), timeout=10)
            clients.append(client)
            assert client.recv(1024).startswith(b"220 ")
        extra = socket.create_connection(("127.0.0.1", server.smtp_port), timeout=10)
        clients.append(extra)
        assert extra.recv(1024) == b"421 4.3.2 Too many connections, try again later\r\n"
        assert extra.recv(1024) == b""  # and closed
        # the two admitted sessions still work
        clients[0].sendall(b"NOOP\r\n")
        assert clients[0].recv(1024).startswith(b"250")
    finally:
        for client in clients:
            client.close()
        server.stop_thread()
