"""On-demand feature groups and JDBC connectors against the real PostgreSQL (127.0.0.1:5432,
user postgres, database ``test``) and MariaDB (127.0.0.1:3306, root, database ``test``) of
this machine, embedded and remote (a real server process). Without those servers these tests
fail: they are not skipped.

Each test makes its own uniquely named tables and drops them.
"""

from __future__ import annotations

import datetime as dt
import decimal
import importlib
import sqlite3
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest

import cloudsdk
from cloudsdk import featurestore
from cloudsdk.errors import (
    AlreadyExistsError,
    InvalidArgumentError,
    InvalidNameError,
    PermissionDeniedError,
    SchemaMismatchError,
    SQLError,
    SQLSandboxError,
    StorageConnectorNotFoundError,
    StorageError,
)
from cloudsdk.store.ondemand import check_query, parse_url, redact_url

PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres", "dbname": "test"}
MY = {"host": "127.0.0.1", "port": 3306, "user": "root", "password": "", "database": "test"}
SECRET = "s3cr3t-Pa55word"  # PostgreSQL trusts 127.0.0.1 here: it accepts and ignores it


def _rows() -> list[tuple[Any, ...]]:
    base = dt.datetime(2024, 1, 1, 12, 0, 0)
    return [
        (i, ["north", "south", "east"][i % 3], decimal.Decimal(f"{i * 10}.{i % 100:02d}"), i / 4,
         base + dt.timedelta(days=i, microseconds=i))
        for i in range(1, 21)
    ]


@dataclass
class Database:
    """A live database with a fresh table ``table`` holding :func:`_rows`."""

    kind: str  # "postgres" | "mariadb"
    table: str
    execute: Callable[[str], list[tuple[Any, ...]]]
    url: str
    user: str

    def connector(self, fs: cloudsdk.FeatureStore, name: str = "ext", **options: Any) -> dict[str, Any]:
        password = SECRET if self.kind == "postgres" else None
        return fs.create_jdbc_connector(name, self.url, self.user, password, **options)


def _postgres_execute(sql: str) -> list[tuple[Any, ...]]:
    psycopg = importlib.import_module("psycopg")
    with psycopg.connect(**PG, autocommit=True, connect_timeout=5) as conn, conn.cursor() as cur:
        cur.execute(sql)
        return list(cur.fetchall()) if cur.description else []


def _mariadb_execute(sql: str) -> list[tuple[Any, ...]]:
    pymysql = importlib.import_module("pymysql")
    conn = pymysql.connect(**MY, autocommit=True, connect_timeout=5)
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
            return list(cur.fetchall())
    finally:
        conn.close()


def _values(rows: list[tuple[Any, ...]]) -> str:
    return ", ".join(f"({i}, '{r}', {b}, {s}, '{t.isoformat(sep=' ')}')" for i, r, b, s, t in rows)


@pytest.fixture(params=["postgres", "mariadb"])
def db(request: pytest.FixtureRequest) -> Iterator[Database]:
    """A fresh table in the real PostgreSQL or MariaDB (dropped afterwards)."""
    table = f"cloudsdk_od_{uuid.uuid4().hex[:10]}"
    if request.param == "postgres":
        execute = _postgres_execute
        execute(f"CREATE TABLE {table} (customer_id integer PRIMARY KEY, region text, balance numeric(12,2), "
                f"score double precision, signup timestamp)")
        database = Database("postgres", table, execute, "jdbc:postgresql://127.0.0.1:5432/test", "postgres")
    else:
        execute = _mariadb_execute
        execute(f"CREATE TABLE {table} (customer_id INT PRIMARY KEY, region VARCHAR(16), balance DECIMAL(12,2), "
                f"score DOUBLE, signup DATETIME(6))")
        database = Database("mariadb", table, execute, "jdbc:mariadb://127.0.0.1:3306/test", "root")
    execute(f"INSERT INTO {table} VALUES {_values(_rows())}")
    try:
        yield database
    finally:
        execute(f"DROP TABLE IF EXISTS {table}")


def _query(db: Database) -> str:
    return f"SELECT customer_id, region, balance, score, signup FROM {db.table} WHERE score >= 1 ORDER BY customer_id"


def _expected(extra: Sequence[tuple[Any, ...]] = ()) -> list[dict[str, Any]]:
    names = ["customer_id", "region", "balance", "score", "signup"]
    return [dict(zip(names, r, strict=True)) for r in [*_rows(), *extra] if r[3] >= 1]


def _no_secret(*texts: object) -> None:
    for text in texts:
        assert SECRET not in str(text)


# --- connectors -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("url", "dialect", "port", "args"), [
    ("jdbc:postgresql://db.internal/sales?user=etl&password=pw&ssl=true", "postgresql", 5432, {"sslmode": "require"}),
    ("jdbc:mysql://db.internal:3307/sales?characterEncoding=UTF-8", "mysql", 3307, {"charset": "utf8mb4"}),
    ("jdbc:mariadb://db.internal/sales", "mysql", 3306, {}),
    ("postgresql+psycopg://etl:pw@db.internal:6432/sales", "postgresql", 6432, {}),
    ("postgres://db.internal/sales?sslmode=verify-full", "postgresql", 5432, {"sslmode": "verify-full"}),
    ("mysql+pymysql://etl@db.internal/sales", "mysql", 3306, {}),
    ("mariadb://db.internal/sales?charset=utf8mb4", "mysql", 3306, {"charset": "utf8mb4"}),
])
def test_jdbc_and_sqlalchemy_urls_map_to_the_drivers(url: str, dialect: str, port: int, args: dict[str, str]) -> None:
    config, password = parse_url(url, "etl" if "etl" not in url else None)
    assert config["dialect"] == dialect and config["port"] == port and config["database"] == "sales"
    assert config["host"] == "db.internal" and config["user"] == "etl" and config["arguments"] == args
    assert config["url"].startswith("postgresql+psycopg://" if dialect == "postgresql" else "mysql+pymysql://")
    assert password == ("pw" if "pw" in url else None)
    assert "pw" not in repr(config)


@pytest.mark.parametrize(("url", "kwargs", "message"), [
    ("jdbc:oracle:thin:@db:1521/x", {}, "not a supported database URL"),
    ("sqlite:///etc/passwd", {}, "not a supported database URL"),
    ("jdbc:postgresql+psycopg://h/db", {}, "not a supported"),
    ("db.internal:5432/sales", {}, "needs a URL"),
    ("postgresql://h:notaport/db", {}, "cannot parse"),
    ("postgresql://h", {}, "names no database"),
    ("postgresql:///db", {}, "names no host"),
    ("postgresql://u:pw1@h/db", {"password": "pw2"}, "password is given twice"),
    ("postgresql://u@h/db", {"user": "v"}, "user is given twice"),
    ("postgresql://h/db?options=-c%20default_transaction_read_only%3Doff", {}, "'options' is not accepted"),
    ("mysql://h/db", {"arguments": {"init_command": "SET @x=1"}}, "'init_command' is not accepted"),
    ("mysql://h/db", {"arguments": {"read_default_file": "/etc/my.cnf"}}, "not accepted"),
])
def test_bad_urls_are_refused_without_showing_the_password(url: str, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidArgumentError, match=message) as info:
        parse_url(url, **kwargs)
    assert "pw1" not in str(info.value) and "pw2" not in str(info.value)


def test_redact_url() -> None:
    assert redact_url("postgresql://u:p%40ss@h/db") == "postgresql://u:***@h/db"
    assert redact_url("jdbc:mysql://h/db?user=u&password=hunter2&x=1") == "jdbc:mysql://h/db?user=u&password=***&x=1"


def test_jdbc_connector_password_is_sealed_and_masked(conn: cloudsdk.Connection, tmp_path: Path) -> None:
    fs = conn.get_feature_store()
    made = fs.create_jdbc_connector("pg", f"jdbc:postgresql://127.0.0.1:5432/test?user=postgres&password={SECRET}",
                                    description="warehouse", arguments={"sslmode": "disable"}, query_timeout_s=60)
    assert made["type"] == "jdbc" and made["password"] == "********" and made["user"] == "postgres"
    assert made["url"] == "postgresql+psycopg://postgres@127.0.0.1:5432/test?sslmode=disable"
    assert made["query_timeout_s"] == 60 and made["credentials"] == "password"
    listed = {c["name"]: c for c in fs.get_storage_connectors()}
    assert listed["pg"]["password"] == "********"
    assert ("pg", "jdbc") in [(c["name"], c["type"]) for c in fs.get_storage_connectors()]
    _no_secret(made, listed, fs.get_storage_connector("pg"))
    raw = sqlite3.connect(tmp_path / "store" / "catalog.db")
    try:
        dump = "\n".join(raw.iterdump())
    finally:
        raw.close()
    assert "connector_secrets" in dump
    _no_secret(dump)
    assert conn._backend.get_storage_connector("default", "pg", with_secrets=True)["password"] == SECRET
    with pytest.raises(AlreadyExistsError):
        fs.create_jdbc_connector("pg", "jdbc:postgresql://127.0.0.1:5432/test")
    assert fs.create_jdbc_connector("pg", "jdbc:postgresql://other/x", exist_ok=True)["host"] == "127.0.0.1"
    with pytest.raises(InvalidArgumentError, match="query_timeout_s"):
        fs.create_jdbc_connector("pg2", "jdbc:postgresql://127.0.0.1/test", query_timeout_s=0)
    nopw = fs.create_jdbc_connector("pg_trust", "postgresql://postgres@127.0.0.1/test")
    assert nopw["password"] is None and nopw["credentials"].startswith("no password")
    with pytest.raises(InvalidArgumentError, match="training datasets go to"):
        fs.create_training_dataset("td", pd.DataFrame({"a": [1]}), data_format="parquet", sink="pg")


def test_only_data_owners_get_the_password(remote_store: Any, tmp_path: Path) -> None:
    from cloudsdk.store import FeatureStoreService
    from cloudsdk.store.security import SecurityService

    tag = uuid.uuid4().hex[:8]
    project, owner, scientist = f"p{tag}", f"own{tag}", f"sci{tag}"
    service = FeatureStoreService(remote_store.data_dir)
    try:
        security = SecurityService(service.catalog)
        service.create_project(project)
        keys = {}
        for user, role in ((owner, "data_owner"), (scientist, "data_scientist")):
            security.create_user(user)
            security.add_member(project, user, role)
            keys[user] = security.create_api_key(user, "tests", ["featurestore", "project"])[0]
    finally:
        service.close()
    with remote_store.connect(tmp_path / "o", project, keys[owner]) as c:
        fs = c.get_feature_store()
        fs.create_jdbc_connector("pg", "jdbc:postgresql://127.0.0.1:5432/test", "postgres", SECRET)
        fs.create_on_demand_feature_group("nums", "SELECT 1 AS id, 2.5::float8 AS x", "pg")
        assert c._backend.get_storage_connector(project, "pg", with_secrets=True)["password"] == SECRET
    with remote_store.connect(tmp_path / "s", project, keys[scientist]) as c:
        fs = c.get_feature_store()
        assert fs.get_storage_connector("pg")["password"] == "********"
        with pytest.raises(PermissionDeniedError, match="only given to data owners") as info:
            c._backend.get_storage_connector(project, "pg", with_secrets=True)
        _no_secret(info.value)
        with pytest.raises(PermissionDeniedError):
            fs.create_jdbc_connector("pg2", "jdbc:postgresql://127.0.0.1:5432/test")
        with pytest.raises(PermissionDeniedError):
            fs.create_on_demand_feature_group("more", "SELECT 1 AS id", "pg")
        # scientists read on-demand groups: the server runs the query with the sealed password
        assert fs.get_feature_group("nums").read("pyarrow").to_pylist() == [{"id": 1, "x": 2.5}]


# --- on-demand feature groups -----------------------------------------------------------------------


def test_on_demand_group_reads_the_external_table(fs: cloudsdk.FeatureStore, db: Database) -> None:
    db.connector(fs)
    fg = fs.create_on_demand_feature_group("customers", _query(db), "ext", description="live balances",
                                           primary_key="customer_id")
    assert fg.on_demand and fg.connector == "ext" and fg.version == 1 and str(fg.query).startswith("SELECT customer_id")
    assert [(f.name, f.type, f.primary) for f in fg.features] == [
        ("customer_id", "int", True), ("region", "string", False), ("balance", "decimal(12,2)", False),
        ("score", "double", False), ("signup", "timestamp", False)]
    assert fg.read("pyarrow").to_pylist() == _expected()
    # the query runs at every read: a new row in the database shows at once
    new = (99, "west", decimal.Decimal("5.50"), 2.0, dt.datetime(2024, 6, 1, 8, 30))
    db.execute(f"INSERT INTO {db.table} VALUES {_values([new])}")
    assert fs.get_feature_group("customers", 1).read("pyarrow").to_pylist() == _expected([new])
    # listings
    listed = [g for g in fs.get_feature_groups() if g.name == "customers"]
    assert len(listed) == 1 and listed[0].on_demand and listed[0].description == "live balances"
    # queries of the object API and SQL
    north = fg.select(["customer_id", "balance"]).filter(fg.region == "north").read("pyarrow")
    assert north.column("customer_id").to_pylist() == [r["customer_id"] for r in _expected([new])
                                                        if r["region"] == "north"]
    by_region = fs.sql("SELECT region, count(*) AS n FROM customers_1 GROUP BY region ORDER BY region",
                       dataframe_type="pyarrow")
    counts: dict[str, int] = {}
    for r in _expected([new]):
        counts[r["region"]] = counts.get(r["region"], 0) + 1
    assert dict(zip(by_region["region"].to_pylist(), by_region["n"].to_pylist(), strict=True)) == counts
    assert counts["west"] == 1 and sum(counts.values()) == 18
    assert fg.read("pyarrow", ).schema.field("balance").type == pa.decimal128(12, 2)
    assert fg.commit_details() == []
    stats = fg.compute_statistics()
    assert stats.row_count == 18 and stats["score"]["max"] == 5.0 and stats.commit_version is None
    assert fg.statistics() is not None and fg.statistics().row_count == 18  # type: ignore[union-attr]
    with pytest.raises(InvalidArgumentError, match=r"on-demand feature group 'customers'.*JDBC connector 'ext'"):
        fg.insert(pd.DataFrame({"customer_id": [1]}))


def test_get_features_joins_on_demand_with_cached_groups(fs: cloudsdk.FeatureStore, db: Database) -> None:
    db.connector(fs)
    fs.create_on_demand_feature_group("balances", _query(db), "ext")
    profile = pd.DataFrame({"customer_id": [1, 2, 5, 7, 42], "segment": ["a", "b", "a", "c", "z"]})
    fs.create_feature_group("profile", data=profile, primary_key=["customer_id"])
    joined = fs.get_features(["segment", "balance", "profile.customer_id"], dataframe_type="pyarrow")
    got = sorted(zip(joined["customer_id"].to_pylist(), joined["segment"].to_pylist(),
                     joined["balance"].to_pylist(), strict=True))
    balance = {r["customer_id"]: r["balance"] for r in _expected()}
    assert got == [(c, s, balance[c]) for c, s in zip(profile.customer_id, profile.segment, strict=True)
                   if c in balance]
    sql = fs.sql("SELECT p.segment, sum(b.score) AS s FROM profile_1 p JOIN balances_1 b "
                 "ON p.customer_id = b.customer_id GROUP BY p.segment ORDER BY p.segment", dataframe_type="pyarrow")
    score = {r["customer_id"]: r["score"] for r in _expected()}
    assert sql.to_pylist() == [{"segment": "a", "s": score[5]}, {"segment": "c", "s": score[7]}]
    # a training dataset from such a query records the on-demand group without a commit
    td = fs.create_training_dataset("td_join", fs.get_feature_group("profile").select_all().join(
        fs.get_feature_group("balances").select(["customer_id", "score"]), on=["customer_id"]),
        data_format="parquet")
    groups = {g["name"]: g["commit"] for g in td.provenance["feature_groups"]}
    assert groups["balances"] is None and groups["profile"] is not None
    assert sorted(td.read()["customer_id"].tolist()) == [5, 7]


def test_functional_api_creates_and_reads_on_demand_groups(db: Database) -> None:
    password = SECRET if db.kind == "postgres" else None
    featurestore.create_jdbc_connector("warehouse", db.url, db.user, password, description="dwh")
    assert ("warehouse", "jdbc") in featurestore.get_storage_connectors()
    featurestore.create_on_demand_featuregroup(_query(db), "customers", "warehouse", description="live")
    featurestore.create_on_demand_featuregroup(f"SELECT region, count(*) AS n FROM {db.table} GROUP BY region",
                                               "regions", "warehouse", featuregroup_version=2)
    assert featurestore.get_featuregroups() == ["customers_1", "regions_2"]
    assert featurestore.get_featuregroup_features_list("customers") == [
        "customer_id", "region", "balance", "score", "signup"]
    got = featurestore.get_featuregroup("customers", dataframe_type="pyarrow")
    assert got.to_pylist() == _expected()
    regions = featurestore.get_featuregroup("regions", featuregroup_version=2)
    assert sorted(regions["region"]) == ["east", "north", "south"] and regions["n"].sum() == 20
    assert featurestore.get_features(["region", "score"], featuregroups_version_dict={"customers": 1}).shape == (17, 2)
    assert featurestore.sql("SELECT max(customer_id) AS m FROM customers_1")["m"].tolist() == [20]


def test_schema_change_in_the_database_is_reported(fs: cloudsdk.FeatureStore, db: Database) -> None:
    db.connector(fs)
    fg = fs.create_on_demand_feature_group("everything", f"SELECT * FROM {db.table}", "ext")
    assert len(fg.read("pyarrow")) == 20
    db.execute(f"ALTER TABLE {db.table} ADD COLUMN extra INTEGER")
    with pytest.raises(SchemaMismatchError, match=r"now returns the columns.*extra.*create a new version"):
        fg.read()
    fs.create_on_demand_feature_group("everything", f"SELECT * FROM {db.table}", "ext")
    assert fs.get_feature_group("everything").version == 2
    assert fs.get_feature_group("everything").features[-1].name == "extra"
    db.execute(f"UPDATE {db.table} SET region = NULL WHERE customer_id = 1")
    db.execute(f"ALTER TABLE {db.table} DROP COLUMN extra")
    db.execute(f"ALTER TABLE {db.table} ADD COLUMN extra TEXT")
    db.execute(f"UPDATE {db.table} SET extra = 'not a number'")
    with pytest.raises(SchemaMismatchError, match=r"'extra'.*no longer fits"):
        fs.get_feature_group("everything", 2).read()


def test_deleting_groups_and_connectors(fs: cloudsdk.FeatureStore, db: Database) -> None:
    db.connector(fs)
    fg = fs.create_on_demand_feature_group("customers", _query(db), "ext")
    with pytest.raises(InvalidArgumentError, match="read by 1 on-demand feature group"):
        fs.delete_storage_connector("ext")
    fg.delete()
    assert fs.get_feature_groups() == []
    assert db.execute(f"SELECT count(*) FROM {db.table}")[0][0] == 20  # the external data stays
    fs.delete_storage_connector("ext")
    with pytest.raises(StorageConnectorNotFoundError):
        fs.create_on_demand_feature_group("customers", _query(db), "ext")


# --- bad input and failures ---------------------------------------------------------------------------


BAD_QUERIES: list[tuple[str, type[Exception], str]] = [
    ("DELETE FROM {t}", SQLSandboxError, "must be a SELECT, not DELETE"),
    ("SELECT 1 AS a; DROP TABLE {t}", SQLSandboxError, "exactly one SELECT"),
    ("SELECT * FROM {t} FOR UPDATE", SQLSandboxError, "LOCK is not allowed"),
    ("CREATE TABLE x AS SELECT * FROM {t}", SQLSandboxError, "must be a SELECT"),
    ("SELEC * FROM {t}", SQLError, "cannot parse the query"),
    ("", InvalidArgumentError, "needs a SQL query"),
    ("SELECT * FROM {t}_missing", SQLError, "failed on JDBC connector 'ext'"),
    ("SELECT no_such_column FROM {t}", SQLError, "failed on JDBC connector 'ext'"),
    ("SELECT customer_id AS {q}Bad Name{q} FROM {t}", InvalidNameError, "alias it in the query"),
]


def test_bad_queries_are_refused_and_register_nothing(fs: cloudsdk.FeatureStore, db: Database) -> None:
    db.connector(fs)
    for query, error, message in BAD_QUERIES:
        text = query.format(t=db.table, q='"' if db.kind == "postgres" else "`")
        with pytest.raises(error, match=message) as info:
            fs.create_on_demand_feature_group("bad", text, "ext")
        _no_secret(info.value)
    assert fs.get_feature_groups() == []
    assert db.execute(f"SELECT count(*) FROM {db.table}")[0][0] == 20


def test_unreachable_database_and_wrong_credentials(fs: cloudsdk.FeatureStore) -> None:
    fs.create_jdbc_connector("down", "jdbc:postgresql://127.0.0.1:1/test", "postgres", SECRET)
    with pytest.raises(StorageError, match="cannot connect to the database of JDBC connector 'down'") as info:
        fs.create_on_demand_feature_group("x", "SELECT 1 AS a", "down")
    _no_secret(info.value)
    fs.create_jdbc_connector("down_my", f"mysql://root:{SECRET}@127.0.0.1:1/test")
    with pytest.raises(StorageError, match="JDBC connector 'down_my'") as info:
        fs.create_on_demand_feature_group("x", "SELECT 1 AS a", "down_my")
    _no_secret(info.value)
    fs.create_jdbc_connector("wrong", "jdbc:mariadb://127.0.0.1:3306/test", "root", SECRET)
    with pytest.raises(PermissionDeniedError, match="refused the credentials of user 'root'") as denied:
        fs.create_on_demand_feature_group("x", "SELECT 1 AS a", "wrong")
    _no_secret(denied.value)
    fs.create_jdbc_connector("nobody", "jdbc:postgresql://127.0.0.1:5432/test", f"nobody_{uuid.uuid4().hex[:6]}",
                             SECRET)
    with pytest.raises(PermissionDeniedError, match="JDBC connector 'nobody'"):
        fs.create_on_demand_feature_group("x", "SELECT 1 AS a", "nobody")
    fs.create_jdbc_connector("nodb", "jdbc:postgresql://127.0.0.1:5432/no_such_db_here", "postgres")
    with pytest.raises(StorageError, match="no_such_db_here"):
        fs.create_on_demand_feature_group("x", "SELECT 1 AS a", "nodb")
    with pytest.raises(StorageConnectorNotFoundError):
        fs.create_on_demand_feature_group("x", "SELECT 1 AS a", "missing")
    with pytest.raises(InvalidArgumentError, match="not a JDBC connector"):
        fs.create_on_demand_feature_group("x", "SELECT 1 AS a", f"{fs.project}_featurestore")
    fs.create_s3_connector("bucket", "some-bucket")
    with pytest.raises(InvalidArgumentError, match="needs a JDBC connector"):
        fs.create_on_demand_feature_group("x", "SELECT 1 AS a", "bucket")
    assert fs.get_feature_groups() == []


def test_a_database_that_goes_away_after_creation(fs: cloudsdk.FeatureStore, db: Database) -> None:
    db.connector(fs)
    fg = fs.create_on_demand_feature_group("customers", _query(db), "ext")
    db.execute(f"DROP TABLE {db.table}")
    with pytest.raises(SQLError, match="on-demand feature group 'customers' version 1 failed on JDBC connector"):
        fg.read()
    with pytest.raises(SQLError):
        fs.sql("SELECT count(*) FROM customers_1")


def test_queries_run_read_only_with_a_statement_timeout(fs: cloudsdk.FeatureStore, db: Database) -> None:
    db.connector(fs, query_timeout_s=1)
    if db.kind == "postgres":
        seq = f"{db.table}_seq"
        db.execute(f"CREATE SEQUENCE {seq}")
        try:
            ro = fs.create_on_demand_feature_group("ro", "SELECT current_setting('transaction_read_only') AS ro, "
                                                         "current_setting('statement_timeout') AS t", "ext")
            assert ro.read("pyarrow").to_pylist() == [{"ro": "on", "t": "1s"}]
            writes = fs.create_on_demand_feature_group("writes", f"SELECT nextval('{seq}') AS n", "ext")
            with pytest.raises(SQLSandboxError, match="read-only transaction"):
                writes.read()
            assert db.execute(f"SELECT last_value, is_called FROM {seq}")[0] == (1, False)
        finally:
            db.execute(f"DROP SEQUENCE IF EXISTS {seq}")
        slow = "SELECT 1 AS id, pg_sleep(3)::text AS slept"
    else:
        fn = f"{db.table}_fn"
        db.execute(f"CREATE FUNCTION {fn}() RETURNS INT MODIFIES SQL DATA "
                   f"BEGIN DELETE FROM {db.table}; RETURN 1; END")
        try:
            ro = fs.create_on_demand_feature_group("ro", "SELECT @@tx_read_only AS ro, @@max_statement_time AS t",
                                                   "ext")
            assert ro.read("pyarrow").to_pylist() == [{"ro": 1, "t": 1.0}]
            # MariaDB evaluates the function while it describes the query: refused at creation already
            with pytest.raises(SQLSandboxError, match="read-only transaction"):
                fs.create_on_demand_feature_group("writes", f"SELECT {fn}() AS n FROM {db.table}", "ext")
            assert db.execute(f"SELECT count(*) FROM {db.table}")[0][0] == 20
        finally:
            db.execute(f"DROP FUNCTION IF EXISTS {fn}")
        slow = f"SELECT customer_id AS id, SLEEP(3) AS slept FROM {db.table} LIMIT 1"  # a table: LIMIT 0 skips it
    fg = fs.create_on_demand_feature_group("slow", slow, "ext")
    with pytest.raises(SQLError, match="statement timeout of 1 s"):
        fg.read()


def test_types_of_the_external_columns(fs: cloudsdk.FeatureStore) -> None:
    fs.create_jdbc_connector("pg", "jdbc:postgresql://127.0.0.1:5432/test", "postgres")
    pg = fs.create_on_demand_feature_group("pg_types", (
        "SELECT 1::int2 AS i2, 2::int4 AS i4, 3::int8 AS i8, 1.5::float4 AS f4, 2.5::float8 AS f8, "
        "1.25::numeric(6,3) AS dec, 7.5::numeric AS num, true AS b, 'x'::varchar(3) AS s, '\\x0102'::bytea AS bin, "
        "DATE '2024-02-03' AS d, TIMESTAMP '2024-02-03 04:05:06.789' AS ts, "
        "TIMESTAMPTZ '2024-02-03 04:05:06+00' AS tstz, ARRAY[1.5, 2.5]::float8[] AS arr, "
        "'{\"k\": 1}'::jsonb AS js, TIME '10:11:12' AS tm, 'a%b' AS pct"), "pg")
    table = pg.read("pyarrow")
    assert [f.type for f in pg.features] == [
        "smallint", "int", "bigint", "float", "double", "decimal(6,3)", "double", "boolean", "string", "binary",
        "date", "timestamp", "timestamp", "array<double>", "string", "string", "string"]
    row = table.to_pylist()[0]
    assert row["i2"] == 1 and row["num"] == 7.5 and row["dec"] == decimal.Decimal("1.250") and row["b"] is True
    assert row["bin"] == b"\x01\x02" and row["d"] == dt.date(2024, 2, 3) and row["arr"] == [1.5, 2.5]
    assert row["ts"] == dt.datetime(2024, 2, 3, 4, 5, 6, 789000) and row["tstz"].utcoffset() == dt.timedelta(0)
    assert row["js"] == '{"k": 1}' and row["tm"] == "10:11:12" and row["pct"] == "a%b"
    fs.create_jdbc_connector("my", "mysql+pymysql://root@127.0.0.1:3306/test")
    my = fs.create_on_demand_feature_group("my_types", (
        "SELECT CAST(1 AS SIGNED) AS i, CAST(2 AS UNSIGNED) AS u, 1.5e0 AS f, CAST(3.25 AS DECIMAL(8,2)) AS dc, "
        "'x' AS s, x'0102' AS bin, DATE '2024-02-03' AS d, TIMESTAMP '2024-02-03 04:05:06' AS ts, "
        "JSON_OBJECT('k', 1) AS js, TIME '10:11:12' AS tm, 'a%b' AS pct"), "my")
    assert [f.type for f in my.features] == [
        "int", "bigint", "double", "decimal(8,2)", "string", "binary", "date", "timestamp", "string", "string",
        "string"]
    row = my.read("pyarrow").to_pylist()[0]
    assert row["i"] == 1 and row["u"] == 2 and row["dc"] == decimal.Decimal("3.25") and row["bin"] == b"\x01\x02"
    assert row["ts"] == dt.datetime(2024, 2, 3, 4, 5, 6) and row["js"] == '{"k": 1}' and row["tm"] == "10:11:12"
    assert row["pct"] == "a%b"


def test_check_query_unit() -> None:
    assert check_query("  SELECT 1 AS a ;; ", "postgresql", "g") == "SELECT 1 AS a"
    assert check_query("WITH x AS (SELECT 1 AS a) SELECT a FROM x UNION ALL SELECT 2", "mysql", "g").startswith("WITH")
    with pytest.raises(SQLSandboxError, match="DELETE"):
        check_query("WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d", "postgresql", "g")
    with pytest.raises(SQLSandboxError, match="executable comments"):
        check_query("SELECT 1 /*! , 2 */", "mysql", "g")
    with pytest.raises(SQLSandboxError):
        check_query("SELECT 1 INTO @x", "mysql", "g")
