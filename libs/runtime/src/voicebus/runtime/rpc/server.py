"""The owner's side: parse the request, run the handler, answer a typed reply.

A handler is ``async (request) -> reply`` with the reply's ``ok=True``; it raises a
:class:`~.faults.RpcFault` for an expected failure. Whatever happens, the asker gets a
reply of the declared type: a body that is not the request is 400 or 422 naming the
field, a database that cannot be reached is 503, a bug is 500 (logged here with its
traceback, never sent). The subscriber never dies of a request.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import Final, TypeVar

from faststream.nats import NatsBroker, NatsMessage
from prometheus_client import Counter, Histogram
from pydantic import BaseModel, ValidationError
from sqlalchemy.exc import InterfaceError, OperationalError

from voicebus.contracts.rpc import Reply
from voicebus.runtime.rpc.faults import BadRequest, Invalid, RpcFault, Unavailable
from voicebus.runtime.rpc.tenancy import Forbidden, guard_of, tenant_of

log = logging.getLogger(__name__)

REQUEST_ID_HEADER: Final = "X-Request-Id"
REQUEST_ID: ContextVar[str | None] = ContextVar("voicebus_request_id", default=None)
"""The REST request this work serves, if any: forwarded by clients, logged by owners."""

RequestT = TypeVar("RequestT", bound=BaseModel)
ReplyT = TypeVar("ReplyT", bound=Reply)
Handler = Callable[[RequestT], Awaitable[ReplyT]]

SERVED = Counter(
    "voicebus_rpc_served", "Requests answered, by procedure and status.", ["rpc", "status"]
)
SERVE_SECONDS = Histogram(
    "voicebus_rpc_serve_seconds",
    "Time from a request's arrival to its reply, by procedure.",
    ["rpc"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
_UNREACHABLE = (OperationalError, InterfaceError, OSError)
"""The owner's own dependency (its database) cannot be reached: 503, try later."""


def rpc_name(subject: str) -> str:
    """``vb.rpc.audit.calls.get`` → ``audit.calls.get`` (a bounded metric label)."""
    return subject.split(".rpc.", 1)[-1]


def request_fault(exc: ValidationError) -> RpcFault:
    """400 for a body that is not JSON; 422 naming each bad field otherwise."""
    errors = exc.errors(include_url=False)
    if any(e["type"] == "json_invalid" for e in errors):
        return BadRequest("the request body is not valid JSON")
    problems = "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in errors
    )
    return Invalid(problems)


async def answer(
    raw: bytes,
    request_type: type[RequestT],
    reply_type: type[ReplyT],
    handle: Handler[RequestT, ReplyT],
    rpc: str,
    tenant: str | None = None,
) -> ReplyT:
    """The reply to one request body (never raises).

    Args:
        tenant: the tenant the edge signed the request for (:mod:`.tenancy`); the body
            must name it. None: not checked here.
    """
    fault: RpcFault
    try:
        request = request_type.model_validate_json(raw)
    except ValidationError as exc:
        fault = request_fault(exc)
    else:
        try:
            if tenant is not None and tenant_of(request) != tenant:
                raise Forbidden("the request names another tenant than the one it was signed for")
            return await handle(request)
        except RpcFault as exc:
            fault = exc
        except _UNREACHABLE:
            log.warning("rpc dependency unreachable", extra={"rpc": rpc}, exc_info=True)
            fault = Unavailable("the owning service cannot reach its storage")
        except Exception:
            log.exception("rpc handler failed", extra={"rpc": rpc})
            fault = RpcFault("the owning service failed on this request")
    return reply_type.model_validate({"ok": False, "error": fault.to_error()})


async def _serve(
    broker: NatsBroker,
    msg: NatsMessage,
    subject: str,
    request_type: type[RequestT],
    reply_type: type[ReplyT],
    handle: Handler[RequestT, ReplyT],
    rpc: str,
) -> ReplyT:
    try:
        # A tenant-scoped procedure answers only the edge (when this process has its key).
        tenant = guard_of(broker).check(subject, request_type, msg.headers, msg.body)
    except Forbidden as refused:
        log.warning("rpc request refused", extra={"rpc": rpc, "reason": refused.message})
        return reply_type.model_validate({"ok": False, "error": refused.to_error()})
    return await answer(msg.body, request_type, reply_type, handle, rpc, tenant)


def responder(
    broker: NatsBroker,
    subject: str,
    request_type: type[RequestT],
    reply_type: type[ReplyT],
    handle: Handler[RequestT, ReplyT],
    *,
    queue: str,
    description: str | None = None,
) -> None:
    """Declare the owner of ``subject`` on ``broker``.

    Args:
        broker: the service's broker (the responder appears in its AsyncAPI document).
        subject: ``vb.rpc.<service>.<resource>.<verb>``, from the contracts.
        request_type: the request body's model.
        reply_type: the reply's model (a :class:`Reply`).
        handle: the handler; raises an :class:`RpcFault` for expected failures.
        queue: the queue group: one instance of the service answers each request.
        description: for the AsyncAPI document (default: request → reply).

    When the broker's process has the edge's public key (:func:`.tenancy.attach`), a
    tenant-scoped procedure answers only requests the edge signed for the tenant the
    body names; anything else gets 403 ``tenant_unauthenticated``.
    """
    rpc = rpc_name(subject)
    text = description or f"{request_type.__name__} → {reply_type.__name__}."

    @broker.subscriber(subject, queue=queue, description=text)
    async def respond(msg: NatsMessage) -> ReplyT:
        request_id = (msg.headers or {}).get(REQUEST_ID_HEADER)
        token = REQUEST_ID.set(request_id)
        started = time.perf_counter()
        try:
            reply = await _serve(broker, msg, subject, request_type, reply_type, handle, rpc)
        finally:
            REQUEST_ID.reset(token)
        SERVE_SECONDS.labels(rpc).observe(time.perf_counter() - started)
        SERVED.labels(rpc, str(reply.error.status) if reply.error else "200").inc()
        return reply
