"""The whole cloudsdk exception tree.

Every error cloudsdk raises is a :class:`CloudSDKError`; foreign exceptions
(deltalake, duckdb, sqlglot, SQLAlchemy, pyarrow) are translated at the
boundary and chained with ``raise ... from exc``::

    CloudSDKError
    ├── ConfigurationError          bad connect() arguments, unusable store directory
    ├── InvalidNameError            a name that is not ^[a-z][a-z0-9_]{0,62}$ or is reserved
    ├── InvalidArgumentError        a bad argument value (mode, dataframe_type, ...)
    ├── NotFoundError
    │   ├── ProjectNotFoundError
    │   ├── FeatureGroupNotFoundError
    │   ├── FeatureNotFoundError
    │   ├── TrainingDatasetNotFoundError
    │   ├── StorageConnectorNotFoundError
    │   ├── CommitNotFoundError     no commit of a feature group at that id or time (or vacuumed)
    │   └── FeatureVectorNotFoundError  an online lookup found no row for an entity's key
    ├── AlreadyExistsError          a feature group, dataset, project ... of that name and version exists
    ├── DataValidationError         rows the store refuses: null or duplicate primary keys ...
    │   ├── SchemaMismatchError     columns or types that do not match the feature group
    │   └── ValidationFailedError   an error-level validation rule failed (carries the report)
    ├── QueryError                  the query planner could not plan the request
    │   ├── FeatureNameCollisionError   a feature name found in several feature groups
    │   └── JoinKeyError            no join key shared by the feature groups
    ├── SQLError                    a SQL statement that failed to parse or run
    │   └── SQLSandboxError         a statement the read-only sandbox refuses
    ├── UnsupportedError            a capability this release or backend does not offer
    ├── StorageError                the offline store or catalog failed underneath
    │   └── OnlineSyncError         the offline commit landed but the online store write failed
    ├── AuthenticationError         no API key, or a wrong, revoked or expired one (HTTP 401)
    ├── PermissionDeniedError       the key's user, role or scopes may not do this (HTTP 403)
    ├── CredentialsError            an API key could not be obtained for connect()
    │   ├── SecretNotFoundError     the secret / parameter / file does not exist or lacks the key
    │   └── SecretAccessDeniedError the AWS identity may not read the secret / parameter
    ├── CertificateError            certificates could not be issued, written or verified
    └── ServiceError                the server could not be reached or answered unexpectedly
        └── TLSError                the TLS handshake failed (untrusted certificate, wrong host name)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = [
    "AlreadyExistsError",
    "AuthenticationError",
    "CertificateError",
    "CloudSDKError",
    "CommitNotFoundError",
    "ConfigurationError",
    "CredentialsError",
    "DataValidationError",
    "FeatureGroupNotFoundError",
    "FeatureNameCollisionError",
    "FeatureNotFoundError",
    "FeatureVectorNotFoundError",
    "InvalidArgumentError",
    "InvalidNameError",
    "JoinKeyError",
    "NotFoundError",
    "OnlineSyncError",
    "PermissionDeniedError",
    "ProjectNotFoundError",
    "QueryError",
    "SQLError",
    "SQLSandboxError",
    "SchemaMismatchError",
    "SecretAccessDeniedError",
    "SecretNotFoundError",
    "ServiceError",
    "StorageConnectorNotFoundError",
    "StorageError",
    "TLSError",
    "TrainingDatasetNotFoundError",
    "UnsupportedError",
    "ValidationFailedError",
]


class CloudSDKError(Exception):
    """Base class of every error cloudsdk raises."""

    code = "error"

    def __init__(self, message: str, **context: Any) -> None:
        super().__init__(message)
        self.message = message
        self.context = context


class ConfigurationError(CloudSDKError):
    """connect() arguments or the store directory cannot be used."""

    code = "configuration_error"


class InvalidNameError(CloudSDKError, ValueError):
    """A project, feature group, feature, dataset or connector name is not allowed."""

    code = "invalid_name"


class InvalidArgumentError(CloudSDKError, ValueError):
    """An argument has a value cloudsdk does not accept."""

    code = "invalid_argument"


class NotFoundError(CloudSDKError, LookupError):
    """The named resource does not exist (or is not visible to the caller)."""

    code = "not_found"


class ProjectNotFoundError(NotFoundError):
    """No project of that name."""

    code = "project_not_found"


class FeatureGroupNotFoundError(NotFoundError):
    """No feature group of that name and version."""

    code = "featuregroup_not_found"


class FeatureNotFoundError(NotFoundError):
    """No feature of that name in the feature groups searched."""

    code = "feature_not_found"


class TrainingDatasetNotFoundError(NotFoundError):
    """No training dataset of that name and version."""

    code = "training_dataset_not_found"


class StorageConnectorNotFoundError(NotFoundError):
    """No storage connector of that name."""

    code = "storage_connector_not_found"


class CommitNotFoundError(NotFoundError):
    """No commit of the feature group at that id or time, or its files were vacuumed away."""

    code = "commit_not_found"


class FeatureVectorNotFoundError(NotFoundError):
    """An online lookup found no row for an entity's key (pass ``allow_missing=True`` to get
    None values instead)."""

    code = "feature_vector_not_found"


class AlreadyExistsError(CloudSDKError):
    """A resource of that name (and version) already exists."""

    code = "already_exists"


class DataValidationError(CloudSDKError, ValueError):
    """The rows cannot be written: null or duplicate primary keys, bad values."""

    code = "data_validation_error"


class SchemaMismatchError(DataValidationError):
    """The columns or types of a dataframe do not match the feature group's schema."""

    code = "schema_mismatch"

    def __init__(self, message: str, differences: Sequence[str] = (), **context: Any) -> None:
        if differences:
            message = message + "\n" + "\n".join(f"  - {d}" for d in differences)
        super().__init__(message, **context)
        self.differences = list(differences)


class ValidationFailedError(DataValidationError):
    """An error-level validation rule of the feature group failed; nothing was written.

    ``report`` is the validation report (a dict: ``status``, ``results`` ...), see
    docs/validation.md.
    """

    code = "validation_failed"

    def __init__(self, message: str, report: Mapping[str, Any] | None = None, **context: Any) -> None:
        super().__init__(message, **context)
        self.report: dict[str, Any] = dict(report or {})


class QueryError(CloudSDKError):
    """The query planner could not turn the request into a query."""

    code = "query_error"


class FeatureNameCollisionError(QueryError):
    """A feature name exists in several feature groups; the request must say which."""

    code = "feature_name_collision"

    def __init__(self, message: str, candidates: Sequence[str] = (), **context: Any) -> None:
        super().__init__(message, **context)
        self.candidates = list(candidates)


class JoinKeyError(QueryError):
    """The feature groups share no primary key to join on, or the given key is missing."""

    code = "join_key_error"


class SQLError(CloudSDKError):
    """A SQL statement failed to parse or to run."""

    code = "sql_error"


class SQLSandboxError(SQLError):
    """The read-only SQL sandbox refused a statement (files, network, settings, writes)."""

    code = "sql_forbidden"


class UnsupportedError(CloudSDKError, NotImplementedError):
    """A capability that this release or this backend does not offer."""

    code = "unsupported"


class StorageError(CloudSDKError):
    """The offline store or the catalog failed underneath an operation."""

    code = "storage_error"


class OnlineSyncError(StorageError):
    """The offline commit landed but writing the online store failed: the online table is behind.
    It is repaired on the next online write, or now with ``fg.sync_online()``."""

    code = "online_sync_error"


class AuthenticationError(CloudSDKError):
    """No API key, or a wrong, revoked or expired one."""

    code = "unauthenticated"


class PermissionDeniedError(CloudSDKError):
    """The caller's role, project membership or key scopes do not allow the operation."""

    code = "forbidden"


class CredentialsError(CloudSDKError):
    """connect() could not obtain an API key (secrets store, role, file)."""

    code = "credentials_error"


class SecretNotFoundError(CredentialsError):
    """The secret, parameter or key file does not exist, or lacks the API key."""

    code = "secret_not_found"


class SecretAccessDeniedError(CredentialsError):
    """The AWS identity may not read the secret or parameter."""

    code = "secret_access_denied"


class CertificateError(CloudSDKError):
    """Certificates could not be issued, written or verified."""

    code = "certificate_error"


class ServiceError(CloudSDKError):
    """The cloudsdk server could not be reached, or answered in an unexpected way."""

    code = "service_error"


class TLSError(ServiceError):
    """The TLS handshake failed: an untrusted certificate or a wrong host name."""

    code = "tls_error"


def error_class(code: str) -> type[CloudSDKError]:
    """The error class whose ``code`` is ``code`` (CloudSDKError for an unknown code)."""
    for cls in _all_classes(CloudSDKError):
        if cls.code == code:
            return cls
    return CloudSDKError


def _all_classes(base: type[CloudSDKError]) -> list[type[CloudSDKError]]:
    out = [base]
    for sub in base.__subclasses__():
        out.extend(_all_classes(sub))
    return out

