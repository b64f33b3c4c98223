"""Point-in-time joins: for every label row, each feature group's latest value at the label's time.

The engine behind ``fs.get_features([...], entity_df=labels, event_time="ts")`` and
``query.read(entity_df=...)`` (docs/point-in-time.md). Semantics, for every label row and
every group:

* the value comes from the group's row with the same key (all key columns equal, SQL
  equality: a null key never matches) and the **latest** event time ``<=`` the label's
  time; never a later one. With a ``ttl``, only rows with
  ``label_time - ttl <= event_time <= label_time`` count.
* no such row: the group's features are null and the label row is kept (left semantics);
  a null label time gets nulls; history rows with a null event time never match.
* ties (same key, same event time): the row with the larger ``order`` value wins (null
  orders lose); rows equal in ``order`` too, or all ties when there is no ``order``
  column: the row that comes **later in the group's data** wins (its position in the
  table; for a dataset, fragment order then row order, as ``Dataset.to_table`` reads it).
* every label row comes back exactly once, in the label table's order, duplicates
  included: the output is the label table with the features appended.

Execution: one DuckDB statement chains an ``ASOF LEFT JOIN`` per group (no exploding
join, no per-row Python), in the sandboxed connection of :mod:`cloudsdk.store.sql`, over
slim Arrow tables (the label row number, the keys and one sort value per group; each
history's keys, one sort value and the row position). The sort value folds the
tie-breakers into the event time, ``(event_time - origin) // step * n + rank`` where
``rank`` orders the history by (order, position) (a BIGINT; a HUGEINT
``event_time * 2**64 + rank`` when the times span too much), so the as-of join itself
picks the winner of a tie: no de-duplication pass. The join returns, per label row, the
position of each group's winning row; one numpy scatter puts them in label order and the
features are gathered from the group's Arrow columns with one vectorised ``take`` per
group (their types are kept exactly). Feature columns never pass through DuckDB.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads

from cloudsdk.errors import (
    FeatureNameCollisionError,
    FeatureNotFoundError,
    InvalidArgumentError,
    QueryError,
)
from cloudsdk.store import sql as _sql

__all__ = ["PitGroup", "point_in_time_join"]

_UNITS = ("s", "ms", "us", "ns")
_PER_SECOND = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}
_TWO_64 = "18446744073709551616::HUGEINT"
_MAX_LOW = "18446744073709551615::HUGEINT"


@dataclass(frozen=True)
class PitGroup:
    """One feature group's side of a point-in-time join.

    Attributes:
        name: the group's name, used in error messages (e.g. ``"teams_features_1"``).
        data: the group's offline history, every version of every key: a
            ``pyarrow.Table``, ``pyarrow.dataset.Dataset`` or ``RecordBatchReader``.
            Only the columns named below are read.
        keys: the entity key columns in ``data``; each is matched to the label
            column of the same name (or the one ``label_keys`` maps it to).
        event_time: the column of ``data`` holding each row's event time
            (a timestamp, with or without time zone, or a date).
        features: the columns of ``data`` to return (any column, the keys and the
            event time included: they come from the matched row).
        ttl: when set, only rows with ``label_time - ttl <= event_time`` match.
        order: a column of ``data`` ordering rows with the same key and event time:
            the larger value wins (e.g. the commit version). Nulls lose.
            None: the later row in ``data`` wins.
        rename: output names of features, ``{feature: output_name}``; a feature not
            in it keeps its name.

    Example:
        >>> PitGroup("teams_features_1", dataset, keys=("team_id",), event_time="ts",
        ...          features=("budget", "rating"), ttl=datetime.timedelta(days=7),
        ...          rename={"rating": "teams_features_rating"})  # doctest: +SKIP
    """

    name: str
    data: Any = field(hash=False)
    keys: tuple[str, ...]
    event_time: str
    features: tuple[str, ...]
    ttl: _dt.timedelta | None = None
    order: str | None = None
    rename: Mapping[str, str] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        for attr in ("keys", "features"):
            value = getattr(self, attr)
            if isinstance(value, str):
                value = (value,)
            if not isinstance(value, Sequence) or not all(isinstance(v, str) for v in value):
                raise InvalidArgumentError(
                    f"point-in-time join, group {self.name!r}: {attr} must be a sequence of "
                    f"column names, got {value!r}")
            object.__setattr__(self, attr, tuple(value))
        if not self.keys:
            raise InvalidArgumentError(
                f"point-in-time join, group {self.name!r}: at least one key column is needed")
        if self.ttl is not None and (not isinstance(self.ttl, _dt.timedelta)
                                     or self.ttl < _dt.timedelta(0)):
            raise InvalidArgumentError(
                f"point-in-time join, group {self.name!r}: ttl must be a non-negative "
                f"datetime.timedelta or None, got {self.ttl!r}")
        if not isinstance(self.rename, Mapping):
            raise InvalidArgumentError(
                f"point-in-time join, group {self.name!r}: rename must be a mapping "
                f"{{feature: output_name}}, got {type(self.rename).__name__}")


def point_in_time_join(labels: Any, label_time: str, groups: Sequence[PitGroup], *,
                       label_keys: Mapping[str, str] | None = None) -> pa.Table:
    """Join each group's latest feature values as of every label row's time.

    Args:
        labels: the label (entity) rows: a ``pyarrow.Table`` (or ``RecordBatch`` or
            pandas DataFrame) holding the key columns and ``label_time``.
        label_time: the label table's time column (timestamp with or without time zone,
            or date; it must match the groups' event times in time-zone awareness; a date
            is midnight of that day).
        groups: the feature groups to join, in output order.
        label_keys: ``{group key column: label column}`` for keys whose label column has
            another name; unmapped keys are looked up under their own name.

    Returns:
        The label table, every row once and in its order, with each group's features
        appended (renamed by ``PitGroup.rename``); features of rows without a match are null.

    Raises:
        InvalidArgumentError: a missing label or group column, a time column that is not
            a timestamp or date, naive against time-zone aware times, key columns of
            incompatible types, a bad argument.
        FeatureNotFoundError: a feature is not a column of its group's data.
        FeatureNameCollisionError: two output columns would have the same name.

    Example:
        >>> out = point_in_time_join(labels, "ts", [PitGroup(
        ...     "teams_features_1", fg_dataset, keys=("team_id",), event_time="ts",
        ...     features=("budget",), order="_commit_version")])  # doctest: +SKIP
    """
    labels = _label_table(labels)
    if not isinstance(label_time, str):
        raise InvalidArgumentError(f"point-in-time join: label_time must be a column name, got {label_time!r}")
    mapping = dict(label_keys or {})
    groups = list(groups)
    for group in groups:
        if not isinstance(group, PitGroup):
            raise InvalidArgumentError(
                f"point-in-time join: groups must be PitGroup objects, got {type(group).__name__}")
    time_type = _label_column(labels, label_time, "time").type
    label_kind = _time_kind(time_type, f"the label time column {label_time!r}")
    out_names = _output_names(labels, groups)
    if not groups:
        return labels
    plans = [_plan(labels, label_time, time_type, label_kind, group, mapping) for group in groups]
    positions = _asof(labels, label_time, plans)
    out = labels
    for plan, names, where in zip(plans, out_names, positions, strict=True):
        for name, column in zip(names, _gather(plan.history, plan.group.features, where), strict=True):
            out = out.append_column(pa.field(name, column.type), column)
    return out


# ----------------------------------------------------------------------------- validation

def _label_table(labels: Any) -> pa.Table:
    if isinstance(labels, pa.Table):
        return labels
    if isinstance(labels, pa.RecordBatch):
        return pa.Table.from_batches([labels])
    if type(labels).__name__ == "DataFrame" and hasattr(labels, "columns"):
        try:
            return pa.Table.from_pandas(labels, preserve_index=False)
        except (pa.ArrowException, TypeError, ValueError) as exc:
            raise InvalidArgumentError(f"point-in-time join: cannot convert the label DataFrame to Arrow: {exc}") from exc
    raise InvalidArgumentError(
        "point-in-time join: the labels must be a pyarrow Table, RecordBatch or pandas "
        f"DataFrame, got {type(labels).__name__}")


def _label_column(labels: pa.Table, name: str, role: str) -> pa.Field:
    found = labels.schema.get_all_field_indices(name)
    if not found:
        raise InvalidArgumentError(
            f"the label table has no {role} column {name!r} (its columns: "
            f"{', '.join(labels.column_names) or 'none'})", column=name)
    if len(found) > 1:
        raise InvalidArgumentError(f"the label table has {len(found)} columns named {name!r}", column=name)
    return labels.schema.field(found[0])


def _time_kind(type_: pa.DataType, what: str) -> tuple[str, bool]:
    """``(unit, time-zone aware)`` of a time column; dates count as naive seconds."""
    if pa.types.is_timestamp(type_):
        return str(type_.unit), type_.tz is not None
    if pa.types.is_date(type_):
        return "s", False
    raise InvalidArgumentError(
        f"{what} is {type_}: a point-in-time join needs a timestamp (with or without time "
        "zone) or a date column")


def _output_names(labels: pa.Table, groups: Sequence[PitGroup]) -> list[list[str]]:
    taken = {name: "the label table" for name in labels.column_names}
    result = []
    for group in groups:
        unknown = [f for f in group.rename if f not in group.features]
        if unknown:
            raise InvalidArgumentError(
                f"point-in-time join, group {group.name!r}: rename names {unknown} which are "
                f"not among its features {list(group.features)}")
        names = []
        for feature in group.features:
            name = group.rename.get(feature, feature)
            if not isinstance(name, str) or not name:
                raise InvalidArgumentError(
                    f"point-in-time join, group {group.name!r}: output name {name!r} of "
                    f"feature {feature!r} is not a column name")
            if name in taken:
                raise FeatureNameCollisionError(
                    f"point-in-time join: output column {name!r} (feature {feature!r} of group "
                    f"{group.name!r}) is already a column of {taken[name]}; rename it",
                    candidates=[taken[name], group.name])
            taken[name] = f"group {group.name!r}"
            names.append(name)
        result.append(names)
    return result


def _key_family(type_: pa.DataType) -> str:
    if pa.types.is_dictionary(type_):
        type_ = type_.value_type
    if pa.types.is_integer(type_):
        return "integer"
    if pa.types.is_floating(type_):
        return "floating point"
    if pa.types.is_string(type_) or pa.types.is_large_string(type_) or pa.types.is_string_view(type_):
        return "string"
    if pa.types.is_binary(type_) or pa.types.is_large_binary(type_) or pa.types.is_binary_view(type_):
        return "binary"
    if pa.types.is_nested(type_):
        return "nested"
    return str(type_)


def _check_key(group: PitGroup, key: str, label_col: str, h_type: pa.DataType, l_type: pa.DataType) -> None:
    h_family, l_family = _key_family(h_type), _key_family(l_type)
    if h_family == "nested" or l_family == "nested":
        raise InvalidArgumentError(
            f"point-in-time join, group {group.name!r}: key {key!r} must be a scalar column, "
            f"not {h_type if h_family == 'nested' else l_type}")
    if h_family != l_family:
        raise InvalidArgumentError(
            f"point-in-time join, group {group.name!r}: key {key!r} is {h_type} in the group "
            f"but the label column {label_col!r} is {l_type}; cast the label column",
            column=label_col)


# ----------------------------------------------------------------------------- execution

def _history(group: PitGroup, columns: list[str]) -> pa.Table:
    """The group's needed columns as one Arrow table (in data order)."""
    data = group.data
    schema = data.schema if isinstance(data, pa.Table | pads.Dataset | pa.RecordBatchReader) else None
    if schema is None:
        raise InvalidArgumentError(
            f"point-in-time join, group {group.name!r}: data must be a pyarrow Table, Dataset "
            f"or RecordBatchReader, got {type(data).__name__}")
    names = set(schema.names)
    for col, role in [*((k, "key") for k in group.keys), (group.event_time, "event time"),
                      *([(group.order, "order")] if group.order else [])]:
        if col not in names:
            raise InvalidArgumentError(
                f"point-in-time join, group {group.name!r}: its data has no {role} column "
                f"{col!r} (columns: {', '.join(schema.names)})", column=col)
    missing = [f for f in group.features if f not in names]
    if missing:
        raise FeatureNotFoundError(
            f"point-in-time join, group {group.name!r}: no feature {', '.join(map(repr, missing))} "
            f"(columns: {', '.join(schema.names)})", features=missing)
    if isinstance(data, pa.Table):
        return data.select(columns)
    if isinstance(data, pads.Dataset):
        return data.to_table(columns=columns)
    return data.read_all().select(columns)


def _epochs(column: pa.ChunkedArray, unit: str, what: str) -> pa.ChunkedArray:
    """A time column as int64 counts of ``unit`` since the epoch (UTC for aware times)."""
    type_ = column.type
    try:
        if pa.types.is_timestamp(type_):
            if type_.unit != unit:
                column = pc.cast(column, pa.timestamp(unit, type_.tz))
        else:  # a date: midnight
            column = pc.cast(column, pa.timestamp(unit))
        return pc.cast(column, pa.int64())
    except pa.ArrowInvalid as exc:
        raise InvalidArgumentError(f"{what}: cannot express its times in {unit} since 1970 ({exc})") from exc


def _tie_rank(order: pa.ChunkedArray) -> np.ndarray:
    """Rank of each row by (order, position): nulls first, then ascending (a stable sort)."""
    n = len(order)
    type_ = order.type
    if order.null_count == 0 and (pa.types.is_integer(type_) or pa.types.is_floating(type_)
                                  or pa.types.is_timestamp(type_) or pa.types.is_date(type_)
                                  or pa.types.is_duration(type_) or pa.types.is_boolean(type_)):
        perm = np.argsort(order.to_numpy(), kind="stable")  # NaN last, as Arrow sorts it
    else:
        perm = pc.sort_indices(order).to_numpy()  # stable; nulls last, kept in position order
    nulls = order.null_count
    rank = np.empty(n, dtype=np.int64)
    rank[perm[n - nulls:]] = np.arange(nulls, dtype=np.int64)
    rank[perm[: n - nulls]] = np.arange(nulls, n, dtype=np.int64)
    return rank


def _gcd(values: pa.ChunkedArray, origin: int, start: int = 0) -> int:
    """The greatest common divisor of ``start`` and every non-null ``value - origin``."""
    diffs = pc.drop_null(values).to_numpy() - np.int64(origin)
    g = int(np.gcd.reduce(diffs[:1024], initial=start))
    if g != 1 and len(diffs) > 1024:
        g = int(np.gcd.reduce(diffs[1024:], initial=g))
    return g


def _packing(left: pa.ChunkedArray, right: pa.ChunkedArray, radix: int) -> tuple[int, int] | None:
    """``(origin, step)`` such that ``(t - origin) // step * radix + rank`` fits in a BIGINT
    for every time of both sides, or None when even the common step does not make it fit."""
    bounds = [pc.min_max(side) for side in (left, right)]
    lows = [b["min"].as_py() for b in bounds if b["min"].is_valid]
    if len(lows) < 2:  # one side has no time at all: nothing can match
        return (lows[0] if lows else 0), 1
    origin, span = min(lows), max(b["max"].as_py() for b in bounds) - min(lows)
    limit = (2**63 - 1) // radix
    if span < limit:
        return origin, 1
    if span >= 2**63:
        return None
    step = _gcd(right, origin, _gcd(left, origin))
    return (origin, step) if span // step < limit else None


def _plain_key(column: pa.ChunkedArray) -> pa.ChunkedArray:
    return pc.cast(column, column.type.value_type) if pa.types.is_dictionary(column.type) else column


@dataclass
class _Plan:
    """One group, ready for the as-of join."""

    group: PitGroup
    history: pa.Table      # the group's needed columns, in data order
    slim: pa.Table         # k0.., t (int64 in ``unit``), low (tie rank), p (position)
    label_cols: list[str]  # the label column matched to each key
    unit: str              # the common time unit of the label and the group
    sort_value: str        # SQL of the sort value, with {t} and {low} slots
    label_low: str         # the label side's {low}: above every rank
    radix: str             # (label value - match value) // radix = label time - event time
    ttl_steps: int | None  # the ttl in the same steps, or None


def _plan(labels: pa.Table, label_time: str, time_type: pa.DataType, label_kind: tuple[str, bool],
          group: PitGroup, mapping: Mapping[str, str]) -> _Plan:
    """Check one group against the labels, read its columns, choose its sort value."""
    label_cols = [mapping.get(k, k) for k in group.keys]
    for key, col in zip(group.keys, label_cols, strict=True):
        role = "key" if key == col else f"key (for the group's key {key!r})"
        _label_column(labels, col, role)
    columns = list(dict.fromkeys([*group.keys, group.event_time,
                                  *([group.order] if group.order else []), *group.features]))
    history = _history(group, columns)
    h_type = history.schema.field(group.event_time).type
    h_unit, h_aware = _time_kind(h_type, f"group {group.name!r}: its event time column {group.event_time!r}")
    l_unit, l_aware = label_kind
    if h_aware != l_aware:
        aware, naive = ((f"the group's event time {group.event_time!r}", h_type),
                        (f"the label time {label_time!r}", time_type))
        if l_aware:
            aware, naive = naive, aware
        raise InvalidArgumentError(
            f"point-in-time join, group {group.name!r}: {aware[0]} is time-zone aware "
            f"({aware[1]}) but {naive[0]} is not ({naive[1]}); give both a time zone "
            "(e.g. pyarrow.compute.assume_timezone) or neither", column=label_time)
    for key, col in zip(group.keys, label_cols, strict=True):
        _check_key(group, key, col, history.schema.field(key).type, labels.schema.field(col).type)

    unit = _UNITS[max(_UNITS.index(h_unit), _UNITS.index(l_unit))]
    label_t = _epochs(labels.column(label_time), unit, f"the label time column {label_time!r}")
    hist_t = _epochs(history.column(group.event_time), unit,
                     f"group {group.name!r}: its event time column {group.event_time!r}")
    n_hist = history.num_rows
    positions = np.arange(n_hist, dtype=np.int64)
    slim = pa.table({**{f"k{i}": _plain_key(history.column(k)) for i, k in enumerate(group.keys)},
                     "t": hist_t,
                     "low": _tie_rank(history.column(group.order)) if group.order else positions,
                     "p": positions})
    radix = max(n_hist, 1)
    ttl = _ttl_units(group.ttl, unit)
    packing = _packing(label_t, hist_t, radix)
    if packing is None:  # the times span too much for a BIGINT: sort on HUGEINT values
        return _Plan(group, history, slim, label_cols, unit,
                     f"{{t}}::HUGEINT * {_TWO_64} + {{low}}::HUGEINT", _MAX_LOW, _TWO_64, ttl)
    origin, step = packing
    return _Plan(group, history, slim, label_cols, unit,
                 f"({{t}} - ({origin}::BIGINT)) // {step} * {radix} + {{low}}", str(radix - 1),
                 str(radix), None if ttl is None else ttl // step)


def _ttl_units(ttl: _dt.timedelta | None, unit: str) -> int | None:
    if ttl is None:
        return None
    micros = ttl // _dt.timedelta(microseconds=1)
    if unit == "ns":
        return micros * 1000
    return micros // (1_000_000 // _PER_SECOND[unit])


def _asof(labels: pa.Table, label_time: str, plans: Sequence[_Plan]) -> list[np.ndarray]:
    """For each group, the position of each label row's match in its history (-1: none).

    One statement chains the groups' ``ASOF LEFT JOIN`` s (one connection, one pipeline).
    Each group's sort value folds the tie-breakers into the event time: the label side gets
    the largest rank, so ``l.s >= h.s`` means ``event_time <= label_time`` and the greatest
    such value is the latest row, ties going to the highest rank; ``(l.s - h.s) // radix``
    is the label time minus the event time, in the packed steps, for the ttl.
    """
    n = labels.num_rows
    key_cols = list(dict.fromkeys(c for plan in plans for c in plan.label_cols))
    units = list(dict.fromkeys(plan.unit for plan in plans))
    left = pa.table({"r": np.arange(n, dtype=np.int64),
                     **{f"lk{j}": _plain_key(labels.column(c)) for j, c in enumerate(key_cols)},
                     **{f"t_{u}": _epochs(labels.column(label_time), u, f"the label time column {label_time!r}")
                        for u in units}})
    sources: dict[str, Any] = {"pit_labels": left}
    label_values, picks, joins = [], [], []
    for g, plan in enumerate(plans):
        sources[f"pit_history_{g}"] = plan.slim
        n_keys = len(plan.group.keys)
        label_values.append(plan.sort_value.format(t=f"t_{plan.unit}", low=plan.label_low) + f" AS s{g}")
        pick = f"h{g}.p"
        if plan.ttl_steps is not None:
            pick = f"CASE WHEN (l.s{g} - h{g}.s) // {plan.radix} <= {int(plan.ttl_steps)}::HUGEINT THEN h{g}.p END"
        picks.append(f"{pick} AS p{g}")
        keys = ", ".join(f"k{i}" for i in range(n_keys))
        not_null = " AND ".join(f"k{i} IS NOT NULL" for i in range(n_keys))
        on = " AND ".join(f"l.lk{key_cols.index(c)} = h{g}.k{i}" for i, c in enumerate(plan.label_cols))
        joins.append(
            f"ASOF LEFT JOIN (SELECT {keys}, {plan.sort_value.format(t='t', low='low')} AS s, p "
            f"FROM pit_history_{g} WHERE {not_null} AND t IS NOT NULL) AS h{g} "
            f"ON {on} AND l.s{g} >= h{g}.s")
    lk = "".join(f", lk{j}" for j in range(len(key_cols)))
    query = (f"SELECT l.r AS r, {', '.join(picks)} "
             f"FROM (SELECT r{lk}, {', '.join(label_values)} FROM pit_labels) AS l {' '.join(joins)}")
    matched = _sql.execute(query, sources)
    if matched.num_rows != n:  # an ASOF LEFT JOIN keeps each left row once
        raise QueryError(f"point-in-time join: the as-of join returned {matched.num_rows} rows "
                         f"for {n} label rows")
    rows = matched.column("r").to_numpy()
    out = []
    for g in range(len(plans)):
        where = np.empty(n, dtype=np.int64)
        where[rows] = matched.column(f"p{g}").fill_null(-1).to_numpy()
        out.append(where)
    return out


def _gather(history: pa.Table, features: Sequence[str], where: np.ndarray) -> list[pa.ChunkedArray]:
    """The features of the rows at ``where`` (-1: null), in that order.

    A take with null indices is about 3x slower than one without, so the misses take row 0
    and are nulled afterwards.
    """
    table = history.select(list(features))
    missing = where < 0
    if not missing.any():
        return list(table.take(pa.array(where)).columns)
    if history.num_rows == 0 or missing.all():
        return list(table.take(pa.array(where, mask=missing)).columns)
    taken = table.take(pa.array(np.where(missing, 0, where)))
    found = pa.array(~missing)
    out = []
    for i, column in enumerate(taken.columns):
        try:
            out.append(pc.if_else(found, column, pa.scalar(None, column.type)))
        except (pa.ArrowNotImplementedError, pa.ArrowTypeError, pa.ArrowInvalid):
            out.append(table.column(i).take(pa.array(where, mask=missing)))
    return out
