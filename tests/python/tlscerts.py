"""Certificates for the TLS tests, made fresh by each test run (never checked in).

`CertificateAuthority("name")` makes a self-signed CA; `ca.server(dir)` a certificate for
127.0.0.1 and localhost; `ca.client(dir, "ana")` a client certificate with CN=ana (and
optional SANs, validity). Files are PEM; `Files` holds their paths and bytes.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

NOW = dt.datetime.now(dt.timezone.utc)


@dataclass
class Files:
    cert: Path
    key: Path

    @property
    def cert_pem(self) -> bytes:
        return self.cert.read_bytes()

    @property
    def key_pem(self) -> bytes:
        return self.key.read_bytes()


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _write(directory: Path, stem: str, cert: x509.Certificate, key) -> Files:
    directory.mkdir(parents=True, exist_ok=True)
    files = Files(directory / f"{stem}.crt", directory / f"{stem}.key")
    files.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files.key.write_bytes(_key_pem(key))
    return files


class CertificateAuthority:
    def __init__(self, name: str):
        self.name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        self.key = _key()
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(self.name)
            .issuer_name(self.name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(NOW - dt.timedelta(days=1))
            .not_valid_after(NOW + dt.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False,
                                         encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(self.key.public_key()), critical=False)
            .sign(self.key, hashes.SHA256())
        )

    @property
    def pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def write(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(self.pem)
        return path

    def _issue(self, subject: str, sans: list[x509.GeneralName], usage, *, not_before, not_after):
        key = _key()
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(self.name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before)
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), critical=False)
        )
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        return builder.sign(self.key, hashes.SHA256()), key

    def server(self, directory: Path, stem: str = "server") -> Files:
        """A server certificate for 127.0.0.1 and localhost."""
        sans = [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
        cert, key = self._issue("localhost", sans, ExtendedKeyUsageOID.SERVER_AUTH,
                                not_before=NOW - dt.timedelta(days=1), not_after=NOW + dt.timedelta(days=30))
        return _write(directory, stem, cert, key)

    def client(self, directory: Path, cn: str, *, emails: tuple[str, ...] = (), dns: tuple[str, ...] = (),
               expired: bool = False) -> Files:
        """A client certificate with CN=`cn` (expired ones ended yesterday)."""
        sans = [x509.RFC822Name(e) for e in emails] + [x509.DNSName(d) for d in dns]
        if expired:
            not_before, not_after = NOW - dt.timedelta(days=30), NOW - dt.timedelta(days=1)
        else:
            not_before, not_after = NOW - dt.timedelta(days=1), NOW + dt.timedelta(days=30)
        cert, key = self._issue(cn, sans, ExtendedKeyUsageOID.CLIENT_AUTH, not_before=not_before, not_after=not_after)
        return _write(directory, f"client-{cn}{'-expired' if expired else ''}", cert, key)
