"""The point-in-time join engine (cloudsdk.store.pit) against a brute-force reference.

The reference below is plain Python over ``to_pylist()`` rows: for every label row and every
group it scans the group's rows with an equal (non-null) key and keeps the one with the
greatest (event time, order, position) among those with ``event_time <= label time`` (and
within the ttl). Randomised cases run in batches: each batch holds many independent small
scenarios that differ in an extra ``case`` key column, so one engine call checks dozens of
them; a hypothesis test adds unbatched cases (empty tables included) with shrinking.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cloudsdk.errors import (
    FeatureNameCollisionError,
    FeatureNotFoundError,
    InvalidArgumentError,
)
from cloudsdk.store import pit
from cloudsdk.store.pit import PitGroup, point_in_time_join

BASE = dt.datetime(2026, 3, 1)
ZONES = ("UTC", "Europe/Paris", "America/New_York", "Asia/Kolkata")


# ----------------------------------------------------------------------------- the reference

def _instant(value: Any) -> Any:
    """A comparable Python value for a time: aware datetimes compare as instants, dates are
    midnight (naive)."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value
    if isinstance(value, dt.date):
        return dt.datetime.combine(value, dt.time())
    raise AssertionError(f"unexpected time value {value!r}")


def reference(labels: pa.Table, label_time: str, groups: Sequence[PitGroup],
              label_keys: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
    """The expected output rows, by brute force."""
    mapping = dict(label_keys or {})
    rows = labels.to_pylist()
    out = [dict(row) for row in rows]
    for group in groups:
        data = group.data
        history = (data if isinstance(data, pa.Table) else data.to_table()).to_pylist()
        by_key: dict[tuple[Any, ...], list[tuple[int, dict[str, Any]]]] = defaultdict(list)
        for pos, h in enumerate(history):
            key = tuple(h[k] for k in group.keys)
            if None not in key and h[group.event_time] is not None:
                by_key[key].append((pos, h))
        for row, result in zip(rows, out, strict=True):
            key = tuple(row[mapping.get(k, k)] for k in group.keys)
            at = _instant(row[label_time])
            best: tuple[Any, ...] | None = None
            winner: dict[str, Any] | None = None
            if at is not None and None not in key:
                for pos, h in by_key.get(key, []):
                    t = _instant(h[group.event_time])
                    if t > at or (group.ttl is not None and t < at - group.ttl):
                        continue
                    o = h[group.order] if group.order else None
                    rank = (t, (0,) if o is None else (1, o), pos)
                    if best is None or rank > best:
                        best, winner = rank, h
            for f in group.features:
                result[group.rename.get(f, f)] = None if winner is None else winner[f]
    return out


def _same(got: list[dict[str, Any]], want: list[dict[str, Any]]) -> bool:
    if len(got) != len(want):
        return False
    for a, b in zip(got, want, strict=True):
        if a.keys() != b.keys():
            return False
        for k in a:
            x, y = a[k], b[k]
            if isinstance(x, float) and isinstance(y, float) and math.isnan(x) and math.isnan(y):
                continue
            if x != y or type(x) is not type(y):
                return False
    return True


def check(labels: pa.Table, label_time: str, groups: Sequence[PitGroup],
          label_keys: Mapping[str, str] | None = None) -> pa.Table:
    """Run the engine, compare with the reference row by row, return the engine's table."""
    got = point_in_time_join(labels, label_time, groups, label_keys=label_keys)
    want = reference(labels, label_time, groups, label_keys)
    rows = got.to_pylist()
    if not _same(rows, want):
        for i, (a, b) in enumerate(zip(rows, want, strict=False)):
            if not _same([a], [b]):
                raise AssertionError(f"row {i} differs:\n engine    {a}\n reference {b}")
        raise AssertionError(f"{len(rows)} rows from the engine, {len(want)} expected")
    assert got.column_names[: labels.num_columns] == labels.column_names
    return got


# ----------------------------------------------------------------------------- random cases

def _times(rng: np.random.Generator, n: int, kind: str, null_p: float, spread: int) -> pa.Array:
    """``n`` times on a small grid (many equal values), as ``kind``: a date, or
    ``"<unit>"`` / ``"<unit>@<zone>"`` timestamps."""
    steps = rng.integers(0, spread, n)
    mask = rng.random(n) < null_p
    if kind == "date":
        values = [None if m else (BASE + dt.timedelta(days=int(s))).date() for s, m in zip(steps, mask, strict=True)]
        return pa.array(values, pa.date32())
    unit, _, zone = kind.partition("@")
    scale = {"s": 1, "ms": 10**3, "us": 10**6}[unit]
    epoch = int(BASE.replace(tzinfo=dt.UTC).timestamp()) * scale
    ints = pa.array(epoch + steps * scale * 7 // 2 + rng.integers(0, 2, n), pa.int64(), mask=mask)
    return ints.cast(pa.timestamp(unit, zone or None))


def _column(rng: np.random.Generator, n: int, kind: str) -> pa.Array:
    mask = rng.random(n) < 0.15
    if kind == "float":
        return pa.array(rng.normal(size=n).round(3), pa.float64(), mask=mask)
    if kind == "int":
        return pa.array(rng.integers(-50, 50, n), pa.int32(), mask=mask)
    values = [None if m else f"s{v}" for v, m in zip(rng.integers(0, 30, n), mask, strict=True)]
    return pa.array(values, pa.string())


def random_batch(seed: int, scenarios: int = 40) -> tuple[pa.Table, list[PitGroup], dict[str, str]]:
    """One batch: ``scenarios`` independent small cases sharing a configuration (time types,
    number of keys, groups, ttl, order) and told apart by the key column ``case``."""
    rng = np.random.default_rng(seed)
    n_keys = int(rng.integers(1, 3))
    aware = rng.random() < 0.3
    dates = not aware and rng.random() < 0.15

    def kind() -> str:
        if dates and rng.random() < 0.6:
            return "date"
        unit = str(rng.choice(["s", "ms", "us"]))
        return f"{unit}@{rng.choice(ZONES)}" if aware else unit

    spread = int(rng.integers(2, 12))
    label_parts, group_parts = [], []
    n_groups = int(rng.integers(1, 4))
    group_kinds = [kind() for _ in range(n_groups)]
    label_kind = kind()
    orders = [rng.random() < 0.6 for _ in range(n_groups)]
    ttls = [dt.timedelta(seconds=int(rng.integers(0, 30))) if rng.random() < 0.35 else None
            for _ in range(n_groups)]
    feature_kinds = [[str(k) for k in rng.choice(["float", "int", "str"], int(rng.integers(1, 3)))]
                     for _ in range(n_groups)]
    renamed = rng.random() < 0.5  # the first key column of the label table has another name
    label_key0 = "entity" if renamed else "k0"
    for case in range(scenarios):
        n_ent = int(rng.integers(1, 4))
        pool = int(rng.integers(1, 9))
        n_labels = int(rng.integers(0, 12))
        base = {
            "case": pa.array(np.full(pool, case), pa.int64()),
            label_key0: pa.array(rng.integers(0, n_ent, pool), pa.int64(), mask=rng.random(pool) < 0.1),
            **({"k1": pa.array([f"e{v}" for v in rng.integers(0, 2, pool)], pa.string())} if n_keys == 2 else {}),
            "ts": _times(rng, pool, label_kind, 0.1, spread),
            "y": pa.array(rng.integers(0, 1000, pool), pa.int64()),
        }
        # duplicate label rows: draw with replacement from a small pool
        label_parts.append(pa.table(base).take(pa.array(rng.integers(0, pool, n_labels), pa.int64())))
        parts = []
        for g in range(n_groups):
            n_hist = int(rng.integers(0, 16)) if rng.random() > 0.1 else 0
            cols: dict[str, pa.Array] = {
                "case": pa.array(np.full(n_hist, case), pa.int64()),
                "k0": pa.array(rng.integers(0, n_ent, n_hist), pa.int64(), mask=rng.random(n_hist) < 0.1),
            }
            if n_keys == 2:
                cols["k1"] = pa.array([f"e{v}" for v in rng.integers(0, 2, n_hist)], pa.string())
            cols["et"] = _times(rng, n_hist, group_kinds[g], 0.1, spread)
            if orders[g]:
                cols["commit"] = pa.array(rng.integers(0, 3, n_hist), pa.int64(), mask=rng.random(n_hist) < 0.1)
            for i, fk in enumerate(feature_kinds[g]):
                cols[f"f{i}"] = _column(rng, n_hist, fk)
            parts.append(pa.table(cols))
        group_parts.append(parts)
    labels = pa.concat_tables(label_parts)
    # interleave the scenarios' label rows: the output must follow this order
    labels = labels.take(pa.array(rng.permutation(labels.num_rows), pa.int64()))
    groups = []
    for g in range(n_groups):
        history = pa.concat_tables([parts[g] for parts in group_parts])
        # late-arriving rows: history in random order (positions still break ties)
        history = history.take(pa.array(rng.permutation(history.num_rows), pa.int64()))
        features = tuple(f"f{i}" for i in range(len(feature_kinds[g]))) + (("et",) if rng.random() < 0.3 else ())
        groups.append(PitGroup(
            name=f"g{g}", data=history, keys=("case", "k0", "k1")[: n_keys + 1], event_time="et",
            features=features, ttl=ttls[g], order="commit" if orders[g] else None,
            rename={f: f"g{g}_{f}" for f in features}))
    return labels, groups, ({"k0": "entity"} if renamed else {})


@pytest.mark.parametrize("chunk", range(5))
def test_random_batches_match_the_reference(chunk: int) -> None:
    """5 x 12 batches x 40 scenarios: 2,400 random cases."""
    cases = 0
    for seed in range(chunk * 12, chunk * 12 + 12):
        labels, groups, label_keys = random_batch(seed)
        check(labels, "ts", groups, label_keys)
        cases += 40
    assert cases == 480


@st.composite
def small_case(draw: st.DrawFn) -> tuple[pa.Table, list[PitGroup]]:
    """One unbatched case: tiny tables, possibly empty, one or two groups."""
    times = st.one_of(st.none(), st.integers(0, 6).map(lambda s: BASE + dt.timedelta(seconds=s)))
    label_rows = draw(st.lists(st.tuples(st.one_of(st.none(), st.integers(0, 2)), times), max_size=8))
    labels = pa.table({"id": pa.array([r[0] for r in label_rows], pa.int64()),
                       "ts": pa.array([r[1] for r in label_rows], pa.timestamp("us"))})
    groups = []
    for g in range(draw(st.integers(1, 2))):
        rows = draw(st.lists(st.tuples(st.one_of(st.none(), st.integers(0, 2)), times,
                                       st.one_of(st.none(), st.integers(0, 2)),
                                       st.one_of(st.none(), st.floats(-5, 5, allow_nan=False))),
                             max_size=10))
        history = pa.table({"id": pa.array([r[0] for r in rows], pa.int64()),
                            "ts": pa.array([r[1] for r in rows], pa.timestamp("us")),
                            "commit": pa.array([r[2] for r in rows], pa.int64()),
                            "x": pa.array([r[3] for r in rows], pa.float64())})
        ttl = draw(st.one_of(st.none(), st.integers(0, 4).map(lambda s: dt.timedelta(seconds=s))))
        order = draw(st.sampled_from([None, "commit"]))
        groups.append(PitGroup(f"g{g}", history, ("id",), "ts", ("x",), ttl=ttl, order=order,
                               rename={"x": f"x{g}"}))
    return labels, groups


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(small_case())
def test_hypothesis_cases_match_the_reference(case: tuple[pa.Table, list[PitGroup]]) -> None:
    labels, groups = case
    check(labels, "ts", groups)


# ----------------------------------------------------------------------------- semantics

def _ts(*seconds: int | None, unit: str = "us", tz: str | None = None) -> pa.Array:
    values = [None if s is None else (BASE + dt.timedelta(seconds=s)) for s in seconds]
    arr = pa.array(values, pa.timestamp(unit))
    return pc.assume_timezone(arr, tz) if tz else arr


def test_the_documented_picture() -> None:
    """The example drawn in docs/point-in-time.md."""
    history = pa.table({"id": [7, 7, 7, 7], "ts": _ts(10, 20, 30, 30), "commit": [1, 1, 1, 2],
                        "x": [1.0, 2.0, 3.0, 3.5]})
    labels = pa.table({"id": [7, 7, 7, 7, 7, 8], "ts": _ts(5, 10, 25, 30, 99, 30)})
    out = point_in_time_join(labels, "ts", [PitGroup("fg", history, ("id",), "ts", ("x",), order="commit")])
    assert out.column("x").to_pylist() == [None, 1.0, 2.0, 3.5, 3.5, None]
    ttl = point_in_time_join(labels, "ts", [PitGroup("fg", history, ("id",), "ts", ("x",), order="commit",
                                                      ttl=dt.timedelta(seconds=50))])
    assert ttl.column("x").to_pylist() == [None, 1.0, 2.0, 3.5, None, None]


def test_ttl_bounds_are_inclusive() -> None:
    history = pa.table({"id": [1], "ts": _ts(10), "x": [1.0]})
    labels = pa.table({"id": [1, 1, 1], "ts": _ts(10, 15, 16)})
    group = PitGroup("fg", history, ("id",), "ts", ("x",), ttl=dt.timedelta(seconds=5))
    assert point_in_time_join(labels, "ts", [group]).column("x").to_pylist() == [1.0, 1.0, None]
    zero = PitGroup("fg", history, ("id",), "ts", ("x",), ttl=dt.timedelta(0))
    assert point_in_time_join(labels, "ts", [zero]).column("x").to_pylist() == [1.0, None, None]


def test_ties_go_to_the_larger_order_then_the_later_row() -> None:
    history = pa.table({"id": [1, 1, 1, 1, 1], "ts": _ts(5, 5, 5, 5, 5),
                        "commit": [3, None, 3, 1, 2], "x": ["a", "b", "c", "d", "e"]})
    labels = pa.table({"id": [1], "ts": _ts(5)})
    by_order = point_in_time_join(labels, "ts", [PitGroup("fg", history, ("id",), "ts", ("x",), order="commit")])
    assert by_order.column("x").to_pylist() == ["c"]  # commit 3 twice: the later row
    by_position = point_in_time_join(labels, "ts", [PitGroup("fg", history, ("id",), "ts", ("x",))])
    assert by_position.column("x").to_pylist() == ["e"]
    nulls_lose = history.set_column(2, "commit", pa.array([None, None, 0, None, None], pa.int64()))
    out = point_in_time_join(labels, "ts", [PitGroup("fg", nulls_lose, ("id",), "ts", ("x",), order="commit")])
    assert out.column("x").to_pylist() == ["c"]


def test_a_timestamp_order_column() -> None:
    history = pa.table({"id": [1, 1], "ts": _ts(5, 5), "committed": _ts(100, 50), "x": [1, 2]})
    labels = pa.table({"id": [1], "ts": _ts(6)})
    out = point_in_time_join(labels, "ts", [PitGroup("fg", history, ("id",), "ts", ("x",), order="committed")])
    assert out.column("x").to_pylist() == [1]


@pytest.mark.parametrize("values", [["b", "c", None, "a"], [0.5, 2.5, None, -1.0], [False, True, None, False]])
def test_order_columns_of_other_types(values: list[Any]) -> None:
    """Strings, floats and booleans order ties too (the second row has the largest value)."""
    history = pa.table({"id": [1, 1, 1, 1], "ts": _ts(5, 5, 5, 5), "o": values, "x": [1, 2, 3, 4]})
    labels = pa.table({"id": [1], "ts": _ts(5)})
    group = PitGroup("fg", history, ("id",), "ts", ("x",), order="o")
    assert point_in_time_join(labels, "ts", [group]).column("x").to_pylist() == [2]
    no_nulls = PitGroup("fg", history.filter(pc.is_valid(history.column("o"))), ("id",), "ts", ("x",), order="o")
    assert point_in_time_join(labels, "ts", [no_nulls]).column("x").to_pylist() == [2]
    assert hash(group) == hash(PitGroup("fg", history, ("id",), "ts", ("x",), order="o"))


def test_nulls_never_match_and_labels_are_kept() -> None:
    history = pa.table({"id": [None, 1, 1], "ts": _ts(1, None, 2), "x": [9.0, 8.0, None]})
    labels = pa.table({"id": [None, 1, 1, 1], "ts": _ts(5, None, 1, 5), "y": ["a", "b", "c", "d"]})
    out = point_in_time_join(labels, "ts", [PitGroup("fg", history, ("id",), "ts", ("x", "ts"),
                                                      rename={"ts": "fg_ts"})])
    assert out.column("y").to_pylist() == ["a", "b", "c", "d"]
    assert out.column("x").to_pylist() == [None, None, None, None]  # the match at 2 has a null x
    assert out.column("fg_ts").to_pylist() == [None, None, None, BASE + dt.timedelta(seconds=2)]


def test_duplicate_label_rows_keep_their_order() -> None:
    history = pa.table({"id": [1, 2], "ts": _ts(0, 0), "x": [1, 2]})
    labels = pa.table({"id": [2, 1, 2, 2, 1], "ts": _ts(3, 3, 3, 1, 3), "n": [0, 1, 2, 3, 4]})
    out = point_in_time_join(labels, "ts", [PitGroup("fg", history, ("id",), "ts", ("x",))])
    assert out.column("n").to_pylist() == [0, 1, 2, 3, 4]
    assert out.column("x").to_pylist() == [2, 1, 2, 2, 1]
    assert out.select(["id", "ts", "n"]).equals(labels)


def test_several_keys_and_groups_with_mapped_key_names() -> None:
    teams = pa.table({"team": [1, 1, 2], "season": ["a", "b", "a"], "ts": _ts(1, 1, 1), "x": [1.0, 2.0, 3.0]})
    players = pa.table({"player": [10, 10], "ts": _ts(0, 4), "rating": [50, 60]})
    labels = pa.table({"team_id": [1, 1, 2, 2], "season": ["b", "a", "a", "b"], "player": [10, 10, 10, 11],
                       "ts": _ts(2, 2, 5, 5)})
    groups = [PitGroup("teams", teams, ("team", "season"), "ts", ("x",)),
              PitGroup("players", players, ("player",), "ts", ("rating",))]
    out = check(labels, "ts", groups, {"team": "team_id"})
    assert out.column("x").to_pylist() == [2.0, 1.0, 3.0, None]
    assert out.column("rating").to_pylist() == [50, 50, 60, None]


def test_empty_labels_and_empty_history() -> None:
    history = pa.table({"id": pa.array([], pa.int64()), "ts": _ts(), "x": pa.array([], pa.float32()),
                        "tags": pa.array([], pa.list_(pa.string()))})
    labels = pa.table({"id": [1, 2], "ts": _ts(1, 2)})
    out = point_in_time_join(labels, "ts", [PitGroup("fg", history, ("id",), "ts", ("x", "tags"))])
    assert out.schema.field("x").type == pa.float32()
    assert out.schema.field("tags").type == pa.list_(pa.string())
    assert out.column("x").to_pylist() == [None, None]
    full = pa.table({"id": [1], "ts": _ts(0), "x": pa.array([1.5], pa.float32()), "tags": [["a"]]})
    empty = point_in_time_join(labels.slice(0, 0), "ts", [PitGroup("fg", full, ("id",), "ts", ("x", "tags"))])
    assert empty.num_rows == 0
    assert empty.column_names == ["id", "ts", "x", "tags"]
    assert empty.schema.field("tags").type == pa.list_(pa.string())
    assert point_in_time_join(labels, "ts", []).equals(labels)


def test_feature_types_are_kept_exactly() -> None:
    history = pa.table({
        "id": pa.array([1], pa.int16()), "ts": _ts(0),
        "img": pa.array([[[1, 2], [3, 4]]], pa.list_(pa.list_(pa.uint8(), 2), 2)),
        "s": pa.array([{"a": 1, "b": "x"}]), "d": pa.array([dt.date(2020, 1, 1)]),
        "dec": pa.array([Decimal("1.25")], pa.decimal128(10, 2)),
        "cat": pa.array(["u"]).dictionary_encode(), "big": pa.array(["z"], pa.large_string()),
    })
    labels = pa.table({"id": [1, 2], "ts": _ts(1, 1)})
    features = ("img", "s", "d", "dec", "cat", "big")
    out = point_in_time_join(labels, "ts", [PitGroup("fg", history, ("id",), "ts", features)])
    for f in features:
        assert out.schema.field(f).type == history.schema.field(f).type, f
    assert out.column("img").to_pylist() == [[[1, 2], [3, 4]], None]
    assert out.column("cat").to_pylist() == ["u", None]


def test_key_types_compatible_across_widths_and_encodings() -> None:
    history = pa.table({"id": pa.array([1, 2], pa.int64()), "name": pa.array(["a", "b"], pa.large_string()),
                        "ts": _ts(0, 0), "x": [1, 2]})
    labels = pa.table({"id": pa.array([2, 1], pa.int32()), "name": pa.array(["b", "a"]).dictionary_encode(),
                       "ts": _ts(1, 1)})
    out = point_in_time_join(labels, "ts", [PitGroup("fg", history, ("id", "name"), "ts", ("x",))])
    assert out.column("x").to_pylist() == [2, 1]


def test_time_zones_compare_as_instants() -> None:
    """Labels in Paris, history in UTC and New York: the same instants."""
    history = pa.table({"id": [1, 1], "ts": _ts(0, 3600, tz="UTC"), "x": [1, 2]})
    ny = history.set_column(1, "ts", history.column("ts").cast(pa.timestamp("ns", "America/New_York")))
    labels = pa.table({"id": [1, 1, 1], "ts": _ts(3599, 3600, 3601, unit="s", tz="UTC").cast(
        pa.timestamp("s", "Europe/Paris"))})
    for data in (history, ny):
        out = check(labels, "ts", [PitGroup("fg", data, ("id",), "ts", ("x",))])
        assert out.column("x").to_pylist() == [1, 2, 2]


def test_units_down_to_nanoseconds() -> None:
    ns = pa.array([1_000_000_000, 1_000_000_001, None], pa.int64()).cast(pa.timestamp("ns"))
    history = pa.table({"id": [1, 1, 1], "ts": ns, "x": [1, 2, 3]})
    labels = pa.table({"id": [1, 1, 1], "ts": pa.array([1_000_000_000, 1_000_000_001, 999_999_999],
                                                       pa.int64()).cast(pa.timestamp("ns"))})
    out = point_in_time_join(labels, "ts", [PitGroup("fg", history, ("id",), "ts", ("x",))])
    assert out.column("x").to_pylist() == [1, 2, None]
    seconds = pa.table({"id": [1], "ts": pa.array([1], pa.int64()).cast(pa.timestamp("s"))})
    out = point_in_time_join(seconds, "ts", [PitGroup("fg", history, ("id",), "ts", ("x",))])
    assert out.column("x").to_pylist() == [1]  # 1 s = 1,000,000,000 ns: the equal event matches


def test_dates_are_midnight() -> None:
    history = pa.table({"id": [1, 1], "ts": pa.array([dt.datetime(2026, 1, 1), dt.datetime(2026, 1, 1, 0, 0, 1)]),
                        "x": [1, 2]})
    labels = pa.table({"id": [1, 1], "day": pa.array([dt.date(2026, 1, 1), dt.date(2026, 1, 2)], pa.date32())})
    out = check(labels, "day", [PitGroup("fg", history, ("id",), "ts", ("x",))])
    assert out.column("x").to_pylist() == [1, 2]
    days = pa.table({"id": [1], "d": pa.array([dt.date(2025, 12, 31)], pa.date64()), "x": [5]})
    assert point_in_time_join(labels, "day", [PitGroup("fg", days, ("id",), "d", ("x",))]).column(
        "x").to_pylist() == [5, 5]


@pytest.mark.parametrize("grid", [False, True])
def test_wide_time_spans(grid: bool) -> None:
    """Times spanning centuries: the packed BIGINT sort value does not fit, unless every time
    lies on a coarse grid (whole seconds here); both ways give the reference's answer."""
    rng = np.random.default_rng(3)
    n = 3000
    seconds = rng.integers(-2_000_000_000, 7_000_000_000, n)
    micros = seconds * 1_000_000 + (0 if grid else rng.integers(0, 1_000_000, n))
    history = pa.table({"id": rng.integers(0, 50, n), "ts": pa.array(micros).cast(pa.timestamp("us")),
                        "x": rng.random(n)})
    labels = pa.table({"id": rng.integers(0, 60, 400), "ts": pa.array(
        rng.integers(-2_000_000_000, 7_000_000_000, 400) * 1_000_000).cast(pa.timestamp("us"))})
    packed = pit._packing(labels.column("ts").cast(pa.int64()), history.column("ts").cast(pa.int64()), n)
    assert (packed is not None) is grid
    check(labels, "ts", [PitGroup("fg", history, ("id",), "ts", ("x",), ttl=dt.timedelta(days=3000))])


def test_dataset_delta_and_reader_inputs(tmp_path: Any) -> None:
    from deltalake import DeltaTable, write_deltalake

    labels, groups, label_keys = random_batch(99, scenarios=10)
    want = point_in_time_join(labels, "ts", groups, label_keys=label_keys)
    as_dataset, as_delta, as_reader = [], [], []
    for i, group in enumerate(groups):
        pq.write_table(group.data, tmp_path / f"g{i}.parquet")
        as_dataset.append(PitGroup(group.name, pads.dataset(tmp_path / f"g{i}.parquet"), group.keys,
                                   group.event_time, group.features, group.ttl, group.order, group.rename))
        write_deltalake(tmp_path / f"delta{i}", group.data.slice(0, group.data.num_rows // 2))
        write_deltalake(tmp_path / f"delta{i}", group.data.slice(group.data.num_rows // 2), mode="append")
        delta = DeltaTable(str(tmp_path / f"delta{i}")).to_pyarrow_dataset()
        assert delta.count_rows() == group.data.num_rows
        as_delta.append(PitGroup(group.name, delta, group.keys, group.event_time, group.features,
                                 group.ttl, group.order, group.rename))
        as_reader.append(PitGroup(group.name, pa.RecordBatchReader.from_batches(
            group.data.schema, group.data.to_batches(max_chunksize=7)), group.keys, group.event_time,
            group.features, group.ttl, group.order, group.rename))
    for variant in (as_dataset, as_reader):
        got = point_in_time_join(labels, "ts", variant, label_keys=label_keys)
        assert got.to_pylist() == want.to_pylist()
    # A Delta table's dataset need not list its files in commit order (the reference reads
    # the dataset in its own order): commit order needs an explicit ``order`` column.
    check(labels, "ts", as_delta, label_keys)


def test_pandas_labels() -> None:
    history = pa.table({"id": [1], "ts": _ts(0), "x": [1.0]})
    frame = pd.DataFrame({"id": [1, 2], "ts": pd.to_datetime(["2026-03-01 00:00:05", "2026-03-01 00:00:00"])})
    out = point_in_time_join(frame, "ts", [PitGroup("fg", history, ("id",), "ts", ("x",))])
    assert out.column("x").to_pylist() == [1.0, None]


# ----------------------------------------------------------------------------- errors

def _group(**changes: Any) -> PitGroup:
    history = pa.table({"id": [1], "name": ["a"], "ts": _ts(0), "x": [1.0], "nested": [{"a": 1}]})
    fields = {"name": "fg", "data": history, "keys": ("id",), "event_time": "ts", "features": ("x",)}
    fields.update(changes)
    return PitGroup(**fields)


LABELS = pa.table({"id": [1], "name": ["a"], "ts": _ts(1), "when": pa.array([1], pa.int64()),
                   "text": ["2026-03-01"], "aware": _ts(1, tz="UTC")})


def test_missing_label_columns_are_named() -> None:
    with pytest.raises(InvalidArgumentError, match=r"no time column 'missing'.*its columns: id, name"):
        point_in_time_join(LABELS, "missing", [_group()])
    with pytest.raises(InvalidArgumentError, match=r"no key column 'user'"):
        point_in_time_join(LABELS.drop_columns(["id"]).append_column("x2", pa.array([1])), "ts",
                           [_group(keys=("user",), data=_group().data.append_column("user", pa.array([1])))])
    with pytest.raises(InvalidArgumentError, match=r"no key \(for the group's key 'id'\) column 'uid'"):
        point_in_time_join(LABELS, "ts", [_group()], label_keys={"id": "uid"})


@pytest.mark.parametrize("column", ["when", "text"])
def test_label_time_must_be_a_timestamp_or_date(column: str) -> None:
    with pytest.raises(InvalidArgumentError, match=rf"label time column '{column}' is (int64|string)"):
        point_in_time_join(LABELS, column, [_group()])


def test_group_time_must_be_a_timestamp_or_date() -> None:
    with pytest.raises(InvalidArgumentError, match=r"group 'fg'.*event time column 'x' is double"):
        point_in_time_join(LABELS, "ts", [_group(event_time="x")])


def test_naive_against_aware_times() -> None:
    with pytest.raises(InvalidArgumentError, match=r"label time 'aware' is time-zone aware.*event time 'ts' is not"):
        point_in_time_join(LABELS, "aware", [_group()])
    aware = _group(data=_group().data.set_column(2, "ts", _ts(0, tz="UTC")))
    with pytest.raises(InvalidArgumentError, match=r"event time 'ts' is time-zone aware.*label time 'ts' is not"):
        point_in_time_join(LABELS, "ts", [aware])
    day = LABELS.append_column("day", pa.array([dt.date(2026, 3, 1)]))
    with pytest.raises(InvalidArgumentError, match="time-zone aware"):
        point_in_time_join(day, "day", [aware])


def test_times_out_of_range_for_the_common_unit() -> None:
    far = LABELS.append_column("far", pa.array([dt.datetime(3000, 1, 1)], pa.timestamp("s")))
    ns = _group(data=_group().data.set_column(2, "ts", pa.array([0], pa.int64()).cast(pa.timestamp("ns"))))
    with pytest.raises(InvalidArgumentError, match=r"label time column 'far'.*cannot express its times in ns"):
        point_in_time_join(far, "far", [ns])


def test_key_types_must_match() -> None:
    with pytest.raises(InvalidArgumentError, match=r"key 'id' is int64 in the group but the label column 'name' is string"):
        point_in_time_join(LABELS, "ts", [_group()], label_keys={"id": "name"})
    with pytest.raises(InvalidArgumentError, match=r"key 'nested' must be a scalar column"):
        point_in_time_join(LABELS.append_column("nested", pa.array([{"a": 1}])), "ts", [_group(keys=("nested",))])


def test_group_columns_must_exist() -> None:
    with pytest.raises(FeatureNotFoundError, match=r"group 'fg': no feature 'nope', 'gone'"):
        point_in_time_join(LABELS, "ts", [_group(features=("x", "nope", "gone"))])
    with pytest.raises(InvalidArgumentError, match=r"group 'fg': its data has no event time column 'et'"):
        point_in_time_join(LABELS, "ts", [_group(event_time="et")])
    with pytest.raises(InvalidArgumentError, match=r"its data has no order column 'commit'"):
        point_in_time_join(LABELS, "ts", [_group(order="commit")])
    with pytest.raises(InvalidArgumentError, match=r"its data has no key column 'name2'"):
        point_in_time_join(LABELS, "ts", [_group(keys=("id", "name2"))], label_keys={"name2": "name"})


def test_output_names_must_not_collide() -> None:
    with pytest.raises(FeatureNameCollisionError, match=r"'name'.*already a column of the label table"):
        point_in_time_join(LABELS, "ts", [_group(features=("name",))])
    with pytest.raises(FeatureNameCollisionError, match=r"'x'.*already a column of group 'fg'"):
        point_in_time_join(LABELS, "ts", [_group(), _group(name="other")])
    point_in_time_join(LABELS, "ts", [_group(), _group(name="other", rename={"x": "other_x"})])
    with pytest.raises(InvalidArgumentError, match=r"rename names \['y'\]"):
        point_in_time_join(LABELS, "ts", [_group(rename={"y": "z"})])


def test_bad_arguments() -> None:
    with pytest.raises(InvalidArgumentError, match="labels must be a pyarrow Table"):
        point_in_time_join([{"id": 1}], "ts", [_group()])
    with pytest.raises(InvalidArgumentError, match="data must be a pyarrow Table, Dataset"):
        point_in_time_join(LABELS, "ts", [_group(data=[{"id": 1}])])
    with pytest.raises(InvalidArgumentError, match="groups must be PitGroup objects"):
        point_in_time_join(LABELS, "ts", [{"name": "fg"}])  # type: ignore[list-item]
    with pytest.raises(InvalidArgumentError, match="ttl must be a non-negative"):
        _group(ttl=dt.timedelta(seconds=-1))
    with pytest.raises(InvalidArgumentError, match="ttl must be a non-negative"):
        _group(ttl=5)
    with pytest.raises(InvalidArgumentError, match="at least one key column"):
        _group(keys=())
    with pytest.raises(InvalidArgumentError, match="keys must be a sequence of column names"):
        _group(keys=(1,))
    assert _group(keys="id", features=["x"]).keys == ("id",)
