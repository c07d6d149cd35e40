"""The LLM's ``engine.error`` and ``engine.failover`` events for one call.

Fallback adapters report incidents synchronously, inside the turn's stream; the
events are published in order by one task per incident kept here (the turn never
waits for JetStream).
"""

from __future__ import annotations

import asyncio
import logging

from voicebus.contracts.events import (
    EngineErrorData,
    EngineErrorOccurred,
    EngineFailover,
    EngineFailoverData,
    Envelope,
)
from voicebus.contracts.rpc import FallbackSettings
from voicebus.engines.fallback.chain import Budgets
from voicebus.engines.fallback.incidents import EngineFailure, Incident
from voicebus.orchestrator.outbox import Outbox

log = logging.getLogger(__name__)
SERVICE = "orchestrator"


def budgets_of(settings: FallbackSettings) -> Budgets:
    """An agent's failover budgets in seconds."""
    return Budgets(
        first_audio_s=settings.first_audio_ms / 1000,
        first_token_s=settings.first_token_ms / 1000,
        final_transcript_s=settings.final_transcript_ms / 1000,
        stall_s=settings.stall_ms / 1000,
    )


class EngineEvents:
    """Publishes one call's LLM incidents.

    Args:
        outbox: where events go.
        tenant_id: the call's tenant.
        call_id: the call.
        agent_id: its agent.
    """

    def __init__(self, outbox: Outbox, tenant_id: str, call_id: str, agent_id: str) -> None:
        self._outbox = outbox
        self._tenant_id = tenant_id
        self._call_id = call_id
        self._agent_id = agent_id
        self._last: asyncio.Task[None] | None = None

    def report(self, incident: Incident) -> None:
        """Queue the incident's event (published after the ones before it)."""
        event = self.event(incident)
        previous = self._last
        self._last = asyncio.get_running_loop().create_task(self._publish(event, previous))

    def event(self, incident: Incident) -> Envelope:
        """The event an incident stands for."""
        tenant_id, call_id, source = self._tenant_id, self._call_id, self._outbox.source
        if isinstance(incident, EngineFailure):
            return EngineErrorOccurred(
                tenant_id=tenant_id,
                call_id=call_id,
                source=source,
                data=EngineErrorData(
                    role="llm", engine=incident.engine[:64], agent_id=self._agent_id,
                    kind=incident.kind[:32], message=incident.message[:1024],
                    retryable=incident.retryable, service=SERVICE,
                ),
            )  # fmt: skip
        return EngineFailover(
            tenant_id=tenant_id,
            call_id=call_id,
            source=source,
            data=EngineFailoverData(
                role="llm", from_engine=incident.from_engine[:64],
                to_engine=incident.to_engine[:64], reason=incident.reason[:32],
                reissued=incident.reissued[:32], agent_id=self._agent_id, service=SERVICE,
            ),
        )  # fmt: skip

    async def _publish(self, event: Envelope, previous: asyncio.Task[None] | None) -> None:
        if previous is not None:
            await asyncio.wait([previous])
        try:
            await self._outbox.publish(event)
        except Exception:  # an event lost must not break the call
            log.exception("engine event publish failed", extra={"call_id": self._call_id})
