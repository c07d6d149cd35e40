"""Publishing events and commands the one way every service does it."""

from __future__ import annotations

from faststream.nats import NatsBroker
from nats.js.api import PubAck

from voicebus.contracts import streams
from voicebus.contracts.commands import ControlCommand, OriginateCall
from voicebus.contracts.events import Envelope

MSG_ID_HEADER = "Nats-Msg-Id"
JSON = "application/json"


async def publish_event(broker: NatsBroker, event: Envelope) -> PubAck:
    """Store ``event`` in ``VB_EVENTS`` and wait for the server's ack.

    The event id is the ``Nats-Msg-Id``, so a retried publish inside the
    stream's duplicate window is stored once.
    """
    ack = await broker.publish(
        event.to_bytes(),
        subject=event.subject,
        stream=streams.EVENTS.name,
        headers={MSG_ID_HEADER: event.id, "content-type": JSON},
    )
    assert ack is not None  # a publish with ``stream`` always returns the server's ack
    return ack


async def send_command(broker: NatsBroker, command: OriginateCall) -> PubAck:
    """Queue a work-queue command in ``VB_COMMANDS`` (exactly one owner handles it)."""
    ack = await broker.publish(
        command.to_bytes(),
        subject=command.subject,
        stream=streams.COMMANDS.name,
        headers={MSG_ID_HEADER: command.id, "content-type": JSON},
    )
    assert ack is not None
    return ack


async def send_control(broker: NatsBroker, command: ControlCommand) -> None:
    """Send a per-call control command on core NATS (only meaningful while the call is up)."""
    await broker.publish(
        command.to_bytes(), subject=command.subject, headers={"content-type": JSON}
    )
