"""Feature vectors: prepared lookups across online feature groups.

:func:`build_plan` resolves a list of feature names (or a query spec) once into a
:class:`VectorPlan`: for each feature group its online table, its key columns and the columns
to fetch, and where each value goes in the output. :meth:`VectorPlan.lookup` then checks the
entries (plain dicts of key values) and runs one backend ``lookup`` per group — no metadata
reads, no Arrow, no pandas on the way. The service caches plans and drops them whenever a
feature group is created, deleted, enabled or disabled online.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
from sqlglot import exp

from cloudsdk.errors import (
    FeatureNotFoundError,
    FeatureVectorNotFoundError,
    InvalidArgumentError,
    NotFoundError,
)
from cloudsdk.store import planner, schema

MAX_SQL_LOOKUP_KEYS = 10_000
"""sql(online=True) turns key filters into lookups up to this many keys (then it scans)."""


@dataclass
class _Step:
    store: Any
    table: str
    group: str
    keys: tuple[str, ...]
    columns: list[str]
    out: list[int]  # output position of each column


def _checker(name: str, typ: pa.DataType) -> Callable[[Any], Any]:
    """A function that returns a key value in the form the backends take, or raises."""

    def bad(value: Any, want: str) -> InvalidArgumentError:
        return InvalidArgumentError(
            f"key {name!r} must be {want}, got {type(value).__name__} {value!r}", column=name)

    if pa.types.is_integer(typ):
        def check_int(v: Any) -> Any:
            if type(v) is int:
                return v
            if isinstance(v, bool) or not hasattr(v, "__index__"):
                raise bad(v, "an integer")
            return int(v)
        return check_int
    if pa.types.is_string(typ) or pa.types.is_large_string(typ):
        def check_str(v: Any) -> Any:
            if type(v) is str:
                return v
            raise bad(v, "a string")
        return check_str
    if pa.types.is_binary(typ) or pa.types.is_large_binary(typ):
        def check_bytes(v: Any) -> Any:
            if isinstance(v, bytes | bytearray):
                return bytes(v)
            raise bad(v, "bytes")
        return check_bytes
    if pa.types.is_boolean(typ):
        def check_bool(v: Any) -> Any:
            if isinstance(v, bool):
                return v
            raise bad(v, "a boolean")
        return check_bool
    if pa.types.is_timestamp(typ) or pa.types.is_date(typ):
        is_date = pa.types.is_date(typ)

        def check_time(v: Any) -> Any:
            if isinstance(v, str):
                try:
                    v = dt.date.fromisoformat(v) if is_date else dt.datetime.fromisoformat(v)
                except ValueError:
                    raise bad(v, "an ISO date" if is_date else "an ISO timestamp") from None
            if is_date and isinstance(v, dt.date) and not isinstance(v, dt.datetime):
                return v
            if not is_date and isinstance(v, dt.datetime):
                return v
            raise bad(v, "a date" if is_date else "a datetime")
        return check_time
    if pa.types.is_floating(typ):
        def check_float(v: Any) -> Any:
            if isinstance(v, bool) or not isinstance(v, int | float):
                raise bad(v, "a number")
            return float(v)
        return check_float
    return lambda v: v


class VectorPlan:
    """A prepared feature-vector lookup (see the module docstring)."""

    def __init__(self, features: list[str], key_names: list[str], key_types: Mapping[str, pa.DataType],
                 steps: list[_Step], key_outputs: list[tuple[int, str]], generation: int) -> None:
        self.features = features
        self.key_names = key_names
        self._key_set = frozenset(key_names)
        self._checks = {k: _checker(k, key_types[k]) for k in key_names}
        self.steps = steps
        self.key_outputs = key_outputs
        self.generation = generation

    def __repr__(self) -> str:
        groups = ", ".join(s.group for s in self.steps)
        return f"VectorPlan(features={len(self.features)}, keys={self.key_names}, groups=[{groups}])"

    def _entry_error(self, entry: Any) -> InvalidArgumentError:
        if not isinstance(entry, Mapping):
            return InvalidArgumentError(
                f"an entry is a dict of primary-key values, e.g. {{{self.key_names[0]!r}: 1}}; got {entry!r}")
        missing = [k for k in self.key_names if k not in entry]
        extra = [k for k in entry if k not in self._key_set]
        parts = []
        if missing:
            parts.append(f"misses key column(s) {missing}")
        if extra:
            parts.append(f"has column(s) {extra} that are not primary keys of the feature groups used")
        return InvalidArgumentError(
            f"entry {dict(entry)!r} {' and '.join(parts)}; entries need exactly the keys {self.key_names}")

    def lookup(self, entries: Sequence[Mapping[str, Any]], *, allow_missing: bool = False) -> dict[str, Any]:
        """Feature vectors for ``entries``: ``{"features", "rows", "missing"}``."""
        if isinstance(entries, Mapping) or not isinstance(entries, Sequence):
            raise InvalidArgumentError("entries is a list of dicts of primary-key values")
        checks = self._checks
        nk = len(self.key_names)
        clean: list[dict[str, Any]] = []
        for entry in entries:
            if not isinstance(entry, Mapping) or len(entry) != nk:
                raise self._entry_error(entry)
            try:
                clean.append({k: checks[k](entry[k]) for k in self.key_names})
            except KeyError:
                raise self._entry_error(entry) from None
        width = len(self.features)
        rows: list[list[Any]] = [[None] * width for _ in clean]
        missing: set[int] = set()
        for step in self.steps:
            keys = [tuple(e[k] for k in step.keys) for e in clean]
            found = step.store.lookup(step.table, keys, step.columns)
            out = step.out
            for i, got in enumerate(found):
                if got is None:
                    if not allow_missing:
                        raise FeatureVectorNotFoundError(
                            f"no row for {dict(zip(step.keys, keys[i], strict=True))!r} in online feature group "
                            f"{step.group}; pass allow_missing=True to get None values instead",
                            featuregroup=step.group)
                    missing.add(i)
                    continue
                row = rows[i]
                for pos, value in zip(out, got, strict=True):
                    row[pos] = value
        for pos, key in self.key_outputs:
            for row, e in zip(rows, clean, strict=True):
                row[pos] = e[key]
        return {"features": list(self.features), "rows": rows, "missing": sorted(missing)}


def _spec_groups(spec: Mapping[str, Any]) -> tuple[list[tuple[str, int | None, list[str]]], list[str]]:
    """The (group, version, features) a query spec selects, and its output order."""
    picked: list[tuple[str, int | None, list[str]]] = []

    def walk(node: Mapping[str, Any]) -> None:
        if node.get("filter"):
            raise InvalidArgumentError("feature vectors take a query without filters: the entry picks the rows")
        fg = node.get("fg") or {}
        picked.append((str(fg.get("name")), fg.get("version"), list(node.get("features") or [])))
        for join in node.get("joins") or []:
            walk(join.get("query") or {})

    if not isinstance(spec, Mapping) or "fg" not in spec:
        raise InvalidArgumentError("features is a list of feature names or a query")
    walk(spec)
    order = list(spec.get("order") or [f for _, _, fs in picked for f in fs])
    return picked, list(dict.fromkeys(order))


def build_plan(service: Any, project: str, features: Sequence[str] | Mapping[str, Any],
               featuregroups_version_dict: Mapping[str, int] | None, generation: int) -> VectorPlan:
    """Resolve ``features`` to a :class:`VectorPlan` over the project's online feature groups."""
    from cloudsdk.store.online_service import need_online, online_key, online_table_name

    rows = {(r.name, r.version): r for r in service._group_rows(project)}
    if isinstance(features, Mapping):
        picked, order = _spec_groups(features)
        selections = []
        for name, version, feats in picked:
            row = service._group_row(project, name, version)
            selections.append((row, feats))
    else:
        names = [features] if isinstance(features, str) else list(features)
        infos = service._group_infos(project)
        online_infos = [g for g in infos if rows[(g.name, g.version)].online_enabled]
        try:
            picks, _, final, _ = planner.resolve_features(names, online_infos, featuregroups_version_dict, [])
        except NotFoundError as exc:
            try:  # is it a feature of a group that is not online? say so
                planner.resolve_features(names, infos, featuregroups_version_dict, [])
            except Exception:
                raise exc from None
            raise InvalidArgumentError(
                f"{exc.message}: the feature(s) are in feature groups that are not stored online; "
                "enable online storage with fg.enable_online()") from None
        order = [n for n, _ in final]
        selections = [(rows[(p.group.name, p.group.version)], list(p.features)) for p in picks]
    if not order:
        raise InvalidArgumentError("a feature vector needs at least one feature")
    key_names: list[str] = []
    key_types: dict[str, pa.DataType] = {}
    steps: list[_Step] = []
    position = {f: i for i, f in enumerate(order)}
    placed: set[str] = set()
    for row, feats in selections:
        need_online(row)
        storage = schema.storage_schema(schema.deserialize_schema(row.arrow_schema))
        keys = online_key(row)
        for k in keys:
            typ = storage.field(k).type
            if k in key_types and key_types[k] != typ:
                raise InvalidArgumentError(
                    f"key {k!r} has type {key_types[k]} in one feature group and {typ} in "
                    f"{row.name}_{row.version}; they cannot share one entry value")
            if k not in key_types:
                key_names.append(k)
                key_types[k] = typ
        unknown = [f for f in feats if f not in storage.names]
        if unknown:
            raise FeatureNotFoundError(f"feature group {row.name!r} has no feature(s) {unknown}")
        cols = [f for f in feats if f not in keys and f in position and f not in placed]
        placed.update(cols)
        steps.append(_Step(service._online(project), online_table_name(row), f"{row.name}_{row.version}",
                           tuple(keys), cols, [position[c] for c in cols]))
    key_outputs = [(position[f], f) for f in order if f in key_types and f not in placed]
    missing = [f for f in order if f not in placed and f not in key_types]
    if missing:
        raise FeatureNotFoundError(f"feature(s) {missing} are not in the selected feature groups")
    return VectorPlan(order, key_names, key_types, steps, key_outputs, generation)


# --- sql(online=True): key filters to lookups ------------------------------------------------


def _literal(node: exp.Expression) -> Any:
    neg = False
    if isinstance(node, exp.Neg):
        neg, node = True, node.this
    if not isinstance(node, exp.Literal):
        raise ValueError("not a literal")
    if node.is_string:
        if neg:
            raise ValueError("negative string")
        return node.this
    text = node.this
    value = float(text) if any(c in text for c in ".eE") else int(text)
    return -value if neg else value


def key_lookup_values(tree: exp.Expression, keys: Sequence[str], ntables: int) -> dict[str, list[Any]] | None:
    """Key values a single-table SELECT's WHERE pins with ``key = literal`` / ``key IN (...)``
    conjuncts on every key column, or None when the query must scan."""
    if ntables != 1 or not isinstance(tree, exp.Select) or tree.args.get("with") or tree.args.get("joins"):
        return None
    if any(isinstance(n, exp.Subquery) for n in tree.walk()):
        return None
    where = tree.args.get("where")
    if where is None:
        return None
    conjuncts: list[exp.Expression] = []
    stack = [where.this]
    while stack:
        node = stack.pop()
        if isinstance(node, exp.And):
            stack.extend([node.left, node.right])
        elif isinstance(node, exp.Paren):
            stack.append(node.this)
        else:
            conjuncts.append(node)
    found: dict[str, list[Any]] = {}
    for node in conjuncts:
        try:
            if isinstance(node, exp.EQ):
                col, lit = (node.left, node.right) if isinstance(node.left, exp.Column) else (node.right, node.left)
                if isinstance(col, exp.Column) and col.name in keys and col.name not in found:
                    found[col.name] = [_literal(lit)]  # type: ignore[arg-type]
            elif (isinstance(node, exp.In) and isinstance(node.this, exp.Column) and not node.args.get("query")
                  and node.this.name in keys and node.this.name not in found):
                found[node.this.name] = [_literal(e) for e in node.expressions]
        except (ValueError, AttributeError):
            continue
    if any(k not in found for k in keys):
        return None
    combos = list(itertools.islice(itertools.product(*(found[k] for k in keys)), MAX_SQL_LOOKUP_KEYS + 1))
    if len(combos) > MAX_SQL_LOOKUP_KEYS:
        return None
    return {k: [c[i] for c in combos] for i, k in enumerate(keys)}


__all__ = ["VectorPlan", "build_plan", "key_lookup_values"]
