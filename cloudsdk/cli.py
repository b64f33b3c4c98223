"""The ``cloudsdk`` command line. It only parses options and calls the library;
user errors become one-line messages, not tracebacks."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, TextIO, TypeAlias

from cloudsdk import __version__, admin
from cloudsdk.errors import CloudSDKError

ROLES = ("data_owner", "data_scientist")  # as cloudsdk.store.security.ROLES (not imported: heavy)
if TYPE_CHECKING:
    _Subparsers: TypeAlias = argparse._SubParsersAction[argparse.ArgumentParser]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cloudsdk", description="cloudsdk: a feature store for machine learning")
    parser.add_argument("--version", action="version", version=f"cloudsdk {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what the library does")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="build and query the football example on the embedded store")
    demo.add_argument("--dir", default=None,
                      help="the store directory (default: $CLOUDSDK_HOME or ~/.cloudsdk)")
    demo.add_argument("--teams", type=int, default=500, help="number of teams (default 500)")
    demo.add_argument("--no-progress", action="store_true", help="hide progress bars")
    _admin_parsers(sub)
    _server_parsers(sub)
    ui = sub.add_parser("ui", help="serve the web UI for an embedded store (HTTP on loopback)")
    ui.set_defaults(handler=_ui)
    ui.add_argument("--dir", required=True, metavar="DIR", help="the store directory")
    ui.add_argument("--host", default="127.0.0.1", help="a loopback address to listen on (default 127.0.0.1)")
    ui.add_argument("--port", type=int, default=8000, help="the HTTP port (default 8000; 0 picks a free one)")
    ui.add_argument("--project", default="default", help="the project the UI acts in (default: default)")
    return parser


def _ui(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from cloudsdk.ui_command import run_ui

    return run_ui(args.dir, host=args.host, port=args.port, project=args.project, out=out)


def _server_parsers(sub: _Subparsers) -> None:
    """``cloudsdk server start``: the REST API and the Flight service over a data directory."""
    server = sub.add_parser("server", help="run the feature store service (REST API + Arrow Flight)")
    s = server.add_subparsers(dest="action", required=True, metavar="ACTION")
    start = s.add_parser("start", help="serve a data directory until SIGINT or SIGTERM")
    start.set_defaults(handler=_server_start)
    start.add_argument("--data-dir", metavar="DIR", required=True, help="the store's data directory")
    start.add_argument("--host", default="127.0.0.1", help="the address to listen on (default 127.0.0.1)")
    start.add_argument("--port", type=int, default=8443, help="the HTTPS port of the REST API (default 8443)")
    start.add_argument("--flight-port", type=int, default=8815,
                       help="the port of the Arrow Flight service (default 8815)")
    start.add_argument("--metadata-url", metavar="URL", default=None,
                       help="the catalog database (default: SQLite in the data directory)")
    start.add_argument("--tls-cert", metavar="FILE", default=None,
                       help="the server certificate chain, PEM (default: issued by the store's CA)")
    start.add_argument("--tls-key", metavar="FILE", default=None, help="the server certificate's key, PEM")
    start.add_argument("--dev", action="store_true",
                       help="development: create project and user 'dev' and a new API key, and print them")


def _server_start(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from cloudsdk.server.app import serve

    return serve(args.data_dir, host=args.host, port=args.port, flight_port=args.flight_port,
                 metadata_url=args.metadata_url, tls_cert=args.tls_cert, tls_key=args.tls_key,
                 dev=args.dev, out=out)


def _admin_parsers(sub: _Subparsers) -> None:
    """``cloudsdk project|user|apikey ...``: administration of a store's data directory."""
    store = argparse.ArgumentParser(add_help=False)
    store.add_argument("--data-dir", metavar="DIR", default=None,
                       help="the store's data directory (default: $CLOUDSDK_HOME or ~/.cloudsdk)")
    store.add_argument("--metadata-url", metavar="URL", default=None,
                       help="the catalog database (default: SQLite in the data directory)")

    def command(group: _Subparsers, name: str, handler: admin.Handler, help: str) -> argparse.ArgumentParser:
        parser = group.add_parser(name, parents=[store], help=help)
        parser.set_defaults(handler=handler)
        return parser

    project = sub.add_parser("project", help="create projects, manage their members, sharing and online store")
    p = project.add_subparsers(dest="action", required=True, metavar="ACTION")
    c = command(p, "create", admin.project_create, "create a project and its feature store")
    c.add_argument("name", metavar="NAME")
    c.add_argument("--description", default="", help="a description of the project")
    command(p, "list", admin.project_list, "list the projects")
    c = command(p, "add-member", admin.project_add_member, "add a user to a project, or change their role")
    c.add_argument("project", metavar="PROJECT")
    c.add_argument("user", metavar="USER")
    c.add_argument("--role", required=True, choices=ROLES,
                   help="data_owner (read and write) or data_scientist (read)")
    c = command(p, "remove-member", admin.project_remove_member, "remove a user from a project")
    c.add_argument("project", metavar="PROJECT")
    c.add_argument("user", metavar="USER")
    c = command(p, "members", admin.project_members, "list a project's members and their roles")
    c.add_argument("project", metavar="PROJECT")
    for name, handler, text in (("share", admin.project_share, "share a feature store read-only"),
                                ("unshare", admin.project_unshare, "stop sharing a feature store")):
        c = command(p, name, handler, text)
        c.add_argument("project", metavar="PROJECT", help="the project whose feature store is shared")
        c.add_argument("--with", dest="other", metavar="OTHER", required=True,
                       help="the project that reads it")

    c = command(p, "set-online-store", admin.project_set_online_store,
                "store the project's online feature groups in SQLite, Redis or MySQL/MariaDB")
    c.add_argument("project", metavar="PROJECT")
    url = c.add_mutually_exclusive_group(required=True)
    url.add_argument("--url", metavar="URL", default=None,
                     help="sqlite:///path.db, redis://host:6379/0[?prefix=p:] or mysql://user@host:3306/db")
    url.add_argument("--url-stdin", action="store_true",
                     help="read the URL from the first line of stdin (for a URL with a password)")
    c = command(p, "online-store", admin.project_online_store,
                "show how the project's online store is reached (never the password)")
    c.add_argument("project", metavar="PROJECT")

    user = sub.add_parser("user", help="create and list users")
    u = user.add_subparsers(dest="action", required=True, metavar="ACTION")
    command(u, "create", admin.user_create, "create a user").add_argument("name", metavar="NAME")
    command(u, "list", admin.user_list, "list users and their projects")

    apikey = sub.add_parser("apikey", help="create, list and revoke API keys")
    k = apikey.add_subparsers(dest="action", required=True, metavar="ACTION")
    c = command(k, "create", admin.apikey_create, "create an API key and print it, once")
    c.add_argument("--user", required=True, help="the user the key acts for")
    c.add_argument("--name", required=True, help="the key's name, unique per user")
    c.add_argument("--scopes", default="featurestore",
                   help="comma-separated: featurestore, project (default: featurestore)")
    c = command(k, "list", admin.apikey_list, "list API keys (never their secrets)")
    c.add_argument("--user", default=None, help="only this user's keys")
    c = command(k, "revoke", admin.apikey_revoke, "revoke an API key")
    c.add_argument("--user", required=True, help="the key's user")
    c.add_argument("--name", required=True, help="the key's name")

    connector = sub.add_parser("connector", help="create, list and delete storage connectors (S3 sinks)")
    s3 = connector.add_subparsers(dest="action", required=True, metavar="ACTION")
    c = command(s3, "create-s3", admin.connector_create_s3, "register an S3 bucket as a training-dataset sink")
    c.add_argument("project", metavar="PROJECT")
    c.add_argument("name", metavar="NAME")
    c.add_argument("--bucket", required=True, help="the bucket")
    c.add_argument("--path", default="", help="a prefix inside the bucket")
    c.add_argument("--region", default=None, help="the bucket's AWS region")
    c.add_argument("--endpoint-url", default=None, help="an S3-compatible endpoint, e.g. http://127.0.0.1:9000")
    c.add_argument("--access-key", default=None,
                   help="an access key id (default: readers and writers use the default AWS credential chain)")
    c.add_argument("--secret-key-stdin", action="store_true",
                   help="read the secret access key from the first line of stdin (never pass it as an argument)")
    c.add_argument("--sse", default=None, choices=("AES256", "aws:kms"), help="server-side encryption of uploads")
    c.add_argument("--kms-key-id", default=None, help="the KMS key for --sse aws:kms")
    c.add_argument("--description", default="", help="a description")
    c = command(s3, "list", admin.connector_list, "list a project's storage connectors (never secrets)")
    c.add_argument("project", metavar="PROJECT")
    c = command(s3, "delete", admin.connector_delete, "delete a storage connector no dataset uses")
    c.add_argument("project", metavar="PROJECT")
    c.add_argument("name", metavar="NAME")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``cloudsdk`` command."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    label = " ".join(filter(None, (args.command, getattr(args, "action", None))))
    try:
        handler = getattr(args, "handler", None)
        if handler is not None:
            return int(handler(args, sys.stdout, sys.stderr))
        if args.command == "demo":
            from cloudsdk.demo import run_demo

            if args.teams < 20:
                raise SystemExit("cloudsdk demo: --teams must be at least 20")
            result = run_demo(args.dir, n_teams=args.teams, progress=not args.no_progress)
            return 0 if result["same_rows"] else 1
    except CloudSDKError as exc:
        print(f"cloudsdk {label}: error: {exc}", file=sys.stderr)
        return 2
    except ImportError as exc:
        print(f"cloudsdk {label}: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
