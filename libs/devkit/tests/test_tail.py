"""`voicebus bus tail` against a real NATS with JetStream."""

from __future__ import annotations

import asyncio

import pytest
from nats.aio.client import Client
from nats.js import JetStreamContext

from voicebus.contracts.events import (
    CallStarted,
    CallStartedData,
    TranscriptFinal,
    TranscriptFinalData,
)
from voicebus.contracts.ids import new_id
from voicebus.devkit.tail import TailFilter, tail
from voicebus.runtime.provision import provision

pytestmark = pytest.mark.integration


def _events(call_id: str) -> tuple[CallStarted, TranscriptFinal]:
    started = CallStarted(
        tenant_id="acme",
        call_id=call_id,
        source="test/1",
        data=CallStartedData(
            direction="inbound", provider="twilio", agent_id="demo", gateway_instance="gw"
        ),
    )
    said = TranscriptFinal(
        tenant_id="acme",
        call_id=call_id,
        source="test/1",
        data=TranscriptFinalData(utterance_id="u1", text="where is my order", start_ms=0,
                                 end_ms=900),
    )  # fmt: skip
    return started, said


async def _publish(js: JetStreamContext, *events: CallStarted | TranscriptFinal) -> None:
    for event in events:
        await js.publish(event.subject, event.to_bytes(), headers={"Nats-Msg-Id": event.id})


async def test_tail_prints_new_events_filtered_by_call_and_type(
    nats_url: str, nats_client: Client, jetstream: JetStreamContext
) -> None:
    await provision(jetstream)
    call_id = new_id()
    lines: list[str] = []
    task = asyncio.create_task(
        tail(nats_url, TailFilter(call_id=call_id, type_glob="transcript.*"), lines.append,
             count=1, timeout=10)
    )  # fmt: skip
    await asyncio.sleep(0.5)  # let the consumer start at "now"
    await _publish(jetstream, *_events(call_id))
    assert await task == 1
    assert len(lines) == 1
    assert "transcript.final.v1" in lines[0]
    assert call_id in lines[0]
    assert "where is my order" in lines[0]


async def test_tail_from_start_replays(
    nats_url: str, nats_client: Client, jetstream: JetStreamContext
) -> None:
    await provision(jetstream)
    call_id = new_id()
    await _publish(jetstream, *_events(call_id))
    lines: list[str] = []
    shown = await tail(
        nats_url, TailFilter(call_id=call_id, from_start=True), lines.append, count=2, timeout=10
    )
    assert shown == 2
    assert [line.split()[3] for line in lines] == ["call.started.v1", "transcript.final.v1"]


def test_a_bad_filter_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="invalid call id"):
        _ = TailFilter(call_id="a.b").subject
