"""Writing and reading one part file in each training-dataset format.

A :class:`_Sink` writes one part file (:func:`_open_sink` opens the format's); the ``_read_*``
functions of :data:`_READERS` read one back as record batches of the format's storage types,
which :func:`cloudsdk.datasets.formats.iter_file_batches` casts to the logical schema.
fastavro, h5py and the petastorm support are imported when a file of theirs is written or read.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.fs as pafs

from cloudsdk.datasets import tfrecord as tfr
from cloudsdk.datasets._format_types import (
    _avro_read_type,
    _dims,
    _has_struct,
    _is_binary,
    _is_listlike,
    _is_string,
    _is_time,
    _restore,
    _storage_type,
    _to_storage,
    _write_schema,
)
from cloudsdk.errors import DataValidationError, SchemaMismatchError, StorageError

# ---------------------------------------------------------------------- writers of one part

_ROW_GROUP_ROWS = 131_072
_ROW_GROUP_BYTES = 64 << 20


class _Sink:
    """Writes one part file."""

    def __init__(self, path: Path, schema: pa.Schema) -> None:
        self.path = path
        self.schema = _write_schema(schema)

    def write(self, batch: pa.RecordBatch) -> None:
        raise NotImplementedError

    def close(self) -> int:
        """Finish the file; returns its number of row groups."""
        raise NotImplementedError

    def discard(self) -> None:
        """Close without finishing (the file is removed by the caller)."""
        self.close()


class _ParquetSink(_Sink):
    def __init__(self, path: Path, schema: pa.Schema, petastorm: bool = False) -> None:
        import pyarrow.parquet as pq

        super().__init__(path, schema)
        self._pz: Any = None
        if petastorm:
            from cloudsdk.datasets import petastorm as pz

            self._pz = pz
            self.storage = pz.storage_schema(self.schema)
        else:
            self.storage = pa.schema([pa.field(f.name, _storage_type(f.type, "parquet"), f.nullable)
                                      for f in self.schema])
        self._writer = pq.ParquetWriter(str(path), self.storage)
        self._pending: list[pa.RecordBatch] = []
        self._rows = 0
        self._bytes = 0

    def write(self, batch: pa.RecordBatch) -> None:
        if self._pz is not None:
            batches = [self._pz.encode_batch(batch, self.schema)]
        else:
            batches = _to_storage(batch, "parquet").to_batches()
        for b in batches:
            self._pending.append(b)
            self._rows += b.num_rows
            self._bytes += b.nbytes
        group = self._group_rows()
        if self._rows >= group:
            self._flush(whole=False)

    def _group_rows(self) -> int:
        per_row = max(1, self._bytes // max(self._rows, 1))
        return max(1024, min(_ROW_GROUP_ROWS, _ROW_GROUP_BYTES // per_row))

    def _flush(self, whole: bool) -> None:
        if not self._pending:
            return
        table = pa.Table.from_batches(self._pending, schema=self.storage)
        group = self._group_rows()
        keep = 0 if whole else table.num_rows % group
        if table.num_rows - keep:
            self._writer.write_table(table.slice(0, table.num_rows - keep), row_group_size=group)
        rest = table.slice(table.num_rows - keep).combine_chunks().to_batches() if keep else []
        self._pending = list(rest)
        self._rows = keep
        self._bytes = sum(b.nbytes for b in rest)

    def close(self) -> int:
        import pyarrow.parquet as pq

        self._flush(whole=True)
        self._writer.close()
        return int(pq.ParquetFile(str(self.path)).num_row_groups)

    def discard(self) -> None:
        self._pending = []
        self._writer.close()


class _OrcSink(_Sink):
    def __init__(self, path: Path, schema: pa.Schema) -> None:
        import pyarrow.orc as orc

        super().__init__(path, schema)
        self._writer = orc.ORCWriter(str(path))
        self._wrote = False

    def write(self, batch: pa.RecordBatch) -> None:
        table = _to_storage(batch, "orc")
        for i, field in enumerate(table.schema):
            col = table.column(i)
            if _has_struct(field.type) and any(c.offset for c in col.chunks):
                # pyarrow's ORC writer misplaces the rows of a sliced struct array: copy it
                fresh = [c.take(pa.array(np.arange(len(c), dtype=np.int64))) for c in col.chunks]
                table = table.set_column(i, field, pa.chunked_array(fresh, type=field.type))
        self._writer.write(table)
        self._wrote = True

    def close(self) -> int:
        import pyarrow.orc as orc

        if not self._wrote:
            self._writer.write(_to_storage(self.schema.empty_table(), "orc"))
        self._writer.close()
        return int(orc.ORCFile(str(self.path)).nstripes)


class _CsvSink(_Sink):
    def __init__(self, path: Path, schema: pa.Schema, delimiter: str) -> None:
        import pyarrow.csv as pacsv

        super().__init__(path, schema)
        storage = pa.schema([pa.field(f.name, _storage_type(f.type, "csv"), f.nullable) for f in self.schema])
        self._writer = pacsv.CSVWriter(str(path), storage, write_options=pacsv.WriteOptions(delimiter=delimiter))

    def write(self, batch: pa.RecordBatch) -> None:
        self._writer.write(_to_storage(batch, "csv"))

    def close(self) -> int:
        self._writer.close()
        return 1


def _avro_type(t: pa.DataType, name: str, nullable: bool) -> Any:
    if pa.types.is_dictionary(t):
        return _avro_type(t.value_type, name, nullable)
    out: Any
    if _is_listlike(t):
        out = {"type": "array", "items": _avro_type(t.value_type, name, t.value_field.nullable)}
    elif pa.types.is_boolean(t):
        out = "boolean"
    elif pa.types.is_integer(t):
        out = "int" if _storage_type(t, "avro").equals(pa.int32()) else "long"
    elif pa.types.is_float64(t):
        out = "double"
    elif pa.types.is_floating(t):
        out = "float"
    elif _is_string(t):
        out = "string"
    elif _is_binary(t):
        out = "bytes"
    elif pa.types.is_timestamp(t):
        kind = "timestamp-micros" if t.tz else "local-timestamp-micros"
        out = {"type": "long", "logicalType": kind}
    elif pa.types.is_date(t):
        out = {"type": "int", "logicalType": "date"}
    elif pa.types.is_decimal(t):
        out = {"type": "bytes", "logicalType": "decimal", "precision": t.precision, "scale": t.scale}
    else:
        raise SchemaMismatchError(f"avro cannot hold column {name!r} of type {t}", column=name)
    return ["null", out] if nullable else out


def _avro_schema(schema: pa.Schema) -> dict[str, Any]:
    """The Avro record schema of ``schema``."""
    fields = list(schema)
    return {
        "type": "record",
        "name": "training_dataset",
        "namespace": "cloudsdk",
        "fields": [{"name": f.name, "type": _avro_type(f.type, f.name, f.nullable)} for f in fields],
    }


class _AvroSink(_Sink):
    def __init__(self, path: Path, schema: pa.Schema) -> None:
        import fastavro
        from fastavro.write import Writer

        super().__init__(path, schema)
        self._file = open(path, "wb")  # noqa: SIM115 - closed in close()
        parsed = fastavro.parse_schema(_avro_schema(self.schema))
        self._writer = Writer(self._file, parsed, codec="deflate")

    def write(self, batch: pa.RecordBatch) -> None:
        write = self._writer.write
        for record in _to_storage(batch, "avro").to_pylist():
            write(record)

    def close(self) -> int:
        try:
            self._writer.flush()
        finally:
            self._file.close()
        return 1

    def discard(self) -> None:
        self._file.close()


class _TfRecordSink(_Sink):
    def __init__(self, path: Path, schema: pa.Schema) -> None:
        super().__init__(path, schema)
        self._file = open(path, "wb")  # noqa: SIM115 - closed in close()

    def write(self, batch: pa.RecordBatch) -> None:
        for chunk in tfr.iter_records(batch, self.schema):
            self._file.write(chunk.data)

    def close(self) -> int:
        self._file.close()
        return 1


def _leaf_values(arr: pa.Array, dims: list[int | None]) -> pa.Array:
    """The leaf values of a fixed-shape array column, row after row."""
    n = len(arr)
    size = int(np.prod([d for d in dims if d is not None], dtype=np.int64))
    base, level = 0, arr
    while pa.types.is_fixed_size_list(level.type):
        base = (base + level.offset) * level.type.list_size
        level = level.values
    return level.slice(base, n * size)


def _numpy_dtype(t: pa.DataType) -> np.dtype[Any]:
    if pa.types.is_timestamp(t):
        return np.dtype(f"<M8[{t.unit}]")
    if pa.types.is_date32(t):
        return np.dtype("<M8[D]")
    if pa.types.is_date64(t):
        return np.dtype("<M8[ms]")
    return np.dtype(t.to_pandas_dtype()).newbyteorder("<")


def _numpy_values(arr: pa.Array, name: str, fmt: str) -> np.ndarray:
    """A column as numpy values; nulls only where numpy has a missing value (NaN, NaT)."""
    t = arr.type
    if pa.types.is_dictionary(t):
        arr = arr.dictionary_decode()
        t = arr.type
    if arr.null_count and not (pa.types.is_floating(t) or _is_time(t)):
        raise DataValidationError(
            f"column {name!r} has nulls and {fmt} cannot hold a null {t} (only NaN / NaT for "
            "floats and timestamps): fill them first or use parquet", column=name)
    if pa.types.is_date64(t):
        arr = arr.cast(pa.timestamp("ms"))
    elif pa.types.is_date32(t):  # int64's minimum is NaT
        days = arr.cast(pa.int32()).cast(pa.int64()).fill_null(np.iinfo(np.int64).min)
        return np.asarray(days.to_numpy(zero_copy_only=False)).view("<M8[D]")
    if _is_string(t):
        return np.asarray(arr.to_pylist(), dtype=object)
    out = arr.to_numpy(zero_copy_only=False)
    if pa.types.is_timestamp(t):
        out = out.astype(f"M8[{t.unit}]")
    return out


class _NpySink(_Sink):
    """Buffers the part's batches and writes one structured array at close."""

    def __init__(self, path: Path, schema: pa.Schema) -> None:
        super().__init__(path, schema)
        self._batches: list[pa.RecordBatch] = []

    def write(self, batch: pa.RecordBatch) -> None:
        for f in self.schema:
            dims, _ = _dims(f.type)
            col = batch.column(f.name)
            if dims and col.null_count:
                raise DataValidationError(f"column {f.name!r} has null arrays; npy cannot hold them",
                                          column=f.name)
            if not dims:
                _numpy_values(col.slice(0, 0) if not col.null_count else col, f.name, "npy")
        self._batches.append(batch)

    def close(self) -> int:
        table = pa.Table.from_batches(self._batches, schema=self.schema).combine_chunks()
        n = table.num_rows
        fields: list[tuple[Any, ...]] = []
        values: dict[str, np.ndarray] = {}
        for f in self.schema:
            col = _restore(table.column(f.name), f.type)
            dims, leaf = _dims(f.type)
            if dims:
                shape = tuple(int(d) for d in dims if d is not None)
                data = _numpy_values(_leaf_values(col, dims), f.name, "npy").reshape((n, *shape))
                fields.append((f.name, _numpy_dtype(leaf), shape))
            else:
                data = _numpy_values(col, f.name, "npy")
                if _is_string(f.type) or (pa.types.is_dictionary(f.type) and _is_string(f.type.value_type)):
                    width = max([len(s) for s in data] or [1]) or 1
                    fields.append((f.name, f"<U{width}"))
                else:
                    fields.append((f.name, _numpy_dtype(col.type)))
            values[f.name] = data
        out = np.zeros(n, dtype=np.dtype(fields))
        for name, data in values.items():
            out[name] = data
        np.save(str(self.path), out, allow_pickle=False)
        self._batches = []
        return 1

    def discard(self) -> None:
        self._batches = []


def _npy_column(data: np.ndarray) -> pa.Array:
    """A field of a structured npy array as Arrow (NaN/NaT as null; subarrays as fixed lists)."""
    n = data.shape[0]
    if data.ndim == 1:
        if data.dtype.kind in "fM":
            return pa.array(data, from_pandas=True)
        return pa.array(data)
    flat = data.reshape(-1)
    values: pa.Array = pa.array(flat)
    for k in reversed(data.shape[1:]):
        values = pa.FixedSizeListArray.from_arrays(values, k)
    assert len(values) == n
    return values


def _import_h5py() -> Any:
    try:
        import h5py
    except ImportError as exc:
        raise ImportError("the hdf5 format needs h5py: pip install 'cloudsdk[hdf5]'") from exc
    return h5py


class _Hdf5Sink(_Sink):
    """One HDF5 dataset per column (rows along the first axis); ``/_nulls/<column>`` masks."""

    def __init__(self, path: Path, schema: pa.Schema) -> None:
        super().__init__(path, schema)
        self._h5py = h5py = _import_h5py()
        self._file = h5py.File(str(path), "w")
        self._rows = 0
        self._file.attrs["cloudsdk_format"] = "hdf5 training dataset: one dataset per column"
        for f in self.schema:
            dims, leaf = _dims(f.type)
            if dims == [None]:
                dtype = h5py.vlen_dtype(_numpy_dtype(leaf))
                shape: tuple[int, ...] = ()
            elif _is_string(leaf):
                dtype, shape = h5py.string_dtype("utf-8"), ()
            else:
                dtype = self._dtype(leaf)
                shape = tuple(int(d) for d in dims if d is not None)
            ds = self._file.create_dataset(f.name, shape=(0, *shape), maxshape=(None, *shape),
                                           dtype=dtype, chunks=True)
            ds.attrs["arrow_type"] = str(f.type)

    def _dtype(self, t: pa.DataType) -> np.dtype[Any]:
        if pa.types.is_timestamp(t):
            return np.dtype("<i8")  # microseconds since the epoch
        if pa.types.is_date(t):
            return np.dtype("<i4")  # days since the epoch
        return _numpy_dtype(t)

    def write(self, batch: pa.RecordBatch) -> None:
        n = batch.num_rows
        start = self._rows
        for f in self.schema:
            col = batch.column(f.name)
            if pa.types.is_dictionary(col.type):
                col = col.dictionary_decode()
            dims, leaf = _dims(f.type)
            valid = None
            if col.null_count:
                valid = np.asarray(col.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
                self._null_mask(f.name, start, n)[start:start + n] = ~valid
            ds = self._file[f.name]
            ds.resize(start + n, axis=0)
            if dims == [None]:  # h5py takes variable-length rows one at a time
                dtype = _numpy_dtype(leaf)
                for i, v in enumerate(_restore(col, pa.list_(leaf)).to_pylist()):
                    ds[start + i] = np.asarray(v if v is not None else [], dtype=dtype)
                continue
            elif dims:
                filled = col if valid is None else col.take(pa.array(np.where(valid, np.arange(n), 0)))
                shape = tuple(int(d) for d in dims if d is not None)
                data = _leaf_values(filled, dims).to_numpy(zero_copy_only=False).reshape((n, *shape))
                if valid is not None:
                    data = np.where(valid.reshape((n,) + (1,) * len(shape)), data, np.zeros((), data.dtype))
            elif _is_string(leaf):
                data = np.asarray(["" if v is None else v for v in col.to_pylist()], dtype=object)
            else:
                if pa.types.is_timestamp(leaf):
                    col = col.cast(pa.timestamp("us", tz=leaf.tz)).cast(pa.int64())
                elif pa.types.is_date(leaf):
                    col = col.cast(pa.date32()).cast(pa.int32())
                elif pa.types.is_float16(leaf):
                    col = tfr.half_to_float32(col)
                if valid is not None:
                    col = col.fill_null(False if pa.types.is_boolean(leaf) else 0)
                data = col.to_numpy(zero_copy_only=False)
            ds[start:start + n] = data
        self._rows += n

    def _null_mask(self, name: str, start: int, n: int) -> Any:
        group = self._file.require_group("_nulls")
        if name not in group:
            group.create_dataset(name, shape=(start,), maxshape=(None,), dtype="?", chunks=True,
                                 fillvalue=False)
        ds = group[name]
        ds.resize(start + n, axis=0)
        return ds

    def close(self) -> int:
        if "_nulls" in self._file:
            for ds in self._file["_nulls"].values():
                ds.resize(self._rows, axis=0)
        self._file.close()
        return 1

    def discard(self) -> None:
        self._file.close()


def _hdf5_column(f: Any, field: pa.Field) -> pa.Array:
    if field.name not in f:
        raise StorageError(f"the hdf5 file has no dataset {field.name!r}")
    ds = f[field.name]
    dims, leaf = _dims(field.type)
    n = ds.shape[0]
    arr: pa.Array
    if dims == [None]:
        rows = ds[...]
        lens = np.fromiter((len(r) for r in rows), dtype=np.int64, count=n)
        offsets = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(lens, out=offsets[1:])
        flat = np.concatenate(list(rows)) if n else np.empty(0, dtype=_numpy_dtype(leaf))
        arr = pa.LargeListArray.from_arrays(pa.array(offsets, type=pa.int64()), pa.array(flat))
    elif _is_string(leaf) and not dims:
        arr = pa.array(list(ds.asstr()[...]), type=pa.string())
    else:
        arr = _npy_column(ds[...])
    if "_nulls" in f and field.name in f["_nulls"]:
        mask = np.asarray(f["_nulls"][field.name][...], dtype=bool)
        if mask.any():
            arr = arr.take(pa.array(np.arange(n), type=pa.int64(), mask=mask))
    return arr


def _open_sink(path: Path, schema: pa.Schema, fmt: str) -> _Sink:
    if fmt in ("parquet", "petastorm"):
        return _ParquetSink(path, schema, petastorm=fmt == "petastorm")
    if fmt == "orc":
        return _OrcSink(path, schema)
    if fmt in ("csv", "tsv"):
        return _CsvSink(path, schema, "\t" if fmt == "tsv" else ",")
    if fmt == "avro":
        return _AvroSink(path, schema)
    if fmt == "tfrecords":
        return _TfRecordSink(path, schema)
    if fmt == "npy":
        return _NpySink(path, schema)
    return _Hdf5Sink(path, schema)


# ---------------------------------------------------------------------- readers of one part


def _stream_bytes(filesystem: pafs.FileSystem, path: str) -> bytes:
    with filesystem.open_input_stream(path) as f:
        data: bytes = f.read()
        return data


def _read_parquet(filesystem: pafs.FileSystem, path: str, schema: pa.Schema, names: list[str],
                  batch_rows: int) -> Iterator[pa.RecordBatch]:
    import pyarrow.parquet as pq

    with filesystem.open_input_file(path) as f:
        pf = pq.ParquetFile(f, pre_buffer=True)
        yield from pf.iter_batches(batch_size=batch_rows, columns=names, use_threads=True)


def _read_petastorm(filesystem: pafs.FileSystem, path: str, schema: pa.Schema, names: list[str],
                    batch_rows: int) -> Iterator[pa.RecordBatch]:
    from cloudsdk.datasets import petastorm as pz

    sub = pa.schema([schema.field(n) for n in names])
    for batch in _read_parquet(filesystem, path, schema, names, batch_rows):
        yield pz.decode_batch(batch, sub)


def _read_orc(filesystem: pafs.FileSystem, path: str, schema: pa.Schema, names: list[str],
              batch_rows: int) -> Iterator[pa.RecordBatch]:
    import pyarrow.orc as orc

    with filesystem.open_input_file(path) as f:
        of = orc.ORCFile(f)
        for i in range(of.nstripes):
            yield of.read_stripe(i, columns=names)


def _read_csv(filesystem: pafs.FileSystem, path: str, schema: pa.Schema, names: list[str],
              batch_rows: int, delimiter: str = ",") -> Iterator[pa.RecordBatch]:
    import pyarrow.csv as pacsv

    types = {f.name: _storage_type(f.type, "csv") for f in schema}
    with filesystem.open_input_stream(path) as f:
        reader = pacsv.open_csv(
            f, read_options=pacsv.ReadOptions(block_size=8 << 20),
            parse_options=pacsv.ParseOptions(delimiter=delimiter),
            convert_options=pacsv.ConvertOptions(column_types=types, include_columns=names,
                                                 strings_can_be_null=True,
                                                 quoted_strings_can_be_null=False))
        yield from reader


def _read_tsv(filesystem: pafs.FileSystem, path: str, schema: pa.Schema, names: list[str],
              batch_rows: int) -> Iterator[pa.RecordBatch]:
    return _read_csv(filesystem, path, schema, names, batch_rows, delimiter="\t")


def _read_tfrecords(filesystem: pafs.FileSystem, path: str, schema: pa.Schema, names: list[str],
                    batch_rows: int) -> Iterator[pa.RecordBatch]:
    sub = pa.schema([schema.field(n) for n in names])
    with filesystem.open_input_stream(path) as f:
        chunk: list[bytes] = []
        for record in tfr.read_records(f, path=path):
            chunk.append(record)
            if len(chunk) >= batch_rows:
                yield tfr.decode_examples(chunk, sub, path=path)
                chunk = []
        if chunk:
            yield tfr.decode_examples(chunk, sub, path=path)


def _read_avro(filesystem: pafs.FileSystem, path: str, schema: pa.Schema, names: list[str],
               batch_rows: int) -> Iterator[pa.RecordBatch]:
    import fastavro

    storage = pa.schema([pa.field(n, _avro_read_type(schema.field(n).type)) for n in names])
    with filesystem.open_input_stream(path) as f:
        reader = fastavro.reader(f)
        rows: list[Any] = []
        for record in reader:
            rows.append(record)
            if len(rows) >= batch_rows:
                yield pa.RecordBatch.from_pylist(rows, schema=storage)
                rows = []
        if rows:
            yield pa.RecordBatch.from_pylist(rows, schema=storage)


def _read_npy(filesystem: pafs.FileSystem, path: str, schema: pa.Schema, names: list[str],
              batch_rows: int) -> Iterator[pa.RecordBatch]:
    arr = np.load(io.BytesIO(_stream_bytes(filesystem, path)), allow_pickle=False)
    if arr.dtype.names is None or any(n not in arr.dtype.names for n in names):
        raise StorageError(f"{path!r} is not a structured array with the dataset's columns", path=path)
    for start in range(0, len(arr), batch_rows):
        part = arr[start:start + batch_rows]
        yield pa.RecordBatch.from_arrays([_npy_column(part[n]) for n in names], names=names)


def _read_hdf5(filesystem: pafs.FileSystem, path: str, schema: pa.Schema, names: list[str],
               batch_rows: int) -> Iterator[pa.RecordBatch]:
    h5py = _import_h5py()
    with h5py.File(io.BytesIO(_stream_bytes(filesystem, path)), "r") as f:
        columns = [_hdf5_column(f, schema.field(n)) for n in names]
    yield pa.RecordBatch.from_arrays(columns, names=names)


_READERS: dict[str, Callable[[pafs.FileSystem, str, pa.Schema, list[str], int], Iterator[pa.RecordBatch]]] = {
    "parquet": _read_parquet,
    "petastorm": _read_petastorm,
    "orc": _read_orc,
    "csv": _read_csv,
    "tsv": _read_tsv,
    "tfrecords": _read_tfrecords,
    "avro": _read_avro,
    "npy": _read_npy,
    "hdf5": _read_hdf5,
}
