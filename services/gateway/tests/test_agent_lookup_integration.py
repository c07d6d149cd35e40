"""The agent lookup against a real nats-server: an orchestrator that is late still answers."""

from __future__ import annotations

import asyncio

import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg

from voicebus.contracts.rpc import AGENTS_GET, AgentProfile, AgentReply, EngineChoice
from voicebus.gateway.agents import fetch_agent

pytestmark = pytest.mark.integration

_PROFILE = AgentProfile(
    agent_id="demo",
    name="Demo",
    stt=EngineChoice(engine="null"),
    tts=EngineChoice(engine="silent"),
)


async def _answer_after(nc: Client, delay_s: float) -> None:
    await asyncio.sleep(delay_s)

    async def reply(msg: Msg) -> None:
        await msg.respond(AgentReply(ok=True, agent=_PROFILE).model_dump_json().encode())

    await nc.subscribe(AGENTS_GET, cb=reply)
    await nc.flush()


async def test_a_responder_that_subscribes_late_is_still_asked(nats_client: Client) -> None:
    late = asyncio.create_task(_answer_after(nats_client, 0.3))
    reply = await fetch_agent(nats_client, "default", "demo", timeout_s=5.0)
    await late
    assert reply is not None
    assert reply.agent is not None
    assert reply.agent.agent_id == "demo"


async def test_no_responder_at_all_gives_up_within_the_budget(nats_client: Client) -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    reply = await fetch_agent(nats_client, "default", "nobody-home", timeout_s=0.5)
    assert reply is None
    assert loop.time() - started < 5.0
