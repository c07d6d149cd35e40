"""What the platform concluded about a finished call."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from voicebus.contracts.events._base import Data, Envelope


class SuccessEvaluation(Data):
    """The call judged against the agent's success rubric."""

    passed: bool | None = Field(
        default=None, description="pass_fail mode: whether the call succeeded.", examples=[True]
    )
    score: float | None = Field(
        default=None, ge=0, le=10, description="score mode: 0 (failed) to 10.", examples=[8]
    )
    reason: str = Field(
        default="", max_length=2048, description="Why, in a sentence.",
        examples=["The caller learned that order 1234 has shipped."],
    )  # fmt: skip


class CallAnalyzedData(Data):
    """Data of ``call.analyzed.v1``. Summary, extraction and raw text are personal data."""

    agent_id: str = Field(max_length=128, description="The agent analysed.", examples=["demo"])
    agent_version: int | None = Field(default=None, ge=1, examples=[3])
    ok: bool = Field(
        description="Everything the agent asks for was produced and valid; false: see error.",
        examples=[True],
    )
    summary: str | None = Field(
        default=None, max_length=4096, description="A short summary of the call.",
        examples=["The caller asked about order 1234; it has shipped."],
    )  # fmt: skip
    extraction: dict[str, Any] | None = Field(
        default=None,
        description="The agent's extraction, valid against its JSON Schema (null if invalid).",
        examples=[{"order_id": "1234", "callback_requested": False}],
    )
    success: SuccessEvaluation | None = Field(
        default=None, description="The rubric's verdict (null: no rubric, or not produced)."
    )
    disposition: str | None = Field(
        default=None, max_length=64, description="One of the agent's disposition codes.",
        examples=["resolved"],
    )  # fmt: skip
    error: str | None = Field(
        default=None,
        max_length=2048,
        description="What went wrong (invalid JSON after one repair, schema violations, LLM).",
        examples=["extraction.callback_requested: 'yes' is not of type 'boolean'"],
    )
    raw: str | None = Field(
        default=None,
        max_length=16384,
        description="The model's last answer as it came, when it could not be used.",
    )
    engine: str | None = Field(
        default=None, max_length=64, description="The LLM engine that analysed the call.",
        examples=["openai"],
    )  # fmt: skip
    transcript_turns: int = Field(
        default=0,
        ge=0,
        description="Transcript lines analysed (caller, agent, tool results).",
        examples=[6],
    )


class CallAnalyzed(Envelope):
    """The orchestrator analysed a finished call (the agent's ``analysis:``); at most one per
    call (its id is derived from the call id)."""

    type: Literal["call.analyzed.v1"] = "call.analyzed.v1"
    data: CallAnalyzedData
