"""Tools and conversation hygiene end to end, through the real gateway and every service as
its own process (real NATS and PostgreSQL, local STT and TTS, the scripted LLM): an MCP tool
over stdio and one over streamable HTTP (servers built with the ``mcp`` package), the
three-round limit whose last round is offered no tools, idle reprompt then hang-up, and the
call's time limit. Agents are created through the orchestrator's request/reply API."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from typing import Any

import nats
import pytest
import uvicorn
from nats.js.api import ConsumerConfig, DeliverPolicy

from voicebus.contracts import subjects
from voicebus.contracts.agents import api
from voicebus.contracts.events import (
    AgentReply,
    CallEnded,
    CallError,
    CallEvent,
    CallIdle,
    EndReason,
    ToolCalled,
    ToolResult,
    parse_event,
)
from voicebus.devkit.caller.session import TwilioCaller
from voicebus.devkit.defaults import DEV_TWILIO_AUTH_TOKEN
from voicebus.devkit.mcp_orders import server
from voicebus.devkit.ports import free_port
from voicebus.devkit.stack import DevStack
from voicebus.runtime.rpc import RpcClient

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

ORDER_RULE = {"match": r"order\D{0,20}?(?P<order_id>\d(?:[\d\s-]*\d)?)",
              "tool": "order_status", "args": {"order_id": "{{order_id}}"},
              "after_tool": "Order {{order_id}} is {{status}}."}  # fmt: skip


def agent(**extra: Any) -> dict[str, Any]:
    return {"name": "e2e", "system_prompt": "You help.", "greeting": "Hi, how can I help?",
            "llm": {"engine": "scripted", "options": {"rules": [ORDER_RULE],
                                                      "default": "Okay."}},
            "stt": {"engine": "whisper-local", "options": {"language": "en"}},
            "tts": {"engine": "hibari", "options": {"voice": "heart"}}, **extra}  # fmt: skip


@pytest.fixture(scope="module")
async def mcp_http() -> AsyncIterator[str]:
    port = free_port()
    config = uvicorn.Config(server().streamable_http_app(), host="127.0.0.1", port=port,
                            log_config=None, lifespan="on")  # fmt: skip
    runner = uvicorn.Server(config)
    task = asyncio.create_task(runner.serve())
    while not runner.started:
        await asyncio.sleep(0.01)
    yield f"http://127.0.0.1:{port}/mcp"
    runner.should_exit = True
    await task


@pytest.fixture(scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory, mcp_http: str) -> AsyncIterator[DevStack]:
    data_dir = tmp_path_factory.mktemp("stack")
    log = (data_dir / "services.log").open("w")
    dev = DevStack(data_dir, out=log, local_llm=False,
                   env={"VB_RECORDER_DIR": str(data_dir / "recordings")})  # fmt: skip
    try:
        await dev.start(ready_timeout=240.0)
        assert dev.nats_url is not None
        nc = await nats.connect(dev.nats_url)
        try:
            rpc = RpcClient(nc, timeout_s=10)
            stdio = {"name": "orders", "transport": "stdio", "command": sys.executable,
                     "args": ["-m", "voicebus.devkit.mcp_orders"], "timeout_s": 20}  # fmt: skip
            http = {"name": "orders", "transport": "streamable_http", "url": mcp_http}
            repeat = {**ORDER_RULE, "tool": "order_status", "repeat": True,
                      "reply": "Let me check."}  # fmt: skip
            agents = {
                # stdio runs a command on the platform: an operator's template only
                "mcp-stdio": (agent(mcp_servers=[stdio]), True),
                "mcp-http": (agent(mcp_servers=[http]), False),
                # a tool without a spoken reply, so the LLM answers from its result
                "loop": (agent(llm={"engine": "scripted", "options": {"rules": [repeat]}},
                               mcp_servers=[http]), False),
                "idle": (agent(hygiene={"idle_timeout_s": 2, "idle_max_reprompts": 1}), False),
                "short": (agent(hygiene={"max_duration_s": 10}), False),
            }  # fmt: skip
            for agent_id, (definition, template) in agents.items():
                request = api.CreateAgent(tenant_id="default", agent_id=agent_id,
                                          definition=definition, template=template)  # fmt: skip
                await rpc.ask(api.AGENTS_CREATE, request, api.AgentRecordReply)
        finally:
            await nc.drain()
        yield dev
        # Nothing any service did was outside what its NATS user is allowed.
        assert dev.permission_violations() == []
    finally:
        await dev.stop()
        log.close()


async def _events(nats_url: str, call_id: str) -> list[CallEvent]:
    nc = await nats.connect(nats_url)
    events: list[CallEvent] = []
    try:
        sub = await nc.jetstream().subscribe(
            subjects.evt_filter(call_id=call_id), ordered_consumer=True,
            config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL),
        )  # fmt: skip
        while True:
            try:
                msg = await sub.next_msg(timeout=2.0)
            except nats.errors.TimeoutError:
                break
            events.append(parse_event(msg.data))
        await sub.unsubscribe()
    finally:
        await nc.drain()
    return events


def _of(events: list[CallEvent], kind: type[Any]) -> list[Any]:
    return [e for e in events if isinstance(e, kind)]


async def _ask_order(stack: DevStack, agent_id: str) -> list[CallEvent]:
    gateway = next(s.url for s in stack.services if s.name == "gateway")
    assert stack.nats_url is not None
    async with TwilioCaller(gateway, DEV_TWILIO_AUTH_TOKEN, agent_id) as call:
        call_id = call.call_id
        assert call_id is not None
        assert await call.wait_for_agent_silence(quiet_ms=1200, timeout=90)
        await call.say_text("What is the status of order 1234?")
        assert await call.wait_for_agent_audio(ms=500, timeout=90)
        assert await call.wait_for_agent_silence(quiet_ms=1500, timeout=90)
    await call.hang_up()
    async with asyncio.timeout(60):
        while not _of(events := await _events(stack.nats_url, call_id), CallEnded):
            await asyncio.sleep(0.5)
    return events


@pytest.mark.parametrize("agent_id", ["mcp-stdio", "mcp-http"])
async def test_the_agent_calls_an_mcp_tool(stack: DevStack, agent_id: str) -> None:
    events = await _ask_order(stack, agent_id)
    assert _of(events, CallError) == []
    (called,) = _of(events, ToolCalled)
    assert (called.data.name, called.data.arguments) == ("order_status", {"order_id": "1234"})
    (result,) = _of(events, ToolResult)
    assert result.data.ok, result.data.error
    assert result.data.result["status"] == "shipped"
    assert _of(events, AgentReply)[-1].data.text == "Order 1234 is shipped."


async def test_three_rounds_at_most_and_a_tool_less_last_round(stack: DevStack) -> None:
    events = await _ask_order(stack, "loop")
    # The model asked for the tool in every round it was offered tools: rounds one and two.
    assert [e.data.name for e in _of(events, ToolCalled)] == ["order_status", "order_status"]
    assert all(e.data.ok for e in _of(events, ToolResult))
    # Round three was offered none, so it spoke (the scripted model speaks after_tool only
    # when no tools are offered).
    answer = _of(events, AgentReply)[-1].data.text
    assert answer.endswith("Order 1234 is shipped.")


async def test_a_silent_caller_is_reprompted_then_hung_up_on(stack: DevStack) -> None:
    gateway = next(s.url for s in stack.services if s.name == "gateway")
    assert stack.nats_url is not None
    async with TwilioCaller(gateway, DEV_TWILIO_AUTH_TOKEN, "idle") as call:
        call_id = call.call_id
        assert call_id is not None
        assert await call.wait_closed(timeout=120), "the agent did not hang up"
    await call.hang_up()
    async with asyncio.timeout(60):
        while not _of(events := await _events(stack.nats_url, call_id), CallEnded):
            await asyncio.sleep(0.5)
    assert [e.data.action for e in _of(events, CallIdle)] == ["reprompt", "hangup"]
    spoken = [e.data.text for e in _of(events, AgentReply)]
    assert spoken == ["Hi, how can I help?", "Are you still there?",
                      "It seems we got disconnected. Goodbye!"]  # fmt: skip
    assert _of(events, CallEnded)[0].data.reason is EndReason.IDLE


async def test_the_time_limit_ends_the_call_with_a_closing_line(stack: DevStack) -> None:
    gateway = next(s.url for s in stack.services if s.name == "gateway")
    assert stack.nats_url is not None
    async with TwilioCaller(gateway, DEV_TWILIO_AUTH_TOKEN, "short") as call:
        call_id = call.call_id
        assert call_id is not None
        assert await call.wait_for_agent_silence(quiet_ms=1200, timeout=90)
        await call.say_text("Tell me about order 1234 please.")  # the agent is kept busy
        assert await call.wait_closed(timeout=120), "the call did not end"
    await call.hang_up()
    async with asyncio.timeout(60):
        while not _of(events := await _events(stack.nats_url, call_id), CallEnded):
            await asyncio.sleep(0.5)
    (ended,) = _of(events, CallEnded)
    assert ended.data.reason is EndReason.MAX_DURATION
    closing = _of(events, AgentReply)[-1].data.text
    assert closing == "We have reached the time limit for this call. Thank you, goodbye!"
    assert ended.data.duration_s is not None
    assert ended.data.duration_s >= 10
