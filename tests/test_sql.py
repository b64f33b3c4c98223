"""sql(): read-only SELECTs over ``<name>_<version>`` tables, and the sandbox around them.

Results are compared with independent pandas computations on the demo frames. The
sandbox cases check that every escape is refused with a clear SQLSandboxError (or an
SQLError where noted) and that nothing was written anywhere under the test's directory.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import sqlglot

import cloudsdk
from cloudsdk.errors import (
    FeatureGroupNotFoundError,
    InvalidArgumentError,
    SQLError,
    SQLSandboxError,
)
from cloudsdk.store import sql as sqlbox

KEY = "team_id"

# The seed manual's "SQL API" query (Hive/Spark: backticks, JOIN a JOIN b JOIN c ON ... AND ...),
# verbatim apart from the surrounding spark.sql(“ ... ”).
SEED_JOIN = """
    SELECT team_budget, average_position, sum_player_rating,
    average_attendance, average_player_worth, sum_player_worth,
    sum_position, sum_attendance, average_player_rating,
    team_position, sum_player_age, average_player_age
    FROM teams_features_1
    JOIN season_scores_features_1
    JOIN players_features_1
    JOIN attendances_features_1
    ON teams_features_1.`team_id`=season_scores_features_1.`team_id`
    AND teams_features_1.`team_id`=players_features_1.`team_id`
    AND teams_features_1.`team_id`=attendances_features_1.`team_id`
"""
SEED_COLUMNS = [
    "team_budget", "average_position", "sum_player_rating", "average_attendance",
    "average_player_worth", "sum_player_worth", "sum_position", "sum_attendance",
    "average_player_rating", "team_position", "sum_player_age", "average_player_age",
]


# --- helpers ---------------------------------------------------------------------------------


def _sorted(df: pd.DataFrame, by: list[str] | None = None) -> pd.DataFrame:
    """Rows in a canonical order (by ``by``, default every column), index reset."""
    return df.sort_values(by or list(df.columns), kind="stable").reset_index(drop=True)


def _assert_same_rows(got: pd.DataFrame, expected: pd.DataFrame, by: list[str] | None = None) -> None:
    """Same columns in the same order, and the same rows in any order."""
    assert list(got.columns) == list(expected.columns)
    pd.testing.assert_frame_equal(_sorted(got, by), _sorted(expected, by), check_dtype=False)


def _merge_all(football: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """The four demo frames inner-merged on team_id (the pandas reference)."""
    frames = list(football.values())
    out = frames[0]
    for df in frames[1:]:
        out = out.merge(df, on=KEY, how="inner")
    return out


def _tree(root: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``root`` with its size and modification time."""
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def shared_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The directory of the module's shared store."""
    return tmp_path_factory.mktemp("sql_store")


@pytest.fixture(scope="module")
def shared(shared_root: Path, football: dict[str, pd.DataFrame]) -> Iterator[cloudsdk.FeatureStore]:
    """One store with the four football groups, shared by the read-only tests of this module."""
    conn = cloudsdk.connect(path=shared_root)
    fs = conn.get_feature_store()
    for name, df in football.items():
        fs.create_feature_group(name, data=df, primary_key=[KEY], statistics=False)
    yield fs
    conn.close()


# --- results equal pandas --------------------------------------------------------------------


def test_select_star_is_the_group(shared: cloudsdk.FeatureStore, football: dict[str, pd.DataFrame]) -> None:
    got = shared.sql("SELECT * FROM teams_features_1")
    _assert_same_rows(got, football["teams_features"], [KEY])
    assert got[KEY].dtype == np.int64
    assert got["team_position"].dtype == np.int64
    assert got["team_budget"].dtype == np.float64


def test_filter_matches_pandas(shared: cloudsdk.FeatureStore, football: dict[str, pd.DataFrame]) -> None:
    teams = football["teams_features"]
    budget = float(teams["team_budget"].median())
    got = shared.sql(
        "SELECT team_id, team_budget, team_position FROM teams_features_1 "
        f"WHERE team_budget > {budget!r} AND team_position <= 10"
    )
    expected = teams[(teams["team_budget"] > budget) & (teams["team_position"] <= 10)]
    assert 0 < len(expected) < len(teams)  # the filter keeps some rows and drops others
    _assert_same_rows(got, expected[["team_id", "team_budget", "team_position"]], [KEY])


def test_string_literal_and_in_list(shared: cloudsdk.FeatureStore, football: dict[str, pd.DataFrame]) -> None:
    teams = football["teams_features"]
    ids = [int(i) for i in teams[KEY].iloc[[0, 5, 7]]]
    got = shared.sql(
        f"SELECT team_id, 'it''s' AS note FROM teams_features_1 WHERE team_id IN ({', '.join(map(str, ids))})"
    )
    assert sorted(got[KEY].tolist()) == sorted(ids)
    assert set(got["note"]) == {"it's"}


def test_aggregates_match_pandas(shared: cloudsdk.FeatureStore, football: dict[str, pd.DataFrame]) -> None:
    got = shared.sql(
        "SELECT team_position, count(*) AS n, avg(team_budget) AS mean_budget, "
        "max(team_budget) AS max_budget, sum(team_budget) AS total_budget "
        "FROM teams_features_1 GROUP BY team_position ORDER BY team_position"
    )
    grouped = football["teams_features"].groupby("team_position")["team_budget"]
    expected = pd.DataFrame({
        "team_position": grouped.size().index.to_numpy(),
        "n": grouped.size().to_numpy(),
        "mean_budget": grouped.mean().to_numpy(),
        "max_budget": grouped.max().to_numpy(),
        "total_budget": grouped.sum().to_numpy(),
    })
    assert list(got.columns) == list(expected.columns)
    assert got["team_position"].tolist() == expected["team_position"].tolist()  # ORDER BY honoured
    assert got["n"].tolist() == expected["n"].tolist()
    for col in ("mean_budget", "max_budget", "total_budget"):
        np.testing.assert_allclose(got[col].to_numpy(), expected[col].to_numpy(), rtol=1e-12)


def test_global_aggregate(shared: cloudsdk.FeatureStore, football: dict[str, pd.DataFrame]) -> None:
    got = shared.sql("SELECT count(*) AS n, min(average_attendance) AS lo, "
                     "max(average_attendance) AS hi FROM attendances_features_1")
    att = football["attendances_features"]["average_attendance"]
    assert got.to_dict("records") == [{"n": len(att), "lo": att.min(), "hi": att.max()}]


def test_two_way_join_matches_pandas(shared: cloudsdk.FeatureStore, football: dict[str, pd.DataFrame]) -> None:
    att = football["attendances_features"]
    cut = float(att["average_attendance"].quantile(0.4))
    got = shared.sql(
        "SELECT t.team_id, t.team_budget, a.average_attendance "
        "FROM teams_features_1 AS t JOIN attendances_features_1 AS a ON t.team_id = a.team_id "
        f"WHERE a.average_attendance > {cut!r}"
    )
    expected = football["teams_features"].merge(att, on=KEY)
    expected = expected[expected["average_attendance"] > cut][["team_id", "team_budget", "average_attendance"]]
    assert 0 < len(expected) < len(att)
    _assert_same_rows(got, expected, [KEY])


def test_left_join_keeps_unmatched_rows(shared: cloudsdk.FeatureStore,
                                        football: dict[str, pd.DataFrame]) -> None:
    att = football["attendances_features"]
    cut = float(att["average_attendance"].median())
    got = shared.sql(
        "SELECT t.team_id, t.team_position, a.average_attendance FROM teams_features_1 AS t "
        "LEFT JOIN (SELECT * FROM attendances_features_1 "
        f"WHERE average_attendance > {cut!r}) AS a ON t.team_id = a.team_id"
    )
    expected = football["teams_features"].merge(att[att["average_attendance"] > cut], on=KEY, how="left")
    expected = expected[["team_id", "team_position", "average_attendance"]]
    assert expected["average_attendance"].isna().any()
    assert len(got) == len(football["teams_features"])
    _assert_same_rows(got, expected, [KEY])


def test_join_with_aggregate_and_cte(shared: cloudsdk.FeatureStore, football: dict[str, pd.DataFrame]) -> None:
    got = shared.sql(
        "WITH joined AS (SELECT t.team_position, p.average_player_age FROM teams_features_1 t "
        "JOIN players_features_1 p ON t.team_id = p.team_id) "
        "SELECT team_position, avg(average_player_age) AS age FROM joined GROUP BY team_position"
    )
    merged = football["teams_features"].merge(football["players_features"], on=KEY)
    expected = merged.groupby("team_position", as_index=False)["average_player_age"].mean()
    expected = expected.rename(columns={"average_player_age": "age"})
    got = _sorted(got, ["team_position"])
    assert got["team_position"].tolist() == expected["team_position"].tolist()
    np.testing.assert_allclose(got["age"].to_numpy(), expected["age"].to_numpy(), rtol=1e-12)


@pytest.mark.parametrize("dialect", ["auto", "hive", "spark"])
def test_seed_four_way_join(shared: cloudsdk.FeatureStore, football: dict[str, pd.DataFrame],
                            dialect: str) -> None:
    got = shared.sql(SEED_JOIN, dialect=dialect)
    expected = _merge_all(football)[SEED_COLUMNS]
    assert len(got) == len(football["teams_features"]) == len(expected)
    _assert_same_rows(got, expected)


def test_seed_join_needs_hive_not_duckdb(shared: cloudsdk.FeatureStore) -> None:
    """Backtick quoting is Hive/Spark: forcing dialect='duckdb' is a parse error, not a sandbox refusal."""
    with pytest.raises(SQLError, match="parse") as info:
        shared.sql(SEED_JOIN, dialect="duckdb")
    assert not isinstance(info.value, SQLSandboxError)


def test_hive_backticked_table_names(shared: cloudsdk.FeatureStore, football: dict[str, pd.DataFrame]) -> None:
    got = shared.sql("SELECT `t`.`team_id`, `p`.`sum_player_worth` FROM `teams_features_1` `t` "
                     "JOIN `players_features_1` `p` ON `t`.`team_id` = `p`.`team_id`")
    expected = football["teams_features"].merge(football["players_features"], on=KEY)
    _assert_same_rows(got, expected[["team_id", "sum_player_worth"]], [KEY])


def test_explicit_duckdb_dialect(shared: cloudsdk.FeatureStore, football: dict[str, pd.DataFrame]) -> None:
    got = shared.sql('SELECT "team_id", "sum_position" FROM "season_scores_features_1"', dialect="duckdb")
    _assert_same_rows(got, football["season_scores_features"][["team_id", "sum_position"]], [KEY])


def test_unknown_dialect(shared: cloudsdk.FeatureStore) -> None:
    with pytest.raises(SQLError, match="dialect"):
        shared.sql("SELECT 1", dialect="mysql")


@pytest.mark.parametrize("query", ["", "   ", "SELEC team_id FROM teams_features_1 WHERE"],
                         ids=["empty", "blank", "garbage"])
def test_bad_queries_are_sql_errors(shared: cloudsdk.FeatureStore, query: str) -> None:
    with pytest.raises(SQLError):
        shared.sql(query)


def test_runtime_error_is_sql_error(shared: cloudsdk.FeatureStore) -> None:
    with pytest.raises(SQLError, match="no_such_column") as info:
        shared.sql("SELECT no_such_column FROM teams_features_1")
    assert not isinstance(info.value, SQLSandboxError)


# --- dataframe types ---------------------------------------------------------------------------


def test_dataframe_types(shared: cloudsdk.FeatureStore, football: dict[str, pd.DataFrame]) -> None:
    query = "SELECT team_id, team_budget FROM teams_features_1 ORDER BY team_id"
    expected = _sorted(football["teams_features"][["team_id", "team_budget"]], [KEY])
    rows = [[int(a), float(b)] for a, b in expected.itertuples(index=False)]

    frame = shared.sql(query, dataframe_type="pandas")
    assert isinstance(frame, pd.DataFrame)
    pd.testing.assert_frame_equal(frame, expected, check_dtype=False)

    table = shared.sql(query, dataframe_type="pyarrow")
    assert isinstance(table, pa.Table)
    assert table.column_names == ["team_id", "team_budget"]
    assert table.column("team_id").type == pa.int64()
    assert [list(r.values()) for r in table.to_pylist()] == rows

    array = shared.sql(query, dataframe_type="numpy")
    assert isinstance(array, np.ndarray)
    assert array.shape == (len(expected), 2)
    np.testing.assert_array_equal(array, expected.to_numpy())

    python = shared.sql(query, dataframe_type="python")
    assert python == rows

    pl = pytest.importorskip("polars")
    polars_frame = shared.sql(query, dataframe_type="polars")
    assert isinstance(polars_frame, pl.DataFrame)
    assert polars_frame.columns == ["team_id", "team_budget"]
    assert polars_frame.rows() == [tuple(r) for r in rows]


def test_functional_api_sql(shared: cloudsdk.FeatureStore, shared_root: Path,
                            football: dict[str, pd.DataFrame]) -> None:
    """featurestore.sql() is the same sandboxed sql() over the module's connection."""
    from cloudsdk import featurestore

    featurestore.connect(path=shared_root)
    got = featurestore.sql(SEED_JOIN)
    _assert_same_rows(got, _merge_all(football)[SEED_COLUMNS])
    with pytest.raises(SQLSandboxError):
        featurestore.sql("SELECT * FROM read_csv('/etc/passwd')")


def test_unknown_dataframe_type(shared: cloudsdk.FeatureStore) -> None:
    with pytest.raises(InvalidArgumentError, match="dataframe_type"):
        shared.sql("SELECT 1 AS x", dataframe_type="excel")


# --- table names and versions -----------------------------------------------------------------


@pytest.mark.parametrize(
    "table", ["no_such_group_1", "teams_features_2", "teams_features_11", "attendances_1"],
)
def test_unknown_table(shared: cloudsdk.FeatureStore, table: str) -> None:
    with pytest.raises(FeatureGroupNotFoundError, match=table):
        shared.sql(f"SELECT * FROM {table}")


def test_versions_are_separate_tables(fs: cloudsdk.FeatureStore, football: dict[str, pd.DataFrame]) -> None:
    teams = football["teams_features"]
    fs.create_feature_group("teams_features", data=teams, primary_key=[KEY], statistics=False)
    v2 = teams.assign(team_budget=teams["team_budget"] * 2).iloc[:10]
    fs.create_feature_group("teams_features", version=2, data=v2, primary_key=[KEY], statistics=False)
    _assert_same_rows(fs.sql("SELECT * FROM teams_features_1"), teams, [KEY])
    _assert_same_rows(fs.sql("SELECT * FROM teams_features_2"), v2, [KEY])
    got = fs.sql("SELECT a.team_id, a.team_budget AS b1, b.team_budget AS b2 FROM teams_features_1 a "
                 "JOIN teams_features_2 b ON a.team_id = b.team_id")
    assert len(got) == 10
    np.testing.assert_allclose(got["b2"].to_numpy(), 2 * got["b1"].to_numpy())
    # the bare name reads the latest version
    _assert_same_rows(fs.sql("SELECT * FROM teams_features"), v2, [KEY])


def test_sql_sees_inserted_rows(fs: cloudsdk.FeatureStore) -> None:
    df = pd.DataFrame({"id": np.arange(5, dtype=np.int64), "x": np.arange(5, dtype=np.float64)})
    fg = fs.create_feature_group("growing", data=df, primary_key="id", statistics=False)
    assert fs.sql("SELECT count(*) AS n FROM growing_1")["n"].tolist() == [5]
    fg.insert(pd.DataFrame({"id": np.arange(5, 8, dtype=np.int64), "x": [9.0, 9.0, 9.0]}))
    got = fs.sql("SELECT count(*) AS n, sum(x) AS s FROM growing_1")
    assert got.to_dict("records") == [{"n": 8, "s": float(sum(range(5)) + 27)}]


# --- the sandbox --------------------------------------------------------------------------------

# (id, query, expected exception, fragment its message must contain). "{out}" is a directory
# under the test's tmp_path that must still be empty afterwards.
ESCAPES: list[tuple[str, str, type[Exception], str]] = [
    ("read_csv", "SELECT * FROM read_csv('/etc/passwd')", SQLSandboxError, "read_csv"),
    ("read_csv_auto", "SELECT * FROM read_csv_auto('/etc/passwd')", SQLSandboxError, "read_csv_auto"),
    ("read_text", "SELECT * FROM read_text('/etc/passwd')", SQLSandboxError, "read_text"),
    ("read_blob", "SELECT * FROM read_blob('/etc/passwd')", SQLSandboxError, "read_blob"),
    ("read_parquet", "SELECT * FROM read_parquet('{out}/x.parquet')", SQLSandboxError, "read_parquet"),
    ("read_json", "SELECT * FROM read_json('/etc/passwd')", SQLSandboxError, "read_json"),
    ("read_csv_in_select", "SELECT (SELECT count(*) FROM read_csv('/etc/passwd')) AS n",
     SQLSandboxError, "read_csv"),
    ("glob", "SELECT * FROM glob('/*')", SQLSandboxError, "glob"),
    ("sniff_csv", "SELECT * FROM sniff_csv('/etc/passwd')", SQLSandboxError, "sniff_csv"),
    ("file_path_string", "SELECT * FROM '/etc/passwd'", SQLSandboxError, "file paths are not allowed"),
    ("file_path_identifier", 'SELECT * FROM "/etc/passwd"', SQLSandboxError, "file paths are not allowed"),
    ("file_path_from_first", "FROM '/etc/passwd'", SQLSandboxError, "file paths are not allowed"),
    ("copy_to", "COPY teams_features_1 TO '{out}/copy.csv'", SQLSandboxError, "read-only"),
    ("copy_query_to", "COPY (SELECT * FROM teams_features_1) TO '{out}/copy.parquet' (FORMAT parquet)",
     SQLSandboxError, "read-only"),
    # sqlglot cannot parse EXPORT DATABASE: refused as a (non-sandbox) SQLError before DuckDB sees it
    ("export_database", "EXPORT DATABASE '{out}/export'", SQLError, "parse"),
    ("attach", "ATTACH '{out}/x.db' AS x", SQLSandboxError, "read-only"),
    ("detach", "DETACH x", SQLSandboxError, "read-only"),
    ("install", "INSTALL httpfs", SQLSandboxError, "read-only"),
    ("load", "LOAD httpfs", SQLSandboxError, "read-only"),
    ("pragma", "PRAGMA database_list", SQLSandboxError, "read-only"),
    ("pragma_function", "SELECT * FROM pragma_database_list()", SQLSandboxError, "table functions"),
    ("call", "CALL pragma_version()", SQLSandboxError, "read-only"),
    ("set_external_access", "SET enable_external_access=true", SQLSandboxError, "read-only"),
    ("set_lock", "SET lock_configuration = false", SQLSandboxError, "read-only"),
    ("reset", "RESET enable_external_access", SQLSandboxError, "read-only"),
    ("create_table", "CREATE TABLE t AS SELECT 1 AS x", SQLSandboxError, "read-only"),
    ("create_macro", "CREATE MACRO m(a) AS a", SQLSandboxError, "read-only"),
    ("create_view", "CREATE VIEW v AS SELECT * FROM teams_features_1", SQLSandboxError, "read-only"),
    ("insert", "INSERT INTO teams_features_1 VALUES (1, 2.0, 3)", SQLSandboxError, "read-only"),
    ("update", "UPDATE teams_features_1 SET team_budget = 0", SQLSandboxError, "read-only"),
    ("delete", "DELETE FROM teams_features_1", SQLSandboxError, "read-only"),
    ("drop", "DROP TABLE teams_features_1", SQLSandboxError, "read-only"),
    ("two_statements", "select 1; select 2", SQLSandboxError, "exactly one statement"),
    ("select_then_copy", "SELECT 1; COPY teams_features_1 TO '{out}/c.csv'", SQLSandboxError,
     "exactly one statement"),
    ("schema_qualified", "SELECT * FROM main.teams_features_1", SQLSandboxError, "schema"),
    ("catalog_qualified", "SELECT * FROM memory.main.teams_features_1", SQLSandboxError, "schema"),
    ("information_schema", "SELECT * FROM information_schema.tables", SQLSandboxError, "schema"),
    ("duckdb_settings", "SELECT * FROM duckdb_settings()", SQLSandboxError, "duckdb_settings"),
    ("duckdb_tables", "SELECT * FROM duckdb_tables()", SQLSandboxError, "table functions"),
    ("getenv", "SELECT getenv('HOME') AS home", SQLSandboxError, "getenv"),
    ("getenv_in_lambda", "SELECT list_transform([1], x -> getenv('HOME')) AS h", SQLSandboxError, "getenv"),
    ("subquery", "SELECT * FROM (SELECT * FROM read_csv('/etc/passwd')) AS s", SQLSandboxError, "read_csv"),
    ("in_subquery", "SELECT * FROM teams_features_1 WHERE team_id IN "
     "(SELECT 1 FROM read_text('/etc/passwd'))", SQLSandboxError, "read_text"),
    ("cte", "WITH x AS (SELECT * FROM read_csv('/etc/passwd')) SELECT * FROM x", SQLSandboxError, "read_csv"),
    ("cte_named_like_group", "WITH teams_features_1 AS (SELECT * FROM read_text('/etc/passwd')) "
     "SELECT * FROM teams_features_1", SQLSandboxError, "read_text"),
    ("union", "SELECT CAST(team_id AS VARCHAR) AS c FROM teams_features_1 UNION ALL "
     "SELECT content FROM read_text('/etc/passwd')", SQLSandboxError, "read_text"),
    ("union_file_path", "SELECT 1 AS x UNION SELECT * FROM '/etc/passwd'", SQLSandboxError,
     "file paths are not allowed"),
    ("comma_join", "SELECT * FROM teams_features_1 t, read_csv('/etc/passwd')", SQLSandboxError, "read_csv"),
    ("upper_case", "SELECT * FROM READ_CSV('/etc/passwd')", SQLSandboxError, "read_csv"),
    ("mixed_case", "select * from Read_Csv('/etc/passwd')", SQLSandboxError, "read_csv"),
    ("upper_glob", "SELECT * FROM GLOB('/*')", SQLSandboxError, "glob"),
    ("upper_read_text", "SELECT * FROM READ_TEXT('/etc/passwd')", SQLSandboxError, "read_text"),
    ("http_url_table", "SELECT * FROM 'http://example.com/x.csv'", SQLSandboxError, "file paths are not allowed"),
    ("https_url_function", "SELECT * FROM read_csv('https://example.com/x.csv')", SQLSandboxError, "read_csv"),
    ("s3_url_table", "SELECT * FROM 's3://bucket/x.parquet'", SQLSandboxError, "file paths are not allowed"),
    ("query_function", "SELECT * FROM query('SELECT 1')", SQLSandboxError, "query"),
    ("spark_file_table", "SELECT * FROM parquet.`/etc/passwd`", SQLSandboxError, "schema"),
    ("spark_csv_table", "SELECT * FROM csv.`/etc/passwd`", SQLSandboxError, "schema"),
    ("hive_insert_directory", "INSERT OVERWRITE DIRECTORY '{out}/d' SELECT 1", SQLSandboxError, "read-only"),
    ("hive_load_data", "LOAD DATA INPATH '/etc/passwd' INTO TABLE teams_features_1", SQLSandboxError,
     "read-only"),
]


@pytest.mark.parametrize(("query", "error", "fragment"), [e[1:] for e in ESCAPES], ids=[e[0] for e in ESCAPES])
def test_sandbox_refuses(shared: cloudsdk.FeatureStore, shared_root: Path, tmp_path: Path,
                         query: str, error: type[Exception], fragment: str) -> None:
    out = tmp_path / "out"
    out.mkdir()
    before = (_tree(tmp_path), _tree(shared_root))
    with pytest.raises(error) as info:
        shared.sql(query.replace("{out}", str(out)))
    assert fragment.lower() in str(info.value).lower(), str(info.value)
    assert str(info.value).startswith(("sql()", "cannot parse")), str(info.value)
    assert list(out.iterdir()) == []
    # nothing written or touched, neither under the test directory nor in the store
    assert (_tree(tmp_path), _tree(shared_root)) == before


@pytest.mark.parametrize("dialect", ["hive", "spark"])
@pytest.mark.parametrize(
    "query",
    [
        "SELECT * FROM read_csv('/etc/passwd')",
        "SELECT * FROM parquet.`/etc/passwd`",
        "SELECT * FROM `/etc/passwd`",
        "INSERT OVERWRITE DIRECTORY '/tmp/cloudsdk-escape' SELECT 1",
        "ADD JAR /tmp/x.jar",
        "SET spark.sql.x=1",
        "SELECT * FROM default.teams_features_1",
        "SELECT 1; SELECT 2",
    ],
    ids=["read_csv", "parquet_path", "backtick_path", "insert_directory", "add_jar", "set", "db_qualified",
         "two_statements"],
)
def test_sandbox_in_hive_dialects(shared: cloudsdk.FeatureStore, query: str, dialect: str) -> None:
    with pytest.raises(SQLSandboxError):
        shared.sql(query, dialect=dialect)
    assert not Path("/tmp/cloudsdk-escape").exists()


def test_sandbox_error_is_a_cloudsdk_error() -> None:
    assert issubclass(SQLSandboxError, SQLError)
    assert issubclass(SQLSandboxError, cloudsdk.errors.CloudSDKError)


def _permissive_parse(query: str, dialect: str = "auto") -> tuple[Any, set[str]]:
    """A stand-in for the sqlglot gate that lets everything through (reads no tables)."""
    return sqlglot.parse_one(query, read="duckdb"), set()


@pytest.mark.parametrize(
    ("query", "error"),
    [
        ("SELECT * FROM read_csv('/etc/passwd')", SQLSandboxError),
        ("SELECT * FROM read_text('/etc/passwd')", SQLSandboxError),
        ("SELECT * FROM glob('/*')", SQLSandboxError),
        ("SELECT * FROM read_parquet('{out}/x.parquet')", SQLSandboxError),
        ("SELECT * FROM 'http://example.com/x.csv'", SQLSandboxError),
        ("COPY (SELECT 42 AS x) TO '{out}/copy.csv'", SQLSandboxError),
        ("ATTACH '{out}/x.db' AS x", SQLSandboxError),
        ("LOAD httpfs", SQLSandboxError),
        ("INSTALL httpfs", SQLSandboxError),
        # the configuration is locked: SET fails (DuckDB says InvalidInput, so a plain SQLError)
        ("SET enable_external_access = true", SQLError),
    ],
    ids=["read_csv", "read_text", "glob", "read_parquet", "http_url", "copy", "attach", "load", "install", "set"],
)
def test_duckdb_locks_hold_without_the_parser_gate(fs: cloudsdk.FeatureStore, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch,
                                                   query: str, error: type[Exception]) -> None:
    """Defence in depth: even if the sqlglot gate let a statement through, DuckDB's own
    locks (enable_external_access=false, lock_configuration=true) refuse it."""
    monkeypatch.setattr(sqlbox, "parse", _permissive_parse)
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(error):
        fs.sql(query.replace("{out}", str(out)))
    assert list(out.iterdir()) == []


@pytest.mark.local_only
def test_permissive_parse_really_bypasses_the_gate(fs: cloudsdk.FeatureStore,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Control for the test above: with the stand-in, a harmless statement the gate refuses runs."""
    with pytest.raises(SQLSandboxError):
        fs.sql("SELECT * FROM range(3)")
    monkeypatch.setattr(sqlbox, "parse", _permissive_parse)
    assert fs.sql("SELECT * FROM range(3)").shape == (3, 1)


def test_another_projects_tables_are_invisible(conn: cloudsdk.Connection, fs: cloudsdk.FeatureStore) -> None:
    conn.create_project("other")
    other_conn = cloudsdk.connect(path=conn.path, project="other")
    other = other_conn.get_feature_store()
    secret = pd.DataFrame({"id": np.arange(3, dtype=np.int64), "secret": ["a", "b", "c"]})
    other.create_feature_group("secret_features", data=secret, primary_key="id", statistics=False)
    # the other project reads its own table (control)
    assert sorted(other.sql("SELECT secret FROM secret_features_1")["secret"]) == ["a", "b", "c"]

    for query in ("SELECT * FROM secret_features_1", "SELECT * FROM secret_features",
                  "SELECT d.id FROM (SELECT 1 AS id) d JOIN secret_features_1 s ON d.id = s.id"):
        with pytest.raises(FeatureGroupNotFoundError, match="secret_features"):
            fs.sql(query)
    for query in ("SELECT * FROM other.secret_features_1",
                  "SELECT * FROM other_featurestore.secret_features_1",
                  "SELECT * FROM `other_featurestore`.`secret_features_1`"):
        with pytest.raises(SQLSandboxError, match="schema"):
            fs.sql(query)

    # a group of the same name in the default project is a different table
    mine = pd.DataFrame({"id": np.arange(2, dtype=np.int64), "secret": ["x", "y"]})
    fs.create_feature_group("secret_features", data=mine, primary_key="id", statistics=False)
    assert sorted(fs.sql("SELECT secret FROM secret_features_1")["secret"]) == ["x", "y"]
    assert sorted(other.sql("SELECT secret FROM secret_features_1")["secret"]) == ["a", "b", "c"]
    other_conn.close()


def test_sql_does_not_modify_the_store(shared: cloudsdk.FeatureStore, shared_root: Path,
                                       football: dict[str, pd.DataFrame]) -> None:
    before = _tree(shared_root)
    shared.sql(SEED_JOIN)
    shared.sql("SELECT count(*) FROM teams_features_1")
    assert _tree(shared_root) == before
    _assert_same_rows(shared.sql("SELECT * FROM teams_features_1"), football["teams_features"], [KEY])
