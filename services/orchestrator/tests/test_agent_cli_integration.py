"""``voicebus agent import|export`` against the real orchestrator on a real nats-server:
an import makes a version only when the file changed, and an export reads back the same."""

from __future__ import annotations

import asyncio
import shutil
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from voicebus.orchestrator.app import build
from voicebus.orchestrator.settings import OrchestratorSettings

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

REPO_AGENTS = Path(__file__).resolve().parents[3] / "agents"


@pytest.fixture
async def nats_server(embedded_nats_factory: Callable[..., Any]) -> AsyncIterator[str]:
    url = str(embedded_nats_factory().url)
    settings = OrchestratorSettings(nats_url=url, instance_id="o-cli", agents_dir=REPO_AGENTS)
    service, _ = build(settings, environ={})
    await service.start()
    yield url
    await service.stop()


async def _voicebus(*args: str) -> tuple[int, str]:
    command = shutil.which("voicebus", path=str(Path(sys.executable).parent))
    assert command is not None
    proc = await asyncio.create_subprocess_exec(
        command, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await proc.communicate()
    return proc.returncode or 0, out.decode()


async def test_import_is_idempotent_and_export_reads_back(nats_server: str, tmp_path: Path) -> None:
    agent = tmp_path / "helper.yaml"
    agent.write_text(
        "name: Helper\nsystem_prompt: You help.\nllm: {engine: scripted}\n"
        "stt: {engine: 'null'}\ntts: {engine: silent}\n"
    )
    code, out = await _voicebus("agent", "import", str(agent), "--tenant", "acme",
                                "--nats-url", nats_server)  # fmt: skip
    assert code == 0, out
    assert "helper: version 1 (acme)" in out
    code, out = await _voicebus("agent", "import", str(agent), "--tenant", "acme",
                                "--nats-url", nats_server)  # fmt: skip
    assert "helper: version 1 (acme)" in out  # unchanged: no new version
    agent.write_text(agent.read_text().replace("You help.", "You help a lot."))
    code, out = await _voicebus("agent", "import", str(agent), "--tenant", "acme",
                                "--nats-url", nats_server)  # fmt: skip
    assert "helper: version 2 (acme)" in out
    exported = tmp_path / "out.yaml"
    code, out = await _voicebus("agent", "export", "helper", "--tenant", "acme", "--version", "1",
                                "--out", str(exported), "--nats-url", nats_server)  # fmt: skip
    assert code == 0, out
    assert yaml.safe_load(exported.read_text())["system_prompt"] == "You help."
    code, out = await _voicebus("agent", "export", "helper", "--tenant", "globex",
                                "--nats-url", nats_server)  # fmt: skip
    assert code == 1
    assert "404 agent_not_found" in out
