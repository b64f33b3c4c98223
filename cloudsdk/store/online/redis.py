"""The Redis online store: one hash per key row, a set of row keys per table.

Layout under a key prefix (``prefix``, default ``"cloudsdk:"``)::

    {prefix}m:{table}          hash: "schema" (Arrow IPC bytes), "primary_key" (JSON)
    {prefix}i:{table}          set of the table's row keys
    {prefix}r:{table}:{key}    hash: column -> value (nulls are absent fields)

Values are stored as text (integers, exact ``repr`` of floats, ``0``/``1`` for booleans, the
integer of temporal values, JSON for lists) or raw bytes (binary). Writes are one
``MULTI``/``EXEC`` transaction; lookups are ``HMGET`` (pipelined for batches).

The table's schema is cached per store object: a table dropped by another process is seen
as missing by reads (no rows), but a write from a stale object recreates its rows.

Example:
    >>> store = RedisOnlineStore.from_url("redis://127.0.0.1:6379/0")  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import pyarrow as pa
import redis

from cloudsdk.errors import InvalidArgumentError, NotFoundError, SchemaMismatchError, StorageError
from cloudsdk.store.online.base import TableLookup, TableSpec, check_name, from_bytes, to_bytes

__all__ = ["RedisOnlineStore"]

_CHUNK = 1000  # row keys per pipeline round trip for scans and drops


def _key_part(value: Any) -> str:
    if isinstance(value, bytes):
        return "x" + value.hex()
    if isinstance(value, str):
        return json.dumps(value)
    return str(value)  # int (booleans and temporal values are ints here)


class RedisOnlineStore(TableLookup):
    """An :class:`~cloudsdk.store.online.base.OnlineStore` in Redis.

    Args:
        client: A ``redis.Redis`` client (its connection pool is thread safe).
        prefix: Prefix of every key this store writes.
        url: The URL it was opened from (for ``connection_info``), password removed.
    """

    def __init__(self, client: redis.Redis, *, prefix: str = "cloudsdk:", url: str = "") -> None:
        self._r = client
        self._prefix = prefix
        self._url = url
        self._specs: dict[str, TableSpec] = {}

    @classmethod
    def from_url(cls, url: str) -> RedisOnlineStore:
        """Open ``redis://[user:password@]host:port/db[?prefix=...]`` (or ``rediss://``).

        Raises:
            InvalidArgumentError: Not a redis URL.
            StorageError: The server cannot be reached.
        """
        parts = urlsplit(url)
        if parts.scheme not in ("redis", "rediss"):
            raise InvalidArgumentError("a Redis online store URL looks like redis://host:6379/0")
        query = parse_qs(parts.query)
        prefix = query.pop("prefix", ["cloudsdk:"])[0]
        rest = urlunsplit(parts._replace(query=urlencode(query, doseq=True)))
        host = parts.hostname or "127.0.0.1"
        safe = f"{parts.scheme}://{host}:{parts.port or 6379}{parts.path or '/0'}"
        try:
            client = redis.Redis.from_url(rest)
            client.ping()
        except (redis.RedisError, ValueError) as exc:
            raise StorageError(f"cannot open the Redis online store {safe}: {exc}") from exc
        return cls(client, prefix=prefix, url=safe)

    def __repr__(self) -> str:
        return f"RedisOnlineStore({self._url!r}, prefix={self._prefix!r})"

    # ------------------------------------------------------------------ keys
    def _meta_key(self, table: str) -> str:
        return f"{self._prefix}m:{table}"

    def _index_key(self, table: str) -> str:
        return f"{self._prefix}i:{table}"

    def _row_key(self, table: str, key: tuple[Any, ...]) -> str:
        return f"{self._prefix}r:{table}:" + ",".join(_key_part(v) for v in key)

    def _spec(self, table: str) -> TableSpec:
        spec = self._specs.get(table)
        if spec is not None:
            return spec
        check_name(table)
        try:
            meta = self._r.hmget(self._meta_key(table), ["schema", "primary_key"])
        except redis.RedisError as exc:
            raise StorageError(f"Redis online store: {exc}") from exc
        if meta[0] is None:
            raise NotFoundError(f"no online table {table!r}", table=table)
        schema = meta[0] if isinstance(meta[0], bytes) else meta[0].encode()
        spec = TableSpec.deserialize(table, schema, meta[1] or "[]")
        self._specs[table] = spec
        return spec

    # ------------------------------------------------------------------ tables
    def create_table(self, table: str, schema: pa.Schema, primary_key: Sequence[str]) -> None:
        """Create ``table``; a no-op if it exists with the same schema and key.

        Raises:
            SchemaMismatchError: It exists with another schema or key.
        """
        spec = TableSpec.build(table, schema, primary_key)
        schema_bytes, pk_json = spec.serialize()
        self._specs.pop(table, None)
        meta = self._meta_key(table)

        def create(pipe: Any) -> bool:
            if pipe.exists(meta):
                return False
            pipe.multi()
            pipe.hset(meta, mapping={"schema": schema_bytes, "primary_key": pk_json})
            return True

        try:  # WATCH/MULTI: both fields appear together, and only if the table is new
            created = bool(self._r.transaction(create, meta, value_from_callable=True))  # type: ignore[arg-type]
        except redis.RedisError as exc:
            raise StorageError(f"Redis online store: cannot create {table!r}: {exc}") from exc
        existing = spec if created else self._spec(table)
        if not existing.same_as(spec):
            raise SchemaMismatchError(
                f"online table {table!r} exists with another schema or primary key",
                [f"existing: {existing.schema} key {list(existing.primary_key)}"],
                table=table,
            )
        self._specs[table] = existing

    def drop_table(self, table: str, *, missing_ok: bool = False) -> None:
        """Drop ``table`` and delete its rows.

        Raises:
            NotFoundError: No such table (unless ``missing_ok``).
        """
        check_name(table)
        self._specs.pop(table, None)
        index = self._index_key(table)
        try:
            existed = self._r.exists(self._meta_key(table))
            batch: list[bytes] = []
            for key in self._r.sscan_iter(index, count=_CHUNK):
                batch.append(key)
                if len(batch) >= _CHUNK:
                    self._r.delete(*batch)
                    batch = []
            if batch:
                self._r.delete(*batch)
            self._r.delete(index, self._meta_key(table))
        except redis.RedisError as exc:
            raise StorageError(f"Redis online store: cannot drop {table!r}: {exc}") from exc
        if not existed and not missing_ok:
            raise NotFoundError(f"no online table {table!r}", table=table)

    # ------------------------------------------------------------------ writes
    def upsert(self, table: str, rows: pa.Table) -> int:
        """Write ``rows`` in one MULTI/EXEC (last row per key wins); return the keys written."""
        spec = self._spec(table)
        encoded = spec.encode_rows(rows)
        if not encoded:
            return 0
        names = spec.schema.names
        key_idx = [names.index(n) for n in spec.primary_key]
        index = self._index_key(table)
        try:
            with self._r.pipeline(transaction=True) as pipe:
                row_keys = []
                for row in encoded:
                    rk = self._row_key(table, tuple(row[i] for i in key_idx))
                    row_keys.append(rk)
                    pipe.delete(rk)
                    pipe.hset(
                        rk,
                        mapping={
                            n: to_bytes(v) for n, v in zip(names, row, strict=True) if v is not None
                        },
                    )
                pipe.sadd(index, *row_keys)
                pipe.execute()
        except redis.RedisError as exc:
            raise StorageError(f"Redis online store, table {table!r}: {exc}", table=table) from exc
        return len(encoded)

    def delete(self, table: str, keys: pa.Table) -> int:
        """Delete the rows of ``keys`` in one MULTI/EXEC; return how many existed."""
        spec = self._spec(table)
        _, tuples = spec.encode_keys(keys)
        row_keys = list(dict.fromkeys(self._row_key(table, t) for t in tuples if None not in t))
        if not row_keys:
            return 0
        try:
            with self._r.pipeline(transaction=True) as pipe:
                for rk in row_keys:
                    pipe.delete(rk)
                pipe.srem(self._index_key(table), *row_keys)
                results = pipe.execute()
        except redis.RedisError as exc:
            raise StorageError(f"Redis online store, table {table!r}: {exc}", table=table) from exc
        return int(sum(results[:-1]))

    # ------------------------------------------------------------------ reads
    def _fetch(
        self, table: str, row_keys: list[str], fields: list[str]
    ) -> list[list[bytes | None]]:
        try:
            if len(row_keys) == 1:
                return [list(self._r.hmget(row_keys[0], fields))]  # type: ignore[arg-type]
            out: list[list[bytes | None]] = []
            for i in range(0, len(row_keys), _CHUNK):
                with self._r.pipeline(transaction=False) as pipe:
                    for rk in row_keys[i : i + _CHUNK]:
                        pipe.hmget(rk, fields)
                    out.extend(pipe.execute())
            return out
        except redis.RedisError as exc:
            raise StorageError(f"Redis online store, table {table!r}: {exc}", table=table) from exc

    def get(self, table: str, keys: pa.Table, columns: Sequence[str] | None = None) -> pa.Table:
        """Look up ``keys``; see :class:`~cloudsdk.store.online.base.OnlineStore`."""
        spec = self._spec(table)
        out_cols = spec.check_columns(columns)
        key_cols, tuples = spec.encode_keys(keys)
        value_cols = [c for c in out_cols if c not in spec.primary_key]
        fields = [spec.primary_key[0], *value_cols]  # the key field tells whether the row exists
        valid = [i for i, t in enumerate(tuples) if None not in t]
        fetched = self._fetch(table, [self._row_key(table, tuples[i]) for i in valid], fields)
        rows: list[list[bytes | None]] = [[None] * len(fields) for _ in tuples]
        for i, row in zip(valid, fetched, strict=True):
            rows[i] = row
        kinds = spec.kinds
        values = {
            c: from_bytes([r[j + 1] for r in rows], kinds[c]) for j, c in enumerate(value_cols)
        }
        return spec.result(
            out_cols, values, key_cols=key_cols, found=[r[0] is not None for r in rows]
        )

    def scan(self, table: str, columns: Sequence[str] | None = None) -> pa.Table:
        """Every stored row of ``table`` (order unspecified)."""
        spec = self._spec(table)
        cols = spec.check_columns(columns)
        try:
            row_keys = [
                k.decode() for k in self._r.sscan_iter(self._index_key(table), count=_CHUNK)
            ]
        except redis.RedisError as exc:
            raise StorageError(f"Redis online store, table {table!r}: {exc}", table=table) from exc
        fetched = self._fetch(table, row_keys, [spec.primary_key[0], *cols])
        rows = [r for r in fetched if r[0] is not None]
        kinds = spec.kinds
        return spec.result(
            cols, {c: from_bytes([r[j + 1] for r in rows], kinds[c]) for j, c in enumerate(cols)}
        )

    def count(self, table: str) -> int:
        """The number of rows of ``table``."""
        self._spec(table)
        try:
            return int(self._r.scard(self._index_key(table)))
        except redis.RedisError as exc:
            raise StorageError(f"Redis online store, table {table!r}: {exc}", table=table) from exc

    def connection_info(self, *, include_password: bool = False) -> dict[str, Any]:
        """The Redis URL (without credentials), key prefix; the password only if asked for."""
        kwargs = self._r.connection_pool.connection_kwargs
        info: dict[str, Any] = {
            "backend": "redis",
            "url": self._url,
            "host": kwargs.get("host"),
            "port": kwargs.get("port"),
            "db": kwargs.get("db", 0),
            "prefix": self._prefix,
        }
        if kwargs.get("username"):
            info["user"] = kwargs["username"]
        if include_password:
            info["password"] = kwargs.get("password")
        return info

    def close(self) -> None:
        """Close the client's connections."""
        with contextlib.suppress(redis.RedisError):
            self._r.close()
