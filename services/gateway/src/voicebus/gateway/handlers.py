"""Gateway's bus subscribers: parse, decide, publish."""

from __future__ import annotations

from faststream.nats import NatsBroker

from voicebus.contracts.commands import OriginateCall
from voicebus.gateway.outbound_calls import Outbound
from voicebus.runtime.consumers import command_subscriber


def register(broker: NatsBroker, outbound: Outbound) -> None:
    """Declare the gateway's subscribers on ``broker``."""

    @command_subscriber(
        broker,
        durable="gateway-originate",
        domain="call",
        verb="originate",
        description="Dial an outbound call: exactly one gateway handles each command.",
    )
    async def originate(command: OriginateCall) -> None:
        await outbound.originate(command)
