"""The type rules of the training-dataset formats: what each can hold, the casts to and from it.

:func:`_refusal` says why a format cannot hold a column (the basis of
:func:`cloudsdk.datasets.formats.check_schema`); :func:`_storage_type` and :func:`_to_storage`
give what a format's writer is given for a logical type, and :func:`_restore` casts a column
read from a file back to its logical type. Only pyarrow 14 / numpy 1.26 APIs are used.
"""

from __future__ import annotations

import re

import numpy as np
import pyarrow as pa

from cloudsdk.datasets import tfrecord as tfr
from cloudsdk.errors import CloudSDKError, SchemaMismatchError, StorageError


def _write_schema(schema: pa.Schema) -> pa.Schema:
    """The logical schema without schema-level (pandas) metadata."""
    return pa.schema(list(schema))


def _is_var_list(t: pa.DataType) -> bool:
    return bool(pa.types.is_list(t) or pa.types.is_large_list(t))


def _is_listlike(t: pa.DataType) -> bool:
    return _is_var_list(t) or bool(pa.types.is_fixed_size_list(t))


def _dims(t: pa.DataType) -> tuple[list[int | None], pa.DataType]:
    """An array type's dimensions (None for a variable one) and its element type."""
    dims: list[int | None] = []
    while _is_listlike(t):
        dims.append(t.list_size if pa.types.is_fixed_size_list(t) else None)
        t = t.value_type
    if pa.types.is_dictionary(t):
        t = t.value_type
    return dims, t


def _is_number(t: pa.DataType) -> bool:
    return bool(pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t))


def _is_string(t: pa.DataType) -> bool:
    return bool(pa.types.is_string(t) or pa.types.is_large_string(t))


def _is_binary(t: pa.DataType) -> bool:
    return bool(pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t))


def _is_time(t: pa.DataType) -> bool:
    return bool(pa.types.is_timestamp(t) or pa.types.is_date(t))


_AVRO_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _refusal(field: pa.Field, fmt: str) -> str | None:
    """Why ``fmt`` cannot hold ``field`` (None when it can)."""
    if fmt == "tfrecords":
        try:
            tfr.check_schema(pa.schema([field]))
        except SchemaMismatchError:
            return "tf.train.Example holds numbers, strings, timestamps and arrays whose only variable dimension is the first"
        return None
    if fmt == "petastorm":
        from cloudsdk.datasets import petastorm as pz

        try:
            pz.storage_schema(pa.schema([field]))
        except CloudSDKError as exc:
            return f"petastorm: {exc.message}"
        return None
    if fmt == "avro" and not _AVRO_NAME.match(field.name):
        return "an avro field name is letters, digits and _ (not starting with a digit)"
    if fmt == "hdf5" and ("/" in field.name or field.name in (".", "_nulls")):
        return "an hdf5 dataset name cannot contain '/' or be '.' or '_nulls'"
    dims, leaf = _dims(field.type)
    if pa.types.is_struct(leaf) or pa.types.is_map(leaf):
        return None if fmt in ("parquet", "orc") else f"{fmt} cannot hold structs or maps"
    if fmt in ("parquet", "orc", "avro"):
        return None
    if fmt in ("csv", "tsv"):
        if dims:
            return f"a {fmt} cell holds one value, not an array"
        if _is_binary(leaf):
            return f"{fmt} cannot hold binary values"
        return None
    if pa.types.is_decimal(leaf) or _is_binary(leaf):
        return f"{fmt} cannot hold {'decimal' if pa.types.is_decimal(leaf) else 'binary'} values"
    if not dims:
        return None
    if not (_is_number(leaf) or (fmt == "npy" and _is_time(leaf))):
        return f"{fmt} arrays hold numbers{' and timestamps' if fmt == 'npy' else ''} only"
    if fmt == "npy" and None in dims:
        return "npy holds fixed-shape arrays only (one shape per file)"
    if fmt == "hdf5" and None in dims and dims != [None]:
        return "hdf5 holds fixed-shape arrays and one-dimensional variable-length lists"
    return None


def _has_struct(t: pa.DataType) -> bool:
    if pa.types.is_struct(t):
        return True
    return _is_listlike(t) and _has_struct(t.value_type)


def _has_half(t: pa.DataType) -> bool:
    if pa.types.is_float16(t):
        return True
    if pa.types.is_dictionary(t):
        return False
    return bool(_is_listlike(t) and _has_half(t.value_type)) or bool(
        pa.types.is_struct(t) and any(_has_half(f.type) for f in t))


def _no_half(t: pa.DataType) -> pa.DataType:
    """``t`` with float16 replaced by float32 (lists kept as list types)."""
    if pa.types.is_float16(t):
        return pa.float32()
    if pa.types.is_fixed_size_list(t):
        return pa.list_(_no_half(t.value_type), t.list_size)
    if pa.types.is_large_list(t):
        return pa.large_list(_no_half(t.value_type))
    if pa.types.is_list(t):
        return pa.list_(_no_half(t.value_type))
    if pa.types.is_struct(t):
        return pa.struct([pa.field(f.name, _no_half(f.type), f.nullable) for f in t])
    return t


def _storage_type(t: pa.DataType, fmt: str) -> pa.DataType:
    """The Arrow type a format's writer is given for logical type ``t`` (and reads back)."""
    if pa.types.is_dictionary(t):
        return t if fmt == "parquet" else _storage_type(t.value_type, fmt)
    if _is_listlike(t):
        # fixed-size lists are written as lists: pyarrow 14 cannot read back a null one
        inner = _storage_type(t.value_type, fmt)
        if fmt == "parquet" and inner.equals(t.value_type) and not pa.types.is_fixed_size_list(t):
            return t
        return pa.list_(inner)
    if pa.types.is_struct(t):
        return pa.struct([pa.field(f.name, _storage_type(f.type, fmt), f.nullable) for f in t])
    if pa.types.is_float16(t):
        return pa.float32()
    if fmt == "orc":
        widen = {8: pa.int16(), 16: pa.int32(), 32: pa.int64(), 64: pa.int64()}
        if pa.types.is_unsigned_integer(t):
            return widen[t.bit_width]
        if pa.types.is_date64(t):
            return pa.date32()
    if fmt in ("orc", "avro"):
        if pa.types.is_large_string(t):
            return pa.string()
        if pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t):
            return pa.binary()
    if fmt == "avro":
        if pa.types.is_integer(t):
            small = t.bit_width < 32 or (t.bit_width == 32 and pa.types.is_signed_integer(t))
            return pa.int32() if small else pa.int64()
        if pa.types.is_timestamp(t):
            return pa.int64()
        if pa.types.is_date(t):
            return pa.int32()
    if fmt in ("csv", "tsv") and pa.types.is_date64(t):
        return pa.date32()
    return t


def _avro_read_type(t: pa.DataType) -> pa.DataType:
    """The Arrow type of the values fastavro reads for logical type ``t``."""
    if pa.types.is_timestamp(t):
        return pa.timestamp("us", tz="UTC" if t.tz else None)
    if pa.types.is_date(t):
        return pa.date32()
    if pa.types.is_dictionary(t):
        return _avro_read_type(t.value_type)
    if _is_listlike(t):
        return pa.list_(_avro_read_type(t.value_type))
    return _storage_type(t, "avro")


def _normalised(t: pa.DataType) -> pa.DataType:
    """``t`` with timestamps in microseconds and dates as date32 (nested types too)."""
    if pa.types.is_timestamp(t):
        return pa.timestamp("us", tz=t.tz)
    if pa.types.is_date64(t):
        return pa.date32()
    if pa.types.is_large_list(t):
        return pa.large_list(_normalised(t.value_type))
    if pa.types.is_list(t):
        return pa.list_(_normalised(t.value_type))
    if pa.types.is_fixed_size_list(t):
        return pa.list_(_normalised(t.value_type), t.list_size)
    return t


def _to_storage(table: pa.Table | pa.RecordBatch, fmt: str) -> pa.Table:
    """Cast rows of the logical schema to what ``fmt``'s writer is given (safe casts only)."""
    if isinstance(table, pa.RecordBatch):  # pyarrow 14 cannot cast a RecordBatch
        table = pa.Table.from_batches([table])
    for i, field in enumerate(table.schema):
        if _has_half(field.type):  # pyarrow 14 cannot cast half floats: numpy does
            col = _restore(table.column(i), _no_half(field.type))
            table = table.set_column(i, pa.field(field.name, col.type, field.nullable), col)
    target = pa.schema([pa.field(f.name, _storage_type(f.type, fmt), f.nullable) for f in table.schema])
    if target.equals(table.schema):
        return table
    if fmt == "avro":
        table = table.cast(pa.schema([pa.field(f.name, _normalised(f.type), f.nullable) for f in table.schema]))
    return table.cast(target)


def _restore(arr: pa.Array | pa.ChunkedArray, t: pa.DataType) -> pa.Array:
    """Cast a column read from a file (its storage type) back to logical type ``t``."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks() if arr.num_chunks != 1 else arr.chunk(0)
    src = arr.type
    if src.equals(t):
        return arr
    if pa.types.is_dictionary(src):
        arr = arr.dictionary_decode()
        src = arr.type
    if pa.types.is_float16(src) and not pa.types.is_float16(t):
        arr = tfr.half_to_float32(arr)
        src = arr.type
        if src.equals(t):
            return arr
    if pa.types.is_dictionary(t):
        return tfr.dictionary_array(_restore(arr, t.value_type), t)
    if _is_listlike(t) and _is_listlike(src):
        return _restore_list(arr, t)
    if pa.types.is_timestamp(t) and pa.types.is_integer(src):
        return arr.cast(pa.int64()).cast(pa.timestamp("us", tz=t.tz)).cast(t)
    if pa.types.is_date(t) and pa.types.is_integer(src):
        return arr.cast(pa.int32()).cast(pa.date32()).cast(t)
    if pa.types.is_float16(t) and not pa.types.is_float16(src):
        return tfr.float_to_half(arr)
    return arr.cast(t)


def _restore_list(arr: pa.Array, t: pa.DataType) -> pa.Array:
    n = len(arr)
    valid = np.ones(n, dtype=bool) if arr.null_count == 0 else np.asarray(
        arr.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
    if pa.types.is_fixed_size_list(arr.type):
        k = arr.type.list_size
        child = arr.values.slice(arr.offset * k, n * k)
        offsets = np.arange(n + 1, dtype=np.int64) * k
    else:
        offsets = np.asarray(arr.offsets, dtype=np.int64)
        child = arr.values
    child = _restore(child, t.value_type)
    if pa.types.is_fixed_size_list(t):
        k = t.list_size
        lengths = np.diff(offsets)
        if bool((lengths[valid] != k).any()):
            raise StorageError(f"an array of the file does not have the fixed length {k} of {t}")
        if bool(valid.all()) and bool((offsets == offsets[0] + np.arange(n + 1) * k).all()):
            values = child.slice(int(offsets[0]), n * k)
        else:
            idx = np.repeat(np.where(valid, offsets[:-1], 0), k) + np.tile(np.arange(k), n)
            values = child.take(pa.array(idx, type=pa.int64(), mask=np.repeat(~valid, k)))
        out = pa.FixedSizeListArray.from_arrays(values, k)
        if not bool(valid.all()):
            out = out.take(pa.array(np.arange(n), type=pa.int64(), mask=~valid))
        return out.cast(t)
    off_type = pa.int64() if pa.types.is_large_list(t) else pa.int32()
    mask = None if bool(valid.all()) else np.concatenate([~valid, [False]])
    offsets_arr = pa.array(offsets, type=off_type, mask=mask)
    cls = pa.LargeListArray if pa.types.is_large_list(t) else pa.ListArray
    return cls.from_arrays(offsets_arr, child).cast(t)
