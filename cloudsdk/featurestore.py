"""The Hopsworks-style functional API (``from cloudsdk import featurestore``).

Function and argument names follow the hops 1.x ``featurestore`` module, so the
feature store documentation's snippets run with ``from cloudsdk import featurestore``.
As inside Hopsworks, no ``connect()`` is needed: until :func:`connect` says otherwise,
every function uses the embedded store (``$CLOUDSDK_HOME`` or ``~/.cloudsdk``).
Each function is a thin layer over the object API (:class:`cloudsdk.FeatureStore`).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from cloudsdk.client.connection import Connection
from cloudsdk.client.connection import connect as _connect
from cloudsdk.client.feature_store import FeatureStore
from cloudsdk.errors import InvalidArgumentError

log = logging.getLogger(__name__)

__all__ = [
    "add_featuregroup_tag",
    "add_metadata",
    "add_training_dataset_metadata",
    "add_training_dataset_tag",
    "add_validation_rule",
    "check_featuregroup_online_consistency",
    "compare_training_datasets",
    "connect",
    "create_featuregroup",
    "create_jdbc_connector",
    "create_on_demand_featuregroup",
    "create_s3_connector",
    "create_training_dataset",
    "disable_featuregroup_online",
    "disconnect",
    "enable_featuregroup_online",
    "get_feature",
    "get_feature_vector",
    "get_feature_vectors",
    "get_featuregroup",
    "get_featuregroup_commits",
    "get_featuregroup_features_list",
    "get_featuregroup_statistics",
    "get_featuregroup_tags",
    "get_featuregroup_training_datasets",
    "get_featuregroup_validation_rules",
    "get_featuregroup_validations",
    "get_featuregroups",
    "get_features",
    "get_features_list",
    "get_latest_featuregroup_version",
    "get_latest_training_dataset_version",
    "get_metadata",
    "get_online_featurestore_connector",
    "get_project_featurestores",
    "get_storage_connectors",
    "get_training_dataset",
    "get_training_dataset_features_used",
    "get_training_dataset_metadata",
    "get_training_dataset_path",
    "get_training_dataset_statistics",
    "get_training_dataset_tags",
    "get_training_dataset_tf_record_schema",
    "get_training_datasets",
    "insert_into_featuregroup",
    "project_featurestore",
    "remove_featuregroup_tag",
    "remove_metadata",
    "remove_training_dataset_metadata",
    "remove_training_dataset_tag",
    "remove_validation_rule",
    "search",
    "sql",
    "sync_featuregroup_online",
    "update_featuregroup_stats",
    "update_training_dataset_stats",
    "validate_featuregroup",
    "visualize_featuregroup_clusters",
    "visualize_featuregroup_correlations",
    "visualize_featuregroup_descriptive_stats",
    "visualize_featuregroup_distributions",
    "visualize_training_dataset_clusters",
    "visualize_training_dataset_correlations",
    "visualize_training_dataset_descriptive_stats",
    "visualize_training_dataset_distributions",
]

_lock = threading.Lock()
_connection: Connection | None = None


def connect(
    host: str | None = None,
    project_name: str | None = None,
    port: int = 443,
    region_name: str | None = None,
    secrets_store: str = "parameterstore",
    api_key_file: str | None = None,
    api_key_value: str | None = None,
    cert_folder: str | None = None,
    hostname_verification: bool = True,
    trust_store_path: str | None = None,
    role: str | None = None,
    secret_prefix: str = "hopsworks/role/",
    *,
    path: str | os.PathLike[str] | None = None,
    reuse_certificates: bool = False,
) -> Connection:
    """Make the connection that every function of this module uses.

    The seed's argument names: ``connect(host, project_name, ...)``. With no host, the
    embedded store (``path`` or ``$CLOUDSDK_HOME``). Returns the Connection.
    """
    global _connection
    conn = _connect(host, project_name, port, region_name, secrets_store, api_key_file, api_key_value,
                    cert_folder, hostname_verification, trust_store_path, role, secret_prefix, path=path,
                    reuse_certificates=reuse_certificates)
    with _lock:
        old, _connection = _connection, conn
    if old is not None:
        old.close()
    return conn


def disconnect() -> None:
    """Close the module's connection; the next call opens the embedded default again."""
    global _connection
    with _lock:
        old, _connection = _connection, None
    if old is not None:
        old.close()


def _conn() -> Connection:
    global _connection
    with _lock:
        if _connection is None:
            _connection = _connect()
        return _connection


def _fs(featurestore: str | None = None) -> FeatureStore:
    return _conn().get_feature_store(featurestore)


def project_featurestore() -> str:
    """The name of the project's feature store, ``<project>_featurestore``."""
    return _fs().name


def get_project_featurestores() -> list[str]:
    """The feature stores the project can read: its own, then those shared with it."""
    return _conn().get_featurestores()


# --- feature groups --------------------------------------------------------------------------


def create_featuregroup(
    df: Any,
    featuregroup: str,
    primary_key: str | Sequence[str] | None = None,
    description: str = "",
    featurestore: str | None = None,
    featuregroup_version: int = 1,
    jobs: Sequence[str] | None = None,
    descriptive_statistics: bool = True,
    feature_correlation: bool = True,
    feature_histograms: bool = True,
    cluster_analysis: bool = True,
    stat_columns: Sequence[str] | None = None,
    num_bins: int = 20,
    corr_method: str = "pearson",
    num_clusters: int = 5,
    partition_by: str | Sequence[str] | None = None,
    online: bool = False,
    online_types: Mapping[str, str] | None = None,
    offline: bool = True,
    event_time: str | None = None,
    metadata: Mapping[str, str] | None = None,
) -> None:
    """Create feature group ``featuregroup`` (version ``featuregroup_version``) from ``df``.

    The primary key defaults to the first column. Statistics are computed when
    ``descriptive_statistics`` is true (correlations, histograms and clusters arrive with
    the feature registry release and are ignored here). ``online=True`` also stores the
    latest row per key in the online store; ``offline=False`` makes an online-only group.
    ``online_types`` (the seed's MySQL column types) is accepted and ignored: the online
    backend derives its column types from the feature types.
    """
    del feature_correlation, feature_histograms, cluster_analysis, num_bins, corr_method
    del num_clusters, online_types
    stats: bool | Sequence[str] = list(stat_columns) if stat_columns and descriptive_statistics else \
        descriptive_statistics
    _fs(featurestore).create_feature_group(
        featuregroup, featuregroup_version, data=df, description=description, primary_key=primary_key,
        partition_by=partition_by, event_time=event_time, metadata=metadata, statistics=stats, jobs=jobs,
        online_enabled=online, offline_enabled=offline)


def insert_into_featuregroup(
    df: Any,
    featuregroup: str,
    featurestore: str | None = None,
    featuregroup_version: int = 1,
    mode: str = "append",
    descriptive_statistics: bool = True,
    feature_correlation: bool = True,
    feature_histograms: bool = True,
    cluster_analysis: bool = True,
    stat_columns: Sequence[str] | None = None,
    num_bins: int = 20,
    corr_method: str = "pearson",
    num_clusters: int = 5,
    online: bool = False,
    offline: bool = True,
) -> dict[str, Any]:
    """Insert ``df`` into a feature group: ``mode`` is append, overwrite or upsert. As in the
    seed, ``online`` and ``offline`` say exactly which stores are written: the default
    (``online=False``) writes the offline table only, even of an online-enabled group (its
    online table then lags until the next online write or ``sync_featuregroup_online``)."""
    del feature_correlation, feature_histograms, cluster_analysis, num_bins, corr_method, num_clusters
    del stat_columns
    fg = _fs(featurestore).get_feature_group(featuregroup, featuregroup_version)
    return fg.insert(df, mode, online=bool(online), offline=offline,
                     statistics=None if descriptive_statistics else False)


def get_featuregroup(
    featuregroup: str,
    featurestore: str | None = None,
    featuregroup_version: int = 1,
    dataframe_type: str = "pandas",
    online: bool = False,
    as_of: Any = None,
) -> Any:
    """All rows of a feature group as ``dataframe_type`` (pandas, numpy, python, pyarrow, polars);
    ``as_of`` (a commit id or a time) reads it as it was then (docs/time-travel.md);
    ``online=True`` reads the online table (the latest row per key)."""
    fg = _fs(featurestore).get_feature_group(featuregroup, featuregroup_version)
    return fg.read(dataframe_type, as_of=as_of, online=online)


def get_feature(
    feature: str,
    featurestore: str | None = None,
    featuregroup: str | None = None,
    featuregroup_version: int | None = None,
    dataframe_type: str = "pandas",
    online: bool = False,
) -> Any:
    """One feature's column; the query planner finds its group unless ``featuregroup`` is given
    (``online=True``: from the online tables)."""
    fs = _fs(featurestore)
    if featuregroup is not None:
        fg = fs.get_feature_group(featuregroup, featuregroup_version)
        return fg.select([feature]).read(dataframe_type, online=online)
    return fs.get_features([feature], dataframe_type=dataframe_type, online=online)


def get_features(
    features: Sequence[str],
    featurestore: str | None = None,
    featuregroups_version_dict: Mapping[str, int] | None = None,
    join_key: str | Sequence[str] | None = None,
    dataframe_type: str = "pandas",
    online: bool = False,
    entity_df: Any = None,
    event_time: str | None = None,
    ttl: Any = None,
) -> Any:
    """Features by name, joined across feature groups by the query planner; with ``entity_df``
    and ``event_time``, point-in-time correct for every label row (docs/point-in-time.md);
    ``online=True`` joins the online tables (look entities up with :func:`get_feature_vector`)."""
    return _fs(featurestore).get_features(
        features, featuregroups_version_dict=featuregroups_version_dict or None, join_key=join_key,
        dataframe_type=dataframe_type, entity_df=entity_df, event_time=event_time, ttl=ttl, online=online)


def sql(query: str, featurestore: str | None = None, dataframe_type: str = "pandas", online: bool = False,
        dialect: str = "auto", as_of: Any = None) -> Any:
    """Run a read-only SELECT over the feature groups (tables ``<name>_<version>``); ``as_of``
    reads every table as of a commit id or time (docs/time-travel.md); ``online=True`` queries
    the online tables, primary-key filters becoming key lookups."""
    return _fs(featurestore).sql(query, dataframe_type=dataframe_type, dialect=dialect, as_of=as_of, online=online)


def get_featuregroup_commits(featuregroup: str, featurestore: str | None = None, featuregroup_version: int = 1,
                             limit: int | None = None) -> list[dict[str, Any]]:
    """A feature group's commits, newest first (see ``FeatureGroup.commit_details``)."""
    return _fs(featurestore).get_feature_group(featuregroup, featuregroup_version).commit_details(limit)


def get_featuregroups(featurestore: str | None = None, online: bool = False) -> list[str]:
    """Every feature group, as ``<name>_<version>`` (``online=True``: those stored online)."""
    return [fg.table_name for fg in _fs(featurestore).get_feature_groups() if fg.online_enabled or not online]


def get_features_list(featurestore: str | None = None, online: bool = False) -> list[str]:
    """Every feature name in the feature store (each once; ``online=True``: of the groups stored
    online)."""
    names: dict[str, None] = {}
    for fg in _fs(featurestore).get_feature_groups():
        for f in fg.features if fg.online_enabled or not online else ():
            names.setdefault(f.name)
    return list(names)


def get_featuregroup_features_list(featuregroup: str, version: int | None = None,
                                   featurestore: str | None = None) -> list[str]:
    """The feature names of one feature group (latest version unless ``version``)."""
    return [f.name for f in _fs(featurestore).get_feature_group(featuregroup, version).features]


def get_latest_featuregroup_version(featuregroup: str, featurestore: str | None = None) -> int:
    """The latest version of a feature group (0 when it does not exist, as in hops)."""
    return _fs(featurestore).get_latest_version(featuregroup) or 0


def add_metadata(featuregroup_name: str, metadata: Mapping[str, str], featuregroup_version: int = 1,
                 featurestore: str | None = None) -> None:
    """Attach custom metadata to a feature group."""
    _fs(featurestore).get_feature_group(featuregroup_name, featuregroup_version).add_metadata(metadata)


def get_metadata(featuregroup_name: str, keys: Sequence[str] | None = None, featuregroup_version: int = 1,
                 featurestore: str | None = None) -> dict[str, str]:
    """A feature group's custom metadata: all of it, or the given keys."""
    return _fs(featurestore).get_feature_group(featuregroup_name, featuregroup_version).get_metadata(keys)


def remove_metadata(featuregroup_name: str, keys: Sequence[str], featuregroup_version: int = 1,
                    featurestore: str | None = None) -> None:
    """Remove custom metadata keys from a feature group."""
    _fs(featurestore).get_feature_group(featuregroup_name, featuregroup_version).remove_metadata(keys)


def get_featuregroup_statistics(featuregroup_name: str, featurestore: str | None = None,
                                featuregroup_version: int = 1) -> Any:
    """The latest statistics of a feature group (a :class:`cloudsdk.Statistics`, or None)."""
    return _fs(featurestore).get_feature_group(featuregroup_name, featuregroup_version).statistics()


def update_featuregroup_stats(
    featuregroup: str,
    featuregroup_version: int = 1,
    featurestore: str | None = None,
    descriptive_statistics: bool = True,
    feature_correlation: bool = True,
    feature_histograms: bool = True,
    cluster_analysis: bool = True,
    stat_columns: Sequence[str] | None = None,
    num_bins: int = 20,
    num_clusters: int = 5,
    corr_method: str = "pearson",
) -> Any:
    """Compute and store a feature group's statistics of its latest commit now, exactly as the
    arguments say (descriptive statistics, Pearson/Spearman correlation, histograms with
    ``num_bins`` bins, k-means with ``num_clusters`` clusters) over ``stat_columns`` (default all);
    returns the :class:`cloudsdk.Statistics`."""
    fg = _fs(featurestore).get_feature_group(featuregroup, featuregroup_version)
    return fg.compute_statistics(
        stat_columns, descriptive_statistics=descriptive_statistics, feature_correlation=feature_correlation,
        feature_histograms=feature_histograms, cluster_analysis=cluster_analysis, num_bins=num_bins,
        num_clusters=num_clusters, corr_method=corr_method)


def visualize_featuregroup_distributions(featuregroup_name: str, featurestore: str | None = None,
                                         featuregroup_version: int = 1, figsize: tuple[float, float] | None = None,
                                         color: str = "lightblue", log: bool = False, align: str = "center",
                                         plot: bool = True) -> Any:
    """The histograms of a feature group's latest statistics, one chart per feature (a matplotlib
    Figure; ``plot=False``: not shown)."""
    fg = _fs(featurestore).get_feature_group(featuregroup_name, featuregroup_version)
    return fg.plot_distributions(figsize=figsize, color=color, log=log, align=align, plot=plot)


def visualize_featuregroup_correlations(featuregroup_name: str, featurestore: str | None = None,
                                        featuregroup_version: int = 1, figsize: tuple[float, float] | None = None,
                                        cmap: str = "coolwarm", annot: bool = True, plot: bool = True) -> Any:
    """A heatmap of a feature group's correlation matrix (a matplotlib Figure)."""
    fg = _fs(featurestore).get_feature_group(featuregroup_name, featuregroup_version)
    return fg.plot_correlations(figsize=figsize, cmap=cmap, annot=annot, plot=plot)


def visualize_featuregroup_clusters(featuregroup_name: str, featurestore: str | None = None,
                                    featuregroup_version: int = 1, figsize: tuple[float, float] | None = None,
                                    plot: bool = True) -> Any:
    """A feature group's k-means clusters on the first two principal components (a matplotlib Figure)."""
    fg = _fs(featurestore).get_feature_group(featuregroup_name, featuregroup_version)
    return fg.plot_clusters(figsize=figsize, plot=plot)


def visualize_featuregroup_descriptive_stats(featuregroup_name: str, featurestore: str | None = None,
                                             featuregroup_version: int = 1) -> Any:
    """A feature group's descriptive statistics as a pandas DataFrame (one row per feature)."""
    from cloudsdk.client import plots

    fg = _fs(featurestore).get_feature_group(featuregroup_name, featuregroup_version)
    return plots.descriptive_frame(fg.statistics(), f"feature group {featuregroup_name!r}")


def create_on_demand_featuregroup(
    sql_query: str,
    featuregroup: str,
    jdbc_connector_name: str,
    description: str = "",
    featurestore: str | None = None,
    featuregroup_version: int = 1,
    primary_key: str | Sequence[str] | None = None,
) -> None:
    """Create an on-demand feature group: ``sql_query`` runs on the JDBC connector
    ``jdbc_connector_name`` at every read (see :func:`create_jdbc_connector`); nothing is
    stored but the query and its schema. The primary key defaults to the first column."""
    _fs(featurestore).create_on_demand_feature_group(
        featuregroup, sql_query, jdbc_connector_name, version=featuregroup_version, description=description,
        primary_key=primary_key)


# --- training datasets -----------------------------------------------------------------------


def create_training_dataset(
    features_df: Any,
    training_dataset: str,
    description: str = "",
    featurestore: str | None = None,
    data_format: str = "tfrecords",
    training_dataset_version: int = 1,
    sink: str | None = None,
    path: str | None = None,
    write_mode: str = "overwrite",
    splits: Mapping[str, float] | None = None,
    seed: int | None = None,
    statistics: bool = True,
    descriptive_statistics: bool | None = None,
    jobs: Sequence[Any] | None = None,
    **ignored: Any,
) -> None:
    """Write a dataframe (or a Query) as a training dataset.

    Formats: tfrecords (default, as in hops), parquet, csv, tsv, petastorm, avro, orc, npy,
    hdf5. ``sink`` names a storage connector (default the managed location; an S3 connector
    writes to its bucket); ``splits={"train": 0.8, "test": 0.2}`` with ``seed``. hops' Spark
    options (``petastorm_args``, ``fixed``, ...) are accepted and ignored. ``jobs``: the
    jobs that compute the dataset, names or ``{"name", "url"}`` dicts (docs/registry.md).
    """
    if ignored:
        log.debug("create_training_dataset ignores %s", sorted(ignored))
    _fs(featurestore).create_training_dataset(
        training_dataset, features_df, version=training_dataset_version, data_format=data_format,
        description=description, write_mode=write_mode,
        statistics=statistics if descriptive_statistics is None else descriptive_statistics,
        sink=sink, path=path, splits=splits, seed=seed, jobs=jobs)


def get_training_dataset(training_dataset: str, featurestore: str | None = None,
                         training_dataset_version: int = 1, dataframe_type: str = "pandas",
                         split: str | None = None) -> Any:
    """A training dataset's rows (of one split) as ``dataframe_type``."""
    td = _fs(featurestore).get_training_dataset(training_dataset, training_dataset_version)
    return td.read(dataframe_type, split=split)


def get_training_dataset_path(training_dataset: str, featurestore: str | None = None,
                              training_dataset_version: int = 1, split: str | None = None) -> str:
    """The directory holding a training dataset's files (``part-r-*``): a local path, or an
    ``s3://`` URL for a dataset on an S3 connector."""
    return _fs(featurestore).get_training_dataset(training_dataset, training_dataset_version).get_path(split)


def get_training_datasets(featurestore: str | None = None) -> list[str]:
    """Every training dataset, as ``<name>_<version>``."""
    return [f"{td.name}_{td.version}" for td in _fs(featurestore).get_training_datasets()]


def get_latest_training_dataset_version(training_dataset: str, featurestore: str | None = None) -> int:
    """The latest version of a training dataset (0 when none)."""
    versions = [td.version for td in _fs(featurestore).get_training_datasets() if td.name == training_dataset]
    return max(versions, default=0)


def get_training_dataset_statistics(training_dataset: str, featurestore: str | None = None,
                                    training_dataset_version: int = 1) -> Any:
    """The statistics stored with a training dataset."""
    return _fs(featurestore).get_training_dataset(training_dataset, training_dataset_version).statistics()


def update_training_dataset_stats(
    training_dataset: str,
    training_dataset_version: int = 1,
    featurestore: str | None = None,
    descriptive_statistics: bool = True,
    feature_correlation: bool = True,
    feature_histograms: bool = True,
    cluster_analysis: bool = True,
    stat_columns: Sequence[str] | None = None,
    num_bins: int = 20,
    num_clusters: int = 5,
    corr_method: str = "pearson",
) -> Any:
    """Compute and store a training dataset's statistics now (the options of
    :func:`update_featuregroup_stats`); returns the :class:`cloudsdk.Statistics`."""
    td = _fs(featurestore).get_training_dataset(training_dataset, training_dataset_version)
    return td.compute_statistics(
        stat_columns, descriptive_statistics=descriptive_statistics, feature_correlation=feature_correlation,
        feature_histograms=feature_histograms, cluster_analysis=cluster_analysis, num_bins=num_bins,
        num_clusters=num_clusters, corr_method=corr_method)


def visualize_training_dataset_distributions(training_dataset_name: str, featurestore: str | None = None,
                                             training_dataset_version: int = 1,
                                             figsize: tuple[float, float] | None = None, color: str = "lightblue",
                                             log: bool = False, align: str = "center", plot: bool = True) -> Any:
    """The histograms of a training dataset's statistics (a matplotlib Figure)."""
    td = _fs(featurestore).get_training_dataset(training_dataset_name, training_dataset_version)
    return td.plot_distributions(figsize=figsize, color=color, log=log, align=align, plot=plot)


def visualize_training_dataset_correlations(training_dataset_name: str, featurestore: str | None = None,
                                            training_dataset_version: int = 1,
                                            figsize: tuple[float, float] | None = None, cmap: str = "coolwarm",
                                            annot: bool = True, plot: bool = True) -> Any:
    """A heatmap of a training dataset's correlation matrix (a matplotlib Figure)."""
    td = _fs(featurestore).get_training_dataset(training_dataset_name, training_dataset_version)
    return td.plot_correlations(figsize=figsize, cmap=cmap, annot=annot, plot=plot)


def visualize_training_dataset_clusters(training_dataset_name: str, featurestore: str | None = None,
                                        training_dataset_version: int = 1,
                                        figsize: tuple[float, float] | None = None, plot: bool = True) -> Any:
    """A training dataset's k-means clusters on the first two principal components (a matplotlib Figure)."""
    td = _fs(featurestore).get_training_dataset(training_dataset_name, training_dataset_version)
    return td.plot_clusters(figsize=figsize, plot=plot)


def visualize_training_dataset_descriptive_stats(training_dataset_name: str, featurestore: str | None = None,
                                                 training_dataset_version: int = 1) -> Any:
    """A training dataset's descriptive statistics as a pandas DataFrame."""
    from cloudsdk.client import plots

    td = _fs(featurestore).get_training_dataset(training_dataset_name, training_dataset_version)
    return plots.descriptive_frame(td.statistics(), f"training dataset {training_dataset_name!r}")


def get_training_dataset_tf_record_schema(training_dataset: str, featurestore: str | None = None,
                                          training_dataset_version: int = 1) -> Any:
    """The parsing spec of a tfrecords training dataset: a dict of ``tf.io.FixedLenFeature`` /
    ``tf.io.VarLenFeature`` for ``tf.io.parse_single_example`` (needs TensorFlow)."""
    return _fs(featurestore).get_training_dataset(training_dataset, training_dataset_version).tf_record_schema()


def get_online_featurestore_connector(featurestore: str | None = None) -> Any:
    """The online feature store's connection details: an :class:`cloudsdk.OnlineStoreConnector`
    (``backend``, ``url``, ``jdbc_url``, ``host``, ``port``, ``database``, ``user``, and the
    ``password`` for members of the owning project)."""
    return _fs(featurestore).get_online_featurestore_connector()


# --- the online store: serving (docs/online.md); names new in cloudsdk, not in the seed ----------


def enable_featuregroup_online(featuregroup_name: str, featuregroup_version: int = 1, featurestore: str | None = None,
                               online_types: Mapping[str, str] | None = None) -> None:
    """Store a feature group online too (its online table is created and back-filled with the
    latest row per key). ``online_types`` is accepted and ignored (the types follow the features)."""
    del online_types
    _fs(featurestore).get_feature_group(featuregroup_name, featuregroup_version).enable_online()


def disable_featuregroup_online(featuregroup_name: str, featuregroup_version: int = 1,
                                featurestore: str | None = None) -> None:
    """Stop storing a feature group online (its online table is dropped; the offline one stays)."""
    _fs(featurestore).get_feature_group(featuregroup_name, featuregroup_version).disable_online()


def sync_featuregroup_online(featuregroup: str, featuregroup_version: int = 1,
                             featurestore: str | None = None) -> dict[str, Any]:
    """New in cloudsdk: bring a group's online table up to its latest offline commit;
    ``{"commit", "upserted", "deleted", "online_rows"}``."""
    return _fs(featurestore).get_feature_group(featuregroup, featuregroup_version).sync_online()


def check_featuregroup_online_consistency(featuregroup: str, featuregroup_version: int = 1,
                                          featurestore: str | None = None, limit: int = 10) -> dict[str, Any]:
    """New in cloudsdk: compare a group's online table with its offline table's latest row per
    key (``FeatureGroup.check_online_consistency``)."""
    return _fs(featurestore).check_online_consistency(featuregroup, featuregroup_version, limit=limit)


def get_feature_vector(features: Sequence[str], entry: Mapping[str, Any], featurestore: str | None = None,
                       featuregroups_version_dict: Mapping[str, int] | None = None, return_type: str = "list",
                       allow_missing: bool = False) -> Any:
    """New in cloudsdk: one entity's features from the online store (``entry``: its primary
    key, ``{column: value}``), as a list, dict, pandas or numpy (``FeatureStore.get_feature_vector``)."""
    return _fs(featurestore).get_feature_vector(features, entry, return_type=return_type, allow_missing=allow_missing,
                                                featuregroups_version_dict=featuregroups_version_dict)


def get_feature_vectors(features: Sequence[str], entries: Sequence[Mapping[str, Any]],
                        featurestore: str | None = None, featuregroups_version_dict: Mapping[str, int] | None = None,
                        return_type: str = "list", allow_missing: bool = False) -> Any:
    """New in cloudsdk: many entities' features from the online store, in the order of
    ``entries`` (``FeatureStore.get_feature_vectors``)."""
    return _fs(featurestore).get_feature_vectors(features, entries, return_type=return_type,
                                                 allow_missing=allow_missing,
                                                 featuregroups_version_dict=featuregroups_version_dict)


def get_storage_connectors(featurestore: str | None = None) -> list[tuple[str, str]]:
    """The storage connectors, as (name, type) pairs."""
    return [(c["name"], c["type"]) for c in _fs(featurestore).get_storage_connectors()]


def create_s3_connector(name: str, bucket: str, featurestore: str | None = None, **options: Any) -> None:
    """Register an S3 storage connector (see ``FeatureStore.create_s3_connector`` for the options:
    path, region, endpoint_url, access_key, secret_key, server_side_encryption, ...)."""
    _fs(featurestore).create_s3_connector(name, bucket, **options)


def create_jdbc_connector(name: str, url: str, user: str | None = None, password: str | None = None,
                          featurestore: str | None = None, **options: Any) -> None:
    """Register a JDBC connector to PostgreSQL, MySQL or MariaDB for on-demand feature groups
    (see ``FeatureStore.create_jdbc_connector`` for the options: description, arguments,
    query_timeout_s, exist_ok)."""
    _fs(featurestore).create_jdbc_connector(name, url, user, password, **options)


# --- data validation (docs/validation.md) ------------------------------------------------------


def add_validation_rule(featuregroup: str, name: str, rule_type: str, features: str | Sequence[str] | None = None,
                        featuregroup_version: int = 1, featurestore: str | None = None, *,
                        min: float | None = None, max: float | None = None, level: str = "error",
                        hint: str = "", pattern: str | None = None,
                        allowed_values: Sequence[Any] | None = None) -> dict[str, Any]:
    """Add a validation rule to a feature group (see ``FeatureGroup.add_validation_rule``);
    every later insert is checked against it first."""
    fg = _fs(featurestore).get_feature_group(featuregroup, featuregroup_version)
    return fg.add_validation_rule(name, rule_type, features, min=min, max=max, level=level, hint=hint,
                                  pattern=pattern, allowed_values=allowed_values)


def get_featuregroup_validation_rules(featuregroup: str, featurestore: str | None = None,
                                      featuregroup_version: int = 1) -> list[dict[str, Any]]:
    """A feature group's validation rules, in the order they were added."""
    return _fs(featurestore).get_feature_group(featuregroup, featuregroup_version).get_validation_rules()


def remove_validation_rule(featuregroup: str, name: str, featurestore: str | None = None,
                           featuregroup_version: int = 1) -> None:
    """Remove a validation rule from a feature group."""
    _fs(featurestore).get_feature_group(featuregroup, featuregroup_version).remove_validation_rule(name)


def validate_featuregroup(featuregroup: str, featurestore: str | None = None, featuregroup_version: int = 1,
                          commit_version: int | None = None, dataframe: Any = None) -> Any:
    """Run the validation job of a feature group: validate its rows at ``commit_version``
    (default: the latest commit) and store the report. With ``dataframe``: a dry run of those
    rows instead (nothing is stored). Returns a :class:`ValidationReport`."""
    fg = _fs(featurestore).get_feature_group(featuregroup, featuregroup_version)
    if dataframe is not None:
        if commit_version is not None:
            raise InvalidArgumentError("validate_featuregroup: give a dataframe or a commit_version, not both")
        return fg.validate(dataframe)
    return fg.run_validation(commit_version)


def get_featuregroup_validations(featuregroup: str, featurestore: str | None = None, featuregroup_version: int = 1,
                                 commit_version: int | None = None, limit: int | None = None) -> list[Any]:
    """A feature group's stored validation reports (:class:`ValidationReport`), newest first;
    only those of ``commit_version`` if given."""
    fg = _fs(featurestore).get_feature_group(featuregroup, featuregroup_version)
    return fg.validation_results(commit_version, limit)


# --- the registry: search, tags, training-dataset metadata, provenance (docs/registry.md) -----


def search(query: str, kind: str | None = None, limit: int = 50, featurestore: str | None = None) -> list[Any]:
    """Keyword search over feature groups, features and training datasets (names,
    descriptions, metadata, tags); results grouped by name, best first (``FeatureStore.search``)."""
    return _fs(featurestore).search(query, kind, limit)


def add_featuregroup_tag(featuregroup: str, tag: str, value: str | None = None, featuregroup_version: int = 1,
                         featurestore: str | None = None) -> dict[str, str | None]:
    """Tag a feature group (``value`` optional); returns all its tags."""
    return _fs(featurestore).get_feature_group(featuregroup, featuregroup_version).add_tag(tag, value)


def get_featuregroup_tags(featuregroup: str, featuregroup_version: int = 1,
                          featurestore: str | None = None) -> dict[str, str | None]:
    """A feature group's tags: ``{name: value or None}``."""
    return _fs(featurestore).get_feature_group(featuregroup, featuregroup_version).get_tags()


def remove_featuregroup_tag(featuregroup: str, tag: str, featuregroup_version: int = 1,
                            featurestore: str | None = None) -> dict[str, str | None]:
    """Remove a feature group's tag; returns the tags left."""
    return _fs(featurestore).get_feature_group(featuregroup, featuregroup_version).remove_tag(tag)


def add_training_dataset_tag(training_dataset: str, tag: str, value: str | None = None,
                             training_dataset_version: int = 1,
                             featurestore: str | None = None) -> dict[str, str | None]:
    """Tag a training dataset (``value`` optional); returns all its tags."""
    return _fs(featurestore).get_training_dataset(training_dataset, training_dataset_version).add_tag(tag, value)


def get_training_dataset_tags(training_dataset: str, training_dataset_version: int = 1,
                              featurestore: str | None = None) -> dict[str, str | None]:
    """A training dataset's tags: ``{name: value or None}``."""
    return _fs(featurestore).get_training_dataset(training_dataset, training_dataset_version).get_tags()


def remove_training_dataset_tag(training_dataset: str, tag: str, training_dataset_version: int = 1,
                                featurestore: str | None = None) -> dict[str, str | None]:
    """Remove a training dataset's tag; returns the tags left."""
    return _fs(featurestore).get_training_dataset(training_dataset, training_dataset_version).remove_tag(tag)


def add_training_dataset_metadata(training_dataset: str, metadata: Mapping[str, str],
                                  training_dataset_version: int = 1, featurestore: str | None = None) -> None:
    """Attach custom metadata to a training dataset."""
    _fs(featurestore).get_training_dataset(training_dataset, training_dataset_version).add_metadata(metadata)


def get_training_dataset_metadata(training_dataset: str, keys: Sequence[str] | None = None,
                                  training_dataset_version: int = 1,
                                  featurestore: str | None = None) -> dict[str, str]:
    """A training dataset's custom metadata: all of it, or the given keys."""
    return _fs(featurestore).get_training_dataset(training_dataset, training_dataset_version).get_metadata(keys)


def remove_training_dataset_metadata(training_dataset: str, keys: Sequence[str], training_dataset_version: int = 1,
                                     featurestore: str | None = None) -> None:
    """Remove custom metadata keys from a training dataset."""
    _fs(featurestore).get_training_dataset(training_dataset, training_dataset_version).remove_metadata(keys)


def get_training_dataset_features_used(training_dataset: str, training_dataset_version: int = 1,
                                       featurestore: str | None = None) -> dict[str, Any]:
    """Which feature groups, versions, commits and features trained a dataset (its provenance)."""
    return _fs(featurestore).get_training_dataset(training_dataset, training_dataset_version).features_used()


def get_featuregroup_training_datasets(featuregroup: str, featuregroup_version: int = 1,
                                       featurestore: str | None = None) -> list[dict[str, Any]]:
    """The training datasets built from a feature group version."""
    return _fs(featurestore).get_feature_group(featuregroup, featuregroup_version).training_datasets()


def compare_training_datasets(training_dataset: str, other_training_dataset: str,
                              training_dataset_version: int = 1, other_training_dataset_version: int = 1,
                              keys: str | Sequence[str] | None = None,
                              featurestore: str | None = None) -> dict[str, Any]:
    """How the data changed between two training datasets: schema, statistics and (with
    ``keys``) row-level counts (``FeatureStore.compare_training_datasets``)."""
    fs = _fs(featurestore)
    a = fs.get_training_dataset(training_dataset, training_dataset_version)
    b = fs.get_training_dataset(other_training_dataset, other_training_dataset_version)
    return fs.compare_training_datasets(a, b, keys=keys)
