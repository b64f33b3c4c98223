"""Users, project membership, scoped API keys and read-only sharing of feature stores.

The service behind ``Authorization: ApiKey <key>``: :meth:`SecurityService.authenticate`
turns a key into a :class:`Principal` (a user acting through one key with some scopes), and
:meth:`SecurityService.authorize` decides whether that principal may read or write in a
project. The REST and Flight layers call these two; the admin CLI calls the rest.

API keys look like ``csk_<prefix>.<secret>``: a 12-hex-digit lookup prefix and a 43-character
URL-safe secret (256 random bits). The key is returned once, at creation; the catalog keeps
only the prefix, a random salt and ``sha256(salt + secret)``. Because the secret is long and
random, a fast salted hash is enough (there is nothing to brute-force); comparisons are
constant-time.

Example::

    sec = SecurityService(service.catalog)
    sec.create_user("alice")
    sec.add_member("fraud", "alice", "data_scientist")
    key, meta = sec.create_api_key("alice", "notebook", ["featurestore"])
    principal = sec.authenticate(key)
    sec.authorize(principal, "fraud")             # -> "data_scientist"
    sec.authorize(principal, "fraud", write=True)  # PermissionDeniedError
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from cloudsdk._names import validate_name
from cloudsdk.errors import (
    AlreadyExistsError,
    AuthenticationError,
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
    ProjectNotFoundError,
    StorageError,
)
from cloudsdk.store import catalog as C
from cloudsdk.store.catalog import Catalog

log = logging.getLogger(__name__)

__all__ = ["KEY_PREFIX", "ROLES", "SCOPES", "Principal", "SecurityService"]

ROLES = ("data_owner", "data_scientist")
SCOPES = ("featurestore", "project")
KEY_PREFIX = "csk_"
# How stale ``last_used`` may get: at most one catalog write per key and minute.
LAST_USED_RESOLUTION = timedelta(seconds=60)

_KEY_RE = re.compile(r"^csk_(?P<prefix>[0-9a-f]{12})\.(?P<secret>[A-Za-z0-9_-]{20,200})$")
_INVALID_KEY = "invalid API key: it is unknown or wrong; check the key, or create one with `cloudsdk apikey create`"
# Hash something even for an unknown prefix, so that the answer takes the same time.
_DUMMY_SALT = "00" * 16
_DUMMY_HASH = "0" * 64


@dataclass(frozen=True)
class Principal:
    """Who a request acts as: a user, through one named API key, with that key's scopes.

    Holds no secret, so its repr is safe to log.
    """

    user: str
    key_name: str
    scopes: frozenset[str]


def _hash(salt_hex: str, secret: str) -> str:
    return hashlib.sha256(bytes.fromhex(salt_hex) + secret.encode("utf-8")).hexdigest()


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _no_project(name: object) -> ProjectNotFoundError:
    """The one message for a project that does not exist *or* that the caller may not see."""
    return ProjectNotFoundError(f"no project named {name!r}", project=name)


def _no_user(name: object) -> NotFoundError:
    return NotFoundError(f"no user named {name!r}; create it with `cloudsdk user create`", user=name)


def _parse_scopes(scopes: Sequence[str] | str) -> list[str]:
    if isinstance(scopes, str):
        scopes = [s.strip() for s in scopes.split(",") if s.strip()]
    wanted = set()
    for scope in scopes:
        if scope not in SCOPES:
            raise InvalidArgumentError(
                f"unknown API key scope {scope!r}: use one or more of {', '.join(SCOPES)}", scope=scope
            )
        wanted.add(scope)
    if not wanted:
        raise InvalidArgumentError(f"an API key needs at least one scope: {', '.join(SCOPES)}")
    return [s for s in SCOPES if s in wanted]


class SecurityService:
    """Users, members and roles, API keys, shares: kept in the store's catalog."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog

    # --- lookups -------------------------------------------------------------------------

    @staticmethod
    def _project_id(conn: Connection, name: object) -> int | None:
        if not isinstance(name, str):
            return None
        return conn.execute(sa.select(C.projects.c.id).where(C.projects.c.name == name)).scalar()

    @staticmethod
    def _user_id(conn: Connection, name: object) -> int | None:
        if not isinstance(name, str):
            return None
        return conn.execute(sa.select(C.users.c.id).where(C.users.c.name == name)).scalar()

    def _require_project(self, conn: Connection, name: object) -> int:
        pid = self._project_id(conn, name)
        if pid is None:
            raise _no_project(name)
        return pid

    def _require_user(self, conn: Connection, name: object) -> int:
        uid = self._user_id(conn, name)
        if uid is None:
            raise _no_user(name)
        return uid

    @staticmethod
    def _role(conn: Connection, project_id: int, user: str) -> str | None:
        return conn.execute(
            sa.select(C.members.c.role)
            .join(C.users, C.users.c.id == C.members.c.user_id)
            .where(C.members.c.project_id == project_id, C.users.c.name == user)
        ).scalar()

    # --- users -----------------------------------------------------------------------------

    def create_user(self, name: str) -> dict[str, Any]:
        """Create a user.

        Returns:
            ``{"name", "created"}``.

        Raises:
            InvalidNameError: the name is not a valid name.
            AlreadyExistsError: a user of that name exists.
        """
        validate_name(name, "user")
        created = C.now()
        try:
            with self.catalog.begin() as conn:
                if self._user_id(conn, name) is not None:
                    raise AlreadyExistsError(f"user {name!r} already exists", user=name)
                conn.execute(C.users.insert().values(name=name, created=created))
        except sa.exc.IntegrityError as exc:
            raise AlreadyExistsError(f"user {name!r} already exists", user=name) from exc
        return {"name": name, "created": created.isoformat()}

    def list_users(self) -> list[dict[str, Any]]:
        """Every user by name: ``{"name", "created", "projects": {project: role}}``."""
        with self.catalog.read() as conn:
            users = list(conn.execute(sa.select(C.users).order_by(C.users.c.name)))
            roles: dict[int, dict[str, str]] = {}
            for uid, project, role in conn.execute(
                sa.select(C.members.c.user_id, C.projects.c.name, C.members.c.role)
                .join(C.projects, C.projects.c.id == C.members.c.project_id)
                .order_by(C.projects.c.name)
            ):
                roles.setdefault(uid, {})[project] = role
        return [{"name": u.name, "created": u.created.isoformat(), "projects": roles.get(u.id, {})}
                for u in users]

    # --- members ---------------------------------------------------------------------------

    def add_member(self, project: str, user: str, role: str) -> None:
        """Make ``user`` a member of ``project`` with ``role`` (or change their role).

        Raises:
            InvalidArgumentError: ``role`` is not one of :data:`ROLES`.
            ProjectNotFoundError, NotFoundError: no such project or user.
        """
        if role not in ROLES:
            raise InvalidArgumentError(f"unknown role {role!r}: use {' or '.join(ROLES)}", role=role)
        with self.catalog.begin() as conn:
            pid = self._require_project(conn, project)
            uid = self._require_user(conn, user)
            where = (C.members.c.project_id == pid) & (C.members.c.user_id == uid)
            if conn.execute(sa.select(C.members.c.id).where(where)).first():
                conn.execute(C.members.update().where(where).values(role=role))
            else:
                conn.execute(C.members.insert().values(project_id=pid, user_id=uid, role=role))

    def remove_member(self, project: str, user: str) -> None:
        """Remove ``user`` from ``project``.

        Raises:
            ProjectNotFoundError, NotFoundError: no such project or user, or not a member.
        """
        with self.catalog.begin() as conn:
            pid = self._require_project(conn, project)
            uid = self._require_user(conn, user)
            deleted = conn.execute(
                C.members.delete().where(C.members.c.project_id == pid, C.members.c.user_id == uid)
            ).rowcount
        if not deleted:
            raise NotFoundError(f"user {user!r} is not a member of project {project!r}",
                                user=user, project=project)

    def list_members(self, project: str) -> list[dict[str, str]]:
        """The members of a project by user name: ``[{"user", "role"}]``."""
        with self.catalog.read() as conn:
            pid = self._require_project(conn, project)
            rows = conn.execute(
                sa.select(C.users.c.name, C.members.c.role)
                .join(C.users, C.users.c.id == C.members.c.user_id)
                .where(C.members.c.project_id == pid)
                .order_by(C.users.c.name)
            )
            return [{"user": name, "role": role} for name, role in rows]

    def role_of(self, project: str, user: str) -> str | None:
        """The user's role in the project; None if either is unknown or the user is no member."""
        with self.catalog.read() as conn:
            pid = self._project_id(conn, project)
            if pid is None or not isinstance(user, str):
                return None
            return self._role(conn, pid, user)

    # --- API keys --------------------------------------------------------------------------

    def create_api_key(self, user: str, name: str, scopes: Sequence[str]) -> tuple[str, dict[str, Any]]:
        """Create an API key for ``user``; the key is returned now and never again.

        A revoked key's name may be reused: the revoked key's record is replaced.

        Args:
            user: the user the key acts for.
            name: the key's name, unique per user (e.g. ``"sagemaker"``).
            scopes: some of :data:`SCOPES` (a comma-separated string is accepted too).

        Returns:
            ``(key, metadata)``: the key ``csk_<prefix>.<secret>`` and what
            :meth:`list_api_keys` shows for it.

        Raises:
            NotFoundError: no such user.
            InvalidNameError, InvalidArgumentError: a bad name or scope.
            AlreadyExistsError: the user has a live key of that name.
        """
        validate_name(name, "API key")
        scope_list = _parse_scopes(scopes)
        for _attempt in range(3):
            prefix, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
            salt = secrets.token_bytes(16).hex()
            created = C.now()
            try:
                with self.catalog.begin() as conn:
                    uid = self._require_user(conn, user)
                    old = conn.execute(
                        sa.select(C.api_keys.c.id, C.api_keys.c.revoked_at)
                        .where(C.api_keys.c.user_id == uid, C.api_keys.c.name == name)
                    ).first()
                    if old is not None:
                        if old.revoked_at is None:
                            raise AlreadyExistsError(
                                f"user {user!r} already has an API key named {name!r}; revoke it first "
                                "or choose another name", user=user, key_name=name,
                            )
                        conn.execute(C.api_keys.delete().where(C.api_keys.c.id == old.id))
                    conn.execute(C.api_keys.insert().values(
                        user_id=uid, name=name, prefix=prefix, salt=salt, hash=_hash(salt, secret),
                        scopes=json.dumps(scope_list), created=created,
                    ))
            except sa.exc.IntegrityError as exc:  # a prefix collision (or a concurrent create)
                log.debug("API key insert collided (%s); retrying", exc.__class__.__name__)
                continue
            meta = {"name": name, "user": user, "prefix": prefix, "scopes": scope_list,
                    "created": created.isoformat(), "revoked": False, "revoked_at": None,
                    "last_used": None}
            log.info("created API key %r (prefix %s) for user %r", name, prefix, user)
            return f"{KEY_PREFIX}{prefix}.{secret}", meta
        raise AlreadyExistsError(f"could not create API key {name!r} for user {user!r}; try again",
                                 user=user, key_name=name)

    def list_api_keys(self, user: str | None = None) -> list[dict[str, Any]]:
        """API keys (of one user, or all) by user and name, without secrets or hashes.

        Each: ``{"name", "user", "prefix", "scopes", "created", "revoked", "revoked_at",
        "last_used"}``.

        Raises:
            NotFoundError: ``user`` is given and unknown.
        """
        query = (
            sa.select(C.api_keys.c.name, C.users.c.name.label("user"), C.api_keys.c.prefix,
                      C.api_keys.c.scopes, C.api_keys.c.created, C.api_keys.c.revoked_at,
                      C.api_keys.c.last_used)
            .join(C.users, C.users.c.id == C.api_keys.c.user_id)
            .order_by(C.users.c.name, C.api_keys.c.name)
        )
        with self.catalog.read() as conn:
            if user is not None:
                query = query.where(C.api_keys.c.user_id == self._require_user(conn, user))
            rows = list(conn.execute(query))
        return [
            {"name": r.name, "user": r.user, "prefix": r.prefix, "scopes": json.loads(r.scopes),
             "created": r.created.isoformat(), "revoked": r.revoked_at is not None,
             "revoked_at": _iso(r.revoked_at), "last_used": _iso(r.last_used)}
            for r in rows
        ]

    def revoke_api_key(self, user: str, name: str) -> None:
        """Revoke a user's key; requests with it fail from now on. Revoking twice is harmless.

        Raises:
            NotFoundError: no such user, or the user has no key of that name.
        """
        with self.catalog.begin() as conn:
            uid = self._require_user(conn, user)
            row = conn.execute(
                sa.select(C.api_keys.c.id, C.api_keys.c.revoked_at)
                .where(C.api_keys.c.user_id == uid, C.api_keys.c.name == name)
            ).first()
            if row is None:
                raise NotFoundError(f"user {user!r} has no API key named {name!r}", user=user, key_name=name)
            if row.revoked_at is None:
                conn.execute(C.api_keys.update().where(C.api_keys.c.id == row.id).values(revoked_at=C.now()))
        log.info("revoked API key %r of user %r", name, user)

    def authenticate(self, key: str | None) -> Principal:
        """The principal an API key acts as.

        Raises:
            AuthenticationError: no key, a malformed one, an unknown or wrong one (one message
                for both), or a revoked one. The message never contains the key.
        """
        if key is None or (isinstance(key, str) and not key.strip()):
            raise AuthenticationError(
                "no API key: requests need the header 'Authorization: ApiKey <key>'; "
                "create a key with `cloudsdk apikey create`"
            )
        match = _KEY_RE.fullmatch(key.strip()) if isinstance(key, str) else None
        if match is None:
            raise AuthenticationError("malformed API key: expected the form csk_<prefix>.<secret>")
        prefix, secret = match.group("prefix"), match.group("secret")
        with self.catalog.read() as conn:
            row = conn.execute(
                sa.select(C.api_keys, C.users.c.name.label("user"))
                .join(C.users, C.users.c.id == C.api_keys.c.user_id)
                .where(C.api_keys.c.prefix == prefix)
            ).first()
        if row is None:
            hmac.compare_digest(_hash(_DUMMY_SALT, secret), _DUMMY_HASH)
            raise AuthenticationError(_INVALID_KEY)
        if not hmac.compare_digest(_hash(row.salt, secret), row.hash):
            raise AuthenticationError(_INVALID_KEY)
        if row.revoked_at is not None:
            raise AuthenticationError(
                "the API key has been revoked; create a new one with `cloudsdk apikey create`"
            )
        self._touch(row.id, row.last_used)
        return Principal(user=row.user, key_name=row.name, scopes=frozenset(json.loads(row.scopes)))

    def _touch(self, key_id: int, last_used: datetime | None) -> None:
        """Record the key's use, at most once per :data:`LAST_USED_RESOLUTION`."""
        when = C.now()
        if last_used is not None and when - last_used < LAST_USED_RESOLUTION:
            return
        try:
            with self.catalog.begin() as conn:
                conn.execute(C.api_keys.update().where(C.api_keys.c.id == key_id).values(last_used=when))
        except (StorageError, sa.exc.SQLAlchemyError) as exc:  # bookkeeping must not fail a request
            log.warning("could not record an API key's last use: %s", exc.__class__.__name__)

    # --- authorization -----------------------------------------------------------------------

    def authorize(self, principal: Principal, project: str, *, target: str | None = None,
                  write: bool = False, scope: str = "featurestore") -> str:
        """Check that ``principal`` may act in ``project``; return its role there.

        Args:
            principal: from :meth:`authenticate`.
            project: the project the caller acts in.
            target: the project whose feature store is read or written (default: ``project``);
                another project's store is readable only if shared with ``project``.
            write: whether the operation writes (only data owners write, never to a shared store).
            scope: the API key scope the operation needs (one of :data:`SCOPES`).

        Returns:
            The principal's role in ``project``.

        Raises:
            ProjectNotFoundError: the project does not exist or the user is not a member; or
                ``target`` does not exist or is not shared with ``project`` (the same message
                as for a project that does not exist: nothing is revealed).
            PermissionDeniedError: the key lacks ``scope``; a write to a shared store; a write
                by a data scientist.
        """
        if scope not in SCOPES:
            raise InvalidArgumentError(f"unknown scope {scope!r}: use one of {', '.join(SCOPES)}")
        with self.catalog.read() as conn:
            pid = self._project_id(conn, project)
            role = self._role(conn, pid, principal.user) if pid is not None else None
            if pid is None or role is None:
                raise _no_project(project)
            if scope not in principal.scopes:
                raise PermissionDeniedError(
                    f"the API key {principal.key_name!r} lacks the {scope!r} scope; create a key "
                    f"with it (`cloudsdk apikey create --scopes {scope},...`)",
                    scope=scope, user=principal.user,
                )
            if target is not None and target != project:
                tid = self._project_id(conn, target)
                shared = tid is not None and conn.execute(
                    sa.select(C.shares.c.id).where(C.shares.c.owner_project_id == tid,
                                                   C.shares.c.reader_project_id == pid)
                ).first() is not None
                if not shared:
                    raise _no_project(target)
                if write:
                    raise PermissionDeniedError(
                        f"the feature store of project {target!r} is shared with project {project!r} "
                        "read-only: writes go to the project's own feature store",
                        project=project, target=target,
                    )
        if write and role != "data_owner":
            raise PermissionDeniedError(
                f"user {principal.user!r} is a {role} in project {project!r}: only data owners may write",
                user=principal.user, project=project, role=role,
            )
        return role

    # --- sharing -------------------------------------------------------------------------------

    def share(self, owner: str, reader: str) -> None:
        """Share ``owner``'s feature store read-only with project ``reader`` (idempotent).

        Raises:
            ProjectNotFoundError: either project does not exist.
            InvalidArgumentError: ``owner == reader``.
        """
        with self.catalog.begin() as conn:
            oid = self._require_project(conn, owner)
            rid = self._require_project(conn, reader)
            if oid == rid:
                raise InvalidArgumentError(f"project {owner!r} cannot share its feature store with itself")
            exists = conn.execute(
                sa.select(C.shares.c.id).where(C.shares.c.owner_project_id == oid,
                                               C.shares.c.reader_project_id == rid)
            ).first()
            if exists is None:
                conn.execute(C.shares.insert().values(owner_project_id=oid, reader_project_id=rid,
                                                      created=C.now()))

    def unshare(self, owner: str, reader: str) -> None:
        """Stop sharing ``owner``'s feature store with ``reader``.

        Raises:
            ProjectNotFoundError: either project does not exist.
            NotFoundError: the store is not shared with ``reader``.
        """
        with self.catalog.begin() as conn:
            oid = self._require_project(conn, owner)
            rid = self._require_project(conn, reader)
            deleted = conn.execute(
                C.shares.delete().where(C.shares.c.owner_project_id == oid,
                                        C.shares.c.reader_project_id == rid)
            ).rowcount
        if not deleted:
            raise NotFoundError(f"the feature store of project {owner!r} is not shared with {reader!r}",
                                project=owner, reader=reader)

    def readable_featurestores(self, project: str) -> list[str]:
        """The feature stores ``project`` can read: its own first, then the shared ones, sorted.

        Raises:
            ProjectNotFoundError: no such project.
        """
        with self.catalog.read() as conn:
            pid = self._require_project(conn, project)
            owner = sa.alias(C.projects)
            shared = [name for (name,) in conn.execute(
                sa.select(owner.c.name)
                .join(C.shares, C.shares.c.owner_project_id == owner.c.id)
                .where(C.shares.c.reader_project_id == pid)
                .order_by(owner.c.name)
            )]
        return [f"{project}_featurestore", *sorted(f"{name}_featurestore" for name in shared)]
