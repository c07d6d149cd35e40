"""A tenant's outbound webhooks: subscriptions, their delivery log, redelivery.

The signing secret is write-only: generated and shown once in the create answer when
the request names none, never returned afterwards, stored encrypted like provider
credentials.
"""

# No ``from __future__ import annotations``: FastAPI must see the route dependencies
# (closures over the router's edge) as objects, not as strings it cannot resolve.

from datetime import datetime
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Path, Query, Response
from pydantic import BaseModel, Field, field_validator

from voicebus.edge.api.auth import TenantPrincipal
from voicebus.edge.api.edge import Edge
from voicebus.edge.api.errors import ERROR_RESPONSES, ApiError, FieldProblem
from voicebus.edge.api.schemas import TOKEN_PATTERN, _In
from voicebus.edge.tenancy.keys import Scope
from voicebus.edge.webhooks import filters, signing
from voicebus.edge.webhooks.runner import WebhookRunner
from voicebus.edge.webhooks.store import Attempt, Delivery, Status, Webhook
from voicebus.runtime.ssrf import TargetRefusedError, check_target

MAX_URL = 2048
WebhookIdPath = Annotated[str, Path(pattern=r"^wh_[0-9a-f]{16}$", description="Webhook id.")]
DeliveryIdPath = Annotated[
    str, Path(pattern=r"^[0-9a-f-]{1,64}$", max_length=64, description="Delivery id.")
]
_EventTypes = Annotated[
    list[str],
    Field(
        min_length=1,
        max_length=filters.MAX_FILTERS,
        description=(
            "Event types to send: a type (call.started), a versioned type (call.started.v1), "
            "a prefix (campaign.*) or * for every event of the tenant."
        ),
        examples=[["call.started", "call.ended", "recording.ready", "campaign.*"]],
    ),
]
_Secret = Annotated[
    str,
    Field(
        min_length=16,
        max_length=256,
        pattern=r"^[\x21-\x7e]+$",
        description="Signing secret (write-only). Omitted on create: one is generated.",
    ),
]


def _check_filters(value: list[str] | None) -> list[str] | None:
    return None if value is None else filters.normalized([filters.check_filter(v) for v in value])


class WebhookCreate(_In):
    """A new subscription."""

    url: str = Field(max_length=MAX_URL, examples=["https://crm.example.com/voicebus"])
    event_types: _EventTypes
    description: str = Field(default="", max_length=256, examples=["CRM sync"])
    secret: _Secret | None = None

    _filters = field_validator("event_types")(_check_filters)


class WebhookUpdate(_In):
    """Changes to a subscription; fields left out are kept."""

    url: str | None = Field(default=None, max_length=MAX_URL)
    event_types: _EventTypes | None = None
    description: str | None = Field(default=None, max_length=256)
    enabled: bool | None = Field(default=None, description="False: no new events are queued.")
    secret: _Secret | None = None

    _filters = field_validator("event_types")(_check_filters)


class WebhookOut(BaseModel):
    """A subscription (never its secret)."""

    webhook_id: str
    url: str
    event_types: list[str]
    description: str
    enabled: bool
    created_at: datetime
    updated_at: datetime


class WebhookCreated(WebhookOut):
    """A new subscription, with its generated secret: shown this once."""

    secret: str | None = Field(
        description="The generated signing secret; null when the request gave one."
    )


class AttemptOut(BaseModel):
    """One try of a delivery."""

    attempt: int
    at: datetime
    status_code: int | None = Field(description="The receiver's HTTP status, if it answered.")
    error: str | None = Field(description="Why it failed (http 503, timeout, ...).")
    duration_ms: float


class DeliveryOut(BaseModel):
    """One event for one subscription."""

    delivery_id: str
    event_id: str
    event_type: str
    call_id: str
    status: Status = Field(description="pending, delivered, or dead (a dead letter).")
    attempts: int
    next_attempt_at: datetime | None = Field(description="When pending: the next try.")
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    finished_at: datetime | None


class DeliveryDetail(DeliveryOut):
    """A delivery and each of its attempts."""

    attempt_log: list[AttemptOut]


class DeliveryList(BaseModel):
    """A page of deliveries, newest first."""

    deliveries: list[DeliveryOut]
    next_before: str | None = Field(description="Pass as ``before`` for the next page.")


def url_problem(url: str) -> str | None:
    """What is wrong with the form of a webhook URL, or None."""
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises on a port that is not a number in range
    except ValueError:
        return "is not a valid URL"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "must be an http or https URL with a host"
    if parts.username or parts.password:
        return "must not carry credentials"
    return None


def _out(hook: Webhook) -> WebhookOut:
    return WebhookOut(
        webhook_id=hook.webhook_id,
        url=hook.url,
        event_types=list(hook.event_types),
        description=hook.description,
        enabled=hook.enabled,
        created_at=hook.created_at,
        updated_at=hook.updated_at,
    )


def _delivery(d: Delivery) -> DeliveryOut:
    return DeliveryOut(
        delivery_id=d.delivery_id,
        event_id=d.event_id,
        event_type=d.event_type,
        call_id=d.call_id,
        status=d.status,
        attempts=d.attempts,
        next_attempt_at=d.next_attempt_at if d.status is Status.PENDING else None,
        last_status_code=d.last_status_code,
        last_error=d.last_error,
        created_at=d.created_at,
        finished_at=d.finished_at,
    )


def _attempt(a: Attempt) -> AttemptOut:
    return AttemptOut(
        attempt=a.attempt,
        at=a.at,
        status_code=a.status_code,
        error=a.error,
        duration_ms=a.duration_ms,
    )


def webhooks_router(edge: Edge, runner: WebhookRunner) -> APIRouter:
    """``/webhooks``."""
    router = APIRouter(prefix="/webhooks", tags=["webhooks"], responses=ERROR_RESPONSES)
    reader = edge.auth.tenant(Scope.WEBHOOKS_READ)
    writer = edge.auth.tenant(Scope.WEBHOOKS_WRITE)
    store = runner.store

    async def checked_url(url: str) -> str:
        why = url_problem(url)
        if why is None:
            try:
                await check_target(url, runner.policy)
            except TargetRefusedError as exc:
                why = str(exc)
        if why is not None:
            raise ApiError(
                422,
                "invalid_request",
                f"url: {why}",
                fields=[FieldProblem(field="url", message=why)],
            )
        return url

    @router.post("", status_code=201, response_model=WebhookCreated)
    async def create_webhook(
        body: WebhookCreate, who: Annotated[TenantPrincipal, Depends(writer)]
    ) -> WebhookCreated:
        """Subscribe a URL to the tenant's events; the generated secret is in this answer only."""
        url = await checked_url(body.url)
        secret = body.secret or signing.new_secret()
        hook = await store.create(
            who.tenant_id, url, list(body.event_types), body.description, secret
        )
        runner.changed()
        shown = None if body.secret else secret
        return WebhookCreated(**_out(hook).model_dump(), secret=shown)

    @router.get("", response_model=list[WebhookOut])
    async def list_webhooks(who: Annotated[TenantPrincipal, Depends(reader)]) -> list[WebhookOut]:
        """The tenant's subscriptions."""
        return [_out(h) for h in await store.listed(who.tenant_id)]

    @router.get("/{webhook_id}", response_model=WebhookOut)
    async def get_webhook(
        webhook_id: WebhookIdPath, who: Annotated[TenantPrincipal, Depends(reader)]
    ) -> WebhookOut:
        """One subscription."""
        return _out(await store.get(who.tenant_id, webhook_id))

    @router.patch("/{webhook_id}", response_model=WebhookOut)
    async def update_webhook(
        webhook_id: WebhookIdPath,
        body: WebhookUpdate,
        who: Annotated[TenantPrincipal, Depends(writer)],
    ) -> WebhookOut:
        """Change a subscription (a new secret takes effect with the next attempt)."""
        changes: dict[str, Any] = body.model_dump(exclude_unset=True, exclude={"secret"})
        if changes.get("url") is not None:
            changes["url"] = await checked_url(changes["url"])
        changes = {k: v for k, v in changes.items() if v is not None}
        hook = await store.update(who.tenant_id, webhook_id, changes, body.secret)
        runner.changed()
        return _out(hook)

    @router.delete("/{webhook_id}", status_code=204)
    async def delete_webhook(
        webhook_id: WebhookIdPath, who: Annotated[TenantPrincipal, Depends(writer)]
    ) -> Response:
        """Delete a subscription, its pending deliveries and its log."""
        await store.delete(who.tenant_id, webhook_id)
        runner.changed()
        return Response(status_code=204)

    @router.get("/{webhook_id}/deliveries", response_model=DeliveryList)
    async def list_deliveries(
        webhook_id: WebhookIdPath,
        who: Annotated[TenantPrincipal, Depends(reader)],
        status: Annotated[Status | None, Query(description="Only this status.")] = None,
        call_id: Annotated[
            str | None, Query(pattern=TOKEN_PATTERN, description="Only this call.")
        ] = None,
        before: Annotated[str | None, Query(pattern=r"^[0-9a-f-]{1,64}$")] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
    ) -> DeliveryList:
        """The delivery log, newest first."""
        found = await store.deliveries(
            who.tenant_id, webhook_id, status=status, call_id=call_id, limit=limit, before=before
        )
        more = found[-1].delivery_id if len(found) == limit else None
        return DeliveryList(deliveries=[_delivery(d) for d in found], next_before=more)

    @router.get("/{webhook_id}/deliveries/{delivery_id}", response_model=DeliveryDetail)
    async def get_delivery(
        webhook_id: WebhookIdPath,
        delivery_id: DeliveryIdPath,
        who: Annotated[TenantPrincipal, Depends(reader)],
    ) -> DeliveryDetail:
        """One delivery with every attempt."""
        delivery, attempts = await store.delivery(who.tenant_id, webhook_id, delivery_id)
        return DeliveryDetail(
            **_delivery(delivery).model_dump(), attempt_log=[_attempt(a) for a in attempts]
        )

    @router.post(
        "/{webhook_id}/deliveries/{delivery_id}/redeliver",
        status_code=202,
        response_model=DeliveryOut,
    )
    async def redeliver(
        webhook_id: WebhookIdPath,
        delivery_id: DeliveryIdPath,
        who: Annotated[TenantPrincipal, Depends(writer)],
    ) -> DeliveryOut:
        """Send the event again now (delivered, dead or pending), with a fresh retry budget."""
        delivery = await store.redeliver(
            who.tenant_id, webhook_id, delivery_id, runner.retries.max_attempts
        )
        runner.redelivered()
        return _delivery(delivery)

    return router
