"""Browser sessions: what a page's backend asks for, with its API key, to start a browser call.

The gateway signs the call's stream parameters (``vb.rpc.gateway.sessions.create``);
the backend hands the page only the answer: one call's short-lived parameters, never
a credential.
"""

# No ``from __future__ import annotations``: FastAPI must see the route dependencies
# (closures over the router's edge) as objects, not as strings it cannot resolve.

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from voicebus.contracts.telephony import (
    SESSIONS_CREATE,
    BrowserSession,
    CreateSession,
    SessionReply,
)
from voicebus.edge.api.auth import TenantPrincipal
from voicebus.edge.api.edge import Edge
from voicebus.edge.api.errors import ERROR_RESPONSES, ApiError, ErrorBody, FieldProblem
from voicebus.edge.api.schemas import BrowserSessionCreate
from voicebus.edge.tenancy.keys import Scope

_RESPONSES: dict[int | str, dict[str, Any]] = {
    **ERROR_RESPONSES,
    409: {"model": ErrorBody, "description": "The gateway takes no browser calls."},
    429: {
        "model": ErrorBody,
        "description": "The tenant's calls fill its max_concurrent_calls (concurrent_call_limit).",
    },
}


def browser_sessions_router(edge: Edge) -> APIRouter:
    """``/browser-sessions``."""
    router = APIRouter(prefix="/browser-sessions", tags=["calls"], responses=_RESPONSES)
    writer = edge.auth.tenant(Scope.CALLS_WRITE)

    @router.post("", status_code=201, response_model=BrowserSession)
    async def create(
        body: BrowserSessionCreate, who: Annotated[TenantPrincipal, Depends(writer)]
    ) -> BrowserSession:
        """Start a browser call: the WebSocket URL and signed parameters for one page.

        The page opens ``ws_url`` and sends ``parameters`` unchanged in its start
        message within ``expires_in_s`` seconds; the call is the key's tenant's.
        """
        # The gateway enforces the tenant's concurrent-call cap; the edge keeps its value.
        cap = (
            (await edge.store.limits(who.tenant_id)).max_concurrent_calls
            if edge.store.bound
            else None
        )
        request = CreateSession(tenant_id=who.tenant_id, max_concurrent_calls=cap,
                                **body.model_dump())  # fmt: skip
        try:
            # Not idempotent: each request announces a new call (call.initiated).
            reply = await edge.owners.ask(SESSIONS_CREATE, request, SessionReply, idempotent=False)
        except ApiError as err:
            if err.status == 404:
                message = f"unknown agent {body.agent_id!r}"
                raise ApiError(
                    422,
                    "invalid_request",
                    f"agent_id: {message}",
                    fields=[FieldProblem(field="agent_id", message=message)],
                ) from None
            raise
        if reply.session is None:
            raise ApiError(502, "bad_owner_reply", "the gateway returned no session")
        return reply.session

    return router
