"""Time travel over feature groups: commits, reads as of a commit or a time, changes between
commits, deletes by primary key, compaction, and SQL over the past.

Every write to a feature group is one Delta commit; its Delta version is the *commit id*.
Each stored row also carries the hidden column ``_commit`` (int64): the commit that wrote it
(an insert, the upsert that last updated it, or the overwrite that rewrote it). ``_commit``
is never part of a feature group's schema, statistics or ordinary reads; SQL can name it, and
``_commit_time`` (the UTC time of that commit), like Hudi's ``_hoodie_commit_time``.

Semantics (docs/time-travel.md):

* ``as_of=<int>``: the group exactly as commit ``<int>`` left it.
* ``as_of=<time>``: the latest commit at or before that time (UTC when naive).
* ``read_changes(start, end)``: rows of the snapshot at ``end`` written by commits after
  ``start`` (``_change_type`` "insert" when the key was absent at ``start``, else "update"),
  plus one "delete" row (key columns only) per key present at ``start`` and gone at ``end``.
* ``compact()``: rewrites small files into large ones (Delta OPTIMIZE) and vacuums files that
  left the table more than the retention window ago; every commit that was the latest within
  the window stays readable; older ones raise :class:`~cloudsdk.errors.CommitNotFoundError`.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.dataset as pads
import sqlglot
from sqlglot import exp

from cloudsdk._asof import parse_as_of
from cloudsdk.errors import (
    CommitNotFoundError,
    DataValidationError,
    InvalidArgumentError,
    SchemaMismatchError,
    SQLError,
    StorageError,
    UnsupportedError,
)
from cloudsdk.store import schema
from cloudsdk.store import sql as sqlbox
from cloudsdk.store.offline import OfflineTable
from cloudsdk.store.planner import source_table

COMMIT = "_commit"
COMMIT_TIME = "_commit_time"
CHANGE_TYPE = "_change_type"
HIDDEN_COLUMNS = (COMMIT, COMMIT_TIME)
DEFAULT_RETENTION_HOURS = 168  # Delta's own default: 7 days
RETENTION_PROPERTY = "delta.deletedFileRetentionDuration"
_INTERVAL_RE = re.compile(r"^\s*interval\s+(\d+)\s+(hour|hours|day|days|week|weeks)\s*$", re.IGNORECASE)
_HOURS_PER = {"hour": 1, "day": 24, "week": 168}


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


# --- commits --------------------------------------------------------------------------------


@dataclass(frozen=True, order=True)
class Commit:
    """One Delta commit of a feature group."""

    version: int
    timestamp_ms: int
    operation: str

    @property
    def time(self) -> dt.datetime:
        """The commit time (aware, UTC)."""
        return dt.datetime.fromtimestamp(self.timestamp_ms / 1000, dt.UTC)


def commit_log(table: OfflineTable) -> list[Commit]:
    """Every commit of the table still in its log, oldest first."""
    return sorted(
        Commit(int(h["version"]), int(h.get("timestamp") or 0), str(h.get("operation") or ""))
        for h in table.history()
    )


def commit_times(commits: Sequence[Commit]) -> pa.Table:
    """``(_commit, _commit_time)`` of each commit: ``_commit_time`` is UTC, ``timestamp[ms]``."""
    return pa.table({
        COMMIT: pa.array([c.version for c in commits], pa.int64()),
        COMMIT_TIME: pa.array([c.timestamp_ms for c in commits], pa.int64()).cast(pa.timestamp("ms")),
    })


def resolve_as_of(table: OfflineTable, as_of: Any, *, group: str, commits: Sequence[Commit] | None = None,
                  what: str = "as_of") -> int:
    """The commit id ``as_of`` names: itself (an int) or the latest commit at or before a time.

    Raises:
        InvalidArgumentError: a wrong type, an unreadable time, or a time in the future.
        CommitNotFoundError: no such commit id, or the time is before the first commit.
    """
    value = parse_as_of(as_of, what)
    log = list(commits) if commits is not None else commit_log(table)
    if not log:
        raise CommitNotFoundError(f"feature group {group} has no commits", featuregroup=group)
    if isinstance(value, int):
        if value not in {c.version for c in log}:
            raise CommitNotFoundError(
                f"{what}={value}: feature group {group} has no commit {value} "
                f"(its commits are {log[0].version}..{log[-1].version}; see fg.commit_details())",
                featuregroup=group, commit=value)
        return value
    now = dt.datetime.now(dt.UTC)
    if value > now:
        raise InvalidArgumentError(
            f"{what}={value.isoformat()} is in the future (now is {now.isoformat()}); "
            "time travel reads the past: leave as_of out to read the latest commit")
    before = [c for c in log if c.time <= value]
    if not before:
        raise CommitNotFoundError(
            f"{what}={value.isoformat()} is before the first commit of feature group {group} "
            f"(commit {log[0].version} at {log[0].time.isoformat()})",
            featuregroup=group)
    return max(before, key=lambda c: c.version).version


def check_readable(table: OfflineTable, version: int, *, group: str) -> None:
    """Raise CommitNotFoundError when commit ``version``'s files were vacuumed away."""
    try:
        uris = table._open(version).file_uris()
    except StorageError as exc:
        raise CommitNotFoundError(
            f"commit {version} of feature group {group} can no longer be read: its log entry "
            "was cleaned up", featuregroup=group, commit=version) from exc
    missing = [u for u in uris if _is_local(u) and not os.path.exists(_local_path(u))]
    if missing:
        raise CommitNotFoundError(
            f"commit {version} of feature group {group} can no longer be read: fg.compact() "
            f"vacuumed {len(missing)} of its files (they were older than the retention window); "
            "read a later commit", featuregroup=group, commit=version)


def _is_local(uri: str) -> bool:
    return "://" not in uri or uri.startswith("file://")


def _local_path(uri: str) -> str:
    return uri[len("file://"):] if uri.startswith("file://") else uri


def dataset_at(table: OfflineTable, version: int | None, *, group: str) -> tuple[pads.Dataset, int]:
    """The table at commit ``version`` (None: the latest) with the commit it is."""
    if version is None:
        return table.snapshot()
    check_readable(table, version, group=group)
    return table.dataset(version), version


def _need_history(row: Any, group: str) -> None:
    """On-demand groups (cloudsdk.store.ondemand) keep no commits: no time travel; groups stored
    online only have no offline table at all."""
    if str(getattr(row, "location", "") or "").startswith("on-demand:"):
        raise UnsupportedError(f"{group} is an on-demand feature group: it has no commits to travel through")
    from cloudsdk.store.online_service import need_offline

    need_offline(row)


# --- the hidden per-row commit column -------------------------------------------------------


def with_commit_field(storage: pa.Schema) -> pa.Schema:
    """A storage schema with the hidden ``_commit`` column appended."""
    return storage.append(pa.field(COMMIT, pa.int64(), True))


def with_commit(data: pa.Table, version: int) -> pa.Table:
    """``data`` with ``_commit`` set to ``version`` on every row."""
    column = pa.array([version] * data.num_rows, pa.int64())
    if COMMIT in data.column_names:
        return data.set_column(data.column_names.index(COMMIT), COMMIT, column)
    return data.append_column(pa.field(COMMIT, pa.int64(), True), column)


def has_commit_column(ds: pads.Dataset) -> bool:
    """Whether the table stores ``_commit`` (tables written before it existed do not)."""
    return COMMIT in ds.schema.names


def stamp(table: OfflineTable, data: pa.Table) -> pa.Table:
    """``data`` with ``_commit`` = the next commit id, when the table keeps ``_commit``.

    Writes to one group are serialised (per process and on the server), so the next commit
    is the latest + 1.
    """
    current = table._open()
    tracked = COMMIT in [f.name for f in current.schema().fields]
    return with_commit(data, int(current.version()) + 1) if tracked else data


def check_reserved(logical: pa.Schema) -> None:
    """Feature names that would clash with the hidden columns are refused."""
    clash = [n for n in logical.names if n in HIDDEN_COLUMNS or n == CHANGE_TYPE]
    if clash:
        raise SchemaMismatchError(
            f"feature name(s) {clash} are reserved for time travel ({', '.join(HIDDEN_COLUMNS)}, "
            f"{CHANGE_TYPE}); rename the column(s)")


# --- retention --------------------------------------------------------------------------------


def parse_retention(value: str | None) -> int | None:
    """Hours of a Delta ``interval N hours|days|weeks`` property (None when unset or unreadable)."""
    if not value:
        return None
    match = _INTERVAL_RE.match(value)
    if not match:
        return None
    return int(match[1]) * _HOURS_PER[match[2].lower().rstrip("s")]


def check_hours(hours: Any, what: str = "retention_hours") -> int:
    """A whole, non-negative number of hours."""
    if isinstance(hours, bool) or not isinstance(hours, int) or hours < 0:
        raise InvalidArgumentError(f"{what} must be a whole number of hours >= 0, got {hours!r}")
    return int(hours)


# --- delete by key --------------------------------------------------------------------------


def key_table(keys: pa.Table, primary_key: Sequence[str], logical: pa.Schema, *, group: str) -> pa.Table:
    """The distinct primary keys of ``keys`` in their storage types (other columns are ignored).

    Raises:
        SchemaMismatchError: a key column is missing or has an incompatible type.
        DataValidationError: a key is null.
    """
    if not isinstance(keys, pa.Table):
        raise InvalidArgumentError(f"delete() takes a dataframe of primary keys, got {type(keys).__name__}")
    missing = [k for k in primary_key if k not in keys.column_names]
    if missing:
        raise SchemaMismatchError(
            f"delete() needs the primary key column(s) {list(primary_key)} of feature group {group}; "
            f"missing {missing} (columns given: {keys.column_names})")
    key_schema = pa.schema([logical.field(k) for k in primary_key])
    picked = schema.conform(keys.select(list(primary_key)), key_schema, what=f"the primary key of {group}")
    for k in primary_key:
        nulls = picked.column(k).null_count
        if nulls:
            raise DataValidationError(f"delete(): primary key column {k!r} has {nulls} null value(s)", column=k)
    stored = schema.to_storage(picked, key_schema)
    return stored.group_by(list(primary_key)).aggregate([]) if stored.num_rows else stored


def delete_keys(table: OfflineTable, keys: pa.Table, primary_key: Sequence[str]) -> dict[str, Any]:
    """Delete every row whose primary key is in ``keys``: one Delta commit (a merge)."""
    from deltalake.exceptions import DeltaError

    dt_table = table._open()
    predicate = " AND ".join(f"t.{_q(k)} = s.{_q(k)}" for k in primary_key)
    try:
        metrics = (dt_table.merge(keys, predicate=predicate, source_alias="s", target_alias="t")
                   .when_matched_delete().execute())
    except DeltaError as exc:
        raise StorageError(f"the delete failed: {exc}") from exc
    return {"version": int(dt_table.version()), "rows_inserted": 0, "rows_updated": 0,
            "rows_deleted": int(metrics.get("num_target_rows_deleted", 0))}


# --- changes between two commits --------------------------------------------------------------


def changes(table: OfflineTable, logical: pa.Schema, primary_key: Sequence[str], start: int | None,
            end: int, commits: Sequence[Commit], *, group: str) -> pa.Table:
    """What changed after commit ``start`` (None: before the first) up to commit ``end``.

    Returns:
        The logical columns plus ``_change_type`` ("insert", "update", "delete"), ``_commit``
        and ``_commit_time`` (null for deletes); ordered by ``_commit`` then the key.
    """
    end_ds, _ = dataset_at(table, end, group=group)
    sources: dict[str, Any] = {"__end": end_ds, "__commits": commit_times(commits)}
    names = logical.names
    cols = ", ".join(f"e.{_q(n)}" for n in names)
    key_on = lambda a, b: " AND ".join(f"{a}.{_q(k)} = {b}.{_q(k)}" for k in primary_key)  # noqa: E731
    keys = ", ".join(_q(k) for k in primary_key)
    tracked = has_commit_column(end_ds)
    if start is None:
        start_rel = f"(SELECT {keys} FROM __end WHERE FALSE)"
        written = "(SELECT * FROM __end)"
    else:
        start_ds, _ = dataset_at(table, start, group=group)
        sources["__start"] = start_ds
        start_rel = "__start"
        if tracked and has_commit_column(start_ds):
            written = f"(SELECT * FROM __end WHERE {_q(COMMIT)} > {int(start)})"
        else:  # a table written before _commit existed: the rows that differ
            visible = ", ".join(_q(n) for n in names)
            written = f"(SELECT {visible} FROM __end EXCEPT ALL SELECT {visible} FROM __start)"
            tracked = False
    commit_expr = f"e.{_q(COMMIT)}" if tracked else "NULL::BIGINT"
    nulls = ", ".join(f"d.{_q(n)}" if n in primary_key else f"NULL AS {_q(n)}" for n in names)
    sql = (
        f"WITH sk AS (SELECT DISTINCT {keys}, TRUE AS __present FROM {start_rel}), "
        f"ek AS (SELECT DISTINCT {keys} FROM __end) "
        f"SELECT * FROM ("
        f"SELECT {cols}, CASE WHEN sk.__present THEN 'update' ELSE 'insert' END AS {_q(CHANGE_TYPE)}, "
        f"{commit_expr} AS {_q(COMMIT)} FROM {written} AS e LEFT JOIN sk ON {key_on('e', 'sk')} "
        f"UNION ALL "
        f"SELECT {nulls}, 'delete' AS {_q(CHANGE_TYPE)}, NULL::BIGINT AS {_q(COMMIT)} "
        f"FROM sk AS d ANTI JOIN ek ON {key_on('d', 'ek')}"
        f") AS c LEFT JOIN __commits USING ({_q(COMMIT)}) "
        f"ORDER BY {_q(COMMIT)} NULLS LAST, {keys}"
    )
    out = sqlbox.execute(sql, sources)
    data = schema.from_storage(out.select(names), logical)
    for extra in (CHANGE_TYPE, COMMIT, COMMIT_TIME):
        data = data.append_column(extra, out.column(extra))
    return data


# --- SQL over the past ------------------------------------------------------------------------


def _version_value(node: exp.Expression, table_name: str) -> int | str:
    """The literal of ``VERSION AS OF n`` (an int) or ``TIMESTAMP AS OF '...'`` (a string)."""
    kind = str(node.name or node.args.get("this") or "").upper()
    value = node.args.get("expression")
    negative = isinstance(value, exp.Neg)
    if negative:
        value = value.this  # type: ignore[union-attr]
    if not isinstance(value, exp.Literal) or str(node.args.get("kind") or "").upper() != "AS OF":
        raise SQLError(
            f"{table_name}: time travel in SQL is '{table_name} VERSION AS OF <commit id>' or "
            f"'{table_name} TIMESTAMP AS OF '<ISO time>''; only literal values are allowed")
    if kind == "VERSION":
        if value.is_string or not value.this.isdigit():
            raise SQLError(f"{table_name} VERSION AS OF takes a commit id (an integer), got {value.sql()}")
        return -int(value.this) if negative else int(value.this)
    if kind == "TIMESTAMP":
        if not value.is_string:
            raise SQLError(f"{table_name} TIMESTAMP AS OF takes a quoted time, e.g. '2026-11-26 10:00:00'")
        return str(value.this)
    raise SQLError(f"{table_name}: unsupported time travel clause {node.sql()!r}")


def run_sql(query: str, resolve: Callable[[Iterable[str]], dict[str, Any]], *,
            dialect: sqlbox.Dialect = "auto", as_of: Any = None) -> pa.Table:
    """Run a sandboxed SELECT whose feature group tables may be read in the past.

    ``resolve`` maps table names to catalog rows of feature groups (or to Arrow data, used
    as it is). ``as_of`` reads every feature group table at that commit id / time; a table's
    own ``VERSION AS OF n`` / ``TIMESTAMP AS OF '...'`` wins over it. The hidden columns
    ``_commit`` and ``_commit_time`` are available when the query names them.
    """
    tree, names = sqlbox.parse(query, dialect)
    found = resolve(sorted(names))
    ctes = {cte.alias_or_name for cte in tree.find_all(exp.CTE)}
    wants_hidden = any(c.name in HIDDEN_COLUMNS for c in tree.find_all(exp.Column))
    sources: dict[str, Any] = {}
    opened: dict[tuple[str, int | None], str] = {}
    tracked: dict[str, bool] = {}  # whether a source keeps _commit (older tables do not)
    for node in list(tree.find_all(exp.Table)):
        if node.name in ctes or node.name not in found:
            continue
        target = found[node.name]
        clause = node.args.get("version")
        value: Any = _version_value(clause, node.name) if clause is not None else as_of
        if not hasattr(target, "location") or not hasattr(target, "arrow_schema"):
            if clause is not None or as_of is not None:
                raise UnsupportedError(f"{node.name} has no commit history; it cannot be read as of a commit")
            internal = f"__src_{len(sources)}"
            sources[internal] = target
            subquery = sqlglot.parse_one(f"SELECT * FROM {_q(internal)}", read="duckdb")
        else:
            _need_history(target, node.name)
            table = OfflineTable(target.location)
            logical = schema.deserialize_schema(target.arrow_schema)
            log = commit_log(table) if (value is not None or wants_hidden) else []
            commit = None if value is None else resolve_as_of(table, value, group=node.name, commits=log)
            key = (node.name, commit)
            if key not in opened:
                internal = opened[key] = f"__fg_{len(opened)}"
                ds, _ = dataset_at(table, commit, group=node.name)
                sources[internal] = ds
                tracked[internal] = has_commit_column(ds)
                if wants_hidden:
                    sources[f"{internal}_commits"] = commit_times(log)
            internal = opened[key]
            visible = ", ".join(f"s.{_q(n)}" for n in logical.names)
            text = f"SELECT {visible} FROM {_q(internal)} AS s"
            if wants_hidden:
                if tracked[internal]:
                    text = (f"SELECT {visible}, s.{_q(COMMIT)}, c.{_q(COMMIT_TIME)} FROM {_q(internal)} AS s "
                            f"LEFT JOIN {_q(internal + '_commits')} AS c ON s.{_q(COMMIT)} = c.{_q(COMMIT)}")
                else:
                    text = (f"SELECT {visible}, NULL::BIGINT AS {_q(COMMIT)}, NULL::TIMESTAMP_MS AS "
                            f"{_q(COMMIT_TIME)} FROM {_q(internal)} AS s")
            subquery = sqlglot.parse_one(text, read="duckdb")
        alias = node.alias or node.name
        node.replace(exp.Subquery(this=subquery, alias=exp.TableAlias(this=exp.to_identifier(alias))))
    return sqlbox.execute(tree.sql(dialect="duckdb"), sources)


# --- query specs ------------------------------------------------------------------------------


def spec_nodes(spec: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """Every ``{"fg": ...}`` node of a query spec (the query and its joins, depth first)."""
    out = [spec]
    for join in spec.get("joins") or []:
        out.extend(spec_nodes(join["query"]))
    return out


class TimeTravelMixin:
    """Time-travel operations of :class:`~cloudsdk.store.FeatureStoreService`."""

    #: The store's retention window for compact() (hours) when a group sets none.
    default_retention_hours: int = DEFAULT_RETENTION_HOURS

    def _group_row(self, project: str, name: str, version: int | None) -> Any:
        raise NotImplementedError

    def _lock(self, fg_id: int) -> Any:
        raise NotImplementedError

    def _record_commit(self, fg_id: int, result: Mapping[str, Any], mode: str) -> None:
        raise NotImplementedError

    def _after_commit(self, project: str, name: str, version: int, enabled: bool | None = None) -> None:
        raise NotImplementedError

    if TYPE_CHECKING:  # provided by OnlineMixin (cloudsdk.store.online_service)
        def _set_online_state(self, fg_id: int, status: str, synced_commit: int | None = None, *,
                              keep_commit: bool = False) -> None: ...

        def _online_state(self, fg_id: int) -> tuple[str, int | None]: ...

        def _online_after_delete(self, project: str, row: Any, keys: pa.Table,
                                 result: Mapping[str, Any], was: str) -> None: ...

    def _history_row(self, project: str, name: str, version: int | None) -> Any:
        row = self._group_row(project, name, version)
        _need_history(row, f"{row.name}_{row.version}")
        return row

    def _dataset_as_of(self, row: Any, as_of: Any) -> tuple[pads.Dataset, int]:
        """A group's data at ``as_of`` (None: latest) and the commit it is."""
        table = OfflineTable(row.location)
        group = f"{row.name}_{row.version}"
        _need_history(row, group)
        commit = None if as_of is None else resolve_as_of(table, as_of, group=group)
        return dataset_at(table, commit, group=group)

    def resolve_commit(self, project: str, name: str, version: int | None, as_of: Any = None) -> int:
        """The commit id that ``as_of`` names for a feature group (None: the latest)."""
        row = self._history_row(project, name, version)
        return self._dataset_as_of(row, as_of)[1]

    def read_changes(self, project: str, name: str, version: int | None, start: Any = None,
                     end: Any = None) -> pa.Table:
        """The rows written after commit ``start`` up to ``end``, and the keys deleted.

        Args:
            start: a commit id or time (exclusive); None: from before the first commit.
            end: a commit id or time (inclusive); None: the latest commit.

        Returns:
            The group's columns plus ``_change_type``, ``_commit``, ``_commit_time``.

        Raises:
            CommitNotFoundError, InvalidArgumentError (start after end).
        """
        row = self._history_row(project, name, version)
        table = OfflineTable(row.location)
        group = f"{row.name}_{row.version}"
        log = commit_log(table)
        end_v = log[-1].version if end is None else resolve_as_of(table, end, group=group, commits=log, what="end")
        start_v = None if start is None else resolve_as_of(table, start, group=group, commits=log, what="start")
        if start_v is not None and start_v > end_v:
            raise InvalidArgumentError(f"read_changes(): start (commit {start_v}) is after end (commit {end_v})")
        logical = schema.deserialize_schema(row.arrow_schema)
        return changes(table, logical, json.loads(row.primary_key), start_v, end_v, log, group=group)

    def delete_rows(self, project: str, name: str, version: int | None, keys: pa.Table) -> dict[str, Any]:
        """Delete the rows whose primary key is in ``keys``, as one commit.

        Returns:
            ``{"version", "rows_inserted": 0, "rows_updated": 0, "rows_deleted"}``; no commit
            is made (and ``version`` is the latest) when ``keys`` is empty.
        """
        row = self._history_row(project, name, version)
        logical = schema.deserialize_schema(row.arrow_schema)
        pk = json.loads(row.primary_key)
        group = f"{row.name}_{row.version}"
        stored = key_table(keys, pk, logical, group=group)
        table = OfflineTable(row.location)
        with self._lock(row.id):
            row = self._group_row(project, row.name, row.version)  # online storage may have changed since
            before = table.version()
            if stored.num_rows == 0:
                return {"version": before, "rows_inserted": 0, "rows_updated": 0, "rows_deleted": 0}
            was = self._online_state(row.id)[0] if row.online_enabled else "ok"
            if row.online_enabled:  # a crash between the two writes is detected (online_service)
                self._set_online_state(row.id, "pending", keep_commit=True)
            result = delete_keys(table, stored, pk)
            if result["version"] != before:
                self._record_commit(row.id, result, "delete")
            if row.online_enabled:
                self._online_after_delete(project, row, stored, result, was)
        self._after_commit(project, row.name, row.version)
        return result

    def set_retention(self, project: str, name: str, version: int | None, hours: int) -> dict[str, Any]:
        """Set a group's retention window for compact() (a Delta table property; one commit)."""
        hours = check_hours(hours)
        row = self._history_row(project, name, version)
        table = OfflineTable(row.location)
        from deltalake.exceptions import DeltaError

        with self._lock(row.id):
            before = table.version()
            dt_table = table._open()
            try:
                dt_table.alter.set_table_properties({RETENTION_PROPERTY: f"interval {hours} hours"})
            except DeltaError as exc:
                raise StorageError(f"cannot set the retention of {row.name}: {exc}") from exc
            new = table.version()
            self._record_commit(row.id, {"version": new, "rows_inserted": 0, "rows_updated": 0,
                                         "rows_deleted": 0}, "retention")
            self._online_follows(row, before, new)
        return {"version": new, "retention_hours": hours}

    def _online_follows(self, row: Any, before: int, after: int) -> None:
        """After commits that change no row (compact, retention): an online table that was in
        step with commit ``before`` is in step with ``after`` too (called under the group lock;
        groups not stored online have no online state)."""
        if after == before:
            return
        status, synced = self._online_state(row.id)
        if status == "ok" and synced == before:
            self._set_online_state(row.id, "ok", after)

    def get_retention(self, project: str, name: str, version: int | None) -> int:
        """The group's retention window in hours (its own setting, else the store's default)."""
        row = self._history_row(project, name, version)
        config = OfflineTable(row.location)._open().metadata().configuration or {}
        own = parse_retention(config.get(RETENTION_PROPERTY))
        return self.default_retention_hours if own is None else own

    def compact(self, project: str, name: str, version: int | None,
                retention_hours: int | None = None) -> dict[str, Any]:
        """Rewrite small files into large ones and vacuum files older than the retention window.

        Returns:
            ``{"version", "retention_hours", "files_added", "files_removed", "files_vacuumed"}``.
        """
        hours = (self.get_retention(project, name, version) if retention_hours is None
                 else check_hours(retention_hours))
        row = self._history_row(project, name, version)
        table = OfflineTable(row.location)
        from deltalake.exceptions import DeltaError

        with self._lock(row.id):
            before = table.version()
            dt_table = table._open()
            try:
                metrics = dt_table.optimize.compact()
                vacuumed = dt_table.vacuum(retention_hours=hours, dry_run=False, enforce_retention_duration=False)
            except DeltaError as exc:
                raise StorageError(f"compaction of {row.name} failed: {exc}") from exc
            after = table.version()
            for v in range(before + 1, after + 1):
                self._record_commit(row.id, {"version": v, "rows_inserted": 0, "rows_updated": 0,
                                             "rows_deleted": 0}, "compact")
            self._online_follows(row, before, after)
        return {"version": after, "retention_hours": hours,
                "files_added": int(metrics.get("numFilesAdded", 0)),
                "files_removed": int(metrics.get("numFilesRemoved", 0)), "files_vacuumed": len(vacuumed)}

    # --- queries ---------------------------------------------------------------------------

    def pin_as_of(self, project: str, spec: Mapping[str, Any]) -> dict[str, Any]:
        """A copy of a query spec where every group read ``as_of`` a time or id also holds the
        commit id it names (``fg.commit``); the planner reads that commit."""
        import copy

        pinned: dict[str, Any] = copy.deepcopy(dict(spec))
        for node in spec_nodes(pinned):
            fg = node["fg"]
            if fg.get("as_of") is not None and fg.get("commit") is None:
                row = self._group_row(project, fg["name"], int(fg["version"]))
                fg["commit"] = self._dataset_as_of(row, fg["as_of"])[1]
        return pinned

    def pinned_sources(self, project: str, spec: Mapping[str, Any]) -> dict[str, Any]:
        """The data of every group a pinned spec reads at a commit: ``{"<name>_<version>@<commit>": dataset}``."""
        named: dict[str, Any] = {}
        for node in spec_nodes(spec):
            fg = node["fg"]
            source = source_table(fg)
            if fg.get("commit") is None or source in named:
                continue
            row = self._group_row(project, fg["name"], int(fg["version"]))
            named[source] = dataset_at(OfflineTable(row.location), int(fg["commit"]), group=source)[0]
        return named

    @staticmethod
    def read_commits(spec: Mapping[str, Any], latest: Mapping[tuple[str, int], int | None]) -> list[dict[str, Any]]:
        """``[{"name", "version", "commit"}]`` of a pinned spec: each group once per commit it is
        read at (``latest`` gives the commit of the groups read at their latest)."""
        seen: dict[tuple[str, int, int | None], None] = {}
        for node in spec_nodes(spec):
            fg = node["fg"]
            key = (fg["name"], int(fg["version"]))
            commit = fg.get("commit")
            seen[(key[0], key[1], int(commit) if commit is not None else latest.get(key))] = None
        return [{"name": n, "version": v, "commit": c}
                for n, v, c in sorted(seen, key=lambda t: (t[0], t[1], -1 if t[2] is None else t[2]))]


__all__ = [
    "CHANGE_TYPE",
    "COMMIT",
    "COMMIT_TIME",
    "DEFAULT_RETENTION_HOURS",
    "HIDDEN_COLUMNS",
    "RETENTION_PROPERTY",
    "Commit",
    "TimeTravelMixin",
    "changes",
    "check_readable",
    "check_reserved",
    "commit_log",
    "commit_times",
    "dataset_at",
    "delete_keys",
    "has_commit_column",
    "key_table",
    "resolve_as_of",
    "run_sql",
    "source_table",
    "spec_nodes",
    "stamp",
    "with_commit",
    "with_commit_field",
]
