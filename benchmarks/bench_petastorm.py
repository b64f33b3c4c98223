"""Benchmark (b): cloudsdk's torch loader vs petastorm's BatchedDataLoader, in the legacy env.

A dataset of ``--rows`` rows (default 5,000,000) x 20 float64 features plus an int64
``label`` is written as Parquet part files (``--rows-per-file``, default 1,000,000; row groups
of ``--row-group-rows``, default 131,072) into a bucket of a moto S3 server that this script
starts as a separate process on loopback. petastorm 0.13.1 needs pyarrow <= 14, so both
loaders are then measured in one process of the legacy ML environment (``.venv-legacy``,
built by tools/legacy_env.py if needed), interleaved, on the same files:

* cloudsdk: ``torch_dataloader(FileSource(S3FileSystem, files, "parquet", schema), "label",
  batch_size=B)`` (num_workers=0) — batches of ``[B, 20]`` float32 tensors and ``[B]`` labels;
* petastorm: ``BatchedDataLoader(make_batch_reader("s3://...", filesystem=...), batch_size=B)``
  with petastorm's defaults (10 reader threads) — a dict of ``[B]`` tensors per column.

Ratio = petastorm time / cloudsdk time on best-of-``--repeat`` runs (target >= 2).
Run with the main environment's python: ``python benchmarks/bench_petastorm.py [--rows N]
[--repeat K] [--batch-size B]``. Always exits 0 (unless the legacy environment cannot be built).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
N_FEATURES = 20
BUCKET = "bench-petastorm"
PREFIX = f"{BUCKET}/td/bench_1"
TARGET = 2.0


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5_000_000, help="rows in the dataset (default 5,000,000)")
    parser.add_argument("--rows-per-file", type=int, default=1_000_000, help="rows per part file (default 1,000,000)")
    parser.add_argument("--row-group-rows", type=int, default=131_072, help="rows per row group (default 131,072)")
    parser.add_argument("--batch-size", type=int, default=1024, help="rows per batch (default 1024)")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs of each loader after one warm-up (default 3)")
    parser.add_argument("--child", metavar="ENDPOINT", help=argparse.SUPPRESS)  # the legacy-env side
    parser.add_argument("--paths", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if min(args.rows, args.rows_per_file, args.row_group_rows, args.batch_size, args.repeat) < 1:
        parser.error("sizes and --repeat must be at least 1")
    return args


def schema() -> Any:
    import pyarrow as pa

    return pa.schema([*(pa.field(f"f{i:02d}", pa.float64()) for i in range(N_FEATURES)),
                      pa.field("label", pa.int64())])


def s3_filesystem(endpoint: str) -> Any:
    import pyarrow.fs as pafs

    return pafs.S3FileSystem(access_key="testing", secret_key="testing", region="us-east-1",
                             endpoint_override=endpoint.removeprefix("http://"), scheme="http",
                             allow_bucket_creation=True)


def write_dataset(endpoint: str, args: argparse.Namespace) -> list[str]:
    """Generate the rows file by file and write them to S3; returns the paths."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    fs = s3_filesystem(endpoint)
    fs.create_dir(BUCKET)
    rng = np.random.default_rng(0)
    paths, done, index = [], 0, 0
    while done < args.rows:
        n = min(args.rows_per_file, args.rows - done)
        columns: dict[str, Any] = {f"f{i:02d}": rng.standard_normal(n) for i in range(N_FEATURES)}
        columns["label"] = rng.integers(0, 10, n)
        path = f"{PREFIX}/part-r-{index:05d}.parquet"
        with fs.open_output_stream(path) as out:
            pq.write_table(pa.table(columns, schema=schema()), out, row_group_size=args.row_group_rows)
        paths.append(path)
        done += n
        index += 1
    return paths


# --------------------------------------------------------------------------- legacy-env side


def cloudsdk_pass(endpoint: str, paths: list[str], batch_size: int) -> int:
    from cloudsdk.ml.source import FileSource
    from cloudsdk.ml.torch import torch_dataloader

    source = FileSource(s3_filesystem(endpoint), paths, "parquet", schema())
    rows = 0
    for x, y in torch_dataloader(source, "label", batch_size=batch_size):
        assert x.shape[1] == N_FEATURES
        rows += int(y.shape[0])
    return rows


def petastorm_pass(endpoint: str, batch_size: int) -> int:
    from petastorm import make_batch_reader
    from petastorm.pytorch import BatchedDataLoader

    from cloudsdk.datasets.petastorm import s3_filesystem as petastorm_fs

    connector = {"endpoint_url": endpoint, "access_key": "testing", "secret_key": "testing",
                 "region": "us-east-1"}
    rows = 0
    with make_batch_reader(f"s3://{PREFIX}", filesystem=petastorm_fs(connector), num_epochs=1,
                           shuffle_row_groups=False) as reader:
        for batch in BatchedDataLoader(reader, batch_size=batch_size):
            assert len(batch) == N_FEATURES + 1
            rows += int(batch["label"].shape[0])
    return rows


def child(args: argparse.Namespace) -> int:
    """Measure both loaders, interleaved, in this (legacy-env) process; print JSON."""
    import warnings

    warnings.simplefilter("ignore")
    import petastorm
    import pyarrow
    import torch

    endpoint, paths = args.child, json.loads(args.paths)
    variants = {"cloudsdk": lambda: cloudsdk_pass(endpoint, paths, args.batch_size),
                "petastorm": lambda: petastorm_pass(endpoint, args.batch_size)}
    runs: dict[str, list[float]] = {name: [] for name in variants}
    rows: dict[str, int] = {}
    for round_no in range(1 + args.repeat):
        for name, fn in variants.items():
            start = time.perf_counter()
            rows[name] = fn()
            elapsed = time.perf_counter() - start
            if round_no:
                runs[name].append(elapsed)
    print(json.dumps({"runs": runs, "rows": rows, "versions": {
        "pyarrow": pyarrow.__version__, "torch": torch.__version__, "petastorm": petastorm.__version__,
        "python": platform.python_version()}}), flush=True)
    return 0


# --------------------------------------------------------------------------- main-env side


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    if args.child:
        return child(args)
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT / "tools"))
    import legacy_env

    from tests.aws import start_moto_server, stop_moto_server

    legacy_python = legacy_env.ensure_legacy_venv(ROOT)
    with tempfile.TemporaryDirectory(prefix="cloudsdk-bench-petastorm-") as tmp:
        moto = start_moto_server(Path(tmp) / "moto.log")
        try:
            start = time.perf_counter()
            paths = write_dataset(moto.url, args)
            setup = time.perf_counter() - start
            cmd = [str(legacy_python), __file__, "--child", moto.url, "--paths", json.dumps(paths),
                   "--batch-size", str(args.batch_size), "--repeat", str(args.repeat),
                   "--rows", str(args.rows)]
            env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PYTHON"))}
            env["TF_CPP_MIN_LOG_LEVEL"] = "2"
            proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
        finally:
            stop_moto_server(moto.process)
    print("== bench_petastorm: cloudsdk torch_dataloader vs petastorm BatchedDataLoader(make_batch_reader), "
          "Parquet on moto S3, legacy environment ==")
    print(f"dataset: {args.rows:,} rows x {N_FEATURES} float64 features + int64 label in {len(paths)} file(s), "
          f"row groups of {args.row_group_rows:,} rows; written in {setup:.1f} s")
    print(f"batch size {args.batch_size}; 1 warm-up + {args.repeat} timed runs each, interleaved; "
          f"{os.cpu_count()} cores")
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        print(f"the legacy-environment run failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}")
        return 0
    result = json.loads(lines[-1])
    print("legacy environment: " + ", ".join(f"{k} {v}" for k, v in result["versions"].items()))
    print()
    best = {name: min(runs) for name, runs in result["runs"].items()}
    ratio = best["petastorm"] / best["cloudsdk"]
    head = ["loader", "best s", "rows/s", "runs s", "rows"]
    table = [[name, f"{best[name]:.3f}", f"{args.rows / best[name] / 1e6:,.2f}M",
              " ".join(f"{r:.3f}" for r in result["runs"][name]), f"{result['rows'][name]:,}"]
             for name in ("cloudsdk", "petastorm")]
    widths = [max(len(row[i]) for row in [head, *table]) for i in range(len(head))]
    for row in [head, ["-" * w for w in widths], *table]:
        print(" | ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())
    mark = "" if round(ratio, 2) >= TARGET else "  BELOW"
    print(f"\nratio (petastorm time / cloudsdk time): {ratio:.2f}{mark}   target >= {TARGET}")
    if result["rows"]["cloudsdk"] != args.rows or result["rows"]["petastorm"] != args.rows:
        print(f"WARNING: row counts differ from {args.rows:,}: {result['rows']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
