"""Campaign decision events go out through an outbox, so a crash cannot lose one.

Each decision (a dial, a deferral, a DNC block, an outcome, a retry) is recorded
by a transaction; its events are written to ``outbox`` **in that same
transaction** (:func:`stage`), so either both the decision and its events are
committed or neither. A relay (:class:`OutboxRelay`, one per instance) then
publishes staged events to ``VB_EVENTS`` oldest first and deletes each row only
once JetStream acknowledged it. Rows are taken ``FOR UPDATE SKIP LOCKED``, so
instances share the work and a row left by a dead instance is published by
another. A row published but not yet deleted (a crash between the ack and the
commit) is published again: its ``Nats-Msg-Id`` (the event id) makes the stream
keep one copy inside the duplicate window, and every consumer is idempotent on
the event id beyond it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Final

from prometheus_client import Counter, Gauge
from sqlalchemy import text

from voicebus.contracts.events import Envelope
from voicebus.runtime import backoff

if TYPE_CHECKING:  # the store stages through this module: no import cycle at run time
    from voicebus.campaigns.publisher import Publisher
    from voicebus.campaigns.store import Store

log = logging.getLogger(__name__)

PUBLISHED: Final = Counter(
    "voicebus_campaigns_outbox_published", "Decision events published from the outbox."
)
STAGED: Final = Gauge(
    "voicebus_campaigns_outbox_backlog", "Decision events staged and not yet published."
)
_STAGE: Final = text(
    "INSERT INTO outbox (subject, msg_id, body, created_at) "
    "SELECT s, i, b, now() FROM unnest(CAST(:s AS text[]), CAST(:i AS text[]), "
    "CAST(:b AS bytea[])) AS t(s, i, b)"
)
_TAKE: Final = text(
    "SELECT seq, subject, msg_id, body FROM outbox ORDER BY seq LIMIT :n FOR UPDATE SKIP LOCKED"
)
_DONE: Final = text("DELETE FROM outbox WHERE seq = ANY(:seqs)")
_BACKLOG: Final = text("SELECT count(*) FROM outbox")


async def stage(conn: Any, events: Sequence[Envelope]) -> None:
    """Write ``events`` to the outbox inside the caller's transaction (``conn``)."""
    if not events:
        return
    await conn.execute(
        _STAGE,
        {
            "s": [e.subject for e in events],
            "i": [e.id for e in events],
            "b": [e.to_bytes() for e in events],
        },
    )


class OutboxRelay:
    """Publishes staged events; woken by :meth:`poke` after a commit, else every ``idle_s``.

    Args:
        store: the database.
        publisher: where events go.
        batch: most rows per round.
        idle_s: longest pause between rounds (rows another instance left behind).
    """

    def __init__(
        self, store: Store, publisher: Publisher, *, batch: int = 2000, idle_s: float = 1.0
    ) -> None:
        self._store = store
        self._publisher = publisher
        self._batch = batch
        self._idle_s = idle_s
        self._wake = asyncio.Event()

    def poke(self) -> None:
        """Events were just staged: publish them now rather than at the next idle round."""
        self._wake.set()

    async def flush_once(self) -> int:
        """Publish up to one batch of staged events; returns how many were published."""
        async with self._store.engine.begin() as conn:
            rows = (await conn.execute(_TAKE, {"n": self._batch})).all()
            if not rows:
                return 0
            acked = await self._publisher.raw([(r.subject, r.msg_id, r.body) for r in rows])
            done = [r.seq for r, ok in zip(rows, acked, strict=True) if ok]
            if done:
                await conn.execute(_DONE, {"seqs": done})
        PUBLISHED.inc(len(done))
        if len(done) < len(rows):
            raise ConnectionError(f"{len(rows) - len(done)} staged events were not acknowledged")
        return len(done)

    async def backlog(self) -> int:
        """Rows staged and not yet published."""
        async with self._store.engine.connect() as conn:
            count: int = (await conn.execute(_BACKLOG)).scalar_one()
        STAGED.set(count)
        return count

    async def run(self, stopping: asyncio.Event) -> None:
        """Publish until ``stopping``, then once more (what the last decisions staged)."""
        failures = 0
        while not stopping.is_set():
            self._wake.clear()
            try:
                published = await self.flush_once()
                failures = 0
            except Exception:  # the database or the bus is away: wait and try again
                failures += 1
                if failures & (failures - 1) == 0:
                    log.warning("outbox relay failed; retrying", exc_info=True)
                published = 0
                await _pause(stopping, backoff.delay_s(failures))
                continue
            if published < self._batch:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(_first(self._wake, stopping), self._idle_s)
        with contextlib.suppress(Exception):  # best effort: another instance publishes the rest
            while await self.flush_once():
                pass


async def _first(*events: asyncio.Event) -> None:
    waits = [asyncio.create_task(e.wait()) for e in events]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waits:
            w.cancel()


async def _pause(stopping: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stopping.wait(), seconds)
