"""Agents, tools, knowledge bases and live-call controls through the REST edge, in front of
the real orchestrator (PostgreSQL) and audit: created and updated (a new version) by two
tenants, used by the next call without a restart, another tenant's a 404, bad input a 422
naming the field, secrets never shown, a knowledge-base answer citing its chunk."""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import httpx
import pytest
from edge_stack import EdgeStack
from test_edge_api import admin_key, bearer, poll
from typer.testing import CliRunner

from voicebus.cli.main import operator_app
from voicebus.contracts import streams, subjects
from voicebus.contracts.commands import Transfer, parse_control
from voicebus.contracts.events import (
    CallEnded,
    CallEndedData,
    CallStarted,
    CallStartedData,
    Direction,
    EndReason,
    TranscriptFinal,
    TranscriptFinalData,
)
from voicebus.contracts.ids import new_id

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

SCENARIOS = Path(__file__).resolve().parents[2] / "agents" / "evals" / "demo.yaml"


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


def start_call(edge: EdgeStack, tenant: str, agent_id: str, call_id: str | None = None) -> str:
    call_id = call_id or new_id()
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


def test_a_flow_nodes_canvas_position_round_trips_and_a_bad_one_is_a_422(edge: EdgeStack) -> None:
    def placed(position: Any) -> dict[str, Any]:
        done = {"name": "done", "description": "The caller is done.", "target": "b"}
        nodes = [{"id": "a", "position": position, "transitions": [done]}, {"id": "b", "end": True}]
        return definition("Hi.", flow={"initial": "a", "nodes": nodes})

    with edge.client() as http:
        acme = admin_key(http, "acme")
        created = http.post(
            "/agents", headers=bearer(acme),
            json={"agent_id": "placed", "definition": placed({"x": 360.5, "y": -40})},
        )  # fmt: skip
        assert created.status_code == 201, created.text
        loaded = http.get("/agents/placed", headers=bearer(acme)).json()
        refused = http.put(
            "/agents/placed", headers=bearer(acme),
            json={"definition": placed({"x": 1e9, "y": 0}), "expected_version": 1},
        )  # fmt: skip
    a, b = loaded["definition"]["flow"]["nodes"]
    assert a["position"] == {"x": 360.5, "y": -40.0}
    assert "position" not in b  # unset stays unset: the canvas lays it out
    assert refused.status_code == 422, refused.text
    fields = {f["field"]: f["message"] for f in refused.json()["error"]["fields"]}
    assert "less than or equal to 100000" in fields["flow.nodes[0].position.x"]


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


def _replay_agent(order_reply: str, *, bye_ends_call: bool) -> dict[str, Any]:
    bye: dict[str, Any] = {"tool": "end_call"} if bye_ends_call else {"reply": "Bye then."}
    rules = [{"match": r"\bbye\b", **bye}, {"match": r"\border\b", "reply": order_reply}]
    return definition(
        "Hi, this is Acme.",
        llm={"engine": "scripted", "options": {"rules": rules, "default": "Sorry?"}},
        tools=[{"type": "end_call"}],
    )


def _stand_in_for_media_and_gateway(edge: EdgeStack, call_id: str) -> asyncio.Event:
    """Acknowledge the call's ``Say`` chunks (media's part) and hold its gateway lease, so
    the orchestrator sees a live call; set the returned event (on the stack's loop) to let go."""

    async def hold() -> asyncio.Event:
        done = asyncio.Event()
        assert edge.nc is not None
        nc = edge.nc

        async def ack(msg: Any) -> None:
            await msg.respond(b"")

        subscription = await nc.subscribe(subjects.ctl(call_id, "say"), cb=ack)
        kv = await nc.jetstream().key_value(streams.CALL_OWNERS.bucket)

        async def renew() -> None:
            while not done.is_set():
                await kv.put(streams.owner_key("gateway", call_id), b"gw-e2e")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(done.wait(), 1.0)
            await subscription.unsubscribe()

        await kv.put(streams.owner_key("gateway", call_id), b"gw-e2e")
        await nc.flush()
        asyncio.get_running_loop().create_task(renew())
        return done

    return edge.run(hold())


async def _release(live: asyncio.Event) -> None:
    live.set()


def _say(edge: EdgeStack, tenant: str, call_id: str, text: str) -> None:
    said = TranscriptFinalData(utterance_id=new_id(), text=text, start_ms=0, end_ms=500)
    edge.run(edge.publish(TranscriptFinal(tenant_id=tenant, call_id=call_id,
                                          source="media/e2e", data=said)))  # fmt: skip


def _replies(http: httpx.Client, token: str, call_id: str, count: int) -> list[dict[str, Any]]:
    found = poll(
        http, f"/calls/{call_id}/events", token,
        lambda r: sum(e["type"] == "agent.reply.v1" for e in r.json()["events"]) >= count,
    )  # fmt: skip
    return [e["data"] for e in found.json()["events"] if e["type"] == "agent.reply.v1"]


def test_a_recorded_call_replayed_against_a_changed_version_shows_the_difference(
    edge: EdgeStack,
) -> None:
    runner = CliRunner()
    with edge.client() as http:
        token, other = admin_key(http, "replayco"), admin_key(http, "replayother")
        v1 = _replay_agent("Sure, what is your order number?", bye_ends_call=True)
        created = http.post("/agents", headers=bearer(token),
                            json={"agent_id": "orders", "definition": v1})  # fmt: skip
        assert created.status_code == 201, created.text
        call_id = new_id()
        live = _stand_in_for_media_and_gateway(edge, call_id)
        start_call(edge, "replayco", "orders", call_id)
        _replies(http, token, call_id, 1)
        _say(edge, "replayco", call_id, "I have a question about my order")
        _replies(http, token, call_id, 2)
        _say(edge, "replayco", call_id, "ok bye")
        assert _replies(http, token, call_id, 3)[-1]["text"] == "Goodbye!"
        ended = CallEnded(tenant_id="replayco", call_id=call_id, source="gateway/e2e",
                          data=CallEndedData(reason=EndReason.AGENT_HANGUP))  # fmt: skip
        edge.run(edge.publish(ended))
        edge.run(_release(live))
        poll(http, f"/calls/{call_id}/events", token,
             lambda r: any(e["type"] == "call.ended.v1" for e in r.json()["events"]))  # fmt: skip
        v2 = _replay_agent("What's the order number, please?", bye_ends_call=False)
        updated = http.put("/agents/orders", headers=bearer(token),
                           json={"definition": v2, "expected_version": 1})  # fmt: skip
        assert updated.status_code == 200, updated.text
        # Another tenant cannot replay the call.
        hidden = http.post(f"/calls/{call_id}/replay", headers=bearer(other), json={})
        assert hidden.status_code == 404, hidden.text

    common = [call_id, "--url", edge.base_url.removesuffix("/api/v1"), "--api-key", token]
    changed = runner.invoke(operator_app(), ["replay", *common, "--agent-version", "2", "--assert"])
    assert changed.exit_code == 1, changed.output
    assert "What's the order number, please?" in changed.output
    assert "difference(s)" in changed.output
    as_json = runner.invoke(operator_app(), ["replay", *common, "--agent-version", "2", "--json"])
    assert as_json.exit_code == 0, as_json.output
    report = json.loads(as_json.stdout)
    assert (report["original_version"], report["replayed_version"]) == (1, 2)
    found = {(d["turn"], d["kind"]) for d in report["differences"]}
    assert found == {(1, "reply"), (2, "reply"), (2, "tools"), (2, "end")}
    assert report["original"][2]["tools"][0]["name"] == "end_call"
    assert report["replayed"][2]["reply"] == "Bye then."
    # Only flow transitions asserted: none differ.
    flows = runner.invoke(operator_app(), ["replay", *common, "--agent-version", "2", "--assert",
                                "--assert-on", "transitions"])  # fmt: skip
    assert flows.exit_code == 0, flows.output
    same = runner.invoke(operator_app(), ["replay", *common, "--agent-version", "1", "--assert"])
    assert same.exit_code == 0, same.output
    assert "no differences" in same.output


def test_the_repositorys_scenario_file_passes_and_writes_its_reports(
    edge: EdgeStack, tmp_path: Path
) -> None:
    with edge.client() as http:
        token = admin_key(http, "evalco")
    out = tmp_path / "reports"
    common = ["--url", edge.base_url.removesuffix("/api/v1"), "--api-key", token]
    ran = CliRunner().invoke(operator_app(), ["eval", str(SCENARIOS), "--out", str(out), *common])
    assert ran.exit_code == 0, ran.output
    assert "4 of 4 scenario(s) passed" in ran.output
    report = json.loads((out / "report.json").read_text())
    assert [s["passed"] for s in report["scenarios"]] == [True] * 4
    found = report["scenarios"][0]["turns"][1]
    assert found["tools"][0]["arguments"] == {"order_id": "1234"}
    junit = ElementTree.parse(out / "junit.xml")  # noqa: S314 - the report the test just wrote
    suite = junit.getroot().find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("5", "0", "1")
    assert "4 of 4 scenario(s) passed" in (out / "report.md").read_text()

    # A changed expectation fails, and says where.
    broken = tmp_path / "broken.yaml"
    broken.write_text(SCENARIOS.read_text().replace("shipped on Monday", "shipped on Sunday"))
    failed = CliRunner().invoke(operator_app(), ["eval", str(broken), "--out", str(out), *common])
    assert failed.exit_code == 1, failed.output
    assert "turn 1: reply lacks 'shipped on Sunday'" in failed.output


STORE_FAQ = b"""# Acme store

We are open from nine to five on weekdays. Parking behind the shop is free.

## Refunds

Refunds take fourteen days from the day the parcel reaches us. Keep the receipt.
"""


def test_a_knowledge_base_answer_cites_a_chunk(edge: EdgeStack) -> None:
    with edge.client() as http:
        acme, globex = admin_key(http, "acme"), admin_key(http, "globex")
        created = http.post("/knowledge-bases", headers=bearer(acme),
                            json={"kb_id": "faq", "name": "Store FAQ"})  # fmt: skip
        assert created.status_code == 201, created.text
        again = http.post("/knowledge-bases", headers=bearer(acme), json={"kb_id": "faq"})
        assert again.status_code == 409
        upload = {"file": ("store.md", STORE_FAQ, "text/markdown")}
        first = http.post("/knowledge-bases/faq/documents", headers=bearer(acme), files=upload)
        assert first.status_code == 201, first.text
        assert first.json()["changed"] is True
        document = first.json()["document"]
        assert (document["document_id"], document["format"]) == ("store", "md")
        # The same content again: nothing parsed, nothing re-indexed.
        same = http.post("/knowledge-bases/faq/documents", headers=bearer(acme), files=upload)
        assert same.status_code == 200, same.text
        assert same.json() == {"document": document, "changed": False}
        broken = http.put("/knowledge-bases/faq/documents/prices?filename=prices.json",
                          headers=bearer(acme), content=b'{"tea": ')  # fmt: skip
        assert broken.status_code == 422, broken.text
        assert broken.json()["error"]["fields"][0]["field"] == "file"
        assert "prices.json" in broken.json()["error"]["message"]
        listed = http.get("/knowledge-bases/faq/documents", headers=bearer(acme)).json()
        assert [d["document_id"] for d in listed] == ["store"]

        # Another tenant sees none of it, however asked.
        for method, path in (("GET", "/knowledge-bases/faq"),
                             ("GET", "/knowledge-bases/faq/documents"),
                             ("DELETE", "/knowledge-bases/faq/documents/store"),
                             ("DELETE", "/knowledge-bases/faq")):  # fmt: skip
            assert http.request(method, path, headers=bearer(globex)).status_code == 404, path
        assert http.post("/knowledge-bases/faq/documents", headers=bearer(globex),
                         files=upload).status_code == 404  # fmt: skip
        assert http.get("/knowledge-bases", headers=bearer(globex)).json() == []
        foreign = http.post("/knowledge-bases/faq/search", headers=bearer(globex),
                            json={"query": "refunds"})  # fmt: skip
        assert foreign.status_code == 404

        rule = {"match": r"refund", "tool": "search_knowledge", "args": {"query": "refund"},
                "after_tool": "{{chunks.0.text}} [{{chunks.0.chunk_id}}]"}  # fmt: skip
        librarian = definition("", llm={"engine": "scripted", "options": {"rules": [rule]}},
                               knowledge={"bases": ["faq"], "mode": "tool"})  # fmt: skip
        saved = http.post("/agents", headers=bearer(acme),
                          json={"agent_id": "librarian", "definition": librarian})  # fmt: skip
        assert saved.status_code == 201, saved.text

        call_id, said = new_id(), []
        edge.run(_answer_says(edge, call_id, said))
        start_call(edge, "acme", "librarian", call_id=call_id)
        heard = TranscriptFinalData(utterance_id=new_id(), text="How long does a refund take?",
                                    start_ms=0, end_ms=900)  # fmt: skip
        edge.run(edge.publish(TranscriptFinal(tenant_id="acme", call_id=call_id,
                                              source="media/e2e", data=heard)))  # fmt: skip
        events = poll(
            http, f"/calls/{call_id}/events", acme,
            lambda r: any(e["type"] == "agent.reply.v1" for e in r.json()["events"]),
        ).json()["events"]  # fmt: skip
        # The first search of the orchestrator may be slow enough for the "one moment"
        # filler, after which the scripted model asks again: every retrieval is checked.
        retrievals = [e["data"] for e in events if e["type"] == "kb.retrieved.v1"]
        results = [e["data"] for e in events if e["type"] == "tool.result.v1"]
        assert retrievals
        assert len(retrievals) == len(results)
        best = retrievals[0]["chunks"][0]
        for retrieved, result in zip(retrievals, results, strict=True):
            assert (retrieved["mode"], retrieved["knowledge_bases"]) == ("tool", ["faq"])
            assert retrieved["chunks"][0] == best
            # What the LLM received: the chunk's text under its id.
            assert result["name"] == "search_knowledge"
            assert result["result"]["chunks"][0]["chunk_id"] == best["chunk_id"]
        assert (best["kb_id"], best["document_id"]) == ("faq", "store")
        assert best["chunk_id"].startswith(f"store.{document['content_hash'][:8]}.")
        received = results[0]["result"]["chunks"][0]
        assert received["text"].startswith("Refunds take fourteen days")
        assert received["heading"] == "Acme store > Refunds"
        # The answer is the retrieved text, citing the chunk.
        (reply,) = [e["data"] for e in events if e["type"] == "agent.reply.v1"]
        assert reply["text"].endswith(f"{received['text']} [{best['chunk_id']}]")
        assert "fourteen days" in " ".join(said)

        searched = http.post("/knowledge-bases/faq/search", headers=bearer(acme),
                             json={"query": "is parking free"})  # fmt: skip
        assert searched.status_code == 200, searched.text
        assert "Parking" in searched.json()[0]["text"]
        edge.run(
            edge.publish(
                CallEnded(
                    tenant_id="acme",
                    call_id=call_id,
                    source="gateway/e2e",
                    data=CallEndedData(reason=EndReason.CALLER_HANGUP),
                )
            )
        )
        # Changed content: re-indexed, with new chunk ids; the old text is gone.
        changed = STORE_FAQ.replace(b"fourteen", b"thirty")
        replaced = http.put("/knowledge-bases/faq/documents/store?filename=store.md",
                            headers=bearer(acme), content=changed)  # fmt: skip
        assert replaced.status_code == 201, replaced.text
        assert replaced.json()["document"]["content_hash"] != document["content_hash"]
        hits = http.post("/knowledge-bases/faq/search", headers=bearer(acme),
                         json={"query": "refunds"}).json()  # fmt: skip
        assert hits[0]["text"].startswith("Refunds take thirty days")
        assert hits[0]["chunk_id"] != best["chunk_id"]
        gone = http.delete("/knowledge-bases/faq/documents/store", headers=bearer(acme))
        assert gone.status_code == 200, gone.text
        assert http.get("/knowledge-bases/faq", headers=bearer(acme)).json()["documents"] == 0
        assert http.post("/knowledge-bases/faq/search", headers=bearer(acme),
                         json={"query": "refunds"}).json() == []  # fmt: skip
        assert http.delete("/knowledge-bases/faq", headers=bearer(acme)).status_code == 200
        assert http.get("/knowledge-bases/faq", headers=bearer(acme)).status_code == 404


async def _answer_says(edge: EdgeStack, call_id: str, said: list[str]) -> None:
    """Acknowledge the call's ``say`` commands as media would, keeping their text."""
    assert edge.nc is not None

    async def on(msg: Any) -> None:
        command = parse_control(msg.data)
        said.append(getattr(command.data, "text", ""))
        await msg.respond(b"")

    await edge.nc.subscribe(subjects.ctl(call_id, "say"), cb=on)
    await edge.nc.flush()
