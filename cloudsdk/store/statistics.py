"""Descriptive statistics of a feature group or dataset, computed in one DuckDB pass."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import duckdb
import pyarrow as pa

from cloudsdk.errors import StorageError
from cloudsdk.store.schema import feature_type


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _kind(t: pa.DataType) -> str:
    if pa.types.is_boolean(t):
        return "boolean"
    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t):
        return "numeric"
    if pa.types.is_timestamp(t) or pa.types.is_date(t):
        return "temporal"
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_dictionary(t):
        return "string"
    return "other"


def _clean(v: Any) -> Any:
    if isinstance(v, float) and (math.isnan(v) or math.isinf(v)):
        return None
    if hasattr(v, "isoformat"):
        return v.isoformat()
    if v is not None and not isinstance(v, int | float | str | bool):
        return float(v)
    return v


def _iso(text: str) -> str:
    """DuckDB's text of a date or timestamp in ISO 8601 (``2020-01-01T00:02:46+00:00``)."""
    try:
        return datetime.fromisoformat(text).isoformat()
    except ValueError:
        return text


def describe(data: Any, schema: pa.Schema, columns: Sequence[str] | None = None) -> dict[str, Any]:
    """Per-feature count, nulls, mean, stddev, min, max and approximate distinct count.

    Args:
        data: a pyarrow Table, RecordBatchReader or Dataset.
        schema: its schema (to choose which statistics apply to each column).
        columns: the columns to describe (default all).

    Returns:
        ``{"row_count": n, "features": {name: {...}}}``.
    """
    cols = list(columns) if columns is not None else list(schema.names)
    con = duckdb.connect(config={"enable_external_access": False})
    try:
        con.register("t", data)
        exprs = ["count(*)"]
        plan: list[tuple[str, list[str]]] = []
        for name in cols:
            t = schema.field(name).type
            kind = _kind(t)
            c = _q(name)
            stats = ["count", "nulls"]
            exprs += [f"count({c})", f"count(*) - count({c})"]
            if kind == "numeric":
                stats += ["mean", "stddev", "min", "max", "approx_distinct"]
                exprs += [
                    f"avg({c}::DOUBLE)",
                    f"stddev_samp({c}::DOUBLE)",
                    f"min({c})",
                    f"max({c})",
                    f"approx_count_distinct({c})",
                ]
            elif kind in ("temporal", "string"):
                stats += ["min", "max", "approx_distinct"]
                exprs += [f"min({c})::VARCHAR", f"max({c})::VARCHAR", f"approx_count_distinct({c})"]
            elif kind == "boolean":
                stats += ["mean", "approx_distinct"]
                exprs += [f"avg({c}::DOUBLE)", f"approx_count_distinct({c})"]
            plan.append((name, stats))
        rows = con.sql("SELECT " + ", ".join(exprs) + " FROM t").fetchall()
        row = rows[0] if rows else None
    except duckdb.Error as exc:
        raise StorageError(f"computing statistics failed: {exc}") from exc
    finally:
        con.close()
    assert row is not None
    values = list(row)
    out: dict[str, Any] = {"row_count": int(values.pop(0)), "features": {}}
    for name, stats in plan:
        entry: dict[str, Any] = {"type": feature_type(schema.field(name).type)}
        temporal = pa.types.is_timestamp(schema.field(name).type)
        for stat in stats:
            value = _clean(values.pop(0))
            if temporal and stat in ("min", "max") and isinstance(value, str):
                value = _iso(value)
            entry[stat] = value
        out["features"][name] = entry
    return out
