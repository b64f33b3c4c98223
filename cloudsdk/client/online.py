"""The online store in the client API: its connection details, and feature vectors in the
shape a model wants (list, dict, pandas, numpy).

Light on purpose: pandas and numpy are imported only for those return types.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from cloudsdk.errors import InvalidArgumentError

RETURN_TYPES = ("list", "dict", "pandas", "numpy")
_CONNECTOR_FIELDS = ("backend", "url", "jdbc_url", "host", "port", "database", "user", "password", "prefix")


class OnlineStoreConnector:
    """The connection details of a feature store's online store (what a serving application
    needs to query it directly).

    The password is filled in only for members of the owning project (never through a shared
    feature store), and never appears in ``repr``/``str``.

    Attributes:
        backend: ``"sqlite"``, ``"redis"`` or ``"mysql"``.
        url: the store's URL without the password (a SQLite file path is on the store's host).
        jdbc_url: ``jdbc:mysql://host:port/db`` for MySQL/MariaDB, else None.
        host, port, database, user: the server's address and account (None where not relevant).
        password: the account's password (None when not given or not readable).
        prefix: the key prefix of a Redis online store.
        featurestore: the feature store it belongs to.

    Example:
        >>> conn = fs.get_online_featurestore_connector()  # doctest: +SKIP
        >>> conn.jdbc_url, conn.user  # doctest: +SKIP
    """

    def __init__(self, info: Mapping[str, Any], featurestore: str | None = None) -> None:
        self.backend: str = str(info.get("backend", ""))
        self.url: str | None = info.get("url")
        self.jdbc_url: str | None = info.get("jdbc_url")
        self.host: str | None = info.get("host")
        port = info.get("port")
        self.port: int | None = int(port) if port is not None else None
        self.database: str | None = info.get("database")
        self.user: str | None = info.get("user")
        self.password: str | None = info.get("password")
        self.prefix: str | None = info.get("prefix")
        self.featurestore = featurestore

    @property
    def name(self) -> str:
        """The connector's name, as the seed's connectors are named: ``<featurestore>_online``."""
        return f"{self.featurestore or 'featurestore'}_online"

    def to_dict(self) -> dict[str, Any]:
        """The details as a dict (the password included when this connector has it)."""
        return {k: getattr(self, k) for k in _CONNECTOR_FIELDS}

    def __repr__(self) -> str:
        shown = {k: getattr(self, k) for k in _CONNECTOR_FIELDS if k != "password" and getattr(self, k) is not None}
        if self.password is not None:
            shown["password"] = "***"
        inner = ", ".join(f"{k}={v!r}" for k, v in shown.items())
        return f"OnlineStoreConnector({inner})"

    __str__ = __repr__


def feature_list(features: Any) -> list[str] | dict[str, Any]:
    """What the store takes as ``features``: a list of names, or a query spec.

    Accepts a name, names, :class:`~cloudsdk.client.feature_group.Feature` objects (named
    ``<fg>_<version>.<feature>``) or a :class:`~cloudsdk.client.query.Query`.
    """
    to_dict = getattr(features, "to_dict", None)
    if callable(to_dict) and hasattr(features, "join"):  # a Query
        return dict(to_dict())
    if isinstance(features, str):
        return [features]
    if isinstance(features, Mapping):
        return dict(features)  # a query spec already
    if not isinstance(features, Sequence) or not features:
        raise InvalidArgumentError(
            f"features: expected feature names, Feature objects or a Query, got {type(features).__name__}")
    out = []
    for f in features:
        if isinstance(f, str):
            out.append(f)
        elif hasattr(f, "name") and hasattr(f, "featuregroup"):
            out.append(f"{f.featuregroup}_{f.version}.{f.name}" if f.featuregroup else f.name)
        else:
            raise InvalidArgumentError(f"features: expected feature names, got {f!r}")
    return out


def check_return_type(return_type: str) -> None:
    """InvalidArgumentError for an unknown ``return_type``."""
    if return_type not in RETURN_TYPES:
        raise InvalidArgumentError(f"return_type must be one of {', '.join(RETURN_TYPES)}; got {return_type!r}")


def vectors_as(result: Mapping[str, Any], return_type: str, *, single: bool) -> Any:
    """The rows of a lookup result (``{"features", "rows", "missing"}``) as ``return_type``;
    ``single``: the one row of a one-entity lookup."""
    names, rows = result["features"], result["rows"]
    if return_type == "list":
        return rows[0] if single else rows
    if return_type == "dict":
        return dict(zip(names, rows[0], strict=True)) if single else [dict(zip(names, r, strict=True)) for r in rows]
    if return_type == "pandas":
        import pandas as pd

        return pd.DataFrame.from_records(rows, columns=names).infer_objects()
    if return_type == "numpy":
        array = _numpy(rows, len(names))
        return array[0] if single else array
    check_return_type(return_type)
    raise AssertionError("unreachable")  # pragma: no cover


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _numpy(rows: Sequence[Sequence[Any]], width: int) -> Any:
    """A 2-D array of the rows: numeric features as numbers (None -> nan); object dtype
    when some feature is not numeric (its None stays None)."""
    import numpy as np

    if not rows:
        return np.empty((0, width))
    values = [v for row in rows for v in row]
    if all(v is None or _is_number(v) for v in values):
        if any(v is None or isinstance(v, float) for v in values):
            return np.array([[np.nan if v is None else v for v in row] for row in rows], dtype=np.float64)
        return np.array(rows, dtype=np.int64)
    if all(isinstance(v, bool) for v in values):
        return np.array(rows, dtype=bool)
    numeric = [all(row[i] is None or _is_number(row[i]) for row in rows) for i in range(width)]
    out = np.empty((len(rows), width), dtype=object)
    for r, row in enumerate(rows):
        for i, v in enumerate(row):
            out[r, i] = np.nan if v is None and numeric[i] else v
    return out
