"""The console's session: log in with an API key (a cookie), who am I, log out."""

# No ``from __future__ import annotations``: FastAPI must see the route dependencies
# (closures over the router's edge) as objects, not as strings it cannot resolve.

import logging
import time
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends
from starlette.requests import Request
from starlette.responses import Response

from voicebus.edge.api.auth import Principal
from voicebus.edge.api.console_session import (
    CSRF_COOKIE,
    CSRF_HEADER,
    OPERATOR_SESSION,
    SESSION_COOKIE,
    ConsoleSession,
    csrf_ok,
)
from voicebus.edge.api.edge import Edge
from voicebus.edge.api.errors import ERROR_RESPONSES, ApiError
from voicebus.edge.api.schemas import ConsoleLogin, ConsoleSessionOut

log = logging.getLogger(__name__)


def _out(principal: Principal, session: ConsoleSession) -> ConsoleSessionOut:
    return ConsoleSessionOut(
        tenant_id=principal.tenant_id,
        key_id=principal.key_id,
        operator=principal.operator,
        scopes=sorted(principal.scopes),
        expires_at=datetime.fromtimestamp(session.expires_at, UTC),
        csrf_token=session.csrf,
    )


def session_router(edge: Edge) -> APIRouter:
    """``/session``: the console's cookie session."""
    router = APIRouter(prefix="/session", tags=["console session"], responses=ERROR_RESPONSES)
    any_principal = edge.auth.principal()
    signer = edge.auth.sessions

    def secure(request: Request) -> bool:
        return (
            edge.cookie_secure
            if edge.cookie_secure is not None
            else (request.url.scheme == "https")
        )

    @router.post("", response_model=ConsoleSessionOut)
    async def log_in(body: ConsoleLogin, request: Request, response: Response) -> ConsoleSessionOut:
        """Open a console session with an API key: sets an HttpOnly, SameSite=Strict cookie
        (``vb_session``) and a readable CSRF cookie (``vb_csrf``) whose value every write
        must repeat in ``X-CSRF-Token``. The session ends when the key is revoked. The operator
        token opens an operator session (tenants and their keys, no tenant data), which ends
        when the operator token changes."""
        principal = await edge.auth.authenticate(body.api_key)
        cookie, session = signer.issue(principal.key_id or OPERATOR_SESSION, time.time())
        flags = {"max_age": signer.ttl_s, "path": "/", "samesite": "strict",
                 "secure": secure(request)}  # fmt: skip
        response.set_cookie(SESSION_COOKIE, cookie, httponly=True, **flags)  # type: ignore[arg-type]
        response.set_cookie(CSRF_COOKIE, session.csrf, httponly=False, **flags)  # type: ignore[arg-type]
        log.info("console session opened", extra={"key_id": principal.key_id or OPERATOR_SESSION})
        return _out(principal, session)

    @router.get("", response_model=ConsoleSessionOut)
    async def whoami(
        request: Request, principal: Annotated[Principal, Depends(any_principal)]
    ) -> ConsoleSessionOut:
        """The current console session (401 when there is none, or its key was revoked)."""
        session = signer.verify(request.cookies.get(SESSION_COOKIE, ""), time.time())
        if session is None or (principal.key_id or OPERATOR_SESSION) != session.key_id:
            raise ApiError(401, "unauthorized", "no console session; log in")
        return _out(principal, session)

    @router.delete("", status_code=204)
    async def log_out(request: Request) -> Response:
        """End the console session in this browser (clears its cookies). Needs the CSRF
        header while the session is valid, so another site cannot log a person out."""
        session = signer.verify(request.cookies.get(SESSION_COOKIE, ""), time.time())
        if session is not None and not csrf_ok(session, "DELETE", request.headers.get(CSRF_HEADER)):
            raise ApiError(403, "csrf_failed", f"send the session's {CSRF_HEADER} header")
        response = Response(status_code=204)
        for name in (SESSION_COOKIE, CSRF_COOKIE):
            response.delete_cookie(name, path="/", samesite="strict", secure=secure(request))
        return response

    return router
