"""Throw-away PKI for the TLS tests, made with the `cryptography` package: a CA, a server
certificate for 127.0.0.1, client certificates, and a second CA nobody trusts."""

from __future__ import annotations

import datetime
import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def _key():
    return ec.generate_private_key(ec.SECP256R1())


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn), x509.NameAttribute(NameOID.ORGANIZATION_NAME, "test")])


def _cert(subject: str, key, issuer_name: x509.Name, issuer_key, ca: bool, ip: str | None = None):
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(issuer_name)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if ip:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(ip))]),
                                        critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _write(path: Path, cert, key, password: bytes | None = None) -> tuple[str, str]:
    cert_path, key_path = path.with_suffix(".crt"), path.with_suffix(".key")
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    encryption = (serialization.BestAvailableEncryption(password) if password
                  else serialization.NoEncryption())
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption))
    return str(cert_path), str(key_path)


class Pki:
    """Files under `directory`: ca.crt, server.{crt,key}, client.{crt,key} (CN=device-7),
    rogue.{crt,key} (CN=device-7, signed by an untrusted CA)."""

    def __init__(self, directory: Path, key_password: bytes | None = None) -> None:
        ca_key, rogue_ca_key = _key(), _key()
        ca = _cert("test-ca", ca_key, _name("test-ca"), ca_key, ca=True)
        self.ca = str(directory / "ca.crt")
        (directory / "ca.crt").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
        server_key, client_key, rogue_key = _key(), _key(), _key()
        self.server_cert, self.server_key = _write(
            directory / "server", _cert("127.0.0.1", server_key, ca.subject, ca_key, False, ip="127.0.0.1"),
            server_key, key_password)
        self.client_cert, self.client_key = _write(
            directory / "client", _cert("device-7", client_key, ca.subject, ca_key, False), client_key)
        self.rogue_cert, self.rogue_key = _write(
            directory / "rogue", _cert("device-7", rogue_key, _name("rogue-ca"), rogue_ca_key, False), rogue_key)
