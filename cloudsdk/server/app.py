"""``cloudsdk server``: wiring the store, its security service and its certificate authority,
and running the REST API (uvicorn, HTTPS) with the Flight service in one process.

Example::

    from cloudsdk.server.app import build
    server = build("/srv/cloudsdk")           # FeatureStoreService + SecurityService + CA
    from cloudsdk.server.rest import create_app
    app = create_app(server)                  # an ASGI app for any ASGI server

``serve()`` is what ``cloudsdk server start`` runs.
"""

from __future__ import annotations

import contextlib
import copy
import inspect
import logging
import os
import signal
import socket
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

from cloudsdk.errors import (
    AlreadyExistsError,
    AuthenticationError,
    ConfigurationError,
    InvalidArgumentError,
)
from cloudsdk.store import FeatureStoreService
from cloudsdk.store.ca import CertificateAuthority
from cloudsdk.store.security import SecurityService

log = logging.getLogger(__name__)

__all__ = ["DEV_PROJECT", "DEV_USER", "Server", "build", "missing_extra", "parse_api_key", "serve"]

DEV_PROJECT = "dev"
DEV_USER = "dev"
DEV_SCOPES = ("featurestore", "project")
_WILDCARD_HOSTS = ("", "0.0.0.0", "::")
SERVER_CERT_FILE, SERVER_KEY_FILE = "server.pem", "server-key.pem"
# On SIGTERM, requests in progress get this long to finish; idle keep-alive clients are cut.
GRACEFUL_SHUTDOWN_S = 5


def missing_extra(exc: ImportError) -> ImportError:
    """The ImportError to raise when a dependency of the ``server`` extra is missing."""
    return ImportError(
        f"the cloudsdk server needs the 'server' extra ({exc.name or exc} is missing): "
        "pip install 'cloudsdk[server]'"
    )


def parse_api_key(header: str | None) -> str:
    """The key of an ``Authorization: ApiKey <key>`` header.

    Raises:
        AuthenticationError: no header, or another scheme (the message never holds the value).
    """
    if not header or not header.strip():
        raise AuthenticationError(
            "no API key: requests need the header 'Authorization: ApiKey <key>'; "
            "create a key with `cloudsdk apikey create`"
        )
    scheme, _, key = header.strip().partition(" ")
    if scheme.lower() != "apikey" or not key.strip():
        raise AuthenticationError("the Authorization header must be 'ApiKey <key>' (another scheme was sent)")
    return key.strip()


class Server:
    """The store, its security service and its certificate authority, as REST and Flight see them.

    The REST and Flight layers hold no feature-store logic: they authorize and then run a
    :class:`~cloudsdk.store.FeatureStoreService` method through :meth:`call`.
    """

    def __init__(self, service: FeatureStoreService, security: SecurityService, ca: CertificateAuthority,
                 *, hostnames: Sequence[str] = ("localhost",)) -> None:
        self.service = service
        self.security = security
        self.ca = ca
        self.data_dir = Path(service.root)
        self.hostnames = tuple(hostnames)
        self.flight_port: int | None = None
        self.flight_hostname: str | None = None  # a DNS name of the Flight certificate
        self._locks: dict[tuple[str, ...], threading.Lock] = {}
        self._locks_guard = threading.Lock()

    def __repr__(self) -> str:
        return f"Server(data_dir={str(self.data_dir)!r}, flight_port={self.flight_port!r})"

    @property
    def ca_file(self) -> Path:
        """The CA certificate (PEM) clients trust: ``<data dir>/ca/ca.pem``."""
        return self.ca.directory / "ca.pem"

    def call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """Run the store method ``method`` with arguments that came over the wire.

        Raises:
            InvalidArgumentError: the method does not take these arguments.
            CloudSDKError: whatever the store raises.
        """
        fn: Callable[..., Any] = getattr(self.service, method)
        try:
            inspect.signature(fn).bind(*args, **kwargs)
        except TypeError as exc:
            raise InvalidArgumentError(f"{method}: {exc}") from exc
        return fn(*args, **kwargs)

    @contextlib.contextmanager
    def write_lock(self, *key: str) -> Iterator[None]:
        """Serialise writes to one feature group or training dataset (``key``) in this process."""
        with self._locks_guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            yield

    def write_server_certificate(self) -> tuple[Path, Path]:
        """Issue a TLS server certificate for :attr:`hostnames` from the store's CA and write it
        to ``<data dir>/ca/server.pem`` and ``server-key.pem`` (mode 0600)."""
        cert_pem, key_pem = self.ca.issue_server_certificate(list(self.hostnames))
        cert_file, key_file = self.ca.directory / SERVER_CERT_FILE, self.ca.directory / SERVER_KEY_FILE
        _write_private(key_file, key_pem)
        _write_private(cert_file, cert_pem, mode=0o644)
        return cert_file, key_file

    def dev_setup(self) -> dict[str, Any]:
        """Development mode: project ``dev``, user ``dev`` (data owner) and a fresh API key.

        Returns:
            ``{"project", "user", "key", "key_name", "ca_file"}``; the key is shown only here.
        """
        self.service.create_project(DEV_PROJECT, "development project (cloudsdk server --dev)", exist_ok=True)
        with contextlib.suppress(AlreadyExistsError):
            self.security.create_user(DEV_USER)
        self.security.add_member(DEV_PROJECT, DEV_USER, "data_owner")
        key_name = datetime.now(UTC).strftime("dev_%Y%m%d%H%M%S%f")
        key, _meta = self.security.create_api_key(DEV_USER, key_name, list(DEV_SCOPES))
        return {"project": DEV_PROJECT, "user": DEV_USER, "key": key, "key_name": key_name,
                "ca_file": self.ca_file}

    def close(self) -> None:
        """Release the store's connections."""
        self.service.close()


def build(data_dir: str | Path, metadata_url: str | None = None,
          hostnames: Sequence[str] = ("localhost",)) -> Server:
    """A :class:`Server` over the store in ``data_dir`` (its CA in ``data_dir/ca``).

    Args:
        data_dir: the store directory (created if missing).
        metadata_url: a SQLAlchemy URL for the catalog (default SQLite in ``data_dir``), e.g.
            ``postgresql+psycopg://user@host/db``.
        hostnames: the names the server certificate is issued for (``localhost``,
            ``127.0.0.1`` and ``cloudsdk-server`` are always included).
    """
    service = FeatureStoreService(data_dir, metadata_url)
    try:
        security = SecurityService(service.catalog)
        ca = CertificateAuthority(Path(service.root) / "ca")
    except BaseException:
        service.close()
        raise
    return Server(service, security, ca, hostnames=hostnames)


def _write_private(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Write ``data`` atomically to ``path``, created with ``mode`` (never wider, even briefly)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)  # 0600
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _first_dns_name(cert_pem: bytes) -> str | None:
    """The first DNS name of a certificate's SANs (what a client may check it against when
    it does not verify the host name it connected to)."""
    from cryptography import x509

    try:
        cert = x509.load_pem_x509_certificate(cert_pem)
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (ValueError, x509.ExtensionNotFound):
        return None
    dns = names.get_values_for_type(x509.DNSName)
    return dns[0] if dns else None


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def _listen(host: str, port: int) -> socket.socket:
    """A listening TCP socket (so that port 0 gives a known port before uvicorn starts)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY on accepted sockets only when the
    # proto says TCP; without it every response waits ~40 ms on Nagle + delayed ACK
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host.strip("[]"), port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise ConfigurationError(f"cannot listen on {host}:{port} for the REST API: {exc.strerror or exc}") from exc
    sock.set_inheritable(True)
    return sock


@contextlib.contextmanager
def _graceful_signals() -> Iterator[None]:
    """SIGINT/SIGTERM stop the server cleanly and the process exits 0.

    uvicorn handles both signals while it runs and re-raises the one it got after shutting
    down; the handlers installed here receive that re-raised signal instead of the defaults
    (which would kill the process with a signal exit status).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def note(signum: int, _frame: FrameType | None) -> None:
        log.info("received %s; stopping", signal.Signals(signum).name)

    saved = {sig: signal.signal(sig, note) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)


def serve(
    data_dir: str | Path,
    *,
    host: str = "127.0.0.1",
    port: int = 8443,
    flight_port: int = 8815,
    metadata_url: str | None = None,
    tls_cert: str | Path | None = None,
    tls_key: str | Path | None = None,
    dev: bool = False,
    out: TextIO | None = None,
    log_level: str = "info",
) -> int:
    """Run the REST API (HTTPS) and the Flight service (mutual TLS) until SIGINT or SIGTERM.

    Without ``tls_cert``/``tls_key`` the server certificate is issued by the store's CA for
    ``host`` and ``localhost`` and written to ``<data dir>/ca/server.pem`` (key
    ``server-key.pem``, mode 0600). Once both services listen it prints
    ``REST https://HOST:PORT  Flight grpc+tls://HOST:FPORT`` to ``out`` (stdout); with
    ``dev`` it first creates project ``dev``, user ``dev`` and an API key, and prints them.

    Returns:
        The exit status (0 after a clean stop).

    Raises:
        ImportError: the ``server`` extra is not installed.
        ConfigurationError: unusable options, ports or certificate files.
    """
    try:
        import uvicorn
    except ImportError as exc:
        raise missing_extra(exc) from exc
    from cloudsdk.server._http import CoalescingH11Protocol, QuietServingFilter
    from cloudsdk.server.flight import FeatureFlightServer
    from cloudsdk.server.rest import create_app

    out = out or sys.stdout
    if (tls_cert is None) != (tls_key is None):
        raise ConfigurationError("--tls-cert and --tls-key go together: give both or neither")
    hostnames = [h for h in (host, "localhost") if h not in _WILDCARD_HOSTS]
    server = build(data_dir, metadata_url, hostnames=hostnames)
    sock: socket.socket | None = None
    flight_server: FeatureFlightServer | None = None
    try:
        if tls_cert is not None and tls_key is not None:
            cert_file, key_file = Path(tls_cert), Path(tls_key)
        else:
            cert_file, key_file = server.write_server_certificate()
        try:
            cert_pem, key_pem = cert_file.read_bytes(), key_file.read_bytes()
        except OSError as exc:
            raise ConfigurationError(f"cannot read the TLS certificate or key: {exc}") from exc
        _check_tls_pair(cert_file, cert_pem, key_file, key_pem)
        sock = _listen(host, port)
        rest_port = sock.getsockname()[1]
        flight_server = FeatureFlightServer(server, host=host, port=flight_port, tls_cert=cert_pem, tls_key=key_pem)
        server.flight_port = flight_server.port
        server.flight_hostname = _first_dns_name(cert_pem)
        lines = []
        if dev:
            info = server.dev_setup()
            shown = "localhost" if host in _WILDCARD_HOSTS else host
            lines += [
                "cloudsdk server: development mode",
                f"  project  {info['project']}",
                f"  user     {info['user']} (data_owner)",
                f"  API key  {info['key']}",
                f"  CA       {info['ca_file']}",
                "  connect with:",
                f"    cloudsdk.connect({shown!r}, {info['project']!r}, port={rest_port}, "
                f"api_key_value={info['key']!r}, trust_store_path={str(info['ca_file'])!r})",
            ]
        lines.append(f"REST https://{_url_host(host)}:{rest_port}  "
                     f"Flight grpc+tls://{_url_host(host)}:{flight_server.port}")

        def ready() -> None:
            out.write("\n".join(lines) + "\n")
            out.flush()

        # uvicorn's logs, access log included, go to stderr: stdout holds only the lines above
        log_config = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
        log_config["handlers"]["access"]["stream"] = "ext://sys.stderr"
        # successful feature-vector lookups stay out of the access log (QuietServingFilter)
        log_config.setdefault("filters", {})["quiet_serving"] = {"()": QuietServingFilter}
        log_config["handlers"]["access"]["filters"] = ["quiet_serving"]
        config = uvicorn.Config(
            create_app(server), ssl_certfile=str(cert_file), ssl_keyfile=str(key_file),
            log_level=log_level, log_config=log_config, lifespan="off", server_header=False,
            proxy_headers=False, timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
            http=CoalescingH11Protocol,  # head and body of a response in one write (server/_http.py)
        )
        try:
            config.load()  # the TLS context: a bad certificate or key fails here, cleanly
        except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
            raise ConfigurationError(f"cannot use the TLS certificate {cert_file} with key {key_file}: {exc}") from exc
        runner = _runner(config, ready)
        with _graceful_signals():
            runner.run(sockets=[sock])
        if not runner.started:
            raise ConfigurationError("the REST API did not start (see the log above)")
        log.info("stopped")
        return 0
    finally:
        if flight_server is not None:
            _shutdown_flight(flight_server)
        if sock is not None:
            sock.close()
        server.close()


def _check_tls_pair(cert_file: Path, cert_pem: bytes, key_file: Path, key_pem: bytes) -> None:
    """A clear error for a certificate or key file that TLS could not use."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    try:
        chain = x509.load_pem_x509_certificates(cert_pem)
    except ValueError as exc:
        raise ConfigurationError(f"cannot use {cert_file}: it is not a PEM certificate (chain)") from exc
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError) as exc:
        raise ConfigurationError(f"cannot use {key_file}: it is not an unencrypted PEM private key") from exc
    if chain[0].public_key() != key.public_key():
        raise ConfigurationError(f"cannot use {key_file}: it is not the key of the certificate in {cert_file}")


def _shutdown_flight(flight_server: Any, timeout_s: float = 10.0) -> None:
    """Stop the Flight service, waiting at most ``timeout_s`` for calls in progress."""
    stopper = threading.Thread(target=flight_server.shutdown, name="flight-shutdown", daemon=True)
    stopper.start()
    stopper.join(timeout_s)
    if stopper.is_alive():
        log.warning("the Flight service did not stop within %.0f s; exiting anyway", timeout_s)


def _uvicorn_server_class() -> type:
    import uvicorn

    class Runner(uvicorn.Server):
        """uvicorn's server that reports when it listens."""

        def __init__(self, config: uvicorn.Config, on_ready: Callable[[], None]) -> None:
            super().__init__(config)
            self._on_ready = on_ready

        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets=sockets)
            if self.started and not self.should_exit:
                self._on_ready()

    return Runner


def _runner(config: Any, on_ready: Callable[[], None]) -> Any:
    """A uvicorn server for ``config`` that calls ``on_ready`` once it listens."""
    return _uvicorn_server_class()(config, on_ready)
