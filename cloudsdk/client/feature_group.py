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
from cloudsdk.errors import (
    ONLINE_UNSUPPORTED,
    FeatureGroupNotFoundError,
    FeatureNotFoundError,
    InvalidArgumentError,
    UnsupportedError,
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
        """Whether the group is stored online too."""
        return bool(self._meta.get("online_enabled", False))

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
        meta = self._store._backend.create_group(self._store.project, name, version, to_arrow(data), **opts)
        self._refresh(meta)
        return self

    def insert(self, data: Any, mode: str = "append", *, online: bool = False, offline: bool = True,
               statistics: bool | None = None) -> dict[str, Any]:
        """Write rows as one commit.

        Args:
            data: pandas, polars or pyarrow dataframe with the group's columns.
            mode: "append", "overwrite" or "upsert" (merge on the primary key).
            statistics: compute statistics after the commit (default: the group's setting).

        Returns:
            The commit: ``{"version", "rows_inserted", "rows_updated", "rows_deleted"}``.
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
            as_of: a commit id (``commit_details()[i]["commit_id"]``) or a time (datetime, pandas
                Timestamp, ISO-8601 string; naive = UTC): the group as the latest commit at or
                before it left it. See docs/time-travel.md.

        Raises:
            CommitNotFoundError: no such commit, a time before the first commit, or vacuumed.
            InvalidArgumentError: a time in the future or a wrong type.
        """
        self._need_saved()
        if online:
            raise UnsupportedError(ONLINE_UNSUPPORTED, featuregroup=self.name)
        table = self._store._backend.read_group(self._store.project, self.name, self.version,
                                                as_of=encode_as_of(as_of))
        return from_arrow(table, dataframe_type)

    def show(self, n: int = 10) -> Any:
        """The first ``n`` rows as pandas."""
        return self.read("pyarrow").slice(0, n).to_pandas()

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

    def compute_statistics(self, columns: Sequence[str] | None = None) -> Statistics:
        """Compute statistics of the latest commit now."""
        self._store._check_writable()
        self._need_saved()
        return Statistics(self._store._backend.compute_statistics(
            self._store.project, self.name, self.version, columns))

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
        return f"FeatureGroup({self.name!r}, version={self.version}, features=[{feats}])"

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
            f" (SQL table <code>{html.escape(self.table_name)}</code>){desc}"
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
