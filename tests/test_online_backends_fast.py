"""The fast lookup path of the online-store backends (``lookup``), NaN round trips, threads,
and cached schemas going stale — against the real servers, like tests/test_online_backends.py
(whose ``env`` fixture, parametrised over SQLite, Redis and MariaDB, these tests share).
"""

from __future__ import annotations

import datetime as dt
import math
import random
import sqlite3
import threading
import uuid
import zoneinfo
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pymysql
import pytest
import redis

import tests.test_online_backends as conformance
from cloudsdk.errors import (
    DataValidationError,
    FeatureNotFoundError,
    InvalidArgumentError,
    InvalidNameError,
    NotFoundError,
    SchemaMismatchError,
    StorageError,
)
from cloudsdk.store.online import FOUND_COLUMN, OnlineStore, open_online_store
from cloudsdk.store.online.base import METADATA_TABLE, TableSpec
from cloudsdk.store.online.redis import RedisOnlineStore
from tests.test_online_backends import (
    ALL_TYPES,
    REDIS_HOST,
    REDIS_PORT,
    SIMPLE,
    Env,
    all_types_rows,
    simple_table,
)

env = conformance.env  # the fixture: every backend (SQLite, Redis, MariaDB)


# ---------------------------------------------------------------------- helpers
def norm(v: Any) -> Any:
    """A comparable form: NaN as a marker, the type and the time zone of every value kept."""
    if isinstance(v, float) and math.isnan(v):
        return ("NaN",)
    if isinstance(v, list | tuple):
        return [norm(x) for x in v]
    if isinstance(v, dict):
        return {k: norm(x) for k, x in v.items()}
    if isinstance(v, dt.datetime | dt.time):
        return (type(v).__name__, v.isoformat(), repr(v.tzinfo), getattr(v, "fold", 0))
    return (type(v).__name__, v)


def expected_from_get(store: OnlineStore, table: str, keys: pa.Table, columns: list[str] | None):
    got = store.get(table, keys, columns)
    cols = [c for c in got.column_names if c != FOUND_COLUMN]
    return [tuple(r[c] for c in cols) if r[FOUND_COLUMN] else None for r in got.to_pylist()]


def assert_lookup_matches_get(
    store: OnlineStore, table: str, keys: pa.Table, columns: list[str] | None = None
) -> list[Any]:
    tuples = [tuple(r.values()) for r in keys.to_pylist()]
    got = store.lookup(table, tuples, columns)
    assert norm(got) == norm(expected_from_get(store, table, keys, columns))
    return got


def ints_as(values: list[int | None], t: pa.DataType) -> pa.Array:
    storage = pa.int32() if t.bit_width == 32 else pa.int64()
    return pa.array(values, storage).cast(t)


TEMPORAL = pa.schema(
    [
        pa.field("id", pa.int64(), nullable=False),
        ("ts_s_berlin", pa.timestamp("s", tz="Europe/Berlin")),
        ("ts_ms_offset", pa.timestamp("ms", tz="+05:30")),
        ("ts_us_utc", pa.timestamp("us", tz="UTC")),
        ("ts_us", pa.timestamp("us")),
        ("ts_ns_ny", pa.timestamp("ns", tz="America/New_York")),
        ("ts_ns", pa.timestamp("ns")),
        ("d32", pa.date32()),
        ("d64", pa.date64()),
        ("t32_s", pa.time32("s")),
        ("t32_ms", pa.time32("ms")),
        ("t64_us", pa.time64("us")),
        ("t64_ns", pa.time64("ns")),
        ("dur_s", pa.duration("s")),
        ("dur_ms", pa.duration("ms")),
        ("dur_us", pa.duration("us")),
        ("dur_ns", pa.duration("ns")),
    ]
)


def temporal_rows() -> pa.Table:
    # 2024-10-27 00:30 and 01:30 UTC are both 02:30 in Berlin (the DST fold); pre-1970 values.
    fold_a, fold_b = 1729989000, 1729992600
    n = 6
    secs = [fold_a, fold_b, 0, -86_400 * 365 * 30 - 1, 1_700_000_000, None]
    cols: dict[str, pa.Array] = {"id": pa.array(range(1, n + 1), pa.int64())}
    for f in TEMPORAL:
        t = f.type
        if f.name == "id":
            continue
        if pa.types.is_timestamp(t):
            mult = {"s": 1, "ms": 1000, "us": 10**6, "ns": 10**9}[t.unit]
            extra = {"s": 0, "ms": 123, "us": 123_456, "ns": 123_456_789}[t.unit]
            vals = [None if s is None else s * mult + extra for s in secs]
        elif pa.types.is_date32(t):
            vals = [19_000, -25_000, 0, 1, 2_932_896, None]
        elif pa.types.is_date64(t):
            vals = [d * 86_400_000 for d in (19_000, -25_000, 0, 1, 2_932_896)] + [None]
        elif pa.types.is_time(t):
            per_s = {"s": 1, "ms": 1000, "us": 10**6, "ns": 10**9}[t.unit]
            vals = [0, 86_399 * per_s + per_s - 1, 3_600 * per_s + 7, 1, 45_296 * per_s, None]
        else:
            per_s = {"s": 1, "ms": 1000, "us": 10**6, "ns": 10**9}[t.unit]
            vals = [0, -1, 86_400 * per_s * 400 + 3, -(10**6) * per_s, 7, None]
        cols[f.name] = ints_as(vals, t)
    return pa.table(cols, schema=TEMPORAL)


# ---------------------------------------------------------------------- lookup == get
def test_lookup_equals_get_for_every_type(env: Env) -> None:
    name = env.table()
    env.store.create_table(name, ALL_TYPES, ["id"])
    env.store.upsert(name, all_types_rows())
    keys = pa.table({"id": [3, 1, 2, 99, 1]})
    got = assert_lookup_matches_get(env.store, name, keys)
    assert got[3] is None and got[0] is not None and got[0][0] == 3
    assert got[0][1:] == (None,) * (len(ALL_TYPES) - 1)  # a stored row of nulls
    assert got[1] == got[4]
    for columns in (["b", "ts", "emb"], ["id"], ["img", "id", "flag", "d64"], ["f64"]):
        assert_lookup_matches_get(env.store, name, keys, columns)
    assert_lookup_matches_get(env.store, name, pa.table({"id": [2]}), ["tags", "dur", "t"])


def test_lookup_temporal_types_and_time_zones(env: Env) -> None:
    name = env.table()
    env.store.create_table(name, TEMPORAL, ["id"])
    rows = temporal_rows()
    env.store.upsert(name, rows)
    keys = pa.table({"id": [1, 2, 3, 4, 5, 6, 7]})
    got = assert_lookup_matches_get(env.store, name, keys)
    assert norm(got[:6]) == norm([tuple(r.values()) for r in rows.to_pylist()])
    first, second = got[0][1], got[1][1]  # the two 02:30 of the Berlin DST fold
    assert (first.fold, second.fold) == (0, 1) and first.tzinfo is zoneinfo.ZoneInfo(
        "Europe/Berlin"
    )
    assert isinstance(got[0][5], pd.Timestamp)  # nanosecond timestamps: as pyarrow gives them
    for i in range(2, 6):
        assert_lookup_matches_get(env.store, name, pa.table({"id": [i]}), [TEMPORAL.names[i]])


def test_lookup_missing_duplicates_order_and_many_keys(env: Env) -> None:
    name = simple_table(env, 1500)
    assert env.store.lookup(name, []) == []
    assert env.store.lookup(name, [(7,)]) == [(7, 10.5, "v7")]
    assert env.store.lookup(name, [(0,)]) == [None]
    assert env.store.lookup(name, [(None,)]) == [None]
    assert env.store.lookup(name, [(None,), (None,)]) == [None, None]
    assert env.store.lookup(name, [(5,), (None,), (5,), (9999,), [2]], ["s"]) == [
        ("v5",),
        None,
        ("v5",),
        None,
        ("v2",),
    ]
    ids = [*range(3000, 0, -1), 1, 1, 1500]  # over a batch of every backend, duplicates
    random.Random(5).shuffle(ids)
    got = env.store.lookup(name, [(i,) for i in ids], ["x", "id"])
    assert got == [(i * 1.5, i) if i <= 1500 else None for i in ids]
    assert env.store.lookup(name, [(i,) for i in ids]) == expected_from_get(
        env.store, name, pa.table({"id": ids}), None
    )


def test_lookup_composite_keys_of_every_key_type(env: Env) -> None:
    name = env.table()
    schema = pa.schema(
        [
            pa.field("s", pa.string(), nullable=False),
            pa.field("b", pa.binary(), nullable=False),
            pa.field("flag", pa.bool_(), nullable=False),
            pa.field("day", pa.date32(), nullable=False),
            pa.field("ts", pa.timestamp("us", tz="UTC"), nullable=False),
            pa.field("small", pa.int8(), nullable=False),
            ("v", pa.int64()),
        ]
    )
    env.store.create_table(name, schema, ["s", "b", "flag", "day", "ts", "small"])
    utc = dt.UTC
    t0 = dt.datetime(2024, 3, 1, 12, 0, 0, 250, tzinfo=utc)
    d0 = dt.date(2024, 3, 1)
    rows = pa.table(
        {
            "s": ["a", "a ", "A", "ü,x", "a"],
            "b": [b"\x00", b"\x00", b"", b"\xff,", b"\x00"],
            "flag": [True, True, False, False, False],
            "day": [d0, d0, d0, dt.date(1960, 1, 1), d0],
            "ts": [t0, t0, t0, t0, t0],
            "small": [1, 1, -128, 127, 1],
            "v": [1, 2, 3, 4, 5],
        },
        schema=schema,
    )
    env.store.upsert(name, rows)
    keys = [
        ("a", b"\x00", True, d0, t0, 1),
        ("a ", b"\x00", True, d0, t0, 1),
        ("A", b"", False, d0, t0, -128),
        ("ü,x", b"\xff,", False, dt.date(1960, 1, 1), t0, 127),
        ("a", b"\x00", False, d0, t0, 1),
        ("a", b"\x00", True, d0, t0, 2),  # not stored
        ("a", None, True, d0, t0, 1),  # a null component
    ]
    assert env.store.lookup(name, keys, ["v"]) == [(1,), (2,), (3,), (4,), (5,), None, None]
    assert norm(env.store.lookup(name, keys[:1])) == norm([tuple(rows.to_pylist()[0].values())])
    assert_lookup_matches_get(
        env.store,
        name,
        pa.table({c: [k[i] for k in keys[:6]] for i, c in enumerate(schema.names[:6])}),
    )
    # Other spellings of the same key values: converted the way upsert encodes them.
    berlin = zoneinfo.ZoneInfo("Europe/Berlin")
    same_instant = [
        t0.astimezone(berlin),
        t0.replace(tzinfo=None),  # naive = UTC wall clock, as pyarrow reads it
        t0.isoformat(),
        pd.Timestamp(t0),
        int(t0.timestamp()) * 10**6 + 250,  # the stored integer
    ]
    for ts in same_instant:
        assert env.store.lookup(
            name, [("a", bytearray(b"\x00"), np.bool_(True), "2024-03-01", ts, np.int8(1))], ["v"]
        ) == [(1,)]
    # Single-key lookups too (one statement of another shape).
    assert env.store.lookup(name, [keys[3]], ["v", "s"]) == [(4, "ü,x")]


def test_lookup_bad_input(env: Env) -> None:
    name = simple_table(env, 2)
    s = env.store
    with pytest.raises(NotFoundError, match="nope"):
        s.lookup("nope", [(1,)])
    with pytest.raises(InvalidNameError):
        s.lookup("x` OR 1=1", [(1,)])
    with pytest.raises(FeatureNotFoundError, match="zz"):
        s.lookup(name, [(1,)], ["x", "zz"])
    for bad_keys, match in (
        ([(1, 2)], "has 1 value"),
        ([()], "has 1 value"),
        ([1], "must be a tuple"),
        (["1"], "must be a tuple"),
        ((1,), "must be a tuple"),
        ("1", "list of key tuples"),
        (None, "list of key tuples"),
        ([("1",)], "integers"),
        ([(1.0,)], "integers"),
        ([(True,)], "integers"),
        ([(2**63,)], "integers that fit int64"),
        ([(1,), ("x",)], "integers"),
    ):
        with pytest.raises(InvalidArgumentError, match=match):
            s.lookup(name, bad_keys)  # type: ignore[arg-type]
    assert s.lookup(name, [(np.int64(2),), [1]]) == [(2, 3.0, "v2"), (1, 1.5, "v1")]
    small = env.table()
    schema = pa.schema(
        [
            pa.field("k", pa.int8(), nullable=False),
            pa.field("at", pa.timestamp("s"), nullable=False),
        ]
    )
    s.create_table(small, schema, ["k", "at"])
    with pytest.raises(InvalidArgumentError, match="fit int8"):
        s.lookup(small, [(128, dt.datetime(2024, 1, 1))])
    with pytest.raises(InvalidArgumentError, match="finer than"):
        s.lookup(small, [(1, dt.datetime(2024, 1, 1, 0, 0, 0, 5))])
    with pytest.raises(InvalidArgumentError, match="datetimes"):
        s.lookup(small, [(1, 3.5)])
    with pytest.raises(InvalidArgumentError, match="timestamp"):
        s.lookup(small, [(1, "not a date")])
    assert s.lookup(small, [(1, dt.datetime(2024, 1, 1))]) == [None]


# ---------------------------------------------------------------------- NaN and infinities
def test_nan_and_infinities_round_trip(env: Env) -> None:
    name = env.table()
    schema = pa.schema(
        [
            pa.field("id", pa.int64(), nullable=False),
            ("f32", pa.float32()),
            ("f64", pa.float64()),
            ("s", pa.string()),
            ("lst", pa.list_(pa.float64())),
        ]
    )
    env.store.create_table(name, schema, ["id"])
    nan, inf = float("nan"), float("inf")
    rows = pa.table(
        {
            "id": [1, 2, 3, 4],
            "f32": [nan, -inf, 1.5, None],
            "f64": [inf, nan, None, -0.0],
            "s": ["a", None, "c", "d"],
            "lst": [[nan, inf], None, [1.0], [-inf]],
        },
        schema=schema,
    )
    env.store.upsert(name, rows)
    expected = [tuple(r.values()) for r in rows.to_pylist()]
    assert norm(env.store.lookup(name, [(1,), (2,), (3,), (4,)])) == norm(expected)
    assert norm(env.store.lookup(name, [(2,)], ["f64", "s"])) == norm([(nan, None)])
    assert norm(env.store.lookup(name, [(1,), (2,)], ["f64"])) == norm([(inf,), (nan,)])
    assert norm(env.store.lookup(name, [(1,)], ["f64", "f64"])) == norm([(inf, inf)])
    assert norm(env.store.scan(name).sort_by("id").to_pylist()) == norm(rows.to_pylist())
    got = env.store.get(name, pa.table({"id": [2, 1]}))
    assert norm(got.drop_columns([FOUND_COLUMN]).to_pylist()) == norm(rows.take([1, 0]).to_pylist())
    # A finite value replaces the NaN (the side value goes with the row).
    env.store.upsert(
        name,
        pa.table({"id": [1], "f32": [2.0], "f64": [3.0], "s": ["z"], "lst": [[]]}, schema=schema),
    )
    assert env.store.lookup(name, [(1,)]) == [(1, 2.0, 3.0, "z", [])]


# ---------------------------------------------------------------------- threads
def test_threads_read_whole_rows_while_a_writer_upserts(env: Env) -> None:
    name = env.table()
    schema = pa.schema(
        [
            pa.field("id", pa.int64(), nullable=False),
            ("a", pa.int64()),
            ("b", pa.string()),
            ("c", pa.float64()),
            ("d", pa.list_(pa.int64())),
        ]
    )
    env.store.create_table(name, schema, ["id"])
    n_keys, versions = 50, 60

    def batch(v: int) -> pa.Table:
        ids = list(range(n_keys))
        return pa.table(
            {
                "id": ids,
                "a": [v] * n_keys,
                "b": [str(v)] * n_keys,
                "c": [float(v)] * n_keys,
                "d": [[v, v]] * n_keys,
            },
            schema=schema,
        )

    env.store.upsert(name, batch(0))
    done = threading.Event()
    errors: list[BaseException] = []
    reads = [0]

    def reader(seed: int) -> None:
        rnd = random.Random(seed)
        try:
            while not done.is_set():
                if rnd.random() < 0.5:
                    rows = env.store.lookup(name, [(rnd.randrange(n_keys),)])
                else:
                    rows = env.store.lookup(name, [(rnd.randrange(n_keys + 5),) for _ in range(20)])
                for row in rows:
                    if row is None:
                        continue
                    _, a, b, c, d = row
                    assert a == int(b) == c == d[0] == d[1], row  # one whole row, one version
                reads[0] += 1
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=reader, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    try:
        for v in range(1, versions + 1):
            assert env.store.upsert(name, batch(v)) == n_keys
            if v % 10 == 0:  # deletes and re-inserts keep rows whole too
                env.store.delete(name, pa.table({"id": list(range(0, n_keys, 7))}))
    finally:
        done.set()
        for t in threads:
            t.join(30)
    assert not errors, errors[:3]
    assert reads[0] > 0
    assert env.store.lookup(name, [(1,)]) == [
        (1, versions, str(versions), float(versions), [versions] * 2)
    ]


def test_many_threads_more_than_connections(env: Env) -> None:
    name = simple_table(env, 100)
    results: dict[int, Any] = {}
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            for _ in range(20):
                results[i] = env.store.lookup(name, [(i % 100 + 1,)], ["s"])
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(24)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors[:3]
    assert results == {i: [(f"v{i % 100 + 1}",)] for i in range(24)}


def test_sqlite_read_connections_per_thread(tmp_path: Path) -> None:
    from cloudsdk.store.online.sqlite import SQLiteOnlineStore

    store = SQLiteOnlineStore(tmp_path / "t.db")
    store.create_table("t", SIMPLE, ["id"])
    store.upsert("t", pa.table({"id": [1], "x": [1.0], "s": ["a"]}, schema=SIMPLE))
    for _ in range(3):  # threads come and go: the connections of ended threads are closed
        threads = [threading.Thread(target=store.lookup, args=("t", [(1,)])) for _ in range(5)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    store.lookup("t", [(1,)])
    assert len(store._readers) <= 6
    # A SQLite built with few parameters per statement: batches shrink to fit.
    store._batch = 7
    got = store.lookup("t", [(i % 20,) for i in range(40)])  # 20 keys: statements of 4
    assert got == [(1, 1.0, "a") if i % 20 == 1 else None for i in range(40)]
    store.close()
    with pytest.raises(StorageError):
        store.lookup("t", [(1,)])
    memory = open_online_store("sqlite:///:memory:")  # one connection, shared by threads
    memory.create_table("t", SIMPLE, ["id"])
    memory.upsert("t", pa.table({"id": [1], "x": [1.0], "s": ["a"]}, schema=SIMPLE))
    out: list[Any] = []
    t = threading.Thread(target=lambda: out.append(memory.lookup("t", [(1,)])))
    t.start()
    t.join()
    assert out == [[(1, 1.0, "a")]]
    memory.close()


# ---------------------------------------------------------------------- stale caches
def test_cached_schema_follows_another_store_object(env: Env) -> None:
    a = env.store
    b = open_online_store(env.url)
    try:
        name = simple_table(env, 3)
        assert a.lookup(name, [(1,)]) == [(1, 1.5, "v1")]  # a caches the table
        assert a.count(name) == 3
        b.drop_table(name)
        with pytest.raises(NotFoundError):
            a.lookup(name, [(1,)])
        with pytest.raises(NotFoundError):
            a.lookup(name, [(1,), (2,)])
        with pytest.raises(NotFoundError):
            a.get(name, pa.table({"id": [1]}))
        with pytest.raises(NotFoundError):
            a.count(name)
        with pytest.raises(NotFoundError):
            a.scan(name)
        with pytest.raises(NotFoundError):  # a stale writer does not bring rows back
            a.upsert(name, pa.table({"id": [9], "x": [9.0], "s": ["z"]}, schema=SIMPLE))
        with pytest.raises(NotFoundError):
            a.delete(name, pa.table({"id": [1]}))
        assert not b.has_table(name)
        # a caches the table again; b drops it and re-creates it with another schema.
        b.create_table(name, SIMPLE, ["id"])
        assert a.lookup(name, [(1,)]) == [None]
        assert a.lookup(name, [(1,), (2,)], ["s"]) == [None, None]
        other = pa.schema([pa.field("id", pa.int64(), nullable=False), ("y", pa.string())])
        b.drop_table(name)
        b.create_table(name, other, ["id"])
        b.upsert(name, pa.table({"id": [1, 2], "y": ["new1", "new2"]}, schema=other))
        assert a.lookup(name, [(1,), (3,)]) == [(1, "new1"), None]
        assert a.get(name, pa.table({"id": [2]})).to_pylist() == [
            {"id": 2, "y": "new2", FOUND_COLUMN: True}
        ]
        with pytest.raises(FeatureNotFoundError):
            a.lookup(name, [(1,)], ["x"])
        with pytest.raises(SchemaMismatchError):
            a.upsert(name, pa.table({"id": [9], "x": [9.0], "s": ["z"]}, schema=SIMPLE))
        assert a.scan(name).num_rows == 2 and a.count(name) == 2
        # Re-created with the same schema: a sees the new (empty) table, not cached rows.
        a.lookup(name, [(1,)], ["y"])
        b.drop_table(name)
        b.create_table(name, other, ["id"])
        assert a.lookup(name, [(1,)], ["y"]) == [None]
        assert a.upsert(name, pa.table({"id": [5], "y": ["a5"]}, schema=other)) == 1
        assert b.lookup(name, [(5,), (1,)]) == [(5, "a5"), None]
        a.refresh(name)
        a.refresh()
        assert a.lookup(name, [(5,)]) == [(5, "a5")]
        b.drop_table(name)
        assert not a.has_table(name)  # asks the backend, whatever a has cached
        b.create_table(name, SIMPLE, ["id"])
        assert a.has_table(name) and a.lookup(name, [(5,)]) == [None]
    finally:
        b.close()


def test_reserved_column_names(env: Env) -> None:
    with pytest.raises(InvalidNameError, match="reserved"):
        env.store.create_table(
            env.table(),
            pa.schema([("id", pa.int64()), ("_cloudsdk_nonfinite", pa.string())]),
            ["id"],
        )


# ---------------------------------------------------------------------- tables of older versions
OLD_SPEC = TableSpec.build(
    "old_t", pa.schema([pa.field("id", pa.int64(), nullable=False), ("x", pa.float64())]), ["id"]
)


def test_sqlite_store_made_by_an_older_version(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    con = sqlite3.connect(path)
    con.execute(
        f"CREATE TABLE {METADATA_TABLE} (name TEXT PRIMARY KEY, schema BLOB NOT NULL, primary_key TEXT NOT NULL)"
    )
    con.execute(
        'CREATE TABLE "old_t" ("id" INTEGER NOT NULL, "x" REAL, PRIMARY KEY ("id")) WITHOUT ROWID'
    )
    con.execute(f"INSERT INTO {METADATA_TABLE} VALUES (?, ?, ?)", ("old_t", *OLD_SPEC.serialize()))
    con.execute('INSERT INTO "old_t" VALUES (1, 0.5)')
    con.commit()
    con.close()
    check_older_version(open_online_store(f"sqlite:///{path}"))


def test_mysql_store_made_by_an_older_version() -> None:
    db = f"cloudsdk_old_{uuid.uuid4().hex[:8]}"
    admin = pymysql.connect(host="127.0.0.1", port=3306, user="root", password="", autocommit=True)
    try:
        with admin.cursor() as cur:
            cur.execute(f"CREATE DATABASE {db}")
            cur.execute(
                f"CREATE TABLE {db}.{METADATA_TABLE} (name VARCHAR(64) PRIMARY KEY, "
                "schema_ipc LONGBLOB NOT NULL, primary_key TEXT NOT NULL)"
            )
            cur.execute(f"CREATE TABLE {db}.old_t (id BIGINT NOT NULL PRIMARY KEY, x DOUBLE NULL)")
            cur.execute(
                f"INSERT INTO {db}.{METADATA_TABLE} VALUES (%s, %s, %s)",
                ("old_t", *OLD_SPEC.serialize()),
            )
            cur.execute(f"INSERT INTO {db}.old_t VALUES (1, 0.5)")
        check_older_version(open_online_store(f"mysql://root:@127.0.0.1:3306/{db}"))
    finally:
        with admin.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS {db}")
        admin.close()


def check_older_version(store: OnlineStore) -> None:
    """A store whose metadata has no generation: still read and written; NaN is refused."""
    try:
        assert store.lookup("old_t", [(1,), (2,)]) == [(1, 0.5), None]
        assert store.upsert("old_t", pa.table({"id": [2], "x": [2.5]})) == 1
        assert store.lookup("old_t", [(2,)]) == [(2, 2.5)]
        with pytest.raises(DataValidationError, match="older version"):
            store.upsert("old_t", pa.table({"id": [3], "x": [float("nan")]}))
        assert store.count("old_t") == 2
        store.create_table("new_t", pa.schema([("id", pa.int64()), ("x", pa.float64())]), ["id"])
        store.upsert("new_t", pa.table({"id": [1], "x": [float("nan")]}))
        assert math.isnan(store.lookup("new_t", [(1,)])[0][1])  # type: ignore[index]
        store.drop_table("new_t")
    finally:
        store.close()


# ---------------------------------------------------------------------- backend specifics
def test_redis_checks_before_the_transaction(tmp_path: Path) -> None:
    prefix = f"cloudsdk_test_{uuid.uuid4().hex[:10]}:"
    store = open_online_store(f"redis://{REDIS_HOST}:{REDIS_PORT}/0?prefix={prefix}")
    client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT)
    try:
        store.create_table("t", SIMPLE, ["id"])
        client.set(f"{prefix}i:t", "not a set")  # the index broken by someone else
        rows = pa.table({"id": [1, 2], "x": [1.0, 2.0], "s": ["a", "b"]}, schema=SIMPLE)
        with pytest.raises(StorageError, match="not a set"):
            store.upsert("t", rows)
        assert client.exists(f"{prefix}r:t:1", f"{prefix}r:t:2") == 0  # nothing written
        client.delete(f"{prefix}i:t")
        client.hset(f"{prefix}r:t:1", "x", "1")  # a row key of another type: SET replaces it
        assert store.upsert("t", rows) == 2
        assert store.lookup("t", [(1,), (2,)]) == [(1, 1.0, "a"), (2, 2.0, "b")]
        # A drop that stopped half-way leaves rows behind: a new table does not see them.
        client.delete(f"{prefix}m:t", f"{prefix}g:t")
        store.create_table("t", SIMPLE, ["id"])
        assert store.count("t") == 0 and store.lookup("t", [(1,)]) == [None]
        store.drop_table("t")
        assert list(client.scan_iter(match=f"{prefix}*")) == []
        with pytest.raises(InvalidArgumentError, match="decode_responses"):
            RedisOnlineStore(redis.Redis(host=REDIS_HOST, port=REDIS_PORT, decode_responses=True))
    finally:
        leftover = list(client.scan_iter(match=f"{prefix}*"))
        if leftover:
            client.delete(*leftover)
        client.close()
        store.close()


def test_mysql_pool_replaces_dead_connections() -> None:
    from cloudsdk.store.online.mysql import MySQLOnlineStore

    store = MySQLOnlineStore.from_url("mysql://root:@127.0.0.1:3306/test?pool_size=3")
    assert isinstance(store, MySQLOnlineStore)
    name = f"t_{uuid.uuid4().hex[:10]}"
    admin = pymysql.connect(host="127.0.0.1", port=3306, user="root", password="", autocommit=True)
    try:
        store.create_table(name, SIMPLE, ["id"])
        store.upsert(name, pa.table({"id": [1], "x": [1.0], "s": ["a"]}, schema=SIMPLE))

        def kill_pooled() -> None:
            ids = [con.thread_id() for con, _ in store._pool._idle]
            assert ids
            with admin.cursor() as cur:
                for i in ids:
                    cur.execute(f"KILL CONNECTION {int(i)}")

        kill_pooled()
        assert store.lookup(name, [(1,)]) == [(1, 1.0, "a")]  # a read on a dead one: retried
        kill_pooled()
        assert store.upsert(name, pa.table({"id": [2], "x": [2.0], "s": ["b"]}, schema=SIMPLE)) == 1
        assert store.lookup(name, [(1,), (2,)], ["s"]) == [("a",), ("b",)]
        store.drop_table(name)
    finally:
        admin.close()
        store.close()
    with pytest.raises(StorageError, match="closed"):
        store.lookup(name, [(1,)])
