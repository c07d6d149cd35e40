"""Gateway's bus subscribers: parse, decide, publish."""

from __future__ import annotations

import logging

from faststream.nats import NatsBroker

from voicebus.contracts.commands import OriginateCall
from voicebus.gateway.dialing import refuse_originate
from voicebus.runtime.consumers import command_subscriber
from voicebus.runtime.publish import publish_event

log = logging.getLogger(__name__)

PROVIDERS: dict[str, object] = {}
"""Telephony providers that can dial; they register here as they are added."""


def register(broker: NatsBroker, source: str) -> None:
    """Declare the gateway's subscribers on ``broker``."""

    @command_subscriber(
        broker,
        durable="gateway-originate",
        domain="call",
        verb="originate",
        description="Dial an outbound call: exactly one gateway handles each command.",
    )
    async def originate(command: OriginateCall) -> None:
        # No provider can dial yet: answer the command with events rather than drop it.
        for event in refuse_originate(command, source, PROVIDERS):
            await publish_event(broker, event)
        log.warning("originate refused", extra={"call_id": command.call_id})
