"""``mailwright dkim keygen``: make a DKIM key and print the DNS record to publish;
``mailwright dkim record``: the record of the configured key, to compare with DNS."""

from __future__ import annotations

import argparse
import os
from typing import Any

from .common import EXIT_OK, fail

__all__ = ["register"]

_TXT_STRING = 255  # a TXT record is made of strings of at most 255 octets


def _cmd_keygen(args: argparse.Namespace) -> int:
    from ..exceptions import ImproperlyConfigured
    from ..message.dkim import DKIMSigner, generate_key

    out = args.out or f"{args.domain}.{args.selector}.pem"
    try:
        pem, _ = generate_key(ed25519=args.ed25519)
        # Checks the domain and selector (and that the key signs) before writing.
        signer = DKIMSigner(args.domain, args.selector, pem)
    except ImproperlyConfigured as exc:
        return fail("dkim keygen", str(exc))
    try:
        # Never over an existing key; readable by its owner only.
        descriptor = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return fail("dkim keygen", f"{out} exists; not overwriting a key (choose --out)")
    except OSError as exc:
        return fail("dkim keygen", f"cannot write {out}: {exc.strerror}")
    with os.fdopen(descriptor, "w", encoding="ascii") as file:
        file.write(pem)
    strings = _strings(signer.dns_record)
    kind = "Ed25519" if args.ed25519 else "RSA-2048"
    print(f"wrote the {kind} private key to {out} (mode 600: keep it secret)")
    print("publish this DNS TXT record (zone-file form, long values split in strings):")
    print()
    print(f"{signer.dns_name}. IN TXT {strings}")
    print()
    print("then sign with:")
    print(f"  EMAIL_DKIM_DOMAIN={signer.domain}")
    print(f"  EMAIL_DKIM_SELECTOR={signer.selector}")
    print(f"  EMAIL_DKIM_PRIVATE_KEY={os.path.abspath(out)}")
    if args.ed25519:
        print("note: not every receiver checks Ed25519 yet; sign with an RSA key as well")
    return EXIT_OK


def _cmd_record(args: argparse.Namespace) -> int:
    from ..message.dkim import signer

    try:
        configured = signer()
    except Exception as exc:  # ImproperlyConfigured names the setting; never the key
        return fail("dkim record", str(exc))
    if configured is None:
        return fail(
            "dkim record",
            "DKIM signing is off: set EMAIL_DKIM_DOMAIN, EMAIL_DKIM_SELECTOR and "
            "EMAIL_DKIM_PRIVATE_KEY",
        )
    print(f"signing as d={configured.domain} s={configured.selector} ({configured.algorithm})")
    print(f"{configured.dns_name}. IN TXT {_strings(configured.dns_record)}")
    print(f"compare with: dig +short TXT {configured.dns_name}")
    return EXIT_OK


def _strings(record: str) -> str:
    return " ".join(
        f'"{record[start : start + _TXT_STRING]}"' for start in range(0, len(record), _TXT_STRING)
    )


def register(commands: Any) -> None:
    dkim = commands.add_parser(
        "dkim",
        help="DKIM keys (needs the dkim extra)",
        description="DKIM signing set-up. Needs pip install 'mailwright[dkim]'.",
    )
    actions = dkim.add_subparsers(dest="dkim_command", metavar="ACTION")
    actions.required = True
    keygen = actions.add_parser(
        "keygen",
        help="make a key and print the DNS TXT record to publish",
        description="Write a new private key (RSA-2048, or Ed25519 with --ed25519) to "
        "--out (default DOMAIN.SELECTOR.pem; never overwritten, mode 600) and print the "
        "TXT record to publish at SELECTOR._domainkey.DOMAIN.",
    )
    keygen.add_argument("--domain", required=True, help="the signing domain (d=)")
    keygen.add_argument("--selector", required=True, help="the selector (s=), e.g. mail2026")
    keygen.add_argument("--ed25519", action="store_true", help="an Ed25519 key instead of RSA")
    keygen.add_argument("--out", help="where to write the private key (PEM)")
    keygen.set_defaults(handler=_cmd_keygen)
    record = actions.add_parser(
        "record",
        help="print the DNS TXT record of the configured key",
        description="Print where and what the public key of the configured DKIM key "
        "(EMAIL_DKIM_*) must be published, to compare with what DNS holds.",
    )
    record.set_defaults(handler=_cmd_record)
