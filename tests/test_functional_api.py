"""The hops 1.x style functional API (``from cloudsdk import featurestore``), used without
connect(): the embedded store in $CLOUDSDK_HOME, feature groups, features, SQL, metadata,
statistics, training datasets and storage connectors."""

from __future__ import annotations

import os
from glob import glob
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import cloudsdk
from cloudsdk import errors, featurestore


def _home() -> Path:
    return Path(os.environ["CLOUDSDK_HOME"])


def _teams(n: int = 20, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "team_id": np.arange(1, n + 1, dtype=np.int64),
        "team_budget": rng.uniform(1e6, 1e8, n).round(2),
        "team_position": rng.permutation(n).astype(np.int64) + 1,
        "team_name": pd.Series([f"team {i}" for i in range(1, n + 1)], dtype="str"),
    })


def _attendance(n: int = 20, seed: int = 2) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "team_id": np.arange(n, 0, -1, dtype=np.int64),  # another row order than _teams
        "average_attendance": rng.uniform(5e3, 8e4, n),
    })


@pytest.fixture
def football_groups(football: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """The four demo feature groups, created through the functional API in the default store."""
    for name, df in football.items():
        featurestore.create_featuregroup(df, name, primary_key=["team_id"], description=f"{name} (demo)")
    return football


# ---------------------------------------------------------------- the default store


def test_default_store_lands_in_cloudsdk_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    home = _home()
    assert home.is_relative_to(tmp_path)
    assert not home.exists()
    featurestore.create_featuregroup(_teams(), "teams_features")
    assert (home / "catalog.db").is_file()
    assert (home / "projects" / "default" / "featurestore" / "teams_features_1").is_dir()
    assert not (tmp_path / "user").exists()  # nothing went to ~/.cloudsdk
    # an object-API connection to the same directory sees the group
    with cloudsdk.connect(path=home) as conn:
        assert conn.get_feature_store().get_feature_group("teams_features").read().shape == (20, 4)


def test_project_featurestore_names() -> None:
    assert featurestore.project_featurestore() == "default_featurestore"
    assert featurestore.get_project_featurestores() == ["default_featurestore"]


def test_connect_switches_the_store(tmp_path: Path) -> None:
    featurestore.create_featuregroup(_teams(), "in_home")
    first = featurestore.connect(path=tmp_path / "other")
    assert Path(str(first.path)) == (tmp_path / "other").resolve()
    assert featurestore.get_featuregroups() == []
    featurestore.create_featuregroup(_teams(5), "in_other")
    assert featurestore.get_featuregroups() == ["in_other_1"]
    second = featurestore.connect(path=tmp_path / "third")
    assert featurestore.get_featuregroups() == []
    # the replaced connection is closed
    with pytest.raises(errors.ConfigurationError, match="closed"):
        first.get_feature_store()
    assert second.get_feature_store().name == "default_featurestore"
    # disconnect() goes back to the embedded default in $CLOUDSDK_HOME
    featurestore.disconnect()
    assert featurestore.get_featuregroups() == ["in_home_1"]
    featurestore.connect(path=tmp_path / "other")
    assert featurestore.get_featuregroup("in_other").shape == (5, 4)


def test_connect_to_a_file_is_a_configuration_error(tmp_path: Path) -> None:
    path = tmp_path / "a_file"
    path.write_text("x")
    with pytest.raises(errors.ConfigurationError, match="a_file"):
        featurestore.connect(path=path)


def test_connect_to_a_host_needs_an_api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("AWS_DEFAULT_REGION", "AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                "AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    with pytest.raises(errors.CredentialsError, match="region"):
        featurestore.connect("feature-store.example.com", "demo")


def test_connect_to_an_unreachable_host_is_a_service_error() -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(errors.ServiceError, match="cannot reach"):
        featurestore.connect("127.0.0.1", "demo", port=port, api_key_value="csk_0123456789ab.secret")


def test_featurestore_argument() -> None:
    featurestore.create_featuregroup(_teams(), "teams_features", featurestore="default_featurestore")
    assert featurestore.get_featuregroup("teams_features", featurestore="default_featurestore").shape == (20, 4)
    with pytest.raises(errors.ProjectNotFoundError, match="other"):
        featurestore.get_featuregroups(featurestore="other_featurestore")
    with pytest.raises(errors.InvalidArgumentError, match="_featurestore"):
        featurestore.get_featuregroups(featurestore="default")


# ---------------------------------------------------------------- feature groups


def test_create_and_get_featuregroup() -> None:
    df = _teams()
    assert featurestore.create_featuregroup(df, "teams_features", description="teams") is None
    got = featurestore.get_featuregroup("teams_features").sort_values("team_id").reset_index(drop=True)
    pd.testing.assert_frame_equal(got, df)
    with cloudsdk.connect(path=_home()) as conn:
        fg = conn.get_feature_store().get_feature_group("teams_features")
        assert fg.primary_key == ["team_id"]  # the first column by default
        assert fg.description == "teams"


def test_create_with_options() -> None:
    df = _teams()
    featurestore.create_featuregroup(df, "teams", primary_key=["team_name"], featuregroup_version=3,
                                     partition_by="team_position", descriptive_statistics=False)
    assert featurestore.get_latest_featuregroup_version("teams") == 3
    with cloudsdk.connect(path=_home()) as conn:
        fg = conn.get_feature_store().get_feature_group("teams", 3)
        assert fg.primary_key == ["team_name"]
        assert fg.partition_by == ["team_position"]
        assert fg.statistics() is None
    with pytest.raises(errors.FeatureGroupNotFoundError):
        featurestore.get_featuregroup("teams")  # version 1 is the default


@pytest.mark.parametrize("dataframe_type", ["pandas", "numpy", "python", "pyarrow", "polars"])
def test_get_featuregroup_dataframe_types(dataframe_type: str) -> None:
    df = _teams(5)
    featurestore.create_featuregroup(df, "teams")
    out = featurestore.get_featuregroup("teams", dataframe_type=dataframe_type)
    expected_rows = [list(r) for r in df.itertuples(index=False, name=None)]
    if dataframe_type == "pandas":
        rows = [list(r) for r in out.itertuples(index=False, name=None)]
    elif dataframe_type == "numpy":
        assert isinstance(out, np.ndarray) and out.shape == (5, 4)
        rows = [list(r) for r in out]
    elif dataframe_type == "python":
        rows = out
    elif dataframe_type == "pyarrow":
        assert isinstance(out, pa.Table) and out.column_names == list(df.columns)
        rows = [list(r.values()) for r in out.to_pylist()]
    else:
        assert out.columns == list(df.columns)
        rows = [list(r) for r in out.rows()]
    assert sorted(rows) == sorted(expected_rows)


def test_bad_dataframe_type() -> None:
    featurestore.create_featuregroup(_teams(5), "teams")
    with pytest.raises(errors.InvalidArgumentError, match="pandas, numpy, python, pyarrow, polars"):
        featurestore.get_featuregroup("teams", dataframe_type="spark")


def test_insert_into_featuregroup_modes() -> None:
    df = _teams(10)
    featurestore.create_featuregroup(df, "teams")
    featurestore.insert_into_featuregroup(_teams(12).iloc[10:], "teams")
    assert sorted(featurestore.get_featuregroup("teams")["team_id"]) == list(range(1, 13))
    change = df.iloc[:3].assign(team_budget=[1.0, 2.0, 3.0])
    result = featurestore.insert_into_featuregroup(change, "teams", mode="upsert")
    assert (result["rows_updated"], result["rows_inserted"]) == (3, 0)
    got = featurestore.get_featuregroup("teams").set_index("team_id")
    assert got.loc[[1, 2, 3], "team_budget"].tolist() == [1.0, 2.0, 3.0]
    assert got.loc[4, "team_budget"] == df.loc[3, "team_budget"]
    featurestore.insert_into_featuregroup(df.iloc[:2], "teams", mode="overwrite")
    assert sorted(featurestore.get_featuregroup("teams")["team_id"]) == [1, 2]


def test_versions() -> None:
    assert featurestore.get_latest_featuregroup_version("teams") == 0
    featurestore.create_featuregroup(_teams(3), "teams")
    featurestore.create_featuregroup(_teams(4), "teams", featuregroup_version=2)
    assert featurestore.get_latest_featuregroup_version("teams") == 2
    assert featurestore.get_featuregroup("teams").shape[0] == 3  # version 1 by default, as in hops
    assert featurestore.get_featuregroup("teams", featuregroup_version=2).shape[0] == 4
    featurestore.insert_into_featuregroup(_teams(5).iloc[4:], "teams", featuregroup_version=2)
    assert featurestore.get_featuregroup("teams", featuregroup_version=2).shape[0] == 5
    assert featurestore.get_featuregroup("teams").shape[0] == 3


def test_listing_groups_and_features() -> None:
    featurestore.create_featuregroup(_teams(), "teams_features")
    featurestore.create_featuregroup(_attendance(), "attendances_features")
    featurestore.create_featuregroup(_attendance(), "attendances_features", featuregroup_version=2)
    assert sorted(featurestore.get_featuregroups()) == [
        "attendances_features_1", "attendances_features_2", "teams_features_1"]
    features = featurestore.get_features_list()
    assert sorted(features) == sorted(["team_id", "team_budget", "team_position", "team_name", "average_attendance"])
    assert len(features) == len(set(features))
    assert featurestore.get_featuregroup_features_list("teams_features") == [
        "team_id", "team_budget", "team_position", "team_name"]
    assert featurestore.get_featuregroup_features_list("attendances_features", 2) == ["team_id", "average_attendance"]
    with pytest.raises(errors.FeatureGroupNotFoundError):
        featurestore.get_featuregroup_features_list("nope")


# ---------------------------------------------------------------- features and SQL


def test_get_feature_finds_its_group() -> None:
    teams = _teams()
    featurestore.create_featuregroup(teams, "teams_features")
    featurestore.create_featuregroup(_attendance(), "attendances_features")
    budget = featurestore.get_feature("team_budget")
    assert list(budget.columns) == ["team_budget"]
    assert sorted(budget["team_budget"]) == sorted(teams["team_budget"])
    explicit = featurestore.get_feature("team_position", featuregroup="teams_features", dataframe_type="python")
    assert sorted(r[0] for r in explicit) == list(range(1, 21))
    with pytest.raises(errors.FeatureNotFoundError, match="nope"):
        featurestore.get_feature("nope")
    with pytest.raises(errors.FeatureNameCollisionError) as info:
        featurestore.get_feature("team_id")
    assert set(info.value.candidates) == {"teams_features_1.team_id", "attendances_features_1.team_id"}
    assert "teams_features_1.team_id" in str(info.value)


def test_get_features_joins_on_the_primary_key(football_groups: dict[str, pd.DataFrame]) -> None:
    teams, att = football_groups["teams_features"], football_groups["attendances_features"]
    got = featurestore.get_features(["teams_features.team_id", "team_budget", "average_attendance"])
    expected = teams[["team_id", "team_budget"]].merge(att[["team_id", "average_attendance"]], on="team_id")
    got = got.sort_values("team_id").reset_index(drop=True)
    expected = expected.sort_values("team_id").reset_index(drop=True)
    pd.testing.assert_frame_equal(got, expected, check_dtype=False)
    assert len(got) == 60


def test_get_features_with_versions_and_join_key() -> None:
    featurestore.create_featuregroup(_teams(), "teams_features")
    featurestore.create_featuregroup(_attendance(), "attendances_features")
    featurestore.create_featuregroup(_attendance(seed=9).head(5), "attendances_features", featuregroup_version=2)
    got = featurestore.get_features(
        ["team_budget", "average_attendance"],
        featuregroups_version_dict={"teams_features": 1, "attendances_features": 2},
        join_key="team_id", dataframe_type="pyarrow")
    assert got.num_rows == 5
    assert sorted(got.column("average_attendance").to_pylist()) == sorted(_attendance(seed=9).head(5)["average_attendance"])


def test_sql() -> None:
    teams = _teams()
    featurestore.create_featuregroup(teams, "teams_features")
    featurestore.create_featuregroup(_attendance(), "attendances_features")
    got = featurestore.sql("SELECT team_id, team_budget FROM teams_features_1 WHERE team_position <= 5 ORDER BY team_id")
    expected = teams.loc[teams["team_position"] <= 5, ["team_id", "team_budget"]].reset_index(drop=True)
    pd.testing.assert_frame_equal(got, expected)
    # the seed's Hive/Spark dialect: backticks and JOIN ... ON
    joined = featurestore.sql(
        "SELECT `t`.`team_id`, `a`.`average_attendance` FROM `teams_features_1` `t` "
        "JOIN `attendances_features_1` `a` ON `t`.`team_id` = `a`.`team_id`", dataframe_type="pyarrow")
    assert joined.num_rows == 20
    count = featurestore.sql("SELECT count(*) AS n FROM teams_features_1", dataframe_type="python")
    assert count == [[20]]


@pytest.mark.parametrize(
    ("query", "error"),
    [("DROP TABLE teams_features_1", errors.SQLSandboxError),
     ("SELECT * FROM read_csv('/etc/passwd')", errors.SQLSandboxError),
     ("SELECT 1; SELECT 2", errors.SQLSandboxError),
     ("SELECT * FROM missing_1", errors.FeatureGroupNotFoundError),
     ("SELEC nonsense", errors.SQLError),
     ("", errors.SQLError)],
)
def test_sql_refusals(query: str, error: type[Exception]) -> None:
    featurestore.create_featuregroup(_teams(), "teams_features")
    with pytest.raises(error):
        featurestore.sql(query)
    assert featurestore.get_featuregroup("teams_features").shape == (20, 4)


def test_online_reads_of_an_offline_group_are_refused() -> None:
    featurestore.create_featuregroup(_teams(), "teams_features")
    for call in (lambda: featurestore.get_feature("team_budget", online=True),
                 lambda: featurestore.get_features(["team_budget"], online=True),
                 lambda: featurestore.sql("SELECT 1 FROM teams_features_1", online=True)):
        with pytest.raises(errors.InvalidArgumentError, match="not stored online"):
            call()
    assert featurestore.get_featuregroups(online=True) == []
    assert featurestore.get_featuregroups() == ["teams_features_1"]


# ---------------------------------------------------------------- metadata and statistics


def test_metadata_round_trip() -> None:
    featurestore.create_featuregroup(_teams(), "teams")
    featurestore.add_metadata("teams", {"owner": "ana", "pii": "no"})
    assert featurestore.get_metadata("teams") == {"owner": "ana", "pii": "no"}
    assert featurestore.get_metadata("teams", ["pii"]) == {"pii": "no"}
    featurestore.remove_metadata("teams", ["owner"])
    assert featurestore.get_metadata("teams") == {"pii": "no"}


def test_statistics_functions() -> None:
    df = _teams(20)
    featurestore.create_featuregroup(df.iloc[:10], "teams")
    stats = featurestore.get_featuregroup_statistics("teams")
    assert isinstance(stats, cloudsdk.Statistics)
    assert stats.row_count == 10 and stats.commit_version == 0
    assert stats["team_budget"]["mean"] == pytest.approx(df.iloc[:10]["team_budget"].mean())
    featurestore.insert_into_featuregroup(df.iloc[10:], "teams", descriptive_statistics=False)
    assert featurestore.get_featuregroup_statistics("teams").commit_version == 0
    fresh = featurestore.update_featuregroup_stats("teams")
    assert fresh.commit_version == 1 and fresh.row_count == 20
    assert fresh["team_budget"]["stddev"] == pytest.approx(df["team_budget"].std(ddof=1))
    assert featurestore.get_featuregroup_statistics("teams").commit_version == 1
    some = featurestore.update_featuregroup_stats("teams", stat_columns=["team_position"])
    assert set(some.features) == {"team_position"}
    assert some["team_position"]["min"] == 1 and some["team_position"]["max"] == 20


def test_statistics_options_on_create() -> None:
    df = _teams()
    featurestore.create_featuregroup(df, "off", descriptive_statistics=False)
    assert featurestore.get_featuregroup_statistics("off") is None
    featurestore.create_featuregroup(df, "some", stat_columns=["team_budget"])
    stats = featurestore.get_featuregroup_statistics("some")
    assert stats is not None and set(stats.features) == {"team_budget"}


# ---------------------------------------------------------------- training datasets


@pytest.mark.parametrize(("data_format", "ext"), [("parquet", "parquet"), ("csv", "csv"), ("tsv", "tsv")])
def test_training_dataset_files(data_format: str, ext: str) -> None:
    df = _teams()
    featurestore.create_training_dataset(df, "team_position_prediction", data_format=data_format,
                                         description="predict the position")
    got = featurestore.get_training_dataset("team_position_prediction")
    pd.testing.assert_frame_equal(got.sort_values("team_id").reset_index(drop=True), df)
    path = featurestore.get_training_dataset_path("team_position_prediction")
    files = glob(path + "/part-r-*")
    assert files and all(f.endswith("." + ext) for f in files)
    assert sorted(os.listdir(path)) == sorted([*(Path(f).name for f in files), "_SUCCESS"])
    assert Path(path).is_relative_to(_home())
    # plain files that standard tools read without cloudsdk
    if data_format == "parquet":
        plain = pa.concat_tables([pq.read_table(f) for f in files]).to_pandas()
    else:
        plain = pd.concat(pd.read_csv(f, sep="\t" if data_format == "tsv" else ",") for f in files)
    assert sorted(plain["team_id"]) == sorted(df["team_id"])
    assert sorted(plain["team_name"]) == sorted(df["team_name"])
    stats = featurestore.get_training_dataset_statistics("team_position_prediction")
    assert stats.row_count == 20
    assert stats["team_budget"]["mean"] == pytest.approx(df["team_budget"].mean())


def test_training_dataset_versions_and_listing() -> None:
    df = _teams()
    featurestore.create_training_dataset(df, "td", data_format="parquet")
    featurestore.create_training_dataset(df.head(5), "td", data_format="csv", training_dataset_version=2)
    assert featurestore.get_latest_training_dataset_version("td") == 2
    assert featurestore.get_latest_training_dataset_version("none") == 0
    assert sorted(featurestore.get_training_datasets()) == ["td_1", "td_2"]
    assert featurestore.get_training_dataset("td").shape == (20, 4)
    assert featurestore.get_training_dataset("td", training_dataset_version=2).shape == (5, 4)
    assert featurestore.get_training_dataset_path("td") != featurestore.get_training_dataset_path(
        "td", training_dataset_version=2)
    # overwrite (the default write_mode) replaces the files of that version
    featurestore.create_training_dataset(df.head(3), "td", data_format="tsv")
    path = featurestore.get_training_dataset_path("td")
    assert [Path(f).suffix for f in glob(path + "/part-r-*")] == [".tsv"]
    assert featurestore.get_training_dataset("td").shape == (3, 4)
    with pytest.raises(errors.AlreadyExistsError):
        featurestore.create_training_dataset(df, "td", data_format="parquet", write_mode="error")
    assert featurestore.get_training_dataset("td").shape == (3, 4)
    with pytest.raises(errors.TrainingDatasetNotFoundError):
        featurestore.get_training_dataset("td", training_dataset_version=9)


def test_training_dataset_from_get_features(football_groups: dict[str, pd.DataFrame]) -> None:
    features = featurestore.get_features(["team_budget", "average_attendance", "average_player_age",
                                          "team_position"])
    featurestore.create_training_dataset(features, "team_position_prediction", data_format="parquet")
    got = featurestore.get_training_dataset("team_position_prediction", dataframe_type="pyarrow")
    assert got.column_names == ["team_budget", "average_attendance", "average_player_age", "team_position"]
    assert got.num_rows == 60


@pytest.mark.parametrize("data_format", ["tfrecord", "TFRecords", "petastorm", "avro", "orc", "npy", "hdf5"])
def test_training_dataset_every_format_by_name(data_format: str) -> None:
    featurestore.create_training_dataset(_teams(), "td", data_format=data_format)
    pd.testing.assert_frame_equal(featurestore.get_training_dataset("td"), _teams(), check_dtype=False)


def test_training_dataset_default_format_is_the_seeds_tfrecords() -> None:
    """hops defaults to tfrecords: so does the functional API; unknown formats are refused."""
    featurestore.create_training_dataset(_teams(), "td")
    path = Path(featurestore.get_training_dataset_path("td"))
    assert [p.name for p in path.glob("part-r-*")] == ["part-r-00000.tfrecord"]
    with pytest.raises(errors.InvalidArgumentError, match="xlsx"):
        featurestore.create_training_dataset(_teams(), "td2", data_format="xlsx")
    assert featurestore.get_training_datasets() == ["td_1"]


def test_training_dataset_csv_of_arrays_is_refused() -> None:
    df = pd.DataFrame({"id": [1, 2], "emb": [np.zeros(3), np.ones(3)]})
    with pytest.raises(errors.SchemaMismatchError, match="parquet"):
        featurestore.create_training_dataset(df, "td", data_format="csv")
    assert featurestore.get_training_datasets() == []
    base = _home() / "projects" / "default" / "training_datasets"
    assert not base.exists() or list(base.iterdir()) == []


@pytest.mark.parametrize("data_format", ["csv", "tsv"])
def test_training_dataset_csv_keeps_numeric_nulls(data_format: str) -> None:
    table = pa.table({"i": pa.array([1, None, 3], pa.int64()), "f": [1.5, None, 3.0], "b": [True, None, False]})
    featurestore.create_training_dataset(table, "td", data_format=data_format)
    assert featurestore.get_training_dataset("td", dataframe_type="pyarrow").equals(table)


@pytest.mark.parametrize("data_format", ["csv", "tsv"])
def test_training_dataset_csv_keeps_null_strings(data_format: str) -> None:
    table = pa.table({"id": [1, 2, 3], "s": ["x", None, ""]})
    featurestore.create_training_dataset(table, "td", data_format=data_format)
    assert featurestore.get_training_dataset("td", dataframe_type="pyarrow").column("s").to_pylist() == ["x", None, ""]


def test_storage_connectors() -> None:
    connectors = featurestore.get_storage_connectors()
    assert ("default_training_datasets", "managed") in connectors
    assert ("default_featurestore", "offline") in connectors
    featurestore.create_training_dataset(_teams(), "td", data_format="parquet")
    with cloudsdk.connect(path=_home()) as conn:
        by_name = {c["name"]: c for c in conn.get_feature_store().get_storage_connectors()}
    managed = Path(by_name["default_training_datasets"]["path"])
    assert Path(featurestore.get_training_dataset_path("td")).parent == managed
