"""The feature store: catalog, offline Delta tables, SQL sandbox, query planner.

Needs the ``local`` extra (deltalake, duckdb, SQLAlchemy, sqlglot). Never imports
``cloudsdk.client`` or ``cloudsdk.server``.
"""

from __future__ import annotations

try:
    import deltalake  # noqa: F401
    import duckdb  # noqa: F401
    import sqlalchemy  # noqa: F401
    import sqlglot  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised in a light environment
    raise ImportError(
        f"the embedded feature store needs the 'local' extra ({exc.name} is missing): "
        "pip install 'cloudsdk[local]'"
    ) from exc

from cloudsdk.store.store import DEFAULT_PROJECT, FeatureStoreService

__all__ = ["DEFAULT_PROJECT", "FeatureStoreService"]
