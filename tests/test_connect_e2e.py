"""``connect(host, ...)`` end to end: a real ``cloudsdk server`` process (tests/remote.py)
and a real moto server process (tests/aws.py), nothing replaced in-process.

The API key travels the way a SageMaker or Databricks notebook gets it: a fresh project's
key is stored in Secrets Manager / Parameter Store under the role's name, the notebook's
identity is an STS ``assume_role`` session (its credentials in the environment), and
``connect()`` finds the role with GetCallerIdentity, reads the secret, fetches the
project's certificates over HTTPS, writes them to ``cert_folder`` (a directory, a path
standing in for a ``/dbfs`` mount, ``s3://``) and reads data over Flight with mutual TLS.
Failures are typed errors with a hint that never carry the key.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

import cloudsdk
from cloudsdk import featurestore
from cloudsdk.errors import (
    AuthenticationError,
    CertificateError,
    ConfigurationError,
    PermissionDeniedError,
    ProjectNotFoundError,
    ServiceError,
    TLSError,
)
from tests import aws
from tests.aws import REGION, MotoServer, admin_session, assumed_role_session
from tests.remote import READY, RemoteStore

# The local-AWS fixtures (a moto server process and an environment pointing at it).
moto_server = aws.moto_server
aws_env = aws.aws_env

HOST = "127.0.0.1"
ROLE = "SageMakerNotebookRole"
STORES = ("secretsmanager", "parameterstore")
SECRET_FILES = ("client_key", "pkcs12", "keystore_jks", "truststore_jks", "password")
ALL_FILES = {
    "ca_chain": "ca_chain.pem", "client_cert": "client.pem", "client_key": "client_key.pem",
    "pkcs12": "keystore.p12", "keystore_jks": "keyStore.jks", "truststore_jks": "trustStore.jks",
    "password": "material_passwd",
}
RATINGS = pd.DataFrame({"team_id": [1, 2, 3], "rating": [0.5, 1.5, 2.5],
                        "city": ["Lyon", "Porto", "Turin"]})
BUDGETS = pd.DataFrame({"team_id": [1, 2, 3], "budget": [10, 20, 30]})
# Environment variables that would make requests trust other CAs than the one asked for.
CA_BUNDLE_ENV = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR")


# ------------------------------------------------------------------------------- helpers


def _sorted(df: pd.DataFrame) -> pd.DataFrame:
    return df.sort_values("team_id").reset_index(drop=True)


def _assert_frame(actual: pd.DataFrame, expected: pd.DataFrame) -> None:
    """The same columns and rows (in any row order)."""
    assert list(actual.columns) == list(expected.columns)
    pd.testing.assert_frame_equal(_sorted(actual), _sorted(expected), check_dtype=False)


def _assert_rows(actual: pd.DataFrame, expected: pd.DataFrame) -> None:
    """The same columns and the same rows as a multiset (no key column to sort by)."""
    assert list(actual.columns) == list(expected.columns)
    assert sorted(actual.itertuples(index=False, name=None)) == \
        sorted(expected.itertuples(index=False, name=None))


def _put_key(key: str, store: str, role: str = ROLE, prefix: str = "hopsworks/role/") -> None:
    """Store the API key where connect() looks for it (as an administrator would)."""
    session = admin_session()
    if store == "secretsmanager":
        session.client("secretsmanager").create_secret(
            Name=f"{prefix}{role}", SecretString=json.dumps({"api-key": key}))
    else:
        session.client("ssm").put_parameter(
            Name=f"/{prefix.lstrip('/')}{role}/type/api-key", Value=key, Type="SecureString")


def _assume_role(monkeypatch: pytest.MonkeyPatch, role: str = ROLE) -> None:
    """The test's AWS identity becomes an ``assume_role`` session of ``role`` (environment)."""
    credentials = assumed_role_session(role).get_credentials().get_frozen_credentials()
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", credentials.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", credentials.secret_key)
    monkeypatch.setenv("AWS_SESSION_TOKEN", credentials.token)


def _no_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    """No AWS configuration at all: a laptop with a key file or value."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


def _connect(remote_store: RemoteStore, project: str, key: str, **kwargs: Any) -> cloudsdk.Connection:
    host = kwargs.pop("host", HOST)
    options: dict[str, Any] = {"port": remote_store.port, "api_key_value": key,
                               "trust_store_path": str(remote_store.ca_file)}
    options.update(kwargs)
    return cloudsdk.connect(host, project, **options)


def _assert_secret_kept(key: str, *things: object) -> None:
    """The key is in none of ``things`` (their str and repr; an exception's whole traceback,
    chained causes included) nor anywhere in the environment."""
    for thing in things:
        if isinstance(thing, BaseException):
            text = "".join(traceback.format_exception(thing)) + repr(thing)
        else:
            text = f"{thing}\n{thing!r}"
        assert key not in text, f"the API key leaked into {type(thing).__name__}"
    assert not any(key in value for value in os.environ.values()), "the API key is in os.environ"


@contextlib.contextmanager
def security(remote_store: RemoteStore) -> Iterator[Any]:
    """The server's security service, opened on its data directory (as the admin CLI does)."""
    from cloudsdk.store import FeatureStoreService
    from cloudsdk.store.security import SecurityService

    service = FeatureStoreService(remote_store.data_dir)
    try:
        yield SecurityService(service.catalog)
    finally:
        service.close()


def _member(remote_store: RemoteStore, project: str, role: str,
            scopes: tuple[str, ...] = ("featurestore", "project")) -> tuple[str, str]:
    """A new user in ``project`` with ``role``; returns (user, API key)."""
    user = f"u{uuid.uuid4().hex[:10]}"
    with security(remote_store) as sec:
        sec.create_user(user)
        sec.add_member(project, user, role)
        key, _ = sec.create_api_key(user, "tests", list(scopes))
    return user, key


def _exercise(fs: cloudsdk.FeatureStore) -> None:
    """Write two feature groups, read them back, join features and run SQL over the wire."""
    fs.create_feature_group("team_ratings", data=RATINGS, primary_key=["team_id"])
    fs.create_feature_group("team_budgets", data=BUDGETS, primary_key=["team_id"])
    _assert_frame(fs.get_feature_group("team_ratings", 1).read(), RATINGS)
    joined = fs.get_features(["rating", "budget"])
    _assert_rows(joined, RATINGS[["team_id", "rating"]].merge(BUDGETS, on="team_id")[["rating", "budget"]])
    out = fs.sql("SELECT team_id, rating FROM team_ratings_1 WHERE rating > 1 ORDER BY team_id")
    assert out["team_id"].tolist() == [2, 3]
    assert out["rating"].tolist() == [1.5, 2.5]


def _exercise_functional(project: str) -> None:
    """The same through the seed's functional API (after featurestore.connect)."""
    featurestore.create_featuregroup(RATINGS, "team_ratings", primary_key=["team_id"])
    featurestore.create_featuregroup(BUDGETS, "team_budgets", primary_key="team_id")
    assert featurestore.project_featurestore() == f"{project}_featurestore"
    assert featurestore.get_project_featurestores() == [f"{project}_featurestore"]
    assert sorted(featurestore.get_featuregroups()) == ["team_budgets_1", "team_ratings_1"]
    _assert_frame(featurestore.get_featuregroup("team_ratings"), RATINGS)
    joined = featurestore.get_features(["rating", "budget"])
    _assert_rows(joined, RATINGS[["team_id", "rating"]].merge(BUDGETS, on="team_id")[["rating", "budget"]])
    out = featurestore.sql("SELECT count(*) AS n FROM team_budgets_1 WHERE budget >= 20")
    assert out["n"].tolist() == [2]


def _files_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


# --------------------------------------------------------------- 1. through each secrets store


@pytest.mark.parametrize("store", STORES)
def test_connect_through_the_secrets_store(remote_store: RemoteStore, aws_env: MotoServer,
                                           monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                           store: str) -> None:
    project, key = remote_store.new_project()
    _put_key(key, store)
    _assume_role(monkeypatch)
    conn = cloudsdk.connect(HOST, project, port=remote_store.port, secrets_store=store,
                            region_name=REGION, trust_store_path=str(remote_store.ca_file),
                            cert_folder=str(tmp_path / "certs"))
    try:
        assert not conn.embedded and conn.project == project and conn.host == HOST
        fs = conn.get_feature_store()
        assert fs.name == f"{project}_featurestore"
        _exercise(fs)
        assert conn.get_featurestores() == [f"{project}_featurestore"]
        _assert_secret_kept(key, conn, conn.certificates)
    finally:
        conn.close()


@pytest.mark.parametrize("store", STORES)
def test_functional_connect_with_the_seed_argument_names(remote_store: RemoteStore, aws_env: MotoServer,
                                                         monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                         store: str) -> None:
    project, key = remote_store.new_project()
    _put_key(key, store)
    _assume_role(monkeypatch)
    conn = featurestore.connect(HOST, project_name=project, port=remote_store.port, region_name=REGION,
                                secrets_store=store, trust_store_path=str(remote_store.ca_file),
                                cert_folder=str(tmp_path / "certs"))
    assert conn.project == project and conn.host == HOST
    _exercise_functional(project)
    _assert_secret_kept(key, conn)
    featurestore.disconnect()
    assert not (tmp_path / "certs" / HOST).exists()


def test_parameter_store_is_the_default(remote_store: RemoteStore, aws_env: MotoServer,
                                        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    project, key = remote_store.new_project()
    _put_key(key, "parameterstore")
    _assume_role(monkeypatch)
    with cloudsdk.connect(HOST, project, port=remote_store.port, trust_store_path=str(remote_store.ca_file),
                          cert_folder=str(tmp_path / "certs")) as conn:
        assert conn.get_featurestores() == [f"{project}_featurestore"]


@pytest.mark.parametrize("store", STORES)
def test_secret_prefix_and_role_overrides(remote_store: RemoteStore, aws_env: MotoServer,
                                          monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                          store: str) -> None:
    project, key = remote_store.new_project()
    # The notebook runs as one role; the key lives under another role's name and a team prefix.
    _put_key(key, store, role="FeatureStoreReaders", prefix="team-a/featurestore/")
    _assume_role(monkeypatch, "NotebookInstanceRole")
    with cloudsdk.connect(HOST, project, port=remote_store.port, secrets_store=store, region_name=REGION,
                          trust_store_path=str(remote_store.ca_file), cert_folder=str(tmp_path / "certs"),
                          role="FeatureStoreReaders", secret_prefix="team-a/featurestore/") as conn:
        assert conn.get_featurestores() == [f"{project}_featurestore"]
    # The prefix alone, with the caller's own role.
    _put_key(key, store, role="NotebookInstanceRole", prefix="team-a/featurestore/")
    with cloudsdk.connect(HOST, project, port=remote_store.port, secrets_store=store, region_name=REGION,
                          trust_store_path=str(remote_store.ca_file), cert_folder=str(tmp_path / "certs"),
                          secret_prefix="team-a/featurestore/") as conn:
        assert conn.get_featurestores() == [f"{project}_featurestore"]


def test_role_argument_needs_no_role_identity(remote_store: RemoteStore, aws_env: MotoServer,
                                              tmp_path: Path) -> None:
    """With role= the caller may be any identity (here moto's default user): STS is not asked."""
    project, key = remote_store.new_project()
    _put_key(key, "secretsmanager", role="DatabricksInstanceProfile")
    with cloudsdk.connect(HOST, project, port=remote_store.port, secrets_store="secretsmanager",
                          region_name=REGION, role="DatabricksInstanceProfile",
                          trust_store_path=str(remote_store.ca_file), cert_folder=str(tmp_path / "c")) as conn:
        assert conn.get_featurestores() == [f"{project}_featurestore"]


def test_api_key_file_and_value_without_aws(remote_store: RemoteStore, monkeypatch: pytest.MonkeyPatch,
                                            tmp_path: Path) -> None:
    _no_aws(monkeypatch)
    project, key = remote_store.new_project()
    key_file = tmp_path / "api.key"
    key_file.write_text(f"  {key}\n")
    with cloudsdk.connect(HOST, project, port=remote_store.port, api_key_file=str(key_file),
                          trust_store_path=str(remote_store.ca_file), cert_folder=str(tmp_path / "c")) as conn:
        _exercise(conn.get_feature_store())
        _assert_secret_kept(key, conn)
    conn = featurestore.connect(HOST, project, remote_store.port, api_key_value=key,
                                trust_store_path=str(remote_store.ca_file), cert_folder=str(tmp_path / "c"))
    _assert_frame(featurestore.get_featuregroup("team_ratings"), RATINGS)
    _assert_secret_kept(key, conn)
    featurestore.disconnect()


# --------------------------------------------------------------------------- 2. certificates


def _check_local_certificates(folder: Path, project: str, host: str = HOST) -> dict[str, Path]:
    """The seven files are in ``<folder>/<host>/<project>/``, secrets 0600, and they fit together."""
    directory = folder / host / project
    paths = {name: directory / filename for name, filename in ALL_FILES.items()}
    assert _files_under(directory) == sorted(ALL_FILES.values())
    for name in SECRET_FILES:
        assert stat.S_IMODE(paths[name].stat().st_mode) == 0o600, name
    chain = x509.load_pem_x509_certificates(paths["ca_chain"].read_bytes())
    client = x509.load_pem_x509_certificate(paths["client_cert"].read_bytes())
    client.verify_directly_issued_by(chain[0])  # raises if the chain does not sign it
    uris = client.extensions.get_extension_for_class(x509.SubjectAlternativeName).value \
        .get_values_for_type(x509.UniformResourceIdentifier)
    assert any(f":project:{project}:" in uri for uri in uris)
    key = serialization.load_pem_private_key(paths["client_key"].read_bytes(), password=None)
    assert key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo) \
        == client.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    password = paths["password"].read_bytes()
    _, p12_cert, _ = pkcs12.load_key_and_certificates(paths["pkcs12"].read_bytes(), password)
    assert p12_cert == client
    return paths


def test_certificates_in_a_local_folder(remote_store: RemoteStore, tmp_path: Path) -> None:
    project, key = remote_store.new_project()
    folder = tmp_path / "certs"
    conn = _connect(remote_store, project, key, cert_folder=str(folder))
    paths = _check_local_certificates(folder, project)
    assert conn.certificates.directory == str(folder / HOST / project)
    assert conn.certificates.files == {name: str(path) for name, path in paths.items()}
    # The server CA in the chain is the one the client trusts.
    assert x509.load_pem_x509_certificates(paths["ca_chain"].read_bytes())[0] == \
        x509.load_pem_x509_certificate(remote_store.ca_file.read_bytes())
    password = paths["password"].read_text()
    _assert_secret_kept(key, conn, conn.certificates)
    assert password not in repr(conn.certificates) and password not in repr(conn)
    (folder / "keep.txt").write_text("not cloudsdk's")
    conn.close()
    assert _files_under(folder) == ["keep.txt"]
    assert not (folder / HOST).exists()
    conn.close()  # again: nothing left to do


def test_executors_reuse_the_drivers_certificates(remote_store: RemoteStore, tmp_path: Path) -> None:
    """reuse_certificates=True (Spark executors): no new certificate is fetched, the driver's
    files on the shared folder are used (without the driver's trust store: the CA chain on the
    folder is trusted), and closing the executor's connection leaves them in place."""
    project, key = remote_store.new_project()
    folder = tmp_path / "mount"
    driver = _connect(remote_store, project, key, cert_folder=str(folder))
    driver.get_feature_store().create_feature_group("teams", data=pd.DataFrame({"team_id": [1, 2]}))
    before = {p: p.read_bytes() for p in (folder / HOST / project).iterdir()}
    executor = _connect(remote_store, project, key, cert_folder=str(folder), reuse_certificates=True,
                        trust_store_path=None)
    assert executor.get_feature_store().get_feature_group("teams").read()["team_id"].tolist() == [1, 2]
    executor.close()
    assert {p: p.read_bytes() for p in (folder / HOST / project).iterdir()} == before
    driver.close()
    with pytest.raises(CertificateError, match="connect\\(\\) with this cert_folder"):
        _connect(remote_store, project, key, cert_folder=str(folder), reuse_certificates=True)
    with pytest.raises(ConfigurationError, match="cert_folder"):
        _connect(remote_store, project, key, reuse_certificates=True)


def test_certificates_on_a_mount_path(remote_store: RemoteStore, tmp_path: Path) -> None:
    """A path standing in for a Databricks ``/dbfs/mnt/<mount>`` FUSE mount."""
    project, key = remote_store.new_project()
    mount = tmp_path / "dbfs" / "mnt" / "feature-store-certs"
    mount.mkdir(parents=True)
    with _connect(remote_store, project, key, cert_folder=str(mount)) as conn:
        _check_local_certificates(mount, project)
        conn.get_feature_store().create_feature_group("team_ratings", data=RATINGS)
    assert _files_under(mount) == []
    assert mount.is_dir()  # the mount point itself is not ours to remove


def test_certificates_on_s3(remote_store: RemoteStore, aws_env: MotoServer, tmp_path: Path) -> None:
    project, key = remote_store.new_project()
    s3 = admin_session().client("s3")
    s3.create_bucket(Bucket="team-certs")
    prefix = f"databricks/{HOST}/{project}/"
    with _connect(remote_store, project, key, cert_folder="s3://team-certs/databricks") as conn:
        assert conn.certificates.on_s3
        assert conn.certificates.directory == f"s3://team-certs/databricks/{HOST}/{project}"
        listed = s3.list_objects_v2(Bucket="team-certs", Prefix=prefix).get("Contents", [])
        assert sorted(o["Key"][len(prefix):] for o in listed) == sorted(ALL_FILES.values())
        for obj in listed:
            assert s3.head_object(Bucket="team-certs", Key=obj["Key"])["ServerSideEncryption"] == "AES256"
        client = x509.load_pem_x509_certificate(
            s3.get_object(Bucket="team-certs", Key=prefix + "client.pem")["Body"].read())
        client.verify_directly_issued_by(x509.load_pem_x509_certificate(remote_store.ca_file.read_bytes()))
        _assert_frame(conn.get_feature_store().create_feature_group("team_ratings", data=RATINGS).read(),
                      RATINGS)
        _assert_secret_kept(key, conn, conn.certificates)
    assert s3.list_objects_v2(Bucket="team-certs").get("KeyCount") == 0


def test_default_cert_folder_is_private_and_removed(remote_store: RemoteStore, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    project, key = remote_store.new_project()
    conn = _connect(remote_store, project, key, cert_folder=None)
    (temp,) = list(scratch.iterdir())
    assert temp.name.startswith("cloudsdk-certs-")
    assert stat.S_IMODE(temp.stat().st_mode) == 0o700
    _check_local_certificates(temp, project)
    conn.close()
    assert list(scratch.iterdir()) == []


def test_reconnecting_refreshes_the_certificates(remote_store: RemoteStore, tmp_path: Path) -> None:
    project, key = remote_store.new_project()
    folder = tmp_path / "certs"
    first = _connect(remote_store, project, key, cert_folder=str(folder))
    client_pem = folder / HOST / project / "client.pem"
    old = client_pem.read_bytes()
    first.close()
    with _connect(remote_store, project, key, cert_folder=str(folder)):
        new = client_pem.read_bytes()
        assert new != old
        _check_local_certificates(folder, project)


CLOSE_REMOVES_OTHERS = (
    "BUG: closing a connection deletes the certificate files at its paths even when a newer "
    "connection to the same cert_folder has rewritten them (cloudsdk/client/certificates.py:"
    "_remove_local/_remove_s3 delete by path; cloudsdk/featurestore.py:82-87 connects the new "
    "connection, then closes the old one): a re-run connect cell leaves executors without certificates"
)


@pytest.mark.parametrize("where", ["folder", "s3"])
def test_reconnect_over_a_live_connection_keeps_the_new_certificates(
        remote_store: RemoteStore, request: pytest.FixtureRequest, tmp_path: Path, where: str) -> None:
    """connect() again to the same cert_folder (a re-run notebook cell), then close the
    old connection: the new connection's files, which executors read, must stay."""
    project, key = remote_store.new_project()
    if where == "s3":
        request.getfixturevalue("aws_env")
        s3 = admin_session().client("s3")
        s3.create_bucket(Bucket="certs")
        cert_folder = "s3://certs/shared"

        def client_pem() -> bytes | None:
            try:
                body: bytes = s3.get_object(Bucket="certs", Key=f"shared/{HOST}/{project}/client.pem")["Body"].read()
            except s3.exceptions.NoSuchKey:
                return None
            return body
    else:
        cert_folder = str(tmp_path / "certs")

        def client_pem() -> bytes | None:
            path = tmp_path / "certs" / HOST / project / "client.pem"
            return path.read_bytes() if path.exists() else None

    first = _connect(remote_store, project, key, cert_folder=cert_folder)
    old = client_pem()
    second = _connect(remote_store, project, key, cert_folder=cert_folder)
    try:
        new = client_pem()
        assert new is not None and new != old  # refreshed
        first.close()
        assert client_pem() == new, "closing the old connection removed the new connection's certificates"
    finally:
        first.close()
        second.close()
    assert client_pem() is None


def test_functional_reconnect_keeps_the_new_certificates(remote_store: RemoteStore, tmp_path: Path) -> None:
    """featurestore.connect() twice (a notebook cell run again) closes the first connection:
    the certificates that the second one wrote must still be there."""
    project, key = remote_store.new_project()
    folder = tmp_path / "dbfs" / "mnt" / "certs"
    options: dict[str, Any] = {"port": remote_store.port, "api_key_value": key,
                               "trust_store_path": str(remote_store.ca_file), "cert_folder": str(folder)}
    featurestore.connect(HOST, project_name=project, **options)
    featurestore.connect(HOST, project_name=project, **options)
    try:
        assert _files_under(folder) == [f"{HOST}/{project}/{name}" for name in sorted(ALL_FILES.values())]
    finally:
        featurestore.disconnect()
    assert _files_under(folder) == []


def test_trust_store_without_a_trailing_newline(remote_store: RemoteStore, tmp_path: Path) -> None:
    project, key = remote_store.new_project()
    trust = tmp_path / "ca-from-a-web-form.pem"
    trust.write_bytes(remote_store.ca_file.read_bytes().rstrip(b"\n"))
    with _connect(remote_store, project, key, trust_store_path=str(trust), cert_folder=str(tmp_path / "c")) as conn:
        fs = conn.get_feature_store()
        fg = fs.create_feature_group("team_ratings", data=RATINGS)  # REST: fine
        _assert_frame(fg.read(), RATINGS)  # Flight


# --------------------------------------------------------------------- 3. typed errors


def test_wrong_key_is_an_authentication_error(remote_store: RemoteStore, tmp_path: Path) -> None:
    project, key = remote_store.new_project()
    wrong = key[:-6] + ("aaaaaa" if not key.endswith("aaaaaa") else "bbbbbb")
    with pytest.raises(AuthenticationError) as info:
        _connect(remote_store, project, wrong, cert_folder=str(tmp_path / "certs"))
    assert "invalid API key" in str(info.value) and "cloudsdk apikey create" in str(info.value)
    _assert_secret_kept(wrong, info.value)
    _assert_secret_kept(key, info.value)
    assert not (tmp_path / "certs").exists()


def test_revoked_key(remote_store: RemoteStore, tmp_path: Path) -> None:
    project, _ = remote_store.new_project()
    user, key = _member(remote_store, project, "data_owner")
    conn = _connect(remote_store, project, key, cert_folder=str(tmp_path / "live"))
    fs = conn.get_feature_store()
    fg = fs.create_feature_group("team_ratings", data=RATINGS)
    with security(remote_store) as sec:
        sec.revoke_api_key(user, "tests")
    try:
        # The open connection: its next REST call and its next Flight read are refused.
        with pytest.raises(AuthenticationError) as rest_info:
            fs.get_feature_groups()
        with pytest.raises(AuthenticationError) as flight_info:
            fg.read()
        _assert_secret_kept(key, rest_info.value, flight_info.value, conn)
    finally:
        conn.close()
    with pytest.raises(AuthenticationError) as info:
        _connect(remote_store, project, key, cert_folder=str(tmp_path / "certs"))
    assert "revoked" in str(info.value) and "cloudsdk apikey create" in str(info.value)
    _assert_secret_kept(key, info.value)
    assert not (tmp_path / "certs").exists()


def test_key_without_the_project_scope(remote_store: RemoteStore, tmp_path: Path) -> None:
    project, key = remote_store.new_project(scopes=("featurestore",))
    with pytest.raises(PermissionDeniedError) as info:
        _connect(remote_store, project, key, cert_folder=str(tmp_path / "certs"))
    assert "'project' scope" in str(info.value)
    assert "apikey create --scopes project" in str(info.value)
    _assert_secret_kept(key, info.value)


def test_key_without_the_featurestore_scope(remote_store: RemoteStore, tmp_path: Path) -> None:
    project, key = remote_store.new_project(scopes=("project",))
    with _connect(remote_store, project, key, cert_folder=str(tmp_path / "certs")) as conn:
        with pytest.raises(PermissionDeniedError) as info:
            conn.get_feature_store().get_feature_groups()
        assert "'featurestore' scope" in str(info.value)
        _assert_secret_kept(key, info.value, conn)


def test_data_scientist_reads_but_cannot_write(remote_store: RemoteStore, tmp_path: Path) -> None:
    project, owner_key = remote_store.new_project()
    _, scientist_key = _member(remote_store, project, "data_scientist")
    with _connect(remote_store, project, owner_key, cert_folder=str(tmp_path / "owner")) as owner:
        owner.get_feature_store().create_feature_group("team_ratings", data=RATINGS, primary_key="team_id")
    with _connect(remote_store, project, scientist_key, cert_folder=str(tmp_path / "ds")) as conn:
        fs = conn.get_feature_store()
        fg = fs.get_feature_group("team_ratings", 1)
        _assert_frame(fg.read(), RATINGS)
        assert fs.sql("SELECT max(rating) AS m FROM team_ratings_1")["m"].tolist() == [2.5]
        with pytest.raises(PermissionDeniedError) as create_info:
            fs.create_feature_group("team_budgets", data=BUDGETS)
        with pytest.raises(PermissionDeniedError) as insert_info:
            fg.insert(RATINGS.assign(rating=RATINGS["rating"] + 1), "upsert")
        for exc in (create_info.value, insert_info.value):
            assert "data_scientist" in str(exc) and "data owners" in str(exc)
            _assert_secret_kept(scientist_key, exc)
        _assert_frame(fg.read(), RATINGS)  # nothing was written


def test_project_of_which_the_user_is_no_member(remote_store: RemoteStore, tmp_path: Path) -> None:
    mine, key = remote_store.new_project()
    theirs, _ = remote_store.new_project()
    with pytest.raises(ProjectNotFoundError) as info:
        _connect(remote_store, theirs, key, cert_folder=str(tmp_path / "certs"))
    with pytest.raises(ProjectNotFoundError) as missing:
        _connect(remote_store, "pnosuchproject", key, cert_folder=str(tmp_path / "certs"))
    # Not being a member looks exactly like the project not existing.
    assert str(info.value).replace(theirs, "X") == str(missing.value).replace("pnosuchproject", "X")
    _assert_secret_kept(key, info.value, missing.value)
    assert not (tmp_path / "certs").exists()
    with _connect(remote_store, mine, key, cert_folder=str(tmp_path / "certs")) as conn:
        assert conn.project == mine


def test_private_ca_without_trust_store_is_a_tls_error(remote_store: RemoteStore, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    for name in CA_BUNDLE_ENV:
        monkeypatch.delenv(name, raising=False)
    project, key = remote_store.new_project()
    with pytest.raises(TLSError) as info:
        _connect(remote_store, project, key, trust_store_path=None, cert_folder=str(tmp_path / "certs"))
    assert "trust_store_path" in str(info.value)
    assert "unable to get local issuer certificate" in str(info.value.__cause__)
    _assert_secret_kept(key, info.value)


def test_another_ca_in_the_trust_store_is_a_tls_error(remote_store: RemoteStore, tmp_path: Path) -> None:
    from cloudsdk.store.ca import CertificateAuthority

    other = CertificateAuthority(tmp_path / "other-ca")
    (tmp_path / "other.pem").write_bytes(other.ca_pem)
    project, key = remote_store.new_project()
    with pytest.raises(TLSError) as info:
        _connect(remote_store, project, key, trust_store_path=str(tmp_path / "other.pem"),
                 cert_folder=str(tmp_path / "certs"))
    _assert_secret_kept(key, info.value)


class _Relay:
    """Forwards TCP connections from ``listen_host:port`` to ``127.0.0.1:port`` for each port:
    the server, reached through an address its certificate does not name."""

    def __init__(self, listen_host: str, ports: list[int]) -> None:
        self._stop = threading.Event()
        self._sockets: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        for port in ports:
            listener = socket.create_server((listen_host, port))
            listener.settimeout(0.1)
            self._sockets.append(listener)
            self._spawn(self._accept, listener, port)

    def _spawn(self, target: Any, *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _accept(self, listener: socket.socket, port: int) -> None:
        while not self._stop.is_set():
            try:
                client, _ = listener.accept()
            except (TimeoutError, OSError):
                continue
            upstream = socket.create_connection((HOST, port), timeout=5)
            for sock in (client, upstream):
                sock.settimeout(0.1)
                self._sockets.append(sock)
            self._spawn(self._pump, client, upstream)
            self._spawn(self._pump, upstream, client)

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        while not self._stop.is_set():
            try:
                data = source.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                break
            if not data:
                break
            try:
                sink.sendall(data)
            except OSError:
                break
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5)
        for sock in self._sockets:
            sock.close()


def _second_loopback_address() -> str:
    """127.0.0.2 if this machine routes it to loopback (Linux routes all of 127/8)."""
    try:
        with socket.create_server(("127.0.0.2", 0)) as server, \
                socket.create_connection(server.getsockname(), timeout=2):
            pass
    except OSError:
        pytest.skip("127.0.0.2 does not reach loopback on this machine")
    return "127.0.0.2"


@pytest.fixture
def unnamed_host(remote_store: RemoteStore) -> Iterator[str]:
    """An address that reaches the server but is not in its certificate's SANs."""
    address = _second_loopback_address()
    relay = _Relay(address, [remote_store.port, remote_store.flight_port])
    try:
        yield address
    finally:
        relay.close()


def test_hostname_verification_switch(remote_store: RemoteStore, unnamed_host: str, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    for name in CA_BUNDLE_ENV:
        monkeypatch.delenv(name, raising=False)
    project, key = remote_store.new_project()
    options: dict[str, Any] = {"port": remote_store.port, "api_key_value": key,
                               "cert_folder": str(tmp_path / "certs")}
    ca = str(remote_store.ca_file)
    # Verification on: the certificate names localhost / 127.0.0.1 / cloudsdk-server only.
    with pytest.raises(TLSError) as info:
        cloudsdk.connect(unnamed_host, project, trust_store_path=ca, **options)
    assert "host name" in str(info.value)
    assert f"not valid for '{unnamed_host}'" in str(info.value.__cause__)  # the name, not the chain
    _assert_secret_kept(key, info.value)
    # Only the host-name check off: REST and Flight both work through the other address.
    with cloudsdk.connect(unnamed_host, project, trust_store_path=ca, hostname_verification=False,
                          **options) as conn:
        assert conn.host == unnamed_host
        fs = conn.get_feature_store()
        _assert_frame(fs.create_feature_group("team_ratings", data=RATINGS).read(), RATINGS)
        _check_local_certificates(tmp_path / "certs", project, unnamed_host)
    # ... but the chain is still verified: without the private CA it is refused.
    with pytest.raises(TLSError) as chain_info:
        cloudsdk.connect(unnamed_host, project, hostname_verification=False, **options)
    assert "unable to get local issuer certificate" in str(chain_info.value.__cause__)
    _assert_secret_kept(key, chain_info.value)
    assert not (tmp_path / "certs" / unnamed_host).exists()


def test_a_name_in_the_certificate_verifies_rest_and_flight(remote_store: RemoteStore, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """``localhost`` is in the server certificate: full verification passes for both channels;
    without the private CA it fails, host-name check or not."""
    for name in CA_BUNDLE_ENV:
        monkeypatch.delenv(name, raising=False)
    project, key = remote_store.new_project()
    options: dict[str, Any] = {"port": remote_store.port, "api_key_value": key,
                               "cert_folder": str(tmp_path / "certs")}
    with cloudsdk.connect("localhost", project, trust_store_path=str(remote_store.ca_file), **options) as conn:
        fs = conn.get_feature_store()
        _assert_frame(fs.create_feature_group("team_ratings", data=RATINGS).read(), RATINGS)
    for verify_name in (True, False):
        with pytest.raises(TLSError):
            cloudsdk.connect("localhost", project, hostname_verification=verify_name, **options)


def test_unreachable_flight_port_fails_the_read_fast(remote_store: RemoteStore, tmp_path: Path) -> None:
    """Only the REST port reaches the server (a firewall that lets 443 in): connect() works,
    the first read is a ServiceError naming the Flight service, without hanging."""
    project, key = remote_store.new_project()
    relay_host = _second_loopback_address()
    relay = _Relay(relay_host, [remote_store.port])
    try:
        with _connect(remote_store, project, key, host=relay_host, hostname_verification=False,
                      cert_folder=str(tmp_path / "certs")) as conn:
            fs = conn.get_feature_store()
            fg = fs.create_feature_group("team_ratings", data=RATINGS)
            started = time.monotonic()
            with pytest.raises(ServiceError) as info:
                fg.read()
            assert time.monotonic() - started < 10
            assert type(info.value) is ServiceError
            assert f"Flight service at grpc+tls://{relay_host}:{remote_store.flight_port}" in str(info.value)
            _assert_secret_kept(key, info.value, conn)
    finally:
        relay.close()


def _corporate_pki(folder: Path, dns_name: str) -> tuple[Path, Path, Path]:
    """A company CA and a server certificate it issued for ``dns_name`` only (none of the
    names the store's own CA always adds): (ca.pem, tls.pem, tls-key.pem)."""
    now = datetime.now(UTC)
    ca_key, leaf_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Example Corp Root CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(days=2))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                       crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    leaf = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, dns_name)])).issuer_name(ca_name)
            .public_key(leaf_key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(dns_name)]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    folder.mkdir(parents=True)
    paths = (folder / "ca.pem", folder / "tls.pem", folder / "tls-key.pem")
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(leaf_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                serialization.NoEncryption()))
    return paths


@pytest.fixture(scope="module")
def corporate_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RemoteStore, Path]]:
    """A second ``cloudsdk server`` process serving a company certificate (``--tls-cert``)
    for ``feature-store.internal`` only; yields it and the company CA file."""
    root = tmp_path_factory.mktemp("corporate")
    ca, cert, key = _corporate_pki(root / "pki", "feature-store.internal")
    data_dir = root / "data"
    exe = Path(sys.executable).with_name("cloudsdk")
    command = [str(exe)] if exe.exists() else [sys.executable, "-m", "cloudsdk.cli"]
    command += ["server", "start", "--data-dir", str(data_dir), "--host", HOST, "--port", "0",
                "--flight-port", "0", "--tls-cert", str(cert), "--tls-key", str(key)]
    log_path = root / "server.out"
    with open(log_path, "w") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, text=True,
                                   env={k: v for k, v in os.environ.items() if not k.startswith("AWS_")})
    try:
        deadline = time.monotonic() + 60
        while (match := READY.search(log_path.read_text())) is None:
            assert process.poll() is None and time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.1)
        yield RemoteStore(process, data_dir, int(match["port"]), int(match["fport"])), ca
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_company_certificate_and_the_host_name_switch(corporate_server: tuple[RemoteStore, Path],
                                                      tmp_path: Path) -> None:
    """A server certificate from the company's CA, for a DNS name this machine cannot resolve:
    by IP the name check fails; hostname_verification=False passes REST (the chain still checked)."""
    store, company_ca = corporate_server
    project, key = store.new_project()
    options: dict[str, Any] = {"port": store.port, "api_key_value": key, "cert_folder": str(tmp_path / "c")}
    with pytest.raises(TLSError) as info:
        cloudsdk.connect(HOST, project, trust_store_path=str(company_ca), **options)
    assert f"not valid for '{HOST}'" in str(info.value.__cause__)
    with pytest.raises(TLSError):  # the store's own CA did not sign this certificate
        cloudsdk.connect(HOST, project, trust_store_path=str(store.ca_file), hostname_verification=False,
                         **options)
    with cloudsdk.connect(HOST, project, trust_store_path=str(company_ca), hostname_verification=False,
                          **options) as conn:
        conn.get_feature_store().create_feature_group("team_ratings", data=RATINGS)
        _check_local_certificates(tmp_path / "c", project)
        _assert_secret_kept(key, conn)


def test_company_certificate_flight_read_without_host_name_check(corporate_server: tuple[RemoteStore, Path],
                                                                  tmp_path: Path) -> None:
    store, company_ca = corporate_server
    project, key = store.new_project()
    with cloudsdk.connect(HOST, project, port=store.port, api_key_value=key, trust_store_path=str(company_ca),
                          hostname_verification=False, cert_folder=str(tmp_path / "c")) as conn:
        fg = conn.get_feature_store().create_feature_group("team_ratings", data=RATINGS)
        _assert_frame(fg.read(), RATINGS)


def test_unreachable_port_is_a_service_error_after_bounded_retries(remote_store: RemoteStore,
                                                                   tmp_path: Path) -> None:
    project, key = remote_store.new_project()
    started = time.monotonic()
    with pytest.raises(ServiceError) as info:
        _connect(remote_store, project, key, port=_free_port(), cert_folder=str(tmp_path / "certs"))
    elapsed = time.monotonic() - started
    assert type(info.value) is ServiceError
    assert elapsed < 10, f"gave up after {elapsed:.1f} s"
    assert "cannot reach" in str(info.value) and "port" in str(info.value)
    _assert_secret_kept(key, info.value)
    assert not (tmp_path / "certs").exists()


# -------------------------------------------------------------------- 4. shared stores


@pytest.fixture
def shared(remote_store: RemoteStore, tmp_path: Path) -> dict[str, str]:
    """An owner project with a feature group, shared with a reader project, and a third
    project that shares nothing."""
    owner, owner_key = remote_store.new_project()
    reader, reader_key = remote_store.new_project()
    stranger, stranger_key = remote_store.new_project()
    with _connect(remote_store, owner, owner_key, cert_folder=str(tmp_path / "owner")) as conn:
        conn.get_feature_store().create_feature_group("team_ratings", data=RATINGS, primary_key="team_id")
    with _connect(remote_store, stranger, stranger_key, cert_folder=str(tmp_path / "stranger")) as conn:
        conn.get_feature_store().create_feature_group("team_ratings", data=RATINGS, primary_key="team_id")
    with security(remote_store) as sec:
        sec.share(owner, reader)
    return {"owner": owner, "reader": reader, "reader_key": reader_key, "stranger": stranger}


def test_shared_store_over_the_wire(remote_store: RemoteStore, shared: dict[str, str], tmp_path: Path) -> None:
    owner_fs, reader = f"{shared['owner']}_featurestore", shared["reader"]
    with _connect(remote_store, reader, shared["reader_key"], cert_folder=str(tmp_path / "c")) as conn:
        assert conn.get_featurestores() == [f"{reader}_featurestore", owner_fs]
        fs = conn.get_feature_store(owner_fs)
        assert fs.read_only and fs.name == owner_fs
        fg = fs.get_feature_group("team_ratings", 1)
        _assert_frame(fg.read(), RATINGS)
        _assert_rows(fs.get_features(["rating", "city"]), RATINGS[["rating", "city"]])
        assert fs.sql("SELECT count(*) AS n FROM team_ratings_1")["n"].tolist() == [3]
        with pytest.raises(PermissionDeniedError) as create_info:
            fs.create_feature_group("team_budgets", data=BUDGETS)
        with pytest.raises(PermissionDeniedError) as insert_info:
            fg.insert(RATINGS, "upsert")
        for exc in (create_info.value, insert_info.value):
            assert "read-only" in str(exc)
            _assert_secret_kept(shared["reader_key"], exc)
        with pytest.raises(ProjectNotFoundError) as unshared:
            conn.get_feature_store(f"{shared['stranger']}_featurestore")
        assert "cloudsdk project share" in str(unshared.value)
        # The reader's own store stays writable.
        conn.get_feature_store().create_feature_group("team_budgets", data=BUDGETS)


def test_shared_store_through_the_functional_api(remote_store: RemoteStore, shared: dict[str, str],
                                                 tmp_path: Path) -> None:
    owner_fs, reader = f"{shared['owner']}_featurestore", shared["reader"]
    featurestore.connect(HOST, project_name=reader, port=remote_store.port, api_key_value=shared["reader_key"],
                         trust_store_path=str(remote_store.ca_file), cert_folder=str(tmp_path / "c"))
    assert featurestore.get_project_featurestores() == [f"{reader}_featurestore", owner_fs]
    assert featurestore.get_featuregroups(featurestore=owner_fs) == ["team_ratings_1"]
    _assert_frame(featurestore.get_featuregroup("team_ratings", featurestore=owner_fs), RATINGS)
    _assert_rows(featurestore.get_features(["rating"], featurestore=owner_fs), RATINGS[["rating"]])
    out = featurestore.sql("SELECT city FROM team_ratings_1 WHERE team_id = 2", featurestore=owner_fs)
    assert out["city"].tolist() == ["Porto"]
    with pytest.raises(PermissionDeniedError):
        featurestore.insert_into_featuregroup(RATINGS, "team_ratings", featurestore=owner_fs)
    with pytest.raises(PermissionDeniedError):
        featurestore.create_featuregroup(BUDGETS, "team_budgets", featurestore=owner_fs)
    with pytest.raises(ProjectNotFoundError):
        featurestore.get_featuregroup("team_ratings", featurestore=f"{shared['stranger']}_featurestore")
    with pytest.raises(ProjectNotFoundError):
        featurestore.sql("SELECT 1 AS one", featurestore=f"{shared['stranger']}_featurestore")
    featurestore.disconnect()
