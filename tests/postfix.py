"""A private Postfix (and Dovecot for SASL) for the tests: a real receiving MTA.

``PostfixServer`` writes a config directory under a temporary directory, starts
``postfix -c DIR start`` (its own queue and data directories, its own log file, no
system service touched) with one smtpd per port on free 127.0.0.1 ports, and delivers
every recipient ``NAME@example.test`` to the Maildir ``mail/example.test/NAME/`` under
that directory. Nothing leaves the machine: every other destination is refused at RCPT
(``defer_unauth_destination``), and the relay and default transports are ``error:``.

The ports (``PostfixServer.ports``):

* ``main`` — STARTTLS (the test CA's certificate), AUTH (Dovecot) after STARTTLS only,
  PIPELINING, 8BITMIME, SMTPUTF8, SIZE;
* ``implicit`` — TLS from the first byte (``smtpd_tls_wrappermode``), AUTH;
* ``nopipelining`` — no PIPELINING in the EHLO reply;
* ``seven_bit`` — no 8BITMIME and no SMTPUTF8;
* ``limits`` — SIZE 40000 and at most 3 recipients per message;
* ``rate`` — at most 3 messages per minute from a client (anvil).

Every port asks ``PolicyServer`` (a policy service written here, on loopback) at RCPT
and at the end of data; the local part of the address decides (``POLICY``).

Postfix must run as root (it drops to ``mail_owner`` itself); ``available()`` says why
it cannot run here, for a skip with the reason.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import socket
import socketserver
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from certs import CertFiles

DOMAIN = "example.test"

# What the policy service answers, by the local part of the address it is asked about:
# at RCPT by the recipient's, at the end of data by the sender's.
POLICY = {
    "rcpt": {
        "refuse550": "550 5.7.1 refused by the test policy",
        "defer450": "450 4.7.1 deferred by the test policy",
    },
    "eod": {
        "eod550": "550 5.7.1 content refused by the test policy",
        "eod450": "450 4.7.1 content deferred by the test policy",
    },
}

# The mailboxes that exist; any other recipient at example.test is unknown (550 at RCPT).
MAILBOXES = [
    "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi",
    "refuse550", "defer450", "eod550", "eod450",
    *(f"user{n}" for n in range(40)),
    *(f"bulk{n}" for n in range(10)),
]  # fmt: skip

USER = "alice"
PASSWORD = "s3cret p4ss"


SBIN = "/usr/sbin:/usr/bin:/sbin:/bin"


def _tool(name: str) -> str:
    return shutil.which(name, path=SBIN) or name


def available() -> str | None:
    """Why Postfix cannot run here, or None when it can."""
    if os.geteuid() != 0:
        return "the Postfix tests start a private Postfix, which needs root (CI runs as root)"
    for tool in ("postfix", "postconf"):
        if shutil.which(tool, path=SBIN) is None:
            return f"Debian's postfix is not installed ({tool} missing; .ci/run installs it)"
    return None


def dovecot_available() -> bool:
    return shutil.which("dovecot", path=SBIN) is not None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class _PolicyHandler(socketserver.StreamRequestHandler):
    server: PolicyServer

    def handle(self) -> None:
        # Postfix keeps the connection and sends one request after another, each a
        # block of name=value lines ended by an empty line.
        attributes: dict[str, str] = {}
        for raw in self.rfile:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            if line:
                name, _, value = line.partition("=")
                attributes[name] = value
                continue
            action = self.server.decide(attributes)
            self.wfile.write(f"action={action}\n\n".encode())
            self.wfile.flush()
            attributes = {}


class PolicyServer(socketserver.ThreadingTCPServer):
    """Postfix's policy delegation protocol (SMTPD_POLICY_README) on 127.0.0.1."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _PolicyHandler)
        self.port: int = self.server_address[1]
        self.requests: list[dict[str, str]] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)
        self._thread.start()

    def decide(self, attributes: dict[str, str]) -> str:
        with self._lock:
            self.requests.append(attributes)
        state = attributes.get("protocol_state", "")
        if state == "RCPT":
            local = attributes.get("recipient", "").partition("@")[0].lower()
            return POLICY["rcpt"].get(local, "DUNNO")
        if state == "END-OF-MESSAGE":
            local = attributes.get("sender", "").partition("@")[0].lower()
            return POLICY["eod"].get(local, "DUNNO")
        return "DUNNO"

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


_DOVECOT_CONF = """\
base_dir = {root}/dovecot/run
state_dir = {root}/dovecot/state
log_path = {root}/dovecot/log
protocols =
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
default_internal_user = dovecot
default_login_user = dovenull
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/dovecot/users
}}
userdb {{
  driver = static
  args = uid=nobody gid=nogroup home=/nonexistent
}}
service auth {{
  unix_listener {root}/auth {{
    mode = 0666
  }}
}}
"""


class Dovecot:
    """An auth-only Dovecot with its own config, run directory and one user."""

    def __init__(self, root: Path) -> None:
        self.root = root
        directory = root / "dovecot"
        (directory / "run").mkdir(parents=True)
        (directory / "state").mkdir()
        users = directory / "users"
        users.write_text(f"{USER}:{{PLAIN}}{PASSWORD}\n")
        os.chmod(users, 0o644)
        self.config = directory / "dovecot.conf"
        self.config.write_text(_DOVECOT_CONF.format(root=root))
        self.socket = root / "auth"

    def start(self) -> None:
        # In the foreground (-F): a child of the tests, ended by stop().
        self._stderr = (self.root / "dovecot" / "stderr").open("wb")
        self.process = subprocess.Popen(
            [_tool("dovecot"), "-F", "-c", str(self.config)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=self._stderr,
        )
        deadline = time.monotonic() + 30
        while not self.socket.exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"dovecot did not listen on {self.socket}: {self.log()}")
            time.sleep(0.02)

    def log(self) -> str:
        text = ""
        for name in ("stderr", "log"):
            path = self.root / "dovecot" / name
            if path.exists():
                text += path.read_text(errors="replace")
        return text

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(30)
        self._stderr.close()


SERVICES: dict[str, list[str]] = {
    "main": [],
    "implicit": ["smtpd_tls_wrappermode=yes", "smtpd_tls_auth_only=no"],
    "nopipelining": ["smtpd_discard_ehlo_keywords=pipelining"],
    "seven_bit": ["smtpd_discard_ehlo_keywords=8bitmime,smtputf8"],
    "limits": ["message_size_limit=40000", "smtpd_recipient_limit=3"],
    "rate": ["smtpd_client_message_rate_limit=3", "smtpd_client_event_limit_exceptions="],
}


@dataclass
class PostfixServer:
    certs: CertFiles
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="mailwright-mta-")))
    ports: dict[str, int] = field(default_factory=dict)
    sasl: bool = False

    def __post_init__(self) -> None:
        os.chmod(self.root, 0o755)  # the delivery agent (nobody) and smtpd walk through it
        self.config = self.root / "etc"
        self.queue = self.root / "queue"
        self.data = self.root / "data"
        self.mail = self.root / "mail"
        self.log_file = self.root / "maillog"
        for directory in (self.config, self.queue, self.data, self.mail):
            directory.mkdir()
        owner = pwd.getpwnam("postfix")
        os.chown(self.data, owner.pw_uid, owner.pw_gid)
        nobody = pwd.getpwnam("nobody")
        os.chown(self.mail, nobody.pw_uid, nobody.pw_gid)
        self.uid, self.gid = nobody.pw_uid, nobody.pw_gid
        self.policy = PolicyServer()
        self.dovecot: Dovecot | None = Dovecot(self.root) if dovecot_available() else None

    # --- configuration ---

    def _main_cf(self) -> str:
        tls = self.config / "tls"
        sasl = (
            f"smtpd_sasl_auth_enable = yes\n"
            f"smtpd_sasl_type = dovecot\n"
            f"smtpd_sasl_path = {self.root}/auth\n"
            if self.sasl
            else ""
        )
        policy = f"check_policy_service inet:127.0.0.1:{self.policy.port}"
        return f"""\
compatibility_level = 3.6
config_directory = {self.config}
queue_directory = {self.queue}
data_directory = {self.data}
mail_owner = postfix
setgid_group = postdrop
myhostname = mta.{DOMAIN}
mydomain = {DOMAIN}
myorigin = {DOMAIN}
mydestination =
mynetworks =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
smtpd_banner = $myhostname ESMTP private test instance
maillog_file = {self.log_file}
maillog_file_prefixes = {self.root}
syslog_name = mailwright-postfix
smtpd_peername_lookup = no
smtp_dns_support_level = disabled
biff = no
alias_maps =
alias_database =
local_header_rewrite_clients =
in_flow_delay = 0
smtpd_error_sleep_time = 0
smtpd_soft_error_limit = 1000
smtpd_hard_error_limit = 1000
smtpd_client_event_limit_exceptions = 127.0.0.0/8
message_size_limit = 10240000
queue_run_delay = 1s
minimal_backoff_time = 1s
maximal_backoff_time = 2s
relay_transport = error:this test MTA relays nothing
default_transport = error:this test MTA sends nothing out
virtual_transport = virtual
virtual_mailbox_domains = {DOMAIN}
virtual_mailbox_base = {self.mail}
virtual_mailbox_maps = texthash:{self.config}/mailboxes
virtual_uid_maps = static:{self.uid}
virtual_gid_maps = static:{self.gid}
virtual_mailbox_limit = 0
smtpd_tls_security_level = may
smtpd_tls_cert_file = {tls}/server.pem
smtpd_tls_key_file = {tls}/server.key
smtpd_tls_auth_only = yes
smtpd_tls_received_header = yes
smtpd_relay_restrictions = permit_sasl_authenticated, defer_unauth_destination
smtpd_recipient_restrictions = {policy}
smtpd_end_of_data_restrictions = {policy}
smtpd_policy_service_timeout = 30s
{sasl}"""

    def _master_cf(self) -> str:
        lines = []
        for name, overrides in SERVICES.items():
            options = [f"-o syslog_name=mailwright-postfix/{name}", *(f"-o {o}" for o in overrides)]
            lines.append(f"127.0.0.1:{self.ports[name]} inet n - n - - smtpd {' '.join(options)}")
        lines.append(
            """\
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
virtual   unix  -       n       n       -       -       virtual
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""
        )
        return "\n".join(lines)

    def _write_config(self) -> None:
        for port_name in SERVICES:
            self.ports[port_name] = _free_port()
        (self.config / "main.cf").write_text(self._main_cf())
        (self.config / "master.cf").write_text(self._master_cf())
        # virtual(8) allows no regexp substitution here: every mailbox is listed.
        (self.config / "mailboxes").write_text(
            "".join(f"{user}@{DOMAIN} {DOMAIN}/{user}/\n" for user in MAILBOXES)
        )
        tls = self.config / "tls"
        tls.mkdir(exist_ok=True)
        for name in ("server.pem", "server.key"):
            shutil.copy(Path(self.certs.directory) / name, tls / name)
        os.chmod(tls / "server.key", 0o600)

    # --- running ---

    def _postfix(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [_tool("postfix"), "-c", str(self.config), *args],
            capture_output=True,
            text=True,
            timeout=120,
            check=check,
        )

    def start(self) -> PostfixServer:
        if self.dovecot is not None:
            self.dovecot.start()
            self.sasl = True
        # A free port may be taken by someone else before master binds it: try again
        # with new ports (master exits at once when a bind fails).
        for attempt in range(3):
            self._write_config()
            started = self._postfix("start", check=False)
            if started.returncode == 0 and self._wait_listening():
                return self
            self._postfix("abort", check=False)
            self._wait_stopped()
            if attempt == 2 or "in use" not in self.log():
                raise RuntimeError(
                    f"postfix did not start: {started.stdout}{started.stderr}\n{self.log()}"
                )
        raise AssertionError("unreachable")

    def _wait_listening(self) -> bool:
        deadline = time.monotonic() + 60
        pending = set(self.ports.values())
        while pending and time.monotonic() < deadline:
            for port in list(pending):
                with socket.socket() as sock:
                    sock.settimeout(5)
                    if sock.connect_ex(("127.0.0.1", port)) == 0:
                        pending.discard(port)
            if pending:
                if not (self.queue / "pid" / "master.pid").exists():
                    return False
                time.sleep(0.02)
        return not pending

    def _wait_stopped(self) -> None:
        pid_file = self.queue / "pid" / "master.pid"
        deadline = time.monotonic() + 60
        while pid_file.exists() and time.monotonic() < deadline:
            try:
                pid = int(pid_file.read_text().split()[0])
                os.kill(pid, 0)
            except (ValueError, IndexError, ProcessLookupError, FileNotFoundError):
                return
            time.sleep(0.02)

    def stop(self) -> None:
        self._postfix("abort", check=False)  # nothing in its queue matters now
        self._wait_stopped()
        if self.dovecot is not None:
            self.dovecot.stop()
        self.policy.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    # --- what happened ---

    def log(self) -> str:
        return self.log_file.read_text(errors="replace") if self.log_file.exists() else ""

    def maildir(self, user: str) -> Path:
        return self.mail / DOMAIN / user

    def delivered(self, user: str) -> list[bytes]:
        """The messages in the user's Maildir, oldest first (names start with the
        delivery time)."""
        new = self.maildir(user) / "new"
        if not new.is_dir():
            return []
        files = sorted(new.iterdir(), key=lambda p: (p.stat().st_mtime_ns, p.name))
        return [path.read_bytes() for path in files]

    def wait_for(self, user: str, count: int, timeout: float = 60) -> list[bytes]:
        """Wait until ``count`` messages are in the Maildir (more is a failure too)."""
        deadline = time.monotonic() + timeout
        while True:
            messages = self.delivered(user)
            if len(messages) >= count:
                assert len(messages) == count, f"{len(messages)} messages for {user}, not {count}"
                return messages
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{len(messages)} of {count} messages delivered to {user} in {timeout} s; "
                    f"log:\n{self.log()[-4000:]}"
                )
            time.sleep(0.02)

    def log_size(self) -> int:
        return len(self.log())

    def wait_for_log(self, pattern: str, timeout: float = 60, since: int = 0) -> re.Match[str]:
        """The first log line (after offset ``since``) matching ``pattern``."""
        deadline = time.monotonic() + timeout
        compiled = re.compile(pattern, re.MULTILINE)
        while True:
            match = compiled.search(self.log(), since)
            if match:
                return match
            if time.monotonic() > deadline:
                raise AssertionError(f"no log line matches {pattern!r}:\n{self.log()[-4000:]}")
            time.sleep(0.02)


_ADDED = re.compile(rb"^(?:Return-Path|Delivered-To|X-Original-To|Received):")


def added(delivered: bytes) -> tuple[bytes, bytes]:
    """``(the lines Postfix put on top, the message as it arrived)``, LF line breaks."""
    lines = delivered.split(b"\n")
    index = 0
    while index < len(lines) and _ADDED.match(lines[index]):
        index += 1
        while index < len(lines) and lines[index][:1] in (b" ", b"\t"):
            index += 1
    return b"\n".join(lines[:index]), b"\n".join(lines[index:])


def as_sent(delivered: bytes) -> bytes:
    """A delivered message without the lines Postfix adds on top (Return-Path,
    Delivered-To, Received), with CRLF line breaks as on the wire."""
    return added(delivered)[1].replace(b"\n", b"\r\n")


def return_path(delivered: bytes) -> str:
    match = re.match(rb"Return-Path: <([^>]*)>", delivered)
    assert match, delivered[:200]
    return match.group(1).decode()
