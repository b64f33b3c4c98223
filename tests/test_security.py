"""Users, members, API keys, authentication, authorization and sharing (cloudsdk.store.security)
on a real SQLite catalog."""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from cloudsdk.errors import (
    AlreadyExistsError,
    AuthenticationError,
    InvalidArgumentError,
    InvalidNameError,
    NotFoundError,
    PermissionDeniedError,
    ProjectNotFoundError,
)
from cloudsdk.store import FeatureStoreService
from cloudsdk.store import catalog as C
from cloudsdk.store.catalog import Catalog
from cloudsdk.store.security import ROLES, SCOPES, Principal, SecurityService

KEY_RE = re.compile(r"^csk_[0-9a-f]{12}\.[A-Za-z0-9_-]{43}$")


@pytest.fixture
def service(tmp_path: Path) -> Iterator[FeatureStoreService]:
    svc = FeatureStoreService(tmp_path / "store")
    yield svc
    svc.close()


@pytest.fixture
def sec(service: FeatureStoreService) -> SecurityService:
    return SecurityService(service.catalog)


@pytest.fixture
def world(service: FeatureStoreService, sec: SecurityService) -> SecurityService:
    """Projects fraud, marketing, hidden; alice owns fraud, bob is a data scientist in fraud."""
    for name in ("fraud", "marketing", "hidden"):
        service.create_project(name)
    for user in ("alice", "bob", "carol"):
        sec.create_user(user)
    sec.add_member("fraud", "alice", "data_owner")
    sec.add_member("fraud", "bob", "data_scientist")
    sec.add_member("marketing", "alice", "data_scientist")
    sec.add_member("hidden", "carol", "data_owner")
    return sec


def _error(call, *args, **kwargs) -> Exception:  # type: ignore[no-untyped-def]
    with pytest.raises(Exception) as info:
        call(*args, **kwargs)
    return info.value


# --- users and members ------------------------------------------------------------------------

def test_create_and_list_users(sec: SecurityService, service: FeatureStoreService) -> None:
    created = sec.create_user("alice")
    assert created["name"] == "alice" and created["created"]
    sec.create_user("bob")
    service.create_project("fraud")
    sec.add_member("fraud", "bob", "data_owner")
    users = sec.list_users()
    assert [u["name"] for u in users] == ["alice", "bob"]
    assert users[0]["projects"] == {} and users[1]["projects"] == {"fraud": "data_owner"}


def test_create_user_errors(sec: SecurityService) -> None:
    sec.create_user("alice")
    with pytest.raises(AlreadyExistsError, match="alice"):
        sec.create_user("alice")
    for bad in ("Alice", "1x", "", "select", "a b"):
        with pytest.raises(InvalidNameError):
            sec.create_user(bad)


def test_members_and_roles(world: SecurityService) -> None:
    assert world.list_members("fraud") == [{"user": "alice", "role": "data_owner"},
                                           {"user": "bob", "role": "data_scientist"}]
    assert world.role_of("fraud", "bob") == "data_scientist"
    world.add_member("fraud", "bob", "data_owner")  # changes the role
    assert world.role_of("fraud", "bob") == "data_owner"
    assert len(world.list_members("fraud")) == 2
    world.remove_member("fraud", "bob")
    assert world.role_of("fraud", "bob") is None
    assert world.list_members("fraud") == [{"user": "alice", "role": "data_owner"}]
    assert world.role_of("nope", "alice") is None
    assert world.role_of("fraud", "nobody") is None


def test_member_errors(world: SecurityService) -> None:
    with pytest.raises(InvalidArgumentError, match="role"):
        world.add_member("fraud", "bob", "admin")
    with pytest.raises(ProjectNotFoundError):
        world.add_member("nope", "bob", "data_owner")
    with pytest.raises(NotFoundError, match="no user named 'dave'"):
        world.add_member("fraud", "dave", "data_owner")
    with pytest.raises(NotFoundError, match="not a member"):
        world.remove_member("marketing", "bob")
    with pytest.raises(ProjectNotFoundError):
        world.list_members("nope")


# --- API keys ---------------------------------------------------------------------------------

def test_api_key_is_shown_once_and_stored_hashed(world: SecurityService, service: FeatureStoreService) -> None:
    key, meta = world.create_api_key("alice", "notebook", ["featurestore", "project"])
    assert KEY_RE.match(key)
    prefix, secret = key[4:].split(".")
    assert meta == {"name": "notebook", "user": "alice", "prefix": prefix,
                    "scopes": ["featurestore", "project"], "created": meta["created"],
                    "revoked": False, "revoked_at": None, "last_used": None}
    listed = world.list_api_keys()
    assert listed == [meta]
    assert secret not in repr(listed) and key not in repr(listed)
    assert not {"hash", "salt", "secret", "key"} & set(listed[0])
    # Nothing in the catalog's files holds the secret in clear (the WAL included).
    service.close()
    blobs = {path: path.read_bytes() for path in sorted(service.root.glob("catalog.db*"))}
    assert blobs
    for path, data in blobs.items():
        assert secret.encode() not in data, path
        assert key.encode() not in data, path
    catalog = Catalog(service.catalog.url)
    try:
        with catalog.read() as conn:
            row = conn.execute(sa.select(C.api_keys)).one()
    finally:
        catalog.close()
    assert row.prefix == prefix and row.hash != secret and len(row.hash) == 64 and len(row.salt) == 32
    # The grep above does see what the catalog stores: the hash is there.
    assert any(row.hash.encode() in data for data in blobs.values())


def test_api_keys_are_distinct(world: SecurityService) -> None:
    keys = {world.create_api_key("alice", f"k{i}", ["featurestore"])[0] for i in range(5)}
    assert len(keys) == 5
    assert len({k[4:16] for k in keys}) == 5


def test_api_key_scopes(world: SecurityService) -> None:
    _, meta = world.create_api_key("alice", "a", "project,featurestore")
    assert meta["scopes"] == ["featurestore", "project"]
    _, meta = world.create_api_key("alice", "b", ["project", "project"])
    assert meta["scopes"] == ["project"]
    with pytest.raises(InvalidArgumentError, match="'admin'"):
        world.create_api_key("alice", "c", ["featurestore", "admin"])
    with pytest.raises(InvalidArgumentError, match="at least one scope"):
        world.create_api_key("alice", "c", [])


def test_api_key_errors_and_name_reuse(world: SecurityService) -> None:
    world.create_api_key("alice", "nb", ["featurestore"])
    with pytest.raises(AlreadyExistsError, match="nb"):
        world.create_api_key("alice", "nb", ["featurestore"])
    world.create_api_key("bob", "nb", ["featurestore"])  # per user
    with pytest.raises(NotFoundError, match="dave"):
        world.create_api_key("dave", "nb", ["featurestore"])
    with pytest.raises(InvalidNameError):
        world.create_api_key("alice", "Bad Name", ["featurestore"])
    with pytest.raises(NotFoundError, match="no API key named 'zz'"):
        world.revoke_api_key("alice", "zz")
    world.revoke_api_key("alice", "nb")
    world.revoke_api_key("alice", "nb")  # harmless twice
    key, _ = world.create_api_key("alice", "nb", ["project"])  # a revoked key's name is free again
    assert world.authenticate(key).scopes == frozenset({"project"})
    assert [(k["user"], k["name"], k["revoked"]) for k in world.list_api_keys()] == [
        ("alice", "nb", False), ("bob", "nb", False)]
    assert [k["user"] for k in world.list_api_keys("bob")] == ["bob"]
    with pytest.raises(NotFoundError):
        world.list_api_keys("dave")


def test_authenticate(world: SecurityService) -> None:
    key, _ = world.create_api_key("bob", "sagemaker", ["featurestore"])
    principal = world.authenticate(key)
    assert principal == Principal(user="bob", key_name="sagemaker", scopes=frozenset({"featurestore"}))
    assert world.authenticate(f"  {key}\n") == principal  # as read from a file
    assert key not in repr(principal) and key[17:] not in repr(principal)


def test_authenticate_failures_never_echo_the_key(world: SecurityService) -> None:
    key, _ = world.create_api_key("bob", "sagemaker", ["featurestore"])
    prefix, secret = key[4:].split(".")
    other_prefix = "0" * 12 if prefix != "0" * 12 else "1" * 12
    unknown = _error(world.authenticate, f"csk_{other_prefix}.{secret}")
    wrong = _error(world.authenticate, f"csk_{prefix}.{'x' * 43}")
    wrong_short = _error(world.authenticate, f"csk_{prefix}.{secret[:-1]}")
    assert isinstance(unknown, AuthenticationError) and isinstance(wrong, AuthenticationError)
    assert str(unknown) == str(wrong) == str(wrong_short)
    missing = [_error(world.authenticate, k) for k in (None, "", "   ")]
    assert all(isinstance(e, AuthenticationError) and "no API key" in str(e) for e in missing)
    for bad in ("abc", key.replace("csk_", "sk_"), f"csk_{prefix.upper()}.{secret}", f"csk_{prefix}{secret}",
                f"csk_{prefix}.{secret}!", 12345):
        err = _error(world.authenticate, bad)
        assert isinstance(err, AuthenticationError) and "malformed" in str(err)
        assert secret not in str(err) and prefix not in str(err)
    world.revoke_api_key("bob", "sagemaker")
    revoked = _error(world.authenticate, key)
    assert isinstance(revoked, AuthenticationError) and "revoked" in str(revoked)
    # A wrong secret for a revoked key says nothing about the key.
    assert str(_error(world.authenticate, f"csk_{prefix}.{'x' * 43}")) == str(unknown)
    for err in (unknown, wrong, wrong_short, revoked):
        assert secret not in str(err) and prefix not in str(err) and secret not in repr(err.__dict__)


def test_last_used_is_written_at_most_once_a_minute(world: SecurityService,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    key, _ = world.create_api_key("bob", "nb", ["featurestore"])
    clock = [datetime(2030, 1, 1, 12, 0, 0)]
    monkeypatch.setattr(C, "now", lambda: clock[0])
    updates: list[str] = []
    sa.event.listen(world.catalog.engine, "before_cursor_execute",
                    lambda _c, _cur, stmt, *_a: updates.append(stmt) if stmt.startswith("UPDATE api_keys") else None)

    def last_used() -> str | None:
        return world.list_api_keys("bob")[0]["last_used"]

    assert last_used() is None
    world.authenticate(key)
    assert last_used() == "2030-01-01T12:00:00"
    for seconds in (1, 30, 59):
        clock[0] = datetime(2030, 1, 1, 12, 0, 0) + timedelta(seconds=seconds)
        world.authenticate(key)
    assert last_used() == "2030-01-01T12:00:00"
    assert len(updates) == 1
    clock[0] = datetime(2030, 1, 1, 12, 1, 0)
    world.authenticate(key)
    assert last_used() == "2030-01-01T12:01:00"
    assert len(updates) == 2


# --- authorization ------------------------------------------------------------------------------

SCOPE_SETS = [frozenset(), frozenset({"featurestore"}), frozenset({"project"}), frozenset(SCOPES)]


@pytest.mark.parametrize(("role", "write", "scopes", "scope"),
                         list(itertools.product(ROLES, (False, True), SCOPE_SETS, SCOPES)))
def test_authorize_matrix(service: FeatureStoreService, sec: SecurityService, role: str, write: bool,
                          scopes: frozenset[str], scope: str) -> None:
    service.create_project("fraud")
    sec.create_user("u")
    sec.add_member("fraud", "u", role)
    principal = Principal("u", "k", scopes)
    if scope not in scopes:
        with pytest.raises(PermissionDeniedError, match=f"lacks the '{scope}' scope"):
            sec.authorize(principal, "fraud", write=write, scope=scope)
    elif write and role == "data_scientist":
        with pytest.raises(PermissionDeniedError, match="only data owners may write"):
            sec.authorize(principal, "fraud", write=write, scope=scope)
    else:
        assert sec.authorize(principal, "fraud", write=write, scope=scope) == role


def test_authorize_through_real_keys(world: SecurityService) -> None:
    alice = world.authenticate(world.create_api_key("alice", "nb", ["featurestore"])[0])
    bob = world.authenticate(world.create_api_key("bob", "nb", ["featurestore", "project"])[0])
    assert world.authorize(alice, "fraud", write=True) == "data_owner"
    assert world.authorize(bob, "fraud") == "data_scientist"
    assert world.authorize(bob, "fraud", scope="project") == "data_scientist"
    with pytest.raises(PermissionDeniedError):
        world.authorize(bob, "fraud", write=True)
    with pytest.raises(PermissionDeniedError, match="'project' scope"):
        world.authorize(alice, "fraud", scope="project")
    with pytest.raises(InvalidArgumentError):
        world.authorize(alice, "fraud", scope="admin")


def test_not_a_member_looks_like_no_project(world: SecurityService, tmp_path: Path) -> None:
    bob = Principal("bob", "nb", frozenset(SCOPES))
    not_member = _error(world.authorize, bob, "hidden")
    unknown = _error(world.authorize, bob, "ghost")
    assert type(not_member) is type(unknown) is ProjectNotFoundError
    # The same message, word for word, as for a project that does not exist.
    other = FeatureStoreService(tmp_path / "other")
    try:
        missing = _error(SecurityService(other.catalog).authorize, bob, "hidden")
        from_store = _error(other.get_project, "hidden")
    finally:
        other.close()
    assert str(not_member) == str(missing) == str(from_store)
    assert str(unknown) == str(not_member).replace("hidden", "ghost")
    # ... even for writes and for scopes the key lacks: membership is checked first.
    assert str(_error(world.authorize, Principal("bob", "nb", frozenset()), "hidden", write=True)) == str(not_member)
    # A non-member with the right role elsewhere still sees nothing.
    carol = Principal("carol", "nb", frozenset(SCOPES))
    assert type(_error(world.authorize, carol, "fraud")) is ProjectNotFoundError


def test_shared_feature_stores_are_read_only(world: SecurityService) -> None:
    alice = Principal("alice", "nb", frozenset(SCOPES))  # owner of fraud, scientist in marketing
    # Not shared yet: marketing cannot see fraud's store, and the error reveals nothing.
    not_shared = _error(world.authorize, alice, "marketing", target="fraud")
    unknown = _error(world.authorize, alice, "marketing", target="ghost")
    assert type(not_shared) is type(unknown) is ProjectNotFoundError
    assert str(not_shared) == str(unknown).replace("ghost", "fraud")
    world.share("fraud", "marketing")
    assert world.authorize(alice, "marketing", target="fraud") == "data_scientist"
    with pytest.raises(PermissionDeniedError, match="shared with project 'marketing' read-only"):
        world.authorize(alice, "marketing", target="fraud", write=True)
    # A data owner of the reading project cannot write to the shared store either.
    world.add_member("marketing", "alice", "data_owner")
    with pytest.raises(PermissionDeniedError, match="read-only"):
        world.authorize(alice, "marketing", target="fraud", write=True)
    assert world.authorize(alice, "marketing", target="marketing", write=True) == "data_owner"
    # Sharing goes one way only.
    bob = Principal("bob", "nb", frozenset(SCOPES))
    assert type(_error(world.authorize, bob, "fraud", target="marketing")) is ProjectNotFoundError
    # The scope is still needed for a shared store.
    with pytest.raises(PermissionDeniedError, match="scope"):
        world.authorize(Principal("alice", "nb", frozenset({"project"})), "marketing", target="fraud")
    world.unshare("fraud", "marketing")
    assert str(_error(world.authorize, alice, "marketing", target="fraud")) == str(not_shared)


def test_share_errors_and_listing(world: SecurityService, service: FeatureStoreService) -> None:
    service.create_project("zeta")
    assert world.readable_featurestores("marketing") == ["marketing_featurestore"]
    world.share("zeta", "marketing")
    world.share("fraud", "marketing")
    world.share("fraud", "marketing")  # idempotent
    world.share("hidden", "fraud")
    assert world.readable_featurestores("marketing") == [
        "marketing_featurestore", "fraud_featurestore", "zeta_featurestore"]
    assert world.readable_featurestores("fraud") == ["fraud_featurestore", "hidden_featurestore"]
    with pytest.raises(InvalidArgumentError, match="itself"):
        world.share("fraud", "fraud")
    with pytest.raises(ProjectNotFoundError):
        world.share("fraud", "ghost")
    with pytest.raises(ProjectNotFoundError):
        world.share("ghost", "fraud")
    with pytest.raises(ProjectNotFoundError):
        world.readable_featurestores("ghost")
    world.unshare("zeta", "marketing")
    with pytest.raises(NotFoundError, match="not shared"):
        world.unshare("zeta", "marketing")
    assert world.readable_featurestores("marketing") == ["marketing_featurestore", "fraud_featurestore"]


def test_security_tables_are_added_to_an_existing_catalog(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'catalog.db'}"
    catalog = Catalog(url)
    with catalog.begin() as conn:
        for table in ("shares", "api_keys", "members", "users"):
            conn.execute(sa.text(f"DROP TABLE {table}"))
    catalog.close()
    catalog = Catalog(url)
    try:
        assert {"users", "members", "api_keys", "shares"} <= set(sa.inspect(catalog.engine).get_table_names())
        SecurityService(catalog).create_user("alice")
    finally:
        catalog.close()


def test_state_survives_reopening(tmp_path: Path) -> None:
    svc = FeatureStoreService(tmp_path / "store")
    sec = SecurityService(svc.catalog)
    svc.create_project("fraud")
    sec.create_user("alice")
    sec.add_member("fraud", "alice", "data_owner")
    key, _ = sec.create_api_key("alice", "nb", ["featurestore"])
    svc.close()
    svc = FeatureStoreService(tmp_path / "store")
    try:
        sec = SecurityService(svc.catalog)
        assert sec.authorize(sec.authenticate(key), "fraud", write=True) == "data_owner"
    finally:
        svc.close()
