"""``cloudsdk server``: the REST API (FastAPI on uvicorn, HTTPS) and the Arrow Flight data
service (mutual TLS), both thin shells over :class:`cloudsdk.store.FeatureStoreService`.

* :mod:`cloudsdk.server.app` wires the store, the security service and the certificate
  authority into a :class:`~cloudsdk.server.app.Server`, and runs both services
  (:func:`~cloudsdk.server.app.serve`, behind ``cloudsdk server start``).
* :mod:`cloudsdk.server.rest` is the REST API (:func:`~cloudsdk.server.rest.create_app`).
* :mod:`cloudsdk.server.flight` is the Flight service
  (:class:`~cloudsdk.server.flight.FeatureFlightServer`).

The wire contract both sides follow is :mod:`cloudsdk._protocol`. Needs the ``server`` extra
(``pip install 'cloudsdk[server]'``); nothing is imported until a submodule is used.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Server", "build", "serve"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from cloudsdk.server import app

        return getattr(app, name)
    raise AttributeError(f"module 'cloudsdk.server' has no attribute {name!r}")
