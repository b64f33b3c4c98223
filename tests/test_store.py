"""The store underneath both APIs: catalog versioning, reopening, concurrency, light imports,
foreign errors mapped at the boundary, and the demo command."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
import sqlalchemy as sa

import cloudsdk
from cloudsdk import errors
from cloudsdk.store import FeatureStoreService
from cloudsdk.store.catalog import SCHEMA_VERSION


def test_catalog_records_its_schema_version(tmp_path: Path) -> None:
    svc = FeatureStoreService(tmp_path)
    assert svc.catalog.schema_version == SCHEMA_VERSION
    svc.close()
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'catalog.db'}")
    with engine.begin() as c:
        c.execute(sa.text("UPDATE meta SET value = :v WHERE key = 'schema_version'"), {"v": str(SCHEMA_VERSION + 1)})
    engine.dispose()
    with pytest.raises(errors.StorageError, match="newer than this cloudsdk"):
        FeatureStoreService(tmp_path)


def test_store_reopens_with_its_data(tmp_path: Path) -> None:
    df = pd.DataFrame({"id": [1, 2, 3], "x": [0.5, 1.5, 2.5]})
    with cloudsdk.connect(path=tmp_path) as conn:
        conn.get_feature_store().create_feature_group("things", data=df, primary_key="id")
    with cloudsdk.connect(path=tmp_path) as conn:
        fg = conn.get_feature_store().get_feature_group("things")
        pd.testing.assert_frame_equal(fg.read().sort_values("id").reset_index(drop=True), df)


def test_projects_are_separate(tmp_path: Path) -> None:
    with cloudsdk.connect(path=tmp_path) as conn:
        conn.create_project("other")
        conn.get_feature_store().create_feature_group("mine", data=pd.DataFrame({"id": [1]}))
    with cloudsdk.connect(path=tmp_path, project="other") as other:
        fs = other.get_feature_store()
        assert fs.name == "other_featurestore"
        assert fs.get_feature_groups() == []
        with pytest.raises(errors.FeatureGroupNotFoundError):
            fs.get_feature_group("mine")
        with pytest.raises(errors.FeatureGroupNotFoundError):
            fs.sql("SELECT * FROM mine_1")
    with pytest.raises(errors.ProjectNotFoundError):
        cloudsdk.connect(path=tmp_path, project="nobody")


def test_concurrent_inserts_all_land(fs: cloudsdk.FeatureStore) -> None:
    fg = fs.create_feature_group("events", data=pd.DataFrame({"id": [0], "v": [0.0]}), primary_key="id",
                                 statistics=False)
    failures: list[BaseException] = []

    def writer(k: int) -> None:
        try:
            for i in range(5):
                fg.insert(pd.DataFrame({"id": [1000 * k + i], "v": [float(i)]}))
        except BaseException as exc:  # pragma: no cover - reported below
            failures.append(exc)

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(1, 4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures
    assert len(fg.read()) == 16
    assert len(fg.commit_details()) == 16  # creation + 15 inserts, one commit each


@pytest.mark.local_only
def test_failed_statistics_do_not_fail_a_landed_insert(
    fs: cloudsdk.FeatureStore, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    fg = fs.create_feature_group("s", data=pd.DataFrame({"id": [1], "v": [1.0]}))
    from cloudsdk.store import statistics

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(statistics, "describe", broken)
    fg.insert(pd.DataFrame({"id": [2], "v": [2.0]}))
    assert sorted(fg.read()["id"]) == [1, 2]
    assert "statistics of s version 1 failed" in caplog.text


@pytest.mark.parametrize(
    "action",
    [
        lambda fs: fs.sql("SELECT nonexistent_column FROM g_1"),
        lambda fs: fs.sql("SELEC broken"),
        lambda fs: fs.sql("SELECT 1/0::INTEGER FROM g_1 WHERE CAST('x' AS INTEGER) = 1"),
        lambda fs: fs.get_feature_group("g").insert(pd.DataFrame({"id": ["a"], "v": [1.0]})),
        lambda fs: fs.get_feature_group("g").insert(pd.DataFrame({"id": [1], "v": ["x"]})),
        lambda fs: fs.get_feature_group("g").insert(pa.table({"id": [None], "v": [1.0]})),
        lambda fs: fs.create_feature_group("g", 1, data=pd.DataFrame({"id": [1]})),
        lambda fs: fs.create_feature_group("bad-name", data=pd.DataFrame({"id": [1]})),
        lambda fs: fs.create_feature_group("h", data=pd.DataFrame({"id": [1], "t": pd.Series([None], dtype=object)})),
        lambda fs: fs.get_features(["nope"]),
        lambda fs: fs.get_feature_group("g").read(dataframe_type="excel"),
        lambda fs: fs.create_training_dataset("td", pd.DataFrame({"a": [1]}), data_format="xml"),
        lambda fs: fs.get_feature_group("g", 7),
    ],
)
def test_foreign_errors_never_escape(fs: cloudsdk.FeatureStore, action: object) -> None:
    fs.create_feature_group("g", data=pd.DataFrame({"id": [1, 2], "v": [1.0, 2.0]}), primary_key="id")
    with pytest.raises(errors.CloudSDKError) as info:
        action(fs)  # type: ignore[operator]
    assert str(info.value)


def test_light_import_and_missing_extra_named() -> None:
    code = (
        "import sys\n"
        "for m in ('deltalake', 'duckdb', 'sqlalchemy', 'sqlglot'):\n"
        "    sys.modules[m] = None\n"
        "import cloudsdk\n"
        "try:\n"
        "    cloudsdk.connect(path='unused')\n"
        "except ImportError as exc:\n"
        "    print('IMPORT-ERROR', exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "IMPORT-ERROR" in out.stdout
    assert "cloudsdk[local]" in out.stdout


def test_demo_command_runs(tmp_path: Path) -> None:
    exe = Path(sys.executable).with_name("cloudsdk")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "cloudsdk.cli"]
    out = subprocess.run([*cmd, "demo", "--dir", str(tmp_path / "demo"), "--teams", "40", "--no-progress"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    for text in ("get_features", "sql", "statistics of players_features", "team_position_prediction",
                 "same rows as get_features: yes"):
        assert text in out.stdout
    assert list((tmp_path / "demo").glob("projects/default/training_datasets/team_position_prediction_1/part-r-*"))
    # A second run replaces the demo's own groups instead of failing.
    again = subprocess.run([*cmd, "demo", "--dir", str(tmp_path / "demo"), "--teams", "40", "--no-progress"],
                           capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr


def test_statistics_keep_column_order(fs: cloudsdk.FeatureStore) -> None:
    df = pd.DataFrame({"zeta": [1, 2], "alpha": [0.5, 1.5], "mid": ["a", "b"]})
    stats = fs.create_feature_group("ordered", data=df, primary_key="zeta").statistics()
    assert stats is not None
    assert list(stats.features) == ["zeta", "alpha", "mid"]
    assert list(stats.to_pandas().index) == ["zeta", "alpha", "mid"]


def test_select_into_is_refused(fs: cloudsdk.FeatureStore) -> None:
    fs.create_feature_group("g", data=pd.DataFrame({"id": [1]}))
    with pytest.raises(errors.SQLSandboxError):
        fs.sql("SELECT id INTO copied FROM g_1")


def test_reading_then_exiting_does_not_abort(tmp_path: Path) -> None:
    """deltalake's own filesystem handler, scanned by pyarrow threads, used to abort the
    process at exit ("terminate called without an active exception") in most runs."""
    setup = (
        "import sys, numpy as np, pandas as pd, cloudsdk\n"
        "fs = cloudsdk.connect(path=sys.argv[1]).get_feature_store()\n"
        "n = 200000\n"
        "fg = fs.create_feature_group('g', data=pd.DataFrame({'id': np.arange(n), 'x': np.ones(n)}), statistics=False)\n"
        "for i in range(1, 8):\n"
        "    fg.insert(pd.DataFrame({'id': np.arange(n) + n * i, 'x': np.ones(n)}))\n"
    )
    subprocess.run([sys.executable, "-c", setup, str(tmp_path)], check=True, timeout=120)
    read = (
        "import sys, cloudsdk\n"
        "fs = cloudsdk.connect(path=sys.argv[1]).get_feature_store()\n"
        "assert fs.get_feature_group('g').read('pyarrow').num_rows == 1600000\n"
    )
    codes = [subprocess.run([sys.executable, "-c", read, str(tmp_path)], timeout=120).returncode
             for _ in range(6)]
    assert codes == [0] * 6


def test_polars_missing_names_its_extra(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "sys.modules['polars'] = None\n"
        "import cloudsdk, pandas as pd\n"
        "fs = cloudsdk.connect(path=sys.argv[1]).get_feature_store()\n"
        "fg = fs.create_feature_group('g', data=pd.DataFrame({'id': [1]}))\n"
        "try:\n"
        "    fg.read(dataframe_type='polars')\n"
        "except ImportError as exc:\n"
        "    print('IMPORT-ERROR', exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, check=True)
    assert "IMPORT-ERROR" in out.stdout
    assert "cloudsdk[polars]" in out.stdout


def test_shared_feature_store_is_read_only(tmp_path: Path) -> None:
    from cloudsdk.store.catalog import now, projects, shares

    with cloudsdk.connect(path=tmp_path) as conn:
        conn.create_project("owner")
        conn.create_project("reader")
    with cloudsdk.connect(path=tmp_path, project="owner") as owner:
        owner.get_feature_store().create_feature_group("g", data=pd.DataFrame({"id": [1, 2]}))
    with cloudsdk.connect(path=tmp_path, project="reader") as reader:
        assert reader.get_featurestores() == ["reader_featurestore"]
        with pytest.raises(errors.ProjectNotFoundError):
            reader.get_feature_store("owner_featurestore")
        svc = reader._backend
        with svc.catalog.begin() as c:  # type: ignore[attr-defined]
            ids = {r.name: r.id for r in c.execute(sa.select(projects.c.id, projects.c.name))}
            c.execute(shares.insert().values(owner_project_id=ids["owner"], reader_project_id=ids["reader"],
                                             created=now()))
        assert reader.get_featurestores() == ["reader_featurestore", "owner_featurestore"]
        shared = reader.get_feature_store("owner_featurestore")
        assert shared.read_only and "read-only" in repr(shared)
        fg = shared.get_feature_group("g")
        assert sorted(fg.read()["id"]) == [1, 2]
        with pytest.raises(errors.PermissionDeniedError, match="read-only"):
            fg.insert(pd.DataFrame({"id": [3]}))
        with pytest.raises(errors.PermissionDeniedError):
            shared.create_feature_group("h", data=pd.DataFrame({"id": [1]}))
        with pytest.raises(errors.PermissionDeniedError):
            fg.delete()
        assert sorted(fg.read()["id"]) == [1, 2]
