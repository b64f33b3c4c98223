"""The Arrow Flight service in-process on loopback: reads with the right certificate, key and
proof; refusals for every missing or wrong piece; a shared store read with the reader's
certificate."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.flight as fl
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID

from cloudsdk import _protocol as P
from cloudsdk.errors import AuthenticationError
from cloudsdk.server.app import Server, build
from cloudsdk.server.flight import (
    BATCH_BYTES,
    ERROR_PREFIX,
    FeatureFlightServer,
    rebatch,
    verify_proof,
)
from cloudsdk.store.ca import CertificateAuthority

ROWS = pa.table({"id": [1, 2, 3], "score": [0.5, 1.5, 2.5], "city": ["a", "b", "c"]})
TIMEOUT_S = 20.0


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    """fraud (alice owner), other (carol owner; alice too), reader (dave owner, fraud shared with it)."""
    srv = build(tmp_path / "data")
    for project in ("fraud", "other", "reader"):
        srv.service.create_project(project)
    for user, project in (("alice", "fraud"), ("carol", "other"), ("dave", "reader")):
        srv.security.create_user(user)
        srv.security.add_member(project, user, "data_owner")
    srv.security.add_member("other", "alice", "data_scientist")
    srv.security.share("fraud", "reader")
    srv.service.create_group("fraud", "tx", 1, ROWS, primary_key=["id"])
    srv.service.create_group("other", "secret", 1, ROWS, primary_key=["id"])
    yield srv
    srv.close()


@pytest.fixture
def flight_port(server: Server) -> Iterator[int]:
    cert, key = server.ca.issue_server_certificate(["localhost"])
    service = FeatureFlightServer(server, host="127.0.0.1", port=0, tls_cert=cert, tls_key=key)
    yield service.port
    service.shutdown()


@pytest.fixture
def keys(server: Server) -> dict[str, str]:
    return {user: server.security.create_api_key(user, "nb", ["featurestore", "project"])[0]
            for user in ("alice", "carol", "dave")}


class Caller:
    """A Flight client with a certificate, and the headers of the contract (each overridable)."""

    def __init__(self, port: int, root_pem: bytes, bundle: dict[str, Any] | None) -> None:
        self.bundle = bundle
        kwargs: dict[str, Any] = {"tls_root_certs": root_pem}
        if bundle is not None:
            kwargs.update(cert_chain=bundle["certificate_pem"].encode(), private_key=bundle["private_key_pem"].encode())
        self.client = fl.FlightClient(f"grpc+tls://127.0.0.1:{port}", **kwargs)

    def headers(self, key: str, project: str, *, ts: str | None = None, signer: Any = None,
                cert_pem: str | None = None) -> list[tuple[bytes, bytes]]:
        assert self.bundle is not None or cert_pem is not None
        ts = ts or str(int(time.time()))
        cert_pem = cert_pem or self.bundle["certificate_pem"]  # type: ignore[index]
        signer = signer or serialization.load_pem_private_key(self.bundle["private_key_pem"].encode(), None)  # type: ignore[index]
        message = P.proof_message(ts, P.key_prefix(key), project)
        if isinstance(signer, rsa.RSAPrivateKey):
            proof = signer.sign(message, padding.PKCS1v15(), hashes.SHA256())
        else:
            proof = signer.sign(message, ec.ECDSA(hashes.SHA256()))
        return [(P.HEADER_AUTH.encode(), f"ApiKey {key}".encode()), (P.HEADER_PROJECT.encode(), project.encode()),
                (P.HEADER_CERT.encode(), base64.b64encode(cert_pem.encode())),
                (P.HEADER_TIMESTAMP.encode(), ts.encode()), (P.HEADER_PROOF.encode(), base64.b64encode(proof))]

    def read(self, ticket: bytes, headers: list[tuple[bytes, bytes]]) -> pa.Table:
        options = fl.FlightCallOptions(headers=headers, timeout=TIMEOUT_S)
        return self.client.do_get(fl.Ticket(ticket), options=options).read_all()

    def batches(self, ticket: bytes, headers: list[tuple[bytes, bytes]]) -> list[pa.RecordBatch]:
        """The record batches of one read, as they came over the wire."""
        options = fl.FlightCallOptions(headers=headers, timeout=TIMEOUT_S)
        reader = self.client.do_get(fl.Ticket(ticket), options=options)
        out = []
        while True:
            try:
                out.append(reader.read_chunk().data)
            except StopIteration:
                return out

    def close(self) -> None:
        self.client.close()


@pytest.fixture
def connect(server: Server, flight_port: int) -> Iterator[Callable[..., Caller]]:
    opened: list[Caller] = []

    def make(user: str | None, project: str | None = None, *, ca: CertificateAuthority | None = None,
             root_pem: bytes | None = None) -> Caller:
        bundle = None
        if user is not None and project is not None:
            bundle = (ca or server.ca).issue_client_certificate(user, project)
        caller = Caller(flight_port, root_pem or server.ca.ca_pem, bundle)
        opened.append(caller)
        return caller

    yield make
    for caller in opened:
        caller.close()


def cloudsdk_error(exc: BaseException) -> dict[str, Any]:
    """The JSON error shape carried in a Flight error's message."""
    text = str(exc)
    assert ERROR_PREFIX in text, text
    payload, _ = json.JSONDecoder().raw_decode(text[text.index(ERROR_PREFIX) + len(ERROR_PREFIX):])
    assert set(payload) >= {"code", "message", "status"}
    return payload


READ_TX = P.ticket("read_group", "fraud", name="tx", version=1)


# --- reads ------------------------------------------------------------------------------------------


def test_read_group_equals_the_embedded_read(connect: Callable[..., Caller], server: Server,
                                             keys: dict[str, str]) -> None:
    alice = connect("alice", "fraud")
    table = alice.read(READ_TX, alice.headers(keys["alice"], "fraud"))
    assert table.equals(server.service.read_group("fraud", "tx", 1))
    columns = alice.read(P.ticket("read_group", "fraud", name="tx", version=None, columns=["city"]),
                         alice.headers(keys["alice"], "fraud"))
    assert columns.equals(server.service.read_group("fraud", "tx", None, ["city"]))


def test_every_flight_operation(connect: Callable[..., Caller], server: Server, keys: dict[str, str]) -> None:
    svc = server.service
    svc.create_training_dataset("fraud", "td", 1, ROWS, data_format="csv")
    alice = connect("alice", "fraud")
    h = alice.headers(keys["alice"], "fraud")
    spec = svc.feature_query("fraud", ["score", "city"])
    assert alice.read(P.ticket("run_query", "fraud", spec=spec), h).equals(svc.run_query("fraud", spec))
    query = "SELECT id, score FROM tx_1 WHERE score > 1 ORDER BY id"
    assert alice.read(P.ticket("sql", "fraud", query=query, dialect="auto"), h).equals(svc.sql("fraud", query))
    assert alice.read(P.ticket("read_training_dataset", "fraud", name="td", version=1), h).equals(
        svc.read_training_dataset("fraud", "td", 1))
    # a large read streams in several batches and arrives whole
    big = pa.table({"id": pa.array(range(300_000), pa.int64()), "v": pa.array(range(300_000), pa.float64())})
    svc.create_group("fraud", "big", 1, big, primary_key=["id"])
    got = alice.read(P.ticket("read_group", "fraud", name="big", version=1), h)
    assert got.num_rows == 300_000 and got.equals(svc.read_group("fraud", "big", 1))


def test_large_results_stream_in_batches_of_about_batch_bytes(connect: Callable[..., Caller], server: Server,
                                                              keys: dict[str, str]) -> None:
    n = 200_000  # 3.2 MB of Arrow: a few batches of about 1 MiB
    big = pa.table({"id": pa.array(range(n), pa.int64()), "v": pa.array(range(n), pa.float64())})
    server.service.create_group("fraud", "big", 1, big, primary_key=["id"])
    alice = connect("alice", "fraud")
    batches = alice.batches(P.ticket("read_group", "fraud", name="big", version=1), alice.headers(keys["alice"], "fraud"))
    scanned = server.service.read_group("fraud", "big", 1).column(0).num_chunks
    assert big.nbytes // BATCH_BYTES <= len(batches) <= big.nbytes // BATCH_BYTES + scanned
    assert all(b.nbytes <= BATCH_BYTES for b in batches)
    assert pa.Table.from_batches(batches).equals(server.service.read_group("fraud", "big", 1))


def test_remote_rows_come_in_the_embedded_order_partitioned_and_after_commits(
        connect: Callable[..., Caller], server: Server, keys: dict[str, str]) -> None:
    svc = server.service
    rows = pa.table({"id": pa.array(range(60_000), pa.int64()),
                     "city": pa.array([("a", "b", "c")[i % 3] for i in range(60_000)]),
                     "score": pa.array([float(i) for i in range(60_000)])})
    svc.create_group("fraud", "parted", 1, rows.slice(0, 20_000), primary_key=["id"], partition_by=["city"])
    svc.insert("fraud", "parted", 1, rows.slice(20_000, 20_000))
    svc.insert("fraud", "parted", 1, rows.slice(40_000))
    svc.insert("fraud", "parted", 1, rows.slice(0, 5_000).set_column(2, "score", pa.array([-1.0] * 5_000)),
               mode="upsert")
    alice = connect("alice", "fraud")
    h = alice.headers(keys["alice"], "fraud")
    for columns in (None, ["score", "id"]):
        ticket = P.ticket("read_group", "fraud", name="parted", version=1, columns=columns)
        got = alice.read(ticket, h)
        assert got.equals(svc.read_group("fraud", "parted", 1, columns))  # same rows, same order
        assert got.num_rows == 60_000
    assert len(alice.batches(P.ticket("read_group", "fraud", name="parted", version=1), h)) > 1


def test_rebatch_slices_without_copying_and_keeps_the_rows_in_order() -> None:
    table = pa.Table.from_batches([
        pa.record_batch({"id": pa.array(range(i, i + 1000), pa.int64()),
                         "name": pa.array([f"n{j}" for j in range(i, i + 1000)])})
        for i in range(0, 10_000, 1000)])
    out = rebatch(table, batch_bytes=4096)
    assert out.equals(table)
    sizes = [b.num_rows for b in out.to_batches()]
    assert len(set(sizes)) == 1 and 0 < sizes[0] <= 1000  # equal slices of each 1000-row chunk
    assert all(b.nbytes <= 4096 * 1.25 for b in out.to_batches())  # about: string lengths vary
    first = out.column("id").chunk(0)
    assert first.buffers()[1].address == table.column("id").chunk(0).buffers()[1].address  # a slice, no copy
    assert rebatch(table, batch_bytes=1 << 30).column("id").num_chunks == table.column("id").num_chunks
    empty = table.schema.empty_table()
    assert rebatch(empty).equals(empty) and rebatch(empty).schema == table.schema
    assert rebatch(table, batch_bytes=1).num_rows == table.num_rows  # at least one row a batch


def test_store_errors_travel_as_the_json_shape(connect: Callable[..., Caller], keys: dict[str, str]) -> None:
    alice = connect("alice", "fraud")
    with pytest.raises(fl.FlightServerError) as missing:
        alice.read(P.ticket("read_group", "fraud", name="nope", version=1), alice.headers(keys["alice"], "fraud"))
    assert cloudsdk_error(missing.value)["code"] == "featuregroup_not_found"
    with pytest.raises(fl.FlightServerError) as sandbox:
        alice.read(P.ticket("sql", "fraud", query="COPY tx_1 TO '/tmp/x.csv'"), alice.headers(keys["alice"], "fraud"))
    assert cloudsdk_error(sandbox.value)["code"] in ("sql_forbidden", "sql_error")
    with pytest.raises(fl.FlightServerError) as malformed:
        alice.read(b"not json", alice.headers(keys["alice"], "fraud"))
    assert cloudsdk_error(malformed.value)["code"] == "invalid_argument"
    with pytest.raises(fl.FlightServerError) as bad_args:
        alice.read(P.ticket("read_group", "fraud", name="tx", colour="red"), alice.headers(keys["alice"], "fraud"))
    assert cloudsdk_error(bad_args.value)["code"] == "invalid_argument"


def test_the_cloudsdk_client_reads_and_reraises(connect: Callable[..., Caller], server: Server,
                                                flight_port: int, keys: dict[str, str]) -> None:
    from cloudsdk.client.remote import FlightReader
    from cloudsdk.errors import FeatureGroupNotFoundError

    bundle = server.ca.issue_client_certificate("alice", "fraud")
    reader = FlightReader("127.0.0.1", flight_port, keys["alice"], "fraud", root_pem=server.ca.ca_pem,
                          cert_pem=bundle["certificate_pem"].encode(), key_pem=bundle["private_key_pem"].encode())
    try:
        assert reader.read(READ_TX).equals(server.service.read_group("fraud", "tx", 1))
        with pytest.raises(FeatureGroupNotFoundError):
            reader.read(P.ticket("read_group", "fraud", name="nope", version=1))
    finally:
        reader.close()


# --- sharing ----------------------------------------------------------------------------------------


def test_shared_store_is_readable_with_the_readers_certificate(connect: Callable[..., Caller], server: Server,
                                                               keys: dict[str, str]) -> None:
    dave = connect("dave", "reader")
    table = dave.read(READ_TX, dave.headers(keys["dave"], "reader"))
    assert table.equals(server.service.read_group("fraud", "tx", 1))
    # a store that is not shared with the reader is invisible, exactly like a missing one
    with pytest.raises(fl.FlightServerError) as hidden:
        dave.read(P.ticket("read_group", "other", name="secret", version=1), dave.headers(keys["dave"], "reader"))
    with pytest.raises(fl.FlightServerError) as missing:
        dave.read(P.ticket("read_group", "nosuch", name="secret", version=1), dave.headers(keys["dave"], "reader"))
    assert cloudsdk_error(hidden.value)["code"] == "project_not_found"
    assert cloudsdk_error(hidden.value)["message"] == cloudsdk_error(missing.value)["message"].replace(
        "nosuch", "other")


# --- refusals -----------------------------------------------------------------------------------------


def test_no_client_certificate_fails_the_handshake(connect: Callable[..., Caller], keys: dict[str, str],
                                                   server: Server) -> None:
    anonymous = connect(None)
    bundle = server.ca.issue_client_certificate("alice", "fraud")
    with pytest.raises(fl.FlightUnavailableError):
        anonymous.read(READ_TX, anonymous.headers(keys["alice"], "fraud", cert_pem=bundle["certificate_pem"],
                                                  signer=serialization.load_pem_private_key(
                                                      bundle["private_key_pem"].encode(), None)))


def test_certificate_of_another_ca_fails_the_handshake(connect: Callable[..., Caller], keys: dict[str, str],
                                                       tmp_path: Path) -> None:
    foreign = CertificateAuthority(tmp_path / "foreign-ca")
    mallory = connect("alice", "fraud", ca=foreign)
    with pytest.raises(fl.FlightUnavailableError):
        mallory.read(READ_TX, mallory.headers(keys["alice"], "fraud"))


def test_valid_certificate_of_another_project_is_refused(connect: Callable[..., Caller], keys: dict[str, str]) -> None:
    alice_other = connect("alice", "other")  # alice is a member of both projects
    with pytest.raises(fl.FlightUnauthorizedError) as refused:
        alice_other.read(READ_TX, alice_other.headers(keys["alice"], "fraud"))
    payload = cloudsdk_error(refused.value)
    assert payload["code"] == "forbidden" and "'other'" in payload["message"]
    # with its own project it reads that project's store
    assert alice_other.read(P.ticket("read_group", "other", name="secret", version=1),
                            alice_other.headers(keys["alice"], "other")).num_rows == 3


def test_certificate_of_another_user_is_refused(connect: Callable[..., Caller], keys: dict[str, str],
                                                server: Server) -> None:
    server.security.add_member("fraud", "carol", "data_scientist")
    carol_cert = connect("carol", "fraud")
    with pytest.raises(fl.FlightUnauthenticatedError) as refused:
        carol_cert.read(READ_TX, carol_cert.headers(keys["alice"], "fraud"))
    assert "user 'carol'" in cloudsdk_error(refused.value)["message"]


def test_proof_signed_by_another_key_is_refused(connect: Callable[..., Caller], keys: dict[str, str]) -> None:
    alice = connect("alice", "fraud")
    other_key = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(fl.FlightUnauthenticatedError) as refused:
        alice.read(READ_TX, alice.headers(keys["alice"], "fraud", signer=other_key))
    payload = cloudsdk_error(refused.value)
    assert payload["code"] == "unauthenticated" and "proof of possession" in payload["message"]


def test_proof_for_another_project_or_key_is_refused(connect: Callable[..., Caller], keys: dict[str, str]) -> None:
    alice = connect("alice", "fraud")
    headers = dict(alice.headers(keys["alice"], "other"))  # signed for 'other' ...
    headers[P.HEADER_PROJECT.encode()] = b"fraud"           # ... sent for 'fraud'
    with pytest.raises(fl.FlightUnauthenticatedError):
        alice.read(READ_TX, list(headers.items()))


@pytest.mark.parametrize("offset_s", [-(P.PROOF_MAX_SKEW_S + 60), P.PROOF_MAX_SKEW_S + 60])
def test_stale_timestamp_is_refused(connect: Callable[..., Caller], keys: dict[str, str], offset_s: int) -> None:
    alice = connect("alice", "fraud")
    with pytest.raises(fl.FlightUnauthenticatedError) as refused:
        alice.read(READ_TX, alice.headers(keys["alice"], "fraud", ts=str(int(time.time()) + offset_s)))
    assert "clock" in cloudsdk_error(refused.value)["message"]


def test_wrong_or_revoked_api_key_is_refused(connect: Callable[..., Caller], keys: dict[str, str],
                                             server: Server) -> None:
    alice = connect("alice", "fraud")
    wrong = keys["alice"][:-3] + ("abc" if not keys["alice"].endswith("abc") else "xyz")
    with pytest.raises(fl.FlightUnauthenticatedError) as refused:
        alice.read(READ_TX, alice.headers(wrong, "fraud"))
    assert cloudsdk_error(refused.value)["code"] == "unauthenticated"
    assert wrong.split(".")[1] not in str(refused.value)
    server.security.revoke_api_key("alice", "nb")
    with pytest.raises(fl.FlightUnauthenticatedError):
        alice.read(READ_TX, alice.headers(keys["alice"], "fraud"))


def test_missing_headers_are_refused(connect: Callable[..., Caller], keys: dict[str, str]) -> None:
    alice = connect("alice", "fraud")
    full = alice.headers(keys["alice"], "fraud")
    for dropped in (P.HEADER_AUTH, P.HEADER_PROJECT, P.HEADER_CERT, P.HEADER_TIMESTAMP, P.HEADER_PROOF):
        with pytest.raises(fl.FlightUnauthenticatedError):
            alice.read(READ_TX, [(k, v) for k, v in full if k != dropped.encode()])


def test_non_member_reading_a_store_is_refused(connect: Callable[..., Caller], keys: dict[str, str]) -> None:
    carol = connect("carol", "other")
    with pytest.raises(fl.FlightServerError) as hidden:
        carol.read(READ_TX, carol.headers(keys["carol"], "other"))
    assert cloudsdk_error(hidden.value)["code"] == "project_not_found"


# --- the proof check itself -------------------------------------------------------------------------


def _self_signed(key: Any) -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test")])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=1))
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM)


def test_verify_proof_supports_rsa_and_ec() -> None:
    message = P.proof_message("1700000000", "0123456789ab", "fraud")
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    verify_proof(_self_signed(rsa_key), rsa_key.sign(message, padding.PKCS1v15(), hashes.SHA256()), message)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    verify_proof(_self_signed(ec_key), ec_key.sign(message, ec.ECDSA(hashes.SHA256())), message)
    with pytest.raises(AuthenticationError):
        verify_proof(_self_signed(rsa_key), rsa_key.sign(b"other", padding.PKCS1v15(), hashes.SHA256()), message)
    with pytest.raises(AuthenticationError):
        verify_proof(_self_signed(ec_key), b"\x00" * 70, message)
