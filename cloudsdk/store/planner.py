"""The query planner: feature names → feature groups → one SQL join.

Rules (documented in docs/query-planner.md):

* ``<fg>_<version>.<feature>`` and ``<fg>.<feature>`` name the group explicitly;
  a bare ``<feature>`` is looked up in every feature group (or only those of
  ``featuregroups_version_dict``).
* A bare name found in several *different* groups is a collision, except when it is
  the join key of groups already chosen (its values are equal there).
  Found only in versions of one group, the latest version is used; the choice is returned
  in the spec's ``notes``, which the client logs (logger ``cloudsdk.planner``).
* The join key is ``join_key`` when given, else the primary-key columns shared by all
  chosen groups, in the first group's order. None shared → JoinKeyError.
* Output columns come in the requested order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlglot import exp

from cloudsdk.errors import (
    FeatureGroupNotFoundError,
    FeatureNameCollisionError,
    FeatureNotFoundError,
    InvalidArgumentError,
    JoinKeyError,
    QueryError,
)

JOIN_TYPES = {"inner": "INNER JOIN", "left": "LEFT JOIN", "right": "RIGHT JOIN", "full": "FULL OUTER JOIN"}
COMPARATORS = {"==": "=", "=": "=", "!=": "<>", "<": "<", "<=": "<=", ">": ">", ">=": ">="}


@dataclass(frozen=True)
class GroupInfo:
    """What the planner needs to know of a feature group."""

    name: str
    version: int
    features: tuple[str, ...]
    primary_key: tuple[str, ...]

    @property
    def table(self) -> str:
        """The group's SQL table name, ``<name>_<version>``."""
        return f"{self.name}_{self.version}"


def q(name: str) -> str:
    """Quote an SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def literal(value: Any) -> str:
    """An SQL literal for a filter value, safely escaped (numpy and pandas scalars included)."""
    if type(value).__module__ == "numpy":
        if type(value).__name__.startswith("datetime64"):
            import pandas as pd

            value = pd.Timestamp(value).to_pydatetime()
        elif hasattr(value, "item"):
            value = value.item()
    try:
        return str(exp.convert(value).sql(dialect="duckdb"))
    except (ValueError, TypeError) as exc:
        raise InvalidArgumentError(
            f"cannot use {value!r} ({type(value).__name__}) as a filter value: use numbers, "
            "strings, booleans, dates, datetimes or decimals"
        ) from exc


# --- resolution of feature names -------------------------------------------------------


@dataclass
class _Pick:
    group: GroupInfo
    features: list[str] = field(default_factory=list)


def _latest(groups: Sequence[GroupInfo], name: str) -> GroupInfo | None:
    versions = [g for g in groups if g.name == name]
    return max(versions, key=lambda g: g.version) if versions else None


def _explicit(prefix: str, groups: Sequence[GroupInfo], pinned: Mapping[str, int]) -> GroupInfo:
    for g in groups:
        if g.table == prefix:
            return g
    if prefix in pinned:
        for g in groups:
            if g.name == prefix and g.version == pinned[prefix]:
                return g
    latest = _latest(groups, prefix)
    if latest is None:
        raise FeatureGroupNotFoundError(
            f"no feature group {prefix!r} (as <name> or <name>_<version>) in the feature store"
        )
    return latest


def resolve_features(
    features: Sequence[str],
    groups: Sequence[GroupInfo],
    featuregroups_version_dict: Mapping[str, int] | None = None,
    join_key: str | Sequence[str] | None = None,
) -> tuple[list[_Pick], list[str], list[tuple[str, GroupInfo]], list[str]]:
    """Map each requested feature to a group.

    Returns:
        (picks in first-use order, join key columns, [(output name, group)] in request order,
        notes on the choices made, e.g. the version used when several exist).
    """
    if isinstance(features, str):
        features = [features]
    if not features:
        raise InvalidArgumentError("get_features() needs at least one feature name")
    pinned = dict(featuregroups_version_dict or {})
    searchable: list[GroupInfo]
    if pinned:
        searchable = []
        for name, version in pinned.items():
            match = [g for g in groups if g.name == name and g.version == int(version)]
            if not match:
                raise FeatureGroupNotFoundError(
                    f"featuregroups_version_dict names {name!r} version {version}, which does not exist"
                )
            searchable.extend(match)
    else:
        searchable = list(groups)

    notes: list[str] = []  # choices the caller is told about (logged by the client)
    explicit_keys = [join_key] if isinstance(join_key, str) else list(join_key or [])
    resolved: list[tuple[str, GroupInfo | list[GroupInfo]]] = []
    for raw in dict.fromkeys(features):  # a name asked for twice gives one column
        if not isinstance(raw, str) or not raw:
            raise InvalidArgumentError(f"feature names must be strings, got {raw!r}")
        if "." in raw:
            prefix, fname = raw.rsplit(".", 1)
            g = _explicit(prefix, groups, pinned)
            if fname not in g.features:
                raise FeatureNotFoundError(
                    f"feature {fname!r} is not in feature group {g.name} version {g.version}; "
                    f"it has: {', '.join(g.features)}"
                )
            resolved.append((fname, g))
            continue
        found = [g for g in searchable if raw in g.features]
        if not found:
            raise FeatureNotFoundError(
                f"no feature named {raw!r} in "
                + ("the feature groups of featuregroups_version_dict" if pinned else "the feature store")
            )
        names = sorted({g.name for g in found})
        if len(names) == 1:
            g = max(found, key=lambda x: x.version)
            if len(found) > 1:
                notes.append(
                    f"feature {raw!r} is in versions {sorted(x.version for x in found)} of feature group "
                    f"{g.name!r}; using the latest, version {g.version} (pin another with "
                    f"featuregroups_version_dict or '{g.name}_<version>.{raw}')"
                )
            resolved.append((raw, g))
        else:
            resolved.append((raw, found))

    chosen: list[GroupInfo] = []
    for _, candidate in resolved:
        if isinstance(candidate, GroupInfo) and candidate not in chosen:
            chosen.append(candidate)

    final: list[tuple[str, GroupInfo]] = []
    for fname, found_in in resolved:
        if isinstance(found_in, list):
            in_chosen = [c for c in chosen if c in found_in]
            shared_key = in_chosen and (
                fname in explicit_keys or all(fname in c.primary_key for c in in_chosen)
            )
            if shared_key and len(in_chosen) == len(chosen) and chosen:
                g = in_chosen[0]
            else:
                cands = sorted(f"{c.table}.{fname}" for c in found_in)
                raise FeatureNameCollisionError(
                    f"feature {fname!r} exists in several feature groups: {', '.join(cands)}; "
                    f"name one explicitly (e.g. {cands[0]!r}) or pass featuregroups_version_dict",
                    candidates=cands,
                )
            if g not in chosen:
                chosen.append(g)
        else:
            g = found_in
        final.append((fname, g))

    seen: dict[str, GroupInfo] = {}
    for fname, g in final:
        if fname in seen and seen[fname] != g:
            raise FeatureNameCollisionError(
                f"feature {fname!r} is requested from two feature groups "
                f"({seen[fname].table} and {g.table}); a result cannot hold both",
                candidates=[f"{seen[fname].table}.{fname}", f"{g.table}.{fname}"],
            )
        seen[fname] = g

    picks = [_Pick(g) for g in chosen]
    for fname, g in final:
        pick = next(p for p in picks if p.group == g)
        if fname not in pick.features:
            pick.features.append(fname)

    keys = _join_key(chosen, join_key)
    return picks, keys, final, notes


def _join_key(groups: Sequence[GroupInfo], join_key: str | Sequence[str] | None) -> list[str]:
    if len(groups) < 2:
        return []
    if join_key is not None:
        keys = [join_key] if isinstance(join_key, str) else list(join_key)
        for g in groups:
            missing = [k for k in keys if k not in g.features]
            if missing:
                raise JoinKeyError(
                    f"join key {missing} is not a feature of {g.table} (features: {', '.join(g.features)})"
                )
        return keys
    shared = [k for k in groups[0].primary_key if all(k in g.primary_key for g in groups[1:])]
    if not shared:
        desc = "; ".join(f"{g.table}: {list(g.primary_key)}" for g in groups)
        raise JoinKeyError(
            "the feature groups share no primary key to join on "
            f"({desc}); pass join_key= naming columns present in all of them"
        )
    return shared


# --- query specs and SQL ---------------------------------------------------------------


def features_query_spec(
    picks: Sequence[_Pick], keys: Sequence[str], final: Sequence[tuple[str, GroupInfo]],
    notes: Sequence[str] = (),
) -> dict[str, Any]:
    """A query spec (see :func:`to_sql`) joining the picks on ``keys``, columns in request order."""
    first, rest = picks[0], picks[1:]
    for name, _ in final:
        if name in keys and name not in first.features:
            first.features.append(name)
    spec: dict[str, Any] = {
        "fg": {"name": first.group.name, "version": first.group.version},
        "features": list(first.features),
        "joins": [],
        "filter": None,
        "order": [name for name, _ in final],
        "notes": list(notes),
    }
    for p in rest:
        spec["joins"].append(
            {
                "query": {
                    "fg": {"name": p.group.name, "version": p.group.version},
                    "features": [f for f in p.features if f not in keys],
                    "joins": [],
                    "filter": None,
                },
                "on": list(keys),
                "join_type": "inner",
            }
        )
    return spec


def _inner(expr: str) -> str:
    """The expression part of ``<expr> AS "name"`` (or the expression itself)."""
    head, sep, _ = expr.rpartition(" AS ")
    return head if sep else expr


def _flatten(spec: Mapping[str, Any], out: list[tuple[Mapping[str, Any], dict[str, Any] | None]],
             join: dict[str, Any] | None = None) -> None:
    out.append((spec, join))
    for j in spec.get("joins") or []:
        _flatten(j["query"], out, j)


def tables_of(spec: Mapping[str, Any]) -> list[tuple[str, int]]:
    """Every (feature group, version) a spec reads."""
    flat: list[tuple[Mapping[str, Any], dict[str, Any] | None]] = []
    _flatten(spec, flat)
    return [(s["fg"]["name"], int(s["fg"]["version"])) for s, _ in flat]


def _filter_sql(f: Mapping[str, Any], alias_of: Mapping[tuple[str, int], str],
                default: str) -> str:
    op = f.get("op")
    if op in ("and", "or"):
        return f"({_filter_sql(f['left'], alias_of, default)} {op.upper()} " \
               f"{_filter_sql(f['right'], alias_of, default)})"
    if op == "not":
        return f"(NOT {_filter_sql(f['left'], alias_of, default)})"
    feat = f["feature"]
    alias = default
    if feat.get("fg"):
        key = (feat["fg"]["name"], int(feat["fg"]["version"]))
        if key not in alias_of:
            raise QueryError(f"the filter uses {key[0]}_{key[1]}, which the query does not read")
        alias = alias_of[key]
    col = f"{alias}.{q(feat['name'])}"
    cmp = f["cmp"]
    value = f.get("value")
    if cmp == "isin":
        values = list(value or [])
        if not values:
            return "FALSE"
        return f"{col} IN ({', '.join(literal(v) for v in values)})"
    if cmp in ("is_null", "not_null"):
        return f"{col} IS {'NOT ' if cmp == 'not_null' else ''}NULL"
    if cmp == "like":
        return f"{col} LIKE {literal(value)}"
    if cmp not in COMPARATORS:
        raise QueryError(f"unknown filter comparison {cmp!r}")
    if value is None:
        raise QueryError("compare with None using .isnull() / .notnull(), not ==")
    return f"{col} {COMPARATORS[cmp]} {literal(value)}"


def to_sql(
    spec: Mapping[str, Any], groups: Mapping[tuple[str, int], GroupInfo]
) -> tuple[str, list[tuple[str, GroupInfo]]]:
    """Render a query spec as one DuckDB SELECT over ``<name>_<version>`` tables.

    A spec is ``{"fg": {"name", "version"}, "features": [...] | None, "joins":
    [{"query": spec, "on" | "left_on"/"right_on": [...], "join_type"}], "filter": f | None,
    "order": [output names] | None}``.

    Returns:
        The SQL text and, per output column, its name and the group it comes from.
    """
    flat: list[tuple[Mapping[str, Any], dict[str, Any] | None]] = []
    _flatten(spec, flat)
    alias_of: dict[tuple[str, int], str] = {}
    aliases: list[str] = []
    for i, (s, _) in enumerate(flat):
        key = (s["fg"]["name"], int(s["fg"]["version"]))
        if key not in groups:
            raise FeatureGroupNotFoundError(f"no feature group {key[0]} version {key[1]}")
        aliases.append(f"fg{i}")
        alias_of.setdefault(key, f"fg{i}")

    columns: list[tuple[str, str, GroupInfo]] = []  # (output name, "alias.col", group)
    seen: dict[str, str] = {}
    from_parts: list[str] = []
    filters: list[str] = []
    for i, (s, join) in enumerate(flat):
        g = groups[(s["fg"]["name"], int(s["fg"]["version"]))]
        alias = aliases[i]
        feats = list(g.features) if s.get("features") is None else list(s["features"])
        for f in feats:
            if f not in g.features:
                raise FeatureNotFoundError(f"feature {f!r} is not in feature group {g.table}")
        skip: set[str] = set()
        if join is None:
            from_parts.append(f"{q(source_table(s['fg']))} AS {alias}")
        else:
            parent_idx = next(k for k in range(i) if any(j is join for j in (flat[k][0].get("joins") or [])))
            parent = aliases[parent_idx]
            pg = groups[(flat[parent_idx][0]["fg"]["name"], int(flat[parent_idx][0]["fg"]["version"]))]
            left_on: list[str] = list(join.get("left_on") or join.get("on") or [])
            right_on: list[str] = list(join.get("right_on") or join.get("on") or [])
            if not left_on:
                left_on = right_on = _join_key([pg, g], None)
            if len(left_on) != len(right_on):
                raise JoinKeyError("left_on and right_on must name the same number of columns")
            for lk, rk, gg in [(k, None, pg) for k in left_on] + [(None, k, g) for k in right_on]:
                k = lk or rk
                if k not in gg.features:
                    raise JoinKeyError(f"join key {k!r} is not a feature of {gg.table}")
            jt = join.get("join_type", "inner")
            if jt not in JOIN_TYPES:
                raise InvalidArgumentError(f"join_type must be one of {sorted(JOIN_TYPES)}, got {jt!r}")
            cond = " AND ".join(f"{parent}.{q(a)} = {alias}.{q(b)}" for a, b in zip(left_on, right_on, strict=True))
            from_parts.append(f"{JOIN_TYPES[jt]} {q(source_table(s['fg']))} AS {alias} ON {cond}")
            if not join.get("left_on"):  # `on=` or the default key: one column per key
                skip = set(left_on)
        if join is not None and skip and join.get("join_type", "inner") != "inner":
            for k in skip:
                if k in seen:  # selected earlier: fill it from this side where that one is null
                    i_col = next(n for n, c in enumerate(columns) if c[0] == k)
                    name_, expr_, g_ = columns[i_col]
                    columns[i_col] = (name_, f"COALESCE({_inner(expr_)}, {alias}.{q(k)}) AS {q(k)}", g_)
        for f in feats:
            if f in skip and f in seen:
                continue
            if f in skip and join is not None and join.get("join_type", "inner") != "inner":
                seen[f] = g.table
                columns.append((f, f"COALESCE({parent}.{q(f)}, {alias}.{q(f)}) AS {q(f)}", g))
                continue
            if f in seen:
                raise FeatureNameCollisionError(
                    f"feature {f!r} is selected from two feature groups ({seen[f]} and {g.table}); "
                    "select it from one of them only",
                    candidates=[f"{seen[f]}.{f}", f"{g.table}.{f}"],
                )
            seen[f] = g.table
            columns.append((f, f"{alias}.{q(f)}", g))
        if s.get("filter"):
            filters.append(_filter_sql(s["filter"], alias_of, alias))
    order = spec.get("order")
    if order:
        by_name = {c[0]: c for c in columns}
        missing = [o for o in order if o not in by_name]
        if missing:
            raise QueryError(f"columns {missing} are not produced by the query")
        columns = [by_name[o] for o in order]
    select = ", ".join(expr for _, expr, _ in columns)
    sql = f"SELECT {select} FROM " + " ".join(from_parts)
    if filters:
        sql += " WHERE " + " AND ".join(filters)
    return sql, [(name, g) for name, _, g in columns]


def source_table(fg: Mapping[str, Any]) -> str:
    """The table a spec node reads: ``<name>_<version>``, or ``<name>_<version>@<commit>`` for a
    group pinned to a commit by ``as_of`` (``fg.commit``, set by the store's ``pin_as_of``)."""
    base = f"{fg['name']}_{int(fg['version'])}"
    return base if fg.get("commit") is None else f"{base}@{int(fg['commit'])}"
