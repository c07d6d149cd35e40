"""The LLM judge of scenario rubrics, against a loopback stand-in of the chat-completions API."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from voicebus.cli.judge import Judge, judge_all, parse_verdict
from voicebus.cli.scenarios import RUBRIC_SKIPPED, evaluate, json_report, markdown_report, parse
from voicebus.contracts.replay import CallerInput, ToolStep, TurnRecord
from voicebus.devkit.ports import listening_socket

pytestmark = pytest.mark.integration

FILE = """
agent: support
scenarios:
  - name: polite
    turns: [{say: where is order 1234}]
    rubric: The agent looks the order up and stays polite.
  - name: no rubric
    turns: [{say: hello}]
"""
TURNS = [
    TurnRecord(reply="Hi, this is Acme."),
    TurnRecord(caller=CallerInput(text="where is order 1234"), reply="It shipped yesterday.",
               tools=[ToolStep(name="check_order_status", arguments={"order_id": "1234"})],
               nodes=["lookup"]),
]  # fmt: skip


def _completion(content: str) -> Response:
    return JSONResponse({"choices": [{"index": 0, "message": {"role": "assistant",
                                                               "content": content}}]})  # fmt: skip


@dataclass
class StandIn:
    """What the stand-in answers, and the requests it got."""

    url: str
    answer: Callable[[], Response] = lambda: _completion('{"pass": true, "reason": "ok"}')
    requests: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)


@pytest.fixture
async def standin() -> AsyncIterator[StandIn]:
    sock = listening_socket()
    state = StandIn(url=f"http://127.0.0.1:{sock.getsockname()[1]}/v1")

    async def completions(request: Request) -> Response:
        state.requests.append(await request.json())
        state.headers.append(dict(request.headers))
        return state.answer()

    app = Starlette(routes=[Route("/v1/chat/completions", completions, methods=["POST"])])
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        await asyncio.sleep(0.01)
    yield state
    server.should_exit = True
    await task
    sock.close()


async def _judged(standin: StandIn) -> list[Any]:
    spec = parse(FILE)
    results = [evaluate(s, TURNS) for s in spec.scenarios]
    assert results[0].skipped == [RUBRIC_SKIPPED]
    await judge_all(Judge(standin.url, "judge-model", "sk-judge"), spec.scenarios, results)
    return results


async def test_a_rubric_the_judge_passes_is_graded_not_skipped(standin: StandIn) -> None:
    standin.answer = lambda: _completion('{"pass": true, "reason": "It looked it up politely."}')
    results = await _judged(standin)
    polite, plain = results
    assert polite.passed
    assert polite.skipped == []
    assert polite.rubric is not None
    assert polite.rubric.reason == "It looked it up politely."
    assert plain.rubric is None  # no rubric: the judge is not asked
    assert len(standin.requests) == 1
    sent = standin.requests[0]
    assert (sent["model"], sent["temperature"]) == ("judge-model", 0)
    assert sent["response_format"] == {"type": "json_object"}
    assert standin.headers[0]["authorization"] == "Bearer sk-judge"
    transcript = sent["messages"][1]["content"]
    assert "The agent looks the order up and stays polite." in transcript
    assert "Caller: where is order 1234" in transcript
    assert 'check_order_status with {"order_id": "1234"}' in transcript
    assert "Agent: It shipped yesterday." in transcript
    report = json.loads(json_report("support", results))
    assert report["scenarios"][0]["rubric"] == {
        "passed": True,
        "reason": "It looked it up politely.",
    }
    assert "polite: pass: It looked it up politely." in markdown_report("support", results)


async def test_a_rubric_the_judge_fails_fails_the_scenario_with_its_reason(
    standin: StandIn,
) -> None:
    standin.answer = lambda: _completion(
        'Verdict: {"pass": false, "reason": "It never confirmed the order number."}'
    )
    polite, _ = await _judged(standin)
    assert not polite.passed
    assert polite.failures == ["rubric: It never confirmed the order number."]


@pytest.mark.parametrize(
    "answer",
    [
        lambda: JSONResponse({"error": {"message": "overloaded"}}, status_code=503),
        lambda: _completion("I think it was fine."),
        lambda: _completion('{"pass": "yes"}'),
        lambda: JSONResponse({"unexpected": True}),
    ],
)
async def test_no_usable_verdict_is_a_failure_never_a_pass(
    standin: StandIn, answer: Callable[[], Response]
) -> None:
    standin.answer = answer
    polite, _ = await _judged(standin)
    assert not polite.passed
    assert len(polite.failures) == 1
    assert polite.failures[0].startswith("rubric: not graded: ")


def test_a_verdict_without_a_reason_still_counts() -> None:
    verdict = parse_verdict('{"pass": false}')
    assert (verdict.passed, verdict.reason) == (False, "no reason given")
