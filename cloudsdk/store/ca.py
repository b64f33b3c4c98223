"""The store's certificate authority: server certificates for TLS, client certificates per
(user, project) for mutual TLS, in PEM, PKCS#12 and JKS (for Spark and other Java clients).

The CA lives in a directory (normally ``<data dir>/ca``): ``ca.key`` (mode 0600) and
``ca.pem``, created on first use and reused afterwards. A client certificate names its user
and project in a SAN URI ``urn:cloudsdk:project:<project>:user:<user>``, which
:meth:`CertificateAuthority.verify_client_certificate` reads back.

Example::

    ca = CertificateAuthority(data_dir / "ca")
    cert_pem, key_pem = ca.issue_server_certificate(["feature-store.internal"])
    bundle = ca.issue_client_certificate("alice", "fraud")
    ca.verify_client_certificate(bundle["certificate_pem"])   # -> ("alice", "fraud")
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import os
import re
import secrets
import tempfile
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from cloudsdk._names import validate_name
from cloudsdk.errors import CertificateError, InvalidArgumentError

log = logging.getLogger(__name__)

__all__ = ["SERVER_DNS_NAME", "CertificateAuthority", "client_uri"]

CA_VALIDITY = timedelta(days=3650)
CERT_VALIDITY = timedelta(days=365)
CLOCK_SKEW = timedelta(minutes=5)
# Always in a server certificate, besides the host names asked for.
SERVER_DNS_NAME = "cloudsdk-server"
_ALWAYS = ("localhost", "127.0.0.1", SERVER_DNS_NAME)
_URI_RE = re.compile(r"^urn:cloudsdk:project:(?P<project>[^:]+):user:(?P<user>[^:]+)$")
_KEY_FILE, _CERT_FILE, _LOCK_FILE = "ca.key", "ca.pem", ".ca.lock"


def client_uri(user: str, project: str) -> str:
    """The SAN URI that names a client certificate's user and project."""
    return f"urn:cloudsdk:project:{project}:user:{user}"


def _host_name(host: str) -> x509.GeneralName:
    """A SAN entry: an IP address if ``host`` is one, else a DNS name."""
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def _now() -> datetime:
    return datetime.now(UTC)


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _write_atomic(path: Path, data: bytes, mode: int) -> None:
    """Write ``data`` to a temporary file beside ``path`` (created with ``mode``), then rename."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        if hasattr(os, "fchmod"):  # mkstemp already made it 0600
            os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """An exclusive lock on the CA directory, so concurrent servers create one CA, not two."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no cross-process lock
        yield
        return
    with open(directory / _LOCK_FILE, "a+b") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


class CertificateAuthority:
    """A CA kept in a directory; loads it, or creates it on first use.

    Raises:
        CertificateError: the directory holds a CA that cannot be read, a certificate without
            its key, or a key that does not match the certificate.
    """

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory).expanduser()
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            with _locked(self.directory):
                self._key, self._cert = self._load_or_create()
        except OSError as exc:
            raise CertificateError(f"cannot open the certificate authority in {self.directory}: {exc}",
                                   directory=str(self.directory)) from exc
        self._pem = self._cert.public_bytes(serialization.Encoding.PEM)

    def __repr__(self) -> str:
        return f"CertificateAuthority({str(self.directory)!r}, subject={self._cert.subject.rfc4514_string()!r})"

    # --- the CA itself -------------------------------------------------------------------

    def _load_or_create(self) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
        key_path, cert_path = self.directory / _KEY_FILE, self.directory / _CERT_FILE
        if key_path.exists():
            key = self._load_key(key_path)
            if cert_path.exists():
                try:
                    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
                except ValueError as exc:
                    raise CertificateError(f"{cert_path} is not a PEM certificate") from exc
                if cert.public_key() != key.public_key():
                    raise CertificateError(f"{cert_path} does not belong to the key in {key_path}")
                return key, cert
            log.warning("%s is missing: re-issuing the CA certificate from %s", cert_path, key_path)
        elif cert_path.exists():
            raise CertificateError(
                f"{cert_path} exists but its private key {key_path} does not: restore the key, or move "
                "both away to create a new CA (certificates it issued will then stop working)"
            )
        else:
            key = _new_key()
            _write_atomic(key_path, _key_pem(key), 0o600)
            log.info("created a certificate authority in %s", self.directory)
        cert = self._self_sign(key)
        _write_atomic(cert_path, cert.public_bytes(serialization.Encoding.PEM), 0o644)
        return key, cert

    @staticmethod
    def _load_key(path: Path) -> ec.EllipticCurvePrivateKey:
        try:
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        except (ValueError, TypeError) as exc:
            raise CertificateError(f"{path} is not an unencrypted PEM private key") from exc
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise CertificateError(f"{path} is not an EC private key")
        return key

    @staticmethod
    def _self_sign(key: ec.EllipticCurvePrivateKey) -> x509.Certificate:
        ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
        name = x509.Name([
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "cloudsdk"),
            # A name of its own per CA (so two stores' chains never get confused), derived from
            # the key (so a certificate re-issued from the same key still verifies old ones).
            x509.NameAttribute(NameOID.COMMON_NAME, f"cloudsdk CA {ski.digest.hex()[:12]}"),
        ])
        now = _now()
        return (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - CLOCK_SKEW)
            .not_valid_after(now + CA_VALIDITY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                encipher_only=False, decipher_only=False), critical=True)
            .add_extension(ski, critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
            .sign(key, hashes.SHA256())
        )

    @property
    def ca_pem(self) -> bytes:
        """The CA certificate (the whole chain: there are no intermediates), PEM."""
        return self._pem

    @property
    def certificate(self) -> x509.Certificate:
        """The CA certificate."""
        return self._cert

    # --- issuing ---------------------------------------------------------------------------

    def _issue(self, subject: x509.Name, key: ec.EllipticCurvePrivateKey, sans: list[x509.GeneralName],
               eku: x509.ObjectIdentifier) -> x509.Certificate:
        now = _now()
        not_after = min(now + CERT_VALIDITY, self._cert.not_valid_after_utc)
        return (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self._cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - CLOCK_SKEW)
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
                encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([eku]), critical=False)
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()),
                           critical=False)
            .sign(self._key, hashes.SHA256())
        )

    def issue_server_certificate(self, hostnames: Sequence[str]) -> tuple[bytes, bytes]:
        """A TLS server certificate for ``hostnames`` (DNS names or IP addresses), valid 1 year.

        ``localhost``, ``127.0.0.1`` and ``cloudsdk-server`` are always included.

        Returns:
            ``(certificate PEM, private key PEM)``.

        Raises:
            InvalidArgumentError: a host name that is not a string.
        """
        if isinstance(hostnames, str):
            hostnames = [hostnames]
        names: list[str] = []
        for host in [*hostnames, *_ALWAYS]:
            if not isinstance(host, str):
                raise InvalidArgumentError(f"a host name must be a string, got {host!r}")
            host = host.strip().strip("[]").lower()
            if host and host not in names:
                names.append(host)
        key = _new_key()
        try:
            sans = [_host_name(host) for host in names]
            subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "cloudsdk"),
                                 x509.NameAttribute(NameOID.COMMON_NAME, names[0][:64])])
            cert = self._issue(subject, key, sans, ExtendedKeyUsageOID.SERVER_AUTH)
        except ValueError as exc:
            raise InvalidArgumentError(f"cannot issue a server certificate for {names}: {exc}") from exc
        return cert.public_bytes(serialization.Encoding.PEM), _key_pem(key)

    def issue_client_certificate(self, user: str, project: str) -> dict[str, Any]:
        """A client certificate for ``user`` in ``project``, valid 1 year, in every format.

        Returns:
            ``{"ca_chain_pem", "certificate_pem", "private_key_pem"}`` (str), ``"pkcs12"``,
            ``"keystore_jks"`` (private key entry ``client``), ``"truststore_jks"`` (trusted
            certificate ``ca``) (bytes), and ``"password"`` that opens the PKCS#12 bundle and
            both JKS stores.

        Raises:
            InvalidNameError: a bad user or project name.
            CertificateError: the bundle could not be built.
        """
        validate_name(user, "user")
        validate_name(project, "project")
        key = _new_key()
        subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, project),
                             x509.NameAttribute(NameOID.COMMON_NAME, user)])
        cert = self._issue(subject, key, [x509.UniformResourceIdentifier(client_uri(user, project))],
                           ExtendedKeyUsageOID.CLIENT_AUTH)
        password = secrets.token_urlsafe(24)
        try:
            p12 = pkcs12.serialize_key_and_certificates(
                b"client", key, cert, [self._cert],
                serialization.BestAvailableEncryption(password.encode("ascii")),
            )
            keystore, truststore = self._jks(key, cert, password)
        except (ValueError, TypeError) as exc:
            raise CertificateError(f"cannot build the certificate bundle: {exc}") from exc
        return {
            "ca_chain_pem": self._pem.decode("ascii"),
            "certificate_pem": cert.public_bytes(serialization.Encoding.PEM).decode("ascii"),
            "private_key_pem": _key_pem(key).decode("ascii"),
            "pkcs12": p12,
            "keystore_jks": keystore,
            "truststore_jks": truststore,
            "password": password,
        }

    def _jks(self, key: ec.EllipticCurvePrivateKey, cert: x509.Certificate, password: str) -> tuple[bytes, bytes]:
        try:
            import jks
        except ImportError as exc:
            raise CertificateError(
                "JKS key stores need pyjks, part of the 'server' extra: pip install 'cloudsdk[server]'"
            ) from exc
        der = serialization.Encoding.DER
        pkcs8 = key.private_bytes(der, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        entry = jks.PrivateKeyEntry.new("client", [cert.public_bytes(der), self._cert.public_bytes(der)],
                                        pkcs8, "pkcs8")
        keystore = jks.KeyStore.new("jks", [entry]).saves(password)
        trusted = jks.TrustedCertEntry.new("ca", self._cert.public_bytes(der))
        truststore = jks.KeyStore.new("jks", [trusted]).saves(password)
        return bytes(keystore), bytes(truststore)

    # --- verifying -------------------------------------------------------------------------

    def verify_client_certificate(self, certificate_pem: bytes | str) -> tuple[str, str]:
        """The ``(user, project)`` of a client certificate this CA issued.

        Raises:
            CertificateError: not a PEM certificate, not signed by this CA, not valid now, not
                a client certificate, or without a cloudsdk SAN URI.
        """
        data = certificate_pem.encode("ascii") if isinstance(certificate_pem, str) else certificate_pem
        try:
            cert = x509.load_pem_x509_certificate(data)
        except (ValueError, TypeError) as exc:
            raise CertificateError("not a PEM certificate") from exc
        subject = cert.subject.rfc4514_string()
        try:
            cert.verify_directly_issued_by(self._cert)
        except (ValueError, TypeError, InvalidSignature) as exc:
            raise CertificateError(f"the certificate {subject!r} was not issued by this store's CA") from exc
        now = _now()
        if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
            raise CertificateError(
                f"the certificate {subject!r} is not valid now (valid from {cert.not_valid_before_utc:%Y-%m-%d} "
                f"to {cert.not_valid_after_utc:%Y-%m-%d}); fetch a new one by reconnecting"
            )
        try:
            eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
            basic = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
        except x509.ExtensionNotFound as exc:
            raise CertificateError(f"the certificate {subject!r} is not a client certificate") from exc
        if ExtendedKeyUsageOID.CLIENT_AUTH not in eku or basic.ca:
            raise CertificateError(f"the certificate {subject!r} is not a client certificate")
        try:
            uris = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value \
                .get_values_for_type(x509.UniformResourceIdentifier)
        except x509.ExtensionNotFound:
            uris = []
        for uri in uris:
            m = _URI_RE.match(uri)
            if m:
                return m.group("user"), m.group("project")
        raise CertificateError(f"the certificate {subject!r} names no cloudsdk user and project")
