"""The orchestrator's Prometheus metrics (process registry, served on ``/metrics``)."""

from __future__ import annotations

from typing import Final

from prometheus_client import Counter, Gauge, Histogram

TURNS: Final = Counter(
    "voicebus_orchestrator_turns", "Caller turns, by how they ended.", ["result"]
)
LLM_FIRST_TOKEN: Final = Histogram(
    "voicebus_orchestrator_llm_first_token_seconds",
    "Caller transcript received to the LLM's first token, by engine (the one answering).",
    ["engine"],
    buckets=(0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0),
)
LLM_ERRORS: Final = Counter("voicebus_orchestrator_llm_errors", "LLM rounds that failed.")
LLM_EMPTY: Final = Counter(
    "voicebus_orchestrator_llm_empty_replies",
    "Turns where the LLM said nothing and called nothing.",
)
TOOL_CALLS: Final = Counter(
    "voicebus_orchestrator_tool_calls",
    "Tool calls, by tool and result (tool ``unknown``: a name the call has no tool for).",
    ["tool", "result"],
)
TOOL_SECONDS: Final = Histogram(
    "voicebus_orchestrator_tool_seconds",
    "Time to run one tool call, by kind of tool (webhook, mcp, transition, ...) and result.",
    ["kind", "result"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0),
)
BAD_INPUT: Final = Counter(
    "voicebus_orchestrator_bad_input", "Malformed messages ignored, by kind.", ["kind"]
)
CONVERSATIONS: Final = Gauge(
    "voicebus_orchestrator_conversations", "Conversations this instance is running."
)
