"""Fixtures of the REST edge's end-to-end tests; the stack itself lives in ``edge_stack``."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# Test modules import ``edge_stack`` by name (pytest runs with --import-mode=importlib).
sys.path.insert(0, str(Path(__file__).parent))

from edge_stack import EdgeStack

from voicebus.devkit.embedded_nats import EmbeddedNats


@pytest.fixture(scope="module")
def edge(postgres_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[EdgeStack]:
    """The edge and the gateway (HTTP), audit, orchestrator, recorder and campaigns on real
    NATS and PostgreSQL.

    A private nats-server: the session's shared one carries other tests' events, which
    this stack's audit would otherwise replay.
    """
    root = tmp_path_factory.mktemp("edge")
    with EmbeddedNats(data_dir=root / "nats") as server:
        # Webhooks may target loopback: the erasure test's deliveries fail there and stay.
        stack = EdgeStack(server.url, postgres_url, root, edge={"webhooks_allow_loopback": True})
        stack.start()
        try:
            yield stack
        finally:
            stack.stop()
