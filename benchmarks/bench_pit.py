"""Benchmark: the point-in-time join engine against hand-written DuckDB ``ASOF LEFT JOIN`` queries.

Issue 6's setup: a label frame of ``--rows`` rows (default 1,000,000: int64 ``id`` over
``rows / 10`` entities, a ``ts`` timestamp over 30 days, a float label) and 3 feature groups of
``--rows`` rows of history each (the same entities, ``ts`` over the same 30 days, 5 float64
features). Each group is written as a Delta table with deltalake in two commits, so the input
is what the store holds: commit 0 holds 98% of the rows, commit 1 the other 2%, which are
corrections of earlier rows (the same ``id`` and ``ts``, new values): ties that the
``_commit`` column breaks (the later commit wins).

Timed, interleaved, each opening the Delta tables inside the call (pyarrow datasets over the
native local filesystem) and returning one Arrow table of every label row with 15 features:

* cloudsdk: ``point_in_time_join(labels, "ts", [PitGroup(..., order="_commit")] * 3)``:
  ties broken by commit, label rows in their order.
* DuckDB ASOF (the limit): ``labels ASOF LEFT JOIN g0 ... ASOF LEFT JOIN g2`` on
  ``id`` and ``labels.ts >= g.ts``. No tie breaking (an arbitrary row of a tie wins) and rows in
  DuckDB's order: less than the engine's semantics.
* DuckDB ASOF + de-dup: the same over each group de-duplicated by ``(id, ts)`` keeping the
  largest ``_commit``, with ``QUALIFY row_number() OVER (...) = 1`` or with
  ``arg_max(struct, _commit) GROUP BY id, ts`` (the faster is the reference).
* DuckDB ASOF + de-dup + label order: the same semantics as the engine (``ORDER BY`` the label
  row number).

Then each variant runs once more in a fresh process of its own (``--child``) for its peak RSS.
Ratio = reference time / cloudsdk time on best-of-``--repeat`` runs (target >= 0.8 of the
hand-written join with the same semantics).

Feast (optional, ``--feast-python PATH``): Feast 0.67 pins pandas < 3, so it runs in its own
virtual environment (e.g. ``python3.11 -m venv /tmp/feast-venv && /tmp/feast-venv/bin/pip
install 'feast[duckdb]==0.67.*'``), never beside cloudsdk: the same histories and labels are
written as Parquet files (times in UTC; a ``created`` timestamp = T0 + ``_commit`` seconds, Feast's
tie breaker), and a script run by that interpreter times ``get_historical_features(...).to_arrow()``
with the DuckDB offline store and with the file (dask) store, each in its own process
(best of ``min(--repeat, 2)``, peak RSS), and reports back as JSON.
Run: ``python benchmarks/bench_pit.py [--rows N] [--repeat K] [--feast-python PATH]``.
Always exits 0.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
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

N_GROUPS = 3
N_FEATURES = 5
DAYS = 30
CORRECTIONS = 0.02
T0 = dt.datetime(2026, 1, 1)


# ----------------------------------------------------------------------------- data

def write_data(root: Path, rows: int, seed: int = 42) -> None:
    """The label frame (Parquet) and the 3 groups' histories (Delta, 2 commits each)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq
    from deltalake import write_deltalake

    rng = np.random.default_rng(seed)
    entities = max(1, rows // 10)
    span = DAYS * 86_400 * 1_000_000
    t0 = int(T0.replace(tzinfo=dt.UTC).timestamp() * 1_000_000)
    n_fix = int(rows * CORRECTIONS)
    n_base = rows - n_fix
    for g in range(N_GROUPS):
        base = pa.table({
            "id": rng.integers(0, entities, n_base),
            "ts": pa.array(t0 + rng.integers(0, span, n_base)).cast(pa.timestamp("us")),
            **{f"g{g}_f{i}": rng.random(n_base) for i in range(N_FEATURES)},
            "_commit": np.zeros(n_base, dtype=np.int64),
        })
        fix = base.take(pa.array(rng.choice(n_base, n_fix, replace=False)))  # one correction a row
        for i in range(N_FEATURES):
            fix = fix.set_column(2 + i, f"g{g}_f{i}", pa.array(rng.random(n_fix)))
        fix = fix.set_column(fix.num_columns - 1, "_commit", pa.array(np.ones(n_fix, dtype=np.int64)))
        write_deltalake(root / f"g{g}", base)
        write_deltalake(root / f"g{g}", fix, mode="append")
    labels = pa.table({
        "id": rng.integers(0, entities, rows),
        "ts": pa.array(t0 + rng.integers(0, span, rows)).cast(pa.timestamp("us")),
        "label": rng.random(rows),
    })
    pq.write_table(labels, root / "labels.parquet")


def _dataset(root: Path, g: int) -> Any:
    import pyarrow.fs as pafs
    from deltalake import DeltaTable

    loc = str(root / f"g{g}")
    return DeltaTable(loc).to_pyarrow_dataset(filesystem=pafs.SubTreeFileSystem(loc, pafs.LocalFileSystem()))


def _features(g: int) -> list[str]:
    return [f"g{g}_f{i}" for i in range(N_FEATURES)]


# ----------------------------------------------------------------------------- variants

def run_cloudsdk(root: Path, labels: Any) -> Any:
    """The engine, as the store will call it: one PitGroup per Delta table."""
    from cloudsdk.store.pit import PitGroup, point_in_time_join

    groups = [PitGroup(f"bench_g{g}_1", _dataset(root, g), ("id",), "ts", tuple(_features(g)),
                       order="_commit") for g in range(N_GROUPS)]
    return point_in_time_join(labels, "ts", groups)


def reference_sql(dedup: str | None, ordered: bool) -> str:
    """The hand-written query over ``labels`` (with ``__row`` when ``ordered``) and g0..g2."""
    ctes = []
    for g in range(N_GROUPS):
        feats = _features(g)
        if dedup == "window":
            ctes.append(f"d{g} AS (SELECT id, ts, {', '.join(feats)} FROM g{g} QUALIFY row_number() "
                        f"OVER (PARTITION BY id, ts ORDER BY _commit DESC) = 1)")
        elif dedup == "argmax":
            packed = ", ".join(f"{f} := {f}" for f in feats)
            ctes.append(f"d{g} AS (SELECT id, ts, unnest(arg_max(struct_pack({packed}), _commit)) "
                        f"FROM g{g} GROUP BY id, ts)")
    src = "d" if dedup else "g"
    label_cols = "l.id, l.ts, l.label"
    select = ", ".join(f"h{g}.{f}" for g in range(N_GROUPS) for f in _features(g))
    joins = " ".join(f"ASOF LEFT JOIN {src}{g} AS h{g} ON l.id = h{g}.id AND l.ts >= h{g}.ts"
                     for g in range(N_GROUPS))
    with_ = ("WITH " + ", ".join(ctes) + " ") if ctes else ""
    order = " ORDER BY l.__row" if ordered else ""
    return f"{with_}SELECT {label_cols}, {select} FROM labels AS l {joins}{order}"


def run_reference(root: Path, labels: Any, sql: str, ordered: bool) -> Any:
    """A hand-written DuckDB query over the same Delta tables (datasets registered by name)."""
    import duckdb
    import numpy as np
    import pyarrow as pa

    con = duckdb.connect()
    try:
        for g in range(N_GROUPS):
            con.register(f"g{g}", _dataset(root, g))
        if ordered:
            labels = labels.append_column("__row", pa.array(np.arange(labels.num_rows)))
        con.register("labels", labels)
        return con.sql(sql).to_arrow_table()
    finally:
        con.close()


def variants(root: Path, labels: Any) -> dict[str, Callable[[], Any]]:
    """Every timed variant, by name (the names are also the ``--child`` choices)."""
    out: dict[str, Callable[[], Any]] = {"cloudsdk point_in_time_join": partial(run_cloudsdk, root, labels)}
    for name, dedup, ordered in [("ASOF, no de-dup", None, False),
                                 ("ASOF + de-dup (QUALIFY row_number)", "window", False),
                                 ("ASOF + de-dup (arg_max GROUP BY)", "argmax", False),
                                 ("ASOF + de-dup (QUALIFY) + label order", "window", True),
                                 ("ASOF + de-dup (arg_max) + label order", "argmax", True)]:
        out[f"duckdb {name}"] = partial(run_reference, root, labels, reference_sql(dedup, ordered), ordered)
    return out


# ----------------------------------------------------------------------------- memory

def child(root: Path, name: str) -> int:
    """Run one variant once in this fresh process; print its peak RSS as JSON."""
    import pyarrow.parquet as pq

    labels = pq.read_table(root / "labels.parquet")
    _reset_peak()
    before = _peak_mib()
    result = variants(root, labels)[name]()
    print(json.dumps({"rows": result.num_rows, "before_mib": before, "peak_mib": _peak_mib()}))
    return 0


def _reset_peak() -> None:
    """Reset the peak RSS (Linux >= 4.0): a child inherits its parent's high-water mark."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def _peak_mib() -> float:
    """This process's peak RSS since the last reset (VmHWM), in MiB."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return peak_rss_mib()


def measure_memory(root: Path, names: list[str]) -> dict[str, dict[str, float]]:
    """Each variant's peak RSS, each in its own process."""
    out = {}
    for name in names:
        proc = subprocess.run([sys.executable, __file__, "--child", name, "--dir", str(root)],
                              capture_output=True, text=True, check=False)
        try:
            out[name] = json.loads(proc.stdout.strip().splitlines()[-1])
        except (IndexError, json.JSONDecodeError):
            out[name] = {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "no output"}
    return out


# ----------------------------------------------------------------------------- Feast

FEAST_SCRIPT = r"""
import datetime as dt, json, sys, time
from pathlib import Path

def peak_mib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")

root, store_type, repeat = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
n_groups, n_features = int(sys.argv[4]), int(sys.argv[5])
import pyarrow.parquet as pq
from feast import Entity, FeatureStore, FeatureView, Field, FileSource, ValueType
from feast.types import Float64

repo = root / f"feast_{store_type}"
repo.mkdir(exist_ok=True)
(repo / "feature_store.yaml").write_text(
    f"project: bench\nregistry: {repo}/registry.db\nprovider: local\n"
    f"offline_store:\n  type: {store_type}\n"
    f"online_store:\n  type: sqlite\n  path: {repo}/online.db\n"
    "entity_key_serialization_version: 3\n")
entity = Entity(name="id", join_keys=["id"], value_type=ValueType.INT64)
views = [FeatureView(name=f"g{g}", entities=[entity], ttl=dt.timedelta(days=365),
                     schema=[Field(name=f"g{g}_f{i}", dtype=Float64) for i in range(n_features)],
                     source=FileSource(name=f"g{g}_src", path=str(root / f"feast_g{g}.parquet"),
                                       timestamp_field="ts", created_timestamp_column="created"))
         for g in range(n_groups)]
store = FeatureStore(repo_path=str(repo))
store.apply([entity, *views])
features = [f"g{g}:g{g}_f{i}" for g in range(n_groups) for i in range(n_features)]
labels = pq.read_table(root / "feast_labels.parquet").to_pandas()
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")
before = peak_mib()
runs, rows, matched = [], 0, 0
for _ in range(repeat):
    start = time.perf_counter()
    out = store.get_historical_features(entity_df=labels, features=features).to_arrow()
    runs.append(time.perf_counter() - start)
    rows, matched = out.num_rows, out.num_rows - out.column("g0_f0").null_count
    del out
print(json.dumps({"runs": runs, "rows": rows, "g0_matched": matched,
                  "before_mib": before, "peak_mib": peak_mib()}))
"""


def write_feast_inputs(root: Path) -> None:
    """The same data as Parquet files for Feast: UTC times, ``created`` from ``_commit``."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    t0 = pa.scalar(T0, pa.timestamp("us"))
    for g in range(N_GROUPS):
        table = _dataset(root, g).to_table()
        created = pc.add(t0, pc.cast(pc.multiply(table["_commit"], 1_000_000), pa.duration("us")))
        table = table.set_column(1, "ts", pc.assume_timezone(table["ts"], "UTC"))
        table = table.append_column("created", pc.assume_timezone(created, "UTC"))
        pq.write_table(table, root / f"feast_g{g}.parquet")
    labels = pq.read_table(root / "labels.parquet")
    labels = labels.set_column(1, "event_timestamp", pc.assume_timezone(labels["ts"], "UTC"))
    pq.write_table(labels, root / "feast_labels.parquet")
    (root / "feast_bench.py").write_text(FEAST_SCRIPT)


def run_feast(root: Path, python: str, store_type: str, repeat: int) -> dict[str, Any]:
    """Run the Feast script with the Feast environment's interpreter; its JSON result."""
    proc = subprocess.run([python, str(root / "feast_bench.py"), str(root), store_type, str(repeat),
                           str(N_GROUPS), str(N_FEATURES)], capture_output=True, text=True, check=False)
    try:
        return dict(json.loads(proc.stdout.strip().splitlines()[-1]))
    except (IndexError, json.JSONDecodeError):
        err = proc.stderr.strip().splitlines()
        return {"error": err[-1] if err else f"exit {proc.returncode}, no output"}


def print_feast(results: dict[str, dict[str, Any]], ours: Any, rows: int) -> None:
    """Feast's stores against the engine (best times; rows/s over the label rows given)."""
    print("Feast get_historical_features (own venv, one process per store) vs cloudsdk:")
    head = ["variant", "best s", "runs s", "rows/s", "cloudsdk speed-up", "rows returned",
            "g0 matched", "peak RSS MiB"]
    lines = [["cloudsdk point_in_time_join", f"{ours.best:.3f}", "see above", f"{rows / ours.best / 1e3:,.0f}k",
              "1.00", f"{rows:,}", "-", "see above"]]
    for name, r in results.items():
        if "error" in r:
            lines.append([name, "error", r["error"][:60], "-", "-", "-", "-", "-"])
            continue
        best = min(r["runs"])
        lines.append([name, f"{best:.3f}", " ".join(f"{x:.2f}" for x in r["runs"]),
                      f"{rows / best / 1e3:,.0f}k", f"{best / ours.best:.1f}x", f"{r['rows']:,}",
                      f"{r['g0_matched']:,}", f"{r['peak_mib']:,.0f}"])
    widths = [max(len(str(row[i])) for row in [head, *lines]) for i in range(len(head))]
    print(" | ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)).rstrip())
    print("-|-".join("-" * w for w in widths))
    for row in lines:
        print(" | ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())
    print()


# ----------------------------------------------------------------------------- main

def _check(ours: Any, ref: Any) -> str:
    """Compare the engine's table with the same-semantics reference, row by row."""
    if ours.num_rows != ref.num_rows:
        return f"MISMATCH: {ours.num_rows:,} vs {ref.num_rows:,} rows"
    ref = ref.rename_columns(ours.column_names).cast(ours.schema)
    if not ours.equals(ref):
        return "MISMATCH: the tables differ"
    matched = ours.num_rows - ours.column("g0_f0").null_count
    return (f"same {ours.num_rows:,} rows x {ours.num_columns} columns, in label order, exact "
            f"({matched / max(ours.num_rows, 1):.0%} of the label rows found a g0 value)")


def main() -> int:
    if "--child" in sys.argv:
        parser = argparse.ArgumentParser()
        parser.add_argument("--child", required=True)
        parser.add_argument("--dir", required=True, type=Path)
        ns = parser.parse_args()
        return child(ns.dir, ns.child)
    feast_python = None
    if "--feast-python" in sys.argv:  # ours, not _common's: take it out before parse_args
        i = sys.argv.index("--feast-python")
        feast_python = sys.argv[i + 1] if i + 1 < len(sys.argv) else None
        del sys.argv[i:i + 2]
    args = parse_args(__doc__.splitlines()[0], default_rows=1_000_000)
    import pyarrow.parquet as pq

    with tempfile.TemporaryDirectory(prefix="cloudsdk-bench-pit-") as tmp:
        root = Path(tmp)
        start = time.perf_counter()
        write_data(root, args.rows)
        setup = time.perf_counter() - start
        labels = pq.read_table(root / "labels.parquet")
        header(
            "bench_pit: point-in-time join engine vs hand-written DuckDB ASOF LEFT JOIN",
            labels=f"{args.rows:,} rows (int64 id over {max(1, args.rows // 10):,} entities, "
                   f"ts over {DAYS} days, 1 float label)",
            history=f"{N_GROUPS} Delta tables x {args.rows:,} rows x {N_FEATURES} float64 features, "
                    f"2 commits ({CORRECTIONS:.0%} corrections: ties on (id, ts))",
            result=f"{args.rows:,} rows x {3 + N_GROUPS * N_FEATURES} columns",
            runs=f"1 warm-up + {args.repeat} timed, interleaved; ratios use the best run",
            setup=f"generate + write the Delta tables took {setup:.1f} s",
        )
        fns = variants(root, labels)
        print(f"check: {_check(fns['cloudsdk point_in_time_join'](), fns['duckdb ASOF + de-dup (QUALIFY) + label order']())}\n")

        timings = measure(fns, args.repeat)
        t = list(timings.values())
        ours, plain, win, argmax, win_o, argmax_o = t
        print_table([
            Case("PIT join vs ASOF + de-dup + label order (same semantics)", ours, fastest(win_o, argmax_o), args.rows),
            Case("PIT join vs ASOF + de-dup (rows unordered)", ours, fastest(win, argmax), args.rows),
            Case("PIT join vs ASOF, no de-dup (the limit)", ours, plain, args.rows),
        ])
        print_details(t)
        print(f"peak RSS of this process {peak_rss_mib():,.0f} MiB\n")

        memory = measure_memory(root, list(fns))
        head = f"{'variant (one run in a fresh process)':45s} | peak RSS MiB | after reading labels MiB"
        print(head)
        print("-" * len(head))
        for name, m in memory.items():
            if "error" in m:
                print(f"{name:45s} | error: {m['error']}")
            else:
                print(f"{name:45s} | {m['peak_mib']:12,.0f} | {m['before_mib']:,.0f}")
        print()

        if feast_python is None:
            print("Feast: not run (pass --feast-python /path/to/feast-venv/bin/python)")
            return 0
        write_feast_inputs(root)
        feast = {f"feast {kind} offline store": run_feast(root, feast_python, kind, min(args.repeat, 2))
                 for kind in ("duckdb", "file")}
        print_feast(feast, timings["cloudsdk point_in_time_join"], args.rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
