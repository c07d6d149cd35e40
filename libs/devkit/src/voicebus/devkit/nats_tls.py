"""TLS for NATS (``voicebus nats-config --tls``): a private CA and the servers' certificate.

The CA's key signs the server certificate and is then thrown away, so nothing else can be
issued under it; services verify the server with ``VB_NATS_TLS_CA`` (the CA's certificate).
A deployment with its own PKI (cert-manager, a corporate CA) uses its files instead: the
services need only the CA bundle, the server its certificate and key.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALID_FOR: Final = timedelta(days=825)
"""The longest validity clients commonly accept for a server certificate."""
HANDSHAKE_TIMEOUT_S: Final = 2


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """What :func:`write_tls` wrote."""

    ca: Path
    cert: Path
    key: Path

    def server_block(self) -> dict[str, Any]:
        """The ``tls`` block of the server's config (TLS required of every client)."""
        return {
            "cert_file": str(self.cert),
            "key_file": str(self.key),
            "timeout": HANDSHAKE_TIMEOUT_S,
        }


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _alt_names(hosts: Sequence[str]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return names


def issue(hosts: Sequence[str], now: datetime | None = None) -> tuple[bytes, bytes, bytes]:
    """A fresh CA and a server certificate for ``hosts``: (CA cert, server cert, server key),
    PEM-encoded."""
    if not hosts:
        raise ValueError("name at least one host the servers are reached by")
    start = (now or datetime.now(UTC)) - timedelta(minutes=5)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("voicebus NATS CA"))
        .issuer_name(_name("voicebus NATS CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + VALID_FOR)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), True
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(hosts[0]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + VALID_FOR)
        .add_extension(x509.SubjectAlternativeName(_alt_names(hosts)), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    pem = serialization.Encoding.PEM
    return ca.public_bytes(pem), cert.public_bytes(pem), key_pem


def write_tls(out_dir: Path, hosts: Sequence[str]) -> TlsFiles:
    """Write ``ca.pem``, ``server-cert.pem`` and ``server-key.pem`` (owner-only) under
    ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    files = TlsFiles(out_dir / "ca.pem", out_dir / "server-cert.pem", out_dir / "server-key.pem")
    for path, data in zip((files.ca, files.cert, files.key), issue(hosts), strict=True):
        path.touch(mode=0o600, exist_ok=True)
        path.chmod(0o600)
        path.write_bytes(data)
    return files
