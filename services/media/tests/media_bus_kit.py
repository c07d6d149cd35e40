"""Helpers of the media integration tests: a running media service, a call as a gateway sees it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import urllib.request
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import nats
from fakes import FakeSTT, FakeTTS
from media_kit import frames_of, until
from nats.aio.client import Client
from nats.aio.msg import Msg
from prometheus_client import REGISTRY

from voicebus.contracts import subjects
from voicebus.contracts.audio import AudioFrame, PlaybackMark, decode_frame
from voicebus.contracts.commands import Clear, Say, SayData, parse_control
from voicebus.contracts.events import (
    CallEnded,
    CallEndedData,
    CallEvent,
    CallStarted,
    CallStartedData,
    EndReason,
    parse_event,
)
from voicebus.contracts.ids import new_id
from voicebus.contracts.rpc import (
    AGENTS_GET,
    AgentProfile,
    AgentReply,
    EngineChoice,
    GetAgent,
    RpcError,
)
from voicebus.devkit.embedded_nats import EmbeddedNats
from voicebus.engines.base import STT, TTS
from voicebus.media.app import build
from voicebus.media.settings import MediaSettings
from voicebus.runtime.service import Service

TENANT = "acme"


@dataclass
class Stack:
    """A running media service, its server, a client and the fake engines it uses."""

    server: EmbeddedNats
    service: Service
    nc: Client
    stt: FakeSTT
    tts: FakeTTS
    lookups: list[GetAgent] = field(default_factory=list)


def profile(agent_id: str, stt: str = "fake-stt", tts: str = "fake-tts") -> AgentProfile:
    return AgentProfile(agent_id=agent_id, name=agent_id, stt=EngineChoice(engine=stt),
                        tts=EngineChoice(engine=tts))  # fmt: skip


async def answer_agents(nc: Client, known: dict[str, AgentProfile], seen: list[GetAgent]) -> None:
    """A fake orchestrator: the same request/reply contract, a fixed set of agents."""

    async def reply(msg: Msg) -> None:
        request = GetAgent.model_validate_json(msg.data)
        seen.append(request)
        agent = known.get(request.agent_id)
        body = (
            AgentReply(ok=True, agent=agent)
            if agent is not None
            else AgentReply(ok=False, error=RpcError(status=404, code="agent_not_found",
                                                     message="no such agent"))
        )  # fmt: skip
        await msg.respond(body.model_dump_json().encode())

    await nc.subscribe(AGENTS_GET, cb=reply)


@contextlib.asynccontextmanager
async def media_stack(
    server: EmbeddedNats,
    *,
    orchestrator: bool = True,
    agents: dict[str, AgentProfile] | None = None,
    **settings: Any,
) -> AsyncIterator[Stack]:
    """A media service whose fake orchestrator knows ``agents`` (default: ``demo``)."""
    stt, tts = FakeSTT(["where is my order"] * 10), FakeTTS(ms_per_word=130)
    STT.register("fake-stt", lambda _options, _context: stt)
    TTS.register("fake-tts", lambda _options, _context: tts)
    nc = await nats.connect(server.url)
    stack_settings = dict(nats_url=server.url, instance_id="m1", warm_engines=False,
                          smart_turn=False, default_stt="null", default_tts="silent",
                          agent_lookup_timeout_s=0.5)  # fmt: skip
    stack_settings.update(settings)
    service, _app = build(MediaSettings(**stack_settings))
    stack = Stack(server, service, nc, stt, tts)
    if orchestrator:
        await answer_agents(nc, agents or {"demo": profile("demo")}, stack.lookups)
    await service.start()
    try:
        yield stack
    finally:
        await service.stop()
        await nc.drain()


class Call:
    """One call as the gateway sees it: publishes its events and audio, records what comes back."""

    def __init__(self, stack: Stack, agent_id: str = "demo") -> None:
        self.stack = stack
        self.call_id = new_id()
        self.agent_id = agent_id
        self.events: list[CallEvent] = []
        self.out: list[AudioFrame] = []
        self.clears: list[Clear] = []
        self.seq = 0

    async def listen(self) -> None:
        nc = self.stack.nc

        async def on_event(msg: Msg) -> None:
            self.events.append(parse_event(msg.data))

        async def on_out(msg: Msg) -> None:
            self.out.append(decode_frame(msg.data, msg.headers))

        async def on_clear(msg: Msg) -> None:
            command = parse_control(msg.data)
            assert isinstance(command, Clear)
            self.clears.append(command)

        await nc.subscribe(subjects.evt_filter(TENANT, self.call_id), cb=on_event)
        await nc.subscribe(subjects.audio_out(self.call_id), cb=on_out)
        await nc.subscribe(subjects.ctl(self.call_id, subjects.CtlVerb.CLEAR), cb=on_clear)

    async def publish(self, event: CallStarted | CallEnded) -> None:
        js = self.stack.nc.jetstream()
        await js.publish(event.subject, event.to_bytes(), headers={"Nats-Msg-Id": event.id})

    async def start(self) -> None:
        await self.listen()
        await self.announce()

    async def announce(self) -> None:
        await self.publish(CallStarted(
            tenant_id=TENANT, call_id=self.call_id, source="gateway/test",
            data=CallStartedData(direction="inbound", provider="twilio", agent_id=self.agent_id,
                                 gateway_instance="gw-test"),
        ))  # fmt: skip
        await until(lambda: subscribed(self.stack.server, subjects.audio_in(self.call_id)))

    async def end(self) -> None:
        data = CallEndedData(reason=EndReason.CALLER_HANGUP)
        await self.publish(
            CallEnded(tenant_id=TENANT, call_id=self.call_id, source="gateway/test", data=data)
        )

    async def speak(self, pcm: bytes) -> None:
        """Caller audio, as the gateway publishes it (fast: order is all that matters)."""
        nc = self.stack.nc
        for frame in frames_of(pcm, start_seq=self.seq, start_ts=self.seq * 20):
            await nc.publish(subjects.audio_in(self.call_id), frame.pcm, headers=frame.headers())
            self.seq += 1
        await nc.flush()

    async def say(self, utterance_id: str, *chunks: str, agent_id: str | None = None) -> None:
        for seq, text in enumerate(chunks):
            data = SayData(utterance_id=utterance_id, seq=seq, text=text,
                           final=seq == len(chunks) - 1, agent_id=agent_id)  # fmt: skip
            command = Say(tenant_id=TENANT, call_id=self.call_id, source="orchestrator/test",
                          data=data)  # fmt: skip
            await self.stack.nc.publish(command.subject, command.to_bytes())

    async def mark(self, utterance_id: str, seq: int, played_ms: int) -> None:
        mark = PlaybackMark(utterance_id, seq, played_ms)
        await self.stack.nc.publish(subjects.audio_played(self.call_id), b"",
                                    headers=mark.headers())  # fmt: skip

    @property
    def media_events(self) -> list[CallEvent]:
        """Events media published about the call."""
        return [e for e in self.events if e.source.startswith("media/")]

    def of(self, type_: str) -> list[Any]:
        return [e for e in self.media_events if e.type == type_]


def subscriptions(server: EmbeddedNats) -> list[str]:
    url = f"{server.monitor_url}/subsz?subs=1&limit=100000"
    with urllib.request.urlopen(url) as response:  # noqa: S310  # http on loopback, fixed
        return [s["subject"] for s in json.load(response).get("subscriptions_list", [])]


def subscribed(server: EmbeddedNats, subject: str) -> bool:
    return subject in subscriptions(server)


def live_tasks() -> set[asyncio.Task[Any]]:
    return {t for t in asyncio.all_tasks() if not t.done()}


def task_origin(task: asyncio.Task[Any]) -> str:
    """Where a task's coroutine comes from, and the subject of a subscription task."""
    coro = task.get_coro()
    code = getattr(coro, "cr_code", None)
    frame = getattr(coro, "cr_frame", None)
    owner = frame.f_locals.get("self") if frame is not None else None
    return f"{getattr(code, 'co_filename', '?')} {getattr(owner, '_subject', '')}"


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0
