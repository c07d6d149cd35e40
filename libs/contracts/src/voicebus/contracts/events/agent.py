"""What the agent thinks and says: replies, speech, tools, flows."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from voicebus.contracts.events._base import Data, Envelope

_UTTERANCE = "Id of the agent utterance, the same as in the ctl.say chunks that spoke it."


class AgentReplyData(Data):
    """Data of ``agent.reply.v1``."""

    turn_id: str = Field(
        min_length=1,
        max_length=64,
        description="Id of the conversation turn.",
        examples=["t-0193a5f3"],
    )
    utterance_id: str = Field(
        min_length=1, max_length=64, description=_UTTERANCE, examples=["a-0193a5f3"]
    )
    text: str = Field(
        max_length=16384,
        description="The whole reply text the LLM produced.",
        examples=["Your order 1234 shipped yesterday."],
    )
    complete: bool = Field(
        default=True,
        description="False when generation was cancelled (e.g. by a barge-in).",
        examples=[True],
    )
    llm_first_token_ms: float | None = Field(
        default=None, ge=0, description="Transcript to first LLM token.", examples=[142.0]
    )
    engine: str | None = Field(
        default=None, max_length=64, description="LLM engine used.", examples=["scripted"]
    )
    agent_id: str | None = Field(
        default=None, max_length=128, description="Agent that replied.", examples=["support"]
    )
    agent_version: int | None = Field(
        default=None, ge=1, description="Agent version the call runs.", examples=[3]
    )
    node_id: str | None = Field(
        default=None, max_length=64, description="Flow node, for a flow agent.", examples=["greet"]
    )
    llm_tokens_in: int | None = Field(
        default=None,
        ge=0,
        description="Prompt tokens of every LLM round of this reply, when the engine reports them.",
        examples=[812],
    )
    llm_tokens_out: int | None = Field(
        default=None,
        ge=0,
        description="Completion tokens of every LLM round of this reply, when reported.",
        examples=[24],
    )


class AgentReply(Envelope):
    """The agent's reply to one caller turn, as text."""

    type: Literal["agent.reply.v1"] = "agent.reply.v1"
    data: AgentReplyData


class AgentSpeechStartedData(Data):
    """Data of ``agent.speech.started.v1``."""

    utterance_id: str = Field(
        min_length=1, max_length=64, description=_UTTERANCE, examples=["a-0193a5f3"]
    )
    text: str = Field(
        max_length=16384,
        description="Text being spoken.",
        examples=["Your order 1234 shipped yesterday."],
    )
    first_audio_ms: float | None = Field(
        default=None,
        ge=0,
        description="Text received to first synthesized audio.",
        examples=[22.5],
    )


class AgentSpeechStarted(Envelope):
    """The first audio of an agent utterance left for the caller."""

    type: Literal["agent.speech.started.v1"] = "agent.speech.started.v1"
    data: AgentSpeechStartedData


class AgentSpeechStoppedData(Data):
    """Data of ``agent.speech.stopped.v1``."""

    utterance_id: str = Field(
        min_length=1, max_length=64, description=_UTTERANCE, examples=["a-0193a5f3"]
    )
    text: str = Field(
        max_length=16384,
        description="Text spoken in full.",
        examples=["Your order 1234 shipped yesterday."],
    )
    played_ms: int = Field(ge=0, description="Audio played to the caller.", examples=[2140])


class AgentSpeechStopped(Envelope):
    """An agent utterance finished playing to the caller."""

    type: Literal["agent.speech.stopped.v1"] = "agent.speech.stopped.v1"
    data: AgentSpeechStoppedData


class AgentSpeechInterruptedData(Data):
    """Data of ``agent.speech.interrupted.v1``."""

    utterance_id: str = Field(
        min_length=1, max_length=64, description=_UTTERANCE, examples=["a-0193a5f3"]
    )
    text_planned: str = Field(
        max_length=16384,
        description="Everything the agent meant to say.",
        examples=["Your order 1234 shipped yesterday. It arrives Monday."],
    )
    text_heard: str = Field(
        max_length=16384,
        description="What the caller actually heard, from the playback marks.",
        examples=["Your order 1234 shipped yesterday."],
    )
    played_ms: int = Field(ge=0, description="Audio played before the cut.", examples=[2140])


class AgentSpeechInterrupted(Envelope):
    """The caller barged in: playback was cut, and only ``text_heard`` counts as said."""

    type: Literal["agent.speech.interrupted.v1"] = "agent.speech.interrupted.v1"
    data: AgentSpeechInterruptedData


class ToolCalledData(Data):
    """Data of ``tool.called.v1``."""

    tool_call_id: str = Field(
        min_length=1, max_length=128, description="Id of this tool call.", examples=["tc-1"]
    )
    name: str = Field(
        min_length=1, max_length=128, description="Tool name.", examples=["check_order_status"]
    )
    arguments: dict[str, Any] = Field(
        default_factory=dict,
        description="Arguments the LLM chose. May hold personal data.",
        examples=[{"order_id": "1234"}],
    )


class ToolCalled(Envelope):
    """The agent called a tool."""

    type: Literal["tool.called.v1"] = "tool.called.v1"
    data: ToolCalledData


class ToolResultData(Data):
    """Data of ``tool.result.v1``."""

    tool_call_id: str = Field(
        min_length=1, max_length=128, description="Id of the tool call.", examples=["tc-1"]
    )
    name: str = Field(
        min_length=1, max_length=128, description="Tool name.", examples=["check_order_status"]
    )
    ok: bool = Field(description="Whether the tool succeeded.", examples=[True])
    result: Any = Field(
        default=None, description="The tool's JSON result.", examples=[{"status": "shipped"}]
    )
    error: str | None = Field(
        default=None, max_length=2048, description="Error, when not ok.", examples=[None]
    )
    duration_ms: float = Field(ge=0, description="How long the tool took.", examples=[12.3])


class ToolResult(Envelope):
    """A tool call finished."""

    type: Literal["tool.result.v1"] = "tool.result.v1"
    data: ToolResultData


class FlowNodeEnteredData(Data):
    """Data of ``flow.node_entered.v1``."""

    flow_id: str = Field(
        min_length=1, max_length=128, description="Flow id.", examples=["order-status"]
    )
    node_id: str = Field(
        min_length=1, max_length=128, description="Node entered.", examples=["lookup"]
    )
    previous_node_id: str | None = Field(
        default=None, max_length=128, description="Node left, if any.", examples=["greet"]
    )
    agent_id: str | None = Field(
        default=None, max_length=128, description="Agent whose flow it is.", examples=["support"]
    )
    agent_version: int | None = Field(
        default=None, ge=1, description="Agent version the call runs.", examples=[3]
    )
    sensitive_input: bool = Field(
        default=False,
        description="The node collects secret keypad input (a sensitive collect-digits "
        "node): the caller's audio is silenced in the recording from this event's time "
        "until the next node is entered or the call ends.",
        examples=[True],
    )


class FlowNodeEntered(Envelope):
    """A multi-step flow moved to a node."""

    type: Literal["flow.node_entered.v1"] = "flow.node_entered.v1"
    data: FlowNodeEnteredData
