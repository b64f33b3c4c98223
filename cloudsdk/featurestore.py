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
from cloudsdk.errors import ONLINE_UNSUPPORTED, UnsupportedError

log = logging.getLogger(__name__)

__all__ = [
    "add_metadata",
    "connect",
    "create_featuregroup",
    "create_jdbc_connector",
    "create_on_demand_featuregroup",
    "create_s3_connector",
    "create_training_dataset",
    "disconnect",
    "get_feature",
    "get_featuregroup",
    "get_featuregroup_commits",
    "get_featuregroup_features_list",
    "get_featuregroup_statistics",
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
    "get_training_dataset_path",
    "get_training_dataset_statistics",
    "get_training_dataset_tf_record_schema",
    "get_training_datasets",
    "insert_into_featuregroup",
    "project_featurestore",
    "remove_metadata",
    "sql",
    "update_featuregroup_stats",
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


def _no_online(online: bool) -> None:
    if online:
        raise UnsupportedError(ONLINE_UNSUPPORTED)


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
    the feature registry release and are ignored here).
    """
    _no_online(online)
    if not offline:
        raise UnsupportedError("feature groups are stored offline in this release (offline=True)")
    del jobs, feature_correlation, feature_histograms, cluster_analysis, num_bins, corr_method
    del num_clusters, online_types
    stats: bool | Sequence[str] = list(stat_columns) if stat_columns and descriptive_statistics else \
        descriptive_statistics
    _fs(featurestore).create_feature_group(
        featuregroup, featuregroup_version, data=df, description=description, primary_key=primary_key,
        partition_by=partition_by, event_time=event_time, metadata=metadata, statistics=stats)


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
    """Insert ``df`` into a feature group: ``mode`` is append, overwrite or upsert."""
    del feature_correlation, feature_histograms, cluster_analysis, num_bins, corr_method, num_clusters
    del stat_columns
    _no_online(online)
    fg = _fs(featurestore).get_feature_group(featuregroup, featuregroup_version)
    return fg.insert(df, mode, online=online, offline=offline, statistics=None if descriptive_statistics else False)


def get_featuregroup(
    featuregroup: str,
    featurestore: str | None = None,
    featuregroup_version: int = 1,
    dataframe_type: str = "pandas",
    online: bool = False,
    as_of: Any = None,
) -> Any:
    """All rows of a feature group as ``dataframe_type`` (pandas, numpy, python, pyarrow, polars);
    ``as_of`` (a commit id or a time) reads it as it was then (docs/time-travel.md)."""
    _no_online(online)
    return _fs(featurestore).get_feature_group(featuregroup, featuregroup_version).read(dataframe_type, as_of=as_of)


def get_feature(
    feature: str,
    featurestore: str | None = None,
    featuregroup: str | None = None,
    featuregroup_version: int | None = None,
    dataframe_type: str = "pandas",
    online: bool = False,
) -> Any:
    """One feature's column; the query planner finds its group unless ``featuregroup`` is given."""
    _no_online(online)
    fs = _fs(featurestore)
    if featuregroup is not None:
        fg = fs.get_feature_group(featuregroup, featuregroup_version)
        return fg.select([feature]).read(dataframe_type)
    return fs.get_features([feature], dataframe_type=dataframe_type)


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
    and ``event_time``, point-in-time correct for every label row (docs/point-in-time.md)."""
    _no_online(online)
    return _fs(featurestore).get_features(
        features, featuregroups_version_dict=featuregroups_version_dict or None, join_key=join_key,
        dataframe_type=dataframe_type, entity_df=entity_df, event_time=event_time, ttl=ttl)


def sql(query: str, featurestore: str | None = None, dataframe_type: str = "pandas", online: bool = False,
        dialect: str = "auto", as_of: Any = None) -> Any:
    """Run a read-only SELECT over the feature groups (tables ``<name>_<version>``); ``as_of``
    reads every table as of a commit id or time (docs/time-travel.md)."""
    _no_online(online)
    return _fs(featurestore).sql(query, dataframe_type=dataframe_type, dialect=dialect, as_of=as_of)


def get_featuregroup_commits(featuregroup: str, featurestore: str | None = None, featuregroup_version: int = 1,
                             limit: int | None = None) -> list[dict[str, Any]]:
    """A feature group's commits, newest first (see ``FeatureGroup.commit_details``)."""
    return _fs(featurestore).get_feature_group(featuregroup, featuregroup_version).commit_details(limit)


def get_featuregroups(featurestore: str | None = None, online: bool = False) -> list[str]:
    """Every feature group, as ``<name>_<version>``."""
    _no_online(online)
    return [fg.table_name for fg in _fs(featurestore).get_feature_groups()]


def get_features_list(featurestore: str | None = None, online: bool = False) -> list[str]:
    """Every feature name in the feature store (each once)."""
    _no_online(online)
    names: dict[str, None] = {}
    for fg in _fs(featurestore).get_feature_groups():
        for f in fg.features:
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
    """Recompute a feature group's statistics now (descriptive statistics in this release)."""
    del feature_correlation, feature_histograms, cluster_analysis, num_bins, num_clusters, corr_method
    fg = _fs(featurestore).get_feature_group(featuregroup, featuregroup_version)
    if not descriptive_statistics:
        return fg.statistics()
    return fg.compute_statistics(stat_columns)


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
    **ignored: Any,
) -> None:
    """Write a dataframe (or a Query) as a training dataset.

    Formats: tfrecords (default, as in hops), parquet, csv, tsv, petastorm, avro, orc, npy,
    hdf5. ``sink`` names a storage connector (default the managed location; an S3 connector
    writes to its bucket); ``splits={"train": 0.8, "test": 0.2}`` with ``seed``. hops' Spark
    options (``petastorm_args``, ``fixed``, ...) are accepted and ignored.
    """
    if ignored:
        log.debug("create_training_dataset ignores %s", sorted(ignored))
    _fs(featurestore).create_training_dataset(
        training_dataset, features_df, version=training_dataset_version, data_format=data_format,
        description=description, write_mode=write_mode,
        statistics=statistics if descriptive_statistics is None else descriptive_statistics,
        sink=sink, path=path, splits=splits, seed=seed)


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


def get_training_dataset_tf_record_schema(training_dataset: str, featurestore: str | None = None,
                                          training_dataset_version: int = 1) -> Any:
    """The parsing spec of a tfrecords training dataset: a dict of ``tf.io.FixedLenFeature`` /
    ``tf.io.VarLenFeature`` for ``tf.io.parse_single_example`` (needs TensorFlow)."""
    return _fs(featurestore).get_training_dataset(training_dataset, training_dataset_version).tf_record_schema()


def get_online_featurestore_connector(featurestore: str | None = None) -> Any:
    """The online feature store's connection details (not in this release)."""
    raise UnsupportedError(ONLINE_UNSUPPORTED)


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
