"""Statistics operations of :class:`cloudsdk.store.store.FeatureStoreService`: computing and
storing a feature group's (per commit) or a training dataset's statistics as a configuration
says (see :mod:`cloudsdk.store.stats_extra`)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from cloudsdk.errors import SchemaMismatchError
from cloudsdk.store import catalog as C
from cloudsdk.store import schema, stats_extra
from cloudsdk.store.offline import OfflineTable
from cloudsdk.store.ondemand import is_on_demand


def group_config(stored: str | Mapping[str, Any] | None, options: Mapping[str, Any] | None) -> dict[str, Any]:
    """A group's statistics configuration (its stored JSON) with ``options`` laid over it, checked."""
    base = json.loads(stored) if isinstance(stored, str) else dict(stored or {})
    merged = {k: v for k, v in base.items() if k in stats_extra.DEFAULT_CONFIG}
    merged.update({k: v for k, v in dict(options or {}).items() if v is not None or k == "columns"})
    return stats_extra.normalise_config(merged)


def _check_columns(columns: Sequence[str] | None, logical: pa.Schema) -> None:
    unknown = [c for c in columns or () if c not in logical.names]
    if unknown:
        raise SchemaMismatchError(f"statistics asked for unknown features {unknown}")


class StatisticsMixin:
    """Richer statistics of feature groups and training datasets."""

    catalog: C.Catalog

    if TYPE_CHECKING:
        def _group_row(self, project: str, name: str, version: int | None) -> Any: ...
        def _td_row(self, project: str, name: str, version: int | None) -> Any: ...
        def _read_on_demand(self, project: str, row: Any, columns: Sequence[str] | None = None) -> pa.Table: ...
        def read_training_dataset(self, project: str, name: str, version: int | None = None,
                                  split: str | None = None) -> pa.Table: ...

    def _group_statistics(self, project: str, name: str, version: int | None,
                          columns: Sequence[str] | None, options: Mapping[str, Any] | None,
                          *, on_insert: bool = False) -> dict[str, Any]:
        """Compute and store the statistics of a group's latest commit (an on-demand group: of what
        its query returns now, stored with no commit). On insert, an empty group gets descriptive
        statistics and non-numeric configured columns are left out of correlation/clusters; on
        demand both are errors. Everything is computed before anything is
        stored, so a failure stores nothing."""
        row = self._group_row(project, name, version)
        config = group_config(row.statistics_config, options)
        logical = schema.deserialize_schema(row.arrow_schema)
        named = list(columns) if columns else config["columns"]
        _check_columns(named, logical)
        commit: int | None
        from cloudsdk.store.online_service import need_offline

        need_offline(row)
        if is_on_demand(row):
            data: Any = self._read_on_demand(project, row)
            commit = None
        else:
            table = OfflineTable(row.location)
            commit = table.version()
            data = table.dataset(commit)
        content = stats_extra.compute(data, data.schema, config, named, all_columns=logical.names,
                                      empty_ok=on_insert, strict=not on_insert)
        content["commit_version"] = commit
        stamp = C.now()
        content["computed_at"] = stamp.isoformat()
        with self.catalog.begin() as conn:
            conn.execute(C.statistics.insert().values(
                fg_id=row.id, commit_version=commit, computed_at=stamp, content=C.dumps(content, sort_keys=False)))
        return content

    def compute_training_dataset_statistics(self, project: str, name: str, version: int | None = None,
                                            columns: Sequence[str] | None = None,
                                            options: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Compute and store a training dataset's statistics now (descriptive, correlation and
        histograms by default; ``options`` as :func:`cloudsdk.store.stats_extra.normalise_config`)."""
        r = self._td_row(project, name, version)
        config = group_config(None, options)
        logical = schema.deserialize_schema(r.arrow_schema)
        named = list(columns) if columns else config["columns"]
        _check_columns(named, logical)
        table = self.read_training_dataset(project, name, r.version)
        content = stats_extra.compute(table, table.schema, config, named, all_columns=logical.names)
        stamp = C.now()
        content["computed_at"] = stamp.isoformat()
        with self.catalog.begin() as conn:
            conn.execute(C.statistics.insert().values(td_id=r.id, computed_at=stamp,
                                                      content=C.dumps(content, sort_keys=False)))
        return content
