"""Training datasets end to end: formats through the store, splits, provenance, S3 connectors
(a real moto S3 server), embedded and remote (a real server process), bad input."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import cloudsdk
from cloudsdk import featurestore
from cloudsdk.errors import (
    AlreadyExistsError,
    InvalidArgumentError,
    PermissionDeniedError,
    SchemaMismatchError,
    StorageConnectorNotFoundError,
    StorageError,
)
from tests import aws

moto_server = aws.moto_server

ROOT = Path(__file__).resolve().parent.parent


def _frame(n: int = 500) -> pd.DataFrame:
    rng = np.random.default_rng(7)
    return pd.DataFrame({
        "id": np.arange(n, dtype=np.int64),
        "x1": rng.normal(size=n),
        "x2": rng.normal(size=n).astype(np.float32),
        "team": [f"t{i % 7}" for i in range(n)],
        "label": (rng.random(n) > 0.5).astype(np.int64),
    })


def _bucket(server: aws.MotoServer) -> str:
    name = f"td-{uuid.uuid4().hex[:12]}"
    aws.admin_session().client("s3", endpoint_url=server.url).create_bucket(Bucket=name)
    return name


def _s3(server: aws.MotoServer) -> Any:
    return aws.admin_session().client("s3", endpoint_url=server.url)


def _keys(server: aws.MotoServer, bucket: str) -> list[str]:
    pages = _s3(server).get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return sorted(o["Key"] for p in pages for o in p.get("Contents", []))


def _connector(fs: cloudsdk.FeatureStore, server: aws.MotoServer, bucket: str, name: str = "my_s3",
               **extra: Any) -> dict[str, Any]:
    return fs.create_s3_connector(name, bucket, path="datasets", region=aws.REGION, endpoint_url=server.url,
                                  access_key="testing", secret_key="testing-secret-value", **extra)


# --- managed location -----------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", ["parquet", "csv", "tsv", "tfrecords", "avro", "orc", "petastorm", "npy"])
def test_every_format_round_trips_through_the_store(fs: cloudsdk.FeatureStore, fmt: str) -> None:
    df = _frame(300)
    td = fs.create_training_dataset("td_all", df, data_format=fmt, rows_per_file=128)
    assert td.data_format == ("tfrecords" if fmt == "tfrecord" else fmt)
    assert td.row_count == 300 and len(td.files) == 3
    back = td.read()
    expected = df.copy()
    if fmt == "tfrecords":  # float64 is stored as float32 in tf.train.Example
        expected["x1"] = expected["x1"].astype(np.float32).astype(np.float64)
    pd.testing.assert_frame_equal(back.reset_index(drop=True), expected, check_dtype=False)
    assert td.statistics() is not None and td.statistics().row_count == 300


def test_files_are_standard_and_in_part_r_layout(conn: cloudsdk.Connection) -> None:
    fs = conn.get_feature_store()
    td = fs.create_training_dataset("td_files", _frame(250), data_format="parquet", rows_per_file=100)
    root = Path(td.location)
    assert sorted(p.name for p in root.glob("part-r-*")) == ["part-r-00000.parquet", "part-r-00001.parquet",
                                                            "part-r-00002.parquet"]
    assert (root / "_SUCCESS").exists()
    assert pq.read_table(sorted(root.glob("part-r-*"))).num_rows == 250
    assert not [p for p in root.parent.iterdir() if p.name.startswith(".tmp-")]


def test_splits_are_reproducible_and_disjoint(fs: cloudsdk.FeatureStore) -> None:
    df = _frame(1000)
    a = fs.create_training_dataset("td_split", df, splits={"train": 0.8, "test": 0.2}, seed=42)
    b = fs.create_training_dataset("td_split", df, version=2, splits={"train": 0.8, "test": 0.2}, seed=42)
    assert set(a.splits) == {"train", "test"} and a.seed == 42
    train_a, test_a = a.read(split="train"), a.read(split="test")
    assert len(train_a) + len(test_a) == 1000
    assert set(train_a["id"]).isdisjoint(test_a["id"])
    assert 700 < len(train_a) < 900
    pd.testing.assert_frame_equal(train_a, b.read(split="train"))
    assert a.get_path("train").endswith("/train")
    assert all(f.startswith("train/") for f in a.splits["train"]["files"])
    with pytest.raises(InvalidArgumentError, match="no split 'validation'"):
        a.read(split="validation")
    c = fs.create_training_dataset("td_split", df, version=3, splits={"train": 0.8, "test": 0.2}, seed=43)
    assert set(c.read(split="test")["id"]) != set(test_a["id"])


def test_bad_input_registers_nothing(fs: cloudsdk.FeatureStore) -> None:
    df = _frame(50)
    with pytest.raises(InvalidArgumentError, match="data_format"):
        fs.create_training_dataset("td_bad", df, data_format="xlsx")
    with pytest.raises(StorageConnectorNotFoundError, match="nope"):
        fs.create_training_dataset("td_bad", df, sink="nope")
    with pytest.raises(InvalidArgumentError, match="sum to 1"):
        fs.create_training_dataset("td_bad", df, splits={"train": 0.5, "test": 0.2})
    with pytest.raises(InvalidArgumentError, match="path"):
        fs.create_training_dataset("td_bad", df, path="../../etc")
    arrays = pa.table({"id": [1, 2], "emb": pa.array([[1.0, 2.0], [3.0, 4.0]], pa.list_(pa.float32()))})
    with pytest.raises(SchemaMismatchError, match="emb"):
        fs.create_training_dataset("td_bad", arrays, data_format="csv")
    assert fs.get_training_datasets() == []
    fs.create_training_dataset("td_bad", df, version=1)
    with pytest.raises(AlreadyExistsError, match="write_mode"):
        fs.create_training_dataset("td_bad", df, version=1, write_mode="error")


def test_query_provenance_records_groups_versions_and_commits(football_fs: cloudsdk.FeatureStore) -> None:
    fs = football_fs
    teams = fs.get_feature_group("teams_features")
    query = teams.select(["team_id", "team_budget"]).join(
        fs.get_feature_group("attendances_features").select(["average_attendance"]))
    td = query.create_training_dataset("td_query", data_format="parquet")
    groups = {g["name"]: g for g in td.provenance["feature_groups"]}
    assert set(groups) == {"teams_features", "attendances_features"}
    assert groups["teams_features"]["version"] == 1
    assert groups["teams_features"]["commit"] == teams.commit_details()[0]["version"]
    assert td.provenance["query"] == query.to_dict()
    pd.testing.assert_frame_equal(td.read().sort_values("team_id").reset_index(drop=True),
                                  query.read().sort_values("team_id").reset_index(drop=True), check_dtype=False)


def test_image_arrays_keep_their_shape(fs: cloudsdk.FeatureStore) -> None:
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (28, 28), dtype=np.uint8) for _ in range(20)]
    df = pd.DataFrame({"digit": np.arange(20) % 10, "image": images})
    for fmt in ("parquet", "tfrecords", "petastorm"):
        td = fs.create_training_dataset(f"mnist_{fmt}", df, data_format=fmt)
        back = td.read("pyarrow")
        assert back.schema.field("image").type == pa.list_(pa.list_(pa.uint8(), 28), 28)
        got = np.array(back.column("image").to_pylist(), dtype=np.uint8)
        assert got.shape == (20, 28, 28) and (got == np.stack(images)).all()


def test_tf_record_schema_parses_the_files(conn: cloudsdk.Connection) -> None:
    tf = pytest.importorskip("tensorflow")
    fs = conn.get_feature_store()
    fs.create_training_dataset("td_tf", _frame(64), data_format="tfrecords")
    td = fs.get_training_dataset("td_tf")
    spec = td.tf_record_schema()
    files = sorted(str(p) for p in Path(td.location).glob("part-r-*"))
    ds = tf.data.TFRecordDataset(files).map(lambda r: tf.io.parse_single_example(r, spec))
    rows = list(ds.as_numpy_iterator())
    assert len(rows) == 64 and int(rows[5]["id"]) == 5 and rows[5]["team"] == b"t5"


def test_functional_api_defaults_to_tfrecords() -> None:
    df = _frame(40)
    featurestore.create_training_dataset(df, "td_fn")
    assert featurestore.get_training_datasets() == ["td_fn_1"]
    path = featurestore.get_training_dataset_path("td_fn")
    assert sorted(p.name for p in Path(path).glob("part-r-*")) == ["part-r-00000.tfrecord"]
    spec = featurestore.get_training_dataset_tf_record_schema("td_fn")
    assert set(spec) == set(df.columns)
    assert len(featurestore.get_training_dataset("td_fn")) == 40
    assert featurestore.get_latest_training_dataset_version("td_fn") == 1


# --- S3 connectors ------------------------------------------------------------------------------

def test_s3_connector_secrets_are_masked_and_encrypted_at_rest(conn: cloudsdk.Connection,
                                                               moto_server: aws.MotoServer,
                                                               tmp_path: Path) -> None:
    fs = conn.get_feature_store()
    bucket = _bucket(moto_server)
    made = _connector(fs, moto_server, bucket, server_side_encryption="AES256")
    assert made["type"] == "s3" and made["bucket"] == bucket and made["path"] == "datasets"
    assert "testing-secret-value" not in repr(made) and made.get("secret_key") is None
    listed = {c["name"]: c for c in fs.get_storage_connectors()}
    assert set(listed) >= {"default_training_datasets", "default_featurestore", "my_s3"}
    assert "testing-secret-value" not in repr(listed)
    raw = sqlite3.connect(tmp_path / "store" / "catalog.db").execute("select * from connector_secrets").fetchall()
    assert raw and "testing-secret-value" not in repr(raw)
    with pytest.raises(AlreadyExistsError):
        _connector(fs, moto_server, bucket)
    with pytest.raises(InvalidArgumentError, match="both"):
        fs.create_s3_connector("half", bucket, access_key="AKIA")
    with pytest.raises(InvalidArgumentError, match="bucket"):
        fs.create_s3_connector("badbucket", "Not_A_Bucket")


def test_external_dataset_on_s3(fs: cloudsdk.FeatureStore, moto_server: aws.MotoServer) -> None:
    bucket = _bucket(moto_server)
    _connector(fs, moto_server, bucket, server_side_encryption="AES256")
    df = _frame(300)
    td = fs.create_training_dataset("td_s3", df, data_format="parquet", sink="my_s3", rows_per_file=100,
                                    splits={"train": 0.7, "test": 0.3}, seed=1)
    assert td.location == f"s3://{bucket}/datasets/td_s3_1"
    keys = _keys(moto_server, bucket)
    assert "datasets/td_s3_1/train/_SUCCESS" in keys
    parts = [k for k in keys if "/part-r-" in k]
    assert parts and all(k.startswith("datasets/td_s3_1/") for k in keys)
    head = _s3(moto_server).head_object(Bucket=bucket, Key=parts[0])
    assert head.get("ServerSideEncryption") == "AES256"
    back = pd.concat([td.read(split="train"), td.read(split="test")]).sort_values("id").reset_index(drop=True)
    pd.testing.assert_frame_equal(back, df, check_dtype=False)
    assert featurestore_path(fs, "td_s3") == f"s3://{bucket}/datasets/td_s3_1"
    td.delete()
    assert _keys(moto_server, bucket) == []


def featurestore_path(fs: cloudsdk.FeatureStore, name: str) -> str:
    return fs.get_training_dataset(name).get_path()


def test_s3_bucket_missing_or_denied_registers_nothing(fs: cloudsdk.FeatureStore,
                                                      moto_server: aws.MotoServer) -> None:
    fs.create_s3_connector("gone", f"missing-{uuid.uuid4().hex[:10]}", region=aws.REGION,
                           endpoint_url=moto_server.url, access_key="testing", secret_key="testing")
    with pytest.raises(StorageError, match="does not exist"):
        fs.create_training_dataset("td_gone", _frame(10), data_format="parquet", sink="gone")
    bucket = _bucket(moto_server)
    iam = aws.admin_session().client("iam", endpoint_url=moto_server.url)
    user = f"nobody{uuid.uuid4().hex[:8]}"
    iam.create_user(UserName=user)
    key = iam.create_access_key(UserName=user)["AccessKey"]
    fs.create_s3_connector("denied", bucket, region=aws.REGION, endpoint_url=moto_server.url,
                           access_key=key["AccessKeyId"], secret_key=key["SecretAccessKey"])
    with moto_server.iam_enforced(), pytest.raises(PermissionDeniedError, match="denied"):
        fs.create_training_dataset("td_denied", _frame(10), data_format="parquet", sink="denied")
    assert fs.get_training_datasets() == []
    assert _keys(moto_server, bucket) == []


def test_data_scientists_cannot_create_connectors_or_datasets(remote_store: Any, tmp_path: Path) -> None:
    project, key = remote_store.new_project(role="data_scientist")
    with remote_store.connect(tmp_path, project, key) as c:
        fs = c.get_feature_store()
        with pytest.raises(PermissionDeniedError):
            fs.create_s3_connector("x_s3", "some-bucket")
        with pytest.raises(PermissionDeniedError):
            fs.create_training_dataset("td_x", _frame(5), data_format="parquet")


def test_cli_creates_and_lists_s3_connectors(tmp_path: Path, moto_server: aws.MotoServer) -> None:
    data_dir = tmp_path / "data"
    cloudsdk.connect(path=data_dir).close()
    base = [sys.executable, "-m", "cloudsdk.cli"]
    made = subprocess.run(
        [*base, "connector", "create-s3", "default", "cli_s3", "--bucket", "my-bucket", "--path", "td",
         "--endpoint-url", moto_server.url, "--access-key", "AKIAEXAMPLE", "--secret-key-stdin",
         "--sse", "AES256", "--data-dir", str(data_dir)],
        input="very-secret-key\n", capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert made.returncode == 0, made.stderr
    listed = subprocess.run([*base, "connector", "list", "default", "--data-dir", str(data_dir)],
                            capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert listed.returncode == 0, listed.stderr
    assert "cli_s3" in listed.stdout and "s3://my-bucket/td" in listed.stdout
    assert "very-secret-key" not in made.stdout + made.stderr + listed.stdout + listed.stderr
    assert "access key pair" in listed.stdout


def test_failed_s3_overwrite_keeps_the_old_version(fs: cloudsdk.FeatureStore, moto_server: aws.MotoServer) -> None:
    bucket = _bucket(moto_server)
    _connector(fs, moto_server, bucket)
    good = _frame(200)
    fs.create_training_dataset("td_ow", good, data_format="npy", sink="my_s3", rows_per_file=50)
    before = _keys(moto_server, bucket)
    bad = pa.table({"id": pa.array(list(range(150)) + [None] * 50, pa.int64())})
    with pytest.raises(Exception):  # noqa: B017 - whichever typed error the format gives for nulls in npy
        fs.create_training_dataset("td_ow", bad, version=1, data_format="npy", sink="my_s3", rows_per_file=50)
    assert _keys(moto_server, bucket) == before
    pd.testing.assert_frame_equal(fs.get_training_dataset("td_ow", 1).read(), good, check_dtype=False)
    # a successful overwrite replaces the files, and leaves no hidden copy behind
    fs.create_training_dataset("td_ow", good.head(120), version=1, data_format="npy", sink="my_s3",
                               rows_per_file=50)
    keys = _keys(moto_server, bucket)
    assert not [k for k in keys if "/.tmp-" in k]
    assert sorted(k.rsplit("/", 1)[1] for k in keys if "/part-r-" in k) == [
        "part-r-00000.npy", "part-r-00001.npy", "part-r-00002.npy"]
    assert len(fs.get_training_dataset("td_ow", 1).read()) == 120


def test_default_connectors_cannot_be_deleted(fs: cloudsdk.FeatureStore) -> None:
    with pytest.raises(InvalidArgumentError, match="default connectors cannot be deleted"):
        fs.delete_storage_connector(f"{fs.project}_training_datasets")


# --- loaders through the TrainingDataset object ------------------------------------------------

@pytest.mark.parametrize("fmt", ["parquet", "tfrecords"])
def test_loaders_read_every_row_once(fs: cloudsdk.FeatureStore, fmt: str) -> None:
    """Embedded: straight from the files; remote (managed location): part by part over Flight."""
    torch = pytest.importorskip("torch")
    df = _frame(600)
    td = fs.create_training_dataset("td_load", df, data_format=fmt, rows_per_file=250,
                                    splits={"train": 0.75, "test": 0.25}, seed=3)
    train_ids = set(td.read(split="train")["id"])
    loader = td.torch_dataloader("label", batch_size=64, shuffle=True, seed=1, split="train",
                                 feature_names=["x1", "x2"])
    count = 0
    for x, y in loader:
        assert x.dtype == torch.float32 and x.shape[1] == 2 and len(y) == len(x)
        count += len(y)
    assert count == len(train_ids)
    rows = td.torch_dataset(None, ["id"], split="train", batch_size=100)
    got = sorted(int(v) for batch in rows for v in batch["id"])
    assert got == sorted(train_ids)
    tf_rows = td.tf_data("label", ["id"], split="test", batch_size=50)
    ids = sorted(int(v) for x, _ in tf_rows.as_numpy_iterator() for v in x.ravel())
    assert ids == sorted(set(df["id"]) - train_ids)


def test_loaders_stream_from_s3(fs: cloudsdk.FeatureStore, moto_server: aws.MotoServer) -> None:
    pytest.importorskip("torch")
    bucket = _bucket(moto_server)
    _connector(fs, moto_server, bucket)
    df = _frame(400)
    td = fs.create_training_dataset("td_s3load", df, data_format="parquet", sink="my_s3", rows_per_file=150)
    assert td.source().__class__.__name__ == "FileSource"
    got = sorted(int(v) for _, y in td.torch_dataloader("id", batch_size=64, num_workers=2) for v in y)
    assert got == list(range(400))


def test_remote_managed_dataset_refuses_worker_processes(remote_store: Any, tmp_path: Path) -> None:
    pytest.importorskip("torch")
    with remote_store.connect(tmp_path) as c:
        td = c.get_feature_store().create_training_dataset("td_w", _frame(20), data_format="parquet")
        with pytest.raises(InvalidArgumentError, match="num_workers=0"):
            td.torch_dataloader("label", num_workers=2)
        assert sum(len(y) for _, y in td.torch_dataloader("label", batch_size=8)) == 20
