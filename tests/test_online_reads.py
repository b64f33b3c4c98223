"""The online store through the service (embedded): reads and the project's backend.

``sql(online=True)`` (key lookups and scans) answers as the offline store does; feature
vectors across groups with different keys, their errors and their cached plans; the backend
of a project: its connection details (never a password), and when it may be changed. Each
test runs on the three backends (see tests/online_env.py).
"""

from __future__ import annotations

import random
import secrets
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from cloudsdk.errors import (
    FeatureGroupNotFoundError,
    FeatureNotFoundError,
    FeatureVectorNotFoundError,
    InvalidArgumentError,
    StorageError,
)
from cloudsdk.store import FeatureStoreService
from tests.online_env import (  # noqa: F401  (env_fixture, mysql_database_fixture: fixtures)
    MYSQL_HOST,
    MYSQL_PORT,
    REDIS_HOST,
    REDIS_PORT,
    TS,
    Env,
    P,
    _mysql_admin,
    _mysql_drop_tables,
    day,
    env_fixture,
    mysql_database_fixture,
    online_values,
    rows,
)

# --- reads: sql(online=True), queries, feature vectors -------------------------------------------


def _txn(e: Env) -> None:
    rng = random.Random(7)
    data = [{"a": a, "b": f"k{b}", "x": round(rng.uniform(-1, 1), 3), "y": rng.randrange(100)}
            for a in range(-2, 6) for b in range(3)]
    e.service.create_group(P, "txn", 1, pa.Table.from_pylist(data), primary_key=["a", "b"], online_enabled=True)


SQL_CASES = [
    ("SELECT * FROM txn_1 WHERE a = 3 AND b = 'k1'", "get"),
    ("SELECT x, y FROM txn_1 WHERE b IN ('k0', 'k2') AND a IN (1, 2, 3)", "get"),
    ("SELECT * FROM txn_1 WHERE (a = 4) AND b = 'k0' AND x > -5", "get"),
    ("SELECT * FROM txn_1 WHERE a = -1 AND 'k2' = b", "get"),
    ("SELECT * FROM txn WHERE a = 99 AND b = 'nope'", "get"),
    ("SELECT a, sum(y) AS s FROM txn_1 WHERE a IN (1, 2) AND b IN ('k0', 'k1', 'k2') GROUP BY a ORDER BY a", "get"),
    ("SELECT * FROM txn_1 WHERE a IN (1, 1, 2) AND b IN ('k0', 'k0')", "get"),  # repeated values: rows once
    ("SELECT * FROM txn_1 WHERE a = 4", "scan"),  # a part of the key only
    ("SELECT a, b FROM txn_1 WHERE x > 0.25 ORDER BY a, b", "scan"),
    ("SELECT count(*) AS n FROM txn_1 WHERE a = 1 OR b = 'k1'", "scan"),
]


@pytest.mark.parametrize(("query", "path"), SQL_CASES, ids=[str(i) for i in range(len(SQL_CASES))])
def test_sql_online_equals_offline(env: Env, monkeypatch: pytest.MonkeyPatch, query: str, path: str) -> None:
    s = env.service
    _txn(env)
    calls: list[str] = []
    store = env.store()
    def spy(method: str) -> Callable[..., Any]:
        real = getattr(store, method)

        def call(*args: Any, **kwargs: Any) -> Any:
            calls.append(method)
            return real(*args, **kwargs)

        return call

    for method in ("get", "scan"):
        monkeypatch.setattr(store, method, spy(method))
    got = s.sql(P, query, online=True)
    assert calls == [path]
    want = s.sql(P, query)
    assert got.schema == want.schema
    assert sorted(got.to_pylist(), key=repr) == sorted(want.to_pylist(), key=repr)


def test_sql_and_queries_online(env: Env) -> None:
    s = env.service
    _txn(env)
    s.create_group(P, "offonly", 1, rows([1], [1]), primary_key=["id"])
    with pytest.raises(InvalidArgumentError, match="not stored online"):
        s.sql(P, "SELECT * FROM offonly_1", online=True)
    with pytest.raises(InvalidArgumentError, match="as_of"):
        s.sql(P, "SELECT * FROM txn_1", online=True, as_of=0)
    with pytest.raises(FeatureGroupNotFoundError):
        s.sql(P, "SELECT * FROM ghost_1", online=True)
    assert s.get_features(P, ["a", "b", "x"], online=True).sort_by([("a", "ascending"), ("b", "ascending")]) \
        .equals(s.get_features(P, ["a", "b", "x"]).sort_by([("a", "ascending"), ("b", "ascending")]))
    assert s.read_online(P, "txn", 1, ["y", "a"]).column_names == ["y", "a"]
    with pytest.raises(FeatureNotFoundError):
        s.read_online(P, "txn", 1, ["nope"])
    spec = s.feature_query(P, ["x"])
    spec["fg"]["as_of"] = 0
    with pytest.raises(InvalidArgumentError, match="as_of"):
        s.run_query(P, spec, online=True)


def _three_groups(e: Env) -> None:
    s = e.service
    s.create_group(P, "customers", 1, pa.table({"cid": pa.array([1, 2, 3], pa.int64()), "age": [30, 40, 50],
                                                "city": ["Oslo", "Rome", None]}),
                   primary_key=["cid"], online_enabled=True)
    s.create_group(P, "merchants", 1, pa.table({"mid": ["a", "b"], "risk": [0.1, 0.9]}), primary_key=["mid"],
                   online_enabled=True)
    s.create_group(P, "pairs", 1, pa.table({"cid": pa.array([1, 2, 1], pa.int64()), "mid": ["a", "b", "a"],
                                            "ts": pa.array([day(1), day(1), day(2)], TS), "n_tx": [5, 7, 6]}),
                   primary_key=["cid", "mid"], event_time="ts", online_enabled=True)


def test_feature_vectors_across_three_groups(env: Env) -> None:
    s = env.service
    _three_groups(env)
    entries = [{"cid": 1, "mid": "a"}, {"mid": "b", "cid": 2}]
    got = s.get_feature_vectors(P, ["age", "risk", "n_tx", "city"], entries)
    assert got == {"features": ["age", "risk", "n_tx", "city"], "rows": [[30, 0.1, 6, "Oslo"], [40, 0.9, 7, "Rome"]],
                   "missing": []}
    got = s.get_feature_vectors(P, ["n_tx", "cid", "age"], entries)  # a key column echoes the entry
    assert got["rows"] == [[6, 1, 30], [7, 2, 40]]
    spec = s.feature_query(P, ["n_tx", "age"])  # a query spec works as well as a list of names
    assert s.get_feature_vectors(P, spec, [{"cid": 1, "mid": "a"}])["rows"] == [[6, 30]]
    spec = {"fg": {"name": "merchants", "version": 1}, "features": ["risk"], "order": ["age", "risk"],
            "joins": [{"query": {"fg": {"name": "customers", "version": None}, "features": ["age"]}}]}
    assert s.get_feature_vectors(P, spec, [{"cid": 3, "mid": "a"}])["rows"] == [[50, 0.1]]
    with pytest.raises(InvalidArgumentError, match="without filters"):
        s.get_feature_vectors(P, {**spec, "filter": {"feature": "risk", "op": ">", "value": 0}}, [])
    assert s.get_feature_vectors(P, ["age"], [])["rows"] == []

    many = [{"cid": 3, "mid": "b"}, {"cid": 9, "mid": "a"}, {"cid": 1, "mid": "a"}]
    with pytest.raises(FeatureVectorNotFoundError) as info:
        s.get_feature_vectors(P, ["age", "risk", "n_tx"], many)
    assert info.value.code == "feature_vector_not_found"
    got = s.get_feature_vectors(P, ["age", "risk", "n_tx"], many, allow_missing=True)
    assert got["rows"] == [[50, 0.9, None], [None, 0.1, None], [30, 0.1, 6]] and got["missing"] == [0, 1]

    bad: list[tuple[Any, Any, type[Exception], str]] = [
        (["age", "risk"], [{"cid": 1}], InvalidArgumentError, "misses key column"),
        (["age", "risk"], [{"cid": 1, "mid": "a", "zzz": 1}], InvalidArgumentError, "not primary keys"),
        (["age"], [{"cid": 1, "mid": "a"}], InvalidArgumentError, "not primary keys"),
        (["age"], [{"cid": "1"}], InvalidArgumentError, "must be an integer"),
        (["age"], [{"cid": True}], InvalidArgumentError, "must be an integer"),
        (["risk"], [{"mid": 5}], InvalidArgumentError, "must be a string"),
        (["age"], [[1]], InvalidArgumentError, "dict of primary-key values"),
        (["age"], {"cid": 1}, InvalidArgumentError, "list of dicts"),
        (["nope"], [{"cid": 1}], FeatureNotFoundError, "nope"),
        ([], [{"cid": 1}], InvalidArgumentError, "at least one feature"),
    ]
    for features, entries_, error, match in bad:
        with pytest.raises(error, match=match):
            s.get_feature_vectors(P, features, entries_)
    s.create_group(P, "offline_only", 1, pa.table({"cid": pa.array([1], pa.int64()), "score": [1.0]}),
                   primary_key=["cid"])
    with pytest.raises(InvalidArgumentError, match="not stored online"):
        s.get_feature_vectors(P, ["score"], [{"cid": 1}])
    with pytest.raises(InvalidArgumentError, match="not stored online"):
        s.get_feature_vectors(P, s.feature_query(P, ["score", "age"]), [{"cid": 1}])


def test_feature_vector_plans_follow_changes(env: Env) -> None:
    s = env.service
    _three_groups(env)
    features, entry = ["age", "risk"], [{"cid": 1, "mid": "a"}]
    plan = s.prepare_feature_vector(P, features)
    assert s.prepare_feature_vector(P, features) is plan  # cached
    assert plan.lookup(entry) == {"features": features, "rows": [[30, 0.1]], "missing": []}
    s.insert(P, "customers", 1, pa.table({"cid": pa.array([1], pa.int64()), "age": [31], "city": ["Oslo"]}))
    assert s.get_feature_vectors(P, features, entry)["rows"] == [[31, 0.1]]  # new values, no re-planning needed

    s.disable_online(P, "merchants", 1)
    with pytest.raises(InvalidArgumentError, match="not stored online"):
        s.get_feature_vectors(P, features, entry)
    s.enable_online(P, "merchants", 1)
    assert s.prepare_feature_vector(P, features) is not plan
    assert s.get_feature_vectors(P, features, entry)["rows"] == [[31, 0.1]]

    s.delete_group(P, "merchants", 1)
    with pytest.raises(FeatureNotFoundError):
        s.get_feature_vectors(P, features, entry)
    s.create_group(P, "merchants", 1, pa.table({"mid": ["a"], "risk": [0.5]}), primary_key=["mid"],
                   online_enabled=True)
    assert s.get_feature_vectors(P, features, entry)["rows"] == [[31, 0.5]]
    s.create_group(P, "merchants", 2, pa.table({"mid": ["a"], "risk": [0.7]}), primary_key=["mid"],
                   online_enabled=True)
    for version, risk in ((1, 0.5), (2, 0.7)):
        versions = {"merchants": version, "customers": 1}
        assert s.get_feature_vectors(P, features, entry, featuregroups_version_dict=versions)["rows"] == [[31, risk]]


# --- the backend of a project ---------------------------------------------------------------------


def test_online_store_info(env: Env) -> None:
    info = env.service.online_store_info(P)
    assert info["backend"] == env.backend and "password" not in info
    if env.backend == "sqlite":
        assert info["url"] == f"sqlite:///{env.root / 'projects' / P / 'online.db'}" and info["jdbc_url"] is None
    elif env.backend == "redis":
        assert info["url"] == f"redis://{REDIS_HOST}:{REDIS_PORT}/0" and info["jdbc_url"] is None
        assert env.url is not None and env.url.endswith(f"prefix={info['prefix']}")
    else:
        database = env.url.rsplit("/", 1)[1] if env.url else ""
        assert info["jdbc_url"] == f"jdbc:mysql://{MYSQL_HOST}:{MYSQL_PORT}/{database}"
        assert (info["host"], info["port"], info["database"], info["user"]) == (MYSQL_HOST, MYSQL_PORT, database,
                                                                                 "root")
    assert env.reopen().online_store_info(P) == info  # kept in the catalog


def test_set_online_store_is_refused_while_groups_are_online(env: Env, tmp_path: Path) -> None:
    s = env.service
    s.create_group(P, "live", 1, rows([1, 2], [10, 20]), primary_key=["id"], online_enabled=True)
    s.create_group(P, "off", 1, rows([1], [1]), primary_key=["id"])
    before = s.online_store_info(P)
    other = f"sqlite:///{tmp_path / 'other.db'}"
    with pytest.raises(InvalidArgumentError, match=r"has feature groups stored online \(live\)"):
        s.set_online_store(P, other)
    assert s.online_store_info(P) == before
    s.disable_online(P, "live", 1)
    assert s.set_online_store(P, other)["url"] == other
    s.enable_online(P, "live", 1)  # back-filled into the new backend
    assert online_values(env, "live") == {1: 10, 2: 20}
    assert env.reopen().online_store_info(P)["url"] == other
    with pytest.raises(InvalidArgumentError, match="non-empty string"):
        env.service.set_online_store(P, "")


def test_redis_default_prefix_is_per_project(tmp_path: Path) -> None:
    service = FeatureStoreService(tmp_path / "store")
    try:
        project = f"p{uuid.uuid4().hex[:8]}"
        service.create_project(project)
        info = service.set_online_store(project, f"redis://{REDIS_HOST}:{REDIS_PORT}/0")
        assert info["prefix"] == f"cloudsdk:{project}:"
        assert service.online_store_info(P)["backend"] == "sqlite"  # other projects keep theirs
    finally:
        service.close()


@pytest.fixture
def mysql_user(mysql_database: str) -> Iterator[tuple[str, str]]:
    """A MariaDB user with a password, allowed into the module's database: (user, password)."""
    user, password = f"u{secrets.token_hex(5)}", f"Pw{secrets.token_hex(10)}"
    con = _mysql_admin()
    try:
        with con.cursor() as cur:
            cur.execute(f"CREATE USER '{user}'@'127.0.0.1' IDENTIFIED BY '{password}'")
            cur.execute(f"GRANT ALL ON `{mysql_database}`.* TO '{user}'@'127.0.0.1'")
        yield user, password
    finally:
        with con.cursor() as cur:
            cur.execute(f"DROP USER IF EXISTS '{user}'@'127.0.0.1'")
        con.close()
        _mysql_drop_tables(mysql_database)


def test_the_password_is_never_shown(tmp_path: Path, mysql_database: str, mysql_user: tuple[str, str]) -> None:
    user, password = mysql_user
    url = f"mysql://{user}:{password}@{MYSQL_HOST}:{MYSQL_PORT}/{mysql_database}"
    service = FeatureStoreService(tmp_path / "store")
    try:
        info = service.set_online_store(P, url)
        assert "password" not in info and password not in repr(info)
        assert info["user"] == user and info["jdbc_url"] == f"jdbc:mysql://{MYSQL_HOST}:{MYSQL_PORT}/{mysql_database}"
        assert service.online_store_info(P, include_password=True)["password"] == password
        assert password not in repr(service._online(P))
        service.create_group(P, "pw", 1, rows([1], [10]), primary_key=["id"], online_enabled=True)
        assert online_values(Env("mysql", tmp_path / "store", url, service), "pw") == {1: 10}
        for path in (tmp_path / "store").rglob("*"):
            if path.is_file():
                assert password.encode() not in path.read_bytes(), path  # sealed with secrets.key
        service.delete_group(P, "pw", 1)

        wrong = url.replace(password, "Wr0ngPassw0rd")
        with pytest.raises(StorageError) as info_:
            service.set_online_store(P, wrong)
        assert "Wr0ngPassw0rd" not in str(info_.value) and password not in str(info_.value)
        for bad in (f"redis://someone:Sup3rSecretPw@{REDIS_HOST}:{REDIS_PORT}/0",  # Redis has no such user
                    "redis://someone:Sup3rSecretPw@127.0.0.1:1/0"):  # nothing listens
            with pytest.raises(StorageError) as info_:
                service.set_online_store(P, bad)
            assert "Sup3rSecretPw" not in str(info_.value) and "Sup3rSecretPw" not in repr(info_.value.context)
        assert service.online_store_info(P)["user"] == user  # unchanged
    finally:
        service.close()
    again = FeatureStoreService(tmp_path / "store")
    try:
        assert again.online_store_info(P, include_password=True)["password"] == password
    finally:
        again.close()
