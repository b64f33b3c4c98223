"""Training-dataset file formats: every format written by PartWriter, read back by the format's
standard reader (pyarrow, pandas, fastavro, numpy, h5py, TensorFlow) and by cloudsdk, on disk
and from a moto S3 server."""

from __future__ import annotations

import datetime as dt
import decimal
import io
import json
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import pyarrow as pa
import pyarrow.fs as pafs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cloudsdk.datasets import formats as F
from cloudsdk.datasets import tfrecord as T
from cloudsdk.errors import (
    DataValidationError,
    FeatureNotFoundError,
    InvalidArgumentError,
    NotFoundError,
    SchemaMismatchError,
    StorageError,
)
from tests import aws

moto_server = aws.moto_server

UTC = dt.UTC
LOCAL = pafs.LocalFileSystem()


def _table() -> pa.Table:
    """Six rows of many types; nulls where formats differ on them."""
    ts = [dt.datetime(2024, 1, 1, tzinfo=UTC), dt.datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC),
          None, dt.datetime(1969, 12, 31, 23, 59, 59, tzinfo=UTC), dt.datetime(2030, 1, 1, tzinfo=UTC),
          dt.datetime(2000, 2, 29, 12, tzinfo=UTC)]
    return pa.table({
        "i8": pa.array([1, -2, 3, 127, -128, 0], pa.int8()),
        "i16": pa.array([1000, -2, 3, 4, 5, 6], pa.int16()),
        "i32": pa.array([1, 2, 3, -(2**31), 2**31 - 1, 0], pa.int32()),
        "i64": pa.array([2**40, -(2**40), 0, 1, 2, 3], pa.int64()),
        "u8": pa.array([0, 255, 1, 2, 3, 4], pa.uint8()),
        "u64": pa.array([0, 2**62, 5, 6, 7, 8], pa.uint64()),
        "f32": pa.array([0.5, -1.25, 3.0, 1e-3, 2.5, 0.0], pa.float32()),
        "f64": pa.array([0.5, None, 1.5, -2.25, 1024.0, 3.0], pa.float64()),  # float32-exact values
        "flag": pa.array([True, False, True, True, False, False]),
        "name": pa.array(["a", "bé", "c,d", "e\tf", "g\"h", "i"]),
        "s": pa.array(["x", None, "", "y", "z", None]),
        "ts": pa.array(ts, pa.timestamp("us", tz="UTC")),
        "vl": pa.array([[1.0, 2.0], [], None, [3.5], [4.0, 5.0, 6.0], [0.25]], pa.list_(pa.float32())),
        "img": pa.array([[[i, i + 1], [i + 2, i + 3]] for i in range(6)],
                        pa.list_(pa.list_(pa.uint8(), 2), 2)),
    })


SCALARS = ["i8", "i16", "i32", "i64", "u8", "u64", "f32", "f64", "flag", "name", "s", "ts"]
ALL = [*SCALARS, "vl", "img"]
COLUMNS = {  # the columns of _table() each format holds
    "parquet": ALL, "orc": ALL, "avro": ALL, "tfrecords": ALL, "petastorm": ALL, "hdf5": ALL,
    "csv": SCALARS, "tsv": SCALARS,
    "npy": [c for c in ALL if c not in ("s", "vl")],  # npy: no null strings, no ragged arrays
}


def _write(directory: Path, fmt: str, table: pa.Table, **kwargs: object) -> list[F.PartInfo]:
    with F.PartWriter(directory, table.schema, fmt, **kwargs) as writer:  # type: ignore[arg-type]
        writer.write(table)
    return writer.close()


def _only(directory: Path) -> Path:
    parts = sorted(directory.glob("part-r-*"))
    assert len(parts) == 1
    return parts[0]


# ----------------------------------------------------------------------- names


def test_canonical_format_and_suffix() -> None:
    assert F.canonical_format("TFRecord") == "tfrecords"
    assert F.canonical_format(" Parquet ") == "parquet"
    assert [F.file_suffix(f) for f in ("tfrecords", "petastorm", "hdf5", "npy")] == [
        "tfrecord", "parquet", "h5", "npy"]
    assert F.part_name(3, "tfrecord") == "part-r-00003.tfrecord"
    with pytest.raises(InvalidArgumentError, match="tfrecords, parquet, csv"):
        F.canonical_format("excel")


@pytest.mark.parametrize("fmt", ["csv", "tsv"])
def test_csv_refuses_arrays(fmt: str, tmp_path: Path) -> None:
    with pytest.raises(SchemaMismatchError) as info:
        F.PartWriter(tmp_path / "d", _table().schema, fmt)
    text = str(info.value)
    assert "'vl'" in text and "'img'" in text and "parquet" in text and "'name'" not in text
    assert not (tmp_path / "d").exists()


def test_check_schema_rules() -> None:
    ragged = pa.schema([("r", pa.list_(pa.list_(pa.float32())))])
    with pytest.raises(SchemaMismatchError, match=r"'r'.*formats that can hold it: parquet"):
        F.check_schema(ragged, "tfrecords")
    F.check_schema(pa.schema([("m", pa.list_(pa.list_(pa.int64(), 3)))]), "tfrecords")  # shape [None, 3]
    struct = pa.schema([("st", pa.struct([("a", pa.int32())]))])
    for fmt in ("tfrecords", "avro", "csv", "npy", "hdf5"):
        with pytest.raises(SchemaMismatchError, match="'st'"):
            F.check_schema(struct, fmt)
    F.check_schema(struct, "parquet")
    with pytest.raises(SchemaMismatchError, match="fixed-shape"):
        F.check_schema(pa.schema([("v", pa.list_(pa.float32()))]), "npy")
    with pytest.raises(SchemaMismatchError, match="binary"):
        F.check_schema(pa.schema([("b", pa.binary())]), "csv")
    odd = pa.schema([("a-b", pa.int64()), ("c/d", pa.int64())])
    with pytest.raises(SchemaMismatchError, match=r"'a-b'.*avro field name"):
        F.check_schema(odd, "avro")
    with pytest.raises(SchemaMismatchError, match=r"'c/d'.*hdf5 dataset name"):
        F.check_schema(odd, "hdf5")
    F.check_schema(odd, "tfrecords")


# ----------------------------------------------------------------------- round trips


@pytest.mark.parametrize("fmt", F.FORMATS)
def test_round_trip_read_dataset(fmt: str, tmp_path: Path) -> None:
    table = _table().select(COLUMNS[fmt])
    parts = _write(tmp_path, fmt, table)
    assert [p.rows for p in parts] == [6]
    assert (tmp_path / "_SUCCESS").exists()
    back = F.read_dataset(LOCAL, str(tmp_path), fmt, table.schema)
    assert back.schema.equals(table.schema)
    assert back.to_pylist() == table.to_pylist() or fmt == "npy"
    if fmt == "npy":  # npy has no nulls: a null float is NaN and NaN reads back as null
        assert back.equals(table)
    sub = F.read_dataset(LOCAL, str(tmp_path), fmt, table.schema, columns=["ts", "i8"])
    assert sub.column_names == ["ts", "i8"] and sub.equals(table.select(["ts", "i8"]))


def _more_types() -> pa.Table:
    """Other logical types, as a table of two chunks (the second one sliced, with an offset)."""
    base = pa.table({
        "h": pa.array(np.array([1.5, 0, -2.0, 0.25], np.float16), mask=np.array([False, True, False, False])),
        "cat": pa.array(["a", "b", None, "a"]).dictionary_encode(),
        "naive": pa.array([dt.datetime(2020, 1, 1, 1, 2, 3), None, dt.datetime(1999, 12, 31),
                           dt.datetime(2000, 1, 1)], pa.timestamp("ms")),
        "paris": pa.array([dt.datetime(2020, 1, 1, tzinfo=UTC)] * 4, pa.timestamp("s", tz="Europe/Paris")),
        "d32": pa.array([dt.date(2020, 1, 1), None, dt.date(1960, 5, 5), dt.date(2000, 2, 29)], pa.date32()),
        "d64": pa.array([dt.date(2020, 1, 1), None, dt.date(1960, 5, 5), dt.date(2000, 2, 29)], pa.date64()),
        "ls": pa.array(["x", "y", None, "zz"], pa.large_string()),
        "u16": pa.array([1, 65535, None, 3], pa.uint16()),
        "u32": pa.array([1, 2**32 - 1, 0, 3], pa.uint32()),
        "dec": pa.array([decimal.Decimal("1.25"), None, decimal.Decimal("-3.50"), decimal.Decimal("0.00")],
                        pa.decimal128(6, 2)),
        "bin": pa.array([b"\x00a", None, b"", b"\xff"], pa.binary()),
        "ll": pa.array([[1, 2], None, [], [3]], pa.large_list(pa.int32())),
        "lfix": pa.array([[[1.0, 2.0]], [[0.5, 0.5]], None, [[3.0, 4.0], [5.0, 6.0]]],
                         pa.list_(pa.list_(pa.float64(), 2))),
        "lstr": pa.array([["a"], [], None, ["b", "c"]], pa.list_(pa.string())),
        "fixnull": pa.array([[1, 2, 3], None, [4, 5, 6], [7, 8, 9]], pa.list_(pa.int16(), 3)),
        "st": pa.array([{"a": 1}, None, {"a": 2}, {"a": None}], pa.struct([("a", pa.int32())])),
    })
    return pa.concat_tables([base.slice(0, 1), base.slice(1, 3)])


@pytest.mark.parametrize("fmt", F.FORMATS)
def test_more_types_round_trip(fmt: str, tmp_path: Path) -> None:
    table = _more_types()
    held = [f.name for f in table.schema if not _refused(f, fmt)]
    if fmt == "npy":  # numpy has no null strings, integers or arrays
        held = [n for n in held if not table.column(n).null_count or n in ("h", "naive", "paris", "d32", "d64")]
    expected = {"tfrecords": 14, "parquet": 16, "orc": 16, "avro": 15, "petastorm": 14, "csv": 10,
                "tsv": 10, "hdf5": 11, "npy": 6}
    assert len(held) == expected[fmt], held
    table = table.select(held)
    _write(tmp_path, fmt, table, rows_per_file=3)
    back = F.read_dataset(LOCAL, str(tmp_path), fmt, table.schema)
    assert back.schema.equals(table.schema)
    for name in held:
        assert back.column(name).to_pylist() == table.column(name).to_pylist(), name


def _refused(field: pa.Field, fmt: str) -> bool:
    try:
        F.check_schema(pa.schema([field]), fmt)
    except SchemaMismatchError:
        return True
    return False


def test_parquet_standard_reader(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    table = _table()
    _write(tmp_path, "parquet", table)
    std = pq.read_table(_only(tmp_path))
    assert std.num_rows == 6
    for name in ALL:
        assert std.column(name).to_pylist() == table.column(name).to_pylist(), name
    assert pq.ParquetFile(_only(tmp_path)).schema_arrow.metadata is None or \
        b"pandas" not in pq.ParquetFile(_only(tmp_path)).schema_arrow.metadata


def test_parquet_drops_pandas_metadata_and_groups_rows(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(_table().select(["i64", "f32"]).to_pandas())
    assert b"pandas" in table.schema.metadata
    with F.PartWriter(tmp_path, table.schema, "parquet") as writer:
        for start in range(0, 6, 2):  # small batches still make one row group
            writer.write(table.slice(start, 2))
    [part] = writer.close()
    assert part.row_groups == 1 == pq.ParquetFile(_only(tmp_path)).num_row_groups
    assert b"pandas" not in (pq.ParquetFile(_only(tmp_path)).schema_arrow.metadata or {})
    back = F.read_dataset(LOCAL, str(tmp_path), "parquet", table.schema)
    assert back.to_pandas().equals(table.to_pandas())


@pytest.mark.parametrize("fmt", ["csv", "tsv"])
def test_csv_standard_readers(fmt: str, tmp_path: Path) -> None:
    import pandas as pd
    import pyarrow.csv as pacsv

    table = _table().select(SCALARS)
    _write(tmp_path, fmt, table)
    sep = "\t" if fmt == "tsv" else ","
    frame = pd.read_csv(_only(tmp_path), sep=sep)
    assert list(frame.columns) == SCALARS and len(frame) == 6
    assert frame["i64"].tolist() == table.column("i64").to_pylist()
    assert frame["name"].tolist() == table.column("name").to_pylist()
    std = pacsv.read_csv(_only(tmp_path), parse_options=pacsv.ParseOptions(delimiter=sep))
    assert std.column("f32").cast(pa.float32()).equals(table.column("f32"))
    assert std.column("flag").to_pylist() == table.column("flag").to_pylist()


def test_orc_standard_reader(tmp_path: Path) -> None:
    import pyarrow.orc as orc

    table = _table()
    _write(tmp_path, "orc", table)
    std = orc.read_table(str(_only(tmp_path)))
    assert std.schema.field("u8").type == pa.int16()  # ORC has no unsigned types: widened
    for name in ["i8", "i64", "u8", "u64", "f64", "flag", "name", "s", "vl", "img"]:
        assert std.column(name).to_pylist() == table.column(name).to_pylist(), name
    assert std.column("ts").cast(pa.timestamp("us", tz="UTC")).equals(table.column("ts"))


def test_avro_standard_reader(tmp_path: Path) -> None:
    import fastavro

    table = _table()
    _write(tmp_path, "avro", table)
    with open(_only(tmp_path), "rb") as f:
        reader = fastavro.reader(f)
        records = list(reader)
        schema: Any = reader.writer_schema
    types = {f["name"]: f["type"] for f in schema["fields"]}
    assert types["ts"] == ["null", {"type": "long", "logicalType": "timestamp-micros"}]
    assert types["vl"] == ["null", {"type": "array", "items": ["null", "float"]}]
    expected = table.to_pylist()
    for got, want in zip(records, expected, strict=True):
        assert got == want


def test_npy_standard_reader(tmp_path: Path) -> None:
    table = _table().select(COLUMNS["npy"])
    _write(tmp_path, "npy", table)
    arr = np.load(_only(tmp_path))
    assert arr.dtype.names == tuple(COLUMNS["npy"])
    assert arr["img"].shape == (6, 2, 2) and arr["img"].dtype == np.uint8
    assert arr["img"][3].tolist() == [[3, 4], [5, 6]]
    assert arr["u64"].dtype == np.uint64 and arr["u64"][1] == 2**62
    assert arr["name"].tolist() == table.column("name").to_pylist()
    assert np.isnat(arr["ts"][2]) and arr["ts"][0] == np.datetime64("2024-01-01T00:00:00", "us")
    assert np.isnan(arr["f64"][1]) and arr["f64"][2] == 1.5


def test_npy_refuses_nulls_it_cannot_hold(tmp_path: Path) -> None:
    table = pa.table({"s": pa.array(["a", None])})
    with pytest.raises(DataValidationError, match="'s' has nulls"), F.PartWriter(tmp_path / "d", table.schema, "npy") as w:
        w.write(table)
    assert not (tmp_path / "d").exists()


def test_hdf5_standard_reader(tmp_path: Path) -> None:
    import h5py

    table = _table()
    _write(tmp_path, "hdf5", table)
    with h5py.File(_only(tmp_path), "r") as f:
        assert set(ALL) <= set(f.keys())
        assert f["img"].shape == (6, 2, 2)
        assert f["i64"][...].tolist() == table.column("i64").to_pylist()
        assert [v.tolist() for v in f["vl"][...]] == [v or [] for v in table.column("vl").to_pylist()]
        assert list(f["name"].asstr()[...]) == table.column("name").to_pylist()
        assert f["_nulls"]["s"][...].tolist() == [False, True, False, False, False, True]
        assert f["ts"].attrs["arrow_type"] == "timestamp[us, tz=UTC]"


def test_petastorm_parts_are_parquet(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    table = _table()
    _write(tmp_path, "petastorm", table)
    assert _only(tmp_path).name == "part-r-00000.parquet"
    assert (tmp_path / "_common_metadata").exists()
    std = pq.read_table(_only(tmp_path))
    assert std.num_rows == 6 and std.column("i64").to_pylist() == table.column("i64").to_pylist()


def test_tfrecords_read_by_tensorflow(tmp_path: Path) -> None:
    import tensorflow as tf

    table = _table()
    _write(tmp_path, "tfrecords", table)
    schema = json.loads((tmp_path / F.TF_RECORD_SCHEMA_FILE).read_text())
    assert schema["img"] == {"kind": "fixed", "dtype": "int64", "shape": [2, 2],
                             "arrow_type": str(table.schema.field("img").type), "default": 0}
    assert schema["vl"]["kind"] == "var" and schema["f64"]["dtype"] == "float32"
    spec = T.to_tf_feature_spec(schema)
    files = [str(p) for p in sorted(tmp_path.glob("part-r-*"))]
    parsed = next(iter(tf.data.TFRecordDataset(files).batch(10).map(lambda x: tf.io.parse_example(x, spec))))
    assert parsed["i64"].numpy().tolist() == table.column("i64").to_pylist()
    assert parsed["img"].numpy().tolist() == table.column("img").to_pylist()
    assert parsed["name"].numpy().tolist() == [s.encode() for s in table.column("name").to_pylist()]
    assert parsed["flag"].numpy().tolist() == [int(b) for b in table.column("flag").to_pylist()]
    f64 = parsed["f64"].numpy()
    assert np.isnan(f64[1]) and f64[2] == 1.5  # null -> the NaN default
    assert parsed["s"].numpy().tolist() == [b"x", b"", b"", b"y", b"z", b""]
    micros = [None if v is None else int(v.timestamp() * 1_000_000) for v in table.column("ts").to_pylist()]
    assert parsed["ts"].numpy().tolist() == [0 if v is None else v for v in micros]
    vl = tf.sparse.to_dense(parsed["vl"]).numpy()
    assert vl.shape == (6, 3) and vl[4].tolist() == [4.0, 5.0, 6.0] and vl[2].tolist() == [0, 0, 0]


def test_tfrecord_examples_equal_tensorflows(tmp_path: Path) -> None:
    import tensorflow as tf

    table = pa.table({"x": pa.array([1.5, 2.0], pa.float32()), "n": [3, -4], "w": ["a", "b"],
                      "v": pa.array([[1, 2], []], pa.list_(pa.int64()))})
    for ours, row in zip(T.encode_batch(table), table.to_pylist(), strict=True):
        ref = tf.train.Example(features=tf.train.Features(feature={
            "x": tf.train.Feature(float_list=tf.train.FloatList(value=[row["x"]])),
            "n": tf.train.Feature(int64_list=tf.train.Int64List(value=[row["n"]])),
            "w": tf.train.Feature(bytes_list=tf.train.BytesList(value=[row["w"].encode()])),
            "v": tf.train.Feature(int64_list=tf.train.Int64List(value=row["v"])),
        }))
        assert tf.train.Example.FromString(ours) == ref
    # the framing is what TensorFlow's own writer produces
    path = tmp_path / "tf.tfrecord"
    with tf.io.TFRecordWriter(str(path)) as w:
        for rec in T.encode_batch(table):
            w.write(rec)
    assert path.read_bytes() == T.encode_records(table)


@settings(max_examples=40, deadline=None)
@given(
    ints=st.lists(st.lists(st.integers(-(2**63), 2**63 - 1), max_size=40) | st.none(), min_size=1, max_size=6),
    text=st.lists(st.text(max_size=300) | st.none(), min_size=6, max_size=6),
    floats=st.lists(st.floats(width=32, allow_nan=False), min_size=6, max_size=6),
)
def test_tfrecord_encoding_matches_tensorflow_parsing(ints: list[list[int] | None], text: list[str | None],
                                                      floats: list[float]) -> None:
    """Random varints, long strings (multi-byte lengths) and lists parse the same in TensorFlow."""
    import tensorflow as tf

    n = len(ints)
    table = pa.table({"ints": pa.array(ints, pa.list_(pa.int64())), "text": pa.array(text[:n], pa.string()),
                      "x": pa.array(floats[:n], pa.float32())})
    records = T.encode_batch(table)
    for rec, row in zip(records, table.to_pylist(), strict=True):
        feature = tf.train.Example.FromString(rec).features.feature
        assert ("ints" in feature) == (row["ints"] is not None)
        if row["ints"] is not None:
            assert list(feature["ints"].int64_list.value) == row["ints"]
        assert ("text" in feature) == (row["text"] is not None)
        if row["text"] is not None:
            assert list(feature["text"].bytes_list.value) == [row["text"].encode()]
        assert list(feature["x"].float_list.value) == [row["x"]]
    assert b"".join(records) == b"".join(r[12:-4] for r in _frames(T.encode_records(table)))
    assert T.decode_examples(records, table.schema).to_pylist() == table.to_pylist()


def _frames(blob: bytes) -> list[bytes]:
    out, pos = [], 0
    while pos < len(blob):
        length = int.from_bytes(blob[pos:pos + 8], "little")
        out.append(blob[pos:pos + 16 + length])
        pos += 16 + length
    return out


def test_tfrecord_records_and_corruption(tmp_path: Path) -> None:
    table = _table()
    blob = T.encode_records(table)
    records = list(T.read_records(io.BytesIO(blob), block_size=7))
    assert records == T.encode_batch(table)
    buf = io.BytesIO()
    T.write_records(buf, records)
    assert buf.getvalue() == blob
    assert T.decode_examples(records, table.schema).to_pylist() == table.to_pylist()

    bad = bytearray(blob)
    bad[20] ^= 0xFF  # inside the first record's data
    with pytest.raises(StorageError, match="data checksum"):
        list(T.read_records(io.BytesIO(bytes(bad)), path="p"))
    bad = bytearray(blob)
    bad[0] ^= 0x01  # the first length
    with pytest.raises(StorageError, match="length checksum"):
        list(T.read_records(io.BytesIO(bytes(bad))))
    with pytest.raises(StorageError, match="truncated"):
        list(T.read_records(io.BytesIO(blob[:-3])))

    _write(tmp_path, "tfrecords", table)
    part = _only(tmp_path)
    data = bytearray(part.read_bytes())
    data[len(data) // 2] ^= 0x55
    part.write_bytes(bytes(data))
    with pytest.raises(StorageError, match="corrupt TFRecord"):
        F.read_dataset(LOCAL, str(tmp_path), "tfrecords", table.schema)


def test_tfrecord_decodes_tensorflow_written_examples() -> None:
    import tensorflow as tf

    ex = tf.train.Example(features=tf.train.Features(feature={
        "a": tf.train.Feature(int64_list=tf.train.Int64List(value=[-7])),
        "b": tf.train.Feature(float_list=tf.train.FloatList(value=[1.0, 2.0, 3.0, 4.0])),
        "c": tf.train.Feature(bytes_list=tf.train.BytesList(value=[b"hi"])),
        "ignored": tf.train.Feature(int64_list=tf.train.Int64List(value=[1])),
    }))
    schema = pa.schema([("c", pa.string()), ("a", pa.int32()), ("b", pa.list_(pa.list_(pa.float64(), 2), 2))])
    batch = T.decode_examples([ex.SerializeToString()], schema)
    assert batch.to_pylist() == [{"c": "hi", "a": -7, "b": [[1.0, 2.0], [3.0, 4.0]]}]


def test_tfrecord_decode_paths(monkeypatch: pytest.MonkeyPatch) -> None:
    table = _table()
    table = pa.concat_tables([table.slice(2, 1), table])  # row 0 has null features
    records = T.encode_batch(table)
    mixed = T.encode_batch(table.slice(0, 3)) + T.encode_batch(table.slice(3).select(table.column_names[::-1]))
    with monkeypatch.context() as m:  # records laid out alike: decoded all at once
        m.setattr(T, "_gather_python", lambda *a: pytest.fail("parsed record by record"))
        assert T.decode_examples(records, table.schema).to_pylist() == table.to_pylist()
        sub = pa.schema([table.schema.field("s"), table.schema.field("img")])
        assert T.decode_examples(records, sub).to_pylist() == table.select(["s", "img"]).to_pylist()
    # features in another order: parsed record by record, same result
    assert T.decode_examples(mixed, table.schema).to_pylist() == table.to_pylist()
    wrong = pa.schema([pa.field("f32", pa.int64())])
    with pytest.raises(StorageError, match="wrong list kind"):
        T.decode_examples(records, wrong)
    with pytest.raises(StorageError, match="one value"):
        T.decode_examples(records, pa.schema([pa.field("img", pa.int64())]))


# ----------------------------------------------------------------------- parts, empty, cleanup


@pytest.mark.parametrize("fmt", F.FORMATS)
def test_rolls_parts_and_calls_on_part(fmt: str, tmp_path: Path) -> None:
    table = pa.table({"x": pa.array(range(10), pa.int64()), "y": pa.array([i / 4 for i in range(10)])})
    seen: list[tuple[str, int, bool]] = []

    def on_part(path: Path, info: F.PartInfo) -> None:
        seen.append((path.name, info.rows, path.exists() and path.stat().st_size == info.bytes))

    with F.PartWriter(tmp_path, table.schema, fmt, rows_per_file=3, on_part=on_part) as writer:
        writer.write(table.slice(0, 4))
        writer.write(table.to_batches()[0].slice(4))
        assert len(seen) == 3  # parts go out while writing continues
    parts = writer.close()
    suffix = F.file_suffix(fmt)
    assert [(p.name, p.rows) for p in parts] == [(f"part-r-0000{i}.{suffix}", r) for i, r in enumerate([3, 3, 3, 1])]
    assert seen == [(p.name, p.rows, True) for p in parts]
    paths = F.list_parts(LOCAL, str(tmp_path))
    assert [Path(p).name for p in paths] == [p.name for p in parts]
    batches = [b for p in paths for b in F.iter_file_batches(LOCAL, p, fmt, table.schema, batch_rows=2)]
    assert max(b.num_rows for b in batches) <= 2
    assert pa.Table.from_batches(batches).equals(table)


@pytest.mark.parametrize("fmt", F.FORMATS)
def test_empty_dataset_has_one_readable_part(fmt: str, tmp_path: Path) -> None:
    table = _table().select(COLUMNS[fmt])
    parts = F.PartWriter(tmp_path, table.schema, fmt).close()
    assert [p.rows for p in parts] == [0]
    assert _only(tmp_path).stat().st_size == parts[0].bytes
    back = F.read_dataset(LOCAL, str(tmp_path), fmt, table.schema)
    assert back.num_rows == 0 and back.schema.equals(table.schema)
    assert (tmp_path / "_SUCCESS").exists()


@pytest.mark.parametrize("fmt", ["parquet", "tfrecords", "petastorm", "hdf5", "npy", "avro"])
def test_abort_and_context_manager_cleanup(fmt: str, tmp_path: Path) -> None:
    table = pa.table({"x": pa.array(range(10), pa.int64())})
    target = tmp_path / "new"
    with pytest.raises(RuntimeError, match="boom"), F.PartWriter(target, table.schema, fmt, rows_per_file=4) as w:
        w.write(table)
        raise RuntimeError("boom")
    assert not target.exists()

    existing = tmp_path / "existing"
    existing.mkdir()
    (existing / "keep.txt").write_text("mine")
    writer = F.PartWriter(existing, table.schema, fmt, rows_per_file=4)
    writer.write(table)
    writer.abort()
    assert [p.name for p in existing.iterdir()] == ["keep.txt"]
    with pytest.raises(InvalidArgumentError, match="closed"):
        writer.write(table)


def test_write_checks_columns(tmp_path: Path) -> None:
    schema = pa.schema([("x", pa.int64()), ("y", pa.float64())])
    with F.PartWriter(tmp_path, schema, "parquet") as writer:
        with pytest.raises(SchemaMismatchError, match="'y'"):
            writer.write(pa.table({"x": [1]}))
        writer.write(pa.table({"y": [1.0], "x": pa.array([2], pa.int32()), "extra": ["z"]}))
    assert F.read_dataset(LOCAL, str(tmp_path), "parquet", schema).to_pylist() == [{"x": 2, "y": 1.0}]
    with pytest.raises(FeatureNotFoundError, match="'nope'"):
        F.read_dataset(LOCAL, str(tmp_path), "parquet", schema, columns=["nope"])
    with pytest.raises(NotFoundError):
        F.list_parts(LOCAL, str(tmp_path / "missing"))


def test_orc_and_avro_refuse_unsigned_overflow(tmp_path: Path) -> None:
    table = pa.table({"u": pa.array([2**63 + 1], pa.uint64())})
    for fmt in ("orc", "avro"):
        with pytest.raises(DataValidationError), F.PartWriter(tmp_path / fmt, table.schema, fmt) as w:
            w.write(table)
        assert not (tmp_path / fmt).exists()
    # tfrecords keeps the bits: cloudsdk reads the value back
    _write(tmp_path / "tf", "tfrecords", table)
    assert F.read_dataset(LOCAL, str(tmp_path / "tf"), "tfrecords", table.schema).equals(table)


# ----------------------------------------------------------------------- S3


@pytest.mark.parametrize("fmt", F.FORMATS)
def test_read_parts_from_s3(fmt: str, tmp_path: Path, moto_server: aws.MotoServer) -> None:
    port = moto_server.url.rsplit(":", 1)[1]
    s3 = boto3.client("s3", endpoint_url=moto_server.url, region_name=aws.REGION,
                      aws_access_key_id="testing", aws_secret_access_key="testing")
    bucket = f"formats-{fmt}"
    s3.create_bucket(Bucket=bucket)
    table = _table().select(COLUMNS[fmt])
    _write(tmp_path, fmt, table, rows_per_file=4)
    for path in tmp_path.iterdir():
        s3.upload_file(str(path), bucket, f"td/v1/{path.name}")
    fs = pafs.S3FileSystem(access_key="testing", secret_key="testing", region=aws.REGION,
                           endpoint_override=f"127.0.0.1:{port}", scheme="http")
    parts = F.list_parts(fs, f"{bucket}/td/v1")
    assert [p.rsplit("/", 1)[1] for p in parts] == [F.part_name(i, fmt) for i in range(2)]
    back = pa.Table.from_batches(
        [b for p in parts for b in F.iter_file_batches(fs, p, fmt, table.schema)], schema=table.schema)
    assert back.equals(table)
    assert F.read_dataset(fs, f"{bucket}/td/v1", fmt, table.schema, columns=["i64"]).equals(table.select(["i64"]))
    with pytest.raises(NotFoundError):
        list(F.iter_file_batches(fs, f"{bucket}/td/v1/part-r-00009.x", fmt, table.schema))
    with pytest.raises(NotFoundError):
        F.list_parts(fs, f"{bucket}/td/v2")
