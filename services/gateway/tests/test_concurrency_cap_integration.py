"""A tenant's ``max_concurrent_calls`` through the real gateway on a real nats-server, the
tenant's account from an edge stand-in: an inbound call over the cap gets Twilio's busy
refusal, an outbound order over it is not dialed and ends as ``concurrency_limit``."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from gateway_kit import (
    WEBHOOK_FORM,
    EventLog,
    FakeOrchestrator,
    RunningGateway,
    TwilioPeer,
    parse_twiml,
    serve_gateway,
    sign,
    twiml_stream,
)
from nats.aio.msg import Msg
from nats.js.errors import KeyNotFoundError
from nats.js.kv import KeyValue
from prometheus_client import REGISTRY
from pydantic import SecretStr

from voicebus.contracts.commands import OriginateCall, OriginateCallData
from voicebus.contracts.events import CallEnded, CallError, EndReason, ErrorCode
from voicebus.contracts.streams import CALL_SLOTS, slot_key
from voicebus.contracts.telephony import (
    ACCOUNTS_GET,
    SESSIONS_CREATE,
    AccountReply,
    CreateSession,
    GetAccount,
    SessionReply,
    StoredAccount,
)
from voicebus.runtime.rpc import RemoteError, RpcClient

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

ACME_TOKEN = "acme-twilio-auth-token-6b0e2f"
SLOT = slot_key("acme", 0)


async def _edge_with_cap_one(gw: RunningGateway) -> None:
    """Answers acme's account lookups: cap 1, a REST base URL where nothing listens."""

    async def answer(msg: Msg) -> None:
        request = GetAccount.model_validate_json(msg.data)
        account = StoredAccount(
            tenant_id=request.tenant_id, provider=request.provider,
            fields={"account_id": "AC" + "a" * 32, "caller_id": "+14155550100",
                    "api_base_url": "http://127.0.0.1:9"},  # a dial fails there, fast
            secrets={"auth_token": SecretStr(ACME_TOKEN)},
            max_concurrent_calls=1,
        )  # fmt: skip
        await msg.respond(AccountReply(ok=True, account=account).model_dump_json().encode())

    await gw.nc.subscribe(ACCOUNTS_GET, cb=answer)
    await gw.nc.flush()


async def _inbound(gw: RunningGateway) -> httpx.Response:
    path = "/telephony/twilio/acme/inbound/demo"
    signature = sign(f"{gw.settings.public_url}{path}", WEBHOOK_FORM, ACME_TOKEN)
    async with httpx.AsyncClient(base_url=gw.base_url, timeout=15) as client:
        return await client.post(path, data=WEBHOOK_FORM, headers={"X-Twilio-Signature": signature})


async def _slot_freed(kv: KeyValue) -> None:
    async with asyncio.timeout(15):
        while True:
            try:
                await kv.get(SLOT)
            except KeyNotFoundError:
                return
            await asyncio.sleep(0.05)


def _refused() -> float:
    labels = {"provider": "twilio", "reason": "concurrency_limit"}
    return REGISTRY.get_sample_value("voicebus_gateway_calls_refused_total", labels) or 0.0


async def test_an_inbound_call_over_the_cap_gets_busy_until_the_live_call_ends(
    embedded_nats_factory: Any,
) -> None:
    async with serve_gateway(embedded_nats_factory().url, account_lookup_timeout_s=2.0) as gw:
        await FakeOrchestrator(["demo"]).start(gw.nc)
        await _edge_with_cap_one(gw)
        events = await EventLog().start(gw.nc)
        kv = await gw.nc.jetstream().key_value(CALL_SLOTS.bucket)

        url, params = twiml_stream((await _inbound(gw)).text)
        peer = await TwilioPeer.open(url)
        await peer.connected()
        await peer.start(params)
        await events.one("call.started.v1", params["call_id"])

        refused_before = _refused()
        busy = await _inbound(gw)
        assert busy.status_code == 200
        reject = parse_twiml(busy.text).find("Reject")
        assert reject is not None
        assert reject.get("reason") == "busy"
        assert _refused() == refused_before + 1
        assert len(events.of("call.initiated.v1")) == 1  # the refused call never began

        await peer.stop()  # the caller hangs up: the slot frees with the call's end
        await events.one("call.ended.v1", params["call_id"])
        await _slot_freed(kv)
        _url, again = twiml_stream((await _inbound(gw)).text)
        assert again["call_id"] != params["call_id"]


async def test_an_outbound_order_over_the_cap_is_not_dialed_and_says_why(
    embedded_nats_factory: Any,
) -> None:
    async with serve_gateway(
        embedded_nats_factory().url,
        account_lookup_timeout_s=2.0,
        provider_api_hosts=["127.0.0.1"],  # the stand-in's unreachable host, not Twilio's
    ) as gw:
        await FakeOrchestrator(["demo"]).start(gw.nc)
        await _edge_with_cap_one(gw)
        events = await EventLog().start(gw.nc)
        js = gw.nc.jetstream()
        kv = await js.key_value(CALL_SLOTS.bucket)
        await kv.create(SLOT, b"gw-other")  # acme's one slot: a live call on another gateway

        async def originate(call_id: str) -> None:
            command = OriginateCall(
                tenant_id="acme", call_id=call_id, source="campaigns/test",
                data=OriginateCallData(agent_id="demo", to_number="+14155550199",
                                       provider="twilio"),
            )  # fmt: skip
            await js.publish(command.subject, command.to_bytes(),
                             headers={"Nats-Msg-Id": command.id})  # fmt: skip

        await originate("c-over")
        ended = await events.one("call.ended.v1", "c-over")
        assert isinstance(ended, CallEnded)
        assert ended.data.reason is EndReason.CONCURRENCY_LIMIT
        error = await events.one("call.error.v1", "c-over")
        assert isinstance(error, CallError)
        assert error.data.code is ErrorCode.CONCURRENCY_LIMIT
        assert error.data.retryable
        assert not events.of("call.initiated.v1", "c-over")  # never announced, never dialed

        await kv.delete(SLOT)  # the other call ended: the next order is dialed
        await originate("c-ok")
        ended = await events.one("call.ended.v1", "c-ok")
        assert isinstance(ended, CallEnded)
        assert ended.data.reason is EndReason.PROVIDER_ERROR  # dialed, and failed there
        assert events.of("call.initiated.v1", "c-ok")
        await _slot_freed(kv)  # the failed dial gave its slot back


async def test_a_browser_session_over_the_cap_is_refused_with_a_429(
    embedded_nats_factory: Any,
) -> None:
    """The edge passes the tenant's cap with a browser session (``replay --audio`` and
    ``eval --audio`` call that way): browser calls fill the same slots."""
    async with serve_gateway(embedded_nats_factory().url) as gw:
        await FakeOrchestrator(["demo"]).start(gw.nc)
        kv = await gw.nc.jetstream().key_value(CALL_SLOTS.bucket)
        client = RpcClient(gw.nc, timeout_s=5)
        ask = CreateSession(tenant_id="acme", agent_id="demo", max_concurrent_calls=1)
        first = await client.ask(SESSIONS_CREATE, ask, SessionReply, idempotent=False)
        assert first.session is not None
        assert (await kv.get(SLOT)).value is not None  # the first call holds the one slot
        labels = {"provider": "browser", "reason": "concurrency_limit"}
        before = REGISTRY.get_sample_value("voicebus_gateway_calls_refused_total", labels) or 0
        with pytest.raises(RemoteError) as refused:
            await client.ask(SESSIONS_CREATE, ask, SessionReply, idempotent=False)
        assert (refused.value.status, refused.value.code) == (429, "concurrent_call_limit")
        after = REGISTRY.get_sample_value("voicebus_gateway_calls_refused_total", labels)
        assert after == before + 1
        uncapped = ask.model_copy(update={"max_concurrent_calls": None})
        assert (await client.ask(SESSIONS_CREATE, uncapped, SessionReply,
                                 idempotent=False)).session is not None  # fmt: skip
