"""A bounded load test of the serving path: no stale reads while a writer upserts.

One writer upserts strictly increasing values into random keys of a feature group stored
online and offline; after each insert *returns* it records the value written. Several reader
threads fetch feature vectors of random keys at the same time. A reader takes, before its
request, the last value of each key whose insert had returned (the floor), and after its answer
the last value whose insert had started (the ceiling): every value read must lie between the
two — never older than a write that finished before the read began (a stale read), never newer
than any write begun (a phantom) — and no request may fail.

It runs for a fixed time against the embedded service (SQLite, Redis, MariaDB) and against a
real ``cloudsdk server`` process on loopback (``POST /api/v1/projects/{p}/featurevectors`` over
HTTPS, and the Python client), and prints what it did: writes, reads, vectors, read latency.
"""

from __future__ import annotations

import random
import socket
import ssl
import statistics
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pytest

from cloudsdk.cli import main as cli_main
from tests.online_env import Env, P, _redis_drop, env_fixture, mysql_database_fixture  # noqa: F401  (fixtures)
from tests.remote import RemoteStore

KEYS = 200  # keys of the feature group
WRITE_KEYS = 20  # keys per insert
READ_KEYS = 25  # entries per feature-vector request
READERS = 4
EMBEDDED_S = 5.0
REMOTE_S = 8.0

Read = Callable[[list[int]], list[Any]]
Write = Callable[[list[int], int], None]


def _table(keys: list[int], value: int) -> pa.Table:
    return pa.table({"id": pa.array(keys, pa.int64()), "v": pa.array([value] * len(keys), pa.int64())})


@dataclass
class Load:
    """What happened: counts, read latencies, and every violation or error (as text)."""

    name: str
    writes: int = 0
    reads: int = 0
    vectors: int = 0
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def summary(self, seconds: float) -> str:
        lat = sorted(self.latencies) or [0.0]
        p50, p99 = statistics.median(lat) * 1e3, lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1e3
        return (f"{self.name}: {seconds:.1f} s, {self.writes} inserts ({self.writes / seconds:.1f}/s), "
                f"{self.reads} reads ({self.reads / seconds:.0f}/s, {self.vectors} vectors), "
                f"read latency p50 {p50:.2f} ms p99 {p99:.2f} ms, {len(self.errors)} errors")


def run_load(name: str, write: Write, readers: list[Read], seconds: float, seed: int = 0) -> Load:
    """Run one writer and ``readers`` for ``seconds``; see the module docstring."""
    load = Load(name)
    committed = [0] * KEYS  # per key: the value of the last insert that returned
    started = [0] * KEYS  # per key: the value of the last insert that began
    lock = threading.Lock()
    stop = threading.Event()

    def fail(text: str) -> None:
        with lock:
            if len(load.errors) < 20:
                load.errors.append(text)

    def writer() -> None:
        rng = random.Random(seed)
        step = 0
        while not stop.is_set():
            step += 1
            keys = rng.sample(range(KEYS), WRITE_KEYS)
            with lock:
                for k in keys:
                    started[k] = step
            try:
                write(keys, step)
            except Exception as exc:
                fail(f"insert {step}: {type(exc).__name__}: {exc}")
                return
            with lock:
                for k in keys:
                    committed[k] = step
                load.writes += 1

    def reader(i: int, read: Read) -> None:
        rng = random.Random(seed * 1000 + i + 1)
        while not stop.is_set():
            keys = rng.sample(range(KEYS), READ_KEYS)
            with lock:
                floor = [committed[k] for k in keys]
            t0 = time.perf_counter()
            try:
                values = read(keys)
            except Exception as exc:
                fail(f"reader {i}: {type(exc).__name__}: {exc}")
                return
            elapsed = time.perf_counter() - t0
            with lock:
                ceiling = [started[k] for k in keys]
                load.reads += 1
                load.vectors += len(keys)
                load.latencies.append(elapsed)
            for k, low, high, got in zip(keys, floor, ceiling, values, strict=True):
                if got is None or not low <= got <= high:
                    kind = "stale" if got is None or got < low else "phantom"
                    fail(f"reader {i}: {kind} read of key {k}: got {got}, expected {low}..{high}")

    threads = [threading.Thread(target=writer, name="writer")]
    threads += [threading.Thread(target=reader, args=(i, r), name=f"reader-{i}") for i, r in enumerate(readers)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    stop.wait(seconds)
    stop.set()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "a load thread did not stop"
    print("\n" + load.summary(time.monotonic() - t0))
    return load


def check(load: Load) -> None:
    assert load.errors == [], "\n".join(load.errors)
    assert load.writes >= 5, load.summary(1.0)
    assert load.reads >= 50, load.summary(1.0)


@pytest.mark.slow
def test_embedded_no_stale_reads(env: Env) -> None:
    service = env.service
    service.create_group(P, "load", 1, _table(list(range(KEYS)), 0), primary_key=["id"], online_enabled=True,
                         statistics_config={"enabled": False})

    def write(keys: list[int], value: int) -> None:
        service.insert(P, "load", 1, _table(keys, value), mode="upsert")

    def read(keys: list[int]) -> list[Any]:
        rows = service.get_feature_vectors(P, ["v"], [{"id": k} for k in keys])["rows"]
        return [r[0] for r in rows]

    load = run_load(f"embedded {env.backend}", write, [read] * READERS, EMBEDDED_S)
    check(load)
    report = service.check_online_consistency(P, "load", 1)
    assert report["consistent"] and not report["pending"], report


@pytest.fixture(params=["sqlite", "redis"])
def served(request: pytest.FixtureRequest, remote_store: RemoteStore) -> Iterator[tuple[str, str]]:
    """A fresh project on the test session's server, its online store on ``sqlite`` (the
    default) or ``redis`` (set with the CLI); yields (project, API key)."""
    project, key = remote_store.new_project()
    prefix = ""
    if request.param == "redis":
        prefix = f"tload{uuid.uuid4().hex[:10]}:"
        assert cli_main(["project", "set-online-store", project, "--url",
                         f"redis://127.0.0.1:6379/0?prefix={prefix}", "--data-dir", str(remote_store.data_dir)]) == 0
    try:
        yield project, key
    finally:
        if prefix:
            _redis_drop(prefix)


@pytest.mark.slow
def test_served_no_stale_reads(served: tuple[str, str], remote_store: RemoteStore, tmp_path: Path) -> None:
    project, key = served
    conn = remote_store.connect(tmp_path, project, key)
    clients: list[httpx.Client] = []
    try:
        fs = conn.get_feature_store()
        fg = fs.create_feature_group("load", data=_table(list(range(KEYS)), 0), primary_key=["id"],
                                     online_enabled=True, statistics=False)
        backend = fs.get_online_featurestore_connector().backend

        def write(keys: list[int], value: int) -> None:
            fg.insert(_table(keys, value), "upsert")

        url = f"https://127.0.0.1:{remote_store.port}/api/v1/projects/{project}/featurevectors"

        def http_reader() -> Read:
            # TCP_NODELAY as urllib3 (the Python client) sets it: httpx writes headers and body
            # separately, and Nagle + delayed ACK can then add ~40 ms to a request
            transport = httpx.HTTPTransport(verify=ssl.create_default_context(cafile=str(remote_store.ca_file)),
                                            socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)])
            client = httpx.Client(transport=transport, headers={"Authorization": f"ApiKey {key}"}, timeout=30)
            clients.append(client)

            def read(keys: list[int]) -> list[Any]:
                response = client.post(url, json={"features": ["v"], "entries": [{"id": k} for k in keys],
                                                  "allow_missing": False})
                if response.status_code != 200:
                    raise AssertionError(f"HTTP {response.status_code}: {response.text}")
                body = response.json()
                assert body["features"] == ["v"] and body["missing"] == []
                return [r[0] for r in body["rows"]]

            return read

        reader_conn = remote_store.connect(tmp_path, project, key)
        try:
            reader_fs = reader_conn.get_feature_store()

            def client_read(keys: list[int]) -> list[Any]:  # the Python client, on its own connection
                return [r[0] for r in reader_fs.get_feature_vectors(["v"], [{"id": k} for k in keys])]

            readers = [http_reader() for _ in range(READERS - 1)] + [client_read]
            load = run_load(f"served {backend}", write, readers, REMOTE_S)
        finally:
            reader_conn.close()
        check(load)
        report = fg.check_online_consistency()
        assert report["consistent"] and not report["pending"], report
    finally:
        for client in clients:
            client.close()
        conn.close()


def test_the_checker_catches_stale_and_phantom_reads() -> None:
    """The load harness itself: a reader that lags one write behind, or runs ahead, is caught."""
    values = [0] * KEYS
    history: list[list[int]] = [[0] * KEYS]  # the values after each write
    guard = threading.Lock()

    def write(keys: list[int], value: int) -> None:
        time.sleep(0.002)  # the write takes time; then its values land
        with guard:
            for k in keys:
                values[k] = value
            history.append(list(values))

    def stale(keys: list[int]) -> list[Any]:  # as the store was before the last write
        with guard:
            before = history[-2] if len(history) > 1 else history[0]
            return [before[k] for k in keys]

    def phantom(keys: list[int]) -> list[Any]:
        with guard:
            return [values[k] + 1 for k in keys]

    def good(keys: list[int]) -> list[Any]:
        with guard:
            return [values[k] for k in keys]

    def fresh() -> Write:
        values[:] = [0] * KEYS
        history[:] = [[0] * KEYS]
        return write

    assert any("stale read" in e for e in run_load("lagging", fresh(), [stale], 0.5).errors)
    assert any("phantom read" in e for e in run_load("ahead", fresh(), [phantom], 0.5).errors)
    check(run_load("in step", fresh(), [good, good], 0.5))
