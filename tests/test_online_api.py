"""The online store in the client APIs, on both backends (embedded, and a real server process
over HTTPS + Flight): online groups, inserts into either store, online reads and SQL, feature
vectors in every return type, the connector, enable/disable, sync and consistency checks,
shared stores, and the functional API."""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pymysql
import pytest

import cloudsdk
from cloudsdk import errors, featurestore
from tests.remote import RemoteStore

# ---------------------------------------------------------------- data


def _teams(ids: list[int], budget: float = 1.0) -> pd.DataFrame:
    return pd.DataFrame({
        "team_id": pd.Series(ids, dtype="int64"),
        "budget": pd.Series([i * 10.0 * budget for i in ids], dtype="float64"),
        "team_name": pd.Series([f"team {i}" for i in ids], dtype="str"),
    })


def _scores(ids: list[int]) -> pd.DataFrame:
    return pd.DataFrame({"team_id": pd.Series(ids, dtype="int64"),
                         "points": pd.Series([i * 3 for i in ids], dtype="int64"),
                         "rating": pd.Series([i / 4 for i in ids], dtype="float64")})


def _fans(ids: list[int]) -> pd.DataFrame:
    return pd.DataFrame({"team_id": pd.Series(ids, dtype="int64"),
                         "fans": pd.Series([i * 1000 for i in ids], dtype="int64"),
                         "city": pd.Series([f"city {i}" for i in ids], dtype="str")})


IDS = [1, 2, 3, 4, 5]
VECTOR = ["budget", "points", "fans", "city"]


def _as_dict(values: list[Any]) -> dict[str, Any]:
    return dict(zip(VECTOR, values, strict=True))


def _expected(i: int) -> list[Any]:
    return [i * 10.0, i * 3, i * 1000, f"city {i}"]


@pytest.fixture
def three(fs: cloudsdk.FeatureStore) -> cloudsdk.FeatureStore:
    """Three online groups keyed by team_id: teams (1-5), scores (1-5), fans (1-4: 5 has none)."""
    fs.create_feature_group("teams", data=_teams(IDS), primary_key="team_id", online_enabled=True)
    fs.create_feature_group("scores", data=_scores(IDS), primary_key="team_id", online_enabled=True)
    fs.create_feature_group("fans", data=_fans(IDS[:-1]), primary_key="team_id", online_enabled=True)
    return fs


def _sorted(df: pd.DataFrame) -> pd.DataFrame:
    return df.sort_values("team_id").reset_index(drop=True)


# ---------------------------------------------------------------- groups, inserts, reads


def test_online_group_is_readable_online_and_offline(fs: cloudsdk.FeatureStore) -> None:
    fg = fs.create_feature_group("teams", data=_teams(IDS), primary_key="team_id", online_enabled=True)
    assert fg.online_enabled and fg.offline_enabled
    assert "online+offline" in repr(fg) and "online on" in fg._repr_html_()
    pd.testing.assert_frame_equal(_sorted(fg.read(online=True)), _teams(IDS))
    pd.testing.assert_frame_equal(_sorted(fg.read()), _teams(IDS))
    again = fs.get_feature_group("teams")
    assert again.online_enabled and again.offline_enabled
    assert fs.get_feature_group("teams").show(2, online=True).shape == (2, 3)
    with pytest.raises(errors.InvalidArgumentError, match="as_of"):
        fg.read(online=True, as_of=0)
    plain = fs.create_feature_group("plain", data=_teams(IDS), primary_key="team_id")
    assert not plain.online_enabled and "online" not in repr(plain)
    with pytest.raises(errors.InvalidArgumentError, match="not stored online"):
        plain.read(online=True)


def test_insert_into_either_store_or_both(fs: cloudsdk.FeatureStore) -> None:
    fg = fs.create_feature_group("teams", data=_teams([1, 2]), primary_key="team_id", online_enabled=True)
    both = fg.insert(_teams([2, 3], budget=2.0), "upsert")  # online=None: as the group is stored
    assert both["online"] == {"rows_upserted": 2, "rows_deleted": 0}
    expected = pd.concat([_teams([1]), _teams([2, 3], budget=2.0)], ignore_index=True)
    pd.testing.assert_frame_equal(_sorted(fg.read(online=True)), expected)
    pd.testing.assert_frame_equal(_sorted(fg.read()), expected)
    assert fg.check_online_consistency()["consistent"]

    offline_only = fg.insert(_teams([4]), online=False)
    assert offline_only["online"] is None
    assert 4 not in fg.read(online=True)["team_id"].tolist() and 4 in fg.read()["team_id"].tolist()
    report = fs.check_online_consistency(fg)
    assert not report["consistent"] and report["missing_online"] == 1
    assert report["examples"]["missing_online"] == [{"team_id": 4}]
    assert fs.check_online_consistency("teams", 1)["missing_online"] == 1
    synced = fg.sync_online()
    assert synced["online_rows"] == 4 and synced["upserted"] >= 1
    assert fg.check_online_consistency()["consistent"]

    online_only = fg.insert(_teams([9]), online=True, offline=False)
    assert online_only["version"] is None and online_only["online"]["rows_upserted"] == 1
    assert 9 in fg.read(online=True)["team_id"].tolist() and 9 not in fg.read()["team_id"].tolist()
    assert fg.check_online_consistency(limit=0)["extra_online"] == 1
    with pytest.raises(errors.InvalidArgumentError, match="nothing"):
        fg.insert(_teams([10]), online=False, offline=False)


def test_insert_online_into_an_offline_group_is_refused(fs: cloudsdk.FeatureStore) -> None:
    fg = fs.create_feature_group("plain", data=_teams([1]), primary_key="team_id")
    with pytest.raises(errors.InvalidArgumentError, match="not stored online"):
        fg.insert(_teams([2]), online=True)
    assert fg.read().shape == (1, 3)


def test_online_only_group(fs: cloudsdk.FeatureStore) -> None:
    fg = fs.create_feature_group("live", data=_teams([1, 2]), primary_key="team_id", online_enabled=True,
                                 offline_enabled=False)
    assert fg.online_enabled and not fg.offline_enabled and repr(fg).endswith(", online)")
    pd.testing.assert_frame_equal(_sorted(fg.read(online=True)), _teams([1, 2]))
    with pytest.raises(errors.UnsupportedError, match="online=True"):
        fg.read()
    fg.insert(_teams([3]))  # offline=None: the group has no offline table
    assert fs.get_feature_vector(["team_name"], {"team_id": 3}) == ["team 3"]


def test_enable_and_disable_online(fs: cloudsdk.FeatureStore) -> None:
    fg = fs.create_feature_group("teams", data=_teams(IDS), primary_key="team_id")
    with pytest.raises(errors.InvalidArgumentError, match="not stored online"):
        fs.get_feature_vector(["budget"], {"team_id": 1})
    assert fg.enable_online() is fg and fg.online_enabled
    assert fs.get_feature_vector(["budget"], {"team_id": 2}) == [20.0]  # back-filled
    assert fg.check_online_consistency()["consistent"]
    fg.disable_online()
    assert not fg.online_enabled and not fs.get_feature_group("teams").online_enabled
    with pytest.raises(errors.InvalidArgumentError, match="not stored online"):
        fs.get_feature_vector(["budget"], {"team_id": 2})
    assert fg.read().shape == (5, 3)  # the offline table stays


def test_online_queries_and_sql(three: cloudsdk.FeatureStore) -> None:
    fs = three
    got = fs.sql("SELECT budget, team_name FROM teams_1 WHERE team_id = 2", online=True)
    assert got.to_dict("records") == [{"budget": 20.0, "team_name": "team 2"}]
    many = fs.sql("SELECT team_id FROM teams_1 WHERE team_id IN (1, 3, 99) ORDER BY team_id", online=True)
    assert many["team_id"].tolist() == [1, 3]
    assert fs.sql("SELECT count(*) AS n FROM fans_1", online=True)["n"].tolist() == [4]
    with pytest.raises(errors.InvalidArgumentError, match="as_of"):
        fs.sql("SELECT * FROM teams_1", online=True, as_of=0)
    features = fs.get_features(["budget", "points"], online=True)
    assert sorted(features["budget"].tolist()) == [10.0, 20.0, 30.0, 40.0, 50.0]
    teams, fans = fs.get_feature_group("teams"), fs.get_feature_group("fans")
    query = teams.select(["team_id", "budget"]).join(fans.select(["fans"]))
    joined = query.read(online=True)
    assert sorted(joined["team_id"].tolist()) == [1, 2, 3, 4]
    assert query.show(2, online=True).shape == (2, 3)
    with pytest.raises(errors.InvalidArgumentError, match="point-in-time"):
        query.read(online=True, entity_df=_teams([1]), event_time="t")


# ---------------------------------------------------------------- feature vectors


def test_feature_vector_in_every_return_type(three: cloudsdk.FeatureStore) -> None:
    fs = three
    assert fs.get_feature_vector(VECTOR, {"team_id": 2}) == _expected(2)
    assert fs.get_feature_vector(VECTOR, {"team_id": 2}, return_type="dict") == _as_dict(_expected(2))
    frame = fs.get_feature_vector(VECTOR, {"team_id": 2}, return_type="pandas")
    assert list(frame.columns) == VECTOR and frame.to_dict("records") == [_as_dict(_expected(2))]
    array = fs.get_feature_vector(["budget", "points", "fans"], {"team_id": 2}, return_type="numpy")
    assert array.shape == (3,) and array.dtype == np.float64 and array.tolist() == [20.0, 6.0, 2000.0]
    mixed = fs.get_feature_vector(VECTOR, {"team_id": 2}, return_type="numpy")
    assert mixed.shape == (4,) and mixed.tolist() == _expected(2)
    with pytest.raises(errors.InvalidArgumentError, match="return_type"):
        fs.get_feature_vector(VECTOR, {"team_id": 2}, return_type="arrow")


def test_feature_vectors_in_every_return_type(three: cloudsdk.FeatureStore) -> None:
    fs = three
    entries = [{"team_id": 3}, {"team_id": 1}, {"team_id": 3}]
    assert fs.get_feature_vectors(VECTOR, entries) == [_expected(3), _expected(1), _expected(3)]
    dicts = fs.get_feature_vectors(VECTOR, entries, return_type="dict")
    assert dicts == [_as_dict(_expected(i)) for i in (3, 1, 3)]
    frame = fs.get_feature_vectors(VECTOR, entries, return_type="pandas")
    assert frame.shape == (3, 4) and frame["points"].tolist() == [9, 3, 9] and frame["points"].dtype == np.int64
    ints = fs.get_feature_vectors(["points", "fans"], entries, return_type="numpy")
    assert ints.shape == (3, 2) and ints.dtype == np.int64 and ints[:, 1].tolist() == [3000, 1000, 3000]
    assert fs.get_feature_vectors(VECTOR, [], return_type="numpy").shape == (0, 4)
    assert fs.get_feature_vectors(VECTOR, []) == []
    with pytest.raises(errors.InvalidArgumentError, match="entries"):
        fs.get_feature_vectors(VECTOR, {"team_id": 1})  # type: ignore[arg-type]


def test_feature_names_objects_and_queries(three: cloudsdk.FeatureStore) -> None:
    fs = three
    teams, scores = fs.get_feature_group("teams"), fs.get_feature_group("scores")
    assert fs.get_feature_vector("budget", {"team_id": 4}) == [40.0]
    assert fs.get_feature_vector(["teams.budget", "scores_1.points"], {"team_id": 4}) == [40.0, 12]
    assert fs.get_feature_vector([teams.budget, scores.rating], {"team_id": 4}) == [40.0, 1.0]
    query = teams.select(["budget", "team_name"]).join(scores.select(["points"]))
    assert fs.get_feature_vector(query, {"team_id": 4}, return_type="dict") == {
        "budget": 40.0, "team_name": "team 4", "points": 12}
    assert fs.get_feature_vector(["budget"], {"team_id": 4}, featuregroups_version_dict={"teams": 1}) == [40.0]
    with pytest.raises(errors.InvalidArgumentError, match="filter"):
        fs.get_feature_vector(teams.select(["budget"]).filter(teams.budget > 1), {"team_id": 1})


def test_missing_entities(three: cloudsdk.FeatureStore) -> None:
    fs = three
    with pytest.raises(errors.FeatureVectorNotFoundError, match="allow_missing"):
        fs.get_feature_vector(VECTOR, {"team_id": 5})  # no fans row for team 5
    with pytest.raises(errors.FeatureVectorNotFoundError):
        fs.get_feature_vectors(VECTOR, [{"team_id": 1}, {"team_id": 77}])
    assert fs.get_feature_vector(VECTOR, {"team_id": 5}, allow_missing=True) == [50.0, 15, None, None]
    rows = fs.get_feature_vectors(VECTOR, [{"team_id": 77}, {"team_id": 1}], allow_missing=True)
    assert rows == [[None, None, None, None], _expected(1)]
    array = fs.get_feature_vector(["budget", "fans"], {"team_id": 5}, allow_missing=True, return_type="numpy")
    assert array[0] == 50.0 and math.isnan(array[1])
    mixed = fs.get_feature_vectors(VECTOR, [{"team_id": 5}, {"team_id": 1}], allow_missing=True,
                                   return_type="numpy")
    assert mixed.dtype == object and math.isnan(mixed[0, 2]) and mixed[0, 3] is None and mixed[1, 3] == "city 1"
    frame = fs.get_feature_vectors(VECTOR, [{"team_id": 5}, {"team_id": 1}], allow_missing=True,
                                   return_type="pandas")
    assert math.isnan(frame["fans"][0]) and frame["fans"][1] == 1000


@pytest.mark.parametrize(("entry", "match"), [
    ({}, "misses key"),
    ({"id": 1}, "misses key"),
    ({"team_id": 1, "extra": 2}, "not primary keys"),
    ({"team_id": "1"}, "must be an integer"),
    ({"team_id": 1.5}, "must be an integer"),
])
def test_bad_entries(three: cloudsdk.FeatureStore, entry: dict[str, Any], match: str) -> None:
    with pytest.raises(errors.InvalidArgumentError, match=match):
        three.get_feature_vector(VECTOR, entry)


def test_bad_features(three: cloudsdk.FeatureStore) -> None:
    with pytest.raises(errors.FeatureNotFoundError):
        three.get_feature_vector(["budget", "no_such_feature"], {"team_id": 1})
    with pytest.raises(errors.InvalidArgumentError):
        three.get_feature_vector(42, {"team_id": 1})
    with pytest.raises(errors.InvalidArgumentError, match="entry"):
        three.get_feature_vector(VECTOR, [("team_id", 1)])  # type: ignore[arg-type]


def test_vector_values_keep_their_python_types(fs: cloudsdk.FeatureStore) -> None:
    import datetime as dt

    df = pd.DataFrame({
        "team_id": pd.Series([1, 2], dtype="int64"),
        "seen": pd.to_datetime(["2024-01-01 10:00:00.000123", "2024-02-01 00:00:00.000000"], utc=True),
        "day": [dt.date(2024, 1, 1), None],
        "blob": [b"\x00\xffx", b"y"],
        "flag": [True, False],
        "tags": [["a", "b"], []],
    })
    fs.create_feature_group("typed", data=df, primary_key="team_id", online_enabled=True)
    names = ["seen", "day", "blob", "flag", "tags"]
    got = fs.get_feature_vectors(names, [{"team_id": 1}, {"team_id": 2}])
    offline = fs.get_feature_group("typed").read("pyarrow").sort_by("team_id").select(names).to_pylist()
    assert got == [[row[n] for n in names] for row in offline]
    assert got[0][0] == dt.datetime(2024, 1, 1, 10, 0, 0, 123, tzinfo=dt.UTC) and got[0][2] == b"\x00\xffx"
    assert got[1][1] is None and got[0][4] == ["a", "b"]


def test_vectors_follow_writes_and_schema_changes(three: cloudsdk.FeatureStore) -> None:
    fs = three
    assert fs.get_feature_vector(["budget"], {"team_id": 1}) == [10.0]
    fs.get_feature_group("teams").insert(_teams([1], budget=5.0), "upsert")
    assert fs.get_feature_vector(["budget"], {"team_id": 1}) == [50.0]
    fs.create_feature_group("teams", 2, data=_teams([1], budget=7.0), primary_key="team_id", online_enabled=True)
    assert fs.get_feature_vector(["teams_2.budget"], {"team_id": 1}) == [70.0]
    fs.get_feature_group("teams", 2).delete()
    with pytest.raises((errors.FeatureNotFoundError, errors.FeatureGroupNotFoundError)):
        fs.get_feature_vector(["teams_2.budget"], {"team_id": 1})


# ---------------------------------------------------------------- the connector


def test_connector_without_a_password(fs: cloudsdk.FeatureStore) -> None:
    connector = fs.get_online_featurestore_connector()
    assert isinstance(connector, cloudsdk.OnlineStoreConnector)
    assert connector.backend == "sqlite" and connector.password is None and connector.jdbc_url is None
    assert connector.to_dict()["backend"] == "sqlite" and set(connector.to_dict()) >= {"url", "user", "password"}
    assert "sqlite" in repr(connector) and "password" not in repr(connector)
    assert connector.name == f"{fs.name}_online"


PASSWORD = "S3cret-online!"


@contextmanager
def _mysql_user() -> Iterator[str]:
    """A MariaDB account with a password on database ``test``; yields the online store URL."""
    user = f"cso_{uuid.uuid4().hex[:8]}"
    admin = pymysql.connect(host="127.0.0.1", port=3306, user="root", password="", database="test")
    try:
        with admin.cursor() as cur:
            for host in ("%", "localhost"):
                cur.execute(f"CREATE USER '{user}'@'{host}' IDENTIFIED BY '{PASSWORD}'")
                cur.execute(f"GRANT ALL ON test.* TO '{user}'@'{host}'")
        yield f"mysql://{user}:{PASSWORD.replace('!', '%21')}@127.0.0.1:3306/test"
    finally:
        with admin.cursor() as cur:
            for host in ("%", "localhost"):
                cur.execute(f"DROP USER IF EXISTS '{user}'@'{host}'")
        admin.close()


@pytest.mark.parametrize("backend", ["local", "remote"])
def test_connector_password_goes_to_members_only(backend: str, tmp_path: Path, request: pytest.FixtureRequest,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    with _mysql_user() as url, _two_projects(backend, tmp_path, request) as (owner, reader, service):
        service.set_online_store(owner.project, url)
        connector = owner.get_online_featurestore_connector()
        assert connector.backend == "mysql" and connector.password == PASSWORD
        assert connector.jdbc_url == "jdbc:mysql://127.0.0.1:3306/test" and connector.user.startswith("cso_")
        assert connector.to_dict()["password"] == PASSWORD
        for text in (repr(connector), str(connector), json.dumps(connector.to_dict() | {"password": None})):
            assert PASSWORD not in text
        assert "***" in repr(connector)
        shared = reader.get_online_featurestore_connector()
        assert shared.backend == "mysql" and shared.password is None and "***" not in repr(shared)
        assert PASSWORD not in caplog.text


@contextmanager
def _two_projects(backend: str, tmp_path: Path, request: pytest.FixtureRequest,
                  ) -> Iterator[tuple[cloudsdk.FeatureStore, cloudsdk.FeatureStore, Any]]:
    """(the owner's store, the owner's store as a reader project sees it (shared), a store
    service for administrative steps on the owner's project)."""
    from cloudsdk.store import FeatureStoreService
    from cloudsdk.store.security import SecurityService

    if backend == "local":
        conn = cloudsdk.connect(path=tmp_path / "store")
        conn.create_project("reader")
        service = conn._backend
        SecurityService(service.catalog).share(conn.project, "reader")
        reader_conn = cloudsdk.connect(path=tmp_path / "store", project="reader")
        try:
            yield conn.get_feature_store(), reader_conn.get_feature_store(f"{conn.project}_featurestore"), service
        finally:
            reader_conn.close()
            conn.close()
        return
    remote: RemoteStore = request.getfixturevalue("remote_store")
    owner, owner_key = remote.new_project()
    reader, reader_key = remote.new_project()
    service = FeatureStoreService(remote.data_dir)
    try:
        SecurityService(service.catalog).share(owner, reader)
        with remote.connect(tmp_path / "o", owner, owner_key) as oc, \
                remote.connect(tmp_path / "r", reader, reader_key) as rc:
            yield oc.get_feature_store(), rc.get_feature_store(f"{owner}_featurestore"), service
    finally:
        service.close()


# ---------------------------------------------------------------- shared stores


@pytest.mark.parametrize("backend", ["local", "remote"])
def test_shared_store_serves_vectors_but_refuses_writes(backend: str, tmp_path: Path,
                                                        request: pytest.FixtureRequest) -> None:
    with _two_projects(backend, tmp_path, request) as (owner, reader, _service):
        owner.create_feature_group("teams", data=_teams(IDS), primary_key="team_id", online_enabled=True)
        assert reader.read_only
        assert reader.get_feature_vector(["budget", "team_name"], {"team_id": 3}) == [30.0, "team 3"]
        assert len(reader.get_feature_vectors(["budget"], [{"team_id": 1}, {"team_id": 2}])) == 2
        fg = reader.get_feature_group("teams")
        assert fg.read(online=True).shape == (5, 3)
        assert fg.check_online_consistency()["consistent"]
        assert reader.sql("SELECT budget FROM teams_1 WHERE team_id = 1", online=True)["budget"].tolist() == [10.0]
        for write in (fg.enable_online, fg.disable_online, fg.sync_online,
                      lambda: fg.insert(_teams([9]), online=True, offline=False)):
            with pytest.raises(errors.PermissionDeniedError, match="read-only"):
                write()
        assert reader.get_online_featurestore_connector().backend == "sqlite"


# ---------------------------------------------------------------- the functional API


def test_functional_api_online(tmp_path: Path) -> None:
    featurestore.connect(path=tmp_path / "fn")
    featurestore.create_featuregroup(_teams(IDS), "teams", primary_key="team_id", online=True,
                                     online_types={"budget": "DOUBLE"})
    featurestore.create_featuregroup(_scores(IDS), "scores", primary_key="team_id")
    featurestore.create_featuregroup(_fans([1]), "fans_live", primary_key="team_id", online=True, offline=False)
    assert featurestore.get_featuregroups(online=True) == ["fans_live_1", "teams_1"]
    assert featurestore.get_featuregroups() == ["fans_live_1", "scores_1", "teams_1"]
    assert set(featurestore.get_features_list(online=True)) == {"team_id", "budget", "team_name", "fans", "city"}
    assert featurestore.get_featuregroup("teams", online=True).shape == (5, 3)
    assert featurestore.get_feature("budget", online=True).shape == (5, 1)
    assert featurestore.get_feature("budget", featuregroup="teams", online=True).shape == (5, 1)
    assert featurestore.get_features(["budget", "team_name"], online=True).shape == (5, 2)
    got = featurestore.sql("SELECT team_name FROM teams_1 WHERE team_id = 4", online=True)
    assert got["team_name"].tolist() == ["team 4"]
    # the seed's semantics: online/offline say exactly which stores are written
    featurestore.insert_into_featuregroup(_teams([6]), "teams")  # online=False: offline only
    assert 6 not in featurestore.get_featuregroup("teams", online=True)["team_id"].tolist()
    report = featurestore.check_featuregroup_online_consistency("teams")
    assert report["missing_online"] == 1 and not report["consistent"]
    assert featurestore.sync_featuregroup_online("teams")["online_rows"] == 6
    featurestore.insert_into_featuregroup(_teams([7]), "teams", online=True, offline=True)
    featurestore.insert_into_featuregroup(_fans([2]), "fans_live", online=True, offline=False, mode="append")
    assert featurestore.check_featuregroup_online_consistency("teams")["consistent"]
    assert featurestore.get_feature_vector(["budget", "team_name"], {"team_id": 7}) == [70.0, "team 7"]
    assert featurestore.get_feature_vector(["budget"], {"team_id": 7}, return_type="dict") == {"budget": 70.0}
    assert featurestore.get_feature_vectors(["budget", "fans"], [{"team_id": 1}, {"team_id": 2}]) == [
        [10.0, 1000], [20.0, 2000]]
    featurestore.enable_featuregroup_online("scores", online_types={"points": "INT"})
    assert featurestore.get_feature_vector(["points"], {"team_id": 2}) == [6]
    featurestore.disable_featuregroup_online("scores")
    assert featurestore.get_featuregroups(online=True) == ["fans_live_1", "teams_1"]
    connector = featurestore.get_online_featurestore_connector()
    assert connector.backend == "sqlite"
    featurestore.disconnect()


# ---------------------------------------------------------------- the serving route, in-process


@pytest.fixture
def rest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """A server over a store whose project ``shop`` (alice owner) holds the three online groups
    and is shared with project ``reader`` (dave); its REST app in a TestClient."""
    import warnings

    from cloudsdk.server import rest_online
    from cloudsdk.server.app import build
    from cloudsdk.server.rest import create_app

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*httpx2", category=UserWarning)
        from fastapi.testclient import TestClient

    monkeypatch.setattr(rest_online, "AUTH_CACHE_TTL_S", 0.5)
    srv = build(tmp_path / "data")
    for project in ("shop", "reader"):
        srv.service.create_project(project)
    for user, project in (("alice", "shop"), ("dave", "reader")):
        srv.security.create_user(user)
        srv.security.add_member(project, user, "data_owner")
    srv.security.share("shop", "reader")
    import pyarrow as pa

    for name, df in (("teams", _teams(IDS)), ("scores", _scores(IDS)), ("fans", _fans(IDS[:-1]))):
        srv.service.create_group("shop", name, 1, pa.Table.from_pandas(df, preserve_index=False),
                                 primary_key=["team_id"], online_enabled=True)
    keys = {u: srv.security.create_api_key(u, "nb", ["featurestore", "project"])[0] for u in ("alice", "dave")}
    app = create_app(srv)
    with TestClient(app) as client:
        yield {"client": client, "server": srv, "keys": keys, "app": app,
               "url": "/api/v1/projects/shop/featurevectors"}
    srv.close()


def _headers(key: str, project: str | None = None) -> dict[str, str]:
    out = {"Authorization": f"ApiKey {key}", "content-type": "application/json"}
    if project:
        out["X-Cloudsdk-Project"] = project
    return out


def _error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["code"] == code and body["status"] == status and body["message"] and "details" in body, body
    return body


def test_rest_route_answers_with_compact_json(rest: dict[str, Any]) -> None:
    client, url, alice = rest["client"], rest["url"], rest["keys"]["alice"]
    body = {"features": VECTOR, "entries": [{"team_id": 2}, {"team_id": 5}], "allow_missing": True}
    response = client.post(url, content=json.dumps(body), headers=_headers(alice))
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    assert response.json() == {"features": VECTOR, "rows": [_expected(2), [50.0, 15, None, None]], "missing": [1]}
    assert ", " not in response.text and ": " not in response.text  # compact
    spec = {"fg": {"name": "teams", "version": 1}, "features": ["budget"], "joins": [], "filter": None}
    by_spec = client.post(url, json={"spec": spec, "entries": [{"team_id": 1}], "versions": {"teams": 1}},
                          headers=_headers(alice))
    assert by_spec.json()["rows"] == [[10.0]]
    # a reader project through the share
    shared = client.post(url, json={"features": ["budget"], "entries": [{"team_id": 3}]},
                         headers=_headers(rest["keys"]["dave"], "reader"))
    assert shared.json()["rows"] == [[30.0]]
    # the documented FastAPI route behind the fast path answers the same (OpenAPI lists it)
    from fastapi.testclient import TestClient

    from cloudsdk.server.rest import create_app
    from cloudsdk.server.rest_online import FeatureVectorFastPath

    app = create_app(rest["server"])
    app.user_middleware = [m for m in app.user_middleware if m.cls is not FeatureVectorFastPath]
    with TestClient(app) as plain:
        again = plain.post(url, json=body, headers=_headers(alice))
        assert again.json() == response.json()
        _error(plain.post(url, json=body), 401, "unauthenticated")
    assert "/api/v1/projects/{p}/featurevectors" in client.get("/openapi.json").json()["paths"]


@pytest.mark.parametrize(("body", "status", "code"), [
    (b"not json", 400, "invalid_argument"),
    (b"[1, 2]", 400, "invalid_argument"),
    (b'{"entries": [{"team_id": 1}]}', 400, "invalid_argument"),
    (b'{"features": "budget", "entries": [{"team_id": 1}]}', 400, "invalid_argument"),
    (b'{"features": ["budget"], "entries": {"team_id": 1}}', 400, "invalid_argument"),
    (b'{"features": ["budget"], "entries": [{"team_id": 1}], "allow_missing": "yes"}', 400, "invalid_argument"),
    (b'{"features": ["budget"], "entries": [{"team_id": 1}], "versions": {"teams": "1"}}', 400,
     "invalid_argument"),
    (b'{"features": ["budget"], "entries": [{"id": 1}]}', 400, "invalid_argument"),
    (b'{"features": ["budget"], "entries": [{"team_id": "1"}]}', 400, "invalid_argument"),
    (b'{"features": ["nope"], "entries": [{"team_id": 1}]}', 404, "feature_not_found"),
    (b'{"features": ["fans"], "entries": [{"team_id": 5}]}', 404, "feature_vector_not_found"),
])
def test_rest_route_errors_keep_the_one_shape(rest: dict[str, Any], body: bytes, status: int, code: str) -> None:
    _error(rest["client"].post(rest["url"], content=body, headers=_headers(rest["keys"]["alice"])), status, code)


def test_rest_route_authentication_and_authorization(rest: dict[str, Any], caplog: pytest.LogCaptureFixture) -> None:
    client, url, keys = rest["client"], rest["url"], rest["keys"]
    body = {"features": ["budget"], "entries": [{"team_id": 1}]}
    missing = client.post(url, json=body)
    _error(missing, 401, "unauthenticated")
    assert missing.headers["www-authenticate"] == "ApiKey"
    wrong = keys["alice"][:-4] + ("AAAA" if not keys["alice"].endswith("AAAA") else "BBBB")
    refused = _error(client.post(url, json=body, headers=_headers(wrong)), 401, "unauthenticated")
    assert wrong not in json.dumps(refused) and wrong not in caplog.text
    # dave is no member of shop: acting in shop, or in a project that shares nothing, is a 404
    _error(client.post(url, json=body, headers=_headers(keys["dave"])), 404, "project_not_found")
    _error(client.post("/api/v1/projects/nosuch/featurevectors", json=body, headers=_headers(keys["alice"])),
           404, "project_not_found")
    assert client.get(url, headers=_headers(keys["alice"])).status_code == 405  # only POST


def test_rest_route_caches_the_key_for_a_few_seconds(rest: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    client, url, srv, alice = rest["client"], rest["url"], rest["server"], rest["keys"]["alice"]
    calls: list[str] = []
    real = srv.security.authenticate
    monkeypatch.setattr(srv.security, "authenticate", lambda key: calls.append("auth") or real(key))
    body = {"features": ["budget"], "entries": [{"team_id": 1}]}
    for _ in range(20):
        assert client.post(url, json=body, headers=_headers(alice)).status_code == 200
    assert len(calls) <= 1  # one catalog lookup (and at most one last-used write) per TTL
    srv.security.revoke_api_key("alice", "nb")
    time.sleep(0.6)  # the TTL (0.5 s in these tests; AUTH_CACHE_TTL_S in production)
    _error(client.post(url, json=body, headers=_headers(alice)), 401, "unauthenticated")
    # every other route checks on every request
    _error(client.get("/api/v1/projects/shop/featuregroups", headers=_headers(alice)), 401, "unauthenticated")


def test_rest_route_refuses_huge_bodies(rest: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    from cloudsdk.server import rest_online

    monkeypatch.setattr(rest_online, "MAX_BODY_BYTES", 100)
    body = {"features": ["budget"], "entries": [{"team_id": i} for i in range(50)]}
    _error(rest["client"].post(rest["url"], json=body, headers=_headers(rest["keys"]["alice"])), 413,
           "payload_too_large")


# ---------------------------------------------------------------- the server's HTTP tuning


def test_access_log_keeps_failed_lookups_and_other_routes() -> None:
    import logging

    from cloudsdk.server._http import QuietServingFilter

    quiet = QuietServingFilter()

    def record(path: str, status: int) -> logging.LogRecord:
        return logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
                                 ("127.0.0.1:5", "POST", path, "1.1", status), None)

    assert not quiet.filter(record("/api/v1/projects/p/featurevectors", 200))
    assert quiet.filter(record("/api/v1/projects/p/featurevectors", 401))
    assert quiet.filter(record("/api/v1/projects/p/featuregroups", 200))
    assert quiet.filter(logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1, "started", None, None))


def test_one_write_per_response() -> None:
    import asyncio

    from cloudsdk.server._http import _CoalescingTransport

    class Recorder(asyncio.Transport):
        def __init__(self) -> None:
            super().__init__()
            self.writes: list[bytes] = []
            self.closed = False

        def write(self, data: Any) -> None:
            self.writes.append(bytes(data))

        def is_closing(self) -> bool:
            return self.closed

        def close(self) -> None:
            self.closed = True

        def get_write_buffer_size(self) -> int:
            return 0

    async def run() -> Recorder:
        real = Recorder()
        wrapped = _CoalescingTransport(real, asyncio.get_running_loop())
        wrapped.write(b"HTTP/1.1 200 OK\r\n\r\n")
        wrapped.write(b"")
        wrapped.write(b"body")
        assert real.writes == [] and wrapped.get_write_buffer_size() == len(b"HTTP/1.1 200 OK\r\n\r\nbody")
        await asyncio.sleep(0)
        assert real.writes == [b"HTTP/1.1 200 OK\r\n\r\nbody"]
        wrapped.write(b"last")
        wrapped.close()  # what was kept goes first
        assert real.writes[-1] == b"last" and real.closed
        return real

    assert len(asyncio.run(run()).writes) == 2
