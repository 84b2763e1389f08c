"""Real SMTP clients that nobody here wrote, against the catcher (``mailwright smtpd``):
swaks (Debian's ``swaks``) and Nodemailer (npm, on Node).

* swaks: STARTTLS and implicit TLS (verifying the catcher's CA), AUTH PLAIN and LOGIN,
  pipelining, an 8-bit body, a 2 MB attachment. What the catcher stores is compared
  byte for byte with what swaks was given.
* Nodemailer: a pooled transport with STARTTLS on TLS 1.3 (its Finished message and
  its EHLO arrive together), messages with attachments and non-ASCII names and text;
  display names that Nodemailer splits over several encoded words.

Nodemailer comes from ``MAILWRIGHT_NODE_MODULES`` or ``~/.cache/mailwright/node``
(``.ci/run`` runs ``npm install nodemailer`` there; nothing is installed in the repo).
``MAILWRIGHT_REQUIRE_CLIENTS=1`` (CI) fails instead of skipping when a client is
missing. ``MAILWRIGHT_INTEROP_LARGE=1`` sends more messages.
"""

from __future__ import annotations

import email
import email.policy
import io
import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailwright.devserver import DevServer

LARGE = os.environ.get("MAILWRIGHT_INTEROP_LARGE") == "1"
NODE_MESSAGES = 1000 if LARGE else 200
REQUIRED = os.environ.get("MAILWRIGHT_REQUIRE_CLIENTS") == "1"
NODE_MODULES = Path(
    os.environ.get("MAILWRIGHT_NODE_MODULES")
    or Path.home() / ".cache" / "mailwright" / "node" / "node_modules"
)

pytestmark = pytest.mark.timeout(180)


def missing(what: str) -> None:
    if REQUIRED:
        pytest.fail(f"MAILWRIGHT_REQUIRE_CLIENTS=1 but {what}")
    pytest.skip(what)


@pytest.fixture(scope="module")
def catcher(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    server = DevServer(
        "127.0.0.1",
        0,
        None,
        out=io.StringIO(),
        quiet=True,
        tls=True,
        tls_dir=tmp_path_factory.mktemp("catcher-tls"),
        smtps_port=0,
    ).start_in_thread()
    yield server
    server.stop_thread()


def wait_for(server: DevServer, count: int, timeout: float = 60) -> None:
    assert server.store.wait_for_count(count, timeout), (
        f"{len(server.store)} of {count} messages arrived"
    )


# --- swaks ---


@pytest.fixture(scope="module")
def swaks() -> str:
    path = shutil.which("swaks")
    if path is None:
        missing("swaks is not installed (Debian package swaks; .ci/run installs it)")
    assert path is not None
    return path


def run_swaks(swaks: str, catcher: DevServer, *args: str, implicit: bool = False) -> str:
    port = catcher.smtps_port if implicit else catcher.smtp_port
    assert catcher.ca_file is not None
    done = subprocess.run(
        [swaks, "--server", "127.0.0.1", "--port", str(port),
         "--tls-verify", "--tls-ca-path", catcher.ca_file,
         "--timeout", "60", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def exact_message(tmp_path: Path, name: str, body: bytes) -> tuple[Path, bytes]:
    data = (
        b"From: =?utf-8?q?J=C3=B6rg?= <joerg@example.test>\r\n"
        b"To: anna@example.test\r\n"
        + f"Subject: swaks {name}\r\n".encode()
        + b"Message-ID: <"
        + name.encode()
        + b"@swaks.example.test>\r\n"
        b"MIME-Version: 1.0\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\n"
        b"Content-Transfer-Encoding: 8bit\r\n"
        b"\r\n" + body
    )
    path = tmp_path / f"{name}.eml"
    # swaks ends DATA with CRLF "." CRLF after the file's last line, which therefore
    # has no line break of its own in the file.
    path.write_bytes(data.removesuffix(b"\r\n"))
    return path, data


def stored(catcher: DevServer, subject: str) -> bytes:
    found = [m for m in catcher.store.messages() if m.subject == subject]
    assert len(found) == 1, [m.subject for m in catcher.store.messages()]
    return found[0].raw


@pytest.mark.parametrize("mode", ["starttls", "implicit"])
@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
def test_swaks_tls_auth_8bit_exact(
    swaks: str, catcher: DevServer, tmp_path: Path, mode: str, mechanism: str
) -> None:
    name = f"{mode}-{mechanism}"
    body = "Grüße aus Köln ✓\r\n.a line with a leading dot\r\n..two\r\n".encode() * 3
    path, data = exact_message(tmp_path, name, body)
    before = len(catcher.store)
    tls = ["--tls-on-connect"] if mode == "implicit" else ["--tls"]
    out = run_swaks(
        swaks, catcher, *tls,
        "--auth", mechanism, "--auth-user", "swaks-user", "--auth-password", "pw",
        "--from", "joerg@example.test", "--to", "anna@example.test",
        "--data", f"@{path}",
        implicit=mode == "implicit",
    )  # fmt: skip
    assert "Authentication succeeded" in out or "235 " in out, out
    wait_for(catcher, before + 1)
    message = next(m for m in catcher.store.messages() if m.subject == f"swaks {name}")
    assert message.raw == data
    assert message.auth_user == "swaks-user"
    assert (message.mail_from, message.rcpt_tos) == ("joerg@example.test", ["anna@example.test"])


def test_swaks_pipelining_and_a_2mb_attachment(
    swaks: str, catcher: DevServer, tmp_path: Path
) -> None:
    blob = os.urandom(2 * 1024 * 1024)
    (tmp_path / "big.bin").write_bytes(blob)
    before = len(catcher.store)
    out = run_swaks(
        swaks, catcher, "--tls", "--pipeline",
        "--from", "sender@example.test",
        "--to", "a@example.test,b@example.test,c@example.test",
        "--header", "Subject: swaks pipelined attachment",
        "--body", "See the attachment.",
        "--attach-type", "application/octet-stream", "--attach-name", "big.bin",
        "--attach", f"@{tmp_path / 'big.bin'}",
    )  # fmt: skip
    # swaks sends MAIL, the RCPTs and DATA in one write when PIPELINING is offered.
    assert "PIPELINING" in out
    wait_for(catcher, before + 1)
    raw = stored(catcher, "swaks pipelined attachment")
    message = next(m for m in catcher.store.messages() if m.raw == raw)
    assert message.rcpt_tos == ["a@example.test", "b@example.test", "c@example.test"]
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    attachments = [p for p in parsed.walk() if p.get_filename() == "big.bin"]
    assert len(attachments) == 1 and attachments[0].get_content() == blob


# --- Nodemailer ---

# Long enough that Nodemailer splits them over several encoded words.
FROM_NAME = "送信者テスト送信者テスト送信者テスト送信者テスト"
TO_NAME = "Jörg Müller-Lüdenscheidt Ärger Über Öl Straße"

NODE_SCRIPT = r"""
const nodemailer = require(process.env.NODEMAILER);
const fs = require("fs");
const count = Number(process.env.COUNT);
const transport = nodemailer.createTransport({
  host: "127.0.0.1", port: Number(process.env.PORT), secure: false, requireTLS: true,
  pool: true, maxConnections: 3, maxMessages: Infinity,
  auth: { user: "node-user", pass: "node-pass" },
  tls: { ca: fs.readFileSync(process.env.CA), servername: "localhost",
         minVersion: "TLSv1.3", maxVersion: "TLSv1.3" },
  connectionTimeout: 30000, greetingTimeout: 30000, socketTimeout: 30000,
});
const attachment = Buffer.alloc(20000);
for (let i = 0; i < attachment.length; i++) attachment[i] = (i * 7) & 255;
async function main() {
  const jobs = [];
  for (let i = 0; i < count; i++) {
    jobs.push(transport.sendMail({
      from: { name: process.env.FROM_NAME + " " + i, address: "sender@example.test" },
      to: [{ name: process.env.TO_NAME, address: "joerg@example.test" }],
      subject: "Nodemailer " + i + " — Grüße, 日本語の件名",
      text: "Hallo " + i + ",\nÄrger über Öl ✓\n.leading dot\n",
      html: "<p>Hallo " + i + " — <b>Grüße</b></p>",
      messageId: "<node." + i + "@example.test>",
      attachments: [
        { filename: "daten-" + i + ".bin", content: attachment },
        { filename: "notiz ü " + i + ".txt", content: "Zeile ✓ " + i + "\n" },
      ],
    }));
  }
  const results = await Promise.all(jobs);
  transport.close();
  console.log(JSON.stringify({ accepted: results.map(r => r.accepted.length) }));
}
main().catch(err => { console.error(err); process.exit(1); });
"""


@pytest.fixture(scope="module")
def nodemailer() -> Path:
    node = shutil.which("node")
    if node is None:
        missing("node is not installed")
    package = NODE_MODULES / "nodemailer"
    if not (package / "package.json").exists():
        missing(f"nodemailer is not installed in {NODE_MODULES} (.ci/run runs npm install)")
    return package


def test_nodemailer_pooled_starttls_tls13(
    nodemailer: Path, catcher: DevServer, tmp_path: Path
) -> None:
    script = tmp_path / "send.js"
    script.write_text(NODE_SCRIPT)
    before = len(catcher.store)
    assert catcher.ca_file is not None
    started = time.monotonic()
    done = subprocess.run(
        ["node", str(script)],
        capture_output=True,
        text=True,
        timeout=170,
        env={
            **os.environ,
            "NODEMAILER": str(nodemailer),
            "COUNT": str(NODE_MESSAGES),
            "PORT": str(catcher.smtp_port),
            "CA": catcher.ca_file,
            "FROM_NAME": FROM_NAME,
            "TO_NAME": TO_NAME,
        },
    )
    elapsed = time.monotonic() - started
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads(done.stdout)["accepted"] == [1] * NODE_MESSAGES
    wait_for(catcher, before + NODE_MESSAGES)
    received = {}
    for stored_message in catcher.store.messages():
        match = re.search(rb"^Message-ID: (<node\.\d+@example\.test>)", stored_message.raw, re.M)
        if match:
            received[match.group(1).decode()] = stored_message
    assert len(received) == NODE_MESSAGES
    for i in range(NODE_MESSAGES):
        message = received[f"<node.{i}@example.test>"]
        assert message.auth_user == "node-user"
        parsed = message.parsed()
        assert parsed.get_body(("plain",)).get_content().replace("\r\n", "\n") == (
            f"Hallo {i},\nÄrger über Öl ✓\n.leading dot\n"
        )
        files = {p.get_filename(): p.get_content() for p in parsed.iter_attachments()}
        assert files[f"daten-{i}.bin"] == bytes((n * 7) & 255 for n in range(20000))
        assert files[f"notiz ü {i}.txt"].replace("\r\n", "\n") == f"Zeile ✓ {i}\n"
        # The catcher's list and API: names Nodemailer split over adjacent encoded
        # words read whole (RFC 2047 section 6.2).
        summary = message.summary_dict()
        assert (
            summary["from"]
            == f"送信者テスト送信者テスト送信者テスト送信者テスト {i} <sender@example.test>"
        )
        assert summary["to"] == "Jörg Müller-Lüdenscheidt Ärger Über Öl Straße <joerg@example.test>"
        assert summary["subject"] == f"Nodemailer {i} — Grüße, 日本語の件名"
    print(f"nodemailer: {NODE_MESSAGES} messages in {elapsed:.1f} s")
