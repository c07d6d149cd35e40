"""Test helpers of the orchestrator live next to the tests (``orchestrator_fakes``)."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

# Test modules import ``orchestrator_fakes`` by name (pytest runs with --import-mode=importlib).
sys.path.insert(0, str(Path(__file__).parent))

from orchestrator_fakes import AGENT

from voicebus.orchestrator.agents import Agent, load_agent


@pytest.fixture
def agent(tmp_path: Path) -> Agent:
    (tmp_path / "orders.json").write_text('{"1234": {"status": "shipped"}}')
    path = tmp_path / "test.yaml"
    path.write_text(textwrap.dedent(AGENT))
    return load_agent(path, {})
