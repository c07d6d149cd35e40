"""A tenant's usage per UTC day, as JSON or a CSV export."""

# No ``from __future__ import annotations``: FastAPI must see the route dependencies
# (closures over the router's edge) as objects, not as strings it cannot resolve.

from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Final, Literal

from fastapi import APIRouter, Depends, Query, Response

from voicebus.edge.api.auth import TenantPrincipal
from voicebus.edge.api.edge import Edge
from voicebus.edge.api.errors import ERROR_RESPONSES, ApiError, FieldProblem
from voicebus.edge.tenancy.keys import Scope
from voicebus.edge.usage import store as usage_store
from voicebus.edge.usage.report import UsageReport, report, to_csv
from voicebus.edge.webhooks.runner import WebhookRunner

MAX_DAYS: Final = 366
DEFAULT_DAYS: Final = 30


def _range(first: date | None, last: date | None) -> tuple[date, date]:
    last = last or datetime.now(UTC).date()
    if first is None:
        first = last - timedelta(days=min(DEFAULT_DAYS - 1, last.toordinal() - 1))
    why = None
    if first > last:
        why = "must not be after 'to'"
    elif (last - first).days >= MAX_DAYS:
        why = f"the range may cover at most {MAX_DAYS} days"
    if why is not None:
        raise ApiError(
            422, "invalid_request", f"from: {why}", fields=[FieldProblem(field="from", message=why)]
        )
    return first, last


def usage_router(edge: Edge, runner: WebhookRunner) -> APIRouter:
    """``/usage``."""
    router = APIRouter(prefix="/usage", tags=["usage"], responses=ERROR_RESPONSES)
    reader = edge.auth.tenant(Scope.USAGE_READ)

    @router.get(
        "",
        response_model=UsageReport,
        responses={200: {"content": {"text/csv": {}}, "description": "JSON, or CSV."}},
    )
    async def usage(
        who: Annotated[TenantPrincipal, Depends(reader)],
        first: Annotated[
            date | None, Query(alias="from", description="First UTC day; default 30 days back.")
        ] = None,
        last: Annotated[
            date | None, Query(alias="to", description="Last UTC day, included; default today.")
        ] = None,
        format: Annotated[
            Literal["json", "csv"], Query(description="csv: day,metric,dimension,amount.")
        ] = "json",
    ) -> UsageReport | Response:
        """Calls, minutes, STT seconds, TTS characters, LLM tokens and tool calls per day."""
        first, last = _range(first, last)
        rows = await usage_store.summed(runner.store.engine, who.tenant_id, first, last)
        if format == "csv":
            name = f"usage-{who.tenant_id}-{first.isoformat()}-{last.isoformat()}.csv"
            return Response(
                to_csv(rows),
                media_type="text/csv",
                headers={"Content-Disposition": f'attachment; filename="{name}"'},
            )
        return report(who.tenant_id, first, last, rows)

    return router
