"""Running one tool call as a fact: ``tool.called``, the work, ``tool.result`` (and
``dnc.requested`` when the callee asked not to be called). Shared by the LLM's tool
rounds and a flow's tool actions."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from opentelemetry import trace

from voicebus.contracts.events import (
    DncRequested,
    DncRequestedData,
    ToolCalled,
    ToolCalledData,
    ToolResult,
    ToolResultData,
)
from voicebus.contracts.text import scrub, strip_control
from voicebus.engines.base import ToolCall
from voicebus.orchestrator import metrics
from voicebus.orchestrator.outbox import Outbox
from voicebus.orchestrator.tools import Toolbox, ToolOutcome
from voicebus.runtime.logs import pii

log = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)


@dataclass(frozen=True, slots=True)
class CallIds:
    """Who the events are about."""

    tenant_id: str
    call_id: str


async def called(outbox: Outbox, ids: CallIds, call: ToolCall) -> None:
    """Publish ``tool.called``."""
    log.info("tool called", extra={"call_id": ids.call_id, "tool": call.name,
                                   **pii(arguments=dict(call.arguments))})  # fmt: skip
    await outbox.publish(
        ToolCalled(
            tenant_id=ids.tenant_id, call_id=ids.call_id, source=outbox.source,
            # The LLM's choice of arguments is outside text.
            data=ToolCalledData(tool_call_id=call.id, name=call.name,
                                arguments=scrub(dict(call.arguments))),
        )
    )  # fmt: skip


async def finished(outbox: Outbox, ids: CallIds, outcome: ToolOutcome) -> None:
    """Publish ``tool.result`` (and ``dnc.requested`` for a do-not-call request)."""
    call = outcome.call
    result = "ok" if outcome.ok else "error"
    # The name comes from the LLM: one it invented is not a label of its own.
    metrics.TOOL_CALLS.labels(call.name if outcome.kind != "unknown" else "unknown", result).inc()
    metrics.TOOL_SECONDS.labels(outcome.kind, result).observe(outcome.duration_ms / 1000)
    if not outcome.ok:
        log.info("tool failed", extra={"call_id": ids.call_id, "tool": call.name,
                                       "error": outcome.error})  # fmt: skip
    if outcome.ok and isinstance(outcome.result, dict) and outcome.result.get("do_not_call"):
        await outbox.publish(
            DncRequested(
                tenant_id=ids.tenant_id, call_id=ids.call_id, source=outbox.source,
                data=DncRequestedData(reason="callee asked not to be called"),
            )
        )  # fmt: skip
    await outbox.publish(
        ToolResult(
            tenant_id=ids.tenant_id, call_id=ids.call_id, source=outbox.source,
            data=ToolResultData(
                tool_call_id=call.id, name=call.name, ok=outcome.ok,
                result=scrub(outcome.result),  # a webhook's answer: outside text
                error=strip_control(outcome.error or "")[:2048] or None,
                duration_ms=outcome.duration_ms,
            ),
        )
    )  # fmt: skip


async def run_tool(
    outbox: Outbox, ids: CallIds, toolbox: Toolbox, call: ToolCall, *, offered_only: bool = True
) -> ToolOutcome:
    """``tool.called``, run, ``tool.result``."""
    with tracer.start_as_current_span("tool", attributes={"voicebus.tool": call.name}) as span:
        await called(outbox, ids, call)
        outcome = await toolbox.run(call, offered_only=offered_only)
        span.set_attribute("voicebus.tool.ok", outcome.ok)
        await finished(outbox, ids, outcome)
    return outcome
