"""Benchmark: ``fs.get_features()`` against the hand-written DuckDB join on the same Delta tables.

Four feature groups of ``--rows`` rows (default 1,000,000) x 10 float64 features each,
sharing the int64 primary key ``id``, are created through the object API in a temporary
store. Then ``fs.get_features(["id", <all 40 features>])`` (pandas) is timed against one
DuckDB connection that registers each ``DeltaTable(loc).to_pyarrow_dataset()`` and runs
``SELECT id, ... FROM g0 JOIN g1 USING (id) JOIN g2 USING (id) JOIN g3 USING (id)``,
fetched to pandas with ``.df()`` and with ``.to_arrow_table().to_pandas()``; the faster is
the reference. A second line compares the Arrow results (``dataframe_type="pyarrow"`` vs
``.to_arrow_table()``). Both results are checked once to hold the same rows (sorted by id).
Two more lines ("[vs native fs]") register the datasets with pyarrow's native
``LocalFileSystem`` instead of deltalake's default Python filesystem handler.

Ratio = reference time / cloudsdk time on best-of-``--repeat`` runs (target >= 0.8).
Run: ``python benchmarks/bench_get_features.py [--rows N] [--repeat K]``. Always exits 0.
"""

from __future__ import annotations

import tempfile
import time
from typing import Any

from _common import (
    Case,
    fastest,
    header,
    measure,
    parse_args,
    peak_rss_mib,
    print_details,
    print_table,
)

import cloudsdk
from cloudsdk.demo_data import scaled_feature_groups

N_GROUPS = 4
N_FEATURES = 10


def _reference_sql(n_groups: int, n_features: int) -> str:
    cols = ", ".join(f"g{g}.g{g}_f{i}" for g in range(n_groups) for i in range(n_features))
    joins = " ".join(f"JOIN g{g} USING (id)" for g in range(1, n_groups))
    return f"SELECT id, {cols} FROM g0 {joins}"


def _duckdb_join(locations: list[str], sql: str, fetch: str, *, native_fs: bool = False) -> Any:
    """The hand-written reference: register the Delta tables' datasets and run ``sql``.

    ``native_fs``: scan the files through pyarrow's LocalFileSystem instead of deltalake's
    default (Python) filesystem handler.
    """
    import duckdb
    import pyarrow.fs as pafs
    from deltalake import DeltaTable

    con = duckdb.connect()
    try:
        for g, loc in enumerate(locations):
            fs = pafs.SubTreeFileSystem(loc, pafs.LocalFileSystem()) if native_fs else None
            con.register(f"g{g}", DeltaTable(loc).to_pyarrow_dataset(filesystem=fs))
        rel = con.sql(sql)
        if fetch == "df":
            return rel.df()
        table = rel.to_arrow_table()
        return table if fetch == "arrow" else table.to_pandas()
    finally:
        con.close()


def _same_rows(ours: Any, ref: Any) -> str:
    """Compare two pandas frames by content after sorting by id; a one-line verdict."""
    import pandas as pd

    if list(ours.columns) != list(ref.columns):
        return f"MISMATCH: columns differ ({list(ours.columns)[:3]}... vs {list(ref.columns)[:3]}...)"
    a = ours.sort_values("id", ignore_index=True)
    b = ref.sort_values("id", ignore_index=True)
    try:
        pd.testing.assert_frame_equal(a, b, check_exact=True)
    except AssertionError as exc:
        return "MISMATCH: " + str(exc).splitlines()[0]
    return f"same {len(a):,} rows x {a.shape[1]} columns (sorted by id, exact)"


def main() -> int:
    args = parse_args(__doc__.splitlines()[0], default_rows=1_000_000)

    with tempfile.TemporaryDirectory(prefix="cloudsdk-bench-features-") as tmp:
        start = time.perf_counter()
        fs = cloudsdk.connect(path=tmp).get_feature_store()
        locations = []
        for g, table in enumerate(scaled_feature_groups(args.rows, N_FEATURES, N_GROUPS)):
            fg = fs.create_feature_group(f"bench_g{g}", data=table, primary_key=["id"], statistics=False)
            locations.append(fg.location)
            del table
        setup = time.perf_counter() - start
        features = ["id"] + [f"g{g}_f{i}" for g in range(N_GROUPS) for i in range(N_FEATURES)]
        sql = _reference_sql(N_GROUPS, N_FEATURES)
        header(
            "bench_get_features: fs.get_features() vs a hand-written DuckDB join",
            tables=f"{N_GROUPS} groups x {args.rows:,} rows x {N_FEATURES} float64 features, "
                   "joined on int64 id (inner join, every id in every group)",
            result=f"{args.rows:,} rows x {len(features)} columns",
            runs=f"1 warm-up + {args.repeat} timed, interleaved; ratios use the best run",
            setup=f"generate + 4 x create_feature_group took {setup:.1f} s",
        )

        verdict = _same_rows(fs.get_features(features), _duckdb_join(locations, sql, "df"))
        print(f"check: {verdict}\n")

        pandas_t = measure({
            "cloudsdk fs.get_features()": lambda: fs.get_features(features),
            "duckdb .df()": lambda: _duckdb_join(locations, sql, "df"),
            "duckdb .to_arrow_table().to_pandas()": lambda: _duckdb_join(locations, sql, "arrow_pandas"),
            "duckdb native-fs .to_arrow_table().to_pandas()":
                lambda: _duckdb_join(locations, sql, "arrow_pandas", native_fs=True),
        }, args.repeat)
        arrow_t = measure({
            'cloudsdk get_features(dataframe_type="pyarrow")':
                lambda: fs.get_features(features, dataframe_type="pyarrow"),
            "duckdb .to_arrow_table()": lambda: _duckdb_join(locations, sql, "arrow"),
            "duckdb native-fs .to_arrow_table()": lambda: _duckdb_join(locations, sql, "arrow", native_fs=True),
        }, args.repeat)

        p = list(pandas_t.values())
        a = list(arrow_t.values())
        print_table([
            Case("get_features -> pandas", p[0], fastest(p[1], p[2]), args.rows),
            Case("get_features -> pyarrow", a[0], a[1], args.rows),
            Case("get_features -> pandas [vs native fs]", p[0], p[3], args.rows),
            Case("get_features -> pyarrow [vs native fs]", a[0], a[2], args.rows),
        ])
        print_details(p + a)
        print(f"peak RSS {peak_rss_mib():,.0f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
