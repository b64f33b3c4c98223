"""Training-dataset file formats: what each can hold, writing part files, reading them back.

A training dataset is a directory of part files ``part-r-00000.<suffix>``,
``part-r-00001.<suffix>``... (Hadoop's naming, so ``glob(dir + "/part-r-*")`` finds them)
plus metadata files outside that pattern: ``_SUCCESS`` (written last),
``_tf_record_schema.json`` for tfrecords, petastorm's ``_common_metadata``.

Every file is in the format's standard layout, readable without cloudsdk; cloudsdk reads
them back (:func:`iter_file_batches`, :func:`read_dataset`) cast to the dataset's *logical*
Arrow schema, so that every format round-trips to the same Arrow table (within what the
format can hold: see ``docs/formats.md``).

Only pyarrow / numpy APIs that exist in pyarrow 14 and numpy 1.26 are used; h5py is imported
when an hdf5 file is written or read, petastorm support (``cloudsdk.datasets.petastorm``)
when a petastorm dataset is.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs

from cloudsdk.datasets import tfrecord as tfr
from cloudsdk.datasets._format_types import _refusal, _restore, _write_schema
from cloudsdk.datasets._part_files import _READERS, _open_sink, _Sink
from cloudsdk.errors import (
    CloudSDKError,
    DataValidationError,
    FeatureNotFoundError,
    InvalidArgumentError,
    NotFoundError,
    SchemaMismatchError,
    StorageError,
)

__all__ = [
    "FORMATS",
    "PART_GLOB",
    "SUCCESS_FILE",
    "TF_RECORD_SCHEMA_FILE",
    "PartInfo",
    "PartWriter",
    "canonical_format",
    "check_schema",
    "file_suffix",
    "iter_file_batches",
    "list_parts",
    "part_name",
    "read_dataset",
]

log = logging.getLogger(__name__)

FORMATS: tuple[str, ...] = ("tfrecords", "parquet", "csv", "tsv", "petastorm", "avro", "orc", "npy", "hdf5")
_ALIASES = {"tfrecord": "tfrecords", "h5": "hdf5"}
_SUFFIX = {"tfrecords": "tfrecord", "parquet": "parquet", "petastorm": "parquet", "hdf5": "h5"}
PART_PREFIX = "part-r-"
PART_GLOB = PART_PREFIX + "*"
SUCCESS_FILE = "_SUCCESS"
TF_RECORD_SCHEMA_FILE = "_tf_record_schema.json"


def canonical_format(name: str) -> str:
    """The canonical name of a data format (case-insensitive; ``tfrecord`` → ``tfrecords``).

    Raises:
        InvalidArgumentError: an unknown format (the message lists :data:`FORMATS`).

    Example:
        >>> canonical_format("TFRecord")
        'tfrecords'
    """
    if not isinstance(name, str):
        raise InvalidArgumentError(f"data_format must be a string, not {type(name).__name__}")
    key = name.strip().lower()
    key = _ALIASES.get(key, key)
    if key not in FORMATS:
        raise InvalidArgumentError(
            f"unknown data_format {name!r}; use one of {', '.join(FORMATS)}", data_format=name)
    return key


def file_suffix(data_format: str) -> str:
    """The file name suffix of a format's part files (``tfrecord``, ``parquet``, ``h5``, ...)."""
    fmt = canonical_format(data_format)
    return _SUFFIX.get(fmt, fmt)


def part_name(index: int, data_format: str) -> str:
    """The file name of part ``index``: ``part-r-00003.parquet``."""
    return f"{PART_PREFIX}{index:05d}.{file_suffix(data_format)}"


def check_schema(schema: pa.Schema, data_format: str) -> None:
    """Check that ``data_format`` can hold every column of ``schema``.

    Raises:
        InvalidArgumentError: an unknown format.
        SchemaMismatchError: naming each column the format cannot hold, and which formats can.

    Example:
        >>> import pyarrow as pa
        >>> check_schema(pa.schema([("emb", pa.list_(pa.float32()))]), "csv")
        Traceback (most recent call last):
        ...
        cloudsdk.errors.SchemaMismatchError: csv cannot hold 1 column(s) of this dataset
          - column 'emb' (list<item: float>): ...
    """
    fmt = canonical_format(data_format)
    problems = []
    for field in schema:
        reason = _refusal(field, fmt)
        if reason is not None:
            can = _holders(field)
            problems.append(f"column {field.name!r} ({field.type}): {reason}; "
                            + (f"formats that can hold it: {', '.join(can)}" if can else
                               "no training-dataset format can hold it"))
    if problems:
        raise SchemaMismatchError(f"{fmt} cannot hold {len(problems)} column(s) of this dataset",
                                  problems, data_format=fmt)


def _holders(field: pa.Field) -> list[str]:
    """The formats that can hold ``field``."""
    return [f for f in FORMATS if _refusal(field, f) is None]


@dataclass(frozen=True)
class PartInfo:
    """A completed part file: its name (not path), rows, size in bytes, and row groups.

    ``row_groups`` counts the units a reader can split the file on: Parquet row groups,
    ORC stripes; 1 for the other formats.
    """

    name: str
    rows: int
    bytes: int
    row_groups: int


class PartWriter:
    """Streams record batches into part files ``part-r-00000.<suffix>``, ... in a local directory.

    Args:
        directory: the local directory (created if missing).
        schema: the logical schema of the dataset (pandas metadata is ignored for writing).
        data_format: one of :data:`FORMATS` (or an alias such as ``tfrecord``).
        rows_per_file: rows per part file; a new part starts when a part is full.
        on_part: called with ``(path, PartInfo)`` as each part file is complete (e.g. to upload
            it while writing goes on).

    Raises:
        InvalidArgumentError: an unknown format or a bad ``rows_per_file``.
        SchemaMismatchError: a column the format cannot hold.

    Example:
        >>> import pyarrow as pa, tempfile
        >>> table = pa.table({"x": [1.0, 2.0], "y": [0, 1]})
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     with PartWriter(tmp, table.schema, "parquet") as writer:
        ...         writer.write(table)
        ...     [p.rows for p in writer.close()]
        [2]
    """

    def __init__(self, directory: str | os.PathLike[str], schema: pa.Schema, data_format: str, *,
                 rows_per_file: int = 1_000_000,
                 on_part: Callable[[Path, PartInfo], None] | None = None) -> None:
        self.data_format = canonical_format(data_format)
        check_schema(schema, self.data_format)
        if not isinstance(rows_per_file, int) or rows_per_file < 1:
            raise InvalidArgumentError(f"rows_per_file must be a positive integer, not {rows_per_file!r}")
        self.directory = Path(directory)
        self.schema = schema
        self.rows_per_file = rows_per_file
        self.on_part = on_part
        self._write_schema = _write_schema(schema)
        self._created = not self.directory.exists()
        self.directory.mkdir(parents=True, exist_ok=True)
        self._before = {p.name for p in self.directory.iterdir()}
        self._written: list[Path] = []
        self._parts: list[PartInfo] = []
        self._sink: _Sink | None = None
        self._sink_rows = 0
        self._closed = False
        self._aborted = False

    # ------------------------------------------------------------------ writing

    @property
    def parts(self) -> list[PartInfo]:
        """The parts completed so far."""
        return list(self._parts)

    def _conform(self, data: pa.RecordBatch | pa.Table) -> pa.Table:
        if isinstance(data, pa.RecordBatch):
            data = pa.Table.from_batches([data])
        elif not isinstance(data, pa.Table):
            raise InvalidArgumentError(f"write() takes a pyarrow RecordBatch or Table, not {type(data).__name__}")
        target = self._write_schema
        missing = [n for n in target.names if n not in data.column_names]
        if missing:
            raise SchemaMismatchError(f"the data lacks column(s) {', '.join(map(repr, missing))} of the dataset",
                                      [f"missing column {n!r}" for n in missing])
        if data.column_names != target.names:
            data = data.select(target.names)
        if not pa.schema(list(data.schema)).equals(target):
            try:
                data = data.cast(target)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
                raise SchemaMismatchError(f"the data does not match the dataset's schema: {exc}") from exc
        return data

    def write(self, data: pa.RecordBatch | pa.Table) -> None:
        """Append rows; a part file is completed (and ``on_part`` called) every ``rows_per_file`` rows.

        Raises:
            SchemaMismatchError: columns missing or of types that cannot be cast.
            DataValidationError: values the format cannot hold (e.g. nulls in an npy int column).
            StorageError: the file could not be written.
        """
        if self._closed or self._aborted:
            raise InvalidArgumentError("this PartWriter is closed")
        table = self._conform(data)
        for batch in table.to_batches():
            offset = 0
            while offset < batch.num_rows:
                if self._sink is None:
                    self._open_part()
                assert self._sink is not None
                room = self.rows_per_file - self._sink_rows
                chunk = batch.slice(offset, room)
                self._call(self._sink.write, chunk)
                self._sink_rows += chunk.num_rows
                offset += chunk.num_rows
                if self._sink_rows >= self.rows_per_file:
                    self._finish_part()

    def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        try:
            return fn(*args)
        except CloudSDKError:
            raise
        except (pa.ArrowInvalid, OverflowError) as exc:
            raise DataValidationError(f"{self.data_format} cannot hold these values: {exc}") from exc
        except (OSError, pa.ArrowException) as exc:
            raise StorageError(f"writing {self.data_format} part files in {self.directory} failed: {exc}") from exc

    def _open_part(self) -> None:
        path = self.directory / part_name(len(self._parts), self.data_format)
        self._written.append(path)
        self._sink = self._call(_open_sink, path, self.schema, self.data_format)
        self._sink_rows = 0

    def _finish_part(self) -> None:
        sink, self._sink = self._sink, None
        assert sink is not None
        row_groups = self._call(sink.close)
        info = PartInfo(sink.path.name, self._sink_rows, sink.path.stat().st_size, row_groups)
        self._parts.append(info)
        if self.on_part is not None:
            self.on_part(sink.path, info)

    def close(self) -> list[PartInfo]:
        """Finish the last part, write the metadata files and ``_SUCCESS`` (last).

        An empty dataset still gets one (readable) part file with zero rows.

        Returns:
            Every part, in order.
        """
        if self._closed:
            return self.parts
        if self._aborted:
            raise InvalidArgumentError("this PartWriter was aborted")
        if self._sink is not None:
            self._finish_part()
        elif not self._parts:
            self._open_part()
            self._finish_part()
        if self.data_format == "tfrecords":
            path = self.directory / TF_RECORD_SCHEMA_FILE
            self._written.append(path)
            path.write_text(json.dumps(tfr.tf_record_schema(self.schema), indent=2) + "\n", encoding="utf-8")
        elif self.data_format == "petastorm":
            from cloudsdk.datasets import petastorm as pz

            self._call(pz.write_metadata, self.directory, self.schema, self._parts)
        success = self.directory / SUCCESS_FILE
        self._written.append(success)
        success.touch()
        self._closed = True
        return self.parts

    def abort(self) -> None:
        """Remove everything this writer wrote (and the directory, if it created it)."""
        self._aborted = True
        if self._sink is not None:
            try:
                self._sink.discard()
            except Exception:  # the files go anyway
                log.debug("discarding an open part failed", exc_info=True)
            self._sink = None
        if self._created:
            shutil.rmtree(self.directory, ignore_errors=True)
            return
        for path in self._written:
            path.unlink(missing_ok=True)
        if self.directory.exists():
            for path in self.directory.iterdir():  # e.g. petastorm's metadata files
                if path.name not in self._before and path.is_file():
                    path.unlink(missing_ok=True)

    def __enter__(self) -> PartWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc_type is not None:
            self.abort()
        elif not self._closed and not self._aborted:
            self.close()


# ---------------------------------------------------------------------- reading


def list_parts(filesystem: pafs.FileSystem, directory: str) -> list[str]:
    """The sorted paths of the ``part-r-*`` files directly in ``directory``.

    Raises:
        NotFoundError: the directory does not exist.
        StorageError: it could not be listed.
    """
    selector = pafs.FileSelector(directory.rstrip("/"), allow_not_found=False, recursive=False)
    try:
        infos = filesystem.get_file_info(selector)
    except FileNotFoundError as exc:
        raise NotFoundError(f"no training-dataset directory {directory!r}", path=directory) from exc
    except (OSError, pa.ArrowException) as exc:
        raise StorageError(f"cannot list {directory!r}: {exc}", path=directory) from exc
    return sorted(i.path for i in infos
                  if i.type == pafs.FileType.File and i.base_name.startswith(PART_PREFIX))


def _out_schema(schema: pa.Schema, columns: list[str] | None) -> pa.Schema:
    if columns is None:
        return schema
    missing = [c for c in columns if c not in schema.names]
    if missing:
        raise FeatureNotFoundError(
            f"no column(s) {', '.join(map(repr, missing))} in the dataset; it has {', '.join(schema.names)}",
            features=missing)
    return pa.schema([schema.field(c) for c in columns])


def iter_file_batches(filesystem: pafs.FileSystem, path: str, data_format: str, schema: pa.Schema, *,
                      columns: list[str] | None = None, batch_rows: int = 65_536) -> Iterator[pa.RecordBatch]:
    """Read one part file as record batches of the logical ``schema`` (restricted to ``columns``).

    Args:
        filesystem: a ``pyarrow.fs`` filesystem (local, S3, ...).
        path: the file's path on that filesystem.
        data_format: the dataset's format.
        schema: the dataset's logical schema.
        columns: the columns to read, in this order (default: all).
        batch_rows: the most rows per batch.

    Raises:
        FeatureNotFoundError: a column not in ``schema``.
        NotFoundError: no such file.
        StorageError: the file cannot be read or does not match the schema.
    """
    fmt = canonical_format(data_format)
    out = _out_schema(schema, columns)
    names = out.names
    reader = _READERS[fmt]
    try:
        for raw in reader(filesystem, path, schema, names, batch_rows):
            for start in range(0, max(raw.num_rows, 1), batch_rows):
                piece = raw.slice(start, batch_rows) if raw.num_rows > batch_rows else raw
                if piece.num_rows == 0:
                    continue
                arrays = [_restore(piece.column(name), out.field(name).type) for name in names]
                yield pa.RecordBatch.from_arrays(arrays, schema=out)
    except CloudSDKError:
        raise
    except FileNotFoundError as exc:
        raise NotFoundError(f"no file {path!r}", path=path) from exc
    except (OSError, ValueError, KeyError, TypeError, pa.ArrowException) as exc:
        raise StorageError(f"cannot read {fmt} file {path!r}: {exc}", path=path) from exc


def read_dataset(filesystem: pafs.FileSystem, directory: str, data_format: str, schema: pa.Schema, *,
                 columns: list[str] | None = None) -> pa.Table:
    """Read every part file of a dataset directory into one table of the logical schema.

    Raises:
        NotFoundError: the directory does not exist.
        FeatureNotFoundError: a column not in ``schema``.
        StorageError: a file cannot be read.
    """
    out = _out_schema(schema, columns)
    batches: list[pa.RecordBatch] = []
    for path in list_parts(filesystem, directory):
        batches.extend(iter_file_batches(filesystem, path, data_format, schema, columns=columns))
    return pa.Table.from_batches(batches, schema=out)
