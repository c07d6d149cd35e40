"""Test kit: the real gateway app served by uvicorn in-process, and the peers tests drive.

- ``serve_gateway``: the gateway (``build()`` + uvicorn, and its lean media
  WebSocket server) on free ports.
- ``FakeOrchestrator``: answers ``AGENTS_GET`` with the request/reply contract.
- ``EventLog``: every ``vb.evt.>`` message, parsed.
- ``TwilioPeer``: a minimal Twilio Media Streams client (signed webhook, the
  stream's messages in and out).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import nats
import uvicorn
from nats.aio.client import Client
from nats.aio.msg import Msg
from pydantic import SecretStr
from twilio.request_validator import RequestValidator
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from voicebus.contracts.agents.api import (
    AGENTS_CHECK_CONTEXT,
    CheckCallContext,
    ContextCheckReply,
)
from voicebus.contracts.events import CallEvent, parse_event
from voicebus.contracts.rpc import (
    AGENTS_GET,
    AgentProfile,
    AgentReply,
    EngineChoice,
    GetAgent,
    RpcError,
)
from voicebus.contracts.subjects import EVENTS_ALL
from voicebus.contracts.telephony import ACCOUNTS_GET, AccountReply
from voicebus.devkit.ports import free_port
from voicebus.gateway.app import build
from voicebus.gateway.settings import GatewaySettings
from voicebus.runtime.http import WS_PROTOCOL
from voicebus.runtime.service import Service

AUTH_TOKEN = "test-auth-token-0123456789abcdef"
STREAM_SECRET = "test-stream-secret-0123456789abcdef"
WAIT_S = 15.0


async def wait_for(predicate: Callable[[], bool], timeout: float = WAIT_S) -> None:
    """Poll ``predicate`` until it holds; fail the test after ``timeout`` seconds."""
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.02)


@dataclass
class RunningGateway:
    """A gateway serving HTTP and WebSockets on a loopback port."""

    settings: GatewaySettings
    service: Service
    port: int
    nc: Client
    """The test's own NATS connection (the fake orchestrator, observers)."""

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        """Base URL of the media WebSocket server (``ws://127.0.0.1:<ws port>``)."""
        return f"ws://127.0.0.1:{self.settings.ws_port}"

    def webhook_url(self, agent: str, query: str = "") -> str:
        url = f"{self.settings.public_url}/telephony/twilio/inbound/{agent}"
        return f"{url}?{query}" if query else url


@asynccontextmanager
async def serve_gateway(nats_url: str, **overrides: Any) -> AsyncIterator[RunningGateway]:
    """The real gateway app, started by uvicorn's lifespan, on ``nats_url``."""
    port = free_port()
    # No edge runs in these tests: a tenant account lookup finds nobody, quickly.
    overrides.setdefault("account_lookup_timeout_s", 0.3)
    overrides.setdefault("ws_port", free_port())
    overrides.setdefault("instance_id", "gw-test")
    overrides.setdefault("public_url", f"http://127.0.0.1:{port}")
    settings = GatewaySettings(
        nats_url=nats_url,
        http_port=port,
        twilio_auth_token=SecretStr(AUTH_TOKEN),
        stream_secret=SecretStr(STREAM_SECRET),
        hangup_quiet_s=0.2,
        hangup_drain_timeout_s=10.0,
        **overrides,
    )
    service, app = build(settings)
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, ws=WS_PROTOCOL, lifespan="on", log_config=None
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    nc = await nats.connect(nats_url, name="gateway-test")
    try:
        await wait_for(lambda: server.started or task.done(), timeout=30)
        assert server.started, "the gateway did not start"
        yield RunningGateway(settings, service, port, nc)
    finally:
        await nc.drain()
        server.should_exit = True
        await asyncio.wait_for(task, timeout=30)


def profile(agent_id: str) -> AgentProfile:
    """A minimal agent profile."""
    return AgentProfile(
        agent_id=agent_id,
        name=agent_id,
        stt=EngineChoice(engine="whisper-local"),
        tts=EngineChoice(engine="hibari"),
    )


class FakeOrchestrator:
    """Answers ``vb.rpc.orchestrator.agents.get`` and ``.check_context`` for a fixed set of
    agents (every context is accepted)."""

    def __init__(self, agents: list[str]) -> None:
        self.agents = set(agents)
        self.requests: list[GetAgent] = []

    async def start(self, nc: Client) -> FakeOrchestrator:
        await nc.subscribe(AGENTS_GET, cb=self._answer)
        await nc.subscribe(AGENTS_CHECK_CONTEXT, cb=self._check)
        await nc.flush()
        return self

    async def _answer(self, msg: Msg) -> None:
        request = GetAgent.model_validate_json(msg.data)
        self.requests.append(request)
        if request.agent_id in self.agents:
            reply = AgentReply(ok=True, agent=profile(request.agent_id))
        else:
            error = RpcError(status=404, code="agent_not_found", message="no such agent")
            reply = AgentReply(ok=False, error=error)
        await msg.respond(reply.model_dump_json().encode())

    async def _check(self, msg: Msg) -> None:
        request = CheckCallContext.model_validate_json(msg.data)
        if request.agent_id in self.agents:
            reply = ContextCheckReply(ok=True, agent_id=request.agent_id, version=1)
        else:
            error = RpcError(status=404, code="agent_not_found", message="no such agent")
            reply = ContextCheckReply(ok=False, error=error)
        await msg.respond(reply.model_dump_json().encode())


class NoAccounts:
    """The edge's account lookup (``vb.rpc.edge.accounts.get``) for a deployment where no
    tenant stored an account: every lookup is a 404 (a missing edge is a 503 instead)."""

    async def start(self, nc: Client) -> NoAccounts:
        await nc.subscribe(ACCOUNTS_GET, cb=self._answer)
        await nc.flush()
        return self

    async def _answer(self, msg: Msg) -> None:
        error = RpcError(status=404, code="account_not_found", message="no such account")
        await msg.respond(AccountReply(ok=False, error=error).model_dump_json().encode())


class EventLog:
    """Every event published on ``vb.evt.>`` while it listens (never replies)."""

    def __init__(self) -> None:
        self.events: list[CallEvent] = []

    async def start(self, nc: Client) -> EventLog:
        async def on_event(msg: Msg) -> None:
            self.events.append(parse_event(msg.data))

        await nc.subscribe(EVENTS_ALL, cb=on_event)
        await nc.flush()
        return self

    def of(self, event_type: str, call_id: str | None = None) -> list[CallEvent]:
        return [
            e
            for e in self.events
            if e.type == event_type and (call_id is None or e.call_id == call_id)
        ]

    async def one(self, event_type: str, call_id: str | None = None) -> CallEvent:
        await wait_for(lambda: bool(self.of(event_type, call_id)))
        return self.of(event_type, call_id)[0]


def sign(url: str, params: dict[str, str], token: str = AUTH_TOKEN) -> str:
    """``X-Twilio-Signature`` for a POST to ``url``, computed by the twilio SDK."""
    return str(RequestValidator(token).compute_signature(url, params))


def parse_twiml(twiml: str | bytes) -> ET.Element:
    """The root element of a TwiML document this gateway produced."""
    return ET.fromstring(twiml)  # noqa: S314 - our own answer, not outside input


def twiml_stream(twiml: str) -> tuple[str, dict[str, str]]:
    """The ``<Connect><Stream>`` URL and its ``<Parameter>``s from a TwiML answer."""
    stream = parse_twiml(twiml).find("./Connect/Stream")
    assert stream is not None, twiml
    params = {p.attrib["name"]: p.attrib["value"] for p in stream.findall("Parameter")}
    return stream.attrib["url"], params


WEBHOOK_FORM = {
    "CallSid": "CA0123456789abcdef0123456789abcdef",
    "AccountSid": "AC0123456789abcdef0123456789abcdef",
    "From": "+14155550100",
    "To": "+14155550199",
    "Direction": "inbound",
    "CallStatus": "ringing",
}


async def post_webhook(
    gw: RunningGateway, agent: str, *, query: str = "", signature: str | None = None
) -> httpx.Response:
    """POST Twilio's inbound voice webhook, signed unless ``signature`` is given."""
    url = gw.webhook_url(agent, query)
    headers = {
        "X-Twilio-Signature": signature if signature is not None else sign(url, WEBHOOK_FORM)
    }
    path = url.removeprefix(gw.settings.public_url)
    async with httpx.AsyncClient(base_url=gw.base_url, timeout=WAIT_S) as client:
        return await client.post(path, data=WEBHOOK_FORM, headers=headers)


@dataclass
class TwilioPeer:
    """Twilio's side of one Media Streams WebSocket, driven step by step by a test."""

    ws: ClientConnection
    stream_sid: str = "MZ0123456789abcdef0123456789abcdef"
    received: list[dict[str, Any]] = field(default_factory=list)
    closed: asyncio.Event = field(default_factory=asyncio.Event)
    close_code: int | None = None
    _seq: int = 0
    _reader: asyncio.Task[None] | None = None

    @classmethod
    async def open(cls, url: str) -> TwilioPeer:
        peer = cls(await connect(url, max_size=None))
        peer._reader = asyncio.create_task(peer._read())
        return peer

    async def _read(self) -> None:
        try:
            async for message in self.ws:
                self.received.append(json.loads(message))
        except ConnectionClosed:
            pass  # close_code tells how
        finally:
            self.close_code = self.ws.close_code
            self.closed.set()

    def of(self, event: str) -> list[dict[str, Any]]:
        return [m for m in self.received if m.get("event") == event]

    async def send(self, message: dict[str, Any] | str | bytes) -> None:
        await self.ws.send(message if isinstance(message, str | bytes) else json.dumps(message))

    def _next(self) -> str:
        self._seq += 1
        return str(self._seq)

    async def connected(self) -> None:
        await self.send({"event": "connected", "protocol": "Call", "version": "1.0.0"})

    async def start(self, params: dict[str, str]) -> None:
        await self.send({
            "event": "start",
            "sequenceNumber": self._next(),
            "streamSid": self.stream_sid,
            "start": {
                "streamSid": self.stream_sid,
                "accountSid": WEBHOOK_FORM["AccountSid"],
                "callSid": WEBHOOK_FORM["CallSid"],
                "tracks": ["inbound"],
                "customParameters": params,
                "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
            },
        })  # fmt: skip

    async def media(self, ulaw: bytes, chunk: int, timestamp: int) -> None:
        await self.send({
            "event": "media",
            "sequenceNumber": self._next(),
            "streamSid": self.stream_sid,
            "media": {"track": "inbound", "chunk": str(chunk), "timestamp": str(timestamp),
                      "payload": base64.b64encode(ulaw).decode()},
        })  # fmt: skip

    async def dtmf(self, digit: str) -> None:
        await self.send({
            "event": "dtmf", "sequenceNumber": self._next(), "streamSid": self.stream_sid,
            "dtmf": {"track": "inbound_track", "digit": digit},
        })  # fmt: skip

    async def mark(self, name: str) -> None:
        await self.send({
            "event": "mark", "sequenceNumber": self._next(), "streamSid": self.stream_sid,
            "mark": {"name": name},
        })  # fmt: skip

    async def stop(self) -> None:
        await self.send({
            "event": "stop", "sequenceNumber": self._next(), "streamSid": self.stream_sid,
            "stop": {"accountSid": WEBHOOK_FORM["AccountSid"], "callSid": WEBHOOK_FORM["CallSid"]},
        })  # fmt: skip

    async def close(self) -> None:
        await self.ws.close()
        if self._reader is not None:
            await self._reader


def random_ulaw(n: int = 160) -> bytes:
    """``n`` bytes of μ-law audio."""
    return os.urandom(n)
