"""TLS for the catcher: a local certificate authority and a server certificate, made
once with ``cryptography`` (the ``devserver`` extra) and kept in a folder.

``ca.pem`` is what a client trusts (``EMAIL_SSL_CAFILE=<tls-dir>/ca.pem``); the CA key
and the server key never leave the folder (mode 0600, folder 0700). The server
certificate names ``localhost``, ``127.0.0.1``, ``::1`` and the listening host, and is
made again when the host changes or it nears expiry; the CA is kept, so a client
configured once keeps working.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import socket
import ssl
from collections.abc import Iterable
from pathlib import Path
from typing import Any

__all__ = ["TLSFiles", "TLSSetupError", "default_tls_dir", "ensure_certificates", "server_context"]

CA_FILE = "ca.pem"
CA_KEY_FILE = "ca-key.pem"
CERT_FILE = "server.pem"
KEY_FILE = "server-key.pem"
CA_DAYS = 3650
CERT_DAYS = 397  # what browsers and Apple accept for a server certificate
RENEW_BEFORE_DAYS = 30
_WILDCARD_HOSTS = {"", "0.0.0.0", "::"}


class TLSSetupError(Exception):
    """TLS cannot be set up; the message says why in one line."""


class TLSFiles:
    def __init__(self, ca: Path | None, cert: Path, key: Path | None) -> None:
        self.ca = ca
        self.cert = cert
        self.key = key


def default_tls_dir() -> Path:
    """A per-user cache folder, e.g. ~/.cache/mailwright/tls on Linux."""
    try:
        from platformdirs import user_cache_path
    except ImportError:
        return Path.home() / ".cache" / "mailwright" / "tls"
    folder: Path = user_cache_path("mailwright", appauthor=False)
    return folder / "tls"


def certificate_names(host: str) -> list[str]:
    """What the server certificate should name for a catcher listening on ``host``."""
    names = ["localhost", "127.0.0.1", "::1"]
    if host in _WILDCARD_HOSTS:
        names += [socket.gethostname(), socket.getfqdn()]
    else:
        names.append(host)
    return list(dict.fromkeys(name.lower() for name in names if name))


def _need_cryptography() -> Any:
    try:
        import cryptography  # noqa: F401
    except ImportError:
        raise TLSSetupError(
            "--tls needs the cryptography package to make a certificate: "
            "pip install 'mailwright[devserver]' (or give --tls-cert and --tls-key)"
        ) from None
    from cryptography import x509

    return x509


def _write(path: Path, data: bytes, private: bool) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as file:
        file.write(data)
    os.replace(tmp, path)


def _general_names(names: Iterable[str]) -> list[Any]:
    from cryptography import x509

    result: list[Any] = []
    for name in names:
        try:
            result.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            result.append(x509.DNSName(name.encode("idna").decode("ascii")))
    return result


def _load_ca(folder: Path) -> tuple[Any, Any] | None:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    try:
        cert = x509.load_pem_x509_certificate((folder / CA_FILE).read_bytes())
        key = serialization.load_pem_private_key((folder / CA_KEY_FILE).read_bytes(), None)
    except (OSError, ValueError):
        return None
    now = datetime.datetime.now(datetime.UTC)
    if cert.not_valid_after_utc - now < datetime.timedelta(days=RENEW_BEFORE_DAYS):
        return None
    return cert, key


def _make_ca(folder: Path) -> tuple[Any, Any]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    user = os.environ.get("USER") or os.environ.get("USERNAME") or "user"
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "mailwright development CA"),
            x509.NameAttribute(
                NameOID.COMMON_NAME,
                f"mailwright development CA ({user}@{socket.gethostname()})"[:64],
            ),
        ]
    )
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    _write(
        folder / CA_KEY_FILE,
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
        private=True,
    )
    _write(folder / CA_FILE, cert.public_bytes(serialization.Encoding.PEM), private=False)
    return cert, key


def _server_cert_fits(folder: Path, ca_cert: Any, names: list[str]) -> bool:
    from cryptography import x509

    try:
        cert = x509.load_pem_x509_certificate((folder / CERT_FILE).read_bytes())
        (folder / KEY_FILE).stat()
    except (OSError, ValueError):
        return False
    if cert.issuer != ca_cert.subject:
        return False
    try:
        cert.verify_directly_issued_by(ca_cert)
    except Exception:
        return False
    now = datetime.datetime.now(datetime.UTC)
    if cert.not_valid_after_utc - now < datetime.timedelta(days=RENEW_BEFORE_DAYS):
        return False
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False
    return set(_general_names(names)) <= set(san)


def _make_server_cert(folder: Path, ca_cert: Any, ca_key: Any, names: list[str]) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=CERT_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(_general_names(names)), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    _write(
        folder / KEY_FILE,
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
        private=True,
    )
    _write(folder / CERT_FILE, cert.public_bytes(serialization.Encoding.PEM), private=False)


def ensure_certificates(folder: str | os.PathLike[str], host: str) -> TLSFiles:
    """The CA and a server certificate for ``host`` in ``folder``, made when missing,
    expiring or not naming the host."""
    _need_cryptography()
    path = Path(folder).expanduser().absolute()
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        lock = _lock(path)
        try:
            ca = _load_ca(path) or _make_ca(path)
            names = certificate_names(host)
            if not _server_cert_fits(path, ca[0], names):
                _make_server_cert(path, ca[0], ca[1], names)
        finally:
            _unlock(lock)
    except OSError as exc:
        raise TLSSetupError(
            f"cannot write TLS files in {path}: {exc.strerror} (choose another --tls-dir)"
        ) from exc
    return TLSFiles(path / CA_FILE, path / CERT_FILE, path / KEY_FILE)


def _lock(folder: Path) -> int | None:
    """An exclusive lock on the folder, so two catchers starting together do not make
    two CAs (POSIX only; elsewhere the race is harmless but possible)."""
    try:
        import fcntl
    except ImportError:
        return None
    fd = os.open(folder / ".lock", os.O_WRONLY | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


def _unlock(fd: int | None) -> None:
    if fd is not None:
        os.close(fd)


def server_context(files: TLSFiles) -> ssl.SSLContext:
    """A server-side context with the certificate; TLS 1.2 at least."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    for path in (files.cert, files.key):
        if path is not None and not path.is_file():
            raise TLSSetupError(f"TLS file not found: {path}")
    try:
        context.load_cert_chain(files.cert, files.key)
    except (ssl.SSLError, OSError) as exc:
        where = f"{files.cert}" + (f" / {files.key}" if files.key else "")
        reason = getattr(exc, "reason", None) or getattr(exc, "strerror", None) or str(exc)
        raise TLSSetupError(f"cannot load the TLS certificate and key ({where}): {reason}") from exc
    return context
