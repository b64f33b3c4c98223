"""Run every benchmark with its defaults, each in its own process (one after the other).

Run: ``python benchmarks/run_all.py [--repeat K]``. Prints each benchmark's table; exits 0
(benchmarks report, they do not gate), unless a benchmark crashed.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

BENCHMARKS = ("bench_read.py", "bench_get_features.py", "bench_remote_read.py", "bench_tfrecord_write.py", "bench_pit.py", "bench_statistics.py",
              "bench_loaders.py", "bench_petastorm.py", "bench_online.py")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=None,
                        help="timed runs per variant, passed to every benchmark (default: theirs)")
    args = parser.parse_args()
    here = Path(__file__).resolve().parent
    extra = [] if args.repeat is None else ["--repeat", str(args.repeat)]
    failed = []
    for name in BENCHMARKS:
        start = time.perf_counter()
        code = subprocess.call([sys.executable, str(here / name), *extra])
        print(f"[{name}: exit {code}, {time.perf_counter() - start:.0f} s]\n", flush=True)
        if code:
            failed.append(name)
    if failed:
        print(f"crashed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
