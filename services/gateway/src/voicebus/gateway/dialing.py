"""Outbound dialing decisions. Pure: a command in, the events that answer it out."""

from __future__ import annotations

from collections.abc import Collection

from voicebus.contracts.commands import OriginateCall
from voicebus.contracts.events import (
    CallEnded,
    CallEndedData,
    CallError,
    CallErrorData,
    EndReason,
    ErrorCode,
)


def refuse_originate(
    command: OriginateCall, source: str, providers: Collection[str]
) -> tuple[CallError, CallEnded]:
    """The events reporting an originate command that no configured provider can dial.

    The command is answered, never silently dropped: the caller of the API sees
    ``call.error`` and ``call.ended`` (reason ``failed``) for its call id.
    """
    wanted = command.data.provider or "the tenant's default provider"
    available = ", ".join(sorted(providers)) or "none"
    message = f"cannot dial through {wanted}: configured providers: {available}"
    error = CallError(
        tenant_id=command.tenant_id,
        call_id=command.call_id,
        source=source,
        data=CallErrorData(code=ErrorCode.PROVIDER_ERROR, message=message, service="gateway"),
    )
    ended = CallEnded(
        tenant_id=command.tenant_id,
        call_id=command.call_id,
        source=source,
        data=CallEndedData(reason=EndReason.FAILED, detail=message),
    )
    return error, ended
