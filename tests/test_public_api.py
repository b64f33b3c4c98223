"""The public surface: what ``cloudsdk`` exports, what importing it loads, and the error tree."""

from __future__ import annotations

import importlib
import importlib.metadata
import inspect
import json
import subprocess
import sys
from typing import Protocol

import pytest

import cloudsdk
from cloudsdk import errors

HEAVY = ["deltalake", "duckdb", "fastapi", "polars", "pyspark", "sqlalchemy", "sqlglot", "tensorflow", "torch"]

CLIENT_MODULES = [
    "cloudsdk.client.connection",
    "cloudsdk.client.feature_group",
    "cloudsdk.client.feature_store",
    "cloudsdk.client.frames",
    "cloudsdk.client.online",
    "cloudsdk.client.query",
    "cloudsdk.client.training_dataset",
    "cloudsdk.client.validation",
]


def _heavy_modules_after(statement: str) -> list[str]:
    code = (
        f"{statement}\n"
        "import json, sys\n"
        f"heavy = set({HEAVY!r})\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in heavy)))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return list(json.loads(done.stdout.strip().splitlines()[-1]))


def test_import_cloudsdk_loads_no_heavy_library() -> None:
    # the exact check of the brief, as a user would type it
    code = ("import cloudsdk, sys; print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "{'duckdb','deltalake','sqlalchemy','fastapi','torch','tensorflow','pyspark','sqlglot','polars'}))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize("statement", [
    "from cloudsdk import featurestore",
    "import cloudsdk.client",
    "import cloudsdk.errors",
    "from cloudsdk import Connection, FeatureGroup, FeatureStore, Query, TrainingDataset, connect",
])
def test_client_modules_load_no_heavy_library(statement: str) -> None:
    assert _heavy_modules_after(statement) == []


def test_embedded_connect_does_load_the_store() -> None:
    """The guard above is meaningful: the store's libraries do load once a store is opened."""
    loaded = _heavy_modules_after(
        "import os, tempfile, cloudsdk\nos.environ['CLOUDSDK_HOME'] = tempfile.mkdtemp()\ncloudsdk.connect().close()")
    assert {"deltalake", "duckdb", "sqlalchemy"} <= {m.split(".")[0] for m in loaded}


def test_all_names_resolve() -> None:
    assert len(cloudsdk.__all__) == len(set(cloudsdk.__all__))
    for name in cloudsdk.__all__:
        assert hasattr(cloudsdk, name), name


def test_every_public_client_class_is_exported() -> None:
    public = set()
    for module_name in CLIENT_MODULES:
        module = importlib.import_module(module_name)
        for name, obj in vars(module).items():
            if (inspect.isclass(obj) and obj.__module__ == module_name and not name.startswith("_")
                    and Protocol not in obj.__mro__):
                public.add(name)
    assert public, "no public classes found: the module list is stale"
    exported = set(cloudsdk.__all__)
    assert public <= exported, f"not exported from cloudsdk: {sorted(public - exported)}"
    for name in public:
        assert getattr(cloudsdk, name) is getattr(importlib.import_module("cloudsdk.client"), name)
    assert set(importlib.import_module("cloudsdk.client").__all__) <= exported


def test_expected_classes_and_functions_are_exported() -> None:
    for name in ("Connection", "FeatureStore", "FeatureGroup", "Feature", "Query", "Filter", "TrainingDataset",
                 "Statistics"):
        assert inspect.isclass(getattr(cloudsdk, name)), name
    assert callable(cloudsdk.connect)
    assert cloudsdk.errors is errors


def test_version_matches_the_distribution() -> None:
    assert cloudsdk.__version__ == importlib.metadata.version("cloudsdk")


def test_functional_api_all_resolves() -> None:
    from cloudsdk import featurestore

    for name in featurestore.__all__:
        assert callable(getattr(featurestore, name)), name
    assert {"create_featuregroup", "insert_into_featuregroup", "get_featuregroup", "get_features", "sql",
            "create_training_dataset", "get_training_dataset_path"} <= set(featurestore.__all__)


# ---------------------------------------------------------------- errors


def _error_classes() -> dict[str, type]:
    return {name: obj for name, obj in vars(errors).items()
            if inspect.isclass(obj) and obj.__module__ == errors.__name__}


def test_errors_all_lists_every_error_class() -> None:
    classes = _error_classes()
    assert set(errors.__all__) == set(classes)
    assert len(errors.__all__) == len(set(errors.__all__))


@pytest.mark.parametrize("name", sorted(_error_classes()))
def test_error_class_is_documented_and_derives_from_the_base(name: str) -> None:
    cls = _error_classes()[name]
    assert issubclass(cls, errors.CloudSDKError)
    doc = cls.__dict__.get("__doc__")
    assert doc and doc.strip(), f"{name} has no docstring of its own"
    assert name in (errors.__doc__ or ""), f"{name} is missing from the tree in the module docstring"
    assert isinstance(cls.code, str) and cls.code


def test_error_hierarchy() -> None:
    assert issubclass(errors.SchemaMismatchError, errors.DataValidationError)
    for nf in (errors.ProjectNotFoundError, errors.FeatureGroupNotFoundError, errors.FeatureNotFoundError,
               errors.TrainingDatasetNotFoundError, errors.StorageConnectorNotFoundError):
        assert issubclass(nf, errors.NotFoundError) and issubclass(nf, LookupError)
    assert issubclass(errors.SQLSandboxError, errors.SQLError)
    assert issubclass(errors.FeatureNameCollisionError, errors.QueryError)
    assert issubclass(errors.JoinKeyError, errors.QueryError)
    assert issubclass(errors.InvalidNameError, ValueError)
    assert issubclass(errors.UnsupportedError, NotImplementedError)


def test_schema_mismatch_lists_differences_in_the_message() -> None:
    exc = errors.SchemaMismatchError("does not match", ["missing column 'a'", "unexpected column 'b'"])
    assert exc.differences == ["missing column 'a'", "unexpected column 'b'"]
    assert str(exc) == "does not match\n  - missing column 'a'\n  - unexpected column 'b'"
    plain = errors.FeatureGroupNotFoundError("no group", featuregroup="x")
    assert plain.context == {"featuregroup": "x"} and plain.message == "no group"
