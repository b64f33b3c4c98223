"""Online-store backends: the latest row per primary key, for serving.

:func:`open_online_store` opens a backend from a URL; every backend implements
:class:`~cloudsdk.store.online.base.OnlineStore` (see :mod:`cloudsdk.store.online.base` for the
semantics). Backend modules (and their client libraries) are imported only when used.

Example:
    >>> import pyarrow as pa
    >>> store = open_online_store("sqlite:///:memory:")
    >>> store.create_table("fg_1", pa.schema([("id", pa.int64()), ("x", pa.float64())]), ["id"])
    >>> store.upsert("fg_1", pa.table({"id": [1, 2], "x": [0.5, 1.5]}))
    2
    >>> store.get("fg_1", pa.table({"id": [2, 3]})).to_pylist()
    [{'id': 2, 'x': 1.5, '__found__': True}, {'id': 3, 'x': None, '__found__': False}]
    >>> store.lookup("fg_1", [(2,), (3,)])  # the fast path: plain Python, no Arrow
    [(2, 1.5), None]
"""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

from cloudsdk.errors import InvalidArgumentError
from cloudsdk.store.online.base import FOUND_COLUMN, OnlineStore, TableSpec, check_name

__all__ = ["FOUND_COLUMN", "OnlineStore", "TableSpec", "check_name", "open_online_store"]


def open_online_store(url: str) -> OnlineStore:
    """Open the online store at ``url``.

    Args:
        url: ``sqlite:///relative/path.db``, ``sqlite:////absolute/path.db``,
            ``sqlite:///:memory:``; ``redis://[user:password@]host:port/db[?prefix=p:]``
            (or ``rediss://``); ``mysql://user:password@host:port/database`` or
            ``mariadb://...`` (``?pool_size=8``: the most connections open at once).

    Returns:
        The backend, connected.

    Raises:
        InvalidArgumentError: An unknown scheme or a malformed URL.
        StorageError: The store cannot be opened or reached.
    """
    if not isinstance(url, str):
        raise InvalidArgumentError("an online store URL must be a string")
    scheme = urlsplit(url).scheme.split("+")[0].lower()
    if scheme == "sqlite":
        from cloudsdk.store.online.sqlite import SQLiteOnlineStore

        if not url.startswith("sqlite:///") or len(url) == len("sqlite:///"):
            raise InvalidArgumentError("a SQLite online store URL looks like sqlite:///path.db")
        return SQLiteOnlineStore(unquote(url[len("sqlite:///") :]))
    if scheme in ("redis", "rediss"):
        from cloudsdk.store.online.redis import RedisOnlineStore

        return RedisOnlineStore.from_url(url)
    if scheme in ("mysql", "mariadb"):
        from cloudsdk.store.online.mysql import MySQLOnlineStore

        return MySQLOnlineStore.from_url(url)
    raise InvalidArgumentError(
        f"unknown online store URL scheme {scheme!r}: use sqlite://, redis:// or mysql://",
        url=url.split("@")[-1],
    )
