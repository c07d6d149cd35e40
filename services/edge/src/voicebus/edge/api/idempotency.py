"""``Idempotency-Key`` on creating routes: a retried request does its work once.

Same key and same body within 24 hours → the first response again (with
``Idempotent-Replayed: true``); same key and another body → 422 naming the header;
the first request still running → 409. Records live in PostgreSQL
(:mod:`voicebus.edge.tenancy.idempotency`), so every edge instance agrees.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from typing import Annotated, Final

from fastapi import Header
from pydantic import BaseModel
from starlette.responses import JSONResponse, Response

from voicebus.edge.api.errors import ApiError, FieldProblem
from voicebus.edge.tenancy.idempotency import (
    Claimed,
    IdempotencyStore,
    InFlight,
    Mismatch,
    Replay,
    body_hash,
)
from voicebus.edge.tenancy.store import TenantStore

log = logging.getLogger(__name__)

HEADER: Final = "Idempotency-Key"
_KEY: Final = re.compile(r"^[\x21-\x7e]{1,255}$")

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias=HEADER,
        description=(
            "Makes a retry safe: the same key with the same body within 24 hours answers "
            "the first response again instead of doing the work twice."
        ),
        examples=["order-7781-call"],
    ),
]


def _header_problem(message: str, status: int = 422, code: str = "invalid_request") -> ApiError:
    return ApiError(
        status,
        code,
        f"{HEADER}: {message}",
        fields=[FieldProblem(field=HEADER, message=message)],
        headers={"Retry-After": "1"} if status == 409 else None,
    )


async def idempotent(
    store: TenantStore,
    tenant_id: str,
    route: str,
    key: str | None,
    body: BaseModel,
    status: int,
    work: Callable[[], Awaitable[BaseModel]],
) -> BaseModel | Response:
    """Run ``work`` once per ``key``: its result, or the stored response of the first run.

    Raises:
        ApiError: 422 (malformed key, or reused with another body), 409 (first run still
            in progress), 503 (no database), or whatever ``work`` raised.
    """
    if key is None:
        return await work()
    if not _KEY.fullmatch(key):
        raise _header_problem("1 to 255 printable ASCII characters without spaces")
    if not store.bound:
        raise ApiError(503, "tenancy_unavailable", f"{HEADER} needs the edge's database")
    records = IdempotencyStore(store.engine)
    outcome = await records.claim(
        tenant_id, route, key, body_hash(route, body.model_dump_json().encode())
    )
    match outcome:
        case Replay(status=stored_status, response=stored):
            return Response(
                stored,
                status_code=stored_status,
                media_type="application/json",
                headers={"Idempotent-Replayed": "true"},
            )
        case Mismatch():
            raise _header_problem("already used with a different request body")
        case InFlight():
            raise _header_problem(
                "a request with this key is still in progress", 409, "idempotency_key_in_use"
            )
        case Claimed():
            pass
    try:
        result = await work()
    except BaseException:
        await records.release(tenant_id, route, key)
        raise
    payload = result.model_dump_json().encode()
    try:
        await records.complete(tenant_id, route, key, status, payload)
    except Exception as err:  # the work is done: answer it; a retry will see 409 until expiry
        log.warning("idempotency record not completed", extra={"error": type(err).__name__})
    return JSONResponse(result.model_dump(mode="json"), status_code=status)
