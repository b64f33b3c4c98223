"""On-demand feature groups and the JDBC storage connectors they read through.

An on-demand feature group keeps no data: the catalog holds its SQL query, the JDBC connector
the query runs on, and the schema captured when it was created (the query run with
``LIMIT 0``). Every read runs the query against the external database — PostgreSQL through
psycopg, MySQL and MariaDB through PyMySQL, both via SQLAlchemy — and the rows arrive as an
Arrow table in that schema, so reads, the query planner's joins with cached groups and
``sql()`` treat the group like any other.

Three locks keep the external query a query:

1. sqlglot parses it (in the database's dialect): exactly one SELECT (or WITH ... SELECT /
   set operation), no ``INTO``, no ``FOR UPDATE``, no data-modifying CTE;
2. it runs in a read-only transaction (PostgreSQL: ``default_transaction_read_only``, and a
   server-side cursor, which takes a single SELECT only; MySQL/MariaDB: ``SET SESSION
   TRANSACTION READ ONLY``, and PyMySQL sends one statement per call);
3. with a statement timeout (the connector's ``query_timeout_s``, default 300 s).

Connector passwords are sealed in the catalog (:mod:`cloudsdk.store.secrets`); error
messages name the connector, its host and user, never the password.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import decimal
import importlib
import json
import re
import uuid
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import sqlalchemy as sa
import sqlglot
from sqlglot import exp

from cloudsdk._names import (
    validate_feature_name,
    validate_metadata,
    validate_name,
    validate_version,
)
from cloudsdk.errors import (
    AlreadyExistsError,
    CloudSDKError,
    InvalidArgumentError,
    InvalidNameError,
    PermissionDeniedError,
    SchemaMismatchError,
    SQLError,
    SQLSandboxError,
    StorageError,
    UnsupportedError,
)
from cloudsdk.store import catalog as C
from cloudsdk.store import schema, statistics

if TYPE_CHECKING:
    from cloudsdk.store.secrets import SecretBox

__all__ = [
    "DEFAULT_QUERY_TIMEOUT_S",
    "LOCATION_PREFIX",
    "OnDemandMixin",
    "check_query",
    "connector_view",
    "is_on_demand",
    "parse_url",
]

DEFAULT_QUERY_TIMEOUT_S = 300
MAX_QUERY_TIMEOUT_S = 86_400
CONNECT_TIMEOUT_S = 10
FETCH_ROWS = 10_000
LOCATION_PREFIX = "on-demand:"  # feature_groups.location of an on-demand group: on-demand:<connector>
PASSWORD_MASK = "********"

_DRIVER = {"postgresql": "postgresql+psycopg", "mysql": "mysql+pymysql"}
_PIP = {"postgresql": "psycopg[binary]", "mysql": "PyMySQL"}
_DEFAULT_PORT = {"postgresql": 5432, "mysql": 3306}
_FAMILY = {"postgresql": "postgresql", "postgres": "postgresql", "mysql": "mysql", "mariadb": "mysql"}
_SQLGLOT_DIALECT = {"postgresql": "postgres", "mysql": "mysql"}
SUPPORTED_URLS = ("jdbc:postgresql://host:5432/db, jdbc:mysql://host:3306/db, jdbc:mariadb://host:3306/db, "
                  "postgresql[+psycopg]://host/db, mysql[+pymysql]://host/db, mariadb[+pymysql]://host/db")
# Connection arguments a connector may carry (anything else could undo the read-only
# session, run SQL at connect time or read files of the machine the store runs on).
ARGUMENTS = {
    "postgresql": frozenset({"sslmode", "sslrootcert", "sslcert", "sslkey", "sslcrl", "channel_binding",
                             "target_session_attrs", "application_name", "gssencmode"}),
    "mysql": frozenset({"charset", "ssl_ca", "ssl_cert", "ssl_key", "ssl_capath", "ssl_cipher",
                        "ssl_check_hostname"}),
}
_ARG_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
_FORBIDDEN_NODES: tuple[type[exp.Expression], ...] = tuple(
    getattr(exp, n) for n in (
        "Insert", "Update", "Delete", "Merge", "Create", "Drop", "Alter", "TruncateTable", "Command",
        "Into", "Set", "Pragma", "Copy", "Lock", "Use", "Transaction", "Commit", "Rollback", "Grant",
        "LoadData", "Attach", "Detach", "Install",
    ) if hasattr(exp, n)
)


# --- connectors --------------------------------------------------------------------------------


def redact_url(url: object) -> str:
    """``url`` for messages: any password (``user:pw@``, ``password=pw``) replaced by ``***``."""
    text = str(url)
    text = re.sub(r"(://[^/@:]*:)[^/@]*@", r"\1***@", text)
    return re.sub(r"(?i)([?&;](?:password|pwd)=)[^&;]*", r"\1***", text)


def _arg_value(name: str, value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | str) and str(value).strip():
        return str(value)
    raise InvalidArgumentError(f"connection argument {name!r} must be a string, number or boolean")


def _jdbc_argument(family: str, name: str, value: str) -> tuple[str, str] | None:
    """A JDBC URL parameter as the Python driver's argument (None: it has no meaning here)."""
    low = name.lower()
    if family == "postgresql" and low == "ssl":
        return ("sslmode", "require") if value.lower() == "true" else None
    if family == "mysql" and low == "characterencoding":
        return ("charset", "utf8mb4") if value.lower().replace("-", "") in ("utf8", "utf8mb4") else ("charset", value)
    if family == "mysql" and low == "usessl" and value.lower() == "false":
        return None
    return name, value


def parse_url(url: str, user: str | None = None, password: str | None = None,
              arguments: Mapping[str, Any] | None = None, *, connector: str = "") -> tuple[dict[str, Any], str | None]:
    """Check a JDBC or SQLAlchemy URL and split it into settings and the password.

    Accepted: ``jdbc:postgresql://host:port/db``, ``jdbc:mysql://...``, ``jdbc:mariadb://...``
    (parameters ``?user=&password=&ssl=true`` too), and SQLAlchemy URLs
    ``postgresql[+psycopg]://[user[:password]@]host[:port]/db``,
    ``mysql[+pymysql]://...``, ``mariadb[+pymysql]://...``. Every PostgreSQL URL runs on
    psycopg 3, every MySQL/MariaDB URL on PyMySQL.

    Returns:
        ``(config, password)``: the settings stored in clear (``dialect``, ``host``, ``port``,
        ``database``, ``user``, ``arguments``, ``url`` without a password) and the password
        (sealed separately), or None.

    Raises:
        InvalidArgumentError: an unsupported database, a URL that does not parse, no host or
            database, a user or password given twice, an argument that is not accepted.
    """
    label = f"JDBC connector {connector!r}" if connector else "a JDBC connector"
    if isinstance(url, str) and url.strip()[:5].lower() == "jdbc:" and "://" not in url:
        raise InvalidArgumentError(f"{label}: {redact_url(url)!r} is not a supported database URL; "
                                   f"supported: {SUPPORTED_URLS}")
    if not isinstance(url, str) or "://" not in url:
        raise InvalidArgumentError(f"{label} needs a URL such as {SUPPORTED_URLS.split(', ')[0]}, "
                                   f"got {redact_url(url)!r}")
    text = url.strip()
    jdbc = text[:5].lower() == "jdbc:"
    scheme, rest = text[5 if jdbc else 0:].split("://", 1)
    base, _, driver = scheme.lower().partition("+")
    family = _FAMILY.get(base)
    if family is None or (jdbc and driver):
        raise InvalidArgumentError(f"{label}: {redact_url(url)!r} is not a supported database URL; "
                                   f"supported: {SUPPORTED_URLS}")
    try:
        parsed = sa.engine.make_url(f"{_DRIVER[family]}://{rest}")
        port = parsed.port
    except (sa.exc.ArgumentError, ValueError):
        raise InvalidArgumentError(f"{label}: cannot parse the URL {redact_url(url)!r}") from None
    query = {k: (v[-1] if isinstance(v, tuple) else v) for k, v in parsed.query.items()}
    users = {u for u in (user, parsed.username, query.pop("user", None)) if u}
    passwords = {p for p in (password, parsed.password, query.pop("password", None)) if p}
    if any(not isinstance(u, str) for u in users) or any(not isinstance(p, str) for p in passwords):
        raise InvalidArgumentError(f"{label}: user and password must be strings")
    if len(users) > 1:
        raise InvalidArgumentError(f"{label}: the user is given twice, with different values "
                                   "(in the URL and as user=); give it once")
    if len(passwords) > 1:
        raise InvalidArgumentError(f"{label}: the password is given twice, with different values "
                                   "(in the URL and as password=); give it once")
    if not parsed.host:
        raise InvalidArgumentError(f"{label}: the URL {redact_url(url)!r} names no host")
    if not parsed.database:
        raise InvalidArgumentError(f"{label}: the URL {redact_url(url)!r} names no database "
                                   "(…://host:port/<database>)")
    args: dict[str, str] = {}
    for name, value in query.items():
        mapped = _jdbc_argument(family, name, _arg_value(name, value)) if jdbc else (name, _arg_value(name, value))
        if mapped is not None:
            args[mapped[0]] = mapped[1]
    if arguments is not None and not isinstance(arguments, Mapping):
        raise InvalidArgumentError(f"{label}: arguments must be a dict of connection arguments")
    for name, value in (arguments or {}).items():
        if name in args and args[name] != _arg_value(name, value):
            raise InvalidArgumentError(f"{label}: argument {name!r} is given in the URL and in arguments=")
        args[name] = _arg_value(name, value)
    for name in args:
        if not isinstance(name, str) or not _ARG_NAME.match(name) or name not in ARGUMENTS[family]:
            raise InvalidArgumentError(
                f"{label}: connection argument {name!r} is not accepted for a {family} connector; "
                f"accepted: {', '.join(sorted(ARGUMENTS[family]))}")
    the_user = next(iter(users), None)
    config = {
        "dialect": family, "host": parsed.host, "port": port or _DEFAULT_PORT[family],
        "database": parsed.database, "user": the_user, "arguments": dict(sorted(args.items())),
    }
    config["url"] = _sa_url(config, None).render_as_string(hide_password=True)
    return config, next(iter(passwords), None)


def _sa_url(config: Mapping[str, Any], password: str | None) -> sa.URL:
    return sa.URL.create(_DRIVER[config["dialect"]], username=config.get("user"), password=password,
                         host=config["host"], port=int(config["port"]), database=config["database"],
                         query=dict(config.get("arguments") or {}))


def check_timeout(value: object) -> int:
    """A statement timeout in whole seconds, 1 to 86400."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not 1 <= value <= MAX_QUERY_TIMEOUT_S \
            or int(value) != value:
        raise InvalidArgumentError(f"query_timeout_s must be a whole number of seconds from 1 to "
                                   f"{MAX_QUERY_TIMEOUT_S}, got {value!r}")
    return int(value)


def connector_view(base: Mapping[str, Any], secrets: Mapping[str, Any], with_secrets: bool) -> dict[str, Any]:
    """What callers see of a JDBC connector: its settings, and the password only ``with_secrets``
    (masked as ``********`` otherwise; None when it has none)."""
    out = dict(base)
    password = secrets.get("password")
    out["password"] = password if with_secrets else (PASSWORD_MASK if password else None)
    out["credentials"] = "password" if password else "no password (trust or peer authentication)"
    return out


# --- the external query -----------------------------------------------------------------------


def _first_word(query: str) -> str:
    word = query.strip().split(None, 1)[0] if query.strip() else ""
    return word.strip("(;").upper() or "an empty statement"


def check_query(query: object, dialect: str, what: str) -> str:
    """The query text to send, after checking that it is exactly one read-only SELECT.

    Args:
        query: the SQL.
        dialect: ``postgresql`` or ``mysql`` (the connector's).
        what: names the group in messages, e.g. ``"on-demand feature group 'sales'"``.

    Raises:
        InvalidArgumentError: an empty query.
        SQLError: sqlglot cannot parse it.
        SQLSandboxError: not a single SELECT, or one that writes or locks.
    """
    if not isinstance(query, str) or not query.strip():
        raise InvalidArgumentError(f"{what} needs a SQL query (one SELECT statement)")
    text = query.strip()
    while text.endswith(";"):
        text = text[:-1].rstrip()
    read = _SQLGLOT_DIALECT[dialect]
    try:
        statements = [s for s in sqlglot.parse(text, read=read) if s is not None]
    except sqlglot.errors.SqlglotError as exc:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SQLError(f"cannot parse the query of {what} ({dialect} dialect): {detail}") from exc
    if len(statements) != 1:
        raise SQLSandboxError(f"the query of {what} must be exactly one SELECT statement, got {len(statements)}")
    tree = statements[0]
    if not isinstance(tree, exp.Query):
        raise SQLSandboxError(f"the query of {what} must be a SELECT, not {_first_word(text)}: "
                              "on-demand feature groups only read")
    for node in tree.walk():
        if isinstance(node, _FORBIDDEN_NODES):
            raise SQLSandboxError(f"the query of {what} may only read: {node.key.upper()} is not allowed")
    if dialect == "mysql" and "/*!" in text:
        raise SQLSandboxError(f"the query of {what} may not hold MySQL executable comments (/*! ... */)")
    return text


def _quote(dialect: str, name: str) -> str:
    if dialect == "mysql":
        return "`" + name.replace("`", "``") + "`"
    return '"' + name.replace('"', '""') + '"'


def _wrap(dialect: str, query: str, columns: Sequence[str] | None = None, limit0: bool = False) -> str:
    cols = "*" if columns is None else ", ".join(_quote(dialect, c) for c in columns)
    # newlines: a query that ends in a -- comment must not swallow the wrapper
    return f"SELECT {cols} FROM (\n{query}\n) AS cloudsdk_q" + (" LIMIT 0" if limit0 else "")


_PG_TYPES: dict[int, pa.DataType] = {
    16: pa.bool_(), 17: pa.binary(), 18: pa.string(), 19: pa.string(), 20: pa.int64(), 21: pa.int16(),
    23: pa.int32(), 25: pa.string(), 26: pa.int64(), 114: pa.string(), 700: pa.float32(), 701: pa.float64(),
    1042: pa.string(), 1043: pa.string(), 1082: pa.date32(), 1114: pa.timestamp("us"),
    1184: pa.timestamp("us", tz="UTC"), 2950: pa.string(), 3802: pa.string(),
}
_PG_ARRAYS: dict[int, pa.DataType] = {
    1000: pa.bool_(), 1005: pa.int16(), 1007: pa.int32(), 1016: pa.int64(), 1021: pa.float32(),
    1022: pa.float64(), 1009: pa.string(), 1014: pa.string(), 1015: pa.string(), 1182: pa.date32(),
    1115: pa.timestamp("us"),
}


def _decimal(precision: int | None, scale: int | None) -> pa.DataType:
    if precision and 0 < precision <= 38 and scale is not None and 0 <= scale <= precision:
        return pa.decimal128(precision, scale)
    return pa.float64()  # an unconstrained NUMERIC: as double


def _pg_type(column: Any) -> pa.DataType:
    oid = int(column.type_code)
    if oid == 1700:
        return _decimal(getattr(column, "precision", None), getattr(column, "scale", None))
    if oid in _PG_ARRAYS:
        return pa.list_(_PG_ARRAYS[oid])
    return _PG_TYPES.get(oid, pa.string())


_MYSQL_UNSIGNED = 32
_MYSQL_BINARY_CHARSET = 63
_MYSQL_INTS = {1: (pa.int8(), pa.int16()), 2: (pa.int16(), pa.int32()), 9: (pa.int32(), pa.int32()),
               3: (pa.int32(), pa.int64()), 8: (pa.int64(), pa.uint64()), 13: (pa.int16(), pa.int16()),
               16: (pa.int64(), pa.int64())}


def _mysql_type(field: Any) -> pa.DataType:
    code = int(field.type_code)
    unsigned = bool(field.flags & _MYSQL_UNSIGNED)
    if code in _MYSQL_INTS:
        return _MYSQL_INTS[code][unsigned]
    if code == 4:
        return pa.float32()
    if code == 5:
        return pa.float64()
    if code in (0, 246):
        scale = int(field.scale)
        return _decimal(int(field.length) - (1 if scale > 0 else 0) - (0 if unsigned else 1), scale)
    if code in (7, 12):
        return pa.timestamp("us")
    if code in (10, 14):
        return pa.date32()
    if code in (15, 249, 250, 251, 252, 253, 254):
        return pa.binary() if int(field.charsetnr) == _MYSQL_BINARY_CHARSET else pa.string()
    if code == 255:
        return pa.binary()
    return pa.string()  # TIME, JSON, ENUM, SET, NULL


def _value(value: Any, target: pa.DataType) -> Any:
    """One value the driver gave, as ``target`` takes it (after a batch did not convert)."""
    if value is None:
        return None
    if isinstance(value, memoryview):
        value = bytes(value)
    if pa.types.is_string(target):
        if isinstance(value, dict | list):
            return json.dumps(value, default=str)
        if isinstance(value, bytes):
            return value.decode("utf-8", errors="replace")
        return value.isoformat() if isinstance(value, dt.time) else str(value)
    if pa.types.is_integer(target) and isinstance(value, bytes):
        return int.from_bytes(value, "big")  # MySQL BIT
    if pa.types.is_floating(target) and isinstance(value, decimal.Decimal):
        return float(value)
    if pa.types.is_binary(target) and isinstance(value, str):
        return value.encode()
    if pa.types.is_boolean(target) and isinstance(value, int):
        return bool(value)
    return value


def _column(values: list[Any], target: pa.DataType, name: str, what: str) -> pa.Array:
    try:
        return pa.array(values, type=target)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError):
        pass
    try:
        return pa.array([_value(v, target) for v in values], type=target)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError) as exc:
        raise SchemaMismatchError(
            f"column {name!r} of {what} no longer fits its feature type {schema.feature_type(target)}: {exc}; "
            "the external table changed: create a new version of the feature group") from exc


def _batch(rows: Sequence[Sequence[Any]], target: pa.Schema, what: str) -> pa.RecordBatch:
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in target]
    arrays = [_column(list(col), f.type, f.name, what) for col, f in zip(columns, target, strict=True)]
    return pa.RecordBatch.from_arrays(arrays, schema=target)


class _Database:
    """One session on a connector's database: read-only, with a statement timeout."""

    def __init__(self, name: str, config: Mapping[str, Any], password: str | None) -> None:
        self.name = name
        self.config = dict(config)
        self.password = password
        self.dialect = str(config["dialect"])
        self.timeout = int(config.get("query_timeout_s") or DEFAULT_QUERY_TIMEOUT_S)
        self.where = f"JDBC connector {name!r} ({config['host']}:{config['port']}/{config['database']})"

    def __repr__(self) -> str:
        return f"_Database({self.where})"

    def _scrub(self, text: str) -> str:
        first = text.strip().splitlines()[0] if text.strip() else "no detail"
        return first.replace(self.password, "***") if self.password else first

    def _engine(self) -> sa.Engine:
        connect_args: dict[str, Any] = {"connect_timeout": CONNECT_TIMEOUT_S}
        if self.dialect == "postgresql":
            connect_args["options"] = (f"-c statement_timeout={self.timeout * 1000} "
                                       "-c default_transaction_read_only=on")
            if "application_name" not in (self.config.get("arguments") or {}):
                connect_args["application_name"] = "cloudsdk"
        else:
            connect_args.update(read_timeout=self.timeout + 30, write_timeout=60)
        try:
            return sa.create_engine(_sa_url(self.config, self.password), poolclass=sa.pool.NullPool,
                                    connect_args=connect_args)
        except ImportError as exc:
            raise UnsupportedError(
                f"{self.where} needs the {_PIP[self.dialect]} driver where the store runs: "
                f"pip install '{_PIP[self.dialect]}'") from exc

    def _connect_error(self, exc: BaseException) -> CloudSDKError:
        orig = getattr(exc, "orig", None) or exc
        code = _mysql_errno(orig)
        text = str(orig.args[1]) if code is not None and len(orig.args) > 1 else str(orig)
        low = text.lower()
        user = self.config.get("user")
        if code in (1044, 1045, 1698) or getattr(orig, "sqlstate", None) in ("28000", "28P01") \
                or "authentication failed" in low or "no password supplied" in low \
                or ("role " in low and "does not exist" in low):
            return PermissionDeniedError(
                f"the database of {self.where} refused the credentials of user {user!r}: {self._scrub(text)}; "
                "check the connector's user and password", storage_connector=self.name)
        return StorageError(f"cannot connect to the database of {self.where}: {self._scrub(text)}",
                            storage_connector=self.name)

    def query_error(self, exc: BaseException, what: str) -> CloudSDKError:
        """A driver error of the query as a cloudsdk error naming the group and the connector."""
        text = str(exc.args[1]) if _mysql_errno(exc) is not None and len(exc.args) > 1 else str(exc)
        state = str(getattr(exc, "sqlstate", "") or "")
        code = _mysql_errno(exc)
        detail = self._scrub(text)
        if state == "57014" or code in (1969, 3024):
            return SQLError(f"the query of {what} on {self.where} was cancelled after the statement timeout "
                            f"of {self.timeout} s (query_timeout_s of the connector): {detail}")
        if state == "25006" or code == 1792:
            return SQLSandboxError(f"the query of {what} on {self.where} tried to write in its read-only "
                                   f"transaction: {detail}")
        if state.startswith("42501") or code in (1142, 1143, 1227):
            return PermissionDeniedError(f"the database of {self.where} refused the query of {what}: {detail}",
                                         storage_connector=self.name)
        if state.startswith("08") or state.startswith("57P") or code in (2006, 2013, 2055):
            return StorageError(f"the connection to the database of {self.where} was lost during the query "
                                f"of {what}: {detail}", storage_connector=self.name)
        return SQLError(f"the query of {what} failed on {self.where}: {detail}")

    @contextlib.contextmanager
    def session(self) -> Iterator[tuple[Any, type[BaseException]]]:
        """The driver connection in a read-only session, and the driver's base error class."""
        engine = self._engine()
        dbapi_error: type[BaseException] = engine.dialect.dbapi.Error  # type: ignore[union-attr]
        try:
            try:
                conn = engine.connect()
            except sa.exc.DBAPIError as exc:
                raise self._connect_error(exc) from exc
            raw: Any = conn.connection.driver_connection
            try:
                if self.dialect == "mysql":
                    try:
                        with raw.cursor() as cur:
                            if getattr(conn.dialect, "is_mariadb", False):
                                cur.execute(f"SET SESSION max_statement_time = {self.timeout}")
                            else:
                                cur.execute(f"SET SESSION max_execution_time = {self.timeout * 1000}")
                            cur.execute("SET SESSION TRANSACTION READ ONLY")
                        raw.commit()
                    except dbapi_error as exc:
                        raise self._connect_error(exc) from exc
                yield raw, dbapi_error
            finally:
                with contextlib.suppress(Exception):
                    raw.rollback()
                with contextlib.suppress(Exception):
                    conn.close()
        finally:
            engine.dispose()

    def cursor(self, raw: Any) -> Any:
        """A streaming cursor: a PostgreSQL server-side cursor (one SELECT only), a PyMySQL SSCursor."""
        if self.dialect == "postgresql":
            return raw.cursor(name=f"cloudsdk_{uuid.uuid4().hex[:16]}")
        cursors = importlib.import_module("pymysql.cursors")  # imported only when a MySQL connector is used
        return raw.cursor(cursors.SSCursor)

    def describe(self, query: str, what: str) -> pa.Schema:
        """The Arrow schema of the query's result (the query run with LIMIT 0)."""
        with self.session() as (raw, error):
            cur = self.cursor(raw)
            try:
                cur.execute(_wrap(self.dialect, query, limit0=True))
                cur.fetchall()
                if self.dialect == "postgresql":
                    fields = [pa.field(c.name, _pg_type(c)) for c in cur.description]
                else:
                    fields = [pa.field(f.name, _mysql_type(f)) for f in cur._result.fields]
            except error as exc:
                raise self.query_error(exc, what) from exc
            finally:
                with contextlib.suppress(Exception):
                    cur.close()
        return pa.schema(fields)

    def fetch(self, query: str, target: pa.Schema, what: str, columns: Sequence[str] | None = None) -> pa.Table:
        """Run the query; its rows as an Arrow table of ``target`` (column names must match)."""
        want = list(columns) if columns is not None else target.names
        out_schema = pa.schema([target.field(c) for c in want])
        batches: list[pa.RecordBatch] = []
        with self.session() as (raw, error):
            cur = self.cursor(raw)
            try:
                cur.execute(query if columns is None else _wrap(self.dialect, query, want))
                names = [d[0] for d in cur.description]
                if names != want:
                    raise SchemaMismatchError(
                        f"the query of {what} now returns the columns {names}, but the feature group was "
                        f"created with {want}; create a new version of the feature group")
                while True:
                    rows = cur.fetchmany(FETCH_ROWS)
                    if not rows:
                        break
                    batches.append(_batch(rows, out_schema, what))
            except error as exc:
                raise self.query_error(exc, what) from exc
            finally:
                # (a MySQL streamed result is read to its end first: bounded by the statement timeout)
                with contextlib.suppress(Exception):
                    cur.close()
        return pa.Table.from_batches(batches, schema=out_schema)


def _mysql_errno(exc: BaseException) -> int | None:
    if type(exc).__module__.startswith("pymysql") and exc.args and isinstance(exc.args[0], int):
        return int(exc.args[0])
    return None


def is_on_demand(row: Any) -> bool:
    """Whether a catalog feature-group row is an on-demand group."""
    return str(getattr(row, "location", "") or "").startswith(LOCATION_PREFIX)


def _what(row: Any) -> str:
    return f"on-demand feature group {row.name!r} version {row.version}"


# --- the store's operations -------------------------------------------------------------------------


class OnDemandMixin:
    """JDBC connectors and on-demand feature groups of :class:`FeatureStoreService`."""

    root: Path
    catalog: C.Catalog

    if TYPE_CHECKING:  # provided by FeatureStoreService and TrainingDatasetsMixin
        @property
        def _secrets(self) -> SecretBox: ...
        def _fs_id(self, project: str) -> int: ...
        def _group_row(self, project: str, name: str, version: int | None) -> Any: ...
        def latest_version(self, project: str, name: str) -> int | None: ...
        def describe_group(self, project: str, name: str, version: int | None = None) -> dict[str, Any]: ...
        def _connector_row(self, project: str, name: str) -> Any: ...
        def _default_connectors(self, project: str) -> list[dict[str, Any]]: ...
        def get_storage_connector(self, project: str, name: str, *,
                                  with_secrets: bool = False) -> dict[str, Any]: ...
        def _insert_connector(self, project: str, fs_id: int, name: str, kind: str, description: str,
                              config: Mapping[str, Any], secrets: Mapping[str, Any], *,
                              exist_ok: bool) -> dict[str, Any]: ...

    # --- connectors ---------------------------------------------------------------------------

    def create_jdbc_connector(
        self,
        project: str,
        name: str,
        url: str,
        user: str | None = None,
        password: str | None = None,
        *,
        description: str = "",
        arguments: Mapping[str, Any] | None = None,
        query_timeout_s: int = DEFAULT_QUERY_TIMEOUT_S,
        exist_ok: bool = False,
    ) -> dict[str, Any]:
        """Register a JDBC (SQLAlchemy) connector to PostgreSQL, MySQL or MariaDB.

        The password is sealed in the catalog; the database is not contacted until an
        on-demand feature group is created on the connector.

        Raises:
            InvalidNameError, InvalidArgumentError (the URL, arguments, timeout),
            AlreadyExistsError.
        """
        validate_name(name, "storage connector")
        fs_id = self._fs_id(project)
        if name in {c["name"] for c in self._default_connectors(project)}:
            raise AlreadyExistsError(f"{name!r} is a default storage connector of project {project!r}")
        if not isinstance(description, str):
            raise InvalidArgumentError("description must be a string")
        config, secret = parse_url(url, user, password, arguments, connector=name)
        config["query_timeout_s"] = check_timeout(query_timeout_s)
        return self._insert_connector(project, fs_id, name, "jdbc", description, config,
                                      {"password": secret} if secret else {}, exist_ok=exist_ok)

    def _jdbc_database(self, project: str, connector: str, *, for_group: str | None = None) -> _Database:
        if connector in {c["name"] for c in self._default_connectors(project)}:
            raise InvalidArgumentError(f"{connector!r} is a default storage connector, not a JDBC connector")
        row = self._connector_row(project, connector)
        if row.type != "jdbc":
            raise InvalidArgumentError(
                f"storage connector {connector!r} is of type {row.type!r}; "
                f"{for_group or 'an on-demand feature group'} needs a JDBC connector (create_jdbc_connector)")
        secrets = self._secrets.open(row.ciphertext) if row.ciphertext else {}
        return _Database(connector, json.loads(row.config), secrets.get("password"))

    # --- on-demand feature groups ---------------------------------------------------------------

    def create_on_demand_group(
        self,
        project: str,
        name: str,
        version: int | None,
        query: str,
        connector: str,
        *,
        description: str = "",
        primary_key: Sequence[str] | str | None = None,
        event_time: str | None = None,
        feature_descriptions: Mapping[str, str] | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """Register an on-demand feature group: ``query`` runs on JDBC connector ``connector``
        at every read. The query runs once now, with ``LIMIT 0``, to capture the schema.

        Raises:
            InvalidNameError, AlreadyExistsError, StorageConnectorNotFoundError,
            InvalidArgumentError (not a JDBC connector), SQLError / SQLSandboxError (the query),
            SchemaMismatchError (key or event-time columns), StorageError (the database cannot
            be reached), PermissionDeniedError (it refuses the credentials or the query).
        """
        validate_name(name, "feature group")
        if version is None:
            version = (self.latest_version(project, name) or 0) + 1
        validate_version(version, "feature group version")
        what = f"on-demand feature group {name!r} version {version}"
        db = self._jdbc_database(project, connector, for_group=what)
        text = check_query(query, db.dialect, what)
        logical = db.describe(text, what)
        _check_names(logical, what)
        pk = [primary_key] if isinstance(primary_key, str) else list(primary_key or [logical.names[0]])
        schema.check_keys(logical, pk, event_time, source=f"the query of {what}")
        descriptions = dict(feature_descriptions or {})
        unknown = [k for k in descriptions if k not in logical.names]
        if unknown:
            raise SchemaMismatchError(f"descriptions given for unknown features {unknown}")
        fs_id = self._fs_id(project)
        stamp = C.now()
        try:
            with self.catalog.begin() as conn:
                fg_id = conn.execute(C.feature_groups.insert().values(
                    fs_id=fs_id, name=name, version=version, description=description or "",
                    primary_key=C.dumps(pk), partition_by=C.dumps([]), event_time=event_time,
                    online_enabled=False, offline_enabled=True, arrow_schema=schema.serialize_schema(logical),
                    custom_metadata=C.dumps(validate_metadata(metadata or {})),
                    statistics_config=C.dumps({"enabled": False}),
                    location=f"{LOCATION_PREFIX}{connector}", created=stamp, updated=stamp,
                )).inserted_primary_key[0]  # type: ignore[index]
                conn.execute(C.features.insert(), [
                    {"fg_id": fg_id, "position": i, "name": f.name, "type": schema.feature_type(f.type),
                     "description": descriptions.get(f.name, ""), "primary": f.name in pk, "partition": False}
                    for i, f in enumerate(logical)
                ])
                conn.execute(C.on_demand_sources.insert().values(fg_id=fg_id, connector=connector, query=text))
        except sa.exc.IntegrityError as exc:
            raise AlreadyExistsError(
                f"feature group {name!r} version {version} already exists in project {project!r}; "
                "create a new version", featuregroup=name, version=version) from exc
        return self.describe_group(project, name, version)

    def _on_demand_source(self, row: Any) -> tuple[str, str]:
        with self.catalog.read() as conn:
            found = conn.execute(sa.select(C.on_demand_sources.c.connector, C.on_demand_sources.c.query)
                                 .where(C.on_demand_sources.c.fg_id == row.id)).first()
        if found is None:  # pragma: no cover - written in one transaction with the group
            raise StorageError(f"the catalog has no query for {_what(row)}")
        return str(found.connector), str(found.query)

    def _on_demand_fields(self, row: Any) -> dict[str, Any]:
        """The describe() fields of an on-demand group (``on_demand`` False for a cached one)."""
        if not is_on_demand(row):
            return {"on_demand": False}
        connector, query = self._on_demand_source(row)
        return {"on_demand": True, "connector": connector, "query": query}

    def _refuse_on_demand(self, row: Any, action: str) -> None:
        """InvalidArgumentError when ``row`` is an on-demand group (``action``: "insert into", ...)."""
        if is_on_demand(row):
            connector, _ = self._on_demand_source(row)
            raise InvalidArgumentError(
                f"cannot {action} {_what(row)}: its rows come from its query on JDBC connector "
                f"{connector!r} at every read; write to the external database, or to a cached feature group",
                featuregroup=row.name, version=row.version)

    def _read_on_demand(self, project: str, row: Any, columns: Sequence[str] | None = None) -> pa.Table:
        """Run an on-demand group's query; its rows in the group's schema (``columns`` only)."""
        logical = schema.deserialize_schema(row.arrow_schema)
        if columns is not None:
            unknown = [c for c in columns if c not in logical.names]
            if unknown:
                raise SchemaMismatchError(f"feature group {row.name!r} has no feature(s) {unknown}")
        connector, query = self._on_demand_source(row)
        db = self._jdbc_database(project, connector, for_group=_what(row))
        return db.fetch(query, logical, _what(row), columns)

    def _on_demand_statistics(self, project: str, row: Any, columns: Sequence[str] | None) -> dict[str, Any]:
        """Statistics of what the query returns now (stored with no commit version)."""
        logical = schema.deserialize_schema(row.arrow_schema)
        unknown = [c for c in columns or () if c not in logical.names]
        if unknown:
            raise SchemaMismatchError(f"statistics asked for unknown features {unknown}")
        table = self._read_on_demand(project, row)
        content = statistics.describe(table, table.schema, list(columns) if columns else logical.names)
        content["commit_version"] = None
        stamp = C.now()
        content["computed_at"] = stamp.isoformat()
        with self.catalog.begin() as conn:
            conn.execute(C.statistics.insert().values(
                fg_id=row.id, commit_version=None, computed_at=stamp, content=C.dumps(content, sort_keys=False)))
        return content


def _check_names(logical: pa.Schema, what: str) -> None:
    """The query's column names as feature names (a hint to alias them in the query)."""
    for name in logical.names:
        try:
            validate_feature_name(name)
        except InvalidNameError as exc:
            raise InvalidNameError(f"the query of {what} returns a column {name!r}, which is not a valid feature "
                                   "name (1-63 letters, digits and '_', not starting with a digit): "
                                   "alias it in the query, e.g. SELECT ... AS my_feature") from exc
    if not logical.names:
        raise SchemaMismatchError(f"the query of {what} returns no columns")
    try:
        schema.check_columns(logical)
    except SchemaMismatchError as exc:
        raise SchemaMismatchError(f"the query of {what}: {exc.message}; alias the columns in the query") from exc
