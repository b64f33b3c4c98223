"""Benchmark: ``fg.read()`` against reading the same Delta table directly with deltalake.

One feature group of ``--rows`` rows (default 5,000,000) x 10 float64 features plus an
int64 ``id`` primary key is created through the object API in a temporary store. Then:

* pandas:  ``fg.read()`` vs the faster of ``DeltaTable(loc).to_pandas()`` and
  ``DeltaTable(loc).to_pyarrow_table().to_pandas()``;
* pyarrow: ``fg.read("pyarrow")`` vs ``DeltaTable(loc).to_pyarrow_table()``.

The two Arrow results are checked once to be equal. Two more lines ("[vs native fs]")
compare with the same Delta table scanned through pyarrow's native ``LocalFileSystem``
(``DeltaTable(loc).to_pyarrow_dataset(filesystem=SubTreeFileSystem(loc, LocalFileSystem()))``)
instead of deltalake's default Python filesystem handler: the lower bound for a local table.

Ratio = reference time / cloudsdk time on best-of-``--repeat`` runs (target >= 0.8).
Run: ``python benchmarks/bench_read.py [--rows N] [--repeat K]``. Always exits 0.
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

N_FEATURES = 10


def main() -> int:
    args = parse_args(__doc__.splitlines()[0], default_rows=5_000_000)
    import pyarrow.fs as pafs
    from deltalake import DeltaTable

    with tempfile.TemporaryDirectory(prefix="cloudsdk-bench-read-") as tmp:
        start = time.perf_counter()
        table = scaled_feature_groups(args.rows, n_features=N_FEATURES, n_groups=1)[0]
        nbytes = table.nbytes
        fs = cloudsdk.connect(path=tmp).get_feature_store()
        fg = fs.create_feature_group("bench", data=table, primary_key=["id"], statistics=False)
        del table
        setup = time.perf_counter() - start
        loc = fg.location
        header(
            "bench_read: fg.read() vs deltalake on the same Delta table",
            table=f"{args.rows:,} rows x {N_FEATURES} float64 features + int64 id "
                  f"({nbytes / 2**20:,.0f} MiB in Arrow)",
            runs=f"1 warm-up + {args.repeat} timed, interleaved; ratios use the best run",
            setup=f"generate + create_feature_group took {setup:.1f} s",
        )

        ours, ref = fg.read("pyarrow"), DeltaTable(loc).to_pyarrow_table()
        same = ours.schema.names == ref.schema.names and ours.equals(ref)
        print(f"check: {'same' if same else 'MISMATCH:'} {ours.num_rows:,} vs {ref.num_rows:,} rows "
              f"x {ours.num_columns} columns (fg.read(\"pyarrow\") vs DeltaTable.to_pyarrow_table())\n")
        del ours, ref

        def native(loc: str = loc) -> Any:
            """The same Delta table scanned through pyarrow's native LocalFileSystem."""
            fs = pafs.SubTreeFileSystem(loc, pafs.LocalFileSystem())
            return DeltaTable(loc).to_pyarrow_dataset(filesystem=fs)

        pandas_t = measure({
            "cloudsdk fg.read()": lambda: fg.read(),
            "DeltaTable.to_pandas()": lambda: DeltaTable(loc).to_pandas(),
            "DeltaTable.to_pyarrow_table().to_pandas()": lambda: DeltaTable(loc).to_pyarrow_table().to_pandas(),
            "native-fs dataset .to_table().to_pandas()": lambda: native().to_table().to_pandas(),
        }, args.repeat)
        arrow_t = measure({
            'cloudsdk fg.read("pyarrow")': lambda: fg.read("pyarrow"),
            "DeltaTable.to_pyarrow_table()": lambda: DeltaTable(loc).to_pyarrow_table(),
            "native-fs dataset .to_table()": lambda: native().to_table(),
        }, args.repeat)

        p = list(pandas_t.values())
        a = list(arrow_t.values())
        print_table([
            Case("read -> pandas", p[0], fastest(p[1], p[2]), args.rows),
            Case("read -> pyarrow", a[0], a[1], args.rows),
            Case("read -> pandas [vs native fs]", p[0], p[3], args.rows),
            Case("read -> pyarrow [vs native fs]", a[0], a[2], args.rows),
        ])
        print_details(p + a)
        print(f"peak RSS {peak_rss_mib():,.0f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
