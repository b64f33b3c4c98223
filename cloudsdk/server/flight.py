"""The Arrow Flight data service: reads of feature groups, queries, ``sql()`` and training
datasets, streamed as Arrow record batches over gRPC with mutual TLS.

Two locks on every call:

1. TLS: the client must present a certificate that the store's CA issued (gRPC checks the
   chain against the CA; no certificate, or one of another CA, fails the handshake).
2. Headers (:mod:`cloudsdk._protocol`): the API key (``authorization: ApiKey <key>``), the
   acting project, the client certificate (base64 PEM), a timestamp and a proof of
   possession: the signature of :func:`cloudsdk._protocol.proof_message` with the
   certificate's private key (ECDSA-SHA256 or RSA PKCS#1 v1.5-SHA256). The certificate must
   name the key's user and the acting project, and the timestamp must be within
   :data:`cloudsdk._protocol.PROOF_MAX_SKEW_S` seconds of the server's clock.

``do_get`` then authorizes a read of the ticket's project (the acting project's own feature
store, or one shared with it) and runs the store method the ticket names. Errors travel as
Flight errors whose message is ``cloudsdk-error:`` followed by the JSON error shape, so the
client re-raises the same :class:`~cloudsdk.errors.CloudSDKError` class.

The result is streamed in record batches of about :data:`BATCH_BYTES` (zero-copy slices of
the table, rows in order): over gRPC + TLS, messages of about 1 MiB move a large table about
30% faster than the 10+ MiB batches a Parquet scan yields (``benchmarks/bench_remote_read.py``
and its README section).
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import time
from typing import Any

import pyarrow as pa
import pyarrow.flight as flight
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from cloudsdk import _protocol as P
from cloudsdk.errors import (
    AuthenticationError,
    CertificateError,
    CloudSDKError,
    InvalidArgumentError,
    PermissionDeniedError,
)
from cloudsdk.server.app import Server, parse_api_key
from cloudsdk.store.security import Principal

log = logging.getLogger(__name__)

__all__ = ["BATCH_BYTES", "ERROR_PREFIX", "FeatureFlightServer", "flight_error", "rebatch"]

ERROR_PREFIX = P.FLIGHT_ERROR_PREFIX
MIDDLEWARE = "cloudsdk-auth"
# The size of the record batches a result is streamed in (Arrow bytes; one Flight message each).
BATCH_BYTES = 1 << 20


def flight_error(exc: BaseException) -> flight.FlightError:
    """The Flight error for ``exc``: its message is ``cloudsdk-error:`` + the JSON error shape."""
    payload = P.error_payload(exc)
    message = ERROR_PREFIX + json.dumps(payload, default=str)
    status = payload["status"]
    if status == 401:
        return flight.FlightUnauthenticatedError(message)
    if status == 403:
        return flight.FlightUnauthorizedError(message)
    if status >= 500:
        return flight.FlightInternalError(message)
    return flight.FlightServerError(message)


def rebatch(table: pa.Table, batch_bytes: int = BATCH_BYTES) -> pa.Table:
    """``table`` cut into record batches of about ``batch_bytes`` each (zero-copy, rows in order).

    Each chunk of the table is cut into equal slices of at most ``batch_bytes // row size``
    rows (the table's average row size; at least one row), so no tiny tail batches are left.
    Chunks smaller than that stay as they are: joining them would copy.
    """
    if table.num_rows == 0:
        return table
    rows = max(1, batch_bytes // max(1, table.nbytes // table.num_rows))
    batches: list[pa.RecordBatch] = []
    for batch in table.to_batches():
        if batch.num_rows == 0:
            continue
        pieces = -(-batch.num_rows // rows)  # ceil: no slice over `rows`
        size = -(-batch.num_rows // pieces)  # ceil: equal slices, no tiny tail
        batches.extend(batch.slice(start, size) for start in range(0, batch.num_rows, size))
    return pa.Table.from_batches(batches, table.schema)


def _header(headers: dict[str, list[Any]], name: str) -> str | None:
    values = headers.get(name) or headers.get(name.lower())
    if not values:
        return None
    value = values[0]
    return value.decode("latin-1") if isinstance(value, bytes) else str(value)


def _b64(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        try:
            return base64.urlsafe_b64decode(text.strip())
        except (binascii.Error, ValueError) as exc:
            raise AuthenticationError(f"the {what} header is not base64") from exc


def verify_proof(certificate_pem: bytes, signature: bytes, message: bytes) -> None:
    """Check ``signature`` of ``message`` with the certificate's public key.

    Raises:
        AuthenticationError: a bad signature, or a key type other than EC and RSA.
    """
    public_key = x509.load_pem_x509_certificate(certificate_pem).public_key()
    try:
        if isinstance(public_key, ec.EllipticCurvePublicKey):
            public_key.verify(signature, message, ec.ECDSA(hashes.SHA256()))
        elif isinstance(public_key, rsa.RSAPublicKey):
            public_key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
        else:
            raise AuthenticationError("the client certificate's key type is not supported (use EC or RSA)")
    except InvalidSignature as exc:
        raise AuthenticationError(
            "the proof of possession does not verify: it was not signed with the private key of "
            "the client certificate sent"
        ) from exc


class CallIdentity(flight.ServerMiddleware):
    """The authenticated caller of one Flight call."""

    def __init__(self, principal: Principal, acting: str) -> None:
        self.principal = principal
        self.acting = acting


class _Authenticate(flight.ServerMiddlewareFactory):
    """Checks the API key, the client certificate and its proof of possession on every call."""

    def __init__(self, server: Server) -> None:
        self.server = server

    def start_call(self, info: Any, headers: dict[str, list[Any]]) -> CallIdentity:
        try:
            return self._identify(headers)
        except CloudSDKError as exc:
            log.info("refused a Flight call: %s", exc.message)
            raise flight_error(exc) from exc
        except Exception as exc:
            log.exception("internal error authenticating a Flight call")
            raise flight_error(RuntimeError()) from exc

    def _identify(self, headers: dict[str, list[Any]]) -> CallIdentity:
        key = parse_api_key(_header(headers, P.HEADER_AUTH))
        principal = self.server.security.authenticate(key)
        acting = _header(headers, P.HEADER_PROJECT)
        if not acting:
            raise AuthenticationError(f"the Flight call names no project ({P.HEADER_PROJECT} header)")
        cert_text, ts, proof = (_header(headers, h) for h in (P.HEADER_CERT, P.HEADER_TIMESTAMP, P.HEADER_PROOF))
        if not cert_text or not ts or not proof:
            raise AuthenticationError(
                f"the Flight call lacks the client certificate or its proof ({P.HEADER_CERT}, "
                f"{P.HEADER_TIMESTAMP}, {P.HEADER_PROOF} headers)"
            )
        cert_pem = _b64(cert_text, P.HEADER_CERT)
        try:
            cert_user, cert_project = self.server.ca.verify_client_certificate(cert_pem)
        except CertificateError as exc:
            raise AuthenticationError(f"the client certificate was refused: {exc.message}") from exc
        try:
            skew = abs(time.time() - float(ts))
        except ValueError as exc:
            raise AuthenticationError(f"the {P.HEADER_TIMESTAMP} header is not a Unix time") from exc
        if not skew <= P.PROOF_MAX_SKEW_S:
            raise AuthenticationError(
                f"the proof's timestamp is {skew:.0f} s away from the server's clock (at most "
                f"{P.PROOF_MAX_SKEW_S} s allowed): check this machine's clock"
            )
        verify_proof(cert_pem, _b64(proof, P.HEADER_PROOF), P.proof_message(ts, P.key_prefix(key), acting))
        if cert_user != principal.user:
            raise AuthenticationError(
                f"the client certificate is for user {cert_user!r}, the API key for user "
                f"{principal.user!r}: use the certificate fetched with this key"
            )
        if cert_project != acting:
            raise PermissionDeniedError(
                f"the client certificate is for project {cert_project!r}, the call acts in project "
                f"{acting!r}: connect to {acting!r} to get its certificate"
            )
        return CallIdentity(principal, acting)


class FeatureFlightServer(flight.FlightServerBase):
    """The Flight service of a :class:`~cloudsdk.server.app.Server`; serves from construction.

    Args:
        server: the store, security service and CA.
        host: the address to listen on.
        port: the port (0 picks a free one; see :attr:`port`).
        tls_cert: the server certificate chain (PEM).
        tls_key: its private key (PEM).
    """

    def __init__(self, server: Server, *, host: str = "127.0.0.1", port: int = 0,
                 tls_cert: bytes, tls_key: bytes) -> None:
        bind = f"[{host}]" if ":" in host and not host.startswith("[") else host
        try:
            super().__init__(
                f"grpc+tls://{bind}:{port}",
                tls_certificates=[flight.CertKeyPair(cert=tls_cert, key=tls_key)],
                verify_client=True,
                root_certificates=server.ca.ca_pem,
                middleware={MIDDLEWARE: _Authenticate(server)},
            )
        except Exception as exc:
            from cloudsdk.errors import ConfigurationError

            raise ConfigurationError(f"cannot start the Flight service on {host}:{port}: {exc}") from exc
        self.server = server

    def do_get(self, context: flight.ServerCallContext, ticket: flight.Ticket) -> flight.RecordBatchStream:
        """Run the ticket's read and stream its table."""
        identity = context.get_middleware(MIDDLEWARE)
        if not isinstance(identity, CallIdentity):  # pragma: no cover - the middleware always runs
            raise flight_error(AuthenticationError("the call was not authenticated"))
        try:
            op, project, args = self._authorized(identity, ticket.ticket, P.FLIGHT_OPS)
            table = self.server.call(op, project, **args)
        except CloudSDKError as exc:
            raise flight_error(exc) from exc
        except Exception as exc:
            log.exception("internal error in a Flight read")
            raise flight_error(RuntimeError()) from exc
        return flight.RecordBatchStream(rebatch(table))

    def _authorized(self, identity: CallIdentity, raw: bytes,
                    allowed: tuple[str, ...]) -> tuple[str, str, dict[str, Any]]:
        """The operation of a ticket (or exchange command), once the caller may read its project."""
        try:
            op, project, args = P.parse_ticket(raw)
        except ValueError as exc:
            raise InvalidArgumentError(f"malformed Flight ticket: {exc}") from exc
        if op not in allowed:
            raise InvalidArgumentError(f"Flight operation {op!r} is not available through this call")
        self.server.security.authorize(identity.principal, identity.acting,
                                       target=None if project == identity.acting else project)
        return op, project, args

    def do_exchange(self, context: flight.ServerCallContext, descriptor: flight.FlightDescriptor,
                    reader: flight.MetadataRecordBatchReader, writer: flight.MetadataRecordBatchWriter) -> None:
        """Read the client's table (e.g. the label rows of a point-in-time join), run the
        descriptor's operation with it as ``entity``, and stream the result back."""
        identity = context.get_middleware(MIDDLEWARE)
        if not isinstance(identity, CallIdentity):  # pragma: no cover - the middleware always runs
            raise flight_error(AuthenticationError("the call was not authenticated"))
        try:
            op, project, args = self._authorized(identity, descriptor.command or b"", P.FLIGHT_EXCHANGE_OPS)
            try:
                entity = reader.read_all()
            except (pa.ArrowException, OSError) as exc:
                raise InvalidArgumentError(f"the exchange's table could not be read: {exc}") from exc
            table = self.server.call(op, project, entity=entity, **args)
        except CloudSDKError as exc:
            raise flight_error(exc) from exc
        except Exception as exc:
            log.exception("internal error in a Flight exchange")
            raise flight_error(RuntimeError()) from exc
        writer.begin(table.schema)
        writer.write_table(rebatch(table))
