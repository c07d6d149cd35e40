"""Post-call analysis and caller memory through the real orchestrator, on a real nats-server
with JetStream and a real PostgreSQL, with the scripted LLM: call 1 ends → ``call.analyzed``
with a schema-valid extraction; call 2 from the same number has call 1's memory in its
prompt and greeting; the profile belongs to its tenant only."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import nats
import pytest
import yaml
from jsonschema import Draft202012Validator  # type: ignore[import-untyped]  # no stubs
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js.errors import KeyNotFoundError
from sqlalchemy.exc import SQLAlchemyError

from voicebus.contracts import subjects
from voicebus.contracts.commands import AnyControlCommand, Say, parse_control
from voicebus.contracts.events import (
    AgentReply,
    CallAnalyzed,
    CallEnded,
    CallEndedData,
    CallEvent,
    CallStarted,
    CallStartedData,
    Direction,
    EndReason,
    Envelope,
    TranscriptFinal,
    TranscriptFinalData,
    parse_event,
)
from voicebus.contracts.ids import new_id
from voicebus.contracts.rpc import MEMORY_DELETE, MEMORY_GET, CallerMemoryReply, CallerRef
from voicebus.orchestrator.app import build
from voicebus.orchestrator.calls import Orchestrator
from voicebus.orchestrator.memory import InMemoryCallerMemory, Profile
from voicebus.orchestrator.session import Session
from voicebus.orchestrator.settings import OrchestratorSettings

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

CALLER = "+14155550100"
SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "order_id": {"type": "string", "pattern": "^[0-9]+$"},
        "callback_requested": {"type": "boolean"},
    },
    "required": ["order_id", "callback_requested"],
}
ANALYSIS = (
    '{"summary": "Asked where order {{order_id}} is; it has shipped.", '
    '"extraction": {"order_id": "{{order_id}}", "callback_requested": false}, '
    '"success": {"passed": true, "reason": "The caller got the status."}, '
    '"disposition": "resolved", "caller_name": "Ada", "open_issues": []}'
)
AGENT: dict[str, Any] = {
    "name": "Support with memory",
    "tenants": ["acme"],
    "system_prompt": "You help Acme's callers.\n{{caller_memory}}",
    "greeting": "Hello {{caller_name}}, how can I help?",
    "llm": {
        "engine": "scripted",
        "options": {
            "rules": [
                # The analysis request (its first line), never a caller's words.
                {"match": r"(?s)^Analyse this call.*order (?P<order_id>\d+)", "reply": ANALYSIS},
                {"match": r"order (?P<order_id>\d+)", "reply": "Order {{order_id}} has shipped."},
            ],
            "default": "Sorry?",
        },
    },
    "stt": {"engine": "null"},
    "tts": {"engine": "silent"},
    "memory": {"enabled": True},
    "analysis": {
        "extraction": SCHEMA,
        "success_rubric": "The caller learned the status of their order.",
        "dispositions": ["resolved", "callback"],
    },
}
SOURCE = "test/1"
WAIT_S = 30.0


@pytest.fixture
async def nats_server(embedded_nats_factory: Callable[..., Any]) -> str:
    return str(embedded_nats_factory().url)


@pytest.fixture
async def orchestrator(
    nats_server: str, database_url: str, tmp_path: Path
) -> AsyncIterator[Orchestrator]:
    (tmp_path / "support.yaml").write_text(yaml.safe_dump(AGENT))
    settings = OrchestratorSettings(nats_url=nats_server, database_url=database_url,
                                    instance_id="o-pc", agents_dir=tmp_path)  # fmt: skip
    service, app = build(settings, environ={})
    await service.start()
    yield app.state.orchestrator
    await service.stop()


@pytest.fixture
async def client(nats_server: str) -> AsyncIterator[Client]:
    nc = await nats.connect(nats_server)
    yield nc
    await nc.drain()


class Tap:
    """Control commands and events of the tenant's calls."""

    def __init__(self) -> None:
        self.commands: list[AnyControlCommand] = []
        self.events: list[CallEvent] = []

    def of(self, kind: type[Any], call_id: str) -> list[Any]:
        found = [*self.commands, *self.events]
        return [e for e in found if isinstance(e, kind) and e.call_id == call_id]

    async def watch(self, nc: Client, call_id: str) -> None:
        """Take the call's control commands, acknowledging like media does."""

        async def on_command(msg: Msg) -> None:
            if msg.reply:  # Say waits for a receipt
                await msg.respond(b"")
            self.commands.append(parse_control(msg.data))

        await nc.subscribe(subjects.ctl_all(call_id), cb=on_command)
        await nc.flush()


async def _tap(nc: Client) -> Tap:
    tap = Tap()

    async def on_event(msg: Msg) -> None:
        tap.events.append(parse_event(msg.data))

    await nc.subscribe(subjects.evt_filter("acme"), cb=on_event)
    await nc.flush()
    return tap


async def _publish(nc: Client, event: Envelope) -> None:
    await nc.jetstream().publish(event.subject, event.to_bytes(), headers={"Nats-Msg-Id": event.id})


async def _until(check: Callable[[], bool], what: str) -> None:
    try:
        async with asyncio.timeout(WAIT_S):
            while not check():
                await asyncio.sleep(0.02)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


def _started(call_id: str) -> CallStarted:
    return CallStarted(
        tenant_id="acme", call_id=call_id, source=SOURCE,
        data=CallStartedData(direction=Direction.INBOUND, provider="twilio", agent_id="support",
                             from_number=CALLER, to_number="+14155550199",
                             gateway_instance="gw-1"),
    )  # fmt: skip


def _greeting(tap: Tap, call_id: str) -> str:
    return " ".join(s.data.text for s in tap.of(Say, call_id) if s.data.text)


async def _prompt(nc: Client, call_id: str) -> str:
    kv = await nc.jetstream().key_value("vb_sessions")
    try:
        entry = await kv.get(call_id)
    except KeyNotFoundError:
        return ""
    return Session.model_validate_json(entry.value or b"{}").history[0].content


async def _call_one(nc: Client, tap: Tap) -> CallAnalyzed:
    call_id = new_id()
    await tap.watch(nc, call_id)
    await _publish(nc, _started(call_id))
    await _until(lambda: bool(tap.of(AgentReply, call_id)), "call 1's greeting")
    assert _greeting(tap, call_id) == "Hello , how can I help?"  # a new caller: no name yet
    await _publish(
        nc,
        TranscriptFinal(
            tenant_id="acme", call_id=call_id, source=SOURCE,
            data=TranscriptFinalData(utterance_id="u-1", text="Where is my order 1234?",
                                     start_ms=0, end_ms=900),
        ),
    )  # fmt: skip
    await _until(lambda: len(tap.of(AgentReply, call_id)) == 2, "call 1's answer")
    reason = EndReason.CALLER_HANGUP
    ended = CallEnded(tenant_id="acme", call_id=call_id, source=SOURCE,
                      data=CallEndedData(reason=reason, duration_s=12.0))  # fmt: skip
    await _publish(nc, ended)
    await _until(lambda: bool(tap.of(CallAnalyzed, call_id)), "call 1's call.analyzed")
    (analysed,) = tap.of(CallAnalyzed, call_id)
    assert isinstance(analysed, CallAnalyzed)
    return analysed


async def test_call_one_is_analysed_and_call_two_remembers_it(
    orchestrator: Orchestrator, client: Client
) -> None:
    tap = await _tap(client)
    analysed = await _call_one(client, tap)
    data = analysed.data
    assert data.ok, data.error
    assert (data.agent_id, data.agent_version, data.engine) == ("support", 1, "scripted")
    assert data.extraction == {"order_id": "1234", "callback_requested": False}
    assert list(Draft202012Validator(SCHEMA).iter_errors(data.extraction)) == []
    assert data.success is not None
    assert data.success.passed is True
    assert data.disposition == "resolved"
    assert data.summary == "Asked where order 1234 is; it has shipped."
    assert data.transcript_turns == 3  # greeting, question, answer
    assert await _prompt(client, analysed.call_id) == ""  # the session is gone once analysed

    profile = await orchestrator.memory.get("acme", CALLER)
    assert profile is not None
    assert profile.name == "Ada"
    assert [c.call_id for c in profile.calls] == [analysed.call_id]
    assert await orchestrator.memory.get("globex", CALLER) is None

    second = new_id()
    await tap.watch(client, second)
    await _publish(client, _started(second))
    await _until(lambda: bool(tap.of(AgentReply, second)), "call 2's greeting")
    assert _greeting(tap, second) == "Hello Ada, how can I help?"
    prompt = await _prompt(client, second)
    assert "Earlier calls (newest first):" in prompt
    assert "Asked where order 1234 is; it has shipped." in prompt

    # Redelivering call 1's end publishes nothing new and remembers nothing twice.
    redelivered = CallEnded(tenant_id="acme", call_id=analysed.call_id, source=SOURCE,
                            data=CallEndedData(reason=EndReason.CALLER_HANGUP))  # fmt: skip
    await _publish(client, redelivered)
    await asyncio.sleep(0.5)
    assert len(tap.of(CallAnalyzed, analysed.call_id)) == 1
    again = await orchestrator.memory.get("acme", CALLER)
    assert again is not None
    assert len(again.calls) == 1

    # Over the bus: read, another tenant cannot delete it, the tenant forgets the caller.
    got = await _ask(client, MEMORY_GET, "acme", CALLER)
    assert got.profile is not None
    assert (got.profile.number, got.profile.name) == (CALLER, "Ada")
    assert [c.summary for c in got.profile.calls] == [data.summary]
    theirs = await _ask(client, MEMORY_DELETE, "globex", CALLER)
    assert theirs.error is not None
    assert (theirs.error.status, theirs.error.code) == (404, "caller_not_found")
    deleted = await _ask(client, MEMORY_DELETE, "acme", CALLER)
    assert deleted.ok
    assert await orchestrator.memory.get("acme", CALLER) is None
    gone = await _ask(client, MEMORY_GET, "acme", CALLER)
    assert gone.error is not None
    assert gone.error.status == 404
    bad = await client.request(MEMORY_DELETE, b'{"tenant_id": "acme", "number": "1 2"}', timeout=10)
    invalid = CallerMemoryReply.model_validate_json(bad.data).error
    assert invalid is not None
    assert invalid.status == 422
    assert "number" in invalid.message


class DownMemory(InMemoryCallerMemory):
    """A caller-memory store whose database is unreachable."""

    async def get(self, tenant_id: str, number: str) -> Profile | None:
        raise SQLAlchemyError("connection refused")


async def test_a_memory_outage_costs_the_memory_not_the_call(
    orchestrator: Orchestrator, client: Client
) -> None:
    orchestrator.memory = DownMemory()
    tap = await _tap(client)
    call_id = new_id()
    await tap.watch(client, call_id)
    await _publish(client, _started(call_id))
    await _until(lambda: bool(tap.of(AgentReply, call_id)), "the greeting")
    assert _greeting(tap, call_id) == "Hello , how can I help?"
    assert "You help Acme's callers." in await _prompt(client, call_id)


async def _ask(nc: Client, subject: str, tenant: str, number: str) -> CallerMemoryReply:
    request = CallerRef(tenant_id=tenant, number=number)
    msg = await nc.request(subject, request.model_dump_json().encode(), timeout=10)
    return CallerMemoryReply.model_validate_json(msg.data)
