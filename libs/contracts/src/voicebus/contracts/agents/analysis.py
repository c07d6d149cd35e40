"""What an agent asks of a finished call (``analysis:``) and whether it remembers callers
(``memory:``).

Both are optional sections of an agent definition. The orchestrator analyses a call
after ``call.ended``, off the hot path, and publishes ``call.analyzed``; an agent with
``memory.enabled`` gets the caller's profile (kept per tenant and caller number, updated
from each analysis) as the template variables :data:`MEMORY_VARIABLES`.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Any, Final

from pydantic import Field, field_validator, model_validator

from voicebus.contracts.agents.tools import Definition, check_parameters_schema

DISPOSITION_PATTERN: Final = r"^[a-z][a-z0-9_]{0,63}$"

CALLER_NAME: Final = "caller_name"
"""Template variable: the caller's name as remembered ('' when unknown)."""
CALLER_MEMORY: Final = "caller_memory"
"""Template variable: a few short lines about the caller's earlier calls ('' for a new caller)."""
MEMORY_VARIABLES: Final = frozenset({CALLER_NAME, CALLER_MEMORY})
"""Template variables an agent with ``memory.enabled`` may use in its prompt and greeting."""


class SuccessMode(StrEnum):
    """How a call's success is judged against the rubric."""

    PASS_FAIL = "pass_fail"  # noqa: S105  # a mode's name, not a password
    SCORE = "score"


class AnalysisSettings(Definition):
    """Post-call analysis of the agent's calls (one LLM request after the call ends)."""

    summary: bool = Field(default=True, description="Write a short summary of the call.")
    extraction: dict[str, Any] | None = Field(
        default=None,
        description=(
            "JSON Schema (type: object) of the structured data to extract; the result is "
            "validated against it."
        ),
        examples=[{
            "type": "object",
            "properties": {"appointment_date": {"type": "string"},
                           "callback_requested": {"type": "boolean"}},
            "required": ["callback_requested"],
        }],
    )  # fmt: skip
    success_rubric: str | None = Field(
        default=None,
        min_length=1,
        max_length=2048,
        description="What a successful call is; unset: no success evaluation.",
        examples=["The caller learned the status of their order."],
    )
    success_mode: SuccessMode = Field(
        default=SuccessMode.PASS_FAIL, description="pass_fail, or a score from 0 to 10."
    )
    dispositions: list[str] = Field(
        default_factory=list,
        max_length=32,
        description="Disposition codes to choose one from; empty: no disposition.",
        examples=[["resolved", "callback", "not_interested"]],
    )
    llm_options: dict[str, Any] = Field(
        default_factory=dict,
        description="Merged over llm.options for the analysis request (e.g. temperature: 0).",
        examples=[{"temperature": 0, "max_tokens": 400}],
    )
    max_transcript_chars: int = Field(
        default=12_000,
        ge=500,
        le=200_000,
        description="The transcript's last this many characters are analysed (small models).",
    )

    @field_validator("extraction")
    @classmethod
    def _schema(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        return None if value is None else check_parameters_schema(value)

    @field_validator("dispositions")
    @classmethod
    def _codes(cls, value: list[str]) -> list[str]:
        for code in value:
            if not re.fullmatch(DISPOSITION_PATTERN, code):
                raise ValueError(f"disposition {code!r} must be lower_snake_case")
        if len(set(value)) != len(value):
            raise ValueError("dispositions are listed twice")
        return value

    @model_validator(mode="after")
    def _asks_something(self) -> AnalysisSettings:
        if not (self.summary or self.extraction or self.success_rubric or self.dispositions):
            raise ValueError("analysis asks for nothing: enable summary, extraction, "
                             "success_rubric or dispositions")  # fmt: skip
        return self


class MemorySettings(Definition):
    """Caller memory: the agent sees what earlier calls from the same number left behind."""

    enabled: bool = Field(
        default=False,
        description=(
            "Inject the caller's profile as {{caller_name}} and {{caller_memory}}, and update "
            "it after each call from the analysis (which then also asks for name and open issues)."
        ),
    )
    summaries: int = Field(
        default=3, ge=1, le=10, description="Earlier calls' summaries kept in the profile."
    )
