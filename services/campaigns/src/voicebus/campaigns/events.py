"""Building the campaign events that record each decision. Pure."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar, cast

from voicebus.campaigns.windows import WindowDecision
from voicebus.contracts.campaigns import MODE_CONTEXT_KEY, CampaignMode, CampaignSpec, Progress
from voicebus.contracts.commands import OriginateCall, OriginateCallData
from voicebus.contracts.events import (
    AttemptDialed,
    AttemptDialedData,
    AttemptOutcome,
    AttemptOutcomeData,
    AttemptOutcomeRecorded,
    AttemptScheduled,
    AttemptScheduledData,
    CampaignProgress,
    CampaignProgressData,
    DncChecked,
    DncCheckedData,
    Envelope,
    NotificationDelivered,
    NotificationDeliveredData,
    WindowChecked,
    WindowCheckedData,
    utc_now,
)
from voicebus.contracts.ids import new_id


@dataclass(frozen=True, slots=True)
class Env:
    """What every event of one campaign shares.

    Attributes:
        at: when the facts happened (real time; a decision batch shares it).
    """

    tenant_id: str
    campaign_id: str
    source: str
    at: datetime = field(default_factory=utc_now)


E = TypeVar("E", bound=Envelope)


def _make(cls: type[E], env: Env, data: Any, call_id: str | None = None, **extra: Any) -> E:
    """An event of ``env``; the campaign id stands in the call slot when there is no call.

    Built without re-validation: ``data`` was validated when it was built, and the
    tenant, campaign and call ids come from rows whose ids were checked on the way in
    (the dialer decides thousands of contacts a second; validation was a tenth of it).
    """
    fields = {
        "id": extra.pop("id", None) or new_id(),
        "time": env.at,
        "tenant_id": env.tenant_id,
        "call_id": call_id or env.campaign_id,
        "source": env.source,
        "data": data,
    }
    return cast(E, cls.model_construct(**fields, **extra))


def dnc_checked(
    env: Env,
    contact_id: int,
    phone: str,
    scope: str | None,
    *,
    stage: str = "dial",
    call_id: str | None = None,
) -> DncChecked:
    """``dnc.checked``: blocked when ``scope`` names the list that matched."""
    data = DncCheckedData(
        campaign_id=env.campaign_id,
        contact_id=contact_id,
        to_number=phone,
        blocked=scope is not None,
        list_scope=scope,  # type: ignore[arg-type]  # checked by the model: tenant|campaign
        stage=stage,  # type: ignore[arg-type]  # checked by the model: upload|dial
    )
    return _make(DncChecked, env, data, call_id)


def window_checked(
    env: Env, contact_id: int, window: WindowDecision, call_id: str | None = None
) -> WindowChecked:
    """``window.checked`` with the zones and local times used."""
    data = WindowCheckedData(
        campaign_id=env.campaign_id,
        contact_id=contact_id,
        allowed=window.allowed,
        time_zones=list(window.zones),
        local_times=list(window.local_times),
        next_opening=window.next_opening,
        reason=window.reason,
    )
    return _make(WindowChecked, env, data, call_id)


def scheduled(
    env: Env, contact_id: int, attempt: int, when: datetime, reason: str
) -> AttemptScheduled:
    """``attempt.scheduled``: the contact's next attempt is planned, not dropped."""
    data = AttemptScheduledData(
        campaign_id=env.campaign_id,
        contact_id=contact_id,
        attempt=attempt,
        not_before=when,
        reason=reason,
    )
    return _make(AttemptScheduled, env, data)


def deferred(
    env: Env, contact_id: int, phone: str, attempt: int, window: WindowDecision, when: datetime
) -> list[Envelope]:
    """A contact outside its window: checked (not blocked), window closed, rescheduled."""
    return [
        dnc_checked(env, contact_id, phone, None),
        window_checked(env, contact_id, window),
        scheduled(env, contact_id, attempt, when, window.reason or "outside calling window"),
    ]


def dialed(
    env: Env,
    contact_id: int,
    phone: str,
    attempt_id: str,
    attempt: int,
    caller: str | None,
    window: WindowDecision,
) -> list[Envelope]:
    """The three facts behind a dial, on the attempt's call id."""
    data = AttemptDialedData(
        campaign_id=env.campaign_id,
        contact_id=contact_id,
        attempt_id=attempt_id,
        attempt=attempt,
        to_number=phone,
        from_number=caller,
    )
    return [
        dnc_checked(env, contact_id, phone, None, call_id=attempt_id),
        window_checked(env, contact_id, window, call_id=attempt_id),
        _make(AttemptDialed, env, data, attempt_id),
    ]


def outcome(
    env: Env,
    contact_id: int,
    attempt_id: str,
    attempt: int,
    result: AttemptOutcome,
    duration_s: float | None,
    retry_at: datetime | None,
) -> AttemptOutcomeRecorded:
    """``attempt.outcome`` on the attempt's call id."""
    data = AttemptOutcomeData(
        campaign_id=env.campaign_id,
        contact_id=contact_id,
        attempt_id=attempt_id,
        attempt=attempt,
        outcome=result,
        duration_s=duration_s,
        retry_at=retry_at,
        final=retry_at is None,
    )
    return _make(AttemptOutcomeRecorded, env, data, attempt_id)


def delivered(
    env: Env, contact_id: int, attempt_id: str, to_machine: bool, duration_s: float | None
) -> NotificationDelivered:
    """``notification.delivered`` on the attempt's call id."""
    data = NotificationDeliveredData(
        campaign_id=env.campaign_id,
        contact_id=contact_id,
        attempt_id=attempt_id,
        to_machine=to_machine,
        duration_s=duration_s,
    )
    return _make(NotificationDelivered, env, data, attempt_id)


def progress(env: Env, p: Progress, event_id: str) -> CampaignProgress:
    """``campaign.progress`` with a given id (instances publishing the same tick dedupe)."""
    data = CampaignProgressData(
        campaign_id=p.campaign_id,
        status=p.status.value,
        contacts=p.contacts,
        by_state=p.by_state,
        by_outcome=p.by_outcome,
        in_flight=p.in_flight,
        dialed=p.dialed,
    )
    return _make(CampaignProgress, env, data, id=event_id)


def originate(
    env: Env,
    spec: CampaignSpec,
    phone: str,
    context: dict[str, object],
    attempt_id: str,
    caller: str | None,
) -> OriginateCall:
    """The dial command of an attempt: its id is the attempt id (and the call id)."""
    variables = {k: str(v) for k, v in context.items()}
    if spec.mode is CampaignMode.NOTIFICATION:
        variables[MODE_CONTEXT_KEY] = spec.mode.value
    return OriginateCall(
        id=attempt_id,
        source=env.source,
        tenant_id=env.tenant_id,
        call_id=attempt_id,
        data=OriginateCallData(
            agent_id=spec.agent_id,
            to_number=phone,
            from_number=caller,
            provider=spec.provider,
            context=variables,
            detect_machine=spec.detect_machine,
            ring_timeout_s=spec.ring_timeout_s,
            campaign_id=env.campaign_id,
            attempt_id=attempt_id,
        ),
    )
