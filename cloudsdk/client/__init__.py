"""The client API: connections, feature stores, feature groups, queries, training datasets."""

from cloudsdk.client.connection import Connection, connect
from cloudsdk.client.feature_group import Feature, FeatureGroup, Statistics
from cloudsdk.client.feature_store import FeatureStore
from cloudsdk.client.online import OnlineStoreConnector
from cloudsdk.client.query import Filter, Query
from cloudsdk.client.training_dataset import TrainingDataset
from cloudsdk.client.validation import ValidationReport

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
    "connect",
]
