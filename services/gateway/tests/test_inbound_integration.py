"""Twilio's inbound webhook against the real gateway app on a real nats-server."""

from __future__ import annotations

import pytest
from gateway_kit import (
    WEBHOOK_FORM,
    EventLog,
    FakeOrchestrator,
    RunningGateway,
    parse_twiml,
    post_webhook,
    sign,
    twiml_stream,
)

from voicebus.contracts.events import CallError, CallInitiated, ErrorCode
from voicebus.gateway.inbound import SORRY

pytestmark = pytest.mark.integration


async def test_signed_webhook_answers_connect_stream(running_gateway: RunningGateway) -> None:
    gw = running_gateway
    orchestrator = await FakeOrchestrator(["demo"]).start(gw.nc)
    events = await EventLog().start(gw.nc)

    response = await post_webhook(gw, "demo", query="ctx_order_id=1234&other=x")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/xml")
    url, params = twiml_stream(response.text)
    assert url == f"{gw.ws_url}/ws/twilio"
    assert params["agent_id"] == "demo"
    assert params["tenant_id"] == "default"
    assert params["ctx_order_id"] == "1234"
    assert "ctx_other" not in params
    assert "other" not in params
    assert params["from_number"] == WEBHOOK_FORM["From"]
    assert params["vb_token"]
    assert [r.agent_id for r in orchestrator.requests] == ["demo"]
    initiated = await events.one("call.initiated.v1", params["call_id"])
    assert isinstance(initiated, CallInitiated)
    assert initiated.data.provider == "twilio"
    assert initiated.data.provider_call_id == WEBHOOK_FORM["CallSid"]
    assert initiated.data.agent_id == "demo"
    assert initiated.data.context == {"order_id": "1234"}
    assert initiated.source == "gateway/gw-test"


@pytest.mark.parametrize("signature", ["", "bm90IGEgc2lnbmF0dXJl", "wrong-token"])
async def test_bad_signature_is_403_and_a_security_event(
    running_gateway: RunningGateway, signature: str
) -> None:
    gw = running_gateway
    orchestrator = await FakeOrchestrator(["demo"]).start(gw.nc)
    events = await EventLog().start(gw.nc)
    if signature == "wrong-token":  # a real signature, made with another account's token
        signature = sign(gw.webhook_url("demo"), WEBHOOK_FORM, token="another-accounts-token")

    response = await post_webhook(gw, "demo", signature=signature)

    assert response.status_code == 403
    assert "Connect" not in response.text
    error = await events.one("call.error.v1")
    assert isinstance(error, CallError)
    assert error.data.code is ErrorCode.SIGNATURE_INVALID
    assert error.data.security is True
    assert orchestrator.requests == []  # nothing is looked up for an unsigned request
    assert events.of("call.initiated.v1") == []


async def test_signature_covers_the_query_string(running_gateway: RunningGateway) -> None:
    gw = running_gateway
    await FakeOrchestrator(["demo"]).start(gw.nc)
    signature = sign(gw.webhook_url("demo", "ctx_a=1"), WEBHOOK_FORM)

    response = await post_webhook(gw, "demo", query="ctx_a=2", signature=signature)

    assert response.status_code == 403


def _says_sorry_and_hangs_up(twiml: str) -> None:
    root = parse_twiml(twiml)
    assert [child.tag for child in root] == ["Say", "Hangup"]
    assert root[0].text == SORRY


async def test_unknown_agent_says_sorry(running_gateway: RunningGateway) -> None:
    gw = running_gateway
    await FakeOrchestrator(["demo"]).start(gw.nc)
    events = await EventLog().start(gw.nc)

    response = await post_webhook(gw, "nobody")

    assert response.status_code == 200
    _says_sorry_and_hangs_up(response.text)
    error = await events.one("call.error.v1")
    assert isinstance(error, CallError)
    assert error.data.code is ErrorCode.UNKNOWN_AGENT
    assert error.data.security is False
    assert events.of("call.initiated.v1") == []


async def test_no_orchestrator_says_sorry_quickly(running_gateway: RunningGateway) -> None:
    gw = running_gateway
    events = await EventLog().start(gw.nc)

    response = await post_webhook(gw, "demo")  # nobody answers AGENTS_GET

    assert response.status_code == 200
    _says_sorry_and_hangs_up(response.text)
    error = await events.one("call.error.v1")
    assert isinstance(error, CallError)
    assert error.data.code is ErrorCode.INTERNAL
    assert error.data.retryable is True
