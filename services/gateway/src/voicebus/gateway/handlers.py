"""Gateway's bus subscribers: parse, decide, publish."""

from __future__ import annotations

from typing import Final

from faststream.nats import NatsBroker

from voicebus.contracts.commands import OriginateCall
from voicebus.contracts.telephony import SESSIONS_CREATE, CreateSession, SessionReply
from voicebus.gateway.browser.sessions import create_session
from voicebus.gateway.context import Gateway
from voicebus.gateway.outbound_calls import Outbound
from voicebus.runtime.consumers import command_subscriber
from voicebus.runtime.rpc import responder

RPC_QUEUE: Final = "gateway-rpc"


def register(broker: NatsBroker, gateway: Gateway, outbound: Outbound) -> None:
    """Declare the gateway's subscribers and responders on ``broker``."""

    @command_subscriber(
        broker,
        durable="gateway-originate",
        domain="call",
        verb="originate",
        description="Dial an outbound call: exactly one gateway handles each command.",
    )
    async def originate(command: OriginateCall) -> None:
        await outbound.originate(command)

    async def sessions_create(request: CreateSession) -> SessionReply:
        return await create_session(gateway, request)

    responder(broker, SESSIONS_CREATE, CreateSession, SessionReply, sessions_create,
              queue=RPC_QUEUE,
              description="Start a browser call: check the agent, publish call.initiated, "
                          "sign the stream parameters (CreateSession → SessionReply).")  # fmt: skip
