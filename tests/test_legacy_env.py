"""cloudsdk's petastorm format read by petastorm itself, in the legacy ML environment.

petastorm 0.13.1 needs pyarrow <= 14, so it cannot run in the main environment: these tests
write datasets here (current pyarrow) and run the scripts in ``tests/legacy/`` with the
python of ``.venv-legacy`` (pyarrow 14.0.2, numpy 1.26.4, tensorflow-cpu 2.17.1 +
tensorflow-io, torch 2.13.0, petastorm 0.13.1), built by ``tools/legacy_env.py`` once per
session (a no-op when it is up to date). S3 goes to a real moto server process.
"""

from __future__ import annotations

import json
import os
import pickle
import pickletools
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cloudsdk.datasets import petastorm as pz
from cloudsdk.errors import InvalidArgumentError, SchemaMismatchError, UnsupportedError
from tests import aws

moto_server = aws.moto_server

ROOT = Path(__file__).resolve().parent.parent
LEGACY = ROOT / "tests" / "legacy"

IMAGE = pa.list_(pa.list_(pa.uint8(), 28), 28)
SCHEMA = pa.schema([
    pa.field("id", pa.int64(), nullable=False),
    pa.field("image", IMAGE),
    pa.field("embedding", pa.list_(pa.float32())),
    pa.field("score", pa.float64()),
    pa.field("name", pa.string()),
    pa.field("label", pa.int64()),
])


@dataclass
class Part:
    """What the dataset writer reports about one data file."""

    name: str
    rows: int
    row_groups: int
    bytes: int


def mnist_like(n: int, seed: int = 7) -> dict[str, np.ndarray]:
    """Columns of an MNIST-like dataset: 28x28 uint8 images, a digit label, and more."""
    rng = np.random.default_rng(seed)
    return {
        "id": np.arange(n, dtype=np.int64) * 3 + 1,
        "image": rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8),
        "embedding": rng.standard_normal((n, 8)).astype(np.float32),
        "score": rng.standard_normal(n),
        "name": np.array([f"row-{i}-é" for i in range(n)]),
        "label": rng.integers(0, 10, size=n).astype(np.int64),
    }


def to_table(cols: dict[str, np.ndarray]) -> pa.Table:
    return pa.table({
        "id": cols["id"],
        "image": pa.array([img.tolist() for img in cols["image"]], IMAGE),
        "embedding": pa.array([e.tolist() for e in cols["embedding"]], pa.list_(pa.float32())),
        "score": cols["score"],
        "name": pa.array(cols["name"].tolist(), pa.string()),
        "label": cols["label"],
    }, schema=SCHEMA)


def write_petastorm(directory: Path, table: pa.Table, *, rows_per_file: int,
                    row_group_size: int) -> list[Part]:
    """A petastorm dataset as cloudsdk writes one: part-r-NNNNN.parquet files in the storage
    schema, then ``_common_metadata``."""
    directory.mkdir(parents=True, exist_ok=True)
    parts = []
    storage = pz.storage_schema(table.schema)
    for number, start in enumerate(range(0, table.num_rows, rows_per_file)):
        chunk = table.slice(start, rows_per_file)
        name = f"part-r-{number:05d}.parquet"
        with pq.ParquetWriter(directory / name, storage) as writer:
            for batch in chunk.to_batches(max_chunksize=row_group_size):
                writer.write_table(pa.Table.from_batches([pz.encode_batch(batch, table.schema)]),
                                   row_group_size=row_group_size)
        meta = pq.read_metadata(directory / name)
        parts.append(Part(name, meta.num_rows, meta.num_row_groups, (directory / name).stat().st_size))
    pz.write_metadata(directory, table.schema, parts)
    (directory / "_SUCCESS").write_bytes(b"")
    return parts


def save_expected(path: Path, cols: dict[str, np.ndarray]) -> Path:
    np.savez(path, **cols)
    return path


@pytest.fixture(scope="session")
def legacy_python() -> Path:
    """``.venv-legacy``'s python, built (or found up to date) once per session."""
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        import legacy_env
    finally:
        sys.path.remove(str(ROOT / "tools"))
    return Path(legacy_env.ensure_legacy_venv(ROOT))


def run_legacy(python: Path, script: str, *args: str, timeout: float = 240,
               env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run ``tests/legacy/<script>`` with the legacy python; return its last JSON line."""
    child_env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PYTHON"))}
    child_env.update({"TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""})
    child_env.update(env or {})
    proc = subprocess.run([str(python), str(LEGACY / script), *args], capture_output=True,
                          text=True, timeout=timeout, env=child_env, cwd=ROOT)
    assert proc.returncode == 0, f"{script} exited {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    assert lines, f"{script} printed no result\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    result: dict[str, Any] = json.loads(lines[-1])
    return result


# --------------------------------------------------------------------------- the format, here


def test_storage_schema_and_unischema_fields() -> None:
    assert pz.storage_schema(SCHEMA) == pa.schema([
        pa.field("id", pa.int64(), nullable=False), ("image", pa.binary()), ("embedding", pa.binary()),
        ("score", pa.float64()), ("name", pa.string()), ("label", pa.int64()),
    ])
    assert pz.unischema_fields(SCHEMA) == [
        ("id", "int64", (), None, False),
        ("image", "uint8", (28, 28), "NdarrayCodec", True),
        ("embedding", "float32", (None,), "NdarrayCodec", True),
        ("score", "float64", (), None, True),
        ("name", "str_", (), None, True),
        ("label", "int64", (), None, True),
    ]
    nested = pa.schema([("clip", pa.list_(pa.list_(pa.list_(pa.float16(), 3), 4)))])
    assert pz.unischema_fields(nested) == [("clip", "float16", (None, 4, 3), "NdarrayCodec", True)]


def test_unischema_pickle_names_only_what_petastorm_may_unpickle() -> None:
    data = pz.unischema_pickle(SCHEMA, "Mnist")
    globals_ = [arg for op, arg, _ in pickletools.genops(data) if op.name == "GLOBAL"]
    assert globals_ == [
        "petastorm.unischema Unischema", "collections OrderedDict",
        "petastorm.unischema UnischemaField", "numpy int64", "numpy uint8", "petastorm.codecs NdarrayCodec",
        "numpy float32", "numpy float64", "numpy str_",
    ]
    # petastorm's RestrictedUnpickler allows these packages only (no copyreg, no cloudsdk)
    assert {g.split(".")[0].split()[0] for g in globals_} <= {"petastorm", "collections", "numpy"}
    with pytest.raises(ModuleNotFoundError, match="petastorm"):
        pickle.loads(data)


def test_encode_decode_round_trip_keeps_every_value() -> None:
    cols = mnist_like(37)
    table = to_table(cols)
    batch = table.to_batches()[0]
    encoded = pz.encode_batch(batch, SCHEMA)
    assert encoded.schema == pz.storage_schema(SCHEMA)
    first = np.load(__import__("io").BytesIO(encoded.column(1)[0].as_py()))
    assert first.dtype == np.uint8 and first.shape == (28, 28)
    assert np.array_equal(first, cols["image"][0])
    assert pz.decode_batch(encoded, SCHEMA).equals(batch)
    # a slice (non-zero offsets) encodes the rows of the slice
    sliced = batch.slice(5, 7)
    assert pz.decode_batch(pz.encode_batch(sliced, SCHEMA), SCHEMA).equals(sliced)


def test_nulls_and_wider_types_round_trip() -> None:
    schema = pa.schema([
        ("img", pa.list_(pa.list_(pa.int16(), 2), 2)), ("v", pa.list_(pa.float64())),
        ("u", pa.uint64()), ("h", pa.float16()), ("kind", pa.dictionary(pa.int32(), pa.string())),
        ("flag", pa.bool_()), ("d", pa.date64()), ("raw", pa.large_binary()),
    ])
    batch = pa.record_batch([
        pa.array([[[1, 2], [3, 4]], None, [[5, 6], [7, -8]]], schema.field("img").type),
        pa.array([[0.5], None, []], pa.list_(pa.float64())),
        pa.array([2**63 - 1, None, 0], pa.uint64()),
        pa.array(np.array([1.5, 0, -2], dtype=np.float16), pa.float16(), mask=np.array([False, True, False])),
        pa.array(["a", None, "a"]).dictionary_encode(),
        pa.array([True, None, False]),
        pa.array([86_400_000, None, 0], pa.date64()),
        pa.array([b"x", None, b""], pa.large_binary()),
    ], schema=schema)
    encoded = pz.encode_batch(batch, schema)
    assert encoded.schema.field("u").type == pa.int64() and encoded.schema.field("h").type == pa.float32()
    assert encoded.column(0).null_count == 1
    assert pz.decode_batch(encoded, schema).equals(batch)
    for edge in (batch.slice(1, 1), batch.slice(0, 0)):  # only a missing image; no rows
        back = pz.decode_batch(pz.encode_batch(edge, schema), schema)
        assert back.schema == schema and back.to_pydict() == edge.to_pydict()


def test_bad_input_raises_typed_errors() -> None:
    with pytest.raises(UnsupportedError, match="'s'"):
        pz.storage_schema(pa.schema([("s", pa.struct([("a", pa.int8())]))]))
    with pytest.raises(UnsupportedError, match="array of string"):
        pz.storage_schema(pa.schema([("tags", pa.list_(pa.string()))]))
    with pytest.raises(InvalidArgumentError, match="identifier"):
        pz.storage_schema(pa.schema([("class", pa.int8())]))
    ragged = pa.schema([("m", pa.list_(pa.list_(pa.int8())))])
    with pytest.raises(SchemaMismatchError, match="rectangular"):
        pz.encode_batch(pa.record_batch([pa.array([[[1, 2], [3]]], ragged.field("m").type)], schema=ragged),
                        ragged)
    holes = pa.schema([("e", pa.list_(pa.float32(), 2))])
    with pytest.raises(SchemaMismatchError, match="missing values"):
        pz.encode_batch(pa.record_batch([pa.array([[1.0, None]], holes.field("e").type)], schema=holes), holes)
    big = pa.schema([("u", pa.uint64())])
    with pytest.raises(SchemaMismatchError, match="'u'"):
        pz.encode_batch(pa.record_batch([pa.array([2**63], pa.uint64())], schema=big), big)
    with pytest.raises(SchemaMismatchError, match="'label' is missing"):
        pz.encode_batch(pa.record_batch([pa.array([1])], names=["id"]), pa.schema([("label", pa.int64())]))
    with pytest.raises(InvalidArgumentError, match="at least one"):
        pz.write_metadata(Path("/nonexistent"), SCHEMA, [])


def test_common_metadata_holds_what_make_reader_needs(tmp_path: Path) -> None:
    table = to_table(mnist_like(30))
    parts = write_petastorm(tmp_path / "ds", table, rows_per_file=20, row_group_size=8)
    meta = pq.read_schema(tmp_path / "ds" / "_common_metadata").metadata
    assert json.loads(meta[pz.ROW_GROUPS_PER_FILE_KEY]) == {"part-r-00000.parquet": 3, "part-r-00001.parquet": 2}
    assert meta[pz.UNISCHEMA_KEY] == pz.unischema_pickle(SCHEMA)
    assert [p.rows for p in parts] == [20, 10]
    # pyarrow reads the data files (and skips _common_metadata / _SUCCESS) as plain parquet
    back = pq.read_table(tmp_path / "ds")
    assert back.num_rows == 30 and back.schema.field("image").type == pa.binary()
    assert pz.decode_batch(back.combine_chunks().to_batches()[0], SCHEMA).to_pydict() == table.to_pydict()


# --------------------------------------------------------------------------- petastorm itself


@pytest.mark.slow
def test_legacy_environment_has_the_pinned_stack(legacy_python: Path) -> None:
    code = (
        "import json, sys, cloudsdk, petastorm, tensorflow as tf, torch, tensorflow_io, pyarrow, numpy, pandas\n"
        "import cloudsdk.client, cloudsdk.ml, cloudsdk.datasets.petastorm\n"
        "heavy = sorted(m for m in ('deltalake', 'duckdb', 'sqlalchemy', 'fastapi', 'pyspark') if m in sys.modules)\n"
        "print(json.dumps({'pyarrow': pyarrow.__version__, 'numpy': numpy.__version__,"
        " 'pandas': pandas.__version__, 'tf': tf.__version__, 'tfio': tensorflow_io.__version__,"
        " 'torch': torch.__version__, 'petastorm': petastorm.__version__, 'heavy': heavy}))\n"
    )
    proc = subprocess.run([str(legacy_python), "-c", code], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got == {"pyarrow": "14.0.2", "numpy": "1.26.4", "pandas": "3.0.6", "tf": "2.17.1",
                   "tfio": "0.37.1", "torch": "2.13.0+cpu", "petastorm": "0.13.1", "heavy": []}
    for missing in ("deltalake", "duckdb", "pyspark"):
        probe = subprocess.run([str(legacy_python), "-c", f"import {missing}"], capture_output=True)
        assert probe.returncode != 0, f"{missing} must not be installed in the legacy environment"


@pytest.mark.slow
def test_reader_guard_keeps_the_last_row_group_petastorm_would_drop(legacy_python: Path) -> None:
    """petastorm's pools can end a stream while its ventilator hands out the last row group
    (tests/legacy/petastorm_race.py stages that interleaving); readers opened through
    cloudsdk (``td.petastorm_reader``, ``cloudsdk.datasets.petastorm.make_reader``) keep it."""
    result = run_legacy(legacy_python, "petastorm_race.py", timeout=120)
    assert result == {"unguarded": [], "guarded": ["last row group"]}


@pytest.mark.slow
def test_petastorm_reads_a_dataset_on_disk(legacy_python: Path, tmp_path: Path) -> None:
    from cloudsdk.datasets.formats import PartWriter

    cols = mnist_like(60)
    table = to_table(cols)
    with PartWriter(tmp_path / "mnist", table.schema, "petastorm", rows_per_file=25) as writer:
        for batch in table.to_batches(max_chunksize=16):
            writer.write(batch)
    assert [p.name for p in writer.close()] == [f"part-r-0000{i}.parquet" for i in range(3)]
    assert (tmp_path / "mnist" / "_common_metadata").is_file()
    expected = save_expected(tmp_path / "expected.npz", cols)
    result = run_legacy(legacy_python, "read_petastorm.py", str(tmp_path / "mnist"), str(expected))
    assert result["checks"] == ["make_reader", "torch", "batch_reader", "tensorflow"]
    assert result["make_reader"] == result["torch_dataloader"] == result["make_batch_reader"] == 60
    assert result["tf_batch_reader"] == result["tf_row_reader"] == 60
    assert result["versions"]["pyarrow"] == "14.0.2"


@pytest.mark.slow
def test_petastorm_reads_a_dataset_on_s3(legacy_python: Path, tmp_path: Path,
                                         moto_server: aws.MotoServer) -> None:
    cols = mnist_like(40, seed=11)
    parts = write_petastorm(tmp_path / "mnist", to_table(cols), rows_per_file=15, row_group_size=8)
    s3 = boto3.client("s3", endpoint_url=moto_server.url, region_name=aws.REGION,
                      aws_access_key_id="testing", aws_secret_access_key="testing")
    s3.create_bucket(Bucket="legacy-petastorm")
    for path in sorted((tmp_path / "mnist").iterdir()):
        s3.upload_file(str(path), "legacy-petastorm", f"datasets/mnist_1/{path.name}")
    expected = save_expected(tmp_path / "expected.npz", cols)
    result = run_legacy(legacy_python, "read_petastorm.py", "s3://legacy-petastorm/datasets/mnist_1",
                        str(expected), "--endpoint", moto_server.url,
                        "--checks", "make_reader,torch,batch_reader,tensorflow")
    assert len(parts) == 3
    assert result["make_reader"] == result["torch_dataloader"] == result["make_batch_reader"] == 40
    assert result["tf_batch_reader"] == result["tf_row_reader"] == 40


# --------------------------------------------------------------------------- end to end


@pytest.mark.slow
def test_legacy_client_end_to_end_against_server_and_s3(
    legacy_python: Path, tmp_path: Path, moto_server: aws.MotoServer, remote_store: Any,
) -> None:
    """The issue's legacy-environment requirement: a client in .venv-legacy connects to a
    server from the main environment, reads features, creates petastorm/tfrecords training
    datasets on S3 and reads them with petastorm, TensorFlow (native s3://) and cloudsdk's
    loaders (tests/legacy/e2e_client.py)."""
    project, key = remote_store.new_project()
    cols = mnist_like(48, seed=5)
    table = pa.table({"id": cols["id"], "image": to_table(cols).column("image"), "label": cols["label"]})
    conn = remote_store.connect(tmp_path, project, key)
    try:
        conn.get_feature_store().create_feature_group("digits", data=table, primary_key="id")
    finally:
        conn.close()
    bucket = "legacy-e2e"
    boto3.client("s3", endpoint_url=moto_server.url, region_name=aws.REGION, aws_access_key_id="testing",
                 aws_secret_access_key="testing").create_bucket(Bucket=bucket)
    key_file = tmp_path / "api-key"
    key_file.write_text(key)
    # tensorflow-io's S3 filesystem reads its endpoint and (moto's dummy) credentials from the
    # environment; cloudsdk itself gets them from the storage connector
    env = {"S3_ENDPOINT": moto_server.url, "S3_USE_HTTPS": "0", "S3_VERIFY_SSL": "0",
           "AWS_REGION": aws.REGION, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    result = run_legacy(
        legacy_python, "e2e_client.py", "--host", "127.0.0.1", "--port", str(remote_store.port),
        "--project", project, "--api-key-file", str(key_file), "--trust-store", str(remote_store.ca_file),
        "--cert-folder", str(tmp_path / "certs"), "--s3-endpoint", moto_server.url, "--bucket", bucket,
        "--feature-group", "digits", timeout=400, env=env)
    assert result["steps"] == [
        "read_features", "create_on_s3", "petastorm_make_reader_torch", "petastorm_make_batch_reader_tf",
        "cloudsdk_torch_dataloader", "cloudsdk_tf_data", "tensorflow_native_s3",
    ]
    assert result["feature_rows"] == 48
    assert all(p.startswith(f"s3://{bucket}/datasets/") for p in result["paths"])
    listed = boto3.client("s3", endpoint_url=moto_server.url, region_name=aws.REGION, aws_access_key_id="testing",
                          aws_secret_access_key="testing").list_objects_v2(Bucket=bucket, Prefix="datasets/")
    names = {obj["Key"].rsplit("/", 1)[-1] for obj in listed.get("Contents", [])}
    assert {"_common_metadata", "part-r-00000.parquet", "part-r-00000.tfrecord"} <= names, names
