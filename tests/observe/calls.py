"""Short simulated calls through the real gateway, and reading the services' /metrics."""

from __future__ import annotations

import asyncio

import httpx

from voicebus.devkit.caller.session import TwilioCaller
from voicebus.devkit.defaults import DEV_TWILIO_AUTH_TOKEN
from voicebus.devkit.stack import DevStack


async def short_call(gateway_url: str) -> str:
    """One call to the scripted demo agent: hear the greeting start, hang up; the call id."""
    async with TwilioCaller(gateway_url, DEV_TWILIO_AUTH_TOKEN, "demo-scripted") as call:
        assert call.call_id is not None
        assert await call.wait_for_agent_audio(ms=200, timeout=60), "no greeting"
        return call.call_id


async def place_calls(dev: DevStack, count: int, batch: int = 5) -> list[str]:
    """``count`` short calls, ``batch`` at a time; their call ids."""
    gateway = next(s.url for s in dev.services if s.name == "gateway")
    ids: list[str] = []
    for start in range(0, count, batch):
        ids += await asyncio.gather(
            *(short_call(gateway) for _ in range(min(batch, count - start)))
        )
    return ids


def series(text: str) -> set[str]:
    """The series (name and labels) of a Prometheus text exposition."""
    return {
        line.rsplit(" ", 1)[0] for line in text.splitlines() if line and not line.startswith("#")
    }


async def scrape_all(dev: DevStack) -> dict[str, str]:
    """Every service's /metrics text, by service name."""
    async with httpx.AsyncClient(timeout=10.0) as http:
        texts = await asyncio.gather(*(http.get(f"{s.url}/metrics") for s in dev.services))
    return {s.name: r.text for s, r in zip(dev.services, texts, strict=True)}
