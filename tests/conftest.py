"""Shared fixtures: a fresh embedded store per test, the demo data, the functional API."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

import cloudsdk
from cloudsdk import featurestore
from cloudsdk.demo_data import generate_features


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


@pytest.fixture
def fs(conn: cloudsdk.Connection) -> cloudsdk.FeatureStore:
    """The default project's feature store in a fresh embedded store."""
    return conn.get_feature_store()


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
