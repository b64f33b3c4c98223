"""Statistics beyond the descriptive ones: correlation, histograms and k-means clusters.

Everything is columnar and streams over the data once more after the descriptive DuckDB pass
(:func:`cloudsdk.store.statistics.describe`):

* histograms of numeric features are exact: ``numpy.histogram`` over every record batch with
  the range taken from the descriptive pass (identical bins to one ``numpy.histogram`` call
  over the whole column); strings and booleans get their top-k value counts from DuckDB;
* correlation (Pearson or Spearman) and clusters are computed on a sample: every row up to
  :data:`SAMPLE_THRESHOLD` rows, above it a uniform sample of that many rows drawn with
  :data:`SAMPLE_SEED` (the seed's Spark job sampled the same way). Clusters use at most
  :data:`CLUSTER_SAMPLE_ROWS` rows of that sample.

The result extends the descriptive dict with ``"correlation"``, ``"histograms"`` and
``"clusters"`` sections plus ``"config"`` (the options used) and ``"sample"``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from cloudsdk._stats_config import DEFAULT_CONFIG
from cloudsdk.errors import InvalidArgumentError, SchemaMismatchError, StorageError
from cloudsdk.store import statistics
from cloudsdk.store.schema import feature_type

#: Rows above which correlation and clusters are computed on a sample.
SAMPLE_THRESHOLD = 1_000_000
#: Seed of the sample and of k-means (fixed: the same data gives the same statistics).
SAMPLE_SEED = 42
#: Most rows k-means runs on.
CLUSTER_SAMPLE_ROWS = 20_000
#: Points of the 2-D projection stored for plotting.
PROJECTION_POINTS = 1_000
#: Largest estimated size (rows x 8 bytes per numeric column) read into memory at once; larger
#: inputs are streamed twice (a DuckDB pass, then a numpy pass over record batches).
IN_MEMORY_BYTES = 4 << 30
#: Value counts kept per string/boolean feature.
TOP_K = 20

CORR_METHODS = ("pearson", "spearman")

def normalise_config(config: Mapping[str, Any] | None) -> dict[str, Any]:
    """A complete, checked statistics configuration (missing keys take :data:`DEFAULT_CONFIG`).

    Raises:
        InvalidArgumentError: an unknown key, ``num_bins``/``num_clusters`` not a positive
            integer, an unknown ``corr_method``, or ``columns`` not a list of names.
    """
    given = dict(config or {})
    unknown = sorted(set(given) - set(DEFAULT_CONFIG))
    if unknown:
        raise InvalidArgumentError(f"unknown statistics option(s) {unknown}; options: {sorted(DEFAULT_CONFIG)}")
    out = {**DEFAULT_CONFIG, **{k: v for k, v in given.items() if v is not None or k == "columns"}}
    for key in ("enabled", "descriptive", "correlation", "histograms", "clusters"):
        out[key] = bool(out[key])
    for key in ("num_bins", "num_clusters"):
        value = out[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InvalidArgumentError(f"{key} must be a positive integer, got {value!r}")
    method = str(out["corr_method"]).lower()
    if method not in CORR_METHODS:
        raise InvalidArgumentError(f"corr_method must be one of {list(CORR_METHODS)}, got {out['corr_method']!r}")
    out["corr_method"] = method
    cols = out["columns"]
    if cols is not None:
        if isinstance(cols, str) or not all(isinstance(c, str) for c in cols):
            raise InvalidArgumentError(f"stat_columns must be a list of feature names, got {cols!r}")
        out["columns"] = list(cols) or None
    if not (out["descriptive"] or out["correlation"] or out["histograms"] or out["clusters"]):
        raise InvalidArgumentError("statistics need at least one of descriptive statistics, feature correlation, "
                                   "feature histograms or cluster analysis")
    return out


def _numeric(t: pa.DataType) -> bool:
    return pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t)


def _batches(data: Any, columns: Sequence[str]) -> Iterator[pa.RecordBatch]:
    if isinstance(data, pa.Table):
        yield data.select(list(columns))  # in memory: whole columns
    elif isinstance(data, pa.RecordBatchReader):
        for batch in data:
            yield batch.select(list(columns))
    else:  # a pyarrow dataset
        yield from data.to_batches(columns=list(columns), batch_size=1 << 20)


def _as_float(arr: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A column as float64 with nulls as NaN."""
    if pa.types.is_boolean(arr.type) or pa.types.is_decimal(arr.type):
        arr = pc.cast(arr, pa.int8() if pa.types.is_boolean(arr.type) else pa.float64())
    out = pc.cast(arr, pa.float64()).to_numpy(zero_copy_only=False)
    return np.asarray(out, dtype=np.float64)


def compute(data: Any, schema: pa.Schema, config: Mapping[str, Any] | None = None,
            columns: Sequence[str] | None = None, *, all_columns: Sequence[str] | None = None,
            empty_ok: bool = False, strict: bool = True) -> dict[str, Any]:
    """Statistics of ``data`` as ``config`` says (see :func:`normalise_config`).

    Args:
        data: a pyarrow Table or Dataset (a RecordBatchReader is read into a Table first).
        schema: the schema of ``data``.
        config: the statistics configuration; its ``columns`` are used when ``columns`` is None.
        columns: the features to compute statistics of (default: ``all_columns``). Named
            features are strict: a non-numeric one with correlation or clusters on is an error.
        all_columns: every feature (default: the schema's names not starting with ``_``);
            correlation and clusters take the numeric ones among them.
        empty_ok: no rows gives the descriptive statistics (row count 0) instead of an error.
        strict: a non-numeric feature named in ``columns`` with correlation or clusters on is an
            error (False: it is left out of them).

    Returns:
        ``{"row_count", "features" (descriptive, when enabled), "correlation", "histograms",
        "clusters", "config", "sample"}``; a section that was not asked for is None.

    Raises:
        SchemaMismatchError: an unknown feature in ``columns``.
        InvalidArgumentError: a bad option, no rows, a non-numeric feature named for correlation
            or clusters, or fewer rows than ``num_clusters``.
    """
    cfg = normalise_config(config)
    if isinstance(data, pa.RecordBatchReader):
        data = data.read_all()
    named = list(columns) if columns else cfg["columns"]
    if named:
        unknown = [c for c in named if c not in schema.names]
        if unknown:
            raise SchemaMismatchError(f"statistics asked for unknown features {unknown}")
    if named:
        cols = list(named)
    elif all_columns is not None:
        cols = list(all_columns)
    else:
        cols = [n for n in schema.names if not n.startswith("_")]
    cfg["columns"] = list(named) if named else None
    kinds = {c: statistics._kind(schema.field(c).type) for c in cols}
    numeric = [c for c in cols if kinds[c] == "numeric"]
    matrix_cols = [c for c in cols if kinds[c] in ("numeric", "boolean")]
    if strict and named and (cfg["correlation"] or cfg["clusters"]):
        bad = [c for c in cols if kinds[c] not in ("numeric", "boolean")]
        if bad:
            raise InvalidArgumentError(f"feature correlation and cluster analysis need numeric features; {bad} "
                                       "are not (leave them out of stat_columns or turn correlation/clusters off)")
    if not isinstance(data, pa.Table):
        width = sum(8 if kinds[c] in ("numeric", "boolean") else 32 for c in cols) or 1
        if int(data.count_rows()) * width <= IN_MEMORY_BYTES:
            data = data.to_table(columns=cols)  # one parallel read; otherwise stream twice
            schema = data.schema
    in_memory = isinstance(data, pa.Table)
    # numeric columns without nulls of an in-memory table: descriptive statistics in numpy (in the
    # pass below); the rest (and the approximate distinct counts) in one DuckDB pass
    fast = [c for c in cols if in_memory and kinds[c] == "numeric" and not pa.types.is_decimal(schema.field(c).type)
            and data.column(c).null_count == 0] if cfg["descriptive"] or cfg["histograms"] else []
    slow = [c for c in cols if c not in fast]
    desc = statistics.describe(data, schema, slow)
    distinct = _approx_distinct(data, fast) if fast and cfg["descriptive"] else {}
    rows = int(desc["row_count"])
    if rows == 0 and empty_ok:
        empty = statistics.describe(data, schema, cols)
        return {"row_count": 0, "features": empty["features"], "correlation": None, "histograms": None,
                "clusters": None, "config": {k: cfg[k] for k in DEFAULT_CONFIG if k != "enabled"},
                "sample": {"rows": 0, "sampled": False, "seed": SAMPLE_SEED, "threshold": SAMPLE_THRESHOLD}}
    if rows == 0:
        raise InvalidArgumentError("there are no rows to compute statistics of (the feature group is empty)")
    if strict and cfg["clusters"] and len(numeric) == 0 and named:
        raise InvalidArgumentError("cluster analysis needs at least one numeric feature")
    sample_n = min(rows, SAMPLE_THRESHOLD)
    need_sample = bool((cfg["correlation"] or cfg["clusters"]) and matrix_cols)
    hist_cols = numeric if cfg["histograms"] else []
    bins = cfg["num_bins"]
    counts: dict[str, np.ndarray] = {}
    ranges: dict[str, tuple[Any, Any]] = {}
    wanted = [c for c in cols if c in set(hist_cols) | set(fast) | set(matrix_cols if need_sample else [])]
    x = np.empty((sample_n if need_sample else 0, len(matrix_cols)), order="F")
    chosen = None
    if need_sample and sample_n < rows:
        chosen = np.sort(np.random.default_rng(SAMPLE_SEED).choice(rows, size=sample_n, replace=False))
    offset = 0
    for batch in _batches(data, wanted) if wanted else ():
        n = batch.num_rows
        take = None
        if chosen is not None:
            lo, hi = np.searchsorted(chosen, [offset, offset + n])
            take = chosen[lo:hi] - offset
        at = offset if chosen is None else int(np.searchsorted(chosen, offset))
        for c in wanted:
            column = batch.column(c)
            values = _as_float(column)
            if c in fast:  # the whole column (an in-memory table is one batch)
                desc["features"][c] = _numeric_stats(column, values, schema.field(c).type, distinct.get(c))
            if c in hist_cols:
                if c not in ranges:
                    f = desc["features"][c]
                    ranges[c] = (f.get("min"), f.get("max"))
                    if ranges[c][0] is not None and ranges[c][1] is not None:
                        counts[c] = np.zeros(bins, dtype=np.int64)
                if c in counts:  # NaN (null) falls outside the range and is not counted
                    counts[c] += np.histogram(values, bins=bins, range=(float(ranges[c][0]), float(ranges[c][1])))[0]
            if need_sample and c in matrix_cols:
                part = values if take is None else values[take]
                x[at:at + len(part), matrix_cols.index(c)] = part
        offset += n
    out: dict[str, Any] = {"row_count": rows,
                           "features": {c: desc["features"][c] for c in cols} if cfg["descriptive"] else {}}
    out["histograms"] = _histograms(data, schema, cols, kinds, counts, ranges, cfg) if cfg["histograms"] else None
    out["correlation"] = _correlation(x, matrix_cols, cfg["corr_method"]) if cfg["correlation"] else None
    out["clusters"] = None
    if cfg["clusters"] and numeric:
        out["clusters"] = _clusters(x[:, [matrix_cols.index(c) for c in numeric]], numeric, cfg["num_clusters"])
    out["config"] = {k: cfg[k] for k in DEFAULT_CONFIG if k != "enabled"}
    out["sample"] = {"rows": sample_n if need_sample else rows, "sampled": bool(need_sample and sample_n < rows),
                     "seed": SAMPLE_SEED, "threshold": SAMPLE_THRESHOLD}
    return out


def _approx_distinct(data: pa.Table, columns: Sequence[str]) -> dict[str, int]:
    con = duckdb.connect(config={"enable_external_access": False})
    try:
        con.register("t", data)
        row = con.sql("SELECT " + ", ".join(f"approx_count_distinct({statistics._q(c)})" for c in columns)
                      + " FROM t").fetchall()[0]
    except duckdb.Error as exc:
        raise StorageError(f"computing statistics failed: {exc}") from exc
    finally:
        con.close()
    return {c: int(v) for c, v in zip(columns, row, strict=True)}


def _numeric_stats(column: pa.ChunkedArray | pa.Array, values: np.ndarray, t: pa.DataType,
                   distinct: int | None) -> dict[str, Any]:
    """The descriptive statistics of a numeric column without nulls, as
    :func:`cloudsdk.store.statistics.describe` gives them."""
    n = len(values)
    mean: float | None = None
    std: float | None = None
    lo: Any = None
    hi: Any = None
    if n:
        with np.errstate(invalid="ignore", over="ignore"):
            mean = float(values.mean())
            std = float(values.std(ddof=1)) if n > 1 else None
        if pa.types.is_integer(t):
            raw = column.to_numpy() if isinstance(column, pa.ChunkedArray) else column.to_numpy(zero_copy_only=False)
            lo, hi = int(raw.min()), int(raw.max())
        else:
            lo, hi = float(values.min()), float(values.max())
    entry = {"type": feature_type(t), "count": n, "nulls": 0, "mean": mean, "stddev": std, "min": lo, "max": hi,
             "approx_distinct": distinct}
    return {k: statistics._clean(v) for k, v in entry.items()}


def _histograms(data: Any, schema: pa.Schema, cols: Sequence[str], kinds: Mapping[str, str],
                counts: Mapping[str, np.ndarray], ranges: Mapping[str, tuple[Any, Any]],
                cfg: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for c in cols:
        if c in counts:
            lo, hi = float(ranges[c][0]), float(ranges[c][1])
            edges = np.histogram_bin_edges([lo, hi], bins=cfg["num_bins"], range=(lo, hi))
            out[c] = {"kind": "numeric", "edges": [float(e) for e in edges],
                      "counts": [int(x) for x in counts[c]]}
        elif kinds[c] in ("string", "boolean"):
            out[c] = {"kind": "categorical", **_top_values(data, c, TOP_K)}
    return out


def _top_values(data: Any, column: str, k: int) -> dict[str, Any]:
    con = duckdb.connect(config={"enable_external_access": False})
    try:
        con.register("t", data)
        c = statistics._q(column)
        table = con.sql(f"SELECT {c}::VARCHAR AS v, count(*) AS n FROM t WHERE {c} IS NOT NULL "
                        f"GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT {int(k) + 1}").to_arrow_table()
    except duckdb.Error as exc:
        raise StorageError(f"computing value counts of {column!r} failed: {exc}") from exc
    finally:
        con.close()
    values, ns = table.column("v").to_pylist(), table.column("n").to_pylist()
    return {"values": values[:k], "counts": [int(n) for n in ns[:k]], "truncated": len(values) > k}


def _rank(x: np.ndarray) -> np.ndarray:
    """Average ranks (ties share the mean rank, as pandas' ``rank()``); NaN stays NaN."""
    out = np.full(x.shape, np.nan)
    ok = ~np.isnan(x)
    v = x[ok]
    order = np.argsort(v, kind="mergesort")
    sv = v[order]
    first = np.concatenate(([True], sv[1:] != sv[:-1]))
    group = np.cumsum(first) - 1
    starts = np.flatnonzero(first)
    ends = np.concatenate((starts[1:], [len(sv)]))
    avg = (starts + ends + 1) / 2.0
    ranks = np.empty(len(v))
    ranks[order] = avg[group]
    out[ok] = ranks
    return out


def _pearson(a: np.ndarray, b: np.ndarray) -> float | None:
    if len(a) < 2:
        return None
    da, db = a - a.mean(), b - b.mean()
    den = float(np.sqrt((da * da).sum() * (db * db).sum()))
    return float((da * db).sum() / den) if den > 0 else None


def _correlation(x: np.ndarray, cols: Sequence[str], method: str) -> dict[str, Any]:
    """Pairwise-complete correlation of the columns of ``x`` (as pandas ``DataFrame.corr``)."""
    k = len(cols)
    matrix: list[list[float | None]] = [[None] * k for _ in range(k)]
    if k:
        nan = np.isnan(x)
        if not nan.any():
            if method == "spearman":
                x = np.column_stack([_rank(x[:, i]) for i in range(k)])
            m = np.full((k, k), np.nan)
            if len(x) > 1:
                centred = x - x.mean(axis=0)
                gram = centred.T @ centred
                scale = np.sqrt(np.diag(gram))
                with np.errstate(invalid="ignore", divide="ignore"):
                    m = gram / np.outer(scale, scale)
            for i in range(k):
                for j in range(k):
                    v = float(m[i, j])
                    matrix[i][j] = None if np.isnan(v) else max(-1.0, min(1.0, v))
        else:
            for i in range(k):
                for j in range(i, k):
                    ok = ~(nan[:, i] | nan[:, j])
                    a, b = x[ok, i], x[ok, j]
                    if method == "spearman":
                        a, b = _rank(a), _rank(b)
                    r = _pearson(a, b)
                    matrix[i][j] = matrix[j][i] = None if r is None else max(-1.0, min(1.0, r))
    return {"method": method, "features": list(cols), "matrix": matrix}


def kmeans(x: np.ndarray, k: int, *, seed: int = SAMPLE_SEED, n_init: int = 3,
           max_iter: int = 100, tol: float = 1e-4) -> tuple[np.ndarray, np.ndarray, float]:
    """Lloyd's k-means with k-means++ initialisation; the best of ``n_init`` runs. A run stops
    when the centroids move less than ``tol`` times the mean variance of the features (as
    scikit-learn's ``tol``) or after ``max_iter`` iterations.

    Returns:
        ``(centroids (k, d), labels (n,), inertia)``.
    """
    rng = np.random.default_rng(seed)
    n = len(x)
    best: tuple[np.ndarray, np.ndarray, float] | None = None
    sq = (x * x).sum(axis=1)
    limit = tol * float(np.mean(np.var(x, axis=0))) if n else 0.0
    for _ in range(n_init):
        centers = np.empty((k, x.shape[1]))
        centers[0] = x[rng.integers(n)]
        d2 = ((x - centers[0]) ** 2).sum(axis=1)
        for i in range(1, k):
            total = d2.sum()
            idx = int(rng.choice(n, p=d2 / total)) if total > 0 else int(rng.integers(n))
            centers[i] = x[idx]
            d2 = np.minimum(d2, ((x - centers[i]) ** 2).sum(axis=1))
        labels = np.zeros(n, dtype=np.int64)
        for _ in range(max_iter):
            dist = sq[:, None] - 2.0 * x @ centers.T + (centers * centers).sum(axis=1)[None, :]
            labels = dist.argmin(axis=1)
            sizes = np.bincount(labels, minlength=k)
            onehot = np.zeros((n, k))
            onehot[np.arange(n), labels] = 1.0
            sums = onehot.T @ x
            new = np.where(sizes[:, None] > 0, sums / np.maximum(sizes, 1)[:, None], centers)
            shift = float(((new - centers) ** 2).sum())
            centers = new
            if shift <= limit:
                break
        dist = sq[:, None] - 2.0 * x @ centers.T + (centers * centers).sum(axis=1)[None, :]
        labels = dist.argmin(axis=1)
        inertia = float(np.maximum(dist[np.arange(n), labels], 0).sum())
        if best is None or inertia < best[2]:
            best = (centers, labels, inertia)
    assert best is not None
    return best


def _clusters(x: np.ndarray, cols: Sequence[str], k: int) -> dict[str, Any]:
    x = x[~np.isnan(x).any(axis=1)]
    if len(x) > CLUSTER_SAMPLE_ROWS:
        x = x[np.sort(np.random.default_rng(SAMPLE_SEED).choice(len(x), CLUSTER_SAMPLE_ROWS, replace=False))]
    if len(x) < k:
        raise InvalidArgumentError(f"cluster analysis with num_clusters={k} needs at least {k} rows without nulls "
                                   f"in {list(cols)}; there are {len(x)}")
    mean = x.mean(axis=0)
    std = x.std(axis=0)
    std[std == 0] = 1.0
    z = (x - mean) / std
    centers, labels, inertia = kmeans(z, k)
    sizes = np.bincount(labels, minlength=k)
    # 2-D projection (PCA through the SVD of the standardised data) of a sample of the points
    _, s, vt = np.linalg.svd(z - z.mean(axis=0), full_matrices=False)
    comps = vt[:2] if vt.shape[0] >= 2 else np.vstack([vt, np.zeros((2 - vt.shape[0], vt.shape[1]))])
    var = s ** 2
    explained = (var[:2] / var.sum()).tolist() if var.sum() > 0 else [0.0, 0.0]
    pick = np.arange(len(z))
    if len(z) > PROJECTION_POINTS:
        pick = np.sort(np.random.default_rng(SAMPLE_SEED).choice(len(z), PROJECTION_POINTS, replace=False))
    xy = (z[pick] - z.mean(axis=0)) @ comps.T
    return {
        "num_clusters": k,
        "features": list(cols),
        "centroids": (centers * std + mean).tolist(),
        "centroids_standardised": centers.tolist(),
        "sizes": [int(v) for v in sizes],
        "inertia": inertia,
        "rows": len(x),
        "projection": {"x": xy[:, 0].tolist(), "y": xy[:, 1].tolist(), "cluster": labels[pick].tolist(),
                       "explained_variance": [float(v) for v in explained],
                       "centroids": ((centers - z.mean(axis=0)) @ comps.T).tolist()},
    }
