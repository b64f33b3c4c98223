"""The REST API in-process (FastAPI TestClient) over a real store: authentication (401),
authorization (403) and invisibility (404), every route of the contract, Arrow uploads, and
the one JSON error shape."""

from __future__ import annotations

import base64
import json
import logging
import math
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from cryptography.hazmat.primitives.serialization import pkcs12

from cloudsdk import __version__
from cloudsdk import _protocol as P
from cloudsdk.server.app import Server, build
from cloudsdk.server.rest import ARROW_ROUTES, WRITE_ROUTES, create_app

with warnings.catch_warnings():  # starlette warns that httpx (pinned) should become httpx2
    warnings.filterwarnings("ignore", message=".*httpx2", category=UserWarning)
    from fastapi.testclient import TestClient

API = P.API_PREFIX
ROWS = pa.table({"id": [1, 2, 3], "score": [0.5, 1.5, 2.5], "city": ["a", "b", "c"]})


def arrow(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue().to_pybytes())


def options(**opts: Any) -> dict[str, str]:
    return {P.HEADER_OPTIONS: P.encode_options(opts)}


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    """fraud (alice owner, bob scientist), other (carol owner), reader (dave owner; fraud shared
    with it); fraud holds feature group ``tx`` version 1."""
    srv = build(tmp_path / "data")
    for project in ("fraud", "other", "reader"):
        srv.service.create_project(project)
    for user, project, role in (("alice", "fraud", "data_owner"), ("bob", "fraud", "data_scientist"),
                                ("carol", "other", "data_owner"), ("dave", "reader", "data_owner")):
        srv.security.create_user(user)
        srv.security.add_member(project, user, role)
    srv.security.share("fraud", "reader")
    srv.service.create_group("fraud", "tx", 1, ROWS, primary_key=["id"])
    srv.service.create_group("other", "secret", 1, ROWS, primary_key=["id"])
    yield srv
    srv.close()


@pytest.fixture
def keys(server: Server) -> dict[str, str]:
    both = ["featurestore", "project"]
    return {
        "alice": server.security.create_api_key("alice", "nb", both)[0],
        "alice_fs": server.security.create_api_key("alice", "fsonly", ["featurestore"])[0],
        "alice_project": server.security.create_api_key("alice", "projonly", ["project"])[0],
        "bob": server.security.create_api_key("bob", "nb", both)[0],
        "carol": server.security.create_api_key("carol", "nb", both)[0],
        "dave": server.security.create_api_key("dave", "nb", both)[0],
    }


@pytest.fixture
def client(server: Server) -> Iterator[TestClient]:
    with TestClient(create_app(server)) as c:
        yield c


def auth(key: str, project: str | None = None, **extra: str) -> dict[str, str]:
    headers = {"Authorization": f"ApiKey {key}", **extra}
    if project is not None:
        headers[P.HEADER_PROJECT] = project
    return headers


def assert_error(response: Any, status: int, code: str | None = None) -> dict[str, Any]:
    """The one error shape, with ``status`` in both the HTTP status and the body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) >= {"code", "message", "status"}, body
    assert body["status"] == status
    assert isinstance(body["message"], str) and body["message"]
    if code is not None:
        assert body["code"] == code, body
    return body


# --- the API document ---------------------------------------------------------------------------


def test_openapi_lists_every_route_of_the_contract(client: TestClient) -> None:
    doc = client.get("/openapi.json")
    assert doc.status_code == 200
    paths = doc.json()["paths"]
    for name, spec in P.ROUTES.items():
        method, path = spec.split(" ", 1)
        assert API + path in paths, name
        assert method.lower() in paths[API + path], name
        assert paths[API + path][method.lower()]["operationId"] == name
    for name in ARROW_ROUTES:
        method, path = P.ROUTES[name].split(" ", 1)
        assert P.ARROW_STREAM in paths[API + path][method.lower()]["requestBody"]["content"]
    docs = client.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()


def test_info(client: TestClient, server: Server, keys: dict[str, str]) -> None:
    server.flight_port = 12345
    server.flight_hostname = "cloudsdk-server"
    expected = {"version": __version__, "flight_port": 12345, "flight_hostname": "cloudsdk-server"}
    assert client.get(f"{API}/info", headers=auth(keys["alice"])).json() == expected
    assert client.get(f"{API}/info").json() == expected  # no key: version and port only
    assert_error(client.get(f"{API}/info", headers=auth(keys["alice"] + "x")), 401, "unauthenticated")


# --- 401: who are you? ----------------------------------------------------------------------------


@pytest.mark.parametrize("header", [None, "", "Bearer abc", "ApiKey", "ApiKey not-a-key",
                                    "ApiKey csk_0123456789ab.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"])
def test_no_or_bad_key_is_401_with_the_scheme(client: TestClient, header: str | None) -> None:
    headers = {} if header is None else {"Authorization": header}
    response = client.get(f"{API}/projects/fraud/featuregroups", headers=headers)
    body = assert_error(response, 401, "unauthenticated")
    assert response.headers["www-authenticate"] == "ApiKey"
    if header and " " in header:
        assert header.split(" ", 1)[1] not in body["message"]


def test_wrong_secret_and_revoked_key_are_401(client: TestClient, server: Server, keys: dict[str, str]) -> None:
    url = f"{API}/projects/fraud/featuregroups"
    wrong = keys["alice"][:-4] + ("AAAA" if not keys["alice"].endswith("AAAA") else "BBBB")
    assert "invalid API key" in assert_error(client.get(url, headers=auth(wrong)), 401)["message"]
    assert client.get(url, headers=auth(keys["alice"])).status_code == 200
    server.security.revoke_api_key("alice", "nb")
    assert "revoked" in assert_error(client.get(url, headers=auth(keys["alice"])), 401)["message"]


# --- 404: what you may not see does not exist ----------------------------------------------------------


def test_non_member_gets_404_like_a_missing_project(client: TestClient, keys: dict[str, str]) -> None:
    carol = auth(keys["carol"])
    foreign = assert_error(client.get(f"{API}/projects/fraud/featuregroups", headers=carol), 404)
    missing = assert_error(client.get(f"{API}/projects/nosuch/featuregroups", headers=carol), 404)
    assert foreign == json.loads(json.dumps(missing).replace("nosuch", "fraud"))
    assert "tx" not in json.dumps(foreign)


def test_another_projects_group_is_404_with_the_body_of_a_missing_one(client: TestClient,
                                                                      keys: dict[str, str]) -> None:
    alice = auth(keys["alice"])
    for suffix in ("", "/latest", "/metadata", "/statistics", "/commits"):
        existing = client.get(f"{API}/projects/other/featuregroups/secret{suffix}", headers=alice)
        missing = client.get(f"{API}/projects/other/featuregroups/nosuch{suffix}", headers=alice)
        assert_error(existing, 404)
        assert existing.json() == missing.json()
        assert "secret" not in existing.text
    # a write is refused the same way, before anything is parsed
    response = client.post(f"{API}/projects/other/featuregroups/secret/insert", headers=alice, content=b"junk")
    assert response.json() == assert_error(client.get(f"{API}/projects/other", headers=alice), 404)


def test_acting_in_a_project_you_are_not_member_of_is_404(client: TestClient, keys: dict[str, str]) -> None:
    response = client.get(f"{API}/projects/fraud/featuregroups", headers=auth(keys["alice"], "other"))
    assert assert_error(response, 404)["message"] == "no project named 'other'"


# --- 403: known, but not allowed ----------------------------------------------------------------------


def test_data_scientist_reads_but_does_not_write(client: TestClient, keys: dict[str, str]) -> None:
    bob = auth(keys["bob"])
    assert client.get(f"{API}/projects/fraud/featuregroups/tx", headers=bob).json()["name"] == "tx"
    response = client.post(f"{API}/projects/fraud/featuregroups/tx/insert", headers={**bob, **options()},
                           content=arrow(ROWS))
    assert "only data owners may write" in assert_error(response, 403, "forbidden")["message"]


WRITE_REQUESTS = {
    "create_group": ("POST", "/projects/{p}/featuregroups"),
    "update_group": ("PATCH", "/projects/{p}/featuregroups/tx/versions/1"),
    "delete_group": ("DELETE", "/projects/{p}/featuregroups/tx/versions/1"),
    "insert": ("POST", "/projects/{p}/featuregroups/tx/insert"),
    "add_metadata": ("POST", "/projects/{p}/featuregroups/tx/metadata"),
    "remove_metadata": ("POST", "/projects/{p}/featuregroups/tx/metadata/remove"),
    "compute_statistics": ("POST", "/projects/{p}/featuregroups/tx/statistics"),
    "compute_training_dataset_statistics": ("POST", "/projects/{p}/trainingdatasets/tx/statistics"),
    "create_training_dataset": ("POST", "/projects/{p}/trainingdatasets"),
    "delete_training_dataset": ("DELETE", "/projects/{p}/trainingdatasets/td/versions/1"),
    "create_training_dataset_from_query": ("POST", "/projects/{p}/trainingdatasets/query"),
    "prepare_training_dataset": ("POST", "/projects/{p}/trainingdatasets/prepare"),
    "register_training_dataset": ("POST", "/projects/{p}/trainingdatasets/register"),
    "create_s3_connector": ("POST", "/projects/{p}/storageconnectors"),
    "delete_storage_connector": ("DELETE", "/projects/{p}/storageconnectors/s3c"),
    "create_jdbc_connector": ("POST", "/projects/{p}/storageconnectors/jdbc"),
    "create_on_demand_group": ("POST", "/projects/{p}/featuregroups/ondemand"),
    "delete_rows": ("POST", "/projects/{p}/featuregroups/tx/delete"),
    "compact": ("POST", "/projects/{p}/featuregroups/tx/compact"),
    "set_retention": ("PUT", "/projects/{p}/featuregroups/tx/retention"),
    "add_validation_rule": ("POST", "/projects/{p}/featuregroups/tx/validation/rules"),
    "remove_validation_rule": ("DELETE", "/projects/{p}/featuregroups/tx/validation/rules/r1"),
    "run_validation": ("POST", "/projects/{p}/featuregroups/tx/validation/runs"),
    "create_training_dataset_pit": ("POST", "/projects/{p}/trainingdatasets/pit"),
    "add_tag": ("POST", "/projects/{p}/tags/featuregroup/tx"),
    "remove_tag": ("DELETE", "/projects/{p}/tags/featuregroup/tx/pii"),
    "set_jobs": ("PUT", "/projects/{p}/jobs/featuregroup/tx"),
    "add_training_dataset_metadata": ("POST", "/projects/{p}/trainingdatasets/td/metadata"),
    "remove_training_dataset_metadata": ("POST", "/projects/{p}/trainingdatasets/td/metadata/remove"),
    "enable_online": ("POST", "/projects/{p}/featuregroups/tx/online/enable"),
    "disable_online": ("POST", "/projects/{p}/featuregroups/tx/online/disable"),
    "sync_online": ("POST", "/projects/{p}/featuregroups/tx/online/sync"),
}


def test_connector_secrets_go_only_to_members(client: TestClient, server: Server, keys: dict[str, str]) -> None:
    server.service.create_s3_connector("fraud", "s3c", bucket="fraud-bucket", access_key="AKIAFRAUD",
                                       secret_key="fraud-secret-key")
    url = f"{API}/projects/fraud/storageconnectors/s3c"
    plain = client.get(url, headers=auth(keys["bob"]))
    assert plain.status_code == 200 and "fraud-secret-key" not in plain.text
    assert plain.json()["credentials"] == "access key pair"
    member = client.get(url, params={"secrets": "true"}, headers=auth(keys["bob"]))
    assert member.status_code == 200 and member.json()["secret_key"] == "fraud-secret-key"
    reader = client.get(url, params={"secrets": "true"}, headers=auth(keys["dave"], "reader"))
    assert "members" in assert_error(reader, 403, "forbidden")["message"]
    listed = client.get(f"{API}/projects/fraud/storageconnectors", headers=auth(keys["dave"], "reader"))
    assert listed.status_code == 200 and "fraud-secret-key" not in listed.text


def test_write_requests_cover_every_write_route() -> None:
    assert set(WRITE_REQUESTS) == WRITE_ROUTES


@pytest.mark.parametrize("route", sorted(WRITE_REQUESTS))
def test_every_write_route_refuses_scientists_and_shared_stores(client: TestClient, server: Server,
                                                                keys: dict[str, str], route: str) -> None:
    method, path = WRITE_REQUESTS[route]
    url = API + path.format(p="fraud")
    as_scientist = client.request(method, url, headers=auth(keys["bob"]), content=b"{}")
    assert_error(as_scientist, 403, "forbidden")
    as_reader = client.request(method, url, headers=auth(keys["dave"], "reader"), content=b"{}")
    assert "read-only" in assert_error(as_reader, 403, "forbidden")["message"]
    assert server.service.describe_group("fraud", "tx", 1)["metadata"] == {}
    assert server.service.latest_version("fraud", "tx") == 1


def test_missing_scope_is_403(client: TestClient, keys: dict[str, str]) -> None:
    fs_only, project_only = auth(keys["alice_fs"]), auth(keys["alice_project"])
    assert client.get(f"{API}/projects/fraud/featuregroups", headers=fs_only).status_code == 200
    for route in ("", "/featurestores", "/credentials"):
        body = assert_error(client.get(f"{API}/projects/fraud{route}", headers=fs_only), 403, "forbidden")
        assert "'project' scope" in body["message"]
    assert client.get(f"{API}/projects/fraud", headers=project_only).status_code == 200
    body = assert_error(client.get(f"{API}/projects/fraud/featuregroups", headers=project_only), 403)
    assert "'featurestore' scope" in body["message"]


def test_shared_store_is_readable_from_the_reader_project(client: TestClient, server: Server,
                                                          keys: dict[str, str]) -> None:
    dave = auth(keys["dave"], "reader")
    groups = client.get(f"{API}/projects/fraud/featuregroups", headers=dave)
    assert groups.status_code == 200 and [g["name"] for g in groups.json()] == ["tx"]
    assert client.get(f"{API}/projects/fraud", headers=dave).json()["name"] == "fraud"
    stores = client.get(f"{API}/projects/reader/featurestores", headers=auth(keys["dave"])).json()
    assert stores == {"featurestores": ["reader_featurestore", "fraud_featurestore"]}
    # not shared: invisible; without the acting project, dave is no member of fraud: invisible
    assert_error(client.get(f"{API}/projects/other/featuregroups", headers=dave), 404)
    assert_error(client.get(f"{API}/projects/fraud/featuregroups", headers=auth(keys["dave"])), 404)
    # a certificate is only issued for a project the user is a member of
    assert_error(client.get(f"{API}/projects/fraud/credentials", headers=dave), 404)


# --- every route ----------------------------------------------------------------------------------


def test_every_route_happy_path(client: TestClient, server: Server, keys: dict[str, str]) -> None:
    svc = server.service
    h = auth(keys["alice"], "fraud")
    base = f"{API}/projects/fraud"

    def ok(response: Any, status: int = 200) -> Any:
        assert response.status_code == status, response.text
        return response.json() if response.content else None

    assert ok(client.get(base, headers=h)) == svc.get_project("fraud")
    assert ok(client.get(f"{base}/featurestores", headers=h)) == {"featurestores": ["fraud_featurestore"]}
    assert ok(client.get(f"{base}/featuregroups", headers=h)) == svc.list_groups("fraud")

    created = ok(client.post(f"{base}/featuregroups", headers={**h, **options(
        name="people", version=None, primary_key=["id"], description="who", metadata={"team": "x"})},
        content=arrow(ROWS)), 201)
    assert created == svc.describe_group("fraud", "people", 1)
    assert created["description"] == "who" and created["metadata"] == {"team": "x"}
    schema_only = ok(client.post(f"{base}/featuregroups", headers={**h, **options(
        name="empty", has_data=False, primary_key=["id"])}, content=arrow(ROWS.schema.empty_table())), 201)
    assert schema_only["version"] == 1 and svc.history("fraud", "empty", 1)[0]["rows_inserted"] == 0

    assert ok(client.get(f"{base}/featuregroups/people", headers=h)) == svc.describe_group("fraud", "people")
    assert ok(client.get(f"{base}/featuregroups/people?version=1", headers=h))["version"] == 1
    assert ok(client.get(f"{base}/featuregroups/people/latest", headers=h)) == {"version": 1}
    assert ok(client.get(f"{base}/featuregroups/nosuch/latest", headers=h)) == {"version": None}

    updated = ok(client.patch(f"{base}/featuregroups/people/versions/1", headers=h,
                              json={"description": "people v1", "feature_descriptions": {"city": "where"},
                                    "statistics_config": None}))
    assert updated["description"] == "people v1"
    assert [f["description"] for f in updated["features"] if f["name"] == "city"] == ["where"]

    more = pa.table({"id": [4], "score": [3.5], "city": ["d"]})
    commit = ok(client.post(f"{base}/featuregroups/people/insert",
                            headers={**h, **options(version=1, mode="append")}, content=arrow(more)))
    assert commit["rows_inserted"] == 1
    assert svc.read_group("fraud", "people", 1).num_rows == 4

    assert ok(client.post(f"{base}/featuregroups/people/metadata?version=1", headers=h,
                          json={"items": {"owner": "alice", "tier": "gold"}})) == {
        "team": "x", "owner": "alice", "tier": "gold"}
    assert ok(client.get(f"{base}/featuregroups/people/metadata?version=1&keys=owner&keys=nope",
                         headers=h)) == {"owner": "alice"}
    assert ok(client.get(f"{base}/featuregroups/people/metadata", headers=h))["tier"] == "gold"
    assert ok(client.post(f"{base}/featuregroups/people/metadata/remove?version=1", headers=h,
                          json={"keys": ["tier"]})) == {"team": "x", "owner": "alice"}

    stats = ok(client.post(f"{base}/featuregroups/people/statistics?version=1", headers=h,
                           json={"columns": ["score"]}))
    assert list(stats["features"]) == ["score"]
    latest = ok(client.get(f"{base}/featuregroups/people/statistics?version=1", headers=h))
    assert latest == svc.get_statistics("fraud", "people", 1)
    first = ok(client.get(f"{base}/featuregroups/people/statistics?version=1&commit_version=0", headers=h))
    assert first["commit_version"] == 0
    assert ok(client.get(f"{base}/featuregroups/empty/statistics", headers=h)) is None

    history = ok(client.get(f"{base}/featuregroups/people/commits?version=1&limit=1", headers=h))
    assert history == svc.history("fraud", "people", 1, limit=1) and history[0]["mode"] == "append"

    spec = ok(client.post(f"{base}/query/features", headers=h,
                          json={"features": ["score", "city"], "featuregroups_version_dict": {"people": 1},
                                "join_key": None}))
    assert spec == svc.feature_query("fraud", ["score", "city"], {"people": 1})
    planned = ok(client.post(f"{base}/query/plan", headers=h, json={"spec": spec}))
    sql, outputs = svc.plan("fraud", spec)
    assert planned["sql"] == sql
    assert planned["outputs"] == [[c, {"name": g.name, "version": g.version}] for c, g in outputs]

    td = ok(client.post(f"{base}/trainingdatasets", headers={**h, **options(
        name="td", version=1, data_format="csv", description="train", provenance={"from": "people"})},
        content=arrow(ROWS)), 201)
    assert td == svc.describe_training_dataset("fraud", "td", 1) and td["data_format"] == "csv"
    assert ok(client.get(f"{base}/trainingdatasets", headers=h)) == svc.list_training_datasets("fraud")
    assert ok(client.get(f"{base}/trainingdatasets/td?version=1", headers=h))["provenance"] == {"from": "people"}
    assert ok(client.get(f"{base}/trainingdatasets/td/statistics", headers=h)) == \
        svc.training_dataset_statistics("fraud", "td")
    assert ok(client.get(f"{base}/storageconnectors", headers=h)) == svc.list_storage_connectors("fraud")

    assert ok(client.delete(f"{base}/trainingdatasets/td/versions/1", headers=h), 204) is None
    assert svc.list_training_datasets("fraud") == []
    assert ok(client.delete(f"{base}/featuregroups/people/versions/1", headers=h), 204) is None
    assert svc.latest_version("fraud", "people") is None


def test_credentials_bundle(client: TestClient, server: Server, keys: dict[str, str]) -> None:
    response = client.get(f"{API}/projects/fraud/credentials", headers=auth(keys["alice"]))
    assert response.status_code == 200
    bundle = response.json()
    assert set(bundle) == {"ca_chain_pem", "certificate_pem", "private_key_pem", "pkcs12",
                           "keystore_jks", "truststore_jks", "password"}
    assert bundle["ca_chain_pem"].encode() == server.ca.ca_pem
    assert server.ca.verify_client_certificate(bundle["certificate_pem"]) == ("alice", "fraud")
    key, cert, _chain = pkcs12.load_key_and_certificates(base64.b64decode(bundle["pkcs12"]),
                                                         bundle["password"].encode())
    assert key is not None and cert is not None
    for jks in ("keystore_jks", "truststore_jks"):
        assert base64.b64decode(bundle[jks])[:4] == b"\xfe\xed\xfe\xed"  # the JKS magic number


def test_arrow_upload_upsert_keeps_types_and_rows(client: TestClient, server: Server,
                                                  keys: dict[str, str]) -> None:
    h = auth(keys["alice"])
    changed = pa.table({"id": [2, 9], "score": [20.0, 90.0], "city": ["bb", "z"]})
    response = client.post(f"{API}/projects/fraud/featuregroups/tx/insert",
                           headers={**h, **options(version=1, mode="upsert"), "content-type": P.ARROW_STREAM},
                           content=arrow(changed))
    assert response.status_code == 200, response.text
    assert response.json()["rows_updated"] == 1 and response.json()["rows_inserted"] == 1
    table = server.service.read_group("fraud", "tx", 1).sort_by("id")
    assert table.schema.field("score").type == pa.float64()
    assert table.to_pydict() == {"id": [1, 2, 3, 9], "score": [0.5, 20.0, 2.5, 90.0],
                                 "city": ["a", "bb", "c", "z"]}


def test_concurrent_inserts_to_one_group_all_land(client: TestClient, server: Server,
                                                  keys: dict[str, str]) -> None:
    h = {**auth(keys["alice"]), **options(version=1)}

    def insert(i: int) -> int:
        rows = pa.table({"id": [100 + i], "score": [float(i)], "city": [f"c{i}"]})
        return client.post(f"{API}/projects/fraud/featuregroups/tx/insert", headers=h,
                           content=arrow(rows)).status_code

    with ThreadPoolExecutor(4) as pool:
        assert list(pool.map(insert, range(6))) == [200] * 6
    assert server.service.read_group("fraud", "tx", 1).num_rows == 3 + 6
    assert len(server.service.history("fraud", "tx", 1)) == 1 + 6


def test_nan_statistics_round_trip(client: TestClient, server: Server, keys: dict[str, str]) -> None:
    server.service.create_group("fraud", "one", 1, pa.table({"id": [1], "x": [1.0]}))
    stats = client.get(f"{API}/projects/fraud/featuregroups/one/statistics", headers=auth(keys["alice"])).json()
    expected = server.service.get_statistics("fraud", "one", 1)
    assert stats["features"]["x"]["count"] == expected["features"]["x"]["count"]
    for got, want in zip(stats["features"]["x"].values(), expected["features"]["x"].values(), strict=True):
        assert got == want or (isinstance(want, float) and math.isnan(want) and math.isnan(got))


# --- the one error shape -------------------------------------------------------------------------------


def test_error_shape_of_each_kind(client: TestClient, server: Server, keys: dict[str, str]) -> None:
    h = auth(keys["alice"])
    base = f"{API}/projects/fraud"
    # validation of parameters (FastAPI) -> 400 invalid_argument
    assert "version" in assert_error(client.get(f"{base}/featuregroups/tx?version=abc", headers=h),
                                     400, "invalid_argument")["message"]
    assert_error(client.delete(f"{base}/featuregroups/tx/versions/one", headers=h), 400, "invalid_argument")
    # unknown route and method
    assert_error(client.get(f"{API}/nothing/here", headers=h), 404, "not_found")
    assert_error(client.get("/favicon.ico"), 404, "not_found")
    assert_error(client.put(f"{base}/featuregroups", headers=h), 405, "method_not_allowed")
    # store errors by code
    assert_error(client.get(f"{base}/featuregroups/nosuch", headers=h), 404, "featuregroup_not_found")
    assert_error(client.get(f"{base}/trainingdatasets/nosuch", headers=h), 404, "training_dataset_not_found")
    assert_error(client.post(f"{base}/featuregroups", headers={**h, **options(name="tx", version=1)},
                             content=arrow(ROWS)), 409, "already_exists")
    assert_error(client.post(f"{base}/featuregroups", headers={**h, **options(name="Bad-Name")},
                             content=arrow(ROWS)), 400, "invalid_name")
    mismatch = assert_error(client.post(f"{base}/featuregroups/tx/insert", headers={**h, **options(version=1)},
                                        content=arrow(pa.table({"id": [5]}))), 400, "schema_mismatch")
    assert "differences" in mismatch["details"]
    assert "not stored online" in assert_error(client.post(
        f"{base}/featuregroups/tx/insert", headers={**h, **options(online=True)}, content=arrow(ROWS)),
        400, "invalid_argument")["message"]
    assert_error(client.post(f"{base}/featuregroups/tx/insert", headers={**h, **options(mode="upsert")},
                             content=arrow(pa.table({"id": [7, 7], "score": [1.0, 2.0], "city": ["x", "y"]}))),
                 400, "data_validation_error")
    assert_error(client.post(f"{base}/query/features", headers=h, json={"features": ["nope"]}), 404,
                 "feature_not_found")
    # malformed requests
    assert_error(client.post(f"{base}/featuregroups/tx/insert", headers=h, content=b"not arrow"),
                 400, "invalid_argument")
    assert_error(client.post(f"{base}/featuregroups/tx/insert", headers=h), 400, "invalid_argument")
    assert_error(client.post(f"{base}/featuregroups/tx/insert", headers={**h, P.HEADER_OPTIONS: "!!"},
                             content=arrow(ROWS)), 400, "invalid_argument")
    unknown = assert_error(client.post(f"{base}/featuregroups/tx/insert", headers={**h, **options(colour="red")},
                                       content=arrow(ROWS)), 400, "invalid_argument")
    assert "colour" in unknown["message"]
    assert_error(client.post(f"{base}/featuregroups", headers={**h, **options()}, content=arrow(ROWS)),
                 400, "invalid_argument")
    assert_error(client.post(f"{base}/query/plan", headers=h, content=b"{nope"), 400, "invalid_argument")
    assert_error(client.post(f"{base}/query/plan", headers=h, json=[1]), 400, "invalid_argument")
    assert_error(client.post(f"{base}/featuregroups/tx/metadata", headers=h, json={"items": [1]}),
                 400, "invalid_argument")
    assert_error(client.patch(f"{base}/featuregroups/tx/versions/1", headers=h, json={"owner": "x"}),
                 400, "invalid_argument")


def test_unexpected_errors_are_500_without_details(client: TestClient, server: Server, keys: dict[str, str],
                                                   monkeypatch: pytest.MonkeyPatch,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    secret_path = "/srv/other-tenant/projects/private/secret.delta"

    def boom(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError(f"disk failure at {secret_path}")

    monkeypatch.setattr(server.service, "list_groups", boom)
    with caplog.at_level(logging.ERROR, logger="cloudsdk.server"):
        response = client.get(f"{API}/projects/fraud/featuregroups", headers=auth(keys["alice"]))
    body = assert_error(response, 500, "internal_error")
    assert secret_path not in response.text and "RuntimeError" not in response.text
    assert body["message"] == "internal server error"
    assert secret_path in caplog.text  # the traceback is in the server's log


def test_api_keys_never_reach_the_log(client: TestClient, server: Server, keys: dict[str, str],
                                      caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG):
        client.get(f"{API}/projects/fraud/featuregroups", headers=auth(keys["alice"]))
        client.get(f"{API}/projects/fraud/featuregroups", headers=auth(keys["alice"] + "x"))
        client.get(f"{API}/projects/fraud/credentials", headers=auth(keys["alice"]))
    secret = keys["alice"].split(".", 1)[1]
    assert secret not in caplog.text


def test_preview_gives_the_first_rows_as_json(client: TestClient, keys: dict[str, str]) -> None:
    body = client.get(f"{API}/projects/fraud/featuregroups/tx/preview", params={"n": 2},
                      headers=auth(keys["bob"]))
    assert body.status_code == 200, body.text
    preview = body.json()
    assert preview["columns"] and len(preview["rows"]) <= 2
    assert all(len(row) == len(preview["columns"]) for row in preview["rows"])
    too_many = client.get(f"{API}/projects/fraud/featuregroups/tx/preview", params={"n": 500},
                          headers=auth(keys["bob"]))
    assert "1 to 100" in assert_error(too_many, 400, "invalid_argument")["message"]
