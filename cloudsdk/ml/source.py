"""Where the ML loaders read from: sources of record batches, split into sharding units.

A :class:`DatasetSource` describes a dataset by its logical Arrow schema and a list of
:class:`Unit` — the pieces that the loaders hand out to distributed ranks, DataLoader
workers and parallel readers (a Parquet row group, or a whole file for formats without
row groups). :class:`FileSource` implements it over files on a ``pyarrow.fs`` filesystem:
local disk or S3, without TensorFlow or tensorflow-io.

The framework-neutral machinery of the loaders lives here too (pyarrow and numpy only):
choosing the columns (:func:`select_columns`), ordering and sharding the units of an epoch
(:func:`epoch_order`, :func:`split_units`), turning Arrow batches into numpy arrays
(:func:`unit_chunks`) and cutting them into batches (:func:`rebatch`).
"""

from __future__ import annotations

import logging
import math
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from cloudsdk.errors import (
    DataValidationError,
    InvalidArgumentError,
    NotFoundError,
    SchemaMismatchError,
    StorageError,
    UnsupportedError,
)

__all__ = [
    "FEATURES_KEY",
    "FORMATS",
    "Chunk",
    "ColumnSpec",
    "DatasetSource",
    "FileSource",
    "Selection",
    "Unit",
    "epoch_order",
    "rebatch",
    "select_columns",
    "split_units",
    "unit_chunks",
]

logger = logging.getLogger(__name__)

#: The training-dataset formats a :class:`FileSource` reads (``tfrecord`` is an alias).
FORMATS = ("parquet", "petastorm", "tfrecords", "csv", "tsv", "avro", "orc", "npy", "hdf5")
_ROW_GROUP_FORMATS = ("parquet", "petastorm")
#: The key under which a chunk holds the stacked float32 feature matrix.
FEATURES_KEY = "__features__"
_CHUNK_ROWS = 65_536
_FOOTER_THREADS = 8
_OPEN_FILES = 16


@dataclass(frozen=True)
class Unit:
    """One sharding unit: a Parquet row group, or a whole file for other formats.

    Attributes:
        path: The file, as its filesystem names it (``bucket/key`` on S3).
        row_group: The row group's index in the file, or ``None`` for the whole file.
        rows: Its number of rows, or ``-1`` where it is not known without reading it.
    """

    path: str
    row_group: int | None
    rows: int


@runtime_checkable
class DatasetSource(Protocol):
    """A dataset the loaders can stream: a logical schema and units that read as batches."""

    schema: pa.Schema

    def units(self) -> list[Unit]:
        """The units, in the dataset's natural order (the same list on every call)."""
        ...

    def read(self, unit: Unit, columns: list[str] | None) -> Iterator[pa.RecordBatch]:
        """The rows of ``unit`` (only ``columns`` where given), in the logical schema."""
        ...


def _normalise_format(data_format: str) -> str:
    fmt = data_format.lower()
    if fmt == "tfrecord":
        fmt = "tfrecords"
    if fmt not in FORMATS:
        raise InvalidArgumentError(
            f"unknown data format {data_format!r}; expected one of {', '.join(FORMATS)}",
            data_format=data_format)
    return fmt


class FileSource:
    """A :class:`DatasetSource` over data files on a ``pyarrow.fs`` filesystem.

    Parquet (and petastorm) files are split into row groups, read with column projection and
    ``pre_buffer`` (coalesced ranged reads, which matter on S3); the other formats are read
    a whole file per unit through ``cloudsdk.datasets.formats``. The object pickles
    (filesystem, files and the unit list travel; footers are read again where needed), so
    it can be sent to DataLoader worker processes.

    Args:
        filesystem: ``pyarrow.fs.LocalFileSystem()``, an ``S3FileSystem``, or any other.
        files: The data files, as the filesystem names them (``bucket/prefix/part-r-00000.parquet``).
        data_format: One of :data:`FORMATS` (``tfrecord`` is accepted for ``tfrecords``).
        schema: The dataset's logical schema (arrays as (fixed-size) lists).
        row_counts: The rows of each file, where known, for formats read whole (used to
            balance shards; unknown counts balance by number of files).

    Raises:
        InvalidArgumentError: An unknown format, or ``row_counts`` of another length.

    Example::

        source = FileSource(pafs.LocalFileSystem(), ["/data/td/part-r-00000.parquet"],
                            "parquet", schema)
        for unit in source.units():
            for batch in source.read(unit, ["x", "label"]):
                ...
    """

    def __init__(self, filesystem: pafs.FileSystem, files: Sequence[str], data_format: str,
                 schema: pa.Schema, *, row_counts: Sequence[int] | None = None) -> None:
        self.filesystem = filesystem
        self.files = [str(f) for f in files]
        self.data_format = _normalise_format(data_format)
        self.schema = schema
        if row_counts is not None and len(row_counts) != len(self.files):
            raise InvalidArgumentError(
                f"row_counts has {len(row_counts)} entries for {len(self.files)} files")
        self._row_counts = None if row_counts is None else [int(r) for r in row_counts]
        self._units: list[Unit] | None = None
        self._footers: dict[str, pq.FileMetaData] = {}
        self._handles: OrderedDict[str, Any] = OrderedDict()
        self._lock = threading.Lock()

    @classmethod
    def from_directory(cls, filesystem: pafs.FileSystem, directory: str, data_format: str,
                       schema: pa.Schema) -> FileSource:
        """The data files (``part-*``) of a training-dataset directory.

        Raises:
            NotFoundError: The directory holds no data files.
        """
        from cloudsdk.datasets.formats import list_parts

        files = list_parts(filesystem, directory)
        if not files:
            raise NotFoundError(f"no data files (part-*) in {directory!r}", directory=directory)
        return cls(filesystem, files, data_format, schema)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_footers"] = {}  # re-read where needed: small, and not every version pickles them
        state["_handles"] = OrderedDict()
        del state["_lock"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"FileSource({self.data_format!r}, files={len(self.files)})"

    # ------------------------------------------------------------------ units
    def units(self) -> list[Unit]:
        """Row groups of Parquet files (footers read in parallel, once), whole files otherwise.

        Raises:
            NotFoundError: A file does not exist.
            StorageError: A file could not be read.
        """
        if self._units is None:
            if self.data_format in _ROW_GROUP_FORMATS:
                self._units = self._row_group_units()
            else:
                counts = self._row_counts or [-1] * len(self.files)
                self._units = [Unit(f, None, n) for f, n in zip(self.files, counts, strict=True)]
        return list(self._units)

    def _row_group_units(self) -> list[Unit]:
        workers = max(1, min(_FOOTER_THREADS, len(self.files)))
        with ThreadPoolExecutor(workers, thread_name_prefix="cloudsdk-footer") as pool:
            footers = list(pool.map(self._footer, self.files))
        return [Unit(path, i, md.row_group(i).num_rows)
                for path, md in zip(self.files, footers, strict=True)
                for i in range(md.num_row_groups)]

    def _footer(self, path: str) -> pq.FileMetaData:
        footer = self._footers.get(path)
        if footer is None:
            f = self._handle(path)
            footer = _storage_call(path, lambda: pq.read_metadata(f))
            self._footers[path] = footer
        return footer

    def _handle(self, path: str) -> Any:
        """An open random-access file, kept for the next units of the same file.

        Opening costs a request on S3 (HEAD); positional reads on one handle are
        thread-safe. Evicted handles close when their last reader lets go of them.
        """
        with self._lock:
            handle = self._handles.get(path)
            if handle is not None:
                self._handles.move_to_end(path)
                return handle
        handle = _storage_call(path, lambda: self.filesystem.open_input_file(path))
        with self._lock:
            self._handles[path] = handle
            while len(self._handles) > _OPEN_FILES:
                self._handles.popitem(last=False)
        return handle

    # ------------------------------------------------------------------ read
    def read(self, unit: Unit, columns: list[str] | None,
             batch_rows: int = _CHUNK_ROWS) -> Iterator[pa.RecordBatch]:
        """The rows of ``unit``, only ``columns`` (all where ``None``), in batches.

        Raises:
            SchemaMismatchError: The file lacks a requested column.
            NotFoundError: The file does not exist.
            StorageError: The file could not be read.
        """
        names = list(self.schema.names) if columns is None else list(columns)
        if self.data_format in _ROW_GROUP_FORMATS:
            yield from self._read_parquet(unit, names, batch_rows)
            return
        try:
            from cloudsdk.datasets.formats import iter_file_batches
        except ImportError as exc:  # pragma: no cover - the module ships with cloudsdk
            raise UnsupportedError(f"reading {self.data_format} needs cloudsdk.datasets.formats") from exc
        yield from _storage_iter(unit.path, iter_file_batches(
            self.filesystem, unit.path, self.data_format, self.schema, columns=names,
            batch_rows=batch_rows))

    def _read_parquet(self, unit: Unit, names: list[str], batch_rows: int) -> Iterator[pa.RecordBatch]:
        footer = self._footer(unit.path)
        physical = footer.schema.to_arrow_schema()
        missing = [n for n in names if n not in physical.names]
        if missing:
            raise SchemaMismatchError(f"{unit.path} lacks the column(s) {missing}",
                                      path=unit.path, missing=missing)
        groups = list(range(footer.num_row_groups)) if unit.row_group is None else [unit.row_group]
        f = self._handle(unit.path)
        pf = _storage_call(unit.path, lambda: pq.ParquetFile(f, metadata=footer, pre_buffer=True))
        # a row group at a time: read_row_group decodes faster than iter_batches
        batches = (batch for g in groups
                   for batch in pf.read_row_group(g, columns=names, use_threads=True).to_batches())
        if self.data_format == "petastorm":  # arrays are stored as np.save bytes
            from cloudsdk.datasets.petastorm import decode_batch

            logical = pa.schema([self.schema.field(n) for n in names])
            for batch in _storage_iter(unit.path, batches):
                yield decode_batch(batch, logical)
            return
        for batch in _storage_iter(unit.path, batches):
            yield self._to_logical(batch, names)

    def _to_logical(self, batch: pa.RecordBatch, names: list[str]) -> pa.RecordBatch:
        """Cast scalar columns whose stored type differs from the logical one (lists are
        left to the converter, which reshapes them by the logical schema)."""
        arrays = []
        changed = False
        for name, column in zip(names, batch.columns, strict=True):
            want = self.schema.field(name).type if name in self.schema.names else column.type
            if column.type != want and not _is_list(want) and not _is_list(column.type):
                column = column.cast(want)
                changed = True
            arrays.append(column)
        return pa.RecordBatch.from_arrays(arrays, names=names) if changed else batch


def _storage_call(path: str, fn: Any) -> Any:
    """Run ``fn()``, translating pyarrow's I/O errors into cloudsdk's."""
    try:
        return fn()
    except FileNotFoundError as exc:
        raise NotFoundError(f"{path}: no such file", path=path) from exc
    except (OSError, pa.ArrowException) as exc:
        raise StorageError(f"could not read {path}: {exc}", path=path) from exc


def _storage_iter(path: str, batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    it = iter(batches)
    while True:
        batch = _storage_call(path, lambda: next(it, None))
        if batch is None:
            return
        yield batch


# ---------------------------------------------------------------------- columns
def _is_list(t: pa.DataType) -> bool:
    return bool(pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t))


@dataclass(frozen=True)
class ColumnSpec:
    """How one column becomes an array: its kind, element dtype and per-row shape.

    ``kind`` is ``numeric`` (bool, integers, floats, decimals), ``temporal`` (timestamps,
    dates, times, durations: their int64 count of units), ``string``, ``binary``, ``array``
    (fixed shape, e.g. ``(28, 28)``) or ``ragged`` (some dimension ``None``).
    """

    name: str
    kind: str
    dtype: np.dtype[Any]
    shape: tuple[int | None, ...]


@dataclass(frozen=True)
class Selection:
    """The columns a loader reads, and how it arranges them in each batch."""

    features: tuple[ColumnSpec, ...]
    target: ColumnSpec | None
    stacked: bool

    @property
    def columns(self) -> list[str]:
        """The columns to read: the features, then the target."""
        names = [f.name for f in self.features]
        if self.target is not None and self.target.name not in names:
            names.append(self.target.name)
        return names

    @property
    def keys(self) -> list[str]:
        """The keys of a chunk: :data:`FEATURES_KEY` or the feature names, then the target."""
        keys = [FEATURES_KEY] if self.stacked else [f.name for f in self.features]
        if self.target is not None and self.target.name not in keys:
            keys.append(self.target.name)
        return keys


def _element(name: str, t: pa.DataType) -> tuple[str, np.dtype[Any]]:
    if pa.types.is_dictionary(t):
        return _element(name, t.value_type)
    if pa.types.is_boolean(t):
        return "numeric", np.dtype(np.bool_)
    if pa.types.is_integer(t) or pa.types.is_floating(t):
        return "numeric", np.dtype(t.to_pandas_dtype())
    if pa.types.is_decimal(t):
        return "numeric", np.dtype(np.float64)
    if pa.types.is_temporal(t):
        return "temporal", np.dtype(np.int64)
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return "string", np.dtype(object)
    if pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t):
        return "binary", np.dtype(object)
    raise UnsupportedError(f"column {name!r} has type {t}, which the ML loaders do not convert "
                           "to tensors; leave it out with feature_names", column=name)


def column_spec(field: pa.Field) -> ColumnSpec:
    """The :class:`ColumnSpec` of a logical schema field.

    Raises:
        UnsupportedError: A type that has no tensor form (structs, maps, lists of strings).
    """
    t, shape = field.type, []
    while _is_list(t):
        shape.append(t.list_size if pa.types.is_fixed_size_list(t) else None)
        t = t.value_type
    kind, dtype = _element(field.name, t)
    if shape:
        if kind not in ("numeric", "temporal"):
            raise UnsupportedError(f"column {field.name!r}: arrays of {t} are not supported by "
                                   "the ML loaders", column=field.name)
        kind = "ragged" if None in shape else "array"
    return ColumnSpec(field.name, kind, dtype, tuple(shape))


def select_columns(schema: pa.Schema, target_name: str | None, feature_names: Sequence[str] | None,
                   *, stack_features: bool = True) -> Selection:
    """Check the names against the schema and decide how batches look.

    The features are ``feature_names`` (default: every column but the target). They are
    stacked into one float32 matrix when ``stack_features``, a target is given and every
    feature is a numeric scalar; otherwise each is its own array.

    Raises:
        InvalidArgumentError: An unknown target or feature name (the message lists the
            columns), the target among the features, duplicate or no features.
        UnsupportedError: A selected column of a type with no tensor form.
    """
    names = list(schema.names)
    if isinstance(feature_names, str):
        raise InvalidArgumentError(f"feature_names must be a list of names, not the string {feature_names!r}")
    if target_name is not None and target_name not in names:
        raise InvalidArgumentError(
            f"target {target_name!r} is not a column of the dataset; its columns are {names}",
            target_name=target_name, candidates=names)
    if feature_names is None:
        features = [n for n in names if n != target_name]
    else:
        features = [str(n) for n in feature_names]
        unknown = [n for n in features if n not in names]
        if unknown:
            raise InvalidArgumentError(
                f"unknown feature name(s) {unknown}; the dataset's columns are {names}",
                feature_names=unknown, candidates=names)
        if len(set(features)) != len(features):
            raise InvalidArgumentError(f"feature_names has duplicates: {features}")
        if target_name is not None and target_name in features:
            raise InvalidArgumentError(f"the target {target_name!r} is also among feature_names")
    if not features:
        raise InvalidArgumentError("no features selected: the dataset has no other columns")
    specs = tuple(column_spec(schema.field(n)) for n in features)
    target = None if target_name is None else column_spec(schema.field(target_name))
    stacked = (stack_features and target is not None
               and all(s.kind == "numeric" and not s.shape for s in specs))
    return Selection(specs, target, stacked)


# ---------------------------------------------------------------------- conversion
class Chunk:
    """Rows as numpy arrays keyed like :attr:`Selection.keys`; ragged columns are object
    arrays of per-row arrays, strings and bytes object arrays."""

    __slots__ = ("arrays", "rows")

    def __init__(self, arrays: dict[str, np.ndarray], rows: int) -> None:
        self.arrays = arrays
        self.rows = rows

    def slice(self, start: int, stop: int) -> Chunk:
        """Rows ``start:stop`` (views, no copy)."""
        return Chunk({k: v[start:stop] for k, v in self.arrays.items()}, max(0, min(stop, self.rows) - start))

    def take(self, index: np.ndarray) -> Chunk:
        """The rows at ``index`` (a copy)."""
        return Chunk({k: v[index] for k, v in self.arrays.items()}, len(index))

    @staticmethod
    def concat(chunks: Sequence[Chunk]) -> Chunk:
        """The rows of ``chunks`` one after the other."""
        if len(chunks) == 1:
            return chunks[0]
        keys = chunks[0].arrays.keys()
        return Chunk({k: np.concatenate([c.arrays[k] for c in chunks]) for k in keys},
                     sum(c.rows for c in chunks))


def _combined(column: pa.Array | pa.ChunkedArray) -> pa.Array:
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if pa.types.is_dictionary(column.type):
        column = column.dictionary_decode()
    return column


def _null_error(name: str, nulls: int, what: str) -> DataValidationError:
    return DataValidationError(
        f"column {name!r} has {nulls} null value(s), which {what} cannot hold; fill them "
        "(or leave the column out with feature_names) before training", column=name)


def _scalar(spec: ColumnSpec, column: pa.Array, *, writable: bool) -> np.ndarray:
    """A numeric/temporal/string column as a 1-D numpy array (nulls: NaN for floats)."""
    if spec.kind in ("string", "binary"):
        if column.null_count:
            raise _null_error(spec.name, column.null_count, "a tensor of strings")
        return np.asarray(column.to_numpy(zero_copy_only=False), dtype=object)
    if spec.kind == "temporal":
        if column.null_count:
            raise _null_error(spec.name, column.null_count, "an int64 tensor")
        return _temporal_int64(column)
    if pa.types.is_decimal(column.type):
        column = column.cast(pa.float64())
    if column.null_count and spec.dtype.kind != "f":
        raise _null_error(spec.name, column.null_count, f"a {spec.dtype} tensor")
    return np.asarray(column.to_numpy(zero_copy_only=False, writable=writable))


def _temporal_int64(column: pa.Array) -> np.ndarray:
    t = column.type
    if pa.types.is_date32(t) or pa.types.is_time32(t):
        return np.asarray(column.view(pa.int32()).to_numpy(zero_copy_only=False), dtype=np.int64)
    return np.array(column.view(pa.int64()).to_numpy(zero_copy_only=False), dtype=np.int64)


def _leaf(spec: ColumnSpec, column: pa.Array, depth: int) -> pa.Array:
    """Unnest ``depth`` list levels (refusing null lists)."""
    for _ in range(depth):
        if column.null_count:
            raise _null_error(spec.name, column.null_count, "an array tensor (a null array)")
        column = column.flatten()
    return column


def _array(spec: ColumnSpec, column: pa.Array) -> np.ndarray:
    """A fixed-shape array column as an ``[n, *shape]`` array."""
    n = len(column)
    leaf = _leaf(spec, column, len(spec.shape))
    values = _scalar(ColumnSpec(spec.name, "temporal" if pa.types.is_temporal(leaf.type) else "numeric",
                                spec.dtype, ()), leaf, writable=True)
    shape = tuple(int(d) for d in spec.shape if d is not None)
    if values.size != n * math.prod(shape):
        raise SchemaMismatchError(f"column {spec.name!r}: {values.size} values for {n} rows of "
                                  f"shape {shape}", column=spec.name)
    return values.reshape((n, *shape))


def _ragged(spec: ColumnSpec, column: pa.Array) -> np.ndarray:
    """A column with a variable dimension as an object array of per-row arrays."""
    out = np.empty(len(column), dtype=object)
    if len(spec.shape) == 1:
        if column.null_count:
            raise _null_error(spec.name, column.null_count, "an array tensor (a null array)")
        lengths = column.value_lengths().to_numpy(zero_copy_only=False)
        values = _scalar(ColumnSpec(spec.name, "numeric", spec.dtype, ()), column.flatten(), writable=True)
        values = values.astype(spec.dtype, copy=False)
        for i, part in enumerate(np.split(values, np.cumsum(lengths)[:-1]) if len(column) else []):
            out[i] = part
        return out
    for i, row in enumerate(column.to_pylist()):
        if row is None:
            raise _null_error(spec.name, 1, "an array tensor (a null array)")
        out[i] = np.asarray(row, dtype=spec.dtype)
    return out


def convert(selection: Selection, batch: pa.RecordBatch | pa.Table) -> Chunk:
    """Arrow rows → a :class:`Chunk` of numpy arrays (writable, so tensors may share them).

    Raises:
        DataValidationError: Nulls where the output type cannot hold them (integers,
            booleans, strings, arrays; floats and the stacked matrix take NaN).
        SchemaMismatchError: An array column whose values do not fill its shape.
    """
    n = batch.num_rows
    names = list(batch.schema.names)
    arrays: dict[str, np.ndarray] = {}

    def column(name: str) -> pa.Array:
        return _combined(batch.column(names.index(name)))

    if selection.stacked:
        # Filled feature by feature (contiguous writes), then seen as [n, F]: a Fortran-order
        # view, made C-contiguous batch by batch (in cache) by the framework adapters.
        matrix = np.empty((len(selection.features), n), dtype=np.float32)
        for j, spec in enumerate(selection.features):
            col = column(spec.name)
            if col.null_count or pa.types.is_decimal(col.type):
                col = col.cast(pa.float64())
            matrix[j] = col.to_numpy(zero_copy_only=False)
        arrays[FEATURES_KEY] = matrix.T
    else:
        for spec in selection.features:
            arrays[spec.name] = _convert_one(spec, column(spec.name))
    target = selection.target
    if target is not None and target.name not in arrays:
        arrays[target.name] = _convert_one(target, column(target.name))
    return Chunk(arrays, n)


def _convert_one(spec: ColumnSpec, col: pa.Array) -> np.ndarray:
    if spec.kind == "array":
        return _array(spec, col)
    if spec.kind == "ragged":
        return _ragged(spec, col)
    return _scalar(spec, col, writable=True)


# ---------------------------------------------------------------------- epochs and shards
def _rng(seed: int, *words: int) -> np.random.Generator:
    return np.random.default_rng([seed & 0xFFFF_FFFF_FFFF_FFFF, *words])


def epoch_order(num_units: int, *, shuffle: bool, seed: int, epoch: int) -> list[int]:
    """The unit indices in the order of ``epoch``: natural, or a permutation of the seed and
    epoch (the same on every rank and worker, different from epoch to epoch)."""
    if not shuffle:
        return list(range(num_units))
    return [int(i) for i in _rng(seed, epoch, 0).permutation(num_units)]


def split_units(order: Sequence[int], units: Sequence[Unit], parts: int) -> list[list[int]]:
    """Deal ``order`` to ``parts`` shards: every unit to exactly one shard.

    Where every unit's rows are known each unit goes, in order, to the shard with the
    fewest rows so far (ties to the lowest shard), which balances rows when unit sizes are
    uneven; otherwise units are dealt round robin. Deterministic, so every rank and worker
    computes the same split.
    """
    if parts < 1:
        raise InvalidArgumentError(f"cannot split into {parts} shards")
    shards: list[list[int]] = [[] for _ in range(parts)]
    if all(units[i].rows >= 0 for i in order):
        load = [0] * parts
        for i in order:
            k = min(range(parts), key=lambda p: (load[p], p))
            shards[k].append(i)
            load[k] += units[i].rows
    else:
        for pos, i in enumerate(order):
            shards[pos % parts].append(i)
    return shards


def unit_chunks(source: DatasetSource, unit: Unit, unit_index: int, selection: Selection, *,
                shuffle: bool, seed: int, epoch: int) -> Iterator[Chunk]:
    """The rows of one unit as chunks; shuffled (one chunk, a permutation of the seed,
    epoch and unit) or in file order (one chunk per batch read, streaming)."""
    batches = source.read(unit, selection.columns)
    if not shuffle:
        for batch in batches:
            if batch.num_rows:
                yield convert(selection, batch)
        return
    chunks = [convert(selection, b) for b in batches if b.num_rows]
    if not chunks:
        return
    whole = Chunk.concat(chunks)
    del chunks
    yield whole.take(_rng(seed, epoch, 1, unit_index).permutation(whole.rows))


def read_ahead(loads: Iterable[Any], fn: Any) -> Iterator[Any]:
    """``fn(x)`` for each ``x`` of ``loads``, computing the next one in a thread meanwhile.

    At most two results exist at once besides the one the caller holds: memory stays a
    unit or two. Pyarrow releases the GIL while it reads and decodes, so I/O overlaps the
    caller's work.
    """
    pool = ThreadPoolExecutor(1, thread_name_prefix="cloudsdk-read-ahead")
    pending: Future[Any] | None = None
    try:
        for item in loads:
            future = pool.submit(fn, item)
            if pending is not None:
                result = pending.result()
                pending = future
                yield result
                del result
            else:
                pending = future
        if pending is not None:
            result = pending.result()
            pending = None
            yield result
    finally:
        if pending is not None:
            pending.cancel()
        pool.shutdown(wait=True, cancel_futures=True)


def rebatch(chunks: Iterable[Chunk], batch_size: int, *, drop_last: bool) -> Iterator[Chunk]:
    """Cut a stream of chunks into batches of ``batch_size`` rows (views where a batch lies
    in one chunk); the last batch is shorter, or dropped when ``drop_last``."""
    pending: list[Chunk] = []
    have = 0
    for chunk in chunks:
        start = 0
        if pending:
            take = chunk.slice(0, batch_size - have)
            pending.append(take)
            have += take.rows
            start = take.rows
            if have < batch_size:
                continue
            yield Chunk.concat(pending)
            pending, have = [], 0
        while chunk.rows - start >= batch_size:
            yield chunk.slice(start, start + batch_size)
            start += batch_size
        if start < chunk.rows:
            pending, have = [chunk.slice(start, chunk.rows)], chunk.rows - start
    if pending and not drop_last:
        yield Chunk.concat(pending)
