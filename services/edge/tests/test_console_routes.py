"""The built console at ``/console``: its page with a strict CSP, its assets, and a clear
answer when it was not built."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from voicebus.edge.console.routes import install_console

pytestmark = pytest.mark.component


def _client(directory: Path) -> TestClient:
    app = FastAPI()
    install_console(app, directory)
    return TestClient(app)


def test_the_page_and_its_assets_are_served(tmp_path: Path) -> None:
    (tmp_path / "assets").mkdir()
    (tmp_path / "index.html").write_text('<script src="/console/assets/app-1a2b.js"></script>')
    (tmp_path / "assets" / "app-1a2b.js").write_text("console.log(1)")
    client = _client(tmp_path)
    redirect = client.get("/console", follow_redirects=False)
    assert redirect.status_code == 307
    assert redirect.headers["location"] == "/console/"
    page = client.get("/console/")
    assert page.status_code == 200
    assert "app-1a2b.js" in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    asset = client.get("/console/assets/app-1a2b.js")
    assert asset.status_code == 200
    assert "javascript" in asset.headers["content-type"]
    assert client.get("/console/assets/../index.html").status_code == 404
    assert client.get("/console/assets/missing.js").status_code == 404


def test_an_unbuilt_console_says_how_to_build_it(tmp_path: Path) -> None:
    client = _client(tmp_path / "dist")
    page = client.get("/console/")
    assert page.status_code == 404
    assert "make console" in page.text
    assert client.get("/console/assets/app.js").status_code == 404
