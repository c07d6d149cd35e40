"""The gateway answers originate commands on a real nats-server, exactly once each."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from typing import Any

import nats
import pytest
from nats.aio.msg import Msg

from voicebus.contracts.commands import OriginateCall, OriginateCallData
from voicebus.devkit.ports import free_port
from voicebus.gateway.app import build
from voicebus.gateway.settings import GatewaySettings

pytestmark = pytest.mark.integration


async def test_each_command_is_answered_once(embedded_nats_factory: Callable[..., Any]) -> None:
    server = embedded_nats_factory()
    # Neither an orchestrator nor an edge answers: each command waits out both lookups.
    settings = GatewaySettings(
        nats_url=server.url,
        instance_id="gw1",
        agent_lookup_timeout_s=0.5,
        account_lookup_timeout_s=0.5,
        ws_port=free_port(),
    )
    service, _app = build(settings)
    await service.start()
    nc = await nats.connect(server.url)
    seen: Counter[str] = Counter()

    async def on_event(msg: Msg) -> None:
        seen[msg.subject] += 1

    try:
        await nc.subscribe("vb.evt.>", cb=on_event)
        js = nc.jetstream()
        for i in range(5):
            command = OriginateCall(
                tenant_id="acme", call_id=f"c{i}", source="test/1",
                data=OriginateCallData(agent_id="demo", to_number="+14155550199"),
            )  # fmt: skip
            await js.publish(command.subject, command.to_bytes(),
                             headers={"Nats-Msg-Id": command.id})  # fmt: skip
        async with asyncio.timeout(60):
            while sum(seen.values()) < 10:
                await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)
        assert sum(seen.values()) == 10
        assert all(seen[f"vb.evt.acme.c{i}.call.ended"] == 1 for i in range(5))
        info = await js.stream_info("VB_COMMANDS")
        assert info.state.messages == 0  # work queue: acked commands are gone
    finally:
        await nc.drain()
        await service.stop()
