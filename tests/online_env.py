"""Shared fixtures of the online-store service tests (tests/test_online_*.py): a fresh embedded
store whose default project keeps its online tables in SQLite (the default), Redis
(127.0.0.1:6379, a fresh key prefix per test) or MariaDB (127.0.0.1:3306, user root, a fresh
database per module), and small helpers. The servers must be running: the tests fail, never
skip, without them.

Import the fixtures into a test module with
``from tests.online_env import env_fixture, mysql_database_fixture  # noqa: F401``.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pymysql
import pytest
import redis

from cloudsdk.store import FeatureStoreService
from cloudsdk.store.online import OnlineStore

P = "default"
BACKENDS = ["sqlite", "redis", "mysql"]
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
MYSQL_HOST, MYSQL_PORT = "127.0.0.1", 3306


def _mysql_admin() -> pymysql.connections.Connection[Any]:
    return pymysql.connect(host=MYSQL_HOST, port=MYSQL_PORT, user="root", autocommit=True)


def _mysql_drop_tables(database: str) -> None:
    con = _mysql_admin()
    try:
        with con.cursor() as cur:
            cur.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = %s", (database,))
            for (name,) in cur.fetchall():
                cur.execute(f"DROP TABLE `{database}`.`{name}`")
    finally:
        con.close()


def _redis_drop(prefix: str) -> None:
    client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT)
    try:
        keys = list(client.scan_iter(match=f"{prefix}*"))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


@pytest.fixture(name="mysql_database", scope="module")
def mysql_database_fixture() -> Iterator[str]:
    """A fresh MariaDB database for this module (dropped afterwards)."""
    name = f"cloudsdk_online_{uuid.uuid4().hex[:10]}"
    con = _mysql_admin()
    try:
        with con.cursor() as cur:
            cur.execute(f"CREATE DATABASE `{name}`")
        yield name
    finally:
        with con.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        con.close()


@dataclass
class Env:
    """A fresh embedded store whose default project keeps its online tables in ``backend``."""

    backend: str
    root: Path
    url: str | None  # None: the default SQLite file
    service: FeatureStoreService
    opened: list[FeatureStoreService] = field(default_factory=list)

    def store(self) -> OnlineStore:
        return self.service._online(P)

    def reopen(self) -> FeatureStoreService:
        """A new service on the same data directory (as after a restart); the old one is left
        as a crashed process leaves it (closed only at the end of the test)."""
        self.service = FeatureStoreService(self.root)
        self.opened.append(self.service)
        return self.service


@pytest.fixture(name="env", params=BACKENDS)
def env_fixture(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Env]:
    backend = request.param
    prefix = f"t{uuid.uuid4().hex[:12]}:"
    database = request.getfixturevalue("mysql_database") if backend == "mysql" else ""
    url = {"sqlite": None, "redis": f"redis://{REDIS_HOST}:{REDIS_PORT}/0?prefix={prefix}",
           "mysql": f"mysql://root@{MYSQL_HOST}:{MYSQL_PORT}/{database}"}[backend]
    service = FeatureStoreService(tmp_path / "store")
    e = Env(backend, tmp_path / "store", url, service, [service])
    try:
        if url is not None:
            service.set_online_store(P, url)
        yield e
    finally:
        for s in e.opened:
            s.close()
        if backend == "redis":
            _redis_drop(prefix)
        elif backend == "mysql":
            _mysql_drop_tables(database)


# --- helpers ------------------------------------------------------------------------------------

TS = pa.timestamp("us")


def day(d: int, hour: int = 0) -> dt.datetime:
    return dt.datetime(2024, 1, 1) + dt.timedelta(days=d, hours=hour)


def rows(ids: list[Any], values: list[Any], days: list[int] | None = None) -> pa.Table:
    """A table ``id`` (int64), [``ts``], ``v`` (int64)."""
    cols: dict[str, pa.Array] = {"id": pa.array(ids, pa.int64())}
    if days is not None:
        cols["ts"] = pa.array([day(d) for d in days], TS)
    cols["v"] = pa.array(values, pa.int64())
    return pa.table(cols)


def online(e: Env, name: str, version: int = 1) -> list[dict[str, Any]]:
    """The online rows, sorted by every column."""
    table = e.service.read_online(P, name, version)
    return sorted(table.to_pylist(), key=lambda r: [repr(r[c]) for c in table.column_names])


def online_values(e: Env, name: str, version: int = 1) -> dict[Any, Any]:
    return {r["id"]: r["v"] for r in e.service.read_online(P, name, version).to_pylist()}


def commits(e: Env, name: str, version: int = 1) -> int:
    return len(e.service.history(P, name, version))


def check(e: Env, name: str, version: int = 1, **kw: Any) -> dict[str, Any]:
    return e.service.check_online_consistency(P, name, version, **kw)


def assert_consistent(e: Env, name: str, version: int = 1) -> dict[str, Any]:
    report = check(e, name, version)
    assert report["consistent"], report
    assert (report["status"], report["pending"]) == ("ok", False)
    assert report["synced_commit"] == report["offline_commit"]
    assert report["online_rows"] == report["offline_rows"]
    return report
