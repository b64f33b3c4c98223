"""The store's certificate authority (cloudsdk.store.ca): the CA on disk, server and client
certificates in every format, client certificate verification, and mutual TLS with them."""

from __future__ import annotations

import contextlib
import ipaddress
import queue
import socket
import ssl
import stat
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jks
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from cloudsdk.errors import CertificateError, InvalidArgumentError, InvalidNameError
from cloudsdk.store import ca as ca_module
from cloudsdk.store.ca import CertificateAuthority


@pytest.fixture
def ca(tmp_path: Path) -> CertificateAuthority:
    return CertificateAuthority(tmp_path / "ca")


@pytest.fixture(scope="module")
def other_ca(tmp_path_factory: pytest.TempPathFactory) -> CertificateAuthority:
    return CertificateAuthority(tmp_path_factory.mktemp("other") / "ca")


def _cert(pem: bytes | str) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pem.encode() if isinstance(pem, str) else pem)


def _ext(cert: x509.Certificate, cls: type[Any]) -> Any:
    return cert.extensions.get_extension_for_class(cls).value


# --- the CA on disk ---------------------------------------------------------------------------

def test_ca_files(ca: CertificateAuthority, tmp_path: Path) -> None:
    key_path, pem_path = tmp_path / "ca" / "ca.key", tmp_path / "ca" / "ca.pem"
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    assert pem_path.read_bytes() == ca.ca_pem
    cert = _cert(ca.ca_pem)
    assert _ext(cert, x509.BasicConstraints).ca is True
    assert _ext(cert, x509.KeyUsage).key_cert_sign is True
    cert.verify_directly_issued_by(cert)
    key = serialization.load_pem_private_key(key_path.read_bytes(), None)
    assert key.public_key() == cert.public_key()
    assert cert.not_valid_after_utc - cert.not_valid_before_utc >= timedelta(days=3650)
    assert not [p for p in (tmp_path / "ca").iterdir() if p.name.endswith(".tmp")]
    assert "BEGIN" not in repr(ca)


def test_reopening_keeps_the_ca(ca: CertificateAuthority, tmp_path: Path) -> None:
    bundle = ca.issue_client_certificate("alice", "fraud")
    again = CertificateAuthority(tmp_path / "ca")
    assert again.ca_pem == ca.ca_pem
    assert again.verify_client_certificate(bundle["certificate_pem"]) == ("alice", "fraud")


def test_two_cas_differ(ca: CertificateAuthority, other_ca: CertificateAuthority) -> None:
    assert _cert(ca.ca_pem).subject != _cert(other_ca.ca_pem).subject


def test_lost_ca_certificate_is_reissued_from_its_key(ca: CertificateAuthority, tmp_path: Path) -> None:
    bundle = ca.issue_client_certificate("alice", "fraud")
    (tmp_path / "ca" / "ca.pem").unlink()
    again = CertificateAuthority(tmp_path / "ca")
    assert (tmp_path / "ca" / "ca.pem").exists()
    assert again.verify_client_certificate(bundle["certificate_pem"]) == ("alice", "fraud")


def test_broken_ca_directories(ca: CertificateAuthority, other_ca: CertificateAuthority, tmp_path: Path) -> None:
    directory = tmp_path / "ca"
    (directory / "ca.pem").write_bytes(other_ca.ca_pem)  # a certificate of another key
    with pytest.raises(CertificateError, match="does not belong"):
        CertificateAuthority(directory)
    (directory / "ca.key").unlink()
    with pytest.raises(CertificateError, match="private key"):
        CertificateAuthority(directory)
    (directory / "ca.key").write_text("garbage")
    with pytest.raises(CertificateError, match="not an unencrypted PEM private key"):
        CertificateAuthority(directory)


# --- server certificates ----------------------------------------------------------------------

def test_server_certificate(ca: CertificateAuthority) -> None:
    cert_pem, key_pem = ca.issue_server_certificate(["store.example.com", "10.1.2.3", "[::1]", "Store.Example.com"])
    cert = _cert(cert_pem)
    cert.verify_directly_issued_by(_cert(ca.ca_pem))
    key = serialization.load_pem_private_key(key_pem, None)
    assert key.public_key() == cert.public_key()
    san = _ext(cert, x509.SubjectAlternativeName)
    assert san.get_values_for_type(x509.DNSName) == ["store.example.com", "localhost", "cloudsdk-server"]
    assert san.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address("10.1.2.3"), ipaddress.ip_address("::1"), ipaddress.ip_address("127.0.0.1")]
    assert list(_ext(cert, x509.ExtendedKeyUsage)) == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert _ext(cert, x509.BasicConstraints).ca is False
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert timedelta(days=364) < lifetime < timedelta(days=367)
    assert cert.not_valid_before_utc <= datetime.now(UTC)


def test_server_certificate_defaults_and_errors(ca: CertificateAuthority) -> None:
    cert = _cert(ca.issue_server_certificate([])[0])
    san = _ext(cert, x509.SubjectAlternativeName)
    assert san.get_values_for_type(x509.DNSName) == ["localhost", "cloudsdk-server"]
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    with pytest.raises(InvalidArgumentError):
        ca.issue_server_certificate(["héllo.example"])
    with pytest.raises(InvalidArgumentError):
        ca.issue_server_certificate([42])  # type: ignore[list-item]


# --- client certificates ----------------------------------------------------------------------

def test_client_certificate_pem(ca: CertificateAuthority) -> None:
    bundle = ca.issue_client_certificate("alice", "fraud")
    assert set(bundle) == {"ca_chain_pem", "certificate_pem", "private_key_pem", "pkcs12",
                           "keystore_jks", "truststore_jks", "password"}
    assert bundle["ca_chain_pem"] == ca.ca_pem.decode()
    cert = _cert(bundle["certificate_pem"])
    cert.verify_directly_issued_by(_cert(bundle["ca_chain_pem"]))
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "alice"
    assert cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "fraud"
    san = _ext(cert, x509.SubjectAlternativeName)
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == ["urn:cloudsdk:project:fraud:user:alice"]
    assert list(_ext(cert, x509.ExtendedKeyUsage)) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert timedelta(days=364) < lifetime < timedelta(days=367)
    key = serialization.load_pem_private_key(bundle["private_key_pem"].encode(), None)
    assert key.public_key() == cert.public_key()
    assert len(bundle["password"]) >= 32
    assert bundle["password"] != ca.issue_client_certificate("alice", "fraud")["password"]


def test_client_certificate_pkcs12(ca: CertificateAuthority) -> None:
    bundle = ca.issue_client_certificate("alice", "fraud")
    key, cert, extra = pkcs12.load_key_and_certificates(bundle["pkcs12"], bundle["password"].encode())
    assert cert is not None and key is not None
    assert cert == _cert(bundle["certificate_pem"])
    assert key.public_key() == cert.public_key()
    assert extra == [_cert(ca.ca_pem)]
    with pytest.raises(ValueError):
        pkcs12.load_key_and_certificates(bundle["pkcs12"], b"wrong")


def test_client_certificate_jks(ca: CertificateAuthority) -> None:
    bundle = ca.issue_client_certificate("alice", "fraud")
    der = serialization.Encoding.DER
    cert_der = _cert(bundle["certificate_pem"]).public_bytes(der)
    ca_der = _cert(ca.ca_pem).public_bytes(der)
    keystore = jks.KeyStore.loads(bundle["keystore_jks"], bundle["password"])
    assert list(keystore.private_keys) == ["client"]
    entry = keystore.private_keys["client"]
    assert entry.is_decrypted()
    assert [c[1] for c in entry.cert_chain] == [cert_der, ca_der]
    key = serialization.load_der_private_key(entry.pkey_pkcs8, None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    assert key.public_key() == _cert(bundle["certificate_pem"]).public_key()
    truststore = jks.KeyStore.loads(bundle["truststore_jks"], bundle["password"])
    assert list(truststore.certs) == ["ca"] and not truststore.private_keys
    assert truststore.certs["ca"].cert == ca_der
    with pytest.raises(jks.util.KeystoreSignatureException):
        jks.KeyStore.loads(bundle["truststore_jks"], "wrong")


def test_client_certificate_names_are_validated(ca: CertificateAuthority) -> None:
    with pytest.raises(InvalidNameError):
        ca.issue_client_certificate("alice:x", "fraud")
    with pytest.raises(InvalidNameError):
        ca.issue_client_certificate("alice", "Fraud")


# --- verifying client certificates ------------------------------------------------------------

def test_verify_client_certificate(ca: CertificateAuthority, other_ca: CertificateAuthority) -> None:
    bundle = ca.issue_client_certificate("bob", "marketing")
    assert ca.verify_client_certificate(bundle["certificate_pem"]) == ("bob", "marketing")
    assert ca.verify_client_certificate(bundle["certificate_pem"].encode()) == ("bob", "marketing")
    foreign = other_ca.issue_client_certificate("bob", "marketing")["certificate_pem"]
    with pytest.raises(CertificateError, match="not issued by this store's CA"):
        ca.verify_client_certificate(foreign)
    server_pem, _ = ca.issue_server_certificate(["localhost"])
    with pytest.raises(CertificateError, match="not a client certificate"):
        ca.verify_client_certificate(server_pem)
    with pytest.raises(CertificateError, match="not a client certificate"):
        ca.verify_client_certificate(ca.ca_pem)
    with pytest.raises(CertificateError, match="not a PEM certificate"):
        ca.verify_client_certificate("garbage")


def test_verify_rejects_expired_certificates(ca: CertificateAuthority, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ca_module, "_now", lambda: datetime.now(UTC) - timedelta(days=400))
    old = ca.issue_client_certificate("alice", "fraud")["certificate_pem"]
    monkeypatch.undo()
    with pytest.raises(CertificateError, match="not valid now"):
        ca.verify_client_certificate(old)


def test_verify_rejects_certificates_without_cloudsdk_names(ca: CertificateAuthority) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "alice")])
    cert = ca._issue(subject, key, [x509.UniformResourceIdentifier("urn:example:alice")],
                     ExtendedKeyUsageOID.CLIENT_AUTH)
    with pytest.raises(CertificateError, match="names no cloudsdk user and project"):
        ca.verify_client_certificate(cert.public_bytes(serialization.Encoding.PEM))


# --- mutual TLS end to end ----------------------------------------------------------------------

class _TLSServer:
    """A one-connection-at-a-time TLS server on 127.0.0.1 that requires a client certificate
    and answers with the (user, project) the CA reads from it."""

    def __init__(self, ca: CertificateAuthority, directory: Path) -> None:
        cert_pem, key_pem = ca.issue_server_certificate(["127.0.0.1"])
        (directory / "server.pem").write_bytes(cert_pem)
        (directory / "server.key").write_bytes(key_pem)
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(directory / "server.pem", directory / "server.key")
        self.context.verify_mode = ssl.CERT_REQUIRED
        self.context.verify_flags |= ssl.VERIFY_X509_STRICT
        self.context.load_verify_locations(cadata=ca.ca_pem.decode())
        self.ca = ca
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(10)
        self.port = self.sock.getsockname()[1]
        self.outcomes: queue.Queue[str | BaseException] = queue.Queue()  # one per connection
        self._stop = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self._stop:
            try:
                raw, _ = self.sock.accept()
            except OSError:
                return
            with raw:
                try:
                    with self.context.wrap_socket(raw, server_side=True) as tls:
                        tls.recv(4)
                        der = tls.getpeercert(binary_form=True)
                        assert der is not None
                        pem = ssl.DER_cert_to_PEM_cert(der)
                        user, project = self.ca.verify_client_certificate(pem)
                        tls.sendall(f"{user}@{project}".encode())
                        self.outcomes.put(f"{user}@{project}")
                except (ssl.SSLError, OSError) as exc:
                    self.outcomes.put(exc)

    def outcome(self) -> str | BaseException:
        """What the server made of the last connection."""
        return self.outcomes.get(timeout=10)

    def close(self) -> None:
        self._stop = True
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=1):
            pass  # wakes the blocked accept()
        self.thread.join(5)
        self.sock.close()


@pytest.fixture
def tls_server(ca: CertificateAuthority, tmp_path: Path) -> Iterator[_TLSServer]:
    server = _TLSServer(ca, tmp_path)
    yield server
    server.close()


def _client_context(trust: bytes, bundle: dict[str, Any] | None, directory: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(cadata=trust.decode())
    context.verify_flags |= ssl.VERIFY_X509_STRICT
    if bundle is not None:
        (directory / "client.pem").write_text(bundle["certificate_pem"])
        (directory / "client.key").write_text(bundle["private_key_pem"])
        context.load_cert_chain(directory / "client.pem", directory / "client.key")
    return context


def _talk(server: _TLSServer, context: ssl.SSLContext, hostname: str = "localhost") -> bytes:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as raw, \
            context.wrap_socket(raw, server_hostname=hostname) as tls:
        tls.sendall(b"ping")
        return tls.recv(100)


def test_mutual_tls_with_the_client_certificate(ca: CertificateAuthority, tls_server: _TLSServer,
                                                tmp_path: Path) -> None:
    context = _client_context(ca.ca_pem, ca.issue_client_certificate("alice", "fraud"), tmp_path)
    for hostname in ("localhost", "127.0.0.1", "cloudsdk-server"):
        assert _talk(tls_server, context, hostname) == b"alice@fraud"
        assert tls_server.outcome() == "alice@fraud"


def test_mutual_tls_refuses_a_client_without_certificate(ca: CertificateAuthority, tls_server: _TLSServer,
                                                         tmp_path: Path) -> None:
    context = _client_context(ca.ca_pem, None, tmp_path)
    with pytest.raises((ssl.SSLError, ConnectionError)):
        answer = _talk(tls_server, context)
        assert answer == b""  # TLS 1.3: the refusal may arrive as a closed connection
        raise ConnectionError("closed")
    assert isinstance(tls_server.outcome(), ssl.SSLError)


def test_mutual_tls_refuses_another_cas_client_certificate(ca: CertificateAuthority, other_ca: CertificateAuthority,
                                                          tls_server: _TLSServer, tmp_path: Path) -> None:
    context = _client_context(ca.ca_pem, other_ca.issue_client_certificate("alice", "fraud"), tmp_path)
    with pytest.raises((ssl.SSLError, ConnectionError)):
        answer = _talk(tls_server, context)
        assert answer == b""
        raise ConnectionError("closed")
    assert isinstance(tls_server.outcome(), ssl.SSLError)


def test_client_that_trusts_another_ca_refuses_the_server(ca: CertificateAuthority, other_ca: CertificateAuthority,
                                                          tls_server: _TLSServer, tmp_path: Path) -> None:
    context = _client_context(other_ca.ca_pem, ca.issue_client_certificate("alice", "fraud"), tmp_path)
    with pytest.raises(ssl.SSLCertVerificationError):
        _talk(tls_server, context)


def test_server_certificate_is_checked_for_the_host_name(ca: CertificateAuthority, tls_server: _TLSServer,
                                                         tmp_path: Path) -> None:
    context = _client_context(ca.ca_pem, ca.issue_client_certificate("alice", "fraud"), tmp_path)
    with pytest.raises(ssl.SSLCertVerificationError, match=r"match|mismatch"):
        _talk(tls_server, context, "other.example.com")
