"""The retention job: every interval, each tenant's policy is applied by the owners.

One edge instance runs a round at a time: the round holds a transaction-level advisory
lock (``pg_try_advisory_xact_lock``) and an instance that does not get it skips the
round. Owners apply cut-offs idempotently (what is erased stays erased, nothing is
counted twice), so a round repeated after a crash, or run by two instances because
of a lock lost with its connection, is harmless. An owner that does not answer is
skipped for this round and asked again at the next.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final

from sqlalchemy import text

from voicebus.contracts.retention import (
    AUDIT_RETENTION,
    CAMPAIGNS_RETENTION,
    RECORDER_RETENTION,
    ApplyRetention,
    RetentionApplied,
)
from voicebus.edge.tenancy import retention
from voicebus.edge.tenancy.store import TenantStore
from voicebus.runtime.rpc import RpcClient, RpcFault
from voicebus.runtime.service import Service

log = logging.getLogger(__name__)

_LOCK: Final = text("SELECT pg_try_advisory_xact_lock(hashtext('edge.retention'))")


def owners_for(request: ApplyRetention) -> list[str]:
    """The owners' subjects a request concerns (none for an empty policy)."""
    subjects = []
    if request.events_before is not None or request.transcripts_before is not None:
        subjects.append(AUDIT_RETENTION)
    if request.recordings_before is not None:
        subjects.append(RECORDER_RETENTION)
    if request.contacts_before is not None:
        subjects.append(CAMPAIGNS_RETENTION)
    return subjects


@dataclass(slots=True)
class Round:
    """What one round did: totals over tenants, and owners that did not answer."""

    ran: bool = False
    events: int = 0
    recordings: int = 0
    contacts: int = 0
    failed: list[str] = field(default_factory=list)


class RetentionJob:
    """Applies every tenant's retention every ``interval_s``.

    Args:
        store: the tenancy store (its engine holds the policies and the lock).
        client: request/reply to the owners.
        interval_s: time between rounds.
    """

    def __init__(self, store: TenantStore, client: RpcClient, interval_s: float) -> None:
        self._store = store
        self._client = client
        self._interval_s = interval_s
        self._task: asyncio.Task[None] | None = None

    async def run_once(self, now: datetime | None = None) -> Round:
        """One round (skipped when another instance holds the lock)."""
        now = now or datetime.now(UTC)
        done = Round()
        async with self._store.engine.begin() as conn:
            if not (await conn.execute(_LOCK)).scalar():
                return done
            done.ran = True
            for tenant_id, policy in await retention.policies(self._store.engine):
                request = policy.request(tenant_id, now)
                for subject in owners_for(request):
                    try:
                        applied = await self._client.ask(subject, request, RetentionApplied)
                    except RpcFault as fault:
                        log.warning("retention not applied", extra={
                            "tenant_id": tenant_id, "subject": subject, "status": fault.status,
                        })  # fmt: skip
                        done.failed.append(f"{tenant_id}:{subject}")
                        continue
                    done.events += applied.events
                    done.recordings += applied.recordings
                    done.contacts += applied.contacts
        return done

    async def start(self, _service: Service) -> None:
        """Start-up hook: run rounds in the background."""
        self._task = asyncio.create_task(self._loop(), name="edge-retention")

    async def stop(self, _service: Service) -> None:
        """Shutdown hook."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self._interval_s)
            try:
                done = await self.run_once()
            except Exception:  # a database outage: the next round tries again
                log.exception("retention round failed")
                continue
            if done.ran and (done.events or done.recordings or done.contacts or done.failed):
                log.info("retention applied", extra={
                    "events": done.events, "recordings": done.recordings,
                    "contacts": done.contacts, "failed": len(done.failed),
                })  # fmt: skip
