"""An agent's knowledge bases: searched per turn, as a tool or as automatic context."""

from __future__ import annotations

from enum import StrEnum
from typing import Final

from pydantic import Field

from voicebus.contracts.agents.tools import Definition
from voicebus.contracts.knowledge import KbId

SEARCH_KNOWLEDGE: Final = "search_knowledge"
"""The tool's name in ``tool`` mode."""


class KnowledgeMode(StrEnum):
    """How retrieved chunks reach the LLM."""

    TOOL = "tool"
    """The LLM calls ``search_knowledge`` with a query when it needs to."""
    CONTEXT = "context"
    """Every caller turn is searched; the best chunks are added to that turn's prompt."""


class KnowledgeSettings(Definition):
    """The knowledge bases an agent answers from; each chunk reaches the LLM with its id,
    and every retrieval is published as ``kb.retrieved``."""

    bases: list[KbId] = Field(
        min_length=1, max_length=8, description="The tenant's knowledge bases to search.",
        examples=[["faq"]],
    )  # fmt: skip
    mode: KnowledgeMode = Field(
        default=KnowledgeMode.TOOL,
        description="tool: the LLM calls search_knowledge; context: each caller turn is "
        "searched and the chunks added to its prompt.",
    )
    top_k: int = Field(default=3, ge=1, le=8, description="Chunks per retrieval.")
    tool_description: str = Field(
        default="Search the knowledge base for facts to answer the caller. Cite the chunk "
        "id of what you use.",
        max_length=1024,
        description="tool mode: what the LLM is told the tool does.",
    )
