"""Feature groups of the object API (and the metadata functions of the functional API):
creation from every dataframe kind, versions, listing, deletion, descriptions, display,
custom metadata, statistics and commit details."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import cloudsdk
from cloudsdk import errors, featurestore

# ---------------------------------------------------------------- helpers


def _rows() -> dict[str, list[Any]]:
    return {
        "id": [1, 2, 3, 4],
        "score": [0.5, None, 2.25, -1.0],
        "team": ["a", "b", None, "d"],
    }


def _source(kind: str) -> Any:
    """The same four rows as a pandas / pyarrow / polars frame or a dict of columns."""
    cols = _rows()
    if kind == "pandas":
        return pd.DataFrame(cols)
    if kind == "pyarrow":
        return pa.table(cols)
    if kind == "polars":
        import polars as pl

        return pl.DataFrame(cols)
    assert kind == "dict"
    return cols


def _sorted_rows(fg: cloudsdk.FeatureGroup, key: str = "id") -> list[dict[str, Any]]:
    table = fg.read("pyarrow")
    return sorted(table.to_pylist(), key=lambda r: r[key])


def _stats_frame(n: int = 2000, seed: int = 7) -> pd.DataFrame:
    """Rows with ints, floats with NaNs, strings with Nones, booleans and timestamps."""
    rng = np.random.default_rng(seed)
    x = rng.normal(10.0, 3.0, n)
    x[rng.random(n) < 0.1] = np.nan
    words = np.array([f"w{i:03d}" for i in range(300)], dtype=object)
    s = words[rng.integers(0, 300, n)]
    s[rng.random(n) < 0.05] = None
    return pd.DataFrame({
        "id": np.arange(n, dtype=np.int64),
        "k": rng.integers(0, 500, n).astype(np.int64),
        "x": x,
        "s": pd.Series(s, dtype="str"),
        "flag": rng.random(n) < 0.3,
        "ts": pd.Timestamp("2020-01-01") + pd.to_timedelta(rng.integers(0, 10**6, n), unit="s"),
    })


def _check_stats_against_pandas(stats: cloudsdk.Statistics, df: pd.DataFrame) -> None:
    assert stats.row_count == len(df)
    for col in df.columns:
        entry = stats[col]
        series = df[col]
        assert entry["count"] == int(series.count()), col
        assert entry["nulls"] == int(series.isna().sum()), col
        distinct = series.nunique(dropna=True)
        assert abs(entry["approx_distinct"] - distinct) <= 0.05 * distinct, (col, entry, distinct)
    for col in ("id", "k", "x"):
        entry, series = stats[col], df[col]
        assert entry["mean"] == pytest.approx(float(series.mean()), rel=1e-9), col
        assert entry["stddev"] == pytest.approx(float(series.std(ddof=1)), rel=1e-9), col
        assert entry["min"] == pytest.approx(series.min()), col
        assert entry["max"] == pytest.approx(series.max()), col
    assert stats["flag"]["mean"] == pytest.approx(float(df["flag"].mean()), rel=1e-9)
    assert stats["s"]["min"] == df["s"].dropna().min()
    assert stats["s"]["max"] == df["s"].dropna().max()
    assert stats["ts"]["min"] == df["ts"].min().isoformat()
    assert stats["ts"]["max"] == df["ts"].max().isoformat()


# ---------------------------------------------------------------- creating


@pytest.mark.parametrize("kind", ["pandas", "pyarrow", "polars", "dict"])
def test_create_from_each_dataframe_kind(fs: cloudsdk.FeatureStore, kind: str) -> None:
    fg = fs.create_feature_group("scores", data=_source(kind), primary_key=["id"])
    assert fg.saved
    assert fg.version == 1
    assert [f.name for f in fg.features] == ["id", "score", "team"]
    assert [f.type for f in fg.features] == ["bigint", "double", "string"]
    assert [f.primary for f in fg.features] == [True, False, False]
    expected = sorted(pa.table(_rows()).to_pylist(), key=lambda r: r["id"])
    assert _sorted_rows(fg) == expected
    again = fs.get_feature_group("scores", 1)
    assert _sorted_rows(again) == expected


def test_create_without_data_then_save(fs: cloudsdk.FeatureStore) -> None:
    fg = fs.create_feature_group("later", primary_key=["id"], description="saved later")
    assert not fg.saved
    assert "not saved" in repr(fg)
    assert fs.get_latest_version("later") is None
    fg.save(pd.DataFrame(_rows()))
    assert fg.saved and fg.version == 1
    assert fs.get_feature_group("later").description == "saved later"
    with pytest.raises(errors.InvalidArgumentError, match="already saved"):
        fg.save(pd.DataFrame(_rows()))


def test_primary_key_defaults_to_first_column(fs: cloudsdk.FeatureStore) -> None:
    fg = fs.create_feature_group("nokey", data=pd.DataFrame({"team": ["a", "b"], "v": [1, 2]}))
    assert fg.primary_key == ["team"]
    assert [f.name for f in fg.features if f.primary] == ["team"]


def test_primary_key_must_be_a_column(fs: cloudsdk.FeatureStore) -> None:
    with pytest.raises(errors.SchemaMismatchError, match="nope"):
        fs.create_feature_group("badkey", data=pd.DataFrame(_rows()), primary_key=["nope"])
    assert fs.get_latest_version("badkey") is None


def test_float_primary_key_is_refused(fs: cloudsdk.FeatureStore) -> None:
    with pytest.raises(errors.SchemaMismatchError, match="score"):
        fs.create_feature_group("floatkey", data=pd.DataFrame(_rows()), primary_key=["score"])
    assert fs.get_feature_groups() == []


# ---------------------------------------------------------------- versions


def test_explicit_versions_and_default_is_latest_plus_one(fs: cloudsdk.FeatureStore) -> None:
    df = pd.DataFrame(_rows())
    v3 = fs.create_feature_group("scores", 3, data=df)
    assert v3.version == 3
    assert fs.get_latest_version("scores") == 3
    v4 = fs.create_feature_group("scores", data=df.head(2))
    assert v4.version == 4
    v2 = fs.create_feature_group("scores", 2, data=df.head(1))
    assert v2.version == 2
    # the latest stays the highest version, not the last created
    assert fs.get_latest_version("scores") == 4
    assert sorted(fg.version for fg in fs.get_feature_groups("scores")) == [2, 3, 4]
    assert fs.get_feature_group("scores", 2).read().shape == (1, 3)


def test_get_latest_version_returns_newest_data(fs: cloudsdk.FeatureStore) -> None:
    fs.create_feature_group("g", data=pd.DataFrame({"id": [1], "v": [10]}))
    fs.create_feature_group("g", data=pd.DataFrame({"id": [1, 2], "v": [20, 30]}))
    latest = fs.get_feature_group("g")
    assert latest.version == 2
    assert latest.read()["v"].tolist() == [20, 30]
    assert fs.get_feature_group("g", 1).read()["v"].tolist() == [10]


@pytest.mark.parametrize("version", [0, -1, True, "1"])
def test_invalid_versions_are_refused(fs: cloudsdk.FeatureStore, version: Any) -> None:
    with pytest.raises(errors.InvalidNameError, match="version"):
        fs.create_feature_group("g", version, data=pd.DataFrame(_rows()))
    assert fs.get_feature_groups() == []


def test_get_missing_group_and_version(fs: cloudsdk.FeatureStore) -> None:
    with pytest.raises(errors.FeatureGroupNotFoundError, match="nope"):
        fs.get_feature_group("nope")
    fs.create_feature_group("g", data=pd.DataFrame(_rows()))
    with pytest.raises(errors.FeatureGroupNotFoundError, match="version 7"):
        fs.get_feature_group("g", 7)


def test_get_or_create(fs: cloudsdk.FeatureStore) -> None:
    df = pd.DataFrame(_rows())
    created = fs.get_or_create_feature_group("g", 1, data=df)
    assert created.saved
    found = fs.get_or_create_feature_group("g", 1, data=df.head(1))
    assert found.read().shape == (4, 3)  # the existing group, not a new one


# ---------------------------------------------------------------- listing and deleting


def test_list_feature_groups(fs: cloudsdk.FeatureStore) -> None:
    df = pd.DataFrame(_rows())
    assert fs.get_feature_groups() == []
    fs.create_feature_group("b_group", data=df)
    fs.create_feature_group("a_group", data=df)
    fs.create_feature_group("a_group", data=df)
    listed = [(fg.name, fg.version) for fg in fs.get_feature_groups()]
    assert sorted(listed) == [("a_group", 1), ("a_group", 2), ("b_group", 1)]
    assert [(fg.name, fg.version) for fg in fs.get_feature_groups("a_group")] == [("a_group", 1), ("a_group", 2)]
    assert fs.get_feature_groups("c_group") == []
    assert {fg.table_name for fg in fs.get_feature_groups()} == {"a_group_1", "a_group_2", "b_group_1"}


def test_delete_removes_version_data_and_statistics(fs: cloudsdk.FeatureStore) -> None:
    df = pd.DataFrame(_rows())
    v1 = fs.create_feature_group("g", data=df)
    v2 = fs.create_feature_group("g", data=df.head(2))
    location = Path(v2.location)
    assert location.is_dir()
    assert v2.statistics() is not None
    v2.delete()
    assert not v2.saved
    assert not location.exists()
    with pytest.raises(errors.FeatureGroupNotFoundError):
        fs.get_feature_group("g", 2)
    assert fs.get_latest_version("g") == 1
    assert v1.read().shape == (4, 3)
    # a new version 2 starts clean: no data or statistics of the deleted one
    again = fs.create_feature_group("g", data=df.head(3), statistics=False)
    assert again.version == 2
    assert again.read().shape == (3, 3)
    assert again.statistics() is None


def test_deleted_group_cannot_be_written_through_a_stale_handle(fs: cloudsdk.FeatureStore) -> None:
    fs.create_feature_group("g", data=pd.DataFrame(_rows()))
    stale = fs.get_feature_group("g", 1)
    fs.get_feature_group("g", 1).delete()
    with pytest.raises(errors.FeatureGroupNotFoundError):
        stale.insert(pd.DataFrame(_rows()))
    with pytest.raises(errors.FeatureGroupNotFoundError):
        stale.read()
    assert fs.get_feature_groups() == []


def test_deleted_handle_fails_with_a_typed_error(fs: cloudsdk.FeatureStore) -> None:
    fg = fs.create_feature_group("g", data=pd.DataFrame(_rows()))
    fg.delete()
    assert "'g'" in repr(fg)
    with pytest.raises(errors.CloudSDKError):
        fg.read()
    with pytest.raises(errors.CloudSDKError):
        fg.insert(pd.DataFrame(_rows()))


# ---------------------------------------------------------------- descriptions and display


def test_descriptions(fs: cloudsdk.FeatureStore) -> None:
    fg = fs.create_feature_group(
        "g", data=pd.DataFrame(_rows()), description="team scores",
        features={"score": "goals per match"},
    )
    assert fg.description == "team scores"
    assert fg.get_feature("score").description == "goals per match"
    assert fg.get_feature("team").description == ""
    fg.update_description("new text")
    fg.update_feature_description("team", "the team's code")
    again = fs.get_feature_group("g")
    assert again.description == "new text"
    assert {f.name: f.description for f in again.features} == {
        "id": "", "score": "goals per match", "team": "the team's code"}
    with pytest.raises(errors.SchemaMismatchError, match="nope"):
        fg.update_feature_description("nope", "x")


def test_description_of_unknown_feature_is_refused(fs: cloudsdk.FeatureStore) -> None:
    with pytest.raises(errors.SchemaMismatchError, match="nope"):
        fs.create_feature_group("g", data=pd.DataFrame(_rows()), features={"nope": "x"})
    assert fs.get_feature_groups() == []


def test_features_as_attributes_and_items(fs: cloudsdk.FeatureStore) -> None:
    fg = fs.create_feature_group("g", data=pd.DataFrame(_rows()))
    assert fg.score.name == "score" and fg.score.type == "double"
    assert fg["team"].featuregroup == "g" and fg["team"].version == 1
    with pytest.raises(AttributeError, match="nope"):
        _ = fg.nope
    with pytest.raises(errors.FeatureNotFoundError, match="nope"):
        fg.get_feature("nope")


def test_repr_and_html_show_the_schema(fs: cloudsdk.FeatureStore) -> None:
    fg = fs.create_feature_group(
        "scores", data=pd.DataFrame(_rows()), primary_key=["id"], description="<b>bold</b> & co",
        features={"team": "team <code>"},
    )
    text = repr(fg)
    assert "scores" in text and "version=1" in text
    for name, ftype in (("id", "bigint"), ("score", "double"), ("team", "string")):
        assert name in text and ftype in text
    assert "id*" in text and "score*" not in text
    page = fg._repr_html_()
    for name, ftype in (("id", "bigint"), ("score", "double"), ("team", "string")):
        assert f"<td>{name}</td><td>{ftype}</td>" in page
    assert "scores_1" in page
    assert "primary key" in page
    # user text is escaped, never injected as markup
    assert "<b>bold</b>" not in page and "&lt;b&gt;bold&lt;/b&gt; &amp; co" in page
    assert "team &lt;code&gt;" in page


def test_schema_property_is_the_written_arrow_schema(fs: cloudsdk.FeatureStore) -> None:
    table = pa.table({"id": pa.array([1, 2], pa.int32()), "v": pa.array([1.0, 2.0], pa.float32())})
    fg = fs.create_feature_group("g", data=table)
    assert fg.schema.equals(table.schema)
    assert [f.type for f in fg.features] == ["int", "float"]


# ---------------------------------------------------------------- custom metadata


def test_metadata_object_api(fs: cloudsdk.FeatureStore) -> None:
    fg = fs.create_feature_group("g", data=pd.DataFrame(_rows()), metadata={"owner": "ana"})
    assert fg.get_metadata() == {"owner": "ana"}
    assert fg.add_metadata({"source": "crm", "rows": 4}) == {"owner": "ana", "source": "crm", "rows": "4"}
    assert fg.add_metadata({"owner": "bob"})["owner"] == "bob"
    assert fg.get_metadata(["owner", "missing"]) == {"owner": "bob"}
    assert fg.get_metadata("source") == {"source": "crm"}  # type: ignore[arg-type]
    assert fg.remove_metadata(["source", "never_there"]) == {"owner": "bob", "rows": "4"}
    # persisted in the catalog, seen by a new handle and a new connection
    assert fs.get_feature_group("g").get_metadata() == {"owner": "bob", "rows": "4"}
    with cloudsdk.connect(path=Path(fg.location).parents[3], project=fs.project) as other:
        assert other.get_feature_store().get_feature_group("g").get_metadata() == {"owner": "bob", "rows": "4"}


def test_metadata_is_per_version(fs: cloudsdk.FeatureStore) -> None:
    df = pd.DataFrame(_rows())
    v1 = fs.create_feature_group("g", data=df)
    v2 = fs.create_feature_group("g", data=df)
    v1.add_metadata({"k": "one"})
    v2.add_metadata({"k": "two"})
    assert fs.get_feature_group("g", 1).get_metadata() == {"k": "one"}
    assert fs.get_feature_group("g", 2).get_metadata() == {"k": "two"}


@pytest.mark.parametrize("bad", [{"": "x"}, {1: "x"}, {"k": ["a", "list"]}, [("k", "v")]])
def test_bad_metadata_is_refused(fs: cloudsdk.FeatureStore, bad: Any) -> None:
    fg = fs.create_feature_group("g", data=pd.DataFrame(_rows()), metadata={"keep": "me"})
    with pytest.raises(errors.InvalidArgumentError):
        fg.add_metadata(bad)
    assert fg.get_metadata() == {"keep": "me"}


def test_metadata_functional_api(conn: cloudsdk.Connection) -> None:
    featurestore.connect(path=conn.path)
    featurestore.create_featuregroup(pd.DataFrame(_rows()), "g", metadata={"a": "1"})
    featurestore.add_metadata("g", {"b": "2", "c": "3"})
    assert featurestore.get_metadata("g") == {"a": "1", "b": "2", "c": "3"}
    assert featurestore.get_metadata("g", ["b"]) == {"b": "2"}
    featurestore.remove_metadata("g", ["a", "c"])
    assert featurestore.get_metadata("g") == {"b": "2"}
    # the object API sees what the functional API wrote
    assert conn.get_feature_store().get_feature_group("g").get_metadata() == {"b": "2"}
    with pytest.raises(errors.FeatureGroupNotFoundError):
        featurestore.add_metadata("g", {"x": "y"}, featuregroup_version=2)


# ---------------------------------------------------------------- statistics


def test_statistics_after_create_and_insert_match_pandas(fs: cloudsdk.FeatureStore) -> None:
    df = _stats_frame()
    first, rest = df.iloc[:1500], df.iloc[1500:]
    fg = fs.create_feature_group("stats", data=first, primary_key=["id"])
    stats0 = fg.statistics()
    assert stats0 is not None and stats0.commit_version == 0
    _check_stats_against_pandas(stats0, first)
    fg.insert(rest)
    stats1 = fg.statistics()
    assert stats1 is not None and stats1.commit_version == 1
    _check_stats_against_pandas(stats1, df)
    # the statistics of the earlier commit are kept
    old = fg.statistics(commit_version=0)
    assert old is not None and old.row_count == 1500
    frame = stats1.to_pandas()
    assert set(frame.index) == set(df.columns)
    assert frame.loc["x", "type"] == "double" and frame.loc["s", "type"] == "string"
    assert frame.loc["k", "count"] == 2000


def test_statistics_after_upsert_describe_the_merged_table(fs: cloudsdk.FeatureStore) -> None:
    df = _stats_frame(300)
    fg = fs.create_feature_group("stats", data=df, primary_key=["id"])
    change = _stats_frame(100, seed=99)
    change["id"] = np.arange(250, 350, dtype=np.int64)  # 50 updates, 50 new keys
    fg.insert(change, "upsert")
    merged = pd.concat([df[~df["id"].isin(change["id"])], change], ignore_index=True)
    stats = fg.statistics()
    assert stats is not None
    _check_stats_against_pandas(stats, merged)


def test_statistics_of_chosen_columns(fs: cloudsdk.FeatureStore) -> None:
    df = _stats_frame(200)
    fg = fs.create_feature_group("stats", data=df, statistics=["x", "s"])
    stats = fg.statistics()
    assert stats is not None
    assert set(stats.features) == {"x", "s"}
    assert stats["x"]["mean"] == pytest.approx(df["x"].mean())
    with pytest.raises(errors.SchemaMismatchError, match="nope"):
        fg.compute_statistics(["nope"])


def test_statistics_switched_off(fs: cloudsdk.FeatureStore) -> None:
    df = _stats_frame(200)
    fg = fs.create_feature_group("stats", data=df.iloc[:100], statistics=False)
    assert fg.statistics() is None
    fg.insert(df.iloc[100:])
    assert fg.statistics() is None
    # on demand, and per insert, they can still be computed
    now = fg.compute_statistics()
    assert now.row_count == 200 and now.commit_version == 1
    assert now["x"]["mean"] == pytest.approx(df["x"].mean())
    fg.insert(df.iloc[:10].assign(id=np.arange(1000, 1010)), statistics=True)
    later = fg.statistics()
    assert later is not None and later.row_count == 210 and later.commit_version == 2


def test_statistics_skipped_for_one_insert(fs: cloudsdk.FeatureStore) -> None:
    df = _stats_frame(200)
    fg = fs.create_feature_group("stats", data=df.iloc[:100])
    fg.insert(df.iloc[100:], statistics=False)
    stats = fg.statistics()
    assert stats is not None and stats.commit_version == 0 and stats.row_count == 100


def test_statistics_of_an_empty_group(fs: cloudsdk.FeatureStore) -> None:
    fg = fs.create_feature_group("empty", data=pd.DataFrame({"id": pd.Series([], dtype="int64"),
                                                             "x": pd.Series([], dtype="float64")}))
    stats = fg.statistics()
    assert stats is not None
    assert stats.row_count == 0
    assert stats["x"]["count"] == 0 and stats["x"]["mean"] is None


def test_statistics_with_infinite_and_constant_values(fs: cloudsdk.FeatureStore) -> None:
    fg = fs.create_feature_group("g", data=pd.DataFrame({"id": [1, 2, 3], "c": [5.0, 5.0, 5.0]}))
    stats = fg.statistics()
    assert stats is not None
    assert stats["c"]["stddev"] == 0.0
    assert stats["c"]["approx_distinct"] == 1
    assert all(not (isinstance(v, float) and math.isnan(v)) for v in stats["c"].values())


def test_statistics_of_a_utc_timestamp_column(fs: cloudsdk.FeatureStore) -> None:
    stamps = [dt.datetime(2021, 5, d, 12, 0, tzinfo=dt.UTC) for d in (3, 1, 2)]
    table = pa.table({"id": [1, 2, 3], "at": pa.array(stamps, pa.timestamp("us", tz="UTC"))})
    fg = fs.create_feature_group("tz", data=table)
    stats = fg.compute_statistics()
    assert stats["at"]["count"] == 3
    assert dt.datetime.fromisoformat(stats["at"]["min"]) == min(stamps)
    assert dt.datetime.fromisoformat(stats["at"]["max"]) == max(stamps)


# ---------------------------------------------------------------- commit details


def test_commit_details_after_append_upsert_overwrite(fs: cloudsdk.FeatureStore) -> None:
    base = pd.DataFrame({"id": [1, 2, 3], "v": [1.0, 2.0, 3.0]})
    fg = fs.create_feature_group("g", data=base, statistics=False)
    appended = fg.insert(pd.DataFrame({"id": [4, 5], "v": [4.0, 5.0]}), "append")
    upserted = fg.insert(pd.DataFrame({"id": [1, 2, 9], "v": [10.0, 20.0, 90.0]}), "upsert")
    overwritten = fg.insert(pd.DataFrame({"id": [7], "v": [7.0]}), "overwrite")
    assert [r["version"] for r in (appended, upserted, overwritten)] == [1, 2, 3]
    assert (upserted["rows_inserted"], upserted["rows_updated"]) == (1, 2)
    assert (overwritten["rows_inserted"], overwritten["rows_deleted"]) == (1, 6)

    commits = fg.commit_details()
    assert [c["version"] for c in commits] == [3, 2, 1, 0]
    by_version = {c["version"]: c for c in commits}
    assert by_version[0]["rows_inserted"] == 3
    assert by_version[1]["operation"] == "WRITE" and by_version[1]["rows_inserted"] == 2
    assert by_version[2]["operation"] == "MERGE"
    assert (by_version[2]["rows_inserted"], by_version[2]["rows_updated"]) == (1, 2)
    assert by_version[3]["operation"] == "WRITE" and by_version[3]["rows_inserted"] == 1
    stamps = [c["timestamp"] for c in reversed(commits)]
    assert stamps == sorted(stamps)
    assert [c["version"] for c in fg.commit_details(limit=2)] == [3, 2]


def test_commit_details_of_overwrite_count_deleted_rows(fs: cloudsdk.FeatureStore) -> None:
    fg = fs.create_feature_group("g", data=pd.DataFrame({"id": [1, 2, 3]}), statistics=False)
    result = fg.insert(pd.DataFrame({"id": [7]}), "overwrite")
    assert result["rows_deleted"] == 3
    assert fg.commit_details(limit=1)[0]["rows_deleted"] == 3


def test_commit_details_functional_insert_result(conn: cloudsdk.Connection) -> None:
    featurestore.connect(path=conn.path)
    featurestore.create_featuregroup(pd.DataFrame({"id": [1, 2]}), "g")
    result = featurestore.insert_into_featuregroup(pd.DataFrame({"id": [2, 3]}), "g", mode="upsert")
    assert (result["version"], result["rows_inserted"], result["rows_updated"]) == (1, 1, 1)
    assert conn.get_feature_store().get_feature_group("g").commit_details(limit=1)[0]["operation"] == "MERGE"
