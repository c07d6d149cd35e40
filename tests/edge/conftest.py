"""Fixtures of the REST edge's end-to-end tests; the stack itself lives in ``edge_stack``."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# Test modules import ``edge_stack`` by name (pytest runs with --import-mode=importlib).
sys.path.insert(0, str(Path(__file__).parent))

from edge_stack import EdgeStack


@pytest.fixture(scope="module")
def edge(
    nats_url: str, postgres_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[EdgeStack]:
    """Gateway (HTTP), audit, orchestrator and recorder on real NATS and PostgreSQL."""
    stack = EdgeStack(nats_url, postgres_url, tmp_path_factory.mktemp("edge"))
    stack.start()
    try:
        yield stack
    finally:
        stack.stop()
