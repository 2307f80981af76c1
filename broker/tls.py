"""TLS material for the device listener: our own CA and a server cert it signs.

Files in the tls directory: ca.crt (give this to devices), ca.key, server.crt,
server.key.  Keys are written 0600.  RSA 2048 keeps small TLS stacks on
microcontrollers (mbedTLS builds without ECC) able to connect.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from broker.files import write_atomic

DEFAULT_NAMES = ("localhost", "127.0.0.1")
CA_DAYS = 3650
SERVER_DAYS = 825  # the longest lifetime common TLS clients accept for a server cert
RENEW_BEFORE_DAYS = 30


@dataclass(frozen=True)
class TLSPaths:
    dir: Path

    @property
    def ca_cert(self) -> Path:
        return self.dir / "ca.crt"

    @property
    def ca_key(self) -> Path:
        return self.dir / "ca.key"

    @property
    def server_cert(self) -> Path:
        return self.dir / "server.crt"

    @property
    def server_key(self) -> Path:
        return self.dir / "server.key"


def ensure(tls_dir: Path, hostnames: Iterable[str] = (), renew: bool = False,
           new_ca: bool = False) -> TLSPaths:
    """Create what is missing; keep an existing CA unless new_ca.

    The server cert is (re)issued when renew or new_ca is set, when it is
    missing, expires within RENEW_BEFORE_DAYS, or lacks one of the names.
    """
    paths = TLSPaths(Path(tls_dir))
    paths.dir.mkdir(parents=True, exist_ok=True)
    names = server_names(hostnames)
    if new_ca or not (paths.ca_cert.exists() and paths.ca_key.exists()):
        key, cert = make_ca()
        _write_pair(paths.ca_key, paths.ca_cert, key, cert)
        renew = True
    if renew or _needs_server_cert(paths, names):
        ca_key = _load_key(paths.ca_key)
        ca_cert = x509.load_pem_x509_certificate(paths.ca_cert.read_bytes())
        key, cert = make_server_cert(ca_key, ca_cert, names)
        _write_pair(paths.server_key, paths.server_cert, key, cert)
    return paths


def server_names(hostnames: Iterable[str]) -> list[str]:
    """localhost and 127.0.0.1 first, then the given names, without repeats."""
    names: list[str] = []
    for name in (*DEFAULT_NAMES, *hostnames):
        name = name.strip().lower()
        if name and name not in names:
            names.append(name)
    return names


def make_ca(common_name: str = "Homeguard broker CA") -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    key = _new_key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    cert = (
        _builder(name, name, key.public_key(), CA_DAYS)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_usage(cert_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def make_server_cert(ca_key: rsa.RSAPrivateKey, ca_cert: x509.Certificate,
                     names: list[str]) -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    key = _new_key()
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    cert = (
        _builder(subject, ca_cert.subject, key.public_key(), SERVER_DAYS)
        .add_extension(x509.SubjectAlternativeName([_san(n) for n in names]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_usage(cert_sign=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    return key, cert


def cert_names(cert: x509.Certificate) -> list[str]:
    """The DNS names and IP addresses in a certificate's SAN."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return [str(v) for v in san.get_values_for_type(x509.DNSName)] + [
        str(v) for v in san.get_values_for_type(x509.IPAddress)
    ]


def _needs_server_cert(paths: TLSPaths, names: list[str]) -> bool:
    if not (paths.server_cert.exists() and paths.server_key.exists()):
        return True
    cert = x509.load_pem_x509_certificate(paths.server_cert.read_bytes())
    soon = dt.datetime.now(dt.UTC) + dt.timedelta(days=RENEW_BEFORE_DAYS)
    return cert.not_valid_after_utc < soon or not set(names) <= set(cert_names(cert))


def _builder(subject: x509.Name, issuer: x509.Name, public_key: rsa.RSAPublicKey,
             days: int) -> x509.CertificateBuilder:
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
    )


def _usage(cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True, content_commitment=False, key_encipherment=not cert_sign,
        data_encipherment=False, key_agreement=False, key_cert_sign=cert_sign,
        crl_sign=cert_sign, encipher_only=False, decipher_only=False,
    )


def _san(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def _new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _load_key(path: Path) -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError(f"{path}: expected an RSA private key")
    return key


def _write_pair(key_path: Path, cert_path: Path, key: rsa.RSAPrivateKey,
                cert: x509.Certificate) -> None:
    pem_key = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    write_atomic(key_path, pem_key, mode=0o600)
    write_atomic(cert_path, cert.public_bytes(serialization.Encoding.PEM), mode=0o644)
