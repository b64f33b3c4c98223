"""Benchmark: ``fg.read()`` through a cloudsdk server (REST + Arrow Flight) vs the embedded store.

A real ``cloudsdk server`` process is started on loopback over a temporary data directory; a
project with a data-owner user and an API key is made in it, and one feature group of
``--rows`` rows (default 5,000,000) x 10 float64 features plus an int64 ``id`` primary key is
created in that project through the embedded store on the server's data directory. Then the
same feature group is read

* remotely: ``cloudsdk.connect("127.0.0.1", project, port=..., api_key_value=...)`` (HTTPS
  for the metadata, Flight over gRPC + mutual TLS for the rows), and
* embedded: ``cloudsdk.connect(path=<server data dir>, project=project)`` (the reference),

as pandas (``fg.read()``) and as pyarrow (``fg.read("pyarrow")``). The two Arrow results are
checked once to be equal, rows in the same order. Last, the CPU time of a few more
``fg.read("pyarrow")`` calls is measured on each side (this process, and the server process
from ``/proc``): on a machine with few cores the remote read is bound by CPU (TLS, copies), not
by the wire.

The ceiling: the same table is also fetched, in the same interleaved rounds, from a bare
pyarrow Flight server process that holds it in memory (``_raw_flight.py``: no store, no auth,
no Parquet decoding), once over mutual TLS and once over plain gRPC. ``embedded / bare mTLS
transfer`` is the highest ratio any server streaming the rows through gRPC with mutual TLS
could reach on this machine; it is printed beside the target.

Ratio = embedded time / remote time on best-of-``--repeat`` runs (target >= 0.7).
Run: ``python benchmarks/bench_remote_read.py [--rows N] [--repeat K]``. Always exits 0.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from _common import (
    Case,
    Timing,
    header,
    measure,
    parse_args,
    peak_rss_mib,
    print_details,
    print_table,
)

import cloudsdk
from cloudsdk.demo_data import scaled_feature_groups

if TYPE_CHECKING:
    from cloudsdk.client.feature_group import FeatureGroup

N_FEATURES = 10
TARGET = 0.7
READY = re.compile(r"REST https://[^:]+:(?P<port>\d+)\s+Flight grpc\+tls://[^:]+:(?P<fport>\d+)")


def start_server(data_dir: Path, log_path: Path, timeout_s: float = 60.0) -> tuple[subprocess.Popen[bytes], int]:
    """``cloudsdk server start`` on loopback with free ports; returns the process and REST port."""
    exe = Path(sys.executable).with_name("cloudsdk")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "cloudsdk.cli"]
    cmd += ["server", "start", "--data-dir", str(data_dir), "--host", "127.0.0.1", "--port", "0",
            "--flight-port", "0"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    with open(log_path, "wb") as log:  # a file, not a pipe: nothing to drain while timing
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        match = READY.search(log_path.read_text(errors="replace"))
        if match:
            return proc, int(match["port"])
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    stop_server(proc)
    raise RuntimeError(f"cloudsdk server did not start; it printed: {log_path.read_text(errors='replace')!r}")


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL after 15 s."""
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def new_project(data_dir: Path) -> tuple[str, str]:
    """A fresh project with a data-owner user; returns (project, API key)."""
    from cloudsdk.store import FeatureStoreService
    from cloudsdk.store.security import SecurityService

    tag = uuid.uuid4().hex[:10]
    project, user = f"bench{tag}", f"u{tag}"
    service = FeatureStoreService(data_dir)
    try:
        security = SecurityService(service.catalog)
        service.create_project(project)
        security.create_user(user)
        security.add_member(project, user, "data_owner")
        key, _ = security.create_api_key(user, "bench", ["featurestore", "project"])
    finally:
        service.close()
    return project, key


def main() -> int:
    args = parse_args(__doc__.splitlines()[0], default_rows=5_000_000)
    with tempfile.TemporaryDirectory(prefix="cloudsdk-bench-remote-") as tmp, contextlib.ExitStack() as stack:
        data_dir = Path(tmp) / "data"
        data_dir.mkdir()
        start = time.perf_counter()
        proc, port = start_server(data_dir, Path(tmp) / "server.out")
        stack.callback(stop_server, proc)
        project, key = new_project(data_dir)
        embedded = cloudsdk.connect(path=data_dir, project=project)
        stack.callback(embedded.close)
        remote = cloudsdk.connect("127.0.0.1", project, port=port, api_key_value=key,
                                  trust_store_path=str(data_dir / "ca" / "ca.pem"),
                                  cert_folder=str(Path(tmp) / "certs"))
        stack.callback(remote.close)
        table = scaled_feature_groups(args.rows, n_features=N_FEATURES, n_groups=1)[0]
        nbytes = table.nbytes
        local_fg = embedded.get_feature_store().create_feature_group(
            "bench", data=table, primary_key=["id"], statistics=False)
        del table
        remote_fg = remote.get_feature_store().get_feature_group("bench", local_fg.version)
        bare = start_bare_servers(local_fg.location, Path(tmp) / "bare", stack)
        setup = time.perf_counter() - start
        run(args, local_fg, remote_fg, nbytes, setup, proc.pid, bare)
    return 0


def start_bare_servers(location: str, directory: Path, stack: contextlib.ExitStack) -> dict[str, Callable[[], object]]:
    """Two bare Flight servers (``_raw_flight.py``, mutual TLS and plain gRPC) serving the table
    at ``location`` from memory; returns a fetch-everything callable per transport."""
    import pyarrow.flight as fl
    from _raw_flight import make_certificates

    directory.mkdir()
    pems = make_certificates(directory)
    script = Path(__file__).with_name("_raw_flight.py")
    fetchers: dict[str, Callable[[], object]] = {}
    for mode in ("tls", "plain"):
        proc = subprocess.Popen([sys.executable, str(script), location, str(directory), mode],
                                stdout=subprocess.PIPE, text=True)
        stack.callback(stop_server, proc)  # type: ignore[arg-type]
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line.strip().isdigit():
            raise RuntimeError(f"the bare Flight server ({mode}) did not start")
        if mode == "tls":
            client = fl.FlightClient(f"grpc+tls://127.0.0.1:{int(line)}", tls_root_certs=pems["ca"],
                                     cert_chain=pems["cert"], private_key=pems["key"])
        else:
            client = fl.FlightClient(f"grpc+tcp://127.0.0.1:{int(line)}")
        stack.callback(client.close)
        fetchers[mode] = lambda client=client: client.do_get(fl.Ticket(b"table")).read_all()
    return fetchers


def print_ceiling(embedded: Timing, tls: Timing, plain: Timing, rows: int) -> None:
    """The ratio a zero-cost server would reach: embedded read / bare transfer of the rows."""
    print("ceiling: the same table fetched from a bare Flight server that holds it in memory "
          "(no store, no auth, no Parquet decoding):")
    print_table([
        Case("bare transfer, mutual TLS", tls, embedded, rows),
        Case("bare transfer, plain gRPC", plain, embedded, rows),
    ], target=TARGET)


def _process_cpu_s(pid: int) -> float | None:
    """User + system CPU seconds of process ``pid`` (None where ``/proc`` is missing)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _self_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def cpu_per_call(fn: Callable[[], object], server_pid: int, calls: int = 3) -> tuple[float, float | None, float]:
    """Median (client CPU s, server CPU s, wall s) of ``calls`` calls of ``fn``."""
    client, server, wall = [], [], []
    for _ in range(calls):
        gc.collect()
        s0, c0, t0 = _process_cpu_s(server_pid), _self_cpu_s(), time.perf_counter()
        result = fn()
        wall.append(time.perf_counter() - t0)
        client.append(_self_cpu_s() - c0)
        s1 = _process_cpu_s(server_pid)
        if s0 is not None and s1 is not None:
            server.append(s1 - s0)
        del result
    return (statistics.median(client), statistics.median(server) if server else None, statistics.median(wall))


def run(args: argparse.Namespace, local_fg: FeatureGroup, remote_fg: FeatureGroup, nbytes: int,
        setup: float, server_pid: int, bare: dict[str, Callable[[], object]]) -> None:
    """Check the results once, time both sides, print the tables."""
    rows, repeat = args.rows, args.repeat
    header(
        "bench_remote_read: fg.read() through a cloudsdk server (Flight, mTLS, loopback) vs embedded",
        table=f"{rows:,} rows x {N_FEATURES} float64 features + int64 id ({nbytes / 2**20:,.0f} MiB in Arrow)",
        server="a `cloudsdk server start` process on 127.0.0.1 (REST + Flight, mutual TLS), same machine",
        runs=f"1 warm-up + {repeat} timed, interleaved; ratio = embedded / remote on the best run",
        setup=f"server start + generate + create_feature_group took {setup:.1f} s",
    )
    ours, ref = remote_fg.read("pyarrow"), local_fg.read("pyarrow")
    same = ours.schema == ref.schema and ours.equals(ref)
    print(f"check: {'same' if same else 'MISMATCH:'} {ours.num_rows:,} vs {ref.num_rows:,} rows "
          f"x {ours.num_columns} columns, same order (remote vs embedded fg.read(\"pyarrow\"))\n")
    bare_same = bare["tls"]().equals(bare["plain"]())  # type: ignore[attr-defined]
    print(f"check: the bare Flight servers send {'the same table' if bare_same else 'DIFFERENT tables'} "
          "over mutual TLS and plain gRPC\n")
    del ours, ref

    pandas_t = measure({
        "remote fg.read()": lambda: remote_fg.read(),
        "embedded fg.read()": lambda: local_fg.read(),
    }, repeat)
    arrow_t = measure({
        'remote fg.read("pyarrow")': lambda: remote_fg.read("pyarrow"),
        'embedded fg.read("pyarrow")': lambda: local_fg.read("pyarrow"),
        "bare Flight, mutual TLS": bare["tls"],
        "bare Flight, plain gRPC": bare["plain"],
    }, repeat)
    p, a = list(pandas_t.values()), list(arrow_t.values())
    print_table([
        Case("remote read -> pandas", p[0], p[1], rows),
        Case("remote read -> pyarrow", a[0], a[1], rows),
    ], target=TARGET)
    print_ceiling(a[1], a[2], a[3], rows)
    print_details(p + a)
    print("CPU per call (median of 3 more calls; the server's from /proc):")
    for name, fg in (('remote fg.read("pyarrow")', remote_fg), ('embedded fg.read("pyarrow")', local_fg)):
        client, server, wall = cpu_per_call(lambda fg=fg: fg.read("pyarrow"), server_pid)
        on_server = "-" if server is None else f"{server:.3f}"
        total = "" if server is None else f", total {client + server:.3f}"
        print(f"  {name:28s} client {client:.3f} s, server {on_server} s{total} (wall {wall:.3f} s)")
    print()
    print(f"peak RSS {peak_rss_mib():,.0f} MiB (this process: the client and the embedded reads)")


if __name__ == "__main__":
    raise SystemExit(main())
