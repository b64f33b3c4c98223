"""The remote backend: the Backend protocol over HTTPS (metadata, writes) and Arrow Flight
with mutual TLS (reads), as :mod:`cloudsdk._protocol` defines them.

Light on purpose: requests, pyarrow (with Flight) and cryptography only.
"""

from __future__ import annotations

import base64
import json
import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any, NoReturn
from urllib.parse import quote

import pyarrow as pa
import requests
from requests.adapters import HTTPAdapter

from cloudsdk import _protocol as P
from cloudsdk.errors import ServiceError, TLSError

log = logging.getLogger(__name__)

RETRY_DELAYS_S = (0.2, 0.6, 1.5)
RETRY_STATUS = frozenset({502, 503, 504})
TIMEOUT_S = (10.0, 300.0)  # connect, read


def _arrow_body(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue().to_pybytes())


def _json_value(value: Any) -> Any:
    """JSON for the values JSON lacks: numpy scalars as numbers, times as ISO-8601, bytes as base64."""
    item = getattr(value, "item", None)
    if callable(item):
        return item()
    isoformat = getattr(value, "isoformat", None)
    if callable(isoformat):
        return isoformat()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    raise TypeError(f"a {type(value).__name__} cannot be sent as JSON")


class _NoHostnameAdapter(HTTPAdapter):
    """Verifies the certificate chain but not the host name (hostname_verification=False)."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["assert_hostname"] = False
        super().init_poolmanager(*args, **kwargs)


class RestClient:
    """JSON/Arrow calls to the server's REST API, with typed errors and bounded retries."""

    def __init__(self, host: str, port: int, api_key: str, acting_project: str, *,
                 verify: str | bool = True, hostname_verification: bool = True) -> None:
        self.base = f"https://{host}:{port}{P.API_PREFIX}"
        self.session = requests.Session()
        # Passed on every request: a session-level ``verify`` loses to REQUESTS_CA_BUNDLE /
        # CURL_CA_BUNDLE in the environment (requests merges those in first).
        self.verify = verify
        if not hostname_verification:
            self.session.mount("https://", _NoHostnameAdapter())
        self._auth = f"ApiKey {api_key}"
        self.acting_project = acting_project
        self._json_headers = {P.HEADER_AUTH: self._auth, P.HEADER_PROJECT: acting_project,
                              "content-type": "application/json"}
        self._templates: dict[str, str] = {}

    def call(self, route: str, *, params: Mapping[str, Any] | None = None, json_body: Any = None,
             table: pa.Table | None = None, options: Mapping[str, Any] | None = None, **path: Any) -> Any:
        """Call route ``route`` of ``_protocol.ROUTES``; returns the decoded JSON."""
        method, template = P.ROUTES[route].split(" ", 1)
        url = self.base + template.format(**{k: quote(str(v), safe="") for k, v in path.items()})
        headers = {P.HEADER_AUTH: self._auth, P.HEADER_PROJECT: self.acting_project}
        data: bytes | None = None
        if table is not None:
            headers["content-type"] = P.ARROW_STREAM
            data = _arrow_body(table)
        if options is not None:
            headers[P.HEADER_OPTIONS] = P.encode_options(dict(options))
        clean = {k: v for k, v in (params or {}).items() if v is not None}
        attempts = len(RETRY_DELAYS_S) + 1 if method == "GET" else 1
        for attempt in range(attempts):
            try:
                response = self.session.request(method, url, params=clean, json=json_body, data=data,
                                                headers=headers, timeout=TIMEOUT_S, verify=self.verify)
            except requests.exceptions.SSLError as exc:
                raise self._tls_error(exc) from exc
            except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
                if attempt + 1 < attempts:
                    time.sleep(RETRY_DELAYS_S[attempt])
                    continue
                raise ServiceError(
                    f"cannot reach the cloudsdk server at {self.base}: check the host, the port and "
                    "that the server runs (and that a security group lets this machine in)"
                ) from exc
            if response.status_code in RETRY_STATUS and attempt + 1 < attempts:
                time.sleep(RETRY_DELAYS_S[attempt])
                continue
            return self._decode(response)
        raise AssertionError("unreachable")  # pragma: no cover

    def _tls_error(self, exc: Exception) -> TLSError:
        detail = str(exc).lower()
        hint = ("the certificate is not for this host name: connect with a name it lists, or pass "
                "hostname_verification=False (the chain is still verified)"
                if "hostname" in detail or "doesn't match" in detail or "ip address mismatch" in detail
                else "the server's certificate is not trusted: pass trust_store_path= with its CA (PEM)")
        return TLSError(f"TLS with {self.base} failed: {hint}")

    def post_json(self, route: str, body: Any, **path: Any) -> Any:
        """One POST of a compact JSON body on the session's keep-alive connection (no retry:
        the serving path; a dropped idle connection is re-opened once by urllib3)."""
        template = self._templates.get(route)
        if template is None:
            template = self._templates[route] = P.ROUTES[route].split(" ", 1)[1]
        url = self.base + template.format(**{k: quote(str(v), safe="") for k, v in path.items()})
        data = json.dumps(body, separators=(",", ":"), default=_json_value).encode()
        try:
            response = self.session.post(url, data=data, headers=self._json_headers, timeout=TIMEOUT_S,
                                         verify=self.verify)
        except requests.exceptions.SSLError as exc:
            raise self._tls_error(exc) from exc
        except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
            raise ServiceError(f"cannot reach the cloudsdk server at {self.base}: check the host, the port and "
                               "that the server runs") from exc
        return self._decode(response)

    def _decode(self, response: requests.Response) -> Any:
        if response.status_code >= 400:
            try:
                payload = response.json()
            except ValueError:
                payload = None
            if isinstance(payload, dict) and "code" in payload:
                P.raise_error(payload)
            raise ServiceError(f"the server answered HTTP {response.status_code} to {response.request.method} "
                               f"{response.url.split('?')[0]}")
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError as exc:
            raise ServiceError("the server sent a response that is not JSON") from exc

    def close(self) -> None:
        """Close the HTTP connections."""
        self.session.close()


def _sign(private_key_pem: bytes, message: bytes) -> bytes:
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

    key = serialization.load_pem_private_key(private_key_pem, password=None)
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key.sign(message, ec.ECDSA(hashes.SHA256()))
    if isinstance(key, rsa.RSAPrivateKey):
        return key.sign(message, padding.PKCS1v15(), hashes.SHA256())
    raise TLSError("the client certificate's key type is not supported (use EC or RSA)")


class FlightReader:
    """Reads Arrow tables from the server's Flight service over mutual TLS."""

    def __init__(self, host: str, port: int, api_key: str, acting_project: str, *, root_pem: bytes,
                 cert_pem: bytes, key_pem: bytes, hostname_verification: bool = True,
                 tls_name: str | None = None) -> None:
        import pyarrow.flight as fl

        self._fl = fl
        prefix = P.key_prefix(api_key)
        cert_b64 = base64.b64encode(cert_pem).decode("ascii")
        auth = f"ApiKey {api_key}"

        class _Proof(fl.ClientMiddleware):
            def sending_headers(self) -> dict[str, str]:
                ts = str(int(time.time()))
                proof = _sign(key_pem, P.proof_message(ts, prefix, acting_project))
                return {P.HEADER_AUTH: auth, P.HEADER_PROJECT: acting_project, P.HEADER_CERT: cert_b64,
                        P.HEADER_TIMESTAMP: ts, P.HEADER_PROOF: base64.b64encode(proof).decode("ascii")}

        class _ProofFactory(fl.ClientMiddlewareFactory):
            def start_call(self, info: Any) -> _Proof:
                return _Proof()

        self.location = f"grpc+tls://{host}:{port}"
        self.client = fl.FlightClient(
            self.location, tls_root_certs=root_pem, cert_chain=cert_pem, private_key=key_pem,
            # hostname_verification=False: check the chain, and the certificate against a name it
            # does carry (the server says which; its own CA's certificates carry cloudsdk-server)
            override_hostname=None if hostname_verification else (tls_name or "cloudsdk-server"),
            middleware=[_ProofFactory()],
        )

    def read(self, ticket: bytes) -> pa.Table:
        """Run one ticket; the whole result as a Table."""
        fl = self._fl
        try:
            return self.client.do_get(fl.Ticket(ticket)).read_all()
        except fl.FlightError as exc:
            self._raise(exc)

    def exchange(self, command: bytes, table: pa.Table) -> pa.Table:
        """Send ``table`` with an exchange command (a ticket); the result as a Table."""
        fl = self._fl
        try:
            writer, reader = self.client.do_exchange(fl.FlightDescriptor.for_command(command))
            with writer:
                writer.begin(table.schema)
                writer.write_table(table)
                writer.done_writing()
                return reader.read_all()
        except fl.FlightError as exc:
            self._raise(exc)

    def _raise(self, exc: Exception) -> NoReturn:
        """The cloudsdk error a Flight failure stands for."""
        fl = self._fl
        text = str(exc)
        marker = text.find(P.FLIGHT_ERROR_PREFIX)
        if marker >= 0:
            try:
                payload, _ = json.JSONDecoder().raw_decode(text[marker + len(P.FLIGHT_ERROR_PREFIX):])
            except ValueError:
                payload = None
            if isinstance(payload, dict):
                P.raise_error(payload)
        lowered = text.lower()
        if any(w in lowered for w in ("handshake", "ssl", "certificate", "peer name", "tsi_")):
            raise TLSError(
                f"TLS with the Flight service at {self.location} failed: {_first_line(text)}; check "
                "trust_store_path= (the server's CA) and the host name (or hostname_verification=False)"
            ) from exc
        if isinstance(exc, fl.FlightUnavailableError):
            raise ServiceError(f"cannot reach the Flight service at {self.location}: {_first_line(text)}") from exc
        if isinstance(exc, fl.FlightUnauthenticatedError | fl.FlightUnauthorizedError):
            from cloudsdk.errors import AuthenticationError

            raise AuthenticationError(f"the Flight service refused the call: {_first_line(text)}") from exc
        raise ServiceError(f"the Flight call failed: {_first_line(text)}") from exc

    def close(self) -> None:
        """Close the Flight channel."""
        self.client.close()


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else "no detail"


class RemoteBackend:
    """The :class:`~cloudsdk.client.backend.Backend` protocol against a cloudsdk server."""

    def __init__(self, rest: RestClient, flight: FlightReader | None = None) -> None:
        self.rest = rest
        self.flight = flight

    def _read(self, op: str, project: str, **args: Any) -> pa.Table:
        if self.flight is None:
            raise ServiceError("this connection has no Flight channel for reads")
        return self.flight.read(P.ticket(op, project, **args))

    # --- projects ---------------------------------------------------------------------------
    def get_project(self, name: str) -> dict[str, Any]:
        return self.rest.call("get_project", p=name)

    def featurestores(self, project: str) -> list[str]:
        return list(self.rest.call("featurestores", p=project)["featurestores"])

    def credentials(self, project: str) -> dict[str, Any]:
        raw = self.rest.call("credentials", p=project)
        out = dict(raw)
        for key in ("pkcs12", "keystore_jks", "truststore_jks"):
            out[key] = base64.b64decode(raw[key])
        return out

    # --- feature groups ----------------------------------------------------------------------
    def describe_group(self, project: str, name: str, version: int | None = None) -> dict[str, Any]:
        return self.rest.call("describe_group", p=project, name=name, params={"version": version})

    def list_groups(self, project: str) -> list[dict[str, Any]]:
        return list(self.rest.call("list_groups", p=project))

    def latest_version(self, project: str, name: str) -> int | None:
        return self.rest.call("latest_version", p=project, name=name)["version"]

    def create_group(self, project: str, name: str, version: int | None, data: pa.Table | None = None, *,
                     arrow_schema: pa.Schema | None = None, **options: Any) -> dict[str, Any]:
        table = data if data is not None else (arrow_schema.empty_table() if arrow_schema is not None else None)
        opts = {"name": name, "version": version, "has_data": data is not None, **options}
        return self.rest.call("create_group", p=project, table=table, options=opts)

    def insert(self, project: str, name: str, version: int | None, data: pa.Table, *, mode: str = "append",
               online: bool | None = None, offline: bool | None = None,
               statistics: bool | None = None) -> dict[str, Any]:
        opts = {"version": version, "mode": mode, "online": online, "offline": offline, "statistics": statistics}
        return self.rest.call("insert", p=project, name=name, table=data, options=opts)

    def delete_group(self, project: str, name: str, version: int) -> None:
        self.rest.call("delete_group", p=project, name=name, version=version)

    def update_group(self, project: str, name: str, version: int, *, description: str | None = None,
                     feature_descriptions: Mapping[str, str] | None = None,
                     statistics_config: Mapping[str, Any] | None = None) -> dict[str, Any]:
        body = {"description": description, "feature_descriptions": dict(feature_descriptions or {}) or None,
                "statistics_config": dict(statistics_config) if statistics_config is not None else None}
        return self.rest.call("update_group", p=project, name=name, version=version, json_body=body)

    def add_metadata(self, project: str, name: str, version: int | None, items: Mapping[str, str]) -> dict[str, str]:
        return self.rest.call("add_metadata", p=project, name=name, params={"version": version},
                              json_body={"items": dict(items)})

    def get_metadata(self, project: str, name: str, version: int | None,
                     keys: Sequence[str] | None = None) -> dict[str, str]:
        keys_list = [keys] if isinstance(keys, str) else (list(keys) if keys is not None else None)
        return self.rest.call("get_metadata", p=project, name=name,
                              params={"version": version, "keys": keys_list})

    def remove_metadata(self, project: str, name: str, version: int | None, keys: Sequence[str]) -> dict[str, str]:
        keys_list = [keys] if isinstance(keys, str) else list(keys)
        return self.rest.call("remove_metadata", p=project, name=name, params={"version": version},
                              json_body={"keys": keys_list})

    def compute_statistics(self, project: str, name: str, version: int | None,
                           columns: Sequence[str] | None = None,
                           options: Mapping[str, Any] | None = None) -> dict[str, Any]:
        return self.rest.call("compute_statistics", p=project, name=name, params={"version": version},
                              json_body={"columns": list(columns) if columns else None,
                                         "options": dict(options) if options is not None else None})

    def get_statistics(self, project: str, name: str, version: int | None,
                       commit_version: int | None = None) -> dict[str, Any] | None:
        return self.rest.call("get_statistics", p=project, name=name,
                              params={"version": version, "commit_version": commit_version})

    def history(self, project: str, name: str, version: int | None, limit: int | None = None) -> list[dict[str, Any]]:
        return list(self.rest.call("history", p=project, name=name, params={"version": version, "limit": limit}))

    def preview_group(self, project: str, name: str, version: int | None, n: int = 20) -> dict[str, Any]:
        return self.rest.call("preview_group", p=project, name=name, params={"version": version, "n": n})

    def read_group(self, project: str, name: str, version: int | None,
                   columns: Sequence[str] | None = None, as_of: Any = None) -> pa.Table:
        return self._read("read_group", project, name=name, version=version,
                          columns=list(columns) if columns is not None else None, as_of=as_of)

    # --- queries -------------------------------------------------------------------------------
    def plan(self, project: str, spec: Mapping[str, Any]) -> tuple[str, Any]:
        return str(self.rest.call("plan", p=project, json_body={"spec": dict(spec)})["sql"]), None

    def run_query(self, project: str, spec: Mapping[str, Any], *, online: bool = False) -> pa.Table:
        if online:
            return self._read("run_query", project, spec=dict(spec), online=True)
        return self._read("run_query", project, spec=dict(spec))

    def feature_query(self, project: str, features: Sequence[str],
                      featuregroups_version_dict: Mapping[str, int] | None = None,
                      join_key: str | Sequence[str] | None = None) -> dict[str, Any]:
        body = {"features": [features] if isinstance(features, str) else list(features),
                "featuregroups_version_dict": dict(featuregroups_version_dict or {}) or None,
                "join_key": join_key if join_key is None or isinstance(join_key, str) else list(join_key)}
        return self.rest.call("feature_query", p=project, json_body=body)

    def run_query_pit(self, project: str, spec: Mapping[str, Any], entity: pa.Table, event_time: str, *,
                      ttl: Any = None) -> pa.Table:
        if self.flight is None:
            raise ServiceError("this connection has no Flight channel for reads")
        command = P.ticket("run_query_pit", project, spec=dict(spec), event_time=event_time, ttl=ttl)
        return self.flight.exchange(command, entity)

    def sql(self, project: str, query: str, *, dialect: Any = "auto", as_of: Any = None,
            online: bool = False) -> pa.Table:
        if online:
            return self._read("sql", project, query=query, dialect=dialect, as_of=as_of, online=True)
        return self._read("sql", project, query=query, dialect=dialect, as_of=as_of)

    # --- the online store ------------------------------------------------------------------------
    def read_online(self, project: str, name: str, version: int | None,
                    columns: Sequence[str] | None = None) -> pa.Table:
        return self._read("read_online", project, name=name, version=version,
                          columns=list(columns) if columns is not None else None)

    def enable_online(self, project: str, name: str, version: int | None) -> dict[str, Any]:
        return self.rest.call("enable_online", p=project, name=name, params={"version": version})

    def disable_online(self, project: str, name: str, version: int | None) -> dict[str, Any]:
        return self.rest.call("disable_online", p=project, name=name, params={"version": version})

    def sync_online(self, project: str, name: str, version: int | None) -> dict[str, Any]:
        return self.rest.call("sync_online", p=project, name=name, params={"version": version})

    def check_online_consistency(self, project: str, name: str, version: int | None, *,
                                 limit: int = 10) -> dict[str, Any]:
        return self.rest.call("check_online_consistency", p=project, name=name,
                              params={"version": version, "limit": limit})

    def online_store_info(self, project: str, *, include_password: bool = False) -> dict[str, Any]:
        return self.rest.call("online_store_info", p=project,
                              params={"secrets": "true" if include_password else None})

    def get_feature_vectors(self, project: str, features: Sequence[str] | Mapping[str, Any],
                            entries: Sequence[Mapping[str, Any]], *,
                            featuregroups_version_dict: Mapping[str, int] | None = None,
                            allow_missing: bool = False) -> dict[str, Any]:
        body: dict[str, Any] = ({"spec": dict(features)} if isinstance(features, Mapping)
                                else {"features": list(features)})
        body["entries"] = list(entries)
        body["allow_missing"] = bool(allow_missing)
        if featuregroups_version_dict:
            body["versions"] = dict(featuregroups_version_dict)
        return P.decode_vectors(self.rest.post_json("get_feature_vectors", body, p=project))

    # --- training datasets ---------------------------------------------------------------------
    def create_training_dataset(self, project: str, name: str, version: int | None, data: pa.Table,
                                **options: Any) -> dict[str, Any]:
        opts = {"name": name, "version": version, **options}
        return self.rest.call("create_training_dataset", p=project, table=data, options=opts)

    def create_training_dataset_from_query(self, project: str, name: str, version: int | None,
                                           spec: Mapping[str, Any], **options: Any) -> dict[str, Any]:
        body = {"name": name, "version": version, "spec": dict(spec), **options}
        return self.rest.call("create_training_dataset_from_query", p=project, json_body=body)

    def create_training_dataset_pit(self, project: str, name: str, version: int | None, entity: pa.Table,
                                    spec: Mapping[str, Any], event_time: str, **options: Any) -> dict[str, Any]:
        opts = {"name": name, "version": version, "spec": dict(spec), "event_time": event_time, **options}
        return self.rest.call("create_training_dataset_pit", p=project, table=entity, options=opts)

    def prepare_training_dataset(self, project: str, name: str, version: int | None, **options: Any) -> dict[str, Any]:
        body = {"name": name, "version": version, **options}
        return self.rest.call("prepare_training_dataset", p=project, json_body=body)

    def register_training_dataset(self, project: str, name: str, version: int, **options: Any) -> dict[str, Any]:
        body = {"name": name, "version": version, **options}
        return self.rest.call("register_training_dataset", p=project, json_body=body)

    def describe_training_dataset(self, project: str, name: str, version: int | None = None) -> dict[str, Any]:
        return self.rest.call("describe_training_dataset", p=project, name=name,
                              params={"version": version})

    def list_training_datasets(self, project: str) -> list[dict[str, Any]]:
        return list(self.rest.call("list_training_datasets", p=project))

    def read_training_dataset(self, project: str, name: str, version: int | None = None,
                              split: str | None = None) -> pa.Table:
        return self._read("read_training_dataset", project, name=name, version=version, split=split)

    def read_training_dataset_part(self, project: str, name: str, version: int, file: str,
                                   columns: Sequence[str] | None = None) -> pa.Table:
        return self._read("read_training_dataset_part", project, name=name, version=version, file=file,
                          columns=list(columns) if columns else None)

    def training_dataset_statistics(self, project: str, name: str,
                                    version: int | None = None) -> dict[str, Any] | None:
        return self.rest.call("training_dataset_statistics", p=project, name=name,
                              params={"version": version})

    def compute_training_dataset_statistics(self, project: str, name: str, version: int | None = None,
                                            columns: Sequence[str] | None = None,
                                            options: Mapping[str, Any] | None = None) -> dict[str, Any]:
        return self.rest.call("compute_training_dataset_statistics", p=project, name=name,
                              params={"version": version},
                              json_body={"columns": list(columns) if columns else None,
                                         "options": dict(options) if options is not None else None})

    def delete_training_dataset(self, project: str, name: str, version: int) -> None:
        self.rest.call("delete_training_dataset", p=project, name=name, version=version)

    def list_storage_connectors(self, project: str) -> list[dict[str, Any]]:
        return list(self.rest.call("list_storage_connectors", p=project))

    def create_s3_connector(self, project: str, name: str, **options: Any) -> dict[str, Any]:
        return self.rest.call("create_s3_connector", p=project, json_body={"name": name, **options})

    def get_storage_connector(self, project: str, name: str, *, with_secrets: bool = False) -> dict[str, Any]:
        return self.rest.call("get_storage_connector", p=project, name=name,
                              params={"secrets": "true" if with_secrets else None})

    def delete_storage_connector(self, project: str, name: str) -> None:
        self.rest.call("delete_storage_connector", p=project, name=name)

    # --- time travel -----------------------------------------------------------------------------
    def read_changes(self, project: str, name: str, version: int | None, start: Any = None,
                     end: Any = None) -> pa.Table:
        return self._read("read_changes", project, name=name, version=version, start=start, end=end)

    def delete_rows(self, project: str, name: str, version: int | None, keys: pa.Table) -> dict[str, Any]:
        return self.rest.call("delete_rows", p=project, name=name, table=keys, options={"version": version})

    def compact(self, project: str, name: str, version: int | None,
                retention_hours: int | None = None) -> dict[str, Any]:
        return self.rest.call("compact", p=project, name=name, params={"version": version},
                              json_body={"retention_hours": retention_hours})

    def get_retention(self, project: str, name: str, version: int | None) -> int:
        return int(self.rest.call("get_retention", p=project, name=name,
                                  params={"version": version})["retention_hours"])

    def set_retention(self, project: str, name: str, version: int | None, hours: int) -> dict[str, Any]:
        return self.rest.call("set_retention", p=project, name=name, params={"version": version},
                              json_body={"retention_hours": hours})

    # --- data validation --------------------------------------------------------------------------
    def get_validation_rules(self, project: str, name: str, version: int | None) -> list[dict[str, Any]]:
        return list(self.rest.call("get_validation_rules", p=project, name=name, params={"version": version}))

    def add_validation_rule(self, project: str, name: str, version: int | None,
                            rule: Mapping[str, Any]) -> dict[str, Any]:
        return self.rest.call("add_validation_rule", p=project, name=name, params={"version": version},
                              json_body={"rule": dict(rule)})

    def remove_validation_rule(self, project: str, name: str, version: int | None, rule: str) -> list[dict[str, Any]]:
        return list(self.rest.call("remove_validation_rule", p=project, name=name, rule=rule,
                                   params={"version": version}))

    def validate(self, project: str, name: str, version: int | None, data: pa.Table) -> dict[str, Any]:
        return self.rest.call("validate", p=project, name=name, table=data, options={"version": version})

    def run_validation(self, project: str, name: str, version: int | None,
                       commit_version: int | None = None) -> dict[str, Any]:
        return self.rest.call("run_validation", p=project, name=name, params={"version": version},
                              json_body={"commit_version": commit_version})

    def validation_results(self, project: str, name: str, version: int | None, commit_version: int | None = None,
                           limit: int | None = None) -> list[dict[str, Any]]:
        return list(self.rest.call("validation_results", p=project, name=name,
                                   params={"version": version, "commit_version": commit_version, "limit": limit}))

    def close(self) -> None:
        self.rest.close()
        if self.flight is not None:
            self.flight.close()

    # --- on-demand feature groups ---------------------------------------------------------------
    def create_jdbc_connector(self, project: str, name: str, url: str, user: str | None = None,
                              password: str | None = None, **options: Any) -> dict[str, Any]:
        body = {"name": name, "url": url, "user": user, "password": password, **options}
        return self.rest.call("create_jdbc_connector", p=project, json_body=body)

    def create_on_demand_group(self, project: str, name: str, version: int | None, query: str, connector: str,
                               **options: Any) -> dict[str, Any]:
        body = {"name": name, "version": version, "query": query, "connector": connector, **options}
        return self.rest.call("create_on_demand_group", p=project, json_body=body)

    # --- the registry: search, tags, jobs, dataset metadata, provenance -------------------------
    def search(self, project: str, query: str, kind: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        return list(self.rest.call("search", p=project, params={"q": query, "kind": kind, "limit": limit}))

    def get_tags(self, project: str, kind: str, name: str, version: int | None) -> dict[str, str | None]:
        return self.rest.call("get_tags", p=project, kind=kind, name=name, params={"version": version})

    def add_tag(self, project: str, kind: str, name: str, version: int | None, tag: str,
                value: Any = None) -> dict[str, str | None]:
        return self.rest.call("add_tag", p=project, kind=kind, name=name, params={"version": version},
                              json_body={"tag": tag, "value": value})

    def remove_tag(self, project: str, kind: str, name: str, version: int | None, tag: str) -> dict[str, str | None]:
        return self.rest.call("remove_tag", p=project, kind=kind, name=name, tag=tag, params={"version": version})

    def get_jobs(self, project: str, kind: str, name: str, version: int | None) -> list[dict[str, str | None]]:
        return list(self.rest.call("get_jobs", p=project, kind=kind, name=name, params={"version": version}))

    def set_jobs(self, project: str, kind: str, name: str, version: int | None,
                 jobs: Sequence[Any] | None) -> list[dict[str, str | None]]:
        return list(self.rest.call("set_jobs", p=project, kind=kind, name=name, params={"version": version},
                                   json_body={"jobs": list(jobs or [])}))

    def get_training_dataset_metadata(self, project: str, name: str, version: int | None,
                                      keys: Sequence[str] | None = None) -> dict[str, str]:
        keys_list = None if keys is None else ([keys] if isinstance(keys, str) else list(keys))
        return self.rest.call("get_training_dataset_metadata", p=project, name=name,
                              params={"version": version, "keys": keys_list})

    def add_training_dataset_metadata(self, project: str, name: str, version: int | None,
                                      items: Mapping[str, str]) -> dict[str, str]:
        return self.rest.call("add_training_dataset_metadata", p=project, name=name, params={"version": version},
                              json_body={"items": dict(items)})

    def remove_training_dataset_metadata(self, project: str, name: str, version: int | None,
                                         keys: Sequence[str]) -> dict[str, str]:
        keys_list = [keys] if isinstance(keys, str) else list(keys)
        return self.rest.call("remove_training_dataset_metadata", p=project, name=name,
                              params={"version": version}, json_body={"keys": keys_list})

    def training_dataset_features(self, project: str, name: str, version: int | None = None) -> dict[str, Any]:
        return self.rest.call("training_dataset_features", p=project, name=name, params={"version": version})

    def group_training_datasets(self, project: str, name: str, version: int | None = None) -> list[dict[str, Any]]:
        return list(self.rest.call("group_training_datasets", p=project, name=name, params={"version": version}))

    def compare_training_datasets(self, project: str, name: str, version: int | None, other: str,
                                  other_version: int | None = None,
                                  keys: str | Sequence[str] | None = None) -> dict[str, Any]:
        keys_list = None if keys is None else ([keys] if isinstance(keys, str) else list(keys))
        return self.rest.call("compare_training_datasets", p=project, name=name,
                              params={"version": version, "other": other, "other_version": other_version,
                                      "keys": keys_list})
