"""A named tenant's webhook is checked with the account the edge hands out over real NATS
(an edge stand-in that speaks ``vb.rpc.edge.accounts.get``), asked once per cache TTL.

While the edge (or its database) cannot answer, a named tenant's webhook gets a clear 503
and the gateway stays ready: it keeps no database of its own."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from gateway_kit import (
    AUTH_TOKEN,
    WEBHOOK_FORM,
    EventLog,
    FakeOrchestrator,
    RunningGateway,
    serve_gateway,
    sign,
    twiml_stream,
)
from nats.aio.msg import Msg
from pydantic import SecretStr

from voicebus.contracts.commands import OriginateCall, OriginateCallData
from voicebus.contracts.events import CallEnded, EndReason
from voicebus.contracts.rpc import RpcError
from voicebus.contracts.telephony import ACCOUNTS_GET, AccountReply, GetAccount, StoredAccount
from voicebus.devkit.carriers.twilio import TwilioCarrier

pytestmark = pytest.mark.integration

ACME_TOKEN = "acme-twilio-auth-token-6b0e2f"


class EdgeStandIn:
    """Answers account requests for tenant acme; counts what it was asked."""

    def __init__(self) -> None:
        self.asked: list[GetAccount] = []

    async def start(self, gw: RunningGateway) -> EdgeStandIn:
        self.sub = await gw.nc.subscribe(ACCOUNTS_GET, cb=self._answer)
        await gw.nc.flush()
        return self

    async def _answer(self, msg: Msg) -> None:
        request = GetAccount.model_validate_json(msg.data)
        self.asked.append(request)
        if request.tenant_id == "initech":  # as the edge answers while its database is down
            error = RpcError(status=503, code="database_unavailable", message="down")
            reply = AccountReply(ok=False, error=error)
        elif request.tenant_id == "acme":
            account = StoredAccount(
                tenant_id="acme",
                provider=request.provider,
                fields={"account_id": "AC" + "a" * 32},
                secrets={"auth_token": SecretStr(ACME_TOKEN)},
            )
            reply = AccountReply(ok=True, account=account)
        else:
            error = RpcError(status=404, code="account_not_found", message="none")
            reply = AccountReply(ok=False, error=error)
        await msg.respond(reply.model_dump_json().encode())


async def _post(gw: RunningGateway, tenant: str, token: str) -> httpx.Response:
    path = f"/telephony/twilio/{tenant}/inbound/demo"
    signature = sign(f"{gw.settings.public_url}{path}", WEBHOOK_FORM, token)
    async with httpx.AsyncClient(base_url=gw.base_url) as client:
        return await client.post(path, data=WEBHOOK_FORM, headers={"X-Twilio-Signature": signature})


async def test_a_tenants_webhook_is_checked_with_its_account_from_the_edge(
    embedded_nats_factory: Any,
) -> None:
    async with serve_gateway(embedded_nats_factory().url, account_lookup_timeout_s=2.0) as gw:
        await FakeOrchestrator(["demo"]).start(gw.nc)
        edge = await EdgeStandIn().start(gw)

        accepted = await _post(gw, "acme", ACME_TOKEN)
        assert accepted.status_code == 200, accepted.text
        _, params = twiml_stream(accepted.text)
        assert params["tenant_id"] == "acme"
        # Signed with the gateway's own (the default tenant's) token: not acme's webhook.
        assert (await _post(gw, "acme", AUTH_TOKEN)).status_code == 403
        assert (await _post(gw, "acme", ACME_TOKEN)).status_code == 200
        assert [(r.tenant_id, r.provider) for r in edge.asked] == [("acme", "twilio")]  # cached

        # A tenant the edge has no account for is refused; "none" is cached too.
        assert (await _post(gw, "globex", ACME_TOKEN)).status_code == 403
        assert (await _post(gw, "globex", ACME_TOKEN)).status_code == 403
        assert [r.tenant_id for r in edge.asked] == ["acme", "globex"]

        # The edge's database is down: a clear 503, asked again next time (not cached).
        for _ in range(2):
            down = await _post(gw, "initech", ACME_TOKEN)
            assert down.status_code == 503
            assert down.headers["Retry-After"] == "5"
            assert "account cannot be read now" in down.text
        assert [r.tenant_id for r in edge.asked].count("initech") == 2

        # No edge at all: still 503 for a tenant not cached; the gateway stays ready.
        await edge.sub.unsubscribe()
        assert (await _post(gw, "umbrella", ACME_TOKEN)).status_code == 503
        async with httpx.AsyncClient(base_url=gw.base_url) as client:
            ready = await client.get("/readyz")
        assert ready.status_code == 200, ready.text
        assert (await _post(gw, "acme", ACME_TOKEN)).status_code == 200  # cached account


class EdgeGoingDown:
    """The edge answers acme's stored account ``answers`` times, then as it does while its
    database is down (503)."""

    def __init__(self, account: StoredAccount, answers: int) -> None:
        self.account = account
        self.answers = answers
        self.asked = 0

    async def start(self, gw: RunningGateway) -> EdgeGoingDown:
        await gw.nc.subscribe(ACCOUNTS_GET, cb=self._answer)
        await gw.nc.flush()
        return self

    async def _answer(self, msg: Msg) -> None:
        self.asked += 1
        if self.asked <= self.answers:
            reply = AccountReply(ok=True, account=self.account)
        else:
            error = RpcError(status=503, code="database_unavailable", message="down")
            reply = AccountReply(ok=False, error=error)
        await msg.respond(reply.model_dump_json().encode())


@pytest.mark.parametrize(("stale_s", "ended"), [(3600.0, True), (0.0, False)])
async def test_a_tenants_callbacks_are_checked_with_its_last_account_while_the_edge_is_down(
    embedded_nats_factory: Any, stale_s: float, ended: bool
) -> None:
    """The dial reads acme's account; then the edge's database goes down. Its callbacks
    are still checked with acme's token (the edge's last answer), so the call's end is
    published; without the stale answer they get 503 (never 403) and the end is lost."""
    sid = "AC" + "a" * 32
    carrier = TwilioCarrier(account_sid=sid, auth_token=ACME_TOKEN,
                            gateway_url="http://127.0.0.1:1")  # fmt: skip
    account = StoredAccount(
        tenant_id="acme", provider="twilio",
        fields={"account_id": sid, "caller_id": "+14155550100", "api_base_url": carrier.base_url},
        secrets={"auth_token": SecretStr(ACME_TOKEN)},
    )  # fmt: skip
    overrides = {"account_cache_ttl_s": 0.0, "account_stale_s": stale_s,
                 "provider_api_hosts": ["127.0.0.1"]}  # fmt: skip
    async with serve_gateway(embedded_nats_factory().url, **overrides) as gw:
        carrier.gateway_url = carrier.public_url = gw.base_url
        await FakeOrchestrator(["demo"]).start(gw.nc)
        edge = await EdgeGoingDown(account, answers=1).start(gw)
        events = await EventLog().start(gw.nc)
        command = OriginateCall(
            tenant_id="acme", call_id="out-acme-1", source="test/1",
            data=OriginateCallData(agent_id="demo", to_number="+14155550002", provider="twilio"),
        )  # fmt: skip
        async with carrier:
            js = gw.nc.jetstream()
            await js.publish(command.subject, command.to_bytes(),
                             headers={"Nats-Msg-Id": command.id})  # fmt: skip
            dialed = await carrier.wait_ended(timeout=30)
            if ended:
                busy = await events.one("call.ended.v1", command.call_id)
                assert isinstance(busy, CallEnded)
                assert busy.data.reason is EndReason.BUSY
        assert edge.asked > 1  # every callback asked the edge again (TTL 0), which failed
        assert dialed.progress() == ["initiated", "ringing", "busy"]
        statuses = {status for _, status in dialed.posted}
        assert statuses == ({200} if ended else {503})
        assert events.of("call.error.v1", command.call_id) == []  # no "forged" callback
        if not ended:
            assert events.of("call.ended.v1", command.call_id) == []
