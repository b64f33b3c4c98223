"""The query planner (get_features) and the object API's select / join / filter queries.

Every result is compared with an independent pandas computation (merge, boolean masks)
on the frames the feature groups were made from.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import cloudsdk
from cloudsdk.errors import (
    FeatureGroupNotFoundError,
    FeatureNameCollisionError,
    FeatureNotFoundError,
    InvalidArgumentError,
    JoinKeyError,
    QueryError,
)

KEY = "team_id"
PLANNER_LOGGER = "cloudsdk.planner"

# The seed manual's 12-feature request.
SEED_FEATURES = [
    "team_budget", "average_attendance", "average_player_age", "team_position", "sum_attendance",
    "average_player_rating", "average_player_worth", "sum_player_age", "sum_player_rating",
    "sum_player_worth", "sum_position", "average_position",
]


# --- helpers ---------------------------------------------------------------------------------


def _merge_all(football: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """The pandas reference: the four demo frames inner-merged on team_id."""
    frames = list(football.values())
    out = frames[0]
    for df in frames[1:]:
        out = out.merge(df, on=KEY, how="inner")
    return out


def _sorted(df: pd.DataFrame, by: list[str] | None = None) -> pd.DataFrame:
    return df.sort_values(by or list(df.columns), kind="stable").reset_index(drop=True)


def _assert_same(got: pd.DataFrame, expected: pd.DataFrame, by: list[str] | None = None,
                 check_dtype: bool = True) -> None:
    """Same columns in the same order, same rows in any order, same values (and dtypes)."""
    assert list(got.columns) == list(expected.columns)
    assert len(got) == len(expected)
    pd.testing.assert_frame_equal(_sorted(got, by), _sorted(expected, by), check_dtype=check_dtype)


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory,
           football: dict[str, pd.DataFrame]) -> Iterator[cloudsdk.FeatureStore]:
    """The four football groups (version 1) in a store shared by this module's read-only tests."""
    conn = cloudsdk.connect(path=tmp_path_factory.mktemp("planner_store"))
    fs = conn.get_feature_store()
    for name, df in football.items():
        fs.create_feature_group(name, data=df, primary_key=[KEY], statistics=False)
    yield fs
    conn.close()


# --- get_features across the four groups -------------------------------------------------------


ORDERINGS = {
    "seed_12": SEED_FEATURES,
    "one_per_group": ["team_budget", "average_attendance", "average_player_age", "average_position"],
    "reversed_groups": ["sum_position", "sum_player_worth", "sum_attendance", "team_position"],
    "interleaved": ["average_player_rating", "team_budget", "average_player_worth", "sum_attendance",
                    "team_position", "average_position", "sum_player_age"],
    "key_first": ["team_id", "average_attendance", "team_budget", "sum_player_rating", "average_position"],
    "key_middle": ["average_position", "team_id", "team_position", "average_attendance", "sum_player_worth"],
    "key_last": ["sum_attendance", "average_player_age", "team_budget", "sum_position", "team_id"],
}


@pytest.mark.parametrize("features", list(ORDERINGS.values()), ids=list(ORDERINGS))
def test_get_features_equals_pandas_merge(shared: cloudsdk.FeatureStore, football: dict[str, pd.DataFrame],
                                          features: list[str]) -> None:
    got = shared.get_features(features)
    expected = _merge_all(football)[features]
    assert list(got.columns) == features
    _assert_same(got, expected)


def test_get_features_rows_align_on_the_key(shared: cloudsdk.FeatureStore,
                                            football: dict[str, pd.DataFrame]) -> None:
    """Not just the same multiset of values per column: each row holds one team's values."""
    features = ["team_id", "team_budget", "average_attendance", "average_player_age", "sum_position"]
    got = shared.get_features(features).set_index(KEY).sort_index()
    expected = _merge_all(football)[features].set_index(KEY).sort_index()
    pd.testing.assert_frame_equal(got, expected)


def test_get_features_single_group(shared: cloudsdk.FeatureStore, football: dict[str, pd.DataFrame]) -> None:
    got = shared.get_features(["team_position", "team_budget"])
    _assert_same(got, football["teams_features"][["team_position", "team_budget"]])
    got = shared.get_features(["team_budget", "team_id"])
    _assert_same(got, football["teams_features"][["team_budget", "team_id"]])


@pytest.mark.parametrize(
    "features",
    [
        ["teams_features_1.team_budget", "attendances_features_1.average_attendance",
         "players_features_1.average_player_age"],
        ["teams_features.team_budget", "attendances_features.average_attendance",
         "players_features.average_player_age"],
        ["teams_features_1.team_budget", "attendances_features.average_attendance", "average_player_age"],
        ["season_scores_features.team_id", "teams_features.team_budget", "sum_position"],
    ],
    ids=["fg_version", "fg", "mixed", "explicit_key"],
)
def test_explicit_group_forms(shared: cloudsdk.FeatureStore, football: dict[str, pd.DataFrame],
                              features: list[str]) -> None:
    got = shared.get_features(features)
    bare = [f.rsplit(".", 1)[-1] for f in features]
    assert list(got.columns) == bare
    _assert_same(got, _merge_all(football)[bare])


def test_get_features_dataframe_types(shared: cloudsdk.FeatureStore, football: dict[str, pd.DataFrame]) -> None:
    features = ["team_id", "team_position", "average_attendance"]
    expected = _sorted(_merge_all(football)[features], [KEY])
    table = shared.get_features(features, dataframe_type="pyarrow")
    assert isinstance(table, pa.Table)
    assert table.column_names == features
    assert table.schema.field("team_position").type == pa.int64()
    array = shared.get_features(features, dataframe_type="numpy")
    assert isinstance(array, np.ndarray) and array.shape == (len(expected), 3)
    np.testing.assert_array_equal(array[np.argsort(array[:, 0])], expected.to_numpy())
    rows = shared.get_features(features, dataframe_type="python")
    assert sorted(rows) == [list(r) for r in expected.itertuples(index=False)]


def test_unknown_feature(shared: cloudsdk.FeatureStore) -> None:
    with pytest.raises(FeatureNotFoundError, match="no_such_feature"):
        shared.get_features(["team_budget", "no_such_feature"])
    with pytest.raises(FeatureNotFoundError, match=r"no_such_feature.*team_budget"):
        shared.get_features(["teams_features.no_such_feature"])  # the message lists what the group has
    with pytest.raises(FeatureGroupNotFoundError, match="no_such_group"):
        shared.get_features(["no_such_group.team_budget"])
    with pytest.raises(InvalidArgumentError):
        shared.get_features([])


# --- versions -------------------------------------------------------------------------------


@pytest.fixture
def two_versions(football_fs: cloudsdk.FeatureStore,
                 football: dict[str, pd.DataFrame]) -> tuple[cloudsdk.FeatureStore, pd.DataFrame]:
    """teams_features version 2, with doubled budgets, beside version 1."""
    teams = football["teams_features"]
    v2 = teams.assign(team_budget=teams["team_budget"] * 2)
    football_fs.create_feature_group("teams_features", version=2, data=v2, primary_key=[KEY])
    return football_fs, v2


def test_latest_version_is_used_and_logged(two_versions: tuple[cloudsdk.FeatureStore, pd.DataFrame],
                                           football: dict[str, pd.DataFrame],
                                           caplog: pytest.LogCaptureFixture) -> None:
    fs, v2 = two_versions
    with caplog.at_level(logging.INFO, logger=PLANNER_LOGGER):
        got = fs.get_features(["team_id", "team_budget", "average_attendance"])
    expected = v2.merge(football["attendances_features"], on=KEY)[["team_id", "team_budget", "average_attendance"]]
    _assert_same(got, expected, [KEY])
    records = [r for r in caplog.records if r.name == PLANNER_LOGGER and r.levelno == logging.INFO]
    messages = [r.getMessage() for r in records]
    chosen = [m for m in messages if "'team_budget'" in m]
    assert len(chosen) == 1, messages
    assert "[1, 2]" in chosen[0] and "version 2" in chosen[0] and "teams_features" in chosen[0]
    # a feature found in one version only is not worth a log line
    assert not [m for m in messages if "average_attendance" in m]


def test_version_dict_pins_a_version(two_versions: tuple[cloudsdk.FeatureStore, pd.DataFrame],
                                     football: dict[str, pd.DataFrame],
                                     caplog: pytest.LogCaptureFixture) -> None:
    fs, _ = two_versions
    expected = _merge_all(football)[["team_budget", "average_attendance"]]
    with caplog.at_level(logging.INFO, logger=PLANNER_LOGGER):
        got = fs.get_features(["team_budget", "average_attendance"],
                              featuregroups_version_dict={"teams_features": 1, "attendances_features": 1})
    _assert_same(got, expected)
    assert not [r for r in caplog.records if r.name == PLANNER_LOGGER and "team_budget" in r.getMessage()]
    # <fg>_<version>.<feature> pins it too
    _assert_same(fs.get_features(["teams_features_1.team_budget", "average_attendance"]), expected)
    with pytest.raises(FeatureGroupNotFoundError, match="teams_features"):
        fs.get_features(["team_budget"], featuregroups_version_dict={"teams_features": 3})


def test_two_versions_of_one_group_in_one_request(two_versions: tuple[cloudsdk.FeatureStore, pd.DataFrame],
                                                  football: dict[str, pd.DataFrame]) -> None:
    fs, v2 = two_versions
    got = fs.get_features(["team_id", "teams_features_1.team_position", "teams_features_2.team_budget"])
    expected = football["teams_features"][["team_id", "team_position"]].merge(v2[["team_id", "team_budget"]])
    _assert_same(got, expected, [KEY])


# --- collisions and join keys ------------------------------------------------------------------


@pytest.fixture
def with_rival(football_fs: cloudsdk.FeatureStore,
               football: dict[str, pd.DataFrame]) -> tuple[cloudsdk.FeatureStore, pd.DataFrame]:
    """A second group that also has a feature called team_budget."""
    teams = football["teams_features"]
    rival = pd.DataFrame({"team_id": teams[KEY], "team_budget": teams["team_budget"] + 1.0,
                          "sponsor_count": np.arange(len(teams), dtype=np.int64)})
    football_fs.create_feature_group("sponsors_features", data=rival, primary_key=[KEY])
    return football_fs, rival


def test_name_in_two_groups_is_a_collision(with_rival: tuple[cloudsdk.FeatureStore, pd.DataFrame]) -> None:
    fs, _ = with_rival
    with pytest.raises(FeatureNameCollisionError) as info:
        fs.get_features(["team_budget", "average_attendance"])
    expected = ["sponsors_features_1.team_budget", "teams_features_1.team_budget"]
    assert sorted(info.value.candidates) == expected
    for candidate in expected:
        assert candidate in str(info.value)
    assert isinstance(info.value, QueryError)


def test_collision_is_resolved_by_naming_the_group(with_rival: tuple[cloudsdk.FeatureStore, pd.DataFrame],
                                                   football: dict[str, pd.DataFrame]) -> None:
    fs, rival = with_rival
    att = football["attendances_features"]
    got = fs.get_features(["sponsors_features.team_budget", "average_attendance", "team_id"])
    _assert_same(got, rival.merge(att, on=KEY)[["team_budget", "average_attendance", "team_id"]], [KEY])
    got = fs.get_features(["team_budget", "average_attendance"],
                          featuregroups_version_dict={"teams_features": 1, "attendances_features": 1})
    _assert_same(got, _merge_all(football)[["team_budget", "average_attendance"]])


def test_same_name_from_two_groups_cannot_share_a_result(
        with_rival: tuple[cloudsdk.FeatureStore, pd.DataFrame]) -> None:
    fs, _ = with_rival
    with pytest.raises(FeatureNameCollisionError) as info:
        fs.get_features(["teams_features.team_budget", "sponsors_features.team_budget"])
    assert sorted(info.value.candidates) == ["sponsors_features_1.team_budget", "teams_features_1.team_budget"]


def test_shared_key_alongside_features(shared: cloudsdk.FeatureStore, football: dict[str, pd.DataFrame]) -> None:
    """team_id is in every group, but as the join key it is no collision."""
    features = ["team_budget", "team_id", "average_player_rating"]
    _assert_same(shared.get_features(features), _merge_all(football)[features], [KEY])


@pytest.fixture
def cities(football_fs: cloudsdk.FeatureStore, football: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """A group keyed by city_id that also carries team_id as an ordinary column (not its key)."""
    ids = football["teams_features"][KEY].to_numpy()
    df = pd.DataFrame({"city_id": np.arange(1000, 1000 + len(ids), dtype=np.int64), "team_id": ids[::-1].copy(),
                       "city_population": np.arange(len(ids), dtype=np.float64) * 1000.0})
    football_fs.create_feature_group("cities_features", data=df, primary_key=["city_id"])
    return df


def test_no_shared_primary_key_is_a_join_key_error(football_fs: cloudsdk.FeatureStore,
                                                   cities: pd.DataFrame) -> None:
    with pytest.raises(JoinKeyError) as info:
        football_fs.get_features(["team_budget", "city_population"])
    message = str(info.value)
    assert "teams_features_1" in message and "cities_features_1" in message and "join_key" in message


@pytest.mark.parametrize("join_key", ["team_id", ["team_id"]], ids=["str", "list"])
def test_explicit_join_key(football_fs: cloudsdk.FeatureStore, cities: pd.DataFrame,
                           football: dict[str, pd.DataFrame], join_key: str | list[str]) -> None:
    got = football_fs.get_features(["team_budget", "city_population", "city_id"], join_key=join_key)
    expected = football["teams_features"].merge(cities, on=KEY)[["team_budget", "city_population", "city_id"]]
    _assert_same(got, expected, ["city_id"])


def test_explicit_join_key_must_exist_everywhere(football_fs: cloudsdk.FeatureStore, cities: pd.DataFrame) -> None:
    with pytest.raises(JoinKeyError, match="city_id"):
        football_fs.get_features(["team_budget", "city_population"], join_key="city_id")


# --- the object API: select / join --------------------------------------------------------------


def test_select_join_inner(shared: cloudsdk.FeatureStore, football: dict[str, pd.DataFrame]) -> None:
    teams = shared.get_feature_group("teams_features")
    players = shared.get_feature_group("players_features")
    for on in (["team_id"], "team_id", None):
        query = teams.select(["team_id", "team_budget"]).join(
            players.select(["average_player_age", "sum_player_worth"]), on=on, join_type="inner")
        expected = football["teams_features"].merge(football["players_features"], on=KEY, how="inner")
        _assert_same(query.read(), expected[["team_id", "team_budget", "average_player_age", "sum_player_worth"]],
                     [KEY])


def test_three_way_object_join(shared: cloudsdk.FeatureStore, football: dict[str, pd.DataFrame]) -> None:
    fgs = {name: shared.get_feature_group(name) for name in football}
    query = (fgs["teams_features"].select(["team_id", "team_position"])
             .join(fgs["season_scores_features"].select(["average_position"]))
             .join(fgs["attendances_features"].select(["sum_attendance"])))
    expected = _merge_all(football)[["team_id", "team_position", "average_position", "sum_attendance"]]
    _assert_same(query.read(), expected, [KEY])


@pytest.fixture
def awards(football_fs: cloudsdk.FeatureStore, football: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """A group with rows for a third of the teams only, plus one team no other group has."""
    ids = football["teams_features"][KEY].to_numpy()[::3]
    df = pd.DataFrame({"team_id": np.append(ids, 10_000).astype(np.int64),
                       "trophies": np.arange(len(ids) + 1, dtype=np.int64) + 1})
    football_fs.create_feature_group("awards_features", data=df, primary_key=[KEY])
    return df


def test_left_join_keeps_unmatched_rows(football_fs: cloudsdk.FeatureStore, awards: pd.DataFrame,
                                        football: dict[str, pd.DataFrame]) -> None:
    teams = football_fs.get_feature_group("teams_features")
    aw = football_fs.get_feature_group("awards_features")
    got = teams.select(["team_id", "team_budget"]).join(aw.select(["trophies"]), on=["team_id"],
                                                         join_type="left").read()
    expected = football["teams_features"][["team_id", "team_budget"]].merge(awards, on=KEY, how="left")
    assert expected["trophies"].isna().sum() == len(expected) - (len(awards) - 1)
    assert got["trophies"].isna().sum() == expected["trophies"].isna().sum()
    _assert_same(got, expected, [KEY], check_dtype=False)
    assert 10_000 not in set(got[KEY])
    inner = teams.select(["team_id", "team_budget"]).join(aw.select(["trophies"]), join_type="inner").read()
    assert len(inner) == len(awards) - 1


def test_left_join_key_selected_on_the_right(football_fs: cloudsdk.FeatureStore, awards: pd.DataFrame,
                                             football: dict[str, pd.DataFrame]) -> None:
    teams = football_fs.get_feature_group("teams_features")
    aw = football_fs.get_feature_group("awards_features")
    got = teams.select(["team_budget"]).join(aw.select(["team_id", "trophies"]), on=["team_id"],
                                             join_type="left").read()
    expected = football["teams_features"][["team_id", "team_budget"]].merge(awards, on=KEY, how="left")
    expected = expected[["team_budget", "team_id", "trophies"]]
    assert got[KEY].notna().all()
    _assert_same(got, expected, ["team_budget"], check_dtype=False)


@pytest.mark.parametrize("how", ["right", "full"])
def test_right_and_full_join_keys(football_fs: cloudsdk.FeatureStore, awards: pd.DataFrame,
                                  football: dict[str, pd.DataFrame], how: str) -> None:
    teams = football_fs.get_feature_group("teams_features")
    aw = football_fs.get_feature_group("awards_features")
    got = teams.select(["team_id", "team_budget"]).join(aw.select(["trophies"]), on=["team_id"],
                                                         join_type=how).read()
    expected = football["teams_features"][["team_id", "team_budget"]].merge(
        awards, on=KEY, how="outer" if how == "full" else how)
    assert 10_000 in set(got[KEY])
    _assert_same(got, expected, [KEY], check_dtype=False)


def test_bad_join_arguments(shared: cloudsdk.FeatureStore) -> None:
    teams = shared.get_feature_group("teams_features")
    players = shared.get_feature_group("players_features")
    with pytest.raises(InvalidArgumentError, match="join_type"):
        teams.select(["team_id"]).join(players.select(["sum_player_age"]), join_type="cross").read()
    with pytest.raises(JoinKeyError, match="team_budget"):
        teams.select(["team_id"]).join(players.select(["sum_player_age"]), on=["team_budget"]).read()
    with pytest.raises(FeatureNotFoundError):
        teams.select(["no_such_feature"])


# --- filters --------------------------------------------------------------------------------------


def test_filter_comparisons(shared: cloudsdk.FeatureStore, football: dict[str, pd.DataFrame]) -> None:
    fg = shared.get_feature_group("teams_features")
    df = football["teams_features"]
    budget = float(df["team_budget"].median())
    cases = [
        (fg.team_budget > budget, df["team_budget"] > budget),
        (fg.team_budget >= budget, df["team_budget"] >= budget),
        (fg.team_position < 5, df["team_position"] < 5),
        (fg.team_position <= 5, df["team_position"] <= 5),
        (fg.team_position == 3, df["team_position"] == 3),
        (fg.team_position != 3, df["team_position"] != 3),
        ((fg.team_budget > budget) & (fg.team_position <= 10),
         (df["team_budget"] > budget) & (df["team_position"] <= 10)),
        ((fg.team_position == 1) | (fg.team_position == 20), (df["team_position"] == 1) | (df["team_position"] == 20)),
        (~(fg.team_position > 4), ~(df["team_position"] > 4)),
        (~((fg.team_position < 3) | (fg.team_budget > budget)) & (fg.team_id > 5),
         ~((df["team_position"] < 3) | (df["team_budget"] > budget)) & (df["team_id"] > 5)),
        (fg.team_id.isin([1, 5, 9, 999]), df["team_id"].isin([1, 5, 9, 999])),
        (fg.team_id.isin(np.array([2, 4, 6], dtype=np.int64)), df["team_id"].isin([2, 4, 6])),
        (fg.team_id.isin([]), df["team_id"].isin([])),
    ]
    for condition, mask in cases:
        got = fg.select(["team_id", "team_budget", "team_position"]).filter(condition).read()
        _assert_same(got, df[mask][["team_id", "team_budget", "team_position"]], [KEY])
        assert _sorted(fg.filter(condition).read(), [KEY])[KEY].tolist() == sorted(df[mask][KEY].tolist())


def test_repeated_filters_are_anded(shared: cloudsdk.FeatureStore, football: dict[str, pd.DataFrame]) -> None:
    fg = shared.get_feature_group("teams_features")
    df = football["teams_features"]
    got = fg.select_all().filter(fg.team_position > 5).filter(fg.team_position < 12).read()
    _assert_same(got, df[(df["team_position"] > 5) & (df["team_position"] < 12)], [KEY])


def test_filter_on_the_joined_group(shared: cloudsdk.FeatureStore, football: dict[str, pd.DataFrame]) -> None:
    teams = shared.get_feature_group("teams_features")
    att = shared.get_feature_group("attendances_features")
    cut = float(football["attendances_features"]["average_attendance"].median())
    query = (teams.select(["team_id", "team_position"]).join(att.select(["average_attendance"]))
             .filter((att.average_attendance > cut) & (teams.team_position <= 15)))
    merged = football["teams_features"].merge(football["attendances_features"], on=KEY)
    expected = merged[(merged["average_attendance"] > cut) & (merged["team_position"] <= 15)]
    _assert_same(query.read(), expected[["team_id", "team_position", "average_attendance"]], [KEY])
    players = shared.get_feature_group("players_features")
    with pytest.raises(QueryError, match="players_features_1"):
        teams.select(["team_id"]).filter(players.sum_player_age > 1).read()


@pytest.fixture
def people(fs: cloudsdk.FeatureStore) -> tuple[cloudsdk.FeatureGroup, pd.DataFrame]:
    names = ["O'Brien", "D'Angelo", "x' OR '1'='1", "Robert'); DROP TABLE people_features_1;--",
             "back\\'slash", 'double"quote', "plain", None]
    df = pd.DataFrame({
        "pid": np.arange(1, len(names) + 1, dtype=np.int64),
        "full_name": names,
        "score": [1.0, None, 3.0, 4.0, None, 6.0, 7.0, 8.0],
    })
    return fs.create_feature_group("people_features", data=df, primary_key="pid"), df


def test_filter_values_with_quotes_are_escaped(people: tuple[cloudsdk.FeatureGroup, pd.DataFrame]) -> None:
    fg, df = people
    for value in df["full_name"].dropna():
        got = fg.filter(fg.full_name == value).read()
        assert got["pid"].tolist() == df[df["full_name"] == value]["pid"].tolist(), value
        assert got["full_name"].tolist() == [value]
    got = fg.filter(fg.full_name.isin(["O'Brien", "x' OR '1'='1", "nobody's"])).read()
    assert sorted(got["pid"].tolist()) == [1, 3]
    assert fg.filter(fg.full_name == "' OR ''='").read().empty
    assert fg.filter(fg.full_name != "O'Brien").read()["pid"].tolist() == [2, 3, 4, 5, 6, 7]
    # the injection attempts changed nothing
    assert len(fg.read()) == len(df)


def test_isnull_and_notnull(people: tuple[cloudsdk.FeatureGroup, pd.DataFrame]) -> None:
    fg, df = people
    assert sorted(fg.filter(fg.score.isnull()).read()["pid"]) == df[df["score"].isna()]["pid"].tolist()
    assert sorted(fg.filter(fg.score.notnull()).read()["pid"]) == df[df["score"].notna()]["pid"].tolist()
    assert sorted(fg.filter(fg.full_name.isnull()).read()["pid"]) == [8]
    got = fg.filter(fg.score.notnull() & (fg.score > 3)).read()
    assert sorted(got["pid"]) == df[df["score"] > 3]["pid"].tolist()
    with pytest.raises(QueryError, match="isnull"):
        fg.filter(fg.score == None).read()  # noqa: E711 - the filter DSL, not a Python comparison


def test_filter_with_numpy_bool(fs: cloudsdk.FeatureStore) -> None:
    df = pd.DataFrame({"id": np.arange(4, dtype=np.int64), "flag": np.array([True, False, True, False])})
    fg = fs.create_feature_group("flags", data=df, primary_key="id")
    value = df["flag"].iloc[0]
    assert isinstance(value, np.bool_)
    assert sorted(fg.filter(fg.flag == value).read()["id"]) == [0, 2]


def test_filter_with_numpy_numbers(shared: cloudsdk.FeatureStore, football: dict[str, pd.DataFrame]) -> None:
    fg = shared.get_feature_group("teams_features")
    df = football["teams_features"]
    position = df["team_position"].iloc[0]
    budget = df["team_budget"].iloc[0]
    assert isinstance(position, np.integer) and isinstance(budget, np.floating)
    got = fg.filter((fg.team_position == position) | (fg.team_budget == budget)).read()
    expected = df[(df["team_position"] == position) | (df["team_budget"] == budget)]
    _assert_same(got, expected, [KEY])


def test_to_sql_is_runnable(shared: cloudsdk.FeatureStore) -> None:
    teams = shared.get_feature_group("teams_features")
    att = shared.get_feature_group("attendances_features")
    query = (teams.select(["team_id", "team_budget"]).join(att.select(["average_attendance"]))
             .filter((teams.team_position <= 10) & (att.average_attendance > 0)))
    text = query.to_sql()
    assert "teams_features_1" in text and "attendances_features_1" in text
    assert text.lstrip().upper().startswith("SELECT")
    _assert_same(shared.sql(text), query.read(), [KEY])


def test_query_read_dataframe_types(shared: cloudsdk.FeatureStore, football: dict[str, pd.DataFrame]) -> None:
    fg = shared.get_feature_group("season_scores_features")
    query = fg.select(["team_id", "sum_position"]).filter(fg.team_id <= 10)
    df = football["season_scores_features"]
    expected = _sorted(df[df[KEY] <= 10][["team_id", "sum_position"]], [KEY])
    rows = [list(r) for r in expected.itertuples(index=False)]
    _assert_same(query.read(), expected, [KEY])
    _assert_same(query.read(dataframe_type="pandas"), expected, [KEY])
    table = query.read(dataframe_type="pyarrow")
    assert isinstance(table, pa.Table) and table.column_names == ["team_id", "sum_position"]
    assert sorted(query.read(dataframe_type="python")) == rows
    array = query.read(dataframe_type="numpy")
    assert array.shape == (len(rows), 2)
    assert sorted(array.tolist()) == rows
    pl = pytest.importorskip("polars")
    frame = query.read(dataframe_type="polars")
    assert isinstance(frame, pl.DataFrame) and sorted(frame.rows()) == [tuple(r) for r in rows]
    with pytest.raises(InvalidArgumentError, match="dataframe_type"):
        query.read(dataframe_type="excel")


# --- composite keys ---------------------------------------------------------------------------------


@pytest.fixture
def seasons(fs: cloudsdk.FeatureStore) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Two groups keyed by (team_id, season); the second misses some keys."""
    teams = np.repeat(np.arange(1, 7, dtype=np.int64), 3)
    season = np.tile(np.array([2019, 2020, 2021], dtype=np.int64), 6)
    goals = pd.DataFrame({"team_id": teams, "season": season, "goals": (teams * 7 + season) % 23})
    points = pd.DataFrame({"season": season, "team_id": teams,
                           "points": ((teams * 13 + season) % 41).astype(np.float64)}).iloc[2:-1]
    fs.create_feature_group("goals_features", data=goals, primary_key=["team_id", "season"])
    fs.create_feature_group("points_features", data=points, primary_key=["season", "team_id"])
    return goals, points


def test_composite_key_get_features(fs: cloudsdk.FeatureStore, seasons: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    goals, points = seasons
    expected = goals.merge(points, on=["team_id", "season"])
    for features in (["goals", "points"], ["points", "season", "goals", "team_id"]):
        got = fs.get_features(features)
        _assert_same(got, expected[features])
    assert fs.get_features_query(["goals", "points"])["joins"][0]["on"] == ["team_id", "season"]


def test_composite_key_object_join(fs: cloudsdk.FeatureStore, seasons: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    goals, points = seasons
    g = fs.get_feature_group("goals_features")
    p = fs.get_feature_group("points_features")
    for how in ("inner", "left"):
        query = g.select(["team_id", "season", "goals"]).join(p.select(["points"]), join_type=how)
        text = query.to_sql()
        assert '"team_id"' in text and '"season"' in text
        expected = goals.merge(points, on=["team_id", "season"], how=how)
        _assert_same(query.read(), expected, ["team_id", "season"], check_dtype=False)
    # joining on only part of the key multiplies rows, as in pandas
    query = g.select(["team_id", "season", "goals"]).join(p.select(["points"]), on=["team_id"])
    assert len(query.read()) == len(goals.merge(points[["team_id", "points"]], on="team_id"))


# --- determinism ------------------------------------------------------------------------------------


def test_same_request_same_sql(shared: cloudsdk.FeatureStore) -> None:
    spec1 = shared.get_features_query(SEED_FEATURES)
    spec2 = shared.get_features_query(SEED_FEATURES)
    assert spec1 == spec2
    assert json.dumps(spec1, sort_keys=False) == json.dumps(spec2, sort_keys=False)
    teams = shared.get_feature_group("teams_features")
    players = shared.get_feature_group("players_features")

    def build() -> str:
        return (teams.select(["team_id", "team_budget"]).join(players.select(["sum_player_age"]))
                .filter(teams.team_budget.isin([1.0, 2.0]) | ~(players.sum_player_age > 3)).to_sql())

    assert build() == build()


_PLAN_SCRIPT = textwrap.dedent("""
    from cloudsdk.store import planner
    groups = [
        planner.GroupInfo("teams_features", 1, ("team_id", "team_budget", "team_position"), ("team_id",)),
        planner.GroupInfo("teams_features", 2, ("team_id", "team_budget", "team_position"), ("team_id",)),
        planner.GroupInfo("players_features", 1, ("team_id", "average_player_age", "sum_player_age"), ("team_id",)),
        planner.GroupInfo("season_scores_features", 1, ("team_id", "season", "average_position"),
                          ("team_id", "season")),
        planner.GroupInfo("attendances_features", 1, ("team_id", "season", "average_attendance"),
                          ("season", "team_id")),
    ]
    features = ["average_attendance", "team_budget", "team_id", "average_position", "sum_player_age",
                "teams_features_1.team_position"]
    picks, keys, final, _ = planner.resolve_features(features, groups)
    spec = planner.features_query_spec(picks, keys, final)
    print(planner.to_sql(spec, {(g.name, g.version): g for g in groups})[0])
""")


def test_sql_text_is_the_same_across_processes() -> None:
    """No set or dict-order randomness leaks into the SQL: two interpreters with different
    hash seeds plan the same request into the same text."""
    texts = []
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        done = subprocess.run([sys.executable, "-c", _PLAN_SCRIPT], capture_output=True, text=True,
                              env=env, timeout=120, check=False, cwd=Path(__file__).parent)
        assert done.returncode == 0, done.stderr
        texts.append(done.stdout.strip())
    assert texts[0].startswith("SELECT")
    assert texts[0] == texts[1]


@pytest.mark.parametrize("how", ["right", "full"])
def test_outer_join_on_the_default_key_fills_the_key(football_fs: cloudsdk.FeatureStore, awards: pd.DataFrame,
                                                      football: dict[str, pd.DataFrame], how: str) -> None:
    teams = football_fs.get_feature_group("teams_features")
    aw = football_fs.get_feature_group("awards_features")
    got = teams.select(["team_id", "team_budget"]).join(aw.select(["team_id", "trophies"]), join_type=how).read()
    expected = football["teams_features"][["team_id", "team_budget"]].merge(
        awards, on=KEY, how="outer" if how == "full" else how)
    assert list(got.columns) == ["team_id", "team_budget", "trophies"]
    assert got[KEY].notna().all()
    _assert_same(got, expected, [KEY], check_dtype=False)


def test_select_all_joins_on_the_shared_key_once(shared: cloudsdk.FeatureStore,
                                                 football: dict[str, pd.DataFrame]) -> None:
    teams = shared.get_feature_group("teams_features")
    players = shared.get_feature_group("players_features")
    got = teams.select_all().join(players.select_all()).read()
    expected = football["teams_features"].merge(football["players_features"], on=KEY)
    assert list(got.columns) == list(expected.columns)
    _assert_same(got, expected, [KEY])


def test_explicit_join_key_that_is_not_a_primary_key(fs: cloudsdk.FeatureStore) -> None:
    a = pd.DataFrame({"id": [1, 2, 3], "k": [10, 20, 30], "x": [1.0, 2.0, 3.0]})
    b = pd.DataFrame({"bid": [7, 8, 9], "k": [30, 20, 99], "y": ["c", "b", "z"]})
    fs.create_feature_group("left_things", data=a, primary_key="id")
    fs.create_feature_group("right_things", data=b, primary_key="bid")
    got = fs.get_features(["k", "x", "y"], join_key="k")
    expected = a.merge(b, on="k")[["k", "x", "y"]]
    _assert_same(got, expected, ["k"], check_dtype=False)


def test_a_feature_asked_twice_gives_one_column(shared: cloudsdk.FeatureStore) -> None:
    got = shared.get_features(["team_budget", "average_attendance", "team_budget"])
    assert list(got.columns) == ["team_budget", "average_attendance"]
