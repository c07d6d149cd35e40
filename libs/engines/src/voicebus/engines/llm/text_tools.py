"""Tool calls written as text: ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>``.

Qwen and other Hermes-style models emit tool calls inside their reply text, and
servers that do not parse them (llama-cpp-python with the model's own chat
template) pass them through as ``content``. :class:`TextToolCallParser` splits a
streamed reply into the text meant to be spoken and the tool calls, holding back
only the few characters that might start a tag.

llama-cpp-python drops Qwen's ``<tool_call>`` tags when it turns tokens into text
(they are special tokens), so a reply that *starts* with ``{`` is read as bare tool
calls too: one or more JSON objects, held until the reply ends. A spoken reply
never starts with a brace.
"""

from __future__ import annotations

import json
import uuid
from typing import Final

from voicebus.engines.base import EngineError, ToolCall

OPEN_TAG: Final = "<tool_call>"
CLOSE_TAG: Final = "</tool_call>"


def parse_tool_call(body: str) -> ToolCall:
    """One tool call from the JSON between the tags.

    Raises:
        EngineError: the body is not ``{"name": str, "arguments": object}`` (retryable:
            the model may write it right the next time).
    """
    try:
        data = json.loads(body)
        arguments = data.get("arguments", {})
        if isinstance(arguments, str):
            arguments = json.loads(arguments or "{}")
    except (ValueError, TypeError, AttributeError) as exc:
        raise EngineError(
            "the model wrote a tool call that is not valid JSON", retryable=True
        ) from exc
    name = data.get("name")
    if not isinstance(name, str) or not name or not isinstance(arguments, dict):
        # Small models also echo tool results as bare JSON: that is no call either.
        raise EngineError(
            "the model wrote JSON that is not a tool call (no name or arguments)", retryable=True
        )
    call_id = data.get("id")
    return ToolCall(call_id if isinstance(call_id, str) else f"call_{uuid.uuid4().hex[:24]}",
                    name, arguments)  # fmt: skip


def parse_bare_calls(text: str) -> list[ToolCall]:
    """Tool calls written as one or more JSON objects one after another.

    Raises:
        EngineError: the text is not a sequence of tool-call objects (retryable).
    """
    decoder = json.JSONDecoder()
    calls: list[ToolCall] = []
    position = 0
    text = text.strip()
    while position < len(text):
        try:
            _, end = decoder.raw_decode(text, position)
        except ValueError as exc:
            raise EngineError(
                "the model wrote a tool call that is not valid JSON", retryable=True
            ) from exc
        calls.append(parse_tool_call(text[position:end]))
        while end < len(text) and text[end] in " \t\r\n,;":
            end += 1
        position = end
    return calls


def _held_prefix(text: str, tag: str) -> int:
    """Length of the longest end of ``text`` that could be the start of ``tag``."""
    for size in range(min(len(text), len(tag) - 1), 0, -1):
        if tag.startswith(text[-size:]):
            return size
    return 0


class TextToolCallParser:
    """Separates spoken text from ``<tool_call>`` blocks in a streamed reply."""

    def __init__(self) -> None:
        self._buffer = ""
        self._inside = False
        self._bare: bool | None = None  # decided by the reply's first visible character

    def feed(self, piece: str) -> tuple[str, list[ToolCall]]:
        """Add the next piece of reply; returns (text safe to speak now, completed calls)."""
        self._buffer += piece
        if self._bare is None:
            visible = self._buffer.lstrip()
            if not visible:
                return "", []
            self._bare = visible.startswith("{")
        if self._bare:
            return "", []
        spoken: list[str] = []
        calls: list[ToolCall] = []
        while True:
            if self._inside:
                end = self._buffer.find(CLOSE_TAG)
                if end < 0:
                    break
                calls.append(parse_tool_call(self._buffer[:end]))
                self._buffer = self._buffer[end + len(CLOSE_TAG) :]
                self._inside = False
            else:
                start = self._buffer.find(OPEN_TAG)
                if start < 0:
                    held = _held_prefix(self._buffer, OPEN_TAG)
                    spoken.append(self._buffer[: len(self._buffer) - held])
                    self._buffer = self._buffer[len(self._buffer) - held :]
                    break
                spoken.append(self._buffer[:start])
                self._buffer = self._buffer[start + len(OPEN_TAG) :]
                self._inside = True
        return "".join(spoken), calls

    def finish(self) -> tuple[str, list[ToolCall]]:
        """The reply ended: returns the held text and a call left unclosed, if any.

        Raises:
            EngineError: an unclosed call is not valid JSON.
        """
        rest, self._buffer = self._buffer, ""
        if self._bare:
            return "", parse_bare_calls(rest)
        if self._inside:
            self._inside = False
            return "", [parse_tool_call(rest)] if rest.strip() else []
        return rest, []
