"""Conformance tests of the online-store backends (SQLite, Redis, MariaDB/MySQL).

They run against the real servers on this machine — Redis on 127.0.0.1:6379 and MariaDB on
127.0.0.1:3306 (user root, empty password, database ``test``) — and fail, never skip, when
those are absent. Each test uses its own Redis key prefix and its own table names, and
removes them afterwards.
"""

from __future__ import annotations

import datetime as dt
import math
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pymysql
import pytest
import redis

from cloudsdk.errors import (
    DataValidationError,
    FeatureNotFoundError,
    InvalidArgumentError,
    InvalidNameError,
    NotFoundError,
    SchemaMismatchError,
    StorageError,
    UnsupportedError,
)
from cloudsdk.store.online import FOUND_COLUMN, OnlineStore, open_online_store
from cloudsdk.store.online.redis import RedisOnlineStore

REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
MYSQL_URL = "mysql://root:@127.0.0.1:3306/test"
BACKENDS = ["sqlite", "redis", "mysql"]


@dataclass
class Env:
    """A backend under test: its URL, an open store, and a table-name factory."""

    backend: str
    url: str
    store: OnlineStore
    table: Callable[[], str]


@pytest.fixture(params=BACKENDS)
def env(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Env]:
    backend = request.param
    tag = uuid.uuid4().hex[:10]
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'online.db'}"
    elif backend == "redis":
        url = f"redis://{REDIS_HOST}:{REDIS_PORT}/0?prefix=cloudsdk_test_{tag}:"
    else:
        url = MYSQL_URL
    store = open_online_store(url)
    names: list[str] = []

    def table() -> str:
        names.append(f"t_{tag}_{len(names)}")
        return names[-1]

    yield Env(backend, url, store, table)
    for name in names:
        store.drop_table(name, missing_ok=True)
    store.close()
    if backend == "redis":
        client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT)
        leftover = list(client.scan_iter(match=f"cloudsdk_test_{tag}:*"))
        if leftover:
            client.delete(*leftover)
        client.close()
        assert not leftover, f"drop_table left keys behind: {leftover[:5]}"


ALL_TYPES = pa.schema(
    [
        pa.field("id", pa.int64(), nullable=False),
        ("i8", pa.int8()),
        ("i16", pa.int16()),
        ("i32", pa.int32()),
        ("u8", pa.uint8()),
        ("u32", pa.uint32()),
        ("f32", pa.float32()),
        ("f64", pa.float64()),
        ("flag", pa.bool_()),
        ("s", pa.string()),
        ("ls", pa.large_string()),
        ("b", pa.binary()),
        ("ts", pa.timestamp("us", tz="UTC")),
        ("ts_ns", pa.timestamp("ns")),
        ("d", pa.date32()),
        ("d64", pa.date64()),
        ("t", pa.time64("us")),
        ("dur", pa.duration("ms")),
        ("emb", pa.list_(pa.float32())),
        ("ids", pa.list_(pa.int64())),
        ("tags", pa.list_(pa.string())),
        ("rgb", pa.list_(pa.uint8(), 3)),
        ("img", pa.list_(pa.list_(pa.int32(), 2), 2)),
        ("ll", pa.large_list(pa.float64())),
    ]
)


def all_types_rows() -> pa.Table:
    utc = dt.UTC
    rows = {
        "id": [1, 2, 3],
        "i8": [-128, 127, None],
        "i16": [-32768, 7, None],
        "i32": [-(2**31), 2**31 - 1, None],
        "u8": [0, 255, None],
        "u32": [0, 2**32 - 1, None],
        "f32": [1.2345678, -3.4e38, None],
        "f64": [0.1 + 0.2, 1e-300, None],
        "flag": [True, False, None],
        "s": ["héllo 🙂", "", None],
        "ls": ["x" * 1000, "a'b\"c\\d", None],
        "b": [b"\x00\xff\x01", b"", None],
        "ts": [
            dt.datetime(2024, 2, 29, 12, 30, 45, 123456, tzinfo=utc),
            dt.datetime(1969, 7, 20, tzinfo=utc),
            None,
        ],
        "ts_ns": [1_700_000_000_123_456_789, -1, None],
        "d": [dt.date(2024, 2, 29), dt.date(1900, 1, 1), None],
        "d64": [dt.date(2030, 12, 31), dt.date(1970, 1, 1), None],
        "t": [dt.time(23, 59, 59, 999999), dt.time(0, 0), None],
        "dur": [dt.timedelta(milliseconds=-1500), dt.timedelta(days=3), None],
        "emb": [[0.5, float("nan"), -1.25], [], None],
        "ids": [[2**62, -1], [None, 3], None],
        "tags": [["a", "b,c", "ü"], [], None],
        "rgb": [[1, 2, 255], [0, 0, 0], None],
        "img": [[[1, 2], [3, 4]], [[-5, 6], [7, 8]], None],
        "ll": [[1e308, -0.0], [None], None],
    }
    return pa.table(rows, schema=ALL_TYPES)


def same_values(a: pa.Table, b: pa.Table) -> None:
    """Tables equal, NaN equal to NaN (inside lists too)."""
    assert a.schema == b.schema, (a.schema, b.schema)

    def norm(v: object) -> object:
        if isinstance(v, float) and math.isnan(v):
            return "NaN"
        if isinstance(v, list):
            return [norm(x) for x in v]
        if isinstance(v, dict):
            return {k: norm(x) for k, x in v.items()}
        return v

    assert norm(a.to_pylist()) == norm(b.to_pylist())


SIMPLE = pa.schema(
    [pa.field("id", pa.int64(), nullable=False), ("x", pa.float64()), ("s", pa.string())]
)


def simple_table(env: Env, rows: int = 3) -> str:
    name = env.table()
    env.store.create_table(name, SIMPLE, ["id"])
    env.store.upsert(
        name,
        pa.table(
            {
                "id": list(range(1, rows + 1)),
                "x": [i * 1.5 for i in range(1, rows + 1)],
                "s": [f"v{i}" for i in range(1, rows + 1)],
            },
            schema=SIMPLE,
        ),
    )
    return name


# ---------------------------------------------------------------------- round trips
def test_round_trip_every_type(env: Env) -> None:
    name = env.table()
    env.store.create_table(name, ALL_TYPES, ["id"])
    data = all_types_rows()
    assert env.store.upsert(name, data) == 3
    same_values(env.store.scan(name).sort_by("id"), data)
    got = env.store.get(name, pa.table({"id": [3, 1, 2]}))
    assert got.column(FOUND_COLUMN).to_pylist() == [True, True, True]
    expected = data.take([2, 0, 1])
    same_values(
        got.drop_columns([FOUND_COLUMN]), expected.cast(got.drop_columns([FOUND_COLUMN]).schema)
    )
    assert [f.type for f in got.schema][:-1] == list(ALL_TYPES.types)


def test_schema_persists_across_reopen(env: Env) -> None:
    name = env.table()
    env.store.create_table(name, ALL_TYPES, ["id"])
    env.store.upsert(name, all_types_rows())
    other = open_online_store(env.url)
    try:
        assert other.has_table(name)
        same_values(other.scan(name).sort_by("id"), all_types_rows())
        other.create_table(name, ALL_TYPES, ["id"])  # idempotent from another handle too
    finally:
        other.close()


# ---------------------------------------------------------------------- writes
def test_upsert_latest_wins(env: Env) -> None:
    name = simple_table(env)
    batch = pa.table(
        {"id": [2, 4, 2, 4], "x": [10.0, 40.0, 20.0, None], "s": ["a", "b", "c", None]},
        schema=SIMPLE,
    )
    assert env.store.upsert(name, batch) == 2  # distinct keys written
    got = env.store.scan(name).sort_by("id").to_pylist()
    assert got == [
        {"id": 1, "x": 1.5, "s": "v1"},
        {"id": 2, "x": 20.0, "s": "c"},
        {"id": 3, "x": 4.5, "s": "v3"},
        {"id": 4, "x": None, "s": None},  # the later row replaces the whole row, nulls included
    ]
    env.store.upsert(name, pa.table({"id": [1], "x": [None], "s": ["new"]}, schema=SIMPLE))
    assert env.store.get(name, pa.table({"id": [1]})).to_pylist() == [
        {"id": 1, "x": None, "s": "new", FOUND_COLUMN: True}
    ]
    assert env.store.count(name) == 4
    assert env.store.upsert(name, SIMPLE.empty_table()) == 0


def test_upsert_casts_compatible_types(env: Env) -> None:
    name = simple_table(env, 0)
    rows = pa.table(
        {
            "s": pa.array(["z"], pa.large_string()),
            "x": pa.array([7], pa.int32()),
            "id": pa.array([9], pa.int16()),
        }
    )
    assert env.store.upsert(name, rows) == 1
    assert env.store.scan(name).to_pylist() == [{"id": 9, "x": 7.0, "s": "z"}]


def test_delete(env: Env) -> None:
    name = simple_table(env, 5)
    assert env.store.delete(name, pa.table({"id": [2, 4, 99, 2]})) == 2
    assert env.store.count(name) == 3
    assert env.store.get(name, pa.table({"id": [2, 3]})).column(FOUND_COLUMN).to_pylist() == [
        False,
        True,
    ]
    assert env.store.delete(name, pa.table({"id": pa.array([], pa.int64())})) == 0
    assert sorted(env.store.scan(name, ["id"]).column("id").to_pylist()) == [1, 3, 5]


def test_atomic_upsert_on_validation_failure(env: Env) -> None:
    name = env.table()
    schema = pa.schema([pa.field("id", pa.int64(), nullable=False), ("small", pa.int8())])
    env.store.create_table(name, schema, ["id"])
    env.store.upsert(name, pa.table({"id": [1, 2], "small": [1, 2]}, schema=schema))
    before = env.store.scan(name).sort_by("id")
    # A value that does not fit int8 in the middle of the batch: nothing is written.
    bad = pa.table({"id": [1, 3, 4], "small": pa.array([10, 300, 40], pa.int64())})
    with pytest.raises(SchemaMismatchError, match="small"):
        env.store.upsert(name, bad)
    # A null key in the middle of the batch.
    with pytest.raises(DataValidationError, match="null primary key"):
        env.store.upsert(name, pa.table({"id": [1, None, 5], "small": [9, 9, 9]}, schema=schema))
    assert env.store.scan(name).sort_by("id").equals(before)
    assert env.store.count(name) == 2


@pytest.mark.parametrize("env", ["sqlite", "mysql"], indirect=True)
def test_atomic_upsert_when_the_backend_fails_mid_batch(env: Env) -> None:
    """The database itself rejects a row in the middle of a batch: the rows before it roll back.

    (Redis has no typed columns to provoke a per-row failure with; its batch is one MULTI/EXEC
    of commands validated beforehand.)
    """
    name = env.table()
    schema = pa.schema([pa.field("k", pa.string(), nullable=False), ("v", pa.int64())])
    env.store.create_table(name, schema, ["k"])
    env.store.upsert(name, pa.table({"k": ["a"], "v": [1]}, schema=schema))
    if env.backend == "sqlite":
        path = env.store.connection_info()["path"]
        con = sqlite3.connect(path)
        con.execute(
            f"CREATE TRIGGER boom BEFORE INSERT ON \"{name}\" WHEN NEW.k = 'bad' "
            "BEGIN SELECT RAISE(ABORT, 'boom'); END"
        )
        con.commit()
        con.close()
        bad_key = "bad"
    else:
        bad_key = "x" * 300  # longer than the VARCHAR(255) key column: strict mode refuses it
    rows = pa.table({"k": ["a", "b", bad_key, "c"], "v": [10, 20, 30, 40]}, schema=schema)
    with pytest.raises(StorageError):
        env.store.upsert(name, rows)
    assert env.store.scan(name).to_pylist() == [{"k": "a", "v": 1}]


# ---------------------------------------------------------------------- reads
def test_get_order_missing_and_columns(env: Env) -> None:
    name = simple_table(env, 3)
    got = env.store.get(name, pa.table({"id": [3, 1, 99, 2, 1]}))
    assert got.column_names == ["id", "x", "s", FOUND_COLUMN]
    assert got.to_pylist() == [
        {"id": 3, "x": 4.5, "s": "v3", FOUND_COLUMN: True},
        {"id": 1, "x": 1.5, "s": "v1", FOUND_COLUMN: True},
        {"id": 99, "x": None, "s": None, FOUND_COLUMN: False},
        {"id": 2, "x": 3.0, "s": "v2", FOUND_COLUMN: True},
        {"id": 1, "x": 1.5, "s": "v1", FOUND_COLUMN: True},
    ]
    sub = env.store.get(name, pa.table({"id": [2, 98]}), columns=["s", "x"])
    assert sub.to_pylist() == [
        {"s": "v2", "x": 3.0, FOUND_COLUMN: True},
        {"s": None, "x": None, FOUND_COLUMN: False},
    ]
    only_key = env.store.get(name, pa.table({"id": [1, 7]}), columns=["id"])
    assert only_key.to_pylist() == [{"id": 1, FOUND_COLUMN: True}, {"id": 7, FOUND_COLUMN: False}]
    single_missing = env.store.get(name, pa.table({"id": [1000]}))
    assert single_missing.column(FOUND_COLUMN).to_pylist() == [False]
    empty = env.store.get(name, pa.table({"id": pa.array([], pa.int64())}))
    assert empty.num_rows == 0 and empty.column_names == ["id", "x", "s", FOUND_COLUMN]
    nullkey = env.store.get(name, pa.table({"id": pa.array([None, 1], pa.int64())}))
    assert nullkey.column(FOUND_COLUMN).to_pylist() == [False, True]


def test_batched_get_beyond_one_chunk(env: Env) -> None:
    name = simple_table(env, 1200)
    ids = list(range(1300, 0, -1))
    got = env.store.get(name, pa.table({"id": ids}), columns=["x"])
    assert got.column(FOUND_COLUMN).to_pylist() == [i <= 1200 for i in ids]
    assert got.column("x").to_pylist() == [i * 1.5 if i <= 1200 else None for i in ids]


def test_multi_column_keys(env: Env) -> None:
    name = env.table()
    schema = pa.schema(
        [
            pa.field("a", pa.string(), nullable=False),
            pa.field("b", pa.string(), nullable=False),
            pa.field("day", pa.date32(), nullable=False),
            ("v", pa.int64()),
        ]
    )
    env.store.create_table(name, schema, ["a", "b", "day"])
    d1, d2 = dt.date(2024, 1, 1), dt.date(2024, 1, 2)
    # Keys that a naive "join with a comma" encoding or a case/pad-insensitive collation merges.
    rows = pa.table(
        {
            "a": ["x,y", "x", "A", "a", "a ", "a"],
            "b": ["z", "y,z", "k", "k", "k", "k"],
            "day": [d1, d1, d1, d1, d1, d2],
            "v": [1, 2, 3, 4, 5, 6],
        },
        schema=schema,
    )
    assert env.store.upsert(name, rows) == 6
    assert env.store.count(name) == 6
    keys = pa.table(
        {
            "day": [d2, d1, d1, d1, d1, d1, d1],
            "b": ["k", "k", "k", "k", "y,z", "z", "q"],
            "a": ["a", "a ", "a", "A", "x", "x,y", "x"],
        }
    )
    got = env.store.get(name, keys, columns=["v"])
    assert got.column("v").to_pylist() == [6, 5, 4, 3, 2, 1, None]
    assert env.store.delete(name, pa.table({"a": ["a"], "b": ["k"], "day": [d1]})) == 1
    assert sorted(env.store.scan(name, ["v"]).column("v").to_pylist()) == [1, 2, 3, 5, 6]


def test_scan_and_count(env: Env) -> None:
    name = simple_table(env, 4)
    assert env.store.count(name) == 4
    scanned = env.store.scan(name, ["s", "id"])
    assert scanned.column_names == ["s", "id"]
    assert sorted(scanned.to_pylist(), key=lambda r: r["id"]) == [
        {"s": f"v{i}", "id": i} for i in range(1, 5)
    ]
    empty = env.table()
    env.store.create_table(empty, SIMPLE, ["id"])
    assert env.store.count(empty) == 0
    assert env.store.scan(empty).schema == SIMPLE and env.store.scan(empty).num_rows == 0


def test_drop_and_recreate(env: Env) -> None:
    name = simple_table(env, 3)
    env.store.drop_table(name)
    assert not env.store.has_table(name)
    with pytest.raises(NotFoundError):
        env.store.count(name)
    with pytest.raises(NotFoundError):
        env.store.drop_table(name)
    env.store.drop_table(name, missing_ok=True)
    env.store.create_table(name, SIMPLE, ["id"])
    assert env.store.count(name) == 0


# ---------------------------------------------------------------------- bad input
def test_bad_input_errors(env: Env) -> None:
    name = simple_table(env, 2)
    s = env.store
    for call in (
        lambda: s.get("nope", pa.table({"id": [1]})),
        lambda: s.upsert("nope", pa.table({"id": [1]})),
        lambda: s.delete("nope", pa.table({"id": [1]})),
        lambda: s.scan("nope"),
        lambda: s.count("nope"),
    ):
        with pytest.raises(NotFoundError, match="nope"):
            call()
    with pytest.raises(SchemaMismatchError, match="missing column 'id'"):
        s.get(name, pa.table({"x": [1.0]}))
    with pytest.raises(SchemaMismatchError, match="unexpected column 'x'"):
        s.get(name, pa.table({"id": [1], "x": [1.0]}))
    with pytest.raises(SchemaMismatchError, match="expected int64, got string"):
        s.get(name, pa.table({"id": ["1"]}))
    with pytest.raises(SchemaMismatchError, match="expected int64, got double"):
        s.delete(name, pa.table({"id": [1.0]}))
    with pytest.raises(FeatureNotFoundError, match="nope"):
        s.get(name, pa.table({"id": [1]}), columns=["x", "nope"])
    with pytest.raises(FeatureNotFoundError):
        s.scan(name, ["nope"])
    with pytest.raises(SchemaMismatchError, match="missing column 's'"):
        s.upsert(name, pa.table({"id": [5], "x": [1.0]}))
    with pytest.raises(SchemaMismatchError, match="column 'x': expected double, got string"):
        s.upsert(name, pa.table({"id": [5], "x": ["1.0"], "s": ["a"]}))
    with pytest.raises(InvalidArgumentError, match=r"pyarrow\.Table"):
        s.upsert(name, {"id": [5]})
    with pytest.raises(InvalidNameError):
        s.create_table("bad-name; DROP TABLE x", SIMPLE, ["id"])
    with pytest.raises(InvalidNameError):
        s.get("x` OR 1=1", pa.table({"id": [1]}))
    with pytest.raises(InvalidNameError):
        s.create_table(env.table(), pa.schema([("id", pa.int64()), ("a b", pa.int64())]), ["id"])
    with pytest.raises(InvalidNameError, match="reserved"):
        s.create_table(
            env.table(), pa.schema([("id", pa.int64()), (FOUND_COLUMN, pa.bool_())]), ["id"]
        )
    with pytest.raises(SchemaMismatchError, match="another schema"):
        s.create_table(name, pa.schema([("id", pa.int64()), ("x", pa.float32())]), ["id"])
    with pytest.raises(SchemaMismatchError, match="another schema"):
        s.create_table(name, SIMPLE, ["s"])
    s.create_table(name, SIMPLE, ["id"])  # same schema: a no-op
    assert s.count(name) == 2
    with pytest.raises(InvalidArgumentError, match="primary key"):
        s.create_table(env.table(), SIMPLE, [])
    with pytest.raises(InvalidArgumentError, match="not in the schema"):
        s.create_table(env.table(), SIMPLE, ["nope"])
    with pytest.raises(InvalidArgumentError, match="keys must be"):
        s.create_table(env.table(), SIMPLE, ["x"])
    with pytest.raises(UnsupportedError, match="decimal"):
        s.create_table(
            env.table(), pa.schema([("id", pa.int64()), ("m", pa.decimal128(10, 2))]), ["id"]
        )
    with pytest.raises(UnsupportedError):
        s.create_table(
            env.table(),
            pa.schema([("id", pa.int64()), ("m", pa.struct([("a", pa.int8())]))]),
            ["id"],
        )
    assert s.count(name) == 2 and not s.has_table("nope")


def test_open_online_store_bad_urls() -> None:
    with pytest.raises(InvalidArgumentError, match="scheme"):
        open_online_store("postgres://u:p@h/db")
    with pytest.raises(InvalidArgumentError):
        open_online_store("mysql://root:@127.0.0.1:3306")
    with pytest.raises(StorageError):
        open_online_store("mysql://root:@127.0.0.1:3306/no_such_database_cloudsdk")
    with pytest.raises(StorageError):
        open_online_store("redis://127.0.0.1:1/0")


# ---------------------------------------------------------------------- connection info
def test_connection_info_without_password(env: Env) -> None:
    info = env.store.connection_info()
    assert info["backend"] == env.backend
    assert "password" not in info
    if env.backend == "sqlite":
        assert info["path"].endswith("online.db") and info["url"].startswith("sqlite:///")
    elif env.backend == "redis":
        assert info["url"] == f"redis://{REDIS_HOST}:{REDIS_PORT}/0" and info["prefix"].startswith(
            "cloudsdk_test_"
        )
    else:
        assert info["jdbc_url"] == "jdbc:mysql://127.0.0.1:3306/test" and info["user"] == "root"
        assert info["url"] == "mysql://root@127.0.0.1:3306/test"


def test_mysql_password_never_shown() -> None:
    user, password = f"cs_{uuid.uuid4().hex[:8]}", "S3cret-pw!"
    admin = pymysql.connect(host="127.0.0.1", port=3306, user="root", password="", database="test")
    try:
        with admin.cursor() as cur:
            cur.execute(f"CREATE USER '{user}'@'%' IDENTIFIED BY '{password}'")
            cur.execute(f"CREATE USER '{user}'@'localhost' IDENTIFIED BY '{password}'")
            cur.execute(f"GRANT ALL ON test.* TO '{user}'@'%'")
            cur.execute(f"GRANT ALL ON test.* TO '{user}'@'localhost'")
        store = open_online_store(f"mariadb://{user}:S3cret-pw%21@127.0.0.1:3306/test")
        try:
            info = store.connection_info()
            assert info["jdbc_url"] == "jdbc:mariadb://127.0.0.1:3306/test" and info["user"] == user
            assert info["url"] == f"mariadb://{user}@127.0.0.1:3306/test"
            assert password not in repr(info) and password not in repr(store)
            assert store.connection_info(include_password=True)["password"] == password
            with pytest.raises(NotFoundError):
                store.count("t_absent")
        finally:
            store.close()
        with pytest.raises(StorageError) as err:
            open_online_store(f"mysql://{user}:wrong@127.0.0.1:3306/test")
        assert "wrong" not in str(err.value)
    finally:
        with admin.cursor() as cur:
            cur.execute(f"DROP USER IF EXISTS '{user}'@'%'")
            cur.execute(f"DROP USER IF EXISTS '{user}'@'localhost'")
        admin.close()


def test_redis_password_never_shown() -> None:
    client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, password="S3cret-pw")  # not connected
    store = RedisOnlineStore(client, prefix="p:", url=f"redis://{REDIS_HOST}:{REDIS_PORT}/0")
    info = store.connection_info()
    assert "password" not in info and "S3cret" not in repr(info) and "S3cret" not in repr(store)
    assert store.connection_info(include_password=True)["password"] == "S3cret-pw"
    store.close()
