"""The gateway's operator metrics: bounded labels, counted where the events happen."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY
from starlette.responses import Response

from voicebus.gateway import metrics
from voicebus.gateway.providers import registry
from voicebus.gateway.routes import _timed

pytestmark = pytest.mark.unit


def _value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_a_call_is_active_between_its_start_and_its_end() -> None:
    active = _value("voicebus_gateway_calls_active", provider="plivo")
    started = _value("voicebus_gateway_calls_started_total", provider="plivo")
    ended = _value("voicebus_gateway_calls_ended_total", provider="plivo", reason="caller_hangup")

    metrics.call_started("plivo")
    assert _value("voicebus_gateway_calls_active", provider="plivo") == active + 1
    metrics.call_ended("plivo", "caller_hangup")

    assert _value("voicebus_gateway_calls_active", provider="plivo") == active
    assert _value("voicebus_gateway_calls_started_total", provider="plivo") == started + 1
    assert (
        _value("voicebus_gateway_calls_ended_total", provider="plivo", reason="caller_hangup")
        == ended + 1
    )


@pytest.mark.parametrize(("status", "result"), [(200, "2xx"), (403, "4xx"), (503, "5xx")])
def test_webhooks_are_labelled_by_status_class(status: int, result: str) -> None:
    labels = {"provider": "exotel", "kind": "status", "result": result}
    before = _value("voicebus_gateway_webhook_seconds_count", **labels)
    metrics.observe_webhook("exotel", "status", status, 0.01)
    assert _value("voicebus_gateway_webhook_seconds_count", **labels) == before + 1


async def test_a_webhook_that_raises_is_recorded_as_5xx() -> None:
    twilio = next(p for p in registry.providers() if p.name == "twilio")
    ok = {"provider": "twilio", "kind": "answer", "result": "2xx"}
    failed = {"provider": "twilio", "kind": "answer", "result": "5xx"}
    before_ok = _value("voicebus_gateway_webhook_seconds_count", **ok)
    before_failed = _value("voicebus_gateway_webhook_seconds_count", **failed)

    async def answer() -> Response:
        return Response(status_code=204)

    async def broken() -> Response:
        raise RuntimeError("boom")

    assert (await _timed(twilio, "answer", answer())).status_code == 204
    with pytest.raises(RuntimeError):
        await _timed(twilio, "answer", broken())

    assert _value("voicebus_gateway_webhook_seconds_count", **ok) == before_ok + 1
    assert _value("voicebus_gateway_webhook_seconds_count", **failed) == before_failed + 1


def test_dials_are_counted_by_result() -> None:
    before = _value("voicebus_gateway_dials_total", provider="twilio", result="failed")
    metrics.count_dial("twilio", metrics.DialResult.FAILED)
    assert _value("voicebus_gateway_dials_total", provider="twilio", result="failed") == before + 1


def test_initialized_series_read_zero() -> None:
    metrics.initialize([("vobiz", True)], ["caller_hangup", "error"])
    assert (
        REGISTRY.get_sample_value(
            "voicebus_gateway_calls_ended_total", {"provider": "vobiz", "reason": "error"}
        )
        is not None
    )
    assert (
        REGISTRY.get_sample_value(
            "voicebus_gateway_dials_total", {"provider": "vobiz", "result": "no_account"}
        )
        is not None
    )
