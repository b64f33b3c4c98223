"""Point-in-time correct queries: a query spec (``get_features`` or ``select().join()``) read as
of every row of a label (entity) table, with the engine of :mod:`cloudsdk.store.pit`.

For each feature group of the spec (the query and its joins): its entity keys are its
primary-key columns other than its event time, matched to the label columns of the same
names; its event time is the group's ``event_time``; ties (same key, same event time) go to
the row written by the later commit (the hidden ``_commit`` column); groups read ``as_of`` a
commit use that commit's history. The output is the label table (every row, in order) with
the selected features appended, in each feature's logical type.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from typing import Any

import pyarrow as pa

from cloudsdk.errors import InvalidArgumentError, UnsupportedError
from cloudsdk.store import schema
from cloudsdk.store.offline import OfflineTable
from cloudsdk.store.ondemand import is_on_demand
from cloudsdk.store.pit import PitGroup, point_in_time_join
from cloudsdk.store.timetravel import COMMIT, dataset_at, has_commit_column, spec_nodes


def _ttl_for(ttl: Any, name: str, table: str) -> dt.timedelta | None:
    """``ttl``: None, seconds (or a timedelta) for every group, or ``{group name or <name>_<version>: seconds}``."""
    if ttl is None:
        return None
    if isinstance(ttl, Mapping):
        unknown = [k for k in ttl if not isinstance(k, str)]
        if unknown:
            raise InvalidArgumentError(f"ttl keys must be feature group names, got {unknown!r}")
        value = ttl.get(table, ttl.get(name))
        return None if value is None else _ttl_for(value, name, table)
    if isinstance(ttl, dt.timedelta):
        return ttl
    if isinstance(ttl, bool) or not isinstance(ttl, int | float) or ttl < 0:
        raise InvalidArgumentError(
            f"ttl must be seconds or a datetime.timedelta (or a dict of them by feature group), got {ttl!r}")
    return dt.timedelta(seconds=float(ttl))


class PointInTimeMixin:
    """``run_query_pit`` of :class:`~cloudsdk.store.FeatureStoreService`."""

    def _group_row(self, project: str, name: str, version: int | None) -> Any:
        raise NotImplementedError

    def pin_as_of(self, project: str, spec: Mapping[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    def _read_on_demand(self, project: str, row: Any, columns: Any = None) -> pa.Table:
        raise NotImplementedError

    def run_query_pit(self, project: str, spec: Mapping[str, Any], entity: pa.Table, event_time: str, *,
                      ttl: Any = None) -> pa.Table:
        """The query's features as of each row of ``entity`` (see :meth:`run_query_pit_pinned`)."""
        return self.run_query_pit_pinned(project, spec, entity, event_time, ttl=ttl)[0]

    def run_query_pit_pinned(self, project: str, spec: Mapping[str, Any], entity: pa.Table, event_time: str, *,
                             ttl: Any = None) -> tuple[pa.Table, list[dict[str, Any]]]:
        """The query's features as of each row of ``entity`` (its time column ``event_time``),
        and the feature groups read with the commit each was read at (None: on-demand).

        Args:
            spec: a query spec (see :mod:`cloudsdk.store.planner`) without filters.
            entity: the label rows: the groups' key columns and ``event_time``.
            ttl: look back at most this long (seconds or a timedelta; or a dict by group name).

        Raises:
            InvalidArgumentError: a missing key or time column, a group without an event
                time, wrongly typed times; UnsupportedError: a spec with filters.
        """
        if not isinstance(entity, pa.Table):
            raise InvalidArgumentError("entity_df must be a table of label rows")
        if not isinstance(event_time, str) or event_time not in entity.column_names:
            raise InvalidArgumentError(
                f"entity_df has no event-time column {event_time!r}; its columns: {entity.column_names}")
        spec = self.pin_as_of(project, spec)
        groups: list[PitGroup] = []
        read: list[dict[str, Any]] = []
        logical_of: dict[str, pa.Field] = {}
        taken = set(entity.column_names)
        for node in spec_nodes(spec):
            if node.get("filter") is not None:
                raise UnsupportedError(
                    "filters cannot be combined with entity_df (a point-in-time read): filter the "
                    "label rows instead, or the result")
            fg = node["fg"]
            row = self._group_row(project, fg["name"], int(fg["version"]))
            table = f"{row.name}_{row.version}"
            if not row.event_time:
                raise InvalidArgumentError(
                    f"feature group {table!r} has no event_time column, so it cannot be read point in "
                    "time; create it with event_time=... (a timestamp column)")
            logical = schema.deserialize_schema(row.arrow_schema)
            keys = [k for k in json.loads(row.primary_key) if k != row.event_time]
            if not keys:
                raise InvalidArgumentError(f"feature group {table!r} has no entity key besides its event time")
            missing = [k for k in keys if k not in entity.column_names]
            if missing:
                raise InvalidArgumentError(
                    f"entity_df lacks the key column(s) {missing} of feature group {table!r}; "
                    f"its columns: {entity.column_names}")
            wanted = list(logical.names) if node.get("features") is None else list(node["features"])
            features = [f for f in wanted if f not in keys and not (f == row.event_time and f in taken)]
            for f in features:
                if f not in logical.names:
                    raise InvalidArgumentError(f"feature group {table!r} has no feature {f!r}")
                logical_of[f] = logical.field(f)
            taken.update(features)
            order = None
            read_at: int | None = None
            if is_on_demand(row):
                data: Any = self._read_on_demand(project, row)
            else:
                from cloudsdk.store.online_service import need_offline

                need_offline(row)
                commit = fg.get("commit")
                data, read_at = dataset_at(OfflineTable(row.location), None if commit is None else int(commit),
                                           group=table)
                order = COMMIT if has_commit_column(data) else None
            read.append({"name": row.name, "version": row.version, "commit": read_at})
            groups.append(PitGroup(table, data, keys=tuple(keys), event_time=row.event_time,
                                   features=tuple(features), ttl=_ttl_for(ttl, row.name, table), order=order))
        out = point_in_time_join(entity, event_time, groups)
        fields = [logical_of.get(name, out.schema.field(name)) if name not in entity.column_names
                  else out.schema.field(name) for name in out.column_names]
        target = pa.schema(fields)
        return (out if out.schema.equals(target) else out.cast(target, safe=False)), read

    def create_training_dataset_pit(self, project: str, name: str, version: int | None, entity: pa.Table,
                                    spec: Mapping[str, Any], event_time: str, *, ttl: Any = None,
                                    **options: Any) -> dict[str, Any]:
        """Materialise a point-in-time read of a query for the label rows ``entity`` as a training
        dataset. Provenance: the query pinned to the commit each group was read at, the event-time
        column, ttl, and the label rows' count and SHA-256, so the same labels re-create the
        same rows (``spec`` with ``commit`` pins reads the same history)."""
        import hashlib

        table, groups = self.run_query_pit_pinned(project, spec, entity, event_time, ttl=ttl)
        pinned = self.pin_as_of(project, spec)
        commits = {(g["name"], g["version"]): g["commit"] for g in groups}
        for node in spec_nodes(pinned):
            fg = node["fg"]
            commit = commits.get((fg["name"], int(fg["version"])))
            if fg.get("commit") is None and commit is not None:
                fg["commit"] = commit
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, entity.schema) as writer:
            writer.write_table(entity)
        provenance = {"query": pinned, "feature_groups": groups, "point_in_time": {
            "event_time": event_time, "ttl": ttl, "entity_rows": entity.num_rows,
            "entity_sha256": hashlib.sha256(sink.getvalue().to_pybytes()).hexdigest()}}
        service: Any = self  # the FeatureStoreService, whose TrainingDatasetsMixin writes datasets
        result: dict[str, Any] = service.create_training_dataset(project, name, version, table,
                                                                 provenance=provenance, **options)
        return result
