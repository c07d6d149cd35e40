"""Outbound dialing decisions. Pure: commands and callbacks in, requests and events out.

An outbound call's identity (call id, tenant, agent, context, direction) travels
in the signed query string of the answer and status URLs handed to the
provider, so whichever gateway instance receives a callback can serve it
without shared state. Phone numbers stay out of those URLs (they would land in
access logs); the provider's callbacks carry them. A stream URL handed over at
dial time carries the full stream parameters, numbers included.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Collection, Mapping
from typing import Final
from urllib.parse import urlencode

from voicebus.contracts.commands import OriginateCall
from voicebus.contracts.events import (
    AMD_CONTEXT_KEY,
    AmdDetected,
    AmdDetectedData,
    AmdResult,
    CallEnded,
    CallEndedData,
    CallError,
    CallErrorData,
    CallRinging,
    CallRingingData,
    Direction,
    EndReason,
    Envelope,
    ErrorCode,
)
from voicebus.contracts.text import strip_control
from voicebus.gateway.parameters import (
    CALL_ID,
    CALLBACK,
    CallIdentity,
    InvalidStreamParametersError,
    from_parameters,
    stream_purpose,
    to_parameters,
)
from voicebus.gateway.providers.base import Provider
from voicebus.gateway.providers.outbound import CallStatus, DialRequest, StatusUpdate
from voicebus.gateway.settings import GatewaySettings
from voicebus.runtime.errors import ProviderError

CALLBACK_TTL_S: Final = 86400
"""Answer and status URLs stay valid this long: a call's last status comes when it ends."""

_ENDING: Final = {
    CallStatus.BUSY: EndReason.BUSY,
    CallStatus.NO_ANSWER: EndReason.NO_ANSWER,
    CallStatus.FAILED: EndReason.FAILED,
    CallStatus.CANCELED: EndReason.CANCELED,
}
"""Statuses that end a call before its media started (after it, the media session reports)."""


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
    return _failed(command.tenant_id, command.call_id, source, message, EndReason.FAILED, None)


def refuse_agent(
    command: OriginateCall, source: str, code: ErrorCode, message: str, *, retryable: bool
) -> tuple[CallError, CallEnded]:
    """The events reporting an originate command whose agent cannot take calls (none dialed)."""
    return _not_dialed(command, source, code, message, EndReason.FAILED, retryable=retryable)


def over_concurrency_limit(command: OriginateCall, source: str) -> tuple[CallError, CallEnded]:
    """The events reporting a call not dialed: the tenant is at its ``max_concurrent_calls``.

    Retryable: a slot frees when one of the tenant's live calls ends.
    """
    message = "not dialed: the tenant's concurrent-call limit (max_concurrent_calls) is reached"
    limit = ErrorCode.CONCURRENCY_LIMIT
    return _not_dialed(command, source, limit, message, EndReason.CONCURRENCY_LIMIT, retryable=True)


def _not_dialed(
    command: OriginateCall,
    source: str,
    code: ErrorCode,
    message: str,
    reason: EndReason,
    *,
    retryable: bool,
) -> tuple[CallError, CallEnded]:
    """``call.error`` (``code``) and ``call.ended`` (``reason``) for a command not dialed."""
    error = CallError(
        tenant_id=command.tenant_id,
        call_id=command.call_id,
        source=source,
        data=CallErrorData(code=code, message=message, retryable=retryable, service="gateway"),
    )
    ended = CallEnded(
        tenant_id=command.tenant_id,
        call_id=command.call_id,
        source=source,
        data=CallEndedData(reason=reason, detail=message[:1024]),
    )
    return error, ended


def dial_failed(command: OriginateCall, error: ProviderError, source: str) -> tuple[Envelope, ...]:
    """``call.error`` and ``call.ended`` (``provider_error``) for a dial the provider refused."""
    message = f"{error.provider or 'provider'}: dial failed: {error}"
    return _failed(
        command.tenant_id,
        command.call_id,
        source,
        message,
        EndReason.PROVIDER_ERROR,
        error.code,
        retryable=error.retryable,
    )


def _failed(
    tenant_id: str,
    call_id: str,
    source: str,
    message: str,
    reason: EndReason,
    code: str | None,
    *,
    retryable: bool = False,
) -> tuple[CallError, CallEnded]:
    message = strip_control(message)  # a provider's error text is outside input
    error = CallError(
        tenant_id=tenant_id,
        call_id=call_id,
        source=source,
        data=CallErrorData(
            code=ErrorCode.PROVIDER_ERROR,
            message=message[:2048],
            retryable=retryable,
            service="gateway",
        ),
    )
    ended = CallEnded(
        tenant_id=tenant_id,
        call_id=call_id,
        source=source,
        data=CallEndedData(
            reason=reason, provider_error_code=code[:64] if code else None, detail=message[:1024]
        ),
    )
    return error, ended


def outbound_identity(command: OriginateCall, from_number: str | None) -> CallIdentity:
    """The identity of the call an originate command places (callee in ``to_number``)."""
    data = command.data
    return CallIdentity(
        call_id=command.call_id,
        tenant_id=command.tenant_id,
        agent_id=data.agent_id,
        from_number=from_number,
        to_number=data.to_number,
        # Media runs its own machine detector on calls that asked for one.
        context={**data.context, AMD_CONTEXT_KEY: "1"}
        if data.detect_machine
        else dict(data.context),
        direction=Direction.OUTBOUND,
    )


def signed_query(identity: CallIdentity, key: bytes, now: float) -> str:
    """The identity (without phone numbers) as a signed URL query string."""
    bare = CallIdentity(
        call_id=identity.call_id,
        tenant_id=identity.tenant_id,
        agent_id=identity.agent_id,
        context=identity.context,
        direction=identity.direction,
    )
    return urlencode(to_parameters(bare, key, now, purpose=CALLBACK))


def dial_request(
    command: OriginateCall,
    provider: Provider,
    settings: GatewaySettings,
    from_number: str | None,
    now: float,
) -> DialRequest:
    """The request handed to ``provider``'s dialer for ``command``."""
    identity = outbound_identity(command, from_number)
    key = settings.stream_secret.get_secret_value().encode()
    query = signed_query(identity, key, now)
    call_id = command.call_id
    answer = settings.public_http_url(provider.answer_path.format(call_id=call_id))
    status = settings.public_http_url(provider.status_path.format(call_id=call_id))
    stream = settings.media_ws_url(provider.stream_path)
    stream_params = to_parameters(identity, key, now, purpose=stream_purpose(provider.name))
    stream_query = urlencode(stream_params)
    data = command.data
    return DialRequest(
        call_id=call_id,
        tenant_id=command.tenant_id,
        agent_id=data.agent_id,
        to_number=data.to_number,
        from_number=from_number,
        answer_url=f"{answer}?{query}",
        status_url=f"{status}?{query}",
        # The stream URL goes only to the provider (who knows the numbers) and back to
        # us, and the stream's parameters are the call's identity: numbers included.
        stream_url=f"{stream}?{stream_query}",
        detect_machine=data.detect_machine,
        amd_url=f"{status}?{query}" if data.detect_machine else None,
        ring_timeout_s=data.ring_timeout_s,
        context=dict(data.context),
    )


def callback_identity(
    query: Mapping[str, str], call_id: str, key: bytes, now: float
) -> CallIdentity:
    """The outbound call a callback URL names, checked against its signature.

    Raises:
        InvalidStreamParametersError: unsigned, forged, expired, or for another call.
    """
    names = {CALL_ID, "tenant_id", "agent_id", "direction", "vb_token"}
    signed = {k: v for k, v in query.items() if k in names or k.startswith("ctx_")}
    identity = from_parameters(signed, key, now, CALLBACK_TTL_S, purpose=CALLBACK)
    if identity.call_id != call_id or identity.direction is not Direction.OUTBOUND:
        raise InvalidStreamParametersError("callback URL is for another call")
    return identity


def _derived_id(call_id: str, what: str) -> str:
    """An event id fixed by the call and what happened (a retried callback reuses it)."""
    return str(uuid.UUID(hex=hashlib.sha256(f"{call_id}/{what}".encode()).hexdigest()[:32]))


def status_events(identity: CallIdentity, update: StatusUpdate, source: str) -> list[Envelope]:
    """The events one verified status callback means (often none).

    Their ids derive from the call and the status, so a callback the provider
    retries is stored once (``Nats-Msg-Id``).
    """
    tenant_id, call_id = identity.tenant_id, identity.call_id
    status = update.status
    event_id = _derived_id(call_id, status.value)
    if status is CallStatus.RINGING:
        ringing = CallRingingData(provider_call_id=update.provider_call_id)
        return [CallRinging(id=event_id, tenant_id=tenant_id, call_id=call_id, source=source,
                            data=ringing)]  # fmt: skip
    if status in (CallStatus.MACHINE, CallStatus.HUMAN):
        result = update.amd or (
            AmdResult.MACHINE if status is CallStatus.MACHINE else AmdResult.HUMAN
        )
        amd = AmdDetectedData(result=result, detector="provider", detection_ms=update.detection_ms)
        return [AmdDetected(id=event_id, tenant_id=tenant_id, call_id=call_id, source=source,
                            data=amd)]  # fmt: skip
    reason = _ENDING.get(status)
    if reason is None:
        return []
    code = update.error_code[:64] if update.error_code else None
    ended = CallEndedData(reason=reason, provider_error_code=code)
    return [CallEnded(id=event_id, tenant_id=tenant_id, call_id=call_id, source=source,
                      data=ended)]  # fmt: skip


def media_never_started(identity: CallIdentity, update: StatusUpdate, source: str) -> CallEnded:
    """``call.ended`` for a call the provider completed without its media stream ever starting.

    (The answer markup could not be fetched or the stream never connected: nobody
    else will end the call.)
    """
    event_id = _derived_id(identity.call_id, "no-media")
    code = update.error_code[:64] if update.error_code else None
    data = CallEndedData(
        reason=EndReason.FAILED,
        provider_error_code=code,
        detail="the call was answered but its media stream never started",
    )
    return CallEnded(
        id=event_id,
        tenant_id=identity.tenant_id,
        call_id=identity.call_id,
        source=source,
        data=data,
    )
