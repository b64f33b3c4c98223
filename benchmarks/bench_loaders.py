"""Benchmark: the streaming ML loaders (torch, tf.data) vs a plain pyarrow read, from S3.

A dataset of ``--rows`` rows (default 5,000,000) x 20 float64 features plus an int64
``label`` is written as Parquet part files (``--rows-per-file``, default 1,000,000, like the
training-dataset writer; row groups of ``--row-group-rows``, default 131,072) into a bucket of
a moto S3 server that this script starts as a separate process on loopback. Everything is
read through one ``pyarrow.fs.S3FileSystem`` pointed at it. Then:

(a) ``torch_dataloader(source, "label", batch_size=B)`` (num_workers=0: batches of
    ``[B, 20]`` float32 tensors and ``[B]`` int64 labels) against the limit: every row group
    of every file read with ``ParquetFile(pre_buffer=True).read_row_group`` through the same
    filesystem and turned into numpy arrays, one after the other. Target ratio >= 0.8.
(c) ``tf_dataset(source, "label", batch_size=B)`` consumed in graph mode
    (``Dataset.reduce``, as ``model.fit`` would) against the same limit. Target >= 0.7.
(e) peak memory: a fresh process streams the whole dataset through the torch loader; its
    RSS high-water mark (``VmHWM`` of ``/proc/self/status``, reset after the imports) is
    compared with one file's decoded size plus one batch. Target < 2x.

For context the table also shows the torch loader with 2 worker processes and a
``pyarrow.dataset`` scan (pyarrow's own parallel read-ahead) of the same files.

Ratio = reference time / loader time on best-of-``--repeat`` runs.
Run: ``python benchmarks/bench_loaders.py [--rows N] [--repeat K] [--batch-size B]``. Always exits 0.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import Case, measure, peak_rss_mib, print_details, print_table

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

N_FEATURES = 20
BUCKET = "bench-loaders"
PREFIX = f"{BUCKET}/td/bench_1"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5_000_000, help="rows in the dataset (default 5,000,000)")
    parser.add_argument("--rows-per-file", type=int, default=1_000_000, help="rows per part file (default 1,000,000)")
    parser.add_argument("--row-group-rows", type=int, default=131_072, help="rows per Parquet row group (default 131,072)")
    parser.add_argument("--batch-size", type=int, default=1024, help="rows per batch (default 1024)")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs of each variant after one warm-up (default 3)")
    parser.add_argument("--memory-child", nargs=3, metavar=("ENDPOINT", "MODE", "PATHS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if min(args.rows, args.rows_per_file, args.row_group_rows, args.batch_size, args.repeat) < 1:
        parser.error("sizes and --repeat must be at least 1")
    return args


def s3_filesystem(endpoint: str) -> Any:
    import pyarrow.fs as pafs

    return pafs.S3FileSystem(access_key="testing", secret_key="testing", region="us-east-1",
                             endpoint_override=endpoint, scheme="http", allow_bucket_creation=True)


def schema() -> Any:
    import pyarrow as pa

    return pa.schema([*(pa.field(f"f{i:02d}", pa.float64()) for i in range(N_FEATURES)),
                      pa.field("label", pa.int64())])


def write_dataset(fs: Any, args: argparse.Namespace) -> list[str]:
    """Generate the rows file by file and write them to S3; returns the paths."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    fs.create_dir(BUCKET)
    rng = np.random.default_rng(0)
    paths, done, index = [], 0, 0
    while done < args.rows:
        n = min(args.rows_per_file, args.rows - done)
        columns = {f"f{i:02d}": rng.standard_normal(n) for i in range(N_FEATURES)}
        columns["label"] = rng.integers(0, 10, n)
        table = pa.table(columns, schema=schema())
        path = f"{PREFIX}/part-r-{index:05d}.parquet"
        with fs.open_output_stream(path) as out:
            pq.write_table(table, out, row_group_size=args.row_group_rows)
        paths.append(path)
        done += n
        index += 1
    return paths


def limit_read(fs: Any, paths: list[str]) -> int:
    """The limit: every row group, one after the other, to numpy arrays."""
    import pyarrow.parquet as pq

    rows = 0
    for path in paths:
        with fs.open_input_file(path) as f:
            pf = pq.ParquetFile(f, pre_buffer=True)
            for i in range(pf.num_row_groups):
                table = pf.read_row_group(i)
                arrays = [column.to_numpy() for column in table.columns]
                rows += len(arrays[0])
    return rows


def dataset_scan(fs: Any, paths: list[str]) -> int:
    """pyarrow.dataset's scan with its own parallel read-ahead, to numpy arrays."""
    import pyarrow.dataset as pads

    rows = 0
    for batch in pads.dataset(paths, format="parquet", filesystem=fs).to_batches():
        arrays = [column.to_numpy() for column in batch.columns]
        rows += len(arrays[0])
    return rows


def torch_pass(fs: Any, paths: list[str], batch_size: int, num_workers: int = 0) -> int:
    from cloudsdk.ml import FileSource, torch_dataloader

    source = FileSource(fs, paths, "parquet", schema())
    rows = 0
    for x, y in torch_dataloader(source, "label", batch_size=batch_size, num_workers=num_workers):
        rows += int(y.shape[0])
        assert x.shape[1] == N_FEATURES
    return rows


def tf_pass(fs: Any, paths: list[str], batch_size: int) -> int:
    import tensorflow as tf

    from cloudsdk.ml import FileSource, tf_dataset

    source = FileSource(fs, paths, "parquet", schema())
    ds = tf_dataset(source, "label", batch_size=batch_size)
    return int(ds.reduce(tf.constant(0, tf.int64), lambda acc, xy: acc + tf.shape(xy[1], tf.int64)[0]))


# ---------------------------------------------------------------------- memory (e)
def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def memory_child(endpoint: str, mode: str, paths_json: str, batch_size: int) -> None:
    """In a fresh process: stream the dataset (``mode`` torch or limit), print the RSS
    high-water mark and the baseline (RSS after the imports and a first S3 request)."""
    import torch  # noqa: F401  (imported before the baseline)

    from cloudsdk.ml import FileSource

    fs = s3_filesystem(endpoint)
    paths = json.loads(paths_json)
    FileSource(fs, paths[:1], "parquet", schema()).units()  # warm the S3 client and imports
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
    base = _status_kib("VmRSS")
    rows = torch_pass(fs, paths, batch_size) if mode == "torch" else limit_read(fs, paths)
    print(json.dumps({"rows": rows, "base_kib": base, "hwm_kib": _status_kib("VmHWM")}))


def measure_memory(endpoint: str, mode: str, paths: list[str], batch_size: int) -> dict[str, int]:
    """Run :func:`memory_child` in a fresh interpreter and return what it printed."""
    out = subprocess.run([sys.executable, __file__, "--batch-size", str(batch_size), "--memory-child",
                          endpoint, mode, json.dumps(paths)], capture_output=True, text=True, check=True)
    result: dict[str, int] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


# ---------------------------------------------------------------------- main
def main() -> int:
    args = parse_args()
    if args.memory_child:
        endpoint, mode, paths_json = args.memory_child
        memory_child(endpoint, mode, paths_json, args.batch_size)
        return 0
    import pyarrow as pa
    import pyarrow.parquet as pq
    import tensorflow as tf
    import torch

    from tests.aws import start_moto_server, stop_moto_server

    with tempfile.TemporaryDirectory(prefix="cloudsdk-bench-loaders-") as tmp:
        moto = start_moto_server(Path(tmp) / "moto.log")
        try:
            endpoint = moto.url.removeprefix("http://")
            fs = s3_filesystem(endpoint)
            start = time.perf_counter()
            paths = write_dataset(fs, args)
            setup = time.perf_counter() - start
            with fs.open_input_file(paths[0]) as f:
                first = pq.read_table(f)
            file_bytes, file_rows = first.nbytes, first.num_rows
            del first
            size = sum(fs.get_file_info(p).size for p in paths)
            print("== bench_loaders: torch_dataloader / tf_dataset vs a plain pyarrow read, Parquet on moto S3 ==")
            print(f"date {time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores, pyarrow {pa.__version__}, "
                  f"torch {torch.__version__}, tensorflow {tf.__version__}")
            print(f"dataset: {args.rows:,} rows x {N_FEATURES} float64 features + int64 label, {len(paths)} "
                  f"Parquet files ({size / 2**20:,.0f} MiB), {args.row_group_rows:,}-row row groups")
            print("storage: moto_server process on 127.0.0.1 (S3 API), read with pyarrow.fs.S3FileSystem")
            print(f"batch size {args.batch_size}; runs: 1 warm-up + {args.repeat} timed, interleaved; "
                  f"ratio = reference / loader on the best run")
            print(f"setup: generate + upload took {setup:.1f} s\n")

            expected = args.rows
            counts = {
                "limit": limit_read(fs, paths), "torch": torch_pass(fs, paths, args.batch_size),
                "tf": tf_pass(fs, paths, args.batch_size),
            }
            print(f"check: rows seen {counts} (expected {expected:,} each)\n")

            timings = measure({
                "pyarrow row groups -> numpy (limit)": lambda: limit_read(fs, paths),
                "torch_dataloader": lambda: torch_pass(fs, paths, args.batch_size),
                "tf_dataset": lambda: tf_pass(fs, paths, args.batch_size),
                "torch_dataloader num_workers=2": lambda: torch_pass(fs, paths, args.batch_size, 2),
                "pyarrow.dataset scan -> numpy": lambda: dataset_scan(fs, paths),
            }, args.repeat)
            t = list(timings.values())
            limit, torch_t, tf_t, torch2, scan = t
            print_table([Case("(a) torch_dataloader vs limit", torch_t, limit, args.rows)], target=0.8)
            print_table([Case("(c) tf_dataset vs limit", tf_t, limit, args.rows)], target=0.7)
            print("for context (no target):")
            print_table([Case("torch_dataloader num_workers=2 vs limit", torch2, limit, args.rows),
                         Case("torch_dataloader vs pyarrow.dataset scan", torch_t, scan, args.rows)], target=0.0)
            print_details(t)

            batch_bytes = args.batch_size * (N_FEATURES * 4 + 8)
            reference = file_bytes + batch_bytes
            print("(e) peak memory streaming the whole dataset (fresh process each; VmHWM over the RSS "
                  "after imports and a first S3 request):")
            print(f"  reference: one file decoded ({file_rows:,} rows, {file_bytes / 2**20:,.1f} MiB) + one "
                  f"batch ({batch_bytes / 2**10:,.1f} KiB) = {reference / 2**20:,.1f} MiB")
            for mode, label in (("torch", "torch_dataloader"), ("limit", "plain pyarrow read (context)")):
                mem = measure_memory(endpoint, mode, paths, args.batch_size)
                peak = (mem["hwm_kib"] - mem["base_kib"]) * 1024
                ratio = peak / reference
                mark = "" if mode != "torch" else f" | target < 2.0{'' if ratio < 2.0 else '  ABOVE'}"
                print(f"  {label}: peak {peak / 2**20:,.1f} MiB | ratio to reference {ratio:.2f}{mark} "
                      f"| rows {mem['rows']:,}")
            print(f"\npeak RSS {peak_rss_mib():,.0f} MiB (this process)")
        finally:
            stop_moto_server(moto.process)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
