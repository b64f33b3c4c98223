"""The seed manual's Python snippets, run against cloudsdk.

The manual (shared/seed/hopsworks-featurestore.rst) is the user's manual cloudsdk honours.
Its ``.. code-block:: python`` blocks are extracted and classified by content:

* ``run``: uses only this release's functions; executed with ``from hops import
  featurestore`` replaced by ``from cloudsdk import featurestore``, in a namespace that
  provides the names the snippet assumes (features_df, featuregroup_name, the football
  groups...), and its effect checked against pandas;
* ``other``: not feature-store code (Airflow operators).

The catalogue must match the manual exactly (every block in one class, every entry one
block), so a change in the manual makes this file fail until the tests follow it.
"""

from __future__ import annotations

import ast
import re
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import cloudsdk
from cloudsdk import featurestore
from cloudsdk.errors import (
    CredentialsError,
    InvalidArgumentError,
    TrainingDatasetNotFoundError,
)

SEED_REL = Path("shared/seed/hopsworks-featurestore.rst")
KEY = "team_id"
SEED_FEATURES = [
    "team_budget", "average_attendance", "average_player_age", "team_position", "sum_attendance",
    "average_player_rating", "average_player_worth", "sum_player_age", "sum_player_rating",
    "sum_player_worth", "sum_position", "average_position",
]


# --- reading the manual -------------------------------------------------------------------------


@dataclass(frozen=True)
class Block:
    """One code block of the manual: the line of its directive and its dedented code."""

    line: int
    code: str


def _indented_block(lines: list[str], start: int) -> str:
    """The indented lines (and blank lines among them) from ``start`` on, dedented."""
    body: list[str] = []
    i = start
    while i < len(lines) and (not lines[i].strip() or lines[i][:1] in (" ", "\t")):
        body.append(lines[i])
        i += 1
    return textwrap.dedent("\n".join(body)).strip("\n") + "\n"


def python_blocks(text: str) -> list[Block]:
    """Every ``.. code-block:: python`` block."""
    lines = text.splitlines()
    return [Block(i + 1, _indented_block(lines, i + 1)) for i, line in enumerate(lines)
            if re.fullmatch(r"\.\. code-block::\s*python\s*", line.strip())]


def literal_blocks(text: str) -> list[Block]:
    """Every ``::`` literal block (a paragraph ending in ``::``, not a directive)."""
    lines = text.splitlines()
    return [Block(i + 1, _indented_block(lines, i + 1)) for i, line in enumerate(lines)
            if line.rstrip().endswith("::") and not line.lstrip().startswith("..")]


@pytest.fixture(autouse=True, params=["local", "remote"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Every snippet runs as written on the embedded default store and, after
    ``featurestore.connect(host, project_name, ...)``, against a real server process."""
    if request.param == "remote":
        remote = request.getfixturevalue("remote_store")
        project, key = remote.new_project()
        featurestore.connect("127.0.0.1", project, port=remote.port, api_key_value=key,
                             trust_store_path=str(remote.ca_file), cert_folder=str(tmp_path / "certs"))
    yield request.param
    featurestore.disconnect()


@pytest.fixture(scope="module")
def manual_text() -> str:
    candidates = [Path(__file__).resolve().parents[2] / SEED_REL, Path("/work") / SEED_REL]
    for path in candidates:
        if path.is_file():
            return path.read_text(encoding="utf-8")
    pytest.fail(f"the seed manual is missing: looked for {' and '.join(map(str, candidates))}; "
                "these tests run the manual's snippets and cannot work without it")


@pytest.fixture(scope="module")
def blocks(manual_text: str) -> list[Block]:
    return python_blocks(manual_text)


# --- the catalogue: every Python block of the manual, by content ------------------------------------


def _has(*fragments: str, without: tuple[str, ...] = ()) -> Callable[[str], bool]:
    return lambda code: all(f in code for f in fragments) and not any(w in code for w in without)


# id -> (class, predicate on the block's code)
CATALOGUE: dict[str, tuple[str, Callable[[str], bool]]] = {
    "insert_into_featuregroup": ("run", _has("featurestore.insert_into_featuregroup(features_df, featuregroup_name)")),
    "create_featuregroup": ("run", _has("featurestore.create_featuregroup(features_df, featuregroup_name)")),
    "get_two_features": ("run", _has('get_features(["average_attendance", "average_player_age"])')),
    "add_metadata": ("run", _has("featurestore.add_metadata(featuregroup_name, metadataDict)")),
    "get_metadata": ("run", _has('featurestore.get_metadata(featuregroup_name, ["key1", "key2"])')),
    "remove_metadata": ("run", _has('featurestore.remove_metadata(featuregroup_name, ["key1", "key2"])')),
    "import_only": ("run", lambda code: code.strip() == "from hops import featurestore"),
    "sklearn_iris": ("run", _has('get_featuregroup("iris_features"', "KNeighborsClassifier")),
    "tensorflow_team_position": ("run", _has('"team_position_prediction", data_format="tfrecords"')),
    "twelve_features_td": ("run", _has("get_features(", 'create_training_dataset(features_df, "td_name")')),
    "twelve_features": ("run", _has("get_features(", '"average_position"',
                                    without=("create_training_dataset", "spark"))),
    "spark_sql_join": ("run", _has("spark.sql(", "JOIN attendances_features_1")),
    "houses_sold": ("run", _has('"houses_sold_featuregroup"')),
    "update_stats": ("run", _has("featurestore.update_featuregroup_stats(")),
    "tfrecords_td": ("run", _has('create_training_dataset(features_df,training_dataset_name,data_format="tfrecords")')),
    "tensorflow_training": ("run", _has("import tensorflow as tf", "get_training_dataset_tf_record_schema(td_name)")),
    "online_write": ("run", _has("online=True, primary_key=\"id\"", "insert_into_featuregroup(sample_df")),
    "online_read": ("run", _has("WHERE primary_key=x\", online=True", "get_feature(feature_name, online=True)")),
    "petastorm": ("run", _has('data_format="petastorm"')),
    "online_inference": ("run", _has("get_online_featurestore_connector()")),
    "airflow": ("other", _has("HopsworksLaunchOperator(")),
}
EXPECTED_COUNTS = {"run": 20, "other": 1}
RAN: set[str] = set()  # ids that have a test executing them (filled at import by @runs)


def runs(snippet_id: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Mark a test as the one that executes snippet ``snippet_id`` of the catalogue."""
    assert snippet_id in CATALOGUE, snippet_id
    RAN.add(snippet_id)
    return lambda fn: fn


def block(blocks: list[Block], snippet_id: str) -> str:
    """The code of the one block that catalogue entry ``snippet_id`` describes."""
    predicate = CATALOGUE[snippet_id][1]
    found = [b for b in blocks if predicate(b.code)]
    assert len(found) == 1, (
        f"catalogue entry {snippet_id!r} should match exactly one python block of the manual, "
        f"matches {[b.line for b in found]}: the manual changed, update this test file")
    return found[0].code


def test_catalogue_matches_the_manual(blocks: list[Block]) -> None:
    unmatched = [b.line for b in blocks if not any(p(b.code) for _, p in CATALOGUE.values())]
    assert not unmatched, f"python blocks at lines {unmatched} are new in the manual: classify them"
    for b in blocks:
        ids = [i for i, (_, p) in CATALOGUE.items() if p(b.code)]
        assert len(ids) == 1, f"block at line {b.line} matches several entries {ids}"
    for snippet_id in CATALOGUE:
        block(blocks, snippet_id)
    counts = {cls: sum(1 for c, _ in CATALOGUE.values() if c == cls) for cls in EXPECTED_COUNTS}
    assert counts == EXPECTED_COUNTS
    assert len(blocks) == sum(EXPECTED_COUNTS.values()) == 21


def test_every_runnable_snippet_is_run() -> None:
    runnable = {i for i, (cls, _) in CATALOGUE.items() if cls == "run"}
    assert runnable == RAN  # every runnable snippet is run, and every snippet run is runnable
    assert len(runnable) == EXPECTED_COUNTS["run"] == 20


# --- running snippets -------------------------------------------------------------------------------


def cloudsdk_code(code: str) -> str:
    """The snippet with its hops imports turned into cloudsdk ones."""
    code = code.replace("from hops import featurestore", "from cloudsdk import featurestore")
    code = code.replace("import hops.featurestore as", "import cloudsdk.featurestore as")
    assert "import hops" not in code and "from hops" not in code
    return code


def run_code(code: str, namespace: dict[str, Any]) -> list[Any]:
    """Execute ``code`` statement by statement in ``namespace``; return the values of its
    top-level expression statements (e.g. the result of a bare ``featurestore.get_metadata(...)``)."""
    results: list[Any] = []
    for stmt in ast.parse(cloudsdk_code(code)).body:
        if isinstance(stmt, ast.Expr):
            results.append(eval(compile(ast.Expression(stmt.value), "<seed>", "eval"), namespace))
        else:
            exec(compile(ast.Module(body=[stmt], type_ignores=[]), "<seed>", "exec"), namespace)
    return results


def lines_before(code: str, marker: str) -> str:
    """The lines of ``code`` before the first one containing ``marker``."""
    lines = code.splitlines()
    index = next(i for i, line in enumerate(lines) if marker in line)
    return "\n".join(lines[:index]) + "\n"


def lines_from(code: str, marker: str) -> str:
    """The lines of ``code`` from the first one containing ``marker`` on."""
    lines = code.splitlines()
    index = next(i for i, line in enumerate(lines) if marker in line)
    return "\n".join(lines[index:]) + "\n"


def statements(code: str) -> list[str]:
    """The top-level statements of ``code`` as source text."""
    code = cloudsdk_code(code)
    return [ast.get_source_segment(code, s) or "" for s in ast.parse(code).body]


def _load_football(football: dict[str, pd.DataFrame]) -> None:
    for name, df in football.items():
        featurestore.create_featuregroup(df, name, primary_key=KEY)


def _merged(football: dict[str, pd.DataFrame], features: list[str]) -> pd.DataFrame:
    frames = list(football.values())
    out = frames[0]
    for df in frames[1:]:
        out = out.merge(df, on=KEY)
    return out[features]


def _assert_same(got: pd.DataFrame, expected: pd.DataFrame) -> None:
    assert list(got.columns) == list(expected.columns)
    by = list(expected.columns)
    pd.testing.assert_frame_equal(got.sort_values(by).reset_index(drop=True),
                                  expected.sort_values(by).reset_index(drop=True))


def _sample(n: int, start: int = 0) -> pd.DataFrame:
    ids = np.arange(start, start + n, dtype=np.int64)
    return pd.DataFrame({"id": ids, "val_1": ids * 1.5, "val_2": (ids % 3).astype(np.int64)})


# --- runnable snippets --------------------------------------------------------------------------------


@runs("import_only")
def test_import_only(blocks: list[Block]) -> None:
    namespace: dict[str, Any] = {}
    run_code(block(blocks, "import_only"), namespace)
    assert namespace["featurestore"] is featurestore


@runs("create_featuregroup")
def test_create_featuregroup(blocks: list[Block]) -> None:
    df = _sample(20)
    namespace: dict[str, Any] = {"features_df": df, "featuregroup_name": "sample_features"}
    run_code(block(blocks, "create_featuregroup"), namespace)
    _assert_same(featurestore.get_featuregroup("sample_features"), df)
    assert featurestore.get_featuregroups() == ["sample_features_1"]
    assert featurestore.get_latest_featuregroup_version("sample_features") == 1
    fg = featurestore._fs().get_feature_group("sample_features", 1)  # the module's connection
    assert fg.primary_key == ["id"]  # the first column, as in hops
    stats = featurestore.get_featuregroup_statistics("sample_features")
    assert stats is not None and stats.row_count == 20


@runs("insert_into_featuregroup")
def test_insert_into_featuregroup(blocks: list[Block]) -> None:
    first, more = _sample(10), _sample(5, start=10)
    featurestore.create_featuregroup(first, "sample_features")
    namespace: dict[str, Any] = {"features_df": more, "featuregroup_name": "sample_features"}
    run_code(block(blocks, "insert_into_featuregroup"), namespace)
    _assert_same(featurestore.get_featuregroup("sample_features"), pd.concat([first, more], ignore_index=True))


@runs("get_two_features")
def test_get_two_features(blocks: list[Block], football: dict[str, pd.DataFrame]) -> None:
    _load_football(football)
    namespace: dict[str, Any] = {}
    run_code(block(blocks, "get_two_features"), namespace)
    _assert_same(namespace["features_df"], _merged(football, ["average_attendance", "average_player_age"]))


@runs("add_metadata")
def test_add_metadata(blocks: list[Block]) -> None:
    featurestore.create_featuregroup(_sample(3), "sample_features")
    namespace: dict[str, Any] = {"featuregroup_name": "sample_features"}
    run_code(block(blocks, "add_metadata"), namespace)
    assert featurestore.get_metadata("sample_features") == {"key1": "value1", "key2": "value2"}


@runs("get_metadata")
def test_get_metadata(blocks: list[Block]) -> None:
    featurestore.create_featuregroup(_sample(3), "sample_features")
    featurestore.add_metadata("sample_features", {"key1": "value1", "key2": "value2", "key3": "value3"})
    namespace: dict[str, Any] = {"featuregroup_name": "sample_features"}
    results = run_code(block(blocks, "get_metadata"), namespace)
    assert results == [
        {"key1": "value1", "key2": "value2", "key3": "value3"},
        {"key1": "value1"},
        {"key1": "value1", "key2": "value2"},
    ]


@runs("remove_metadata")
def test_remove_metadata(blocks: list[Block]) -> None:
    featurestore.create_featuregroup(_sample(3), "sample_features")
    featurestore.add_metadata("sample_features", {"key1": "value1", "key2": "value2", "key3": "value3"})
    namespace: dict[str, Any] = {"featuregroup_name": "sample_features"}
    run_code(block(blocks, "remove_metadata"), namespace)
    assert featurestore.get_metadata("sample_features") == {"key3": "value3"}


def _iris() -> pd.DataFrame:
    """An iris-shaped frame: 150 rows, 4 measurements, 3 labels (scikit-learn is not needed)."""
    rng = np.random.Generator(np.random.PCG64(7))
    centres = np.array([[5.0, 3.4, 1.5, 0.2], [5.9, 2.8, 4.3, 1.3], [6.6, 3.0, 5.6, 2.0]])
    label = np.repeat(np.arange(3, dtype=np.int64), 50)
    values = np.round(centres[label] + rng.normal(0, 0.3, (150, 4)), 1)
    cols = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    df = pd.DataFrame(values, columns=cols)
    df.insert(0, "id", np.arange(150, dtype=np.int64))
    df["label"] = label
    return df


@runs("sklearn_iris")
def test_sklearn_iris(blocks: list[Block]) -> None:
    iris = _iris()
    featurestore.create_featuregroup(iris, "iris_features", primary_key="id")
    code = lines_before(block(blocks, "sklearn_iris"), "KNeighborsClassifier")
    namespace: dict[str, Any] = {}
    run_code(code, namespace)
    features, labels = namespace["X"], namespace["y"]
    assert features.shape == (150, 4)
    assert labels.shape == (150,)
    order = np.argsort(namespace["train_df"]["id"].to_numpy())
    np.testing.assert_array_equal(features[order], iris[["sepal_length", "sepal_width", "petal_length",
                                                  "petal_width"]].to_numpy())
    np.testing.assert_array_equal(labels[order], iris["label"].to_numpy())


@runs("twelve_features")
def test_twelve_features(blocks: list[Block], football: dict[str, pd.DataFrame]) -> None:
    _load_football(football)
    namespace: dict[str, Any] = {"featurestore": featurestore}
    run_code(block(blocks, "twelve_features"), namespace)
    _assert_same(namespace["features_df"], _merged(football, SEED_FEATURES))


class _TF1:
    """TensorFlow 2 under the TF 1.x names the manual's snippets use (``tf.gfile.Glob``,
    ``tf.parse_single_example``, ``tf.train.AdamOptimizer``); everything else is TF 2 itself."""

    def __init__(self, tf: Any) -> None:
        self._tf = tf
        self.gfile = type("gfile", (), {"Glob": staticmethod(tf.io.gfile.glob)})
        self.parse_single_example = tf.io.parse_single_example

    def __getattr__(self, name: str) -> Any:
        return getattr(self._tf, name)


@runs("tensorflow_team_position")
def test_tensorflow_team_position_snippet(blocks: list[Block], football: dict[str, pd.DataFrame]) -> None:
    """The whole snippet: the twelve features as a tfrecords dataset, then its
    create_tf_dataset() reads the part-r-* files back with the stored tf record schema."""
    tf = pytest.importorskip("tensorflow")
    _load_football(football)
    code = block(blocks, "tensorflow_team_position")
    namespace: dict[str, Any] = {"tf": _TF1(tf), "SHUFFLE_BUFFER_SIZE": 64, "BATCH_SIZE": 16, "NUM_EPOCHS": 2}
    run_code(code, namespace)
    _assert_same(namespace["features_df"], _merged(football, SEED_FEATURES))
    td = featurestore.get_training_dataset_path("team_position_prediction")
    assert sorted(p.name for p in Path(td).glob("part-r-*")) == ["part-r-00000.tfrecord"]
    batches = list(namespace["tf_dataset"].as_numpy_iterator())
    assert sum(len(y) for _, y in batches) == 2 * len(football["teams_features"])
    x, y = batches[0]
    assert x.shape == (16, 11) and y.shape == (16, 1)
    labels = np.sort(np.concatenate([y for _, y in batches]).ravel())
    expected = np.sort(np.tile(_merged(football, ["team_position"])["team_position"].to_numpy(np.float32), 2))
    np.testing.assert_array_equal(labels, expected)


@runs("twelve_features_td")
def test_twelve_features_then_default_format_dataset(blocks: list[Block],
                                                     football: dict[str, pd.DataFrame]) -> None:
    """The manual's create_training_dataset(features_df, "td_name") takes hops' default format,
    tfrecords."""
    _load_football(football)
    code = block(blocks, "twelve_features_td")
    namespace: dict[str, Any] = {"featurestore": featurestore}
    run_code(code, namespace)
    _assert_same(namespace["features_df"], _merged(football, SEED_FEATURES))
    assert featurestore.get_training_datasets() == ["td_name_1"]
    td = featurestore._fs().get_training_dataset("td_name", 1)
    assert td.data_format == "tfrecords"
    expected = _merged(football, SEED_FEATURES)
    got = featurestore.get_training_dataset("td_name")
    # tf.train.Example holds float32: compare at that precision
    for col in expected.columns:
        if expected[col].dtype.kind == "f":
            expected[col] = expected[col].astype(np.float32).astype(np.float64)
    _assert_same(got[list(expected.columns)], expected)


@runs("spark_sql_join")
def test_spark_sql_join_through_featurestore_sql(blocks: list[Block], football: dict[str, pd.DataFrame]) -> None:
    """The manual's plain-SQL query (Hive syntax, curly-quoted in the manual) runs unchanged in sql()."""
    _load_football(football)
    code = block(blocks, "spark_sql_join")
    match = re.search(r"spark\.sql\(\s*[“\"](.*?)[”\"]\s*\)", code, re.S)
    assert match, code
    query = match.group(1)
    columns = [c.strip() for c in re.search(r"SELECT(.*?)FROM", query, re.S).group(1).split(",")]  # type: ignore[union-attr]
    assert len(columns) == 12 and set(columns) == set(SEED_FEATURES)
    _assert_same(featurestore.sql(query), _merged(football, columns))


@runs("houses_sold")
def test_houses_sold_featuregroup(blocks: list[Block]) -> None:
    code = block(blocks, "houses_sold")
    # the Spark aggregation before it is Spark code: prepare its result with pandas
    raw = pd.DataFrame({
        "area_id": np.array([1, 1, 2, 3, 3, 3], dtype=np.int64),
        "number_of_bidders": np.array([2, 4, 1, 3, 3, 5], dtype=np.int64),
        "sold_for_amount": np.array([100.0, 150.0, 90.0, 200.0, 210.0, 260.0]),
    })
    grouped = raw.groupby("area_id")
    houses = pd.DataFrame({
        "area_id": grouped.size().index.to_numpy(),
        "sum_number_of_bidders": grouped["number_of_bidders"].sum().to_numpy(),
        "sum_sold_for_amount": grouped["sold_for_amount"].sum().to_numpy(),
        "num_rows": grouped.size().to_numpy().astype(np.int64),
    })
    namespace: dict[str, Any] = {"featurestore": featurestore, "houses_sold_features_df": houses}
    run_code(lines_from(code, "featurestore.create_featuregroup("), namespace)
    _assert_same(featurestore.get_featuregroup("houses_sold_featuregroup"), houses)
    fg = featurestore._fs().get_feature_group("houses_sold_featuregroup", 1)
    assert fg.description == "aggregate features of sold houses per area"
    assert fg.primary_key == ["area_id"]


@runs("update_stats")
def test_update_featuregroup_stats(blocks: list[Block]) -> None:
    code = block(blocks, "update_stats")
    # "[col1, col2,...]" is the manual's "and so on": drop the Ellipsis, name two real columns
    assert code.count("[col1, col2,...]") == 1
    code = code.replace("[col1, col2,...]", "[col1, col2]")
    df = _sample(12)
    featurestore.create_featuregroup(df, "featuregroup_name", descriptive_statistics=False)
    assert featurestore.get_featuregroup_statistics("featuregroup_name") is None
    namespace: dict[str, Any] = {"featurestore": featurestore, "col1": "val_1", "col2": "val_2"}
    [stats] = run_code(code, namespace)
    assert isinstance(stats, cloudsdk.Statistics)
    assert sorted(stats.features) == ["val_1", "val_2"]
    assert stats.row_count == 12
    assert stats["val_1"]["max"] == pytest.approx(df["val_1"].max())
    assert stats["val_1"]["mean"] == pytest.approx(df["val_1"].mean())
    stored = featurestore.get_featuregroup_statistics("featuregroup_name")
    assert stored is not None and sorted(stored.features) == ["val_1", "val_2"]


@runs("tfrecords_td")
def test_tfrecords_training_dataset(blocks: list[Block]) -> None:
    namespace: dict[str, Any] = {"features_df": _sample(5), "training_dataset_name": "td_name"}
    run_code(block(blocks, "tfrecords_td"), namespace)
    assert featurestore.get_training_datasets() == ["td_name_1"]
    spec = featurestore.get_training_dataset_tf_record_schema("td_name")
    assert sorted(spec) == ["id", "val_1", "val_2"]


def _chained(code: str) -> str:
    """The manual prints a method chain over several lines without parentheses; join each
    line that starts with ``.`` to the one before, as the author meant."""
    out: list[str] = []
    for line in code.splitlines():
        if line.strip().startswith(".") and out:
            out[-1] += line.strip()
        else:
            out.append(line)
    return "\n".join(out) + "\n"


@runs("tensorflow_training")
def test_tensorflow_training_snippet(blocks: list[Block]) -> None:
    """The manual's training snippet, up to the model: it globs part-r-* in the dataset's
    directory and parses each record with the stored tf record schema."""
    tf = pytest.importorskip("tensorflow")
    code = _chained(block(blocks, "tensorflow_training"))
    # TF 1.x names: the namespace's tf maps them onto TF 2 (see _TF1)
    assert code.count("import tensorflow as tf\n") == 1
    code = code.replace("import tensorflow as tf\n", "")
    calls = set(re.findall(r"featurestore\.(\w+)\(", code))
    assert calls == {"get_training_dataset_path", "get_training_dataset_tf_record_schema"}
    featurestore.create_training_dataset(_sample(40), "td_name", data_format="tfrecords")
    namespace: dict[str, Any] = {"td_name": "td_name", "tf": _TF1(tf), "shuffle_buffer_size": 8,
                                 "batch_size": 10, "num_epochs": 1}
    run_code(lines_before(code, "# three layer MLP"), namespace)
    batches = list(namespace["dataset"].as_numpy_iterator())
    assert [len(b["id"]) for b in batches] == [10, 10, 10, 10]
    assert sorted(np.concatenate([b["id"] for b in batches]).tolist()) == list(range(40))


def test_tf_record_schema_of_another_format_is_refused() -> None:
    featurestore.create_training_dataset(_sample(3), "td_parquet", data_format="parquet")
    with pytest.raises(InvalidArgumentError, match="tfrecords"):
        featurestore.get_training_dataset_tf_record_schema("td_parquet")
    with pytest.raises(TrainingDatasetNotFoundError, match="td_name"):
        featurestore.get_training_dataset_tf_record_schema("td_name")


def _petastorm_code(blocks: list[Block]) -> str:
    code = lines_before(block(blocks, "petastorm"), "from petastorm")
    # "df_train=..." is the manual's placeholder: a real frame is provided instead
    assert "df_train=..." in code
    return code.replace("df_train=...", "")


def _mnist(n: int) -> pd.DataFrame:
    rng = np.random.default_rng(5)
    return pd.DataFrame({"image": [rng.integers(0, 256, (28, 28), dtype=np.uint8) for _ in range(n)],
                         "digit": rng.integers(0, 10, n).astype(np.int64)})


@runs("petastorm")
def test_petastorm_snippet_writes_a_petastorm_dataset(blocks: list[Block]) -> None:
    """The writing half of the manual's MNIST snippet, as printed (28x28 images + digits). The
    reading half (petastorm's make_reader + DataLoader) needs petastorm, which only installs
    beside pyarrow <= 14: tests/test_legacy_env.py runs it in the legacy ML environment."""
    df = _mnist(12)
    run_code(_petastorm_code(blocks), {"df_train": df})
    path = Path(featurestore.get_training_dataset_path("MNIST_train_petastorm"))
    assert (path / "_common_metadata").is_file()
    assert sorted(p.name for p in path.glob("part-r-*")) == ["part-r-00000.parquet"]
    back = featurestore.get_training_dataset("MNIST_train_petastorm", dataframe_type="pyarrow")
    images = np.array(back.column("image").to_pylist(), dtype=np.uint8)
    assert images.shape == (12, 28, 28) and (images == np.stack(df["image"])).all()
    assert back.column("digit").to_pylist() == df["digit"].tolist()


@runs("online_write")
def test_online_write_snippet(blocks: list[Block]) -> None:
    """The manual's three ways to create a group and three ways to insert into an online one.

    The three ``create_featuregroup`` calls are alternatives for one name (run in order, the
    second would be an AlreadyExistsError, as in hops): each gets its own ``featuregroup_name``.
    The inserts run in order into one group stored both ways, as the manual prints them."""
    stmts = [s for s in statements(block(blocks, "online_write")) if "featurestore." in s]
    assert len(stmts) == 6
    creates, inserts = stmts[:3], stmts[3:]
    assert all("create_featuregroup(spark_df" in s for s in creates)
    assert all('insert_into_featuregroup(sample_df, "online_featuregroup_test"' in s for s in inserts)
    spark_df = _sample(5)
    names = ["created_online", "created_offline", "created_both"]
    for stmt, name in zip(creates, names, strict=True):
        run_code(stmt, {"featurestore": featurestore, "spark_df": spark_df, "featuregroup_name": name})
    fs = featurestore._fs()
    stored = {n: (fs.get_feature_group(n, 1).online_enabled, fs.get_feature_group(n, 1).offline_enabled)
              for n in names}
    # online=True alone keeps offline=True, the default of the seed's signature: stored both ways
    # (the manual's comment says "only in the online storage"; that takes offline=False)
    assert stored == {"created_online": (True, True), "created_offline": (False, True), "created_both": (True, True)}
    for name in names:
        _assert_same(featurestore.get_featuregroup(name), spark_df)
    for name in ("created_online", "created_both"):
        _assert_same(featurestore.get_featuregroup(name, online=True), spark_df)
    assert sorted(featurestore.get_featuregroups(online=True)) == ["created_both_1", "created_online_1"]
    with pytest.raises(InvalidArgumentError, match="not stored online"):
        featurestore.get_featuregroup("created_offline", online=True)

    first, sample_df = _sample(3), _sample(2, start=100)
    featurestore.create_featuregroup(first, "online_featuregroup_test", online=True, primary_key="id")
    namespace: dict[str, Any] = {"featurestore": featurestore, "sample_df": sample_df}
    both = pd.concat([first, sample_df], ignore_index=True)

    def check() -> dict[str, Any]:
        return featurestore.check_featuregroup_online_consistency("online_featuregroup_test")

    # 1. online=True, offline=False: the online table only; it is ahead of the offline table
    [result] = run_code(inserts[0], namespace)
    assert result["version"] is None and result["online"] == {"rows_upserted": 2, "rows_deleted": 0}
    _assert_same(featurestore.get_featuregroup("online_featuregroup_test"), first)
    _assert_same(featurestore.get_featuregroup("online_featuregroup_test", online=True), both)
    report = check()
    assert not report["consistent"] and report["status"] == "ok"
    assert report["extra_online"] == 2 and report["examples"]["extra_online"] == [{"id": 100}, {"id": 101}]
    # 2. online=False, offline=True: the offline table only; the online table is marked behind
    [result] = run_code(inserts[1], namespace)
    assert result["version"] == 1 and result["online"] is None
    _assert_same(featurestore.get_featuregroup("online_featuregroup_test"), both)
    report = check()
    assert report["consistent"] and report["status"] == "behind" and report["synced_commit"] == 0
    # 3. both: the offline commit, then the online table is rebuilt from the offline one
    [result] = run_code(inserts[2], namespace)
    assert result["version"] == 2 and result["online"] is not None
    offline = featurestore.get_featuregroup("online_featuregroup_test")
    _assert_same(offline, pd.concat([first, sample_df, sample_df], ignore_index=True))  # appended twice offline
    _assert_same(featurestore.get_featuregroup("online_featuregroup_test", online=True), both)  # one row per key
    report = check()
    assert report["consistent"] and report["status"] == "ok" and report["synced_commit"] == 2
    assert (report["offline_rows"], report["online_rows"]) == (5, 5)


def test_online_insert_into_an_offline_group_is_refused() -> None:
    """The manual's online insert into a group that is not stored online: a clear error, and
    nothing is written."""
    featurestore.create_featuregroup(_sample(3), "online_featuregroup_test")
    for online, offline in ((True, False), (True, True)):
        with pytest.raises(InvalidArgumentError, match=r"not stored online.*enable"):
            featurestore.insert_into_featuregroup(_sample(2, start=100), "online_featuregroup_test", online=online,
                                                  offline=offline, mode="append")
    _assert_same(featurestore.get_featuregroup("online_featuregroup_test"), _sample(3))
    assert len(featurestore.get_featuregroup_commits("online_featuregroup_test")) == 1
    # the default (online=False) writes the offline table, as in the seed
    featurestore.insert_into_featuregroup(_sample(2, start=100), "online_featuregroup_test")
    _assert_same(featurestore.get_featuregroup("online_featuregroup_test"),
                 pd.concat([_sample(3), _sample(2, start=100)], ignore_index=True))


@runs("online_read")
def test_online_read_snippet(blocks: list[Block]) -> None:
    code = block(blocks, "online_read")
    # the manual's SQL is a template: a feature, a feature group's table, its primary key and a
    # key value; the rest of the snippet runs as printed
    template = "SELECT feature FROM featuregroup_name WHERE primary_key=x"
    assert code.count(template) == 1
    code = code.replace(template, "SELECT val_1 FROM snippet_features_1 WHERE id=7")
    df = _sample(10)
    featurestore.create_featuregroup(df, "snippet_features", online=True)
    stmts = [s for s in statements(code) if "featurestore." in s]
    assert len(stmts) == 3 and all("online=True" in s for s in stmts)
    namespace: dict[str, Any] = {"featurestore": featurestore, "featuregroup_name": "snippet_features",
                                 "feature_name": "val_1"}
    run_code(stmts[0], namespace)  # the primary-key lookup
    _assert_same(namespace["df"], df.loc[df["id"] == 7, ["val_1"]])
    run_code(stmts[1], namespace)  # the whole online table
    _assert_same(namespace["df"], df)
    run_code(stmts[2], namespace)  # one feature, found by the query planner
    _assert_same(namespace["df"], df[["val_1"]])
    # the online table holds the latest row per key: an upsert shows up there, not twice
    changed = df.head(2).assign(val_1=[-1.0, -2.0])
    featurestore.insert_into_featuregroup(changed, "snippet_features", mode="upsert", online=True)
    run_code(stmts[0].replace("id=7", "id=1"), namespace)
    assert namespace["df"]["val_1"].tolist() == [-2.0]
    assert len(featurestore.get_featuregroup("snippet_features", online=True)) == 10


@runs("online_inference")
def test_online_inference_snippet(blocks: list[Block]) -> None:
    stmts = statements(block(blocks, "online_inference"))
    assert len(stmts) == 4
    assert stmts[-1] == "storage_connector = featurestore.get_online_featurestore_connector()"
    sample_df = _sample(1000)  # ids 0..999: the manual looks up id 999
    namespace: dict[str, Any] = {"featurestore": featurestore, "sample_df": sample_df}
    run_code(stmts[0], namespace)
    assert featurestore.get_featuregroups(online=True) == ["online_featuregroup_test_1"]
    run_code(stmts[1], namespace)
    _assert_same(namespace["df"], sample_df)
    run_code(stmts[2], namespace)
    _assert_same(namespace["df"], pd.DataFrame({"val_1": [999 * 1.5]}))
    run_code(stmts[3], namespace)
    connector = namespace["storage_connector"]
    assert isinstance(connector, cloudsdk.OnlineStoreConnector)
    # the default online store: a SQLite file of the project, on the store's machine
    assert connector.backend == "sqlite" and connector.url is not None and connector.url.startswith("sqlite:///")
    assert connector.url.endswith("/online.db") and connector.jdbc_url is None and connector.password is None
    assert connector.name == f"{featurestore.project_featurestore()}_online"
    assert connector.to_dict()["backend"] == "sqlite"


@pytest.mark.local_only
def test_connect_to_a_host_snippets(manual_text: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The SageMaker and Databricks ``fs.connect(host, project, ...)`` literal blocks run as
    written; without AWS credentials here they fail with a clear CredentialsError before
    anything is written (the connector tests run them against moto and a real server)."""
    snippets = [b.code for b in literal_blocks(manual_text) if "fs.connect(" in b.code]
    assert len(snippets) == 2
    assert any("secrets_store" in s for s in snippets) and any("cert_folder" in s for s in snippets)
    monkeypatch.chdir(tmp_path)
    for var in ("AWS_DEFAULT_REGION", "AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                "AWS_PROFILE", "AWS_SHARED_CREDENTIALS_FILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    for code in snippets:
        with pytest.raises(CredentialsError):
            run_code(code, {})
    assert list(tmp_path.iterdir()) == []
    assert not Path("/dbfs/mnt/my_mount_name").exists()
