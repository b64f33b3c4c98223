"""The wire contract between the remote client and ``cloudsdk server``.

Both sides import this module, so routes, headers, error codes and Flight tickets are
defined once. It imports nothing heavy (the light client uses it).

REST (HTTPS, JSON unless noted), every route under ``API_PREFIX`` and authenticated with
``Authorization: ApiKey <key>``; the project the caller acts in travels in
``X-Cloudsdk-Project`` (reads of a feature store shared with it name the owner project in
the path). Tables travel as Arrow IPC streams (``ARROW_STREAM``), never JSON; options that go
with a table travel in the ``X-Cloudsdk-Options`` header as base64url JSON.

Flight (gRPC + mutual TLS) serves reads: ``do_get`` with a JSON ticket from :func:`ticket`.
Each call carries the API key, the acting project, the client certificate (base64 PEM) and a
proof of possession of its key: a signature over :func:`proof_message`.
"""

from __future__ import annotations

import base64
import datetime as _dt
import json
from typing import Any

API_PREFIX = "/api/v1"
ARROW_STREAM = "application/vnd.apache.arrow.stream"

HEADER_AUTH = "authorization"
HEADER_PROJECT = "x-cloudsdk-project"
HEADER_OPTIONS = "x-cloudsdk-options"
HEADER_CERT = "x-cloudsdk-cert"
HEADER_TIMESTAMP = "x-cloudsdk-ts"
HEADER_PROOF = "x-cloudsdk-proof"
PROOF_MAX_SKEW_S = 300
# A Flight error whose message holds this prefix + the JSON error shape is a cloudsdk error.
FLIGHT_ERROR_PREFIX = "cloudsdk-error:"
_MICROSECOND = _dt.timedelta(microseconds=1)

# HTTP status of each error code (``CloudSDKError.code``); anything else is 500.
STATUS_OF_CODE = {
    "not_found": 404,
    "project_not_found": 404,
    "featuregroup_not_found": 404,
    "feature_not_found": 404,
    "training_dataset_not_found": 404,
    "storage_connector_not_found": 404,
    "commit_not_found": 404,
    "feature_vector_not_found": 404,
    "already_exists": 409,
    "invalid_name": 400,
    "invalid_argument": 400,
    "data_validation_error": 400,
    "schema_mismatch": 400,
    "validation_failed": 400,
    "query_error": 400,
    "feature_name_collision": 400,
    "join_key_error": 400,
    "sql_error": 400,
    "sql_forbidden": 400,
    "unsupported": 501,
    "unauthenticated": 401,
    "forbidden": 403,
    "configuration_error": 400,
    "storage_error": 500,
    "online_sync_error": 500,
    "certificate_error": 500,
    "credentials_error": 400,
    "secret_not_found": 400,
    "secret_access_denied": 400,
    "service_error": 502,
    "tls_error": 502,
}

def error_payload(exc: BaseException) -> dict[str, Any]:
    """The one JSON error shape: ``{"code", "message", "status", "details"}``.

    ``details`` carries the structured fields some errors have (``candidates`` of a name
    collision, ``differences`` of a schema mismatch) so the client re-raises them whole.
    """
    from cloudsdk.errors import CloudSDKError

    if isinstance(exc, CloudSDKError):
        details: dict[str, Any] = {}
        for attr in ("candidates", "differences"):
            if hasattr(exc, attr):
                details[attr] = list(getattr(exc, attr))
        if isinstance(getattr(exc, "report", None), dict):  # ValidationFailedError
            details["report"] = exc.report  # type: ignore[attr-defined]
        message = exc.message
        if details.get("differences"):
            message = message.split("\n", 1)[0]
        return {"code": exc.code, "message": message,
                "status": STATUS_OF_CODE.get(exc.code, 500), "details": details}
    return {"code": "internal_error", "message": "internal server error", "status": 500, "details": {}}


def raise_error(payload: dict[str, Any]) -> None:
    """Raise the cloudsdk error that :func:`error_payload` described."""
    from cloudsdk.errors import (
        CloudSDKError,
        FeatureNameCollisionError,
        SchemaMismatchError,
        ServiceError,
        ValidationFailedError,
        error_class,
    )

    code = str(payload.get("code", "error"))
    message = str(payload.get("message", "the server reported an error"))
    details = payload.get("details") or {}
    cls = error_class(code)
    if cls is CloudSDKError:
        raise ServiceError(f"the server failed ({code}): {message}")
    if issubclass(cls, SchemaMismatchError):
        raise cls(message, details.get("differences", ()))
    if issubclass(cls, FeatureNameCollisionError):
        raise cls(message, details.get("candidates", ()))
    if issubclass(cls, ValidationFailedError):
        raise cls(message, details.get("report") or {})
    raise cls(message)


# Routes (paths below API_PREFIX). {p} = project, {name}, {version}.
ROUTES = {
    "info": "GET /info",                                              # {"version", "flight_port"}
    "get_project": "GET /projects/{p}",
    "featurestores": "GET /projects/{p}/featurestores",               # {"featurestores": [...]}
    "credentials": "GET /projects/{p}/credentials",                   # client certificate bundle
    "list_groups": "GET /projects/{p}/featuregroups",
    "create_group": "POST /projects/{p}/featuregroups",               # Arrow body + options
    "describe_group": "GET /projects/{p}/featuregroups/{name}",       # ?version=
    "latest_version": "GET /projects/{p}/featuregroups/{name}/latest",  # {"version": n | null}
    "preview_group": "GET /projects/{p}/featuregroups/{name}/preview",  # ?version=&n= (<= 100 rows, JSON)
    "update_group": "PATCH /projects/{p}/featuregroups/{name}/versions/{version}",
    "delete_group": "DELETE /projects/{p}/featuregroups/{name}/versions/{version}",
    "insert": "POST /projects/{p}/featuregroups/{name}/insert",       # Arrow body + options
    "get_metadata": "GET /projects/{p}/featuregroups/{name}/metadata",  # ?version=&keys=a&keys=b
    "add_metadata": "POST /projects/{p}/featuregroups/{name}/metadata",  # ?version= ; {"items": {...}}
    "remove_metadata": "POST /projects/{p}/featuregroups/{name}/metadata/remove",  # {"keys": [...]}
    "get_statistics": "GET /projects/{p}/featuregroups/{name}/statistics",  # ?version=&commit_version=
    "compute_statistics": "POST /projects/{p}/featuregroups/{name}/statistics",  # {"columns", "options"}
    "history": "GET /projects/{p}/featuregroups/{name}/commits",      # ?version=&limit=
    "plan": "POST /projects/{p}/query/plan",                          # {"spec"} -> {"sql"}
    "feature_query": "POST /projects/{p}/query/features",            # {"features", ...} -> spec
    "list_training_datasets": "GET /projects/{p}/trainingdatasets",
    "create_training_dataset": "POST /projects/{p}/trainingdatasets",  # Arrow body + options
    "describe_training_dataset": "GET /projects/{p}/trainingdatasets/{name}",  # ?version=
    "training_dataset_statistics": "GET /projects/{p}/trainingdatasets/{name}/statistics",
    "compute_training_dataset_statistics": "POST /projects/{p}/trainingdatasets/{name}/statistics",
    "delete_training_dataset": "DELETE /projects/{p}/trainingdatasets/{name}/versions/{version}",
    "create_training_dataset_from_query": "POST /projects/{p}/trainingdatasets/query",  # {"name","version","spec",...}
    "create_training_dataset_pit": "POST /projects/{p}/trainingdatasets/pit",  # Arrow label rows + options
    "prepare_training_dataset": "POST /projects/{p}/trainingdatasets/prepare",  # checks; S3 sink settings
    "register_training_dataset": "POST /projects/{p}/trainingdatasets/register",  # files a client wrote to S3
    "list_storage_connectors": "GET /projects/{p}/storageconnectors",
    "create_s3_connector": "POST /projects/{p}/storageconnectors",  # {"name","bucket",...}
    "get_storage_connector": "GET /projects/{p}/storageconnectors/{name}",  # ?secrets=true (members)
    "delete_storage_connector": "DELETE /projects/{p}/storageconnectors/{name}",
    "create_jdbc_connector": "POST /projects/{p}/storageconnectors/jdbc",  # {"name","url","user","password",...}
    "create_on_demand_group": "POST /projects/{p}/featuregroups/ondemand",  # {"name","version","query","connector",...}
    "delete_rows": "POST /projects/{p}/featuregroups/{name}/delete",  # Arrow body (keys) + options {"version"}
    "compact": "POST /projects/{p}/featuregroups/{name}/compact",  # ?version= ; {"retention_hours"}
    "get_retention": "GET /projects/{p}/featuregroups/{name}/retention",  # ?version= -> {"retention_hours"}
    "set_retention": "PUT /projects/{p}/featuregroups/{name}/retention",  # ?version= ; {"retention_hours"}
    # data validation (store/validation.py)
    "get_validation_rules": "GET /projects/{p}/featuregroups/{name}/validation/rules",  # ?version=
    "add_validation_rule": "POST /projects/{p}/featuregroups/{name}/validation/rules",  # ?version= ; {"rule"}
    "remove_validation_rule": "DELETE /projects/{p}/featuregroups/{name}/validation/rules/{rule}",  # ?version=
    "validate": "POST /projects/{p}/featuregroups/{name}/validation/dryrun",  # Arrow body + options {"version"}
    "run_validation": "POST /projects/{p}/featuregroups/{name}/validation/runs",  # ?version= ; {"commit_version"}
    "validation_results": "GET /projects/{p}/featuregroups/{name}/validation/results",  # ?version=&commit_version=&limit=
    # the registry (store/registry.py); {kind} = featuregroup | training_dataset
    "search": "GET /projects/{p}/search",  # ?q=&kind=&limit=
    "get_tags": "GET /projects/{p}/tags/{kind}/{name}",  # ?version=
    "add_tag": "POST /projects/{p}/tags/{kind}/{name}",  # ?version= ; {"tag", "value"}
    "remove_tag": "DELETE /projects/{p}/tags/{kind}/{name}/{tag}",  # ?version= -> tags left
    "get_jobs": "GET /projects/{p}/jobs/{kind}/{name}",  # ?version=
    "set_jobs": "PUT /projects/{p}/jobs/{kind}/{name}",  # ?version= ; {"jobs": [...]}
    "get_training_dataset_metadata": "GET /projects/{p}/trainingdatasets/{name}/metadata",  # ?version=&keys=
    "add_training_dataset_metadata": "POST /projects/{p}/trainingdatasets/{name}/metadata",  # {"items"}
    "remove_training_dataset_metadata": "POST /projects/{p}/trainingdatasets/{name}/metadata/remove",  # {"keys"}
    "training_dataset_features": "GET /projects/{p}/trainingdatasets/{name}/provenance",  # ?version=
    "group_training_datasets": "GET /projects/{p}/featuregroups/{name}/trainingdatasets",  # ?version=
    "compare_training_datasets": "GET /projects/{p}/trainingdatasets/{name}/compare",  # ?version=&other=&other_version=&keys=
    # the online store (store/online_service.py; server/rest_online.py)
    "enable_online": "POST /projects/{p}/featuregroups/{name}/online/enable",  # ?version= -> the group
    "disable_online": "POST /projects/{p}/featuregroups/{name}/online/disable",  # ?version= -> the group
    "sync_online": "POST /projects/{p}/featuregroups/{name}/online/sync",  # ?version=
    "check_online_consistency": "GET /projects/{p}/featuregroups/{name}/online/consistency",  # ?version=&limit=
    "online_store_info": "GET /projects/{p}/online",  # ?secrets=true (members: the password)
    # the serving path: {"features": [...] | "spec": {...}, "entries": [{...}], "allow_missing", "versions"}
    # -> {"features", "rows", "missing"}
    "get_feature_vectors": "POST /projects/{p}/featurevectors",
}

# Flight ticket operations and the store method each runs (all reads).
FLIGHT_OPS = ("read_group", "run_query", "sql", "read_training_dataset", "read_training_dataset_part",
              "read_changes", "read_online")

# Flight exchange operations (``do_exchange``: the client streams a table, e.g. the label rows of
# a point-in-time join, and reads the result), by the store method each runs (all reads).
FLIGHT_EXCHANGE_OPS = ("run_query_pit",)



# --- feature vectors (route get_feature_vectors) ---------------------------------------------
# Values JSON lacks travel as text: timestamps, dates and times as ISO-8601, bytes as base64,
# decimals as strings, durations as integer microseconds. An answer holding any names their
# columns' kinds in an extra ``"types": {feature: kind}`` so the client restores the values.


def _vector_kind(value: Any) -> str | None:
    import datetime as dt
    import decimal

    if isinstance(value, dt.datetime):
        return "timestamp"
    if isinstance(value, dt.date):
        return "date"
    if isinstance(value, dt.time):
        return "time"
    if isinstance(value, dt.timedelta):
        return "duration"
    if isinstance(value, bytes | bytearray):
        return "binary"
    if isinstance(value, decimal.Decimal):
        return "decimal"
    return None


def _vector_json(value: Any) -> Any:
    kind = _vector_kind(value)
    if kind == "duration":
        return value // _MICROSECOND
    if kind == "binary":
        return base64.b64encode(value).decode("ascii")
    if kind is not None:
        return value.isoformat() if hasattr(value, "isoformat") else str(value)
    item = getattr(value, "item", None)  # numpy scalars
    if callable(item):
        return item()
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    return str(value)


def encode_vectors(result: dict[str, Any]) -> bytes:
    """A feature-vector answer ``{"features", "rows", "missing"}`` as compact JSON (with
    ``"types"`` when some values are not JSON numbers, strings, booleans or lists)."""
    converted = False

    def default(value: Any) -> Any:
        nonlocal converted
        converted = True
        return _vector_json(value)

    text = json.dumps(result, separators=(",", ":"), default=default)
    if not converted:
        return text.encode()
    types: dict[str, str] = {}
    for row in result["rows"]:
        for name, value in zip(result["features"], row, strict=True):
            kind = _vector_kind(value)
            if kind is not None:
                types[name] = kind
    return json.dumps({**result, "types": types}, separators=(",", ":"), default=_vector_json).encode()


def decode_vectors(payload: dict[str, Any]) -> dict[str, Any]:
    """Inverse of :func:`encode_vectors` (in place): the values its ``"types"`` name restored."""
    types = payload.pop("types", None)
    if not types:
        return payload
    import datetime as dt
    import decimal

    decoders: dict[str, Any] = {
        "timestamp": dt.datetime.fromisoformat, "date": dt.date.fromisoformat, "time": dt.time.fromisoformat,
        "duration": lambda v: _MICROSECOND * v, "binary": base64.b64decode, "decimal": decimal.Decimal}
    columns = [(i, decoders[types[name]]) for i, name in enumerate(payload["features"])
               if types.get(name) in decoders]
    for row in payload["rows"]:
        for i, decode in columns:
            if row[i] is not None:
                row[i] = decode(row[i])
    return payload


def encode_options(options: dict[str, Any]) -> str:
    """Options for a header: base64url of their JSON."""
    return base64.urlsafe_b64encode(json.dumps(options, default=str).encode()).decode("ascii")


def decode_options(text: str | None) -> dict[str, Any]:
    """Inverse of :func:`encode_options` (empty for None)."""
    if not text:
        return {}
    value = json.loads(base64.urlsafe_b64decode(text.encode("ascii")))
    if not isinstance(value, dict):
        raise ValueError("options must be a JSON object")
    return value


def ticket(op: str, project: str, **args: Any) -> bytes:
    """A Flight ticket: ``{"op", "project", "args"}`` as JSON bytes (also the command of an
    exchange's descriptor)."""
    if op not in FLIGHT_OPS + FLIGHT_EXCHANGE_OPS:
        raise ValueError(f"unknown Flight operation {op!r}")
    return json.dumps({"op": op, "project": project, "args": args}, default=str).encode()


def parse_ticket(raw: bytes) -> tuple[str, str, dict[str, Any]]:
    """Inverse of :func:`ticket`; ValueError when malformed."""
    value = json.loads(raw)
    if not isinstance(value, dict) or value.get("op") not in FLIGHT_OPS + FLIGHT_EXCHANGE_OPS:
        raise ValueError("malformed ticket")
    project, args = value.get("project"), value.get("args") or {}
    if not isinstance(project, str) or not isinstance(args, dict):
        raise ValueError("malformed ticket")
    return value["op"], project, args


def proof_message(timestamp: str, key_prefix: str, acting_project: str) -> bytes:
    """What a Flight client signs with its certificate's private key on every call."""
    return f"cloudsdk-flight\n{timestamp}\n{key_prefix}\n{acting_project}".encode()


def key_prefix(api_key: str) -> str:
    """The public lookup part of an API key ``csk_<prefix>.<secret>`` (never the secret)."""
    head = api_key.split(".", 1)[0]
    return head.removeprefix("csk_")
