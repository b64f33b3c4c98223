"""The online-store contract and the helpers its backends share.

An online store keeps the *latest row per primary key* of each table, for
low-latency lookups at serving time. Every backend (SQLite, Redis,
MySQL/MariaDB) implements :class:`OnlineStore` with the same semantics:

* **Tables** are created with an Arrow schema and a primary key of one or more
  columns. Table and column names are ``[A-Za-z_][A-Za-z0-9_]{0,63}``
  (:class:`~cloudsdk.errors.InvalidNameError` otherwise). The schema is kept
  with the table (a metadata table or key in the backend), so reads return the
  exact Arrow types given at creation. ``create_table`` is idempotent for the
  same schema and key; a different one raises
  :class:`~cloudsdk.errors.SchemaMismatchError`.
* **Types**: booleans, signed integers, ``uint8``/``uint16``/``uint32``,
  ``float32``/``float64``, strings, binaries, timestamps (any unit and time
  zone), dates, times, durations, and (possibly nested) lists of booleans,
  integers, floats or strings. Values without a native column type are stored
  as their integer representation (temporal types) or as JSON (lists). Primary
  key columns must be booleans, integers, strings, binaries or temporal types.
* ``upsert`` writes rows; within one call and across calls the *last* row per
  key wins. Rows must carry exactly the table's columns; types must be equal
  or safely castable (``int32`` into ``int64``, ``int`` into ``float``, a
  timestamp unit change without loss ...). Validation happens before anything
  is written and the write itself is one transaction: a call that raises
  changes nothing.
* ``get`` returns one output row per key row, in the order of the keys, with
  the requested columns (default: all, in schema order) followed by the
  boolean column :data:`FOUND_COLUMN` (``"__found__"``). A key that is not
  stored (or has a null component) gives ``found = False`` and nulls in the
  non-key columns; key columns echo the requested keys.
* ``lookup`` is the fast path for serving: plain Python in and out, no Arrow. Keys are tuples
  of Python values in primary-key order; the result has, per key, a tuple of the requested
  columns' values (exactly what ``get(...).to_pylist()`` gives) or ``None`` when the key is not
  stored. Statements, key encoders and value decoders are prepared once per (table, columns).
* ``delete`` removes the rows of the given keys and returns how many existed.
* ``scan`` returns every stored row (order unspecified); ``count`` the number
  of rows.
* **Floats**: NaN and infinities round-trip on every backend (the SQL backends keep them in a
  side column, since SQLite stores NaN as NULL and MySQL refuses them in ``DOUBLE`` columns;
  the float column itself holds NULL for them).
* **Caches and other writers**: a store object caches each table's schema and prepared
  statements. Every table has a *generation* (new at each ``create_table``); lookups check it
  in the same statement or round trip that reads the rows, and writes check it inside their
  transaction, so a table dropped or re-created by another store object (another process) is
  noticed by the next call: it raises :class:`~cloudsdk.errors.NotFoundError` or works on the
  new table. ``refresh()`` drops the caches explicitly.
* **Threads**: every backend may be used from many threads at once (SQLite: one read
  connection per thread and one serialised writer, WAL mode; MySQL: a small connection pool;
  Redis: redis-py's pool).
* ``connection_info`` describes how to reach the store. It never contains the
  password unless asked for with ``include_password=True``; ``repr()`` never
  shows it.

Errors: an unknown table raises :class:`~cloudsdk.errors.NotFoundError`, an
unknown column :class:`~cloudsdk.errors.FeatureNotFoundError`; missing, extra
or wrongly typed columns :class:`~cloudsdk.errors.SchemaMismatchError` (for
``lookup``: a badly shaped or typed key :class:`~cloudsdk.errors.InvalidArgumentError`); null
primary keys in an upsert :class:`~cloudsdk.errors.DataValidationError`; a
failure of the backend underneath :class:`~cloudsdk.errors.StorageError`.
"""

from __future__ import annotations

import functools
import json
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

import pyarrow as pa

from cloudsdk.errors import (
    DataValidationError,
    FeatureNotFoundError,
    InvalidArgumentError,
    InvalidNameError,
    NotFoundError,
    SchemaMismatchError,
    UnsupportedError,
)

__all__ = [
    "FOUND_COLUMN",
    "METADATA_TABLE",
    "OnlineStore",
    "StaleTableError",
    "TableSpec",
    "check_name",
    "new_generation",
]

FOUND_COLUMN = "__found__"
"""Name of the boolean column ``get`` appends: whether the key was stored."""

METADATA_TABLE = "_cloudsdk_online_tables"
"""Name of the table (SQL backends) that keeps each table's schema and key."""

_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")

Kind = Literal["bool", "int", "float", "string", "binary", "temporal", "json"]


@runtime_checkable
class OnlineStore(Protocol):
    """Latest row per primary key, for serving; see the module docstring for the semantics."""

    def create_table(self, table: str, schema: pa.Schema, primary_key: Sequence[str]) -> None:
        """Create ``table`` (idempotent for the same schema and key)."""

    def drop_table(self, table: str, *, missing_ok: bool = False) -> None:
        """Drop ``table`` and its rows."""

    def has_table(self, table: str) -> bool:
        """Whether ``table`` exists."""

    def upsert(self, table: str, rows: pa.Table) -> int:
        """Write ``rows`` (last per key wins), atomically; return the number of keys written."""

    def delete(self, table: str, keys: pa.Table) -> int:
        """Delete the rows of ``keys``; return how many existed."""

    def get(self, table: str, keys: pa.Table, columns: Sequence[str] | None = None) -> pa.Table:
        """Look up ``keys``: one row per key row, in order, plus :data:`FOUND_COLUMN`."""

    def lookup(
        self,
        table: str,
        keys: Sequence[Sequence[Any]],
        columns: Sequence[str] | None = None,
    ) -> list[tuple[Any, ...] | None]:
        """Look up ``keys`` (Python tuples in primary-key order), plain Python in and out.

        Args:
            table: The online table.
            keys: One tuple (or list) per entity, its values in primary-key order: ints,
                strings, bytes, bools, or datetimes/dates/times/timedeltas for temporal keys
                (ISO strings and the stored integer are accepted too). Duplicates allowed.
            columns: The columns wanted, in order (default: all, in schema order).

        Returns:
            Per key, in order: a tuple of the columns' values (what ``get(...).to_pylist()``
            gives) or ``None`` when the key is not stored or has a null component.

        Raises:
            NotFoundError: No such table.
            FeatureNotFoundError: An unknown column.
            InvalidArgumentError: A key of the wrong arity or a value of the wrong type.
        """

    def refresh(self, table: str | None = None) -> None:
        """Forget the cached schema and statements of ``table`` (default: of every table)."""

    def scan(self, table: str, columns: Sequence[str] | None = None) -> pa.Table:
        """Every stored row of ``table``."""

    def count(self, table: str) -> int:
        """The number of rows of ``table``."""

    def connection_info(self, *, include_password: bool = False) -> dict[str, Any]:
        """How to reach the store (no password unless asked for)."""

    def close(self) -> None:
        """Release the connection(s)."""


def check_name(name: str, what: str = "table") -> str:
    """Return ``name`` if it is a valid table or column name.

    Args:
        name: The name to check.
        what: What it names, for the error message.

    Returns:
        The name unchanged.

    Raises:
        InvalidNameError: If it is not ``[A-Za-z_][A-Za-z0-9_]{0,63}``, or a table name starts
            with ``_cloudsdk``.
    """
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise InvalidNameError(
            f"invalid online {what} name {name!r}: use letters, digits and _ (at most 64, "
            "not starting with a digit)",
            name=name,
        )
    if name.lower().startswith("_cloudsdk"):
        raise InvalidNameError(f"online {what} name {name!r} is reserved", name=name)
    return name


def new_generation() -> str:
    """A fresh table generation (stored with the schema; new at every ``create_table``)."""
    return uuid.uuid4().hex


class StaleTableError(Exception):
    """Internal: the cached schema of a table is out of date (dropped or re-created elsewhere).

    Backends raise it from their read/write paths; the caller forgets the cache and retries.
    """

    def __init__(self, table: str) -> None:
        super().__init__(table)
        self.table = table


def _list_value_ok(t: pa.DataType) -> bool:
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        return _list_value_ok(t.value_type)
    return bool(
        pa.types.is_boolean(t)
        or (pa.types.is_integer(t) and t != pa.uint64())
        or (pa.types.is_floating(t) and t != pa.float16())
        or pa.types.is_string(t)
        or pa.types.is_large_string(t)
    )


def type_kind(t: pa.DataType) -> Kind:
    """How values of Arrow type ``t`` are stored.

    Raises:
        UnsupportedError: For a type no backend stores (decimals, structs, maps, uint64 ...).
    """
    if pa.types.is_boolean(t):
        return "bool"
    if pa.types.is_integer(t) and t != pa.uint64():
        return "int"
    if pa.types.is_floating(t) and t != pa.float16():
        return "float"
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return "string"
    if pa.types.is_binary(t) or pa.types.is_large_binary(t):
        return "binary"
    if (
        pa.types.is_timestamp(t)
        or pa.types.is_date(t)
        or pa.types.is_time(t)
        or pa.types.is_duration(t)
    ):
        return "temporal"
    if (
        pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t)
    ) and _list_value_ok(t.value_type):
        return "json"
    raise UnsupportedError(f"the online store cannot store values of type {t}", type=str(t))


def temporal_storage(t: pa.DataType) -> pa.DataType:
    """The integer type a temporal type is stored as (its Arrow storage type)."""
    return pa.int32() if t.bit_width == 32 else pa.int64()


def _compatible(src: pa.DataType, dst: pa.DataType) -> bool:
    """Whether a column of ``src`` may be cast into ``dst`` (values still checked)."""
    if src == dst or pa.types.is_null(src):
        return True
    try:
        sk, dk = type_kind(src), type_kind(dst)
    except UnsupportedError:
        return False
    if sk == dk == "temporal":
        return bool(
            (pa.types.is_timestamp(src) and pa.types.is_timestamp(dst))
            or (pa.types.is_date(src) and pa.types.is_date(dst))
            or (pa.types.is_time(src) and pa.types.is_time(dst))
            or (pa.types.is_duration(src) and pa.types.is_duration(dst))
        )
    return sk == dk or (sk == "int" and dk == "float")


def conform(data: pa.Table, fields: Sequence[pa.Field], what: str) -> list[pa.ChunkedArray]:
    """Return the columns of ``data`` for ``fields``, cast to the fields' types.

    Args:
        data: The caller's rows or keys.
        fields: The fields expected, exactly (no more, no fewer columns).
        what: "rows" or "keys", for messages.

    Raises:
        InvalidArgumentError: If ``data`` is not a pyarrow Table.
        SchemaMismatchError: Missing, extra or duplicated columns, an incompatible type, or a
            value that does not fit the column's type.
    """
    if isinstance(data, pa.RecordBatch):
        data = pa.Table.from_batches([data])
    if not isinstance(data, pa.Table):
        raise InvalidArgumentError(f"{what} must be a pyarrow.Table, got {type(data).__name__}")
    names = data.column_names
    expected = [f.name for f in fields]
    differences = [f"missing column {n!r}" for n in expected if n not in names]
    differences += [f"unexpected column {n!r}" for n in names if n not in expected]
    differences += [f"duplicated column {n!r}" for n in set(names) if names.count(n) > 1]
    if differences:
        raise SchemaMismatchError(f"the {what} do not match the online table", differences)
    out = []
    for f in fields:
        col = data.column(f.name)
        if col.type != f.type:
            if not _compatible(col.type, f.type):
                raise SchemaMismatchError(
                    f"the {what} do not match the online table",
                    [f"column {f.name!r}: expected {f.type}, got {col.type}"],
                )
            try:
                col = col.cast(f.type, safe=True)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                raise SchemaMismatchError(
                    f"the {what} do not match the online table",
                    [f"column {f.name!r}: a value does not fit {f.type}: {exc}"],
                ) from exc
        out.append(col)
    return out


def _json_default(value: Any) -> Any:
    raise TypeError(f"cannot store {type(value).__name__} in a list column")


def encode_column(col: pa.ChunkedArray | pa.Array, kind: Kind) -> list[Any]:
    """Python values to store for an Arrow column: ``None`` for nulls.

    Booleans become ``0``/``1``, temporal values their integer, lists a JSON string.
    """
    if kind == "temporal":
        return col.cast(temporal_storage(col.type)).to_pylist()
    values = col.to_pylist()
    if kind == "bool":
        return [None if v is None else int(v) for v in values]
    if kind == "json":
        return [
            None if v is None else json.dumps(v, separators=(",", ":"), default=_json_default)
            for v in values
        ]
    return values


def decode_column(values: list[Any], field: pa.Field, kind: Kind) -> pa.Array:
    """The Arrow array of ``field``'s type for stored python values (see :func:`encode_column`)."""
    t = field.type
    if kind == "temporal":
        return pa.array(values, type=temporal_storage(t)).cast(t)
    if kind == "bool":
        return pa.array([None if v is None else bool(v) for v in values], type=t)
    if kind == "json":  # JSON text (SQL backends) or the list itself (Redis rows)
        return pa.array(
            [json.loads(v) if isinstance(v, str | bytes) else v for v in values], type=t
        )
    return pa.array(values, type=t)


@dataclass(frozen=True)
class TableSpec:
    """A table's schema and primary key, with what each backend needs to encode values."""

    name: str
    schema: pa.Schema
    primary_key: tuple[str, ...]
    generation: str = field(default="", compare=False)
    """Changes at every ``create_table`` of the name: tells a cached spec from the current one."""

    @functools.cached_property
    def kinds(self) -> dict[str, Kind]:
        """Storage kind per column."""
        return {f.name: type_kind(f.type) for f in self.schema}

    @functools.cached_property
    def float_columns(self) -> tuple[str, ...]:
        """The (scalar) float columns, in schema order."""
        return tuple(n for n, k in self.kinds.items() if k == "float")

    @functools.cached_property
    def key_fields(self) -> list[pa.Field]:
        """The primary-key fields, in key order."""
        return [self.schema.field(n) for n in self.primary_key]

    @functools.cached_property
    def _fields(self) -> dict[str, pa.Field]:
        return {f.name: f for f in self.schema}

    @functools.cached_property
    def _out_schemas(self) -> dict[tuple[tuple[str, ...], bool], pa.Schema]:
        return {}

    def _out_schema(self, columns: list[str], lookup: bool) -> pa.Schema:
        cache_key = (tuple(columns), lookup)
        schema = self._out_schemas.get(cache_key)
        if schema is None:
            fields = [self._fields[c] for c in columns]
            if lookup:
                fields = [f.with_nullable(True) for f in fields]
                fields.append(pa.field(FOUND_COLUMN, pa.bool_(), nullable=False))
            schema = self._out_schemas[cache_key] = pa.schema(fields)
        return schema

    def serialize(self) -> tuple[bytes, str]:
        """The schema as Arrow IPC bytes and the key as JSON, for the metadata store."""
        return self.schema.serialize().to_pybytes(), json.dumps(list(self.primary_key))

    @classmethod
    def deserialize(
        cls, name: str, schema: bytes, primary_key: str | bytes, generation: str | bytes | None = ""
    ) -> TableSpec:
        """The inverse of :meth:`serialize` (plus the stored generation)."""
        if isinstance(generation, bytes):
            generation = generation.decode()
        return cls(
            name,
            pa.ipc.read_schema(pa.py_buffer(schema)),
            tuple(json.loads(primary_key)),
            generation or "",
        )

    def with_generation(self, generation: str) -> TableSpec:
        """This spec with another generation."""
        return TableSpec(self.name, self.schema, self.primary_key, generation)

    @classmethod
    def build(cls, table: str, schema: pa.Schema, primary_key: Sequence[str]) -> TableSpec:
        """Validate a create_table request.

        Raises:
            InvalidNameError: A bad table or column name.
            InvalidArgumentError: A bad schema or primary key.
            UnsupportedError: A column type no backend stores.
        """
        check_name(table)
        if not isinstance(schema, pa.Schema):
            raise InvalidArgumentError("schema must be a pyarrow.Schema")
        if len(schema) == 0:
            raise InvalidArgumentError("the schema has no columns")
        names = schema.names
        for n in names:
            check_name(n, "column")
            if n == FOUND_COLUMN:
                raise InvalidNameError(f"column name {FOUND_COLUMN!r} is reserved", name=n)
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise InvalidArgumentError(f"duplicated columns {dup}")
        if isinstance(primary_key, str):
            primary_key = [primary_key]
        pk = tuple(primary_key)
        if not pk:
            raise InvalidArgumentError("an online table needs a primary key")
        if len(set(pk)) != len(pk):
            raise InvalidArgumentError(f"duplicated primary key columns {list(pk)}")
        for n in pk:
            if n not in names:
                raise InvalidArgumentError(f"primary key column {n!r} is not in the schema")
        for f in schema:
            kind = type_kind(f.type)
            if f.name in pk and kind not in ("bool", "int", "string", "binary", "temporal"):
                raise InvalidArgumentError(
                    f"primary key column {f.name!r} has type {f.type}: keys must be booleans, "
                    "integers, strings, binaries or temporal types"
                )
        return cls(table, schema, pk)

    def same_as(self, other: TableSpec) -> bool:
        """Whether two specs describe the same table layout."""
        return self.primary_key == other.primary_key and self.schema.equals(
            other.schema, check_metadata=False
        )

    def check_same(self, wanted: TableSpec) -> None:
        """For an existing table: raise unless it has ``wanted``'s schema and primary key.

        Raises:
            SchemaMismatchError: It was created with another schema or key.
        """
        if not self.same_as(wanted):
            raise SchemaMismatchError(
                f"online table {self.name!r} exists with another schema or primary key",
                [f"existing: {self.schema} key {list(self.primary_key)}"],
                table=self.name,
            )

    def check_columns(self, columns: Sequence[str] | None) -> list[str]:
        """The requested columns (default all), validated.

        Raises:
            FeatureNotFoundError: A column the table does not have.
        """
        if columns is None:
            return list(self.schema.names)
        if isinstance(columns, str):
            columns = [columns]
        out = list(columns)
        for c in out:
            if c not in self._fields:
                raise FeatureNotFoundError(
                    f"online table {self.name!r} has no column {c!r}", table=self.name, column=c
                )
        return out

    def encode_rows(
        self, rows: pa.Table, *, nonfinite: Literal["nan", "all"] | None = None
    ) -> list[tuple[Any, ...]]:
        """Validate and encode ``rows``: one tuple per distinct key (last wins), schema order.

        Args:
            rows: The rows.
            nonfinite: For SQL columns that cannot hold them: ``"nan"`` (SQLite) or ``"all"``
                (MySQL) moves NaN (or NaN and infinities) of the float columns out of the row
                into one more value at its end, JSON ``{"column": NaN, ...}`` (None when the row
                has none), leaving NULL in their place.

        Raises:
            SchemaMismatchError: See :func:`conform`.
            DataValidationError: A null primary-key value.
        """
        cols = conform(rows, list(self.schema), "rows")
        kinds = self.kinds
        encoded = [encode_column(c, kinds[f.name]) for c, f in zip(cols, self.schema, strict=True)]
        if nonfinite is not None:
            encoded.append(self._move_nonfinite(cols, encoded, nonfinite))
        key_idx = [self.schema.get_field_index(n) for n in self.primary_key]
        latest: dict[tuple[Any, ...], tuple[Any, ...]] = {}
        for row in zip(*encoded, strict=True):
            key = tuple(row[i] for i in key_idx)
            if None in key:
                raise DataValidationError(
                    f"null primary key value in rows for online table {self.name!r}",
                    table=self.name,
                )
            latest[key] = row
        return list(latest.values())

    def _move_nonfinite(
        self, cols: list[pa.ChunkedArray], encoded: list[list[Any]], which: str
    ) -> list[str | None]:
        import pyarrow.compute as pc

        side: list[dict[str, float] | None] = [None] * (len(cols[0]) if cols else 0)
        for j, f in enumerate(self.schema):
            if self.kinds[f.name] != "float":
                continue
            bad = pc.is_nan(cols[j]) if which == "nan" else pc.invert(pc.is_finite(cols[j]))
            if not pc.any(bad).as_py():
                continue
            values = encoded[j]
            for i in pc.indices_nonzero(pc.fill_null(bad, False)).to_pylist():
                entry = side[i]
                if entry is None:
                    entry = side[i] = {}
                entry[f.name] = values[i]
                values[i] = None
        return [None if d is None else json.dumps(d) for d in side]

    def encode_keys(self, keys: pa.Table) -> tuple[list[pa.ChunkedArray], list[tuple[Any, ...]]]:
        """Validate and encode lookup keys.

        Returns:
            The key columns cast to the key types (key order) and one encoded tuple per key row
            (tuples with a ``None`` cannot match any stored row).

        Raises:
            SchemaMismatchError: Missing, extra or wrongly typed key columns.
        """
        cols = conform(keys, self.key_fields, "keys")
        kinds = self.kinds
        encoded = [encode_column(c, kinds[n]) for c, n in zip(cols, self.primary_key, strict=True)]
        return cols, list(zip(*encoded, strict=True))

    def result(
        self,
        columns: list[str],
        values: dict[str, list[Any]],
        *,
        key_cols: list[pa.ChunkedArray] | None = None,
        found: list[bool] | None = None,
    ) -> pa.Table:
        """Assemble an output table from stored python values per column.

        Args:
            columns: Output columns, in order.
            values: Stored python values per column (non-key columns, or all for a scan).
            key_cols: For a lookup, the requested key columns (echoed in the output).
            found: For a lookup, whether each key was found (appended as FOUND_COLUMN).
        """
        kinds = self.kinds
        decoded: dict[str, pa.Array | pa.ChunkedArray] = {}
        if key_cols is not None:
            for c in columns:
                if c in self.primary_key:
                    decoded[c] = key_cols[self.primary_key.index(c)]
        # Columns of one plain type (say 15 float64 features) are built as one array and
        # sliced: one pa.array call instead of one per column, which dominates small lookups.
        groups: dict[pa.DataType, list[str]] = {}
        for c in columns:
            if c not in decoded:
                f = self._fields[c]
                if kinds[c] in ("int", "float", "string", "binary"):
                    groups.setdefault(f.type, []).append(c)
                else:
                    decoded[c] = decode_column(values[c], f, kinds[c])
        for t, names in groups.items():
            if len(names) == 1:
                decoded[names[0]] = pa.array(values[names[0]], type=t)
                continue
            n = len(values[names[0]])
            whole = pa.array([v for c in names for v in values[c]], type=t)
            for j, c in enumerate(names):
                decoded[c] = whole.slice(j * n, n)
        arrays: list[pa.Array | pa.ChunkedArray] = [decoded[c] for c in columns]
        if found is not None:
            arrays.append(pa.array(found, type=pa.bool_()))
        return pa.Table.from_arrays(arrays, schema=self._out_schema(columns, found is not None))


class TableLookup:
    """What every backend shares on top of its own ``_spec(table)`` (the schema of a table,
    NotFoundError when it does not exist)."""

    def _spec(self, table: str) -> TableSpec:
        raise NotImplementedError

    def has_table(self, table: str) -> bool:
        """Whether ``table`` exists."""
        try:
            self._spec(table)
        except NotFoundError:
            return False
        return True
