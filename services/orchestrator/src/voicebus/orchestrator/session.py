"""Conversation state of one call, kept in the KV bucket ``vb_sessions`` (key = call id).

Saved after every turn, so another orchestrator instance can take the call over
(its owner died or shut down) and continue with the same history. Writes are
compare-and-set on the entry's revision: an instance that lost the call to
another can never overwrite the new owner's state.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any, Literal, Protocol

from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from voicebus.contracts.events import utc_now
from voicebus.engines.base import ChatMessage, ToolCall
from voicebus.orchestrator.errors import SessionConflictError

log = logging.getLogger(__name__)

Role = Literal["system", "user", "assistant", "tool"]


class StoredToolCall(BaseModel):
    """A tool call in the stored history."""

    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)


class StoredMessage(BaseModel):
    """One history message as stored: an engine ``ChatMessage`` plus the utterance it was
    spoken in (assistant messages), so an interruption can trim exactly what was cut."""

    model_config = ConfigDict(frozen=True)

    role: Role
    content: str = ""
    tool_calls: list[StoredToolCall] = Field(default_factory=list)
    tool_call_id: str | None = None
    name: str | None = None
    utterance_id: str | None = None
    fixed: bool = False
    """Spoken from the agent's fixed text (greeting, a tool's reply, goodbye), not by the LLM."""

    @classmethod
    def assistant(
        cls,
        text: str,
        utterance_id: str,
        calls: list[ToolCall] | None = None,
        *,
        fixed: bool = False,
    ) -> StoredMessage:
        """An assistant message spoken in ``utterance_id`` (``fixed``: not the LLM's words)."""
        stored = [
            StoredToolCall(id=c.id, name=c.name, arguments=dict(c.arguments)) for c in calls or []
        ]
        return cls(
            role="assistant",
            content=text,
            tool_calls=stored,
            utterance_id=utterance_id,
            fixed=fixed,
        )

    def to_chat(self) -> ChatMessage:
        """The engine's view of this message."""
        calls = tuple(ToolCall(c.id, c.name, c.arguments) for c in self.tool_calls)
        return ChatMessage(
            role=self.role,
            content=self.content,
            tool_calls=calls,
            tool_call_id=self.tool_call_id,
            name=self.name,
        )


class Session(BaseModel):
    """Everything needed to continue a call's conversation on any instance."""

    model_config = ConfigDict(validate_assignment=True)

    version: Literal[1] = 1
    call_id: str
    tenant_id: str
    agent_id: str
    agent_owner: str = Field(default="", description="The agent's owner ('' for a template).")
    agent_version: int | None = Field(default=None, description="Agent version the call runs.")
    context: dict[str, str] = Field(default_factory=dict)
    caller: str = Field(
        default="", description="The caller's number (caller memory); '' when withheld."
    )
    variables: dict[str, Any] = Field(
        default_factory=dict, description="Flow variables: transition arguments, digits, results."
    )
    history: list[StoredMessage] = Field(default_factory=list)
    turns: int = Field(default=0, description="Caller turns answered.")
    flow_node: str | None = Field(default=None, description="Current flow node, for a flow.")
    digits: str = Field(default="", description="Keypad digits collected, not yet used.")
    sensitive: list[str] = Field(
        default_factory=list,
        description="Inputs of sensitive collect-digits nodes: masked in every event published.",
    )
    keypad_masked: bool = Field(
        default=False,
        description="The gateway was told to mask the caller's keys (a sensitive node).",
    )
    reprompts: int = Field(default=0, description="Idle reprompts since the caller last spoke.")
    started_at: datetime = Field(default_factory=utc_now, description="When the call began.")
    last_seq: int = Field(default=0, description="Last VB_EVENTS sequence handled for the call.")
    ending: bool = Field(default=False, description="end_call ran: the call is hanging up.")
    supervisor: str | None = Field(
        default=None, description="Operator (key id) who took the call over; None: the agent."
    )
    updated_at: datetime = Field(default_factory=utc_now)


class SessionStorage(Protocol):
    """Where sessions live: :class:`SessionStore` (KV) or :class:`MemorySessionStore`."""

    async def load(self, call_id: str) -> tuple[Session, int] | None:
        """The call's session and its revision, or None."""
        ...

    async def save(self, session: Session, revision: int | None) -> int:
        """Compare-and-set write; returns the new revision."""
        ...

    async def delete(self, call_id: str) -> None:
        """Forget the call's session."""
        ...


class SessionStore:
    """Load and save sessions in ``vb_sessions``.

    Args:
        kv: the bucket.
    """

    def __init__(self, kv: KeyValue) -> None:
        self._kv = kv

    async def load(self, call_id: str) -> tuple[Session, int] | None:
        """The call's session and its revision, or None (absent, deleted or unreadable)."""
        try:
            entry = await self._kv.get(call_id)
        except KeyNotFoundError:
            return None
        if not entry.value or entry.revision is None:
            return None
        try:
            return Session.model_validate_json(entry.value), entry.revision
        except ValidationError:
            log.exception("session unreadable; starting over", extra={"call_id": call_id})
            return None

    async def save(self, session: Session, revision: int | None) -> int:
        """Write the session if its revision is still ``revision`` (None: create it).

        Returns:
            The new revision.

        Raises:
            SessionConflictError: someone else wrote it meanwhile.
        """
        session.updated_at = utc_now()
        value = session.model_dump_json().encode()
        try:
            if revision is None:
                return await self._kv.create(session.call_id, value)
            return await self._kv.update(session.call_id, value, last=revision)
        except KeyWrongLastSequenceError:
            raise SessionConflictError(f"session of call {session.call_id} changed") from None

    async def delete(self, call_id: str) -> None:
        """Forget the call's session (the call ended)."""
        await self._kv.delete(call_id)


class MemorySessionStore:
    """Sessions in a dict, with the same compare-and-set rule (tests)."""

    def __init__(self) -> None:
        self.values: dict[str, tuple[bytes, int]] = {}
        self._revision = 0

    async def load(self, call_id: str) -> tuple[Session, int] | None:
        """The stored copy, or None."""
        if call_id not in self.values:
            return None
        value, revision = self.values[call_id]
        return Session.model_validate_json(value), revision

    async def save(self, session: Session, revision: int | None) -> int:
        """Store a copy if ``revision`` matches."""
        current = self.values.get(session.call_id)
        if (current[1] if current else None) != revision:
            raise SessionConflictError(f"session of call {session.call_id} changed")
        self._revision += 1
        self.values[session.call_id] = (session.model_dump_json().encode(), self._revision)
        return self._revision

    async def delete(self, call_id: str) -> None:
        """Drop it."""
        self.values.pop(call_id, None)
