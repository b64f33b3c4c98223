"""Queries of the object API: ``fg.select([...]).join(other.select([...])).filter(...)``."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from cloudsdk._asof import encode_as_of
from cloudsdk.client.frames import from_arrow
from cloudsdk.errors import InvalidArgumentError

if TYPE_CHECKING:
    from cloudsdk.client.feature_group import FeatureGroup
    from cloudsdk.client.training_dataset import TrainingDataset


class Filter:
    """A row condition on features; combine with ``&``, ``|`` and ``~``.

    Example:
        >>> fg.select_all().filter((fg.team_budget > 1e8) & (fg.team_position <= 3))  # doctest: +SKIP
    """

    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec

    def __and__(self, other: Filter) -> Filter:
        return Filter({"op": "and", "left": self.spec, "right": _filter(other).spec})

    def __or__(self, other: Filter) -> Filter:
        return Filter({"op": "or", "left": self.spec, "right": _filter(other).spec})

    def __invert__(self) -> Filter:
        return Filter({"op": "not", "left": self.spec})

    def __bool__(self) -> bool:
        raise TypeError("combine filters with & and |, not 'and' / 'or'")

    def __repr__(self) -> str:
        return f"Filter({self.spec!r})"


def _default_as_of(spec: dict[str, Any], value: Any) -> None:
    """Give ``as_of`` to a joined query's groups that have none of their own."""
    if spec["fg"].get("as_of") is None:
        spec["fg"]["as_of"] = value
    for join in spec.get("joins") or []:
        _default_as_of(join["query"], value)


def _filter(value: Any) -> Filter:
    if not isinstance(value, Filter):
        raise InvalidArgumentError(
            f"expected a Filter such as fg.feature > 3, got {type(value).__name__}"
        )
    return value


class Query:
    """Features selected from one feature group, joined with other queries.

    Built with :meth:`FeatureGroup.select`; nothing runs until :meth:`read`.
    """

    def __init__(self, fg: FeatureGroup, features: Sequence[str] | None) -> None:
        self._fg = fg
        self._store = fg._store
        self._spec: dict[str, Any] = {
            "fg": {"name": fg.name, "version": fg.version},
            "features": None if features is None else list(features),
            "joins": [],
            "filter": None,
        }

    def _copy(self) -> Query:
        clone = copy.copy(self)
        clone._spec = copy.deepcopy(self._spec)
        return clone

    def join(
        self,
        other: Query,
        on: str | Sequence[str] | None = None,
        *,
        left_on: Sequence[str] | None = None,
        right_on: Sequence[str] | None = None,
        join_type: str = "inner",
    ) -> Query:
        """Join another query; ``on`` defaults to the primary key the two groups share.

        Args:
            other: the query to join (``other_fg.select([...])``).
            on: join column(s) present in both groups.
            left_on/right_on: differently named join columns.
            join_type: "inner" (default), "left", "right" or "full".
        """
        if not isinstance(other, Query):
            raise InvalidArgumentError("join() takes a Query, e.g. other_fg.select(['feature'])")
        clone = self._copy()
        join: dict[str, Any] = {"query": copy.deepcopy(other._spec), "join_type": join_type}
        if on is not None:
            join["on"] = [on] if isinstance(on, str) else list(on)
        if left_on is not None or right_on is not None:
            if left_on is None or right_on is None:
                raise InvalidArgumentError("give both left_on and right_on")
            join["left_on"], join["right_on"] = list(left_on), list(right_on)
        clone._spec["joins"].append(join)
        return clone

    def filter(self, condition: Filter) -> Query:
        """Keep only the rows that satisfy ``condition`` (ANDed with earlier filters)."""
        clone = self._copy()
        spec = _filter(condition).spec
        old = clone._spec["filter"]
        clone._spec["filter"] = spec if old is None else {"op": "and", "left": old, "right": spec}
        return clone

    def to_dict(self) -> dict[str, Any]:
        """The query spec that the backend executes (JSON-able)."""
        return copy.deepcopy(self._spec)

    def to_sql(self) -> str:
        """The DuckDB SQL that this query runs."""
        sql, _ = self._store._backend.plan(self._store.project, self._spec)
        return sql

    def to_arrow(self, *, online: bool = False) -> pa.Table:
        """Run the query; the result as a pyarrow Table (``online=True``: over the groups'
        online tables, the latest row per primary key)."""
        return self._store._run_query(self._spec, online=online)

    def read(self, dataframe_type: str = "pandas", *, entity_df: Any = None, event_time: str | None = None,
             ttl: Any = None, online: bool = False) -> Any:
        """Run the query; the result as ``dataframe_type`` (pandas by default).

        With ``entity_df`` and ``event_time``: point in time, one output row per label row
        (see ``FeatureStore.get_features`` and docs/point-in-time.md). With ``online=True``:
        over the online tables (a full scan; look entities up with
        ``fs.get_feature_vector(query, entry)``).
        """
        if entity_df is not None or event_time is not None:
            if online:
                raise InvalidArgumentError("a point-in-time read (entity_df, event_time) reads the offline "
                                           "store: leave online=False")
            return from_arrow(self._store._run_pit(self._spec, entity_df, event_time, ttl), dataframe_type)
        return from_arrow(self.to_arrow(online=online), dataframe_type)

    def show(self, n: int = 10, *, online: bool = False) -> Any:
        """The first ``n`` rows as pandas."""
        return self.to_arrow(online=online).slice(0, n).to_pandas()

    def create_training_dataset(self, name: str, **options: Any) -> TrainingDataset:
        """Materialise this query as a training dataset (see FeatureStore.create_training_dataset)."""
        return self._store.create_training_dataset(name, self, **options)

    def as_of(self, as_of: Any) -> Query:
        """Read this query's feature group as of a commit id or a time (time travel).

        Joined queries that set their own ``as_of`` keep it; the others take this one, so
        ``fg1.select_all().as_of(t1).join(fg2.select_all().as_of(t2))`` reads each group at its
        own time and ``q.as_of(t)`` reads every group of ``q`` at ``t`` (docs/time-travel.md).
        """
        value = encode_as_of(as_of)
        clone = self._copy()
        clone._spec["fg"]["as_of"] = value
        for join in clone._spec["joins"]:
            _default_as_of(join["query"], value)
        return clone

    def __repr__(self) -> str:
        groups = [f"{self._spec['fg']['name']}_{self._spec['fg']['version']}"] + [
            f"{j['query']['fg']['name']}_{j['query']['fg']['version']}" for j in self._spec["joins"]
        ]
        return f"Query({' ⋈ '.join(groups)})"


