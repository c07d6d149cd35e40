"""``GET /console``: the built console (``console/`` in the repository, built by npm).

The page and its assets come from one directory (``VB_EDGE_CONSOLE_DIR``, by default
the repository's ``console/dist``); nothing is loaded from elsewhere. The app routes
with the URL's fragment (``/console/#/calls/<id>``), so only ``index.html`` and the
hashed files under ``assets/`` are served. The console calls only ``/api/v1``.
"""

from __future__ import annotations

import mimetypes
import re
from pathlib import Path
from typing import Final

from fastapi import APIRouter, FastAPI
from starlette.responses import FileResponse, PlainTextResponse, RedirectResponse, Response

PATH: Final = "/console"
_ASSET: Final = re.compile(r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*\.(js|css|svg|png|woff2?)$")
_REPO_DIST: Final = Path(__file__).resolve().parents[6] / "console" / "dist"
# The page loads only its own scripts and styles, and talks only to this origin.
_CSP: Final = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; media-src 'self' blob:; connect-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
HEADERS: Final = {
    "Content-Security-Policy": _CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def console_dir(configured: Path | None) -> Path:
    """Where the built console is: the configured directory, else the repository's."""
    return configured if configured is not None else _REPO_DIST


def install_console(app: FastAPI, directory: Path) -> None:
    """Serve the built console at ``/console`` (a clear 404 when it was not built)."""
    router = APIRouter(include_in_schema=False)
    index = directory / "index.html"

    @router.get(PATH)
    async def to_console() -> Response:
        return RedirectResponse(f"{PATH}/", status_code=307)

    @router.get(f"{PATH}/")
    async def console_page() -> Response:
        if not index.is_file():
            return PlainTextResponse(
                "The console is not built: run `make console`.", status_code=404
            )
        return FileResponse(index, media_type="text/html", headers=HEADERS)

    @router.get(PATH + "/assets/{name}")
    async def console_asset(name: str) -> Response:
        # Vite writes assets flat, with a content hash in the name: nothing else is served.
        path = directory / "assets" / name
        if _ASSET.fullmatch(name) is None or not path.is_file():
            return PlainTextResponse("not found", status_code=404)
        media_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
        headers = {**HEADERS, "Cache-Control": "public, max-age=31536000, immutable"}
        return FileResponse(path, media_type=media_type, headers=headers)

    app.include_router(router)
