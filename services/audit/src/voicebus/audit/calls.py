"""How an event changes its call's row. Pure: values in, values out."""

from __future__ import annotations

from enum import IntEnum
from typing import Any

from voicebus.contracts.events import (
    CallEnded,
    CallEvent,
    CallInitiated,
    CallRinging,
    CallStarted,
)


class CallStatus(IntEnum):
    """A call's status; a higher value never goes back to a lower one, so events
    that arrive out of order (a late ``call.ringing`` after ``call.started``)
    cannot reopen or rewind a call."""

    INITIATED = 10
    RINGING = 20
    IN_PROGRESS = 30
    ENDED = 40

    @property
    def label(self) -> str:
        """Name stored in the ``status`` column."""
        return self.name.lower()


_LIFECYCLE = frozenset({"call.initiated.v1", "call.started.v1", "call.ringing.v1", "call.ended.v1"})


def call_update(event: CallEvent) -> dict[str, Any]:
    """Columns of ``calls`` this event sets (``None`` values are left unchanged).

    Every event at least makes sure its call has a row, so a call first seen
    through a late event is still listed.
    """
    update: dict[str, Any] = {"tenant_id": event.tenant_id, "call_id": event.call_id}
    if event.type not in _LIFECYCLE:  # most events: only make sure the call has a row
        return update
    match event:
        case CallInitiated() | CallStarted():
            d = event.data
            update |= {
                "direction": d.direction.value,
                "provider": d.provider,
                "agent_id": d.agent_id,
                "from_number": d.from_number,
                "to_number": d.to_number,
            }
            if isinstance(event, CallStarted):
                update |= {"status": CallStatus.IN_PROGRESS, "started_at": event.time}
            else:
                update |= {"status": CallStatus.INITIATED, "initiated_at": event.time}
        case CallRinging():
            update["status"] = CallStatus.RINGING
        case CallEnded():
            update |= {
                "status": CallStatus.ENDED,
                "ended_at": event.time,
                "ended_reason": event.data.reason.value,
                "duration_s": event.data.duration_s,
            }
        case _:
            pass
    return update
