"""Post-call analysis, the pure part: the prompt, reading the model's JSON, checking it.

One LLM request per call asks for everything the agent's ``analysis:`` wants as one
JSON object (summary, extraction, success, disposition and, for caller memory, the
caller's name and open issues), so a small local model gets one short prompt. The
answer is read leniently (code fences and prose around the object are dropped), then
checked: the extraction against the agent's JSON Schema, the verdict against the
success mode, the disposition against the codes. A bad answer gets exactly one repair
request that quotes the problems; a second bad answer still becomes a ``call.analyzed``
with what was valid, the error and the raw text, so no analysis is ever lost.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from jsonschema import Draft202012Validator  # type: ignore[import-untyped]  # no stubs

from voicebus.contracts.agents import AnalysisSettings, SuccessMode
from voicebus.contracts.events import CallAnalyzedData, SuccessEvaluation
from voicebus.engines.base import ChatMessage
from voicebus.orchestrator.session import StoredMessage

SYSTEM: Final = (
    "You analyse a finished phone call between an AI agent and a caller. "
    "Answer with one JSON object and nothing else."
)
HEADER: Final = "Analyse this call."
"""First line of the request (a scripted test model matches on it)."""
_TOOL_RESULT_CHARS: Final = 300
_RAW_CHARS: Final = 16_000
_FENCE: Final = re.compile(r"^\s*```(?:json)?\s*|\s*```\s*$", re.IGNORECASE)


class AnswerError(ValueError):
    """The model's answer is not a JSON object."""


@dataclass(frozen=True, slots=True)
class CallerNotes:
    """What the analysis learned about the caller, for caller memory."""

    name: str | None = None
    open_issues: tuple[str, ...] = ()
    preferences: tuple[str, ...] = ()


@dataclass(slots=True)
class Checked:
    """An answer's usable parts and its problems (empty: everything asked for is valid)."""

    summary: str | None = None
    extraction: dict[str, Any] | None = None
    success: SuccessEvaluation | None = None
    disposition: str | None = None
    notes: CallerNotes = field(default_factory=CallerNotes)
    problems: list[str] = field(default_factory=list)


def transcript(history: Sequence[StoredMessage]) -> list[str]:
    """The call as lines: ``Caller: ...``, ``Agent: ...``, ``Tool <name>: <result>``."""
    lines: list[str] = []
    for message in history:
        text = " ".join(message.content.split())
        if message.role == "user" and text:
            lines.append(f"Caller: {text}")
        elif message.role == "assistant" and text:
            lines.append(f"Agent: {text}")
        elif message.role == "tool" and text:
            lines.append(f"Tool {message.name or 'result'}: {text[:_TOOL_RESULT_CHARS]}")
    return lines


def _clip(lines: Sequence[str], max_chars: int) -> str:
    """The last lines that fit in ``max_chars`` (the end of a call decides its outcome)."""
    kept: list[str] = []
    size = 0
    for line in reversed(lines):
        size += len(line) + 1
        if size > max_chars and kept:
            break
        kept.append(line[-max_chars:])
    return "\n".join(reversed(kept))


def _keys(settings: AnalysisSettings, memory: bool) -> list[str]:
    keys: list[str] = []
    if settings.summary:
        keys.append('"summary": the call in one or two sentences')
    if settings.extraction is not None:
        schema = json.dumps(settings.extraction, separators=(",", ":"))
        keys.append(f'"extraction": an object valid against this JSON Schema: {schema}')
    if settings.success_rubric:
        verdict = (
            '"passed": true or false'
            if settings.success_mode is SuccessMode.PASS_FAIL
            else '"score": a number from 0 to 10'
        )
        keys.append(
            f'"success": {{{verdict}, "reason": one sentence}}, judged by: '
            f"{settings.success_rubric}"
        )
    if settings.dispositions:
        keys.append(f'"disposition": one of {json.dumps(settings.dispositions)}')
    if memory:
        keys.append('"caller_name": the caller\'s name if they said it, else null')
        keys.append('"open_issues": a list of what the caller still needs, may be empty')
        keys.append('"preferences": a list of preferences the caller stated, may be empty')
    return keys


def request(settings: AnalysisSettings, lines: Sequence[str], *, memory: bool) -> list[ChatMessage]:
    """The analysis request for a call's transcript lines.

    Args:
        settings: the agent's analysis section.
        lines: the transcript (:func:`transcript`).
        memory: also ask for the caller's name, open issues and preferences.
    """
    keys = "\n".join(f"- {key}" for key in _keys(settings, memory))
    body = _clip(lines, settings.max_transcript_chars) or "(nothing was said)"
    text = f"{HEADER}\nReply with a JSON object with these keys:\n{keys}\n\nTranscript:\n{body}"
    return [ChatMessage(role="system", content=SYSTEM), ChatMessage(role="user", content=text)]


def repair_request(
    messages: Sequence[ChatMessage], answer: str, problems: Sequence[str]
) -> list[ChatMessage]:
    """The one repair request: the same conversation, the bad answer and what is wrong."""
    wrong = "; ".join(problems)
    return [
        *messages,
        ChatMessage(role="assistant", content=answer[:_RAW_CHARS]),
        ChatMessage(
            role="user",
            content=f"That answer is not usable: {wrong}. Reply with the corrected JSON only.",
        ),
    ]


def parse_answer(text: str) -> dict[str, Any]:
    """The JSON object in a model's answer, leniently: code fences and text around it go.

    Raises:
        AnswerError: no JSON object can be read from it.
    """
    stripped = _FENCE.sub("", text.strip())
    start, end = stripped.find("{"), stripped.rfind("}")
    if start < 0 or end < start:
        raise AnswerError("the answer holds no JSON object")
    try:
        value: dict[str, Any] = json.loads(stripped[start : end + 1])  # '{' ... '}': an object
    except json.JSONDecodeError as exc:
        raise AnswerError(f"invalid JSON: {exc.msg} at character {exc.pos}") from None
    return value


def schema_problems(schema: Mapping[str, Any], value: Any, where: str = "extraction") -> list[str]:
    """Every way ``value`` breaks the JSON Schema, each naming its path (empty: valid)."""
    validator = Draft202012Validator(schema)
    problems = []
    for error in sorted(validator.iter_errors(value), key=lambda e: list(e.absolute_path)):
        path = ".".join([where, *(str(p) for p in error.absolute_path)])
        problems.append(f"{path}: {error.message}")
    return problems


def check(settings: AnalysisSettings, answer: Mapping[str, Any], *, memory: bool) -> Checked:
    """The usable parts of a parsed answer and every problem with what was asked for."""
    out = Checked()
    if settings.summary:
        summary = answer.get("summary")
        if isinstance(summary, str) and summary.strip():
            out.summary = summary.strip()[:4096]
        else:
            out.problems.append("summary: must be a non-empty string")
    if settings.extraction is not None:
        extraction = answer.get("extraction")
        problems = schema_problems(settings.extraction, extraction)
        if problems:
            out.problems += problems
        elif isinstance(extraction, dict):
            out.extraction = extraction
    if settings.success_rubric:
        out.success = _success(settings.success_mode, answer.get("success"), out.problems)
    if settings.dispositions:
        disposition = answer.get("disposition")
        if disposition in settings.dispositions:
            out.disposition = str(disposition)
        else:
            out.problems.append(f"disposition: must be one of {settings.dispositions}")
    if memory:
        out.notes = _notes(answer)
    return out


def _success(mode: SuccessMode, value: Any, problems: list[str]) -> SuccessEvaluation | None:
    if not isinstance(value, dict):
        problems.append("success: must be an object")
        return None
    reason = value.get("reason")
    reason = reason[:2048] if isinstance(reason, str) else ""
    if mode is SuccessMode.PASS_FAIL:
        passed = value.get("passed")
        if isinstance(passed, bool):
            return SuccessEvaluation(passed=passed, reason=reason)
        problems.append("success.passed: must be true or false")
        return None
    score = value.get("score")
    if isinstance(score, int | float) and not isinstance(score, bool) and 0 <= score <= 10:
        return SuccessEvaluation(score=float(score), reason=reason)
    problems.append("success.score: must be a number from 0 to 10")
    return None


def _strings(value: Any, limit: int = 5) -> tuple[str, ...]:
    if not isinstance(value, list):
        return ()
    return tuple(v.strip()[:200] for v in value if isinstance(v, str) and v.strip())[:limit]


def _notes(answer: Mapping[str, Any]) -> CallerNotes:
    """Caller notes are best effort: a missing or odd value is simply not remembered."""
    name = answer.get("caller_name")
    return CallerNotes(
        name=name.strip()[:128] if isinstance(name, str) and name.strip() else None,
        open_issues=_strings(answer.get("open_issues")),
        preferences=_strings(answer.get("preferences")),
    )


def result(
    checked: Checked | None,
    *,
    agent_id: str,
    agent_version: int | None,
    engine: str | None,
    turns: int,
    error: str | None = None,
    raw: str | None = None,
) -> CallAnalyzedData:
    """The ``call.analyzed`` data: what was valid, and the error and raw answer if any."""
    problems = list(checked.problems) if checked is not None else []
    if error is not None:
        problems.insert(0, error)
    failed = bool(problems)
    return CallAnalyzedData(
        agent_id=agent_id,
        agent_version=agent_version,
        ok=not failed,
        summary=checked.summary if checked else None,
        extraction=checked.extraction if checked else None,
        success=checked.success if checked else None,
        disposition=checked.disposition if checked else None,
        error="; ".join(problems)[:2048] if failed else None,
        raw=raw[:_RAW_CHARS] if failed and raw is not None else None,
        engine=engine,
        transcript_turns=turns,
    )
