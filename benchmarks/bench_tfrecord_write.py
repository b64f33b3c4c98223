"""Benchmark: writing TFRecord files with cloudsdk's PartWriter against TensorFlow's own writer.

A table of ``--rows`` rows (default 200,000) x 20 float64 features is written as tfrecords:

* cloudsdk:  ``PartWriter(dir, schema, "tfrecords")`` fed the Arrow table, then ``close()``
  (vectorised ``tf.train.Example`` encoding and TFRecord framing, no TensorFlow);
* reference: ``tf.io.TFRecordWriter`` writing ``tf.train.Example(...).SerializeToString()``
  built per row the usual way (a ``Feature(float_list=FloatList(value=[v]))`` per column).
  The rows are handed to it as Python lists prepared outside the timing (its best case).

TensorFlow's writer runs at a few thousand rows/s here, so it is timed on the first
``--tf-rows`` rows (default 20,000) and its time scaled to ``--rows`` rows: the figure is
per-row throughput. Ratio = cloudsdk rows/s / TensorFlow rows/s on best-of-``--repeat`` runs
(target >= 3). Both files are checked to hold the same Examples.
Run: ``python benchmarks/bench_tfrecord_write.py [--rows N] [--tf-rows M] [--repeat K]``.
Always exits 0.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import Case, Timing, header, measure, peak_rss_mib, print_details, print_table

N_FEATURES = 20
TARGET = 3.0


def _args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000, help="rows cloudsdk writes (default 200,000)")
    parser.add_argument("--tf-rows", type=int, default=20_000,
                        help="rows TensorFlow writes; its time is scaled to --rows (default 20,000)")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs after one warm-up (default 3)")
    args = parser.parse_args()
    if min(args.rows, args.tf_rows, args.repeat) < 1:
        parser.error("--rows, --tf-rows and --repeat must be at least 1")
    args.tf_rows = min(args.tf_rows, args.rows)
    return args


def main() -> int:
    args = _args()
    import numpy as np
    import pyarrow as pa
    import tensorflow as tf

    from cloudsdk.datasets.formats import PartWriter

    names = [f"f{i:02d}" for i in range(N_FEATURES)]
    data = np.random.default_rng(42).random((args.rows, N_FEATURES))
    table = pa.table({name: data[:, i] for i, name in enumerate(names)})
    tf_rows = data[: args.tf_rows].tolist()
    tmp = Path(tempfile.mkdtemp(prefix="cloudsdk-bench-tfrecord-"))
    try:
        header(
            "bench_tfrecord_write: PartWriter(tfrecords) vs tf.io.TFRecordWriter + tf.train.Example",
            table=f"{args.rows:,} rows x {N_FEATURES} float64 features (written as float_list)",
            reference=f"TensorFlow {tf.__version__} on the first {args.tf_rows:,} rows, "
                      f"time scaled x{args.rows / args.tf_rows:.1f} to {args.rows:,} rows (per-row throughput)",
            runs=f"1 warm-up + {args.repeat} timed, interleaved; ratios use the best run",
        )

        def ours() -> Any:
            out = tmp / "cloudsdk"
            shutil.rmtree(out, ignore_errors=True)
            with PartWriter(out, table.schema, "tfrecords", rows_per_file=args.rows) as writer:
                writer.write(table)
            return writer.close()

        def reference() -> Any:
            path = tmp / "tf.tfrecord"
            with tf.io.TFRecordWriter(str(path)) as writer:
                for row in tf_rows:
                    example = tf.train.Example(features=tf.train.Features(feature={
                        name: tf.train.Feature(float_list=tf.train.FloatList(value=[value]))
                        for name, value in zip(names, row, strict=True)
                    }))
                    writer.write(example.SerializeToString())
            return path

        timings = measure({"cloudsdk PartWriter(tfrecords)": ours,
                           "tf.io.TFRecordWriter + tf.train.Example per row": reference}, args.repeat)
        ours_t, ref_t = timings.values()
        scale = args.rows / args.tf_rows
        scaled = Timing(f"{ref_t.name} (scaled to {args.rows:,} rows)", [t * scale for t in ref_t.runs], ref_t.error)

        # both files hold the same Examples (compared on the rows TensorFlow wrote)
        ours_records = tf.data.TFRecordDataset(str(tmp / "cloudsdk" / "part-r-00000.tfrecord"))
        ref_records = tf.data.TFRecordDataset(str(tmp / "tf.tfrecord"))
        same = all(tf.train.Example.FromString(a.numpy()) == tf.train.Example.FromString(b.numpy())
                   for a, b in zip(ours_records.take(1000), ref_records.take(1000), strict=True))
        print(f"check: {'same Examples' if same else 'MISMATCH'} (first 1,000 records of each file)\n")

        print_table([Case("write tfrecords rows/s", ours_t, scaled, args.rows)], target=TARGET)
        print_details([ours_t, ref_t])
        print(f"peak RSS {peak_rss_mib():,.0f} MiB")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    start = time.perf_counter()
    code = main()
    print(f"[{time.perf_counter() - start:.0f} s]")
    raise SystemExit(code)
