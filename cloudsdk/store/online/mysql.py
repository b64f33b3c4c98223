"""The MySQL / MariaDB online store: one InnoDB table per online table, via PyMySQL.

Writes are ``INSERT ... ON DUPLICATE KEY UPDATE`` in one transaction that first takes a
shared lock on the table's metadata row and checks its generation; lookups are one
``SELECT`` (``WHERE (k1, k2) IN ((...), ...)`` for batches) joined with that row. Strings are
stored with a binary, no-pad collation (``"a"``, ``"A"`` and ``"a "`` are three keys). String
and binary key columns are ``VARCHAR(255)`` / ``VARBINARY(255)``; a longer key value fails
the write (nothing written). Floats are ``DOUBLE``; MySQL cannot store NaN or infinities in
them, so those are kept in a side column (``_cloudsdk_nonfinite``, JSON) and the ``DOUBLE``
holds NULL: they round-trip through the store, other SQL readers see NULL.

Connections come from a small thread-safe pool (autocommit on; writes open a transaction).

Example:
    >>> store = MySQLOnlineStore.from_url("mysql://root:@127.0.0.1:3306/test")  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

import pyarrow as pa
import pymysql

from cloudsdk.errors import (
    CloudSDKError,
    InvalidArgumentError,
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

__all__ = ["MySQLOnlineStore"]

_log = logging.getLogger(__name__)
T = TypeVar("T")

_INT_TYPES = {
    pa.int8(): "TINYINT",
    pa.int16(): "SMALLINT",
    pa.int32(): "INT",
    pa.int64(): "BIGINT",
    pa.uint8(): "TINYINT UNSIGNED",
    pa.uint16(): "SMALLINT UNSIGNED",
    pa.uint32(): "INT UNSIGNED",
}
_CHUNK = 1000  # keys per batched lookup statement
_NO_SUCH_TABLE, _UNKNOWN_COLUMN, _DUP_COLUMN = 1146, 1054, 1060
_SESSION_SQL = "SET SESSION sql_mode = 'STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION'"
_PING_AFTER = 30.0  # seconds idle after which a pooled connection is pinged before use


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


class _DeadConnection(Exception):
    """Internal: a pooled connection was found dead before anything was run on it."""


def _broken(exc: BaseException) -> bool:
    """Whether a connection used when ``exc`` was raised must be thrown away."""
    if isinstance(exc, StaleTableError | CloudSDKError):
        return False  # ours, raised between statements: the connection is fine
    if isinstance(exc, pymysql.err.InterfaceError):
        return True
    if isinstance(exc, pymysql.MySQLError):  # server errors (< 2000) leave it usable
        return not exc.args or not isinstance(exc.args[0], int) or exc.args[0] >= 2000
    return True  # interrupted mid-protocol: the connection's state is unknown


class _Pool:
    """A small thread-safe pool of PyMySQL connections (LIFO: the warmest one first).

    At most ``size`` connections are open; a caller waits (up to ``timeout``) for a free one.
    Broken connections are dropped; one idle for a while is pinged before it is handed out.
    """

    def __init__(
        self, connect: Callable[[], pymysql.connections.Connection], size: int, timeout: float
    ) -> None:
        self._connect = connect
        self._size = size
        self._timeout = timeout
        self._idle: list[tuple[pymysql.connections.Connection, float]] = []
        self._open = 0
        self._cond = threading.Condition()
        self._closed = False

    def _acquire(self) -> pymysql.connections.Connection:
        deadline = time.monotonic() + self._timeout
        with self._cond:
            while True:
                if self._closed:
                    raise StorageError("the MySQL online store is closed")
                if self._idle:
                    con, since = self._idle.pop()
                    break
                if self._open < self._size:
                    self._open += 1
                    con, since = None, 0.0
                    break
                left = deadline - time.monotonic()
                if left <= 0:
                    raise StorageError(
                        f"no free MySQL connection within {self._timeout:.0f} s "
                        f"(pool of {self._size})"
                    )
                self._cond.wait(left)
        if con is not None and time.monotonic() - since > _PING_AFTER:
            try:
                con.ping(reconnect=False)
            except pymysql.MySQLError:
                with contextlib.suppress(Exception):
                    con.close()
                con = None
        if con is None:
            try:
                con = self._connect()
            except BaseException:
                with self._cond:
                    self._open -= 1
                    self._cond.notify()
                raise
        return con

    def _release(self, con: pymysql.connections.Connection, broken: bool) -> None:
        with self._cond:
            if broken or self._closed:
                self._open -= 1
                with contextlib.suppress(Exception):
                    con.close()
            else:
                self._idle.append((con, time.monotonic()))
            self._cond.notify()

    @contextlib.contextmanager
    def connection(self) -> Iterator[pymysql.connections.Connection]:
        """A connection for the block; given back (or dropped, if it broke) afterwards."""
        con = self._acquire()
        try:
            yield con
        except BaseException as exc:
            self._release(con, _broken(exc))
            raise
        self._release(con, False)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            for con, _ in self._idle:
                with contextlib.suppress(Exception):
                    con.close()
            self._open -= len(self._idle)
            self._idle = []
            self._cond.notify_all()


class MySQLOnlineStore(LookupStore):
    """An :class:`~cloudsdk.store.online.base.OnlineStore` in a MySQL or MariaDB database.

    Thread safe: every call takes a connection from a pool of at most ``pool_size``.

    Args:
        host: Server host.
        port: Server port.
        user: User name.
        password: Password (never shown by ``repr`` or ``connection_info()``).
        database: The database the tables live in (must exist).
        flavor: ``"mysql"`` or ``"mariadb"``: the JDBC URL scheme ``connection_info`` gives.
        connect_timeout: Seconds to wait for a connection (and for a free one in the pool).
        pool_size: The most connections open at once.
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
        pool_size: int = 8,
    ) -> None:
        self._host, self._port, self._user, self._database = host, port, user, database
        self._password = password
        self._flavor = flavor
        self._connect_timeout = connect_timeout
        self._specs: dict[str, TableSpec] = {}
        self._plans = {}
        self._pool = _Pool(self._new_connection, max(1, pool_size), connect_timeout)
        try:
            with self._pool.connection() as con, con.cursor() as cur:
                cur.execute("SELECT VERSION()")
                version = str(cur.fetchone()[0])
                self._collation = (
                    "utf8mb4_nopad_bin" if "mariadb" in version.lower() else "utf8mb4_0900_bin"
                )
                cur.execute(
                    f"CREATE TABLE IF NOT EXISTS {METADATA_TABLE} ("
                    f"name VARCHAR(64) COLLATE {self._collation} PRIMARY KEY, "
                    "schema_ipc LONGBLOB NOT NULL, primary_key TEXT NOT NULL, "
                    "generation VARCHAR(32) NOT NULL DEFAULT ''"
                    f") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE {self._collation}"
                )
                cur.execute(
                    "SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE "
                    "TABLE_SCHEMA = DATABASE() AND TABLE_NAME = %s",
                    (METADATA_TABLE,),
                )
                if "generation" not in {r[0] for r in cur.fetchall()}:  # an older version's
                    try:
                        cur.execute(
                            f"ALTER TABLE {METADATA_TABLE} "
                            "ADD COLUMN generation VARCHAR(32) NOT NULL DEFAULT ''"
                        )
                    except pymysql.MySQLError as exc:
                        if not exc.args or exc.args[0] != _DUP_COLUMN:  # another process did it
                            raise
        except pymysql.MySQLError as exc:
            self._pool.close()
            raise StorageError(
                f"cannot open the MySQL online store {self._safe_url()}: {exc}"
            ) from exc

    def _new_connection(self) -> pymysql.connections.Connection:
        return pymysql.connect(
            host=self._host,
            port=self._port,
            user=self._user,
            password=self._password,
            database=self._database,
            charset="utf8mb4",
            autocommit=True,
            connect_timeout=int(self._connect_timeout),
            init_command=_SESSION_SQL,
        )

    @classmethod
    def from_url(cls, url: str) -> MySQLOnlineStore:
        """Open ``mysql://user:password@host:port/database[?pool_size=8]`` (or ``mariadb://``).

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
        query = dict(p.split("=", 1) for p in parts.query.split("&") if "=" in p)
        try:
            pool_size = int(query.get("pool_size", 8))
        except ValueError as exc:
            raise InvalidArgumentError("pool_size must be an integer") from exc
        return cls(
            parts.hostname or "127.0.0.1",
            parts.port or 3306,
            user=unquote(parts.username or "root"),
            password=unquote(parts.password or ""),
            database=unquote(database),
            flavor=scheme,
            pool_size=pool_size,
        )

    def _safe_url(self) -> str:
        return f"jdbc:{self._flavor}://{self._host}:{self._port}/{self._database}"

    def __repr__(self) -> str:
        return f"MySQLOnlineStore({self._safe_url()!r}, user={self._user!r}, password='***')"

    # ------------------------------------------------------------------ plumbing
    def _error(self, table: str, exc: pymysql.MySQLError) -> Exception:
        code = exc.args[0] if exc.args else None
        if code in (_NO_SUCH_TABLE, _UNKNOWN_COLUMN):
            return StaleTableError(table)
        return StorageError(f"MySQL online store, table {table!r}: {exc}", table=table)

    def _read(self, table: str, fn: Callable[[Any], T], *, retry: bool = True) -> T:
        """``fn(cursor)`` on a pooled connection (autocommit: each statement sees the latest).

        With ``retry``, a connection found dead (server restarted, idle timeout) is replaced
        and ``fn`` run once more: only for calls that can safely run twice.
        """
        for attempt in range(2):
            try:
                with self._pool.connection() as con, con.cursor() as cur:
                    return fn(cur)
            except pymysql.MySQLError as exc:
                if retry and attempt == 0 and _broken(exc):
                    _log.info("MySQL online store: connection lost (%s), retrying once", exc)
                    continue
                raise self._error(table, exc) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def _write(self, table: str, fn: Callable[[Any], T]) -> T:
        """``fn(cursor)`` in one transaction on a pooled connection (rolled back if it raises).

        A connection found dead at ``BEGIN`` (nothing of the transaction sent yet) is replaced
        once; a failure later raises (the server rolls back the transaction of a lost
        connection).
        """
        for attempt in range(2):
            try:
                with self._pool.connection() as con:
                    try:
                        con.begin()
                    except pymysql.MySQLError as exc:
                        if attempt == 0 and _broken(exc):
                            raise _DeadConnection from exc  # the pool drops the connection
                        raise
                    try:
                        with con.cursor() as cur:
                            result = fn(cur)
                        con.commit()
                    except BaseException:
                        with contextlib.suppress(pymysql.MySQLError):
                            con.rollback()
                        raise
                    return result
            except _DeadConnection as exc:
                _log.info("MySQL online store: connection lost (%s), retrying once", exc.__cause__)
            except pymysql.MySQLError as exc:
                raise self._error(table, exc) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def _load_spec(self, cur: Any, table: str, *, lock: bool = False) -> TableSpec | None:
        cur.execute(
            f"SELECT schema_ipc, primary_key, generation FROM {METADATA_TABLE} WHERE name = %s"
            + (" LOCK IN SHARE MODE" if lock else ""),
            (table,),
        )
        row = cur.fetchone()
        return None if row is None else TableSpec.deserialize(table, row[0], row[1], row[2])

    def _generation(self, table: str) -> str | None:
        def generation(cur: Any) -> str | None:
            cur.execute(f"SELECT generation FROM {METADATA_TABLE} WHERE name = %s", (table,))
            row = cur.fetchone()
            return None if row is None else str(row[0])

        return self._read(table, generation)

    def _spec(self, table: str) -> TableSpec:
        spec = self._specs.get(table)
        if spec is not None:
            return spec
        check_name(table)

        try:
            spec = self._read(table, lambda cur: self._load_spec(cur, table))
        except StaleTableError as exc:  # the metadata table itself is gone
            raise StorageError(f"MySQL online store: no {METADATA_TABLE} table") from exc
        if spec is None:
            raise NotFoundError(f"no online table {table!r}", table=table)
        self._specs[table] = spec
        return spec

    def _check_generation(self, cur: Any, spec: TableSpec) -> None:
        """Inside a write: lock the metadata row (a drop waits for us) and compare generations."""
        current = self._load_spec(cur, spec.name, lock=True)
        if current is None or current.generation != spec.generation:
            raise StaleTableError(spec.name)

    # ------------------------------------------------------------------ tables
    def _ddl_locked(self, table: str, fn: Callable[[Any], T]) -> Callable[[Any], T]:
        """``fn`` run under a named lock of the table: creates and drops (by any process) of
        one table one at a time."""
        lock = f"cloudsdk_online:{self._database}:{table}"[:64]

        def locked(cur: Any) -> T:
            cur.execute("SELECT GET_LOCK(%s, %s)", (lock, int(self._connect_timeout) + 20))
            if cur.fetchone()[0] != 1:
                raise StorageError(f"MySQL online store: timed out waiting to change {table!r}")
            try:
                return fn(cur)
            finally:
                cur.execute("SELECT RELEASE_LOCK(%s)", (lock,))
                cur.fetchall()

        return locked

    def create_table(self, table: str, schema: pa.Schema, primary_key: Sequence[str]) -> None:
        """Create ``table``; a no-op if it exists with the same schema and key.

        Raises:
            SchemaMismatchError: It exists with another schema or key.
        """
        spec = TableSpec.build(table, schema, primary_key).with_generation(new_generation())
        kinds = spec.kinds
        cols = [
            f"{_q(f.name)} {_sql_type(f, kinds[f.name], f.name in spec.primary_key)}"
            + (" NOT NULL" if f.name in spec.primary_key else " NULL")
            for f in spec.schema
        ]
        if spec.float_columns:
            cols.append(f"{_q(NONFINITE_COLUMN)} LONGTEXT NULL")
        pk = ", ".join(_q(n) for n in spec.primary_key)
        schema_bytes, pk_json = spec.serialize()

        def create(cur: Any) -> TableSpec | None:
            existing = self._load_spec(cur, table)
            if existing is None:
                # A table without its metadata row is an orphan of a drop that did not finish.
                cur.execute(f"DROP TABLE IF EXISTS {_q(table)}")
                cur.execute(
                    f"CREATE TABLE {_q(table)} ({', '.join(cols)}, "
                    f"PRIMARY KEY ({pk})) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 "
                    f"COLLATE {self._collation}"
                )
                cur.execute(
                    f"INSERT IGNORE INTO {METADATA_TABLE} "
                    "(name, schema_ipc, primary_key, generation) VALUES (%s, %s, %s, %s)",
                    (table, schema_bytes, pk_json, spec.generation),
                )
                existing = self._load_spec(cur, table)
                if existing is not None and existing.same_as(spec):
                    return None
            return existing

        self._forget(table)
        existing = self._read(table, self._ddl_locked(table, create))  # DDL commits implicitly
        if existing is not None:
            existing.check_same(spec)

    def drop_table(self, table: str, *, missing_ok: bool = False) -> None:
        """Drop ``table`` (its metadata row first: waits for writes in progress).

        Raises:
            NotFoundError: No such table (unless ``missing_ok``).
        """
        check_name(table)
        self._forget(table)

        def drop(cur: Any) -> int:
            gone = int(cur.execute(f"DELETE FROM {METADATA_TABLE} WHERE name = %s", (table,)))
            cur.execute(f"DROP TABLE IF EXISTS {_q(table)}")
            return gone

        if not self._read(table, self._ddl_locked(table, drop), retry=False) and not missing_ok:
            raise NotFoundError(f"no online table {table!r}", table=table)

    # ------------------------------------------------------------------ writes
    def upsert(self, table: str, rows: pa.Table) -> int:
        """Write ``rows`` in one transaction (last row per key wins); return the keys written."""

        def run() -> int:
            spec = self._spec(table)
            names, encoded = upsert_rows(spec, rows, "all", "NaN or infinities")
            if not encoded:
                return 0
            updated = [n for n in names if n not in spec.primary_key] or [spec.primary_key[0]]
            sql = (
                f"INSERT INTO {_q(table)} ({', '.join(_q(n) for n in names)}) "
                f"VALUES ({', '.join('%s' for _ in names)}) ON DUPLICATE KEY UPDATE "
                + ", ".join(f"{_q(n)} = VALUES({_q(n)})" for n in updated)
            )

            def write(cur: Any) -> None:
                self._check_generation(cur, spec)
                cur.executemany(sql, encoded)

            self._write(table, write)
            return len(encoded)

        return self._retry(table, run)

    def delete(self, table: str, keys: pa.Table) -> int:
        """Delete the rows of ``keys`` in one transaction; return how many existed."""

        def run() -> int:
            spec = self._spec(table)
            wanted = delete_keys(spec, keys)
            if not wanted:
                return 0
            sql = f"DELETE FROM {_q(table)} WHERE {key_where(spec, _q, '%s')}"

            def delete(cur: Any) -> int:
                self._check_generation(cur, spec)
                return sum(int(cur.execute(sql, t)) for t in wanted)

            return int(self._write(table, delete))

        return self._retry(table, run)

    # ------------------------------------------------------------------ reads
    def _build_plan(self, spec: TableSpec, columns: list[str]) -> SqlPlan:
        plan = SqlPlan(
            spec,
            columns,
            quote=_q,
            meta_table=METADATA_TABLE,
        )
        kinds = spec.kinds
        # Key values go into the statement as literals (PyMySQL has no server-side prepare):
        # integers as they are (validated ints), everything else escaped by the connection.
        plan.cache["int"] = tuple(kinds[k] in ("int", "bool", "temporal") for k in spec.primary_key)
        plan.cache["eq"] = plan.head + " AND ".join(f"{k} = %s" for k in plan.key_sql) + plan.tail
        return plan

    def _fetch(self, plan: SqlPlan, keys: list[tuple[Any, ...] | None]) -> list[Row | None]:
        wanted = list(dict.fromkeys(k for k in keys if k is not None))
        if not wanted:
            return [None] * len(keys)
        is_int: tuple[bool, ...] = plan.cache["int"]
        table = plan.spec.name

        def run(cur: Any) -> list[Row | None]:
            escape = cur.connection.escape

            def lit(key: tuple[Any, ...]) -> list[str]:
                return [str(v) if i else escape(v) for v, i in zip(key, is_int, strict=True)]

            if len(wanted) == 1:
                cur.execute(plan.cache["eq"] % tuple(lit(wanted[0])))
                row = cur.fetchone()
                if row is None or row[0] != plan.generation:
                    raise StaleTableError(table)
                stored = None if row[plan.found] is None else plan.stored(row)
                return [None if k is None else stored for k in keys]
            chunks = [wanted[i : i + _CHUNK] for i in range(0, len(wanted), _CHUNK)]
            results = []
            if len(chunks) > 1:  # one snapshot for all the statements
                cur.execute("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
            try:
                for chunk in chunks:
                    if len(is_int) == 1:
                        items = ", ".join(lit(k)[0] for k in chunk)
                        cond = f"{plan.key_sql[0]} IN ({items})"
                    else:
                        items = ", ".join("(" + ", ".join(lit(k)) + ")" for k in chunk)
                        cond = f"({', '.join(plan.key_sql)}) IN ({items})"
                    cur.execute(plan.head + cond + plan.tail)
                    results.append(cur.fetchall())
            finally:
                if len(chunks) > 1:
                    with contextlib.suppress(pymysql.MySQLError):
                        cur.connection.commit()
            return plan.rows_of(keys, results)

        return self._read(table, run)

    def scan(self, table: str, columns: Sequence[str] | None = None) -> pa.Table:
        """Every stored row of ``table`` (in primary-key order)."""

        def run() -> pa.Table:
            scan = Scan(self._spec(table), columns, _q)

            def fetch(cur: Any) -> list[Any]:
                cur.execute(scan.sql)
                return list(cur.fetchall())

            return scan.result(self._read(table, fetch))

        return self._retry(table, run)

    def count(self, table: str) -> int:
        """The number of rows of ``table``."""

        def run() -> int:
            self._spec(table)

            def count(cur: Any) -> int:
                cur.execute(f"SELECT COUNT(*) FROM {_q(table)}")
                return int(cur.fetchone()[0])

            return int(self._read(table, count))

        return self._retry(table, run)

    def connection_info(self, *, include_password: bool = False) -> dict[str, Any]:
        """The store URL and a JDBC URL (neither with the password), host, port, database and
        user; the password only if asked for."""
        info: dict[str, Any] = {
            "backend": "mysql",
            "url": f"{self._flavor}://{self._user}@{self._host}:{self._port}/{self._database}",
            "jdbc_url": self._safe_url(),
            "host": self._host,
            "port": self._port,
            "database": self._database,
            "user": self._user,
        }
        if include_password:
            info["password"] = self._password
        return info

    def close(self) -> None:
        """Close the pool's connections (those in use close when given back)."""
        self._pool.close()
