"""The delivery loop: takes due deliveries from the outbox, sends them, logs every attempt.

Up to ``concurrency`` deliveries are in flight per instance, each the first pending one
of its subscription and call (:mod:`voicebus.edge.webhooks.store`), so a call's events
arrive in order while other calls go on. A failed attempt is retried after an
exponentially growing, jittered delay; the attempt that uses up the delivery's budget
makes it a dead letter (status ``dead``, kept in the log, redeliverable on demand).
Delivery is at least once: a crash after the receiver answered and before the answer
was logged sends that delivery again when its lease runs out; receivers dedupe on
``X-Voicebus-Event-Id``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime, timedelta
from typing import Final

from prometheus_client import Counter

from voicebus.edge.webhooks.retries import RetryPolicy
from voicebus.edge.webhooks.sender import Outcome, Sender
from voicebus.edge.webhooks.store import Attempt, Delivery, Status, WebhookStore
from voicebus.runtime import backoff
from voicebus.runtime.failures import Failure, classify

log = logging.getLogger(__name__)

PURGE_EVERY_S: Final = 3600.0
ATTEMPTS: Final = Counter(
    "voicebus_edge_webhook_attempts",
    "Webhook delivery attempts, by what came of them (delivered, retry, dead).",
    ["outcome"],
)


class Dispatcher:
    """Sends what the outbox holds.

    Args:
        store: the outbox.
        sender: one attempt.
        retries: the retry schedule.
        concurrency: deliveries in flight at once.
        poll_s: how often the outbox is looked at when nothing woke the loop.
        max_body_bytes: bigger events are not sent (a dead letter, ``oversize``).
        lease_s: how long a claimed delivery is kept from other instances.
        keep_s: finished deliveries older than this are purged from the log (hourly).
    """

    def __init__(
        self,
        store: WebhookStore,
        sender: Sender,
        retries: RetryPolicy,
        *,
        concurrency: int,
        poll_s: float,
        max_body_bytes: int,
        lease_s: float,
        keep_s: float,
    ) -> None:
        self._store = store
        self._sender = sender
        self._retries = retries
        self._concurrency = concurrency
        self._poll_s = poll_s
        self._max_body = max_body_bytes
        self._lease_s = lease_s
        self._keep_s = keep_s
        self._purged_at: float | None = None
        self._wake = asyncio.Event()
        self._inflight: set[asyncio.Task[None]] = set()
        self._task: asyncio.Task[None] | None = None

    def wake(self) -> None:
        """Look at the outbox now (new deliveries, a redelivery)."""
        self._wake.set()

    def start(self) -> None:
        """Start the loop."""
        self._task = asyncio.create_task(self._run(), name="webhook-dispatcher")

    async def stop(self) -> None:
        """Stop claiming; deliveries in flight finish (bounded by the send timeout)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._inflight:
            await asyncio.gather(*self._inflight, return_exceptions=True)

    async def _run(self) -> None:
        failures = 0
        while True:
            self._wake.clear()
            await self._purge_hourly()
            room = self._concurrency - len(self._inflight)
            claimed: list[tuple[Delivery, bytes]] = []
            if room > 0:
                try:
                    claimed = await self._store.claim_due(room, self._lease_s)
                    failures = 0
                except Exception as exc:  # classified: an outage is waited out
                    failures += 1
                    if classify(exc) is not Failure.TRANSIENT:
                        log.error("webhook outbox unreadable", exc_info=exc)
                    elif failures & (failures - 1) == 0:
                        log.warning("webhook outbox unreachable; retrying")
                    await asyncio.sleep(backoff.delay_s(failures))
                    continue
            for delivery, body in claimed:
                task = asyncio.create_task(self._deliver(delivery, body))
                self._inflight.add(task)
                task.add_done_callback(self._done)
            if not claimed:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._poll_s)

    async def _purge_hourly(self) -> None:
        now = asyncio.get_running_loop().time()
        if self._purged_at is not None and now - self._purged_at < PURGE_EVERY_S:
            return
        self._purged_at = now
        cutoff = datetime.now(UTC) - timedelta(seconds=self._keep_s)
        try:
            purged = await self._store.purge(cutoff)
        except Exception as exc:  # classified: the next hour tries again
            log.warning("webhook log not purged", extra={"error": type(exc).__name__})
            if classify(exc) is not Failure.TRANSIENT:
                log.error("webhook log purge failed", exc_info=exc)
            return
        if purged:
            log.info("webhook log purged", extra={"deliveries": purged})

    def _done(self, task: asyncio.Task[None]) -> None:
        self._inflight.discard(task)
        self._wake.set()  # the call's next event may be due now

    async def _deliver(self, delivery: Delivery, body: bytes) -> None:
        attempt = delivery.attempts + 1
        try:
            if len(body) > self._max_body:
                outcome = Outcome(None, "oversize", 0.0)
                await self._settle(delivery, attempt, outcome, final=True)
                return
            target = await self._store.target(delivery.webhook_id)
            if target is None:
                return  # deleted meanwhile: its deliveries went with it
            outcome = await self._sender.send(delivery, target, body)
            await self._settle(delivery, attempt, outcome, final=False)
        except Exception:  # the lease runs out and the delivery is claimed again
            log.exception(
                "webhook delivery not settled", extra={"delivery_id": delivery.delivery_id}
            )

    async def _settle(
        self, delivery: Delivery, attempt: int, outcome: Outcome, *, final: bool
    ) -> None:
        logged = Attempt(
            attempt, datetime.now(UTC), outcome.status_code, outcome.error, outcome.duration_ms
        )
        fields = {
            "delivery_id": delivery.delivery_id,
            "webhook_id": delivery.webhook_id,
            "attempt": attempt,
            "status_code": outcome.status_code,
            "error": outcome.error,
        }
        if outcome.ok:
            await self._store.settle(delivery, logged, status=Status.DELIVERED, retry_in_s=None)
            ATTEMPTS.labels("delivered").inc()
        elif final or self._retries.gives_up(attempt, delivery.budget):
            await self._store.settle(delivery, logged, status=Status.DEAD, retry_in_s=None)
            ATTEMPTS.labels("dead").inc()
            log.warning("webhook delivery dead-lettered", extra=fields)
        else:
            delay = self._retries.delay_s(attempt)
            await self._store.settle(delivery, logged, status=Status.PENDING, retry_in_s=delay)
            ATTEMPTS.labels("retry").inc()
            log.info("webhook delivery failed; retrying", extra={**fields, "retry_in_s": delay})
