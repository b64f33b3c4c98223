"""The SQLite online store: one file, WAL mode, one ``WITHOUT ROWID`` table per online table.

Example:
    >>> store = SQLiteOnlineStore("/tmp/online.db")  # doctest: +SKIP
    >>> store.create_table("fg_1", schema, ["id"])  # doctest: +SKIP
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Sequence
from typing import Any

import pyarrow as pa

from cloudsdk.errors import NotFoundError, SchemaMismatchError, StorageError
from cloudsdk.store.online.base import METADATA_TABLE, TableLookup, TableSpec, check_name

__all__ = ["SQLiteOnlineStore"]

_SQL_TYPES = {
    "bool": "INTEGER",
    "int": "INTEGER",
    "float": "REAL",
    "string": "TEXT",
    "binary": "BLOB",
    "temporal": "INTEGER",
    "json": "TEXT",
}
_CHUNK = 250  # keys per batched lookup statement


def _q(name: str) -> str:
    return f'"{name}"'


class SQLiteOnlineStore(TableLookup):
    """An :class:`~cloudsdk.store.online.base.OnlineStore` in a SQLite file.

    One connection, serialised by a lock (SQLite itself serialises writers); WAL mode lets
    other processes read while this one writes.

    Args:
        path: The database file (created if absent), or ``":memory:"``.
        timeout: Seconds to wait for another process's write lock.
    """

    def __init__(self, path: str | os.PathLike[str], *, timeout: float = 5.0) -> None:
        self._path = os.fspath(path)
        self._lock = threading.RLock()
        self._specs: dict[str, TableSpec] = {}
        self._sql: dict[tuple[Any, ...], str] = {}
        try:
            self._con = sqlite3.connect(
                self._path, isolation_level=None, check_same_thread=False, timeout=timeout
            )
            if self._path != ":memory:":
                self._con.execute("PRAGMA journal_mode=WAL")
            self._con.execute("PRAGMA synchronous=NORMAL")
            self._con.execute(
                f"CREATE TABLE IF NOT EXISTS {METADATA_TABLE} "
                "(name TEXT PRIMARY KEY, schema BLOB NOT NULL, primary_key TEXT NOT NULL)"
            )
        except sqlite3.Error as exc:
            raise StorageError(f"cannot open the SQLite online store {self._path}: {exc}") from exc

    def __repr__(self) -> str:
        return f"SQLiteOnlineStore({self._path!r})"

    # ------------------------------------------------------------------ metadata
    def _load_spec(self, table: str) -> TableSpec | None:
        row = self._con.execute(
            f"SELECT schema, primary_key FROM {METADATA_TABLE} WHERE name = ?", (table,)
        ).fetchone()
        return None if row is None else TableSpec.deserialize(table, row[0], row[1])

    def _spec(self, table: str) -> TableSpec:
        spec = self._specs.get(table)
        if spec is not None:
            return spec
        check_name(table)
        with self._lock:
            try:
                spec = self._load_spec(table)
            except sqlite3.Error as exc:
                raise StorageError(f"SQLite online store: {exc}") from exc
        if spec is None:
            raise NotFoundError(f"no online table {table!r}", table=table)
        self._specs[table] = spec
        return spec

    def _fail(self, table: str, exc: sqlite3.Error) -> Exception:
        if "no such table" in str(exc):
            self._specs.pop(table, None)
            return NotFoundError(f"no online table {table!r}", table=table)
        return StorageError(f"SQLite online store, table {table!r}: {exc}", table=table)

    def create_table(self, table: str, schema: pa.Schema, primary_key: Sequence[str]) -> None:
        """Create ``table``; a no-op if it exists with the same schema and key.

        Raises:
            SchemaMismatchError: It exists with another schema or key.
        """
        spec = TableSpec.build(table, schema, primary_key)
        kinds = spec.kinds
        cols = ", ".join(
            f"{_q(f.name)} {_SQL_TYPES[kinds[f.name]]}"
            + (" NOT NULL" if f.name in spec.primary_key else "")
            for f in spec.schema
        )
        pk = ", ".join(_q(n) for n in spec.primary_key)
        schema_bytes, pk_json = spec.serialize()
        with self._lock:
            try:
                self._con.execute("BEGIN IMMEDIATE")
                try:
                    existing = self._load_spec(table)
                    if existing is None:
                        self._con.execute(
                            f"CREATE TABLE {_q(table)} ({cols}, PRIMARY KEY ({pk})) WITHOUT ROWID"
                        )
                        self._con.execute(
                            f"INSERT INTO {METADATA_TABLE} VALUES (?, ?, ?)",
                            (table, schema_bytes, pk_json),
                        )
                    self._con.execute("COMMIT")
                except BaseException:
                    self._con.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                raise StorageError(f"SQLite online store: cannot create {table!r}: {exc}") from exc
        if existing is not None and not existing.same_as(spec):
            raise SchemaMismatchError(
                f"online table {table!r} exists with another schema or primary key",
                [f"existing: {existing.schema} key {list(existing.primary_key)}"],
                table=table,
            )
        self._specs[table] = existing or spec

    def drop_table(self, table: str, *, missing_ok: bool = False) -> None:
        """Drop ``table``.

        Raises:
            NotFoundError: No such table (unless ``missing_ok``).
        """
        check_name(table)
        self._specs.pop(table, None)
        with self._lock:
            try:
                self._con.execute("BEGIN IMMEDIATE")
                try:
                    gone = self._con.execute(
                        f"DELETE FROM {METADATA_TABLE} WHERE name = ?", (table,)
                    ).rowcount
                    self._con.execute(f"DROP TABLE IF EXISTS {_q(table)}")
                    self._con.execute("COMMIT")
                except BaseException:
                    self._con.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                raise StorageError(f"SQLite online store: cannot drop {table!r}: {exc}") from exc
        self._sql = {k: v for k, v in self._sql.items() if k[0] != table}
        if not gone and not missing_ok:
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
            names = ", ".join(_q(n) for n in spec.schema.names)
            marks = ", ".join("?" for _ in spec.schema.names)
            sql = f"INSERT OR REPLACE INTO {_q(table)} ({names}) VALUES ({marks})"
            self._sql[(table, "upsert")] = sql
        self._write(table, sql, encoded)
        return len(encoded)

    def _write(self, table: str, sql: str, params: list[tuple[Any, ...]]) -> int:
        with self._lock:
            try:
                self._con.execute("BEGIN IMMEDIATE")
                try:
                    n = self._con.executemany(sql, params).rowcount
                    self._con.execute("COMMIT")
                except BaseException:
                    self._con.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                raise self._fail(table, exc) from exc
        return n

    def delete(self, table: str, keys: pa.Table) -> int:
        """Delete the rows of ``keys`` in one transaction; return how many existed."""
        spec = self._spec(table)
        _, tuples = spec.encode_keys(keys)
        tuples = list(dict.fromkeys(t for t in tuples if None not in t))
        if not tuples:
            return 0
        where = " AND ".join(f"{_q(n)} = ?" for n in spec.primary_key)
        return self._write(table, f"DELETE FROM {_q(table)} WHERE {where}", tuples)

    # ------------------------------------------------------------------ reads
    def get(self, table: str, keys: pa.Table, columns: Sequence[str] | None = None) -> pa.Table:
        """Look up ``keys``; see :class:`~cloudsdk.store.online.base.OnlineStore`."""
        spec = self._spec(table)
        out_cols = spec.check_columns(columns)
        key_cols, tuples = spec.encode_keys(keys)
        value_cols = [c for c in out_cols if c not in spec.primary_key]
        pk = spec.primary_key
        found_rows: dict[tuple[Any, ...], tuple[Any, ...]] = {}
        wanted = list(dict.fromkeys(t for t in tuples if None not in t))
        with self._lock:
            try:
                if len(wanted) == 1:
                    sql = self._sql.get((table, "get1", tuple(value_cols)))
                    if sql is None:
                        sel = ", ".join(_q(c) for c in value_cols) or "1"
                        where = " AND ".join(f"{_q(n)} = ?" for n in pk)
                        sql = f"SELECT {sel} FROM {_q(table)} WHERE {where}"
                        self._sql[(table, "get1", tuple(value_cols))] = sql
                    row = self._con.execute(sql, wanted[0]).fetchone()
                    if row is not None:
                        found_rows[wanted[0]] = row
                else:
                    for i in range(0, len(wanted), _CHUNK):
                        chunk = wanted[i : i + _CHUNK]
                        sql = self._batch_sql(table, pk, value_cols, len(chunk))
                        params = [v for t in chunk for v in t]
                        for row in self._con.execute(sql, params):
                            found_rows[tuple(row[: len(pk)])] = row[len(pk) :]
            except sqlite3.Error as exc:
                raise self._fail(table, exc) from exc
        nulls = (None,) * len(value_cols)
        found = [t in found_rows for t in tuples]
        rows = [found_rows.get(t, nulls) for t in tuples]
        values = {c: [r[j] for r in rows] for j, c in enumerate(value_cols)}
        return spec.result(out_cols, values, key_cols=key_cols, found=found)

    def _batch_sql(self, table: str, pk: Sequence[str], value_cols: list[str], n: int) -> str:
        cache_key = (table, "getn", tuple(value_cols), n)
        sql = self._sql.get(cache_key)
        if sql is None:
            sel = ", ".join(_q(c) for c in [*pk, *value_cols])
            if len(pk) == 1:
                cond = f"{_q(pk[0])} IN ({', '.join('?' for _ in range(n))})"
            else:
                tup = "(" + ", ".join("?" for _ in pk) + ")"
                cols = "(" + ", ".join(_q(c) for c in pk) + ")"
                cond = f"{cols} IN (VALUES {', '.join(tup for _ in range(n))})"
            sql = f"SELECT {sel} FROM {_q(table)} WHERE {cond}"
            self._sql[cache_key] = sql
        return sql

    def scan(self, table: str, columns: Sequence[str] | None = None) -> pa.Table:
        """Every stored row of ``table`` (in primary-key order)."""
        spec = self._spec(table)
        cols = spec.check_columns(columns)
        order = ", ".join(_q(c) for c in spec.primary_key)
        sql = f"SELECT {', '.join(_q(c) for c in cols)} FROM {_q(table)} ORDER BY {order}"
        with self._lock:
            try:
                rows = self._con.execute(sql).fetchall()
            except sqlite3.Error as exc:
                raise self._fail(table, exc) from exc
        return spec.result(cols, {c: [r[j] for r in rows] for j, c in enumerate(cols)})

    def count(self, table: str) -> int:
        """The number of rows of ``table``."""
        self._spec(table)
        with self._lock:
            try:
                return int(self._con.execute(f"SELECT COUNT(*) FROM {_q(table)}").fetchone()[0])
            except sqlite3.Error as exc:
                raise self._fail(table, exc) from exc

    def connection_info(self, *, include_password: bool = False) -> dict[str, Any]:
        """``{"backend": "sqlite", "path": ..., "url": "sqlite:///..."}`` (no password)."""
        return {"backend": "sqlite", "path": self._path, "url": f"sqlite:///{self._path}"}

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._con.close()
