"""The recorder's call bookkeeping with an in-memory bus: races around a call's start."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, cast

import pytest
from nats.js.errors import NotFoundError

from voicebus.contracts.events import (
    CallEnded,
    CallEndedData,
    CallStarted,
    CallStartedData,
    Direction,
    EndReason,
    RecordingReady,
)
from voicebus.recorder.errors import RecorderStoppingError
from voicebus.recorder.handlers import Recorder
from voicebus.recorder.settings import RecorderSettings
from voicebus.runtime.service import Service

pytestmark = pytest.mark.unit


class _Sub:
    def __init__(self, subject: str) -> None:
        self.subject = subject
        self.drained = False

    async def drain(self) -> None:
        self.drained = True


class _Nc:
    """Subscribes once ``gate`` opens, like a slow round trip to the server."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.subs: list[_Sub] = []

    async def subscribe(self, subject: str, cb: Callable[[Any], Awaitable[None]]) -> _Sub:
        await self.gate.wait()
        self.subs.append(_Sub(subject))
        return self.subs[-1]


class _Js:
    """A stream holding no event of the call."""

    async def get_last_msg(self, _stream: str, _subject: str) -> Any:
        raise NotFoundError


class _Broker:
    def __init__(self) -> None:
        self.published: list[RecordingReady] = []

    async def publish(self, body: bytes, **_kwargs: Any) -> object:
        self.published.append(RecordingReady.model_validate_json(body))
        return object()  # the PubAck


class _Service:
    def __init__(self) -> None:
        self.nc = _Nc()
        self.js = _Js()
        self.broker = _Broker()


def _recorder(tmp_path: Path) -> tuple[Recorder, _Service]:
    fake = _Service()
    settings = RecorderSettings(instance_id="r1", dir=tmp_path)
    return Recorder(cast(Service, fake), settings), fake


def _started(call_id: str = "c1") -> CallStarted:
    return CallStarted(
        tenant_id="acme", call_id=call_id, source="test/1",
        data=CallStartedData(direction=Direction.INBOUND, provider="twilio", agent_id="demo",
                             gateway_instance="gw"),
    )  # fmt: skip


def _ended(call_id: str = "c1") -> CallEnded:
    return CallEnded(
        tenant_id="acme", call_id=call_id, source="test/1",
        data=CallEndedData(reason=EndReason.CALLER_HANGUP, duration_s=0.5),
    )  # fmt: skip


async def test_a_call_that_ends_while_starting_is_still_finalized(tmp_path: Path) -> None:
    recorder, fake = _recorder(tmp_path)
    starting = asyncio.create_task(recorder.start_call(_started()))
    await asyncio.sleep(0.01)  # blocked in subscribe
    await recorder.end_call(_ended())  # the caller hung up at once
    assert not fake.broker.published
    fake.nc.gate.set()
    await starting
    assert recorder.live_calls == frozenset()
    assert [s.drained for s in fake.nc.subs] == [True, True, True]
    [ready] = fake.broker.published
    assert ready.data.duration_s == 0.5
    assert (tmp_path / "acme" / "c1.wav").stat().st_size == ready.data.bytes


async def test_a_redelivered_start_records_the_call_once(tmp_path: Path) -> None:
    recorder, fake = _recorder(tmp_path)
    fake.nc.gate.set()
    await recorder.start_call(_started())
    await recorder.start_call(_started())
    assert len(fake.nc.subs) == 3  # audio in and out, flow events, once
    assert not (tmp_path / "acme" / "c1-1.wav").exists()


async def test_stopping_finalizes_live_calls_and_refuses_new_ones(tmp_path: Path) -> None:
    recorder, fake = _recorder(tmp_path)
    fake.nc.gate.set()
    await recorder.start_call(_started("c1"))
    await recorder.stop()
    assert [r.call_id for r in fake.broker.published] == ["c1"]
    with pytest.raises(RecorderStoppingError):
        await recorder.start_call(_started("c2"))
    assert not (tmp_path / "acme" / "c2.wav").exists()
