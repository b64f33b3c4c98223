"""The statistics options of the client API, as the store's configuration keys."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def statistics_options(*, descriptive_statistics: bool | None = None, feature_correlation: bool | None = None,
                       feature_histograms: bool | None = None, cluster_analysis: bool | None = None,
                       stat_columns: Sequence[str] | None = None, num_bins: int | None = None,
                       num_clusters: int | None = None, corr_method: str | None = None) -> dict[str, Any]:
    """The options that were given (None: the group's configuration decides), keyed as the store
    reads them (see :mod:`cloudsdk.store.stats_extra`)."""
    given = {"descriptive": descriptive_statistics, "correlation": feature_correlation,
             "histograms": feature_histograms, "clusters": cluster_analysis,
             "columns": list(stat_columns) if stat_columns is not None and not isinstance(stat_columns, str)
             else stat_columns,
             "num_bins": num_bins, "num_clusters": num_clusters, "corr_method": corr_method}
    return {k: v for k, v in given.items() if v is not None}
