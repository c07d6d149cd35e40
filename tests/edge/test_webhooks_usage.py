"""Usage metering end to end: the edge's consumer of VB_EVENTS on real NATS and PostgreSQL
sums a tenant's calls, minutes, STT seconds, TTS characters, LLM tokens and tool calls per
day, on REST and as CSV, counting an event delivered twice once."""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from edge_stack import ADMIN, EdgeStack
from webhooks_stack import EdgeOnlyStack

from voicebus.contracts.events import (
    AgentReply,
    AgentReplyData,
    AgentSpeechStarted,
    AgentSpeechStartedData,
    CallEnded,
    CallEndedData,
    CallStarted,
    CallStartedData,
    Direction,
    EndReason,
    Envelope,
    ToolCalled,
    ToolCalledData,
    TranscriptFinal,
    TranscriptFinalData,
)
from voicebus.contracts.ids import new_id
from voicebus.devkit.embedded_nats import EmbeddedNats

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

DAY = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
NEXT_DAY = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def edge(postgres_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[EdgeStack]:
    root = tmp_path_factory.mktemp("usage")
    with EmbeddedNats(data_dir=root / "nats") as server:
        stack = EdgeOnlyStack(server.url, postgres_url, root)
        stack.start()
        try:
            yield stack
        finally:
            stack.stop()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def usage_key(http: httpx.Client, tenant: str) -> str:
    created = http.post(
        "/tenants", headers=bearer(ADMIN), json={"tenant_id": tenant, "name": tenant}
    )
    assert created.status_code in (201, 409), created.text
    key = http.post(
        f"/tenants/{tenant}/keys",
        headers=bearer(ADMIN),
        json={"name": "usage", "scopes": ["usage:read"]},
    )
    assert key.status_code == 201, key.text
    token: str = key.json()["token"]
    return token


def simulated_call(
    tenant: str,
    direction: Direction,
    provider: str,
    *,
    seconds: float,
    heard_ms: list[tuple[int, int]],
    said: list[str],
    replies: list[tuple[str, int, int]],
    tools: list[str],
    at: datetime = DAY,
) -> list[Envelope]:
    """A call's metered events as media, the orchestrator and the gateway publish them."""
    common: dict[str, Any] = {"tenant_id": tenant, "call_id": new_id(), "source": "e2e", "time": at}
    events: list[Envelope] = [
        CallStarted(**common, data=CallStartedData(direction=direction, provider=provider,
                                                   agent_id="demo", gateway_instance="gw")),
    ]  # fmt: skip
    for start, end, engine in ((s, e, provider + "-stt") for s, e in heard_ms):
        data = TranscriptFinalData(
            utterance_id=new_id(), text="hello", start_ms=start, end_ms=end, engine=engine
        )
        events.append(TranscriptFinal(**common, data=data))
    for text in said:
        speech = AgentSpeechStartedData(utterance_id=new_id(), text=text)
        events.append(AgentSpeechStarted(**common, data=speech))
    for engine, tokens_in, tokens_out in replies:
        reply = AgentReplyData(turn_id="t", utterance_id="u", text="ok", engine=engine,
                               llm_tokens_in=tokens_in, llm_tokens_out=tokens_out)  # fmt: skip
        events.append(AgentReply(**common, data=reply))
    for index, name in enumerate(tools):
        call = ToolCalledData(tool_call_id=f"tc-{index}", name=name)
        events.append(ToolCalled(**common, data=call))
    ended = CallEndedData(reason=EndReason.CALLER_HANGUP, duration_s=seconds)
    events.append(CallEnded(**common, data=ended))
    return events


async def publish_again(edge: EdgeStack, event: Envelope) -> None:
    """The same event once more under another message id, as a redelivery would bring it."""
    assert edge.nc is not None
    await edge.nc.jetstream().publish(
        event.subject, event.to_bytes(), headers={"Nats-Msg-Id": new_id()}
    )


def poll_usage(http: httpx.Client, key: str, params: dict[str, str], until: Any) -> Any:
    deadline = time.monotonic() + 60
    while True:
        answer = http.get("/usage", headers=bearer(key), params=params)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        if until(body) or time.monotonic() > deadline:
            return body
        time.sleep(0.1)


def test_usage_adds_up_against_the_events_of_two_calls(edge: EdgeStack) -> None:
    inbound = simulated_call(
        "use-acme", Direction.INBOUND, "twilio", seconds=65, heard_ms=[(0, 1200), (3000, 3800)],
        said=["Hello there.", "Bye."], replies=[("scripted", 100, 20), ("scripted", 150, 30)],
        tools=["lookup"],
    )  # fmt: skip
    outbound = simulated_call(
        "use-acme", Direction.OUTBOUND, "plivo", seconds=30, heard_ms=[(100, 600)],
        said=["Hi!"], replies=[("openai", 200, 40)], tools=["lookup", "end_call"],
    )  # fmt: skip
    elsewhere = simulated_call(
        "use-other", Direction.INBOUND, "twilio", seconds=600, heard_ms=[(0, 9000)],
        said=["Not yours."], replies=[("openai", 999, 999)], tools=["lookup"],
    )  # fmt: skip
    with edge.client() as http:
        key = usage_key(http, "use-acme")
        usage_key(http, "use-other")
        edge.run(edge.publish(*inbound, *elsewhere, *outbound))
        edge.run(publish_again(edge, inbound[-1]))  # call.ended twice
        edge.run(publish_again(edge, outbound[-2]))  # a tool call twice
        # Ingested in stream order: once the next day shows, every earlier event is counted.
        marker = simulated_call(
            "use-acme", Direction.INBOUND, "twilio", seconds=1, heard_ms=[], said=[],
            replies=[], tools=[], at=NEXT_DAY,
        )  # fmt: skip
        edge.run(edge.publish(*marker))
        params = {"from": "2026-11-20", "to": "2026-11-21"}
        body = poll_usage(http, key, params, lambda b: len(b["days"]) == 2)

    assert [d["day"] for d in body["days"]] == ["2026-11-20", "2026-11-21"]
    day = body["days"][0]
    assert day["calls"] == {"total": 2, "by": {"inbound/twilio": 1, "outbound/plivo": 1}}
    assert day["minutes"]["by"] == pytest.approx({"inbound/twilio": 65 / 60, "outbound/plivo": 0.5})
    assert day["minutes"]["total"] == pytest.approx(95 / 60)
    assert day["stt_seconds"] == {"total": 2.5, "by": {"twilio-stt": 2.0, "plivo-stt": 0.5}}
    assert day["tts_characters"]["total"] == len("Hello there.") + len("Bye.") + len("Hi!")
    assert day["llm_tokens_in"] == {"total": 450, "by": {"scripted": 250, "openai": 200}}
    assert day["llm_tokens_out"] == {"total": 90, "by": {"scripted": 50, "openai": 40}}
    assert day["tool_calls"] == {"total": 3, "by": {"lookup": 2, "end_call": 1}}
    assert body["totals"]["calls"]["total"] == 3
    assert body["totals"]["minutes"]["total"] == pytest.approx(96 / 60)


def test_usage_csv_export_and_range(edge: EdgeStack) -> None:
    with edge.client() as http:
        key = usage_key(http, "use-acme")
        body = poll_usage(
            http, key, {"from": "2026-11-20", "to": "2026-11-20"}, lambda b: bool(b["days"])
        )
        exported = http.get(
            "/usage",
            headers=bearer(key),
            params={"from": "2026-11-20", "to": "2026-11-20", "format": "csv"},
        )
        assert exported.status_code == 200
        assert exported.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(exported.text)))
        sums: dict[str, float] = {}
        for row in rows:
            assert row["day"] == "2026-11-20"
            sums[row["metric"]] = sums.get(row["metric"], 0.0) + float(row["amount"])
        day = body["days"][0]
        for metric in ("calls", "minutes", "stt_seconds", "tts_characters", "tool_calls"):
            assert sums[metric] == pytest.approx(day[metric]["total"]), metric
        empty = http.get("/usage", headers=bearer(key), params={"from": "2026-01-01",
                                                                 "to": "2026-01-31"})  # fmt: skip
        assert empty.json()["days"] == []
        backwards = http.get(
            "/usage", headers=bearer(key), params={"from": "2026-11-21", "to": "2026-11-20"}
        )
        assert backwards.status_code == 422
        assert backwards.json()["error"]["fields"][0]["field"] == "from"
        # A key without the scope sees nothing.
        reader = http.post(
            "/tenants/use-acme/keys",
            headers=bearer(ADMIN),
            json={"name": "calls", "scopes": ["calls:read"]},
        ).json()["token"]
        assert http.get("/usage", headers=bearer(reader)).status_code == 403
