"""Timing helpers shared by the benchmarks: warm-up, best/median of N runs, a table printer.

Every benchmark compares cloudsdk with a reference measured in the same process and run,
so the ratio ``reference_time / cloudsdk_time`` is meaningful on any machine. The runs of
all variants are interleaved (one run of each, then the next round) so that drift of the
machine (page cache, frequency, a neighbour) hits every variant alike.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import gc
import os
import platform
import resource
import statistics
import sys
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

TARGET_RATIO = 0.8


@dataclass
class Timing:
    """The wall-clock times of one variant, in seconds (``error`` when it raised)."""

    name: str
    runs: list[float] = field(default_factory=list)
    error: str | None = None

    @property
    def best(self) -> float:
        """The fastest run (the figure ratios use: least disturbed by noise)."""
        return min(self.runs) if self.runs else float("nan")

    @property
    def median(self) -> float:
        """The median run."""
        return statistics.median(self.runs) if self.runs else float("nan")


def parse_args(description: str, default_rows: int) -> argparse.Namespace:
    """The options every benchmark takes: ``--rows N`` and ``--repeat K``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--rows", type=int, default=default_rows,
                        help=f"rows per feature group (default {default_rows:,})")
    parser.add_argument("--repeat", type=int, default=5,
                        help="timed runs of each variant after one warm-up run (default 5)")
    args = parser.parse_args()
    if args.rows < 1 or args.repeat < 1:
        parser.error("--rows and --repeat must be at least 1")
    return args


def measure(variants: Mapping[str, Callable[[], Any]], repeat: int, warmup: int = 1) -> dict[str, Timing]:
    """Time each variant ``repeat`` times after ``warmup`` untimed runs, interleaved.

    Each call's result is dropped (and garbage collected) before the next call, so at most
    one result is alive at a time. A variant that raises is recorded with its error and not
    run again; the others go on.
    """
    timings = {name: Timing(name) for name in variants}
    for round_no in range(warmup + repeat):
        for name, fn in variants.items():
            timing = timings[name]
            if timing.error is not None:
                continue
            gc.collect()
            start = time.perf_counter()
            try:
                result = fn()
            except Exception as exc:
                timing.error = f"{type(exc).__name__}: {exc}"
                traceback.print_exc(file=sys.stderr)
                continue
            elapsed = time.perf_counter() - start
            del result
            if round_no >= warmup:
                timing.runs.append(elapsed)
    gc.collect()
    return timings


def fastest(*timings: Timing) -> Timing:
    """The variant with the best time (those that raised are skipped)."""
    ok = [t for t in timings if t.error is None and t.runs]
    return min(ok, key=lambda t: t.best) if ok else timings[0]


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def header(title: str, **facts: Any) -> None:
    """Print the benchmark's title and the facts needed to compare runs."""
    import deltalake
    import duckdb
    import pandas
    import pyarrow

    print(f"== {title} ==")
    print(f"date {_dt.date.today().isoformat()}, python {platform.python_version()}, "
          f"{os.cpu_count()} cores, pyarrow {pyarrow.__version__}, pandas {pandas.__version__}, "
          f"deltalake {deltalake.__version__}, duckdb {duckdb.__version__}")
    for key, value in facts.items():
        print(f"{key}: {value}")
    print()


def _fmt_s(t: Timing, value: float | None = None) -> str:
    return "error" if t.error else f"{t.best if value is None else value:.4f}"


def _fmt_rate(rows: int, t: Timing) -> str:
    if t.error or not t.runs:
        return "-"
    rate = rows / t.best
    return f"{rate / 1e6:,.1f}M" if rate >= 1e6 else f"{rate / 1e3:,.1f}k"


@dataclass
class Case:
    """One line of the result table: a cloudsdk variant against its reference."""

    name: str
    cloudsdk: Timing
    reference: Timing
    rows: int

    @property
    def ratio(self) -> float:
        """``reference_time / cloudsdk_time`` on best times (1.0 = as fast as the reference)."""
        if self.cloudsdk.error or self.reference.error or not self.cloudsdk.runs:
            return float("nan")
        return self.reference.best / self.cloudsdk.best

    @property
    def median_ratio(self) -> float:
        """The same on median times: a second opinion when the machine is noisy."""
        if self.cloudsdk.error or self.reference.error or not self.cloudsdk.runs:
            return float("nan")
        return self.reference.median / self.cloudsdk.median


def print_table(cases: Sequence[Case], target: float = TARGET_RATIO) -> None:
    """Print ``case | cloudsdk s | reference s | ratio | target`` (best times), then the ratio
    of median times, the rates and which reference variant was the fastest."""
    head = ["case", "cloudsdk s", "reference s", "ratio", "target", "median ratio",
            "cloudsdk rows/s", "reference rows/s", "reference (fastest of its variants)"]
    lines = []
    for c in cases:
        ratio = c.ratio
        mark = "" if ratio != ratio or round(ratio, 2) >= target else "  BELOW"
        lines.append([c.name, _fmt_s(c.cloudsdk), _fmt_s(c.reference),
                      "-" if ratio != ratio else f"{ratio:.2f}{mark}", f">= {target}",
                      "-" if c.median_ratio != c.median_ratio else f"{c.median_ratio:.2f}",
                      _fmt_rate(c.rows, c.cloudsdk), _fmt_rate(c.rows, c.reference), c.reference.name])
    _print_rows(head, lines)


def print_details(timings: Sequence[Timing]) -> None:
    """Print every variant's best and median time and all of its runs."""
    head = ["variant", "best s", "median s", "runs s"]
    lines = []
    for t in timings:
        runs = t.error or " ".join(f"{r:.4f}" for r in t.runs)
        lines.append([t.name, _fmt_s(t), _fmt_s(t, t.median), runs])
    _print_rows(head, lines)


def _print_rows(head: list[str], lines: list[list[str]]) -> None:
    widths = [max(len(str(row[i])) for row in [head, *lines]) for i in range(len(head))]
    print(" | ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)).rstrip())
    print("-|-".join("-" * w for w in widths))
    for row in lines:
        print(" | ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())
    print()
