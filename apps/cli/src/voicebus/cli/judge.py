"""An LLM judge for scenario rubrics (``voicebus eval --judge-url``).

A scenario's ``rubric`` is prose ("the agent confirms the order number before looking it
up; it never promises a refund"). The judge is any OpenAI-compatible chat-completions
endpoint: a cloud model, or the local llama.cpp server the demo runs. It reads the
conversation as the scenario produced it (the caller's lines, the agent's replies, the
tools called with their arguments, the flow nodes, the end) and answers
``{"pass": true|false, "reason": "..."}`` in JSON mode at temperature 0.

A verdict that cannot be had (the endpoint fails, the answer is not that JSON) fails the
scenario with the reason: a rubric is never counted as passed unless the judge said so.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import httpx

from voicebus.cli.scenarios import RUBRIC_SKIPPED, Scenario, ScenarioResult, Verdict
from voicebus.contracts.replay import TurnRecord

SYSTEM: Final = (
    "You grade a phone call between a caller and a voice agent against a rubric. Read the "
    "transcript and decide whether the agent's behaviour meets every point of the rubric. "
    'Answer with JSON only: {"pass": true or false, "reason": "one short sentence"}.'
)
_OBJECT = re.compile(r"\{.*\}", re.DOTALL)
MAX_REASON: Final = 500


class JudgeError(Exception):
    """The judge gave no usable verdict."""


@dataclass(frozen=True, slots=True)
class Judge:
    """An OpenAI-compatible endpoint that grades rubrics.

    Attributes:
        url: the API base, e.g. ``https://api.openai.com/v1`` or ``http://127.0.0.1:8081/v1``.
        model: the model name sent in each request.
        api_key: sent as a bearer token when set.
        timeout_s: one verdict's time budget.
    """

    url: str
    model: str
    api_key: str | None = None
    timeout_s: float = 120.0

    async def verdict(
        self, client: httpx.AsyncClient, rubric: str, turns: Sequence[TurnRecord]
    ) -> Verdict:
        """The judge's verdict on ``turns`` against ``rubric``.

        Raises:
            JudgeError: no answer, an error answer, or not the verdict JSON.
        """
        body = {
            "model": self.model,
            "temperature": 0,
            "response_format": {"type": "json_object"},
            "messages": [
                {"role": "system", "content": SYSTEM},
                {"role": "user", "content": prompt(rubric, turns)},
            ],
        }
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        try:
            response = await client.post(
                f"{self.url.rstrip('/')}/chat/completions",
                json=body,
                headers=headers,
                timeout=self.timeout_s,
            )
        except httpx.HTTPError as exc:
            raise JudgeError(
                f"the judge at {self.url} is unreachable: {type(exc).__name__}"
            ) from None
        if response.status_code >= 400:
            raise JudgeError(f"the judge answered {response.status_code}")
        try:
            content = response.json()["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError):
            raise JudgeError("the judge's answer is not a chat completion") from None
        return parse_verdict(content)


def parse_verdict(content: Any) -> Verdict:
    """The verdict in a judge's message (the JSON object, even with text around it).

    Raises:
        JudgeError: no object with a boolean ``pass`` and a string ``reason``.
    """
    found = _OBJECT.search(content) if isinstance(content, str) else None
    try:
        raw = json.loads(found.group(0)) if found else None
    except ValueError:
        raw = None
    if not isinstance(raw, dict) or not isinstance(raw.get("pass"), bool):
        raise JudgeError('the judge did not answer {"pass": true|false, "reason": ...}')
    reason = raw.get("reason")
    text = reason.strip() if isinstance(reason, str) and reason.strip() else "no reason given"
    return Verdict(passed=raw["pass"], reason=text[:MAX_REASON])


def prompt(rubric: str, turns: Sequence[TurnRecord]) -> str:
    """The rubric, then the conversation turn by turn."""
    lines = [f"Rubric:\n{rubric.strip()}", "", "Transcript:"]
    for turn in turns:
        if turn.caller is not None:
            said = turn.caller.text
            lines.append(f"Caller: {said}" if said else f"Caller presses keys: {turn.caller.dtmf}")
        lines.extend(f"[agent enters flow node {node}]" for node in turn.nodes)
        lines.extend(
            f"[agent calls tool {step.name} with {json.dumps(step.arguments, sort_keys=True)}]"
            for step in turn.tools
        )
        if turn.reply:
            lines.append(f"Agent: {turn.reply}")
        if turn.ended:
            lines.append("[the agent ends the call]")
    return "\n".join(lines)


async def judge_all(
    judge: Judge, scenarios: Sequence[Scenario], results: list[ScenarioResult]
) -> None:
    """Grade each scenario with a rubric that ran: its verdict replaces the skip."""
    graded = [
        (s, r) for s, r in zip(scenarios, results, strict=True) if s.rubric and r.error is None
    ]
    async with httpx.AsyncClient() as client:
        verdicts = await asyncio.gather(
            *(judge.verdict(client, s.rubric or "", r.turns) for s, r in graded),
            return_exceptions=True,
        )
    for (_, result), verdict in zip(graded, verdicts, strict=True):
        result.skipped = [s for s in result.skipped if s != RUBRIC_SKIPPED]
        if isinstance(verdict, JudgeError):
            verdict = Verdict(passed=False, reason=f"not graded: {verdict}")
        elif isinstance(verdict, BaseException):
            raise verdict
        result.rubric = verdict
        if not verdict.passed:
            result.failures.append(f"rubric: {verdict.reason}")
