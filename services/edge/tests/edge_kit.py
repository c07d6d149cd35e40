"""Test kit: the real edge app served by uvicorn in-process, and the peers tests drive.

- ``serve_edge``: the edge (``build()`` + uvicorn) on a free port, its database and NATS real.
- ``FakeOrchestrator``: answers the agent lookups with the request/reply contract.
- ``FakeGateway``: answers ``vb.rpc.gateway.sessions.create`` as the gateway would.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import nats
import uvicorn
from nats.aio.client import Client
from nats.aio.msg import Msg

from voicebus.contracts.agents.api import (
    AGENTS_CHECK_CONTEXT,
    CheckCallContext,
    ContextCheckReply,
)
from voicebus.contracts.rpc import (
    AGENTS_GET,
    AGENTS_LIST,
    AgentProfile,
    AgentReply,
    AgentsPage,
    EngineChoice,
    GetAgent,
    ListAgents,
    RpcError,
)
from voicebus.contracts.telephony import (
    SESSIONS_CREATE,
    BrowserSession,
    CreateSession,
    SessionReply,
)
from voicebus.devkit.ports import free_port
from voicebus.edge.app import build
from voicebus.edge.settings import EdgeSettings
from voicebus.runtime.service import Service

WAIT_S = 15.0


async def wait_for(predicate: Callable[[], bool], timeout: float = WAIT_S) -> None:
    """Poll ``predicate`` until it holds; fail the test after ``timeout`` seconds."""
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.02)


@dataclass
class RunningEdge:
    """An edge serving HTTP on a loopback port."""

    settings: EdgeSettings
    service: Service
    port: int
    nc: Client
    """The test's own NATS connection (fake owners, observers)."""

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@asynccontextmanager
async def serve_edge(nats_url: str, **overrides: Any) -> AsyncIterator[RunningEdge]:
    """The real edge app, started by uvicorn's lifespan, on ``nats_url``."""
    port = free_port()
    settings = EdgeSettings(nats_url=nats_url, instance_id="edge-test", http_port=port, **overrides)
    service, app = build(settings)
    config = uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="on", log_config=None)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    nc = await nats.connect(nats_url, name="edge-test")
    try:
        await wait_for(lambda: server.started or task.done(), timeout=30)
        assert server.started, "the edge did not start"
        yield RunningEdge(settings, service, port, nc)
    finally:
        await nc.drain()
        server.should_exit = True
        await asyncio.wait_for(task, timeout=30)


def profile(agent_id: str) -> AgentProfile:
    """A minimal agent profile."""
    return AgentProfile(
        agent_id=agent_id,
        name=agent_id.title(),
        stt=EngineChoice(engine="whisper-local"),
        tts=EngineChoice(engine="hibari"),
    )


class FakeOrchestrator:
    """Answers ``agents.get``, ``agents.list`` and ``agents.check_context`` (every context is
    accepted) for a fixed set of agents (any tenant)."""

    def __init__(self, agents: list[str]) -> None:
        self.agents = agents
        self.listed: list[ListAgents] = []

    async def start(self, nc: Client) -> FakeOrchestrator:
        await nc.subscribe(AGENTS_GET, cb=self._get)
        await nc.subscribe(AGENTS_LIST, cb=self._list)
        await nc.subscribe(AGENTS_CHECK_CONTEXT, cb=self._check)
        await nc.flush()
        return self

    async def _get(self, msg: Msg) -> None:
        request = GetAgent.model_validate_json(msg.data)
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

    async def _list(self, msg: Msg) -> None:
        self.listed.append(ListAgents.model_validate_json(msg.data))
        page = AgentsPage(ok=True, agents=[profile(a) for a in self.agents])
        await msg.respond(page.model_dump_json().encode())


class FakeGateway:
    """Answers ``vb.rpc.gateway.sessions.create``: a session for known agents, else a refusal.

    Attributes:
        asked: every request, in order.
        refusal: when set, the error every request gets.
    """

    def __init__(self, agents: list[str]) -> None:
        self.agents = agents
        self.asked: list[CreateSession] = []
        self.refusal: RpcError | None = None

    async def start(self, nc: Client) -> FakeGateway:
        await nc.subscribe(SESSIONS_CREATE, cb=self._create)
        await nc.flush()
        return self

    async def _create(self, msg: Msg) -> None:
        request = CreateSession.model_validate_json(msg.data)
        self.asked.append(request)
        if self.refusal is not None:
            reply = SessionReply(ok=False, error=self.refusal)
        elif request.agent_id not in self.agents:
            error = RpcError(status=404, code="agent_not_found", message="unknown agent")
            reply = SessionReply(ok=False, error=error)
        else:
            session = BrowserSession(
                call_id=f"call-{len(self.asked)}",
                ws_url="ws://gateway.test/ws/browser",
                parameters={"call_id": f"call-{len(self.asked)}", "vb_token": "signed"},
                expires_in_s=300,
            )
            reply = SessionReply(ok=True, session=session)
        await msg.respond(reply.model_dump_json().encode())
