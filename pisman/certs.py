"""The broker's TLS files: a private CA and a server certificate, made on first run."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_DAYS = 3650
SERVER_DAYS = 825
# A server certificate of ours this close to expiry is issued anew (devices trust the CA, so
# they do not notice).
RENEW_BEFORE = dt.timedelta(days=30)
DEFAULT_HOSTS = ("localhost", "127.0.0.1", "::1")


@dataclass(frozen=True, slots=True)
class BrokerCertificates:
    """Where a broker's TLS files live: give devices ca_file; the broker uses cert and key."""

    folder: Path

    @property
    def ca_file(self) -> Path:
        """The CA certificate devices and ingest trust (MQTT_CA_FILE)."""
        return self.folder / "ca.crt"

    @property
    def ca_key_file(self) -> Path:
        """The CA's private key (stays on the broker host; never give it to a device)."""
        return self.folder / "ca.key"

    @property
    def cert_file(self) -> Path:
        """The broker's certificate (mosquitto certfile)."""
        return self.folder / "server.crt"

    @property
    def key_file(self) -> Path:
        """The broker's private key (mosquitto keyfile)."""
        return self.folder / "server.key"


def split_hosts(text: str) -> list[str]:
    """Host names and IP addresses from a comma- or space-separated setting."""
    return [h for h in text.replace(",", " ").split() if h]


def _write(path: Path, data: bytes, mode: int) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _san(hosts: list[str]) -> x509.SubjectAlternativeName:
    names: list[x509.GeneralName] = []
    for host in dict.fromkeys(hosts):
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return x509.SubjectAlternativeName(names)


def _new_ca(certs: BrokerCertificates, now: dt.datetime) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Kang PisMan"),
            x509.NameAttribute(NameOID.COMMON_NAME, f"Kang PisMan broker CA {now:%Y-%m-%d}"),
        ]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=CA_DAYS))
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
    _write(certs.ca_key_file, _key_pem(key), 0o600)
    _write(certs.ca_file, cert.public_bytes(serialization.Encoding.PEM), 0o644)


def _new_server(certs: BrokerCertificates, hosts: list[str], now: dt.datetime) -> None:
    ca_cert = x509.load_pem_x509_certificate(certs.ca_file.read_bytes())
    ca_key = serialization.load_pem_private_key(certs.ca_key_file.read_bytes(), password=None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=SERVER_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_san(hosts), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    _write(certs.key_file, _key_pem(key), 0o600)
    _write(certs.cert_file, cert.public_bytes(serialization.Encoding.PEM), 0o644)


def _issued_by_our_ca(certs: BrokerCertificates) -> x509.Certificate | None:
    """The server certificate when our CA signed it; None for one the operator put there."""
    try:
        cert = x509.load_pem_x509_certificate(certs.cert_file.read_bytes())
        ca_cert = x509.load_pem_x509_certificate(certs.ca_file.read_bytes())
        cert.verify_directly_issued_by(ca_cert)
    except (ValueError, TypeError, OSError, InvalidSignature):
        return None
    return cert


def _covers(cert: x509.Certificate, hosts: list[str]) -> bool:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False
    wanted = set(_san(hosts))
    return wanted <= set(san)


def ensure_broker_certificates(folder: Path, hosts: list[str] | None = None) -> list[str]:
    """Create the CA and the server certificate in folder when missing; return what was made.

    The server certificate is valid for localhost, 127.0.0.1, ::1 and `hosts`; one of ours that
    lacks a host or nears expiry is issued anew. A certificate the operator put in place (not
    signed by our CA) is never touched.
    """
    certs = BrokerCertificates(folder)
    folder.mkdir(parents=True, exist_ok=True)
    wanted = [*(hosts or []), *DEFAULT_HOSTS]
    now = dt.datetime.now(dt.UTC)
    made: list[str] = []
    if not certs.ca_file.exists() or not certs.ca_key_file.exists():
        if certs.cert_file.exists() and certs.key_file.exists():
            return made  # the operator's own certificate, and no CA of ours: leave it all
        _new_ca(certs, now)
        made.append(str(certs.ca_file))
    if certs.cert_file.exists() and certs.key_file.exists():
        ours = _issued_by_our_ca(certs)
        if ours is None:
            return made
        if ours.not_valid_after_utc - RENEW_BEFORE > now and _covers(ours, wanted):
            return made
    _new_server(certs, wanted, now)
    made.append(str(certs.cert_file))
    return made
