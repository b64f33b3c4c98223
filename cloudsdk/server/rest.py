"""The REST API: every route of :data:`cloudsdk._protocol.ROUTES` as a FastAPI app.

Each route authenticates the ``Authorization: ApiKey <key>`` header, authorizes the caller
in the acting project (``X-Cloudsdk-Project``, default the project in the path) for the
feature store in the path, runs the :class:`~cloudsdk.store.FeatureStoreService` method of
the route's name in a worker thread, and returns its result as JSON. Tables come in as
Arrow IPC streams (options in ``X-Cloudsdk-Options``); tables go out through Flight.

Every error, whatever its cause, has one JSON shape: ``{"code", "message", "status",
"details"}`` (see :func:`cloudsdk._protocol.error_payload`).

Example::

    from cloudsdk.server.app import build
    from cloudsdk.server.rest import create_app
    app = create_app(build("/srv/cloudsdk"))   # serve with uvicorn, or test with TestClient
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import decimal
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from cloudsdk import __version__
from cloudsdk import _protocol as P
from cloudsdk.errors import CloudSDKError, InvalidArgumentError, PermissionDeniedError
from cloudsdk.server.app import Server, missing_extra, parse_api_key
from cloudsdk.store.security import Principal

try:
    from fastapi import Depends, FastAPI, Query, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.security import APIKeyHeader
    from starlette.concurrency import run_in_threadpool
    from starlette.exceptions import HTTPException as StarletteHTTPException
    from starlette.responses import Response
    from starlette.types import ASGIApp, Message, Receive, Scope, Send
except ImportError as exc:  # pragma: no cover - exercised in a light environment
    raise missing_extra(exc) from exc

log = logging.getLogger(__name__)

__all__ = ["ARROW_ROUTES", "PROJECT_SCOPE_ROUTES", "WRITE_ROUTES", "create_app"]

# Routes that change the store: data owners only, never on a shared feature store.
WRITE_ROUTES = frozenset({
    "create_group", "update_group", "delete_group", "insert", "add_metadata", "remove_metadata",
    "compute_statistics", "create_training_dataset", "delete_training_dataset",
    "create_training_dataset_from_query", "prepare_training_dataset", "register_training_dataset",
    "create_training_dataset_pit",
    "create_s3_connector", "delete_storage_connector", "create_jdbc_connector", "create_on_demand_group",
    "delete_rows", "compact", "set_retention",
    "add_tag", "remove_tag", "set_jobs", "add_training_dataset_metadata", "remove_training_dataset_metadata",
    "add_validation_rule", "remove_validation_rule", "run_validation",
    "compute_training_dataset_statistics",
    "enable_online", "disable_online", "sync_online",
})
# Routes about the project itself (the key needs the ``project`` scope; no shared stores).
PROJECT_SCOPE_ROUTES = frozenset({"get_project", "featurestores", "credentials"})
# Routes whose request body is an Arrow IPC stream (with options in X-Cloudsdk-Options).
ARROW_ROUTES = frozenset({"create_group", "insert", "create_training_dataset", "delete_rows", "create_training_dataset_pit",
                          "validate"})

_AUTH_SCHEME = APIKeyHeader(
    name="Authorization", scheme_name="ApiKey", auto_error=False,
    description="`ApiKey <key>`: a key from `cloudsdk apikey create` (or `cloudsdk server start --dev`)",
)


# --- responses -------------------------------------------------------------------------------


def _json_default(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    if isinstance(value, decimal.Decimal):
        return str(value)
    item = getattr(value, "item", None)  # numpy scalars
    if callable(item):
        return item()
    return str(value)


class JSONResponse(Response):
    """JSON that keeps what the store returns: NaN stays NaN (as Python's json reads it)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return json.dumps(content, default=_json_default, separators=(",", ":")).encode("utf-8")


def error_response(payload: dict[str, Any]) -> JSONResponse:
    """The one error shape; a 401 also says which scheme to use."""
    status = int(payload.get("status", 500))
    headers = {"WWW-Authenticate": "ApiKey"} if status == 401 else None
    return JSONResponse(payload, status_code=status, headers=headers)


def _payload(code: str, message: str, status: int) -> dict[str, Any]:
    return {"code": code, "message": message, "status": status, "details": {}}


_HTTP_CODES = {400: "invalid_argument", 401: "unauthenticated", 403: "forbidden", 404: "not_found",
               405: "method_not_allowed", 413: "payload_too_large", 415: "unsupported_media_type"}


class _InternalErrors:
    """Anything unexpected becomes a 500 ``internal_error`` with a generic message; the
    traceback goes to the server log (never to the client)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        except Exception:
            log.exception("internal error in %s %s", scope.get("method"), scope.get("path"))
            if started:
                raise
            response = error_response(P.error_payload(RuntimeError()))
            await response(scope, receive, send)


# --- requests --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Caller:
    """Who calls (the principal), in which project it acts, and which project's store it touches."""

    principal: Principal
    acting: str
    project: str


@dataclass(frozen=True)
class RouteKit:
    """The helpers of :func:`create_app` that route modules use to add their endpoints."""

    route: Callable[..., Callable[[Any], Any]]
    guard: Callable[[str], Callable[..., Awaitable[Caller]]]
    call: Callable[..., Awaitable[Any]]
    obj: Callable[..., dict[str, Any]]
    version_q: Any


async def _json_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise InvalidArgumentError(f"the request body is not JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise InvalidArgumentError("the request body must be a JSON object")
    return value


async def _statistics_body(request: Request) -> tuple[Any, Any]:
    """``(columns, options)`` of a compute-statistics body, checked."""
    body = await _json_body(request)
    columns, options = body.get("columns"), body.get("options")
    if columns is not None and not _is_str_list(columns):
        raise InvalidArgumentError('"columns" must be a list of feature names')
    if options is not None and not isinstance(options, dict):
        raise InvalidArgumentError('"options" must be an object of statistics options')
    return columns, options


def _read_arrow(raw: bytes) -> pa.Table:
    try:
        return pa.ipc.open_stream(pa.py_buffer(raw)).read_all()
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise InvalidArgumentError(f"the request body is not an Arrow IPC stream: {exc}") from exc


async def _arrow_body(request: Request) -> tuple[pa.Table, dict[str, Any]]:
    raw = await request.body()
    if not raw:
        raise InvalidArgumentError(f"this route takes the table as an Arrow IPC stream body ({P.ARROW_STREAM})")
    try:
        options = P.decode_options(request.headers.get(P.HEADER_OPTIONS))
    except (ValueError, binascii.Error, UnicodeError) as exc:
        raise InvalidArgumentError(
            f"the {P.HEADER_OPTIONS} header must be base64url JSON of an object: {exc}") from exc
    table = await run_in_threadpool(_read_arrow, raw)
    return table, options


def _pop_name(options: dict[str, Any], what: str) -> str:
    name = options.pop("name", None)
    if not isinstance(name, str):
        raise InvalidArgumentError(f"the options must name the {what} (\"name\")")
    return name


def _is_str_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


# --- the app ---------------------------------------------------------------------------------


def create_app(server: Server) -> FastAPI:
    """The REST API of ``server`` (OpenAPI at ``/openapi.json``, docs at ``/docs``)."""
    app = FastAPI(
        title="cloudsdk feature store",
        version=__version__,
        description="The control plane of a cloudsdk server: metadata, writes (Arrow IPC uploads), "
                    "credentials. Reads of data go through Arrow Flight. "
                    "Errors: `{\"code\", \"message\", \"status\", \"details\"}`.",
    )
    security = server.security

    def guard(route: str) -> Callable[..., Awaitable[Caller]]:
        write = route in WRITE_ROUTES
        scope = "project" if route in PROJECT_SCOPE_ROUTES else "featurestore"
        own_store_only = route in PROJECT_SCOPE_ROUTES - {"get_project"}

        async def authorize(request: Request, p: str, authorization: str | None = Depends(_AUTH_SCHEME)) -> Caller:
            key = parse_api_key(authorization)
            principal = await run_in_threadpool(security.authenticate, key)
            acting = p if own_store_only else (request.headers.get(P.HEADER_PROJECT) or p)
            await run_in_threadpool(security.authorize, principal, acting,
                                    target=None if acting == p else p, write=write, scope=scope)
            return Caller(principal, acting, p)

        return authorize

    async def call(method: str, *args: Any, lock: tuple[str, ...] | None = None, **kwargs: Any) -> Any:
        def work() -> Any:
            if lock is None:
                return server.call(method, *args, **kwargs)
            with server.write_lock(*lock):
                return server.call(method, *args, **kwargs)

        return await run_in_threadpool(work)

    def route(name: str, *, status_code: int = 200, body: dict[str, Any] | None = None) -> Callable[[Any], Any]:
        method, path = P.ROUTES[name].split(" ", 1)
        extra: dict[str, Any] = {}
        if name in ARROW_ROUTES:
            extra["requestBody"] = {"required": True, "content": {P.ARROW_STREAM: {"schema": {
                "type": "string", "format": "binary",
                "description": f"the table; options as base64url JSON in the {P.HEADER_OPTIONS} header"}}}}
        elif body is not None:
            extra["requestBody"] = {"required": False, "content": {"application/json": {"schema": body}}}

        def register(endpoint: Any) -> Any:
            app.add_api_route(
                P.API_PREFIX + path, endpoint, methods=[method], name=name, operation_id=name,
                response_class=Response if status_code == 204 else JSONResponse, status_code=status_code,
                response_model=None, openapi_extra=extra or None,
                summary=name.replace("_", " "), tags=["writes" if name in WRITE_ROUTES else "reads"],
            )
            return endpoint

        return register

    def obj(**props: Any) -> dict[str, Any]:
        return {"type": "object", "properties": props}

    version_q = Query(None, description="the version (default: the latest)")

    # --- service -----------------------------------------------------------------------------

    @route("info")
    async def info(authorization: str | None = Depends(_AUTH_SCHEME)) -> dict[str, Any]:
        """The server's version and Flight port (a key, if sent, must be valid)."""
        if authorization is not None:
            await run_in_threadpool(security.authenticate, parse_api_key(authorization))
        return {"version": __version__, "flight_port": server.flight_port,
                "flight_hostname": server.flight_hostname}

    # --- projects ----------------------------------------------------------------------------

    @route("get_project")
    async def get_project(p: str, who: Caller = Depends(guard("get_project"))) -> Any:
        return await call("get_project", p)

    @route("featurestores")
    async def featurestores(p: str, who: Caller = Depends(guard("featurestores"))) -> Any:
        return {"featurestores": await call("featurestores", p)}

    @route("credentials")
    async def credentials(p: str, who: Caller = Depends(guard("credentials"))) -> Any:
        """A client certificate for the caller's user in project ``p`` (bytes as base64)."""
        bundle = await run_in_threadpool(server.ca.issue_client_certificate, who.principal.user, p)
        log.info("issued a client certificate for user %r in project %r", who.principal.user, p)
        return {k: base64.b64encode(v).decode("ascii") if isinstance(v, bytes) else v for k, v in bundle.items()}

    # --- feature groups ------------------------------------------------------------------------

    @route("list_groups")
    async def list_groups(p: str, who: Caller = Depends(guard("list_groups"))) -> Any:
        return await call("list_groups", p)

    @route("preview_group")
    async def preview_group(p: str, name: str, version: int | None = version_q,
                            n: int = Query(20, description="how many rows (1 to 100)"),
                            who: Caller = Depends(guard("preview_group"))) -> Any:
        """The first rows of a feature group as JSON (for the web UI; bulk reads use Flight)."""
        return await call("preview_group", p, name, version, n)

    @route("create_group", status_code=201)
    async def create_group(request: Request, p: str, who: Caller = Depends(guard("create_group"))) -> Any:
        """Options: ``name``, ``version``, ``has_data`` (false: the table only gives the schema),
        and the keyword arguments of ``create_group``."""
        table, options = await _arrow_body(request)
        name = _pop_name(options, "feature group")
        version = options.pop("version", None)
        if options.pop("has_data", True):
            return await call("create_group", p, name, version, table, lock=("fg", p, name), **options)
        return await call("create_group", p, name, version, None, arrow_schema=table.schema,
                          lock=("fg", p, name), **options)

    @route("describe_group")
    async def describe_group(p: str, name: str, version: int | None = version_q,
                             who: Caller = Depends(guard("describe_group"))) -> Any:
        return await call("describe_group", p, name, version)

    @route("latest_version")
    async def latest_version(p: str, name: str, who: Caller = Depends(guard("latest_version"))) -> Any:
        return {"version": await call("latest_version", p, name)}

    @route("update_group", body=obj(description={"type": "string"}, feature_descriptions={"type": "object"},
                                    statistics_config={"type": "object"}))
    async def update_group(request: Request, p: str, name: str, version: int,
                           who: Caller = Depends(guard("update_group"))) -> Any:
        body = await _json_body(request)
        return await call("update_group", p, name, version, lock=("fg", p, name), **body)

    @route("delete_group", status_code=204)
    async def delete_group(p: str, name: str, version: int, who: Caller = Depends(guard("delete_group"))) -> Any:
        await call("delete_group", p, name, version, lock=("fg", p, name))
        return Response(status_code=204)

    @route("insert")
    async def insert(request: Request, p: str, name: str, who: Caller = Depends(guard("insert"))) -> Any:
        """Options: ``version``, ``mode`` (append|overwrite|upsert), ``online``, ``offline``,
        ``statistics``."""
        table, options = await _arrow_body(request)
        version = options.pop("version", None)
        return await call("insert", p, name, version, table, lock=("fg", p, name), **options)

    @route("get_metadata")
    async def get_metadata(p: str, name: str, version: int | None = version_q,
                           keys: list[str] | None = Query(None, description="only these keys"),
                           who: Caller = Depends(guard("get_metadata"))) -> Any:
        return await call("get_metadata", p, name, version, keys)

    @route("add_metadata", body=obj(items={"type": "object", "additionalProperties": {"type": "string"}}))
    async def add_metadata(request: Request, p: str, name: str, version: int | None = version_q,
                           who: Caller = Depends(guard("add_metadata"))) -> Any:
        items = (await _json_body(request)).get("items")
        if not isinstance(items, dict):
            raise InvalidArgumentError('the body must be {"items": {key: value, ...}}')
        return await call("add_metadata", p, name, version, items, lock=("fg", p, name))

    @route("remove_metadata", body=obj(keys={"type": "array", "items": {"type": "string"}}))
    async def remove_metadata(request: Request, p: str, name: str, version: int | None = version_q,
                              who: Caller = Depends(guard("remove_metadata"))) -> Any:
        keys = (await _json_body(request)).get("keys")
        if not _is_str_list(keys):
            raise InvalidArgumentError('the body must be {"keys": [key, ...]}')
        return await call("remove_metadata", p, name, version, keys, lock=("fg", p, name))

    @route("get_statistics")
    async def get_statistics(p: str, name: str, version: int | None = version_q,
                             commit_version: int | None = Query(None, description="statistics of this commit"),
                             who: Caller = Depends(guard("get_statistics"))) -> Any:
        return await call("get_statistics", p, name, version, commit_version)

    @route("compute_statistics", body=obj(columns={"type": "array", "items": {"type": "string"}},
                                          options={"type": "object"}))
    async def compute_statistics(request: Request, p: str, name: str, version: int | None = version_q,
                                 who: Caller = Depends(guard("compute_statistics"))) -> Any:
        columns, options = await _statistics_body(request)
        return await call("compute_statistics", p, name, version, columns, options, lock=("fg", p, name))

    @route("history")
    async def history(p: str, name: str, version: int | None = version_q,
                      limit: int | None = Query(None, ge=1, description="at most this many commits"),
                      who: Caller = Depends(guard("history"))) -> Any:
        return await call("history", p, name, version, limit)

    # --- queries -------------------------------------------------------------------------------

    @route("plan", body=obj(spec={"type": "object"}))
    async def plan(request: Request, p: str, who: Caller = Depends(guard("plan"))) -> Any:
        """The SQL a query spec runs, and the source group of each output column."""
        spec = (await _json_body(request)).get("spec")
        if not isinstance(spec, dict):
            raise InvalidArgumentError('the body must be {"spec": {...}}')
        sql, outputs = await call("plan", p, spec)
        return {"sql": sql, "outputs": [[column, {"name": g.name, "version": g.version}] for column, g in outputs]}

    @route("feature_query", body=obj(features={"type": "array", "items": {"type": "string"}},
                                     featuregroups_version_dict={"type": "object"}, join_key={}))
    async def feature_query(request: Request, p: str, who: Caller = Depends(guard("feature_query"))) -> Any:
        body = await _json_body(request)
        if "features" not in body:
            raise InvalidArgumentError('the body must name the "features"')
        return await call("feature_query", p, **body)

    # --- training datasets ---------------------------------------------------------------------

    @route("list_training_datasets")
    async def list_training_datasets(p: str, who: Caller = Depends(guard("list_training_datasets"))) -> Any:
        return await call("list_training_datasets", p)

    @route("create_training_dataset", status_code=201)
    async def create_training_dataset(request: Request, p: str,
                                      who: Caller = Depends(guard("create_training_dataset"))) -> Any:
        """Options: ``name``, ``version``, ``data_format``, ``description``, ``write_mode``,
        ``provenance``, ``compute_statistics``."""
        table, options = await _arrow_body(request)
        name = _pop_name(options, "training dataset")
        version = options.pop("version", None)
        return await call("create_training_dataset", p, name, version, table, lock=("td", p, name), **options)

    @route("describe_training_dataset")
    async def describe_training_dataset(p: str, name: str, version: int | None = version_q,
                                        who: Caller = Depends(guard("describe_training_dataset"))) -> Any:
        return await call("describe_training_dataset", p, name, version)

    @route("training_dataset_statistics")
    async def training_dataset_statistics(p: str, name: str, version: int | None = version_q,
                                          who: Caller = Depends(guard("training_dataset_statistics"))) -> Any:
        return await call("training_dataset_statistics", p, name, version)

    @route("compute_training_dataset_statistics", body=obj(columns={"type": "array", "items": {"type": "string"}},
                                                           options={"type": "object"}))
    async def compute_training_dataset_statistics(
            request: Request, p: str, name: str, version: int | None = version_q,
            who: Caller = Depends(guard("compute_training_dataset_statistics"))) -> Any:
        columns, options = await _statistics_body(request)
        return await call("compute_training_dataset_statistics", p, name, version, columns, options)

    @route("delete_training_dataset", status_code=204)
    async def delete_training_dataset(p: str, name: str, version: int,
                                      who: Caller = Depends(guard("delete_training_dataset"))) -> Any:
        await call("delete_training_dataset", p, name, version, lock=("td", p, name))
        return Response(status_code=204)

    td_options = {"data_format": {"type": "string"}, "description": {"type": "string"},
                  "write_mode": {"type": "string"}, "sink": {"type": "string"}, "path": {"type": "string"},
                  "splits": {"type": "object"}, "seed": {"type": "integer"},
                  "compute_statistics": {"type": "boolean"}, "rows_per_file": {"type": "integer"}}

    @route("create_training_dataset_from_query", status_code=201,
           body=obj(name={"type": "string"}, version={"type": "integer"}, spec={"type": "object"}, **td_options))
    async def create_training_dataset_from_query(
            request: Request, p: str, who: Caller = Depends(guard("create_training_dataset_from_query"))) -> Any:
        """The server runs the query (pinned to each feature group's current commit) and writes
        the dataset to the managed location or the S3 sink."""
        body = await _json_body(request)
        name = _pop_name(body, "training dataset")
        version = body.pop("version", None)
        spec = body.pop("spec", None)
        if not isinstance(spec, dict):
            raise InvalidArgumentError('the body must hold the query as "spec"')
        return await call("create_training_dataset_from_query", p, name, version, spec,
                          lock=("td", p, name), **body)

    @route("create_training_dataset_pit", status_code=201)
    async def create_training_dataset_pit(request: Request, p: str,
                                          who: Caller = Depends(guard("create_training_dataset_pit"))) -> Any:
        """The body: the label rows (Arrow). Options: ``name``, ``version``, ``spec``, ``event_time``,
        ``ttl`` and the training-dataset options; the server reads the query point in time."""
        table, options = await _arrow_body(request)
        name = _pop_name(options, "training dataset")
        version = options.pop("version", None)
        spec, event_time = options.pop("spec", None), options.pop("event_time", None)
        if not isinstance(spec, dict) or not isinstance(event_time, str):
            raise InvalidArgumentError('the options must hold the query as "spec" and the "event_time" column')
        return await call("create_training_dataset_pit", p, name, version, table, spec, event_time,
                          lock=("td", p, name), **options)

    @route("prepare_training_dataset",
           body=obj(name={"type": "string"}, version={"type": "integer"}, data_format={"type": "string"},
                    sink={"type": "string"}, path={"type": "string"}, write_mode={"type": "string"}))
    async def prepare_training_dataset(request: Request, p: str,
                                       who: Caller = Depends(guard("prepare_training_dataset"))) -> Any:
        """Checks a new dataset's name, version, format and sink; for an S3 sink returns the
        connector's settings and credentials so the client can write the files itself."""
        body = await _json_body(request)
        name = _pop_name(body, "training dataset")
        version = body.pop("version", None)
        return await call("prepare_training_dataset", p, name, version, **body)

    @route("register_training_dataset", status_code=201,
           body=obj(name={"type": "string"}, version={"type": "integer"}, layout={"type": "object"},
                    arrow_schema={"type": "string"}, provenance={"type": "object"}, **td_options))
    async def register_training_dataset(request: Request, p: str,
                                        who: Caller = Depends(guard("register_training_dataset"))) -> Any:
        """Registers a dataset the client wrote to an S3 sink (checked and described by the server)."""
        body = await _json_body(request)
        name = _pop_name(body, "training dataset")
        version = body.pop("version", None)
        if not isinstance(version, int):
            raise InvalidArgumentError("register_training_dataset needs the version prepare_training_dataset gave")
        return await call("register_training_dataset", p, name, version, lock=("td", p, name), **body)

    @route("list_storage_connectors")
    async def list_storage_connectors(p: str, who: Caller = Depends(guard("list_storage_connectors"))) -> Any:
        return await call("list_storage_connectors", p)

    @route("create_s3_connector", status_code=201,
           body=obj(name={"type": "string"}, bucket={"type": "string"}, path={"type": "string"},
                    region={"type": "string"}, endpoint_url={"type": "string"},
                    access_key={"type": "string"}, secret_key={"type": "string"},
                    session_token={"type": "string"}, server_side_encryption={"type": "string"},
                    kms_key_id={"type": "string"}, description={"type": "string"}, exist_ok={"type": "boolean"}))
    async def create_s3_connector(request: Request, p: str,
                                  who: Caller = Depends(guard("create_s3_connector"))) -> Any:
        body = await _json_body(request)
        name = _pop_name(body, "storage connector")
        return await call("create_s3_connector", p, name, lock=("connector", p, name), **body)

    @route("get_storage_connector")
    async def get_storage_connector(p: str, name: str, secrets: bool = Query(False, description=(
            "include the access key pair (members of the project only, not via a share)")),
            who: Caller = Depends(guard("get_storage_connector"))) -> Any:
        if secrets and who.acting != p:
            raise PermissionDeniedError(
                f"storage connector credentials of project {p!r} are only given to its members")
        if secrets and (await call("get_storage_connector", p, name))["type"] == "jdbc":
            try:  # a database password: only to those who may write (data owners)
                await run_in_threadpool(security.authorize, who.principal, who.acting, write=True)
            except PermissionDeniedError as exc:
                raise PermissionDeniedError(
                    f"the password of JDBC connector {name!r} is only given to data owners of project {p!r}"
                ) from exc
        return await call("get_storage_connector", p, name, with_secrets=secrets)

    @route("delete_storage_connector", status_code=204)
    async def delete_storage_connector(p: str, name: str,
                                       who: Caller = Depends(guard("delete_storage_connector"))) -> Any:
        await call("delete_storage_connector", p, name, lock=("connector", p, name))
        return Response(status_code=204)

    @route("create_jdbc_connector", status_code=201,
           body=obj(name={"type": "string"}, url={"type": "string"}, user={"type": "string"},
                    password={"type": "string"}, description={"type": "string"}, arguments={"type": "object"},
                    query_timeout_s={"type": "integer"}, exist_ok={"type": "boolean"}))
    async def create_jdbc_connector(request: Request, p: str,
                                    who: Caller = Depends(guard("create_jdbc_connector"))) -> Any:
        """A PostgreSQL/MySQL/MariaDB connector for on-demand feature groups (password sealed)."""
        body = await _json_body(request)
        name = _pop_name(body, "storage connector")
        return await call("create_jdbc_connector", p, name, lock=("connector", p, name), **body)

    @route("create_on_demand_group", status_code=201,
           body=obj(name={"type": "string"}, version={"type": "integer"}, query={"type": "string"},
                    connector={"type": "string"}, description={"type": "string"}, primary_key={},
                    event_time={"type": "string"}, feature_descriptions={"type": "object"},
                    metadata={"type": "object"}))
    async def create_on_demand_group(request: Request, p: str,
                                     who: Caller = Depends(guard("create_on_demand_group"))) -> Any:
        """An on-demand feature group: a query on a JDBC connector, run at every read."""
        body = await _json_body(request)
        name = _pop_name(body, "feature group")
        version = body.pop("version", None)
        return await call("create_on_demand_group", p, name, version, lock=("fg", p, name), **body)

    # --- time travel: deletes by key, compaction, retention ----------------------------------------

    @route("delete_rows")
    async def delete_rows(request: Request, p: str, name: str, who: Caller = Depends(guard("delete_rows"))) -> Any:
        """Delete the rows whose primary key is in the Arrow body (one commit). Options: ``version``."""
        table, options = await _arrow_body(request)
        return await call("delete_rows", p, name, options.get("version"), table, lock=("fg", p, name))

    @route("compact", body=obj(retention_hours={"type": "integer"}))
    async def compact(request: Request, p: str, name: str, version: int | None = version_q,
                      who: Caller = Depends(guard("compact"))) -> Any:
        """Compact the group's files and vacuum those older than the retention window."""
        hours = (await _json_body(request)).get("retention_hours")
        return await call("compact", p, name, version, hours, lock=("fg", p, name))

    @route("get_retention")
    async def get_retention(p: str, name: str, version: int | None = version_q,
                            who: Caller = Depends(guard("get_retention"))) -> Any:
        return {"retention_hours": await call("get_retention", p, name, version)}

    @route("set_retention", body=obj(retention_hours={"type": "integer"}))
    async def set_retention(request: Request, p: str, name: str, version: int | None = version_q,
                            who: Caller = Depends(guard("set_retention"))) -> Any:
        hours = (await _json_body(request)).get("retention_hours")
        return await call("set_retention", p, name, version, hours, lock=("fg", p, name))

    # --- data validation and the registry (cloudsdk/server/rest_registry.py) --------------------
    from cloudsdk.server.rest_registry import add_registry_routes

    add_registry_routes(RouteKit(route=route, guard=guard, call=call, obj=obj, version_q=version_q))

    # --- the online store and the serving path (cloudsdk/server/rest_online.py) -------------------
    from cloudsdk.server.rest_online import FeatureVectorFastPath, add_online_routes

    vectors = add_online_routes(RouteKit(route=route, guard=guard, call=call, obj=obj, version_q=version_q), server)

    # --- errors ----------------------------------------------------------------------------------

    async def cloudsdk_error(request: Request, exc: Exception) -> Response:
        payload = P.error_payload(exc)
        if payload["status"] >= 500:
            log.error("%s %s failed: %s", request.method, request.url.path, payload["code"], exc_info=exc)
        return error_response(payload)

    async def validation_error(request: Request, exc: Exception) -> Response:
        problems = []
        for err in getattr(exc, "errors", list)():
            where = ".".join(str(part) for part in err.get("loc", ()) if part not in ("query", "path", "body"))
            problems.append(f"{where}: {err.get('msg')}" if where else str(err.get("msg")))
        return error_response(_payload("invalid_argument", "invalid request: " + "; ".join(problems), 400))

    async def http_error(request: Request, exc: Exception) -> Response:
        status = getattr(exc, "status_code", 500)
        if status == 404:
            message = f"no route {request.method} {request.url.path}"
        elif status == 405:
            message = f"{request.method} is not allowed on {request.url.path}"
        else:
            message = str(getattr(exc, "detail", "")) or "request refused"
        response = error_response(_payload(_HTTP_CODES.get(status, "http_error"), message, status))
        for key, value in (getattr(exc, "headers", None) or {}).items():
            response.headers.setdefault(key, value)
        return response

    from cloudsdk.server.ui import mount_ui  # the web UI at /ui/ (static files; / redirects there)

    mount_ui(app)
    app.add_exception_handler(CloudSDKError, cloudsdk_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_middleware(_InternalErrors)
    app.add_middleware(FeatureVectorFastPath, endpoint=vectors)  # outermost: skips routing for the serving path

    missing = set(P.ROUTES) - {getattr(r, "name", None) for r in app.routes}
    if missing:  # pragma: no cover - a contract change without a server change
        raise AssertionError(f"routes of the contract without an endpoint: {sorted(missing)}")
    return app
