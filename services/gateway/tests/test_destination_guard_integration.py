"""The tenant's destination allow-list at the dialer (whoever ordered the call): the real
gateway on a real nats-server, the tenant's account from an edge stand-in."""

from __future__ import annotations

from typing import Any

import pytest
from gateway_kit import EventLog, FakeOrchestrator, serve_gateway, wait_for
from nats.aio.msg import Msg
from pydantic import SecretStr

from voicebus.contracts.commands import OriginateCall, OriginateCallData
from voicebus.contracts.events import CallEnded
from voicebus.contracts.telephony import ACCOUNTS_GET, AccountReply, GetAccount, StoredAccount
from voicebus.gateway.destinations import destination_refusal

pytestmark = pytest.mark.integration


@pytest.mark.unit
def test_regions_come_from_the_e164_number() -> None:
    assert destination_refusal("+442071838750", None) is None
    assert destination_refusal("+14155550199", {"US"}) is None
    assert destination_refusal("+442071838750", {"US"}) is not None
    assert destination_refusal("+999123", {"US"}) is not None  # no known region


async def test_a_campaign_or_api_dial_outside_the_allow_list_is_never_placed(
    embedded_nats_factory: Any,
) -> None:
    async with serve_gateway(
        embedded_nats_factory().url,
        account_lookup_timeout_s=2.0,
        provider_api_hosts=["127.0.0.1"],  # the unreachable stand-in host below, not Twilio's
    ) as gw:
        await FakeOrchestrator(["demo"]).start(gw.nc)
        events = await EventLog().start(gw.nc)

        async def edge(msg: Msg) -> None:
            request = GetAccount.model_validate_json(msg.data)
            account = StoredAccount(
                tenant_id=request.tenant_id, provider=request.provider,
                fields={"account_id": "AC" + "a" * 32, "caller_id": "+14155550100",
                        "api_base_url": "http://127.0.0.1:9"},  # nothing listens: a dial fails
                secrets={"auth_token": SecretStr("acme-token-0123456789")},
                allowed_countries=["US"],
            )  # fmt: skip
            await msg.respond(AccountReply(ok=True, account=account).model_dump_json().encode())

        await gw.nc.subscribe(ACCOUNTS_GET, cb=edge)
        js = gw.nc.jetstream()
        for call_id, number in (("c-gb", "+442071838750"), ("c-us", "+14155550199")):
            command = OriginateCall(
                tenant_id="acme", call_id=call_id, source="campaigns/test",
                data=OriginateCallData(agent_id="demo", to_number=number, provider="twilio"),
            )  # fmt: skip
            await js.publish(command.subject, command.to_bytes(),
                             headers={"Nats-Msg-Id": command.id})  # fmt: skip
        await wait_for(lambda: len(events.of("call.ended.v1")) == 2, timeout=30)
        codes = {}
        for event in events.of("call.ended.v1"):
            assert isinstance(event, CallEnded)
            codes[event.call_id] = event.data.provider_error_code
        assert codes["c-gb"] == "destination_not_allowed"
        assert not events.of("call.initiated.v1", "c-gb")  # never announced, never dialed
        assert codes["c-us"] != "destination_not_allowed"  # allowed: dialed (and failed there)
