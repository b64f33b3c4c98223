"""The feature store of one project: create, find and query feature groups and datasets."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from cloudsdk._asof import encode_as_of
from cloudsdk._names import validate_metadata
from cloudsdk.client.feature_group import FeatureGroup
from cloudsdk.client.frames import from_arrow, to_arrow
from cloudsdk.client.online import OnlineStoreConnector, check_return_type, feature_list, vectors_as
from cloudsdk.client.query import Query
from cloudsdk.client.training_dataset import TrainingDataset
from cloudsdk.errors import InvalidArgumentError, PermissionDeniedError

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
    def is_remote(self) -> bool:
        """True when the store is reached through a server (False: embedded in this process)."""
        return hasattr(self._backend, "rest")

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
        offline_enabled: bool = True,
        features: Mapping[str, str] | None = None,
        metadata: Mapping[str, str] | None = None,
        statistics: bool | Sequence[str] = True,
        jobs: Sequence[Any] | None = None,
        validation_rules: Sequence[Mapping[str, Any]] | None = None,
    ) -> FeatureGroup:
        """Create a feature group; with ``data`` it is saved at once, else on ``fg.save(df)``.

        Args:
            name: lower-case name, e.g. ``"teams_features"``.
            version: default: one more than the latest version (1 for a new name).
            data: pandas / polars / pyarrow dataframe: the schema and the first commit.
            primary_key: key column(s); default the first column.
            partition_by: partition column(s) of the offline table.
            event_time: a timestamp/date column telling when each row's values held.
            online_enabled: also keep the latest row per primary key in the online store, for
                low-latency lookups (:meth:`get_feature_vector`, ``read(online=True)``).
            offline_enabled: keep the rows in the offline (Delta) table; False makes an
                online-only group, readable only with ``online=True``.
            features: descriptions of features, ``{feature: description}``.
            metadata: custom metadata key/values.
            statistics: compute statistics on every insert (True), never (False), or of these columns.
            jobs: the jobs that compute the group: names, or ``{"name", "url"}`` dicts (docs/registry.md).
            validation_rules: rules as dicts of ``fg.add_validation_rule``'s arguments
                (``{"name", "rule_type", "features", "min", ...}``); ``data`` is validated
                against them first (docs/validation.md).

        Raises:
            AlreadyExistsError, InvalidNameError, SchemaMismatchError, DataValidationError.
        """
        self._check_writable()
        config: dict[str, Any] = {"enabled": bool(statistics)}
        if not isinstance(statistics, bool):
            config["columns"] = list(statistics)
        options = dict(description=description, primary_key=_list(primary_key), partition_by=_list(partition_by),
                       event_time=event_time, online_enabled=bool(online_enabled),
                       offline_enabled=bool(offline_enabled),
                       feature_descriptions=dict(features or {}), metadata=validate_metadata(metadata or {}),
                       statistics_config=config)
        if jobs:
            from cloudsdk._registry import normalize_jobs

            options["jobs"] = normalize_jobs(jobs)  # type: ignore[assignment]
        if validation_rules is not None:
            options["validation_rules"] = list(map(dict, validation_rules))  # type: ignore[arg-type]
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
        entity_df: Any = None,
        event_time: str | None = None,
        ttl: Any = None,
        online: bool = False,
    ) -> Any:
        """Features by name from any feature groups, joined by the query planner.

        Names may be ``feature``, ``<fg>.feature`` or ``<fg>_<version>.feature``. See
        docs/query-planner.md for the rules.

        With ``entity_df`` (label rows holding the groups' entity keys and an ``event_time``
        column) the read is point-in-time correct: every label row gets, from each group, the
        values of its latest row whose event time is at or before the label's time (within
        ``ttl``: seconds or a timedelta, or a dict of them by feature group); no match gives
        nulls (docs/point-in-time.md).

        With ``online=True`` the groups' online tables (the latest row per primary key) are
        joined instead (a full scan: use :meth:`get_feature_vectors` to look up entities).

        Raises:
            FeatureNotFoundError, FeatureNameCollisionError, JoinKeyError, InvalidArgumentError
        """
        spec = self.get_features_query(features, featuregroups_version_dict=featuregroups_version_dict,
                                       join_key=join_key)
        if entity_df is not None or event_time is not None:
            if online:
                raise InvalidArgumentError("a point-in-time read (entity_df, event_time) reads the offline "
                                           "store: leave online=False")
            return from_arrow(self._run_pit(spec, entity_df, event_time, ttl), dataframe_type)
        return from_arrow(self._run_query(spec, online=online), dataframe_type)

    def _run_query(self, spec: Mapping[str, Any], *, online: bool = False) -> Any:
        if online:
            return self._backend.run_query(self.project, spec, online=True)
        return self._backend.run_query(self.project, spec)

    def _run_pit(self, spec: Mapping[str, Any], entity_df: Any, event_time: str | None, ttl: Any) -> Any:
        if entity_df is None or not isinstance(event_time, str):
            raise InvalidArgumentError("a point-in-time read needs both entity_df (the label rows) and "
                                       "event_time (the name of their time column)")
        return self._backend.run_query_pit(self.project, spec, to_arrow(entity_df), event_time,
                                           ttl=_ttl_seconds(ttl))

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

    def sql(self, query: str, *, dataframe_type: str = "pandas", dialect: str = "auto", as_of: Any = None,
            online: bool = False) -> Any:
        """Run one read-only SELECT over the feature groups (tables ``<name>_<version>``).

        Args:
            query: the SELECT statement; ``<table> VERSION AS OF <commit id>`` and
                ``<table> TIMESTAMP AS OF '<time>'`` read one table in the past, and the hidden
                columns ``_commit`` / ``_commit_time`` say which commit wrote each row.
            dialect: "duckdb", "hive"/"spark" (backticks, JOIN ... JOIN ... ON ... AND ...),
                or "auto" (Hive when the query uses backticks).
            as_of: read every feature group as of this commit id or time (docs/time-travel.md).
            online: query the online tables (the latest row per primary key of online-enabled
                groups); primary-key equality and ``IN`` filters become key lookups.

        Raises:
            SQLError, SQLSandboxError, FeatureGroupNotFoundError, CommitNotFoundError,
            InvalidArgumentError (``as_of`` with ``online=True``)
        """
        if online:
            if as_of is not None:
                raise InvalidArgumentError("the online store holds only the latest values: as_of needs online=False")
            table = self._backend.sql(self.project, query, dialect=dialect, online=True)
        else:
            table = self._backend.sql(self.project, query, dialect=dialect, as_of=encode_as_of(as_of))
        return from_arrow(table, dataframe_type)

    # --- the online store: serving (docs/online.md) ------------------------------------------

    def get_feature_vector(
        self,
        features: Any,
        entry: Mapping[str, Any],
        *,
        return_type: str = "list",
        allow_missing: bool = False,
        featuregroups_version_dict: Mapping[str, int] | None = None,
    ) -> Any:
        """The features of one entity from the online store, for serving a model.

        Args:
            features: feature names (``feature``, ``<fg>.feature``, ``<fg>_<version>.feature``),
                Feature objects, or a :class:`Query` (``fg.select([...]).join(...)``); resolved
                by the query planner like :meth:`get_features`.
            entry: the entity's primary key: ``{key column: value}`` of every group involved.
            return_type: ``"list"`` (values in feature order), ``"dict"`` (``{feature: value}``),
                ``"pandas"`` (a one-row DataFrame) or ``"numpy"`` (a 1-D array; None -> nan
                for numeric features).
            allow_missing: give None for the features of a group that has no row for the key,
                instead of raising FeatureVectorNotFoundError.
            featuregroups_version_dict: the version of each group (default: as the planner picks).

        Raises:
            FeatureVectorNotFoundError, FeatureNotFoundError, InvalidArgumentError (a missing or
            extra key column, a key of the wrong type, a group that is not stored online).

        Example:
            >>> fs.get_feature_vector(["team_budget", "average_attendance"], {"team_id": 1})  # doctest: +SKIP
            [12957076.0, 5618.0]
        """
        if type(entry) is not dict and not isinstance(entry, Mapping):
            raise InvalidArgumentError(f"entry: expected {{key column: value}}, got {type(entry).__name__}")
        result = self._vectors(features, [entry], allow_missing, featuregroups_version_dict)
        if return_type == "list":
            return result["rows"][0]
        return vectors_as(result, return_type, single=True)

    def get_feature_vectors(
        self,
        features: Any,
        entries: Sequence[Mapping[str, Any]],
        *,
        return_type: str = "list",
        allow_missing: bool = False,
        featuregroups_version_dict: Mapping[str, int] | None = None,
    ) -> Any:
        """The features of many entities from the online store, in the order of ``entries``
        (one lookup per group for all of them).

        ``return_type``: ``"list"`` (a list of value lists), ``"dict"`` (a list of dicts),
        ``"pandas"`` (one row per entry) or ``"numpy"`` (a 2-D array). The other arguments are
        those of :meth:`get_feature_vector`.

        Raises:
            FeatureVectorNotFoundError, FeatureNotFoundError, InvalidArgumentError
        """
        if isinstance(entries, Mapping) or not isinstance(entries, Sequence):
            raise InvalidArgumentError("entries: expected a list of {key column: value} dicts")
        check_return_type(return_type)
        result = self._vectors(features, list(entries), allow_missing, featuregroups_version_dict)
        if return_type == "list":
            return result["rows"]
        return vectors_as(result, return_type, single=False)

    def _vectors(self, features: Any, entries: list[Any], allow_missing: bool,
                 versions: Mapping[str, int] | None) -> dict[str, Any]:
        """One lookup. Embedded: the store runs its cached plan for these features (resolved
        once, dropped by the store whenever a group changes), so nothing is cached here;
        remote: one POST on the connection's keep-alive session."""
        if type(features) is not list or not all(type(f) is str for f in features):
            features = feature_list(features)
        return self._backend.get_feature_vectors(
            self.project, features, entries, featuregroups_version_dict=None if versions is None else dict(versions),
            allow_missing=bool(allow_missing))

    def get_online_featurestore_connector(self) -> OnlineStoreConnector:
        """The connection details of this feature store's online store. The password is given
        only to members of the owning project (not through a shared store).

        Example:
            >>> fs.get_online_featurestore_connector().backend  # doctest: +SKIP
            'sqlite'
        """
        info = self._backend.online_store_info(self.project, include_password=not self.read_only)
        return OnlineStoreConnector(info, featurestore=self.name)

    def check_online_consistency(self, featuregroup: Any, version: int | None = None, *,
                                 limit: int = 10) -> dict[str, Any]:
        """Compare a feature group's online table with its offline table (the latest row per
        key): see :meth:`FeatureGroup.check_online_consistency`. ``featuregroup``: a
        FeatureGroup or a name (with ``version``; default the latest)."""
        name = getattr(featuregroup, "name", featuregroup)
        if version is None and not isinstance(featuregroup, str):
            version = getattr(featuregroup, "version", None)
        if not isinstance(name, str):
            raise InvalidArgumentError(f"expected a FeatureGroup or its name, got {featuregroup!r}")
        return self._backend.check_online_consistency(self.project, name, version, limit=limit)

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
        sink: str | None = None,
        path: str | None = None,
        splits: Mapping[str, float] | None = None,
        seed: int | None = None,
        rows_per_file: int | None = None,
        entity_df: Any = None,
        event_time: str | None = None,
        ttl: Any = None,
        jobs: Sequence[Any] | None = None,
    ) -> TrainingDataset:
        """Materialise a dataframe or a Query as training dataset files.

        Args:
            name: letters, digits and ``_``, starting with a letter.
            data: a pandas / polars / pyarrow dataframe, or a :class:`Query` (the store runs it
                and records the feature groups, versions and commits it read as provenance).
            version: default: one more than the latest version.
            data_format: tfrecords (or tfrecord), parquet, csv, tsv, petastorm, avro, orc, npy,
                hdf5 (see docs/formats.md).
            write_mode: ``"overwrite"`` replaces an existing version; ``"error"`` refuses it.
            statistics: compute descriptive statistics and store them with the dataset.
            sink: a storage connector's name: default the project's managed location; an S3
                connector writes the files to its bucket (an external training dataset).
            path: a sub-directory under the sink (default ``<name>_<version>`` at its root).
            splits: e.g. ``{"train": 0.8, "test": 0.2}``: each split in its own directory.
            seed: the seed of the split draw (recorded; default a random one).
            rows_per_file: rows per ``part-r-*`` file (default 1,000,000).
            entity_df, event_time, ttl: with a Query, read it point in time for these label rows
                (see :meth:`get_features`); the provenance records the query pinned to the
                commits read, the ttl and the labels' SHA-256, so the same labels re-create it.
            jobs: the jobs that compute the dataset: names, or ``{"name", "url"}`` dicts
                (docs/registry.md).

        Raises:
            InvalidArgumentError, SchemaMismatchError (e.g. arrays in csv), AlreadyExistsError
            (``write_mode="error"``), StorageConnectorNotFoundError, PermissionDeniedError
            (S3 access denied), StorageError (a bucket that does not exist).
        """
        self._check_writable()
        if jobs:
            from cloudsdk._registry import normalize_jobs

            clean_jobs = normalize_jobs(jobs)  # checked before anything is written
            td = self.create_training_dataset(
                name, data, version=version, data_format=data_format, description=description,
                write_mode=write_mode, statistics=statistics, sink=sink, path=path, splits=splits, seed=seed,
                rows_per_file=rows_per_file, entity_df=entity_df, event_time=event_time, ttl=ttl)
            td.set_jobs(clean_jobs)
            return td
        opts: dict[str, Any] = {
            "data_format": data_format, "description": description, "write_mode": write_mode,
            "compute_statistics": statistics, "sink": sink, "path": path,
            "splits": dict(splits) if splits is not None else None, "seed": seed, "rows_per_file": rows_per_file}
        if isinstance(data, Query) and (entity_df is not None or event_time is not None):
            if entity_df is None or not isinstance(event_time, str):
                raise InvalidArgumentError("a point-in-time dataset needs both entity_df and event_time")
            meta = self._backend.create_training_dataset_pit(
                self.project, name, version, to_arrow(entity_df), data.to_dict(), event_time,
                ttl=_ttl_seconds(ttl), **opts)
            return TrainingDataset(self, meta)
        if entity_df is not None or event_time is not None:
            raise InvalidArgumentError("entity_df / event_time go with a Query (fs.get_features_query(...) or "
                                       "fg.select(...)), not with a dataframe")
        if isinstance(data, Query):
            meta = self._backend.create_training_dataset_from_query(self.project, name, version, data.to_dict(), **opts)
            return TrainingDataset(self, meta)
        table = to_arrow(data)
        if self.is_remote and sink is not None and sink != f"{self.project}_training_datasets":
            plan = self._backend.prepare_training_dataset(
                self.project, name, version, data_format=data_format, sink=sink, path=path, write_mode=write_mode)
            if "s3" in plan:
                return TrainingDataset(self, self._write_to_s3(table, plan, opts))
        meta = self._backend.create_training_dataset(self.project, name, version, table, **opts)
        return TrainingDataset(self, meta)

    def _write_to_s3(self, table: Any, plan: Mapping[str, Any], opts: Mapping[str, Any]) -> dict[str, Any]:
        """Write a DataFrame straight to an S3 sink, then register it with the server."""
        import base64

        from cloudsdk.datasets.writer import ROWS_PER_FILE, S3Target, write_dataset

        target = S3Target(plan["s3"], plan["location"])
        layout = write_dataset(table, table.schema, plan["data_format"], target, splits=opts["splits"],
                               seed=opts["seed"], rows_per_file=opts["rows_per_file"] or ROWS_PER_FILE)
        try:
            return self._backend.register_training_dataset(
                self.project, plan["name"], int(plan["version"]), data_format=plan["data_format"],
                sink=opts["sink"], path=opts["path"],
                arrow_schema=base64.b64encode(table.schema.serialize().to_pybytes()).decode("ascii"),
                layout=layout, description=opts["description"], provenance={},
                compute_statistics=opts["compute_statistics"], write_mode=opts["write_mode"])
        except BaseException:
            if target.fresh:  # nothing was registered there before: leave no unregistered files
                from cloudsdk.datasets import s3 as s3util

                with contextlib.suppress(Exception):
                    s3util.delete_prefix(plan["s3"], plan["location"])
            raise

    def get_training_dataset(self, name: str, version: int | None = None) -> TrainingDataset:
        """A training dataset; the latest version unless ``version`` is given."""
        return TrainingDataset(self, self._backend.describe_training_dataset(self.project, name, version))

    def get_training_datasets(self) -> list[TrainingDataset]:
        """Every training dataset (every version)."""
        return [TrainingDataset(self, m) for m in self._backend.list_training_datasets(self.project)]

    def get_storage_connectors(self) -> list[dict[str, Any]]:
        """The project's storage connectors (the defaults, then S3 ones; secrets masked)."""
        return self._backend.list_storage_connectors(self.project)

    def get_storage_connector(self, name: str) -> dict[str, Any]:
        """One storage connector's settings (secrets masked)."""
        return self._backend.get_storage_connector(self.project, name)

    def create_s3_connector(
        self,
        name: str,
        bucket: str,
        *,
        path: str = "",
        region: str | None = None,
        endpoint_url: str | None = None,
        access_key: str | None = None,
        secret_key: str | None = None,
        session_token: str | None = None,
        server_side_encryption: str | None = None,
        kms_key_id: str | None = None,
        description: str = "",
        exist_ok: bool = False,
    ) -> dict[str, Any]:
        """Register an S3 bucket (and prefix ``path``) as a sink for external training datasets.

        Without ``access_key``/``secret_key`` the default AWS credential chain is used by
        whoever reads or writes (a notebook's role). The key pair is stored encrypted and
        given only to members of this project. ``server_side_encryption``: ``"AES256"`` or
        ``"aws:kms"`` (with ``kms_key_id``). ``endpoint_url`` for S3-compatible stores.
        """
        self._check_writable()
        return self._backend.create_s3_connector(
            self.project, name, bucket=bucket, path=path, region=region, endpoint_url=endpoint_url,
            access_key=access_key, secret_key=secret_key, session_token=session_token,
            server_side_encryption=server_side_encryption, kms_key_id=kms_key_id,
            description=description, exist_ok=exist_ok)

    def delete_storage_connector(self, name: str) -> None:
        """Remove an S3 connector that no training dataset uses."""
        self._check_writable()
        self._backend.delete_storage_connector(self.project, name)

    def __repr__(self) -> str:
        shared = f", shared read-only with {self.acting_project!r}" if self.read_only else ""
        return f"FeatureStore({self.name!r}{shared})"

    # --- on-demand feature groups ------------------------------------------------------------

    def create_jdbc_connector(
        self,
        name: str,
        url: str,
        user: str | None = None,
        password: str | None = None,
        *,
        description: str = "",
        arguments: Mapping[str, Any] | None = None,
        query_timeout_s: int = 300,
        exist_ok: bool = False,
    ) -> dict[str, Any]:
        """Register a PostgreSQL, MySQL or MariaDB database for on-demand feature groups.

        Args:
            name: the connector's name (lower-case letters, digits, ``_``).
            url: ``jdbc:postgresql://host:5432/db``, ``jdbc:mysql://...``, ``jdbc:mariadb://...``,
                or a SQLAlchemy URL (``postgresql+psycopg://...``, ``mysql+pymysql://...``).
            user, password: the database account (or in the URL). The password is stored
                encrypted and shown only to data owners of the project.
            arguments: driver options, e.g. ``{"sslmode": "require"}`` (see
                docs/on-demand-feature-groups.md for those accepted).
            query_timeout_s: the statement timeout of every query run through the connector.
            exist_ok: return an existing connector of that name instead of raising.

        Returns:
            The connector's settings (the password masked).

        Raises:
            InvalidArgumentError (the URL or arguments), AlreadyExistsError, InvalidNameError.
        """
        self._check_writable()
        return self._backend.create_jdbc_connector(
            self.project, name, url, user, password, description=description,
            arguments=dict(arguments) if arguments is not None else None, query_timeout_s=query_timeout_s,
            exist_ok=exist_ok)

    def create_on_demand_feature_group(
        self,
        name: str,
        query: str,
        connector: str,
        *,
        version: int | None = None,
        description: str = "",
        primary_key: str | Sequence[str] | None = None,
        event_time: str | None = None,
        features: Mapping[str, str] | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> FeatureGroup:
        """A feature group computed on demand: ``query`` (one SELECT) runs on JDBC connector
        ``connector`` at every read; the store keeps only the query and its schema (captured
        now, by running the query with ``LIMIT 0``).

        Raises:
            StorageConnectorNotFoundError, InvalidArgumentError (not a JDBC connector),
            SQLSandboxError (not one SELECT), SQLError (the database rejects the query),
            StorageError (the database cannot be reached), PermissionDeniedError (it refuses
            the credentials), AlreadyExistsError, SchemaMismatchError (key columns).
        """
        self._check_writable()
        meta = self._backend.create_on_demand_group(
            self.project, name, version, query, connector, description=description,
            primary_key=_list(primary_key), event_time=event_time, feature_descriptions=dict(features or {}),
            metadata=validate_metadata(metadata or {}))
        return FeatureGroup(self, meta)


    # --- the registry: search, provenance (docs/registry.md) --------------------------------

    def search(self, query: str, kind: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        """Keyword search over feature groups, features and training datasets: names,
        descriptions, feature descriptions, custom metadata and tags (case-insensitive; the
        query is taken literally). Results are grouped by name (all matching versions
        together, best version first) and ranked: exact name > name prefix > name substring >
        a feature's name > description > tag / metadata > feature description.

        Args:
            query: the text to find.
            kind: only ``"featuregroup"``, ``"feature"`` or ``"training_dataset"`` results.
            limit: at most this many results.

        Returns:
            ``[{"kind", "name", "score", "match", "versions": [{"version", "score",
            "description", "matches": [{"match", "field", "text"}]}]}]`` (features also carry
            ``"featuregroup"`` and ``"type"``).
        """
        return self._backend.search(self.project, query, kind, limit)

    def compare_training_datasets(self, a: TrainingDataset | str, b: TrainingDataset | str, *,
                                  keys: str | Sequence[str] | None = None) -> dict[str, Any]:
        """How the data changed from dataset ``a`` to ``b`` (objects, or names: latest version):
        schema (added / removed / type-changed columns), statistics (per-feature deltas of
        count, nulls, mean, stddev, min, max: B - A) and, with ``keys`` (columns unique in
        both), row-level counts: only in A, only in B, in both, changed. See docs/registry.md."""
        def ref(td: TrainingDataset | str) -> tuple[str, int | None]:
            return (td, None) if isinstance(td, str) else (td.name, td.version)

        (na, va), (nb, vb) = ref(a), ref(b)
        return self._backend.compare_training_datasets(self.project, na, va, nb, vb, keys)


def _ttl_seconds(ttl: Any) -> Any:
    """A ttl for the wire: timedeltas as seconds (also inside a dict by feature group)."""
    import datetime as dt

    def seconds(value: Any) -> Any:
        return value.total_seconds() if isinstance(value, dt.timedelta) else value

    return {k: seconds(v) for k, v in ttl.items()} if isinstance(ttl, Mapping) else seconds(ttl)


def _list(value: str | Sequence[str] | None) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return [value]
    if not all(isinstance(v, str) for v in value):
        raise InvalidArgumentError(f"expected column names, got {value!r}")
    return list(value)
