"""One HTTP attempt of a delivery: SSRF-guarded, signed, bounded in time, redirects not
followed, the response body never read."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Final

import httpx

from voicebus.edge.webhooks import signing
from voicebus.edge.webhooks.store import Delivery, Target
from voicebus.runtime.ssrf import TargetPolicy, TargetRefusedError, check_target

USER_AGENT: Final = "voicebus-webhooks/1"


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one attempt came to.

    Attributes:
        status_code: the receiver's HTTP status, None when none came.
        error: why it failed (``http 503``, ``timeout``, ...); None on a 2xx.
        duration_ms: how long it took.
    """

    status_code: int | None
    error: str | None
    duration_ms: float

    @property
    def ok(self) -> bool:
        """A 2xx answer."""
        return self.error is None


def headers(delivery: Delivery, secret: str, body: bytes, timestamp: int) -> dict[str, str]:
    """The request headers of one attempt."""
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        signing.SIGNATURE_HEADER: signing.signature(secret, timestamp, body),
        signing.TIMESTAMP_HEADER: str(timestamp),
        "X-Voicebus-Webhook-Id": delivery.webhook_id,
        "X-Voicebus-Delivery-Id": delivery.delivery_id,
        "X-Voicebus-Event-Id": delivery.event_id,
        "X-Voicebus-Event-Type": delivery.event_type,
        "X-Voicebus-Tenant": delivery.tenant_id,
        "X-Voicebus-Call-Id": delivery.call_id,
    }


class Sender:
    """Sends deliveries.

    Args:
        client: an HTTP client that follows no redirects.
        policy: which non-public targets the operator allows.
        timeout_s: the whole attempt's time limit.
    """

    def __init__(self, client: httpx.AsyncClient, policy: TargetPolicy, timeout_s: float) -> None:
        self._client = client
        self._policy = policy
        self._timeout = timeout_s

    async def send(self, delivery: Delivery, target: Target, body: bytes) -> Outcome:
        """One attempt; never raises."""
        started = time.monotonic()

        def outcome(status: int | None, error: str | None) -> Outcome:
            return Outcome(status, error, (time.monotonic() - started) * 1000)

        try:
            await check_target(target.url, self._policy)
        except TargetRefusedError as exc:
            return outcome(None, f"refused target: {exc}"[:256])
        except ValueError:
            return outcome(None, "refused target: not a valid URL")
        sent = headers(delivery, target.secret, body, int(time.time()))
        try:
            # httpx's timeout bounds each phase (connect, each read); this the whole attempt.
            async with asyncio.timeout(self._timeout):
                async with self._client.stream(
                    "POST", target.url, content=body, headers=sent, timeout=self._timeout
                ) as response:
                    status = response.status_code
        except (TimeoutError, httpx.TimeoutException):
            return outcome(None, "timeout")
        except httpx.HTTPError as exc:
            return outcome(None, f"connection failed: {type(exc).__name__}")
        return outcome(status, None if 200 <= status < 300 else f"http {status}")
