"""What each call event adds to a tenant's usage. Pure.

- ``calls``: one per ``call.started`` (a connected call), by ``<direction>/<provider>``;
- ``call_seconds``: ``call.ended``'s duration, on the day and under the dimension of the
  call's ``call.started`` (``call.ended`` carries neither; ``unknown/unknown`` and the
  end's day when the start was never seen);
- ``stt_seconds``: the caller speech transcribed (``transcript.final`` end − start), by
  STT engine;
- ``tts_characters``: the characters of each agent utterance sent to TTS
  (``agent.speech.started``);
- ``llm_tokens_in`` / ``llm_tokens_out``: ``agent.reply``'s token counts, by LLM engine,
  when the engine reported them;
- ``tool_calls``: one per ``tool.called``, by tool name.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Final

from voicebus.contracts.events import (
    AgentReply,
    AgentSpeechStarted,
    CallEnded,
    CallEvent,
    CallStarted,
    ToolCalled,
    TranscriptFinal,
)


class Metric(StrEnum):
    """A metered quantity."""

    CALLS = "calls"
    CALL_SECONDS = "call_seconds"
    STT_SECONDS = "stt_seconds"
    TTS_CHARACTERS = "tts_characters"
    LLM_TOKENS_IN = "llm_tokens_in"
    LLM_TOKENS_OUT = "llm_tokens_out"
    TOOL_CALLS = "tool_calls"


METERED_TYPES: Final = frozenset(
    {
        "call.started",
        "call.ended",
        "transcript.final",
        "agent.speech.started",
        "agent.reply",
        "tool.called",
    }
)
"""Unversioned types that add to usage: only these are parsed for metering."""
UNKNOWN: Final = "unknown"


@dataclass(frozen=True, slots=True)
class UsageItem:
    """One metered quantity of one event.

    Attributes:
        dimension: what the amount is broken down by; None for ``call_seconds``, which
            takes the dimension (and day) of the call's ``call.started``.
    """

    event_id: str
    metric: Metric
    tenant_id: str
    call_id: str
    day: date
    dimension: str | None
    amount: float


def items_of(event: CallEvent) -> list[UsageItem]:
    """The usage ``event`` adds (none for most types)."""

    def item(metric: Metric, dimension: str | None, amount: float) -> UsageItem:
        day = event.time.date()
        return UsageItem(event.id, metric, event.tenant_id, event.call_id, day, dimension, amount)

    match event:
        case CallStarted(data=data):
            return [item(Metric.CALLS, f"{data.direction.value}/{data.provider}", 1)]
        case CallEnded(data=data) if data.duration_s:
            return [item(Metric.CALL_SECONDS, None, data.duration_s)]
        case TranscriptFinal(data=data) if data.end_ms > data.start_ms:
            seconds = (data.end_ms - data.start_ms) / 1000
            return [item(Metric.STT_SECONDS, data.engine or UNKNOWN, seconds)]
        case AgentSpeechStarted(data=data) if data.text:
            return [item(Metric.TTS_CHARACTERS, "", len(data.text))]
        case AgentReply(data=data):
            engine = data.engine or UNKNOWN
            out = []
            if data.llm_tokens_in:
                out.append(item(Metric.LLM_TOKENS_IN, engine, data.llm_tokens_in))
            if data.llm_tokens_out:
                out.append(item(Metric.LLM_TOKENS_OUT, engine, data.llm_tokens_out))
            return out
        case ToolCalled(data=data):
            return [item(Metric.TOOL_CALLS, data.name, 1)]
    return []
