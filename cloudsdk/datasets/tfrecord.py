"""TFRecord files of ``tf.train.Example`` records, written and read without TensorFlow.

A TFRecord file is a sequence of records, each framed as::

    uint64 length (little endian) | uint32 masked crc32c(length) | data | uint32 masked crc32c(data)

and each record's data here is a serialised ``tf.train.Example``: a map from the column name
to a ``Feature`` holding a ``BytesList``, ``FloatList`` or ``Int64List`` (packed). This module
writes both layers by hand, vectorised with numpy over a whole batch of rows (see
:func:`encode_records`), and reads them back into Arrow (:func:`decode_examples`).

Type mapping (the logical Arrow type of a column → the ``Feature`` kind):

* bool, all integer widths, timestamps (as int64 **microseconds** since the epoch, UTC),
  dates (as int64 **days** since the epoch) → ``int64_list``. ``uint64`` values keep
  their bits: values above 2**63-1 appear negative to TensorFlow.
* float16, float32, float64 → ``float_list`` (TensorFlow has no float64 feature type: float64
  values are **narrowed to float32**).
* string, binary (and dictionary-encoded strings) → ``bytes_list`` (strings as UTF-8).
* fixed-size lists, nested for several dimensions → the flattened values; the shape is in
  :func:`tf_record_schema` (e.g. ``[28, 28]``). A variable-length list (possibly of
  fixed-size lists) → the flattened values, shape ``[None, ...]``.

Nulls: a null value is written as an **absent feature**. :func:`tf_record_schema` gives a
nullable fixed-shape column a ``default`` (NaN for floats, 0 for integers, ``""`` for
strings), so ``tf.io.parse_example`` fills it in; a variable-length column is a
``tf.io.VarLenFeature`` and a null reads as an empty list. cloudsdk's own reader
(:func:`decode_examples`) gives null back. Nulls *inside* an array cannot be written (NaN for
floats).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator, Sequence
from typing import IO, Any

import google_crc32c
import numpy as np
import pyarrow as pa

from cloudsdk.datasets._arrow_compat import dictionary_array as dictionary_array
from cloudsdk.datasets._arrow_compat import float_to_half as float_to_half
from cloudsdk.datasets._arrow_compat import half_to_float32 as half_to_float32
from cloudsdk.datasets._example_decode import (
    _decode_fast,
    _Fallback,
    _finish_column,
    _gather_python,
    _parse_example,
)
from cloudsdk.datasets._example_encode import _assemble, _chunks, _examples, _Fixed
from cloudsdk.datasets._feature_spec import _specs
from cloudsdk.errors import StorageError

__all__ = [
    "decode_examples",
    "encode_batch",
    "encode_records",
    "iter_records",
    "masked_crc32c",
    "read_records",
    "tf_record_schema",
    "to_tf_feature_spec",
    "write_records",
]

_MASK_DELTA = 0xA282EAD8


def masked_crc32c(data: Any) -> int:
    """The masked CRC-32C of ``data`` that TFRecord framing stores."""
    crc = google_crc32c.value(data)
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


def _mask(crc: np.ndarray) -> np.ndarray:
    crc = crc.astype(np.uint64)
    return ((((crc >> np.uint64(15)) | (crc << np.uint64(17))) + np.uint64(_MASK_DELTA))
            & np.uint64(0xFFFFFFFF)).astype("<u4")


# --------------------------------------------------------------------------- schema


def check_schema(schema: pa.Schema) -> None:
    """Raise :class:`SchemaMismatchError` for a column tfrecords cannot hold."""
    _specs(schema)


def tf_record_schema(schema: pa.Schema) -> dict[str, dict[str, Any]]:
    """A JSON-able description of each column's Feature, the basis of the TF feature spec.

    Args:
        schema: the logical Arrow schema of the dataset.

    Returns:
        ``{column: {"kind": "fixed"|"var", "dtype": "int64"|"float32"|"string",
        "shape": [...], "arrow_type": str, "default": ...}}``. ``shape`` is ``[]`` for a
        scalar, ``[28, 28]`` for a fixed array, and starts with ``None`` for a variable
        list. ``default`` (only for nullable fixed columns) is the value TensorFlow gives a
        null: ``"nan"`` for floats, ``0`` for integers, ``""`` for strings.

    Raises:
        SchemaMismatchError: a column tfrecords cannot hold (structs, ragged nested lists,
            decimals).

    Example:
        >>> import pyarrow as pa
        >>> tf_record_schema(pa.schema([("x", pa.float64())]))["x"]["dtype"]
        'float32'
    """
    out: dict[str, dict[str, Any]] = {}
    for s in _specs(schema):
        entry: dict[str, Any] = {
            "kind": "fixed" if s.fixed else "var",
            "dtype": s.dtype,
            "shape": list(s.shape),
            "arrow_type": str(s.arrow_type),
        }
        if s.fixed and s.nullable:
            entry["default"] = {"float32": "nan", "int64": 0, "string": ""}[s.dtype]
        out[s.name] = entry
    return out


def to_tf_feature_spec(json_schema: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Turn :func:`tf_record_schema`'s description into a ``tf.io.parse_example`` spec.

    Fixed columns become ``tf.io.FixedLenFeature(shape, dtype, default_value)``, variable
    ones ``tf.io.VarLenFeature(dtype)`` (a ``SparseTensor`` of the flattened values).

    Raises:
        ImportError: TensorFlow is not installed (``pip install 'cloudsdk[tensorflow]'``).
    """
    try:
        import tensorflow as tf
    except ImportError as exc:  # pragma: no cover - TF is installed in the test env
        raise ImportError(
            "reading tfrecords with TensorFlow needs TensorFlow: pip install 'cloudsdk[tensorflow]'"
        ) from exc
    dtypes = {"int64": tf.int64, "float32": tf.float32, "string": tf.string}
    spec: dict[str, Any] = {}
    for name, entry in json_schema.items():
        dtype = dtypes[entry["dtype"]]
        if entry["kind"] == "var":
            spec[name] = tf.io.VarLenFeature(dtype)
            continue
        shape = [int(d) for d in entry["shape"]]
        default = None
        if "default" in entry:
            value = entry["default"]
            fill: Any
            np_dtype: Any
            if entry["dtype"] == "float32":
                fill, np_dtype = np.float32(float(value)), np.float32
            elif entry["dtype"] == "int64":
                fill, np_dtype = np.int64(int(value)), np.int64
            else:
                fill, np_dtype = str(value).encode(), object
            default = np.full(shape, fill, dtype=np_dtype) if shape else fill
        spec[name] = tf.io.FixedLenFeature(shape, dtype, default_value=default)
    return spec


# --------------------------------------------------------------------------- records


def encode_batch(batch: pa.RecordBatch | pa.Table, schema: pa.Schema | None = None) -> list[bytes]:
    """Serialise each row of ``batch`` as a ``tf.train.Example``.

    Args:
        batch: the rows.
        schema: the logical schema (default: the batch's own); its columns are written.

    Returns:
        One serialised Example per row (``tf.train.Example.FromString`` parses each).

    Raises:
        SchemaMismatchError: a column tfrecords cannot hold.
        DataValidationError: nulls inside arrays (other than float arrays).
    """
    specs = _specs(schema if schema is not None else batch.schema)
    out: list[bytes] = []
    for chunk in _chunks(batch):
        pieces, _ = _examples(chunk, specs)
        rows = _assemble(pieces, chunk.num_rows)
        data = rows.flat.tobytes()
        ends = np.cumsum(rows.lens).tolist()
        start = 0
        for end in ends:
            out.append(data[start:end])
            start = end
    return out


def iter_records(batch: pa.RecordBatch | pa.Table, schema: pa.Schema | None = None) -> Iterator[np.ndarray]:
    """The TFRecord file bytes of ``batch``'s rows, a chunk of rows at a time (uint8 arrays).

    What :func:`encode_records` joins; a writer can hand each chunk to ``file.write``.
    """
    specs = _specs(schema if schema is not None else batch.schema)
    for chunk in _chunks(batch):
        n = chunk.num_rows
        pieces, example_len = _examples(chunk, specs)
        lengths = example_len.astype("<u8")
        uniq, inverse = np.unique(lengths, return_inverse=True)
        len_crcs = np.array([masked_crc32c(u.tobytes()) for u in uniq], dtype="<u4")[inverse]
        framed = _assemble([
            _Fixed(lengths.view(np.uint8).reshape(n, 8)),
            _Fixed(len_crcs.reshape(-1).view(np.uint8).reshape(n, 4)),
            *pieces,
            _Fixed(np.zeros((1, 4), dtype=np.uint8)),
        ], n)
        flat = framed.flat
        ends = np.cumsum(framed.lens)
        starts = ends - framed.lens + 12
        crc_at = ends - 4
        value = google_crc32c.value
        crcs = np.fromiter((value(flat[s:e]) for s, e in zip(starts.tolist(), crc_at.tolist(), strict=True)),
                           dtype=np.uint64, count=n)
        masked = _mask(crcs).view(np.uint8).reshape(n, 4)
        flat[crc_at[:, None] + np.arange(4)] = masked
        yield flat


def encode_records(batch: pa.RecordBatch | pa.Table, schema: pa.Schema | None = None) -> bytes:
    """The TFRecord file bytes (framing included) of ``batch``'s rows as ``tf.train.Example``.

    The fast bulk form of :func:`encode_batch` + :func:`write_records`: append the result to
    a ``.tfrecord`` file. Same arguments and errors as :func:`encode_batch`.
    """
    return b"".join(chunk.tobytes() for chunk in iter_records(batch, schema))


def write_records(stream: IO[bytes] | Any, records: Iterable[bytes]) -> int:
    """Write ``records`` (already serialised) to ``stream`` with TFRecord framing.

    Returns:
        The number of bytes written.
    """
    written = 0
    for data in records:
        header = struct.pack("<Q", len(data))
        frame = header + struct.pack("<I", masked_crc32c(header)) + data + struct.pack(
            "<I", masked_crc32c(data))
        stream.write(frame)
        written += len(frame)
    return written


def read_records(stream: IO[bytes] | Any, *, verify: bool = True, path: str = "",
                 block_size: int = 8 << 20) -> Iterator[bytes]:
    """The records of a TFRecord stream, checking each length's and data's CRC.

    Args:
        stream: a binary file object (``read(n)``), e.g. ``pyarrow.fs`` input stream.
        verify: check the data CRCs (the length CRCs are always checked).
        path: the file's name, for error messages.
        block_size: bytes read at a time.

    Raises:
        StorageError: a truncated file or a CRC mismatch.
    """
    buf = b""
    pos = 0
    offset = 0  # file offset of buf[0]
    eof = False

    def fill(need: int) -> bool:
        nonlocal buf, pos, offset, eof
        while len(buf) - pos < need and not eof:
            chunk = stream.read(max(block_size, need))
            if not chunk:
                eof = True
                break
            offset += pos
            buf = buf[pos:] + bytes(chunk)
            pos = 0
        return len(buf) - pos >= need

    where = f" in {path}" if path else ""
    while True:
        if not fill(12):
            if len(buf) - pos:
                raise StorageError(f"truncated TFRecord header at byte {offset + pos}{where}", path=path)
            return
        (length,) = struct.unpack_from("<Q", buf, pos)
        (crc,) = struct.unpack_from("<I", buf, pos + 8)
        if masked_crc32c(buf[pos:pos + 8]) != crc:
            raise StorageError(f"corrupt TFRecord: length checksum mismatch at byte {offset + pos}{where}",
                               path=path)
        if not fill(12 + length + 4):
            raise StorageError(f"truncated TFRecord at byte {offset + pos}{where}", path=path)
        data = buf[pos + 12:pos + 12 + length]
        if verify:
            (crc,) = struct.unpack_from("<I", buf, pos + 12 + length)
            if masked_crc32c(data) != crc:
                raise StorageError(f"corrupt TFRecord: data checksum mismatch at byte {offset + pos}{where}",
                                   path=path)
        pos += 16 + length
        yield data


def decode_examples(records: Sequence[bytes], schema: pa.Schema, *, path: str = "") -> pa.RecordBatch:
    """Parse serialised ``tf.train.Example`` records into Arrow, without TensorFlow.

    Args:
        records: the serialised Examples (e.g. from :func:`read_records`).
        schema: the logical schema of the columns to read; other features are skipped.
        path: the file's name, for error messages.

    Returns:
        A record batch of ``schema``: an absent feature reads as null.

    Raises:
        StorageError: a record that does not match the schema (wrong kind or value count).
    """
    specs = _specs(schema)
    where = f" in {path}" if path else ""
    if records:
        try:
            gathered = _decode_fast(records, specs)
        except (_Fallback, IndexError):
            pass
        else:
            arrays = [_finish_column(s, *g, where) for s, g in zip(specs, gathered, strict=True)]
            return pa.RecordBatch.from_arrays(arrays, schema=schema)
    wanted = {s.name.encode(): i for i, s in enumerate(specs)}
    found: list[list[Any]] = [[None] * len(records) for _ in specs]
    row: list[Any] = [None] * len(specs)
    for r, rec in enumerate(records):
        for i in range(len(row)):
            row[i] = None
        try:
            _parse_example(rec, wanted, row)
        except (IndexError, ValueError) as exc:
            raise StorageError(f"record {r}{where} is not a valid tf.train.Example: {exc}",
                               path=path) from exc
        for i, value in enumerate(row):
            found[i][r] = value
    arrays = [_finish_column(s, *_gather_python(s, f, where), where) for s, f in zip(specs, found, strict=True)]
    return pa.RecordBatch.from_arrays(arrays, schema=schema)
