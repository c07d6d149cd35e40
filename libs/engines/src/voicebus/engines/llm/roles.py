"""Conversations for APIs that require user and assistant turns to alternate.

Anthropic's Messages API and Google's Gemini both want the conversation to start
with the user and to alternate strictly; tool results travel in the user's turn.
An agent's history breaks both rules (the greeting comes first; a tool round is
assistant, tool, tool, assistant...): consecutive messages of one side are merged
into one turn of several parts, and a placeholder user turn opens a conversation
that starts with the agent.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final, Literal

from voicebus.engines.base import ChatMessage

CALL_STARTED: Final = "(The call has started.)"

Side = Literal["user", "assistant"]


@dataclass(slots=True)
class Turn:
    """One side's turn: its messages in order (text, tool calls, tool results)."""

    side: Side
    messages: list[ChatMessage] = field(default_factory=list)


def split_system(messages: Sequence[ChatMessage]) -> tuple[str, list[ChatMessage]]:
    """System messages joined (they are a separate field there), and the rest."""
    system = "\n\n".join(m.content for m in messages if m.role == "system" and m.content)
    return system, [m for m in messages if m.role != "system"]


def alternate(messages: Sequence[ChatMessage]) -> list[Turn]:
    """Turns that alternate, starting with the user (tool results count as the user's)."""
    turns: list[Turn] = []
    for message in messages:
        if message.role == "system":
            continue
        side: Side = "assistant" if message.role == "assistant" else "user"
        if message.role == "assistant" and not message.content and not message.tool_calls:
            continue
        if turns and turns[-1].side == side:
            turns[-1].messages.append(message)
        else:
            turns.append(Turn(side, [message]))
    if not turns or turns[0].side != "user":
        turns.insert(0, Turn("user", [ChatMessage("user", CALL_STARTED)]))
    return turns
