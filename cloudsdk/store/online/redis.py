"""The Redis online store: one string per row (a JSON array), a set of row keys per table.

Layout under a key prefix (``prefix``, default ``"cloudsdk:"``)::

    {prefix}m:{table}          hash: "schema" (Arrow IPC bytes), "primary_key" (JSON),
                               "generation"
    {prefix}g:{table}          string: the table's generation (new at every create_table)
    {prefix}i:{table}          set of the table's row keys
    {prefix}r:{table}:{key}    string: the row, a JSON array of its values in schema order

Values in a row: JSON numbers, strings, booleans, nulls and lists; floats exactly (NaN and
infinities too), temporal values as their integer, binaries in base64. A lookup of any number
of keys is one ``MGET`` of the generation and the rows: one round trip that also tells whether
the cached schema is still the table's. (One string per row rather than a hash per row: the
rows then come back as one reply element each, decoded by ``json.loads``; redis-py parses
replies in Python, a hash per row cost ~10x more for 100 keys of 16 columns.)

Writes are one ``MULTI``/``EXEC`` after ``WATCH`` of the generation: everything that could
fail is checked before ``MULTI`` (Redis does not roll a transaction back): the rows are
validated and encoded, the table's generation is the cached one, the index is a set. Every
command of the transaction is a ``SET``/``DEL`` of a row (whatever the key held) or an
``SADD``/``SREM`` of the index.

Example:
    >>> store = RedisOnlineStore.from_url("redis://127.0.0.1:6379/0")  # doctest: +SKIP
"""

from __future__ import annotations

import base64
import contextlib
import json
from collections.abc import Callable, Sequence
from json.encoder import encode_basestring_ascii
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import pyarrow as pa
import redis

from cloudsdk.errors import (
    DataValidationError,
    InvalidArgumentError,
    NotFoundError,
    StorageError,
)
from cloudsdk.store.online._lookup import LookupStore, Plan, Row
from cloudsdk.store.online.base import (
    StaleTableError,
    TableSpec,
    check_name,
    conform,
    encode_column,
    new_generation,
)

__all__ = ["RedisOnlineStore"]

_CHUNK = 1000  # row keys per command for scans and drops
_MGET_CHUNK = 10_000  # keys per MGET of a lookup
_loads = json.loads
_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=True).encode


def _key_part(value: Any) -> str:
    if isinstance(value, bytes):
        return "x" + value.hex()
    if isinstance(value, str):
        return encode_basestring_ascii(value)  # = json.dumps(value)
    return str(value)  # int (booleans and temporal values are ints here)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _b64(value: bytes) -> str:
    return base64.b64encode(value).decode("ascii")


class _RedisPlan(Plan):
    """Lookup plan: the row-key prefix, and which row positions are the output."""

    def __init__(self, spec: TableSpec, columns: Sequence[str], prefix: str) -> None:
        super().__init__(spec, columns, "json")
        names = spec.schema.names
        self.row_prefix = f"{prefix}r:{spec.name}:"
        self.gen_key = f"{prefix}g:{spec.name}"
        self.positions = [names.index(c) for c in self.columns]
        self.all = self.positions == list(range(len(names)))
        kinds = spec.kinds
        self.arrow_decoders = tuple(
            (i, base64.b64decode) for i, c in enumerate(self.columns) if kinds[c] == "binary"
        )
        single = len(spec.primary_key) == 1
        row_prefix = self.row_prefix
        self.row_key: Callable[[tuple[Any, ...]], str]
        if single and kinds[spec.primary_key[0]] in ("int", "bool", "temporal"):
            self.row_key = lambda k: row_prefix + str(k[0])
        elif single and kinds[spec.primary_key[0]] == "string":
            self.row_key = lambda k: row_prefix + encode_basestring_ascii(k[0])
        else:
            self.row_key = lambda k: row_prefix + ",".join(_key_part(v) for v in k)

    def pick(self, blob: bytes) -> Row:
        row = _loads(blob)
        if self.all:
            return row
        return [row[i] for i in self.positions]


class RedisOnlineStore(LookupStore):
    """An :class:`~cloudsdk.store.online.base.OnlineStore` in Redis.

    Args:
        client: A ``redis.Redis`` client (its connection pool is thread safe), made without
            ``decode_responses`` (rows may hold binaries).
        prefix: Prefix of every key this store writes.
        url: The URL it was opened from (for ``connection_info``), password removed.

    Raises:
        InvalidArgumentError: A client that decodes responses.
    """

    def __init__(self, client: redis.Redis, *, prefix: str = "cloudsdk:", url: str = "") -> None:
        if client.connection_pool.connection_kwargs.get("decode_responses"):
            raise InvalidArgumentError(
                "the Redis online store needs a client without decode_responses"
            )
        self._r = client
        self._prefix = prefix
        self._url = url
        self._specs: dict[str, TableSpec] = {}
        self._plans = {}

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

    def _gen_key(self, table: str) -> str:
        return f"{self._prefix}g:{table}"

    def _index_key(self, table: str) -> str:
        return f"{self._prefix}i:{table}"

    def _row_key(self, table: str, key: tuple[Any, ...]) -> str:
        return f"{self._prefix}r:{table}:" + ",".join(_key_part(v) for v in key)

    def _error(self, table: str, exc: redis.RedisError) -> StorageError:
        return StorageError(f"Redis online store, table {table!r}: {exc}", table=table)

    def _generation(self, table: str) -> str | None:
        try:
            current = self._r.get(self._gen_key(table))
        except redis.RedisError as exc:
            raise self._error(table, exc) from exc
        return None if current is None else _text(current)

    def _spec(self, table: str) -> TableSpec:
        spec = self._specs.get(table)
        if spec is not None:
            return spec
        check_name(table)
        try:
            meta = self._r.hmget(self._meta_key(table), ["schema", "primary_key", "generation"])
        except redis.RedisError as exc:
            raise StorageError(f"Redis online store: {exc}") from exc
        if meta[0] is None:
            raise NotFoundError(f"no online table {table!r}", table=table)
        schema = meta[0] if isinstance(meta[0], bytes) else meta[0].encode()
        spec = TableSpec.deserialize(table, schema, meta[1] or "[]", meta[2])
        self._specs[table] = spec
        return spec

    def _purge(self, table: str) -> None:
        """Delete the rows and the index of ``table`` (a dropped one, or leftovers)."""
        index = self._index_key(table)
        batch: list[bytes] = []
        for key in self._r.sscan_iter(index, count=_CHUNK):
            batch.append(key)
            if len(batch) >= _CHUNK:
                self._r.delete(*batch)
                batch = []
        if batch:
            self._r.delete(*batch)
        self._r.delete(index)

    # ------------------------------------------------------------------ tables
    def create_table(self, table: str, schema: pa.Schema, primary_key: Sequence[str]) -> None:
        """Create ``table``; a no-op if it exists with the same schema and key.

        Raises:
            SchemaMismatchError: It exists with another schema or key.
        """
        spec = TableSpec.build(table, schema, primary_key).with_generation(new_generation())
        schema_bytes, pk_json = spec.serialize()
        self._forget(table)
        meta, gen = self._meta_key(table), self._gen_key(table)

        def create(pipe: Any) -> bool:
            if pipe.exists(meta):
                return False
            pipe.multi()
            pipe.hset(
                meta,
                mapping={
                    "schema": schema_bytes,
                    "primary_key": pk_json,
                    "generation": spec.generation,
                },
            )
            pipe.set(gen, spec.generation)
            return True

        try:
            if not self._r.exists(meta):
                self._purge(table)  # rows left by a drop that did not finish
            # WATCH/MULTI: the fields and the generation appear together, only if the table is new
            created = bool(self._r.transaction(create, meta, value_from_callable=True))  # type: ignore[arg-type]
        except redis.RedisError as exc:
            raise StorageError(f"Redis online store: cannot create {table!r}: {exc}") from exc
        if not created:
            self._spec(table).check_same(spec)

    def drop_table(self, table: str, *, missing_ok: bool = False) -> None:
        """Drop ``table`` and delete its rows.

        The schema and generation go first (in one command), so that lookups and writes see
        the table gone at once; then the rows.

        Raises:
            NotFoundError: No such table (unless ``missing_ok``).
        """
        check_name(table)
        self._forget(table)
        try:
            existed = self._r.delete(self._meta_key(table), self._gen_key(table))
            self._purge(table)
        except redis.RedisError as exc:
            raise StorageError(f"Redis online store: cannot drop {table!r}: {exc}") from exc
        if not existed and not missing_ok:
            raise NotFoundError(f"no online table {table!r}", table=table)

    # ------------------------------------------------------------------ writes
    def _transaction(self, spec: TableSpec, queue: Callable[[Any], Any]) -> list[Any]:
        """Run ``queue(pipe)``'s commands in one MULTI/EXEC if ``spec`` is still the table's."""
        table = spec.name
        gen, index = self._gen_key(table), self._index_key(table)

        def txn(pipe: Any) -> None:
            current = pipe.get(gen)
            if current is None or current.decode() != spec.generation:
                raise StaleTableError(table)
            if pipe.type(index) not in (b"set", b"none"):
                raise StorageError(
                    f"Redis online store, table {table!r}: key {index} is not a set", table=table
                )
            pipe.multi()
            queue(pipe)

        try:
            return list(self._r.transaction(txn, gen, index))  # type: ignore[arg-type]
        except redis.RedisError as exc:
            raise self._error(table, exc) from exc

    def _encode_rows(self, spec: TableSpec, rows: pa.Table) -> dict[str, str]:
        """Row key -> JSON row, last row per key, validated (nothing is sent yet).

        Raises:
            SchemaMismatchError: See :func:`~cloudsdk.store.online.base.conform`.
            DataValidationError: A null primary-key value.
        """
        cols = conform(rows, list(spec.schema), "rows")
        kinds = spec.kinds
        values: list[list[Any]] = []
        for c, f in zip(cols, spec.schema, strict=True):
            kind = kinds[f.name]
            if kind == "temporal":
                values.append(encode_column(c, kind))
            elif kind == "binary":
                values.append([None if v is None else _b64(v) for v in c.to_pylist()])
            else:
                values.append(c.to_pylist())
        names = spec.schema.names
        # The row keys from the stored form of the key values, as lookups make them.
        key_values = [encode_column(cols[names.index(n)], kinds[n]) for n in spec.primary_key]
        out: dict[str, str] = {}
        for key, row in zip(zip(*key_values, strict=True), zip(*values, strict=True), strict=True):
            if None in key:
                raise DataValidationError(
                    f"null primary key value in rows for online table {spec.name!r}",
                    table=spec.name,
                )
            out[self._row_key(spec.name, key)] = _dumps(row)
        return out

    def upsert(self, table: str, rows: pa.Table) -> int:
        """Write ``rows`` in one MULTI/EXEC (last row per key wins); return the keys written."""

        def run() -> int:
            spec = self._spec(table)
            encoded = self._encode_rows(spec, rows)
            if not encoded:
                return 0

            def queue(pipe: Any) -> None:
                pipe.mset(encoded)
                pipe.sadd(self._index_key(table), *encoded)

            self._transaction(spec, queue)
            return len(encoded)

        return self._retry(table, run)

    def delete(self, table: str, keys: pa.Table) -> int:
        """Delete the rows of ``keys`` in one MULTI/EXEC; return how many existed."""

        def run() -> int:
            spec = self._spec(table)
            _, tuples = spec.encode_keys(keys)
            row_keys = list(dict.fromkeys(self._row_key(table, t) for t in tuples if None not in t))
            if not row_keys:
                return 0

            def queue(pipe: Any) -> None:
                pipe.delete(*row_keys)
                pipe.srem(self._index_key(table), *row_keys)

            return int(self._transaction(spec, queue)[0])

        return self._retry(table, run)

    # ------------------------------------------------------------------ reads
    def _build_plan(self, spec: TableSpec, columns: list[str]) -> _RedisPlan:
        return _RedisPlan(spec, columns, self._prefix)

    def _fetch(self, plan: _RedisPlan, keys: list[tuple[Any, ...] | None]) -> list[Row | None]:
        row_key = plan.row_key
        if len(keys) == 1:
            key = keys[0]
            if key is None:
                return [None]
            try:
                gen, blob = self._r.execute_command("MGET", plan.gen_key, row_key(key))
            except redis.RedisError as exc:
                raise self._error(plan.spec.name, exc) from exc
            if gen is None or gen.decode() != plan.generation:
                raise StaleTableError(plan.spec.name)
            return [None if blob is None else plan.pick(blob)]
        wanted = list(dict.fromkeys(k for k in keys if k is not None))
        found: dict[tuple[Any, ...], Row] = {}
        for i in range(0, len(wanted), _MGET_CHUNK):
            chunk = wanted[i : i + _MGET_CHUNK]
            try:
                reply = self._r.execute_command("MGET", plan.gen_key, *map(row_key, chunk))
            except redis.RedisError as exc:
                raise self._error(plan.spec.name, exc) from exc
            if reply[0] is None or reply[0].decode() != plan.generation:
                raise StaleTableError(plan.spec.name)
            # All the rows as one JSON document: one json.loads call instead of one per row.
            blobs = [b"null" if b is None else b for b in reply[1:]]
            rows = _loads(b"[" + b",".join(blobs) + b"]")
            if plan.all:
                found.update((k, r) for k, r in zip(chunk, rows, strict=True) if r is not None)
            else:
                positions = plan.positions
                for k, r in zip(chunk, rows, strict=True):
                    if r is not None:
                        found[k] = [r[i] for i in positions]
        return [None if k is None else found.get(k) for k in keys]

    def _mget_rows(self, table: str, row_keys: list[bytes]) -> list[list[Any]]:
        out: list[list[Any]] = []
        try:
            for i in range(0, len(row_keys), _CHUNK):
                out.extend(
                    _loads(b) for b in self._r.mget(row_keys[i : i + _CHUNK]) if b is not None
                )
        except redis.RedisError as exc:
            raise self._error(table, exc) from exc
        return out

    def scan(self, table: str, columns: Sequence[str] | None = None) -> pa.Table:
        """Every stored row of ``table`` (order unspecified)."""

        def run() -> pa.Table:
            spec = self._spec(table)
            cols = spec.check_columns(columns)
            self._check_generation(spec)
            try:
                row_keys = list(self._r.sscan_iter(self._index_key(table), count=_CHUNK))
            except redis.RedisError as exc:
                raise self._error(table, exc) from exc
            rows = self._mget_rows(table, row_keys)
            names = spec.schema.names
            kinds = spec.kinds
            values = {}
            for c in cols:
                j = names.index(c)
                column = [r[j] for r in rows]
                if kinds[c] == "binary":
                    column = [None if v is None else base64.b64decode(v) for v in column]
                values[c] = column
            return spec.result(cols, values)

        return self._retry(table, run)

    def _check_generation(self, spec: TableSpec) -> None:
        if self._generation(spec.name) != spec.generation:
            raise StaleTableError(spec.name)

    def count(self, table: str) -> int:
        """The number of rows of ``table``."""

        def run() -> int:
            self._check_generation(self._spec(table))
            try:
                return int(self._r.scard(self._index_key(table)))
            except redis.RedisError as exc:
                raise self._error(table, exc) from exc

        return self._retry(table, run)

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
