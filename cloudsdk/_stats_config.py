"""The statistics configuration a feature group starts with (shared by the store and the client)."""

from __future__ import annotations

from typing import Any

#: Descriptive statistics, histograms and correlation on every insert; clusters off (a k-means run
#: per commit costs more than the rest together, see docs/statistics.md).
DEFAULT_CONFIG: dict[str, Any] = {
    "enabled": True,
    "descriptive": True,
    "correlation": True,
    "histograms": True,
    "clusters": False,
    "columns": None,
    "num_bins": 20,
    "num_clusters": 5,
    "corr_method": "pearson",
}
