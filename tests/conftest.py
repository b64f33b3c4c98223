"""Shared fixtures: a fresh embedded store per test, the demo data, the functional API."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

import cloudsdk
from cloudsdk import featurestore
from cloudsdk.demo_data import generate_features
from tests.remote import remote_store  # noqa: F401  (a fixture)


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every test gets its own CLOUDSDK_HOME, and the functional API starts unconnected."""
    monkeypatch.setenv("CLOUDSDK_HOME", str(tmp_path / "home"))
    featurestore.disconnect()
    yield
    featurestore.disconnect()


@pytest.fixture
def conn(tmp_path: Path) -> Iterator[cloudsdk.Connection]:
    """An embedded connection to a fresh store."""
    c = cloudsdk.connect(path=tmp_path / "store")
    yield c
    c.close()


@pytest.fixture(params=["local", "remote"])
def fs(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[cloudsdk.FeatureStore]:
    """A fresh, empty feature store: embedded (``local``), or a fresh project on a real
    ``cloudsdk server`` process on loopback (``remote``). Every test written against ``fs``
    runs on both backends: the conformance suite."""
    if request.param == "local":
        c = cloudsdk.connect(path=tmp_path / "store")
    else:
        c = request.getfixturevalue("remote_store").connect(tmp_path)
    yield c.get_feature_store()
    c.close()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests that also use the embedded ``conn`` (projects, paths), or are marked
    ``local_only`` (they patch the store in-process), run on the local backend only."""
    keep, drop = [], []
    for item in items:
        callspec = getattr(item, "callspec", None)
        remote = callspec is not None and "remote" in (callspec.params.get("fs"), callspec.params.get("backend"))
        if remote and ("conn" in getattr(item, "fixturenames", ()) or item.get_closest_marker("local_only")):
            drop.append(item)
        else:
            keep.append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.fixture(scope="session")
def football() -> dict[str, pd.DataFrame]:
    """The demo's four feature frames (small: 60 teams), keyed by team_id."""
    return generate_features(n_teams=60, players_per_team=5)


@pytest.fixture
def football_fs(fs: cloudsdk.FeatureStore, football: dict[str, pd.DataFrame]) -> cloudsdk.FeatureStore:
    """A feature store holding the four football feature groups, version 1."""
    for name, df in football.items():
        fs.create_feature_group(name, data=df, primary_key=["team_id"], description=f"{name} of the demo")
    return fs
