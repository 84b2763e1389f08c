"""Checking DKIM signatures in tests, with two independent implementations and no
network: dkimpy's verifier (its ``dnsfunc`` answered from a dict) and Perl's
Mail::DKIM (``dkim_verify.pl``, its DNS query replaced by the same records).

Keys are made once per test session: an RSA-2048 and an Ed25519 key, each with its
own selector under ``example.com``.
"""

from __future__ import annotations

import functools
import logging
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dkim

from mailwright.message.dkim import DKIMSigner, generate_key

TESTS = Path(__file__).resolve().parent
DOMAIN = "example.com"


@dataclass(frozen=True)
class Key:
    kind: str  # "rsa" or "ed25519"
    selector: str
    pem: str
    record: str  # the TXT record text
    options: dict[str, str]  # the backend's dkim_* options
    settings: dict[str, str]  # the same as EMAIL_DKIM_* settings

    @property
    def dns_name(self) -> str:
        return f"{self.selector}._domainkey.{DOMAIN}"


@functools.cache
def key(kind: str, selector: str | None = None) -> Key:
    pem, _ = generate_key(ed25519=kind == "ed25519")
    selector = selector or f"{kind}2026"
    signer = DKIMSigner(DOMAIN, selector, pem)
    return Key(
        kind,
        selector,
        pem,
        signer.dns_record,
        {"dkim_domain": DOMAIN, "dkim_selector": selector, "dkim_private_key": pem},
        {
            "EMAIL_DKIM_DOMAIN": DOMAIN,
            "EMAIL_DKIM_SELECTOR": selector,
            "EMAIL_DKIM_PRIVATE_KEY": pem,
        },
    )


def zone(*keys: Key) -> dict[str, str]:
    return {k.dns_name: k.record for k in keys}


def signatures(data: bytes) -> list[dict[bytes, bytes]]:
    """The tags of every DKIM-Signature field of a message, top first."""
    state = dkim.DKIM(data)
    return [
        dkim.util.parse_tag_value(value)
        for name, value in state.headers
        if name.lower() == b"dkim-signature"
    ]


def signed_headers(data: bytes) -> list[str]:
    """The h= list of the (only) signature, lower case, in order."""
    (tags,) = signatures(data)
    return [name.strip().decode().lower() for name in re.split(rb"\s*:\s*", tags[b"h"])]


def dkimpy_verify(data: bytes, records: dict[str, str]) -> tuple[bool, str]:
    """dkimpy's verdict on the first signature, and its reason when it fails."""
    answers = {name.lower().rstrip("."): text for name, text in records.items()}
    looked_up: list[str] = []

    def dnsfunc(name: bytes, timeout: float = 5) -> bytes | None:
        text = name.decode("ascii").lower().rstrip(".")
        looked_up.append(text)
        found = answers.get(text)
        return found.encode("ascii") if found is not None else None

    messages: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            messages.append(record.getMessage())

    logger = logging.getLogger("tests.dkimpy")
    logger.propagate = False
    handler = Collect(logging.ERROR)
    logger.addHandler(handler)
    try:
        ok = bool(dkim.verify(data, logger=logger, dnsfunc=dnsfunc))
    finally:
        logger.removeHandler(handler)
    assert looked_up, "the verifier looked up no key"
    return ok, "; ".join(messages)


def perl_available() -> bool:
    if shutil.which("perl") is None:
        return False
    probe = subprocess.run(
        ["perl", "-MMail::DKIM::Verifier", "-MNet::DNS", "-e", "1"],
        capture_output=True,
        check=False,
    )
    return probe.returncode == 0


def perl_verify(messages: list[bytes], records: dict[str, str]) -> list[str]:
    """Mail::DKIM's result for each message: ``"pass 1 "``, ``"fail 1 body has been
    altered"``... (result, number of signatures, detail)."""
    with tempfile.TemporaryDirectory(prefix="mailwright-dkim-") as folder:
        root = Path(folder)
        zone_file = root / "zone"
        zone_file.write_text("".join(f"{n}\t{t}\n" for n, t in records.items()))
        files = []
        for index, data in enumerate(messages):
            path = root / f"{index}.eml"
            path.write_bytes(data)
            files.append(str(path))
        done = subprocess.run(
            ["perl", str(TESTS / "dkim_verify.pl"), str(zone_file), *files],
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == len(messages), done.stdout + done.stderr
    return lines


def assert_verified(messages: list[bytes], *keys: Key, perl: bool = True) -> None:
    """Every message carries exactly one DKIM signature, by one of ``keys``, and it
    verifies with dkimpy and, for RSA, with Mail::DKIM."""
    records = zone(*keys)
    assert messages
    by_selector = {k.selector: k for k in keys}
    rsa: list[bytes] = []
    for data in messages:
        tags = signatures(data)
        assert len(tags) == 1, f"{len(tags)} signatures"
        used = by_selector[tags[0][b"s"].decode()]
        assert tags[0][b"d"] == DOMAIN.encode()
        assert tags[0][b"c"] == b"relaxed/relaxed"
        assert tags[0][b"a"] == (b"rsa-sha256" if used.kind == "rsa" else b"ed25519-sha256")
        ok, why = dkimpy_verify(data, records)
        assert ok, f"dkimpy: {why}"
        if used.kind == "rsa":
            rsa.append(data)
    if perl and rsa:
        for line in perl_verify(rsa, records):
            assert line.startswith("pass 1"), f"Mail::DKIM: {line}"


def received_bytes(received: Any) -> bytes:
    data: bytes = received.data
    return data
