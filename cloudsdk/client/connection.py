"""Connections: the embedded store (no host) or, later, a remote cloudsdk server."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cloudsdk._names import validate_name
from cloudsdk.errors import (
    ConfigurationError,
    InvalidArgumentError,
    ProjectNotFoundError,
    UnsupportedError,
)

if TYPE_CHECKING:
    from cloudsdk.client.backend import Backend
    from cloudsdk.client.feature_store import FeatureStore

log = logging.getLogger(__name__)

DEFAULT_PROJECT = "default"


def _connect_remote(host: str, project: str | None, *, port: int, region_name: str | None, secrets_store: str,
                    api_key_file: str | None, api_key_value: str | None, cert_folder: str | None,
                    hostname_verification: bool, trust_store_path: str | None, role: str | None,
                    secret_prefix: str, reuse_certificates: bool = False) -> Connection:
    """connect(host, project, ...): API key, credentials, certificates, REST and Flight."""
    import tempfile

    from cloudsdk.client.auth import obtain_api_key
    from cloudsdk.client.certificates import read_credentials, write_credentials
    from cloudsdk.client.remote import FlightReader, RemoteBackend, RestClient

    if not project:
        raise ConfigurationError("connect(host, project): name the project to connect to")
    validate_name(project, "project")
    if trust_store_path is not None and not Path(trust_store_path).is_file():
        raise ConfigurationError(f"trust_store_path {trust_store_path!r} is not a file")
    if reuse_certificates and not cert_folder:
        raise ConfigurationError("reuse_certificates=True reads them from cert_folder: pass the folder "
                                 "the driver's connect() wrote them to")
    existing = read_credentials(cert_folder, host, project) if reuse_certificates and cert_folder else None
    key = obtain_api_key(host=host, secrets_store=secrets_store, region_name=region_name,
                         api_key_file=api_key_file, api_key_value=api_key_value, role=role,
                         secret_prefix=secret_prefix)
    temp_folder: str | None = None
    verify: str | bool = trust_store_path or True
    if existing is not None and not trust_store_path:
        # an executor: trust the public CAs and the store's CA chain that the driver wrote
        import certifi

        temp_folder = tempfile.mkdtemp(prefix="cloudsdk-certs-")
        bundle = Path(temp_folder) / "trust.pem"
        bundle.write_bytes(Path(certifi.where()).read_bytes().rstrip() + b"\n" + existing["ca_chain"])
        verify = str(bundle)
    rest = RestClient(host, port, key.value, project, verify=verify,
                      hostname_verification=hostname_verification)
    backend = RemoteBackend(rest)
    written = None
    try:
        info = rest.call("info")
        backend.get_project(project)
        if existing is not None:
            ca_chain, cert_pem, key_pem = existing["ca_chain"], existing["client_cert"], existing["client_key"]
        else:
            creds = backend.credentials(project)
            if not cert_folder and temp_folder is None:
                temp_folder = tempfile.mkdtemp(prefix="cloudsdk-certs-")
            written = write_credentials(creds, cert_folder or str(temp_folder), host, project)
            ca_chain = str(creds["ca_chain_pem"]).encode()
            cert_pem, key_pem = str(creds["certificate_pem"]).encode(), str(creds["private_key_pem"]).encode()
        trusted = Path(trust_store_path).read_bytes() if trust_store_path else b""
        backend.flight = FlightReader(
            host, int(info["flight_port"]), key.value, project,
            root_pem=(trusted.rstrip() + b"\n" if trusted.strip() else b"") + ca_chain,
            cert_pem=cert_pem, key_pem=key_pem,
            hostname_verification=hostname_verification,
            tls_name=info.get("flight_hostname"),
        )
    except BaseException:
        if written is not None:
            written.remove()
        if temp_folder is not None:
            shutil.rmtree(temp_folder, ignore_errors=True)
        backend.close()
        raise
    conn = Connection(backend, project, host=host)
    conn.certificates = written
    conn._temp_folder = temp_folder
    return conn


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
        self.certificates: Any = None  # the CertificateFiles a remote connect() wrote
        self._temp_folder: str | None = None  # where they were written, when connect() chose
        self._closed = False

    @property
    def embedded(self) -> bool:
        """True for the in-process store."""
        return self.host is None

    def get_feature_store(self, name: str | None = None) -> FeatureStore:
        """The project's feature store (``<project>_featurestore``), or a feature store another
        project shares with it (read-only), by name.

        Raises:
            ProjectNotFoundError: no feature store of that name is visible to this project.
        """
        from cloudsdk.client.feature_store import FeatureStore

        self._check_open()
        own = f"{self.project}_featurestore"
        if name is None or name == own:
            return FeatureStore(self._backend, self.project)
        if not isinstance(name, str) or not name.endswith("_featurestore"):
            raise InvalidArgumentError(f"feature store names end in '_featurestore', got {name!r}")
        if name not in self.get_featurestores():
            raise ProjectNotFoundError(
                f"no feature store {name!r} is shared with project {self.project!r}; "
                "the owner can share it with `cloudsdk project share OWNER --with PROJECT`"
            )
        return FeatureStore(self._backend, name[: -len("_featurestore")], acting_project=self.project)

    def get_featurestores(self) -> list[str]:
        """The feature stores this project can read: its own first, then those shared with it."""
        self._check_open()
        return self._backend.featurestores(self.project)

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
        """Release the connection's resources (and remove the certificates it wrote)."""
        if not self._closed:
            self._backend.close()
            if self.certificates is not None:
                self.certificates.remove()
            if self._temp_folder is not None:
                shutil.rmtree(self._temp_folder, ignore_errors=True)
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
    role: str | None = None,
    secret_prefix: str = "hopsworks/role/",
    *,
    path: str | os.PathLike[str] | None = None,
    reuse_certificates: bool = False,
) -> Connection:
    """Connect to a feature store.

    With no ``host`` this opens (creating if needed) the embedded store in ``path``,
    ``$CLOUDSDK_HOME`` or ``~/.cloudsdk``, in this process. With a ``host`` it connects
    to a cloudsdk server (arrives with the service release).

    Args:
        host: the server's host name; None for the embedded store.
        project: the project (default ``"default"`` embedded; required with a host).
        port: the server's HTTPS port.
        region_name: AWS region of the secrets store (default: the AWS configuration's).
        secrets_store: where the API key is: "parameterstore", "secretsmanager" or "env".
        api_key_file: a file holding the API key (instead of a secrets store).
        api_key_value: the API key itself (instead of a secrets store).
        cert_folder: where the project certificates are written, as
            ``<cert_folder>/<host>/<project>/``: a directory, a mounted bucket such as
            ``/dbfs/mnt/<mount>``, or ``s3://bucket/prefix``. Default: a private temporary
            directory removed by ``close()``.
        hostname_verification: False skips only the host-name check, never the chain.
        trust_store_path: a PEM file of CA certificates to trust (e.g. the server's own CA).
        role: the AWS role whose secret holds the key (default: found with STS).
        secret_prefix: prefix of the secret / parameter names (``hopsworks/role/``).
        path: the embedded store's directory.
        reuse_certificates: use the certificates an earlier ``connect()`` (on the driver) wrote to
            ``cert_folder`` instead of fetching new ones, and leave them there on ``close()``:
            what Spark executors do (they share the driver's mount). Needs ``cert_folder``.

    Returns:
        A :class:`Connection`.

    Example:
        >>> conn = cloudsdk.connect()  # doctest: +SKIP
        >>> fs = conn.get_feature_store()  # doctest: +SKIP
    """
    if host is not None:
        return _connect_remote(
            host, project, port=port, region_name=region_name, secrets_store=secrets_store,
            api_key_file=api_key_file, api_key_value=api_key_value, cert_folder=cert_folder,
            hostname_verification=hostname_verification, trust_store_path=trust_store_path,
            role=role, secret_prefix=secret_prefix, reuse_certificates=reuse_certificates,
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
