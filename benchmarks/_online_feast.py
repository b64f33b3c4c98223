"""Helpers of ``bench_online.py`` that both Pythons run: the HTTP client and Feast's side.

Standard library only at import time, so that this module loads in cloudsdk's environment
(the client processes) and in Feast's own virtual environment (Feast pins pandas < 3), where
``bench_online.py`` runs it as a script::

    python _online_feast.py setup ROOT STORE PROJECT N_GROUPS N_FEATURES
    python _online_feast.py inproc ROOT STORE IDS_JSON COUNT_ONE COUNT_MANY CAP_S
    python _online_feast.py teardown ROOT STORE
    python _online_feast.py floor PORT N_FEATURES BATCH [CERT KEY]

``STORE`` is ``sqlite`` or ``redis`` (127.0.0.1:6379, db 0; the keys carry the Feast project's
unique name, and ``teardown`` deletes them). Each of these prints one JSON line last.
``floor`` (run in cloudsdk's environment) serves the HTTP floor: a FastAPI app on uvicorn that
answers ``POST /one`` and ``POST /many`` with a fixed JSON of 1 and ``BATCH`` rows of
``N_FEATURES`` floats.

The client (:class:`KeepAliveClient`, :func:`client_worker`) is a raw HTTP/1.1 loop over one
keep-alive socket (plain or TLS) with pre-built requests: the same code for every server, so
that its own cost (a few tens of microseconds) is the same in every figure.
"""

from __future__ import annotations

import json
import socket
import ssl
import sys
import time
from array import array
from pathlib import Path
from typing import Any

# ----------------------------------------------------------------------------- HTTP client


class HTTPStatusError(Exception):
    """The server answered with a status other than 200."""


class KeepAliveClient:
    """One keep-alive HTTP/1.1 connection (TCP_NODELAY; TLS when ``ca_file`` is given)."""

    def __init__(self, host: str, port: int, ca_file: str | None = None, server_hostname: str = "localhost") -> None:
        self.host, self.port = host, port
        self.ctx: ssl.SSLContext | None = None
        self.server_hostname = server_hostname
        if ca_file is not None:
            self.ctx = ssl.create_default_context(cafile=ca_file)
        self.sock: socket.socket | None = None
        self.buf = b""
        self.connects = 0

    def connect(self) -> None:
        """Open the connection (closing the old one)."""
        self.close()
        sock = socket.create_connection((self.host, self.port), timeout=60)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.ctx is not None:
            sock = self.ctx.wrap_socket(sock, server_hostname=self.server_hostname)
        self.sock, self.buf = sock, b""
        self.connects += 1

    def close(self) -> None:
        """Close the connection, if open."""
        if self.sock is not None:
            try:
                self.sock.close()
            finally:
                self.sock = None

    def request(self, raw: bytes) -> bytes:
        """Send one pre-built request; the response body. Reconnects once when the server has
        closed the kept-alive connection (the reconnect is part of that request's time)."""
        for attempt in (0, 1):
            if self.sock is None:
                self.connect()
            try:
                assert self.sock is not None
                self.sock.sendall(raw)
                return self._response()
            except (ConnectionError, ssl.SSLError, EOFError):
                self.close()
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def _recv(self) -> bytes:
        assert self.sock is not None
        chunk = self.sock.recv(262144)
        if not chunk:
            raise EOFError("the server closed the connection")
        return chunk

    def _response(self) -> bytes:
        buf = self.buf
        end = buf.find(b"\r\n\r\n")
        while end < 0:
            buf += self._recv()
            end = buf.find(b"\r\n\r\n")
        head, rest = buf[:end].decode("latin-1"), buf[end + 4:]
        lines = head.split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if "content-length" in headers:
            n = int(headers["content-length"])
            while len(rest) < n:
                rest += self._recv()
            body, self.buf = rest[:n], rest[n:]
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            body, self.buf = self._chunked(rest)
        else:  # read to the end
            self.buf = b""
            parts = [rest]
            try:
                while True:
                    parts.append(self._recv())
            except EOFError:
                pass
            body = b"".join(parts)
            headers["connection"] = "close"
        if headers.get("connection", "").lower() == "close":
            self.close()
        if status != 200:
            raise HTTPStatusError(f"HTTP {status}: {body[:300]!r}")
        return body

    def _chunked(self, rest: bytes) -> tuple[bytes, bytes]:
        parts = []
        while True:
            end = rest.find(b"\r\n")
            while end < 0:
                rest += self._recv()
                end = rest.find(b"\r\n")
            size = int(rest[:end].split(b";")[0], 16)
            while len(rest) < end + 2 + size + 2:
                rest += self._recv()
            parts.append(rest[end + 2:end + 2 + size])
            rest = rest[end + 2 + size + 2:]
            if size == 0:
                return b"".join(parts), rest


def build_request(host: str, port: int, path: str, body: bytes, headers: dict[str, str] | None = None) -> bytes:
    """A complete ``POST`` request (JSON body, keep-alive)."""
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}:{port}", "Content-Type: application/json",
             f"Content-Length: {len(body)}"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def client_worker(conn: Any) -> None:
    """A client process: serve tasks from the parent over the pipe ``conn`` until ``None``.

    A task is ``{"host", "port", "ca_file", "requests": [bytes], "offset", "warmup", "count",
    "cap_s"}``: connect, send ``warmup`` requests, answer ``"ready"``, wait for ``"go"``, then
    send up to ``count`` requests (cycling through ``requests`` from ``offset``) until
    ``cap_s`` seconds have passed; answer ``{"lat_ns": bytes of array('q'), "reconnects",
    "error"}``.
    """
    while True:
        task = conn.recv()
        if task is None:
            return
        client = KeepAliveClient(task["host"], task["port"], task["ca_file"])
        reqs, i, error = task["requests"], task["offset"], None
        lat = array("q")
        try:
            for _ in range(task["warmup"]):
                client.request(reqs[i % len(reqs)])
                i += 1
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
        conn.send("ready")
        conn.recv()  # "go"
        if error is None:
            connects = client.connects
            deadline = time.perf_counter_ns() + int(task["cap_s"] * 1e9)
            clock = time.perf_counter_ns
            try:
                for _ in range(task["count"]):
                    raw = reqs[i % len(reqs)]
                    i += 1
                    t0 = clock()
                    client.request(raw)
                    lat.append(clock() - t0)
                    if t0 > deadline:
                        break
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}"
            reconnects = client.connects - connects
        else:
            reconnects = 0
        client.close()
        conn.send({"lat_ns": lat.tobytes(), "reconnects": reconnects, "error": error})


# ----------------------------------------------------------------------------- Feast


def _repo(root: Path, store: str) -> Path:
    return root / f"feast_{store}"


def _yaml(repo: Path, store: str, project: str) -> str:
    online = (f"  type: sqlite\n  path: {repo}/online.db\n" if store == "sqlite"
              else '  type: redis\n  connection_string: "127.0.0.1:6379,db=0"\n')
    return (f"project: {project}\nregistry: {repo}/registry.db\nprovider: local\n"
            "offline_store:\n  type: file\n"
            f"online_store:\n{online}"
            "entity_key_serialization_version: 3\n")


def _features(root: Path) -> list[str]:
    meta = json.loads((root / "meta.json").read_text())
    return [f"g{g}:g{g}_f{i}" for g in range(meta["n_groups"]) for i in range(meta["n_features"])]


def feast_setup(root: Path, store: str, project: str, n_groups: int, n_features: int) -> dict[str, Any]:
    """Write the feature repository, ``apply`` it and ``materialize`` the Parquet files."""
    import datetime as dt

    from feast import Entity, FeatureStore, FeatureView, Field, FileSource, ValueType
    from feast.types import Float64

    repo = _repo(root, store)
    repo.mkdir(exist_ok=True)
    (repo / "feature_store.yaml").write_text(_yaml(repo, store, project))
    entity = Entity(name="entity_id", join_keys=["entity_id"], value_type=ValueType.INT64)
    views = [FeatureView(name=f"g{g}", entities=[entity], ttl=dt.timedelta(days=3650), online=True,
                         schema=[Field(name=f"g{g}_f{i}", dtype=Float64) for i in range(n_features)],
                         source=FileSource(name=f"g{g}_src", path=str(root / f"g{g}.parquet"),
                                           timestamp_field="event_timestamp"))
             for g in range(n_groups)]
    fs = FeatureStore(repo_path=str(repo))
    t0 = time.perf_counter()
    fs.apply([entity, *views])
    t1 = time.perf_counter()
    meta = json.loads((root / "meta.json").read_text())
    ts = dt.datetime.fromisoformat(meta["event_timestamp"])
    fs.materialize(start_date=ts - dt.timedelta(days=1), end_date=ts + dt.timedelta(days=1))
    t2 = time.perf_counter()
    return {"apply_s": t1 - t0, "materialize_s": t2 - t1, "repo": str(repo)}


def _percentiles(lat: list[float]) -> dict[str, float]:
    s = sorted(lat)
    n = len(s)
    return {"n": n, "p50": s[min(n - 1, int(0.50 * n))], "p99": s[min(n - 1, int(0.99 * n))]}


def feast_inproc(root: Path, store: str, ids_file: Path, count_one: int, count_many: int,
                 cap_s: float) -> dict[str, Any]:
    """Time ``get_online_features(...).to_dict()`` for 1 entity and for a batch of entities."""
    from feast import FeatureStore

    fs = FeatureStore(repo_path=str(_repo(root, store)))
    features = _features(root)
    ids = json.loads(ids_file.read_text())
    out: dict[str, Any] = {}
    for cell, batches, count in (("one", [[i] for i in ids["one"]], count_one), ("many", ids["many"], count_many)):
        for b in batches[:20]:  # warm-up
            fs.get_online_features(features=features, entity_rows=[{"entity_id": i} for i in b]).to_dict()
        lat = []
        deadline = time.perf_counter() + cap_s
        for k in range(count):
            rows = [{"entity_id": i} for i in batches[k % len(batches)]]
            t0 = time.perf_counter()
            fs.get_online_features(features=features, entity_rows=rows).to_dict()
            lat.append(time.perf_counter() - t0)
            if t0 > deadline:
                break
        out[cell] = _percentiles(lat)
    sample = fs.get_online_features(features=features, entity_rows=[{"entity_id": i} for i in ids["check"]]).to_dict()
    out["check"] = {k: v for k, v in sample.items()}
    return out


def feast_teardown(root: Path, store: str) -> dict[str, Any]:
    """Delete what the store holds (the Redis keys of this project; the SQLite file goes with
    the temporary directory)."""
    from feast import FeatureStore

    fs = FeatureStore(repo_path=str(_repo(root, store)))
    fs.teardown()
    return {"ok": True}


# ----------------------------------------------------------------------------- the HTTP floor


def floor(port: int, n_features: int, batch: int, cert: str | None, key: str | None) -> None:
    """Serve the fixed answers until SIGTERM (uvicorn's defaults, like ``cloudsdk server``'s)."""
    import random

    import uvicorn
    from fastapi import FastAPI
    from fastapi.responses import Response

    rnd = random.Random(1)
    names = [f"f{i}" for i in range(n_features)]

    def fixed(n: int) -> bytes:
        rows = [[rnd.random() for _ in names] for _ in range(n)]
        return json.dumps({"features": names, "rows": rows, "missing": []}).encode()

    one, many = fixed(1), fixed(batch)
    app = FastAPI()

    # no parameters (the body is not parsed) and no response model: the least FastAPI does
    @app.post("/one")
    async def answer_one() -> Any:
        return Response(one, media_type="application/json")

    @app.post("/many")
    async def answer_many() -> Any:
        return Response(many, media_type="application/json")

    uvicorn.run(app, host="127.0.0.1", port=port, ssl_certfile=cert, ssl_keyfile=key)


def main(argv: list[str]) -> int:
    """The script's commands (see the module docstring)."""
    if argv[0] == "floor":
        floor(int(argv[1]), int(argv[2]), int(argv[3]), *(argv[4:6] if len(argv) > 5 else (None, None)))
        return 0
    cmd, root, store = argv[0], Path(argv[1]), argv[2]
    try:
        if cmd == "setup":
            result = feast_setup(root, store, argv[3], int(argv[4]), int(argv[5]))
        elif cmd == "inproc":
            result = feast_inproc(root, store, Path(argv[3]), int(argv[4]), int(argv[5]), float(argv[6]))
        elif cmd == "teardown":
            result = feast_teardown(root, store)
        else:
            raise SystemExit(f"unknown command {cmd!r}")
    except Exception as exc:
        print(json.dumps({"error": f"{type(exc).__name__}: {exc}"}))
        raise
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
