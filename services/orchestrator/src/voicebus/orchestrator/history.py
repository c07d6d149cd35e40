"""Pure edits of a conversation history (lists of ``StoredMessage``)."""

from __future__ import annotations

import json

from voicebus.orchestrator.session import StoredMessage

CANCELLED_RESULT = json.dumps({"error": "cancelled"})


def trim_to_heard(history: list[StoredMessage], utterance_id: str, text_heard: str) -> bool:
    """Keep only what the caller heard of an interrupted utterance.

    The utterance's assistant messages (one per LLM round of the turn) are
    refilled in order with the heard words: each keeps as many as it had, the
    rest become empty. An emptied message without tool calls is removed; one
    with tool calls stays (its tool results follow it).

    Returns:
        True if the utterance was found in the history.
    """
    positions = [
        i for i, m in enumerate(history) if m.role == "assistant" and m.utterance_id == utterance_id
    ]
    if not positions:
        return False
    words = text_heard.split()
    for i in positions:
        count = len(history[i].content.split())
        kept, words = words[:count], words[count:]
        history[i] = history[i].model_copy(update={"content": " ".join(kept)})
    emptied = {i for i in positions if not history[i].content and not history[i].tool_calls}
    history[:] = [m for i, m in enumerate(history) if i not in emptied]
    return True


def close_tool_calls(history: list[StoredMessage]) -> None:
    """Give every tool call without a result a "cancelled" result.

    Chat APIs refuse a history where an assistant's tool call has no tool
    message; a turn cancelled mid-tool would otherwise poison the next one.
    """
    i = 0
    while i < len(history):
        message = history[i]
        i += 1
        if message.role != "assistant" or not message.tool_calls:
            continue
        answered = set()
        while i < len(history) and history[i].role == "tool":
            answered.add(history[i].tool_call_id)
            i += 1
        for call in message.tool_calls:
            if call.id not in answered:
                result = StoredMessage(
                    role="tool", content=CANCELLED_RESULT, tool_call_id=call.id, name=call.name
                )
                history.insert(i, result)
                i += 1


def bound(history: list[StoredMessage], max_messages: int) -> None:
    """Drop the oldest turns so that at most ``max_messages`` follow the system prompt.

    The cut moves forward to a user message, so no tool result loses its call.
    """
    head = 0
    while head < len(history) and history[head].role == "system":
        head += 1
    excess = len(history) - head - max_messages
    if excess <= 0:
        return
    cut = head + excess
    while cut < len(history) and history[cut].role != "user":
        cut += 1
    if cut < len(history):  # never drop the turn in progress
        del history[head:cut]
