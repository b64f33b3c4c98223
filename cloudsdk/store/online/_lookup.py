"""What the backends share on top of their own I/O: cached lookup plans, ``lookup``/``get``,
and the retry when a cached schema turned out stale.

A backend implements ``_spec(table)`` (the table's :class:`TableSpec`, cached, with its
generation), ``_build_plan(spec, columns)`` and ``_fetch(plan, keys)``; ``_fetch`` returns one
stored-form row (the plan's columns) or ``None`` per encoded key, and raises
:class:`StaleTableError` when the generation it read is not the plan's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import pyarrow as pa

from cloudsdk.errors import StorageError
from cloudsdk.store.online._codec import (
    NONFINITE_COLUMN,
    KeyEncoder,
    Source,
    decode_row,
    float_positions,
    has_side_column,
    output_decoders,
    restore_nonfinite,
)
from cloudsdk.store.online.base import StaleTableError, TableLookup, TableSpec, check_name

__all__ = ["LookupStore", "Plan", "SqlPlan"]

T = TypeVar("T")
Row = Sequence[Any]
Decoders = tuple[tuple[int, Callable[[Any], Any]], ...]

_ATTEMPTS = 3
_MAX_PLANS = 2048


class Plan:
    """A prepared lookup of some columns of one table (one generation of it).

    Attributes:
        spec: The table spec it was made for.
        columns: The output columns, in order.
        encode: The key encoder.
        decoders: Stored value -> Python value, per output position that needs it (``lookup``).
        arrow_decoders: Stored value -> what ``TableSpec.result`` takes (``get``).
    """

    def __init__(self, spec: TableSpec, columns: Sequence[str], source: Source) -> None:
        self.spec = spec
        self.generation = spec.generation
        self.columns = tuple(columns)
        self.encode = KeyEncoder(spec)
        self.decoders: Decoders = output_decoders(spec, self.columns, source)
        self.arrow_decoders: Decoders = ()


class SqlPlan(Plan):
    """A lookup plan of the SQL backends.

    The statements select the table's generation from the metadata table, LEFT JOINed with
    the rows of the keys: one statement reads the rows and tells whether the cached schema is
    still the table's. A row is ``(generation, *columns, *other key columns[, side column])``;
    a key column (never NULL in a stored row) tells a found row from the join's NULL row.
    """

    def __init__(
        self,
        spec: TableSpec,
        columns: Sequence[str],
        *,
        quote: Callable[[str], str],
        meta_table: str,
    ) -> None:
        super().__init__(spec, columns, "sql")
        select = list(self.columns)
        select += [k for k in spec.primary_key if k not in select]
        self.nout = len(self.columns)
        self.key_idx = tuple(1 + select.index(k) for k in spec.primary_key)
        self.found = self.key_idx[0]
        self.side_pos = float_positions(self.columns, spec)
        self.side: int | None = None
        if has_side_column(spec) and self.side_pos:
            select.append(NONFINITE_COLUMN)
            self.side = len(select)  # position in the row (the generation is at 0)
        self.select = "m.generation, " + ", ".join(f"t.{quote(c)}" for c in select)
        self.head = f"SELECT {self.select} FROM {meta_table} m LEFT JOIN {quote(spec.name)} t ON "
        self.tail = f" WHERE m.name = '{spec.name}'"  # names are [A-Za-z0-9_]: safe inline
        self.key_sql = [f"t.{quote(k)}" for k in spec.primary_key]
        self.cache: dict[Any, Any] = {}  # statements (and such) the backend prepares

    def stored(self, row: Row) -> Row:
        """The output columns of a found row, non-finite floats restored."""
        values = row[1 : 1 + self.nout]
        if self.side is not None and row[self.side] is not None:
            return restore_nonfinite(values, row[self.side], self.side_pos)
        return values

    def rows_of(
        self, keys: list[tuple[Any, ...] | None], results: Sequence[Sequence[Row]]
    ) -> list[Row | None]:
        """Per key, its row from the results of the batched statements (checked)."""
        found_at, key_idx, end = self.found, self.key_idx, 1 + self.nout
        for rows in results:
            # One statement reads one snapshot: the generation is the same on every row.
            if not rows or rows[0][0] != self.generation:
                raise StaleTableError(self.spec.name)
        if len(key_idx) == 1:  # keyed by the bare value: no tuple per row
            if self.side is None:
                by_value = {r[found_at]: r[1:end] for rows in results for r in rows}
            else:
                by_value = {r[found_at]: self.stored(r) for rows in results for r in rows}
            by_value.pop(None, None)  # the join's NULL row when no key was found
            return [None if k is None else by_value.get(k[0]) for k in keys]
        found: dict[tuple[Any, ...], Row] = {}
        for rows in results:
            for row in rows:
                if row[found_at] is not None:
                    found[tuple(row[i] for i in key_idx)] = self.stored(row)
        return [None if k is None else found.get(k) for k in keys]


class LookupStore(TableLookup):
    """``lookup``, ``get`` and ``refresh`` of every backend, over its ``_fetch``."""

    _specs: dict[str, TableSpec]
    _plans: dict[tuple[str, tuple[str, ...] | None], Plan]

    def _build_plan(self, spec: TableSpec, columns: list[str]) -> Plan:
        raise NotImplementedError

    def _fetch(self, plan: Any, keys: list[tuple[Any, ...] | None]) -> list[Row | None]:
        raise NotImplementedError

    def _generation(self, table: str) -> str | None:
        """The table's current generation in the backend (None: no such table)."""
        raise NotImplementedError

    def has_table(self, table: str) -> bool:
        """Whether ``table`` exists now (asks the backend: another store object may have
        dropped or created it)."""
        check_name(table)
        generation = self._generation(table)
        cached = self._specs.get(table)
        if cached is not None and cached.generation != generation:
            self._forget(table)
        return generation is not None

    def _forget(self, table: str) -> None:
        """Drop what is cached about ``table`` (backends extend it)."""
        self._specs.pop(table, None)
        self._plans = {k: p for k, p in self._plans.items() if k[0] != table}

    def refresh(self, table: str | None = None) -> None:
        """Forget the cached schema and statements of ``table`` (default: of every table).

        Not needed for correctness (every call checks the table's generation), but frees the
        memory of tables no longer used.
        """
        if table is None:
            for name in list(self._specs):
                self._forget(name)
            self._plans = {}
        else:
            self._forget(table)

    def _plan(self, table: str, columns: tuple[str, ...] | None) -> Plan:
        plan = self._plans.get((table, columns))
        if plan is None:
            spec = self._spec(table)
            plan = self._build_plan(spec, spec.check_columns(columns))
            if len(self._plans) >= _MAX_PLANS:
                self._plans = {}
            self._plans[(table, columns)] = plan
        return plan

    def _retry(self, table: str, fn: Callable[[], T]) -> T:
        """Run ``fn``; when it finds the cached schema stale, forget it and run it again."""
        for _ in range(_ATTEMPTS):
            try:
                return fn()
            except StaleTableError:
                self._forget(table)
        raise StorageError(
            f"online table {table!r} kept changing (dropped or re-created) during the call; "
            "try again",
            table=table,
        )

    def lookup(
        self,
        table: str,
        keys: Sequence[Sequence[Any]],
        columns: Sequence[str] | None = None,
    ) -> list[tuple[Any, ...] | None]:
        """Look up ``keys``; see :meth:`cloudsdk.store.online.base.OnlineStore.lookup`."""
        cols = (
            None if columns is None else (columns,) if isinstance(columns, str) else tuple(columns)
        )
        plan = self._plans.get((table, cols))
        if plan is None:
            plan = self._plan(table, cols)
        try:
            rows = self._fetch(plan, plan.encode(keys))
        except StaleTableError:
            self._forget(table)

            def again() -> tuple[Plan, list[Row | None]]:
                p = self._plan(table, cols)
                return p, self._fetch(p, p.encode(keys))

            plan, rows = self._retry(table, again)
        dec = plan.decoders
        if dec:
            return [None if r is None else decode_row(r, dec) for r in rows]
        return [None if r is None else tuple(r) for r in rows]

    def get(self, table: str, keys: pa.Table, columns: Sequence[str] | None = None) -> pa.Table:
        """Look up ``keys``; see :class:`~cloudsdk.store.online.base.OnlineStore`."""
        cols = (
            None if columns is None else (columns,) if isinstance(columns, str) else tuple(columns)
        )

        def run() -> pa.Table:
            plan = self._plan(table, cols)
            spec = plan.spec
            key_cols, tuples = spec.encode_keys(keys)
            rows = self._fetch(plan, [None if None in t else t for t in tuples])
            out = list(plan.columns)
            nulls = (None,) * len(out)
            full = [nulls if r is None else r for r in rows]
            values: dict[str, list[Any]] = {}
            arrow_dec = dict(plan.arrow_decoders)
            for j, c in enumerate(out):
                column = [r[j] for r in full]
                fn = arrow_dec.get(j)
                if fn is not None:
                    column = [None if v is None else fn(v) for v in column]
                values[c] = column
            return spec.result(out, values, key_cols=key_cols, found=[r is not None for r in rows])

        return self._retry(table, run)
