"""Connections: the embedded store (no host) or, later, a remote cloudsdk server."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cloudsdk._names import validate_name
from cloudsdk.errors import ConfigurationError, InvalidArgumentError, UnsupportedError

if TYPE_CHECKING:
    from cloudsdk.client.backend import Backend
    from cloudsdk.client.feature_store import FeatureStore

log = logging.getLogger(__name__)

DEFAULT_PROJECT = "default"


def default_home() -> Path:
    """The embedded store's directory: ``$CLOUDSDK_HOME`` or ``~/.cloudsdk``."""
    return Path(os.environ.get("CLOUDSDK_HOME") or Path.home() / ".cloudsdk").expanduser()


class Connection:
    """An open connection to a feature store (embedded in this process, or remote).

    Use :func:`cloudsdk.connect` to make one; it is also a context manager.
    """

    def __init__(self, backend: Backend, project: str, *, host: str | None = None,
                 path: Path | None = None) -> None:
        self._backend = backend
        self.project = project
        self.host = host
        self.path = path
        self._closed = False

    @property
    def embedded(self) -> bool:
        """True for the in-process store."""
        return self.host is None

    def get_feature_store(self, name: str | None = None) -> FeatureStore:
        """The project's feature store (``<project>_featurestore``)."""
        from cloudsdk.client.feature_store import FeatureStore

        self._check_open()
        project = self.project
        if name is not None and name != f"{project}_featurestore":
            if not name.endswith("_featurestore"):
                raise InvalidArgumentError(f"feature store names end in '_featurestore', got {name!r}")
            project = name[: -len("_featurestore")]
            self._backend.get_project(project)
        return FeatureStore(self._backend, project)

    def create_project(self, name: str, description: str = "") -> dict[str, Any]:
        """Create a project in the embedded store."""
        self._check_open()
        create = getattr(self._backend, "create_project", None)
        if create is None:
            raise UnsupportedError("create projects on the server with `cloudsdk project create`")
        return create(name, description)

    def _check_open(self) -> None:
        if self._closed:
            raise ConfigurationError("this connection is closed; call cloudsdk.connect() again")

    def close(self) -> None:
        """Release the connection's resources."""
        if not self._closed:
            self._backend.close()
            self._closed = True

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        where = f"host={self.host!r}" if self.host else f"embedded path={str(self.path)!r}"
        return f"Connection({where}, project={self.project!r})"


def connect(
    host: str | None = None,
    project: str | None = None,
    port: int = 443,
    region_name: str | None = None,
    secrets_store: str = "parameterstore",
    api_key_file: str | None = None,
    api_key_value: str | None = None,
    cert_folder: str | None = None,
    hostname_verification: bool = True,
    trust_store_path: str | None = None,
    *,
    path: str | os.PathLike[str] | None = None,
) -> Connection:
    """Connect to a feature store.

    With no ``host`` this opens (creating if needed) the embedded store in ``path``,
    ``$CLOUDSDK_HOME`` or ``~/.cloudsdk``, in this process. With a ``host`` it connects
    to a cloudsdk server (arrives with the service release).

    Args:
        host: the server's host name; None for the embedded store.
        project: the project (default ``"default"``).
        path: the embedded store's directory.

    Returns:
        A :class:`Connection`.

    Example:
        >>> conn = cloudsdk.connect()  # doctest: +SKIP
        >>> fs = conn.get_feature_store()  # doctest: +SKIP
    """
    del port, region_name, secrets_store, cert_folder, hostname_verification, trust_store_path
    if host is not None:
        del api_key_file, api_key_value
        raise UnsupportedError(
            "remote connections (connect(host, project, ...)) arrive with the cloudsdk server; "
            "call connect() without a host for the embedded store"
        )
    project = project or DEFAULT_PROJECT
    validate_name(project, "project")
    root = Path(path).expanduser() if path is not None else default_home()
    if root.exists() and not root.is_dir():
        raise ConfigurationError(f"the store path {str(root)!r} is a file, not a directory")
    try:
        from cloudsdk.store import FeatureStoreService
    except ImportError as exc:
        raise ImportError(
            "the embedded feature store needs the 'local' extra: pip install 'cloudsdk[local]'"
        ) from exc
    try:
        service = FeatureStoreService(root)
    except OSError as exc:
        raise ConfigurationError(f"cannot open the store at {str(root)!r}: {exc.strerror}") from exc
    service.get_project(project)
    log.debug("opened the embedded store at %s, project %s", root, project)
    return Connection(service, project, path=service.root)
