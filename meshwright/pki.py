"""Certificates: the shared Istio root, per-cluster intermediates, and the sandbox clusters' CAs.

Private keys leave this module only as PEM bytes for a 0600 file, a Prefect Secret block or a
Kubernetes secret; they are never logged or returned from a task. What may be shown is a
certificate's fingerprint.

Key sizes follow Istio's tools/certs for the root (RSA 4096). Intermediates are RSA 2048, as in
Istio's own multicluster tests: one is made per cluster on the critical path of its chain, and
RSA 4096 costs about ten times as much (see benchmarks/mesh.py) for no gain under a 4096 root.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
TEN_YEARS = dt.timedelta(days=3650)


@dataclass(frozen=True)
class KeyPair:
    """A certificate and its key, as PEM. `repr` never shows the key."""

    cert_pem: bytes
    key_pem: bytes

    def __repr__(self) -> str:
        subject = self.certificate.subject.rfc4514_string()
        return f"KeyPair({subject})"

    @property
    def certificate(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.cert_pem)

    @property
    def key(self) -> PrivateKey:
        # The key is ours (made here, or checked once by root_from_pem): OpenSSL's RSA consistency
        # check costs about 0.2 s for a 4096-bit key, on every cluster's intermediate.
        key = serialization.load_pem_private_key(
            self.key_pem, password=None, unsafe_skip_rsa_key_validation=True
        )
        assert isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey)
        return key


def _new_key(kind: str) -> PrivateKey:
    if kind == "ec":
        return ec.generate_private_key(ec.SECP256R1())
    return rsa.generate_private_key(public_exponent=65537, key_size=int(kind.removeprefix("rsa")))


def _pem(key: PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _name(**parts: str) -> x509.Name:
    oids = {"O": NameOID.ORGANIZATION_NAME, "CN": NameOID.COMMON_NAME, "L": NameOID.LOCALITY_NAME}
    return x509.Name([x509.NameAttribute(oids[k], v) for k, v in parts.items()])


def _builder(
    subject: x509.Name, issuer: x509.Name, public_key: object, valid: dt.timedelta
) -> x509.CertificateBuilder:
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)  # type: ignore[arg-type]
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + valid)
    )


def _ca_usage() -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=True,
        crl_sign=True,
        encipher_only=False,
        decipher_only=False,
    )


def fingerprint(cert_pem: bytes) -> str:
    """SHA-256 of the certificate's DER, as `openssl x509 -fingerprint -sha256` prints it (no colons)."""
    cert = x509.load_pem_x509_certificate(cert_pem)
    return cert.fingerprint(hashes.SHA256()).hex()


def root_from_pem(cert_pem: bytes, key_pem: bytes) -> KeyPair:
    """A root a user brings: it must be a CA certificate whose key is the one given.

    Raises ValueError saying what is wrong (never quoting the key).
    """
    try:
        cert = x509.load_pem_x509_certificate(cert_pem)
    except ValueError:
        raise ValueError("the root certificate is not a PEM certificate") from None
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError):
        raise ValueError("the root key is not an unencrypted PEM private key") from None
    try:
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        constraints = None
    if constraints is None or not constraints.ca:
        raise ValueError("the root certificate is not a CA (basicConstraints CA:true is missing)")
    if key.public_key().public_numbers() != cert.public_key().public_numbers():  # type: ignore[union-attr]
        raise ValueError("the root key does not belong to the root certificate")
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise ValueError("the root key must be RSA or ECDSA")
    return KeyPair(cert_pem, key_pem)


def verify_issued(cert_pem: bytes, issuer_pem: bytes) -> None:
    """Raise (cryptography's InvalidSignature / ValueError) unless `issuer` signed `cert`."""
    cert = x509.load_pem_x509_certificate(cert_pem)
    cert.verify_directly_issued_by(x509.load_pem_x509_certificate(issuer_pem))


def cacerts(intermediate: KeyPair, root_cert_pem: bytes) -> dict[str, bytes]:
    """The files of Istio's plug-in CA secret `cacerts`."""
    return {
        "ca-cert.pem": intermediate.cert_pem,
        "ca-key.pem": intermediate.key_pem,
        "root-cert.pem": root_cert_pem,
        "cert-chain.pem": intermediate.cert_pem + root_cert_pem,
    }


def new_root_ca(
    *, common_name: str = "Root CA", organization: str = "Istio", key: str = "rsa4096"
) -> KeyPair:
    """A self-signed root, as Istio's tools/certs makes it (critical CA:true, keyCertSign)."""
    private = _new_key(key)
    name = _name(O=organization, CN=common_name)
    cert = (
        _builder(name, name, private.public_key(), TEN_YEARS)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(_ca_usage(), critical=True)
        .sign(private, hashes.SHA256())
    )
    return KeyPair(cert.public_bytes(serialization.Encoding.PEM), _pem(private))


def new_intermediate(root: KeyPair, *, locality: str, key: str = "rsa2048") -> KeyPair:
    """A per-cluster intermediate under the shared root (pathlen 0, SAN istiod.istio-system.svc)."""
    private = _new_key(key)
    issuer = root.certificate
    cert = (
        _builder(
            _name(O="Istio", CN="Intermediate CA", L=locality),
            issuer.subject,
            private.public_key(),
            TEN_YEARS,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_ca_usage(), critical=True)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("istiod.istio-system.svc")]), critical=False)
        .sign(root.key, hashes.SHA256())
    )
    return KeyPair(cert.public_bytes(serialization.Encoding.PEM), _pem(private))


def new_server_cert(ca: KeyPair, *, hosts: list[str], valid: dt.timedelta = TEN_YEARS) -> KeyPair:
    """A TLS server certificate for IPs and DNS names, signed by `ca`."""
    private = _new_key("ec")
    sans: list[x509.GeneralName] = []
    for host in hosts:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            sans.append(x509.DNSName(host))
    cert = (
        _builder(_name(CN=hosts[0]), ca.certificate.subject, private.public_key(), valid)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca.key, hashes.SHA256())
    )
    return KeyPair(cert.public_bytes(serialization.Encoding.PEM), _pem(private))
