"""Publishing events and commands the one way every service does it."""

from __future__ import annotations

import asyncio
import time

from faststream.nats import NatsBroker
from nats.aio.client import Client
from nats.errors import NoRespondersError
from nats.js.api import PubAck

from voicebus.contracts import streams
from voicebus.contracts.commands import ControlCommand, OriginateCall
from voicebus.contracts.events import Envelope
from voicebus.runtime.telemetry import inject_trace_context

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


async def deliver_control(
    nc: Client, command: ControlCommand, *, within_s: float = 5.0, reply_timeout_s: float = 2.0
) -> bool:
    """Send a per-call command and wait until its owner confirms receipt.

    Core NATS drops a message nobody is subscribed to. A call's first commands
    (the greeting's ``Say``) can be sent before the owning instance has claimed
    the call, so this asks with request/reply and retries while there is *no
    responder* — the one case where the command certainly was not delivered — for
    up to ``within_s`` seconds. A responder acknowledges on receipt, before acting.
    A reply timeout is not retried: the command may have arrived, and sending it
    twice would act twice.

    Returns:
        True once a responder acknowledged; False if none appeared in time or the
        reply timed out.
    """
    deadline = time.monotonic() + within_s
    data = command.to_bytes()
    headers = inject_trace_context({"content-type": JSON})
    while True:
        try:
            await nc.request(command.subject, data, timeout=reply_timeout_s, headers=headers)
        except NoRespondersError:
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(0.05)
            continue
        except TimeoutError:
            return False
        return True
