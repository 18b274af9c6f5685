"""The root and intermediates follow Istio's tools/certs profile; cacerts holds what istiod reads."""

from __future__ import annotations

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from meshwright import pki


@pytest.fixture(scope="module")
def root() -> pki.KeyPair:
    return pki.new_root_ca()


def test_root_is_an_rsa4096_critical_ca_named_like_istios(root: pki.KeyPair) -> None:
    cert = root.certificate
    constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical
    assert constraints.value.ca
    assert isinstance(cert.public_key(), rsa.RSAPublicKey)
    assert cert.public_key().key_size == 4096
    assert cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "Istio"
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "Root CA"
    assert cert.extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign


def test_intermediate_is_pathlen0_with_istiod_san_and_cluster_locality(root: pki.KeyPair) -> None:
    cert = pki.new_intermediate(root, locality="west").certificate
    constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert (constraints.ca, constraints.path_length) == (True, 0)
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["istiod.istio-system.svc"]
    assert cert.subject.get_attributes_for_oid(NameOID.LOCALITY_NAME)[0].value == "west"
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "Intermediate CA"
    assert cert.issuer == root.certificate.subject


def test_intermediate_verifies_against_its_root_only(root: pki.KeyPair) -> None:
    intermediate = pki.new_intermediate(root, locality="east")
    pki.verify_issued(intermediate.cert_pem, root.cert_pem)
    other = pki.new_root_ca(key="rsa2048")
    with pytest.raises((InvalidSignature, ValueError)):
        pki.verify_issued(intermediate.cert_pem, other.cert_pem)


def test_cacerts_has_istios_four_files_with_the_chain_intermediate_first(root: pki.KeyPair) -> None:
    intermediate = pki.new_intermediate(root, locality="central")
    files = pki.cacerts(intermediate, root.cert_pem)
    assert sorted(files) == ["ca-cert.pem", "ca-key.pem", "cert-chain.pem", "root-cert.pem"]
    chain = x509.load_pem_x509_certificates(files["cert-chain.pem"])
    assert [c.subject for c in chain] == [intermediate.certificate.subject, root.certificate.subject]
    assert files["ca-key.pem"] == intermediate.key_pem


def test_brought_root_must_be_a_ca_with_its_own_key(root: pki.KeyPair) -> None:
    assert pki.root_from_pem(root.cert_pem, root.key_pem).cert_pem == root.cert_pem
    server = pki.new_server_cert(root, hosts=["example.test"])
    with pytest.raises(ValueError, match="not a CA"):
        pki.root_from_pem(server.cert_pem, server.key_pem)
    other = pki.new_root_ca(key="rsa2048")
    with pytest.raises(ValueError, match="does not belong"):
        pki.root_from_pem(root.cert_pem, other.key_pem)
    with pytest.raises(ValueError, match="not a PEM certificate"):
        pki.root_from_pem(b"junk", root.key_pem)


def test_keypair_repr_and_fingerprint_never_show_the_key(root: pki.KeyPair) -> None:
    assert "PRIVATE" not in repr(root)
    assert len(pki.fingerprint(root.cert_pem)) == 64
    assert pki.fingerprint(root.cert_pem) == pki.fingerprint(root.cert_pem)
