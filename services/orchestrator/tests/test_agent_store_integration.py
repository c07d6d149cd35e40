"""Agents in PostgreSQL, per tenant and versioned, through the real orchestrator on a real
nats-server: a saved version is what the next call runs, on every instance, with no
restart; a live call keeps its version; another tenant gets 404; a call missing a
required context variable is refused with a clear call.error."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import nats
import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg

from voicebus.contracts import subjects
from voicebus.contracts.agents import api
from voicebus.contracts.events import (
    AgentReply,
    AgentUpdated,
    CallError,
    CallEvent,
    CallStarted,
    CallStartedData,
    Direction,
    Envelope,
    ErrorCode,
    TranscriptFinal,
    TranscriptFinalData,
    parse_event,
)
from voicebus.contracts.ids import new_id
from voicebus.contracts.rpc import AGENTS_GET, GetAgent
from voicebus.contracts.rpc import AgentReply as ProfileReply
from voicebus.orchestrator.app import build
from voicebus.orchestrator.settings import OrchestratorSettings
from voicebus.runtime.rpc import RemoteError, RpcClient
from voicebus.runtime.service import Service

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

REPO_AGENTS = Path(__file__).resolve().parents[3] / "agents"


def definition(reply: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": "Support", "system_prompt": "You help.", "greeting": f"Hello from {reply}.",
        "llm": {"engine": "scripted", "options": {"default": reply}},
        "stt": {"engine": "null"}, "tts": {"engine": "silent"}, **extra,
    }  # fmt: skip


@pytest.fixture
async def nats_server(embedded_nats_factory: Callable[..., Any]) -> str:
    return str(embedded_nats_factory().url)


@pytest.fixture
async def services(nats_server: str, database_url: str) -> AsyncIterator[list[Service]]:
    started = []
    for instance in ("o-1", "o-2"):
        settings = OrchestratorSettings(nats_url=nats_server, database_url=database_url,
                                        instance_id=instance, agents_dir=REPO_AGENTS)  # fmt: skip
        service, _ = build(settings, environ={})
        await service.start()
        started.append(service)
    yield started
    for service in started:
        await service.stop()


@pytest.fixture
async def client(nats_server: str) -> AsyncIterator[Client]:
    nc = await nats.connect(nats_server)
    yield nc
    await nc.drain()


class Tap:
    def __init__(self) -> None:
        self.events: list[CallEvent] = []

    def of(self, kind: type[Any], call_id: str | None = None) -> list[Any]:
        return [e for e in self.events
                if isinstance(e, kind) and call_id in (None, e.call_id)]  # fmt: skip


async def _tap(nc: Client) -> Tap:
    tap = Tap()

    async def on_event(msg: Msg) -> None:
        tap.events.append(parse_event(msg.data))

    async def on_say(msg: Msg) -> None:
        if msg.reply:
            await msg.respond(b"")

    await nc.subscribe(subjects.EVENTS_ALL, cb=on_event)
    await nc.subscribe("vb.ctl.*.say", cb=on_say)
    await nc.flush()
    return tap


async def _publish(nc: Client, event: Envelope) -> None:
    await nc.jetstream().publish(event.subject, event.to_bytes(), headers={"Nats-Msg-Id": event.id})


def _started(tenant: str, agent_id: str, context: dict[str, str] | None = None) -> CallStarted:
    return CallStarted(
        tenant_id=tenant, call_id=new_id(), source="test/1",
        data=CallStartedData(direction=Direction.INBOUND, provider="twilio", agent_id=agent_id,
                             gateway_instance="gw-1", context=context or {}),
    )  # fmt: skip


async def _until(check: Callable[[], bool], what: str) -> None:
    try:
        async with asyncio.timeout(20):
            while not check():
                await asyncio.sleep(0.02)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


async def test_a_new_version_is_used_by_the_next_call_and_live_calls_keep_theirs(
    services: list[Service], client: Client
) -> None:
    rpc = RpcClient(client, timeout_s=10)
    tap = await _tap(client)
    created = await rpc.ask(
        api.AGENTS_CREATE,
        api.CreateAgent(tenant_id="acme", agent_id="support", definition=definition("one")),
        api.AgentRecordReply,
    )
    assert created.record is not None
    assert created.record.version == 1

    first = _started("acme", "support")
    await _publish(client, first)
    await _until(lambda: tap.of(AgentReply, first.call_id), "the first call's greeting")
    assert tap.of(AgentReply, first.call_id)[0].data.agent_version == 1

    updated = await rpc.ask(api.AGENTS_UPDATE, api.UpdateAgent(
        tenant_id="acme", agent_id="support", definition=definition("two"),
        expected_version=1), api.AgentRecordReply)  # fmt: skip
    assert updated.record is not None
    assert updated.record.version == 2
    await _until(lambda: any(e.data.version == 2 for e in tap.of(AgentUpdated)), "agent.updated")

    second = _started("acme", "support")
    await _publish(client, second)
    await _until(lambda: tap.of(AgentReply, second.call_id), "the second call's greeting")
    greeting = tap.of(AgentReply, second.call_id)[0]
    assert (greeting.data.agent_version, greeting.data.text) == (2, "Hello from two.")

    # The live call still runs version 1, whichever instance holds it.
    line = TranscriptFinal(tenant_id="acme", call_id=first.call_id, source="test/1",
                           data=TranscriptFinalData(utterance_id="u1", text="hello",
                                                    start_ms=0, end_ms=500))  # fmt: skip
    await _publish(client, line)
    await _until(lambda: len(tap.of(AgentReply, first.call_id)) >= 2, "the first call's answer")
    answer = tap.of(AgentReply, first.call_id)[1]
    assert (answer.data.agent_version, answer.data.text) == (1, "one")

    profile = await rpc.ask(AGENTS_GET, GetAgent(tenant_id="acme", agent_id="support"),
                            ProfileReply)  # fmt: skip
    assert profile.agent is not None
    assert profile.agent.version == 2


async def test_another_tenant_gets_404_and_its_calls_are_refused(
    services: list[Service], client: Client
) -> None:
    rpc = RpcClient(client, timeout_s=10)
    tap = await _tap(client)
    await rpc.ask(
        api.AGENTS_CREATE,
        api.CreateAgent(tenant_id="acme", agent_id="private", definition=definition("x")),
        api.AgentRecordReply,
    )
    with pytest.raises(RemoteError) as caught:
        await rpc.ask(api.AGENTS_VERSION, api.GetAgentVersion(tenant_id="globex",
                      agent_id="private"), api.AgentRecordReply)  # fmt: skip
    assert caught.value.status == 404
    call = _started("globex", "private")
    await _publish(client, call)
    await _until(lambda: tap.of(CallError, call.call_id), "the refusal")
    assert tap.of(CallError, call.call_id)[0].data.code is ErrorCode.UNKNOWN_AGENT
    # The shared templates (the agents folder) serve every tenant.
    shared = await rpc.ask(api.AGENTS_VERSION, api.GetAgentVersion(tenant_id="globex",
                           agent_id="demo-scripted"), api.AgentRecordReply)  # fmt: skip
    assert shared.record is not None
    assert shared.record.template


async def test_a_missing_required_variable_is_a_422_and_a_call_error(
    services: list[Service], client: Client
) -> None:
    rpc = RpcClient(client, timeout_s=10)
    tap = await _tap(client)
    needs = definition("x", variables=[{"name": "customer_id", "required": True}])
    await rpc.ask(
        api.AGENTS_CREATE,
        api.CreateAgent(tenant_id="acme", agent_id="needs", definition=needs),
        api.AgentRecordReply,
    )
    with pytest.raises(RemoteError) as caught:
        await rpc.ask(
            api.AGENTS_CHECK_CONTEXT,
            api.CheckCallContext(tenant_id="acme", agent_id="needs", context={}),
            api.ContextCheckReply,
        )
    assert caught.value.status == 422
    assert caught.value.message == "context.customer_id: required variable is missing"
    ok = await rpc.ask(
        api.AGENTS_CHECK_CONTEXT,
        api.CheckCallContext(tenant_id="acme", agent_id="needs", context={"customer_id": "7"}),
        api.ContextCheckReply,
    )
    assert ok.version == 1
    call = _started("acme", "needs")
    await _publish(client, call)
    await _until(lambda: tap.of(CallError, call.call_id), "the refusal")
    error = tap.of(CallError, call.call_id)[0]
    assert error.data.code is ErrorCode.INVALID_CONTEXT
    assert "context.customer_id: required variable is missing" in error.data.message
    # A bad save names the field; nothing is stored.
    broken = definition("x", flow={"initial": "a", "nodes": [{"id": "a", "transitions": [
        {"name": "go", "description": "d", "target": "billing"}]}]})  # fmt: skip
    with pytest.raises(RemoteError) as refused:
        await rpc.ask(
            api.AGENTS_CREATE,
            api.CreateAgent(tenant_id="acme", agent_id="broken", definition=broken),
            api.AgentRecordReply,
        )
    assert refused.value.status == 422
    assert "flow.nodes[0].transitions[0].target: unknown node 'billing'" in refused.value.message
