"""Self-signed certificates for the embedded resolver (generated with ``cryptography``)."""

from __future__ import annotations

import datetime
import ipaddress
import os
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

DEFAULT_NAMES = ("localhost", "dot.zkmb.test")
DEFAULT_IPS = ("127.0.0.1", "::1")


def make_self_signed(
    names: tuple[str, ...] = DEFAULT_NAMES,
    ips: tuple[str, ...] = DEFAULT_IPS,
    key_type: str = "ec",
    days: int = 3650,
    not_before: datetime.datetime | None = None,
) -> tuple[bytes, bytes]:
    """A self-signed certificate (PEM) with DNS and IP SANs and its private key (PEM, unencrypted).

    The certificate is its own trust anchor (CA:TRUE), so the client can pass it as ``cafile``.
    ``key_type`` is ``ec`` (P-256) or ``rsa`` (2048 bits).
    """
    if key_type == "ec":
        key = ec.generate_private_key(ec.SECP256R1())
    elif key_type == "rsa":
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    else:
        raise ValueError(f"unknown key type {key_type!r}")
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0] if names else "zkmb resolver")])
    start = not_before or (datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=5))
    sans: list[x509.GeneralName] = [x509.DNSName(n) for n in names]
    sans += [x509.IPAddress(ipaddress.ip_address(a)) for a in ips]
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=key_type == "rsa",
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    )
    cert = builder.sign(key, hashes.SHA256())
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def write_pair(directory: str | os.PathLike, cert_pem: bytes, key_pem: bytes, stem: str = "resolver"):
    """Write ``<stem>.crt`` and ``<stem>.key`` (mode 0600) into ``directory``; returns both paths."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = d / f"{stem}.crt", d / f"{stem}.key"
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key_pem)
    cert_path.write_bytes(cert_pem)
    return cert_path, key_path


def ensure_certificate(
    state_dir: str | os.PathLike, names: tuple[str, ...] = DEFAULT_NAMES, ips: tuple[str, ...] = DEFAULT_IPS
) -> tuple[Path, Path]:
    """Return (cert, key) paths in ``state_dir``, generating a self-signed pair on first use."""
    d = Path(state_dir)
    cert_path, key_path = d / "resolver.crt", d / "resolver.key"
    if cert_path.is_file() and key_path.is_file():
        return cert_path, key_path
    return write_pair(d, *make_self_signed(names, ips))
