"""Signed Plivo and Vobiz webhooks replayed, and Vobiz's unsigned query context: the real
gateway on a real nats-server (the nonces live in its KV bucket)."""

from __future__ import annotations

import httpx
import pytest
from gateway_kit import EventLog, FakeOrchestrator, RunningGateway, serve_gateway, wait_for
from test_plivo_vobiz_integration import TOKEN

from voicebus.contracts.events import CallInitiated
from voicebus.devkit.caller import plivo, vobiz

pytestmark = pytest.mark.integration

FORM = plivo.answer_params(call_uuid="c-1", from_number="+14155550100", to_number="+14155550199")


def _signed(
    kind: str, gw: RunningGateway, query: dict[str, str], nonce: str
) -> tuple[str, dict[str, str]]:
    path_url = plivo.inbound_url(gw.settings.public_url, kind, "demo", query)
    if kind == "plivo":
        headers = {plivo.SIGNATURE_HEADER: plivo.sign(TOKEN, path_url, FORM, nonce),
                   plivo.NONCE_HEADER: nonce}  # fmt: skip
    else:
        headers = {vobiz.SIGNATURE_HEADER: vobiz.sign(TOKEN, path_url, nonce),
                   vobiz.NONCE_HEADER: nonce}  # fmt: skip
    return path_url.replace(gw.settings.public_url, gw.base_url), headers


@pytest.mark.parametrize("kind", ["plivo", "vobiz"])
async def test_a_replayed_signed_webhook_is_refused_on_every_gateway(
    embedded_nats_factory: object, kind: str
) -> None:
    url = embedded_nats_factory().url  # type: ignore[operator]
    async with (
        serve_gateway(url) as first,
        serve_gateway(url, instance_id="gw-two", public_url=first.settings.public_url) as second,
    ):
        await FakeOrchestrator(["demo"]).start(first.nc)
        target, headers = _signed(kind, first, {}, plivo.new_nonce())
        async with httpx.AsyncClient(timeout=10) as http:
            answered = await http.post(target, data=FORM, headers=headers)
            assert answered.status_code == 200, answered.text
            assert "<Stream" in answered.text
            again = await http.post(target, data=FORM, headers=headers)
            assert again.status_code == 403
            # The same request to another instance (same public URL): refused as well.
            elsewhere = target.replace(first.base_url, second.base_url)
            assert (await http.post(elsewhere, data=FORM, headers=headers)).status_code == 403
            # A fresh nonce is a new request.
            target, headers = _signed(kind, first, {}, plivo.new_nonce())
            assert (await http.post(target, data=FORM, headers=headers)).status_code == 200


async def test_vobiz_query_context_is_not_trusted_plivo_signed_query_is(
    running_gateway: RunningGateway,
) -> None:
    gw = running_gateway
    await FakeOrchestrator(["demo"]).start(gw.nc)
    events = await EventLog().start(gw.nc)
    contexts: dict[str, dict[str, str]] = {}
    async with httpx.AsyncClient(timeout=10) as http:
        for kind in ("vobiz", "plivo"):
            target, headers = _signed(kind, gw, {"ctx_customer": "Eve"}, plivo.new_nonce())
            answered = await http.post(target, data=FORM, headers=headers)
            assert answered.status_code == 200, answered.text
            await wait_for(lambda: len(events.of("call.initiated.v1")) == len(contexts) + 1)
            initiated = events.of("call.initiated.v1")[-1]
            assert isinstance(initiated, CallInitiated)
            contexts[kind] = dict(initiated.data.context)
    assert contexts == {"vobiz": {}, "plivo": {"customer": "Eve"}}
