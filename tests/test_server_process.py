"""``cloudsdk server start`` as a real process on loopback: HTTPS with the store's CA (or a
given certificate), the Flight service beside it, signals, PostgreSQL metadata, and the
command's clean errors."""

from __future__ import annotations

import base64
import os
import queue
import re
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import requests

from cloudsdk import _protocol as P
from cloudsdk.cli import main
from cloudsdk.store.ca import CertificateAuthority

READY_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 10.0
REQUEST_TIMEOUT_S = 30.0
PG_DSN = "host=127.0.0.1 port=5432 user=postgres dbname=test"
ROWS = pa.table({"id": [1, 2, 3], "score": [0.5, 1.5, 2.5]})


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Running:
    """A started server process and what it printed."""

    proc: subprocess.Popen[str]
    output: str
    port: int
    flight_port: int
    stderr: Path
    http: requests.Session

    @property
    def base(self) -> str:
        return f"https://127.0.0.1:{self.port}{P.API_PREFIX}"

    def printed(self, label: str) -> str:
        match = re.search(rf"^\s*{label}\s+(\S+)\s*$", self.output, re.MULTILINE)
        assert match, f"no {label!r} line in:\n{self.output}"
        return match.group(1)

    def get(self, path: str, key: str | None = None, **kwargs: Any) -> requests.Response:
        headers = {"Authorization": f"ApiKey {key}"} if key else {}
        return self.http.get(self.base + path, headers=headers, timeout=REQUEST_TIMEOUT_S, **kwargs)

    def stop(self, sig: int = signal.SIGTERM, *, close_clients: bool = True) -> tuple[int, float]:
        """Send ``sig``; the exit status and how long the process took to exit."""
        if close_clients:
            self.http.close()
        started = time.monotonic()
        self.proc.send_signal(sig)
        code = self.proc.wait(STOP_TIMEOUT_S)
        return code, time.monotonic() - started


@contextmanager
def server_process(data_dir: Path, *args: str) -> Iterator[Running]:
    """Run ``cloudsdk server start`` until its ready line; always leave no process behind."""
    port, flight_port = free_port(), free_port()
    stderr = data_dir.parent / f"server-{port}.err"
    command = [sys.executable, "-m", "cloudsdk.cli", "server", "start", "--data-dir", str(data_dir),
               "--host", "127.0.0.1", "--port", str(port), "--flight-port", str(flight_port), *args]
    with open(stderr, "w") as err:
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=err, text=True,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)
        lines.put(None)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    output = ""
    try:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while "REST https://" not in output:
            try:
                line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no ready line within {READY_TIMEOUT_S} s:\n{output}\n"
                                     f"{stderr.read_text()}") from None
            if line is None:
                proc.wait(STOP_TIMEOUT_S)
                raise AssertionError(f"the server exited ({proc.returncode}):\n{output}\n{stderr.read_text()}")
            output += line
        ready = re.search(r"^REST https://127\.0\.0\.1:(\d+)  Flight grpc\+tls://127\.0\.0\.1:(\d+)$",
                          output, re.MULTILINE)
        assert ready, output
        assert (int(ready.group(1)), int(ready.group(2))) == (port, flight_port)
        with requests.Session() as http:
            yield Running(proc, output, port, flight_port, stderr, http)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(STOP_TIMEOUT_S)
        reader.join(STOP_TIMEOUT_S)
        if proc.stdout is not None:
            proc.stdout.close()


def arrow(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue().to_pybytes())


def write_and_read_back(run: Running, key: str, project: str, ca_file: str) -> pa.Table:
    """Create a feature group over HTTPS, then read it through Flight with mutual TLS."""
    from cloudsdk.client.remote import FlightReader

    headers = {"Authorization": f"ApiKey {key}", P.HEADER_PROJECT: project}
    created = run.http.post(
        f"{run.base}/projects/{project}/featuregroups", verify=ca_file, timeout=REQUEST_TIMEOUT_S, data=arrow(ROWS),
        headers={**headers, "content-type": P.ARROW_STREAM,
                 P.HEADER_OPTIONS: P.encode_options({"name": "scores", "version": 1, "primary_key": ["id"]})},
    )
    assert created.status_code == 201, created.text
    bundle = run.http.get(f"{run.base}/projects/{project}/credentials", headers=headers, verify=ca_file,
                          timeout=REQUEST_TIMEOUT_S).json()
    assert base64.b64decode(bundle["pkcs12"])
    reader = FlightReader("127.0.0.1", run.flight_port, key, project, root_pem=Path(ca_file).read_bytes(),
                          cert_pem=bundle["certificate_pem"].encode(), key_pem=bundle["private_key_pem"].encode())
    try:
        return reader.read(P.ticket("read_group", project, name="scores", version=1))
    finally:
        reader.close()


@pytest.mark.slow
def test_dev_server_serves_https_and_flight_and_stops_on_sigterm(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with server_process(data, "--dev") as run:
        key, ca_file = run.printed("API key"), run.printed("CA")
        assert Path(ca_file) == data / "ca" / "ca.pem"
        assert f"cloudsdk.connect('127.0.0.1', 'dev', port={run.port}, api_key_value='{key}'" in run.output
        info = run.get("/info", key, verify=ca_file)
        assert info.status_code == 200
        assert info.json() == {"version": info.json()["version"], "flight_port": run.flight_port,
                               "flight_hostname": "localhost"}  # the first DNS name of its certificate
        assert run.get("/projects/dev", key, verify=ca_file).json()["featurestore"] == "dev_featurestore"
        assert run.get("/projects/dev", verify=ca_file).status_code == 401
        # plain HTTP gets no answer; a client that does not trust the store's CA refuses the server
        with pytest.raises(requests.exceptions.ConnectionError):
            requests.get(f"http://127.0.0.1:{run.port}{P.API_PREFIX}/info", timeout=REQUEST_TIMEOUT_S)
        with pytest.raises(requests.exceptions.SSLError):
            requests.get(f"{run.base}/info", timeout=REQUEST_TIMEOUT_S)
        assert write_and_read_back(run, key, "dev", ca_file).equals(ROWS)
        # the server's key is private; the API key is printed on stdout only, never logged
        assert (data / "ca" / "server-key.pem").stat().st_mode & 0o777 == 0o600
        # SIGTERM stops it, exit status 0, even while a client keeps an idle connection open
        code, took = run.stop(signal.SIGTERM, close_clients=False)
        assert code == 0 and took < STOP_TIMEOUT_S
        log = run.stderr.read_text()
        assert key.split(".", 1)[1] not in log
        assert "/api/v1/info" in log  # uvicorn's access log goes to stderr, not stdout
        assert "/api/v1/info" not in run.output


@pytest.mark.slow
def test_restart_keeps_the_store_and_sigint_stops_cleanly(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with server_process(data, "--dev") as run:
        first_key, ca_file = run.printed("API key"), run.printed("CA")
        assert write_and_read_back(run, first_key, "dev", ca_file).num_rows == 3
        assert run.stop(signal.SIGINT)[0] == 0
    with server_process(data, "--dev") as run:
        second_key = run.printed("API key")
        assert second_key != first_key and run.printed("CA") == ca_file
        for key in (first_key, second_key):  # both dev keys still work; the data is still there
            response = run.get("/projects/dev/featuregroups/scores", key, verify=ca_file)
            assert response.status_code == 200 and response.json()["version"] == 1
        assert run.stop()[0] == 0


@pytest.mark.slow
def test_given_tls_certificate_is_served(tmp_path: Path) -> None:
    own_ca = CertificateAuthority(tmp_path / "corporate-ca")
    cert, key = own_ca.issue_server_certificate(["feature-store.internal"])
    (tmp_path / "tls.pem").write_bytes(cert)
    (tmp_path / "tls-key.pem").write_bytes(key)
    data = tmp_path / "data"
    with server_process(data, "--tls-cert", str(tmp_path / "tls.pem"), "--tls-key", str(tmp_path / "tls-key.pem")) as run:
        assert "API key" not in run.output  # no --dev: no key is created or printed
        trusted = run.get("/info", verify=str(own_ca.directory / "ca.pem"))
        assert trusted.status_code == 200 and trusted.json()["flight_port"] == run.flight_port
        with pytest.raises(requests.exceptions.SSLError):
            requests.get(f"{run.base}/info", verify=str(data / "ca" / "ca.pem"), timeout=REQUEST_TIMEOUT_S)
        assert not (data / "ca" / "server.pem").exists()
        assert run.stop()[0] == 0


@pytest.mark.slow
def test_postgresql_metadata(tmp_path: Path) -> None:
    """The catalog in the local PostgreSQL (a fresh database, dropped afterwards). This test
    fails, never skips, when PostgreSQL is unreachable."""
    import psycopg

    database = f"cloudsdk_test_{secrets.token_hex(6)}"
    with psycopg.connect(PG_DSN, autocommit=True, connect_timeout=10) as admin:
        admin.execute(f'CREATE DATABASE "{database}"')
    try:
        url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{database}"
        data = tmp_path / "data"
        with server_process(data, "--dev", "--metadata-url", url) as run:
            key, ca_file = run.printed("API key"), run.printed("CA")
            assert write_and_read_back(run, key, "dev", ca_file).equals(ROWS)
            assert run.stop()[0] == 0
        assert not (data / "catalog.db").exists()
        with psycopg.connect(f"host=127.0.0.1 port=5432 user=postgres dbname={database}", connect_timeout=10) as db:
            names = [r[0] for r in db.execute("SELECT name FROM feature_groups ORDER BY name")]
            users = [r[0] for r in db.execute("SELECT name FROM users")]
            stored = [r[0] for r in db.execute("SELECT hash FROM api_keys")]
        assert names == ["scores"] and users == ["dev"]
        assert key.split(".", 1)[1] not in "".join(stored)
        with server_process(data, "--metadata-url", url) as run:  # a second start finds it all
            response = run.get("/projects/dev/featuregroups/scores", key, verify=ca_file)
            assert response.status_code == 200 and response.json()["primary_key"] == ["id"]
            assert run.stop()[0] == 0
    finally:
        with psycopg.connect(PG_DSN, autocommit=True, connect_timeout=10) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


# --- the command's errors (in-process) --------------------------------------------------------------


def test_tls_cert_without_key_is_a_clean_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["server", "start", "--data-dir", str(tmp_path / "d"), "--tls-cert", str(tmp_path / "x.pem")])
    assert code == 2
    err = capsys.readouterr().err
    assert "--tls-cert and --tls-key go together" in err and "Traceback" not in err


def test_unusable_tls_files_are_a_clean_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "cert.pem").write_text("not a certificate")
    (tmp_path / "key.pem").write_text("not a key")
    args = ["server", "start", "--data-dir", str(tmp_path / "d"), "--port", str(free_port()),
            "--flight-port", str(free_port()), "--tls-cert", str(tmp_path / "cert.pem")]
    assert main([*args, "--tls-key", str(tmp_path / "key.pem")]) == 2
    assert main([*args, "--tls-key", str(tmp_path / "missing.pem")]) == 2
    ca = CertificateAuthority(tmp_path / "ca")
    (tmp_path / "cert.pem").write_bytes(ca.issue_server_certificate(["a"])[0])
    (tmp_path / "key.pem").write_bytes(ca.issue_server_certificate(["b"])[1])  # another certificate's key
    assert main([*args, "--tls-key", str(tmp_path / "key.pem")]) == 2
    err = capsys.readouterr().err
    assert err.count("cloudsdk server start: error: cannot") == 3 and "Traceback" not in err
    assert "not the key of the certificate" in err


def test_port_in_use_is_a_clean_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        code = main(["server", "start", "--data-dir", str(tmp_path / "d"), "--port", str(port),
                     "--flight-port", str(free_port())])
    assert code == 2
    assert f"cannot listen on 127.0.0.1:{port}" in capsys.readouterr().err


def test_missing_server_extra_names_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    from cloudsdk.server.app import serve

    monkeypatch.setitem(sys.modules, "uvicorn", None)
    with pytest.raises(ImportError, match=r"cloudsdk\[server\]"):
        serve(tmp_path / "d")
    assert main(["server", "start", "--data-dir", str(tmp_path / "d")]) == 2
    assert "pip install 'cloudsdk[server]'" in capsys.readouterr().err


def test_server_package_imports_nothing_heavy() -> None:
    code = ("import sys, cloudsdk.server; "
            "bad = [m for m in ('fastapi', 'uvicorn', 'deltalake', 'duckdb') if m in sys.modules]; "
            "print(bad); sys.exit(1 if bad else 0)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_rest_listener_turns_nagle_off_on_accepted_connections() -> None:
    """asyncio sets TCP_NODELAY on an accepted socket only when the listener's proto says TCP;
    with proto 0 every keep-alive response waited ~40 ms (Nagle + delayed ACK)."""
    import asyncio

    from cloudsdk.server.app import _listen

    listener = _listen("127.0.0.1", 0)
    seen: dict[str, int] = {}

    async def main() -> None:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            sock = writer.get_extra_info("socket")
            seen["nodelay"] = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
            writer.close()

        server = await asyncio.start_server(handle, sock=listener)
        reader, writer = await asyncio.open_connection(*listener.getsockname()[:2])
        await reader.read()
        writer.close()
        server.close()
        await server.wait_closed()

    asyncio.run(main())
    assert seen["nodelay"] == 1
