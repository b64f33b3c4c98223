"""The feature store itself: the operations both the embedded backend and the server call.

Everything here takes and returns plain Python values and Arrow tables, so the REST and
Flight layers (and the in-process backend) are thin shells over it. Metadata is returned as
JSON-able dicts (see :func:`FeatureStoreService.describe_group`).
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import threading
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import sqlalchemy as sa

from cloudsdk._names import validate_metadata, validate_name, validate_version
from cloudsdk.errors import (
    AlreadyExistsError,
    DataValidationError,
    FeatureGroupNotFoundError,
    InvalidArgumentError,
    ProjectNotFoundError,
    SchemaMismatchError,
)
from cloudsdk.store import catalog as C
from cloudsdk.store import planner, schema, timetravel
from cloudsdk.store import sql as sqlbox
from cloudsdk.store.datasets import TrainingDatasetsMixin
from cloudsdk.store.offline import OfflineTable
from cloudsdk.store.ondemand import OnDemandMixin, is_on_demand
from cloudsdk.store.online_service import (
    ONLINE_ONLY_PREFIX,
    OnlineMixin,
    is_online_only,
    need_offline,
)
from cloudsdk.store.pit_query import PointInTimeMixin
from cloudsdk.store.registry import RegistryMixin
from cloudsdk.store.stats_service import StatisticsMixin, group_config
from cloudsdk.store.timetravel import TimeTravelMixin
from cloudsdk.store.validation import ValidationMixin

log = logging.getLogger(__name__)

DEFAULT_PROJECT = "default"
WRITE_MODES = ("append", "overwrite", "upsert")
_TABLE_RE = re.compile(r"^(?P<name>[a-z][a-z0-9_]*?)_(?P<version>[0-9]+)$")


class FeatureStoreService(TrainingDatasetsMixin, OnDemandMixin, TimeTravelMixin, PointInTimeMixin,
                          StatisticsMixin, RegistryMixin, ValidationMixin, OnlineMixin):
    """The store: a catalog plus offline Delta tables under one data directory."""

    def __init__(self, root: str | Path, metadata_url: str | None = None) -> None:
        self.root = Path(root).expanduser().resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        url = metadata_url or f"sqlite:///{self.root / 'catalog.db'}"
        self.catalog = C.Catalog(url)
        self._locks: dict[int, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        self._fs_ids: dict[str, int] = {}
        self._online_setup()
        if not self._project_row(DEFAULT_PROJECT, missing_ok=True):
            self.create_project(DEFAULT_PROJECT, exist_ok=True)

    def close(self) -> None:
        """Release the catalog's and the online stores' connections."""
        self._online_close()
        self.catalog.close()

    # --- projects ------------------------------------------------------------------

    def create_project(self, name: str, description: str = "", *, exist_ok: bool = False) -> dict[str, Any]:
        """Create a project and its feature store ``<name>_featurestore``."""
        validate_name(name, "project")
        with self.catalog.begin() as conn:
            if conn.execute(sa.select(C.projects.c.id).where(C.projects.c.name == name)).first():
                if exist_ok:
                    return self.get_project(name)
                raise AlreadyExistsError(f"project {name!r} already exists", project=name)
            pid = conn.execute(
                C.projects.insert().values(name=name, description=description, created=C.now())
            ).inserted_primary_key[0]  # type: ignore[index]
            conn.execute(C.feature_stores.insert().values(project_id=pid, name=f"{name}_featurestore"))
        (self.root / "projects" / name).mkdir(parents=True, exist_ok=True)
        return self.get_project(name)

    def _project_row(self, name: str, missing_ok: bool = False) -> Any:
        with self.catalog.read() as conn:
            row = conn.execute(
                sa.select(C.projects, C.feature_stores.c.id.label("fs_id"), C.feature_stores.c.name.label("fs_name"))
                .join(C.feature_stores, C.feature_stores.c.project_id == C.projects.c.id)
                .where(C.projects.c.name == name)
            ).first()
        if row is None and not missing_ok:
            raise ProjectNotFoundError(f"no project named {name!r}", project=name)
        return row

    def get_project(self, name: str) -> dict[str, Any]:
        """A project's metadata."""
        row = self._project_row(name)
        return {"name": row.name, "description": row.description, "featurestore": row.fs_name,
                "created": row.created.isoformat()}

    def list_projects(self) -> list[str]:
        """Names of all projects."""
        with self.catalog.read() as conn:
            return [r[0] for r in conn.execute(sa.select(C.projects.c.name).order_by(C.projects.c.name))]

    def featurestores(self, project: str) -> list[str]:
        """The feature stores ``project`` can read: its own, then those shared with it (sorted)."""
        reader = self._project_row(project)
        owner = C.projects.alias("owner")
        with self.catalog.read() as conn:
            shared = [r[0] for r in conn.execute(
                sa.select(owner.c.name)
                .join(C.shares, C.shares.c.owner_project_id == owner.c.id)
                .where(C.shares.c.reader_project_id == reader.id)
                .order_by(owner.c.name)
            )]
        return [f"{project}_featurestore", *(f"{name}_featurestore" for name in shared)]

    def _fs_id(self, project: str) -> int:
        """The project's feature store id (cached: projects are never renamed or removed)."""
        fs_id = self._fs_ids.get(project)
        if fs_id is None:
            fs_id = self._fs_ids[project] = int(self._project_row(project).fs_id)
        return fs_id

    # --- feature group metadata ----------------------------------------------------------

    def _group_rows(self, project: str, name: str | None = None) -> list[Any]:
        fs_id = self._fs_id(project)
        query = sa.select(C.feature_groups).where(C.feature_groups.c.fs_id == fs_id)
        if name is not None:
            query = query.where(C.feature_groups.c.name == name)
        with self.catalog.read() as conn:
            return list(conn.execute(query.order_by(C.feature_groups.c.name, C.feature_groups.c.version)))

    def _group_row(self, project: str, name: str, version: int | None) -> Any:
        if not isinstance(name, str):
            raise InvalidArgumentError(f"a feature group name must be a string, got {name!r}")
        rows = self._group_rows(project, name)
        if version is not None:
            validate_version(version, "feature group version")
            rows = [r for r in rows if r.version == version]
        if not rows:
            which = f"version {version} of " if version is not None else ""
            raise FeatureGroupNotFoundError(
                f"no {which}feature group {name!r} in project {project!r}",
                featuregroup=name, version=version,
            )
        return rows[-1]

    def _features(self, fg_id: int) -> list[dict[str, Any]]:
        with self.catalog.read() as conn:
            rows = conn.execute(
                sa.select(C.features).where(C.features.c.fg_id == fg_id).order_by(C.features.c.position)
            )
            return [
                {"name": r.name, "type": r.type, "description": r.description,
                 "primary": r.primary, "partition": r.partition}
                for r in rows
            ]

    def _describe(self, row: Any) -> dict[str, Any]:
        return {
            "name": row.name,
            "version": row.version,
            "description": row.description,
            "features": self._features(row.id),
            "primary_key": json.loads(row.primary_key),
            "partition_by": json.loads(row.partition_by),
            "event_time": row.event_time,
            "online_enabled": row.online_enabled,
            "offline_enabled": row.offline_enabled,
            "arrow_schema": row.arrow_schema,
            "metadata": json.loads(row.custom_metadata),
            "statistics_config": json.loads(row.statistics_config),
            "location": row.location,
            "created": row.created.isoformat(),
            "updated": row.updated.isoformat(),
            **self._on_demand_fields(row),
            **self._registry_fields("featuregroup", row.id),  # tags, jobs (store/registry.py)
        }

    def describe_group(self, project: str, name: str, version: int | None = None) -> dict[str, Any]:
        """A feature group's metadata (latest version when ``version`` is None)."""
        return self._describe(self._group_row(project, name, version))

    def list_groups(self, project: str) -> list[dict[str, Any]]:
        """Metadata of every feature group of the project, by name then version."""
        return [self._describe(r) for r in self._group_rows(project)]

    def _group_infos(self, project: str) -> list[planner.GroupInfo]:
        fs_id = self._fs_id(project)
        with self.catalog.read() as conn:
            rows = list(conn.execute(
                sa.select(C.feature_groups.c.id, C.feature_groups.c.name, C.feature_groups.c.version,
                          C.feature_groups.c.primary_key)
                .where(C.feature_groups.c.fs_id == fs_id)
                .order_by(C.feature_groups.c.name, C.feature_groups.c.version)
            ))
            feats: dict[int, list[str]] = {}
            for fg_id, fname in conn.execute(
                sa.select(C.features.c.fg_id, C.features.c.name)
                .join(C.feature_groups, C.features.c.fg_id == C.feature_groups.c.id)
                .where(C.feature_groups.c.fs_id == fs_id)
                .order_by(C.features.c.fg_id, C.features.c.position)
            ):
                feats.setdefault(fg_id, []).append(fname)
        return [
            planner.GroupInfo(r.name, r.version, tuple(feats.get(r.id, [])), tuple(json.loads(r.primary_key)))
            for r in rows
        ]

    def latest_version(self, project: str, name: str) -> int | None:
        """The highest version of a feature group, or None if it has none."""
        rows = self._group_rows(project, name)
        return rows[-1].version if rows else None

    # --- creating, writing, deleting -------------------------------------------------------

    def create_group(
        self,
        project: str,
        name: str,
        version: int | None,
        data: pa.Table | None = None,
        *,
        arrow_schema: pa.Schema | None = None,
        description: str = "",
        primary_key: Sequence[str] | None = None,
        partition_by: Sequence[str] | None = None,
        event_time: str | None = None,
        online_enabled: bool = False,
        offline_enabled: bool = True,
        feature_descriptions: Mapping[str, str] | None = None,
        metadata: Mapping[str, str] | None = None,
        statistics_config: Mapping[str, Any] | None = None,
        validation_rules: Sequence[Mapping[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """Create a feature group (and write ``data`` as its first commit).

        Raises:
            InvalidNameError, AlreadyExistsError, SchemaMismatchError, DataValidationError,
            UnsupportedError (a type the online store cannot hold).
        """
        validate_name(name, "feature group")
        group_config(statistics_config, None)  # a bad statistics configuration fails before anything is made
        online_enabled, offline_enabled = bool(online_enabled), bool(offline_enabled)
        if not (online_enabled or offline_enabled):
            raise InvalidArgumentError(
                "a feature group is stored offline, online or both: online=False and offline=False store "
                "nothing", featuregroup=name)
        if version is None:
            version = (self.latest_version(project, name) or 0) + 1
        validate_version(version, "feature group version")
        if data is None and arrow_schema is None:
            raise InvalidArgumentError("create a feature group from a dataframe or a schema")
        source = arrow_schema if arrow_schema is not None else data.schema  # type: ignore[union-attr]
        logical = schema.keep_pandas_metadata(source, source)
        schema.check_columns(logical)
        timetravel.check_reserved(logical)
        pk = _as_list(primary_key) or [logical.names[0]]
        parts = _as_list(partition_by)
        for label, cols in (("primary key", pk), ("partition", parts)):
            missing = [c for c in cols if c not in logical.names]
            if missing:
                raise SchemaMismatchError(
                    f"{label} column(s) {missing} are not columns of the dataframe "
                    f"(columns: {', '.join(logical.names)})"
                )
        schema.check_keys(logical, pk, event_time)
        descriptions = dict(feature_descriptions or {})
        unknown = [k for k in descriptions if k not in logical.names]
        if unknown:
            raise SchemaMismatchError(f"descriptions given for unknown features {unknown}")
        if data is not None:
            data = schema.conform(data, logical, what=f"feature group {name!r}")
            self._validate_rows(data, pk, event_time, "append")
        rules, checked = self._rules_for_create(name, logical, validation_rules, data)  # store/validation.py
        fs_id = self._fs_id(project)
        location = self.root / "projects" / project / "featurestore" / f"{name}_{version}"
        if not offline_enabled:
            location = Path(f"{ONLINE_ONLY_PREFIX}{name}_{version}")
        if online_enabled:
            self._online(project)  # an unreachable online store fails before anything is made
        stamp = C.now()
        try:
            with self.catalog.begin() as conn:
                fg_id = conn.execute(
                    C.feature_groups.insert().values(
                        fs_id=fs_id, name=name, version=version, description=description or "",
                        primary_key=C.dumps(pk), partition_by=C.dumps(parts), event_time=event_time,
                        online_enabled=online_enabled, offline_enabled=offline_enabled,
                        arrow_schema=schema.serialize_schema(logical),
                        custom_metadata=C.dumps(validate_metadata(metadata or {})),
                        statistics_config=C.dumps(dict(statistics_config or {"enabled": True})),
                        location=str(location), created=stamp, updated=stamp,
                    )
                ).inserted_primary_key[0]  # type: ignore[index]
                conn.execute(C.features.insert(), [
                    {"fg_id": fg_id, "position": i, "name": f.name, "type": schema.feature_type(f.type),
                     "description": descriptions.get(f.name, ""), "primary": f.name in pk,
                     "partition": f.name in parts}
                    for i, f in enumerate(logical)
                ])
                self._store_rules(conn, fg_id, rules)
        except sa.exc.IntegrityError as exc:
            raise AlreadyExistsError(
                f"feature group {name!r} version {version} already exists in project {project!r}; "
                "insert into it, or create a new version",
                featuregroup=name, version=version,
            ) from exc
        table = OfflineTable(location)
        new_row = self._group_row(project, name, version)
        try:
            stored = schema.to_storage(data, logical) if data is not None else None
            if online_enabled:
                self._online_create_table(project, new_row, logical, fresh=True)
                self._set_online_state(fg_id, "pending")
            if offline_enabled:
                shutil.rmtree(location, ignore_errors=True)
                table.create(timetravel.with_commit_field(schema.storage_schema(logical)), parts,
                             timetravel.with_commit(stored, 0) if stored is not None else None)
                self._record_commit(fg_id, {"version": 0, "rows_inserted": stored.num_rows if stored else 0,
                                            "rows_updated": 0, "rows_deleted": 0}, "create")
            if online_enabled:
                if stored is not None:
                    self._online_write(project, new_row, stored, "append")
                self._set_online_state(fg_id, "ok", 0 if offline_enabled else None)
            self._record_validation(fg_id, checked, 0 if offline_enabled else None)
            if data is not None and offline_enabled:
                self._after_commit(project, name, version)
        except BaseException:
            with self.catalog.begin() as conn:
                conn.execute(C.feature_groups.delete().where(C.feature_groups.c.id == fg_id))
            if offline_enabled:
                table.delete()
            if online_enabled:
                self._online_drop_table(project, new_row)
            raise
        self._online_changed()
        return self.describe_group(project, name, version)

    @staticmethod
    def _validate_rows(data: pa.Table, pk: Sequence[str], event_time: str | None, mode: str) -> None:
        for c in pk:
            nulls = data.column(c).null_count
            if nulls:
                raise DataValidationError(
                    f"primary key column {c!r} has {nulls} null value(s); every row needs a key",
                    column=c,
                )
        if event_time is not None and data.column(event_time).null_count:
            raise DataValidationError(
                f"event_time column {event_time!r} has {data.column(event_time).null_count} null value(s)"
            )
        if mode == "upsert" and data.num_rows:
            keys = data.select(list(pk))
            distinct = keys.group_by(list(pk)).aggregate([]).num_rows
            if distinct != data.num_rows:
                raise DataValidationError(
                    f"{data.num_rows - distinct} row(s) repeat a primary key {list(pk)} in an "
                    f"upsert; keep one row per key (e.g. df.drop_duplicates({list(pk)!r}, keep='last'))",
                )

    def _lock(self, fg_id: int) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(fg_id, threading.Lock())

    def insert(
        self,
        project: str,
        name: str,
        version: int | None,
        data: pa.Table,
        *,
        mode: str = "append",
        online: bool | None = None,
        offline: bool | None = None,
        statistics: bool | None = None,
    ) -> dict[str, Any]:
        """Insert rows as one commit: ``append``, ``overwrite`` or ``upsert`` (merge on the key),
        into the offline store, the online store, or both (None: as the group is stored).

        An insert into both commits offline first (the source of truth), then writes online; if
        the online write fails, :class:`~cloudsdk.errors.OnlineSyncError` says so and the online
        table is rebuilt on the next online write (or by :meth:`sync_online`).

        Returns:
            ``{"version": commit version (None for an online-only write), "rows_inserted",
            "rows_updated", "rows_deleted", "online": {"rows_upserted", "rows_deleted"} | None}``.
        """
        if mode not in WRITE_MODES:
            raise InvalidArgumentError(f"mode must be one of {', '.join(WRITE_MODES)}, got {mode!r}")
        row = self._group_row(project, name, version)
        self._refuse_on_demand(row, "insert into")
        to_online, to_offline = _targets(row, online, offline)
        logical = schema.deserialize_schema(row.arrow_schema)
        pk = json.loads(row.primary_key)
        parts = json.loads(row.partition_by)
        data = schema.conform(data, logical, what=f"feature group {row.name!r} version {row.version}")
        self._validate_rows(data, pk, row.event_time, mode)
        checked = self._validate_before_insert(row, data)  # validation rules (store/validation.py)
        stored = schema.to_storage(data, logical)
        if to_online:
            self._online(project)  # an unreachable online store fails before anything is written
        with self._lock(row.id):
            # online storage may have been enabled or disabled since: decide on the current row
            row = self._group_row(project, row.name, row.version)
            to_online, to_offline = _targets(row, online, offline)
            if not to_offline:  # online only
                written = self._online_write(project, row, stored, mode)
                self._record_validation(row.id, checked, None)
                return {"version": None, "rows_inserted": stored.num_rows, "rows_updated": 0,
                        "rows_deleted": 0, "online": written}
            was = self._online_state(row.id)[0] if row.online_enabled else "ok"
            if row.online_enabled:  # set before the offline commit: a crash after it is detected
                self._set_online_state(row.id, "pending" if to_online else "behind", keep_commit=True)
            plain = stored
            stored = timetravel.stamp(OfflineTable(row.location), stored)  # the hidden _commit column
            result = OfflineTable(row.location).write(stored, mode, pk, parts)  # type: ignore[arg-type]
            self._record_commit(row.id, result, mode)
            self._record_validation(row.id, checked, result["version"])
            failed: BaseException | None = None
            try:
                result["online"] = (self._online_after_offline(project, row, plain, mode, result, was)
                                    if to_online else None)
            except BaseException as exc:  # the offline commit landed: statistics still follow it
                failed = exc
        self._after_commit(project, row.name, row.version, statistics)
        if failed is not None:
            raise failed
        return result

    def _record_commit(self, fg_id: int, result: Mapping[str, Any], mode: str) -> None:
        with self.catalog.begin() as conn:
            stamp = C.now()
            conn.execute(C.commits.insert().values(
                fg_id=fg_id, version=result["version"], mode=mode, committed_at=stamp,
                rows_inserted=result["rows_inserted"], rows_updated=result["rows_updated"],
                rows_deleted=result["rows_deleted"]))
            conn.execute(C.feature_groups.update().where(C.feature_groups.c.id == fg_id).values(updated=stamp))

    def delete_group(self, project: str, name: str, version: int) -> None:
        """Delete a feature group version, its data and its statistics."""
        row = self._group_row(project, name, version)
        with self.catalog.begin() as conn:
            conn.execute(C.feature_groups.delete().where(C.feature_groups.c.id == row.id))
        self._online_changed()
        if row.online_enabled:
            self._online_drop_table(project, row)
        if not (is_on_demand(row) or is_online_only(row)):  # these have no offline data
            OfflineTable(row.location).delete()

    def update_group(self, project: str, name: str, version: int, *, description: str | None = None,
                     feature_descriptions: Mapping[str, str] | None = None,
                     statistics_config: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Change a feature group's description, feature descriptions or statistics settings."""
        row = self._group_row(project, name, version)
        with self.catalog.begin() as conn:
            values: dict[str, Any] = {"updated": C.now()}
            if description is not None:
                values["description"] = description
            if statistics_config is not None:
                group_config(statistics_config, None)  # checked before it is stored
                values["statistics_config"] = C.dumps(dict(statistics_config))
            conn.execute(C.feature_groups.update().where(C.feature_groups.c.id == row.id).values(**values))
            for fname, text in (feature_descriptions or {}).items():
                done = conn.execute(C.features.update().where(
                    (C.features.c.fg_id == row.id) & (C.features.c.name == fname)).values(description=text))
                if not done.rowcount:
                    raise SchemaMismatchError(f"feature group {name!r} has no feature {fname!r}")
        return self.describe_group(project, name, version)

    # --- custom metadata ----------------------------------------------------------------

    def add_metadata(self, project: str, name: str, version: int | None, items: Mapping[str, str]) -> dict[str, str]:
        """Attach (or overwrite) custom metadata key/values; returns all metadata."""
        row = self._group_row(project, name, version)
        current = json.loads(row.custom_metadata)
        current.update(validate_metadata(items))
        with self.catalog.begin() as conn:
            conn.execute(C.feature_groups.update().where(C.feature_groups.c.id == row.id)
                         .values(custom_metadata=C.dumps(current), updated=C.now()))
        return current

    def get_metadata(self, project: str, name: str, version: int | None,
                     keys: Sequence[str] | None = None) -> dict[str, str]:
        """All custom metadata, or only ``keys`` (unknown keys are left out)."""
        current: dict[str, str] = json.loads(self._group_row(project, name, version).custom_metadata)
        if keys is None:
            return current
        keys = [keys] if isinstance(keys, str) else list(keys)
        return {k: current[k] for k in keys if k in current}

    def remove_metadata(self, project: str, name: str, version: int | None, keys: Sequence[str]) -> dict[str, str]:
        """Remove metadata keys; returns what is left."""
        keys = [keys] if isinstance(keys, str) else list(keys)
        row = self._group_row(project, name, version)
        current = json.loads(row.custom_metadata)
        for k in keys:
            current.pop(k, None)
        with self.catalog.begin() as conn:
            conn.execute(C.feature_groups.update().where(C.feature_groups.c.id == row.id)
                         .values(custom_metadata=C.dumps(current), updated=C.now()))
        return current

    # --- statistics ------------------------------------------------------------------------

    def _after_commit(self, project: str, name: str, version: int, enabled: bool | None = None) -> None:
        """Statistics of a new commit. The commit has landed: a failure here is logged, not raised."""
        row = self._group_row(project, name, version)
        if is_online_only(row):
            return
        config = json.loads(row.statistics_config)
        if not (config.get("enabled", True) if enabled is None else enabled):
            return
        try:
            self._group_statistics(project, name, version, None, None, on_insert=True)
        except Exception:
            log.warning("statistics of %s version %d failed; the data was written. "
                        "Recompute them with fg.compute_statistics()", name, version, exc_info=True)

    def compute_statistics(self, project: str, name: str, version: int | None,
                           columns: Sequence[str] | None = None,
                           options: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Compute and store statistics of the latest commit: the group's statistics configuration
        with ``options`` laid over it (see :mod:`cloudsdk.store.stats_extra`)."""
        return self._group_statistics(project, name, version, columns, options)

    def get_statistics(self, project: str, name: str, version: int | None,
                       commit_version: int | None = None) -> dict[str, Any] | None:
        """The latest stored statistics (or those of one commit); None if none were computed."""
        row = self._group_row(project, name, version)
        query = sa.select(C.statistics.c.content).where(C.statistics.c.fg_id == row.id)
        if commit_version is not None:
            query = query.where(C.statistics.c.commit_version == commit_version)
        with self.catalog.read() as conn:
            found = conn.execute(query.order_by(C.statistics.c.id.desc()).limit(1)).scalar()
        return json.loads(found) if found else None

    # --- reading ---------------------------------------------------------------------------

    def read_group(self, project: str, name: str, version: int | None,
                   columns: Sequence[str] | None = None, as_of: Any = None) -> pa.Table:
        """A feature group's latest snapshot (or the one of commit / time ``as_of``) as Arrow,
        in its own column order and types."""
        row = self._group_row(project, name, version)
        logical = schema.deserialize_schema(row.arrow_schema)
        cols = list(columns) if columns is not None else logical.names
        unknown = [c for c in cols if c not in logical.names]
        if unknown:
            raise SchemaMismatchError(f"feature group {name!r} has no feature(s) {unknown}")
        if is_on_demand(row) and as_of is None:
            return self._read_on_demand(project, row, cols if columns is not None else None)
        table = self._dataset_as_of(row, as_of)[0].to_table(columns=cols)
        return schema.from_storage(table, logical)

    def preview_group(self, project: str, name: str, version: int | None, n: int = 20) -> dict[str, Any]:
        """The first ``n`` rows (at most 100) of a feature group's latest snapshot, as JSON-able
        ``{"columns": [...], "rows": [[...], ...]}`` (for the web UI: no Flight in a browser)."""
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= 100:
            raise InvalidArgumentError(f"n must be an integer from 1 to 100, got {n!r}")
        row = self._group_row(project, name, version)
        logical = schema.deserialize_schema(row.arrow_schema)
        if is_on_demand(row):
            table = self._read_on_demand(project, row).slice(0, n)
        elif is_online_only(row):
            table = self.read_online(project, row.name, row.version).slice(0, n)
        else:
            table = schema.from_storage(self._dataset_as_of(row, None)[0].head(n, columns=logical.names), logical)
        columns = [table.column(i).to_pylist() for i in range(table.num_columns)]
        return {"columns": table.column_names, "rows": [list(r) for r in zip(*columns, strict=True)]}

    def _datasets(self, project: str, keys: Iterable[tuple[str, int]],
                  commits: dict[tuple[str, int], int | None] | None = None,
                  online: bool = False) -> dict[tuple[str, int], Any]:
        if online:
            return self._online_sources(project, keys)
        out = {}
        for name, version in keys:
            row = self._group_row(project, name, version)
            need_offline(row)
            if is_on_demand(row):  # no commits: the external query's rows now
                if commits is not None:
                    commits[(name, version)] = None
                out[(name, version)] = (self._read_on_demand(project, row), schema.deserialize_schema(row.arrow_schema))
                continue
            dataset, commit = OfflineTable(row.location).snapshot()
            if commits is not None:
                commits[(name, version)] = commit
            out[(name, version)] = (dataset, schema.deserialize_schema(row.arrow_schema))
        return out

    def plan(self, project: str, spec: Mapping[str, Any]) -> tuple[str, list[tuple[str, planner.GroupInfo]]]:
        """The SQL a query spec runs, with the source group of each output column."""
        infos = {(g.name, g.version): g for g in self._group_infos(project)}
        return planner.to_sql(self.pin_as_of(project, spec), infos)

    def run_query(self, project: str, spec: Mapping[str, Any], *, online: bool = False) -> pa.Table:
        """Execute a query spec (select/join/filter over feature groups); ``online=True`` reads
        the groups' online tables (full scans) instead of their offline snapshots."""
        return self.run_query_pinned(project, spec, online=online)[0]

    def run_query_pinned(self, project: str, spec: Mapping[str, Any], *,
                         online: bool = False) -> tuple[pa.Table, list[dict[str, Any]]]:
        """Execute a query spec; also returns the feature groups it read, each with the offline
        commit (Delta version) it was read at: ``[{"name", "version", "commit"}]``."""
        if online and any(n["fg"].get("as_of") is not None or n["fg"].get("commit") is not None
                          for n in timetravel.spec_nodes(spec)):
            raise InvalidArgumentError("the online store keeps only the latest values: as_of needs online=False")
        spec = self.pin_as_of(project, spec)  # groups read as_of a commit or time (timetravel)
        sql_text, outputs = self.plan(project, spec)
        keys = sorted(set(planner.tables_of(spec)))
        commits: dict[tuple[str, int], int | None] = {}
        sources = self._datasets(project, keys, commits, online=online)
        named = {f"{n}_{v}": sources[(n, v)][0] for n, v in keys}
        table = sqlbox.execute(sql_text, {**named, **self.pinned_sources(project, spec)})
        fields = []
        for (col, g), arr_field in zip(outputs, table.schema, strict=True):
            logical = sources[(g.name, g.version)][1]
            fields.append(pa.field(col, logical.field(col).type) if col in logical.names else arr_field)
        target = pa.schema(fields)
        table = table if table.schema.equals(target) else table.cast(target, safe=False)
        read = self.read_commits(spec, commits)
        return schema.with_pandas_metadata(table, [s for _, s in sources.values()]), read

    def feature_query(self, project: str, features: Sequence[str],
                      featuregroups_version_dict: Mapping[str, int] | None = None,
                      join_key: str | Sequence[str] | None = None) -> dict[str, Any]:
        """The query spec the planner makes for a list of feature names."""
        picks, keys, final, notes = planner.resolve_features(
            features, self._group_infos(project), featuregroups_version_dict, join_key)
        return planner.features_query_spec(picks, keys, final, notes)

    def get_features(self, project: str, features: Sequence[str],
                     featuregroups_version_dict: Mapping[str, int] | None = None,
                     join_key: str | Sequence[str] | None = None, *, online: bool = False) -> pa.Table:
        """Features by name, joined across feature groups by the query planner (``online=True``:
        over the online tables)."""
        spec = self.feature_query(project, features, featuregroups_version_dict, join_key)
        return self.run_query(project, spec, online=online)

    def _sql_table_row(self, project: str, table_name: str) -> Any:
        """The feature group a sql() table name means: ``<name>_<version>`` or ``<name>`` (latest)."""
        match = _TABLE_RE.match(table_name)
        row = None
        if match and self._group_rows(project, match["name"]):
            rows = [r for r in self._group_rows(project, match["name"]) if r.version == int(match["version"])]
            row = rows[0] if rows else None
        if row is None and self._group_rows(project, table_name):
            row = self._group_row(project, table_name, None)
        if row is None:
            raise FeatureGroupNotFoundError(
                f"sql(): no feature group table {table_name!r} in project {project!r}; "
                "tables are named <featuregroup>_<version>, e.g. teams_features_1",
                table=table_name,
            )
        return row

    def sql(self, project: str, query: str, *, dialect: sqlbox.Dialect = "auto", as_of: Any = None,
            online: bool = False) -> pa.Table:
        """Run a read-only SELECT over the project's feature groups (tables ``<name>_<version>``),
        all of them at commit / time ``as_of`` when given (see docs/time-travel.md); with
        ``online=True`` over their online tables, primary-key filters becoming key lookups."""
        if online:
            if as_of is not None:
                raise InvalidArgumentError("the online store keeps only the latest values: as_of needs online=False")
            return self._sql_online(project, query, dialect, lambda t: self._sql_table_row(project, t))

        def resolve(names: Iterable[str]) -> dict[str, Any]:
            out = {}
            for table_name in names:
                row = self._sql_table_row(project, table_name)
                need_offline(row)
                out[table_name] = (self._read_on_demand(project, row) if is_on_demand(row)
                                   else row)  # timetravel.run_sql opens the row's Delta table
            return out

        return timetravel.run_sql(query, resolve, dialect=dialect, as_of=as_of)

    def history(self, project: str, name: str, version: int | None, limit: int | None = None) -> list[dict[str, Any]]:
        """The offline commits of a feature group, newest first, with their row counts."""
        row = self._group_row(project, name, version)
        if is_on_demand(row) or is_online_only(row):  # nothing is written offline: no commits
            return []
        with self.catalog.read() as conn:
            recorded = {c.version: c for c in conn.execute(sa.select(C.commits).where(C.commits.c.fg_id == row.id))}
        out = []
        for h in OfflineTable(row.location).history(limit):
            c = recorded.get(h.get("version"))
            metrics = h.get("operationMetrics", {})
            out.append({
                "commit_id": h.get("version"),  # the id time travel takes: as_of=<commit_id>
                "version": h.get("version"),
                "timestamp": h.get("timestamp"),
                "committed_at": timetravel.Commit(0, int(h.get("timestamp") or 0), "").time.isoformat(),
                "operation": h.get("operation"),
                "mode": c.mode if c else None,
                "rows_inserted": c.rows_inserted if c else metrics.get("num_added_rows"),
                "rows_updated": c.rows_updated if c else metrics.get("num_target_rows_updated"),
                "rows_deleted": c.rows_deleted if c else metrics.get("num_target_rows_deleted"),
            })
        return out


def _targets(row: Any, online: bool | None, offline: bool | None) -> tuple[bool, bool]:
    """Which stores an insert writes: (online, offline); None means as the group is stored."""
    to_online = bool(row.online_enabled) if online is None else bool(online)
    to_offline = bool(row.offline_enabled) if offline is None else bool(offline)
    where = f"feature group {row.name!r} version {row.version}"
    if to_online and not row.online_enabled:
        raise InvalidArgumentError(
            f"{where} is not stored online; insert with online=False, or enable online storage "
            "first (fg.enable_online() / featurestore.enable_featuregroup_online)", featuregroup=row.name)
    if to_offline and not row.offline_enabled:
        raise InvalidArgumentError(f"{where} is stored online only; insert with offline=False",
                                   featuregroup=row.name)
    if not (to_online or to_offline):
        raise InvalidArgumentError("online=False and offline=False: the insert would write nothing")
    return to_online, to_offline


def _as_list(value: str | Sequence[str] | None) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return list(value)


__all__ = ["DEFAULT_PROJECT", "FeatureStoreService"]
