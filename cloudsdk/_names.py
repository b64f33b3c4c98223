"""Validation of user-chosen names (projects, feature groups, features, datasets, connectors)."""

from __future__ import annotations

import re

from cloudsdk.errors import InvalidNameError

NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
# Training datasets may use upper case too, as the manual's "MNIST_train_petastorm" does.
DATASET_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,62}$")
# Feature (column) names may also use upper case, as pandas users often do.
FEATURE_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")

RESERVED = frozenset(
    {
        "select", "from", "where", "join", "on", "and", "or", "not", "null", "table",
        "group", "order", "by", "union", "as", "with", "insert", "update", "delete",
        "drop", "create", "alter", "limit", "having", "case", "when", "then", "else",
        "end", "true", "false", "in", "is", "like", "between", "all", "any", "distinct",
        "information_schema", "pg_catalog", "main", "temp", "system",
    }
)


def validate_name(name: object, kind: str = "name") -> str:
    """Return ``name`` if it is a valid resource name, else raise InvalidNameError.

    Args:
        name: the candidate name.
        kind: what is being named, for the message ("feature group", "project", ...).

    Raises:
        InvalidNameError: not a string, not matching ``^[a-z][a-z0-9_]{0,62}$``, or reserved.
    """
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise InvalidNameError(
            f"invalid {kind} name {name!r}: use 1-63 characters, lower-case letters, "
            "digits and '_', starting with a letter (e.g. 'teams_features')",
            name=name,
        )
    if name in RESERVED:
        raise InvalidNameError(f"invalid {kind} name {name!r}: it is a reserved word", name=name)
    return name


def validate_dataset_name(name: object) -> str:
    """Return ``name`` if it is a valid training dataset name (letters of either case allowed)."""
    if not isinstance(name, str) or not DATASET_NAME_RE.match(name):
        raise InvalidNameError(
            f"invalid training dataset name {name!r}: use 1-63 letters, digits and '_', "
            "starting with a letter (e.g. 'team_position_prediction')",
            name=name,
        )
    if name.lower() in RESERVED:
        raise InvalidNameError(f"invalid training dataset name {name!r}: it is a reserved word", name=name)
    return name


def validate_feature_name(name: object) -> str:
    """Return ``name`` if it is a valid feature (column) name, else raise InvalidNameError."""
    if not isinstance(name, str) or not FEATURE_NAME_RE.match(name):
        raise InvalidNameError(
            f"invalid feature name {name!r}: use 1-63 letters, digits and '_', "
            "not starting with a digit",
            name=name,
        )
    return name


def validate_version(version: object, kind: str = "version") -> int:
    """Return ``version`` as an int if it is a positive integer, else raise InvalidNameError."""
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise InvalidNameError(f"invalid {kind} {version!r}: use a positive integer", version=version)
    return version


def validate_metadata(items: object) -> dict[str, str]:
    """Custom metadata as ``{str: str}``: keys non-empty strings, values strings or scalars.

    Raises:
        InvalidArgumentError: not a dict, an empty or non-string key, or a non-scalar value.
    """
    from collections.abc import Mapping

    from cloudsdk.errors import InvalidArgumentError

    if not isinstance(items, Mapping):
        raise InvalidArgumentError("metadata must be a dict of str to str")
    out = {}
    for k, v in items.items():
        if not isinstance(k, str) or not k:
            raise InvalidArgumentError(f"metadata keys must be non-empty strings, got {k!r}")
        if not isinstance(v, str | int | float | bool):
            raise InvalidArgumentError(f"metadata value for {k!r} must be a string, got {type(v).__name__}")
        out[k] = str(v)
    return out
