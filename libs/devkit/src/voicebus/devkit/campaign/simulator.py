"""A simulated provider for campaign tests and the benchmark.

It stands where a gateway would: it takes ``call.originate`` commands off the
``VB_COMMANDS`` work queue and publishes the call events a gateway would for
the callee's behaviour, chosen by the number dialed (its last digit by
default): the callee answers, is busy, does not answer, the call fails, or an
answering machine picks up. It answers the per-call control commands a
campaign sends (say, hangup) so they count as delivered, and it keeps a log of
every dial for the test to check (double dials, concurrency).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final, TypeVar

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig

from voicebus.contracts import streams, subjects
from voicebus.contracts.commands import OriginateCall
from voicebus.contracts.events import (
    AmdDetected,
    AmdDetectedData,
    AmdResult,
    CallEnded,
    CallEndedData,
    CallStarted,
    CallStartedData,
    Direction,
    EndReason,
    Envelope,
)

E = TypeVar("E", bound=Envelope)


class Callee(StrEnum):
    """What the simulated callee does."""

    ANSWER = "answer"
    BUSY = "busy"
    NO_ANSWER = "no_answer"
    FAIL = "fail"
    MACHINE = "machine"
    AT_CAPACITY = "at_capacity"
    """Not dialed: the gateway found the tenant at its ``max_concurrent_calls``."""


_BY_DIGIT = {
    "0": Callee.ANSWER, "1": Callee.ANSWER, "2": Callee.ANSWER, "3": Callee.ANSWER,
    "4": Callee.ANSWER, "5": Callee.BUSY, "6": Callee.NO_ANSWER, "7": Callee.FAIL,
    "8": Callee.MACHINE, "9": Callee.ANSWER,
}  # fmt: skip


_NOT_ANSWERED: Final = {
    Callee.BUSY: EndReason.BUSY,
    Callee.NO_ANSWER: EndReason.NO_ANSWER,
    Callee.FAIL: EndReason.FAILED,
    Callee.AT_CAPACITY: EndReason.CONCURRENCY_LIMIT,
}
"""Callees whose call ends before it starts, and the ``call.ended`` reason of each."""


def by_last_digit(number: str) -> Callee:
    """0-4 and 9 answer, 5 busy, 6 no answer, 7 fails, 8 answering machine."""
    return _BY_DIGIT[number[-1]]


@dataclass(frozen=True, slots=True)
class Dial:
    """One originate command the simulated provider received."""

    call_id: str
    to_number: str
    campaign_id: str | None
    attempt_id: str | None
    behaviour: Callee


@dataclass(slots=True)
class SimulatedProvider:
    """Consumes originate commands and plays the callees.

    Args:
        nc: a connected NATS client.
        behaviour: the callee's behaviour for a number.
        talk_s: how long an answered call lasts.
        ring_s: ringing before an answer or a busy/no-answer/fail result.
        durable: the work-queue consumer's name.
    """

    nc: Client
    behaviour: Callable[[str], Callee] = by_last_digit
    talk_s: float = 0.05
    ring_s: float = 0.01
    durable: str = "sim-provider-originate"
    dials: list[Dial] = field(default_factory=list)
    received: Counter[str] = field(default_factory=Counter)
    active: int = 0
    max_active: int = 0
    hangups: set[str] = field(default_factory=set)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _ctl: object | None = None
    _sub: object | None = None
    _hung_up: dict[str, asyncio.Event] = field(default_factory=dict)

    async def start(self) -> None:
        """Start consuming."""
        js = self.nc.jetstream()
        config = ConsumerConfig(
            durable_name=self.durable,
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=30,
            max_ack_pending=10_000,
        )
        # A push consumer: each command arrives as soon as it is stored (a pull with a
        # batch would hold the first command until the batch fills or the pull expires).
        self._sub = await js.subscribe(
            subjects.cmd("call", "originate"),
            durable=self.durable,
            stream=streams.COMMANDS.name,
            config=config,
            cb=self._accept,
            manual_ack=True,
        )
        self._ctl = await self.nc.subscribe(f"{subjects.ROOT}.ctl.*.*", cb=self._on_control)

    async def stop(self) -> None:
        """Stop consuming; calls in progress are abandoned."""
        if self._sub is not None:
            await self._sub.unsubscribe()  # type: ignore[attr-defined]
        for task in list(self._tasks):
            task.cancel()
        if self._ctl is not None:
            await self._ctl.unsubscribe()  # type: ignore[attr-defined]

    @property
    def double_dials(self) -> dict[str, int]:
        """Call ids received more than once (the same attempt dialed twice)."""
        return {k: n for k, n in self.received.items() if n > 1}

    async def _accept(self, msg: Msg) -> None:
        command = OriginateCall.model_validate_json(msg.data)
        await msg.ack()
        self.received[command.call_id] += 1
        if self.received[command.call_id] > 1:
            return
        callee = self.behaviour(command.data.to_number)
        d = command.data
        self.dials.append(Dial(command.call_id, d.to_number, d.campaign_id, d.attempt_id, callee))
        task = asyncio.create_task(self._play(command, callee))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _on_control(self, msg: Msg) -> None:
        if msg.subject.endswith(".hangup"):
            call_id = msg.subject.split(".")[2]
            self.hangups.add(call_id)
            self._hung_up.setdefault(call_id, asyncio.Event()).set()
        if msg.reply:
            await msg.respond(b"")

    async def _publish(self, event: Envelope) -> None:
        await self.nc.jetstream().publish(
            event.subject, event.to_bytes(), headers={"Nats-Msg-Id": event.id}
        )

    async def _play(self, command: OriginateCall, callee: Callee) -> None:
        env = {"tenant_id": command.tenant_id, "call_id": command.call_id, "source": "sim/1"}

        def event(cls: type[E], data: object) -> E:
            return cls.model_validate({**env, "data": data})

        self.active += 1
        self.max_active = max(self.max_active, self.active)
        try:
            await asyncio.sleep(self.ring_s)
            reason = _NOT_ANSWERED.get(callee)
            if reason is not None:
                await self._publish(event(CallEnded, CallEndedData(reason=reason)))
                return
            d = command.data
            started = event(
                CallStarted,
                CallStartedData(
                    direction=Direction.OUTBOUND, provider="sim", agent_id=d.agent_id,
                    from_number=d.from_number, to_number=d.to_number, context=d.context,
                    gateway_instance="sim",
                ),
            )  # fmt: skip
            await self._publish(started)
            began = time.monotonic()
            if d.detect_machine:
                result = AmdResult.MACHINE if callee is Callee.MACHINE else AmdResult.HUMAN
                amd = event(AmdDetected, AmdDetectedData(result=result, detector="provider"))
                await self._publish(amd)
            reason = EndReason.CALLER_HANGUP
            if callee is Callee.MACHINE:
                hung_up = self._hung_up.setdefault(command.call_id, asyncio.Event())
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(hung_up.wait(), max(self.talk_s, 2.0))
                if hung_up.is_set():
                    reason = EndReason.MACHINE_DETECTED
                self._hung_up.pop(command.call_id, None)
            else:
                await asyncio.sleep(self.talk_s)
            duration = round(time.monotonic() - began, 3)
            ended = event(CallEnded, CallEndedData(reason=reason, duration_s=duration))
            await self._publish(ended)
        finally:
            self.active -= 1
