"""A real Prometheus (Debian's ``prometheus`` binary) scrapes a dev stack during simulated
calls; then every dashboard panel's query and every recording rule is evaluated through
its HTTP API and must return data. This is the proof that the dashboards show something.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.observe.calls import place_calls
from voicebus.devkit.caller.session import TwilioCaller
from voicebus.devkit.defaults import DEV_TWILIO_AUTH_TOKEN
from voicebus.devkit.ports import free_port
from voicebus.devkit.stack import DevStack

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

ROOT = Path(__file__).resolve().parents[2]
DASHBOARDS = ROOT / "infra" / "grafana" / "dashboards"
RULES = ROOT / "infra" / "prometheus" / "rules"
RARE_RECORDS = frozenset({"voicebus:engine_failures:rate5m"})
"""Recorded series that exist only once the rare event (an engine failure) happened."""
WINDOW = "5m"
"""What ``$__rate_interval`` becomes here: wide enough to hold the whole test."""


def _panel_queries() -> list[tuple[str, str, str]]:
    """(dashboard uid, panel title, PromQL) of every panel target."""
    found = []
    for path in sorted(DASHBOARDS.glob("*.json")):
        board = json.loads(path.read_text())
        for panel in board["panels"]:
            for target in panel["targets"]:
                expr = target["expr"].replace("$__rate_interval", WINDOW)
                found.append((board["uid"], panel["title"], expr))
    return found


def _recorded_names() -> list[str]:
    names = []
    for path in sorted(RULES.glob("*.yml")):
        for group in yaml.safe_load(path.read_text())["groups"]:
            names += [rule["record"] for rule in group["rules"] if "record" in rule]
    return names


@pytest.fixture
def prometheus(stack: DevStack, tmp_path: Path) -> Iterator[str]:
    """A Prometheus scraping every service of ``stack`` each second; its base URL."""
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.fail("prometheus is missing: run scripts/install-prometheus.sh")
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(p) for p in sorted(RULES.glob("*.yml"))],
        "scrape_configs": [
            {
                "job_name": svc.name,
                "static_configs": [{"targets": [svc.url.removeprefix("http://")]}],
            }
            for svc in stack.services
        ],
    }
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    log = (tmp_path / "prometheus.log").open("w")
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


async def _query(http: httpx.AsyncClient, base: str, expr: str) -> list[Any]:
    reply = await http.get(f"{base}/api/v1/query", params={"query": expr})
    body = reply.json()
    assert body["status"] == "success", (expr, body)
    result: list[Any] = body["data"]["result"]
    return result


async def _ready(http: httpx.AsyncClient, base: str) -> bool:
    try:
        return (await http.get(f"{base}/-/ready")).status_code == 200
    except httpx.TransportError:  # not listening yet
        return False


async def _still_empty(
    http: httpx.AsyncClient, base: str, queries: dict[str, str], timeout: float
) -> list[str]:
    """The names of ``queries`` that returned no data at any poll before ``timeout``."""
    waiting = dict(queries)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while waiting and loop.time() < deadline:
        for name, expr in list(waiting.items()):
            if await _query(http, base, expr):
                del waiting[name]
        if waiting:
            await asyncio.sleep(1.0)
    return sorted(waiting)


async def _wait_for_data(http: httpx.AsyncClient, base: str, expr: str, timeout: float) -> None:
    async with asyncio.timeout(timeout):
        while not await _query(http, base, expr):
            await asyncio.sleep(1.0)


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10.0) as client:
        yield client


async def test_every_dashboard_panel_shows_data(
    stack: DevStack, prometheus: str, http: httpx.AsyncClient
) -> None:
    async with asyncio.timeout(60):
        while not await _ready(http, prometheus):
            await asyncio.sleep(0.5)
    await _wait_for_data(http, prometheus, 'up{job="gateway"} == 1', timeout=30)

    gateway = next(s.url for s in stack.services if s.name == "gateway")
    async with TwilioCaller(gateway, DEV_TWILIO_AUTH_TOKEN, "demo-scripted") as call:
        assert await call.wait_for_agent_silence(quiet_ms=1200, timeout=60)  # the greeting
        asked = await call.say_text("Hi, where is my order 1234?")
        assert await call.wait_for_agent_audio(ms=1500, timeout=60)
        assert asked.first_agent_audio_ms is not None
    await place_calls(stack, 3)

    # Each query must show data within 90 s: services are scraped every second, the
    # rule groups evaluated every 30 s, and audit stores events in batches.
    panels = {f"{uid} / {title}: {expr}": expr for uid, title, expr in _panel_queries()}
    empty = await _still_empty(http, prometheus, panels, timeout=90.0)
    assert empty == [], "panels without data:\n" + "\n".join(empty)
    records = {name: name for name in _recorded_names() if name not in RARE_RECORDS}
    unrecorded = await _still_empty(http, prometheus, records, timeout=90.0)
    assert unrecorded == [], f"recording rules without data: {unrecorded}"
    assert len(_panel_queries()) >= 30

    # Some series exist at zero from the start: the calls must have moved them.
    moved = {
        "calls started": 'sum(voicebus_gateway_calls_started_total{provider="twilio"}) >= 4',
        "calls ended": 'sum(voicebus_gateway_calls_ended_total{provider="twilio"}) >= 4',
        "no call still active": "sum(voicebus_gateway_calls_active) == 0",
        "ws in": "sum(voicebus_gateway_ws_messages_in_total) > 0",
        "ws out": "sum(voicebus_gateway_ws_messages_out_total) > 0",
        "webhooks": 'sum(voicebus_gateway_webhook_seconds_count{kind="inbound"}) >= 4',
        "turn latency": "sum(voicebus_media_turn_latency_seconds_count) >= 1",
        "stt": 'sum(voicebus_media_stage_seconds_count{stage="stt"}) >= 1',
        "end of turn": 'sum(voicebus_media_stage_seconds_count{stage="end_of_turn"}) >= 1',
        "tts": 'sum(voicebus_media_stage_seconds_count{stage="tts_first_audio"}) >= 4',
        "llm": "sum(voicebus_orchestrator_llm_first_token_seconds_count) >= 1",
        "tool": 'sum(voicebus_orchestrator_tool_seconds_count{kind="data_lookup"}) >= 1',
        "audit": "sum(voicebus_audit_events_stored_total) > 0",
    }
    unmoved = await _still_empty(http, prometheus, moved, timeout=30.0)
    assert unmoved == [], f"instrumentation that did not count the calls: {unmoved}"
