"""The catalog: projects, feature stores, feature groups, features, training datasets,
storage connectors, statistics, and the security tables (users, members, API keys, shares),
kept in SQL through SQLAlchemy (SQLite by default).

The catalog holds metadata only; feature data lives in Delta tables (see ``offline``).
``SCHEMA_VERSION`` is stored in the ``meta`` table so that later releases can migrate.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from cloudsdk.errors import StorageError

SCHEMA_VERSION = 1

metadata = sa.MetaData()

meta = sa.Table(
    "meta",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

projects = sa.Table(
    "projects",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(63), nullable=False, unique=True),
    sa.Column("description", sa.Text, nullable=False, default=""),
    sa.Column("created", sa.DateTime, nullable=False),
)

feature_stores = sa.Table(
    "feature_stores",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("project_id", sa.ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    sa.Column("name", sa.String(80), nullable=False, unique=True),
)

feature_groups = sa.Table(
    "feature_groups",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("fs_id", sa.ForeignKey("feature_stores.id", ondelete="CASCADE"), nullable=False),
    sa.Column("name", sa.String(63), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("description", sa.Text, nullable=False, default=""),
    sa.Column("primary_key", sa.Text, nullable=False),  # JSON list
    sa.Column("partition_by", sa.Text, nullable=False),  # JSON list
    sa.Column("event_time", sa.String(63)),
    sa.Column("online_enabled", sa.Boolean, nullable=False, default=False),
    sa.Column("offline_enabled", sa.Boolean, nullable=False, default=True),
    sa.Column("arrow_schema", sa.Text, nullable=False),
    sa.Column("custom_metadata", sa.Text, nullable=False, default="{}"),  # JSON object
    sa.Column("statistics_config", sa.Text, nullable=False, default="{}"),  # JSON object
    sa.Column("location", sa.Text, nullable=False),
    sa.Column("created", sa.DateTime, nullable=False),
    sa.Column("updated", sa.DateTime, nullable=False),
    sa.UniqueConstraint("fs_id", "name", "version"),
)

features = sa.Table(
    "features",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("fg_id", sa.ForeignKey("feature_groups.id", ondelete="CASCADE"), nullable=False),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("name", sa.String(63), nullable=False),
    sa.Column("type", sa.String(200), nullable=False),
    sa.Column("description", sa.Text, nullable=False, default=""),
    sa.Column("primary", sa.Boolean, nullable=False, default=False),
    sa.Column("partition", sa.Boolean, nullable=False, default=False),
    sa.UniqueConstraint("fg_id", "name"),
    sa.Index("ix_features_name", "name"),
)

commits = sa.Table(
    "commits",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("fg_id", sa.ForeignKey("feature_groups.id", ondelete="CASCADE"), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),  # the Delta table version
    sa.Column("mode", sa.String(16), nullable=False),  # create, append, overwrite, upsert
    sa.Column("committed_at", sa.DateTime, nullable=False),
    sa.Column("rows_inserted", sa.BigInteger, nullable=False),
    sa.Column("rows_updated", sa.BigInteger, nullable=False),
    sa.Column("rows_deleted", sa.BigInteger, nullable=False),
    sa.UniqueConstraint("fg_id", "version"),
)

statistics = sa.Table(
    "statistics",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("fg_id", sa.ForeignKey("feature_groups.id", ondelete="CASCADE")),
    sa.Column("td_id", sa.ForeignKey("training_datasets.id", ondelete="CASCADE")),
    sa.Column("commit_version", sa.Integer),
    sa.Column("computed_at", sa.DateTime, nullable=False),
    sa.Column("content", sa.Text, nullable=False),  # JSON
)

training_datasets = sa.Table(
    "training_datasets",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("fs_id", sa.ForeignKey("feature_stores.id", ondelete="CASCADE"), nullable=False),
    sa.Column("name", sa.String(63), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("description", sa.Text, nullable=False, default=""),
    sa.Column("data_format", sa.String(32), nullable=False),
    sa.Column("connector", sa.String(63), nullable=False),
    sa.Column("location", sa.Text, nullable=False),
    sa.Column("arrow_schema", sa.Text, nullable=False),
    sa.Column("provenance", sa.Text, nullable=False, default="{}"),  # JSON
    sa.Column("custom_metadata", sa.Text, nullable=False, default="{}"),
    sa.Column("row_count", sa.BigInteger, nullable=False, default=0),
    sa.Column("created", sa.DateTime, nullable=False),
    sa.UniqueConstraint("fs_id", "name", "version"),
)

storage_connectors = sa.Table(
    "storage_connectors",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("fs_id", sa.ForeignKey("feature_stores.id", ondelete="CASCADE"), nullable=False),
    sa.Column("name", sa.String(63), nullable=False),
    sa.Column("type", sa.String(32), nullable=False),
    sa.Column("description", sa.Text, nullable=False, default=""),
    sa.Column("config", sa.Text, nullable=False, default="{}"),  # JSON, no secrets
    sa.UniqueConstraint("fs_id", "name"),
)

# Training-dataset layout (files, splits, seed, tf schema) and connector secrets: new tables
# only, so existing catalogs gain them on open.
training_dataset_layouts = sa.Table(
    "training_dataset_layouts",
    metadata,
    sa.Column("td_id", sa.ForeignKey("training_datasets.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("content", sa.Text, nullable=False, default="{}"),  # JSON
)

connector_secrets = sa.Table(
    "connector_secrets",
    metadata,
    sa.Column("connector_id", sa.ForeignKey("storage_connectors.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("ciphertext", sa.Text, nullable=False),  # Fernet token of the secrets' JSON
)

# On-demand feature groups (cloudsdk.store.ondemand): the query and the JDBC connector it runs
# on; the group's row in feature_groups holds its schema. A new table only.
on_demand_sources = sa.Table(
    "on_demand_sources",
    metadata,
    sa.Column("fg_id", sa.ForeignKey("feature_groups.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("connector", sa.String(63), nullable=False),
    sa.Column("query", sa.Text, nullable=False),
)

# The registry (cloudsdk.store.registry): tags and the jobs that compute a feature group or a
# training dataset (exactly one of fg_id / td_id is set). New tables only.
registry_tags = sa.Table(
    "registry_tags",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("fg_id", sa.ForeignKey("feature_groups.id", ondelete="CASCADE"), index=True),
    sa.Column("td_id", sa.ForeignKey("training_datasets.id", ondelete="CASCADE"), index=True),
    sa.Column("name", sa.String(63), nullable=False),
    sa.Column("value", sa.Text),
    sa.Column("created", sa.DateTime, nullable=False),
)

registry_jobs = sa.Table(
    "registry_jobs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("fg_id", sa.ForeignKey("feature_groups.id", ondelete="CASCADE"), index=True),
    sa.Column("td_id", sa.ForeignKey("training_datasets.id", ondelete="CASCADE"), index=True),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("url", sa.Text),
)

# --- security: users, project membership, API keys, read-only sharing ------------------
# (see cloudsdk.store.security; new tables only, so existing catalogs gain them on open)

users = sa.Table(
    "users",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(63), nullable=False, unique=True),
    sa.Column("created", sa.DateTime, nullable=False),
)

members = sa.Table(
    "members",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("project_id", sa.ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    sa.Column("user_id", sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    sa.Column("role", sa.String(32), nullable=False),  # data_owner, data_scientist
    sa.UniqueConstraint("project_id", "user_id"),
)

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("user_id", sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    sa.Column("name", sa.String(63), nullable=False),
    sa.Column("prefix", sa.String(32), nullable=False, unique=True),  # lookup prefix, not secret
    sa.Column("salt", sa.String(64), nullable=False),  # hex
    sa.Column("hash", sa.String(128), nullable=False),  # hex sha256(salt + secret); never the secret
    sa.Column("scopes", sa.Text, nullable=False),  # JSON list
    sa.Column("created", sa.DateTime, nullable=False),
    sa.Column("revoked_at", sa.DateTime, nullable=True),
    sa.Column("last_used", sa.DateTime, nullable=True),
    sa.UniqueConstraint("user_id", "name"),
)

shares = sa.Table(
    "shares",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("owner_project_id", sa.ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    sa.Column("reader_project_id", sa.ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    sa.Column("created", sa.DateTime, nullable=False),
    sa.UniqueConstraint("owner_project_id", "reader_project_id"),
)

# Data validation (cloudsdk.store.validation): each feature group's rules, and every result
# with the commit it validated (rejected inserts store none). New tables only.
validation_rules = sa.Table(
    "validation_rules",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("fg_id", sa.ForeignKey("feature_groups.id", ondelete="CASCADE"), nullable=False),
    sa.Column("name", sa.String(63), nullable=False),
    sa.Column("content", sa.Text, nullable=False),  # JSON of the rule
    sa.Column("created", sa.DateTime, nullable=False),
    sa.UniqueConstraint("fg_id", "name"),
)

validation_results = sa.Table(
    "validation_results",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("fg_id", sa.ForeignKey("feature_groups.id", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("commit_version", sa.Integer),
    sa.Column("trigger", sa.String(16), nullable=False),  # insert, job
    sa.Column("status", sa.String(16), nullable=False),  # passed, warning, failed
    sa.Column("validated_at", sa.DateTime, nullable=False),
    sa.Column("content", sa.Text, nullable=False),  # JSON of the report
)


# Online store (cloudsdk.store.online_service): each feature store's online backend URL
# (sealed: it may hold a password), and each online group's sync state with the offline store.
online_stores = sa.Table(
    "online_stores",
    metadata,
    sa.Column("fs_id", sa.ForeignKey("feature_stores.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("url_sealed", sa.Text, nullable=False),
    sa.Column("updated", sa.DateTime, nullable=False),
)

online_state = sa.Table(
    "online_state",
    metadata,
    sa.Column("fg_id", sa.ForeignKey("feature_groups.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("status", sa.String(16), nullable=False),  # ok, pending, behind
    sa.Column("synced_commit", sa.BigInteger),  # the offline commit the online table reflects
    sa.Column("updated", sa.DateTime, nullable=False),
)


def now() -> datetime:
    """The current UTC time without tzinfo (as SQLite stores it)."""
    return datetime.now(UTC).replace(tzinfo=None)


def dumps(value: Any, *, sort_keys: bool = True) -> str:
    """JSON for catalog text columns (``sort_keys=False`` keeps column order)."""
    return json.dumps(value, sort_keys=sort_keys, default=str)


class Catalog:
    """Owns the metadata database: creation, schema version, transactions."""

    def __init__(self, url: str) -> None:
        self.url = url
        try:
            self.engine: Engine = sa.create_engine(url, future=True)
            if url.startswith("sqlite"):
                sa.event.listen(self.engine, "connect", _sqlite_pragmas)
            self._lock = threading.RLock()
            with self.engine.begin() as conn:
                metadata.create_all(conn)
                row = conn.execute(sa.select(meta.c.value).where(meta.c.key == "schema_version"))
                found = row.scalar()
                if found is None:
                    conn.execute(meta.insert().values(key="schema_version", value=str(SCHEMA_VERSION)))
                elif int(found) > SCHEMA_VERSION:
                    raise StorageError(
                        f"the catalog has schema version {found}, newer than this cloudsdk "
                        f"understands ({SCHEMA_VERSION}); upgrade cloudsdk"
                    )
        except sa.exc.SQLAlchemyError as exc:
            raise StorageError(f"cannot open the catalog: {exc.__class__.__name__}") from exc

    @property
    def schema_version(self) -> int:
        """The catalog schema version stored in the database."""
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(meta.c.value).where(meta.c.key == "schema_version")).scalar_one())

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        """A transaction; SQLAlchemy errors become StorageError."""
        try:
            with self._lock, self.engine.begin() as conn:
                yield conn
        except sa.exc.IntegrityError:
            raise
        except sa.exc.SQLAlchemyError as exc:
            raise StorageError(f"catalog operation failed: {exc.__class__.__name__}: {exc}") from exc

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read-only connection."""
        try:
            with self.engine.connect() as conn:
                yield conn
        except sa.exc.SQLAlchemyError as exc:
            raise StorageError(f"catalog read failed: {exc.__class__.__name__}: {exc}") from exc

    def close(self) -> None:
        """Release the connection pool."""
        self.engine.dispose()


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()
