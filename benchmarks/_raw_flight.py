"""A bare Arrow Flight server process: the ceiling of any remote read over gRPC (bench_remote_read).

``python benchmarks/_raw_flight.py LOCATION CERT_DIR (tls|plain)`` reads the Delta table at
``LOCATION`` into memory once (deltalake), cuts it into the same record batches the cloudsdk
server streams (:func:`cloudsdk.server.flight.rebatch`) and serves that one table to every
``do_get``: no store, no catalog, no auth, no Parquet decoding per call. With ``tls`` the
server uses mutual TLS with the certificates in ``CERT_DIR`` (``server.pem``/``server.key``,
``ca.pem`` to verify clients), as the cloudsdk Flight service does; with ``plain`` it is plain
gRPC. It prints its port on one line, then serves until killed.

The time a client needs to fetch the table from it is what the transport alone costs: no
server design that streams the rows through gRPC with mutual TLS can read faster, so
``embedded read / this transfer`` bounds the ratio ``bench_remote_read`` can reach.
:func:`make_certificates` writes a throwaway CA, server and client certificate for it.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.flight as fl


def make_certificates(directory: Path) -> dict[str, bytes]:
    """A throwaway CA in ``directory``, a server and a client certificate; returns the client PEMs."""
    from cloudsdk.store.ca import CertificateAuthority

    ca = CertificateAuthority(directory / "ca")
    cert, key = ca.issue_server_certificate(["127.0.0.1"])
    (directory / "server.pem").write_bytes(cert)
    (directory / "server.key").write_bytes(key)
    (directory / "ca.pem").write_bytes(ca.ca_pem)
    client = ca.issue_client_certificate("bench", "bench")
    return {"ca": ca.ca_pem, "cert": client["certificate_pem"].encode(),
            "key": client["private_key_pem"].encode()}


class _OneTable(fl.FlightServerBase):
    def __init__(self, location: str, table: pa.Table, **kwargs: object) -> None:
        super().__init__(location, **kwargs)
        self._table = table

    def do_get(self, context: fl.ServerCallContext, ticket: fl.Ticket) -> fl.RecordBatchStream:
        return fl.RecordBatchStream(self._table)


def main(argv: list[str]) -> int:
    from deltalake import DeltaTable

    from cloudsdk.server.flight import rebatch

    location, cert_dir, mode = argv
    table = rebatch(DeltaTable(location).to_pyarrow_table())
    if mode == "tls":
        d = Path(cert_dir)
        server = _OneTable("grpc+tls://127.0.0.1:0", table,
                           tls_certificates=[((d / "server.pem").read_bytes(), (d / "server.key").read_bytes())],
                           verify_client=True, root_certificates=(d / "ca.pem").read_bytes())
    else:
        server = _OneTable("grpc+tcp://127.0.0.1:0", table)
    print(server.port, flush=True)
    server.serve()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
