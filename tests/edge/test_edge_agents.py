"""Agents, tools and live-call controls through the REST edge, in front of the real
orchestrator (PostgreSQL) and audit: created and updated (a new version) by two tenants,
used by the next call without a restart, another tenant's a 404, bad input a 422 naming
the field, secrets never shown."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from edge_stack import EdgeStack
from test_edge_api import admin_key, bearer, poll

from voicebus.contracts import subjects
from voicebus.contracts.commands import Transfer, parse_control
from voicebus.contracts.events import (
    CallEnded,
    CallEndedData,
    CallStarted,
    CallStartedData,
    Direction,
    EndReason,
)
from voicebus.contracts.ids import new_id

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]


def definition(greeting: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": "Support",
        "system_prompt": "You help.",
        "greeting": greeting,
        "llm": {"engine": "scripted"},
        "stt": {"engine": "null"},
        "tts": {"engine": "silent"},
        **extra,
    }


def start_call(edge: EdgeStack, tenant: str, agent_id: str) -> str:
    call_id = new_id()
    started = CallStarted(
        tenant_id=tenant,
        call_id=call_id,
        source="gateway/e2e",
        data=CallStartedData(
            direction=Direction.INBOUND,
            provider="twilio",
            agent_id=agent_id,
            gateway_instance="gw-e2e",
        ),
    )
    edge.run(edge.publish(started))
    return call_id


def greeting_of(http: httpx.Client, token: str, call_id: str) -> dict[str, Any]:
    events = poll(
        http,
        f"/calls/{call_id}/events",
        token,
        lambda r: any(e["type"] == "agent.reply.v1" for e in r.json()["events"]),
    )
    assert events.status_code == 200, events.text
    return next(e["data"] for e in events.json()["events"] if e["type"] == "agent.reply.v1")


def test_agents_are_versioned_per_tenant_and_the_next_call_uses_the_new_version(
    edge: EdgeStack,
) -> None:
    with edge.client() as http:
        acme, globex = admin_key(http, "acme"), admin_key(http, "globex")
        created = http.post(
            "/agents",
            headers=bearer(acme),
            json={"agent_id": "support", "definition": definition("Hi one.")},
        )
        assert created.status_code == 201, created.text
        assert (created.json()["version"], created.json()["template"]) == (1, False)
        first = start_call(edge, "acme", "support")
        assert greeting_of(http, acme, first)["agent_version"] == 1

        updated = http.put(
            "/agents/support",
            headers=bearer(acme),
            json={"definition": definition("Hi two."), "expected_version": 1},
        )
        assert updated.status_code == 200, updated.text
        assert updated.json()["version"] == 2
        stale = http.put(
            "/agents/support",
            headers=bearer(acme),
            json={"definition": definition("Hi three."), "expected_version": 1},
        )
        assert stale.status_code == 409
        second = start_call(edge, "acme", "support")
        reply = greeting_of(http, acme, second)
        assert (reply["agent_version"], reply["text"]) == (2, "Hi two.")

        versions = http.get("/agents/support/versions", headers=bearer(acme)).json()
        assert [v["version"] for v in versions] == [2, 1]
        old = http.get("/agents/support/versions/1", headers=bearer(acme)).json()
        assert old["definition"]["greeting"] == "Hi one."
        assert old["current_version"] == 2

        # The other tenant: not found, however asked; its calls for that agent are refused.
        for method, path in (
            ("GET", "/agents/support"),
            ("GET", "/agents/support/versions"),
            ("GET", "/agents/support/versions/1"),
            ("DELETE", "/agents/support"),
        ):
            assert http.request(method, path, headers=bearer(globex)).status_code == 404, path
        assert (
            http.put(
                "/agents/support", headers=bearer(globex), json={"definition": definition("x")}
            ).status_code
            == 404
        )
        assert "support" not in [
            a["agent_id"] for a in http.get("/agents", headers=bearer(globex)).json()
        ]

        archived = http.delete("/agents/support", headers=bearer(acme))
        assert archived.status_code == 200
        assert archived.json()["archived"] is True
        assert "support" not in [
            a["agent_id"] for a in http.get("/agents", headers=bearer(acme)).json()
        ]


def test_an_older_version_made_live_is_what_the_next_call_uses(edge: EdgeStack) -> None:
    with edge.client() as http:
        acme, globex = admin_key(http, "acme"), admin_key(http, "globex")
        body = {"agent_id": "rollback", "definition": definition("Hi old.")}
        assert http.post("/agents", headers=bearer(acme), json=body).status_code == 201
        newer = {"definition": definition("Hi new.")}
        assert http.put("/agents/rollback", headers=bearer(acme), json=newer).status_code == 200

        live = http.post("/agents/rollback/versions/1/live", headers=bearer(acme))
        assert live.status_code == 200, live.text
        assert (live.json()["version"], live.json()["current_version"]) == (3, 3)
        assert live.json()["definition"]["greeting"] == "Hi old."
        digests = {v["version"]: v["digest"] for v in
                   http.get("/agents/rollback/versions", headers=bearer(acme)).json()}  # fmt: skip
        assert digests[3] == digests[1] != digests[2]
        reply = greeting_of(http, acme, start_call(edge, "acme", "rollback"))
        assert (reply["agent_version"], reply["text"]) == (3, "Hi old.")

        # The live version made live again: nothing changes.
        again = http.post("/agents/rollback/versions/3/live", headers=bearer(acme))
        assert (again.status_code, again.json()["version"]) == (200, 3)
        assert len(http.get("/agents/rollback/versions", headers=bearer(acme)).json()) == 3
        missing = http.post("/agents/rollback/versions/9/live", headers=bearer(acme))
        assert missing.status_code == 404
        other = http.post("/agents/rollback/versions/2/live", headers=bearer(globex))
        assert other.status_code == 404


def test_a_bad_definition_is_a_422_naming_each_field(edge: EdgeStack) -> None:
    broken = definition(
        "Hi {{nmae}}.",
        flow={
            "initial": "a",
            "nodes": [
                {
                    "id": "a",
                    "transitions": [{"name": "go", "description": "d", "target": "billing"}],
                }
            ],
        },
    )
    with edge.client() as http:
        acme = admin_key(http, "acme")
        refused = http.post(
            "/agents", headers=bearer(acme), json={"agent_id": "broken", "definition": broken}
        )
    assert refused.status_code == 422
    fields = {f["field"]: f["message"] for f in refused.json()["error"]["fields"]}
    assert fields["flow.nodes[0].transitions[0].target"] == "unknown node 'billing'"
    assert fields["greeting"].startswith("uses {{nmae}}")


def test_a_call_missing_a_required_variable_is_refused_naming_it(edge: EdgeStack) -> None:
    needs = definition("Hi.", variables=[{"name": "customer_id", "required": True}])
    with edge.client() as http:
        acme = admin_key(http, "acme")
        assert (
            http.post(
                "/agents", headers=bearer(acme), json={"agent_id": "needs", "definition": needs}
            ).status_code
            == 201
        )
        refused = http.post(
            "/calls", headers=bearer(acme), json={"agent_id": "needs", "to_number": "+14155550199"}
        )
    assert refused.status_code == 422
    assert refused.json()["error"]["fields"] == [
        {"field": "context.customer_id", "message": "required variable is missing"}
    ]


def test_tool_secrets_are_never_shown_and_other_tenants_see_nothing(edge: EdgeStack) -> None:
    tool = {
        "name": "lookup",
        "description": "Look up.",
        "url": "https://api.acme.example/x",
        "secret_headers": {"Authorization": "Bearer s3cr3t-value"},
    }
    with edge.client() as http:
        acme, globex = admin_key(http, "acme"), admin_key(http, "globex")
        created = http.post("/tools", headers=bearer(acme), json={"tool": tool})
        assert created.status_code == 201, created.text
        assert created.json()["signing_secret"]  # generated: shown this once
        assert "s3cr3t-value" not in created.text
        shown = http.get("/tools/lookup", headers=bearer(acme))
        assert shown.json()["secret_headers"] == ["Authorization"]
        assert shown.json()["signing_secret"] is None
        assert "s3cr3t-value" not in shown.text
        again = http.put(
            "/tools/lookup",
            headers=bearer(acme),
            json={"tool": {**tool, "secret_headers": {}, "timeout_s": 2}},
        )
        assert again.json()["version"] == 2
        assert again.json()["secret_headers"] == ["Authorization"]
        assert http.get("/tools/lookup", headers=bearer(globex)).status_code == 404
        assert http.get("/tools", headers=bearer(globex)).json() == []
        bad = http.post(
            "/tools",
            headers=bearer(acme),
            json={"tool": {**tool, "name": "retry", "method": "POST", "retries": 2}},
        )
        assert bad.status_code == 422
        assert "may not be retried" in bad.text


def test_live_call_controls_reach_only_the_tenants_live_calls(edge: EdgeStack) -> None:
    with edge.client() as http:
        acme, globex = admin_key(http, "acme"), admin_key(http, "globex")
        call_id = start_call(edge, "acme", "demo-scripted")
        poll(http, f"/calls/{call_id}", acme)
        seen: list[Any] = []

        async def listen() -> None:
            assert edge.nc is not None

            async def on(msg: Any) -> None:
                seen.append(parse_control(msg.data))

            await edge.nc.subscribe(subjects.ctl(call_id, "transfer"), cb=on)
            await edge.nc.flush()

        edge.run(listen())
        body = {"to_number": "+14155550123", "mode": "warm", "announcement": "Order question."}
        assert (
            http.post(f"/calls/{call_id}/transfer", headers=bearer(globex), json=body).status_code
            == 404
        )
        sent = http.post(f"/calls/{call_id}/transfer", headers=bearer(acme), json=body)
        assert sent.status_code == 202, sent.text
        edge.run(asyncio.sleep(0.5))
        assert [type(c) for c in seen] == [Transfer]
        assert seen[0].data.to_number == "+14155550123"
        bad = http.post(f"/calls/{call_id}/dtmf", headers=bearer(acme), json={"digits": "12x"})
        assert bad.status_code == 422
        ended = CallEnded(
            tenant_id="acme",
            call_id=call_id,
            source="gateway/e2e",
            data=CallEndedData(reason=EndReason.CALLER_HANGUP),
        )
        edge.run(edge.publish(ended))
        poll(http, f"/calls/{call_id}", acme, lambda r: r.json()["status"] == "ended")
        late = http.post(f"/calls/{call_id}/hangup", headers=bearer(acme))
        assert late.status_code == 409
