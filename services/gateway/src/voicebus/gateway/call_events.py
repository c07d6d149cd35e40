"""The events the gateway publishes about a call, built from plain values (pure).

Text that came from a provider (numbers, ids, context values, error messages) is
stripped of control characters here: the contracts refuse them, and one refused
field must not cost the call its events.
"""

from __future__ import annotations

from voicebus.contracts.events import (
    AudioFormat,
    CallEnded,
    CallEndedData,
    CallError,
    CallErrorData,
    CallInitiated,
    CallInitiatedData,
    CallStarted,
    CallStartedData,
    DtmfReceived,
    DtmfReceivedData,
    EndReason,
    ErrorCode,
)
from voicebus.contracts.ids import derived_id
from voicebus.contracts.text import scrub, strip_control
from voicebus.gateway.parameters import CallIdentity
from voicebus.gateway.providers.base import SampleRate, StreamStart

SERVICE = "gateway"


def call_initiated(
    call: CallIdentity, provider: str, provider_call_id: str | None, source: str
) -> CallInitiated:
    """An inbound webhook was accepted, or an outbound dial is about to start, for ``call``."""
    return CallInitiated(
        tenant_id=call.tenant_id,
        call_id=call.call_id,
        source=source,
        data=CallInitiatedData(
            direction=call.direction,
            provider=provider,
            provider_call_id=_clean(provider_call_id),
            agent_id=call.agent_id,
            agent_version=call.agent_version,
            from_number=_clean(call.from_number),
            to_number=_clean(call.to_number),
            context=scrub(dict(call.context)),
        ),
    )


def call_started(
    call: CallIdentity,
    provider: str,
    start: StreamStart,
    sample_rate: SampleRate,
    source: str,
    gateway_instance: str,
) -> CallStarted:
    """The provider's media stream for ``call`` started on ``gateway_instance``."""
    return CallStarted(
        tenant_id=call.tenant_id,
        call_id=call.call_id,
        source=source,
        data=CallStartedData(
            direction=call.direction,
            provider=provider,
            provider_call_id=_clean(start.provider_call_id),
            agent_id=call.agent_id,
            agent_version=call.agent_version,
            from_number=_clean(call.from_number),
            to_number=_clean(call.to_number),
            context=scrub(dict(call.context)),
            stream_id=_clean(start.stream_id),
            audio=AudioFormat(sample_rate=sample_rate),
            gateway_instance=gateway_instance,
        ),
    )


def call_ended(call: CallIdentity, reason: EndReason, duration_s: float, source: str) -> CallEnded:
    """``call`` is over, ``duration_s`` after its media started.

    A ``gateway_lost`` end may also be stated by the orchestrator (the gateway's lease
    expired): both use the id derived from the call, so it is stored once.
    """
    ended = CallEnded(
        tenant_id=call.tenant_id,
        call_id=call.call_id,
        source=source,
        data=CallEndedData(reason=reason, duration_s=round(max(duration_s, 0.0), 3)),
    )
    if reason is EndReason.GATEWAY_LOST:
        return ended.model_copy(update={"id": derived_id(call.call_id, reason.value)})
    return ended


def call_error(
    tenant_id: str,
    call_id: str,
    source: str,
    code: ErrorCode,
    message: str,
    *,
    security: bool = False,
    retryable: bool = False,
) -> CallError:
    """Something went wrong for a call (``message`` carries no personal data)."""
    return CallError(
        tenant_id=tenant_id,
        call_id=call_id,
        source=source,
        data=CallErrorData(
            code=code,
            message=strip_control(message),
            security=security,
            retryable=retryable,
            service=SERVICE,
        ),
    )


def dtmf_received(call: CallIdentity, digits: str, source: str) -> DtmfReceived:
    """The caller pressed ``digits``.

    Raises:
        pydantic.ValidationError: ``digits`` are not keypad keys.
    """
    return DtmfReceived(
        tenant_id=call.tenant_id,
        call_id=call.call_id,
        source=source,
        data=DtmfReceivedData(digits=digits),
    )


def masked_dtmf(event: DtmfReceived) -> DtmfReceived:
    """The same keys shown as one ``*`` each, for the stored event of a masked keypad."""
    data = DtmfReceivedData(digits="*" * len(event.data.digits), masked=True)
    return event.model_copy(update={"data": data})


def _clean(value: str | None) -> str | None:
    return strip_control(value) if value is not None else None
