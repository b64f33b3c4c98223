"""``cloudsdk ui``: the web UI (and the REST API it uses) for an embedded store, over plain
HTTP on loopback.

The first start creates, in the store, the project (``--project``, default ``default``, the
embedded store's project), a user ``ui`` (data owner of that project) and an API key, and
prints the key once; it is also kept in ``<dir>/ui/apikey`` (mode 0600, next to the store's
own secrets) so later starts reuse it without printing it again.

Example::

    cloudsdk ui --dir ~/.cloudsdk          # then open the printed URL and paste the key
"""

from __future__ import annotations

import contextlib
import copy
import ipaddress
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from cloudsdk.errors import AlreadyExistsError, CloudSDKError, ConfigurationError

__all__ = ["UI_USER", "ensure_ui_key", "run_ui"]

UI_USER = "ui"
KEY_FILE = Path("ui") / "apikey"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def ensure_ui_key(server: Any, project: str) -> tuple[str, bool]:
    """The project, the ``ui`` user (data owner) and an API key for the UI.

    Args:
        server: a :class:`cloudsdk.server.app.Server` over the store.
        project: the project the UI acts in (created if missing).

    Returns:
        ``(key, created)``: ``created`` is True when the key is new (print it once).
    """
    server.service.create_project(project, exist_ok=True)
    with contextlib.suppress(AlreadyExistsError):
        server.security.create_user(UI_USER)
    server.security.add_member(project, UI_USER, "data_owner")
    key_file = Path(server.data_dir) / KEY_FILE
    if key_file.exists():
        key = key_file.read_text().strip()
        try:
            server.security.authenticate(key)
            return key, False
        except CloudSDKError:  # revoked or from another store: make a new one
            pass
    name = datetime.now(UTC).strftime("ui_%Y%m%d%H%M%S%f")
    key, _meta = server.security.create_api_key(UI_USER, name, ["featurestore", "project"])
    key_file.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(key + "\n")
    return key, True


def run_ui(data_dir: str | Path, *, host: str = "127.0.0.1", port: int = 8000, project: str = "default",
           out: TextIO, log_level: str = "warning") -> int:
    """Serve the REST API and the UI of the store in ``data_dir`` over HTTP until SIGINT/SIGTERM.

    Once it listens it prints ``UI http://HOST:PORT/ui/#/login?project=PROJECT`` (and, the first
    time, the API key to log in with).

    Returns:
        The exit status (0 after a clean stop).

    Raises:
        ConfigurationError: ``host`` is not a loopback address (plain HTTP carries the key).
        ImportError: the ``server`` extra is not installed.
    """
    from cloudsdk.server.app import _graceful_signals, _listen, _runner, build, missing_extra

    if not _is_loopback(host):
        raise ConfigurationError(
            f"cloudsdk ui serves plain HTTP and only listens on loopback, not {host!r}; "
            "for other hosts run `cloudsdk server start` (HTTPS) and open /ui/ there")
    try:
        import uvicorn
    except ImportError as exc:
        raise missing_extra(exc) from exc
    from cloudsdk.server.rest import create_app

    server = build(data_dir)
    sock = None
    try:
        key, created = ensure_ui_key(server, project)
        sock = _listen(host, port)
        bound = sock.getsockname()[1]
        shown = f"[{host}]" if ":" in host else host
        lines = [f"UI http://{shown}:{bound}/ui/#/login?project={project}"]
        if created:
            lines += [f"  project  {project}", f"  user     {UI_USER} (data_owner)",
                      f"  API key  {key}   (shown once; kept in {Path(server.data_dir) / KEY_FILE})"]
        else:
            lines.append(f"  project {project}; the API key is in {Path(server.data_dir) / KEY_FILE}")

        def ready() -> None:
            out.write("\n".join(lines) + "\n")
            out.flush()

        log_config = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
        log_config["handlers"]["access"]["stream"] = "ext://sys.stderr"
        config = uvicorn.Config(create_app(server), log_level=log_level, log_config=log_config, lifespan="off",
                                server_header=False, proxy_headers=False, timeout_graceful_shutdown=5)
        runner = _runner(config, ready)
        with _graceful_signals():
            runner.run(sockets=[sock])
        if not runner.started:
            raise ConfigurationError("the UI server did not start (see the log above)")
        return 0
    finally:
        if sock is not None:
            sock.close()
        server.close()
