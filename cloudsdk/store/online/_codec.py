"""Plain-Python codecs of the fast lookup path (:meth:`OnlineStore.lookup`): no Arrow per call.

* :class:`KeyEncoder` turns the caller's key tuples (Python values: ints, strings, bytes, bools,
  datetimes ...) into the stored form that ``upsert`` writes (booleans as ``0``/``1``, temporal
  values as their integer in the column's unit), validating them cheaply.
* :func:`value_decoder` turns one stored value back into exactly the Python value that
  ``pyarrow``'s ``to_pylist()`` gives for the column's type (time zones included).
* :func:`restore_nonfinite` puts back the NaN / infinities that the SQL backends keep aside
  (SQLite turns NaN into NULL; MySQL refuses NaN and infinities in ``DOUBLE`` columns).

Everything here is built once per (table, columns) and cached by the backends.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import operator
from collections.abc import Callable, Sequence
from typing import Any, Literal

import pyarrow as pa

from cloudsdk.errors import InvalidArgumentError
from cloudsdk.store.online.base import Kind, TableSpec, temporal_storage

__all__ = [
    "NONFINITE_COLUMN",
    "KeyEncoder",
    "decode_row",
    "float_positions",
    "has_side_column",
    "output_decoders",
    "restore_nonfinite",
    "value_decoder",
]

NONFINITE_COLUMN = "_cloudsdk_nonfinite"
"""SQL column that keeps a row's non-finite floats: JSON ``{"column": NaN, ...}`` or NULL."""


def has_side_column(spec: TableSpec) -> bool:
    """Whether a SQL table has the :data:`NONFINITE_COLUMN`: every table with float columns
    made by a version that gives tables a generation (older ones have neither)."""
    return bool(spec.generation) and bool(spec.float_columns)


Source = Literal["sql", "json"]
"""Where stored values come from: a SQL driver (lists as JSON text) or a JSON row (Redis)."""

_EPOCH = dt.datetime(1970, 1, 1)
_EPOCH_UTC = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_EPOCH_DATE = dt.date(1970, 1, 1)
_US_PER_UNIT = {"s": 1_000_000, "ms": 1_000, "us": 1}
_NS_PER_UNIT = {"s": 1_000_000_000, "ms": 1_000_000, "us": 1_000, "ns": 1}
_DAY_MS = 86_400_000


# ---------------------------------------------------------------------- decoders
def _via_arrow(t: pa.DataType) -> Callable[[Any], Any]:
    """Exactly what pyarrow gives (pandas objects for nanoseconds when pandas is importable)."""
    storage = temporal_storage(t)

    def decode(v: Any) -> Any:
        return pa.scalar(v, type=storage).cast(t).as_py()

    return decode


def _temporal_decoder(t: pa.DataType) -> Callable[[Any], Any]:
    unit = str(getattr(t, "unit", ""))
    if pa.types.is_timestamp(t):
        if unit == "ns":
            return _via_arrow(t)
        mult = _US_PER_UNIT[unit]
        if t.tz is None:
            return lambda v: _EPOCH + dt.timedelta(microseconds=v * mult)
        # The tzinfo object pyarrow itself uses (zoneinfo for names, timezone for offsets).
        tzinfo = pa.scalar(0, type=pa.int64()).cast(t).as_py().tzinfo
        return lambda v: (_EPOCH_UTC + dt.timedelta(microseconds=v * mult)).astimezone(tzinfo)
    if pa.types.is_date32(t):
        return lambda v: _EPOCH_DATE + dt.timedelta(days=v)
    if pa.types.is_date64(t):
        return lambda v: _EPOCH_DATE + dt.timedelta(days=v // _DAY_MS)
    if pa.types.is_time(t):
        per_ns = _NS_PER_UNIT[unit]

        def time_of(v: int) -> dt.time:
            us = v * per_ns // 1000  # nanoseconds are truncated, as pyarrow does
            h, rest = divmod(us, 3_600_000_000)
            m, rest = divmod(rest, 60_000_000)
            s, us = divmod(rest, 1_000_000)
            return dt.time(h, m, s, us)

        return time_of
    if unit == "ns":  # duration[ns]
        return _via_arrow(t)
    mult = _US_PER_UNIT[unit]
    return lambda v: dt.timedelta(microseconds=v * mult)


def value_decoder(field: pa.Field, kind: Kind, source: Source) -> Callable[[Any], Any] | None:
    """The function from a stored (non-null) value to its Python value, or None for identity."""
    if kind == "temporal":
        return _temporal_decoder(field.type)
    if source == "sql":
        if kind == "bool":
            return bool
        if kind == "json":
            return json.loads
        return None  # ints, floats, str, bytes come back from the driver as they are
    if kind == "binary":
        return base64.b64decode
    return None  # JSON rows hold bools, ints, floats, str and lists natively


def output_decoders(
    spec: TableSpec, columns: Sequence[str], source: Source
) -> tuple[tuple[int, Callable[[Any], Any]], ...]:
    """``(output position, decoder)`` for the output columns that need decoding."""
    kinds = spec.kinds
    out = []
    for i, c in enumerate(columns):
        fn = value_decoder(spec.schema.field(c), kinds[c], source)
        if fn is not None:
            out.append((i, fn))
    return tuple(out)


def decode_row(
    values: Sequence[Any], decoders: tuple[tuple[int, Callable[[Any], Any]], ...]
) -> tuple[Any, ...]:
    """Apply ``decoders`` to a row of stored values."""
    if not decoders:
        return tuple(values)
    row = list(values)
    for i, fn in decoders:
        v = row[i]
        if v is not None:
            row[i] = fn(v)
    return tuple(row)


def float_positions(columns: Sequence[str], spec: TableSpec) -> dict[str, list[int]]:
    """Output positions of each float column among ``columns`` (for :func:`restore_nonfinite`)."""
    out: dict[str, list[int]] = {}
    for i, c in enumerate(columns):
        if c in spec.float_columns:
            out.setdefault(c, []).append(i)
    return out


def restore_nonfinite(
    values: Sequence[Any], side: str, positions: dict[str, list[int]]
) -> list[Any]:
    """``values`` with the non-finite floats of the side column ``side`` put back."""
    row = list(values)
    for name, v in json.loads(side).items():
        for i in positions.get(name, ()):
            row[i] = float(v)
    return row


# ---------------------------------------------------------------------- key encoders
def _bad_key(table: str, name: str, want: str, v: Any) -> InvalidArgumentError:
    shown = repr(v)
    if len(shown) > 80:
        shown = shown[:77] + "..."
    return InvalidArgumentError(
        f"key column {name!r} of online table {table!r} takes {want}, got "
        f"{type(v).__name__} {shown}",
        table=table,
        column=name,
    )


def _as_int(v: Any) -> int | None:
    """``v`` as a Python int if it is an integer (numpy ones too) but not a bool, else None."""
    if isinstance(v, bool | float):
        return None
    if isinstance(v, int):
        return int(v)
    dtype = getattr(v, "dtype", None)
    if dtype is not None and getattr(dtype, "kind", "") in ("i", "u"):
        return operator.index(v)
    return None


def _micros(delta: dt.timedelta) -> int:
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _scale(micros: int, extra_ns: int, unit: str, fail: Callable[[], Exception]) -> int:
    """Microseconds (+ nanoseconds) in ``unit``; a value finer than the unit fails."""
    if unit == "ns":
        return micros * 1000 + extra_ns
    if extra_ns:
        raise fail()
    per = _US_PER_UNIT[unit]
    whole, rest = divmod(micros, per)
    if rest:
        raise fail()
    return whole


def _temporal_encoder(table: str, name: str, t: pa.DataType) -> Callable[[Any], Any]:
    """Stored integer of a temporal key value (the way ``upsert`` encodes the column)."""
    storage = temporal_storage(t)
    lo, hi = (-(2**31), 2**31 - 1) if storage == pa.int32() else (-(2**63), 2**63 - 1)
    unit = getattr(t, "unit", "")

    def fail_unit() -> Exception:
        return InvalidArgumentError(
            f"key column {name!r} of online table {table!r}: the value is finer than {t}",
            table=table,
            column=name,
        )

    def convert(v: Any) -> Any:
        raw = _as_int(v)
        if raw is not None:  # already the stored integer
            if not lo <= raw <= hi:
                raise _bad_key(table, name, f"a value of {t}", v)
            return raw
        try:
            if pa.types.is_timestamp(t):
                if isinstance(v, str):
                    v = dt.datetime.fromisoformat(v)
                if type(v) is dt.date:
                    v = dt.datetime(v.year, v.month, v.day)
                if isinstance(v, dt.datetime):
                    # naive values are UTC wall clock, aware ones converted to UTC (as pyarrow)
                    delta = v - (_EPOCH if v.tzinfo is None else _EPOCH_UTC)
                    return _scale(_micros(delta), getattr(v, "nanosecond", 0), unit, fail_unit)
                raise _bad_key(table, name, f"datetimes ({t})", v)
            if pa.types.is_date(t):
                if isinstance(v, str):
                    v = dt.date.fromisoformat(v)
                if isinstance(v, dt.date) and not isinstance(v, dt.datetime):
                    days = (v - _EPOCH_DATE).days
                    return days if pa.types.is_date32(t) else days * _DAY_MS
                raise _bad_key(table, name, f"dates ({t})", v)
            if pa.types.is_time(t):
                if isinstance(v, str):
                    v = dt.time.fromisoformat(v)
                if isinstance(v, dt.time):
                    micros = ((v.hour * 60 + v.minute) * 60 + v.second) * 1_000_000 + v.microsecond
                    return _scale(micros, getattr(v, "nanosecond", 0), unit, fail_unit)
                raise _bad_key(table, name, f"times ({t})", v)
            if isinstance(v, dt.timedelta):  # duration
                return _scale(_micros(v), getattr(v, "nanoseconds", 0), unit, fail_unit)
            raise _bad_key(table, name, f"timedeltas ({t})", v)
        except InvalidArgumentError:
            raise
        except ValueError as exc:  # a malformed ISO string, a date out of range ...
            raise _bad_key(table, name, f"a value of {t}", v) from exc

    return convert


class _KeyColumn:
    """How the Python values of one key column become stored values.

    Values of exactly type ``fast`` (and within ``lo``..``hi`` for integers) are stored as
    they are; everything else goes through ``convert``, which validates and converts (or
    raises :class:`InvalidArgumentError`).
    """

    __slots__ = ("convert", "fast", "hi", "lo")

    def __init__(self, spec: TableSpec, field: pa.Field, kind: Kind) -> None:
        name, table, t = field.name, spec.name, field.type
        self.fast: type | None = None
        self.lo: int | None = None
        self.hi: int | None = None
        self.convert: Callable[[Any], Any]
        if kind == "int":
            self.fast = int
            if pa.types.is_signed_integer(t):
                self.lo, self.hi = -(1 << (t.bit_width - 1)), (1 << (t.bit_width - 1)) - 1
            else:
                self.lo, self.hi = 0, (1 << t.bit_width) - 1
            lo, hi = self.lo, self.hi

            def to_int(v: Any) -> Any:
                iv = _as_int(v)
                if iv is None or not lo <= iv <= hi:
                    raise _bad_key(table, name, f"integers that fit {t}", v)
                return iv

            self.convert = to_int
        elif kind == "string":
            self.fast = str

            def to_str(v: Any) -> Any:
                if isinstance(v, str):
                    return str(v)
                raise _bad_key(table, name, "strings", v)

            self.convert = to_str
        elif kind == "binary":
            self.fast = bytes

            def to_bytes(v: Any) -> Any:
                if isinstance(v, bytes | bytearray | memoryview):
                    return bytes(v)
                raise _bad_key(table, name, "bytes", v)

            self.convert = to_bytes
        elif kind == "bool":

            def to_bool(v: Any) -> Any:
                if isinstance(v, bool):
                    return int(v)
                dtype = getattr(v, "dtype", None)
                if dtype is not None and getattr(dtype, "kind", "") == "b":
                    return int(bool(v))
                raise _bad_key(table, name, "booleans", v)

            self.convert = to_bool
        else:
            self.convert = _temporal_encoder(table, name, t)


class KeyEncoder:
    """Validates and encodes lookup keys for one table.

    Calling it with a sequence of key tuples (one per entity, in primary-key order) returns
    one stored-form tuple per key, or ``None`` for a key with a null component.

    Raises:
        InvalidArgumentError: A key that is not a tuple/list of the key's arity, or a value of
            the wrong type or out of the column's range.
    """

    def __init__(self, spec: TableSpec) -> None:
        kinds = spec.kinds
        self._table = spec.name
        self._names = list(spec.primary_key)
        self._columns = [_KeyColumn(spec, f, kinds[f.name]) for f in spec.key_fields]
        self._arity = len(self._columns)

    def _sequence(self, key: Any) -> Sequence[Any]:
        if isinstance(key, tuple | list):
            return key
        if isinstance(key, str | bytes) or not isinstance(key, Sequence):
            raise InvalidArgumentError(
                f"a key of online table {self._table!r} must be a tuple of {self._arity} "
                f"value(s) ({', '.join(self._names)}), got {type(key).__name__}",
                table=self._table,
            )
        return tuple(key)

    def _arity_error(self, key: Sequence[Any]) -> InvalidArgumentError:
        return InvalidArgumentError(
            f"a key of online table {self._table!r} has {self._arity} value(s) "
            f"({', '.join(self._names)}), got {len(key)}",
            table=self._table,
        )

    def __call__(self, keys: Sequence[Sequence[Any]]) -> list[tuple[Any, ...] | None]:
        if isinstance(keys, str | bytes) or not isinstance(keys, Sequence):
            raise InvalidArgumentError(
                f"keys must be a list of key tuples, got {type(keys).__name__}", table=self._table
            )
        out: list[tuple[Any, ...] | None] = []
        append = out.append
        if self._arity == 1:
            col = self._columns[0]
            fast, lo, hi, convert = col.fast, col.lo, col.hi, col.convert
            for key in keys:
                if type(key) is not tuple:
                    key = self._sequence(key)
                if len(key) != 1:
                    raise self._arity_error(key)
                v = key[0]
                if v is None:
                    append(None)
                elif type(v) is fast and (lo is None or lo <= v <= hi):  # type: ignore[operator]
                    append(key if type(key) is tuple else (v,))
                else:
                    append((convert(v),))
            return out
        cols = self._columns
        for key in keys:
            if type(key) is not tuple:
                key = self._sequence(key)
            if len(key) != self._arity:
                raise self._arity_error(key)
            enc = []
            for v, col in zip(key, cols, strict=True):
                if v is None:
                    break
                if type(v) is col.fast and (col.lo is None or col.lo <= v <= col.hi):  # type: ignore[operator]
                    enc.append(v)
                else:
                    enc.append(col.convert(v))
            append(tuple(enc) if len(enc) == self._arity else None)
        return out
