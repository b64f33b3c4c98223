"""The read-only SQL sandbox: DuckDB over a project's feature groups.

Two locks stand between a statement and anything outside the project's tables:

1. sqlglot parses the statement: exactly one SELECT (or WITH ... SELECT / set
   operation) whose every table reference is a feature group of the project
   (``<name>_<version>``) or a CTE; no table functions, no schemas or catalogs.
2. DuckDB runs it with ``enable_external_access=false`` (no files, no network, no
   extension installs) and ``lock_configuration=true`` (no SET to undo that).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal

import duckdb
import pyarrow as pa
import sqlglot
from sqlglot import exp

from cloudsdk.errors import SQLError, SQLSandboxError

_TABLE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,80}$")

Dialect = Literal["auto", "duckdb", "hive", "spark"]

_FORBIDDEN_FUNCTIONS = frozenset(
    {
        "read_csv", "read_csv_auto", "read_parquet", "read_json", "read_json_auto",
        "read_text", "read_blob", "glob", "parquet_scan", "sniff_csv", "getenv",
        "read_ndjson", "read_ndjson_auto", "delta_scan", "iceberg_scan", "query_table",
        "query", "duckdb_secrets", "duckdb_settings", "duckdb_extensions", "which_secret",
    }
)


def to_arrow(result: Any) -> pa.Table:
    """A DuckDB relation or result as a pyarrow Table (DuckDB 1.x and 2.x)."""
    fetch = getattr(result, "to_arrow_table", None) or result.fetch_arrow_table
    table: pa.Table = fetch()
    return table


def _first_word(query: str) -> str:
    word = query.strip().split(None, 1)[0] if query.strip() else ""
    return word.strip("(;").upper() or "an empty statement"


def _pick_dialect(query: str, dialect: Dialect) -> str:
    if dialect == "auto":
        return "hive" if "`" in query else "duckdb"
    if dialect not in ("duckdb", "hive", "spark"):
        raise SQLError(f"unknown SQL dialect {dialect!r}: use 'duckdb', 'hive', 'spark' or 'auto'")
    return dialect


def parse(query: str, dialect: Dialect = "auto") -> tuple[exp.Query, set[str]]:
    """Parse and check one read-only statement; return it and the table names it reads.

    Raises:
        SQLError: the statement does not parse.
        SQLSandboxError: it is not a single SELECT over plain table names.
    """
    if not isinstance(query, str) or not query.strip():
        raise SQLError("the SQL query is empty")
    read = _pick_dialect(query, dialect)
    try:
        statements = [s for s in sqlglot.parse(query, read=read) if s is not None]
    except sqlglot.errors.ParseError as exc:
        raise SQLError(f"cannot parse the SQL query ({read} dialect): {exc}") from exc
    if len(statements) != 1:
        raise SQLSandboxError(
            f"sql() runs exactly one statement, got {len(statements)}; split the query"
        )
    tree = statements[0]
    if not isinstance(tree, exp.Query):
        raise SQLSandboxError(
            f"sql() is read-only: only SELECT queries are allowed, not {_first_word(query)}"
        )
    for node in tree.walk():
        if isinstance(node, exp.Command | exp.Pragma | exp.Set | exp.Insert | exp.Update
                      | exp.Delete | exp.Create | exp.Drop | exp.Copy | exp.Attach | exp.Detach
                      | exp.Install | exp.Use | exp.Into):
            raise SQLSandboxError(f"sql() is read-only: {node.key.upper()} is not allowed")
        if isinstance(node, exp.Func):
            fname = (node.name if isinstance(node, exp.Anonymous) else node.sql_name()).lower()
            if fname in _FORBIDDEN_FUNCTIONS or fname.startswith("read_"):
                raise SQLSandboxError(f"sql() cannot read files: function {fname}() is not allowed")
    ctes = {cte.alias_or_name for cte in tree.find_all(exp.CTE)}
    tables: set[str] = set()
    for table in tree.find_all(exp.Table):
        if not isinstance(table.this, exp.Identifier):
            raise SQLSandboxError(
                "sql() reads only the project's feature groups: table functions and "
                f"file paths are not allowed ({table.sql()})"
            )
        if table.args.get("db") or table.args.get("catalog"):
            raise SQLSandboxError(
                f"sql() reads only this project's feature groups: {table.sql()!r} names "
                "a schema or database; use <featuregroup>_<version>"
            )
        if table.name in ctes:
            continue
        if any(ch in table.name for ch in "/\\:.~"):
            raise SQLSandboxError(
                f"sql() reads only the project's feature groups: {table.name!r} looks like a file "
                "or URL; file paths are not allowed"
            )
        if not _TABLE_NAME.match(table.name):
            raise SQLSandboxError(
                f"sql() reads only the project's feature groups: {table.name!r} is not a "
                "feature group table name (lower-case <featuregroup>_<version>, e.g. teams_features_1)"
            )
        tables.add(table.name)
    return tree, tables


def run(
    query: str,
    resolve: Callable[[Iterable[str]], dict[str, Any]],
    *,
    dialect: Dialect = "auto",
    params: list[Any] | None = None,
) -> pa.Table:
    """Run a sandboxed query.

    Args:
        query: one SELECT statement.
        resolve: maps the table names the query reads to Arrow data (tables,
            datasets or readers); raises NotFoundError for unknown names.
        dialect: the query's SQL dialect ("auto": Hive when it uses backticks).
        params: values for ``?`` placeholders.

    Returns:
        The result as a pyarrow Table.
    """
    tree, names = parse(query, dialect)
    sources = resolve(sorted(names))
    return execute(tree.sql(dialect="duckdb"), sources, params=params)


def execute(sql_text: str, sources: Mapping[str, Any], *, params: list[Any] | None = None) -> pa.Table:
    """Run DuckDB SQL over ``sources`` in a locked-down connection (no files, no network,
    no settings). :func:`run` checks user SQL before calling this; the query planner,
    whose SQL quotes every name it writes, calls it directly."""
    con = duckdb.connect(
        config={
            "enable_external_access": False,
            "autoinstall_known_extensions": False,
            "autoload_known_extensions": False,
        }
    )
    try:
        for name, data in sources.items():
            con.register(name, data)
        con.execute("SET lock_configuration = true")
        try:
            rel = con.execute(sql_text, params) if params else con.sql(sql_text)
            return to_arrow(rel)
        except duckdb.PermissionException as exc:
            raise SQLSandboxError(f"sql() refused the query: {exc}") from exc
        except duckdb.Error as exc:
            raise SQLError(f"the SQL query failed: {exc}") from exc
    finally:
        con.close()
