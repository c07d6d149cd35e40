"""Facts about speech and language engines during a call: failures and failovers."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from voicebus.contracts.events._base import Data, Envelope

EngineRole = Literal["stt", "tts", "llm"]


class EngineErrorData(Data):
    """Data of ``engine.error.v1``."""

    role: EngineRole = Field(description="The engine's role.", examples=["tts"])
    engine: str = Field(
        max_length=64, description="Registered engine name.", examples=["elevenlabs"]
    )
    agent_id: str | None = Field(
        default=None,
        max_length=128,
        description="The agent whose engine failed.",
        examples=["demo"],
    )
    kind: str = Field(
        max_length=32,
        description="Why: auth, timeout, closed, protocol, unavailable, rate_limited, "
        "bad_request, config or failed.",
        examples=["auth"],
    )
    message: str = Field(
        max_length=1024,
        description="What went wrong; never a key, never what was said.",
        examples=["deepgram: the vendor refused the API key: answered 401"],
    )
    retryable: bool = Field(
        default=False,
        description="Whether the same engine may succeed later (an auth failure is not).",
        examples=[False],
    )
    service: str = Field(
        max_length=32, description="The service that used the engine.", examples=["media"]
    )


class EngineErrorOccurred(Envelope):
    """An engine failed a request during the call (the work may have moved to another)."""

    type: Literal["engine.error.v1"] = "engine.error.v1"
    data: EngineErrorData


class EngineFailoverData(Data):
    """Data of ``engine.failover.v1``."""

    role: EngineRole = Field(description="The role whose work moved.", examples=["tts"])
    from_engine: str = Field(
        max_length=64,
        description="The engine that failed or was skipped (its circuit breaker open).",
        examples=["elevenlabs"],
    )
    to_engine: str = Field(
        max_length=64, description="The engine now doing the work.", examples=["hibari"]
    )
    reason: str = Field(
        max_length=32, description="The failure's kind, or breaker_open.", examples=["timeout"]
    )
    reissued: str = Field(
        max_length=32,
        description="What was re-issued to the new engine: sentence, rest_of_sentence "
        "(words not yet spoken), turn (the LLM request), audio (the caller's audio since "
        "the last final transcript).",
        examples=["sentence"],
    )
    agent_id: str | None = Field(
        default=None, max_length=128, description="The agent.", examples=["demo"]
    )
    service: str = Field(
        max_length=32, description="The service that switched.", examples=["media"]
    )


class EngineFailover(Envelope):
    """Work moved from a failing engine to the next in the agent's fallback list."""

    type: Literal["engine.failover.v1"] = "engine.failover.v1"
    data: EngineFailoverData
