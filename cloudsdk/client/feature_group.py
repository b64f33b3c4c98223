"""Feature groups and features of the object API."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from cloudsdk._asof import encode_as_of
from cloudsdk._names import validate_metadata
from cloudsdk.client.frames import from_arrow, to_arrow
from cloudsdk.client.query import Filter, Query
from cloudsdk.client.validation import ValidationReport
from cloudsdk.errors import (
    FeatureGroupNotFoundError,
    FeatureNotFoundError,
    InvalidArgumentError,
    NotFoundError,
)

if TYPE_CHECKING:
    from cloudsdk.client.feature_store import FeatureStore


@dataclass(frozen=True)
class Feature:
    """A feature (column) of a feature group; compare it to build filters."""

    name: str
    type: str
    description: str = ""
    primary: bool = False
    partition: bool = False
    featuregroup: str | None = None
    version: int | None = None

    def _cmp(self, cmp: str, value: Any) -> Filter:
        fg = {"name": self.featuregroup, "version": self.version} if self.featuregroup else None
        return Filter({"feature": {"name": self.name, "fg": fg}, "cmp": cmp, "value": value})

    def __eq__(self, value: Any) -> Filter:  # type: ignore[override]
        return self._cmp("==", value)

    def __ne__(self, value: Any) -> Filter:  # type: ignore[override]
        return self._cmp("!=", value)

    def __lt__(self, value: Any) -> Filter:
        return self._cmp("<", value)

    def __le__(self, value: Any) -> Filter:
        return self._cmp("<=", value)

    def __gt__(self, value: Any) -> Filter:
        return self._cmp(">", value)

    def __ge__(self, value: Any) -> Filter:
        return self._cmp(">=", value)

    def __hash__(self) -> int:
        return hash((self.featuregroup, self.version, self.name))

    def isin(self, values: Sequence[Any]) -> Filter:
        """Rows whose value is one of ``values``."""
        return self._cmp("isin", list(values))

    def isnull(self) -> Filter:
        """Rows where the feature is null."""
        return self._cmp("is_null", None)

    def notnull(self) -> Filter:
        """Rows where the feature is not null."""
        return self._cmp("not_null", None)

    def like(self, pattern: str) -> Filter:
        """Rows whose (string) value matches an SQL LIKE pattern."""
        return self._cmp("like", pattern)


class Statistics:
    """Descriptive statistics of a feature group commit or a training dataset."""

    def __init__(self, content: Mapping[str, Any]) -> None:
        self.content = dict(content)
        self.row_count: int = int(self.content.get("row_count", 0))
        self.commit_version: int | None = self.content.get("commit_version")
        self.features: dict[str, dict[str, Any]] = dict(self.content.get("features", {}))

    def to_pandas(self) -> Any:
        """One row per feature: type, count, nulls, mean, stddev, min, max, approx_distinct."""
        import pandas as pd

        cols = ["type", "count", "nulls", "mean", "stddev", "min", "max", "approx_distinct"]
        frame = pd.DataFrame.from_dict(self.features, orient="index")
        return frame.reindex(columns=cols)

    def to_dict(self) -> dict[str, Any]:
        """The statistics as a dict."""
        return dict(self.content)

    def __getitem__(self, feature: str) -> dict[str, Any]:
        return self.features[feature]

    def __repr__(self) -> str:
        return f"Statistics(rows={self.row_count}, commit={self.commit_version}, features={list(self.features)})"

    def _repr_html_(self) -> str:
        return str(self.to_pandas()._repr_html_())

    def correlation(self) -> Any:
        """The correlation matrix as a pandas DataFrame (features x features).

        Raises:
            NotFoundError: the statistics were computed without feature correlation.
        """
        import pandas as pd

        corr = self.content.get("correlation")
        if not corr:
            raise NotFoundError("these statistics have no correlation: compute them with feature_correlation=True")
        return pd.DataFrame(corr["matrix"], index=corr["features"], columns=corr["features"], dtype="float64")

    def histogram(self, feature: str) -> dict[str, Any]:
        """A feature's histogram: ``{"kind": "numeric", "edges", "counts"}`` (``len(edges) ==
        num_bins + 1``) or ``{"kind": "categorical", "values", "counts", "truncated"}`` (top values).

        Raises:
            NotFoundError: no histograms were computed. FeatureNotFoundError: none of ``feature``.
        """
        hists = self.content.get("histograms")
        if not hists:
            raise NotFoundError("these statistics have no histograms: compute them with feature_histograms=True")
        if feature not in hists:
            raise FeatureNotFoundError(f"no histogram of {feature!r}; there are histograms of {list(hists)}")
        return dict(hists[feature])

    def clusters(self) -> dict[str, Any]:
        """The k-means cluster analysis: ``num_clusters``, ``features``, ``centroids`` (original
        units), ``sizes``, ``inertia`` (standardised units) and a 2-D ``projection`` for plotting.

        Raises:
            NotFoundError: the statistics were computed without cluster analysis.
        """
        found = self.content.get("clusters")
        if not found:
            raise NotFoundError("these statistics have no cluster analysis: compute them with cluster_analysis=True")
        return dict(found)


class FeatureGroup:
    """A versioned, documented group of features stored offline as a Delta table.

    Get one with ``fs.get_feature_group(name)`` or ``fs.create_feature_group(...)``.
    Features are available as attributes for filters: ``fg.team_budget > 1e6``.
    """

    def __init__(self, store: FeatureStore, meta: Mapping[str, Any] | None = None, **pending: Any) -> None:
        self._store = store
        self._meta: dict[str, Any] = dict(meta or {})
        self._pending = pending  # options of a group created by save()/insert()

    def _refresh(self, meta: Mapping[str, Any]) -> None:
        self._meta = dict(meta)
        self._pending = {}

    @property
    def saved(self) -> bool:
        """Whether the feature group exists in the store (False until save() or insert())."""
        return bool(self._meta)

    def _need_saved(self) -> None:
        if self._pending.get("deleted"):
            raise FeatureGroupNotFoundError(
                f"feature group {self.name!r} version {self.version} was deleted", featuregroup=self.name
            )
        if not self.saved:
            raise InvalidArgumentError(
                f"feature group {self.name!r} is not saved yet: call fg.save(df) first"
            )

    @property
    def name(self) -> str:
        """The feature group's name."""
        return str(self._meta.get("name") or self._pending["name"])

    @property
    def version(self) -> int | None:
        """The version number."""
        return self._meta.get("version") or self._pending.get("version")

    @property
    def description(self) -> str:
        """The description."""
        return str(self._meta.get("description", self._pending.get("description", "")))

    @property
    def primary_key(self) -> list[str]:
        """The primary-key columns."""
        return list(self._meta.get("primary_key") or self._pending.get("primary_key") or [])

    @property
    def partition_by(self) -> list[str]:
        """The partition columns."""
        return list(self._meta.get("partition_by") or [])

    @property
    def event_time(self) -> str | None:
        """The event-time column, if any."""
        return self._meta.get("event_time") or self._pending.get("event_time")

    @property
    def online_enabled(self) -> bool:
        """Whether the group keeps its latest row per primary key in the online store."""
        if not self._meta:
            return bool(self._pending.get("online_enabled", False))
        return bool(self._meta.get("online_enabled", False))

    @property
    def offline_enabled(self) -> bool:
        """Whether the group keeps its rows in the offline (Delta) table (False: online only)."""
        if not self._meta:
            return bool(self._pending.get("offline_enabled", True))
        return bool(self._meta.get("offline_enabled", True))

    @property
    def location(self) -> str:
        """Where the offline Delta table lives."""
        return str(self._meta.get("location", ""))

    @property
    def table_name(self) -> str:
        """The name of this group in SQL: ``<name>_<version>``."""
        return f"{self.name}_{self.version}"

    @property
    def features(self) -> list[Feature]:
        """The features, in column order."""
        return [Feature(**f, featuregroup=self.name, version=self.version) for f in self._meta.get("features", [])]

    @property
    def schema(self) -> pa.Schema:
        """The Arrow schema of the group."""
        import base64

        self._need_saved()
        return pa.ipc.read_schema(pa.py_buffer(base64.b64decode(self._meta["arrow_schema"])))

    def get_feature(self, name: str) -> Feature:
        """The feature called ``name``."""
        for f in self.features:
            if f.name == name:
                return f
        raise FeatureNotFoundError(
            f"feature group {self.name!r} version {self.version} has no feature {name!r}"
        )

    def __getattr__(self, name: str) -> Feature:
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self.get_feature(name)
        except FeatureNotFoundError:
            raise AttributeError(f"{type(self).__name__} has no attribute or feature {name!r}") from None

    def __getitem__(self, name: str) -> Feature:
        return self.get_feature(name)

    # --- data ------------------------------------------------------------------------

    def save(self, data: Any) -> FeatureGroup:
        """Create the group in the store from ``data`` (first commit)."""
        self._store._check_writable()
        if self._pending.get("deleted"):
            self._need_saved()
        if self.saved:
            raise InvalidArgumentError(f"feature group {self.name!r} is already saved; use insert()")
        opts = dict(self._pending)
        name, version = opts.pop("name"), opts.pop("version", None)
        jobs = opts.pop("jobs", None)  # recorded once the group exists (store/registry.py)
        meta = self._store._backend.create_group(self._store.project, name, version, to_arrow(data), **opts)
        self._refresh(meta)
        if jobs:
            self.set_jobs(jobs)
        return self

    def insert(self, data: Any, mode: str = "append", *, online: bool | None = None, offline: bool | None = None,
               statistics: bool | None = None) -> dict[str, Any]:
        """Write rows as one commit.

        Args:
            data: pandas, polars or pyarrow dataframe with the group's columns.
            mode: "append", "overwrite" or "upsert" (merge on the primary key).
            online: write the online store (None: if the group is stored online; True on a
                group that is not raises InvalidArgumentError).
            offline: write the offline table (None: if the group is stored offline, i.e. not
                an online-only group; False: the online store only).
            statistics: compute statistics after the commit (default: the group's setting).

        Returns:
            The commit: ``{"version", "rows_inserted", "rows_updated", "rows_deleted",
            "online"}``, ``"online"`` being ``{"rows_upserted", "rows_deleted"}`` or None
            (``"version"`` is None after an online-only write).

        Raises:
            OnlineSyncError: the offline commit landed but the online write failed (repaired
            by the next online write, or by :meth:`sync_online`).
        """
        self._store._check_writable()
        if not self.saved:
            table = to_arrow(data)
            self.save(table)
            return {"version": 0, "rows_inserted": table.num_rows, "rows_updated": 0, "rows_deleted": 0}
        result = self._store._backend.insert(
            self._store.project, self.name, self.version, to_arrow(data), mode=mode,
            online=online, offline=offline, statistics=statistics,
        )
        return result

    def read(self, dataframe_type: str = "pandas", *, online: bool = False, as_of: Any = None) -> Any:
        """All rows of the latest commit (or as of a commit id / time), as ``dataframe_type``.

        Args:
            online: read the online table instead (the latest row per primary key; a full
                scan: look entities up with ``fs.get_feature_vector``).
            as_of: a commit id (``commit_details()[i]["commit_id"]``) or a time (datetime, pandas
                Timestamp, ISO-8601 string; naive = UTC): the group as the latest commit at or
                before it left it. See docs/time-travel.md.

        Raises:
            CommitNotFoundError: no such commit, a time before the first commit, or vacuumed.
            InvalidArgumentError: a time in the future or a wrong type.
        """
        self._need_saved()
        if online:
            if as_of is not None:
                raise InvalidArgumentError("the online store holds only the latest values: as_of needs online=False")
            return from_arrow(self._store._backend.read_online(self._store.project, self.name, self.version),
                              dataframe_type)
        table = self._store._backend.read_group(self._store.project, self.name, self.version,
                                                as_of=encode_as_of(as_of))
        return from_arrow(table, dataframe_type)

    def show(self, n: int = 10, *, online: bool = False) -> Any:
        """The first ``n`` rows as pandas."""
        return self.read("pyarrow", online=online).slice(0, n).to_pandas()

    # --- the online store (docs/online.md) -----------------------------------------------------

    def enable_online(self) -> FeatureGroup:
        """Keep this group in the online store from now on: creates its online table and fills
        it with the latest row per primary key of the offline table."""
        self._store._check_writable()
        self._need_saved()
        self._refresh(self._store._backend.enable_online(self._store.project, self.name, self.version))
        return self

    def disable_online(self) -> FeatureGroup:
        """Stop serving this group online: drops its online table (the offline table stays)."""
        self._store._check_writable()
        self._need_saved()
        self._refresh(self._store._backend.disable_online(self._store.project, self.name, self.version))
        return self

    def sync_online(self) -> dict[str, Any]:
        """Bring the online table up to the latest offline commit (e.g. after an
        OnlineSyncError): ``{"commit", "upserted", "deleted", "online_rows"}``."""
        self._store._check_writable()
        self._need_saved()
        return self._store._backend.sync_online(self._store.project, self.name, self.version)

    def check_online_consistency(self, limit: int = 10) -> dict[str, Any]:
        """Compare the online table with the offline table's latest row per key.

        Returns:
            ``{"featuregroup", "version", "consistent", "offline_commit", "synced_commit",
            "pending", "offline_rows", "online_rows", "missing_online", "extra_online",
            "different", "examples"}``; ``examples`` holds up to ``limit`` keys of each kind.
        """
        self._need_saved()
        return self._store._backend.check_online_consistency(self._store.project, self.name, self.version,
                                                              limit=limit)

    def select(self, features: Sequence[str | Feature]) -> Query:
        """A query of some features of this group (join it, filter it, read it)."""
        self._need_saved()
        names = [f.name if isinstance(f, Feature) else f for f in features]
        for n in names:
            self.get_feature(n)
        return Query(self, names)

    def select_all(self) -> Query:
        """A query of every feature of this group."""
        self._need_saved()
        return Query(self, None)

    def filter(self, condition: Filter) -> Query:
        """All features, rows that satisfy ``condition``."""
        return self.select_all().filter(condition)

    def delete(self, keys: Any = None) -> dict[str, Any] | None:
        """Delete rows by primary key (``keys``: a dataframe holding the key columns), as one
        commit; returns it. Without ``keys``: delete this feature group version with its data.
        """
        self._store._check_writable()
        self._need_saved()
        if keys is not None:
            return self._store._backend.delete_rows(self._store.project, self.name, self.version, to_arrow(keys))
        self._store._backend.delete_group(self._store.project, self.name, int(self.version or 0))
        self._meta, self._pending = {}, {"name": self.name, "version": self.version, "deleted": True}
        return None

    # --- metadata and statistics ----------------------------------------------------------

    def update_description(self, description: str) -> FeatureGroup:
        """Change the group's description."""
        self._store._check_writable()
        self._refresh(self._store._backend.update_group(self._store.project, self.name, int(self.version or 0),
                                                        description=description))
        return self

    def update_feature_description(self, feature: str, description: str) -> FeatureGroup:
        """Change one feature's description."""
        self._store._check_writable()
        self._refresh(self._store._backend.update_group(
            self._store.project, self.name, int(self.version or 0), feature_descriptions={feature: description}))
        return self

    def add_metadata(self, items: Mapping[str, str]) -> dict[str, str]:
        """Attach custom metadata key/values."""
        self._store._check_writable()
        clean = validate_metadata(items)
        return self._store._backend.add_metadata(self._store.project, self.name, self.version, clean)

    def get_metadata(self, keys: Sequence[str] | None = None) -> dict[str, str]:
        """Custom metadata (all, or the given keys)."""
        return self._store._backend.get_metadata(self._store.project, self.name, self.version, keys)

    def remove_metadata(self, keys: Sequence[str]) -> dict[str, str]:
        """Remove custom metadata keys."""
        self._store._check_writable()
        return self._store._backend.remove_metadata(self._store.project, self.name, self.version, keys)

    def statistics(self, commit_version: int | None = None) -> Statistics | None:
        """The statistics of the latest (or a given) commit, or None if none were computed."""
        self._need_saved()
        content = self._store._backend.get_statistics(self._store.project, self.name, self.version, commit_version)
        return Statistics(content) if content else None

    def compute_statistics(self, columns: Sequence[str] | None = None, *,
                           descriptive_statistics: bool | None = None, feature_correlation: bool | None = None,
                           feature_histograms: bool | None = None, cluster_analysis: bool | None = None,
                           num_bins: int | None = None, num_clusters: int | None = None,
                           corr_method: str | None = None) -> Statistics:
        """Compute and store statistics of the latest commit now: the group's statistics
        configuration, with the options given here laid over it (see docs/statistics.md)."""
        from cloudsdk.client.stats_options import statistics_options

        self._store._check_writable()
        self._need_saved()
        options = statistics_options(
            descriptive_statistics=descriptive_statistics, feature_correlation=feature_correlation,
            feature_histograms=feature_histograms, cluster_analysis=cluster_analysis, num_bins=num_bins,
            num_clusters=num_clusters, corr_method=corr_method)
        return Statistics(self._store._backend.compute_statistics(
            self._store.project, self.name, self.version, columns, options or None))

    def statistics_config(self) -> dict[str, Any]:
        """The statistics configuration used on insert (every option, defaults filled in)."""
        from cloudsdk._stats_config import DEFAULT_CONFIG

        stored = self._meta.get("statistics_config") or {}
        return {**DEFAULT_CONFIG, **{k: v for k, v in stored.items() if k in DEFAULT_CONFIG}}

    def set_statistics_config(self, *, enabled: bool | None = None, descriptive_statistics: bool | None = None,
                              feature_correlation: bool | None = None, feature_histograms: bool | None = None,
                              cluster_analysis: bool | None = None, stat_columns: Sequence[str] | None = None,
                              num_bins: int | None = None, num_clusters: int | None = None,
                              corr_method: str | None = None) -> dict[str, Any]:
        """Change what is computed on insert (the options not given stay); returns the new configuration."""
        from cloudsdk.client.stats_options import statistics_options

        self._store._check_writable()
        self._need_saved()
        config = dict(self._meta.get("statistics_config") or {})
        config.update(statistics_options(
            descriptive_statistics=descriptive_statistics, feature_correlation=feature_correlation,
            feature_histograms=feature_histograms, cluster_analysis=cluster_analysis, stat_columns=stat_columns,
            num_bins=num_bins, num_clusters=num_clusters, corr_method=corr_method))
        if enabled is not None:
            config["enabled"] = bool(enabled)
        self._refresh(self._store._backend.update_group(self._store.project, self.name, int(self.version or 0),
                                                        statistics_config=config))
        return self.statistics_config()

    def plot_distributions(self, commit_version: int | None = None, **kwargs: Any) -> Any:
        """The histograms of the latest (or a commit's) statistics as a matplotlib Figure
        (options of :func:`cloudsdk.client.plots.plot_distributions`)."""
        from cloudsdk.client import plots

        return plots.plot_distributions(self.statistics(commit_version), owner=f"feature group {self.name!r}",
                                        **kwargs)

    def plot_correlations(self, commit_version: int | None = None, **kwargs: Any) -> Any:
        """The correlation heatmap as a matplotlib Figure."""
        from cloudsdk.client import plots

        return plots.plot_correlations(self.statistics(commit_version), owner=f"feature group {self.name!r}",
                                       **kwargs)

    def plot_clusters(self, commit_version: int | None = None, **kwargs: Any) -> Any:
        """The clusters' 2-D projection as a matplotlib Figure."""
        from cloudsdk.client import plots

        return plots.plot_clusters(self.statistics(commit_version), owner=f"feature group {self.name!r}", **kwargs)

    def compare_statistics(self, commit_a: int, commit_b: int | None = None, *, other: Any = None) -> Any:
        """Drift between two commits' statistics (``commit_b`` None: the latest), or between this
        group's commit ``commit_a`` and another version's latest statistics (``other``: a
        FeatureGroup): a pandas DataFrame of per-feature deltas and PSI
        (:func:`cloudsdk.client.plots.compare_statistics`)."""
        from cloudsdk.client import plots

        if other is not None:
            b, lb = other.statistics(commit_b), f"v{other.version}"
        else:
            b, lb = self.statistics(commit_b), "latest" if commit_b is None else f"commit {commit_b}"
        return plots.compare_statistics(self.statistics(commit_a), b, labels=(f"commit {commit_a}", lb))

    def plot_drift(self, commit_a: int, commit_b: int | None = None, **kwargs: Any) -> Any:
        """Two commits' histograms overlaid, one chart per feature titled with its PSI."""
        from cloudsdk.client import plots

        lb = "latest" if commit_b is None else f"commit {commit_b}"
        return plots.plot_drift(self.statistics(commit_a), self.statistics(commit_b),
                                labels=(f"commit {commit_a}", lb), **kwargs)

    def commit_details(self, limit: int | None = None) -> list[dict[str, Any]]:
        """The group's commits, newest first: ``commit_id`` (the Delta version, what ``as_of``
        takes; also as ``version``), ``timestamp`` (ms), ``committed_at`` (ISO, UTC),
        ``operation``, ``mode``, ``rows_inserted``, ``rows_updated``, ``rows_deleted``."""
        self._need_saved()
        return self._store._backend.history(self._store.project, self.name, self.version, limit)

    # --- time travel (docs/time-travel.md) ---------------------------------------------------

    def read_changes(self, start: Any = None, end: Any = None, dataframe_type: str = "pandas") -> Any:
        """What changed after commit ``start`` up to and including commit ``end``.

        Args:
            start: a commit id or time (exclusive); None: from the beginning.
            end: a commit id or time (inclusive); None: the latest commit.

        Returns:
            The rows written after ``start`` as ``end`` holds them, with ``_change_type``
            ("insert" or "update"), ``_commit`` and ``_commit_time``; and one "delete" row
            (key columns only) per key present at ``start`` and gone at ``end``.
        """
        self._need_saved()
        table = self._store._backend.read_changes(self._store.project, self.name, self.version,
                                                  encode_as_of(start, "start"), encode_as_of(end, "end"))
        return from_arrow(table, dataframe_type)

    def compact(self, retention_hours: int | None = None) -> dict[str, Any]:
        """Rewrite small files into large ones and vacuum files that left the table more than
        ``retention_hours`` ago (default: the group's retention, else the store's, 168 h).
        Commits that were current within the window stay readable by ``as_of``."""
        self._store._check_writable()
        self._need_saved()
        return self._store._backend.compact(self._store.project, self.name, self.version, retention_hours)

    @property
    def retention_hours(self) -> int:
        """How long replaced files are kept for time travel by compact() (hours)."""
        self._need_saved()
        return self._store._backend.get_retention(self._store.project, self.name, self.version)

    def set_retention(self, hours: int) -> dict[str, Any]:
        """Set this group's retention window for compact() (a commit of the table's settings)."""
        self._store._check_writable()
        self._need_saved()
        return self._store._backend.set_retention(self._store.project, self.name, self.version, hours)

    # --- display ---------------------------------------------------------------------------

    def _feature_lines(self) -> list[tuple[str, str, str, str]]:
        out = []
        for f in self.features:
            flags = ", ".join(x for x, on in (("primary key", f.primary), ("partition", f.partition),
                                              ("event time", f.name == self.event_time)) if on)
            out.append((f.name, f.type, flags, f.description))
        return out

    def __repr__(self) -> str:
        if not self.saved:
            state = "deleted" if self._pending.get("deleted") else "not saved"
            return f"FeatureGroup({self.name!r}, version={self.version}, {state})"
        feats = ", ".join(f"{n}{'*' if 'primary' in fl else ''}: {t}" for n, t, fl, _ in self._feature_lines())
        jobs = f", jobs={[j['name'] for j in self.jobs]}" if self.jobs else ""
        storage = "+".join(s for s, on in (("online", self.online_enabled), ("offline", self.offline_enabled)) if on)
        return f"FeatureGroup({self.name!r}, version={self.version}, features=[{feats}], {storage}{jobs})"

    def _repr_html_(self) -> str:
        if not self.saved:
            return html.escape(repr(self))
        rows = "".join(
            f"<tr><td>{html.escape(n)}</td><td>{html.escape(t)}</td><td>{html.escape(fl)}</td>"
            f"<td>{html.escape(d)}</td></tr>"
            for n, t, fl, d in self._feature_lines()
        )
        desc = f"<p>{html.escape(self.description)}</p>" if self.description else ""
        return (
            f"<div><b>Feature group</b> <code>{html.escape(self.name)}</code> version {self.version}"
            f" (SQL table <code>{html.escape(self.table_name)}</code>; "
            f"online {'on' if self.online_enabled else 'off'}, offline {'on' if self.offline_enabled else 'off'}){desc}"
            "<table><thead><tr><th>feature</th><th>type</th><th></th><th>description</th></tr></thead>"
            f"<tbody>{rows}</tbody></table></div>"
        )

    # --- on-demand feature groups ----------------------------------------------------------

    @property
    def on_demand(self) -> bool:
        """True for an on-demand group: its rows come from :attr:`query` on :attr:`connector`
        at every read (nothing is stored; inserts are refused)."""
        return bool(self._meta.get("on_demand", False))

    @property
    def query(self) -> str | None:
        """The SQL query of an on-demand group (None for a cached one)."""
        return self._meta.get("query")

    @property
    def connector(self) -> str | None:
        """The JDBC connector an on-demand group's query runs on (None for a cached one)."""
        return self._meta.get("connector")

    # --- data validation (docs/validation.md) --------------------------------------------------

    def add_validation_rule(self, name: str, rule_type: str, features: str | Sequence[str] | None = None, *,
                            min: float | None = None, max: float | None = None, level: str = "error",
                            hint: str = "", pattern: str | None = None,
                            allowed_values: Sequence[Any] | None = None) -> dict[str, Any]:
        """Add a validation rule; every later insert is checked against it first.

        Args:
            name: the rule's name, unique in the group.
            rule_type: completeness, uniqueness, distinctness, min, max, mean, sum, stddev,
                size, pattern or allowed_values (see docs/validation.md).
            features: the features it measures, one check each (none for ``size``).
            min: the smallest acceptable measured value (inclusive); fraction rules default to 1.0.
            max: the largest acceptable measured value (inclusive).
            level: "error" (a failure rejects the insert) or "warning" (recorded with the commit).
            hint: a note shown with the result.
            pattern: the regular expression (RE2) of a ``pattern`` rule.
            allowed_values: the values of an ``allowed_values`` rule.

        Returns:
            The stored rule as a dict.

        Raises:
            InvalidArgumentError: impossible bounds, an unknown type or level, a bad pattern.
            SchemaMismatchError: unknown features, or a rule that does not fit a feature's type.
            AlreadyExistsError: the group has a rule of that name.

        Example::

            fg.add_validation_rule("age_complete", "completeness", ["age"], min=1, max=1)
        """
        self._store._check_writable()
        self._need_saved()
        rule = {"name": name, "rule_type": rule_type,
                "features": [features] if isinstance(features, str) else list(features or []),
                "min": min, "max": max, "level": level, "hint": hint, "pattern": pattern,
                "allowed_values": list(allowed_values) if allowed_values is not None else None}
        return self._store._backend.add_validation_rule(self._store.project, self.name, self.version, rule)

    def get_validation_rules(self) -> list[dict[str, Any]]:
        """The group's validation rules, in the order they were added."""
        self._need_saved()
        return self._store._backend.get_validation_rules(self._store.project, self.name, self.version)

    def remove_validation_rule(self, name: str) -> list[dict[str, Any]]:
        """Remove a validation rule (NotFoundError if there is none of that name); returns the rules left."""
        self._store._check_writable()
        self._need_saved()
        return self._store._backend.remove_validation_rule(self._store.project, self.name, self.version, name)

    def validate(self, data: Any) -> ValidationReport:
        """A dry run: validate ``data`` (pandas, polars or pyarrow) against the rules; nothing is
        written or stored."""
        self._need_saved()
        return ValidationReport(self._store._backend.validate(
            self._store.project, self.name, self.version, to_arrow(data)))

    def run_validation(self, commit_version: int | None = None) -> ValidationReport:
        """The validation job: validate the stored rows at ``commit_version`` (default: the
        latest commit) and store the report with that commit."""
        self._store._check_writable()
        self._need_saved()
        return ValidationReport(self._store._backend.run_validation(
            self._store.project, self.name, self.version, commit_version))

    def validation_results(self, commit_version: int | None = None,
                           limit: int | None = None) -> list[ValidationReport]:
        """Stored validation reports (inserts and jobs), newest first; only those of
        ``commit_version`` if given, at most ``limit``."""
        self._need_saved()
        return [ValidationReport(r) for r in self._store._backend.validation_results(
            self._store.project, self.name, self.version, commit_version, limit)]

    # --- the registry: tags, jobs, provenance (docs/registry.md) ---------------------------

    def add_tag(self, name: str, value: Any = None) -> dict[str, str | None]:
        """Tag this feature group (``value`` optional; an existing tag's value is replaced);
        returns all its tags. Tag names: lower-case letters, digits, ``_ . -``."""
        from cloudsdk._registry import tag_value, validate_tag

        self._store._check_writable()
        self._need_saved()
        tags = self._store._backend.add_tag(self._store.project, "featuregroup", self.name, self.version,
                                            validate_tag(name), tag_value(value))
        self._meta["tags"] = dict(tags)
        return dict(tags)

    def get_tags(self) -> dict[str, str | None]:
        """The tags: ``{name: value or None}``."""
        self._need_saved()
        return dict(self._store._backend.get_tags(self._store.project, "featuregroup", self.name, self.version))

    def remove_tag(self, name: str) -> dict[str, str | None]:
        """Remove a tag (NotFoundError if there is none of that name); returns the tags left."""
        self._store._check_writable()
        self._need_saved()
        tags = self._store._backend.remove_tag(self._store.project, "featuregroup", self.name, self.version, name)
        self._meta["tags"] = dict(tags)
        return dict(tags)

    @property
    def jobs(self) -> list[dict[str, str | None]]:
        """The jobs that compute this feature group: ``[{"name", "url"}]``."""
        return [dict(j) for j in self._meta.get("jobs") or self._pending.get("jobs") or []]

    def set_jobs(self, jobs: Sequence[Any] | None) -> list[dict[str, str | None]]:
        """Record the jobs that compute this group (names, or ``{"name", "url"}`` dicts),
        replacing those recorded before."""
        from cloudsdk._registry import normalize_jobs

        self._store._check_writable()
        self._need_saved()
        clean = self._store._backend.set_jobs(self._store.project, "featuregroup", self.name, self.version,
                                              normalize_jobs(jobs))
        self._meta["jobs"] = list(clean)
        return list(clean)

    def training_datasets(self) -> list[dict[str, Any]]:
        """The training datasets built from this feature group version (from their provenance):
        ``[{"name", "version", "featuregroup_version", "commit", "created"}]``."""
        self._need_saved()
        return list(self._store._backend.group_training_datasets(self._store.project, self.name, self.version))
