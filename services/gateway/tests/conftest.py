"""Fixtures of the gateway's tests; the helpers themselves live in ``gateway_kit``."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest_asyncio

# Test modules import ``gateway_kit`` by name (pytest runs with --import-mode=importlib).
sys.path.insert(0, str(Path(__file__).parent))

from gateway_kit import RunningGateway, serve_gateway


@pytest_asyncio.fixture
async def running_gateway(embedded_nats_factory: Any) -> AsyncIterator[RunningGateway]:
    """The real gateway app, served by uvicorn, on a private nats-server."""
    async with serve_gateway(embedded_nats_factory().url) as gateway:
        yield gateway
