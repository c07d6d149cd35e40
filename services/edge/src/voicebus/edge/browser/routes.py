"""The browser call page: ``GET /browser``, its assets, its agent list and its session endpoint.

- ``GET /browser``: a small page where a person picks an agent and talks to it
  with the microphone, seeing the live transcript (plain HTML and JavaScript
  under ``static/``, no build step, nothing loaded from elsewhere).
- ``GET /browser/agents``: the agents a caller may pick (ids and names), asked of
  the orchestrator (``vb.rpc.orchestrator.agents.list``) for the page's tenant.
- ``POST /browser/session`` ``{"agent_id": "...", "context": {...}}``: asks the
  gateway to start the call (``vb.rpc.gateway.sessions.create``: it checks the
  agent, publishes ``call.initiated`` and signs the stream parameters) and answers
  with the gateway's media WebSocket URL and those parameters. The page then talks
  to the gateway directly.

A browser cannot sign anything, so this session endpoint is open to whoever reaches
the edge: it serves development and trusted networks, and is off in production
unless ``VB_EDGE_BROWSER_PAGE`` turns it on. In production a page's own backend asks
``POST /api/v1/browser-sessions`` with its API key and hands the page only the answer.
"""

from __future__ import annotations

import logging
from importlib.resources import files
from typing import Final

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.responses import HTMLResponse, Response

from voicebus.contracts.rpc import AGENTS_LIST, AgentsPage, ListAgents
from voicebus.contracts.telephony import (
    MAX_CONTEXT_VARS,
    SESSIONS_CREATE,
    BrowserSession,
    CreateSession,
    SessionReply,
)
from voicebus.edge.api.ratelimit import ClientLimiter, KeyRateLimiter
from voicebus.edge.settings import EdgeSettings
from voicebus.runtime.rpc import RemoteError, RpcClient, RpcFault

log = logging.getLogger(__name__)

PAGE_PATH: Final = "/browser"
SESSION_PATH: Final = "/browser/session"
_STATIC: Final = files("voicebus.edge.browser") / "static"
_ASSETS: Final = {
    "app.js": "text/javascript",
    "capture-worklet.js": "text/javascript",
    "playback-worklet.js": "text/javascript",
    "style.css": "text/css",
}
_PASSED_ON: Final = frozenset({404, 409, 422})
"""The gateway's refusals the page shows as they are; anything else is 503."""


class SessionRequest(BaseModel):
    """Body of ``POST /browser/session``."""

    model_config = ConfigDict(extra="forbid")

    agent_id: str = Field(min_length=1, max_length=128, description="Agent to talk to.")
    context: dict[str, str] = Field(
        default_factory=dict,
        max_length=MAX_CONTEXT_VARS,
        description="Call-context variables for the agent's prompt and greeting.",
    )


class AgentChoice(BaseModel):
    """An agent the page offers."""

    agent_id: str
    name: str


def browser_router(client: RpcClient, settings: EdgeSettings) -> APIRouter:
    """The page, its assets, the agent list and the session endpoint (none when disabled).

    Args:
        client: asks the orchestrator and the gateway.
        settings: the page's switch and tenant.
    """
    router = APIRouter(include_in_schema=False)
    if not settings.browser_page_enabled:
        return router
    tenant_id = settings.browser_page_tenant

    async def page() -> Response:
        return HTMLResponse(_STATIC.joinpath("index.html").read_text())

    async def asset(name: str) -> Response:
        media_type = _ASSETS.get(name)
        if media_type is None:
            raise HTTPException(status_code=404)
        return Response(_STATIC.joinpath(name).read_text(), media_type=media_type)

    clients = ClientLimiter(settings.unauthenticated_per_ip_per_minute)

    async def session(body: SessionRequest, request: Request) -> BrowserSession:
        # Open to anyone: each session starts a call, so each address gets a few a minute.
        wait = clients.hit(request)
        if wait is not None:
            raise HTTPException(
                status_code=429,
                detail="too many sessions from this address",
                headers={"Retry-After": KeyRateLimiter.retry_after(wait)},
            )
        return await start_session(client, tenant_id, body)

    async def agents() -> list[AgentChoice]:
        return await list_agents(client, tenant_id)

    router.add_api_route(PAGE_PATH, page, methods=["GET"])
    router.add_api_route(f"{PAGE_PATH}/static/{{name}}", asset, methods=["GET"])
    router.add_api_route(SESSION_PATH, session, methods=["POST"])
    router.add_api_route(f"{PAGE_PATH}/agents", agents, methods=["GET"])
    return router


async def start_session(client: RpcClient, tenant_id: str, body: SessionRequest) -> BrowserSession:
    """Ask the gateway to start a browser call of ``tenant_id``.

    Raises:
        HTTPException: 422 for an agent id that is not an id, 404 for an unknown agent,
            409 when the gateway takes no browser calls, 503 when it cannot be asked.
    """
    try:
        request = CreateSession(tenant_id=tenant_id, agent_id=body.agent_id, context=body.context)
    except ValidationError:
        raise HTTPException(status_code=422, detail="agent id is not a valid id") from None
    try:
        # Not idempotent: each request announces a new call (call.initiated).
        reply = await client.ask(SESSIONS_CREATE, request, SessionReply, idempotent=False)
    except RemoteError as refused:
        status = refused.status if refused.status in _PASSED_ON else 503
        raise HTTPException(status_code=status, detail=refused.message) from None
    except RpcFault as fault:
        log.warning("browser session unavailable", extra={"why": fault.code})
        raise HTTPException(status_code=503, detail="the gateway is unavailable") from None
    if reply.session is None:
        raise HTTPException(status_code=503, detail="the gateway returned no session")
    log.info("browser session started", extra={"call_id": reply.session.call_id})
    return reply.session


async def list_agents(client: RpcClient, tenant_id: str) -> list[AgentChoice]:
    """The tenant's agents, from the orchestrator.

    Raises:
        HTTPException: 503 when the orchestrator does not answer in time or refuses.
    """
    try:
        page = await client.ask(AGENTS_LIST, ListAgents(tenant_id=tenant_id), AgentsPage)
    except RpcFault as fault:
        log.warning("agent list unavailable", extra={"why": fault.code})
        raise HTTPException(status_code=503, detail="agent list unavailable") from None
    return [AgentChoice(agent_id=a.agent_id, name=a.name) for a in page.agents]
