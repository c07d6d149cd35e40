"""The API's docs page, served offline: Swagger UI's files come from a PyPI package."""

from __future__ import annotations

from pathlib import Path
from typing import Final

import swagger_ui_bundle
from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.staticfiles import StaticFiles

DOCS_PATH: Final = "/api/v1/docs"
_ASSETS: Final = f"{DOCS_PATH}/assets"


def install_docs(app: FastAPI) -> None:
    """``/api/v1/docs``: Swagger UI over ``/api/v1/openapi.json``, no CDN needed.

    URLs in the page are relative, so it also works behind a path prefix.
    """
    app.mount(
        _ASSETS,
        StaticFiles(directory=Path(str(swagger_ui_bundle.swagger_ui_path))),
        name="swagger-ui",
    )

    async def docs(_request: Request) -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="openapi.json",
            title=f"{app.title} — API",
            swagger_js_url="docs/assets/swagger-ui-bundle.js",
            swagger_css_url="docs/assets/swagger-ui.css",
            swagger_favicon_url="docs/assets/favicon-32x32.png",
        )

    app.add_route(DOCS_PATH, docs, methods=["GET"], include_in_schema=False)
