"""Media's drain on SIGTERM: no new call, live calls go on until they end or the bound passes."""

from __future__ import annotations

import asyncio

import pytest

from voicebus.contracts.events import (
    CallEnded,
    CallEndedData,
    CallStarted,
    CallStartedData,
    Direction,
    EndReason,
)
from voicebus.media.calls import MediaCalls, MediaDrainingError
from voicebus.media.settings import MediaSettings

pytestmark = pytest.mark.unit


class FakeSession:
    """What MediaCalls asks of a live session at the end: close it."""

    def __init__(self) -> None:
        self.closed = False

    async def close(self) -> None:
        self.closed = True


def _calls_with(*call_ids: str) -> tuple[MediaCalls, dict[str, FakeSession]]:
    calls = MediaCalls(service=None, settings=MediaSettings(), models=None)  # type: ignore[arg-type]
    sessions = {call_id: FakeSession() for call_id in call_ids}
    for call_id, session in sessions.items():
        calls.sessions[call_id] = session  # type: ignore[assignment]
    calls._count()
    return calls, sessions


def _started(call_id: str) -> CallStarted:
    return CallStarted(
        tenant_id="acme", call_id=call_id, source="test/1",
        data=CallStartedData(direction=Direction.INBOUND, provider="twilio", agent_id="demo",
                             gateway_instance="gw"),
    )  # fmt: skip


def _ended(call_id: str) -> CallEnded:
    return CallEnded(
        tenant_id="acme", call_id=call_id, source="test/1",
        data=CallEndedData(reason=EndReason.CALLER_HANGUP),
    )  # fmt: skip


async def test_the_drain_ends_when_the_live_calls_do_and_refuses_new_ones() -> None:
    calls, sessions = _calls_with("c1", "c2")
    drain = asyncio.create_task(calls.drain(bound_s=60))
    await asyncio.sleep(0)
    with pytest.raises(MediaDrainingError):
        await calls.on_start(_started("c3"))  # redelivered to another instance
    assert "c3" not in calls.sessions
    await calls.on_end(_ended("c1"))
    await asyncio.sleep(0)
    assert not drain.done()  # c2 still talking
    await calls.on_end(_ended("c2"))
    await asyncio.wait_for(drain, 5)
    assert all(s.closed for s in sessions.values())


async def test_calls_still_live_at_the_bound_are_left_for_a_takeover() -> None:
    calls, sessions = _calls_with("c1")
    await asyncio.wait_for(calls.drain(bound_s=0.2), 5)
    assert list(calls.sessions) == ["c1"]  # not closed by the drain itself
    await calls.close_all()
    assert sessions["c1"].closed


async def test_an_idle_instance_does_not_wait() -> None:
    calls, _ = _calls_with()
    await asyncio.wait_for(calls.drain(bound_s=3600), 1)
    with pytest.raises(MediaDrainingError):
        await calls.on_start(_started("c1"))
