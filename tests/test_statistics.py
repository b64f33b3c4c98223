"""Statistics beyond the descriptive ones: correlation, histograms, k-means clusters, their
configuration, persistence per commit, plots and drift, embedded and remote; values checked
against pandas, numpy and scikit-learn."""

from __future__ import annotations

import itertools

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

import cloudsdk
from cloudsdk import errors
from cloudsdk import featurestore as fapi
from cloudsdk.store import stats_extra


def _frame(n: int = 600, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(10, 2, n)
    return pd.DataFrame({
        "id": np.arange(n, dtype="int64"),
        "x": x,
        "y": 3 * x + rng.normal(0, 1, n),  # strongly correlated with x
        "z": np.exp(rng.normal(0, 1, n)),  # skewed: Pearson and Spearman differ
        "k": rng.integers(0, 7, n).astype("int64"),
        "s": rng.choice(["a", "b", "c"], n, p=[0.6, 0.3, 0.1]),
        "flag": rng.random(n) < 0.25,
    })


def _blobs(n_per: int = 80, seed: int = 1) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = np.array([[0.0, 0.0, 0.0], [10.0, 10.0, 0.0], [0.0, 10.0, 10.0]])
    parts = [c + rng.normal(0, 0.5, (n_per, 3)) for c in centres]
    data = np.vstack(parts)
    truth = np.repeat(np.arange(3), n_per)
    df = pd.DataFrame(data, columns=["a", "b", "c"])
    df.insert(0, "id", np.arange(len(df), dtype="int64"))
    return df, truth


def _same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether two labelings agree up to a permutation of the labels."""
    k = max(a.max(), b.max()) + 1
    return any(all((np.asarray(p)[a] == b).tolist()) for p in itertools.permutations(range(k)))


NUMERIC = ["id", "x", "y", "z", "k"]


@pytest.fixture
def api(fs: cloudsdk.FeatureStore, monkeypatch: pytest.MonkeyPatch) -> object:
    """The functional API, on the ``fs`` fixture's store (local or remote)."""
    monkeypatch.setattr(fapi, "_fs", lambda featurestore=None: fs)
    return fapi


# ---------------------------------------------------------------- values against references


def test_default_statistics_on_insert_match_pandas_and_numpy(fs: cloudsdk.FeatureStore) -> None:
    df = _frame()
    fg = fs.create_feature_group("stats", data=df, primary_key=["id"])
    stats = fg.statistics()
    assert stats is not None and stats.commit_version == 0
    # descriptive statistics stay as they were
    assert stats["x"]["mean"] == pytest.approx(df["x"].mean())
    # correlation: Pearson over the numeric and boolean features, as pandas
    corr = stats.correlation()
    cols = [*NUMERIC, "flag"]
    assert list(corr.columns) == cols
    ref = df[cols].astype("float64").corr(method="pearson")
    np.testing.assert_allclose(corr.to_numpy(), ref.to_numpy(), rtol=1e-9, atol=1e-12)
    # histograms: numeric as numpy.histogram with 20 bins; strings/booleans as value counts
    for c in NUMERIC:
        h = stats.histogram(c)
        counts, edges = np.histogram(df[c].to_numpy(dtype="float64"), bins=20)
        assert h["kind"] == "numeric"
        assert h["counts"] == counts.tolist()
        np.testing.assert_allclose(h["edges"], edges)
    s = stats.histogram("s")
    vc = df["s"].value_counts()
    assert s["kind"] == "categorical" and s["values"] == vc.index.tolist() and s["counts"] == vc.tolist()
    flag = stats.histogram("flag")
    assert dict(zip(flag["values"], flag["counts"], strict=True)) == {
        "false": int((~df["flag"]).sum()), "true": int(df["flag"].sum())}
    # clusters are off by default (measured: a k-means run per commit)
    assert stats.content["clusters"] is None
    with pytest.raises(errors.NotFoundError, match="cluster_analysis=True"):
        stats.clusters()
    assert fg.statistics_config()["clusters"] is False


def test_on_demand_spearman_bins_and_columns_match_pandas(fs: cloudsdk.FeatureStore, api: object) -> None:
    df = _frame()
    df.loc[::7, "z"] = np.nan  # pairwise-complete correlation, as pandas
    fs.create_feature_group("stats", data=df, statistics=False)
    stats = fapi.update_featuregroup_stats("stats", stat_columns=["x", "y", "z"], corr_method="spearman",
                                           num_bins=7, cluster_analysis=False)
    assert set(stats.features) == {"x", "y", "z"}
    corr = stats.correlation()
    ref = df[["x", "y", "z"]].corr(method="spearman")
    np.testing.assert_allclose(corr.to_numpy(), ref.to_numpy(), rtol=1e-9)
    assert stats.content["correlation"]["method"] == "spearman"
    h = stats.histogram("z")
    counts, edges = np.histogram(df["z"].dropna().to_numpy(), bins=7)
    assert h["counts"] == counts.tolist() and len(h["edges"]) == 8
    np.testing.assert_allclose(h["edges"], edges)
    assert stats["z"]["nulls"] == int(df["z"].isna().sum())
    # switched off sections are absent, and stored
    only = fapi.update_featuregroup_stats("stats", descriptive_statistics=False, feature_correlation=False,
                                          cluster_analysis=False, num_bins=3)
    assert only.features == {} and only.content["correlation"] is None
    assert len(only.histogram("x")["counts"]) == 3
    stored = fs.get_feature_group("stats").statistics()
    assert stored is not None and stored.histogram("x")["counts"] == only.histogram("x")["counts"]


def test_clusters_agree_with_scikit_learn(fs: cloudsdk.FeatureStore) -> None:
    from sklearn.cluster import KMeans
    from sklearn.preprocessing import StandardScaler

    df, truth = _blobs()
    fg = fs.create_feature_group("blobs", data=df, statistics=False)
    stats = fg.compute_statistics(["a", "b", "c"], cluster_analysis=True, num_clusters=3)
    cl = stats.clusters()
    assert cl["num_clusters"] == 3 and cl["features"] == ["a", "b", "c"]
    assert sorted(cl["sizes"]) == [80, 80, 80]
    z = StandardScaler().fit_transform(df[["a", "b", "c"]])
    km = KMeans(n_clusters=3, n_init=10, random_state=0).fit(z)
    assert cl["inertia"] == pytest.approx(km.inertia_, rel=1e-6)
    # the centroids (original units) are the true centres, in some order
    got = sorted(tuple(round(v) for v in c) for c in cl["centroids"])
    assert got == [(0, 0, 0), (0, 10, 10), (10, 10, 0)]
    proj = cl["projection"]
    assert len(proj["x"]) == len(proj["y"]) == len(proj["cluster"]) == len(df)
    assert _same_partition(np.asarray(proj["cluster"]), truth)
    assert _same_partition(np.asarray(proj["cluster"]), km.labels_)


def test_kmeans_of_well_separated_data_matches_sklearn_labels() -> None:
    from sklearn.cluster import KMeans

    rng = np.random.default_rng(3)
    x = np.vstack([c + rng.normal(0, 0.3, (50, 2)) for c in ([0, 0], [5, 5], [0, 5], [5, 0])])
    _, labels, inertia = stats_extra.kmeans(x, 4)
    km = KMeans(n_clusters=4, n_init=10, random_state=0).fit(x)
    assert _same_partition(labels, km.labels_)
    assert inertia == pytest.approx(km.inertia_, rel=1e-9)


def test_large_inputs_are_sampled_with_a_fixed_seed(monkeypatch: pytest.MonkeyPatch) -> None:
    import pyarrow as pa

    monkeypatch.setattr(stats_extra, "SAMPLE_THRESHOLD", 500)
    df = _frame(2000)
    table = pa.Table.from_pandas(df, preserve_index=False)
    a = stats_extra.compute(table, table.schema, {"clusters": True, "num_clusters": 2})
    b = stats_extra.compute(table, table.schema, {"clusters": True, "num_clusters": 2})
    assert a["sample"] == {"rows": 500, "sampled": True, "seed": stats_extra.SAMPLE_SEED, "threshold": 500}
    assert a["correlation"] == b["correlation"] and a["clusters"]["sizes"] == b["clusters"]["sizes"]
    assert sum(a["clusters"]["sizes"]) == 500
    # histograms and descriptive statistics still cover every row
    assert sum(a["histograms"]["x"]["counts"]) == 2000 and a["row_count"] == 2000
    # the sampled correlation is close to the exact one
    exact = df[["x", "y"]].corr().iloc[0, 1]
    i, j = a["correlation"]["features"].index("x"), a["correlation"]["features"].index("y")
    assert a["correlation"]["matrix"][i][j] == pytest.approx(exact, abs=0.02)


# ---------------------------------------------------------------- configuration and persistence


def test_group_configuration_used_on_insert_and_kept_per_commit(fs: cloudsdk.FeatureStore) -> None:
    df = _frame(400)
    fg = fs.create_feature_group("cfg", data=df.iloc[:200], primary_key=["id"])
    cfg = fg.set_statistics_config(cluster_analysis=True, num_clusters=2, num_bins=5, corr_method="spearman",
                                   stat_columns=["x", "y", "s"])
    assert cfg["clusters"] and cfg["num_bins"] == 5 and cfg["columns"] == ["x", "y", "s"]
    fg.insert(df.iloc[200:])
    latest = fg.statistics()
    assert latest is not None and latest.commit_version == 1 and latest.row_count == 400
    # on insert a string column among the configured ones is left out of correlation/clusters
    assert latest.correlation().columns.tolist() == ["x", "y"]
    assert latest.clusters()["num_clusters"] == 2 and sum(latest.clusters()["sizes"]) == 400
    assert len(latest.histogram("x")["counts"]) == 5
    assert latest.content["config"]["corr_method"] == "spearman"
    # the first commit's statistics are kept with the default configuration
    first = fg.statistics(commit_version=0)
    assert first is not None and first.row_count == 200 and len(first.histogram("x")["counts"]) == 20
    assert first.content["clusters"] is None
    # the configuration survives a fresh handle
    assert fs.get_feature_group("cfg").statistics_config()["num_clusters"] == 2


def test_training_dataset_statistics_on_demand(fs: cloudsdk.FeatureStore, api: object) -> None:
    df = _frame(300)
    fs.create_training_dataset("td", df, data_format="parquet")
    td = fs.get_training_dataset("td")
    stats = fapi.update_training_dataset_stats("td", num_bins=4, num_clusters=2, stat_columns=["x", "y", "z"])
    assert stats.row_count == 300
    ref = df[["x", "y", "z"]].corr()
    np.testing.assert_allclose(stats.correlation().to_numpy(), ref.to_numpy(), rtol=1e-9)
    assert stats.clusters()["num_clusters"] == 2
    again = td.statistics()
    assert again is not None and len(again.histogram("x")["counts"]) == 4
    assert td.compute_statistics(num_bins=2).histogram("x")["counts"] == np.histogram(df["x"], bins=2)[0].tolist()


# ---------------------------------------------------------------- bad input


def test_bad_statistics_requests_are_typed_errors_and_store_nothing(fs: cloudsdk.FeatureStore, api: object) -> None:
    df = _frame(100)
    fg = fs.create_feature_group("bad", data=df)
    first = fg.statistics()
    assert first is not None
    before = first.to_dict()
    with pytest.raises(errors.SchemaMismatchError, match="nope"):
        fg.compute_statistics(["x", "nope"])
    with pytest.raises(errors.InvalidArgumentError, match="num_bins"):
        fg.compute_statistics(num_bins=0)
    with pytest.raises(errors.InvalidArgumentError, match="num_clusters"):
        fapi.update_featuregroup_stats("bad", num_clusters=0)
    with pytest.raises(errors.InvalidArgumentError, match="corr_method"):
        fg.compute_statistics(corr_method="kendall")
    with pytest.raises(errors.InvalidArgumentError, match=r"numeric.*\['s'\]"):
        fapi.update_featuregroup_stats("bad", stat_columns=["x", "s"])
    with pytest.raises(errors.InvalidArgumentError, match="at least 101 rows"):
        fg.compute_statistics(cluster_analysis=True, num_clusters=101)
    with pytest.raises(errors.InvalidArgumentError, match="num_bins"):
        fg.set_statistics_config(num_bins=-3)
    with pytest.raises(errors.InvalidArgumentError, match="num_bins"):
        fg.set_statistics_config(num_bins=1.5)  # type: ignore[arg-type]
    after = fg.statistics()
    assert after is not None and after.to_dict() == before  # nothing half-stored
    assert fg.statistics_config()["num_bins"] == 20


def test_statistics_of_an_empty_group_on_demand_is_an_error(fs: cloudsdk.FeatureStore) -> None:
    fg = fs.create_feature_group("empty", data=pd.DataFrame({"id": pd.Series([], dtype="int64"),
                                                             "x": pd.Series([], dtype="float64")}))
    stored = fg.statistics()
    assert stored is not None and stored.row_count == 0  # on insert: descriptive only
    with pytest.raises(errors.InvalidArgumentError, match="no rows"):
        fg.compute_statistics()
    with pytest.raises(errors.NotFoundError, match="histograms"):
        fg.plot_distributions(plot=False)


def test_plots_of_a_group_without_statistics(fs: cloudsdk.FeatureStore, api: object) -> None:
    fs.create_feature_group("nostats", data=_frame(50), statistics=False)
    for fn in (fapi.visualize_featuregroup_distributions, fapi.visualize_featuregroup_correlations,
               fapi.visualize_featuregroup_clusters):
        with pytest.raises(errors.NotFoundError, match="no statistics"):
            fn("nostats", plot=False)
    with pytest.raises(errors.NotFoundError, match="no statistics"):
        fapi.visualize_featuregroup_descriptive_stats("nostats")


# ---------------------------------------------------------------- plots and drift


def test_plots_return_figures(fs: cloudsdk.FeatureStore, api: object) -> None:
    df = _frame(300)
    fs.create_feature_group("plots", data=df, statistics=False)
    fapi.update_featuregroup_stats("plots", num_clusters=3, stat_columns=["x", "y", "z", "k"])
    fig = fapi.visualize_featuregroup_distributions("plots", plot=False, log=True, align="edge", figsize=(8, 6))
    assert isinstance(fig, Figure)
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == ["x", "y", "z", "k"]
    assert len(fig.axes[0].patches) == 20
    heat = fapi.visualize_featuregroup_correlations("plots", plot=False)
    assert isinstance(heat, Figure) and len(heat.axes) == 2  # the heatmap and its colour bar
    assert [t.get_text() for t in heat.axes[0].get_xticklabels()] == ["x", "y", "z", "k"]
    clusters = fapi.visualize_featuregroup_clusters("plots", plot=False)
    assert isinstance(clusters, Figure) and clusters.axes[0].get_title() == "k-means, k=3"
    frame = fapi.visualize_featuregroup_descriptive_stats("plots")
    assert isinstance(frame, pd.DataFrame) and frame.loc["x", "mean"] == pytest.approx(df["x"].mean())
    fg = fs.get_feature_group("plots")
    with pytest.raises(errors.FeatureNotFoundError):
        fg.plot_distributions(plot=False, features=["s"])  # not among the stat columns


def test_training_dataset_plots(fs: cloudsdk.FeatureStore, api: object) -> None:
    fs.create_training_dataset("tdp", _frame(200), data_format="parquet")
    fapi.update_training_dataset_stats("tdp", stat_columns=["x", "y"], num_clusters=2)
    assert isinstance(fapi.visualize_training_dataset_distributions("tdp", plot=False), Figure)
    assert isinstance(fapi.visualize_training_dataset_correlations("tdp", plot=False), Figure)
    assert isinstance(fapi.visualize_training_dataset_clusters("tdp", plot=False), Figure)
    assert "x" in fapi.visualize_training_dataset_descriptive_stats("tdp").index


def test_drift_between_commits(fs: cloudsdk.FeatureStore) -> None:
    df = _frame(400)
    fg = fs.create_feature_group("drift", data=df, primary_key=["id"])
    shifted = df.assign(x=df["x"] + 5)  # overwrite with a shifted x
    fg.insert(shifted, "overwrite")
    same = fg.compare_statistics(0, 0)
    assert same.loc["x", "psi"] == pytest.approx(0.0, abs=1e-12)
    delta = fg.compare_statistics(0, 1)
    assert delta.loc["x", "mean_delta"] == pytest.approx(5.0)
    assert delta.loc["x", "psi"] > 0.25 > delta.loc["y", "psi"]
    assert delta.loc["y", "mean_delta"] == pytest.approx(0.0, abs=1e-9)
    assert delta.loc["s", "psi"] == pytest.approx(0.0, abs=1e-12)
    fig = fg.plot_drift(0, 1, features=["x", "y"], plot=False)
    assert isinstance(fig, Figure) and fig.axes[0].get_title().startswith("x (PSI ")
    # across versions
    v2 = fs.create_feature_group("drift", version=2, data=df)
    assert fg.compare_statistics(1, other=v2).loc["x", "mean_delta"] == pytest.approx(-5.0)
    with pytest.raises(errors.NotFoundError):
        fg.compare_statistics(0, 7)


def test_streamed_and_in_memory_statistics_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    import pyarrow as pa
    import pyarrow.dataset as pads

    df = _frame(3000)
    df.loc[::11, "x"] = np.nan
    table = pa.Table.from_pandas(df, preserve_index=False)
    config = {"clusters": True, "num_clusters": 3, "num_bins": 9}
    in_memory = stats_extra.compute(table, table.schema, config)
    monkeypatch.setattr(stats_extra, "IN_MEMORY_BYTES", 0)  # stream: DuckDB pass, then record batches
    monkeypatch.setattr(stats_extra, "SAMPLE_THRESHOLD", 2500)
    dataset = pads.dataset([pa.Table.from_batches(table.to_batches(max_chunksize=700))])
    streamed = stats_extra.compute(dataset, dataset.schema, config)
    assert streamed["histograms"] == in_memory["histograms"]
    for name, f in in_memory["features"].items():
        for key, value in f.items():
            assert streamed["features"][name][key] == (pytest.approx(value) if isinstance(value, float) else value)
    assert streamed["sample"]["sampled"] and streamed["sample"]["rows"] == 2500
    ref = df[["x", "y"]].corr().iloc[0, 1]
    cols = streamed["correlation"]["features"]
    assert streamed["correlation"]["matrix"][cols.index("x")][cols.index("y")] == pytest.approx(ref, abs=0.02)
