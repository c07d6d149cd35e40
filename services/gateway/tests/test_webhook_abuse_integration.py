"""Abuse of the webhooks: body-size cap, refused webhooks per source, sampled security
events. The real gateway on a real nats-server."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest
from gateway_kit import EventLog, serve_gateway, wait_for

from voicebus.gateway.abuse import PerMinute

FORM = {"CallSid": "CA1", "From": "+14155550100", "To": "+14155550199"}


@pytest.mark.unit
def test_per_minute_counts_per_key_and_forgets_the_last_minute() -> None:
    now = [120.0]
    counter = PerMinute(clock=lambda: now[0], max_sources=3)
    assert [counter.hit("a") for _ in range(3)] == [1, 2, 3]
    assert counter.hit("b") == 1
    assert counter.count("a") == 3
    now[0] = 180.0  # the next minute
    assert counter.count("a") == 0
    for key in ("x", "y", "z"):
        counter.hit(key)
    assert counter.count("x") == 0  # too many sources: the window starts over


async def _sampled(base_url: str) -> float:
    """Forged twilio webhooks counted instead of stored, as /metrics says."""
    async with httpx.AsyncClient() as http:
        metrics = (await http.get(f"{base_url}/metrics")).text
    series = 'voicebus_gateway_security_sampled_total{provider="twilio"} '
    line = next((m for m in metrics.splitlines() if m.startswith(series)), series + "0")
    return float(line.removeprefix(series))


@pytest.mark.integration
async def test_forged_webhooks_are_sampled_then_refused_unchecked(
    embedded_nats_factory: Any,
) -> None:
    url = embedded_nats_factory().url
    # The counts are per minute of the monotonic clock: start where the five requests fit
    # in one minute.
    if time.monotonic() % 60 > 40:
        await asyncio.sleep(61 - time.monotonic() % 60)
    async with serve_gateway(url, failed_webhooks_per_ip_per_minute=3) as gw:
        events = await EventLog().start(gw.nc)
        sampled_before = await _sampled(gw.base_url)
        async with httpx.AsyncClient(base_url=gw.base_url, timeout=10) as http:
            codes = [
                (await http.post("/telephony/twilio/inbound/demo", data=FORM,
                                 headers={"X-Twilio-Signature": "forged"})).status_code
                for _ in range(5)
            ]  # fmt: skip
        assert codes == [403, 403, 403, 429, 429]
        await wait_for(lambda: bool(events.of("call.error.v1")))
        await asyncio.sleep(0.3)  # more would have arrived by now
        assert len(events.of("call.error.v1")) == 1  # one per source and minute
        # The counter is the process's: earlier tests in this process may have counted too.
        assert await _sampled(gw.base_url) - sampled_before == 4


@pytest.mark.integration
async def test_a_webhook_body_over_the_cap_is_413(embedded_nats_factory: Any) -> None:
    async with (
        serve_gateway(embedded_nats_factory().url, max_webhook_bytes=2048) as gw,
        httpx.AsyncClient(base_url=gw.base_url, timeout=10) as http,
    ):
        big = await http.post(
            "/telephony/twilio/inbound/demo", data={**FORM, "Junk": "x" * 4096},
            headers={"X-Twilio-Signature": "whatever"},
        )  # fmt: skip
        assert big.status_code == 413
        small = await http.post(
            "/telephony/twilio/inbound/demo", data=FORM,
            headers={"X-Twilio-Signature": "forged"},
        )  # fmt: skip
        assert small.status_code == 403  # checked as before
