"""Data validation: rules per feature group, checked before each insert, dry runs, the
validation job, stored reports, bad rules. Runs on both backends (the ``fs`` fixture)."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest

import cloudsdk
from cloudsdk import featurestore
from cloudsdk.errors import (
    AlreadyExistsError,
    CommitNotFoundError,
    DataValidationError,
    InvalidArgumentError,
    InvalidNameError,
    NotFoundError,
    SchemaMismatchError,
    ValidationFailedError,
)


def _players(ids: list[int], **overrides: Any) -> pd.DataFrame:
    n = len(ids)
    base = {
        "player_id": ids,
        "age": [20.0 + (i % 10) for i in ids],
        "rating": [float(100 + 10 * i) for i in ids],
        "team": [["ajax", "psv"][i % 2] for i in ids],
        "email": [f"p{i}@club.nl" for i in ids],
        "active": [True] * n,
    }
    base.update(overrides)
    return pd.DataFrame(base)


@pytest.fixture
def fg(fs: cloudsdk.FeatureStore) -> Any:
    return fs.create_feature_group("players", data=_players([1, 2, 3, 4]), primary_key=["player_id"])


def _check(report: Any, rule: str, feature: str | None = None) -> dict[str, Any]:
    found = [r for r in report.results if r["rule"] == rule and r["feature"] == feature]
    assert len(found) == 1, report.results
    return found[0]


# --- each rule type: a passing frame and a violating one ----------------------------------------

RULE_CASES: list[tuple[dict[str, Any], str | None, dict[str, Any], dict[str, Any] | None, float]] = [
    # (rule kwargs, feature, passing overrides, violating overrides, violating value)
    (dict(rule_type="completeness", features=["age"]), "age", {}, {"age": [20.0, None, 22.0, 23.0]}, 0.75),
    (dict(rule_type="uniqueness", features=["email"]), "email", {},
     {"email": ["a@x.nl", "a@x.nl", "b@x.nl", "c@x.nl"]}, 0.5),
    (dict(rule_type="distinctness", features=["team"], min=0.5), "team", {},
     {"team": ["ajax"] * 4}, 0.25),
    (dict(rule_type="min", features=["age"], min=18), "age", {}, {"age": [17.0, 20.0, 21.0, 22.0]}, 17.0),
    (dict(rule_type="max", features=["age"], max=40), "age", {}, {"age": [20.0, 20.0, 21.0, 45.0]}, 45.0),
    (dict(rule_type="mean", features=["rating"], min=100, max=700), "rating", {},
     {"rating": [71738.0, 100.0, 100.0, 100.0]}, (71738.0 + 300.0) / 4),
    (dict(rule_type="sum", features=["rating"], max=1000), "rating", {},
     {"rating": [500.0, 500.0, 1.0, 0.0]}, 1001.0),
    (dict(rule_type="stddev", features=["age"], max=5), "age", {}, {"age": [0.0, 0.0, 30.0, 30.0]}, 15.0),
    (dict(rule_type="size", min=2, max=10), None, {}, None, 1.0),
    (dict(rule_type="pattern", features=["email"], pattern=r"[a-z0-9]+@[a-z]+\.nl"), "email", {},
     {"email": ["p1@club.nl", "p2@club.nl", "not an email", "p4@club.de"]}, 0.5),
    (dict(rule_type="allowed_values", features=["team"], allowed_values=["ajax", "psv"], min=0.9), "team", {},
     {"team": ["ajax", "psv", "feyenoord", "psv"]}, 0.75),
]


def test_each_rule_type_passes_good_rows_and_catches_bad_ones(fg: Any) -> None:
    for kwargs, feature, good, bad, bad_value in RULE_CASES:  # one group for all: fast on both backends
        fg.add_validation_rule("r", **kwargs)
        ok = fg.validate(_players([10, 11, 12, 13], **good))
        assert ok.status == "passed" and ok.passed and _check(ok, "r", feature)["passed"], kwargs
        bad_frame = _players([10]) if bad is None else _players([10, 11, 12, 13], **bad)
        report = fg.validate(bad_frame)
        check = _check(report, "r", feature)
        assert report.status == "failed" and not report.passed and report.trigger == "dry_run", kwargs
        assert not check["passed"] and check["value"] == pytest.approx(bad_value), kwargs
        assert check["level"] == "error" and check["rule_type"] == kwargs["rule_type"]
        fg.remove_validation_rule("r")


def test_rules_are_stored_listed_and_removed(fg: Any) -> None:
    stored = fg.add_validation_rule("age_complete", "completeness", "age", hint="age is needed")
    assert stored["min"] == 1.0 and stored["features"] == ["age"] and stored["level"] == "error"
    fg.add_validation_rule("rating_mean", "mean", ["rating"], min=100, max=700, level="warning")
    assert [r["name"] for r in fg.get_validation_rules()] == ["age_complete", "rating_mean"]
    left = fg.remove_validation_rule("age_complete")
    assert [r["name"] for r in left] == ["rating_mean"]
    with pytest.raises(NotFoundError, match="no validation rule 'age_complete'"):
        fg.remove_validation_rule("age_complete")
    with pytest.raises(AlreadyExistsError, match="already has a validation rule"):
        fg.add_validation_rule("rating_mean", "max", ["rating"], max=1)


# --- inserts --------------------------------------------------------------------------------------


def test_an_error_level_failure_rejects_the_insert_and_writes_nothing(fg: Any) -> None:
    fg.add_validation_rule("age_min", "min", ["age"], min=18, hint="players are adults")
    fg.add_validation_rule("team_ok", "allowed_values", ["team"], allowed_values=["ajax", "psv"], level="warning")
    commits, stats, rows = fg.commit_details(), fg.statistics(), fg.read()
    bad = _players([5, 6], age=[12.0, 30.0])
    with pytest.raises(ValidationFailedError) as caught:
        fg.insert(bad)
    err = caught.value
    assert isinstance(err, DataValidationError)
    assert "age_min" in str(err) and "players are adults" in str(err) and "nothing was written" in str(err)
    assert err.report["status"] == "failed"
    failed = [r for r in err.report["results"] if not r["passed"]]
    assert [(r["rule"], r["value"]) for r in failed] == [("age_min", 12.0)]
    assert fg.commit_details() == commits
    assert fg.read().equals(rows)
    after = fg.statistics()
    assert (after.to_dict() if after else None) == (stats.to_dict() if stats else None)
    assert fg.validation_results() == []
    for mode in ("overwrite", "upsert"):
        with pytest.raises(ValidationFailedError):
            fg.insert(bad, mode=mode)
    assert len(fg.read()) == 4 and fg.commit_details() == commits


def test_warnings_are_recorded_with_the_commit(fg: Any) -> None:
    fg.add_validation_rule("rating_mean", "mean", ["rating"], min=100, max=150, level="warning",
                           hint="ratings drift")
    fg.add_validation_rule("complete", "completeness", ["age", "team"])
    commit = fg.insert(_players([5, 6], rating=[900.0, 1000.0]))
    assert len(fg.read()) == 6
    reports = fg.validation_results()
    assert len(reports) == 1
    report = reports[0]
    assert report.status == "warning" and report.passed and report.trigger == "insert"
    assert report.commit_version == commit["version"] and report.rows == 2
    assert [w["rule"] for w in report.warnings] == ["rating_mean"]
    assert report.warnings[0]["value"] == pytest.approx(950.0) and report.warnings[0]["hint"] == "ratings drift"
    assert report.raise_for_status() is report
    assert fg.validation_results(commit_version=commit["version"])[0].to_dict() == report.to_dict()
    assert fg.validation_results(commit_version=0) == []
    fg.insert(_players([7], rating=[120.0]))
    newest = fg.validation_results()
    assert [r.status for r in newest] == ["passed", "warning"]
    assert len(fg.validation_results(limit=1)) == 1
    frame = report.to_pandas()
    assert list(frame["rule"]) == ["rating_mean", "complete", "complete"]


def test_validation_job_checks_stored_rows_at_a_commit(fg: Any) -> None:
    fg.insert(_players([5, 6], age=[50.0, 60.0]))  # no rules yet: written
    fg.add_validation_rule("age_max", "max", ["age"], max=40)
    fg.add_validation_rule("size", "size", min=1, max=5, level="warning")
    latest = fg.run_validation()
    assert latest.status == "failed" and latest.trigger == "job" and latest.commit_version == 1
    assert _check(latest, "age_max", "age")["value"] == 60.0
    assert _check(latest, "size")["value"] == 6.0 and not _check(latest, "size")["passed"]
    with pytest.raises(ValidationFailedError, match="commit 1"):
        latest.raise_for_status()
    first = fg.run_validation(commit_version=0)
    assert first.status == "passed" and first.rows == 4 and first.commit_version == 0
    assert [r.commit_version for r in fg.validation_results()] == [0, 1]
    with pytest.raises(CommitNotFoundError):
        fg.run_validation(commit_version=99)


def test_dry_run_stores_nothing(fg: Any) -> None:
    fg.add_validation_rule("age_min", "min", ["age"], min=30)
    report = fg.validate(_players([9]))
    assert report.status == "failed" and report.commit_version is None
    assert fg.validation_results() == [] and len(fg.read()) == 4
    with pytest.raises(SchemaMismatchError):
        fg.validate(pd.DataFrame({"player_id": [1]}))
    no_rules = fg  # removing the rule: every frame passes
    no_rules.remove_validation_rule("age_min")
    assert fg.validate(_players([9])).status == "passed"


def test_fractions_on_empty_and_all_null_features(fg: Any) -> None:
    fg.add_validation_rule("complete", "completeness", ["age"])
    fg.add_validation_rule("age_mean", "mean", ["age"], min=0)
    empty = fg.validate(_players([1]).iloc[:0])
    assert _check(empty, "complete", "age")["passed"] and empty.rows == 0
    mean = _check(empty, "age_mean", "age")
    assert mean["value"] is None and not mean["passed"] and "could not be measured" in mean["message"]


# --- bad rules --------------------------------------------------------------------------------------

BAD_RULES: list[tuple[dict[str, Any], type[Exception], str]] = [
    (dict(rule_type="min", features=["age"], min=5, max=1), InvalidArgumentError, "greater than max"),
    (dict(rule_type="completeness", features=["age"], min=1.5), InvalidArgumentError, r"outside \[0, 1\]"),
    (dict(rule_type="uniqueness", features=["age"], max=-0.1), InvalidArgumentError, r"outside \[0, 1\]"),
    (dict(rule_type="size", max=-1), InvalidArgumentError, "never negative"),
    (dict(rule_type="pattern", features=["email"], pattern="(["), InvalidArgumentError, "not a valid regular"),
    (dict(rule_type="pattern", features=["email"]), InvalidArgumentError, "needs pattern="),
    (dict(rule_type="mean", features=["team"], min=1), SchemaMismatchError, "does not fit feature 'team'"),
    (dict(rule_type="pattern", features=["age"], pattern="x"), SchemaMismatchError, "does not fit"),
    (dict(rule_type="max", features=["nope"], max=1), SchemaMismatchError, r"no feature\(s\) \['nope'\]"),
    (dict(rule_type="mean", features=["age"]), InvalidArgumentError, "needs a min or a max"),
    (dict(rule_type="median", features=["age"], min=1), InvalidArgumentError, "unknown rule_type"),
    (dict(rule_type="min", features=["age"], min=1, level="fatal"), InvalidArgumentError, "level must be"),
    (dict(rule_type="min", features=[], min=1), InvalidArgumentError, "needs the features"),
    (dict(rule_type="size", features=["age"], min=1), InvalidArgumentError, "takes no features"),
    (dict(rule_type="allowed_values", features=["team"]), InvalidArgumentError, "non-empty allowed_values"),
    (dict(rule_type="allowed_values", features=["team"], allowed_values=[1, 2]), InvalidArgumentError,
     "do not fit feature 'team'"),
    (dict(rule_type="min", features=["age"], min=1, pattern="x"), InvalidArgumentError, "only for pattern"),
]


def test_bad_rules_are_refused_when_defined(fg: Any) -> None:
    for kwargs, error, match in BAD_RULES:
        with pytest.raises(error, match=match):
            fg.add_validation_rule("bad", **kwargs)
    assert fg.get_validation_rules() == []


def test_bad_rule_names_and_bounds(fg: Any) -> None:
    with pytest.raises(InvalidNameError):
        fg.add_validation_rule("Bad Name", "completeness", ["age"])
    with pytest.raises(InvalidArgumentError, match="must be a number"):
        fg.add_validation_rule("r", "min", ["age"], min="18")


# --- the functional API ---------------------------------------------------------------------------


def test_functional_api(tmp_path: Any) -> None:
    featurestore.connect(path=tmp_path / "store")
    featurestore.create_featuregroup(_players([1, 2, 3]), "players", primary_key=["player_id"])
    featurestore.add_validation_rule("players", "rating_range", "max", ["rating"], max=500, hint="max rating")
    assert [r["name"] for r in featurestore.get_featuregroup_validation_rules("players")] == ["rating_range"]
    with pytest.raises(ValidationFailedError):
        featurestore.insert_into_featuregroup(_players([4], rating=[9000.0]), "players")
    dry = featurestore.validate_featuregroup("players", dataframe=_players([4], rating=[9000.0]))
    assert dry.status == "failed" and dry.trigger == "dry_run"
    job = featurestore.validate_featuregroup("players")
    assert job.status == "passed" and job.commit_version == 0
    reports = featurestore.get_featuregroup_validations("players")
    assert [r.trigger for r in reports] == ["job"]
    with pytest.raises(InvalidArgumentError):
        featurestore.validate_featuregroup("players", commit_version=0, dataframe=_players([4]))
    featurestore.remove_validation_rule("players", "rating_range")
    assert featurestore.get_featuregroup_validation_rules("players") == []


# --- rules given at creation ----------------------------------------------------------------------


def test_rules_given_at_creation_validate_the_first_rows(fs: cloudsdk.FeatureStore) -> None:
    rules = [{"name": "age_min", "rule_type": "min", "features": ["age"], "min": 18},
             {"name": "rating_mean", "rule_type": "mean", "features": ["rating"], "max": 112, "level": "warning"}]
    with pytest.raises(ValidationFailedError, match="age_min") as caught:
        fs.create_feature_group("kids", data=_players([1, 2], age=[10.0, 30.0]), primary_key="player_id",
                                validation_rules=rules)
    assert caught.value.report["status"] == "failed"
    assert fs.get_latest_version("kids") is None  # nothing was created
    fg = fs.create_feature_group("kids", data=_players([1, 2]), primary_key="player_id", validation_rules=rules)
    assert [r["name"] for r in fg.get_validation_rules()] == ["age_min", "rating_mean"]
    [report] = fg.validation_results()
    assert report.commit_version == 0 and report.status == "warning" and report.trigger == "insert"
    with pytest.raises(ValidationFailedError):
        fg.insert(_players([3], age=[5.0]))
    with pytest.raises(InvalidArgumentError, match="repeat a rule name"):
        fs.create_feature_group("twice", data=_players([1]), validation_rules=[rules[0], rules[0]])
    with pytest.raises(SchemaMismatchError, match="no feature"):
        fs.create_feature_group("unknown", data=_players([1]),
                                validation_rules=[{"name": "r", "rule_type": "max", "features": ["x"], "max": 1}])
    assert fs.get_latest_version("twice") is None and fs.get_latest_version("unknown") is None
