"""The feature registry: search, tags, jobs, training-dataset metadata and provenance, on both
backends (``fs``: embedded and a real server process)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

import cloudsdk
from cloudsdk import featurestore
from cloudsdk.errors import (
    FeatureGroupNotFoundError,
    InvalidArgumentError,
    InvalidNameError,
    NotFoundError,
    SchemaMismatchError,
)
from cloudsdk.store import catalog as C


def _df(n: int = 4, start: int = 0) -> pd.DataFrame:
    return pd.DataFrame({"team_id": list(range(start, start + n)), "value": [float(i) for i in range(n)]})


# --- search ------------------------------------------------------------------------------------


def test_search_ranks_and_groups_versions(fs: cloudsdk.FeatureStore) -> None:
    fs.create_feature_group("attendance", data=_df())
    fs.create_feature_group("attendance", version=2, data=_df(), description="second take")
    fs.create_feature_group("attendance_stats", data=_df())
    fs.create_feature_group("team_attendance", data=_df())
    fs.create_feature_group("teams", data=_df(), description="Average ATTENDANCE per game")
    fs.create_feature_group("budgets", data=_df(), metadata={"topic": "attendance"})
    players = fs.create_feature_group("players", data=_df())
    players.add_tag("source", "attendance-system")
    fs.create_feature_group("unrelated", data=_df(), description="nothing to see")

    groups = fs.search("attendance", kind="featuregroup")
    assert [r["name"] for r in groups] == [
        "attendance", "attendance_stats", "team_attendance", "teams", "budgets", "players"]
    assert [r["match"] for r in groups] == ["exact name", "name prefix", "name", "description", "metadata", "tag"]
    assert all(r["kind"] == "featuregroup" for r in groups)
    top = groups[0]
    assert [v["version"] for v in top["versions"]] == [2, 1]  # same score: newest first
    assert top["versions"][0]["description"] == "second take"
    assert {m["field"] for m in groups[5]["versions"][0]["matches"]} == {"tag.source"}
    assert groups[4]["versions"][0]["matches"][0]["text"] == "topic: attendance"

    # the best version comes first even when it is not the newest
    fs.create_feature_group("scores", data=_df(), description="attendance scores")
    fs.create_feature_group("scores", version=2, data=_df())
    scores = fs.search("attendance scores")
    assert scores[0]["name"] == "scores" and [v["version"] for v in scores[0]["versions"]] == [1]

    # features: a feature's own name ranks it; its group matches through it
    fs.create_feature_group("games", data=pd.DataFrame({"game_id": [1], "attendance_total": [10]}))
    features = fs.search("attendance_total", kind="feature")
    assert [(r["name"], r["featuregroup"], r["match"]) for r in features] == [
        ("attendance_total", "games", "exact name")]
    assert features[0]["type"] == "bigint"
    everything = fs.search("ATTENDANCE_TOTAL")
    assert [(r["kind"], r["name"]) for r in everything] == [("feature", "attendance_total"), ("featuregroup", "games")]
    assert everything[1]["match"] == "feature name"
    assert len(fs.search("attendance", limit=2)) == 2
    assert fs.search("no such words") == []


def test_search_takes_the_query_literally(fs: cloudsdk.FeatureStore) -> None:
    fs.create_feature_group("ab_c", data=_df())
    fs.create_feature_group("abxc", data=_df(), description="100 percent")
    fs.create_feature_group("fresh", data=_df(), description="100% fresh")
    assert [r["name"] for r in fs.search("b_c", kind="featuregroup")] == ["ab_c"]
    assert [r["name"] for r in fs.search("%", kind="featuregroup")] == ["fresh"]
    assert [r["name"] for r in fs.search("100%", kind="featuregroup")] == ["fresh"]
    assert fs.search("a%c") == []
    # features are filtered in the catalog with LIKE: its wildcards and escape are escaped
    fs.create_feature_group("cols", data=pd.DataFrame({"id": [1], "x_y": [1], "xzy": [2], "w": [3]}),
                            features={"w": "share in % of x\\y"})
    assert [r["name"] for r in fs.search("x_y", kind="feature")] == ["x_y"]
    assert [r["name"] for r in fs.search("%", kind="feature")] == ["w"]
    assert [r["name"] for r in fs.search("x\\y", kind="feature")] == ["w"]
    assert fs.search("x%y", kind="feature") == []


def test_search_finds_training_datasets(fs: cloudsdk.FeatureStore) -> None:
    td = fs.create_training_dataset("Attendance_model", _df(), data_format="parquet", description="labels")
    td.add_metadata({"owner": "growth team"})
    other = fs.create_training_dataset("churn", _df().rename(columns={"value": "growth_score"}),
                                       data_format="parquet")
    found = fs.search("attendance", kind="training_dataset")
    assert [(r["name"], r["match"]) for r in found] == [("Attendance_model", "name prefix")]
    growth = fs.search("growth", kind="training_dataset")
    assert [(r["name"], r["match"]) for r in growth] == [("churn", "feature name"), ("Attendance_model", "metadata")]
    assert other.name == "churn"


def test_search_rejects_bad_input(fs: cloudsdk.FeatureStore) -> None:
    with pytest.raises(InvalidArgumentError, match="non-empty"):
        fs.search("  ")
    with pytest.raises(InvalidArgumentError, match="kind"):
        fs.search("x", kind="table")
    with pytest.raises(InvalidArgumentError):
        fs.search("x", limit=0)
    with pytest.raises(InvalidArgumentError, match="longer"):
        fs.search("x" * 201)


def test_search_over_two_thousand_groups_is_fast(conn: cloudsdk.Connection) -> None:
    fs = conn.get_feature_store()
    service = fs._backend
    fs_id = service._fs_id(fs.project)  # type: ignore[attr-defined]
    stamp = C.now()
    with service.catalog.begin() as db:  # type: ignore[attr-defined]
        db.execute(C.feature_groups.insert(), [
            {"fs_id": fs_id, "name": f"group_{i:04d}", "version": 1 + i % 2,
             "description": "stadium attendance" if i % 100 == 0 else f"group number {i}",
             "primary_key": "[]", "partition_by": "[]", "arrow_schema": "", "custom_metadata": "{}",
             "statistics_config": "{}", "location": f"/nowhere/{i}", "created": stamp, "updated": stamp}
            for i in range(2000)])
        ids = [r.id for r in db.execute(sa.select(C.feature_groups.c.id).where(C.feature_groups.c.fs_id == fs_id))]
        db.execute(C.features.insert(), [
            {"fg_id": fg_id, "position": j, "name": f"feature_{j}", "type": "double", "description": ""}
            for fg_id in ids for j in range(10)])
    started = time.perf_counter()
    found = fs.search("attendance", kind="featuregroup", limit=1000)
    elapsed = time.perf_counter() - started
    assert len(found) == 20 and all(r["match"] == "description" for r in found)
    assert elapsed < 2.0, elapsed
    assert fs.search("group_0001")[0]["name"] == "group_0001"


# --- tags and metadata ---------------------------------------------------------------------------


def test_tags_crud_on_groups_and_datasets(fs: cloudsdk.FeatureStore) -> None:
    fg = fs.create_feature_group("teams", data=_df())
    assert fg.get_tags() == {}
    assert fg.add_tag("pii") == {"pii": None}
    assert fg.add_tag("owner", "growth") == {"owner": "growth", "pii": None}
    assert fg.add_tag("owner", "data.platform") == {"owner": "data.platform", "pii": None}
    assert fs.get_feature_group("teams").get_tags() == {"owner": "data.platform", "pii": None}
    assert fs._backend.describe_group(fs.project, "teams", 1)["tags"] == {"owner": "data.platform", "pii": None}
    assert fg.remove_tag("pii") == {"owner": "data.platform"}
    with pytest.raises(NotFoundError, match="no tag 'pii'"):
        fg.remove_tag("pii")
    for bad in ("PII", "1st", "has space", "", "x" * 64):
        with pytest.raises(InvalidNameError):
            fg.add_tag(bad)
    with pytest.raises(InvalidArgumentError):
        fg.add_tag("big", "v" * 1001)
    # another version has its own tags
    v2 = fs.create_feature_group("teams", version=2, data=_df())
    assert v2.get_tags() == {}

    td = fs.create_training_dataset("td_tags", _df(), data_format="parquet")
    assert td.add_tag("reviewed", True) == {"reviewed": "True"}
    assert fs.get_training_dataset("td_tags").get_tags() == {"reviewed": "True"}
    assert td.remove_tag("reviewed") == {}
    with pytest.raises(InvalidNameError):
        td.add_tag("Bad!")


def test_tags_of_a_missing_group_and_deleted_group(fs: cloudsdk.FeatureStore) -> None:
    with pytest.raises(FeatureGroupNotFoundError):
        fs._backend.get_tags(fs.project, "featuregroup", "nope", None)
    with pytest.raises(InvalidArgumentError, match="kind"):
        fs._backend.get_tags(fs.project, "feature", "nope", None)
    fg = fs.create_feature_group("gone", data=_df())
    fg.add_tag("pii")
    fg.set_jobs(["etl"])
    fs._backend.delete_group(fs.project, "gone", 1)
    again = fs.create_feature_group("gone", version=1, data=_df())
    assert again.get_tags() == {} and again.jobs == []  # the old version's tags went with it


def test_training_dataset_metadata(fs: cloudsdk.FeatureStore) -> None:
    td = fs.create_training_dataset("td_meta", _df(), data_format="parquet")
    assert td.get_metadata() == {}
    assert td.add_metadata({"owner": "ml", "sprint": 7}) == {"owner": "ml", "sprint": "7"}  # type: ignore[dict-item]
    assert td.get_metadata(["owner", "missing"]) == {"owner": "ml"}
    assert fs.get_training_dataset("td_meta")._meta["metadata"] == {"owner": "ml", "sprint": "7"}
    assert td.remove_metadata(["sprint"]) == {"owner": "ml"}
    with pytest.raises(InvalidArgumentError):
        td.add_metadata({"": "x"})
    with pytest.raises(InvalidArgumentError):
        td.add_metadata({"k": ["not", "a", "string"]})  # type: ignore[dict-item]


# --- jobs ----------------------------------------------------------------------------------------


def test_jobs_are_stored_and_shown(fs: cloudsdk.FeatureStore) -> None:
    jobs = ["nightly_etl", {"name": "backfill", "url": "https://airflow.example.com/dags/backfill"}]
    fg = fs.create_feature_group("teams", data=_df(), jobs=jobs)
    expected = [{"name": "nightly_etl", "url": None},
                {"name": "backfill", "url": "https://airflow.example.com/dags/backfill"}]
    assert fg.jobs == expected
    again = fs.get_feature_group("teams")
    assert again.jobs == expected
    assert "jobs=['nightly_etl', 'backfill']" in repr(again)
    assert fs._backend.describe_group(fs.project, "teams", 1)["jobs"] == expected
    assert fg.set_jobs(["rebuild"]) == [{"name": "rebuild", "url": None}]
    assert fs.get_feature_group("teams").jobs == [{"name": "rebuild", "url": None}]
    assert fg.set_jobs([]) == [] and fs.get_feature_group("teams").jobs == []

    for bad in (["a", "a"], [{"name": "x", "url": "ftp://host/x"}], [{"name": ""}], [{"name": "x", "cron": "*"}],
                [3]):
        with pytest.raises(InvalidArgumentError):
            fs.create_feature_group("refused", data=_df(), jobs=bad)
    assert fs.get_latest_version("refused") is None  # checked before anything was written

    td = fs.create_training_dataset("td_jobs", _df(), data_format="parquet",
                                    jobs=[{"name": "train_set", "url": "http://ci/1"}])
    assert td.jobs == [{"name": "train_set", "url": "http://ci/1"}]
    assert fs.get_training_dataset("td_jobs").jobs == td.jobs
    assert "jobs=['train_set']" in repr(td)
    assert td.set_jobs("one_job") == [{"name": "one_job", "url": None}]


def test_functional_api_records_jobs_tags_and_metadata(tmp_path: Path) -> None:
    featurestore.connect(path=tmp_path / "store")
    featurestore.create_featuregroup(_df(), "teams", jobs=["compute_teams"])
    assert featurestore.get_featuregroup_tags("teams") == {}
    assert featurestore.add_featuregroup_tag("teams", "pii", "no") == {"pii": "no"}
    assert featurestore.remove_featuregroup_tag("teams", "pii") == {}
    featurestore.create_training_dataset(_df(), "td_f", data_format="parquet", jobs=["make_td"])
    assert featurestore.add_training_dataset_tag("td_f", "gold") == {"gold": None}
    assert featurestore.get_training_dataset_tags("td_f") == {"gold": None}
    assert featurestore.remove_training_dataset_tag("td_f", "gold") == {}
    featurestore.add_training_dataset_metadata("td_f", {"k": "v"})
    assert featurestore.get_training_dataset_metadata("td_f") == {"k": "v"}
    featurestore.remove_training_dataset_metadata("td_f", ["k"])
    assert featurestore.get_training_dataset_metadata("td_f") == {}
    fs = featurestore._fs()
    assert fs.get_feature_group("teams", 1).jobs == [{"name": "compute_teams", "url": None}]
    assert fs.get_training_dataset("td_f", 1).jobs == [{"name": "make_td", "url": None}]
    assert [r["name"] for r in featurestore.search("team", kind="featuregroup")] == ["teams"]
    assert featurestore.get_featuregroup_training_datasets("teams") == []
    assert featurestore.get_training_dataset_features_used("td_f")["feature_groups"] == []
    diff = featurestore.compare_training_datasets("td_f", "td_f", keys="team_id")
    assert diff["rows"]["both"] == 4 and diff["rows"]["changed"] == 0


# --- provenance ----------------------------------------------------------------------------------


def test_features_used_and_datasets_of_a_group(football_fs: cloudsdk.FeatureStore) -> None:
    fs = football_fs
    teams = fs.get_feature_group("teams_features")
    attendances = fs.get_feature_group("attendances_features")
    query = teams.select(["team_id", "team_budget"]).join(attendances.select(["average_attendance"]))
    td = query.create_training_dataset("td_prov", data_format="parquet")
    used = td.features_used()
    by_group = {g["name"]: g for g in used["feature_groups"]}
    assert set(by_group) == {"teams_features", "attendances_features"}
    assert by_group["teams_features"]["features"] == ["team_id", "team_budget"]
    assert by_group["attendances_features"]["features"] == ["average_attendance"]
    assert by_group["teams_features"]["version"] == 1 and by_group["teams_features"]["commit"] == 0
    assert {f["name"]: f["featuregroup"] for f in used["features"]} == {
        "team_id": "teams_features", "team_budget": "teams_features", "average_attendance": "attendances_features"}

    # a later commit: a second dataset records the newer commit
    teams.insert(teams.read().head(3), mode="upsert")
    td2 = teams.select(["team_id", "team_budget"]).create_training_dataset("td_prov_2", data_format="parquet")
    assert td2.features_used()["feature_groups"][0]["commit"] == 1
    users = teams.training_datasets()
    assert [(u["name"], u["version"], u["commit"]) for u in users] == [("td_prov", 1, 0), ("td_prov_2", 1, 1)]
    assert [u["name"] for u in attendances.training_datasets()] == ["td_prov"]
    assert fs.get_feature_group("players_features").training_datasets() == []

    plain = fs.create_training_dataset("td_plain", teams.read(), data_format="parquet")
    used_plain = plain.features_used()
    assert used_plain["feature_groups"] == [] and all(f["featuregroup"] is None for f in used_plain["features"])


def _frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    a = pd.DataFrame({"id": list(range(10)), "x": [float(i) for i in range(10)], "y": list(range(10)),
                      "gone": ["g"] * 10})
    b = pd.DataFrame({"id": list(range(5, 15)), "x": [float(i) for i in range(5, 15)],
                      "y": [float(i) for i in range(5, 15)], "new": [True] * 10})
    b.loc[b["id"].isin([5, 6]), "x"] = -1.0  # two keys in both change
    return a, b


def test_compare_training_datasets(fs: cloudsdk.FeatureStore) -> None:
    a_df, b_df = _frames()
    a = fs.create_training_dataset("td_a", a_df, data_format="parquet")
    b = fs.create_training_dataset("td_b", b_df, data_format="parquet")

    diff = a.diff(b, keys="id")
    assert diff["a"] == {"name": "td_a", "version": 1, "row_count": 10}
    assert diff["schema"]["added"] == [{"name": "new", "type": "boolean"}]
    assert diff["schema"]["removed"] == [{"name": "gone", "type": "string"}]
    assert diff["schema"]["type_changed"] == [{"name": "y", "a": "bigint", "b": "double"}]
    assert diff["rows"] == {"keys": ["id"], "only_a": 5, "only_b": 5, "both": 5, "changed": 2, "unchanged": 3,
                            "compared": ["x"]}
    stats = diff["statistics"]
    assert stats["row_count"] == {"a": 10, "b": 10, "delta": 0}
    mean_x = stats["features"]["x"]["mean"]
    assert mean_x["a"] == pytest.approx(a_df["x"].mean()) and mean_x["b"] == pytest.approx(b_df["x"].mean())
    assert mean_x["delta"] == pytest.approx(b_df["x"].mean() - a_df["x"].mean())
    assert stats["features"]["x"]["min"]["delta"] == pytest.approx(-1.0)

    # without keys: schema and statistics only; by name through the store (latest versions)
    plain = fs.compare_training_datasets("td_a", "td_b")
    assert plain["rows"] is None and plain["schema"] == diff["schema"]
    same = fs.compare_training_datasets(a, a, keys=["id", "y"])
    assert same["rows"]["both"] == 10 and same["rows"]["changed"] == 0 and same["rows"]["only_a"] == 0

    with pytest.raises(SchemaMismatchError, match="gone"):
        a.diff(b, keys="gone")
    with pytest.raises(SchemaMismatchError, match="y"):
        a.diff(b, keys="y")  # bigint in A, double in B
    dup = fs.create_training_dataset("td_dup", pd.concat([b_df, b_df.head(2)]), data_format="parquet")
    with pytest.raises(InvalidArgumentError, match="repeated key"):
        a.diff(dup, keys="id")
    no_stats = fs.create_training_dataset("td_nostats", b_df, data_format="parquet", statistics=False)
    assert a.diff(no_stats)["statistics"] is None


def test_rest_search_route_answers_json(fs: cloudsdk.FeatureStore) -> None:
    """The REST route (remote) and the service method (local) give the same JSON."""
    fs.create_feature_group("attendance", data=_df())
    result = fs._backend.search(fs.project, "attendance", None, 10)
    assert json.loads(json.dumps(result)) == result
    assert result[0]["name"] == "attendance"
