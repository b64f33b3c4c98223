"""The online store of feature groups: the latest row per primary key, for serving.

A feature group stored online has a table ``<name>_<version>`` in its feature store's online
backend (SQLite in the data directory by default; Redis or MySQL/MariaDB when the store is
configured with :meth:`OnlineMixin.set_online_store`). It holds, per *online key* (the primary
key without the event-time column), the row with the latest event time (then the latest
commit, then the last row written) — the same row :func:`latest_per_key` picks from the
offline snapshot, so the two can be compared exactly.

Consistency: the offline commit is the source of truth. An insert into both stores marks the
group ``pending`` in the catalog, commits offline, then writes online and marks it ``ok``; a
failure (or a crash) in between leaves ``pending`` behind, the error is raised as
:class:`~cloudsdk.errors.OnlineSyncError`, and the next online write (or ``sync_online``)
rebuilds the online table from the offline snapshot. An offline-only insert into an online
group marks it ``behind`` (repaired the same way). ``check_online_consistency`` compares the
two row by row.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa

from cloudsdk.errors import (
    CloudSDKError,
    FeatureNotFoundError,
    InvalidArgumentError,
    NotFoundError,
    OnlineSyncError,
    UnsupportedError,
)
from cloudsdk.store import catalog as C
from cloudsdk.store import schema
from cloudsdk.store import sql as sqlbox
from cloudsdk.store.offline import OfflineTable
from cloudsdk.store.online import OnlineStore, open_online_store
from cloudsdk.store.online_vectors import VectorPlan, build_plan

log = logging.getLogger(__name__)

ONLINE_ONLY_PREFIX = "online-only:"
"""``location`` of a feature group stored online only (it has no offline table)."""

_POS = "__pos"
ONLINE_CONFIG_TTL_S = 5.0
"""How often (seconds, at most) a store re-reads a project's online backend configuration."""


def is_online_only(row: Any) -> bool:
    """Whether a catalog row is a feature group stored online only."""
    return str(getattr(row, "location", "") or "").startswith(ONLINE_ONLY_PREFIX)


def need_offline(row: Any) -> None:
    """Refuse offline reads and writes of a group stored online only."""
    if is_online_only(row):
        raise UnsupportedError(
            f"feature group {row.name!r} version {row.version} is stored online only: read it with "
            "online=True (or enable offline storage by creating a new version with offline=True)",
            featuregroup=row.name, version=row.version,
        )


def need_online(row: Any) -> None:
    """Refuse online reads and writes of a group not stored online."""
    if not row.online_enabled:
        raise InvalidArgumentError(
            f"feature group {row.name!r} version {row.version} is not stored online; enable it with "
            "fg.enable_online() (featurestore.enable_featuregroup_online)",
            featuregroup=row.name, version=row.version,
        )


def online_key(row: Any) -> list[str]:
    """The online table's key: the primary key without the event-time column."""
    pk = json.loads(row.primary_key)
    rest = [k for k in pk if k != row.event_time]
    return rest or pk


def online_table_name(row: Any) -> str:
    return f"{row.name}_{row.version}"


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def latest_per_key(table: pa.Table, keys: Sequence[str], event_time: str | None,
                   order_column: str | None = None, *, with_ties: bool = False) -> Any:
    """One row per key: the latest ``event_time``, then the highest ``order_column`` (the hidden
    commit id), then the last position. Types are kept exactly (rows are taken, not rebuilt).

    With ``with_ties`` also returns every row that ties for a key's first place on event time
    and commit (rows of one commit with equal times: the offline scan order of a partitioned
    table, hence "the last position", is not stable across reads; any of them is the latest)."""
    if table.num_rows == 0:
        return (table, table) if with_ties else table
    cols: dict[str, Any] = {k: table.column(k) for k in keys}
    rank_order = []
    if event_time is not None:
        cols["__et"] = table.column(event_time)
        rank_order.append('"__et" DESC NULLS LAST')
    if order_column is not None and order_column in table.column_names:
        cols["__ord"] = table.column(order_column)
        rank_order.append('"__ord" DESC')
    cols[_POS] = pa.array(range(table.num_rows), pa.int64())
    order = [*rank_order, f'"{_POS}" DESC']
    slim = pa.table(cols)
    by = ", ".join(_q(k) for k in keys)
    con = duckdb.connect()
    try:
        con.register("t", slim)
        rank = (f', rank() OVER (PARTITION BY {by} ORDER BY {", ".join(rank_order) or "1"}) AS __rk'
                if with_ties else "")
        con.execute(
            f'CREATE TEMP TABLE r AS SELECT {by}, "{_POS}", row_number() OVER (PARTITION BY {by} '
            f'ORDER BY {", ".join(order)}) AS __rn{rank} FROM t')
        idx = sqlbox.to_arrow(con.sql(f'SELECT "{_POS}" FROM r WHERE __rn = 1 ORDER BY "{_POS}"')).column(0)
        ties = None
        if with_ties:
            ties = sqlbox.to_arrow(con.sql(
                f'SELECT r."{_POS}" FROM r JOIN (SELECT {by} FROM r WHERE __rk = 1 GROUP BY {by} '
                f'HAVING count(*) > 1) d USING ({by}) WHERE r.__rk = 1 ORDER BY 1')).column(0)
    finally:
        con.close()
    if with_ties:
        return table.take(idx), table.take(ties)
    return table.take(idx)


def keys_not_in(rows: pa.Table, other: pa.Table, keys: Sequence[str]) -> pa.Table:
    """The key columns of the rows of ``rows`` whose key ``other`` lacks."""
    con = duckdb.connect()
    try:
        con.register("r", rows.select(list(keys)))
        con.register("o", other.select(list(keys)))
        on = " AND ".join(f"r.{_q(k)} = o.{_q(k)}" for k in keys)
        return sqlbox.to_arrow(con.sql(f"SELECT r.* FROM r ANTI JOIN o ON {on}")).cast(
            rows.select(list(keys)).schema)
    finally:
        con.close()


def diff_tables(expected: pa.Table, actual: pa.Table, keys: Sequence[str],
                ties: pa.Table | None = None) -> dict[str, pa.Table]:
    """Rows of ``expected`` missing from ``actual`` or different there, and rows of ``actual``
    whose key ``expected`` lacks (both hold one row per key). An ``actual`` row equal to one of
    its key's ``ties`` (other rows as latest as the expected one) is not a difference."""
    columns = [c for c in expected.column_names if c not in keys]
    con = duckdb.connect()
    try:
        con.register("e", expected.append_column(_POS, pa.array(range(expected.num_rows), pa.int64())))
        con.register("a", actual.select(expected.column_names).append_column(
            _POS, pa.array(range(actual.num_rows), pa.int64())))
        on = " AND ".join(f"e.{_q(k)} = a.{_q(k)}" for k in keys)
        changed = " OR ".join(f"e.{_q(c)} IS DISTINCT FROM a.{_q(c)}" for c in columns) or "FALSE"

        def positions(sql: str) -> pa.Array:
            return sqlbox.to_arrow(con.sql(sql)).column(0)

        missing = positions(f'SELECT e."{_POS}" FROM e ANTI JOIN a ON {on} ORDER BY 1')
        extra = positions(f'SELECT a."{_POS}" FROM a ANTI JOIN e ON {on} ORDER BY 1')
        excused = ""
        if ties is not None and ties.num_rows:
            con.register("c", ties.select(expected.column_names))
            same = " AND ".join([f"c.{_q(k)} = a.{_q(k)}" for k in keys]
                                + [f"c.{_q(c)} IS NOT DISTINCT FROM a.{_q(c)}" for c in columns])
            excused = f" AND NOT EXISTS (SELECT 1 FROM c WHERE {same})"
        different = positions(f'SELECT e."{_POS}" FROM e JOIN a ON {on} WHERE ({changed}){excused} ORDER BY 1')
    finally:
        con.close()
    return {"missing_online": expected.take(missing), "extra_online": actual.take(extra),
            "different": expected.take(different)}


def _location_of(url: str) -> tuple[Any, ...]:
    """Where an online store URL keeps its tables (two projects must not share one)."""
    parts = urlsplit(url)
    scheme = parts.scheme.split("+")[0].lower()
    if scheme == "sqlite":
        return ("sqlite", str(Path(url[len("sqlite:///"):]).expanduser().resolve()))
    if scheme in ("redis", "rediss"):
        prefix = parse_qs(parts.query).get("prefix", ["cloudsdk:"])[0]
        return ("redis", parts.hostname, parts.port or 6379, (parts.path or "/0").strip("/") or "0", prefix)
    return ("mysql", parts.hostname, parts.port or 3306, parts.path.strip("/"))


class OnlineMixin:
    """Online storage for :class:`~cloudsdk.store.store.FeatureStoreService`."""

    root: Path
    catalog: C.Catalog

    # provided by FeatureStoreService and its other mixins
    def _group_row(self, project: str, name: str, version: int | None) -> Any: raise NotImplementedError
    def _group_rows(self, project: str, name: str | None = None) -> list[Any]: raise NotImplementedError
    def _fs_id(self, project: str) -> int: raise NotImplementedError
    def list_projects(self) -> list[str]: raise NotImplementedError
    def _lock(self, fg_id: int) -> threading.Lock: raise NotImplementedError
    def describe_group(self, project: str, name: str, version: int | None = None) -> dict[str, Any]:
        raise NotImplementedError

    @property
    def _secrets(self) -> Any: raise NotImplementedError

    # --- the per-store backend --------------------------------------------------------------

    def _online_setup(self) -> None:
        self._online_stores: dict[str, OnlineStore] = {}
        self._online_checked: dict[str, tuple[float, Any]] = {}  # project -> (checked at, config stamp)
        self._online_guard = threading.Lock()
        self._vector_plans: dict[Any, VectorPlan] = {}
        self._online_generation = 0

    def _online_close(self) -> None:
        with self._online_guard:
            stores, self._online_stores = self._online_stores, {}
            self._vector_plans = {}
        for store in stores.values():
            try:
                store.close()
            except Exception:  # pragma: no cover - closing is best effort
                log.debug("closing an online store failed", exc_info=True)

    def _online_changed(self) -> None:
        """Forget cached feature-vector plans (a group was created, dropped or changed)."""
        with self._online_guard:
            self._online_generation += 1
            self._vector_plans = {}

    def _default_online_url(self, project: str) -> str:
        return f"sqlite:///{self.root / 'projects' / project / 'online.db'}"

    def _online_url(self, project: str) -> str:
        fs_id = self._fs_id(project)
        with self.catalog.read() as conn:
            sealed = conn.execute(
                sa.select(C.online_stores.c.url_sealed).where(C.online_stores.c.fs_id == fs_id)).scalar()
        if sealed:
            return str(self._secrets.open(sealed)["url"])
        return self._default_online_url(project)

    def _online_config_stamp(self, project: str) -> Any:
        fs_id = self._fs_id(project)
        with self.catalog.read() as conn:
            return conn.execute(
                sa.select(C.online_stores.c.updated).where(C.online_stores.c.fs_id == fs_id)).scalar()

    def _online(self, project: str) -> OnlineStore:
        """The project's online store. Another process (``cloudsdk project set-online-store`` next
        to a running server) may change the configuration: it is re-read at most every
        ``ONLINE_CONFIG_TTL_S`` seconds."""
        now = time.monotonic()
        checked = self._online_checked.get(project)
        if checked is not None and now - checked[0] > ONLINE_CONFIG_TTL_S:
            stamp = self._online_config_stamp(project)
            if stamp != checked[1]:
                with self._online_guard:
                    old = self._online_stores.pop(project, None)
                if old is not None:
                    old.close()
                self._online_changed()
            self._online_checked[project] = (now, stamp)
        store = self._online_stores.get(project)
        if store is None:
            with self._online_guard:
                store = self._online_stores.get(project)
                if store is None:
                    url = self._online_url(project)
                    if url.startswith("sqlite:///"):
                        Path(url[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
                    store = self._online_stores[project] = open_online_store(url)
                    self._online_checked[project] = (now, self._online_config_stamp(project))
        return store

    def set_online_store(self, project: str, url: str) -> dict[str, Any]:
        """Use the online backend at ``url`` for the project's feature store (an administrator's
        step: the CLI or the embedded store). A Redis URL without ``?prefix=`` gets the prefix
        ``cloudsdk:<project>:``. Refused while the project has feature groups stored online.

        Returns:
            :meth:`online_store_info` of the new backend (no password).
        """
        if not isinstance(url, str) or not url:
            raise InvalidArgumentError("an online store URL is a non-empty string, e.g. redis://127.0.0.1:6379/0")
        parts = urlsplit(url)
        if parts.scheme in ("redis", "rediss") and "prefix" not in parse_qs(parts.query):
            query = parse_qs(parts.query)
            query["prefix"] = [f"cloudsdk:{project}:"]
            url = urlunsplit(parts._replace(query=urlencode(query, doseq=True)))
        here = _location_of(url)
        for other in self.list_projects():
            if other != project and _location_of(self._online_url(other)) == here:
                raise InvalidArgumentError(
                    f"project {other!r} already keeps its online tables there; give each project its own "
                    "online store location (a MySQL database, a Redis ?prefix=, a SQLite file)", project=project)
        online = [r.name for r in self._group_rows(project) if r.online_enabled]
        if online:
            raise InvalidArgumentError(
                f"project {project!r} has feature groups stored online ({', '.join(sorted(set(online)))}); "
                "disable online storage on them first (fg.disable_online()), then change the backend",
                project=project,
            )
        store = open_online_store(url)  # fails here (StorageError) when it cannot be reached
        fs_id = self._fs_id(project)
        sealed = self._secrets.seal({"url": url})
        with self.catalog.begin() as conn:
            conn.execute(C.online_stores.delete().where(C.online_stores.c.fs_id == fs_id))
            if url != self._default_online_url(project):
                conn.execute(C.online_stores.insert().values(fs_id=fs_id, url_sealed=sealed, updated=C.now()))
        with self._online_guard:
            old = self._online_stores.pop(project, None)
            self._online_stores[project] = store
        self._online_checked[project] = (time.monotonic(), self._online_config_stamp(project))
        if old is not None:
            old.close()
        self._online_changed()
        return self.online_store_info(project)

    def online_store_info(self, project: str, *, include_password: bool = False) -> dict[str, Any]:
        """How to reach the project's online store: ``backend``, ``url`` (never with a password),
        ``jdbc_url`` (MySQL), host, port, database, user, prefix (Redis); ``password`` only
        with ``include_password``."""
        info = dict(self._online(project).connection_info(include_password=include_password))
        info.setdefault("jdbc_url", None)
        if not include_password:
            info.pop("password", None)
        return info

    # --- state --------------------------------------------------------------------------------

    def _online_state(self, fg_id: int) -> tuple[str, int | None]:
        with self.catalog.read() as conn:
            found = conn.execute(sa.select(C.online_state.c.status, C.online_state.c.synced_commit)
                                 .where(C.online_state.c.fg_id == fg_id)).first()
        return (found.status, found.synced_commit) if found else ("behind", None)

    def _set_online_state(self, fg_id: int, status: str, synced_commit: int | None = None, *,
                          keep_commit: bool = False) -> None:
        with self.catalog.begin() as conn:
            current = conn.execute(sa.select(C.online_state.c.synced_commit)
                                   .where(C.online_state.c.fg_id == fg_id)).first()
            if current is None:
                conn.execute(C.online_state.insert().values(fg_id=fg_id, status=status,
                                                            synced_commit=synced_commit, updated=C.now()))
            else:
                values: dict[str, Any] = {"status": status, "updated": C.now()}
                if not keep_commit:
                    values["synced_commit"] = synced_commit
                conn.execute(C.online_state.update().where(C.online_state.c.fg_id == fg_id).values(**values))

    # --- writing -------------------------------------------------------------------------------

    def _online_create_table(self, project: str, row: Any, logical: pa.Schema, *, fresh: bool = False) -> None:
        """Create the group's online table (``fresh``: drop a leftover table of that name first —
        the project's online store location belongs to it alone)."""
        store = self._online(project)
        if fresh:
            store.drop_table(online_table_name(row), missing_ok=True)
        try:
            store.create_table(online_table_name(row), schema.storage_schema(logical), online_key(row))
        except UnsupportedError as exc:
            raise UnsupportedError(f"feature group {row.name!r} cannot be stored online: {exc.message}",
                                   featuregroup=row.name) from exc

    def _online_drop_table(self, project: str, row: Any) -> None:
        self._online(project).drop_table(online_table_name(row), missing_ok=True)

    def _online_write(self, project: str, row: Any, stored: pa.Table, mode: str) -> dict[str, int]:
        """Apply one insert's rows (storage form, without ``_commit``) to the online table."""
        store = self._online(project)
        table = online_table_name(row)
        keys = online_key(row)
        et = row.event_time
        batch = latest_per_key(stored, keys, et)
        deleted = 0
        if mode == "overwrite":
            upserted = store.upsert(table, batch) if batch.num_rows else 0
            extra = keys_not_in(store.scan(table, keys), batch, keys)
            deleted = store.delete(table, extra) if extra.num_rows else 0
            return {"rows_upserted": upserted, "rows_deleted": deleted}
        pk = json.loads(row.primary_key)
        if et is not None and batch.num_rows and (mode == "append" or et in pk):
            current = store.get(table, batch.select(keys), [et])
            found = current.column("__found__")
            newer = pc.greater_equal(batch.column(et), current.column(et))
            keep = pc.or_(pc.invert(found), pc.fill_null(newer, True))
            batch = batch.filter(keep)
        upserted = store.upsert(table, batch) if batch.num_rows else 0
        return {"rows_upserted": upserted, "rows_deleted": deleted}

    def _offline_latest(self, row: Any, key_filter: pa.Table | None = None) -> tuple[pa.Table, int, pa.Table]:
        """The latest offline snapshot reduced to one row per online key (storage form), its
        commit, and the rows tied with a key's latest one (see :func:`latest_per_key`)."""
        from cloudsdk.store.timetravel import COMMIT

        logical = schema.deserialize_schema(row.arrow_schema)
        dataset, commit = OfflineTable(row.location).snapshot()
        names = list(logical.names) + ([COMMIT] if COMMIT in dataset.schema.names else [])
        keys = online_key(row)
        if key_filter is not None:
            con = duckdb.connect()
            try:
                con.register("d", dataset)
                con.register("k", key_filter.select(keys))
                data = sqlbox.to_arrow(con.sql(
                    f"SELECT {', '.join('d.' + _q(n) for n in names)} FROM d SEMI JOIN k ON "
                    + " AND ".join(f"d.{_q(k)} = k.{_q(k)}" for k in keys)
                ))
            finally:
                con.close()
            data = data.cast(pa.schema([dataset.schema.field(n) for n in names]), safe=False)
        else:
            data = dataset.to_table(columns=names)
        latest, ties = latest_per_key(data, keys, row.event_time, COMMIT if COMMIT in names else None,
                                      with_ties=True)
        return latest.select(list(logical.names)), commit, ties.select(list(logical.names))

    def _online_resync_keys(self, project: str, row: Any, keys_table: pa.Table) -> dict[str, int]:
        """Make the online rows of these keys equal to the offline snapshot's (after a delete)."""
        store = self._online(project)
        keys = online_key(row)
        wanted = keys_table.select(keys)
        latest, _, _ = self._offline_latest(row, wanted)
        upserted = store.upsert(online_table_name(row), latest) if latest.num_rows else 0
        gone = keys_not_in(wanted, latest, keys)
        deleted = store.delete(online_table_name(row), gone) if gone.num_rows else 0
        return {"rows_upserted": upserted, "rows_deleted": deleted}

    def _online_full_sync(self, project: str, row: Any) -> dict[str, Any]:
        store = self._online(project)
        table = online_table_name(row)
        keys = online_key(row)
        if not store.has_table(table):
            self._online_create_table(project, row, schema.deserialize_schema(row.arrow_schema))
        latest, commit, ties = self._offline_latest(row)
        diff = diff_tables(latest, store.scan(table), keys, ties)
        fix = pa.concat_tables([diff["missing_online"], diff["different"]])
        upserted = store.upsert(table, fix) if fix.num_rows else 0
        extra = diff["extra_online"].select(keys)
        deleted = store.delete(table, extra) if extra.num_rows else 0
        return {"commit": commit, "upserted": upserted, "deleted": deleted, "online_rows": store.count(table)}

    def _online_after_offline(self, project: str, row: Any, stored: pa.Table, mode: str,
                              result: Mapping[str, Any], was: str) -> dict[str, int]:
        """The online half of an insert into both stores (the offline commit has landed)."""
        try:
            if was != "ok":  # an earlier write failed, crashed or skipped online: rebuild
                out = self._online_full_sync(project, row)
                written = {"rows_upserted": out["upserted"], "rows_deleted": out["deleted"]}
            else:
                written = self._online_write(project, row, stored, mode)
        except Exception as exc:
            what = exc.message if isinstance(exc, CloudSDKError) else f"{type(exc).__name__}: {exc}"
            raise OnlineSyncError(
                f"commit {result['version']} of feature group {row.name!r} version {row.version} was "
                f"written offline, but the online store write failed ({what}). The online table is "
                "behind; it is repaired on the next online write, or now with fg.sync_online()",
                featuregroup=row.name, version=row.version,
            ) from exc
        self._set_online_state(row.id, "ok", int(result["version"]))
        return written

    def _online_after_delete(self, project: str, row: Any, keys: pa.Table, result: Mapping[str, Any],
                             was: str) -> None:
        """Propagate a delete commit (``fg.delete(keys)``) to the online table (``was``: the
        online status before the delete; anything but ok means a full rebuild)."""
        try:
            if was == "ok":
                self._online_resync_keys(project, row, keys)
            else:
                self._online_full_sync(project, row)
        except Exception as exc:
            raise OnlineSyncError(
                f"the delete (commit {result['version']}) of feature group {row.name!r} landed offline, but "
                "the online store write failed; it is repaired on the next online write, or now with "
                "fg.sync_online()", featuregroup=row.name) from exc
        self._set_online_state(row.id, "ok", int(result["version"]))

    # --- enabling, syncing, checking ----------------------------------------------------------

    def _online_row(self, project: str, name: str, version: int | None) -> Any:
        row = self._group_row(project, name, version)
        need_online(row)
        return row

    def enable_online(self, project: str, name: str, version: int | None) -> dict[str, Any]:
        """Store a feature group online too: create its online table and back-fill it with the
        latest row per key of the offline snapshot."""
        row = self._group_row(project, name, version)
        if row.online_enabled:
            return self.describe_group(project, row.name, row.version)
        from cloudsdk.store.ondemand import is_on_demand

        if is_on_demand(row):
            raise UnsupportedError(f"{row.name!r} is an on-demand feature group: it cannot be stored online")
        logical = schema.deserialize_schema(row.arrow_schema)
        with self._lock(row.id):
            row = self._group_row(project, row.name, row.version)
            if row.online_enabled:  # enabled meanwhile
                return self.describe_group(project, row.name, row.version)
            self._online_create_table(project, row, logical, fresh=True)
            try:
                with self.catalog.begin() as conn:
                    conn.execute(C.feature_groups.update().where(C.feature_groups.c.id == row.id)
                                 .values(online_enabled=True, updated=C.now()))
                row = self._group_row(project, row.name, row.version)
                self._set_online_state(row.id, "pending")
                out = self._online_full_sync(project, row)
                self._set_online_state(row.id, "ok", out["commit"])
            except BaseException:
                with self.catalog.begin() as conn:
                    conn.execute(C.feature_groups.update().where(C.feature_groups.c.id == row.id)
                                 .values(online_enabled=False))
                    conn.execute(C.online_state.delete().where(C.online_state.c.fg_id == row.id))
                self._online_drop_table(project, row)
                raise
        self._online_changed()
        return self.describe_group(project, row.name, row.version)

    def disable_online(self, project: str, name: str, version: int | None) -> dict[str, Any]:
        """Stop storing a feature group online: drop its online table (the offline data stays)."""
        row = self._group_row(project, name, version)
        if not row.online_enabled:
            return self.describe_group(project, row.name, row.version)
        if is_online_only(row):
            raise InvalidArgumentError(
                f"feature group {row.name!r} version {row.version} is stored online only: disabling online "
                "storage would delete its data; delete the feature group instead", featuregroup=row.name)
        with self._lock(row.id):
            row = self._group_row(project, row.name, row.version)
            if not row.online_enabled:  # disabled meanwhile
                return self.describe_group(project, row.name, row.version)
            with self.catalog.begin() as conn:
                conn.execute(C.feature_groups.update().where(C.feature_groups.c.id == row.id)
                             .values(online_enabled=False, updated=C.now()))
                conn.execute(C.online_state.delete().where(C.online_state.c.fg_id == row.id))
            self._online_changed()
            self._online_drop_table(project, row)
        return self.describe_group(project, row.name, row.version)

    def sync_online(self, project: str, name: str, version: int | None) -> dict[str, Any]:
        """Make the online table equal to the latest offline snapshot (one row per key); repairs
        an online table left behind by a failed or offline-only write.

        Returns:
            ``{"commit", "upserted", "deleted", "online_rows"}``.
        """
        row = self._online_row(project, name, version)
        need_offline(row)
        with self._lock(row.id):
            row = self._online_row(project, row.name, row.version)  # still online?
            self._set_online_state(row.id, "pending", keep_commit=True)
            out = self._online_full_sync(project, row)
            self._set_online_state(row.id, "ok", out["commit"])
        return out

    def check_online_consistency(self, project: str, name: str, version: int | None, *,
                                 limit: int = 10) -> dict[str, Any]:
        """Compare the online table with the latest row per key of the offline snapshot.

        Returns:
            ``{"featuregroup", "version", "consistent", "offline_commit", "synced_commit",
            "status", "pending", "offline_rows", "online_rows", "missing_online",
            "extra_online", "different", "examples"}``; ``examples`` holds up to ``limit``
            keys of each kind.
        """
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
            raise InvalidArgumentError(f"limit must be a non-negative integer, got {limit!r}")
        row = self._online_row(project, name, version)
        need_offline(row)
        keys = online_key(row)
        store = self._online(project)
        with self._lock(row.id):
            status, synced = self._online_state(row.id)
            latest, commit, ties = self._offline_latest(row)
            online = store.scan(online_table_name(row)) if store.has_table(online_table_name(row)) \
                else schema.storage_schema(schema.deserialize_schema(row.arrow_schema)).empty_table()
        diff = diff_tables(latest, online, keys, ties)
        counts = {k: v.num_rows for k, v in diff.items()}
        return {
            "featuregroup": row.name, "version": row.version,
            "consistent": not any(counts.values()),
            "offline_commit": commit, "synced_commit": synced, "status": status,
            "pending": status == "pending",
            "offline_rows": latest.num_rows, "online_rows": online.num_rows,
            **counts,
            "examples": {k: v.select(keys).slice(0, limit).to_pylist() for k, v in diff.items()},
        }

    # --- reading -------------------------------------------------------------------------------

    def read_online(self, project: str, name: str, version: int | None,
                    columns: Sequence[str] | None = None) -> pa.Table:
        """Every row of a group's online table (a full scan), in the group's types and order."""
        row = self._online_row(project, name, version)
        logical = schema.deserialize_schema(row.arrow_schema)
        cols = list(columns) if columns is not None else list(logical.names)
        unknown = [c for c in cols if c not in logical.names]
        if unknown:
            raise FeatureNotFoundError(f"feature group {row.name!r} has no feature(s) {unknown}")
        table = self._online(project).scan(online_table_name(row), cols).select(cols)
        return schema.from_storage(table, logical)

    def _online_sources(self, project: str, keys: Iterable[tuple[str, int]]) -> dict[tuple[str, int], Any]:
        """Online tables (storage form) of groups, for the query planner with online=True."""
        out = {}
        for name, version in keys:
            row = self._online_row(project, name, version)
            logical = schema.deserialize_schema(row.arrow_schema)
            out[(name, version)] = (self._online(project).scan(online_table_name(row), logical.names)
                                    .select(list(logical.names)), logical)
        return out

    def _sql_online(self, project: str, query: str, dialect: Any,
                    resolve_row: Any) -> pa.Table:
        """sql(online=True): the query over online tables; primary-key equality / IN filters on
        one table become key lookups instead of scans."""
        from cloudsdk.store.online_vectors import key_lookup_values

        tree, names = sqlbox.parse(query, dialect)
        sources: dict[str, Any] = {}
        for table_name in sorted(names):
            row = resolve_row(table_name)
            need_online(row)
            logical = schema.deserialize_schema(row.arrow_schema)
            store = self._online(project)
            keys = online_key(row)
            wanted = key_lookup_values(tree, keys, len(names)) if len(names) == 1 else None  # type: ignore[arg-type]
            data = None
            if wanted is not None:
                try:
                    key_table = pa.table({k: pa.array(v).cast(schema.storage_schema(logical).field(k).type)
                                          for k, v in wanted.items()})
                except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
                    key_table = None
                if key_table is not None:
                    key_table = key_table.group_by(keys, use_threads=False).aggregate([])  # IN (1, 1): once
                    got = store.get(online_table_name(row), key_table)
                    data = got.filter(got.column("__found__")).drop_columns(["__found__"])
            if data is None:
                data = store.scan(online_table_name(row))
            sources[table_name] = schema.from_storage(data.select(list(logical.names)), logical)
        return sqlbox.execute(tree.sql(dialect="duckdb"), sources)

    # --- feature vectors -----------------------------------------------------------------------

    def prepare_feature_vector(self, project: str, features: Sequence[str] | Mapping[str, Any],
                               featuregroups_version_dict: Mapping[str, int] | None = None) -> VectorPlan:
        """A cached lookup plan for a list of feature names or a query spec (see
        :mod:`cloudsdk.store.online_vectors`); rebuilt after any change to the groups."""
        cache_key = (project, json.dumps(features, sort_keys=True, default=str) if isinstance(features, Mapping)
                     else tuple(features) if not isinstance(features, str) else (features,),
                     tuple(sorted((featuregroups_version_dict or {}).items())))
        self._online(project)  # notices a backend changed by another process (throttled)
        plan = self._vector_plans.get(cache_key)
        if plan is not None and plan.generation == self._online_generation:
            return plan
        generation = self._online_generation
        plan = build_plan(self, project, features, featuregroups_version_dict, generation)
        with self._online_guard:
            if generation == self._online_generation:
                self._vector_plans[cache_key] = plan
        return plan

    def get_feature_vectors(self, project: str, features: Sequence[str] | Mapping[str, Any],
                            entries: Sequence[Mapping[str, Any]], *,
                            featuregroups_version_dict: Mapping[str, int] | None = None,
                            allow_missing: bool = False) -> dict[str, Any]:
        """Feature vectors from the online tables, one per entry (a dict of key values).

        Returns:
            ``{"features": [names], "rows": [[values] per entry], "missing": [entry indexes]}``.

        Raises:
            FeatureVectorNotFoundError: an entry's key is not stored (allow_missing=False).
            InvalidArgumentError: an entry misses a key column, has an extra one, or a value
                of the wrong type; a feature's group is not stored online.
            FeatureNotFoundError: an unknown feature.
        """
        plan = self.prepare_feature_vector(project, features, featuregroups_version_dict)
        try:
            return plan.lookup(entries, allow_missing=allow_missing)
        except NotFoundError as exc:
            if exc.code != "not_found":  # a table dropped under a cached plan: plan again once
                raise
            self._online_changed()
            plan = self.prepare_feature_vector(project, features, featuregroups_version_dict)
            return plan.lookup(entries, allow_missing=allow_missing)


__all__ = ["ONLINE_ONLY_PREFIX", "OnlineMixin", "diff_tables", "is_online_only", "keys_not_in", "latest_per_key",
           "need_offline", "need_online", "online_key"]
