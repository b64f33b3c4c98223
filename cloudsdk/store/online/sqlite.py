"""The SQLite online store: one file, WAL mode, one ``WITHOUT ROWID`` table per online table.

Reads use one connection per thread (WAL lets them run while a write is in progress);
writes go through one connection, serialised by a lock, each in one ``BEGIN IMMEDIATE``
transaction that first checks the table's generation. A ``:memory:`` store has a single
connection (behind the lock) for everything.

Example:
    >>> store = SQLiteOnlineStore("/tmp/online.db")  # doctest: +SKIP
    >>> store.create_table("fg_1", schema, ["id"])  # doctest: +SKIP
    >>> store.lookup("fg_1", [(1,), (2,)])  # doctest: +SKIP
    [(1, 0.5), None]
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import weakref
from collections.abc import Callable, Sequence
from typing import Any

import pyarrow as pa

from cloudsdk.errors import (
    NotFoundError,
    StorageError,
)
from cloudsdk.store.online._codec import (
    NONFINITE_COLUMN,
)
from cloudsdk.store.online._lookup import LookupStore, Row, SqlPlan
from cloudsdk.store.online._sql import Scan, delete_keys, key_where, upsert_rows
from cloudsdk.store.online.base import (
    METADATA_TABLE,
    StaleTableError,
    TableSpec,
    check_name,
    new_generation,
)

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
_MAX_BATCH = 1024  # parameters per batched lookup statement (made for 2, 4, 8 ... keys)
_STALE_MARKERS = ("no such table", "no such column")


def _q(name: str) -> str:
    return f'"{name}"'


def _bucket(n: int) -> int:
    b = 2
    while b < n:
        b *= 2
    return b


class SQLiteOnlineStore(LookupStore):
    """An :class:`~cloudsdk.store.online.base.OnlineStore` in a SQLite file.

    Safe to share between threads: each thread reads through its own connection; writes are
    serialised (SQLite allows one writer at a time, across processes too).

    Args:
        path: The database file (created if absent), or ``":memory:"``.
        timeout: Seconds to wait for another connection's write lock.
    """

    def __init__(self, path: str | os.PathLike[str], *, timeout: float = 5.0) -> None:
        self._path = os.fspath(path)
        self._timeout = timeout
        self._memory = self._path == ":memory:" or self._path.startswith("file::memory:")
        self._lock = threading.RLock()
        # One connection for a memory database (it is private to its connection): reads lock too.
        self._read_lock: contextlib.AbstractContextManager[Any] = (
            self._lock if self._memory else contextlib.nullcontext()
        )
        self._local = threading.local()
        self._readers: list[tuple[weakref.ref[threading.Thread], sqlite3.Connection]] = []
        self._specs: dict[str, TableSpec] = {}
        self._plans = {}
        self._closed = False
        self._per_statement: dict[int, int] = {}
        try:
            self._con = self._connect()
            if not self._memory:
                self._con.execute("PRAGMA journal_mode=WAL")
            self._con.execute(
                f"CREATE TABLE IF NOT EXISTS {METADATA_TABLE} (name TEXT PRIMARY KEY, "
                "schema BLOB NOT NULL, primary_key TEXT NOT NULL, "
                "generation TEXT NOT NULL DEFAULT '')"
            )
            cols = [r[1] for r in self._con.execute(f"PRAGMA table_info({METADATA_TABLE})")]
            if "generation" not in cols:  # made by an older version
                with contextlib.suppress(sqlite3.OperationalError):  # another process did it
                    self._con.execute(
                        f"ALTER TABLE {METADATA_TABLE} "
                        "ADD COLUMN generation TEXT NOT NULL DEFAULT ''"
                    )
            self._batch = min(_MAX_BATCH, self._con.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER))
        except sqlite3.Error as exc:
            raise StorageError(f"cannot open the SQLite online store {self._path}: {exc}") from exc

    def _connect(self) -> sqlite3.Connection:
        con = sqlite3.connect(
            self._path,
            isolation_level=None,
            check_same_thread=False,
            timeout=self._timeout,
            cached_statements=512,
        )
        con.execute("PRAGMA synchronous=NORMAL")
        return con

    def __repr__(self) -> str:
        return f"SQLiteOnlineStore({self._path!r})"

    # ------------------------------------------------------------------ connections
    def _reader(self) -> sqlite3.Connection:
        """This thread's read connection (the only connection for a memory database)."""
        try:
            con: sqlite3.Connection = self._local.con
            return con
        except AttributeError:
            pass
        if self._memory:
            self._local.con = self._con
            return self._con
        with self._lock:
            if self._closed:
                raise StorageError(f"the SQLite online store {self._path} is closed")
            # Close the connections of threads that ended.
            alive = []
            for ref, con in self._readers:
                if ref() is None or not ref().is_alive():  # type: ignore[union-attr]
                    con.close()
                else:
                    alive.append((ref, con))
            try:
                con = self._connect()
                con.execute("PRAGMA query_only=1")
            except sqlite3.Error as exc:
                raise StorageError(f"SQLite online store {self._path}: {exc}") from exc
            alive.append((weakref.ref(threading.current_thread()), con))
            self._readers = alive
        self._local.con = con
        return con

    def _read_error(self, table: str, exc: sqlite3.Error) -> Exception:
        if any(m in str(exc) for m in _STALE_MARKERS):
            return StaleTableError(table)
        return StorageError(f"SQLite online store, table {table!r}: {exc}", table=table)

    # ------------------------------------------------------------------ metadata
    def _load_spec(self, con: sqlite3.Connection, table: str) -> TableSpec | None:
        row = con.execute(
            f"SELECT schema, primary_key, generation FROM {METADATA_TABLE} WHERE name = ?",
            (table,),
        ).fetchone()
        return None if row is None else TableSpec.deserialize(table, row[0], row[1], row[2])

    def _generation(self, table: str) -> str | None:
        sql = f"SELECT generation FROM {METADATA_TABLE} WHERE name = ?"
        row = self._read(table, lambda con: con.execute(sql, (table,)).fetchone())
        return None if row is None else str(row[0])

    def _spec(self, table: str) -> TableSpec:
        spec = self._specs.get(table)
        if spec is not None:
            return spec
        check_name(table)
        with self._read_lock:
            try:
                spec = self._load_spec(self._reader(), table)
            except sqlite3.Error as exc:
                raise StorageError(f"SQLite online store: {exc}") from exc
        if spec is None:
            raise NotFoundError(f"no online table {table!r}", table=table)
        self._specs[table] = spec
        return spec

    def create_table(self, table: str, schema: pa.Schema, primary_key: Sequence[str]) -> None:
        """Create ``table``; a no-op if it exists with the same schema and key.

        Raises:
            SchemaMismatchError: It exists with another schema or key.
        """
        spec = TableSpec.build(table, schema, primary_key).with_generation(new_generation())
        kinds = spec.kinds
        cols = [
            f"{_q(f.name)} {_SQL_TYPES[kinds[f.name]]}"
            + (" NOT NULL" if f.name in spec.primary_key else "")
            for f in spec.schema
        ]
        if spec.float_columns:
            cols.append(f"{_q(NONFINITE_COLUMN)} TEXT")
        pk = ", ".join(_q(n) for n in spec.primary_key)
        schema_bytes, pk_json = spec.serialize()
        with self._lock:
            try:
                self._con.execute("BEGIN IMMEDIATE")
                try:
                    existing = self._load_spec(self._con, table)
                    if existing is None:
                        self._con.execute(f"DROP TABLE IF EXISTS {_q(table)}")  # an orphan
                        self._con.execute(
                            f"CREATE TABLE {_q(table)} ({', '.join(cols)}, PRIMARY KEY ({pk})) "
                            "WITHOUT ROWID"
                        )
                        self._con.execute(
                            f"INSERT INTO {METADATA_TABLE} (name, schema, primary_key, generation) "
                            "VALUES (?, ?, ?, ?)",
                            (table, schema_bytes, pk_json, spec.generation),
                        )
                    self._con.execute("COMMIT")
                except BaseException:
                    self._con.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                raise StorageError(f"SQLite online store: cannot create {table!r}: {exc}") from exc
        self._forget(table)
        if existing is not None:
            existing.check_same(spec)

    def drop_table(self, table: str, *, missing_ok: bool = False) -> None:
        """Drop ``table``.

        Raises:
            NotFoundError: No such table (unless ``missing_ok``).
        """
        check_name(table)
        self._forget(table)
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
        if not gone and not missing_ok:
            raise NotFoundError(f"no online table {table!r}", table=table)

    # ------------------------------------------------------------------ writes
    def _write(self, spec: TableSpec, sql: str, params: list[tuple[Any, ...]]) -> int:
        """Run ``sql`` for every params tuple in one transaction, if the table is still ``spec``."""
        table = spec.name
        with self._lock:
            try:
                self._con.execute("BEGIN IMMEDIATE")
                try:
                    row = self._con.execute(
                        f"SELECT generation FROM {METADATA_TABLE} WHERE name = ?", (table,)
                    ).fetchone()
                    if row is None or row[0] != spec.generation:
                        raise StaleTableError(table)
                    n = self._con.executemany(sql, params).rowcount
                    self._con.execute("COMMIT")
                except BaseException:
                    self._con.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                raise self._read_error(table, exc) from exc
        return n

    def upsert(self, table: str, rows: pa.Table) -> int:
        """Write ``rows`` in one transaction (last row per key wins); return the keys written."""

        def run() -> int:
            spec = self._spec(table)
            names, encoded = upsert_rows(spec, rows, "nan", "NaN")
            if not encoded:
                return 0
            sql = (
                f"INSERT OR REPLACE INTO {_q(table)} ({', '.join(_q(n) for n in names)}) "
                f"VALUES ({', '.join('?' for _ in names)})"
            )
            self._write(spec, sql, encoded)
            return len(encoded)

        return self._retry(table, run)

    def delete(self, table: str, keys: pa.Table) -> int:
        """Delete the rows of ``keys`` in one transaction; return how many existed."""

        def run() -> int:
            spec = self._spec(table)
            wanted = delete_keys(spec, keys)
            if not wanted:
                return 0
            return self._write(spec, f"DELETE FROM {_q(table)} WHERE {key_where(spec, _q, '?')}", wanted)

        return self._retry(table, run)

    # ------------------------------------------------------------------ reads
    def _build_plan(self, spec: TableSpec, columns: list[str]) -> SqlPlan:
        plan = SqlPlan(
            spec,
            columns,
            quote=_q,
            meta_table=METADATA_TABLE,
        )
        plan.cache[1] = plan.head + " AND ".join(f"{k} = ?" for k in plan.key_sql) + plan.tail
        return plan

    def _batch_sql(self, plan: SqlPlan, n: int) -> str:
        sql = plan.cache.get(n)
        if sql is None:
            if len(plan.key_sql) == 1:
                cond = f"{plan.key_sql[0]} IN ({', '.join('?' for _ in range(n))})"
                sql = plan.head + cond + plan.tail
            else:
                # The keys as a table, joined row by row through the primary key ("(a, b) IN
                # (VALUES ...)" would scan the whole table). CROSS JOIN keeps that loop order.
                names = [f"k{i}" for i in range(len(plan.key_sql))]
                tup = "(" + ", ".join("?" for _ in names) + ")"
                on = " AND ".join(
                    f"{k} = _cloudsdk_keys.{c}" for k, c in zip(plan.key_sql, names, strict=True)
                )
                sql = (
                    f"WITH _cloudsdk_keys({', '.join(names)}) AS (VALUES {', '.join(tup for _ in range(n))}) "
                    f"SELECT {plan.select} FROM {METADATA_TABLE} m LEFT JOIN "
                    f"(_cloudsdk_keys CROSS JOIN {_q(plan.spec.name)} t ON {on}) ON 1{plan.tail}"
                )
            plan.cache[n] = sql
        return sql

    def _fetch(self, plan: SqlPlan, keys: list[tuple[Any, ...] | None]) -> list[Row | None]:
        if len(keys) == 1:
            key = keys[0]
            if key is None:
                return [None]
            with self._read_lock:
                try:
                    row = self._reader().execute(plan.cache[1], key).fetchone()
                except sqlite3.Error as exc:
                    raise self._read_error(plan.spec.name, exc) from exc
            if row is None or row[0] != plan.generation:
                raise StaleTableError(plan.spec.name)
            return [None if row[plan.found] is None else plan.stored(row)]
        wanted = list(dict.fromkeys(k for k in keys if k is not None))
        if not wanted:
            return [None] * len(keys)
        per = self._per_statement.get(len(plan.key_sql))
        if per is None:  # keys per statement: a power of 2 whose parameters SQLite allows
            per, limit = 1, self._batch // len(plan.key_sql)
            while per * 2 <= limit:
                per *= 2
            self._per_statement[len(plan.key_sql)] = per
        chunks = [wanted[i : i + per] for i in range(0, len(wanted), per)]
        results = []
        with self._read_lock:
            con = self._reader()
            try:
                if len(chunks) > 1:  # one snapshot for all the statements
                    con.execute("BEGIN")
                try:
                    for chunk in chunks:
                        n = _bucket(len(chunk))
                        params = [v for k in chunk for v in k]
                        params += list(chunk[-1]) * (n - len(chunk))  # pad: repeat a key
                        results.append(con.execute(self._batch_sql(plan, n), params).fetchall())
                finally:
                    if len(chunks) > 1:
                        con.execute("COMMIT")
            except sqlite3.Error as exc:
                raise self._read_error(plan.spec.name, exc) from exc
        return plan.rows_of(keys, results)

    def _read(self, table: str, fn: Callable[[sqlite3.Connection], Any]) -> Any:
        with self._read_lock:
            try:
                return fn(self._reader())
            except sqlite3.Error as exc:
                raise self._read_error(table, exc) from exc

    def scan(self, table: str, columns: Sequence[str] | None = None) -> pa.Table:
        """Every stored row of ``table`` (in primary-key order)."""

        def run() -> pa.Table:
            scan = Scan(self._spec(table), columns, _q)
            return scan.result(self._read(table, lambda con: con.execute(scan.sql).fetchall()))

        return self._retry(table, run)

    def count(self, table: str) -> int:
        """The number of rows of ``table``."""

        def run() -> int:
            self._spec(table)
            sql = f"SELECT COUNT(*) FROM {_q(table)}"
            return int(self._read(table, lambda con: con.execute(sql).fetchone()[0]))

        return self._retry(table, run)

    def connection_info(self, *, include_password: bool = False) -> dict[str, Any]:
        """``{"backend": "sqlite", "path": ..., "url": "sqlite:///..."}`` (no password)."""
        return {"backend": "sqlite", "path": self._path, "url": f"sqlite:///{self._path}"}

    def close(self) -> None:
        """Close every connection (the read connections of all threads too)."""
        with self._lock:
            self._closed = True
            for _, con in self._readers:
                con.close()
            self._readers = []
            self._con.close()
