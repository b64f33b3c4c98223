"""The feature store of one project: create, find and query feature groups and datasets."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from cloudsdk._names import validate_metadata
from cloudsdk.client.feature_group import FeatureGroup
from cloudsdk.client.frames import from_arrow, to_arrow
from cloudsdk.client.query import Query
from cloudsdk.client.training_dataset import TrainingDataset
from cloudsdk.errors import (
    ONLINE_UNSUPPORTED,
    InvalidArgumentError,
    PermissionDeniedError,
    UnsupportedError,
)

if TYPE_CHECKING:
    from cloudsdk.client.backend import Backend

planner_log = logging.getLogger("cloudsdk.planner")


class FeatureStore:
    """A project's feature store (``<project>_featurestore``).

    Example:
        >>> fs = cloudsdk.connect().get_feature_store()  # doctest: +SKIP
        >>> fg = fs.create_feature_group("teams_features", primary_key=["team_id"], data=df)  # doctest: +SKIP
        >>> fs.get_features(["team_budget", "average_attendance"])  # doctest: +SKIP
    """

    def __init__(self, backend: Backend, project: str, *, acting_project: str | None = None) -> None:
        self._backend = backend
        self.project = project
        self.name = f"{project}_featurestore"
        self.acting_project = acting_project or project

    @property
    def read_only(self) -> bool:
        """True for a feature store another project shares with this one."""
        return self.acting_project != self.project

    def _check_writable(self) -> None:
        if self.read_only:
            raise PermissionDeniedError(
                f"feature store {self.name!r} is shared read-only with project {self.acting_project!r}; "
                "write to your own project's feature store"
            )

    # --- feature groups --------------------------------------------------------------------

    def create_feature_group(
        self,
        name: str,
        version: int | None = None,
        *,
        data: Any = None,
        description: str = "",
        primary_key: str | Sequence[str] | None = None,
        partition_by: str | Sequence[str] | None = None,
        event_time: str | None = None,
        online_enabled: bool = False,
        features: Mapping[str, str] | None = None,
        metadata: Mapping[str, str] | None = None,
        statistics: bool | Sequence[str] = True,
    ) -> FeatureGroup:
        """Create a feature group; with ``data`` it is saved at once, else on ``fg.save(df)``.

        Args:
            name: lower-case name, e.g. ``"teams_features"``.
            version: default: one more than the latest version (1 for a new name).
            data: pandas / polars / pyarrow dataframe: the schema and the first commit.
            primary_key: key column(s); default the first column.
            partition_by: partition column(s) of the offline table.
            event_time: a timestamp/date column telling when each row's values held.
            online_enabled: online storage (not available in this release: raises UnsupportedError).
            features: descriptions of features, ``{feature: description}``.
            metadata: custom metadata key/values.
            statistics: compute statistics on every insert (True), never (False), or of these columns.

        Raises:
            AlreadyExistsError, InvalidNameError, SchemaMismatchError, DataValidationError, UnsupportedError.
        """
        self._check_writable()
        config: dict[str, Any] = {"enabled": bool(statistics)}
        if not isinstance(statistics, bool):
            config["columns"] = list(statistics)
        options = dict(description=description, primary_key=_list(primary_key), partition_by=_list(partition_by),
                       event_time=event_time, online_enabled=online_enabled,
                       feature_descriptions=dict(features or {}), metadata=validate_metadata(metadata or {}),
                       statistics_config=config)
        if online_enabled:
            raise UnsupportedError(ONLINE_UNSUPPORTED, featuregroup=name)
        fg = FeatureGroup(self, None, name=name, version=version, **options)
        if data is not None:
            fg.save(data)
        return fg

    def get_feature_group(self, name: str, version: int | None = None) -> FeatureGroup:
        """A feature group; the latest version unless ``version`` is given.

        Raises:
            FeatureGroupNotFoundError
        """
        return FeatureGroup(self, self._backend.describe_group(self.project, name, version))

    def get_or_create_feature_group(self, name: str, version: int | None = None, **options: Any) -> FeatureGroup:
        """The feature group if it exists, else a new (unsaved unless ``data=``) one."""
        from cloudsdk.errors import FeatureGroupNotFoundError

        try:
            return self.get_feature_group(name, version)
        except FeatureGroupNotFoundError:
            return self.create_feature_group(name, version, **options)

    def get_feature_groups(self, name: str | None = None) -> list[FeatureGroup]:
        """Every feature group (every version), or every version of ``name``."""
        metas = self._backend.list_groups(self.project)
        return [FeatureGroup(self, m) for m in metas if name is None or m["name"] == name]

    def get_latest_version(self, name: str) -> int | None:
        """The latest version of feature group ``name`` (None when it does not exist)."""
        return self._backend.latest_version(self.project, name)

    # --- reading ---------------------------------------------------------------------------

    def get_features(
        self,
        features: Sequence[str],
        *,
        featuregroups_version_dict: Mapping[str, int] | None = None,
        join_key: str | Sequence[str] | None = None,
        dataframe_type: str = "pandas",
    ) -> Any:
        """Features by name from any feature groups, joined by the query planner.

        Names may be ``feature``, ``<fg>.feature`` or ``<fg>_<version>.feature``. See
        docs/query-planner.md for the rules.

        Raises:
            FeatureNotFoundError, FeatureNameCollisionError, JoinKeyError
        """
        spec = self.get_features_query(features, featuregroups_version_dict=featuregroups_version_dict,
                                       join_key=join_key)
        return from_arrow(self._backend.run_query(self.project, spec), dataframe_type)

    def get_features_query(
        self,
        features: Sequence[str],
        *,
        featuregroups_version_dict: Mapping[str, int] | None = None,
        join_key: str | Sequence[str] | None = None,
    ) -> dict[str, Any]:
        """The query spec that :meth:`get_features` would run (for inspection or SQL).

        The planner's notes on its choices (e.g. which version of a group it used) are
        logged at INFO on the ``cloudsdk.planner`` logger.
        """
        spec = self._backend.feature_query(self.project, features, featuregroups_version_dict, join_key)
        for note in spec.get("notes") or ():
            planner_log.info("%s", note)
        return spec

    def sql(self, query: str, *, dataframe_type: str = "pandas", dialect: str = "auto") -> Any:
        """Run one read-only SELECT over the feature groups (tables ``<name>_<version>``).

        Args:
            query: the SELECT statement.
            dialect: "duckdb", "hive"/"spark" (backticks, JOIN ... JOIN ... ON ... AND ...),
                or "auto" (Hive when the query uses backticks).

        Raises:
            SQLError, SQLSandboxError, FeatureGroupNotFoundError
        """
        return from_arrow(self._backend.sql(self.project, query, dialect=dialect), dataframe_type)

    # --- training datasets -----------------------------------------------------------------

    def create_training_dataset(
        self,
        name: str,
        data: Any,
        *,
        version: int | None = None,
        data_format: str = "parquet",
        description: str = "",
        write_mode: str = "overwrite",
        statistics: bool = True,
    ) -> TrainingDataset:
        """Materialise a dataframe or a Query as training dataset files.

        Formats in this release: parquet, csv, tsv.
        """
        self._check_writable()
        provenance: dict[str, Any] = {}
        if isinstance(data, Query):
            spec = data.to_dict()
            provenance = {"query": spec}
            table = data.to_arrow()
        else:
            table = to_arrow(data)
        meta = self._backend.create_training_dataset(
            self.project, name, version, table, data_format=data_format, description=description,
            write_mode=write_mode, provenance=provenance, compute_statistics=statistics)
        return TrainingDataset(self, meta)

    def get_training_dataset(self, name: str, version: int | None = None) -> TrainingDataset:
        """A training dataset; the latest version unless ``version`` is given."""
        return TrainingDataset(self, self._backend.describe_training_dataset(self.project, name, version))

    def get_training_datasets(self) -> list[TrainingDataset]:
        """Every training dataset (every version)."""
        return [TrainingDataset(self, m) for m in self._backend.list_training_datasets(self.project)]

    def get_storage_connectors(self) -> list[dict[str, Any]]:
        """The project's storage connectors."""
        return self._backend.list_storage_connectors(self.project)

    def __repr__(self) -> str:
        shared = f", shared read-only with {self.acting_project!r}" if self.read_only else ""
        return f"FeatureStore({self.name!r}{shared})"


def _list(value: str | Sequence[str] | None) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return [value]
    if not all(isinstance(v, str) for v in value):
        raise InvalidArgumentError(f"expected column names, got {value!r}")
    return list(value)
