"""REST routes of the online store (store/online_service.py), and the serving path.

The metadata routes (enable, disable, sync, consistency, connection details) go through the
usual ``route``/``guard``/``call`` helpers of :func:`cloudsdk.server.rest.create_app`.

The feature-vector route ``POST /projects/{p}/featurevectors`` is the latency path: a plain
ASGI handler (:class:`FeatureVectorEndpoint`) that :class:`FeatureVectorFastPath` runs before
FastAPI's routing, dependency injection and validation. Per request it does, and only does:

* authentication and authorization through an :class:`AuthCache`: an API key's principal and
  a (principal, acting project, store) grant are reused for :data:`AUTH_CACHE_TTL_S` seconds,
  so a revoked key, a removed member or an unshared store is refused at most that long after
  the change (every other route checks on every request). The cache is keyed by a SHA-256
  digest of the key; the key itself is never stored, logged or echoed. The key's ``last_used``
  bookkeeping (a catalog write) therefore happens at most once per TTL, not per request;
* parsing the JSON body by hand (no pydantic model);
* the store's cached lookup plan (``FeatureStoreService.get_feature_vectors`` →
  ``prepare_feature_vector``): no catalog read per request once the plan is built;
* the lookup inline on the event loop for the SQLite backend (a local read of some
  microseconds: cheaper than a hop to the thread pool), in the thread pool for Redis and MySQL
  (network round trips must not stall the loop);
* a compact JSON answer (``json.dumps(separators=(",", ":"))``; values JSON lacks travel as
  text, named in ``"types"``: see :func:`cloudsdk._protocol.encode_vectors`).

Errors keep the one JSON shape ``{"code", "message", "status", "details"}``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from fastapi import Depends, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from cloudsdk import _protocol as P
from cloudsdk.errors import CloudSDKError, InvalidArgumentError, PermissionDeniedError
from cloudsdk.server.app import Server, parse_api_key
from cloudsdk.server.rest import Caller, RouteKit
from cloudsdk.store.security import Principal

log = logging.getLogger(__name__)

__all__ = ["AUTH_CACHE_TTL_S", "AuthCache", "FeatureVectorEndpoint", "FeatureVectorFastPath", "add_online_routes"]

AUTH_CACHE_TTL_S = 3.0
"""How long the serving route trusts an API key's authentication and a project grant."""
MAX_BODY_BYTES = 16 << 20
_PREFIX = P.API_PREFIX + "/projects/"
_SUFFIX = "/featurevectors"
_BLOCKING_BACKENDS_TTL_S = AUTH_CACHE_TTL_S


class AuthCache:
    """API key -> principal and (principal, acting project, store) -> granted, each for
    ``ttl_s`` seconds (a bounded map: cleared when it holds ``max_entries``)."""

    def __init__(self, server: Server, ttl_s: float | None = None, max_entries: int = 4096) -> None:
        self._security = server.security
        self.ttl_s = AUTH_CACHE_TTL_S if ttl_s is None else ttl_s
        self._max = max_entries
        self._principals: dict[bytes, tuple[float, Principal]] = {}
        self._grants: dict[tuple[Principal, str, str], float] = {}
        self._lock = threading.Lock()

    async def principal(self, key: str) -> Principal:
        """The key's principal (AuthenticationError as :meth:`SecurityService.authenticate`)."""
        digest = hashlib.sha256(key.encode()).digest()
        hit = self._principals.get(digest)
        now = time.monotonic()
        if hit is not None and hit[0] > now:
            return hit[1]
        principal = await run_in_threadpool(self._security.authenticate, key)
        with self._lock:
            if len(self._principals) >= self._max:
                self._principals.clear()
            self._principals[digest] = (now + self.ttl_s, principal)
        return principal

    async def authorize_read(self, principal: Principal, acting: str, project: str) -> None:
        """Raise unless ``principal`` may read ``project``'s store acting in ``acting``."""
        grant = (principal, acting, project)
        expires = self._grants.get(grant)
        now = time.monotonic()
        if expires is not None and expires > now:
            return
        await run_in_threadpool(self._security.authorize, principal, acting,
                                target=None if acting == project else project, write=False, scope="featurestore")
        with self._lock:
            if len(self._grants) >= self._max:
                self._grants.clear()
            self._grants[grant] = now + self.ttl_s

    def clear(self) -> None:
        """Forget everything (the next request checks again)."""
        with self._lock:
            self._principals.clear()
            self._grants.clear()


def _parse_request(raw: bytes) -> tuple[Any, list[Any], bool, dict[str, int] | None]:
    """``(features or spec, entries, allow_missing, versions)`` of a feature-vector body."""
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise InvalidArgumentError(f"the request body is not JSON: {exc}") from exc
    if type(body) is not dict:
        raise InvalidArgumentError("the request body must be a JSON object")
    features = body.get("features")
    if features is None:
        features = body.get("spec")
        if type(features) is not dict:
            raise InvalidArgumentError('the body must hold "features" (a list of names) or "spec" (a query)')
    elif type(features) is not list or not features or not all(type(f) is str for f in features):
        raise InvalidArgumentError('"features" must be a non-empty list of feature names')
    entries = body.get("entries")
    if type(entries) is not list:
        raise InvalidArgumentError('"entries" must be a list of {key column: value} objects')
    allow_missing = body.get("allow_missing", False)
    if type(allow_missing) is not bool:
        raise InvalidArgumentError('"allow_missing" must be true or false')
    versions = body.get("versions")
    if versions is not None and (type(versions) is not dict or not all(
            type(v) is int for v in versions.values())):
        raise InvalidArgumentError('"versions" must map feature group names to version numbers')
    return features, entries, allow_missing, versions


class FeatureVectorEndpoint:
    """The serving route's handler: ``handle(project, headers, body) -> (status, headers, body)``."""

    def __init__(self, server: Server, auth: AuthCache | None = None) -> None:
        self.server = server
        self.auth = auth or AuthCache(server)
        self._inline: dict[str, tuple[float, bool]] = {}

    def _lookup_inline(self, project: str) -> bool:
        """Whether lookups of ``project``'s online store run on the event loop (SQLite: a local
        read) rather than in the thread pool (Redis, MySQL: network round trips)."""
        hit = self._inline.get(project)
        now = time.monotonic()
        if hit is not None and hit[0] > now:
            return hit[1]
        try:
            backend = self.server.service.online_store_info(project).get("backend")
        except CloudSDKError:
            backend = None
        inline = backend == "sqlite"
        self._inline[project] = (now + _BLOCKING_BACKENDS_TTL_S, inline)
        return inline

    async def handle(self, project: str, authorization: str | None, acting: str | None,
                     raw: bytes) -> tuple[int, bytes]:
        """Answer one request: the HTTP status and the JSON body."""
        try:
            principal = await self.auth.principal(parse_api_key(authorization))
            await self.auth.authorize_read(principal, acting or project, project)
            features, entries, allow_missing, versions = _parse_request(raw)
            lookup = self.server.service.get_feature_vectors
            if self._lookup_inline(project):
                result = lookup(project, features, entries, featuregroups_version_dict=versions,
                                allow_missing=allow_missing)
            else:
                result = await run_in_threadpool(lookup, project, features, entries,
                                                 featuregroups_version_dict=versions, allow_missing=allow_missing)
            return 200, P.encode_vectors(result)
        except CloudSDKError as exc:
            payload = P.error_payload(exc)
            if payload["status"] >= 500:
                log.error("POST %s%s%s failed: %s", _PREFIX, project, _SUFFIX, payload["code"], exc_info=exc)
        except Exception as exc:
            log.exception("internal error in POST %s%s%s", _PREFIX, project, _SUFFIX)
            payload = P.error_payload(exc)
        return int(payload["status"]), json.dumps(payload, separators=(",", ":"), default=str).encode()


_JSON_HEADERS = [(b"content-type", b"application/json")]


class FeatureVectorFastPath:
    """ASGI middleware: ``POST {API_PREFIX}/projects/{p}/featurevectors`` goes straight to the
    :class:`FeatureVectorEndpoint`; everything else to the app."""

    def __init__(self, app: ASGIApp, endpoint: FeatureVectorEndpoint) -> None:
        self.app = app
        self.endpoint = endpoint

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if (scope["type"] != "http" or scope.get("method") != "POST" or not path.endswith(_SUFFIX)
                or not path.startswith(_PREFIX)):
            await self.app(scope, receive, send)
            return
        project = path[len(_PREFIX):-len(_SUFFIX)]
        if not project or "/" in project:
            await self.app(scope, receive, send)
            return
        authorization = acting = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                authorization = value.decode("latin-1")
            elif name == b"x-cloudsdk-project":
                acting = value.decode("latin-1")
        chunks: list[bytes] = []
        size, more = 0, True
        while more and size <= MAX_BODY_BYTES:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            chunks.append(chunk)
            more = message.get("more_body", False)
        if size > MAX_BODY_BYTES:
            status, body = 413, json.dumps({"code": "payload_too_large", "status": 413, "details": {},
                                            "message": f"the body is over {MAX_BODY_BYTES} bytes"}).encode()
        else:
            status, body = await self.endpoint.handle(project, authorization, acting, b"".join(chunks))
        headers = [*_JSON_HEADERS, (b"content-length", str(len(body)).encode())]
        if status == 401:
            headers.append((b"www-authenticate", b"ApiKey"))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def add_online_routes(kit: RouteKit, server: Server) -> FeatureVectorEndpoint:
    """Add the online-store routes to the app behind ``kit``; returns the serving route's
    handler (install :class:`FeatureVectorFastPath` with it)."""
    route, guard, call, version_q = kit.route, kit.guard, kit.call, kit.version_q
    obj: Callable[..., dict[str, Any]] = kit.obj
    endpoint = FeatureVectorEndpoint(server)

    @route("enable_online")
    async def enable_online(p: str, name: str, version: int | None = version_q,
                            who: Caller = Depends(guard("enable_online"))) -> Any:
        """Store the group online too: creates its online table and back-fills it."""
        return await call("enable_online", p, name, version, lock=("fg", p, name))

    @route("disable_online")
    async def disable_online(p: str, name: str, version: int | None = version_q,
                             who: Caller = Depends(guard("disable_online"))) -> Any:
        """Stop storing the group online (its online table is dropped)."""
        return await call("disable_online", p, name, version, lock=("fg", p, name))

    @route("sync_online")
    async def sync_online(p: str, name: str, version: int | None = version_q,
                          who: Caller = Depends(guard("sync_online"))) -> Any:
        """Bring the online table up to the latest offline commit."""
        return await call("sync_online", p, name, version, lock=("fg", p, name))

    @route("check_online_consistency")
    async def check_online_consistency(p: str, name: str, version: int | None = version_q,
                                       limit: int = Query(10, ge=0, le=1000,
                                                          description="example keys of each kind"),
                                       who: Caller = Depends(guard("check_online_consistency"))) -> Any:
        """Compare the online table with the offline table's latest row per key."""
        return await call("check_online_consistency", p, name, version, limit=limit)

    @route("online_store_info")
    async def online_store_info(p: str, secrets: bool = Query(False, description=(
            "include the password (members of the project only, not via a share)")),
            who: Caller = Depends(guard("online_store_info"))) -> Any:
        """How to reach the project's online store (the password only with ``secrets``)."""
        if secrets and who.acting != p:
            raise PermissionDeniedError(
                f"the online store password of project {p!r} is only given to its members")
        return await call("online_store_info", p, include_password=secrets)

    vector_body = obj(features={"type": "array", "items": {"type": "string"}}, spec={"type": "object"},
                      entries={"type": "array", "items": {"type": "object"}}, allow_missing={"type": "boolean"},
                      versions={"type": "object", "additionalProperties": {"type": "integer"}})

    @route("get_feature_vectors", body=vector_body)
    async def get_feature_vectors(request: Request, p: str) -> Any:
        """Feature vectors from the online store: ``{"features", "rows", "missing"}``. The
        serving path (see the module docstring of ``cloudsdk.server.rest_online``); the API key
        and the project grant are cached for a few seconds."""
        status, body = await endpoint.handle(p, request.headers.get("authorization"),
                                             request.headers.get(P.HEADER_PROJECT), await request.body())
        headers = {"WWW-Authenticate": "ApiKey"} if status == 401 else None
        return Response(body, status_code=status, media_type="application/json", headers=headers)

    return endpoint

