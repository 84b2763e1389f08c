"""DKIM signing (RFC 6376; Ed25519 keys per RFC 8463): the one place mail is signed.

A backend makes its ``DKIMSigner`` once, when it is created, with ``signer()``: the
backend's ``dkim_*`` options, each falling back to its ``EMAIL_DKIM_*`` setting. That
checks everything (the key loads and signs, the domain and selector are valid names,
the header list signs From) and raises ``ImproperlyConfigured`` naming what is wrong,
before anything is sent. Signing is on when the domain, the selector and the key are
all set; with none of them it is off (``signer()`` returns None).

The signature is made once, on the final wire bytes: ``EmailMessage.envelope(dkim=...)``
calls ``DKIMSigner.sign`` as its last step, and everything after that (the SMTP engine,
``send_bulk``'s connections and retries, the durable outbox's stored rows, Celery
payloads) carries the signed bytes as they are. A ``RawMessage`` is already in wire
form and is never signed again: that is how queued mail, signed by the sender, is
delivered by the workers without a second signature.

Signing uses dkimpy (and PyNaCl for Ed25519); keys are read with ``cryptography``.
All three come with the ``dkim`` extra: ``pip install 'mailwright[dkim]'``.
"""

from __future__ import annotations

import base64
import binascii
import functools
import logging
import os
import re
import threading
from collections.abc import Sequence
from typing import Any

from ..conf import clean_setting, settings
from ..exceptions import DKIMSigningError, ImproperlyConfigured

__all__ = [
    "DEFAULT_HEADERS",
    "DKIMSigner",
    "KeyPair",
    "dns_record",
    "generate_key",
    "signer",
]

#: The fields signed by default, when the message has them (RFC 6376 section 5.4.1's
#: list, List-Unsubscribe-Post for RFC 8058, and every other List-* field). From (and
#: List-Unsubscribe, List-Unsubscribe-Post when present) is signed once more than it
#: occurs ("oversigned"), so no other can be added in transit.
DEFAULT_HEADERS: tuple[str, ...] = (
    "From",
    "Sender",
    "Reply-To",
    "Subject",
    "Date",
    "Message-ID",
    "To",
    "Cc",
    "In-Reply-To",
    "References",
    "MIME-Version",
    "Content-Type",
    "Content-Transfer-Encoding",
    "Content-ID",
    "Content-Description",
    "Content-Language",
    "Resent-Date",
    "Resent-From",
    "Resent-Sender",
    "Resent-To",
    "Resent-Cc",
    "Resent-Message-ID",
    "List-Id",
    "List-Help",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
    "List-Subscribe",
    "List-Post",
    "List-Owner",
    "List-Archive",
)
_DEFAULT = frozenset(name.lower().encode("ascii") for name in DEFAULT_HEADERS)
_OVERSIGNED = (b"list-unsubscribe", b"list-unsubscribe-post")
# RFC 6376 section 5.4: fields that change in transit (or must not be seen) and that a
# signature must not cover.
_NEVER = frozenset(
    {"dkim-signature", "return-path", "received", "comments", "keywords", "bcc", "resent-bcc"}
)
_FIELD_NAME = re.compile(r"[\x21-\x39\x3b-\x7e]+")
_LABEL = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?")
_MIN_RSA_BITS = 1024  # RFC 8301: verifiers refuse shorter keys
_PROBE = b"From: probe@example.com\r\nSubject: probe\r\n\r\nprobe\r\n"
# dkimpy logs through "dkimpy"; errors reach the caller as exceptions instead.
_QUIET = logging.getLogger("mailwright.dkim")

_SETTINGS = {
    "domain": "EMAIL_DKIM_DOMAIN",
    "selector": "EMAIL_DKIM_SELECTOR",
    "private_key": "EMAIL_DKIM_PRIVATE_KEY",
    "headers": "EMAIL_DKIM_HEADERS",
}


def _label(option: str) -> str:
    return f"{_SETTINGS[option]} (dkim_{option}=)"


def _option(option: str, value: Any) -> Any:
    name = _SETTINGS[option]
    if value is None:
        return getattr(settings, name)
    try:
        return clean_setting(name, value)
    except ImproperlyConfigured as exc:
        raise ImproperlyConfigured(f"dkim_{option}= ({name}): {exc}") from None


def signer(
    domain: str | None = None,
    selector: str | None = None,
    private_key: str | bytes | os.PathLike[str] | None = None,
    headers: Sequence[str] | str | None = None,
) -> DKIMSigner | None:
    """The signer a backend uses: its ``dkim_*`` options, each ``None`` taken from the
    ``EMAIL_DKIM_*`` setting. None when signing is off (no domain, selector or key);
    ``ImproperlyConfigured`` when only some are set or any is wrong."""
    values = {
        "domain": _option("domain", domain),
        "selector": _option("selector", selector),
        "private_key": _option("private_key", private_key),
    }
    if not any(values.values()):
        return None
    missing = [_label(option) for option, value in values.items() if not value]
    if missing:
        raise ImproperlyConfigured(
            "DKIM signing needs EMAIL_DKIM_DOMAIN, EMAIL_DKIM_SELECTOR and "
            f"EMAIL_DKIM_PRIVATE_KEY; not set: {', '.join(missing)}"
        )
    names = _option("headers", headers)
    return _cached_signer(
        values["domain"], values["selector"], _key_text(values["private_key"]), names
    )


@functools.lru_cache(maxsize=16)
def _cached_signer(
    domain: str, selector: str, key_text: str, headers: tuple[str, ...] | None
) -> DKIMSigner:
    # A backend is made for every send_mail(): its signer is made once per configuration.
    return DKIMSigner(domain, selector, key_text, headers)


def _key_text(value: str) -> str:
    """The key itself: ``value`` when it is PEM text (or a bare Ed25519 key as dkimpy
    writes it), else the content of the file it names. The value is never shown in an
    error, as it may be the key."""
    if "-----BEGIN" in value or _bare_ed25519(value) is not None:
        return value
    path = os.path.expanduser(value.strip())
    # A path is shown; anything that might be key material is not.
    shown = repr(path) if any(c in path for c in "._-~ ") else "(the value is not shown)"
    try:
        with open(path, "rb") as file:
            data = file.read(1_000_000)
    except OSError as exc:
        raise ImproperlyConfigured(
            f"{_label('private_key')}: not PEM text, and the file {shown} cannot be read "
            f"({exc.strerror or type(exc).__name__})"
        ) from None
    try:
        return data.decode("ascii")
    except UnicodeDecodeError:
        raise ImproperlyConfigured(
            f"{_label('private_key')}: the file {shown} is not a PEM key (not ASCII text)"
        ) from None


def _bare_ed25519(text: str) -> bytes | None:
    stripped = text.strip()
    if len(stripped) != 44:
        return None
    try:
        seed = base64.b64decode(stripped, validate=True)
    except (binascii.Error, ValueError):
        return None
    return seed if len(seed) == 32 else None


def _domain(value: str) -> str:
    try:
        ascii_name = value.strip().rstrip(".").encode("idna").decode("ascii")
    except UnicodeError:
        raise ImproperlyConfigured(f"{_label('domain')}: {value!r} is not a domain name") from None
    labels = ascii_name.split(".")
    if len(ascii_name) > 253 or len(labels) < 2 or not all(map(_LABEL.fullmatch, labels)):
        raise ImproperlyConfigured(f"{_label('domain')}: {value!r} is not a domain name")
    return ascii_name.lower()


def _selector(value: str) -> str:
    text = value.strip()
    if not text.isascii() or not all(_LABEL.fullmatch(label) for label in text.split(".")):
        raise ImproperlyConfigured(
            f"{_label('selector')}: {value!r} is not a selector (letters, digits, '-', "
            "'_', dot-separated)"
        )
    return text


def _header_names(names: Sequence[str] | None) -> tuple[bytes, ...] | None:
    if names is None:
        return None
    lowered = tuple(name.lower() for name in names)
    if "from" not in lowered:
        raise ImproperlyConfigured(f"{_label('headers')}: must include From (RFC 6376)")
    never = sorted(set(lowered) & _NEVER)
    if never:
        raise ImproperlyConfigured(
            f"{_label('headers')}: {', '.join(never)} must not be signed (RFC 6376 "
            "section 5.4: they change in transit or must not be seen)"
        )
    return tuple(name.encode("ascii") for name in lowered)


class KeyPair:
    """A private key loaded for signing: its algorithm, what dkimpy takes, and the
    public half for the DNS record."""

    __slots__ = ("algorithm", "private", "public")

    def __init__(self, algorithm: str, private: bytes, public: str) -> None:
        self.algorithm = algorithm  # "rsa-sha256" or "ed25519-sha256"
        self.private = private  # PKCS#1 PEM (RSA) or the base64 seed (Ed25519)
        self.public = public  # the p= value of the DNS record

    def __repr__(self) -> str:
        return f"<KeyPair {self.algorithm}>"  # never the key

    @property
    def key_type(self) -> str:
        return "ed25519" if self.algorithm == "ed25519-sha256" else "rsa"

    @classmethod
    def load(cls, text: str) -> KeyPair:
        """Read PEM text (PKCS#1 or PKCS#8, RSA or Ed25519) or a bare base64 Ed25519
        seed; ``ImproperlyConfigured`` saying what is wrong (never showing the key)."""
        try:
            from cryptography.hazmat.primitives import serialization
            from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
        except ImportError:
            raise _missing_extra("cryptography") from None

        label = _label("private_key")
        seed = _bare_ed25519(text)
        if seed is not None:
            key: Any = ed25519.Ed25519PrivateKey.from_private_bytes(seed)
        else:
            pem_text = text.strip().replace("\r\n", "\n")
            if "\n" not in pem_text and "\\n" in pem_text:
                # One line with literal \n escapes, as .env files and CI secrets hold it.
                pem_text = pem_text.replace("\\n", "\n")
            pem = pem_text.encode("ascii", "replace") + b"\n"
            try:
                key = serialization.load_pem_private_key(pem, password=None)
            except TypeError:
                raise ImproperlyConfigured(
                    f"{label}: the key is encrypted; give it unencrypted (openssl pkey -in "
                    "KEY -out PLAIN) and protect the file instead"
                ) from None
            except (ValueError, UnicodeError):
                raise ImproperlyConfigured(
                    f"{label}: not a PEM private key (expected '-----BEGIN PRIVATE KEY-----' "
                    "or '-----BEGIN RSA PRIVATE KEY-----'; the value is not shown)"
                ) from None
            except Exception as exc:  # cryptography's UnsupportedAlgorithm
                raise ImproperlyConfigured(
                    f"{label}: this key cannot be used ({type(exc).__name__})"
                ) from None
        raw = serialization.Encoding.Raw
        none = serialization.NoEncryption()
        if isinstance(key, ed25519.Ed25519PrivateKey):
            seed = key.private_bytes(raw, serialization.PrivateFormat.Raw, none)
            private = base64.b64encode(seed)
            public = key.public_key().public_bytes(raw, serialization.PublicFormat.Raw)
            return cls("ed25519-sha256", private, base64.b64encode(public).decode("ascii"))
        if isinstance(key, rsa.RSAPrivateKey):
            if key.key_size < _MIN_RSA_BITS:
                raise ImproperlyConfigured(
                    f"{label}: an RSA key of {key.key_size} bits is too short (verifiers "
                    f"refuse keys under {_MIN_RSA_BITS} bits; use 2048)"
                )
            private = key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.TraditionalOpenSSL,
                none,
            )
            public = key.public_key().public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            return cls("rsa-sha256", private, base64.b64encode(public).decode("ascii"))
        raise ImproperlyConfigured(
            f"{label}: a {type(key).__name__.removeprefix('_')} cannot sign DKIM; use an "
            "RSA (2048 bits) or Ed25519 key"
        )


def dns_record(key_type: str, public: str) -> str:
    """The TXT record's text: ``v=DKIM1; k=rsa; p=...``."""
    return f"v=DKIM1; k={key_type}; p={public}"


def generate_key(ed25519: bool = False, bits: int = 2048) -> tuple[str, KeyPair]:
    """A new private key as PKCS#8 PEM text, and its ``KeyPair``."""
    try:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ed25519 as ed
        from cryptography.hazmat.primitives.asymmetric import rsa
    except ImportError:
        raise _missing_extra("cryptography") from None
    key: Any = ed.Ed25519PrivateKey.generate() if ed25519 else rsa.generate_private_key(65537, bits)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")
    return pem, KeyPair.load(pem)


def _missing_extra(package: str) -> ImproperlyConfigured:
    return ImproperlyConfigured(f"DKIM signing needs {package}: pip install 'mailwright[dkim]'")


def _rsa_in_openssl(dkim: Any) -> None:
    """Have dkimpy's RSA signing primitive computed by OpenSSL (``cryptography``).

    dkimpy does the RSA private-key operation in pure Python (``pow``): 11 to 13 ms of
    CPU per RSA-2048 signature in ``bench/dkim.py``, nearly all of the cost of signing.
    RSASSA-PKCS1-v1_5 is deterministic, so OpenSSL returns the very same bytes, with
    blinding against timing attacks; signing then costs about 1.6 ms. Everything else
    (canonicalization, the header and body hashes, the field) stays dkimpy's; its parse
    of the PEM text is remembered instead of repeated. Installed once per process;
    anything unexpected (another hash, a dkimpy without this function) is left to
    dkimpy's own code. ``tests/test_dkim.py`` checks that both give the same bytes."""
    with _INSTALL:
        if not getattr(getattr(dkim, "RSASSA_PKCS1_v1_5_sign", None), "openssl", False):
            _install_openssl(dkim)


_INSTALL = threading.Lock()


def _install_openssl(dkim: Any) -> None:
    original = getattr(dkim, "RSASSA_PKCS1_v1_5_sign", None)
    if original is None:
        return
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding, rsa, utils

    keys: dict[int, Any] = {}

    def sign(digest: Any, private_key: dict[str, int]) -> Any:
        if getattr(digest, "name", "").lower() != "sha256":
            return original(digest, private_key)
        key = keys.get(private_key["modulus"])
        if key is None:
            numbers = rsa.RSAPrivateNumbers(
                p=private_key["prime1"],
                q=private_key["prime2"],
                d=private_key["privateExponent"],
                dmp1=private_key["exponent1"],
                dmq1=private_key["exponent2"],
                iqmp=private_key["coefficient"],
                public_numbers=rsa.RSAPublicNumbers(
                    private_key["publicExponent"], private_key["modulus"]
                ),
            )
            key = keys[private_key["modulus"]] = numbers.private_key()
            if len(keys) > 64:  # keys come from configuration: a handful at most
                keys.pop(next(iter(keys)))
        return key.sign(digest.digest(), padding.PKCS1v15(), utils.Prehashed(hashes.SHA256()))

    sign.openssl = True  # type: ignore[attr-defined]
    sign.original = original  # type: ignore[attr-defined]
    dkim.RSASSA_PKCS1_v1_5_sign = sign

    # dkimpy also parses the PEM key again (ASN.1, in Python) for every message; the
    # result depends on the text alone, and dkimpy only reads it.
    parse = getattr(dkim, "parse_pem_private_key", None)
    if parse is not None:
        remembered = functools.lru_cache(maxsize=64)(parse)

        def parse_once(data: Any) -> Any:
            return remembered(data) if isinstance(data, bytes) else parse(data)

        dkim.parse_pem_private_key = parse_once


class DKIMSigner:
    """Signs wire bytes for one domain, selector and key; ``relaxed/relaxed``.

    Made by ``signer()``; ``sign(data)`` returns the data with a ``DKIM-Signature``
    field on top, or raises ``DKIMSigningError`` (that message alone fails)."""

    __slots__ = ("_dkim", "_key", "domain", "headers", "selector")

    def __init__(
        self,
        domain: str,
        selector: str,
        private_key: str,
        headers: Sequence[str] | None = None,
    ) -> None:
        try:
            import dkim  # type: ignore[import-untyped]  # dkimpy
        except ImportError:
            raise _missing_extra("dkimpy") from None
        self._dkim: Any = dkim
        self.domain = _domain(domain)
        self.selector = _selector(selector)
        self.headers = _header_names(headers)
        self._key = KeyPair.load(private_key)
        if self._key.key_type == "rsa":
            _rsa_in_openssl(dkim)
        if self._key.key_type == "ed25519":
            try:
                import nacl.signing  # noqa: F401  (dkimpy signs Ed25519 with it)
            except ImportError:
                raise _missing_extra("PyNaCl (for Ed25519 keys)") from None
        try:
            self.sign(_PROBE)
        except DKIMSigningError as exc:
            raise ImproperlyConfigured(f"{_label('private_key')}: cannot sign: {exc}") from None

    def __repr__(self) -> str:
        return f"<DKIMSigner d={self.domain} s={self.selector} a={self.algorithm}>"

    @property
    def algorithm(self) -> str:
        """``rsa-sha256`` or ``ed25519-sha256``."""
        return self._key.algorithm

    @property
    def dns_name(self) -> str:
        """Where the public key is published: ``selector._domainkey.domain``."""
        return f"{self.selector}._domainkey.{self.domain}"

    @property
    def dns_record(self) -> str:
        """The TXT record to publish at ``dns_name``."""
        return dns_record(self._key.key_type, self._key.public)

    def _included(self, fields: list[list[bytes]]) -> list[bytes]:
        if self.headers is not None:
            return list(self.headers)
        names = [name.lower() for name, _ in fields]
        chosen = [name for name in names if name in _DEFAULT or name.startswith(b"list-")]
        # Signed once more than they occur ("oversigned"), so none can be added on
        # top: From, and the unsubscribe fields a one-click client acts on.
        extra = [name for name in _OVERSIGNED if name in names]
        return [*chosen, b"from", *extra]

    def sign(self, data: bytes) -> bytes:
        """``data`` (a message with CRLF line breaks) with a DKIM-Signature on top."""
        dkim = self._dkim
        try:
            state = dkim.DKIM(
                data,
                logger=_QUIET,
                signature_algorithm=self._key.algorithm.encode("ascii"),
                linesep=b"\r\n",
            )
            field = state.sign(
                self.selector.encode("ascii"),
                self.domain.encode("ascii"),
                self._key.private,
                canonicalize=(b"relaxed", b"relaxed"),
                include_headers=self._included(state.headers),
            )
        except Exception as exc:
            raise DKIMSigningError(f"DKIM signing failed: {exc}") from exc
        if not field.endswith(b"\r\n"):
            field += b"\r\n"
        return bytes(field) + data
