"""Point-in-time reads through the API: ``get_features(..., entity_df=, event_time=)`` and
``query.read(entity_df=...)``, embedded and remote (the label rows travel over a Flight
exchange), checked against a brute-force reference."""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pandas as pd
import pytest

import cloudsdk
from cloudsdk import featurestore
from cloudsdk.client.frames import to_arrow
from cloudsdk.errors import InvalidArgumentError, UnsupportedError

T0 = pd.Timestamp("2026-01-01")


def _history(rng: np.random.Generator, n_keys: int, n_rows: int, feature: str) -> pd.DataFrame:
    return pd.DataFrame({
        "team_id": rng.integers(0, n_keys, n_rows).astype(np.int64),
        "ts": T0 + pd.to_timedelta(rng.integers(0, 30 * 24, n_rows), unit="h"),
        feature: rng.normal(size=n_rows),
    })


def _reference(labels: pd.DataFrame, history: pd.DataFrame, feature: str,
               ttl: dt.timedelta | None = None) -> list[float | None]:
    """For each label: the value of the latest history row of its key at or before its time;
    among equal times the row inserted later wins."""
    out: list[float | None] = []
    hist = history.reset_index(drop=True)
    for _, label in labels.iterrows():
        rows = hist[(hist["team_id"] == label["team_id"]) & (hist["ts"] <= label["ts"])]
        if ttl is not None:
            rows = rows[rows["ts"] >= label["ts"] - ttl]
        if rows.empty:
            out.append(None)
            continue
        best = rows[rows["ts"] == rows["ts"].max()]
        out.append(float(best.iloc[-1][feature]))
    return out


def _same(got: pd.Series, expected: list[float | None]) -> None:
    assert len(got) == len(expected)
    for g, e in zip(got.tolist(), expected, strict=True):
        if e is None:
            assert g is None or (isinstance(g, float) and np.isnan(g))
        else:
            assert g == pytest.approx(e)


@pytest.fixture
def groups(fs: cloudsdk.FeatureStore) -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(11)
    budget = _history(rng, 8, 120, "budget")
    rating = _history(rng, 8, 90, "rating")
    fs.create_feature_group("budgets", data=budget.iloc[:60], primary_key=["team_id"], event_time="ts")
    fs.get_feature_group("budgets").insert(budget.iloc[60:])  # a second commit: late rows too
    fs.create_feature_group("ratings", data=rating, primary_key=["team_id"], event_time="ts")
    return {"budget": budget, "rating": rating}


def _labels(rng: np.random.Generator, n: int) -> pd.DataFrame:
    labels = pd.DataFrame({
        "team_id": rng.integers(0, 10, n).astype(np.int64),  # keys 8 and 9 have no history
        "ts": T0 + pd.to_timedelta(rng.integers(-24, 31 * 24, n), unit="h"),
        "label": rng.integers(0, 2, n).astype(np.int64),
    })
    return pd.concat([labels, labels.iloc[:5]], ignore_index=True)  # duplicate label rows too


def test_get_features_is_point_in_time_correct(fs: cloudsdk.FeatureStore, groups: dict[str, pd.DataFrame]) -> None:
    labels = _labels(np.random.default_rng(3), 200)
    got = fs.get_features(["budget", "rating"], entity_df=labels, event_time="ts")
    assert list(got.columns) == ["team_id", "ts", "label", "budget", "rating"]
    pd.testing.assert_frame_equal(got[["team_id", "ts", "label"]], labels, check_dtype=False)
    _same(got["budget"], _reference(labels, groups["budget"], "budget"))
    _same(got["rating"], _reference(labels, groups["rating"], "rating"))


def test_query_read_with_entity_df_and_ttl(fs: cloudsdk.FeatureStore, groups: dict[str, pd.DataFrame]) -> None:
    labels = _labels(np.random.default_rng(4), 120)
    query = fs.get_feature_group("budgets").select(["team_id", "budget"]).join(
        fs.get_feature_group("ratings").select(["rating"]))
    ttl = dt.timedelta(days=2)
    got = query.read(entity_df=labels, event_time="ts", ttl={"budgets": ttl})
    _same(got["budget"], _reference(labels, groups["budget"], "budget", ttl))
    _same(got["rating"], _reference(labels, groups["rating"], "rating"))
    everything = query.read(entity_df=labels, event_time="ts", ttl=0)
    exact = [(lab.team_id, lab.ts) for lab in labels.itertuples()]
    hist = groups["budget"]
    for value, (key, ts) in zip(everything["budget"].tolist(), exact, strict=True):
        if value is not None and not np.isnan(value):
            assert ((hist["team_id"] == key) & (hist["ts"] == ts)).any()


def test_functional_get_features_with_entity_df() -> None:
    budget = _history(np.random.default_rng(12), 6, 80, "budget")
    featurestore.create_featuregroup(budget, "budgets", primary_key=["team_id"], event_time="ts")
    labels = _labels(np.random.default_rng(5), 30)
    got = featurestore.get_features(["budget"], entity_df=labels, event_time="ts")
    _same(got["budget"], _reference(labels, budget, "budget"))


def test_point_in_time_bad_input(fs: cloudsdk.FeatureStore, groups: dict[str, pd.DataFrame]) -> None:
    labels = _labels(np.random.default_rng(6), 10)
    with pytest.raises(InvalidArgumentError, match="event-time column 'when'"):
        fs.get_features(["budget"], entity_df=labels, event_time="when")
    with pytest.raises(InvalidArgumentError, match="team_id"):
        fs.get_features(["budget"], entity_df=labels.drop(columns=["team_id"]), event_time="ts")
    with pytest.raises(InvalidArgumentError, match="both entity_df"):
        fs.get_features(["budget"], event_time="ts")
    fs.create_feature_group("static", data=pd.DataFrame({"team_id": [1, 2], "size": [3.0, 4.0]}),
                            primary_key=["team_id"])
    with pytest.raises(InvalidArgumentError, match="no event_time"):
        fs.get_features(["size"], entity_df=labels, event_time="ts")
    query = fs.get_feature_group("budgets").select(["team_id", "budget"])
    with pytest.raises(UnsupportedError, match="filter"):
        query.filter(query_feature(fs) > 0).read(entity_df=labels, event_time="ts")
    wrong = labels.assign(ts=labels["ts"].astype(str))
    with pytest.raises(InvalidArgumentError):
        fs.get_features(["budget"], entity_df=wrong, event_time="ts")


def query_feature(fs: cloudsdk.FeatureStore) -> Any:
    return fs.get_feature_group("budgets")["budget"]


def test_point_in_time_training_dataset_records_and_recreates(fs: cloudsdk.FeatureStore,
                                                              groups: dict[str, pd.DataFrame]) -> None:
    labels = _labels(np.random.default_rng(8), 80)
    query = fs.get_feature_group("budgets").select(["team_id", "budget"])
    td = fs.create_training_dataset("td_pit", query, data_format="parquet", entity_df=labels, event_time="ts")
    got = td.read()
    _same(got["budget"], _reference(labels, groups["budget"], "budget"))
    pit = td.provenance["point_in_time"]
    assert pit["event_time"] == "ts" and pit["entity_rows"] == len(labels) and len(pit["entity_sha256"]) == 64
    pinned = td.provenance["query"]
    assert pinned["fg"]["commit"] == td.provenance["feature_groups"][0]["commit"]
    # later commits do not change a re-creation from the recorded (pinned) query
    fs.get_feature_group("budgets").insert(_history(np.random.default_rng(9), 8, 50, "budget"))
    again = fs.get_features_query(["budget"])  # a fresh query sees the new rows...
    assert again["fg"].get("commit") is None
    recreated = fs._backend.run_query_pit(fs.project, pinned, to_arrow(labels), "ts")
    pd.testing.assert_frame_equal(recreated.to_pandas(), got)
    with pytest.raises(InvalidArgumentError, match="with a Query"):
        fs.create_training_dataset("td_bad", labels, entity_df=labels, event_time="ts")
