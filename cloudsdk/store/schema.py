"""Feature types: Arrow schemas, the types shown to users, and what Delta Lake can store.

A feature group keeps its *logical* Arrow schema (what the user wrote) in the catalog.
Delta Lake cannot hold some Arrow types (unsigned integers, float16, dictionaries,
fixed-size lists, nanosecond timestamps), so each is written as a *storage* type and
cast back on read: every value survives the round trip unchanged.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from cloudsdk._names import validate_feature_name
from cloudsdk.errors import SchemaMismatchError, UnsupportedError

__all__ = [
    "conform",
    "deserialize_schema",
    "feature_type",
    "serialize_schema",
    "storage_schema",
    "to_storage",
]


def feature_type(t: pa.DataType) -> str:
    """The user-facing (Hive/Spark style) name of an Arrow type, e.g. ``bigint``, ``array<float>``."""
    if pa.types.is_boolean(t):
        return "boolean"
    if pa.types.is_int8(t):
        return "tinyint"
    if pa.types.is_int16(t) or pa.types.is_uint8(t):
        return "smallint"
    if pa.types.is_int32(t) or pa.types.is_uint16(t):
        return "int"
    if pa.types.is_int64(t) or pa.types.is_uint32(t) or pa.types.is_uint64(t):
        return "bigint"
    if pa.types.is_float16(t) or pa.types.is_float32(t):
        return "float"
    if pa.types.is_float64(t):
        return "double"
    if pa.types.is_decimal(t):
        return f"decimal({t.precision},{t.scale})"
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return "string"
    if pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t):
        return "binary"
    if pa.types.is_timestamp(t):
        return "timestamp"
    if pa.types.is_date(t):
        return "date"
    if pa.types.is_dictionary(t):
        return feature_type(t.value_type)
    if pa.types.is_fixed_size_list(t):
        return f"array<{feature_type(t.value_type)}>[{t.list_size}]"
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_list_view(t):
        return f"array<{feature_type(t.value_type)}>"
    if pa.types.is_struct(t):
        inner = ",".join(f"{f.name}:{feature_type(f.type)}" for f in t)
        return f"struct<{inner}>"
    raise UnsupportedError(f"feature type {t} is not supported", arrow_type=str(t))


def _storage_type(t: pa.DataType) -> pa.DataType:
    """The Arrow type Delta Lake stores for logical type ``t``."""
    if pa.types.is_uint8(t):
        return pa.int16()
    if pa.types.is_uint16(t):
        return pa.int32()
    if pa.types.is_uint32(t) or pa.types.is_uint64(t):
        return pa.int64()
    if pa.types.is_float16(t):
        return pa.float32()
    if pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return pa.string()
    if pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t):
        return pa.binary()
    if pa.types.is_dictionary(t):
        return _storage_type(t.value_type)
    if pa.types.is_timestamp(t):
        return pa.timestamp("us", tz="UTC" if t.tz else None)
    if pa.types.is_date64(t):
        return pa.date32()
    if pa.types.is_fixed_size_list(t) or pa.types.is_large_list(t) or pa.types.is_list_view(t):
        return pa.list_(_storage_type(t.value_type))
    if pa.types.is_list(t):
        return pa.list_(_storage_type(t.value_type))
    if pa.types.is_struct(t):
        return pa.struct([pa.field(f.name, _storage_type(f.type), f.nullable) for f in t])
    if pa.types.is_null(t):
        raise UnsupportedError(
            "a column has only nulls and no type: give it a type (e.g. df[col].astype('float64'))"
        )
    feature_type(t)  # raises UnsupportedError for types we do not know
    return t


def storage_schema(schema: pa.Schema) -> pa.Schema:
    """The Delta-compatible schema for a logical schema."""
    return pa.schema([pa.field(f.name, _storage_type(f.type), True) for f in schema])


def to_storage(table: pa.Table, logical: pa.Schema) -> pa.Table:
    """Cast a table already conformed to ``logical`` into its storage schema.

    Raises:
        SchemaMismatchError: a value cannot be stored without loss (e.g. nanoseconds).
    """
    target = storage_schema(logical)
    try:
        return table.cast(target, safe=True)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise SchemaMismatchError(
            "values cannot be stored without loss (timestamps are kept to the microsecond, "
            f"unsigned 64-bit integers up to 2**63-1): {exc}"
        ) from exc


def from_storage(table: pa.Table, logical: pa.Schema) -> pa.Table:
    """Cast a table read from storage back to the logical types of its columns."""
    fields = [logical.field(name) for name in table.column_names if name in logical.names]
    if len(fields) != table.num_columns:
        return table
    target = pa.schema(fields)
    if not table.schema.equals(target):
        table = table.cast(target, safe=False)
    return with_pandas_metadata(table, [logical])


_INT_ORDER = [pa.int8(), pa.int16(), pa.int32(), pa.int64()]


def _lossless(src: pa.DataType, dst: pa.DataType) -> bool:
    """Whether values of ``src`` always fit ``dst`` unchanged (a widening)."""
    if src.equals(dst):
        return True
    if pa.types.is_null(src):
        return True
    if pa.types.is_dictionary(src):
        return _lossless(src.value_type, dst)
    if pa.types.is_dictionary(dst):
        return _lossless(src, dst.value_type)
    if pa.types.is_signed_integer(src) and pa.types.is_signed_integer(dst):
        return src.bit_width <= dst.bit_width
    if pa.types.is_unsigned_integer(src) and pa.types.is_integer(dst):
        return src.bit_width < dst.bit_width or (
            pa.types.is_unsigned_integer(dst) and src.bit_width <= dst.bit_width
        )
    if pa.types.is_floating(src) and pa.types.is_floating(dst):
        return src.bit_width <= dst.bit_width
    if pa.types.is_integer(src) and pa.types.is_floating(dst):
        return (src.bit_width <= 32 and dst.bit_width == 64) or src.bit_width <= 16
    strings = (pa.types.is_string, pa.types.is_large_string, pa.types.is_string_view)
    if any(f(src) for f in strings) and any(f(dst) for f in strings):
        return True
    binaries = (pa.types.is_binary, pa.types.is_large_binary)
    if any(f(src) for f in binaries) and any(f(dst) for f in binaries):
        return True
    if pa.types.is_timestamp(src) and pa.types.is_timestamp(dst):
        return (src.tz is None) == (dst.tz is None)
    if pa.types.is_date(src) and pa.types.is_date(dst):
        return True
    if pa.types.is_decimal(src) and pa.types.is_decimal(dst):
        return src.scale <= dst.scale and src.precision - src.scale <= dst.precision - dst.scale
    src_list = pa.types.is_list(src) or pa.types.is_large_list(src) or pa.types.is_fixed_size_list(src)
    dst_list = pa.types.is_list(dst) or pa.types.is_large_list(dst) or pa.types.is_fixed_size_list(dst)
    if src_list and dst_list:
        if pa.types.is_fixed_size_list(dst) and not (
            pa.types.is_fixed_size_list(src) and src.list_size == dst.list_size
        ):
            return False  # checked per value in conform()
        return _lossless(src.value_type, dst.value_type)
    return False


def _fixed_list_ok(col: pa.ChunkedArray, dst: pa.DataType) -> bool:
    """Whether every non-null list in ``col`` has the fixed length of ``dst``."""
    lengths = pc.list_value_length(col)
    bad = pc.sum(pc.not_equal(lengths, dst.list_size)).as_py()
    return not bad


def conform(table: pa.Table, logical: pa.Schema, *, what: str = "the feature group") -> pa.Table:
    """Return ``table`` with exactly the columns and types of ``logical``.

    Columns are matched by name (order does not matter); types may be widened
    losslessly (int32 into bigint, float into double); anything else is an error.

    Raises:
        SchemaMismatchError: listing every missing column, extra column and type mismatch.
    """
    differences: list[str] = []
    names = set(table.column_names)
    for f in logical:
        if f.name not in names:
            differences.append(f"missing column {f.name!r} ({feature_type(f.type)})")
    for name in table.column_names:
        if name not in logical.names:
            differences.append(f"unexpected column {name!r} (not a feature of {what})")
    arrays = []
    for f in logical:
        if f.name not in names:
            continue
        col = table.column(f.name)
        if not _lossless(col.type, f.type):
            fixed = (
                pa.types.is_fixed_size_list(f.type)
                and (pa.types.is_list(col.type) or pa.types.is_large_list(col.type))
                and _lossless(col.type.value_type, f.type.value_type)
            )
            if fixed and _fixed_list_ok(col, f.type):
                pass
            else:
                differences.append(
                    f"column {f.name!r} has type {feature_type(col.type)} ({col.type}), "
                    f"expected {feature_type(f.type)} ({f.type})"
                )
                continue
        arrays.append(col)
    if differences:
        raise SchemaMismatchError(
            f"the dataframe does not match the schema of {what}", differences
        )
    out = pa.table(arrays, names=logical.names)
    try:
        return out.cast(logical, safe=True)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise SchemaMismatchError(f"the dataframe cannot be converted to {what}'s types: {exc}") from exc


def check_columns(schema: pa.Schema) -> None:
    """Validate the column names of a new feature group's schema."""
    seen: dict[str, str] = {}
    for name in schema.names:
        validate_feature_name(name)
        low = name.lower()
        if low in seen:
            raise SchemaMismatchError(
                f"columns {seen[low]!r} and {name!r} differ only in case; rename one"
            )
        seen[low] = name
    for f in schema:
        _storage_type(f.type)


def keep_pandas_metadata(schema: pa.Schema, source: pa.Schema | None) -> pa.Schema:
    """``schema`` carrying only the pandas column metadata of ``source`` (its dtypes, e.g.
    nullable ``Int64``), so that reads give pandas users back the dtypes they wrote."""
    raw = (source.metadata or {}).get(b"pandas") if source is not None else None
    if not raw:
        return schema.remove_metadata()
    meta = json.loads(raw)
    names = set(schema.names)
    keep = {
        "index_columns": [],
        "column_indexes": [],
        "columns": [c for c in meta.get("columns", []) if c.get("field_name") in names],
        "pandas_version": meta.get("pandas_version"),
    }
    return schema.remove_metadata().with_metadata({b"pandas": json.dumps(keep).encode()})


def with_pandas_metadata(table: pa.Table, sources: Sequence[pa.Schema]) -> pa.Table:
    """``table`` with the pandas column metadata its columns had when written (if any)."""
    entries: dict[str, Any] = {}
    version = None
    for src in sources:
        raw = (src.metadata or {}).get(b"pandas")
        if not raw:
            continue
        meta = json.loads(raw)
        version = version or meta.get("pandas_version")
        for c in meta.get("columns", []):
            entries.setdefault(c.get("field_name"), c)
    cols = [entries[n] for n in table.column_names if n in entries]
    if not cols:
        return table
    meta = {"index_columns": [], "column_indexes": [], "columns": cols, "pandas_version": version}
    return table.replace_schema_metadata({b"pandas": json.dumps(meta).encode()})


def serialize_schema(schema: pa.Schema) -> str:
    """Serialize an Arrow schema (with pandas column metadata, if any) to text for the catalog."""
    return base64.b64encode(schema.serialize().to_pybytes()).decode("ascii")


def deserialize_schema(text: str) -> pa.Schema:
    """Inverse of :func:`serialize_schema`."""
    return pa.ipc.read_schema(pa.py_buffer(base64.b64decode(text)))


def check_keys(logical: pa.Schema, primary_key: Sequence[str], event_time: str | None, *,
               source: str = "the dataframe") -> None:
    """Primary-key columns must be columns of integers, strings, dates or timestamps; the
    event time a timestamp or date column (``source`` names where the columns come from)."""
    missing = [c for c in primary_key if c not in logical.names]
    if missing:
        raise SchemaMismatchError(
            f"primary key column(s) {missing} are not columns of {source} (columns: {', '.join(logical.names)})")
    for c in primary_key:
        t = logical.field(c).type
        if pa.types.is_floating(t) or pa.types.is_list(t) or pa.types.is_fixed_size_list(t):
            raise SchemaMismatchError(f"primary key column {c!r} has type {feature_type(t)}; "
                                      "use integers, strings, dates or timestamps")
    if event_time is not None:
        if event_time not in logical.names:
            raise SchemaMismatchError(f"event_time column {event_time!r} is not a column of {source}")
        t = logical.field(event_time).type
        if not (pa.types.is_timestamp(t) or pa.types.is_date(t)):
            raise SchemaMismatchError(
                f"event_time column {event_time!r} must be a timestamp or date, not {feature_type(t)}")
