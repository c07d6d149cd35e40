"""Facts about an agent's flow, handoffs, silence, and changes to agents themselves."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from voicebus.contracts.events._base import Data, Envelope

_NODE = Field(min_length=1, max_length=64, description="Flow node id.", examples=["verify"])
_AGENT = Field(min_length=1, max_length=128, description="Agent id.", examples=["support"])
_VERSION = Field(default=None, ge=1, description="Agent version the call runs.", examples=[3])


class FlowTransitionData(Data):
    """Data of ``flow.transition.v1``."""

    flow_id: str = Field(min_length=1, max_length=64, description="Flow id.", examples=["main"])
    agent_id: str = _AGENT
    agent_version: int | None = _VERSION
    from_node_id: str = _NODE
    to_node_id: str = _NODE
    function: str = Field(
        min_length=1, max_length=128,
        description="Transition function the LLM called, or 'collect_digits'.",
        examples=["identity_verified"],
    )  # fmt: skip
    arguments: dict[str, Any] = Field(
        default_factory=dict,
        description="Arguments captured into the flow's variables. May hold personal data.",
        examples=[{"reason": "billing question"}],
    )
    context: Literal["keep", "reset", "reset_with_summary"] = Field(
        default="keep", description="What happened to the conversation history.",
    )  # fmt: skip


class FlowTransition(Envelope):
    """The flow moved from one node to another."""

    type: Literal["flow.transition.v1"] = "flow.transition.v1"
    data: FlowTransitionData


class AgentHandoffData(Data):
    """Data of ``agent.handoff.v1``."""

    from_agent_id: str = _AGENT
    from_version: int | None = _VERSION
    to_agent_id: str = _AGENT
    to_version: int | None = _VERSION
    node_id: str | None = Field(default=None, max_length=64, description="Handoff node.")
    variables: dict[str, Any] = Field(
        default_factory=dict,
        description="Variables the new agent starts with. May hold personal data.",
    )


class AgentHandoff(Envelope):
    """Another agent took the call over (its prompt, voice and tools from now on)."""

    type: Literal["agent.handoff.v1"] = "agent.handoff.v1"
    data: AgentHandoffData


class CallIdleData(Data):
    """Data of ``call.idle.v1``."""

    silence_s: float = Field(ge=0, description="Caller silence so far.", examples=[8.0])
    reprompts: int = Field(ge=0, description="Reprompts said so far, this one included.")
    action: Literal["reprompt", "hangup"] = Field(description="What the agent did.")


class CallIdle(Envelope):
    """The caller stayed silent: the agent reprompted, or hung up politely."""

    type: Literal["call.idle.v1"] = "call.idle.v1"
    data: CallIdleData


class AgentUpdatedData(Data):
    """Data of ``agent.updated.v1``."""

    agent_id: str = _AGENT
    version: int = Field(ge=1, description="The version new calls use from now on.")
    template: bool = Field(default=False, description="A shared template changed.")
    archived: bool = Field(default=False, description="The agent was archived.")


class AgentUpdated(Envelope):
    """An agent was created, changed or archived. The call slot of the subject carries the
    agent id (no call), the tenant slot the owner (``_shared`` for a template)."""

    type: Literal["agent.updated.v1"] = "agent.updated.v1"
    data: AgentUpdatedData
