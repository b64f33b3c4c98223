"""Notebook plots of stored statistics, and the drift view between two of them.

matplotlib is imported lazily (``pip install 'cloudsdk[plots]'``); every plot returns a
:class:`matplotlib.figure.Figure` and calls ``plt.show()`` only when asked (``plot=True``).
:func:`compare_statistics` needs pandas only.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from cloudsdk.errors import FeatureNotFoundError, InvalidArgumentError, NotFoundError

if TYPE_CHECKING:
    from cloudsdk.client.feature_group import Statistics

#: Smallest share of a bin in the population stability index (empty bins would make it infinite).
PSI_EPSILON = 1e-4


def _pyplot() -> Any:
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:  # pragma: no cover - the extra is installed in the dev environment
        raise ImportError("plots need matplotlib: pip install 'cloudsdk[plots]'") from exc
    return plt


def _finish(fig: Any, plot: bool) -> Any:
    plt = _pyplot()
    if plot:
        plt.show()
    else:
        plt.close(fig)  # a notebook would otherwise draw it a second time
    return fig


_OPTION_OF = {"histograms": "feature_histograms", "correlation": "feature_correlation",
              "clusters": "cluster_analysis"}


def _need(stats: Statistics | None, what: str, section: str, owner: str) -> Any:
    if stats is None:
        raise NotFoundError(f"{owner} has no statistics: compute them first (compute_statistics())")
    value = stats.content.get(section)
    if not value:
        option = _OPTION_OF[section]
        raise NotFoundError(f"the statistics of {owner} have no {what}: compute them with "
                            f"compute_statistics({option}=True)")
    return value


def _grid(n: int) -> tuple[int, int]:
    cols = min(n, 3)
    return max(1, math.ceil(n / cols)), max(1, cols)


def plot_distributions(stats: Statistics | None, *, owner: str = "the feature group",
                       features: Sequence[str] | None = None, figsize: tuple[float, float] | None = None,
                       color: str = "lightblue", log: bool = False, align: str = "center",
                       plot: bool = True) -> Any:
    """One bar chart per feature's histogram (numeric: bins; string/boolean: top values).

    Args:
        stats: the statistics to draw.
        owner: names the group/dataset in errors.
        features: the features to draw (default all with a histogram).
        figsize: the figure size in inches (default 5 x 3.5 per chart).
        color: the bars' colour.
        log: a logarithmic count axis.
        align: the bars' alignment on numeric bins, ``"center"`` or ``"edge"``.
        plot: call ``plt.show()``.

    Returns:
        The matplotlib Figure (one Axes per feature, titled with its name).

    Raises:
        NotFoundError: no statistics or no histograms in them.
        FeatureNotFoundError: a feature without a histogram.
    """
    hists: Mapping[str, Any] = _need(stats, "histograms", "histograms", owner)
    names = list(features) if features is not None else list(hists)
    missing = [f for f in names if f not in hists]
    if missing:
        raise FeatureNotFoundError(f"no histogram of {missing} in the statistics of {owner}; have {list(hists)}")
    if align not in ("center", "edge"):
        raise InvalidArgumentError(f'align must be "center" or "edge", got {align!r}')
    plt = _pyplot()
    rows, cols = _grid(len(names))
    fig, axes = plt.subplots(rows, cols, figsize=figsize or (5 * cols, 3.5 * rows), squeeze=False)
    for ax, name in zip(axes.flat, names, strict=False):
        h = hists[name]
        if h["kind"] == "numeric":
            edges = np.asarray(h["edges"], dtype=float)
            widths = np.diff(edges)
            x = edges[:-1] + (widths / 2 if align == "center" else 0)
            ax.bar(x, h["counts"], width=widths if widths.any() else 1.0, color=color, log=log,
                   align=align, edgecolor="grey")
        else:
            ax.bar([str(v) for v in h["values"]], h["counts"], color=color, log=log)
            ax.tick_params(axis="x", labelrotation=45)
        ax.set_title(name)
        ax.set_ylabel("count")
    for ax in list(axes.flat)[len(names):]:
        ax.remove()
    fig.tight_layout()
    return _finish(fig, plot)


def plot_correlations(stats: Statistics | None, *, owner: str = "the feature group",
                      figsize: tuple[float, float] | None = None, cmap: str = "coolwarm",
                      annot: bool = True, plot: bool = True) -> Any:
    """A heatmap of the correlation matrix (one Axes plus its colour bar)."""
    corr = _need(stats, "correlation matrix", "correlation", owner)
    names = corr["features"]
    if not names:
        raise NotFoundError(f"the statistics of {owner} correlate no features (none is numeric)")
    m = np.array([[np.nan if v is None else v for v in row] for row in corr["matrix"]], dtype=float)
    plt = _pyplot()
    size = max(4.0, 0.6 * len(names) + 2)
    fig, ax = plt.subplots(figsize=figsize or (size + 1, size))
    image = ax.imshow(m, cmap=cmap, vmin=-1, vmax=1)
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right")
    ax.set_yticks(range(len(names)), names)
    if annot and len(names) <= 20:
        for i in range(len(names)):
            for j in range(len(names)):
                if not np.isnan(m[i, j]):
                    ax.text(j, i, f"{m[i, j]:.2f}", ha="center", va="center", fontsize=8)
    ax.set_title(f"{corr['method'].capitalize()} correlation")
    fig.colorbar(image, ax=ax)
    fig.tight_layout()
    return _finish(fig, plot)


def plot_clusters(stats: Statistics | None, *, owner: str = "the feature group",
                  figsize: tuple[float, float] | None = None, plot: bool = True) -> Any:
    """The stored 2-D projection (PCA) of the clustered sample, coloured by cluster, with the
    centroids marked."""
    cl = _need(stats, "cluster analysis", "clusters", owner)
    proj = cl["projection"]
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=figsize or (7, 5))
    labels = np.asarray(proj["cluster"])
    for k in range(int(cl["num_clusters"])):
        sel = labels == k
        ax.scatter(np.asarray(proj["x"])[sel], np.asarray(proj["y"])[sel], s=8, alpha=0.6,
                   label=f"cluster {k} ({cl['sizes'][k]})")
    cx = [c[0] for c in proj["centroids"]]
    cy = [c[1] for c in proj["centroids"]]
    ax.scatter(cx, cy, marker="x", s=120, c="black", label="centroids")
    ev = proj.get("explained_variance", [0.0, 0.0])
    ax.set_xlabel(f"PC1 ({ev[0]:.0%})")
    ax.set_ylabel(f"PC2 ({ev[1]:.0%})")
    ax.set_title(f"k-means, k={cl['num_clusters']}")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _finish(fig, plot)


def descriptive_frame(stats: Statistics | None, owner: str = "the feature group") -> Any:
    """The descriptive statistics as a pandas DataFrame (one row per feature)."""
    if stats is None:
        raise NotFoundError(f"{owner} has no statistics: compute them first (compute_statistics())")
    if not stats.features:
        raise NotFoundError(f"the statistics of {owner} have no descriptive statistics: compute them with "
                            "descriptive_statistics=True")
    return stats.to_pandas()


# --- drift ---------------------------------------------------------------------------------

def _rebin(edges: Sequence[float], counts: Sequence[int], new_edges: np.ndarray) -> np.ndarray:
    """Shares of a histogram on other bins (the mass spread evenly inside each old bin)."""
    e = np.asarray(edges, dtype=float)
    c = np.asarray(counts, dtype=float)
    total = c.sum()
    if total == 0:
        return np.zeros(len(new_edges) - 1)
    if e[-1] == e[0]:  # one value: all mass at it
        cdf_at = (new_edges >= e[0]).astype(float)
        cdf_at[-1] = 1.0
    else:
        cdf = np.concatenate(([0.0], np.cumsum(c) / total))
        cdf_at = np.interp(new_edges, e, cdf, left=0.0, right=1.0)
    return np.diff(cdf_at)


def psi(expected: np.ndarray, actual: np.ndarray) -> float:
    """Population stability index of two distributions over the same bins (shares)."""
    p = np.clip(np.asarray(expected, dtype=float), PSI_EPSILON, None)
    q = np.clip(np.asarray(actual, dtype=float), PSI_EPSILON, None)
    p, q = p / p.sum(), q / q.sum()
    return float(((q - p) * np.log(q / p)).sum())


def _shares(ha: Mapping[str, Any], hb: Mapping[str, Any], bins: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    if ha["kind"] == "numeric" and hb["kind"] == "numeric":
        lo = min(ha["edges"][0], hb["edges"][0])
        hi = max(ha["edges"][-1], hb["edges"][-1])
        n = bins or max(len(ha["counts"]), len(hb["counts"]))
        edges = np.linspace(lo, hi, n + 1) if hi > lo else np.array([lo - 0.5, hi + 0.5])
        return _rebin(ha["edges"], ha["counts"], edges), _rebin(hb["edges"], hb["counts"], edges)
    values = list(dict.fromkeys([*ha.get("values", []), *hb.get("values", [])]))
    ca = dict(zip(ha.get("values", []), ha.get("counts", []), strict=False))
    cb = dict(zip(hb.get("values", []), hb.get("counts", []), strict=False))
    a = np.array([ca.get(v, 0) for v in values], dtype=float)
    b = np.array([cb.get(v, 0) for v in values], dtype=float)
    return a / max(a.sum(), 1.0), b / max(b.sum(), 1.0)


def compare_statistics(a: Statistics | None, b: Statistics | None, *, labels: tuple[str, str] = ("a", "b")) -> Any:
    """Per-feature drift from statistics ``a`` to ``b``: counts, null shares, means and standard
    deviations with their deltas, and the population stability index (PSI) of the histograms
    (rule of thumb: < 0.1 stable, 0.1-0.25 moderate, > 0.25 a shift).

    Returns:
        A pandas DataFrame indexed by feature.

    Raises:
        NotFoundError: either side has no statistics.
    """
    import pandas as pd

    if a is None or b is None:
        raise NotFoundError(f"no statistics to compare for {labels[0] if a is None else labels[1]}: "
                            "compute them first (compute_statistics())")
    la, lb = labels
    rows: dict[str, dict[str, Any]] = {}
    names = list(dict.fromkeys([*a.features, *b.features, *(a.content.get("histograms") or {}),
                                *(b.content.get("histograms") or {})]))
    ha_all = a.content.get("histograms") or {}
    hb_all = b.content.get("histograms") or {}
    for name in names:
        fa, fb = a.features.get(name, {}), b.features.get(name, {})
        row: dict[str, Any] = {}
        for stat in ("count", "mean", "stddev"):
            va, vb = fa.get(stat), fb.get(stat)
            row[f"{stat}_{la}"], row[f"{stat}_{lb}"] = va, vb
            numbers = isinstance(va, int | float) and isinstance(vb, int | float) and not isinstance(va, bool)
            row[f"{stat}_delta"] = (vb - va) if numbers and va is not None and vb is not None else None
        for f, lab in ((fa, la), (fb, lb)):
            total = f.get("count", 0) + f.get("nulls", 0) if f else 0
            row[f"null_share_{lab}"] = (f.get("nulls", 0) / total) if total else None
        if name in ha_all and name in hb_all:
            sa, sb = _shares(ha_all[name], hb_all[name])
            row["psi"] = psi(sa, sb)
        else:
            row["psi"] = None
        rows[name] = row
    return pd.DataFrame.from_dict(rows, orient="index")


def plot_drift(a: Statistics | None, b: Statistics | None, *, features: Sequence[str] | None = None,
               labels: tuple[str, str] = ("a", "b"), figsize: tuple[float, float] | None = None,
               plot: bool = True) -> Any:
    """The histograms of two statistics overlaid (as shares), one Axes per feature, titled with
    the feature's PSI."""
    ha = _need(a, "histograms", "histograms", labels[0])
    hb = _need(b, "histograms", "histograms", labels[1])
    names = list(features) if features is not None else [n for n in ha if n in hb]
    missing = [f for f in names if f not in ha or f not in hb]
    if missing:
        raise FeatureNotFoundError(f"no histograms of {missing} on both sides")
    plt = _pyplot()
    rows, cols = _grid(len(names))
    fig, axes = plt.subplots(rows, cols, figsize=figsize or (5 * cols, 3.5 * rows), squeeze=False)
    for ax, name in zip(axes.flat, names, strict=False):
        sa, sb = _shares(ha[name], hb[name])
        x = np.arange(len(sa))
        ax.bar(x - 0.2, sa, width=0.4, label=labels[0], alpha=0.8)
        ax.bar(x + 0.2, sb, width=0.4, label=labels[1], alpha=0.8)
        ax.set_title(f"{name} (PSI {psi(sa, sb):.3f})")
        ax.set_ylabel("share")
        ax.legend(fontsize=8)
    for ax in list(axes.flat)[len(names):]:
        ax.remove()
    fig.tight_layout()
    return _finish(fig, plot)
