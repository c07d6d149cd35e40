"""Browser calls: the page, the session endpoint that starts a call, and ``WS /ws/browser``.

- ``GET /browser``: a small page where a person picks an agent and talks to it
  with the microphone, seeing the live transcript (plain HTML and JavaScript
  under ``static/``, no build step, nothing loaded from elsewhere).
- ``GET /browser/agents``: the agents a caller may pick (ids and names), asked of
  the orchestrator (``vb.rpc.orchestrator.agents.list``) for the default tenant.
- ``POST /browser/session`` ``{"agent_id": "...", "context": {...}}``: checks the
  agent like an inbound webhook does, publishes ``call.initiated`` (provider
  ``browser``) and answers with the WebSocket URL and the signed stream
  parameters the page sends in its start message. They are usable for
  ``VB_GATEWAY_STREAM_TOKEN_TTL_S`` seconds, for one call.
- ``WS /ws/browser``: the same media session as a phone call, with the codec in
  :mod:`.codec`, on the gateway's media WebSocket server (``stream/``), which
  serves it only while the page is enabled.

A browser cannot sign a webhook, so this session endpoint is open to whoever
reaches the gateway: it serves development and trusted networks, and is off in
production unless ``VB_GATEWAY_BROWSER_PAGE`` turns it on. In production the
page's own backend should ask for the session instead, authenticated with its
API key at the REST edge (``/api/v1``; a browser-session route there is not
built yet), and hand the page only the answer: one call's short-lived token,
never a credential.
"""

from __future__ import annotations

import logging
import time
from importlib.resources import files
from typing import Final

import nats.errors
from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.responses import HTMLResponse, Response

from voicebus.contracts.errors import InvalidTokenError
from voicebus.contracts.events import ErrorCode
from voicebus.contracts.ids import new_id
from voicebus.contracts.rpc import AGENTS_LIST, AgentsPage, ListAgents
from voicebus.contracts.subjects import token
from voicebus.gateway.agents import fetch_agent, judge
from voicebus.gateway.browser.codec import BrowserCodec
from voicebus.gateway.call_events import call_error, call_initiated
from voicebus.gateway.context import Gateway
from voicebus.gateway.parameters import (
    CONTEXT_PREFIX,
    MAX_CONTEXT_VARS,
    CallIdentity,
    context_from_query,
    stream_purpose,
    to_parameters,
)
from voicebus.gateway.providers.base import InboundWebhook, Provider
from voicebus.gateway.settings import GatewaySettings

log = logging.getLogger(__name__)

NAME: Final = "browser"
PAGE_PATH: Final = "/browser"
SESSION_PATH: Final = "/browser/session"
STREAM_PATH: Final = f"/ws/{NAME}"
_STATIC: Final = files("voicebus.gateway.browser") / "static"
_ASSETS: Final = {
    "app.js": "text/javascript",
    "capture-worklet.js": "text/javascript",
    "playback-worklet.js": "text/javascript",
    "style.css": "text/css",
}


def _no_webhook(settings: GatewaySettings) -> InboundWebhook:
    raise TypeError("browser calls start at POST /browser/session, not at a webhook")


PROVIDER: Final = Provider(name=NAME, webhook=_no_webhook, codec=BrowserCodec)
"""The browser as the media session sees it; not a telephony provider, so not registered."""


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


class SessionReply(BaseModel):
    """What the page needs to open the call's media WebSocket."""

    call_id: str
    ws_url: str
    parameters: dict[str, str]
    expires_in_s: int


def browser_router(gateway: Gateway) -> APIRouter:
    """The page, its assets and the session endpoint."""
    router = APIRouter(include_in_schema=False)
    if not gateway.settings.browser_page_enabled:
        return router

    async def page() -> Response:
        return HTMLResponse(_STATIC.joinpath("index.html").read_text())

    async def asset(name: str) -> Response:
        media_type = _ASSETS.get(name)
        if media_type is None:
            raise HTTPException(status_code=404)
        return Response(_STATIC.joinpath(name).read_text(), media_type=media_type)

    async def session(body: SessionRequest) -> SessionReply:
        return await start_session(gateway, body)

    async def agents() -> list[AgentChoice]:
        return await list_agents(gateway)

    router.add_api_route(PAGE_PATH, page, methods=["GET"])
    router.add_api_route(f"{PAGE_PATH}/static/{{name}}", asset, methods=["GET"])
    router.add_api_route(SESSION_PATH, session, methods=["POST"])
    router.add_api_route(f"{PAGE_PATH}/agents", agents, methods=["GET"])
    return router


async def start_session(gateway: Gateway, body: SessionRequest) -> SessionReply:
    """Check the agent, publish ``call.initiated`` and sign the call's stream parameters.

    Raises:
        HTTPException: 404 for an unknown agent, 503 when the lookup is unavailable.
    """
    settings = gateway.settings
    tenant_id, call_id = settings.default_tenant, new_id()
    try:
        agent_id = token(body.agent_id, "agent id")
    except InvalidTokenError:
        raise HTTPException(status_code=422, detail="agent id is not a valid id") from None
    reply = await fetch_agent(gateway.nc, tenant_id, agent_id, settings.agent_lookup_timeout_s)
    refusal = judge(reply, agent_id)
    if refusal is not None:
        await gateway.publish(
            call_error(
                tenant_id,
                call_id,
                gateway.source,
                refusal.code,
                f"{NAME}: {refusal.message}",
                retryable=refusal.retryable,
            )
        )
        status = 404 if refusal.code is ErrorCode.UNKNOWN_AGENT else 503
        raise HTTPException(status_code=status, detail=refusal.message)
    context = context_from_query({f"{CONTEXT_PREFIX}{k}": v for k, v in body.context.items()})
    identity = CallIdentity(
        call_id=call_id, tenant_id=tenant_id, agent_id=agent_id, context=context
    )
    await gateway.publish(call_initiated(identity, NAME, None, gateway.source))
    log.info("browser call accepted", extra={"call_id": call_id, "agent_id": agent_id})
    return SessionReply(
        call_id=call_id,
        ws_url=settings.media_ws_url(STREAM_PATH),
        parameters=to_parameters(
            identity, gateway.stream_key, time.time(), purpose=stream_purpose(NAME)
        ),
        expires_in_s=settings.stream_token_ttl_s,
    )


async def list_agents(gateway: Gateway) -> list[AgentChoice]:
    """The default tenant's agents, from the orchestrator.

    Raises:
        HTTPException: 503 when the orchestrator does not answer in time or refuses.
    """
    request = ListAgents(tenant_id=gateway.settings.default_tenant)
    timeout = gateway.settings.agent_lookup_timeout_s
    try:
        msg = await gateway.nc.request(
            AGENTS_LIST, request.model_dump_json().encode(), timeout=timeout
        )
        page = AgentsPage.model_validate_json(msg.data)
    except (TimeoutError, nats.errors.NoRespondersError, ValidationError):
        log.warning("agent list unavailable")
        raise HTTPException(status_code=503, detail="agent list unavailable") from None
    if not page.ok:
        raise HTTPException(status_code=503, detail="agent list unavailable")
    return [AgentChoice(agent_id=a.agent_id, name=a.name) for a in page.agents]
