"""A real ``cloudsdk server`` process on loopback, for running the public-API tests against
the remote backend (the conformance suite: the same tests, both backends).

``RemoteStore.connect(tmp_path)`` makes a fresh project with a data-owner user and an API
key, and connects to it over HTTPS + Flight exactly as a notebook would.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import cloudsdk

READY = re.compile(r"REST https://[^:]+:(?P<port>\d+)\s+Flight grpc\+tls://[^:]+:(?P<fport>\d+)")


@dataclass
class RemoteStore:
    """A running server and what it takes to connect to it."""

    process: subprocess.Popen[str]
    data_dir: Path
    port: int
    flight_port: int

    @property
    def ca_file(self) -> Path:
        """The server CA's certificate (the client's trust store)."""
        return self.data_dir / "ca" / "ca.pem"

    def new_project(self, role: str = "data_owner", scopes: tuple[str, ...] = ("featurestore", "project"),
                    ) -> tuple[str, str]:
        """A fresh project with one member; returns (project, API key)."""
        from cloudsdk.store import FeatureStoreService
        from cloudsdk.store.security import SecurityService

        tag = uuid.uuid4().hex[:10]
        project, user = f"p{tag}", f"u{tag}"
        service = FeatureStoreService(self.data_dir)
        try:
            security = SecurityService(service.catalog)
            service.create_project(project)
            security.create_user(user)
            security.add_member(project, user, role)
            key, _ = security.create_api_key(user, "tests", list(scopes))
        finally:
            service.close()
        return project, key

    def connect(self, tmp_path: Path, project: str | None = None, key: str | None = None) -> cloudsdk.Connection:
        """A remote connection to a fresh project (or to ``project`` with ``key``)."""
        if project is None or key is None:
            project, key = self.new_project()
        return cloudsdk.connect("127.0.0.1", project, port=self.port, api_key_value=key,
                                trust_store_path=str(self.ca_file), cert_folder=str(tmp_path / "certs"))


def _start(data_dir: Path, timeout_s: float = 60.0) -> RemoteStore:
    exe = Path(sys.executable).with_name("cloudsdk")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "cloudsdk.cli"]
    cmd += ["server", "start", "--data-dir", str(data_dir), "--host", "127.0.0.1", "--port", "0",
            "--flight-port", "0"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    log_path = data_dir.parent / f"{data_dir.name}-server.out"
    with open(log_path, "w") as log:  # a file, not a pipe: nothing to drain while tests run
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, text=True, env=env)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        match = READY.search(log_path.read_text())
        if match:
            return RemoteStore(proc, data_dir, int(match["port"]), int(match["fport"]))
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    proc.kill()
    proc.wait()
    raise RuntimeError(f"cloudsdk server did not start within {timeout_s} s; it printed: {log_path.read_text()!r}")


@pytest.fixture(scope="session")
def remote_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RemoteStore]:
    """One ``cloudsdk server`` process for the whole test session."""
    store = _start(tmp_path_factory.mktemp("server"))
    try:
        yield store
    finally:
        store.process.terminate()
        try:
            store.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            store.process.kill()
            store.process.wait()
