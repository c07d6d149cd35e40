"""The dial loop: pick due contacts, decide (DNC, window, caps, pacing), dial.

Exactly-once, and why PostgreSQL rather than a JetStream work queue: a dial
decision needs the caps (live calls per campaign, tenant and caller id), the
pacing bucket, the DNC lists and the contact's attempt count at one instant,
and those live in the database. So one transaction decides and records:

1. ``pg_try_advisory_xact_lock`` on the tenant: one instance at a time
   decides for a tenant (the others move on to other tenants), so two
   instances never both see "19 live calls" and both start the 20th.
2. Due contacts are read ``FOR UPDATE SKIP LOCKED``.
3. Each dial inserts an ``attempts`` row (status ``claimed``) whose
   ``(contact, attempt number)`` is unique, with a lease of a few seconds,
   and commits.
4. Only then is ``call.originate`` published, with ``Nats-Msg-Id`` = the
   attempt id, and the attempt marked ``dialed``.

The events that record each decision (``dnc.checked``, ``window.checked``,
``attempt.scheduled``, ``attempt.dialed``) are written to the outbox in the
transaction of step 3 and published by the relay (:mod:`voicebus.campaigns.outbox`):
a crash after the commit delays them, it never loses them.

An instance killed between 3 and 4 leaves a ``claimed`` attempt; when its
lease expires any instance re-publishes the *same* command. The lease (15 s)
is far inside ``VB_COMMANDS``' duplicate window (120 s), so if the first
publish did reach the server the second is dropped as a duplicate: the number
is dialed once for that attempt. A claim older than the window is never
re-sent (the command's fate is unknown); it ends as ``timeout`` and the retry
policy decides, as it does for a dialed call that never reports back. So no
contact stays stuck and none is dialed twice for one attempt.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

from prometheus_client import Counter
from sqlalchemy import bindparam, text

from voicebus.campaigns import events as ev
from voicebus.campaigns import outbox, policy, windows
from voicebus.campaigns.clock import Clock
from voicebus.campaigns.publisher import Publisher
from voicebus.campaigns.store import Store
from voicebus.contracts.campaigns import CampaignSpec, CampaignStatus
from voicebus.contracts.commands import OriginateCall
from voicebus.contracts.events import Envelope
from voicebus.contracts.ids import new_id
from voicebus.runtime import backoff

log = logging.getLogger(__name__)

_LOOKAHEAD = 200
_NEVER = timedelta(days=1)
"""A contact with no opening within 8 days is looked at again after a day."""


@dataclass(frozen=True, slots=True)
class DialerConfig:
    """Knobs of the dial loop."""

    instance_id: str
    source: str
    tenant_cap: int = 200
    claim_lease_s: float = 15.0
    dial_grace_s: float = 60.0
    max_call_s: float = 3600.0
    max_batch: int = 500


@dataclass(slots=True)
class Decisions:
    """What one pass over one campaign decided."""

    dialed: list[OriginateCall] = field(default_factory=list)
    events: list[Envelope] = field(default_factory=list)
    decided: int = 0
    blocked: int = 0
    """Contacts not dialed: their number is on a DNC list."""
    deferred: int = 0
    """Contacts not dialed now: outside their calling window."""
    live_by_caller: dict[str, int] = field(default_factory=dict)
    """Live calls per caller id of the tenant when the pass began."""


@dataclass(frozen=True, slots=True)
class _Due:
    contact_id: int
    phone: str
    region: str | None
    zones: tuple[str, ...]
    context: dict[str, Any]
    attempts: int


DIAL_DECISIONS: Final = Counter(
    "voicebus_campaigns_dial_decisions",
    "Contacts decided by the dialer: dialed, blocked (dnc) or deferred (window).",
    ["decision"],
)
for _decision in ("dialed", "dnc", "window"):
    DIAL_DECISIONS.labels(_decision)


def count_decisions(batch: Decisions) -> None:
    """Count one committed pass's decisions."""
    DIAL_DECISIONS.labels("dialed").inc(len(batch.dialed))
    DIAL_DECISIONS.labels("dnc").inc(batch.blocked)
    DIAL_DECISIONS.labels("window").inc(batch.deferred)


class Dialer:
    """Makes dial decisions for every running campaign.

    Args:
        store: the database.
        publisher: where commands and events go.
        clock: business time.
        config: caps and leases.
    """

    def __init__(
        self, store: Store, publisher: Publisher, clock: Clock, config: DialerConfig
    ) -> None:
        self.store = store
        self.publisher = publisher
        self.clock = clock
        self.config = config
        self._rr = 0
        self.decisions = 0
        self._failures = 0
        self.on_staged: Callable[[], None] = lambda: None
        """Called after a pass staged decision events (wakes the outbox relay)."""

    async def tick(self) -> int:
        """One pass over the running campaigns, least recently served first.

        Returns:
            Contacts decided (dialed, deferred or blocked).
        """
        async with self.store.engine.connect() as conn:
            rows = (
                await conn.execute(
                    text(
                        "SELECT tenant_id, campaign_id FROM campaigns "
                        "WHERE status IN ('scheduled', 'running') ORDER BY served_at LIMIT 100"
                    )
                )
            ).all()
        decided = 0
        for tenant_id, campaign_id in rows:
            batch = await self._decide(tenant_id, campaign_id)
            count_decisions(batch)  # committed: the decisions stand
            await self._send(batch)
            decided += batch.decided
        self.decisions += decided
        return decided

    async def run(self, idle_s: float, stopping: asyncio.Event) -> None:
        """Decide until ``stopping``: at once again while there is work, else after ``idle_s``."""
        while not stopping.is_set():
            wait = idle_s
            try:
                decided = await self.tick()
                self._failures = 0
            except Exception:  # a database or bus outage must not stop dialing for good
                self._failures += 1
                if self._failures & (self._failures - 1) == 0:  # 1st, 2nd, 4th, ... in a row
                    log.exception("dial pass failed", extra={"failures": self._failures})
                decided = 0
                wait = max(idle_s, backoff.delay_s(self._failures))
            if decided == 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stopping.wait(), wait)

    async def _send(self, batch: Decisions) -> None:
        if batch.events:
            self.on_staged()
        if batch.dialed:
            acked = await self.publisher.commands(batch.dialed)
            sent = [c.id for c, ok in zip(batch.dialed, acked, strict=True) if ok]
            if sent:
                await self._mark_dialed(sent)

    async def _mark_dialed(self, attempt_ids: Sequence[str]) -> None:
        async with self.store.engine.begin() as conn:
            await conn.execute(
                text(
                    "UPDATE attempts SET status = 'dialed', "
                    "lease_until = now() + make_interval(secs => :grace) "
                    "WHERE attempt_id = ANY(:ids) AND status = 'claimed'"
                ),
                {"ids": list(attempt_ids), "grace": self.config.dial_grace_s},
            )

    async def _decide(self, tenant_id: str, campaign_id: str) -> Decisions:
        out = Decisions()
        now = self.clock.now()
        real = time.time()
        async with self.store.engine.begin() as conn:
            locked = await conn.scalar(
                text("SELECT pg_try_advisory_xact_lock(hashtext(:k))"),
                {"k": f"vb-campaigns:{tenant_id}"},
            )
            if not locked:
                return out
            row = (
                await conn.execute(
                    text(
                        "SELECT status, spec, pace_tokens, pace_at FROM campaigns "
                        "WHERE tenant_id = :t AND campaign_id = :c FOR UPDATE"
                    ),
                    {"t": tenant_id, "c": campaign_id},
                )
            ).first()
            if row is None:
                return out
            spec = CampaignSpec.model_validate(row.spec)
            status = CampaignStatus(row.status)
            if status is CampaignStatus.SCHEDULED:
                if spec.start_at is not None and now < spec.start_at:
                    return out
                status = CampaignStatus.RUNNING
                await self._set_status(conn, tenant_id, campaign_id, status, now)
            if status is not CampaignStatus.RUNNING:
                return out
            live = await self._live(conn, tenant_id)
            campaign_live = sum(n for (c, _), n in live.items() if c == campaign_id)
            by_caller = out.live_by_caller
            for (_, caller), n in live.items():
                if caller:
                    by_caller[caller] = by_caller.get(caller, 0) + n
            burst = max(1.0, spec.pacing_cps)
            tokens = policy.refill(row.pace_tokens, row.pace_at, real, spec.pacing_cps, burst)
            room = policy.capacity(
                campaign_cap=spec.concurrency,
                campaign_live=campaign_live,
                tenant_cap=self.config.tenant_cap,
                tenant_live=sum(live.values()),
                caller_ids=spec.caller_ids,
                caller_cap=spec.caller_id_concurrency,
                live_by_caller=by_caller,
                tokens=tokens,
            )
            calls = min(room.calls, self.config.max_batch)
            due = await self._due(conn, tenant_id, campaign_id, now, calls) if calls > 0 else []
            if due:
                dials = await self._apply(conn, tenant_id, campaign_id, spec, due, calls, now, out)
                tokens -= dials
            elif calls > 0:
                await self._maybe_complete(conn, tenant_id, campaign_id, spec, now, campaign_live)
            await outbox.stage(conn, out.events)  # committed with the decisions, or not at all
            await conn.execute(
                text(
                    "UPDATE campaigns SET pace_tokens = :tok, pace_at = :at, served_at = :at "
                    "WHERE tenant_id = :t AND campaign_id = :c"
                ),
                {"tok": tokens, "at": real, "t": tenant_id, "c": campaign_id},
            )
        return out

    async def _live(self, conn: Any, tenant_id: str) -> dict[tuple[str, str | None], int]:
        rows = await conn.execute(
            text(
                "SELECT campaign_id, from_number, count(*) FROM attempts "
                "WHERE tenant_id = :t AND status IN ('claimed', 'dialed', 'answered') GROUP BY 1, 2"
            ),
            {"t": tenant_id},
        )
        return {(c, f): n for c, f, n in rows.all()}

    async def _due(
        self, conn: Any, tenant_id: str, campaign_id: str, now: datetime, calls: int
    ) -> list[_Due]:
        rows = await conn.execute(
            text(
                "SELECT contact_id, phone, region, zones, context, attempts FROM contacts "
                "WHERE tenant_id = :t AND campaign_id = :c AND state = 'pending' "
                "AND next_at <= :now ORDER BY next_at, contact_id LIMIT :n "
                "FOR UPDATE SKIP LOCKED"
            ),
            {"t": tenant_id, "c": campaign_id, "now": now, "n": calls + _LOOKAHEAD},
        )
        return [_Due(r[0], r[1], r[2], tuple(r[3]), r[4], r[5]) for r in rows.all()]

    async def _apply(
        self,
        conn: Any,
        tenant_id: str,
        campaign_id: str,
        spec: CampaignSpec,
        due: list[_Due],
        calls: int,
        now: datetime,
        out: Decisions,
    ) -> int:
        blocked = await self.store.dnc_scopes(conn, tenant_id, campaign_id, [d.phone for d in due])
        cache: dict[tuple[tuple[str, ...], str | None], windows.WindowDecision] = {}
        env = ev.Env(tenant_id, campaign_id, self.config.source)
        dnc_ids: list[int] = []
        deferred: list[dict[str, Any]] = []
        dial: list[_Due] = []
        for d in due:
            if len(dial) >= calls:
                break
            out.decided += 1
            if d.phone in blocked:
                dnc_ids.append(d.contact_id)
                out.blocked += 1
                out.events.append(ev.dnc_checked(env, d.contact_id, d.phone, blocked[d.phone]))
                continue
            key = (d.zones, d.region)
            window = cache.get(key)
            if window is None:
                window = cache[key] = windows.check(now, d.zones, d.region, spec)
            if not window.allowed:
                when = window.next_opening or now + _NEVER
                deferred.append({"cid": d.contact_id, "nat": when})
                out.deferred += 1
                out.events.extend(
                    ev.deferred(env, d.contact_id, d.phone, d.attempts + 1, window, when)
                )
                continue
            dial.append(d)
        if dnc_ids:
            await conn.execute(
                text("UPDATE contacts SET state = 'dnc' WHERE contact_id = ANY(:ids)"),
                {"ids": dnc_ids},
            )
        if deferred:
            await conn.execute(
                text("UPDATE contacts SET next_at = :nat WHERE contact_id = :cid").bindparams(
                    bindparam("nat"), bindparam("cid")
                ),
                deferred,
            )
        if dial:
            await self._claim(conn, tenant_id, campaign_id, spec, dial, now, out, env, cache)
        return len(dial)

    async def _claim(
        self,
        conn: Any,
        tenant_id: str,
        campaign_id: str,
        spec: CampaignSpec,
        dial: list[_Due],
        now: datetime,
        out: Decisions,
        env: ev.Env,
        cache: dict[tuple[tuple[str, ...], str | None], windows.WindowDecision],
    ) -> None:
        callers = policy.pick_caller_ids(
            len(dial), spec.caller_ids, spec.caller_id_concurrency, out.live_by_caller, self._rr
        )
        self._rr += len(dial)
        attempts: list[dict[str, Any]] = []
        contacts: list[dict[str, Any]] = []
        for d, caller in zip(dial, callers, strict=False):
            attempt_id = new_id()
            number = d.attempts + 1
            attempts.append(
                {
                    "aid": attempt_id,
                    "t": tenant_id,
                    "c": campaign_id,
                    "cid": d.contact_id,
                    "no": number,
                    "frm": caller,
                    "by": self.config.instance_id,
                    "at": now,
                    "lease": self.config.claim_lease_s,
                }
            )
            contacts.append({"cid": d.contact_id, "call": attempt_id, "at": now})
            out.dialed.append(ev.originate(env, spec, d.phone, d.context, attempt_id, caller))
            out.events.extend(
                ev.dialed(env, d.contact_id, d.phone, attempt_id, number, caller,
                          cache[(d.zones, d.region)])
            )  # fmt: skip
        await conn.execute(
            text(
                "INSERT INTO attempts (attempt_id, call_id, tenant_id, campaign_id, contact_id, "
                "attempt_no, from_number, status, claimed_by, claimed_at, lease_until, dialed_at) "
                "VALUES (:aid, :aid, :t, :c, :cid, :no, :frm, 'claimed', :by, now(), "
                "now() + make_interval(secs => :lease), :at)"
            ),
            attempts,
        )
        await conn.execute(
            text(
                "UPDATE contacts SET state = 'dialing', attempts = attempts + 1, "
                "last_call_id = :call, last_attempt_at = :at WHERE contact_id = :cid"
            ),
            contacts,
        )

    async def _set_status(
        self, conn: Any, tenant_id: str, campaign_id: str, status: CampaignStatus, now: datetime
    ) -> None:
        await conn.execute(
            text(
                "UPDATE campaigns SET status = :s, updated_at = :now "
                "WHERE tenant_id = :t AND campaign_id = :c"
            ),
            {"s": status.value, "now": now, "t": tenant_id, "c": campaign_id},
        )

    async def _maybe_complete(
        self,
        conn: Any,
        tenant_id: str,
        campaign_id: str,
        spec: CampaignSpec,
        now: datetime,
        live: int,
    ) -> None:
        """Complete a campaign with nothing left to dial (or past its end date)."""
        if live:
            return
        ended = spec.end_at is not None and now >= spec.end_at
        if ended:
            await conn.execute(
                text(
                    "UPDATE contacts SET state = 'expired' WHERE tenant_id = :t "
                    "AND campaign_id = :c AND state = 'pending'"
                ),
                {"t": tenant_id, "c": campaign_id},
            )
        counts = (
            await conn.execute(
                text(
                    "SELECT count(*) FILTER (WHERE state IN ('pending', 'dialing')), count(*) "
                    "FROM contacts WHERE tenant_id = :t AND campaign_id = :c"
                ),
                {"t": tenant_id, "c": campaign_id},
            )
        ).one()
        left, total = counts[0], counts[1]
        # A campaign started before any contact was uploaded waits for its contacts.
        if left == 0 and (ended or (spec.recurrence is None and total > 0)):
            await self._set_status(conn, tenant_id, campaign_id, CampaignStatus.COMPLETED, now)
