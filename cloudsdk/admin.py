"""Handlers of the admin commands (``cloudsdk project|user|apikey ...``).

They work directly on a store's data directory (no server, no API key): each opens the
store, calls :class:`~cloudsdk.store.security.SecurityService` or the store, and prints.
Each handler takes the parsed arguments and the output and error streams and returns an exit
status; :mod:`cloudsdk.cli` builds the parsers and catches :class:`~cloudsdk.errors.CloudSDKError`.
The store is imported only when a command runs, so ``cloudsdk --help`` stays light.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from cloudsdk.store import FeatureStoreService
    from cloudsdk.store.security import SecurityService

Handler = Callable[[argparse.Namespace, TextIO, TextIO], int]


@contextmanager
def _open(args: argparse.Namespace) -> Iterator[tuple[FeatureStoreService, SecurityService]]:
    """The store in ``--data-dir`` (default ``$CLOUDSDK_HOME`` or ``~/.cloudsdk``) and its security."""
    from cloudsdk.client.connection import default_home
    from cloudsdk.store import FeatureStoreService
    from cloudsdk.store.security import SecurityService

    data_dir = Path(args.data_dir).expanduser() if args.data_dir else default_home()
    service = FeatureStoreService(data_dir, args.metadata_url)
    try:
        yield service, SecurityService(service.catalog)
    finally:
        service.close()


def _table(out: TextIO, header: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """Print rows as left-aligned columns under an upper-case header."""
    cells = [[str(h).upper() for h in header]] + [["" if v is None else str(v) for v in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    for row in cells:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip(), file=out)


# --- projects ---------------------------------------------------------------------------------

def project_create(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """``cloudsdk project create NAME [--description D]``."""
    with _open(args) as (service, _):
        project = service.create_project(args.name, args.description or "")
    print(f"created project {project['name']!r} with feature store {project['featurestore']!r}", file=out)
    return 0


def project_list(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """``cloudsdk project list``: name, feature store, members, description."""
    with _open(args) as (service, security):
        rows = []
        for name in service.list_projects():
            project = service.get_project(name)
            members = len(security.list_members(name))
            rows.append((name, project["featurestore"], members, project["description"]))
    _table(out, ("project", "featurestore", "members", "description"), rows)
    return 0


def project_add_member(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """``cloudsdk project add-member PROJECT USER --role ROLE``."""
    with _open(args) as (_, security):
        security.add_member(args.project, args.user, args.role)
    print(f"user {args.user!r} is a {args.role} in project {args.project!r}", file=out)
    return 0


def project_remove_member(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """``cloudsdk project remove-member PROJECT USER``."""
    with _open(args) as (_, security):
        security.remove_member(args.project, args.user)
    print(f"removed user {args.user!r} from project {args.project!r}", file=out)
    return 0


def project_members(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """``cloudsdk project members PROJECT``."""
    with _open(args) as (_, security):
        members = security.list_members(args.project)
    _table(out, ("user", "role"), [(m["user"], m["role"]) for m in members])
    return 0


def project_share(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """``cloudsdk project share PROJECT --with OTHER``."""
    with _open(args) as (_, security):
        security.share(args.project, args.other)
    print(f"project {args.other!r} can now read the feature store {args.project + '_featurestore'!r}",
          file=out)
    return 0


def project_unshare(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """``cloudsdk project unshare PROJECT --with OTHER``."""
    with _open(args) as (_, security):
        security.unshare(args.project, args.other)
    print(f"project {args.other!r} can no longer read the feature store "
          f"{args.project + '_featurestore'!r}", file=out)
    return 0


def project_set_online_store(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """``cloudsdk project set-online-store PROJECT (--url URL | --url-stdin)``: the project's online
    backend. A URL with a password is best read from stdin (``--url-stdin``); it is never printed."""
    import sys
    from urllib.parse import urlsplit

    label = "cloudsdk project set-online-store"
    url = args.url
    if args.url_stdin:
        url = sys.stdin.readline().strip()
        if not url:
            print(f"{label}: --url-stdin read an empty line", file=err)
            return 2
    else:
        try:
            has_password = urlsplit(url).password is not None
        except ValueError:
            has_password = False
        if has_password:
            print(f"{label}: warning: the URL holds a password, which other users of this machine can see "
                  "in the process list; use --url-stdin", file=err)
    with _open(args) as (service, _):
        service.get_project(args.project)  # an unknown project fails before the backend is tried
        info = service.set_online_store(args.project, url)
    print(f"project {args.project!r} stores its online feature groups in {_online_where(info)}", file=out)
    return 0


def project_online_store(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """``cloudsdk project online-store PROJECT``: how the project's online store is reached
    (never the password)."""
    with _open(args) as (service, _):
        service.get_project(args.project)
        info = service.online_store_info(args.project)
    info.pop("password", None)
    _table(out, ("setting", "value"), [(k, v) for k, v in info.items() if v is not None])
    return 0


def _online_where(info: dict[str, object]) -> str:
    """``redis (redis://host:6379/0, prefix p:)`` and the like, from ``online_store_info``."""
    extra = f", prefix {info['prefix']}" if info.get("prefix") else ""
    return f"{info.get('backend')} ({info.get('url')}{extra})"


# --- users ------------------------------------------------------------------------------------

def user_create(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """``cloudsdk user create NAME``."""
    with _open(args) as (_, security):
        security.create_user(args.name)
    print(f"created user {args.name!r}", file=out)
    return 0


def user_list(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """``cloudsdk user list``: each user with their projects and roles."""
    with _open(args) as (_, security):
        users = security.list_users()
    rows = [(u["name"], u["created"][:19],
             ", ".join(f"{p} ({r})" for p, r in u["projects"].items()))
            for u in users]
    _table(out, ("user", "created", "projects"), rows)
    return 0


# --- API keys ---------------------------------------------------------------------------------

def apikey_create(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """``cloudsdk apikey create --user USER --name N --scopes S``: the key alone on stdout."""
    with _open(args) as (_, security):
        key, meta = security.create_api_key(args.user, args.name, args.scopes)
    print(key, file=out)
    print(f"cloudsdk apikey create: API key {meta['name']!r} of user {meta['user']!r} "
          f"(scopes {','.join(meta['scopes'])}): store it now, it will not be shown again", file=err)
    return 0


def apikey_list(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """``cloudsdk apikey list [--user U]``: keys without their secrets."""
    with _open(args) as (_, security):
        keys = security.list_api_keys(args.user)
    rows = [(k["user"], k["name"], f"csk_{k['prefix']}", ",".join(k["scopes"]), k["created"][:19],
             (k["last_used"] or "never")[:19], "revoked" if k["revoked"] else "active")
            for k in keys]
    _table(out, ("user", "name", "prefix", "scopes", "created", "last_used", "status"), rows)
    return 0


def apikey_revoke(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """``cloudsdk apikey revoke --user USER --name N``."""
    with _open(args) as (_, security):
        security.revoke_api_key(args.user, args.name)
    print(f"revoked API key {args.name!r} of user {args.user!r}", file=out)
    return 0


# --- storage connectors -------------------------------------------------------------------------

def connector_create_s3(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """``cloudsdk connector create-s3 PROJECT NAME --bucket B [...]``; the secret key is read
    from stdin (``--secret-key-stdin``), never from the command line."""
    import sys

    secret = None
    if args.secret_key_stdin:
        secret = sys.stdin.readline().strip()
        if not secret:
            print("cloudsdk connector create-s3: --secret-key-stdin read an empty line", file=err)
            return 2
    with _open(args) as (service, _):
        conn = service.create_s3_connector(
            args.project, args.name, bucket=args.bucket, path=args.path or "", region=args.region,
            endpoint_url=args.endpoint_url, access_key=args.access_key, secret_key=secret,
            server_side_encryption=args.sse, kms_key_id=args.kms_key_id, description=args.description or "")
    print(f"created S3 storage connector {conn['name']!r} in project {args.project!r} "
          f"(s3://{conn['bucket']}/{conn['path']}, {conn['credentials']})", file=out)
    return 0


def connector_list(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """``cloudsdk connector list PROJECT``: name, type, where, credentials (never secrets)."""
    with _open(args) as (service, _):
        conns = service.list_storage_connectors(args.project)
    rows = []
    for c in conns:
        if c["type"] == "s3":
            where = f"s3://{c['bucket']}/{c.get('path') or ''}"
        else:
            where = c.get("url") or c.get("path", "")
        rows.append((c["name"], c["type"], where, c.get("credentials", "")))
    _table(out, ("name", "type", "location", "credentials"), rows)
    return 0


def connector_delete(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """``cloudsdk connector delete PROJECT NAME``."""
    with _open(args) as (service, _):
        service.delete_storage_connector(args.project, args.name)
    print(f"deleted storage connector {args.name!r} of project {args.project!r}", file=out)
    return 0
