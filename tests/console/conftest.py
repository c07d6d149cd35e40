"""Fixtures of the console's browser tests: the edge stack of ``tests/edge`` and a Chromium."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# The edge stack lives with the edge's end-to-end tests; modules are imported by name
# (pytest runs with --import-mode=importlib).
sys.path.insert(0, str(Path(__file__).parents[1] / "edge"))
sys.path.insert(0, str(Path(__file__).parent))

from console_stack import ConsoleStack

from voicebus.devkit.embedded_nats import EmbeddedNats


@pytest.fixture(scope="package")
def edge(postgres_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsoleStack]:
    """The edge (serving the console) and the services behind it on a private nats-server and
    a fresh database, shared by the console's modules (each uses tenants of its own)."""
    root = tmp_path_factory.mktemp("console")
    with EmbeddedNats(data_dir=root / "nats") as server:
        stack = ConsoleStack(server, postgres_url, root)
        stack.start()
        try:
            yield stack
        finally:
            stack.stop()
