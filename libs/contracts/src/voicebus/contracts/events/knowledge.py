"""What the agents looked up in their knowledge bases."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from voicebus.contracts.events._base import Data, Envelope


class RetrievedChunk(Data):
    """One chunk a retrieval returned, as the LLM received it (with this id)."""

    kb_id: str = Field(max_length=64, description="The knowledge base.", examples=["faq"])
    document_id: str = Field(
        max_length=128, description="The document the chunk was cut from.", examples=["returns"]
    )
    chunk_id: str = Field(
        max_length=200,
        description="The chunk's id; the LLM received the chunk's text under this id, so a "
        "reply can cite it. It changes when the document's content changes.",
        examples=["returns.3f9a1c2b.2"],
    )
    score: float = Field(description="BM25 score (higher is closer).", examples=[2.71])


class KbRetrievedData(Data):
    """Data of ``kb.retrieved.v1``. The query is the caller's words: personal data."""

    agent_id: str = Field(max_length=128, description="The agent that asked.", examples=["demo"])
    mode: Literal["tool", "context"] = Field(
        description="tool: the LLM called search_knowledge; context: the chunks were added "
        "to the turn's prompt before the LLM ran.",
        examples=["tool"],
    )
    knowledge_bases: list[str] = Field(
        max_length=8, description="The knowledge bases searched.", examples=[["faq"]]
    )
    query: str = Field(
        max_length=2048,
        description="What was searched for (the LLM's query, or the caller's words). "
        "Personal data.",
        examples=["how long do refunds take"],
    )
    chunks: list[RetrievedChunk] = Field(
        max_length=16, description="The chunks given to the LLM, best first (empty: none)."
    )


class KbRetrieved(Envelope):
    """The orchestrator retrieved knowledge-base chunks for a turn of the call."""

    type: Literal["kb.retrieved.v1"] = "kb.retrieved.v1"
    data: KbRetrievedData
