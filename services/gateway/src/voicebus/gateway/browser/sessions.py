"""Browser sessions: the gateway's answer to ``vb.rpc.gateway.sessions.create``.

The edge's browser page (``POST /browser/session``) and its authenticated
``POST /api/v1/browser-sessions`` ask here, because only the gateway holds the key
that signs stream parameters. A session checks the agent like an inbound webhook
does, publishes ``call.initiated`` (provider ``browser``) and answers with the
WebSocket URL and the signed stream parameters the page sends in its start
message; they are usable for ``VB_GATEWAY_STREAM_TOKEN_TTL_S`` seconds, for one call.
"""

from __future__ import annotations

import logging
import time
from typing import Final

from voicebus.contracts.events import ErrorCode
from voicebus.contracts.ids import new_id
from voicebus.contracts.telephony import BrowserSession, CreateSession, SessionReply
from voicebus.gateway.agents import fetch_agent, judge
from voicebus.gateway.call_events import call_error, call_initiated
from voicebus.gateway.context import Gateway
from voicebus.gateway.metrics import CallRefusal, count_call_refused
from voicebus.gateway.parameters import (
    CONTEXT_PREFIX,
    CallIdentity,
    context_from_query,
    stream_purpose,
    to_parameters,
)
from voicebus.runtime.rpc import Conflict, NotFound, TooMany, Unavailable

log = logging.getLogger(__name__)

NAME: Final = "browser"
STREAM_PATH: Final = f"/ws/{NAME}"


async def create_session(gateway: Gateway, request: CreateSession) -> SessionReply:
    """Check the agent, publish ``call.initiated`` and sign the call's stream parameters.

    Raises:
        Conflict: this gateway takes no browser calls (``browser_calls_disabled``).
        NotFound: the tenant has no such agent (``agent_not_found``).
        Unavailable: the agent cannot be looked up now.
        TooMany: the tenant's calls fill its ``max_concurrent_calls``
            (``concurrent_call_limit``).
    """
    settings = gateway.settings
    if not settings.browser_calls_enabled:
        raise Conflict("this gateway takes no browser calls", code="browser_calls_disabled")
    tenant_id, agent_id, call_id = request.tenant_id, request.agent_id, new_id()
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
        if refusal.code is ErrorCode.UNKNOWN_AGENT:
            raise NotFound(refusal.message, code="agent_not_found")
        raise Unavailable(refusal.message, code="agent_lookup_unavailable")
    if not await gateway.admit(tenant_id, call_id, request.max_concurrent_calls):
        count_call_refused(NAME, CallRefusal.CONCURRENCY_LIMIT)
        log.warning("browser call refused: concurrent-call limit",
                    extra={"call_id": call_id, "tenant_id": tenant_id})  # fmt: skip
        raise TooMany(
            f"the tenant's {request.max_concurrent_calls} concurrent calls are all in use",
            code="concurrent_call_limit",
        )
    context = context_from_query({f"{CONTEXT_PREFIX}{k}": v for k, v in request.context.items()})
    identity = CallIdentity(
        call_id=call_id, tenant_id=tenant_id, agent_id=agent_id, context=context,
        agent_version=request.agent_version,
    )  # fmt: skip
    await gateway.publish(call_initiated(identity, NAME, None, gateway.source))
    log.info("browser call accepted", extra={"call_id": call_id, "agent_id": agent_id})
    session = BrowserSession(
        call_id=call_id,
        ws_url=settings.media_ws_url(STREAM_PATH),
        parameters=to_parameters(
            identity, gateway.stream_key, time.time(), purpose=stream_purpose(NAME)
        ),
        expires_in_s=settings.stream_token_ttl_s,
    )
    return SessionReply(ok=True, session=session)
