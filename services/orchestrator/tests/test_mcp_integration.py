"""MCP tools through the real ``mcp`` client against local servers built with the ``mcp``
package: over stdio (a process per call) and over streamable HTTP, discovered at call start
and called through the toolbox; a server that is down leaves the agent without its tools."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from typing import Any

import pytest
import uvicorn

from voicebus.contracts.agents import McpServer
from voicebus.devkit.mcp_orders import server
from voicebus.devkit.ports import free_port
from voicebus.engines.base import ToolCall
from voicebus.orchestrator.mcp_tools import McpTools
from voicebus.orchestrator.ssrf import TargetPolicy
from voicebus.orchestrator.tools import Toolbox

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

KEY = ("", "demo", 1)


async def _serve(app: Any, path: str) -> AsyncIterator[str]:
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="on")
    runner = uvicorn.Server(config)
    task = asyncio.create_task(runner.serve())
    while not runner.started:
        await asyncio.sleep(0.01)
    yield f"http://127.0.0.1:{port}{path}"
    runner.should_exit = True
    await task


@pytest.fixture
async def http_server() -> AsyncIterator[str]:
    async for url in _serve(server().streamable_http_app(), "/mcp"):
        yield url


@pytest.fixture
async def sse_server() -> AsyncIterator[str]:
    async for url in _serve(server().sse_app(), "/sse"):
        yield url


async def _use(servers: list[McpServer], allow_loopback: bool = True) -> None:
    mcp = McpTools(TargetPolicy(allow_loopback=allow_loopback))
    tools, connections, problems = await mcp.connect(KEY, servers)
    try:
        assert problems == []
        assert sorted(t.spec.name for t in tools) == ["order_status"]
        box = Toolbox(tools)
        found = await box.run(ToolCall("1", "order_status", {"order_id": "1234"}))
        assert found.ok, found.error
        assert found.result == {"order_id": "1234", "status": "shipped", "eta": "Monday"}
    finally:
        for connection in connections:
            await connection.close()


async def test_a_stdio_server_is_discovered_and_called() -> None:
    stdio = McpServer(
        name="orders", transport="stdio", command=sys.executable,
        args=["-m", "voicebus.devkit.mcp_orders"], tools=["order_status"], timeout_s=20,
    )  # fmt: skip
    await _use([stdio])


async def test_a_streamable_http_server_is_discovered_and_called(http_server: str) -> None:
    http = McpServer(name="orders", transport="streamable_http", url=http_server,
                     tools=["order_status"])  # fmt: skip
    await _use([http])


async def test_an_sse_server_is_discovered_and_called(sse_server: str) -> None:
    sse = McpServer(name="orders", transport="sse", url=sse_server, tools=["order_status"])
    await _use([sse])


async def test_a_tool_error_is_short_and_the_call_goes_on(http_server: str) -> None:
    mcp = McpTools(TargetPolicy(allow_loopback=True))
    http = McpServer(name="orders", transport="streamable_http", url=http_server)
    tools, connections, _ = await mcp.connect(KEY, [http])
    try:
        outcome = await Toolbox(tools).run(ToolCall("1", "broken", {"order_id": "1"}))
        assert not outcome.ok
        assert outcome.error is not None
        assert outcome.error.startswith("mcp tool error")
    finally:
        for connection in connections:
            await connection.close()


async def test_a_server_that_is_down_or_refused_leaves_the_agent_without_it() -> None:
    down = McpServer(name="crm", transport="streamable_http",
                     url=f"http://127.0.0.1:{free_port()}/mcp", timeout_s=2)  # fmt: skip
    mcp = McpTools(TargetPolicy(allow_loopback=True))
    tools, connections, problems = await mcp.connect(KEY, [down])
    assert (tools, connections) == ([], [])
    assert len(problems) == 1
    assert problems[0].startswith("MCP server 'crm' unavailable, its tools are off")
    refused = McpTools(TargetPolicy())  # loopback not allowed
    tools, _, problems = await refused.connect(KEY, [down])
    assert tools == []
    assert "loopback" in problems[0]
