"""The streaming ML loaders (cloudsdk.ml): every row exactly once per epoch over workers and
ranks, deterministic per-epoch shuffles, tensor shapes and dtypes, S3 through a real moto
server, tf.data pipelines that Keras trains on, TFRecord streaming, and clear errors."""

from __future__ import annotations

import pickle
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest
import tensorflow as tf
import torch

from cloudsdk.errors import (
    DataValidationError,
    InvalidArgumentError,
    NotFoundError,
    UnsupportedError,
)
from cloudsdk.ml import (
    FileSource,
    Unit,
    tf_dataset,
    tfrecord_dataset,
    torch_dataloader,
    torch_dataset,
)
from cloudsdk.ml.source import epoch_order, split_units
from tests import aws

moto_server = aws.moto_server

IMG = pa.list_(pa.list_(pa.uint8(), 28), 28)
SCHEMA = pa.schema([
    ("id", pa.int64()),
    ("f0", pa.float64()),
    ("f1", pa.float32()),
    ("f2", pa.int32()),
    ("label", pa.int64()),
    ("img", IMG),
])
# (rows, row group size) per file: uneven units (3 + 3 + 1 + 8 = 15 row groups)
LAYOUT = [(700, 256), (1300, 500), (37, 37), (900, 128)]
TOTAL = sum(rows for rows, _ in LAYOUT)
NUMERIC = ["id", "f0", "f1", "f2"]


def make_table(start: int, rows: int) -> pa.Table:
    ids = np.arange(start, start + rows, dtype=np.int64)
    images = (ids[:, None] + np.arange(28 * 28)[None, :]).astype(np.uint8)
    img = pa.FixedSizeListArray.from_arrays(
        pa.FixedSizeListArray.from_arrays(pa.array(images.ravel(), pa.uint8()), 28), 28)
    return pa.Table.from_arrays([
        pa.array(ids), pa.array(ids * 0.5), pa.array((ids % 7).astype(np.float32)),
        pa.array((ids % 5).astype(np.int32)), pa.array(ids % 10), img,
    ], schema=SCHEMA)


def write_parquet(fs: pafs.FileSystem, directory: str) -> list[str]:
    paths, start = [], 0
    for i, (rows, group) in enumerate(LAYOUT):
        path = f"{directory}/part-r-{i:05d}.parquet"
        with fs.open_output_stream(path) as out:
            pq.write_table(make_table(start, rows), out, row_group_size=group)
        paths.append(path)
        start += rows
    return paths


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> FileSource:
    directory = tmp_path_factory.mktemp("td")
    return FileSource(pafs.LocalFileSystem(), write_parquet(pafs.LocalFileSystem(), str(directory)),
                      "parquet", SCHEMA)


def torch_ids(batches: Iterable[Any]) -> list[int]:
    """The ``id`` column (feature 0 of the stacked matrix) of every batch, in order."""
    out: list[int] = []
    for x, _y in batches:
        ids = x[:, 0] if isinstance(x, torch.Tensor) else x["id"]
        out.extend(int(v) for v in ids)
    return out


def loader(src: FileSource, **kwargs: Any) -> Any:
    kwargs.setdefault("batch_size", 100)
    kwargs.setdefault("feature_names", NUMERIC)
    return torch_dataloader(src, "label", **kwargs)


# ---------------------------------------------------------------------- the source
def test_units_are_row_groups(source: FileSource) -> None:
    units = source.units()
    assert len(units) == 15
    assert sum(u.rows for u in units) == TOTAL
    assert units[0] == Unit(source.files[0], 0, 256) and units[2] == Unit(source.files[0], 2, 188)
    restored = pickle.loads(pickle.dumps(source))
    assert restored.units() == units
    batches = list(restored.read(units[1], ["label", "id"]))
    assert sum(b.num_rows for b in batches) == 256
    assert batches[0].schema.names == ["label", "id"] and batches[0].column(1)[0].as_py() == 256


def test_split_units_is_a_partition_balanced_by_rows() -> None:
    units = [Unit("f", i, rows) for i, rows in enumerate([100, 10, 10, 10, 10, 90, 5])]
    order = epoch_order(len(units), shuffle=True, seed=3, epoch=1)
    assert sorted(order) == list(range(7)) and order == epoch_order(7, shuffle=True, seed=3, epoch=1)
    shards = split_units(order, units, 3)
    assert sorted(i for s in shards for i in s) == list(range(7))
    loads = [sum(units[i].rows for i in s) for s in shards]
    assert max(loads) - min(loads) <= 100
    unknown = [Unit("f", None, -1)] * 5
    assert split_units(range(5), unknown, 2) == [[0, 2, 4], [1, 3]]


def test_missing_file_is_not_found(tmp_path: Path) -> None:
    src = FileSource(pafs.LocalFileSystem(), [str(tmp_path / "nope.parquet")], "parquet", SCHEMA)
    with pytest.raises(NotFoundError, match=r"nope\.parquet"):
        src.units()
    with pytest.raises(InvalidArgumentError, match="unknown data format 'xml'"):
        FileSource(pafs.LocalFileSystem(), [], "xml", SCHEMA)


# ---------------------------------------------------------------------- torch: exactly once
@pytest.mark.parametrize("num_workers", [0, 2])
@pytest.mark.parametrize("shuffle", [False, True])
def test_torch_every_row_once_per_epoch(source: FileSource, num_workers: int, shuffle: bool) -> None:
    dl = loader(source, shuffle=shuffle, num_workers=num_workers, seed=11)
    epochs = [torch_ids(dl) for _ in range(2)]
    for ids in epochs:
        assert sorted(ids) == list(range(TOTAL))
    if shuffle:
        assert epochs[0] != epochs[1]  # a new order each epoch
        assert epochs[0][:50] != sorted(epochs[0][:50])  # rows shuffled within units too
    elif num_workers == 0:
        assert epochs[0] == list(range(TOTAL)) == epochs[1]


@pytest.mark.parametrize(("world_size", "num_workers"), [(3, 0), (4, 2), (20, 0)])
def test_torch_ranks_union_is_every_row_once(source: FileSource, world_size: int, num_workers: int) -> None:
    for epoch in (0, 1):
        per_rank = []
        for rank in range(world_size):
            dl = loader(source, shuffle=True, seed=5, rank=rank, world_size=world_size,
                        num_workers=num_workers)
            dl.set_epoch(epoch)
            per_rank.append(torch_ids(dl))
        union = [i for ids in per_rank for i in ids]
        assert sorted(union) == list(range(TOTAL)), f"epoch {epoch}"
        if world_size <= 4:  # balanced by rows: no rank gets nothing
            assert all(len(ids) > TOTAL // (3 * world_size) for ids in per_rank)


def test_torch_drop_last_drops_each_shards_short_batch(source: FileSource) -> None:
    rows_seen = 0
    for rank in range(2):
        ds = torch_dataset(source, "label", NUMERIC, batch_size=128, drop_last=True, rank=rank, world_size=2)
        sizes = [len(y) for _x, y in ds]
        assert set(sizes) == {128}
        rows_seen += sum(sizes)
        full = torch_dataset(source, "label", NUMERIC, batch_size=128, rank=rank, world_size=2)
        assert sum(len(y) for _x, y in full) // 128 * 128 == sum(sizes)
    assert TOTAL - 2 * 127 <= rows_seen <= TOTAL


# ---------------------------------------------------------------------- torch: shuffle
def test_torch_shuffle_is_reproducible_per_seed_and_epoch(source: FileSource) -> None:
    def order(seed: int, epoch: int) -> list[int]:
        ds = torch_dataset(source, "label", NUMERIC, batch_size=64, shuffle=True, seed=seed)
        ds.set_epoch(epoch)
        return torch_ids(ds)

    assert order(1, 0) == order(1, 0)
    assert order(1, 0) != order(1, 1)
    assert order(1, 0) != order(2, 0)
    # the DataLoader advances the epoch itself, also with (non-persistent and persistent) workers
    for kwargs in ({"num_workers": 0}, {"num_workers": 2}, {"num_workers": 2, "persistent_workers": True}):
        dl = loader(source, batch_size=64, shuffle=True, seed=1, **kwargs)
        if kwargs["num_workers"] == 0:
            assert torch_ids(dl) == order(1, 0) and torch_ids(dl) == order(1, 1)
        else:
            first, second = torch_ids(dl), torch_ids(dl)
            assert sorted(first) == sorted(second) == list(range(TOTAL)) and first != second
            again = loader(source, batch_size=64, shuffle=True, seed=1, **kwargs)
            assert torch_ids(again) == first


def test_spawned_workers_unpickle_the_dataset(source: FileSource) -> None:
    dl = loader(source, batch_size=500, num_workers=1, multiprocessing_context="spawn")
    assert sorted(torch_ids(dl)) == list(range(TOTAL))


def test_dataset_pass_advances_epoch_unless_set(source: FileSource) -> None:
    ds = torch_dataset(source, "label", NUMERIC, batch_size=64, shuffle=True, seed=3)
    assert ds.epoch == 0
    first = torch_ids(ds)
    assert ds.epoch == 1 and torch_ids(ds) != first
    ds.set_epoch(0)
    assert torch_ids(ds) == first


# ---------------------------------------------------------------------- torch: shapes, dtypes
def test_torch_stacked_features_and_label(source: FileSource) -> None:
    x, y = next(iter(torch_dataset(source, "label", ["f2", "id", "f0"], batch_size=32)))
    assert x.shape == (32, 3) and x.dtype == torch.float32 and x.is_contiguous()
    assert y.shape == (32,) and y.dtype == torch.int64
    assert x[:, 1].tolist() == list(range(32)) and x[:, 2].tolist() == [i * 0.5 for i in range(32)]
    assert x[:, 0].tolist() == [i % 5 for i in range(32)] and y.tolist() == [i % 10 for i in range(32)]


def test_torch_arrays_give_dict_of_tensors(source: FileSource) -> None:
    x, y = next(iter(torch_dataset(source, "label", ["img", "f1", "id"], batch_size=16)))
    assert set(x) == {"img", "f1", "id"}
    assert x["img"].shape == (16, 28, 28) and x["img"].dtype == torch.uint8
    assert x["f1"].dtype == torch.float32 and x["id"].dtype == torch.int64 and y.shape == (16,)
    expected = (np.arange(16)[:, None] + np.arange(784)[None, :]).astype(np.uint8).reshape(16, 28, 28)
    assert np.array_equal(x["img"].numpy(), expected)
    # no target: a dict of every column; stack_features=False: a dict too
    batch = next(iter(torch_dataset(source, batch_size=8)))
    assert set(batch) == set(SCHEMA.names) and batch["img"].shape == (8, 28, 28)
    x, _ = next(iter(torch_dataset(source, "label", NUMERIC, batch_size=8, stack_features=False)))
    assert set(x) == set(NUMERIC) and x["f2"].dtype == torch.int32


def test_torch_nulls_and_ragged_arrays(tmp_path: Path) -> None:
    table = pa.table({
        "a": pa.array([1.0, None, 3.0]), "i": pa.array([1, None, 3], pa.int64()),
        "v": pa.array([[1.0], [2.0, 3.0], []], pa.list_(pa.float32())),
        "s": pa.array(["x", "y", "z"]), "label": pa.array([0, 1, 0]),
    })
    pq.write_table(table, tmp_path / "part-r-00000.parquet")
    src = FileSource(pafs.LocalFileSystem(), [str(tmp_path / "part-r-00000.parquet")], "parquet", table.schema)
    x, _ = next(iter(torch_dataset(src, "label", ["a", "i"])))  # stacked float32: nulls are NaN
    assert torch.isnan(x[1]).all() and x[0].tolist() == [1.0, 1.0]
    x, _ = next(iter(torch_dataset(src, "label", ["a", "v", "s"])))
    assert torch.isnan(x["a"][1]) and x["s"] == ["x", "y", "z"]
    assert [t.tolist() for t in x["v"]] == [[1.0], [2.0, 3.0], []]
    with pytest.raises(DataValidationError, match="column 'i' has 1 null"):
        next(iter(torch_dataset(src, "label", ["i"], stack_features=False)))


# ---------------------------------------------------------------------- errors
def test_unknown_names_are_clear_errors(source: FileSource) -> None:
    with pytest.raises(InvalidArgumentError, match=r"target 'lable' is not a column.*'label'"):
        torch_dataset(source, "lable")
    with pytest.raises(InvalidArgumentError, match=r"unknown feature name\(s\) \['f9'\].*'f0'"):
        torch_dataloader(source, "label", feature_names=["f0", "f9"])
    with pytest.raises(InvalidArgumentError, match="also among feature_names"):
        torch_dataset(source, "label", ["label", "f0"])
    with pytest.raises(InvalidArgumentError, match="rank and world_size together"):
        torch_dataset(source, "label", rank=1)
    with pytest.raises(InvalidArgumentError, match="rank 2 is not in range"):
        torch_dataset(source, "label", rank=2, world_size=2)
    with pytest.raises(InvalidArgumentError, match="batch_size"):
        torch_dataset(source, "label", batch_size=0)
    with pytest.raises(InvalidArgumentError, match="sampler"):
        torch_dataloader(source, "label", sampler=[0])
    with pytest.raises(InvalidArgumentError, match=r"target 'nope' is not a column.*'img'"):
        tf_dataset(source, "nope")
    with pytest.raises(InvalidArgumentError, match="num_epochs"):
        tf_dataset(source, "label", num_epochs=0)
    nested = pa.schema([("s", pa.struct([("a", pa.int32())])), ("label", pa.int64())])
    with pytest.raises(UnsupportedError, match="column 's' has type struct"):
        torch_dataset(FileSource(pafs.LocalFileSystem(), [], "parquet", nested), "label")


def test_importing_the_loaders_imports_no_framework() -> None:
    code = ("import sys, cloudsdk.ml, cloudsdk.ml.torch, cloudsdk.ml.tensorflow; "
            "print(sorted(m for m in ('torch', 'tensorflow') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# ---------------------------------------------------------------------- S3 (moto server)
@pytest.fixture(scope="module")
def s3_source(moto_server: aws.MotoServer) -> FileSource:
    port = moto_server.url.rsplit(":", 1)[1]
    fs = pafs.S3FileSystem(access_key="testing", secret_key="testing", region=aws.REGION,
                           endpoint_override=f"127.0.0.1:{port}", scheme="http", allow_bucket_creation=True)
    aws.admin_session().client("s3", endpoint_url=moto_server.url).create_bucket(Bucket="ml-loaders")
    return FileSource(fs, write_parquet(fs, "ml-loaders/td/digits_1"), "parquet", SCHEMA)


def test_torch_streams_from_s3(s3_source: FileSource) -> None:
    assert s3_source.files[0] == "ml-loaders/td/digits_1/part-r-00000.parquet"
    dl = loader(s3_source, shuffle=True, num_workers=2, seed=4)
    assert sorted(torch_ids(dl)) == list(range(TOTAL))
    x, y = next(iter(torch_dataset(s3_source, "label", ["img"], batch_size=10)))
    assert x["img"].shape == (10, 28, 28) and y.tolist() == list(range(10))


def test_tf_streams_from_s3(s3_source: FileSource) -> None:
    ds = tf_dataset(s3_source, "label", NUMERIC, batch_size=200, shuffle=True, seed=2)
    ids = [int(v) for x, _y in ds for v in x[:, 0].numpy()]
    assert sorted(ids) == list(range(TOTAL))


# ---------------------------------------------------------------------- TensorFlow
def tf_ids(ds: Any) -> list[int]:
    return [int(v) for x, _y in ds for v in (x[:, 0] if not isinstance(x, dict) else x["id"]).numpy()]


def test_tf_every_row_once_per_epoch_and_epochs_repeat(source: FileSource) -> None:
    ds = tf_dataset(source, "label", NUMERIC, batch_size=128, num_epochs=2)
    x_spec, y_spec = ds.element_spec
    assert x_spec.shape.as_list() == [None, 4] and x_spec.dtype == tf.float32 and y_spec.dtype == tf.int64
    sizes = [int(y.shape[0]) for _x, y in ds]
    per_epoch = -(-TOTAL // 128)
    assert len(sizes) == 2 * per_epoch and sizes[per_epoch - 1] == TOTAL % 128  # no batch straddles epochs
    ids = tf_ids(ds)
    assert sorted(ids[:TOTAL]) == sorted(ids[TOTAL:]) == list(range(TOTAL))
    dropped = tf_dataset(source, "label", NUMERIC, batch_size=128, drop_remainder=True)
    assert [int(y.shape[0]) for _x, y in dropped] == [128] * (TOTAL // 128)


def test_tf_shuffle_is_seeded_and_differs_per_epoch(source: FileSource) -> None:
    def ids(seed: int) -> list[int]:
        return tf_ids(tf_dataset(source, "label", NUMERIC, batch_size=256, shuffle=True, seed=seed,
                                 num_epochs=2, num_parallel_reads=3))

    first = ids(7)
    assert sorted(first[:TOTAL]) == list(range(TOTAL)) and first[:TOTAL] != first[TOTAL:]
    assert first == ids(7) and first != ids(8)
    for seed in (1, None):
        buffered = tf_ids(tf_dataset(source, "label", NUMERIC, batch_size=256, shuffle=True, seed=seed,
                                     shuffle_buffer=500))
        assert sorted(buffered) == list(range(TOTAL))


def test_tf_dict_features_with_arrays(source: FileSource) -> None:
    ds = tf_dataset(source, "label", ["img", "f1"], batch_size=16)
    x, y = next(iter(ds))
    assert x["img"].shape == (16, 28, 28) and x["img"].dtype == tf.uint8
    assert x["f1"].dtype == tf.float32 and y.shape == (16,)
    features = next(iter(tf_dataset(source, None, ["id", "f0"], batch_size=4)))
    assert sorted(features) == ["f0", "id"] and features["id"].numpy().tolist() == [0, 1, 2, 3]


def test_tf_dataset_trains_a_keras_model(source: FileSource) -> None:
    ds = tf_dataset(source, "label", ["f0", "f1", "f2"], batch_size=64, shuffle=True, seed=0, num_epochs=None)
    model = tf.keras.Sequential([tf.keras.Input(shape=(3,)), tf.keras.layers.Dense(10)])
    model.compile(optimizer="sgd", loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    history = model.fit(ds, epochs=1, steps_per_epoch=3, verbose=0, shuffle=False)
    assert len(history.history["loss"]) == 1 and np.isfinite(history.history["loss"][0])


def write_tfrecords(directory: Path, files: int, per_file: int) -> list[str]:
    paths = []
    for f in range(files):
        path = directory / f"part-r-{f:05d}.tfrecord"
        with tf.io.TFRecordWriter(str(path)) as writer:
            for i in range(f * per_file, (f + 1) * per_file):
                example = tf.train.Example(features=tf.train.Features(feature={
                    "id": tf.train.Feature(int64_list=tf.train.Int64List(value=[i])),
                    "emb": tf.train.Feature(float_list=tf.train.FloatList(value=[i, i + 0.5])),
                }))
                writer.write(example.SerializeToString())
        paths.append(str(path))
    return paths


def test_tfrecord_dataset_streams_records(tmp_path: Path) -> None:
    paths = write_tfrecords(tmp_path, 3, 150)
    spec = {"id": tf.io.FixedLenFeature([], tf.int64), "emb": tf.io.FixedLenFeature([2], tf.float32)}
    ds = tfrecord_dataset(pafs.LocalFileSystem(), paths, spec, target_name="id", batch_size=64,
                          shuffle=True, seed=3, num_epochs=2, verify=True)
    ids, embs = [], []
    for x, y in ds:
        ids.extend(y.numpy().tolist())
        embs.extend(x["emb"].numpy()[:, 1].tolist())
    assert sorted(ids[:450]) == sorted(ids[450:]) == list(range(450))
    assert ids[:450] != ids[450:] and embs[:3] == [i + 0.5 for i in ids[:3]]
    (tmp_path / "bad.tfrecord").write_bytes(Path(paths[0]).read_bytes()[:-3])
    # inside tf.data, a generator's exception reaches the caller as a tf.errors.OpError
    with pytest.raises(tf.errors.OpError, match=r"DataValidationError.*truncated TFRecord record"):
        list(tfrecord_dataset(pafs.LocalFileSystem(), [str(tmp_path / "bad.tfrecord")], spec).as_numpy_iterator())


# ---------------------------------------------------------------------- other formats
@pytest.mark.parametrize("data_format", ["csv", "tfrecords", "avro", "petastorm"])
def test_other_formats_through_the_dataset_writer(tmp_path: Path, data_format: str) -> None:
    from cloudsdk.datasets.formats import PartWriter, list_parts

    arrays = data_format != "csv"  # csv cannot hold arrays
    schema = SCHEMA if arrays else pa.schema([f for f in SCHEMA if f.name != "img"])
    with PartWriter(tmp_path / "td", schema, data_format, rows_per_file=300) as writer:
        for start in range(0, 1000, 250):
            writer.write(make_table(start, 250).select(schema.names))
    fs = pafs.LocalFileSystem()
    src = FileSource.from_directory(fs, str(tmp_path / "td"), data_format, schema)
    assert src.files == list_parts(fs, str(tmp_path / "td"))
    units = src.units()
    if data_format == "petastorm":  # parquet underneath: row groups
        assert sum(u.rows for u in units) == 1000 and all(u.row_group is not None for u in units)
    else:  # whole files
        assert len(units) == 4 and all(u.row_group is None for u in units)
    union = [i for r in range(2) for i in torch_ids(
        torch_dataset(src, "label", NUMERIC, batch_size=64, shuffle=True, rank=r, world_size=2))]
    assert sorted(union) == list(range(1000))
    assert sorted(tf_ids(tf_dataset(src, "label", NUMERIC, batch_size=100))) == list(range(1000))
    if arrays:
        x, y = next(iter(torch_dataset(src, "label", ["img", "id"], batch_size=5)))
        assert x["img"].shape == (5, 28, 28) and x["img"].dtype == torch.uint8
        assert int(x["img"][3, 0, 1]) == (int(x["id"][3]) + 1) % 256 and y.dtype == torch.int64
