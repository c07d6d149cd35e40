"""Call events → attempt outcomes → retries; and the reaper that leaves no attempt stuck.

Every handler is idempotent: an attempt ends once (``status`` moves to
``ended`` under a row lock), so a redelivered ``call.ended`` changes nothing.
The events recording each outcome are staged in the outbox in the transaction
that records the outcome (:mod:`voicebus.campaigns.outbox`).

A call the gateway refused because the tenant was at its ``max_concurrent_calls``
(``call.ended`` reason ``concurrency_limit``) was never dialed: it is no attempt of
the contact. Its attempt row goes (its number is used again) and the contact waits
:data:`CAPACITY_RETRY_S` for a slot; the call's own events keep the refusal on record.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Final

from sqlalchemy import text

from voicebus.campaigns import events as ev
from voicebus.campaigns import outbox, policy
from voicebus.campaigns.clock import Clock
from voicebus.campaigns.models import LIVE
from voicebus.campaigns.publisher import Publisher
from voicebus.campaigns.store import Store
from voicebus.contracts.campaigns import AmdPolicy, CampaignMode, CampaignSpec
from voicebus.contracts.commands import OriginateCall
from voicebus.contracts.events import AttemptOutcome, EndReason, Envelope

log = logging.getLogger(__name__)

CAPACITY_RETRY_S: Final = 30.0
"""How long a contact refused at the tenant's concurrent-call limit waits: a slot frees
only when one of the tenant's calls ends, so retrying at once mostly meets the limit again."""

_ATTEMPT_SQL = (
    "SELECT a.attempt_id, a.tenant_id, a.campaign_id, a.contact_id, a.attempt_no, a.status, "
    "a.amd, a.answered_at, a.from_number, a.claimed_at, a.outcome, a.end_reason, a.duration_s, "
    "c.phone, c.context, c.state AS contact_state, c.last_call_id, "
    "(now() - a.claimed_at) AS claim_age "
    "FROM attempts a JOIN contacts c ON c.contact_id = a.contact_id "
)
_SPECS_SQL = (
    "SELECT tenant_id, campaign_id, updated_at, spec::text AS spec FROM campaigns "
    "WHERE campaign_id = ANY(:c) AND tenant_id = ANY(:t)"
)


@dataclass(frozen=True, slots=True)
class Ended:
    """A ``call.ended`` as campaigns needs it."""

    tenant_id: str
    call_id: str
    reason: EndReason
    duration_s: float | None


@dataclass(frozen=True, slots=True)
class _Plan:
    attempt: dict[str, Any]
    contact: dict[str, Any]
    events: list[Envelope]


@dataclass(slots=True)
class Effects:
    """What handling an event asks of the bus, after the transaction committed (its events
    are already staged in the outbox)."""

    events: list[Envelope] = field(default_factory=list)
    resend: list[OriginateCall] = field(default_factory=list)


class Outcomes:
    """Applies call events to attempts and contacts.

    Args:
        store: the database.
        publisher: where the resulting events go.
        clock: business time (retry times).
        source: ``campaigns/<instance>``.
        duplicate_window_s: ``VB_COMMANDS``' duplicate window: a claim older than
            this is never re-sent.
    """

    def __init__(
        self,
        store: Store,
        publisher: Publisher,
        clock: Clock,
        source: str,
        duplicate_window_s: float = 120.0,
    ) -> None:
        self.store = store
        self.publisher = publisher
        self.clock = clock
        self.source = source
        self.resend_within_s = duplicate_window_s * 0.75
        self._spec_cache: dict[tuple[str, str], tuple[Any, CampaignSpec]] = {}
        self.on_staged: Callable[[], None] = lambda: None
        """Called after a commit that staged events (wakes the outbox relay)."""

    async def _attempt(self, conn: Any, tenant_id: str, call_id: str) -> Any:
        return (
            await conn.execute(
                text(
                    _ATTEMPT_SQL + "WHERE a.tenant_id = :t AND a.call_id = :call FOR UPDATE OF a, c"
                ),
                {"t": tenant_id, "call": call_id},
            )
        ).first()

    async def answered(
        self, tenant_id: str, call_id: str, max_call_s: float
    ) -> CampaignSpec | None:
        """``call.started``: the attempt holds its line until the call ends.

        Returns:
            The campaign's spec when the call belongs to a campaign, else None.
        """
        async with self.store.engine.begin() as conn:
            row = await self._attempt(conn, tenant_id, call_id)
            if row is None or row.status not in ("claimed", "dialed"):
                return None
            await conn.execute(
                text(
                    "UPDATE attempts SET status = 'answered', answered_at = :now, "
                    "lease_until = now() + make_interval(secs => :max) WHERE attempt_id = :a"
                ),
                {"now": self.clock.now(), "max": max_call_s, "a": row.attempt_id},
            )
            return (await self._specs(conn, [row]))[(row.tenant_id, row.campaign_id)]

    async def amd(self, tenant_id: str, call_id: str, result: str) -> CampaignSpec | None:
        """``amd.detected``: remember the result; the caller applies the machine policy.

        A call may get two detectors' results (the provider's and media's): the
        first decides, and only the end of a machine's greeting
        (``machine_end_beep`` after ``machine``) acts again, so the call is
        told what to do once.

        Events of one call reach campaigns through different consumers, so the
        result may arrive after ``call.ended`` was applied without it: the
        attempt's outcome is then decided again with the result known (while it
        is still the contact's latest attempt), and nothing is sent to the call.

        Returns:
            The campaign's spec while the call is live and this result acts, else None.
        """
        effects = Effects()
        async with self.store.engine.begin() as conn:
            row = await self._attempt(conn, tenant_id, call_id)  # locked: one result at a time
            if row is None:
                return None
            if not policy.amd_acts(row.amd, result):
                return None
            await conn.execute(
                text("UPDATE attempts SET amd = :r WHERE attempt_id = :a"),
                {"r": result, "a": row.attempt_id},
            )
            spec = (await self._specs(conn, [row]))[(row.tenant_id, row.campaign_id)]
            if row.status in LIVE:
                return spec
            late = row.outcome == AttemptOutcome.ANSWERED.value and policy.is_machine(result)
            if late and row.last_call_id == row.attempt_id and row.end_reason is not None:
                reason = EndReason(row.end_reason)
                plan = self._plan(row, spec, reason, row.duration_s, amd=result)
                effects = await self._apply(conn, [plan])
        if effects.events:
            self.on_staged()
        return None

    async def recording(self, tenant_id: str, call_id: str, recording_id: str) -> None:
        """``recording.ready``: keep the recording id for the report."""
        async with self.store.engine.begin() as conn:
            await conn.execute(
                text(
                    "WITH a AS (UPDATE attempts SET recording_id = :r "
                    "WHERE tenant_id = :t AND call_id = :call RETURNING contact_id) "
                    "UPDATE contacts SET recording_id = :r FROM a "
                    "WHERE contacts.contact_id = a.contact_id"
                ),
                {"r": recording_id, "t": tenant_id, "call": call_id},
            )

    async def analyzed(
        self, tenant_id: str, call_id: str, disposition: str | None, success: str | None
    ) -> None:
        """``call.analyzed``: keep the disposition and success verdict for the report."""
        async with self.store.engine.begin() as conn:
            await conn.execute(
                text(
                    "WITH a AS (UPDATE attempts SET disposition = :d, success = :s "
                    "WHERE tenant_id = :t AND call_id = :call RETURNING contact_id, call_id) "
                    "UPDATE contacts SET disposition = :d, success = :s FROM a "
                    "WHERE contacts.contact_id = a.contact_id "
                    "AND contacts.last_call_id = a.call_id"
                ),
                {"d": disposition, "s": success, "t": tenant_id, "call": call_id},
            )

    async def ended(
        self, tenant_id: str, call_id: str, reason: EndReason, duration_s: float | None
    ) -> None:
        """``call.ended``: the attempt's outcome, then a retry or the contact's end."""
        await self.ended_many([Ended(tenant_id, call_id, reason, duration_s)])

    async def ended_many(self, items: Sequence[Ended]) -> int:
        """Many ``call.ended`` at once: one transaction, rows locked in a fixed order.

        A call's end that arrives after the reaper gave up on it (its lease ran out while
        the event waited, e.g. in this consumer while the database was down) corrects
        the reaper's ``timeout`` with the real reason, while the attempt is still the
        contact's latest: the outcome is decided again, as for a late AMD result.

        Returns:
            How many ended (or corrected) a campaign attempt (others are not campaign
            calls or were already ended: a redelivery changes nothing).
        """
        wanted = {(i.tenant_id, i.call_id): i for i in items}
        if not wanted:
            return 0
        async with self.store.engine.begin() as conn:
            rows = (
                await conn.execute(
                    text(
                        _ATTEMPT_SQL + "WHERE a.call_id = ANY(:calls) AND a.tenant_id = ANY(:ts) "
                        "AND (a.status IN ('claimed', 'dialed', 'answered') "
                        "OR (a.status = 'ended' AND a.outcome = 'timeout' "
                        "AND a.end_reason = 'timeout')) "
                        "ORDER BY a.attempt_id FOR UPDATE OF a, c"
                    ),
                    {
                        "calls": [c for _, c in wanted],
                        "ts": list({t for t, _ in wanted}),
                    },
                )
            ).all()
            specs = await self._specs(conn, rows)
            plans, refused = [], []
            for row in rows:
                item = wanted.get((row.tenant_id, row.attempt_id))
                if item is None:
                    continue
                if row.status == "ended" and not _corrects(row, item):
                    continue
                if item.reason is EndReason.CONCURRENCY_LIMIT and row.answered_at is None:
                    refused.append(row)
                    continue
                spec = specs[(row.tenant_id, row.campaign_id)]
                plans.append(self._plan(row, spec, item.reason, item.duration_s))
            effects = await self._apply(conn, plans)
            staged = await self._requeue(conn, refused)
        if effects.events or staged:
            self.on_staged()
        return len(plans) + len(refused)

    async def _requeue(self, conn: Any, rows: Sequence[Any]) -> bool:
        """Undo attempts refused at the tenant's concurrent-call limit; the contacts wait.

        Returns:
            Whether events were staged.
        """
        if not rows:
            return False
        when = self.clock.now() + timedelta(seconds=CAPACITY_RETRY_S)
        await conn.execute(
            text("DELETE FROM attempts WHERE tenant_id = :tid AND attempt_id = :aid"),
            [{"tid": r.tenant_id, "aid": r.attempt_id} for r in rows],
        )
        await conn.execute(
            text(
                "UPDATE contacts SET attempts = GREATEST(attempts - 1, 0), next_at = :nat, "
                "state = CASE WHEN state = 'dnc' THEN state ELSE 'pending' END "
                "WHERE tenant_id = :tid AND contact_id = :cid"
            ),
            [{"nat": when, "tid": r.tenant_id, "cid": r.contact_id} for r in rows],
        )
        reason = "retry: the tenant is at its concurrent-call limit"
        events: list[Envelope] = [
            ev.scheduled(ev.Env(r.tenant_id, r.campaign_id, self.source), r.contact_id,
                         r.attempt_no, when, reason)
            for r in rows
        ]  # fmt: skip
        await outbox.stage(conn, events)
        log.info("attempts refused at the concurrent-call limit", extra={"count": len(rows)})
        return True

    def _plan(
        self,
        row: Any,
        spec: CampaignSpec,
        reason: EndReason,
        duration_s: float | None,
        forced: AttemptOutcome | None = None,
        amd: str | None = None,
    ) -> _Plan:
        now = self.clock.now()
        answered = row.answered_at is not None
        result = forced or policy.outcome_of(reason, answered, amd or row.amd, spec.amd)
        step = policy.next_step(spec.retry, result, row.attempt_no, now)
        if row.contact_state == "dnc":
            step = policy.NextStep(None, "final: do not call")
        state = "dnc" if row.contact_state == "dnc" else "pending" if step.retry_at else "done"
        env = ev.Env(row.tenant_id, row.campaign_id, self.source)
        events: list[Envelope] = [
            ev.outcome(env, row.contact_id, row.attempt_id, row.attempt_no, result, duration_s,
                       step.retry_at)
        ]  # fmt: skip
        if step.retry_at is not None:
            events.append(
                ev.scheduled(env, row.contact_id, row.attempt_no + 1, step.retry_at, step.reason)
            )
        delivered = result in (AttemptOutcome.ANSWERED, AttemptOutcome.VOICEMAIL)
        if spec.mode is CampaignMode.NOTIFICATION and delivered:
            to_machine = result is AttemptOutcome.VOICEMAIL
            events.append(ev.delivered(env, row.contact_id, row.attempt_id, to_machine, duration_s))
        attempt = {"o": result.value, "r": reason.value, "now": now, "d": duration_s,
                   "a": row.attempt_id}  # fmt: skip
        contact = {"s": state, "o": result.value, "d": duration_s, "nat": step.retry_at,
                   "cid": row.contact_id}  # fmt: skip
        return _Plan(attempt, contact, events)

    async def _specs(self, conn: Any, rows: Sequence[Any]) -> dict[tuple[str, str], CampaignSpec]:
        """The campaigns of ``rows`` by (tenant, id), parsed once per campaign version."""
        keys = {(r.tenant_id, r.campaign_id) for r in rows}
        if not keys:
            return {}
        params = {"c": list({c for _, c in keys}), "t": list({t for t, _ in keys})}
        found = (await conn.execute(text(_SPECS_SQL), params)).all()
        out: dict[tuple[str, str], CampaignSpec] = {}
        for r in found:
            key = (r.tenant_id, r.campaign_id)
            cached = self._spec_cache.get(key)
            if cached is None or cached[0] != r.updated_at:
                if len(self._spec_cache) > 1024:
                    self._spec_cache.clear()
                cached = self._spec_cache[key] = (
                    r.updated_at,
                    CampaignSpec.model_validate_json(r.spec),
                )
            out[key] = cached[1]
        return out

    async def _apply(self, conn: Any, plans: Sequence[_Plan]) -> Effects:
        out = Effects()
        if not plans:
            return out
        await conn.execute(
            text(
                "UPDATE attempts SET status = 'ended', outcome = :o, end_reason = :r, "
                "ended_at = :now, duration_s = :d, lease_until = NULL WHERE attempt_id = :a"
            ),
            [p.attempt for p in plans],
        )
        await conn.execute(
            text(
                "UPDATE contacts SET state = :s, outcome = :o, duration_s = :d, "
                "next_at = COALESCE(:nat, next_at) WHERE contact_id = :cid"
            ),
            [p.contact for p in plans],
        )
        for p in plans:
            out.events.extend(p.events)
        await outbox.stage(conn, out.events)  # committed with the outcomes, or not at all
        return out

    async def reap(self, limit: int = 200) -> int:
        """End or re-send attempts whose lease ran out; returns how many were handled.

        ``claimed`` inside the duplicate window → the same command again (stored
        once); ``claimed`` beyond it, ``dialed`` with no news, ``answered`` past
        the longest call → ended as ``timeout`` and the retry policy decides.
        """
        effects = Effects()
        async with self.store.engine.begin() as conn:
            rows = (
                await conn.execute(
                    text(
                        _ATTEMPT_SQL + "WHERE a.status IN ('claimed', 'dialed', 'answered') "
                        "AND a.lease_until < now() "
                        "ORDER BY a.lease_until LIMIT :n FOR UPDATE OF a, c SKIP LOCKED"
                    ),
                    {"n": limit},
                )
            ).all()
            ended: list[_Plan] = []
            specs = await self._specs(conn, rows)
            for row in rows:
                age = row.claim_age.total_seconds() if row.claim_age is not None else 1e9
                if row.status == "claimed" and age < self.resend_within_s:
                    env = ev.Env(row.tenant_id, row.campaign_id, self.source)
                    command = ev.originate(
                        env,
                        specs[(row.tenant_id, row.campaign_id)],
                        row.phone,
                        row.context,
                        row.attempt_id,
                        row.from_number,
                    )
                    effects.resend.append(command)
                    continue
                answered = row.status == "answered"
                reason = EndReason.TIMEOUT
                forced = AttemptOutcome.ANSWERED if answered else AttemptOutcome.TIMEOUT
                spec = specs[(row.tenant_id, row.campaign_id)]
                ended.append(self._plan(row, spec, reason, None, forced))
            more = await self._apply(conn, ended)
            effects.events.extend(more.events)
        if effects.resend:
            acked = await self.publisher.commands(effects.resend)
            ok = [c.id for c, good in zip(effects.resend, acked, strict=True) if good]
            await self._mark_resent(ok)
            log.warning("claimed attempts re-sent after lease expiry", extra={"count": len(ok)})
        if effects.events:
            self.on_staged()
        return len(rows)

    async def _mark_resent(self, attempt_ids: Sequence[str]) -> None:
        if not attempt_ids:
            return
        async with self.store.engine.begin() as conn:
            await conn.execute(
                text(
                    "UPDATE attempts SET status = 'dialed', lease_until = now() + interval '90 s' "
                    "WHERE attempt_id = ANY(:ids) AND status = 'claimed'"
                ),
                {"ids": list(attempt_ids)},
            )


def _corrects(reaped: Any, item: Ended) -> bool:
    """Whether a late ``call.ended`` replaces the reaper's ``timeout`` of an attempt: a
    real end (not a timeout itself, not a refusal) of the contact's latest attempt."""
    real = item.reason not in (EndReason.TIMEOUT, EndReason.CONCURRENCY_LIMIT)
    return real and reaped.last_call_id == reaped.attempt_id


def machine_action(spec: CampaignSpec, result: str) -> AmdPolicy | None:
    """What to do on an AMD result: None for a human (or no policy to apply)."""
    if not policy.is_machine(result):
        return None
    return spec.amd
