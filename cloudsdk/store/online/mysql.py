"""The MySQL / MariaDB online store: one InnoDB table per online table, via PyMySQL.

Writes are ``INSERT ... ON DUPLICATE KEY UPDATE`` in one transaction; batched lookups are
``SELECT ... WHERE (k1, k2) IN ((...), ...)``. Strings are stored with a binary, no-pad
collation (``"a"``, ``"A"`` and ``"a "`` are three keys). String and binary key columns are
``VARCHAR(255)`` / ``VARBINARY(255)``; a longer key value fails the write (nothing written).
Floats are ``DOUBLE``: MySQL cannot store NaN or infinities in them.

Example:
    >>> store = MySQLOnlineStore.from_url("mysql://root:@127.0.0.1:3306/test")  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Sequence
from typing import Any
from urllib.parse import unquote, urlsplit

import pyarrow as pa
import pymysql

from cloudsdk.errors import InvalidArgumentError, NotFoundError, SchemaMismatchError, StorageError
from cloudsdk.store.online.base import METADATA_TABLE, TableLookup, TableSpec, check_name

__all__ = ["MySQLOnlineStore"]

_INT_TYPES = {
    pa.int8(): "TINYINT",
    pa.int16(): "SMALLINT",
    pa.int32(): "INT",
    pa.int64(): "BIGINT",
    pa.uint8(): "TINYINT UNSIGNED",
    pa.uint16(): "SMALLINT UNSIGNED",
    pa.uint32(): "INT UNSIGNED",
}
_CHUNK = 500  # keys per batched lookup statement
_NO_SUCH_TABLE = 1146
_SESSION_SQL = "SET SESSION sql_mode = 'STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION'"


def _q(name: str) -> str:
    return f"`{name}`"


def _sql_type(f: pa.Field, kind: str, is_key: bool) -> str:
    if kind == "int":
        return _INT_TYPES[f.type]
    if kind == "bool":
        return "TINYINT"
    if kind == "float":
        return "DOUBLE"
    if kind == "temporal":
        return "BIGINT"
    if kind == "binary":
        return "VARBINARY(255)" if is_key else "LONGBLOB"
    return "VARCHAR(255)" if is_key else "LONGTEXT"  # string, json


class MySQLOnlineStore(TableLookup):
    """An :class:`~cloudsdk.store.online.base.OnlineStore` in a MySQL or MariaDB database.

    One connection, serialised by a lock.

    Args:
        host: Server host.
        port: Server port.
        user: User name.
        password: Password (never shown by ``repr`` or ``connection_info()``).
        database: The database the tables live in (must exist).
        flavor: ``"mysql"`` or ``"mariadb"``: the JDBC URL scheme ``connection_info`` gives.
        connect_timeout: Seconds to wait for the connection.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 3306,
        *,
        user: str = "root",
        password: str = "",
        database: str,
        flavor: str = "mysql",
        connect_timeout: float = 10.0,
    ) -> None:
        self._host, self._port, self._user, self._database = host, port, user, database
        self._password = password
        self._flavor = flavor
        self._lock = threading.RLock()
        self._specs: dict[str, TableSpec] = {}
        self._sql: dict[tuple[Any, ...], str] = {}
        self._broken = False
        try:
            self._con = pymysql.connect(
                host=host,
                port=port,
                user=user,
                password=password,
                database=database,
                charset="utf8mb4",
                autocommit=False,
                connect_timeout=int(connect_timeout),
            )
            with self._con.cursor() as cur:
                cur.execute(_SESSION_SQL)
                cur.execute("SELECT VERSION()")
                version = str(cur.fetchone()[0])
                self._collation = (
                    "utf8mb4_nopad_bin" if "mariadb" in version.lower() else "utf8mb4_0900_bin"
                )
                cur.execute(
                    f"CREATE TABLE IF NOT EXISTS {METADATA_TABLE} ("
                    f"name VARCHAR(64) COLLATE {self._collation} PRIMARY KEY, "
                    "schema_ipc LONGBLOB NOT NULL, primary_key TEXT NOT NULL"
                    f") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE {self._collation}"
                )
            self._con.commit()
        except pymysql.MySQLError as exc:
            raise StorageError(
                f"cannot open the MySQL online store {self._safe_url()}: {exc}"
            ) from exc

    @classmethod
    def from_url(cls, url: str) -> MySQLOnlineStore:
        """Open ``mysql://user:password@host:port/database`` (or ``mariadb://``).

        Raises:
            InvalidArgumentError: A URL without a database.
        """
        parts = urlsplit(url)
        scheme = parts.scheme.split("+")[0]
        database = parts.path.lstrip("/")
        if scheme not in ("mysql", "mariadb") or not database:
            raise InvalidArgumentError(
                "a MySQL online store URL looks like mysql://user:password@host:3306/database"
            )
        return cls(
            parts.hostname or "127.0.0.1",
            parts.port or 3306,
            user=unquote(parts.username or "root"),
            password=unquote(parts.password or ""),
            database=unquote(database),
            flavor=scheme,
        )

    def _safe_url(self) -> str:
        return f"jdbc:{self._flavor}://{self._host}:{self._port}/{self._database}"

    def __repr__(self) -> str:
        return f"MySQLOnlineStore({self._safe_url()!r}, user={self._user!r}, password='***')"

    # ------------------------------------------------------------------ plumbing
    def _run(self, table: str, fn: Any) -> Any:
        """Run ``fn(cursor)`` under the lock as one transaction; map errors.

        A connection found broken is re-opened on the next call (the failed call raises).
        """
        with self._lock:
            if self._broken:
                try:
                    self._con.ping(reconnect=True)
                    with self._con.cursor() as cur:
                        cur.execute(_SESSION_SQL)
                    self._broken = False
                except pymysql.MySQLError as exc:
                    raise StorageError(f"MySQL online store unreachable: {exc}") from exc
            try:
                with self._con.cursor() as cur:
                    result = fn(cur)
                self._con.commit()
                return result
            except pymysql.MySQLError as exc:
                try:
                    self._con.rollback()
                except pymysql.MySQLError:
                    self._broken = True
                if isinstance(exc, pymysql.err.InterfaceError) or (
                    exc.args and exc.args[0] in (2006, 2013)
                ):
                    self._broken = True
                if exc.args and exc.args[0] == _NO_SUCH_TABLE:
                    self._specs.pop(table, None)
                    raise NotFoundError(f"no online table {table!r}", table=table) from exc
                raise StorageError(
                    f"MySQL online store, table {table!r}: {exc}", table=table
                ) from exc

    def _load_spec(self, cur: Any, table: str) -> TableSpec | None:
        cur.execute(
            f"SELECT schema_ipc, primary_key FROM {METADATA_TABLE} WHERE name = %s", (table,)
        )
        row = cur.fetchone()
        return None if row is None else TableSpec.deserialize(table, row[0], row[1])

    def _spec(self, table: str) -> TableSpec:
        spec = self._specs.get(table)
        if spec is not None:
            return spec
        check_name(table)
        spec = self._run(table, lambda cur: self._load_spec(cur, table))
        if spec is None:
            raise NotFoundError(f"no online table {table!r}", table=table)
        self._specs[table] = spec
        return spec

    # ------------------------------------------------------------------ tables
    def create_table(self, table: str, schema: pa.Schema, primary_key: Sequence[str]) -> None:
        """Create ``table``; a no-op if it exists with the same schema and key.

        Raises:
            SchemaMismatchError: It exists with another schema or key.
        """
        spec = TableSpec.build(table, schema, primary_key)
        kinds = spec.kinds
        cols = ", ".join(
            f"{_q(f.name)} {_sql_type(f, kinds[f.name], f.name in spec.primary_key)}"
            + (" NOT NULL" if f.name in spec.primary_key else " NULL")
            for f in spec.schema
        )
        pk = ", ".join(_q(n) for n in spec.primary_key)
        schema_bytes, pk_json = spec.serialize()

        def create(cur: Any) -> TableSpec | None:
            existing = self._load_spec(cur, table)
            if existing is None:
                cur.execute(
                    f"CREATE TABLE IF NOT EXISTS {_q(table)} ({cols}, PRIMARY KEY ({pk})) "
                    f"ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE {self._collation}"
                )
                cur.execute(
                    f"INSERT IGNORE INTO {METADATA_TABLE} VALUES (%s, %s, %s)",
                    (table, schema_bytes, pk_json),
                )
                self._con.commit()
                existing = self._load_spec(cur, table)
                if existing is not None and existing.same_as(spec):
                    return None
            return existing

        existing = self._run(table, create)
        if existing is not None and not existing.same_as(spec):
            raise SchemaMismatchError(
                f"online table {table!r} exists with another schema or primary key",
                [f"existing: {existing.schema} key {list(existing.primary_key)}"],
                table=table,
            )
        self._specs[table] = spec

    def drop_table(self, table: str, *, missing_ok: bool = False) -> None:
        """Drop ``table``.

        Raises:
            NotFoundError: No such table (unless ``missing_ok``).
        """
        check_name(table)
        self._specs.pop(table, None)
        self._sql = {k: v for k, v in self._sql.items() if k[0] != table}

        def drop(cur: Any) -> int:
            gone = int(cur.execute(f"DELETE FROM {METADATA_TABLE} WHERE name = %s", (table,)))
            self._con.commit()
            cur.execute(f"DROP TABLE IF EXISTS {_q(table)}")
            return gone

        if not self._run(table, drop) and not missing_ok:
            raise NotFoundError(f"no online table {table!r}", table=table)

    # ------------------------------------------------------------------ writes
    def upsert(self, table: str, rows: pa.Table) -> int:
        """Write ``rows`` in one transaction (last row per key wins); return the keys written."""
        spec = self._spec(table)
        encoded = spec.encode_rows(rows)
        if not encoded:
            return 0
        sql = self._sql.get((table, "upsert"))
        if sql is None:
            names = spec.schema.names
            values = [n for n in names if n not in spec.primary_key] or [spec.primary_key[0]]
            sql = (
                f"INSERT INTO {_q(table)} ({', '.join(_q(n) for n in names)}) "
                f"VALUES ({', '.join('%s' for _ in names)}) ON DUPLICATE KEY UPDATE "
                + ", ".join(f"{_q(n)} = VALUES({_q(n)})" for n in values)
            )
            self._sql[(table, "upsert")] = sql
        self._run(table, lambda cur: cur.executemany(sql, encoded))
        return len(encoded)

    def delete(self, table: str, keys: pa.Table) -> int:
        """Delete the rows of ``keys`` in one transaction; return how many existed."""
        spec = self._spec(table)
        _, tuples = spec.encode_keys(keys)
        wanted = list(dict.fromkeys(t for t in tuples if None not in t))
        if not wanted:
            return 0
        where = " AND ".join(f"{_q(n)} = %s" for n in spec.primary_key)
        sql = f"DELETE FROM {_q(table)} WHERE {where}"

        def delete(cur: Any) -> int:
            return sum(int(cur.execute(sql, t)) for t in wanted)

        return int(self._run(table, delete))

    # ------------------------------------------------------------------ reads
    def get(self, table: str, keys: pa.Table, columns: Sequence[str] | None = None) -> pa.Table:
        """Look up ``keys``; see :class:`~cloudsdk.store.online.base.OnlineStore`."""
        spec = self._spec(table)
        out_cols = spec.check_columns(columns)
        key_cols, tuples = spec.encode_keys(keys)
        value_cols = [c for c in out_cols if c not in spec.primary_key]
        pk = spec.primary_key
        wanted = list(dict.fromkeys(t for t in tuples if None not in t))

        def lookup(cur: Any) -> dict[tuple[Any, ...], tuple[Any, ...]]:
            found: dict[tuple[Any, ...], tuple[Any, ...]] = {}
            if len(wanted) == 1:
                cur.execute(self._get1_sql(table, pk, value_cols), wanted[0])
                row = cur.fetchone()
                if row is not None:
                    found[wanted[0]] = row
                return found
            for i in range(0, len(wanted), _CHUNK):
                chunk = wanted[i : i + _CHUNK]
                cur.execute(
                    self._batch_sql(table, pk, value_cols, len(chunk)),
                    [v for t in chunk for v in t],
                )
                for row in cur.fetchall():
                    found[tuple(row[: len(pk)])] = row[len(pk) :]
            return found

        found_rows = self._run(table, lookup) if wanted else {}
        nulls = (None,) * len(value_cols)
        rows = [found_rows.get(t, nulls) for t in tuples]
        return spec.result(
            out_cols,
            {c: [r[j] for r in rows] for j, c in enumerate(value_cols)},
            key_cols=key_cols,
            found=[t in found_rows for t in tuples],
        )

    def _get1_sql(self, table: str, pk: Sequence[str], value_cols: list[str]) -> str:
        cache_key = (table, "get1", tuple(value_cols))
        sql = self._sql.get(cache_key)
        if sql is None:
            sel = ", ".join(_q(c) for c in value_cols) or "1"
            where = " AND ".join(f"{_q(n)} = %s" for n in pk)
            sql = self._sql[cache_key] = f"SELECT {sel} FROM {_q(table)} WHERE {where}"
        return sql

    def _batch_sql(self, table: str, pk: Sequence[str], value_cols: list[str], n: int) -> str:
        cache_key = (table, "getn", tuple(value_cols), n)
        sql = self._sql.get(cache_key)
        if sql is None:
            sel = ", ".join(_q(c) for c in [*pk, *value_cols])
            tup = "(" + ", ".join("%s" for _ in pk) + ")"
            cols = "(" + ", ".join(_q(c) for c in pk) + ")"
            if len(pk) == 1:
                tup, cols = "%s", _q(pk[0])
            cond = f"{cols} IN ({', '.join(tup for _ in range(n))})"
            sql = self._sql[cache_key] = f"SELECT {sel} FROM {_q(table)} WHERE {cond}"
        return sql

    def scan(self, table: str, columns: Sequence[str] | None = None) -> pa.Table:
        """Every stored row of ``table`` (in primary-key order)."""
        spec = self._spec(table)
        cols = spec.check_columns(columns)
        order = ", ".join(_q(c) for c in spec.primary_key)
        sql = f"SELECT {', '.join(_q(c) for c in cols)} FROM {_q(table)} ORDER BY {order}"

        def scan(cur: Any) -> list[tuple[Any, ...]]:
            cur.execute(sql)
            return list(cur.fetchall())

        rows = self._run(table, scan)
        return spec.result(cols, {c: [r[j] for r in rows] for j, c in enumerate(cols)})

    def count(self, table: str) -> int:
        """The number of rows of ``table``."""
        self._spec(table)

        def count(cur: Any) -> int:
            cur.execute(f"SELECT COUNT(*) FROM {_q(table)}")
            return int(cur.fetchone()[0])

        return int(self._run(table, count))

    def connection_info(self, *, include_password: bool = False) -> dict[str, Any]:
        """JDBC-style URL, host, port, database and user; the password only if asked for."""
        info: dict[str, Any] = {
            "backend": "mysql",
            "url": self._safe_url(),
            "host": self._host,
            "port": self._port,
            "database": self._database,
            "user": self._user,
        }
        if include_password:
            info["password"] = self._password
        return info

    def close(self) -> None:
        """Close the connection."""
        with self._lock, contextlib.suppress(pymysql.MySQLError):
            self._con.close()
