"""Inserts: append, overwrite and upsert (merge on the primary key), composite keys,
partitions, one commit per insert, and every kind of bad input refused with a typed error
that leaves the data as it was."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import cloudsdk
from cloudsdk import errors, featurestore

# ---------------------------------------------------------------- helpers


def _frame(ids: list[int], offset: float = 0.0) -> pd.DataFrame:
    return pd.DataFrame({
        "id": pd.Series(ids, dtype="int64"),
        "value": pd.Series([i * 1.5 + offset for i in ids], dtype="float64"),
        "label": pd.Series([f"l{i}" for i in ids], dtype="str"),
    })


def _read_sorted(fg: cloudsdk.FeatureGroup, keys: list[str] | None = None) -> pd.DataFrame:
    keys = keys or ["id"]
    return fg.read().sort_values(keys).reset_index(drop=True)


def _by_key(df: pd.DataFrame, keys: list[str] | None = None) -> pd.DataFrame:
    keys = keys or ["id"]
    return df.sort_values(keys).reset_index(drop=True)


class _Snapshot:
    """The rows and the commit count of a feature group, to prove a failed insert changed nothing."""

    def __init__(self, fg: cloudsdk.FeatureGroup) -> None:
        self.fg = fg
        self.table = fg.read("pyarrow")
        self.commits = len(fg.commit_details())
        self.stats = fg.statistics()

    def assert_unchanged(self) -> None:
        after = self.fg.read("pyarrow")
        assert after.schema.equals(self.table.schema)
        assert sorted(after.to_pylist(), key=repr) == sorted(self.table.to_pylist(), key=repr)
        assert len(self.fg.commit_details()) == self.commits
        stats = self.fg.statistics()
        assert (stats.to_dict() if stats else None) == (self.stats.to_dict() if self.stats else None)


@pytest.fixture
def fg(fs: cloudsdk.FeatureStore) -> cloudsdk.FeatureGroup:
    """A feature group keyed by ``id`` with rows 1..5."""
    return fs.create_feature_group("items", data=_frame([1, 2, 3, 4, 5]), primary_key=["id"])


# ---------------------------------------------------------------- modes


def test_append_adds_rows(fg: cloudsdk.FeatureGroup) -> None:
    result = fg.insert(_frame([6, 7]), "append")
    assert result["rows_inserted"] == 2
    expected = _by_key(pd.concat([_frame([1, 2, 3, 4, 5]), _frame([6, 7])]))
    pd.testing.assert_frame_equal(_read_sorted(fg), expected)


def test_append_is_the_default_mode(fg: cloudsdk.FeatureGroup) -> None:
    fg.insert(_frame([8]))
    assert sorted(fg.read()["id"]) == [1, 2, 3, 4, 5, 8]


def test_overwrite_replaces_all_rows(fg: cloudsdk.FeatureGroup) -> None:
    result = fg.insert(_frame([10, 11], offset=0.25), "overwrite")
    assert result["rows_inserted"] == 2 and result["rows_deleted"] == 5
    pd.testing.assert_frame_equal(_read_sorted(fg), _frame([10, 11], offset=0.25))


def test_overwrite_with_no_rows_empties_the_group(fg: cloudsdk.FeatureGroup) -> None:
    fg.insert(_frame([]), "overwrite")
    assert fg.read().shape == (0, 3)


def test_upsert_updates_and_inserts(fg: cloudsdk.FeatureGroup) -> None:
    before = _frame([1, 2, 3, 4, 5])
    change = _frame([2, 4, 6, 7], offset=100.0)
    result = fg.insert(change, "upsert")
    # the reference, computed independently: old rows whose key is not in the change, plus the change
    kept = before[~before["id"].isin(change["id"])]
    expected = _by_key(pd.concat([kept, change]))
    pd.testing.assert_frame_equal(_read_sorted(fg), expected)
    updated = int(change["id"].isin(before["id"]).sum())
    assert (result["rows_updated"], result["rows_inserted"]) == (updated, len(change) - updated)


def test_upsert_random_against_pandas_reference(fs: cloudsdk.FeatureStore) -> None:
    rng = np.random.default_rng(3)
    ids = rng.choice(5000, size=800, replace=False)
    base = pd.DataFrame({"id": ids.astype(np.int64), "x": rng.normal(size=800), "s": [f"s{i}" for i in ids]})
    fg = fs.create_feature_group("rand", data=base, primary_key=["id"], statistics=False)
    reference = base.set_index("id")
    for round_ in range(3):
        ids = rng.choice(5000, size=300, replace=False)
        change = pd.DataFrame({"id": ids.astype(np.int64), "x": rng.normal(size=300),
                               "s": [f"r{round_}_{i}" for i in ids]})
        fg.insert(change, "upsert")
        reference = change.set_index("id").combine_first(reference)
    expected = reference.reset_index().sort_values("id").reset_index(drop=True)
    got = _read_sorted(fg)[["id", "x", "s"]]
    pd.testing.assert_frame_equal(got, expected[["id", "x", "s"]], check_dtype=False)
    assert got["id"].is_unique


def test_upsert_with_composite_primary_key(fs: cloudsdk.FeatureStore) -> None:
    base = pd.DataFrame({"team": ["a", "a", "b", "b"], "season": [2020, 2021, 2020, 2021],
                         "points": [10, 11, 20, 21]})
    fg = fs.create_feature_group("seasons", data=base, primary_key=["team", "season"])
    assert fg.primary_key == ["team", "season"]
    # (a, 2021) and (b, 2020) change; (a, 2022) is new; (b, 2021) shares one key part only with changes
    change = pd.DataFrame({"team": ["a", "b", "a"], "season": [2021, 2020, 2022], "points": [111, 120, 12]})
    result = fg.insert(change, "upsert")
    assert (result["rows_updated"], result["rows_inserted"]) == (2, 1)
    merged = base.merge(change, on=["team", "season"], how="outer", suffixes=("_old", ""))
    merged["points"] = merged["points"].fillna(merged["points_old"]).astype("int64")
    expected = _by_key(merged[["team", "season", "points"]], ["team", "season"])
    pd.testing.assert_frame_equal(_read_sorted(fg, ["team", "season"]), expected)


def test_duplicate_composite_keys_on_upsert(fs: cloudsdk.FeatureStore) -> None:
    fg = fs.create_feature_group("seasons", data=pd.DataFrame({"t": ["a"], "s": [1], "p": [0]}),
                                 primary_key=["t", "s"])
    snap = _Snapshot(fg)
    dup = pd.DataFrame({"t": ["a", "a", "b"], "s": [2, 2, 2], "p": [1, 2, 3]})
    with pytest.raises(errors.DataValidationError, match=r"1 row\(s\) repeat a primary key \['t', 's'\]"):
        fg.insert(dup, "upsert")
    snap.assert_unchanged()
    # same team, different season is not a duplicate
    fg.insert(pd.DataFrame({"t": ["a", "a"], "s": [1, 2], "p": [5, 6]}), "upsert")
    assert _read_sorted(fg, ["t", "s"])["p"].tolist() == [5, 6]


def test_partitioned_group(fs: cloudsdk.FeatureStore) -> None:
    base = pd.DataFrame({"id": [1, 2, 3, 4], "country": ["es", "fr", "es", "it"], "v": [1.0, 2.0, 3.0, 4.0]})
    fg = fs.create_feature_group("parts", data=base, primary_key=["id"], partition_by=["country"])
    assert fg.partition_by == ["country"]
    assert [f.name for f in fg.features if f.partition] == ["country"]
    partitions = sorted(p.name for p in Path(fg.location).iterdir() if p.is_dir() and "=" in p.name)
    assert partitions == ["country=es", "country=fr", "country=it"]
    fg.insert(pd.DataFrame({"id": [5], "country": ["pt"], "v": [5.0]}), "append")
    fg.insert(pd.DataFrame({"id": [1, 6], "country": ["es", "fr"], "v": [10.0, 6.0]}), "upsert")
    expected = pd.DataFrame({"id": [1, 2, 3, 4, 5, 6], "country": ["es", "fr", "es", "it", "pt", "fr"],
                             "v": [10.0, 2.0, 3.0, 4.0, 5.0, 6.0]})
    got = _read_sorted(fg)
    pd.testing.assert_frame_equal(got, expected, check_dtype=False)
    assert got["country"].tolist() == expected["country"].tolist()
    assert (Path(fg.location) / "country=pt").is_dir()
    fg.insert(pd.DataFrame({"id": [9], "country": ["de"], "v": [9.0]}), "overwrite")
    pd.testing.assert_frame_equal(_read_sorted(fg), pd.DataFrame({"id": [9], "country": ["de"], "v": [9.0]}),
                                  check_dtype=False)


def test_upsert_can_move_a_row_to_another_partition(fs: cloudsdk.FeatureStore) -> None:
    base = pd.DataFrame({"id": [1, 2], "country": ["es", "fr"], "v": [1.0, 2.0]})
    fg = fs.create_feature_group("parts", data=base, partition_by=["country"])
    result = fg.insert(pd.DataFrame({"id": [1], "country": ["it"], "v": [9.0]}), "upsert")
    assert (result["rows_updated"], result["rows_inserted"]) == (1, 0)
    expected = pd.DataFrame({"id": [1, 2], "country": ["it", "fr"], "v": [9.0, 2.0]})
    pd.testing.assert_frame_equal(_read_sorted(fg), expected, check_dtype=False)


def test_multiple_partition_columns(fs: cloudsdk.FeatureStore) -> None:
    base = pd.DataFrame({"id": [1, 2, 3], "y": [2020, 2020, 2021], "m": [1, 2, 1], "v": ["a", "b", "c"]})
    fg = fs.create_feature_group("parts", data=base, partition_by=["y", "m"])
    assert fg.partition_by == ["y", "m"]
    assert (Path(fg.location) / "y=2020" / "m=2").is_dir()
    pd.testing.assert_frame_equal(_read_sorted(fg), base)


def test_partition_column_must_exist(fs: cloudsdk.FeatureStore) -> None:
    with pytest.raises(errors.SchemaMismatchError, match="nope"):
        fs.create_feature_group("parts", data=_frame([1]), partition_by=["nope"])
    assert fs.get_feature_groups() == []


def test_columns_in_another_order_and_widened_types_are_accepted(fg: cloudsdk.FeatureGroup) -> None:
    change = pa.table({"label": pa.array(["x"], pa.string()), "value": pa.array([0.5], pa.float32()),
                       "id": pa.array([9], pa.int32())})
    fg.insert(change)
    table = fg.read("pyarrow")
    assert table.schema.names == ["id", "value", "label"]
    assert table.schema.field("id").type == pa.int64()
    assert {"id": 9, "value": 0.5, "label": "x"} in table.to_pylist()


def test_named_index_becomes_a_column(fg: cloudsdk.FeatureGroup) -> None:
    fg.insert(_frame([8, 9]).set_index("id"), "upsert")
    pd.testing.assert_frame_equal(_read_sorted(fg), _frame([1, 2, 3, 4, 5, 8, 9]))


def test_null_event_time_is_refused(fs: cloudsdk.FeatureStore) -> None:
    first = pd.DataFrame({"id": [1], "at": pd.Series([pd.Timestamp("2020-01-01")], dtype="datetime64[us]")})
    fg = fs.create_feature_group("events", data=first, event_time="at")
    assert fg.event_time == "at"
    snap = _Snapshot(fg)
    bad = pd.DataFrame({"id": [2], "at": pd.Series([pd.NaT], dtype="datetime64[us]")})
    with pytest.raises(errors.DataValidationError, match="event_time column 'at' has 1 null"):
        fg.insert(bad)
    snap.assert_unchanged()
    with pytest.raises(errors.SchemaMismatchError, match="timestamp or date"):
        fs.create_feature_group("events2", data=pd.DataFrame({"id": [1], "at": [5]}), event_time="at")


@pytest.mark.parametrize("mode", ["append", "overwrite", "upsert"])
def test_each_insert_is_one_commit(fg: cloudsdk.FeatureGroup, mode: str) -> None:
    before = fg.commit_details()
    result = fg.insert(_frame([3, 9]), mode)
    after = fg.commit_details()
    assert len(after) == len(before) + 1
    assert after[0]["version"] == before[0]["version"] + 1 == result["version"]
    fg.insert(_frame([3, 9]), mode if mode != "append" else "upsert")
    assert len(fg.commit_details()) == len(before) + 2


# ---------------------------------------------------------------- bad input


def test_missing_column(fg: cloudsdk.FeatureGroup) -> None:
    snap = _Snapshot(fg)
    with pytest.raises(errors.SchemaMismatchError) as info:
        fg.insert(_frame([9]).drop(columns=["label"]))
    assert info.value.differences == ["missing column 'label' (string)"]
    assert "label" in str(info.value) and "items" in str(info.value)
    snap.assert_unchanged()


def test_extra_and_missing_columns_are_each_listed(fg: cloudsdk.FeatureGroup) -> None:
    snap = _Snapshot(fg)
    bad = _frame([9]).drop(columns=["value"]).assign(colour="red", size=3)
    with pytest.raises(errors.SchemaMismatchError) as info:
        fg.insert(bad, "upsert")
    diffs = info.value.differences
    assert len(diffs) == 3
    assert any("missing" in d and "'value'" in d for d in diffs)
    assert any("unexpected" in d and "'colour'" in d for d in diffs)
    assert any("unexpected" in d and "'size'" in d for d in diffs)
    for d in diffs:
        assert d in str(info.value)
    snap.assert_unchanged()


def test_column_name_case_matters(fg: cloudsdk.FeatureGroup) -> None:
    snap = _Snapshot(fg)
    with pytest.raises(errors.SchemaMismatchError) as info:
        fg.insert(_frame([9]).rename(columns={"label": "Label"}))
    assert any("'label'" in d for d in info.value.differences)
    assert any("'Label'" in d for d in info.value.differences)
    snap.assert_unchanged()


def test_string_into_bigint(fg: cloudsdk.FeatureGroup) -> None:
    snap = _Snapshot(fg)
    bad = _frame([9]).assign(id=["9"])
    with pytest.raises(errors.SchemaMismatchError) as info:
        fg.insert(bad)
    assert len(info.value.differences) == 1
    message = info.value.differences[0]
    assert "'id'" in message and "string" in message and "bigint" in message
    snap.assert_unchanged()


@pytest.mark.parametrize("mode", ["append", "upsert", "overwrite"])
def test_lossy_float_into_bigint_is_refused(fg: cloudsdk.FeatureGroup, mode: str) -> None:
    snap = _Snapshot(fg)
    with pytest.raises(errors.SchemaMismatchError, match="'id'"):
        fg.insert(_frame([9]).assign(id=[9.5]), mode)
    snap.assert_unchanged()


@pytest.mark.parametrize("mode", ["append", "upsert", "overwrite"])
def test_null_primary_key(fg: cloudsdk.FeatureGroup, mode: str) -> None:
    snap = _Snapshot(fg)
    bad = pa.table({"id": pa.array([9, None], pa.int64()), "value": [1.0, 2.0], "label": ["a", "b"]})
    with pytest.raises(errors.DataValidationError, match=r"primary key column 'id' has 1 null"):
        fg.insert(bad, mode)
    snap.assert_unchanged()


def test_null_primary_key_on_create(fs: cloudsdk.FeatureStore) -> None:
    bad = pa.table({"id": pa.array([1, None], pa.int64()), "v": [1.0, 2.0]})
    with pytest.raises(errors.DataValidationError, match="null"):
        fs.create_feature_group("g", data=bad)
    assert fs.get_feature_groups() == []
    assert fs.get_latest_version("g") is None


def test_duplicate_keys_on_upsert(fg: cloudsdk.FeatureGroup) -> None:
    snap = _Snapshot(fg)
    bad = pd.concat([_frame([6, 7]), _frame([7], offset=1.0)])
    with pytest.raises(errors.DataValidationError) as info:
        fg.insert(bad, "upsert")
    assert "1 row(s) repeat a primary key ['id']" in str(info.value)
    assert "drop_duplicates" in str(info.value)
    assert not isinstance(info.value, errors.SchemaMismatchError)
    snap.assert_unchanged()


@pytest.mark.parametrize("mode", ["merge", "APPEND", "", "insert"])
def test_bad_mode(fg: cloudsdk.FeatureGroup, mode: str) -> None:
    snap = _Snapshot(fg)
    with pytest.raises(errors.InvalidArgumentError) as info:
        fg.insert(_frame([9]), mode)
    for valid in ("append", "overwrite", "upsert"):
        assert valid in str(info.value)
    snap.assert_unchanged()


def test_online_insert_into_an_offline_group_is_refused(fg: cloudsdk.FeatureGroup) -> None:
    snap = _Snapshot(fg)
    with pytest.raises(errors.InvalidArgumentError, match="not stored online"):
        fg.insert(_frame([9]), online=True)
    with pytest.raises(errors.InvalidArgumentError, match="write nothing"):
        fg.insert(_frame([9]), offline=False)
    with pytest.raises(errors.InvalidArgumentError, match="enable_online"):
        fg.read(online=True)
    snap.assert_unchanged()


def test_online_calls_on_an_offline_group_say_how_to_enable(fs: cloudsdk.FeatureStore,
                                                             conn: cloudsdk.Connection) -> None:
    with pytest.raises(errors.InvalidArgumentError, match="store nothing"):
        fs.create_feature_group("g", data=_frame([1]), online_enabled=False, offline_enabled=False)
    assert fs.get_feature_groups() == []
    featurestore.connect(path=conn.path)
    fg = fs.create_feature_group("g", data=_frame([1]))
    snap = _Snapshot(fg)
    with pytest.raises(errors.InvalidArgumentError, match="not stored online"):
        featurestore.insert_into_featuregroup(_frame([2]), "g", online=True)
    with pytest.raises(errors.InvalidArgumentError, match="not stored online"):
        featurestore.get_featuregroup("g", online=True)
    snap.assert_unchanged()


@pytest.mark.parametrize(
    "name",
    ["../x", "x/../../y", "x; drop table", "x'; DROP TABLE feature_groups; --", "Upper", "teamFeatures",
     "a" * 64, "select", "from", "1abc", "_x", "", "x-y", "x y", "é"],
)
def test_bad_feature_group_names(fs: cloudsdk.FeatureStore, conn: cloudsdk.Connection, name: str) -> None:
    with pytest.raises(errors.InvalidNameError) as info:
        fs.create_feature_group(name, data=_frame([1]))
    assert repr(name) in str(info.value)
    assert fs.get_feature_groups() == []
    store_dir = Path(str(conn.path))
    assert not any(store_dir.parent.glob("x*")) and not (store_dir.parent / "y").exists()
    featurestore_dir = store_dir / "projects" / "default" / "featurestore"
    assert not featurestore_dir.exists() or list(featurestore_dir.iterdir()) == []


def test_longest_name_is_accepted(fs: cloudsdk.FeatureStore) -> None:
    name = "a" * 63
    assert fs.create_feature_group(name, data=_frame([1])).table_name == name + "_1"


@pytest.mark.parametrize("column", ["bad col", "1st", "a;b", "x" * 64, "é"])
def test_bad_feature_names(fs: cloudsdk.FeatureStore, column: str) -> None:
    with pytest.raises(errors.InvalidNameError):
        fs.create_feature_group("g", data=pd.DataFrame({"id": [1], column: [2]}))
    assert fs.get_feature_groups() == []


def test_feature_names_differing_only_in_case(fs: cloudsdk.FeatureStore) -> None:
    with pytest.raises(errors.SchemaMismatchError, match="case"):
        fs.create_feature_group("g", data=pd.DataFrame({"id": [1], "Score": [1], "score": [2]}))
    assert fs.get_feature_groups() == []


def test_creating_an_existing_version(fs: cloudsdk.FeatureStore, conn: cloudsdk.Connection) -> None:
    fg = fs.create_feature_group("items", 1, data=_frame([1, 2, 3]))
    snap = _Snapshot(fg)
    with pytest.raises(errors.AlreadyExistsError) as info:
        fs.create_feature_group("items", 1, data=_frame([7, 8]))
    assert "'items'" in str(info.value) and "version 1" in str(info.value)
    snap.assert_unchanged()
    featurestore.connect(path=conn.path)
    with pytest.raises(errors.AlreadyExistsError):
        featurestore.create_featuregroup(_frame([9]), "items")  # the functional API defaults to version 1
    snap.assert_unchanged()
    assert [g.version for g in fs.get_feature_groups("items")] == [1]


def test_insert_into_missing_group(fs: cloudsdk.FeatureStore, conn: cloudsdk.Connection) -> None:
    featurestore.connect(path=conn.path)
    with pytest.raises(errors.FeatureGroupNotFoundError, match="'ghost'"):
        featurestore.insert_into_featuregroup(_frame([1]), "ghost")
    fs.create_feature_group("ghost", data=_frame([1]))
    with pytest.raises(errors.FeatureGroupNotFoundError, match="version 2"):
        featurestore.insert_into_featuregroup(_frame([2]), "ghost", featuregroup_version=2)
    with pytest.raises(errors.FeatureGroupNotFoundError):
        fs.get_feature_group("ghost", 2)
    assert fs.get_feature_group("ghost").read()["id"].tolist() == [1]


def test_nanosecond_timestamps_that_would_lose_precision(fs: cloudsdk.FeatureStore) -> None:
    whole = pa.array([1_600_000_000_000_000_000, 1_600_000_000_000_001_000], pa.timestamp("ns"))
    fg = fs.create_feature_group("ts", data=pa.table({"id": [1, 2], "at": whole}))
    snap = _Snapshot(fg)
    lossy = pa.array([1_600_000_000_000_000_001], pa.timestamp("ns"))
    for mode in ("append", "upsert", "overwrite"):
        with pytest.raises(errors.SchemaMismatchError, match="microsecond"):
            fg.insert(pa.table({"id": [3], "at": lossy}), mode)
    snap.assert_unchanged()
    # pandas' default nanosecond resolution with sub-microsecond parts is refused too
    frame = pd.DataFrame({"id": [4], "at": pd.Series([pd.Timestamp("2021-01-01 00:00:00.000000007")])
                          .astype("datetime64[ns]")})
    with pytest.raises(errors.SchemaMismatchError):
        fg.insert(frame)
    snap.assert_unchanged()


def test_nanosecond_timestamps_on_create_leave_nothing(fs: cloudsdk.FeatureStore) -> None:
    lossy = pa.array([1_600_000_000_000_000_001], pa.timestamp("ns"))
    with pytest.raises(errors.SchemaMismatchError, match="microsecond"):
        fs.create_feature_group("ts", data=pa.table({"id": [1], "at": lossy}))
    assert fs.get_latest_version("ts") is None
    # the name is free again: the failed create left no half-made group behind
    ok = fs.create_feature_group("ts", data=pa.table({"id": [1], "at": pa.array([1000], pa.timestamp("ns"))}))
    assert ok.version == 1


def test_uint64_beyond_int64_is_refused(fs: cloudsdk.FeatureStore) -> None:
    fg = fs.create_feature_group("u", data=pa.table({"id": [1], "n": pa.array([2**63 - 1], pa.uint64())}))
    snap = _Snapshot(fg)
    with pytest.raises(errors.SchemaMismatchError, match=r"2\*\*63-1"):
        fg.insert(pa.table({"id": [2], "n": pa.array([2**63], pa.uint64())}))
    snap.assert_unchanged()


def test_tz_aware_into_naive_timestamp_is_refused(fs: cloudsdk.FeatureStore) -> None:
    naive = pa.array([dt.datetime(2020, 1, 1)], pa.timestamp("us"))
    fg = fs.create_feature_group("ts", data=pa.table({"id": [1], "at": naive}))
    snap = _Snapshot(fg)
    aware = pa.array([dt.datetime(2020, 1, 2, tzinfo=dt.UTC)], pa.timestamp("us", tz="UTC"))
    with pytest.raises(errors.SchemaMismatchError, match="'at'"):
        fg.insert(pa.table({"id": [2], "at": aware}))
    snap.assert_unchanged()


@pytest.mark.parametrize(
    "data",
    [np.zeros((2, 3)), "not a frame", 42, [1, 2, 3]],
    ids=["2d-array", "string", "int", "list-of-ints"],
)
def test_data_that_is_not_a_dataframe(fg: cloudsdk.FeatureGroup, data: Any) -> None:
    snap = _Snapshot(fg)
    with pytest.raises(errors.InvalidArgumentError):
        fg.insert(data)
    snap.assert_unchanged()


def test_failing_inserts_through_the_functional_api_change_nothing(fs: cloudsdk.FeatureStore,
                                                                    conn: cloudsdk.Connection) -> None:
    fg = fs.create_feature_group("items", data=_frame([1, 2]))
    snap = _Snapshot(fg)
    featurestore.connect(path=conn.path)
    attempts: list[tuple[type[Exception], Callable[[], Any]]] = [
        (errors.SchemaMismatchError, lambda: featurestore.insert_into_featuregroup(_frame([3])[["id"]], "items")),
        (errors.InvalidArgumentError, lambda: featurestore.insert_into_featuregroup(_frame([3]), "items",
                                                                                    mode="replace")),
        (errors.DataValidationError, lambda: featurestore.insert_into_featuregroup(
            pd.concat([_frame([3]), _frame([3])]), "items", mode="upsert")),
    ]
    for error, attempt in attempts:
        with pytest.raises(error):
            attempt()
    snap.assert_unchanged()
