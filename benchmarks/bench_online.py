"""Benchmark: online feature lookups, cloudsdk's REST route and embedded lookup vs Feast's.

The same data goes into both systems: 100,000 int64 entity keys with 15 float64 features in
3 feature groups (``--large`` adds 1,000,000 entities x 50 features in 5 groups), generated
with a seeded numpy and written once as Parquet files in a temporary directory. Then, in one
run on this machine:

* cloudsdk: the groups are created online-enabled (``create_feature_group(name, data=...,
  primary_key="entity_id", online_enabled=True)``; the default SQLite online store, and with
  ``--cloudsdk-redis`` also a project whose online store is Redis) in the data directory of a
  real ``cloudsdk server start`` process on loopback (HTTPS, the store's CA). REST lookup =
  ``POST /api/v1/projects/{p}/featurevectors``; embedded = ``fs.get_feature_vector(s)``.
* Feast (``--feast-python``: Feast 0.67 in its own virtual environment, since it pins
  pandas < 3): one feature view per group over the Parquet files, ``apply`` + ``materialize``
  into its SQLite online store and into Redis (127.0.0.1:6379, keys under a unique project
  name, deleted at the end); ``feast serve`` (gunicorn + uvicorn worker, 1 worker, plain HTTP,
  ``--max-requests 0``: by default the worker is recycled every ~1,000 requests, mid-cell);
  embedded = ``get_online_features(...).to_dict()``.
* the HTTP floor: a FastAPI app on uvicorn in this environment (the stack of cloudsdk's
  server) returning a fixed JSON of the same shape, plain HTTP and HTTPS (cloudsdk's server
  certificate).

Every server is up at once. Each cell (1 or 100 entities per request, 1 or 4 concurrent
clients) runs against every system back to back, in ``--repeat`` interleaved rounds (default
3, samples pooled), so that noise from other jobs hits all systems alike. The client is the
same code for every system: separate processes (multiprocessing), one keep-alive connection
each over loopback, pre-built requests, a warm-up, then a loop bounded by a request count and
a time cap. Entity ids are seeded and the same for every system; each system's answer is
checked once against the generated values. Prints p50/p99 per cell, the ratio Feast p99 /
cloudsdk p99 and the issue's targets. Benchmarks report, they never gate: exit 0 unless
something crashed.

Run: ``python benchmarks/bench_online.py [--feast-python /tmp/feast-venv/bin/python] [--quick]
[--large] [--cloudsdk-redis] [--repeat K] [--cap S]`` (about 6 minutes on 2 cores with Feast).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _common import _print_rows
from _online_feast import HTTPStatusError, KeepAliveClient, build_request, client_worker

HELPER = Path(__file__).resolve().parent / "_online_feast.py"
SEED, IDS_SEED = 42, 7
SMALL, LARGE = (100_000, 3, 5), (1_000_000, 5, 10)  # (entities, groups, features per group)
BATCH = 100
CELLS = [(1, 1), (1, 4), (BATCH, 1), (BATCH, 4)]  # (entities per request, concurrent clients)
# The Feast 0.67 figures on this machine type (SQLite, 15 features, 1 worker), ms.
REFERENCE = {(1, 1): "p50 1.1-1.4, p99 2.0-2.5", (1, 4): "p99 13-16", (BATCH, 1): "p50 20, p99 34",
             (BATCH, 4): "p99 ~250"}
ANCHORS = ("Published anchors (not measured here): Hopsworks RonDB p50 2 / p99 3 ms (1 row), p99 21 ms "
           "(100 rows); Feast precomputed features p99 1.70 ms. The issue's HTTP floor on this machine "
           "type: p99 0.53 ms (1 client), 1.4 ms (4 clients).")


# ----------------------------------------------------------------------------- results


@dataclass
class Stats:
    """Latencies of one cell against one system (seconds); ``fixed`` = (p50, p99) where only
    the quantiles are known (the Feast helper's answer)."""

    lat: list[float] = field(default_factory=list)
    wall: float = 0.0
    reconnects: int = 0
    error: str | None = None
    fixed: tuple[float, float] | None = None

    @property
    def ok(self) -> bool:
        return bool(self.lat) or self.fixed is not None

    def q(self, p: float) -> float:
        """The ``p`` quantile (nearest rank); NaN without samples."""
        if self.fixed is not None:
            return self.fixed[0] if p == 0.5 else self.fixed[1]
        if not self.lat:
            return float("nan")
        s = sorted(self.lat)
        return s[min(len(s) - 1, max(0, math.ceil(p * len(s)) - 1))]

    @property
    def p50(self) -> float:
        return self.q(0.50)

    @property
    def p99(self) -> float:
        return self.q(0.99)

    def merge(self, other: Stats) -> None:
        """Pool another round's samples into this one."""
        self.lat += other.lat
        self.wall += other.wall
        self.reconnects += other.reconnects
        self.error = self.error or other.error

    def cell(self, unit: float = 1e3, digits: int = 2) -> str:
        """``p50 / p99`` in ``unit`` (ms by default)."""
        return f"{self.p50 * unit:.{digits}f} / {self.p99 * unit:.{digits}f}" if self.ok else "error"


@dataclass
class Target:
    """An HTTP lookup endpoint and how to ask it for a list of entity ids."""

    name: str
    port: int
    ca_file: str | None
    path: Callable[[int], str]  # entities per request -> path
    body: Callable[[Sequence[int]], bytes]
    headers: dict[str, str] = field(default_factory=dict)
    decode: Callable[[bytes, Sequence[int]], dict[int, dict[str, float]]] | None = None  # -> {id: {feature: value}}
    unavailable: str | None = None

    def request(self, ids: Sequence[int]) -> bytes:
        return build_request("127.0.0.1", self.port, self.path(len(ids)), self.body(ids), self.headers)

    def client(self) -> KeepAliveClient:
        return KeepAliveClient("127.0.0.1", self.port, self.ca_file)


# ----------------------------------------------------------------------------- clients and processes


class ClientPool:
    """Client processes (spawned once), each running :func:`client_worker` over a pipe."""

    def __init__(self, n: int) -> None:
        import multiprocessing

        ctx = multiprocessing.get_context("spawn")
        self.pipes: list[Any] = []
        self.procs: list[Any] = []
        for _ in range(n):
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=client_worker, args=(child,), daemon=True)
            proc.start()
            self.pipes.append(parent)
            self.procs.append(proc)

    def run(self, target: Target, requests: list[bytes], clients: int, warmup: int, count: int,
            cap_s: float) -> Stats:
        """``clients`` processes at once, ``count`` requests in all (after ``warmup`` each)."""
        pipes = self.pipes[:clients]
        for k, pipe in enumerate(pipes):
            pipe.send({"host": "127.0.0.1", "port": target.port, "ca_file": target.ca_file,
                       "requests": requests, "offset": k * len(requests) // clients, "warmup": warmup,
                       "count": -(-count // clients), "cap_s": cap_s})
        for pipe in pipes:
            pipe.recv()  # "ready": connected and warmed up
        start = time.perf_counter()
        for pipe in pipes:
            pipe.send("go")
        answers = [pipe.recv() for pipe in pipes]
        stats = Stats(wall=time.perf_counter() - start)
        for a in answers:
            lat = array("q")
            lat.frombytes(a["lat_ns"])
            stats.lat += [x / 1e9 for x in lat]
            stats.reconnects += a["reconnects"]
            stats.error = stats.error or a["error"]
        return stats

    def close(self) -> None:
        for pipe in self.pipes:
            with contextlib.suppress(OSError):
                pipe.send(None)
        for proc in self.procs:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.terminate()


def free_port() -> int:
    """A TCP port that was free a moment ago on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_process(cmd: list[str], log_path: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """Start ``cmd`` in its own session, output to ``log_path`` (a file: nothing to drain)."""
    with open(log_path, "wb") as log:
        return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM (to its process group when it leads one: gunicorn's worker goes too), SIGKILL
    after 15 s."""
    def signal_it(sig: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            if os.getpgid(proc.pid) == proc.pid:
                os.killpg(proc.pid, sig)
            else:
                os.kill(proc.pid, sig)

    if proc.poll() is None:
        signal_it(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            signal_it(signal.SIGKILL)
            proc.wait(timeout=15)


def wait_http(target: Target, ids: Sequence[int], proc: subprocess.Popen[bytes], log: Path,
              timeout_s: float = 180.0) -> None:
    """Poll ``target`` with a real lookup until it answers (HTTPStatusError if not with 200)."""
    deadline = time.monotonic() + timeout_s
    raw = target.request(ids)
    while True:
        client = target.client()
        try:
            client.request(raw)
            return
        except (OSError, EOFError):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{target.name} did not start; its log ends: "
                                   f"{log.read_text(errors='replace')[-1500:]!r}") from None
            time.sleep(0.3)
        finally:
            client.close()


def run_helper(python: str, *args: str | Path | int | float, timeout_s: float = 3600) -> dict[str, Any]:
    """Run the Feast helper with ``python`` (Feast's interpreter); its last JSON line."""
    proc = subprocess.run([python, str(HELPER), *map(str, args)], capture_output=True, text=True, check=False,
                          timeout=timeout_s, env={**os.environ, "FEAST_USAGE": "False"})
    try:
        result = dict(json.loads(proc.stdout.strip().splitlines()[-1]))
    except (IndexError, json.JSONDecodeError):
        err = proc.stderr.strip().splitlines()
        result = {"error": err[-1] if err else f"exit {proc.returncode}, no output"}
    if "error" in result:
        sys.stderr.write(proc.stderr[-3000:])
    return result


# ----------------------------------------------------------------------------- data


@dataclass
class Dataset:
    """The generated data (Parquet files in ``root``) and the entity ids to look up."""

    root: Path
    entities: int
    groups: int
    per_group: int
    one: list[int]
    many: list[list[int]]
    check: list[int]
    expected: dict[int, dict[str, float]]

    @property
    def features(self) -> list[str]:
        return [f"g{g}_f{i}" for g in range(self.groups) for i in range(self.per_group)]


def make_dataset(root: Path, spec: tuple[int, int, int], n_one: int, n_many: int) -> Dataset:
    """Seeded data for both systems, written as ``g<G>.parquet`` (entity_id, event_timestamp,
    features), and the ids to look up (also in ``ids.json`` for the Feast helper)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    entities, groups, per_group = spec
    root.mkdir(parents=True)
    rng = np.random.default_rng(SEED)
    ids = rng.permutation(entities).astype(np.int64)
    ts = pa.array(np.full(entities, np.datetime64("2026-01-01T00:00:00", "us")), pa.timestamp("us", tz="UTC"))
    pick = np.random.default_rng(IDS_SEED)
    one = pick.integers(0, entities, n_one).tolist()
    many = pick.integers(0, entities, (n_many, BATCH)).tolist()
    check = sorted({0, entities - 1, *pick.integers(0, entities, 3).tolist()})
    row_of = np.empty(entities, np.int64)
    row_of[ids] = np.arange(entities)
    expected: dict[int, dict[str, float]] = {e: {} for e in check}
    for g in range(groups):
        cols: dict[str, Any] = {"entity_id": ids, "event_timestamp": ts}
        for i in range(per_group):
            cols[f"g{g}_f{i}"] = values = rng.random(entities)
            for e in check:
                expected[e][f"g{g}_f{i}"] = float(values[row_of[e]])
        pq.write_table(pa.table(cols), root / f"g{g}.parquet")
    (root / "meta.json").write_text(json.dumps({"n_groups": groups, "n_features": per_group,
                                                "event_timestamp": "2026-01-01T00:00:00+00:00"}))
    (root / "ids.json").write_text(json.dumps({"one": one, "many": many, "check": check}))
    return Dataset(root, entities, groups, per_group, one, many, check, expected)


def compare(got: dict[int, dict[str, float]], data: Dataset) -> str:
    """``"same values ..."`` when ``got`` holds exactly the generated values of the check ids."""
    for e, want in data.expected.items():
        have = got.get(e, {})
        bad = [f for f in want if have.get(f) != want[f]]
        if bad:
            return f"MISMATCH: entity {e}, {bad[0]}: {have.get(bad[0])!r} != {want[bad[0]]!r}"
    return f"same values ({len(data.expected)} entities x {len(data.features)} features)"


def check_answer(target: Target, data: Dataset) -> str:
    """Ask ``target`` for the check ids once and compare with the generated values."""
    if target.decode is None:
        return "not checked (a fixed answer)"
    client = target.client()
    try:
        return compare(target.decode(client.request(target.request(data.check)), data.check), data)
    finally:
        client.close()


def decode_cloudsdk(body: bytes, ids: Sequence[int]) -> dict[int, dict[str, float]]:
    doc = json.loads(body)
    return {e: dict(zip(doc["features"], row, strict=True)) for e, row in zip(ids, doc["rows"], strict=True)}


def decode_feast(body: bytes, ids: Sequence[int]) -> dict[int, dict[str, float]]:
    doc = json.loads(body)
    cols = {n: r["values"] for n, r in zip(doc["metadata"]["feature_names"], doc["results"], strict=True)}
    return {e: {n: v[k] for n, v in cols.items() if n != "entity_id"} for k, e in enumerate(cols["entity_id"])}


# ----------------------------------------------------------------------------- cloudsdk


@dataclass
class CloudSide:
    """The cloudsdk server process, its projects and their embedded feature stores."""

    proc: subprocess.Popen[bytes]
    data_dir: Path
    port: int
    projects: dict[str, tuple[str, str]] = field(default_factory=dict)  # label -> (project, API key)
    stores: dict[str, Any] = field(default_factory=dict)  # label -> embedded FeatureStore

    @property
    def ca_file(self) -> str:
        return str(self.data_dir / "ca" / "ca.pem")

    @property
    def cert(self) -> tuple[str, str]:
        return str(self.data_dir / "ca" / "server.pem"), str(self.data_dir / "ca" / "server-key.pem")


def start_cloudsdk(tmp: Path, stack: contextlib.ExitStack) -> CloudSide:
    """``cloudsdk server start`` on 127.0.0.1 (free ports) over a fresh data directory."""
    from bench_remote_read import start_server

    data_dir = tmp / "cloudsdk-data"
    data_dir.mkdir()
    proc, port = start_server(data_dir, tmp / "cloudsdk-server.log")
    stack.callback(stop_process, proc)
    return CloudSide(proc, data_dir, port)


def load_cloudsdk(side: CloudSide, data: Dataset, label: str, online_url: str | None,
                  stack: contextlib.ExitStack) -> float:
    """A new project (data owner + API key) holding the data's groups, online-enabled, in the
    online store at ``online_url`` (None: the default SQLite file). Returns the seconds taken."""
    import pyarrow.parquet as pq
    from bench_remote_read import new_project

    import cloudsdk
    from cloudsdk.store import FeatureStoreService

    project, key = new_project(side.data_dir)
    if online_url is not None:
        service = FeatureStoreService(side.data_dir)
        try:
            service.set_online_store(project, online_url)
        finally:
            service.close()
    conn = cloudsdk.connect(path=side.data_dir, project=project)
    stack.callback(conn.close)
    fs = conn.get_feature_store()
    start = time.perf_counter()
    for g in range(data.groups):
        table = pq.read_table(data.root / f"g{g}.parquet").drop_columns(["event_timestamp"])
        fs.create_feature_group(f"g{g}", data=table, primary_key="entity_id", online_enabled=True, statistics=False)
    side.projects[label] = (project, key)
    side.stores[label] = fs
    return time.perf_counter() - start


def cloudsdk_target(side: CloudSide, label: str, data: Dataset) -> Target:
    from cloudsdk._protocol import API_PREFIX

    project, key = side.projects[label]
    names = data.features

    def body(ids: Sequence[int]) -> bytes:
        return json.dumps({"features": names, "entries": [{"entity_id": i} for i in ids],
                           "allow_missing": True}).encode()

    return Target(f"cloudsdk {label}", side.port, side.ca_file,
                  lambda _n: f"{API_PREFIX}/projects/{project}/featurevectors", body,
                  {"Authorization": f"ApiKey {key}", "X-Cloudsdk-Project": project}, decode_cloudsdk)


def cloudsdk_embedded(fs: Any, data: Dataset, plan: Plan) -> dict[str, Stats]:
    """``fs.get_feature_vector`` (1 entity) and ``fs.get_feature_vectors`` (a batch), timed in
    this process (with the servers idle)."""
    names = data.features
    one = [lambda i=i: fs.get_feature_vector(names, entry={"entity_id": i}, allow_missing=True) for i in data.one]
    many = [lambda b=b: fs.get_feature_vectors(names, entries=[{"entity_id": i} for i in b], allow_missing=True)
            for b in data.many]
    out: dict[str, Stats] = {}
    for cell, fns, count in (("one", one, plan.count_one), ("many", many, plan.count_many // 2)):
        try:
            for fn in fns[:50]:
                fn()
        except Exception as exc:
            out[cell] = Stats(error=f"{type(exc).__name__}: {exc}")
            continue
        lat = []
        clock = time.perf_counter
        deadline = clock() + plan.cap_s
        for k in range(count):
            fn = fns[k % len(fns)]
            t0 = clock()
            fn()
            lat.append(clock() - t0)
            if t0 > deadline:
                break
        out[cell] = Stats(lat=lat)
    return out


def embedded_check(fs: Any, data: Dataset) -> str:
    try:
        rows = fs.get_feature_vectors(data.features, entries=[{"entity_id": i} for i in data.check])
    except Exception as exc:
        return f"error: {type(exc).__name__}: {exc}"
    return compare({e: dict(zip(data.features, r, strict=True)) for e, r in zip(data.check, rows, strict=True)}, data)


def _drop_redis_prefix(prefix: str) -> None:
    """Delete the keys cloudsdk's Redis online store wrote under ``prefix``."""
    with contextlib.suppress(Exception):
        import redis

        client = redis.Redis(host="127.0.0.1", port=6379, db=0)
        keys = list(client.scan_iter(match=f"{prefix}*", count=10_000))
        for i in range(0, len(keys), 10_000):
            client.delete(*keys[i:i + 10_000])
        client.close()


# ----------------------------------------------------------------------------- Feast and the floor


def start_feast(python: str, data: Dataset, store: str, project: str, stack: contextlib.ExitStack,
                notes: list[str]) -> Target:
    """``apply`` + ``materialize`` into ``store``, then ``feast serve`` (1 worker, plain HTTP)."""
    names = [f"g{g}:g{g}_f{i}" for g in range(data.groups) for i in range(data.per_group)]
    port = free_port()
    target = Target(f"feast {store}", port, None, lambda _n: "/get-online-features",
                    lambda ids: json.dumps({"features": names, "entities": {"entity_id": list(ids)}}).encode(),
                    decode=decode_feast)
    setup = run_helper(python, "setup", data.root, store, project, data.groups, data.per_group)
    if store == "redis":
        stack.callback(run_helper, python, "teardown", data.root, store)
    if "error" in setup:
        target.unavailable = f"setup failed: {setup['error']}"
        return target
    notes.append(f"feast {store}: apply {setup['apply_s']:.1f} s, materialize {setup['materialize_s']:.1f} s")
    repo = Path(setup["repo"])
    cmd = [str(Path(python).with_name("feast")), "-c", str(repo), "serve", "-h", "127.0.0.1", "-p", str(port),
           "-w", "1", "--max-requests", "0"]
    log = data.root / f"feast-serve-{store}.log"
    # HOME: gunicorn keeps a control socket in ~/.gunicorn, one per server
    proc = start_process(cmd, log, env={**os.environ, "HOME": str(repo), "FEAST_USAGE": "False"})
    stack.callback(stop_process, proc)
    try:
        wait_http(target, data.check, proc, log)
    except (RuntimeError, HTTPStatusError) as exc:
        target.unavailable = str(exc)
    return target


def floor_targets(tmp: Path, data: Dataset, side: CloudSide, stack: contextlib.ExitStack) -> list[Target]:
    """The fixed-JSON FastAPI app, plain HTTP and HTTPS (cloudsdk's server certificate)."""
    out = []
    for tls in (False, True):
        port = free_port()
        cmd = [sys.executable, str(HELPER), "floor", str(port), str(len(data.features)), str(BATCH)]
        cmd += list(side.cert) if tls else []
        name = f"floor {'https' if tls else 'http'}"
        log = tmp / f"{name.replace(' ', '-')}.log"
        proc = start_process(cmd, log)
        stack.callback(stop_process, proc)
        target = Target(name, port, side.ca_file if tls else None, lambda k: "/one" if k == 1 else "/many",
                        lambda ids: json.dumps({"features": data.features,
                                                "entries": [{"entity_id": i} for i in ids]}).encode())
        try:
            wait_http(target, [0], proc, log)
        except (RuntimeError, HTTPStatusError) as exc:
            target.unavailable = str(exc)
        out.append(target)
    return out


# ----------------------------------------------------------------------------- the run


@dataclass
class Plan:
    """Requests per cell (all rounds and clients together), warm-up per client and round, the
    time cap per cell (all rounds together) and the number of interleaved rounds."""

    count_one: int
    count_many: int
    warmup_one: int
    warmup_many: int
    cap_s: float
    rounds: int


def http_cells(pool: ClientPool, targets: list[Target], data: Dataset, plan: Plan) -> dict[tuple[str, int, int], Stats]:
    """Every cell against every target, back to back, in ``plan.rounds`` rounds (pooled)."""
    reqs = {t.name: {1: [t.request([i]) for i in data.one], BATCH: [t.request(b) for b in data.many]}
            for t in targets}
    results: dict[tuple[str, int, int], Stats] = {}
    for _ in range(plan.rounds):
        for n, clients in CELLS:
            count, warmup = (plan.count_one, plan.warmup_one) if n == 1 else (plan.count_many, plan.warmup_many)
            for t in targets:
                stats = pool.run(t, reqs[t.name][n], clients, warmup, count // plan.rounds, plan.cap_s / plan.rounds)
                results.setdefault((t.name, n, clients), Stats()).merge(stats)
    return results


def _ratio(feast: Stats | None, ours: Stats | None) -> str:
    if feast is None or ours is None or not feast.ok or not ours.ok:
        return "-"
    return f"{feast.p99 / ours.p99:.1f}x"


def _pairs(names: list[str]) -> list[tuple[str, str]]:
    """(Feast system, cloudsdk system) pairs for the ratio columns: every Feast store against
    cloudsdk's default (SQLite), and Redis against Redis where both ran."""
    ours = [n for n in names if n.startswith("cloudsdk")]
    pairs = [(f, ours[0]) for f in names if f.startswith("feast")] if ours else []
    if "cloudsdk redis" in ours and "feast redis" in names:
        pairs.append(("feast redis", "cloudsdk redis"))
    return pairs


def print_http(results: dict[tuple[str, int, int], Stats], names: list[str]) -> None:
    """p50 / p99 ms per system and cell, Feast p99 / cloudsdk p99, the issue's target."""
    pairs = _pairs(names)
    print("HTTP lookups, p50 / p99 ms (ratio = Feast p99 / cloudsdk p99; the target is on "
          f"{pairs[0][1] if pairs else 'cloudsdk'} against each Feast store):")
    head = ["cell", *names, *[f"{f} / {o}" for f, o in pairs], "target", "result", "issue's Feast ref (ms)"]
    lines = []
    for n, clients in CELLS:
        mine = results.get((pairs[0][1], n, clients)) if pairs else None
        need, limit = (2.0, 1e-3) if (n, clients) == (1, 1) else (3.0, None)
        verdicts = []
        for f, o in pairs:
            theirs = results.get((f, n, clients))
            if o == pairs[0][1] and mine is not None and mine.ok and theirs is not None and theirs.ok:
                ok = theirs.p99 / mine.p99 >= need and (limit is None or mine.p99 <= limit)
                verdicts.append("pass" if ok else "FAIL")
        lines.append([f"{n} entit{'y' if n == 1 else 'ies'}, {clients} client{'s' if clients > 1 else ''}",
                      *[results[(x, n, clients)].cell() if (x, n, clients) in results else "-" for x in names],
                      *[_ratio(results.get((f, n, clients)), results.get((o, n, clients))) for f, o in pairs],
                      f">= {need:.0f}x" + (" and p99 <= 1 ms" if limit else ""), "/".join(verdicts) or "-",
                      REFERENCE[(n, clients)]])
    _print_rows(head, lines)
    detail = []
    for (name, n, clients), s in results.items():
        rate = len(s.lat) / s.wall if s.wall else float("nan")
        detail.append([name, f"{n} x {clients}", f"{len(s.lat):,}", f"{rate:,.0f}", str(s.reconnects), s.error or ""])
    _print_rows(["system", "entities x clients", "samples", "req/s", "reconnects", "error"], detail)


def print_embedded(results: dict[str, dict[str, Stats]]) -> None:
    """In-process lookups, p50 / p99 in microseconds."""
    names = list(results)
    pairs = _pairs(names)
    print("In-process lookups, p50 / p99 us (ratio = Feast p99 / cloudsdk p99):")
    head = ["cell", *names, *[f"{f} / {o}" for f, o in pairs], "target", "result", "issue's Feast ref"]
    lines = []
    for cell, label, target, ref in (("one", "1 entity", "p99 <= 100 us", "p50 0.36 / p99 0.49 ms"),
                                     ("many", f"{BATCH} entities", "-", "p50 14 ms")):
        mine = results[pairs[0][1]].get(cell) if pairs else results.get("cloudsdk sqlite", {}).get(cell)
        result = "-" if cell != "one" or mine is None or not mine.ok else ("pass" if mine.p99 <= 100e-6 else "FAIL")
        lines.append([label, *[results[n][cell].cell(1e6, 0) if cell in results[n] else "-" for n in names],
                      *[_ratio(results[f].get(cell), results[o].get(cell)) for f, o in pairs], target, result, ref])
    _print_rows(head, lines)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feast-python", default=None, metavar="PATH",
                        help="a Python with Feast 0.67 (e.g. /tmp/feast-venv/bin/python); without it Feast is not run")
    parser.add_argument("--quick", action="store_true", help="fewer requests per cell; the 100k dataset only")
    parser.add_argument("--large", action="store_true", help="also 1M entities x 50 features in 5 groups (slow)")
    parser.add_argument("--cloudsdk-redis", action="store_true",
                        help="also cloudsdk with a Redis online store (127.0.0.1:6379, a unique key prefix)")
    parser.add_argument("--repeat", type=int, default=3, help="interleaved rounds of every cell, pooled (default 3)")
    parser.add_argument("--cap", type=float, default=None, help="seconds per cell at most (default 9; --quick 3)")
    args = parser.parse_args()
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    return args


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def run_dataset(args: argparse.Namespace, spec: tuple[int, int, int], plan: Plan, pool: ClientPool) -> None:
    """One dataset: load both systems, check their answers, the HTTP cells, the in-process cells."""
    python = args.feast_python
    with tempfile.TemporaryDirectory(prefix="cloudsdk-bench-online-") as tmp_name, contextlib.ExitStack() as stack:
        tmp = Path(tmp_name)
        start = time.perf_counter()
        data = make_dataset(tmp / "data", spec, max(plan.count_one, 1000), max(plan.count_many, 200))
        notes = [f"generate + write Parquet {time.perf_counter() - start:.1f} s"]
        side = start_cloudsdk(tmp, stack)
        targets: list[Target] = []
        for label in ["sqlite"] + (["redis"] if args.cloudsdk_redis else []):
            url = None
            if label == "redis":
                prefix = f"bench_online_{uuid.uuid4().hex[:8]}:"
                url = f"redis://127.0.0.1:6379/0?prefix={prefix}"
                stack.callback(_drop_redis_prefix, prefix)
            try:
                took = load_cloudsdk(side, data, label, url, stack)
            except Exception as exc:
                notes.append(f"cloudsdk {label}: NOT LOADED: {type(exc).__name__}: {exc}")
                continue
            notes.append(f"cloudsdk {label}: create {data.groups} online-enabled groups {took:.1f} s")
            target = cloudsdk_target(side, label, data)
            try:
                wait_http(target, data.check, side.proc, tmp / "cloudsdk-server.log", timeout_s=5)
            except (RuntimeError, HTTPStatusError) as exc:
                target.unavailable = f"REST lookup failed: {exc}"
            targets.append(target)
        if python is None or not Path(python).exists():
            why = "pass --feast-python /path/to/feast-venv/bin/python" if python is None else f"{python} is missing"
            notes.append(f"Feast: NOT RUN ({why})")
            python = None
        else:
            project = f"bench_online_{uuid.uuid4().hex[:8]}"
            targets += [start_feast(python, data, store, project, stack, notes) for store in ("sqlite", "redis")]
        targets += floor_targets(tmp, data, side, stack)

        header(data, plan, python)
        for note in notes:
            print(f"setup: {note}")
        for t in targets:
            if t.unavailable is None:
                try:
                    print(f"check {t.name}: {check_answer(t, data)}")
                except (OSError, EOFError, HTTPStatusError, ValueError, KeyError) as exc:
                    t.unavailable = f"{type(exc).__name__}: {exc}"
            if t.unavailable is not None:
                print(f"{t.name}: NOT MEASURED: {t.unavailable}")
        print()
        live = [t for t in targets if t.unavailable is None]
        print_http(http_cells(pool, live, data, plan), [t.name for t in live])

        embedded = {f"cloudsdk {label}": cloudsdk_embedded(fs, data, plan) for label, fs in side.stores.items()}
        for label, fs in side.stores.items():
            print(f"check cloudsdk {label} embedded: {embedded_check(fs, data)}")
        for store in ("sqlite", "redis") if python else ():
            r = run_helper(python, "inproc", data.root, store, data.root / "ids.json", plan.count_one,
                           plan.count_many // 2, plan.cap_s)
            embedded[f"feast {store}"] = {c: Stats(fixed=(r[c]["p50"], r[c]["p99"])) for c in ("one", "many") if c in r}
            if "check" in r:
                got = {e: {k: v[j] for k, v in r["check"].items() if k != "entity_id"}
                       for j, e in enumerate(r["check"]["entity_id"])}
                print(f"check feast {store} get_online_features: {compare(got, data)}")
            else:
                print(f"feast {store} get_online_features: NOT MEASURED: {r.get('error')}")
        print()
        print_embedded(embedded)
        print(f"load average at the end: {_load()} (1, 5, 15 min)")
        print(ANCHORS)
        print()


def header(data: Dataset, plan: Plan, feast_python: str | None) -> None:
    import fastapi
    import uvicorn

    feast = "not run"
    if feast_python:
        out = subprocess.run([feast_python, "-c", "import feast; print(feast.__version__)"], capture_output=True,
                             text=True, check=False)
        feast = out.stdout.strip() or "?"
    print("== bench_online: online lookups, cloudsdk (REST over HTTPS; embedded) vs Feast (feast serve over HTTP; "
          "get_online_features) ==")
    print(f"date {time.strftime('%Y-%m-%d')}, python {platform.python_version()}, {os.cpu_count()} cores, "
          f"fastapi {fastapi.__version__}, uvicorn {uvicorn.__version__}, feast {feast}")
    print(f"load average before the cells: {_load()} (1, 5, 15 min)")
    print(f"data: {data.entities:,} entities x {len(data.features)} float64 features in {data.groups} groups; "
          "the same seeded ids for every system")
    print(f"cells: {plan.count_one:,} requests of 1 entity / {plan.count_many:,} of {BATCH} entities (split over the "
          f"clients) or {plan.cap_s:g} s, whichever comes first, in {plan.rounds} interleaved rounds; "
          f"{plan.warmup_one} / {plan.warmup_many} warm-up requests per client and round; one keep-alive "
          "connection per client process, loopback")
    print()


def main() -> int:
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(line_buffering=True)  # each line as it comes, also into a file
    args = parse_args()
    if args.quick:
        plan = Plan(600, 150, 30, 5, args.cap or 3.0, args.repeat)
    else:
        plan = Plan(3000, 600, 50, 10, args.cap or 9.0, args.repeat)
    pool = ClientPool(max(c for _, c in CELLS))
    try:
        for spec in [SMALL] + ([LARGE] if args.large and not args.quick else []):
            run_dataset(args, spec, plan, pool)
    finally:
        pool.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
