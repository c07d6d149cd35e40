"""Campaign rules that need no I/O: lifecycle moves, outcomes, retries, caps."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from voicebus.contracts.campaigns import AmdPolicy, CampaignStatus, RetryPolicy
from voicebus.contracts.events import AmdResult, AttemptOutcome, EndReason

S = CampaignStatus
TRANSITIONS: Mapping[str, Mapping[CampaignStatus, frozenset[CampaignStatus]]] = {
    "start": {S.DRAFT: frozenset({S.SCHEDULED})},
    "pause": {S.SCHEDULED: frozenset({S.PAUSED}), S.RUNNING: frozenset({S.PAUSED})},
    "resume": {S.PAUSED: frozenset({S.SCHEDULED})},
    "cancel": {s: frozenset({S.CANCELLED}) for s in (S.DRAFT, S.SCHEDULED, S.RUNNING, S.PAUSED)},
}
"""Verb → from-status → allowed to-status. ``start``/``resume`` land on ``scheduled``;
the dialer moves a scheduled campaign to running once its start time has come."""

_ANSWERED = frozenset({EndReason.CALLER_HANGUP, EndReason.AGENT_HANGUP, EndReason.TRANSFERRED})
_MACHINE_RESULTS = frozenset({AmdResult.MACHINE, AmdResult.MACHINE_END_BEEP, AmdResult.FAX})


def transition(verb: str, current: CampaignStatus) -> CampaignStatus | None:
    """The status ``verb`` leads to from ``current``, or None if not allowed."""
    allowed = TRANSITIONS[verb].get(current)
    return next(iter(allowed)) if allowed else None


def is_machine(result: str | None) -> bool:
    """True for an AMD result that means nobody is there to talk."""
    return result is not None and AmdResult(result) in _MACHINE_RESULTS


def amd_acts(earlier: str | None, result: str) -> bool:
    """Whether an AMD result acts on the call, given the one that acted before (if any).

    The first result acts; after a machine, the end of its greeting acts too.
    """
    if earlier is None:
        return True
    return AmdResult(earlier) is AmdResult.MACHINE and AmdResult(result) is (
        AmdResult.MACHINE_END_BEEP
    )


def outcome_of(
    reason: EndReason, answered: bool, amd: str | None, amd_policy: AmdPolicy
) -> AttemptOutcome:
    """What campaigns counts for an ended call.

    Args:
        reason: ``call.ended`` reason.
        answered: ``call.started`` was seen (media flowed).
        amd: the ``amd.detected`` result, if any.
        amd_policy: the campaign's machine policy.
    """
    if reason is EndReason.MACHINE_DETECTED or is_machine(amd):
        if amd_policy is AmdPolicy.VOICEMAIL and answered:
            return AttemptOutcome.VOICEMAIL
        if amd_policy is AmdPolicy.CONTINUE and answered:
            return AttemptOutcome.ANSWERED
        return AttemptOutcome.MACHINE
    if reason is EndReason.BUSY:
        return AttemptOutcome.BUSY
    if reason is EndReason.NO_ANSWER:
        return AttemptOutcome.NO_ANSWER
    if answered or reason in _ANSWERED:
        return AttemptOutcome.ANSWERED
    return AttemptOutcome.FAILED


@dataclass(frozen=True, slots=True)
class NextStep:
    """After an outcome: retry at ``retry_at``, or stop (``retry_at`` None)."""

    retry_at: datetime | None
    reason: str


def next_step(
    policy: RetryPolicy, outcome: AttemptOutcome, attempts_made: int, now: datetime
) -> NextStep:
    """Whether and when to try the contact again.

    Args:
        policy: the campaign's retry policy.
        outcome: how the attempt just made ended.
        attempts_made: attempts so far, including this one.
        now: business time.
    """
    rule = {
        AttemptOutcome.BUSY: policy.busy,
        AttemptOutcome.NO_ANSWER: policy.no_answer,
        AttemptOutcome.FAILED: policy.failed,
        AttemptOutcome.TIMEOUT: policy.failed,
        AttemptOutcome.MACHINE: policy.machine,
    }.get(outcome)
    if rule is None:
        return NextStep(None, f"final: {outcome.value}")
    if attempts_made >= min(rule.max_attempts, policy.max_attempts):
        return NextStep(None, f"final: {outcome.value} after {attempts_made} attempts")
    return NextStep(now + timedelta(seconds=rule.delay_s), f"retry after {outcome.value}")


@dataclass(frozen=True, slots=True)
class Capacity:
    """Calls the campaign may start now, and the caller ids with room."""

    calls: int
    caller_ids: list[str]


def capacity(
    *,
    campaign_cap: int,
    campaign_live: int,
    tenant_cap: int,
    tenant_live: int,
    caller_ids: Sequence[str],
    caller_cap: int | None,
    live_by_caller: Mapping[str, int],
    tokens: float,
) -> Capacity:
    """How many dials the caps and the pacing bucket leave room for."""
    room = min(campaign_cap - campaign_live, tenant_cap - tenant_live, int(tokens))
    if caller_cap is None:
        return Capacity(max(room, 0), list(caller_ids))
    free = [c for c in caller_ids if live_by_caller.get(c, 0) < caller_cap]
    per_caller = sum(caller_cap - live_by_caller.get(c, 0) for c in free)
    return Capacity(max(min(room, per_caller), 0), free)


def pick_caller_ids(
    n: int, caller_ids: Sequence[str], caller_cap: int | None, live: Mapping[str, int], start: int
) -> list[str]:
    """``n`` caller ids, round robin from ``start``, none over its cap."""
    load = dict(live)
    out: list[str] = []
    i = start
    tried = 0
    while len(out) < n and tried < len(caller_ids) * (n + 1):
        cid = caller_ids[i % len(caller_ids)]
        i += 1
        tried += 1
        if caller_cap is not None and load.get(cid, 0) >= caller_cap:
            continue
        load[cid] = load.get(cid, 0) + 1
        out.append(cid)
    return out


def refill(tokens: float, last: float, now: float, rate: float, burst: float) -> float:
    """The pacing bucket at ``now`` (seconds), capped at ``burst``."""
    if last <= 0:
        return burst
    return min(burst, tokens + max(0.0, now - last) * rate)
