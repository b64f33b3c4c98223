"""The petastorm dataset format, written without importing petastorm.

A petastorm dataset is a directory of Parquet files plus a ``_common_metadata`` file whose
key-value metadata holds a pickled :class:`petastorm.unischema.Unischema` (under
``dataset-toolkit.unischema.v1``) and the number of row groups of each file (under
``dataset-toolkit.num_row_groups_per_file.v1``). petastorm's ``make_reader`` needs both;
``make_batch_reader`` reads the Parquet files as they are.

petastorm itself cannot be imported next to current pyarrow (it needs pyarrow <= 14), so this
module writes the format on its own: the Unischema pickle is produced by a pickler that names
petastorm's classes without importing them, and unpickles (where petastorm is installed) into
real ``Unischema`` / ``UnischemaField`` / ``NdarrayCodec`` objects.

The mapping from a logical Arrow schema (what cloudsdk keeps for a training dataset):

=====================================  ===============  ==================  ==============
Arrow type (logical)                   Parquet column   numpy dtype          codec
=====================================  ===============  ==================  ==============
bool                                   bool             ``np.bool_``         None
int8 / int16 / int32 / int64           same             ``np.intN``          None
uint8 / uint16 / uint32                same             ``np.uintN``         None
uint64                                 int64            ``np.int64``         None
float16                                float32          ``np.float32``       None
float32 / float64                      same             ``np.floatN``        None
string / large_string / string_view    string           ``np.str_``          None
binary / large_binary / fixed binary   binary           ``np.bytes_``        None
decimal128(p, s)                       same             ``Decimal``          None
timestamp(unit[, tz])                  same             ``np.datetime64``    None
date32 / date64                        date32           ``np.datetime64``    None
dictionary<…, T>                       as T             as T                 as T
list / fixed_size_list (nested) of a   binary           the element's        NdarrayCodec
number or bool                         (``np.save``)    dtype
=====================================  ===============  ==================  ==============

An array's shape comes from the nesting: each ``fixed_size_list`` level is a fixed dimension,
each ``list`` level a variable one (``None``), e.g. ``list_(list_(uint8(), 28), 28)`` →
``(28, 28)`` and ``list_(float32())`` → ``(None,)``. Scalars carry no codec (petastorm's
``ScalarCodec`` pickles pyspark types, which readers would then need): ``make_reader``
converts them with the numpy dtype, ``make_batch_reader`` reads them natively. Struct, map,
time and duration columns raise :class:`~cloudsdk.errors.UnsupportedError`.

Only pyarrow and numpy APIs that exist in pyarrow 14 and numpy 1.26 are used.
"""

from __future__ import annotations

import copyreg
import decimal
import io
import json
import keyword
import pickle
import warnings
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from cloudsdk.errors import InvalidArgumentError, SchemaMismatchError, UnsupportedError

__all__ = [
    "COMMON_METADATA",
    "ROW_GROUPS_PER_FILE_KEY",
    "UNISCHEMA_KEY",
    "common_metadata_schema",
    "decode_batch",
    "encode_batch",
    "make_reader",
    "s3_filesystem",
    "storage_schema",
    "unischema_fields",
    "unischema_pickle",
    "write_metadata",
]

#: The metadata file petastorm reads; its name keeps it outside the ``part-r-*`` glob.
COMMON_METADATA = "_common_metadata"
#: Key of the pickled Unischema in ``_common_metadata`` (petastorm.etl.dataset_metadata).
UNISCHEMA_KEY = b"dataset-toolkit.unischema.v1"
#: Key of the JSON ``{file name: row group count}`` in ``_common_metadata``.
ROW_GROUPS_PER_FILE_KEY = b"dataset-toolkit.num_row_groups_per_file.v1"
#: The Unischema's name when none is given (it names petastorm's row namedtuple type).
DEFAULT_SCHEMA_NAME = "TrainingDataset"

_NDARRAY_CODEC = "NdarrayCodec"
# ``copyreg.__newobj__``: what protocol-2 pickles of plain objects are made of (not in typeshed)
_NEWOBJ: Any = copyreg.__dict__["__newobj__"]


# --------------------------------------------------------------------------- type mapping


@dataclass(frozen=True)
class _Field:
    """How one logical column is stored and described to petastorm."""

    name: str
    logical: pa.DataType
    storage: pa.DataType
    numpy_dtype: Any  # a numpy scalar type, or decimal.Decimal
    shape: tuple[int | None, ...]
    nullable: bool
    array_dtype: np.dtype[Any] | None = None  # the element dtype of an ndarray column

    @property
    def is_array(self) -> bool:
        return self.array_dtype is not None


def _is_string_view(t: pa.DataType) -> bool:
    check = getattr(pa.types, "is_string_view", None)
    return bool(check(t)) if check is not None else False


def _is_list(t: pa.DataType) -> bool:
    return bool(pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t))


def _scalar(name: str, t: pa.DataType) -> tuple[pa.DataType, Any]:
    """(storage type, numpy dtype) of a scalar column."""
    types = pa.types
    if types.is_dictionary(t):
        return _scalar(name, t.value_type)
    if types.is_boolean(t):
        return pa.bool_(), np.bool_
    if types.is_uint64(t):
        return pa.int64(), np.int64
    if types.is_integer(t):
        return t, np.dtype(t.to_pandas_dtype()).type
    if types.is_float16(t):
        return pa.float32(), np.float32
    if types.is_floating(t):
        return t, np.dtype(t.to_pandas_dtype()).type
    if types.is_string(t) or types.is_large_string(t) or _is_string_view(t):
        return pa.string(), np.str_
    if types.is_binary(t) or types.is_large_binary(t) or types.is_fixed_size_binary(t):
        return pa.binary(), np.bytes_
    if types.is_decimal(t):
        if types.is_decimal256(t):
            raise UnsupportedError(f"column {name!r}: decimal256 cannot be stored in a petastorm dataset")
        return t, decimal.Decimal
    if types.is_timestamp(t):
        return t, np.datetime64
    if types.is_date(t):
        return pa.date32(), np.datetime64
    raise UnsupportedError(
        f"column {name!r} of type {t} cannot be stored in a petastorm dataset "
        "(supported: numbers, bool, string, binary, decimal, timestamp, date and arrays of numbers)"
    )


def _array(name: str, t: pa.DataType) -> tuple[tuple[int | None, ...], np.dtype[Any]]:
    """(shape, element dtype) of an array column: one dimension per list level."""
    shape: list[int | None] = []
    while _is_list(t):
        shape.append(t.list_size if pa.types.is_fixed_size_list(t) else None)
        t = t.value_type
    if pa.types.is_dictionary(t):
        t = t.value_type
    if not (pa.types.is_boolean(t) or pa.types.is_integer(t) or pa.types.is_floating(t)):
        raise UnsupportedError(
            f"column {name!r}: an array of {t} cannot be stored in a petastorm dataset "
            "(NdarrayCodec arrays hold numbers or bool)"
        )
    return tuple(shape), np.dtype(t.to_pandas_dtype())


def _fields(schema: pa.Schema) -> list[_Field]:
    out: list[_Field] = []
    for f in schema:
        if not f.name.isidentifier() or keyword.iskeyword(f.name) or f.name.startswith("_"):
            # petastorm builds a namedtuple type from the field names
            raise InvalidArgumentError(
                f"column {f.name!r} cannot be a petastorm field: petastorm needs names that are "
                "Python identifiers, not keywords, and do not start with '_'"
            )
        if _is_list(f.type):
            shape, dtype = _array(f.name, f.type)
            out.append(_Field(f.name, f.type, pa.binary(), dtype.type, shape, f.nullable, dtype))
        else:
            storage, np_type = _scalar(f.name, f.type)
            out.append(_Field(f.name, f.type, storage, np_type, (), f.nullable))
    return out


def storage_schema(schema: pa.Schema) -> pa.Schema:
    """The Parquet schema of a petastorm dataset with the logical Arrow ``schema``.

    Array columns (lists, nested fixed-size lists) become ``binary`` (petastorm's NdarrayCodec:
    the bytes of ``np.save``); scalars keep their type or a wider one petastorm reads (see the
    module docstring).

    Args:
        schema: The logical schema of the dataset.

    Returns:
        The schema of the Parquet files, with the same field names, order and nullability.

    Raises:
        UnsupportedError: A column type petastorm cannot hold.
        InvalidArgumentError: A column name petastorm cannot use.

    Example:
        >>> storage_schema(pa.schema([("image", pa.list_(pa.list_(pa.uint8(), 28), 28))]))
        image: binary
    """
    return pa.schema([pa.field(f.name, f.storage, f.nullable) for f in _fields(schema)])


def unischema_fields(schema: pa.Schema) -> list[tuple[str, str, tuple[int | None, ...], str | None, bool]]:
    """The Unischema fields written for ``schema``: ``(name, numpy dtype, shape, codec, nullable)``.

    The numpy dtype is the name of the numpy scalar type (``"uint8"``, ``"str_"``,
    ``"datetime64"``) or ``"Decimal"``; the codec is ``"NdarrayCodec"`` for arrays and ``None``
    for scalars.

    Example:
        >>> unischema_fields(pa.schema([("label", pa.int64())]))
        [('label', 'int64', (), None, False)]
    """
    return [
        (f.name, f.numpy_dtype.__name__, f.shape, _NDARRAY_CODEC if f.is_array else None, f.nullable)
        for f in _fields(schema)
    ]


# --------------------------------------------------------------------------- encoding


def _npy_header(dtype: np.dtype[Any], shape: tuple[int, ...]) -> bytes:
    """The bytes ``np.save`` writes before the data of an array of that dtype and shape."""
    buf = io.BytesIO()
    sample = np.zeros(shape, dtype=dtype)
    np.save(buf, sample)
    raw = buf.getvalue()
    return raw[: len(raw) - sample.nbytes]


def _fixed_values(column: pa.Array, depth: int) -> pa.Array:
    """The innermost values of ``depth`` levels of fixed-size lists (slicing respected)."""
    values = column
    for _ in range(depth):
        size = values.type.list_size
        values = values.values.slice(values.offset * size, len(values) * size)
    return values


def _valid_mask(column: pa.Array) -> np.ndarray:
    if column.null_count == 0:
        return np.ones(len(column), dtype=bool)
    return np.asarray(column.is_valid().to_numpy(zero_copy_only=False), dtype=bool)


def _binary_from_rows(rows: np.ndarray, valid: np.ndarray) -> pa.Array:
    """A binary array whose valid entries are the rows of a 2-D uint8 matrix (one per valid row)."""
    n = len(valid)
    width = rows.shape[1] if rows.ndim == 2 else 0
    lengths = np.where(valid, width, 0).astype(np.int64)
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    if offsets[-1] > np.iinfo(np.int32).max:
        raise InvalidArgumentError("a record batch of more than 2 GiB of arrays: write smaller batches")
    validity = None if valid.all() else pa.array(valid, pa.bool_()).buffers()[1]
    data = pa.py_buffer(np.ascontiguousarray(rows).tobytes())
    return pa.Array.from_buffers(
        pa.binary(), n, [validity, pa.py_buffer(offsets.astype(np.int32).tobytes()), data]
    )


def _encode_array(field: _Field, column: pa.Array) -> pa.Array:
    assert field.array_dtype is not None
    if pa.types.is_dictionary(column.type):  # pragma: no cover - lists of dictionaries are rare
        column = column.cast(field.logical)
    valid = _valid_mask(column)
    if all(d is not None for d in field.shape) and all(
        pa.types.is_fixed_size_list(t) for t in _list_levels(field.logical)
    ):
        shape = tuple(int(d) for d in field.shape if d is not None)
        flat = _fixed_values(column, len(shape))
        per_row = int(np.prod(shape))
        if flat.null_count:
            holes = np.asarray(flat.is_null().to_numpy(zero_copy_only=False), dtype=bool)
            if holes.reshape(len(column), per_row)[valid].any():
                raise SchemaMismatchError(
                    f"column {field.name!r}: an array holds missing values; "
                    "petastorm's NdarrayCodec cannot store them"
                )
            flat = flat.fill_null(False if pa.types.is_boolean(flat.type) else 0)
        values = flat.to_numpy(zero_copy_only=False).astype(field.array_dtype, copy=False)
        matrix = values.reshape(len(column), per_row)[valid]
        header = np.frombuffer(_npy_header(field.array_dtype, shape), dtype=np.uint8)
        data = np.ascontiguousarray(matrix).view(np.uint8).reshape(len(matrix), per_row * field.array_dtype.itemsize)
        rows = np.concatenate([np.broadcast_to(header, (len(matrix), len(header))), data], axis=1)
        return _binary_from_rows(rows, valid)
    encoded: list[bytes | None] = []
    for value in column:
        if not value.is_valid:
            encoded.append(None)
            continue
        nested = value.as_py()
        try:
            arr = np.array(nested, dtype=field.array_dtype)
        except (ValueError, TypeError) as exc:
            raise SchemaMismatchError(
                f"column {field.name!r}: {_preview(nested)} is not a rectangular array of "
                f"{field.array_dtype} without missing values"
            ) from exc
        if arr.ndim != len(field.shape):
            raise SchemaMismatchError(
                f"column {field.name!r}: {_preview(nested)} is not a rectangular array of shape {field.shape}"
            )
        buf = io.BytesIO()
        np.save(buf, arr)
        encoded.append(buf.getvalue())
    return pa.array(encoded, pa.binary())


def _preview(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _list_levels(t: pa.DataType) -> list[pa.DataType]:
    levels = []
    while _is_list(t):
        levels.append(t)
        t = t.value_type
    return levels


def _column(batch: pa.RecordBatch, name: str) -> pa.Array:
    index = batch.schema.get_field_index(name)
    if index < 0:
        raise SchemaMismatchError(f"column {name!r} is missing from the batch")
    return batch.column(index)


def encode_batch(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    """Encode a batch in the logical ``schema`` into the petastorm storage schema.

    Arrays become ``np.save`` bytes (one per row; a missing row stays null), scalars are cast
    to their storage type.

    Args:
        batch: Rows in the logical schema (columns matched by name).
        schema: The logical schema of the dataset.

    Returns:
        A record batch in :func:`storage_schema` of ``schema``.

    Raises:
        SchemaMismatchError: A column is missing, an array is ragged or holds missing values,
            or a value does not fit its storage type (uint64 above 2**63-1).
    """
    fields = _fields(schema)
    arrays: list[pa.Array] = []
    for f in fields:
        column = _column(batch, f.name)
        if f.is_array:
            arrays.append(_encode_array(f, column))
            continue
        if pa.types.is_dictionary(column.type):
            column = column.dictionary_decode()
        if pa.types.is_float16(column.type):  # pyarrow 14 cannot cast half floats
            from cloudsdk.datasets._arrow_compat import half_to_float32

            column = half_to_float32(column)
        try:
            arrays.append(column if column.type == f.storage else column.cast(f.storage))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise SchemaMismatchError(
                f"column {f.name!r}: its values do not fit the petastorm storage type {f.storage}: {exc}"
            ) from exc
    return pa.RecordBatch.from_arrays(arrays, schema=pa.schema(
        [pa.field(f.name, f.storage, f.nullable) for f in fields]))


# --------------------------------------------------------------------------- decoding


def _decode_fixed(field: _Field, column: pa.Array, shape: tuple[int, ...]) -> pa.Array | None:
    """Vectorised decoding of an array column of fixed shape; None when the bytes do not
    have the expected layout (then the caller decodes row by row)."""
    assert field.array_dtype is not None
    header = np.frombuffer(_npy_header(field.array_dtype, shape), dtype=np.uint8)
    width = len(header) + int(np.prod(shape)) * field.array_dtype.itemsize
    n = len(column)
    valid = _valid_mask(column)
    buffers = column.buffers()
    offsets = np.frombuffer(buffers[1], dtype=np.int32, count=n + 1, offset=column.offset * 4)
    lengths = np.diff(offsets)
    if not (np.all(lengths[valid] == width) and np.all(lengths[~valid] == 0)):
        return None
    count = int(valid.sum())
    data = np.frombuffer(buffers[2], dtype=np.uint8) if buffers[2] is not None else np.zeros(0, np.uint8)
    start = int(offsets[0])
    rows = data[start:start + count * width].reshape(count, width)
    if count and not np.array_equal(rows[:, : len(header)], np.broadcast_to(header, (count, len(header)))):
        return None
    values = np.zeros((n, width - len(header)), dtype=np.uint8)
    values[valid] = rows[:, len(header):]
    flat = pa.array(values.reshape(-1).view(field.array_dtype))
    inner = _innermost(field.logical)
    if flat.type != inner:
        flat = flat.cast(inner)
    out: pa.Array = flat
    for level in reversed(_list_levels(field.logical)):
        out = pa.FixedSizeListArray.from_arrays(out, level.list_size)
    if not valid.all():
        validity = pa.array(valid, pa.bool_()).buffers()[1]
        out = pa.Array.from_buffers(field.logical, n, [validity], children=[out.values])
    return out.cast(field.logical) if out.type != field.logical else out


def _innermost(t: pa.DataType) -> pa.DataType:
    while _is_list(t):
        t = t.value_type
    return t


def _decode_array(field: _Field, column: pa.Array) -> pa.Array:
    levels = _list_levels(field.logical)
    if all(pa.types.is_fixed_size_list(t) for t in levels):
        shape = tuple(int(d) for d in field.shape if d is not None)
        decoded = _decode_fixed(field, column, shape)
        if decoded is not None:
            return decoded
    values: list[Any] = []
    for value in column.to_pylist():
        if value is None:
            values.append(None)
            continue
        try:
            arr = np.load(io.BytesIO(value), allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:
            raise SchemaMismatchError(f"column {field.name!r}: a value is not an np.save array") from exc
        values.append(arr.tolist())
    try:
        return pa.array(values, type=field.logical)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise SchemaMismatchError(
            f"column {field.name!r}: the stored arrays do not match {field.logical}: {exc}"
        ) from exc


def decode_batch(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    """Decode a batch read from a petastorm dataset's Parquet files back to the logical ``schema``.

    The inverse of :func:`encode_batch`: ``np.save`` bytes become (nested) lists of the
    logical type, widened scalars are cast back.

    Args:
        batch: Rows as stored (columns matched by name; other columns are ignored).
        schema: The logical schema of the dataset.

    Returns:
        A record batch in ``schema``.

    Raises:
        SchemaMismatchError: A column is missing or its values cannot be decoded.
    """
    arrays: list[pa.Array] = []
    for f in _fields(schema):
        column = _column(batch, f.name)
        if f.is_array:
            if pa.types.is_large_binary(column.type):
                column = column.cast(pa.binary())
            arrays.append(_decode_array(f, column))
            continue
        arrays.append(_cast_back(f, column))
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def _cast_back(field: _Field, column: pa.Array) -> pa.Array:
    target = field.logical
    if column.type == target:
        return column
    try:
        if pa.types.is_dictionary(target):
            value = _cast_back(_Field(field.name, target.value_type, field.storage, field.numpy_dtype,
                                      (), field.nullable), column)
            return value.dictionary_encode().cast(target)
        if pa.types.is_float16(target):
            np_values = column.to_numpy(zero_copy_only=False).astype(np.float16)
            return pa.array(np_values, pa.float16(), mask=~_valid_mask(column))
        if pa.types.is_fixed_size_binary(target):
            return pa.array(column.to_pylist(), target)
        return column.cast(target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise SchemaMismatchError(
            f"column {field.name!r}: stored type {column.type} cannot be read as {target}: {exc}"
        ) from exc


# --------------------------------------------------------------------------- the Unischema pickle


class _PetastormRef:
    """A class of petastorm's, named in the pickle but never imported here."""

    petastorm_name: tuple[str, str] = ("", "")


class _UnischemaRef(_PetastormRef):
    petastorm_name = ("petastorm.unischema", "Unischema")

    def __init__(self, state: dict[str, Any]) -> None:
        self.state = state

    def __reduce_ex__(self, protocol: Any) -> tuple[Any, ...]:
        # what pickle.dumps(Unischema) gives: cls.__new__(cls), then __dict__.update(state)
        return _NEWOBJ, (type(self),), self.state


class _NdarrayCodecRef(_PetastormRef):
    petastorm_name = ("petastorm.codecs", "NdarrayCodec")

    def __reduce_ex__(self, protocol: Any) -> tuple[Any, ...]:
        return _NEWOBJ, (type(self),), None


class _UnischemaFieldRef(tuple[Any, ...]):
    """A ``UnischemaField`` namedtuple: pickled as ``UnischemaField.__new__(cls, *values)``."""

    __slots__ = ()
    petastorm_name = ("petastorm.unischema", "UnischemaField")

    def __reduce_ex__(self, protocol: Any) -> tuple[Any, ...]:
        return _NEWOBJ, (type(self), *self), None


_REFS: tuple[type, ...] = (_UnischemaRef, _NdarrayCodecRef, _UnischemaFieldRef)


class _Pickler(pickle._Pickler):
    """Writes petastorm's module and class names for the stand-in classes above.

    The standard picklers check that a class can be imported by its name; petastorm cannot be
    imported here, so its names are written as plain ``GLOBAL`` opcodes instead.
    """

    def save_global(self, obj: Any, name: str | None = None) -> None:
        if isinstance(obj, type) and obj in _REFS:
            module, qualname = obj.petastorm_name  # type: ignore[attr-defined]
            this: Any = self  # write/memoize are not in typeshed's pickle._Pickler
            this.write(pickle.GLOBAL + f"{module}\n{qualname}\n".encode("ascii"))
            this.memoize(obj)
            return
        base: Any = super()
        base.save_global(obj, name)


def unischema_pickle(schema: pa.Schema, name: str = DEFAULT_SCHEMA_NAME) -> bytes:
    """The pickled ``petastorm.unischema.Unischema`` describing ``schema``.

    Unpickling it where petastorm is installed gives a ``Unischema`` of ``UnischemaField``s
    with ``NdarrayCodec()`` for arrays and no codec for scalars. Only petastorm, numpy,
    decimal and collections are named in it (what petastorm's restricted unpickler allows).

    Args:
        schema: The logical schema of the dataset.
        name: The Unischema's name (an identifier).
    """
    if not name.isidentifier():
        raise InvalidArgumentError(f"a Unischema name must be an identifier, got {name!r}")
    fields = [
        _UnischemaFieldRef((f.name, f.numpy_dtype, f.shape, _NdarrayCodecRef() if f.is_array else None,
                            f.nullable))
        for f in _fields(schema)
    ]
    state: dict[str, Any] = {"_name": name, "_fields": OrderedDict((f[0], f) for f in fields)}
    for f in fields:
        # Unischema.__init__ also exposes each field as an attribute
        state.setdefault(f[0], f)
    buf = io.BytesIO()
    _Pickler(buf, protocol=2).dump(_UnischemaRef(state))
    return buf.getvalue()


# --------------------------------------------------------------------------- _common_metadata


def common_metadata_schema(schema: pa.Schema, parts: Sequence[Any], *,
                           name: str = DEFAULT_SCHEMA_NAME) -> pa.Schema:
    """The storage schema with petastorm's metadata keys, as written to ``_common_metadata``.

    Args:
        schema: The logical schema of the dataset.
        parts: The dataset's data files: objects with ``.name`` (the file name, relative to the
            dataset directory) and ``.row_groups``.
        name: The Unischema's name.
    """
    row_groups = {str(p.name): int(p.row_groups) for p in parts}
    if not row_groups:
        raise InvalidArgumentError("a petastorm dataset needs at least one data file")
    metadata = dict(schema.metadata or {})
    metadata[UNISCHEMA_KEY] = unischema_pickle(schema, name)
    metadata[ROW_GROUPS_PER_FILE_KEY] = json.dumps(row_groups, sort_keys=True).encode()
    return storage_schema(schema).with_metadata(metadata)


def write_metadata(directory: Path | str, schema: pa.Schema, parts: Sequence[Any], *,
                   name: str = DEFAULT_SCHEMA_NAME, filesystem: Any = None) -> None:
    """Write ``_common_metadata`` into a petastorm dataset's directory.

    It holds the storage schema, the pickled Unischema and the row groups per file (what
    ``petastorm.make_reader`` needs); its name keeps it outside the ``part-r-*`` glob and
    petastorm's and pyarrow's dataset discovery (names starting with ``_`` are skipped).

    Args:
        directory: The dataset directory (one split's directory for a split dataset).
        schema: The logical schema of the dataset.
        parts: The data files in ``directory``: objects with ``.name``, ``.rows``,
            ``.row_groups`` and ``.bytes``.
        name: The Unischema's name.
        filesystem: A ``pyarrow.fs.FileSystem`` to write with; the local disk by default.

    Raises:
        InvalidArgumentError: ``parts`` is empty.
    """
    target = common_metadata_schema(schema, parts, name=name)
    path = f"{str(directory).rstrip('/')}/{COMMON_METADATA}"
    pq.write_metadata(target, path, filesystem=filesystem)


# --------------------------------------------------------------------------- reading with petastorm

_PETASTORM_INSTALL = (
    "petastorm is not installed; it works only with pyarrow <= 14 (see docs/legacy-environment.md): "
    "pip install 'pyarrow==14.0.2' 'numpy<2' dill diskcache future psutil pyzmq s3fs && "
    "pip install --no-deps petastorm==0.13.1"
)


def s3_filesystem(connector: Mapping[str, Any]) -> Any:
    """A filesystem for petastorm on S3, from an S3 storage connector's settings.

    petastorm 0.13.1 opens datasets with pyarrow 14's legacy ``ParquetDataset``, which needs a
    legacy ``pyarrow.filesystem.FileSystem`` and lists the dataset with its ``walk()``.
    pyarrow's ``S3FSWrapper`` walks with s3fs's ``_ls``, a coroutine in current s3fs; the
    filesystem returned here wraps an ``s3fs.S3FileSystem`` and walks with its synchronous
    ``ls``.

    Args:
        connector: ``{"region", "endpoint_url", "access_key", "secret_key", "session_token"}``
            (missing keys: the default AWS credential chain and endpoint).

    Raises:
        ImportError: s3fs is not installed, or pyarrow has no ``pyarrow.filesystem`` (>= 16:
            petastorm cannot run there anyway).
    """
    try:
        import s3fs
    except ImportError as exc:
        raise ImportError("reading petastorm datasets from S3 needs s3fs: pip install s3fs") from exc

    options: dict[str, Any] = {}
    client_kwargs: dict[str, Any] = {}
    if connector.get("access_key") and connector.get("secret_key"):
        options["key"] = connector["access_key"]
        options["secret"] = connector["secret_key"]
        if connector.get("session_token"):
            options["token"] = connector["session_token"]
    if connector.get("endpoint_url"):
        client_kwargs["endpoint_url"] = connector["endpoint_url"]
    if connector.get("region"):
        client_kwargs["region_name"] = connector["region"]
    if client_kwargs:
        options["client_kwargs"] = client_kwargs
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # pyarrow.filesystem is deprecated in 14
        return _sync_walk_wrapper()(s3fs.S3FileSystem(**options))


def _sync_walk_wrapper() -> type:
    try:
        from pyarrow.filesystem import S3FSWrapper
    except ImportError as exc:
        raise ImportError(_PETASTORM_INSTALL) from exc

    class SyncWalkS3FSWrapper(S3FSWrapper):
        """pyarrow's S3FSWrapper whose ``walk()`` uses s3fs's synchronous ``ls``."""

        def walk(self, path: str, refresh: bool = False) -> Iterator[tuple[str, list[str], list[str]]]:
            path = str(path).removeprefix("s3://").rstrip("/")
            entries = self.fs.ls(path, detail=True, refresh=refresh)
            dirs = sorted({e["name"].rstrip("/").rsplit("/", 1)[-1] for e in entries
                           if e["type"] == "directory" and e["name"].rstrip("/") != path})
            files = sorted(e["name"].rsplit("/", 1)[-1] for e in entries if e["type"] != "directory")
            yield path, dirs, files
            for d in dirs:
                yield from self.walk(f"{path}/{d}", refresh=refresh)

    return SyncWalkS3FSWrapper


def make_reader(url: str, *, batch: bool = True, connector: Mapping[str, Any] | None = None,
                **options: Any) -> Any:
    """Open a petastorm reader on a dataset directory (local path, ``file://`` or ``s3://``).

    Args:
        url: The dataset's directory (``get_training_dataset_path(...)``).
        batch: ``make_batch_reader`` (any Parquet dataset; arrays come back as ``np.save``
            bytes) when true, ``make_reader`` (petastorm datasets; arrays decoded to ndarrays)
            when false.
        connector: The S3 storage connector's settings for an ``s3://`` URL (see
            :func:`s3_filesystem`); ignored for local paths.
        **options: Passed to petastorm (``num_epochs``, ``schema_fields``,
            ``shuffle_row_groups``, ``cur_shard``/``shard_count``, ``workers_count``, ...).

    Returns:
        A ``petastorm.reader.Reader`` (use it as a context manager).

    Raises:
        ImportError: petastorm (or s3fs, for S3) is not installed.
    """
    try:
        import petastorm
    except ImportError as exc:
        raise ImportError(_PETASTORM_INSTALL) from exc

    if url.startswith(("s3://", "s3a://")):
        url = "s3://" + url.split("://", 1)[1]
        options.setdefault("filesystem", s3_filesystem(connector or {}))
    elif "://" not in url:
        url = Path(url).resolve().as_uri()
    opener = petastorm.make_batch_reader if batch else petastorm.make_reader
    reader = opener(url, **options)
    _guard_end_of_ventilation(reader)
    return reader


def _guard_end_of_ventilation(reader: Any) -> None:
    """Work around a race in petastorm 0.13.1's thread and dummy pools.

    Their ``get_results()`` ends the stream when all ventilated work is done, then checks that
    the ventilator has completed. If the ventilator hands out its last row group between the
    two checks, the reader stops early and that row group's rows are lost (seen with small
    datasets on a busy machine). Once the ventilator has completed the counts are final, so a
    second look at the queues after petastorm's "no more results" is exact.
    """
    from petastorm.workers_pool import EmptyResultError
    from petastorm.workers_pool.dummy_pool import DummyPool
    from petastorm.workers_pool.thread_pool import ThreadPool

    pool = getattr(reader, "_workers_pool", None)
    if type(pool) is ThreadPool:
        class GuardedThreadPool(ThreadPool):
            def get_results(self) -> Any:
                while True:
                    try:
                        return super().get_results()
                    except EmptyResultError:
                        if self.all_workers_done():
                            raise

        pool.__class__ = GuardedThreadPool
    elif type(pool) is DummyPool:
        class GuardedDummyPool(DummyPool):
            def get_results(self) -> Any:
                while True:
                    try:
                        return super().get_results()
                    except EmptyResultError:
                        if not self._ventilator_queue and not self._results_queue:
                            raise

        pool.__class__ = GuardedDummyPool
