"""What the SQL online stores (SQLite, MySQL/MariaDB) build alike: the rows an upsert sends,
the keys a delete removes, and the statement and result of a scan. Each backend runs them
with its own placeholders, transactions and error handling."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal

import pyarrow as pa

from cloudsdk.errors import DataValidationError
from cloudsdk.store.online._codec import (
    NONFINITE_COLUMN,
    float_positions,
    has_side_column,
    restore_nonfinite,
)
from cloudsdk.store.online.base import TableSpec

Quote = Callable[[str], str]


def upsert_rows(
    spec: TableSpec, rows: pa.Table, nonfinite: Literal["nan", "all"], what: str
) -> tuple[list[str], list[tuple[Any, ...]]]:
    """The column names and the encoded rows (last row per key) an upsert of ``rows`` writes.

    ``nonfinite`` says which floats the backend cannot store and keeps in the side column
    (``what`` names them in the error for a table made before the side column existed).

    Raises:
        DataValidationError: such a value for a table without the side column.
    """
    side = has_side_column(spec)
    encoded = spec.encode_rows(rows, nonfinite=nonfinite if spec.float_columns else None)
    if spec.float_columns and not side:  # a table made by an older version
        if any(r[-1] is not None for r in encoded):
            raise DataValidationError(
                f"online table {spec.name!r} was created by an older version and cannot "
                f"store {what}: re-create it",
                table=spec.name,
            )
        encoded = [r[:-1] for r in encoded]
    return list(spec.schema.names) + ([NONFINITE_COLUMN] if side else []), encoded


def delete_keys(spec: TableSpec, keys: pa.Table) -> list[tuple[Any, ...]]:
    """The distinct complete keys of ``keys`` (a key with a null part names no row)."""
    _, tuples = spec.encode_keys(keys)
    return list(dict.fromkeys(t for t in tuples if None not in t))


def key_where(spec: TableSpec, quote: Quote, mark: str) -> str:
    """``"k1" = ? AND "k2" = ?`` over the primary key, with the backend's placeholder."""
    return " AND ".join(f"{quote(n)} = {mark}" for n in spec.primary_key)


class Scan:
    """The statement that reads every row of a table (primary-key order) and its result."""

    def __init__(self, spec: TableSpec, columns: Sequence[str] | None, quote: Quote) -> None:
        self.spec = spec
        self.columns = spec.check_columns(columns)
        self.positions = float_positions(self.columns, spec)
        select = [quote(c) for c in self.columns]
        self.side = has_side_column(spec) and bool(self.positions)
        if self.side:
            select.append(quote(NONFINITE_COLUMN))
        order = ", ".join(quote(c) for c in spec.primary_key)
        self.sql = f"SELECT {', '.join(select)} FROM {quote(spec.name)} ORDER BY {order}"

    def result(self, rows: Sequence[Sequence[Any]]) -> pa.Table:
        """The fetched ``rows`` as the table's Arrow columns, non-finite floats put back."""
        if self.side:
            rows = [r if r[-1] is None else restore_nonfinite(r, r[-1], self.positions) for r in rows]
        cols = self.columns
        return self.spec.result(cols, {c: [r[j] for r in rows] for j, c in enumerate(cols)})
