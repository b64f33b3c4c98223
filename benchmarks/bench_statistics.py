"""Benchmark: full statistics of a feature group vs a pandas/numpy baseline on the same data.

One feature group of ``--rows`` rows (default 5,000,000) x 20 float64 features plus an int64
``id`` key is created in a temporary store. Then, over the 20 features:

* cloudsdk: ``fg.compute_statistics(descriptive_statistics=True, feature_correlation=True,
  feature_histograms=True, cluster_analysis=False)`` -- reads the Delta table, computes
  descriptive statistics (one DuckDB pass), exact 20-bin histograms (a streaming numpy pass)
  and the Pearson matrix (on a seeded 1,000,000-row sample above that size, as the seed's
  Spark job sampled), and stores the result in the catalog;
* reference: on the same data already in memory as a pandas DataFrame (loading it is not
  timed): ``df.describe()`` + ``df.corr()`` + ``numpy.histogram(col, bins=20)`` per column.

Two more lines: cloudsdk with sampling switched off (the correlation over every row), and
cloudsdk with cluster analysis on (k-means, k=5: the cost that keeps it off by default).

Ratio = reference time / cloudsdk time on best-of-``--repeat`` runs (target >= 2.0).
Run: ``python benchmarks/bench_statistics.py [--rows N] [--repeat K]``. Always exits 0.
"""

from __future__ import annotations

import tempfile
import time
from typing import Any

from _common import Case, header, measure, parse_args, peak_rss_mib, print_details, print_table

import cloudsdk
from cloudsdk.demo_data import scaled_feature_groups
from cloudsdk.store import stats_extra

N_FEATURES = 20
TARGET = 2.0


def main() -> int:
    args = parse_args(__doc__.splitlines()[0], default_rows=5_000_000)
    import numpy as np

    with tempfile.TemporaryDirectory(prefix="cloudsdk-bench-stats-") as tmp:
        start = time.perf_counter()
        table = scaled_feature_groups(args.rows, n_features=N_FEATURES, n_groups=1)[0]
        features = [n for n in table.schema.names if n != "id"]
        nbytes = table.nbytes
        fs = cloudsdk.connect(path=tmp).get_feature_store()
        fg = fs.create_feature_group("bench", data=table, primary_key=["id"], statistics=False)
        df = table.select(features).to_pandas()
        del table
        setup = time.perf_counter() - start
        header(
            "bench_statistics: descriptive + correlation + histograms vs pandas/numpy",
            table=f"{args.rows:,} rows x {N_FEATURES} float64 features + int64 id "
                  f"({nbytes / 2**20:,.0f} MiB in Arrow)",
            runs=f"1 warm-up + {args.repeat} timed, interleaved; ratios use the best run",
            setup=f"generate + create_feature_group + to_pandas took {setup:.1f} s",
        )

        def ours(clusters: bool = False) -> Any:
            return fg.compute_statistics(features, descriptive_statistics=True, feature_correlation=True,
                                         feature_histograms=True, cluster_analysis=clusters, num_bins=20,
                                         num_clusters=5)

        def exact() -> Any:
            saved = stats_extra.SAMPLE_THRESHOLD
            stats_extra.SAMPLE_THRESHOLD = 1 << 62
            try:
                return ours()
            finally:
                stats_extra.SAMPLE_THRESHOLD = saved

        def reference() -> Any:
            desc = df.describe()
            corr = df.corr()
            hists = [np.histogram(df[c].to_numpy(), bins=20) for c in features]
            return desc, corr, hists

        # the same answers: histograms exactly, descriptive statistics and correlation closely
        got = ours()
        desc, corr, hists = reference()
        hist_ok = all(got.histogram(c)["counts"] == h[0].tolist() for c, h in zip(features, hists, strict=True))
        mean_err = max(abs(got[c]["mean"] - desc.loc["mean", c]) for c in features)
        corr_err = float(np.nanmax(np.abs(got.correlation().to_numpy() - corr.to_numpy())))
        print(f"check: histograms {'identical' if hist_ok else 'DIFFER'}; max |mean diff| {mean_err:.2e}; "
              f"max |corr diff| {corr_err:.2e} (sampled: {got.content['sample']['sampled']})\n")
        del got, desc, corr, hists

        t = measure({
            "cloudsdk compute_statistics": ours,
            "pandas describe + corr + np.histogram": reference,
            "cloudsdk, no sampling": exact,
            "cloudsdk + clusters (k=5)": lambda: ours(clusters=True),
        }, args.repeat)
        v = list(t.values())
        print_table([
            Case("statistics (sampled corr)", v[0], v[1], args.rows),
            Case("statistics (exact corr)", v[2], v[1], args.rows),
            Case("statistics + clusters", v[3], v[1], args.rows),
        ], target=TARGET)
        print_details(v)
        print(f"peak RSS {peak_rss_mib():,.0f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
