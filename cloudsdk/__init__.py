"""cloudsdk: a feature store for machine learning, embedded or remote, on one API.

    >>> import cloudsdk
    >>> conn = cloudsdk.connect()              # the embedded store in ~/.cloudsdk  # doctest: +SKIP
    >>> fs = conn.get_feature_store()                                               # doctest: +SKIP

The Hopsworks-style functional API lives in :mod:`cloudsdk.featurestore`.
Importing cloudsdk pulls in no heavy library (no duckdb, deltalake, sqlalchemy,
fastapi, torch, tensorflow).
"""

from cloudsdk import errors
from cloudsdk.client import (
    Connection,
    Feature,
    FeatureGroup,
    FeatureStore,
    Filter,
    OnlineStoreConnector,
    Query,
    Statistics,
    TrainingDataset,
    ValidationReport,
    connect,
)

__version__ = "0.1.0"

__all__ = [
    "Connection",
    "Feature",
    "FeatureGroup",
    "FeatureStore",
    "Filter",
    "OnlineStoreConnector",
    "Query",
    "Statistics",
    "TrainingDataset",
    "ValidationReport",
    "__version__",
    "connect",
    "errors",
]
