"""The web UI: static HTML/JS/CSS (no build step) served at ``/ui/`` next to the REST API.

The page talks only to the REST API, with the same ``Authorization: ApiKey <key>`` header as
every client, so it can do exactly what the key may do. The files are package data of this
package (``index.html``, ``app.js``, ``app.css``).

Example::

    from cloudsdk.server.rest import create_app
    app = create_app(server)     # create_app calls mount_ui(app)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["UI_DIR", "UI_PATH", "mount_ui"]

UI_DIR = Path(__file__).resolve().parent
UI_PATH = "/ui"

# The page runs only its own script and style; data is never HTML (the script sets text only).
_SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


_FILES = {"index.html": "text/html; charset=utf-8", "app.js": "text/javascript; charset=utf-8",
          "app.css": "text/css; charset=utf-8"}


def mount_ui(app: Any) -> None:
    """Serve the UI at ``/ui/`` from ``app`` (a FastAPI app) and redirect ``/`` there.

    Only the UI's own files are served (nothing else of the package directory).

    Args:
        app: the REST API's FastAPI application.
    """
    from starlette.responses import RedirectResponse, Response

    def page(name: str) -> Response:
        if name not in _FILES:
            return Response("not found", status_code=404, media_type="text/plain",
                            headers=_SECURITY_HEADERS)
        return Response((UI_DIR / name).read_bytes(), media_type=_FILES[name], headers=_SECURITY_HEADERS)

    async def to_ui() -> RedirectResponse:
        return RedirectResponse(url=UI_PATH + "/", status_code=307)

    async def index() -> Response:
        return page("index.html")

    async def asset(name: str) -> Response:
        return page(name)

    for path, endpoint in (("/", to_ui), (UI_PATH, to_ui), (UI_PATH + "/", index), (UI_PATH + "/{name}", asset)):
        app.add_api_route(path, endpoint, methods=["GET"], include_in_schema=False,
                          name=f"ui:{path}")
