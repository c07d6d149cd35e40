"""Request/reply bodies on ``vb.rpc.<service>.<resource>.<verb>``.

The owner of the data answers; anyone else asks. A reply is either the
resource or an :class:`RpcError` (``ok`` tells which), so a missing owner, an
unknown id and a bad request are told apart by the caller.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

from pydantic import ConfigDict, Field

from voicebus.contracts import subjects
from voicebus.contracts.events._base import CallId, Data, TenantId
from voicebus.contracts.events.analysis import CallAnalyzedData
from voicebus.contracts.redaction import RedactionSettings

AGENTS_GET: Final = subjects.rpc("orchestrator", "agents", "get")
"""Look an agent up: request :class:`GetAgent`, reply :class:`AgentReply`."""

ScalarOption = str | int | float | bool


class RpcError(Data):
    """Why a request failed.

    The same fault has the same status in every service: 400 a body that is not
    the request's JSON, 422 a request that names a bad field (the message says
    which), 404 an unknown id, 409 a state that forbids the change, 503 the owner
    cannot serve now (its database is down), 500 a bug in the owner.
    """

    status: int = Field(ge=400, le=599, description="HTTP-like status.", examples=[404])
    code: str = Field(max_length=64, description="Machine-readable code.",
                      examples=["agent_not_found"])  # fmt: skip
    message: str = Field(max_length=1024, description="What went wrong.",
                         examples=["no agent 'demo2' for tenant 'acme'"])  # fmt: skip


class Reply(Data):
    """Base of every reply on ``vb.rpc.*``: ``ok``, and ``error`` when not ok.

    Subclasses add the payload fields, each optional or defaulted, so that a
    failure reply is just ``ok=False`` and the error.
    """

    ok: bool = Field(description="True when the payload is the answer.", examples=[True])
    error: RpcError | None = Field(default=None, description="Why not, when not ok.")


class GetAgent(Data):
    """Request body of ``vb.rpc.orchestrator.agents.get``."""

    tenant_id: TenantId
    agent_id: str = Field(min_length=1, max_length=128, description="Agent id.",
                          examples=["demo"])  # fmt: skip


class EngineChoice(Data):
    """An engine for one role, with its options."""

    engine: str = Field(min_length=1, max_length=64, description="Registered engine name.",
                        examples=["whisper-local"])  # fmt: skip
    options: dict[str, ScalarOption] = Field(default_factory=dict,
                                             description="Engine options.",
                                             examples=[{"language": "en"}])  # fmt: skip


class TurnSettings(Data):
    """How media decides the caller's turn ended and whether they may interrupt."""

    vad_stop_ms: int = Field(default=300, ge=100, le=3000,
                             description="Silence that ends a speech segment (with smart turn: "
                                         "the silence after which the turn model is asked).",
                             examples=[300])  # fmt: skip
    min_speech_ms: int = Field(default=200, ge=0, le=3000,
                               description="Shorter sounds are not speech.",
                               examples=[200])  # fmt: skip
    smart_turn: bool | None = Field(default=None,
                                    description="Ask the smart-turn model whether the caller "
                                                "finished; null: on with the local STT engines "
                                                "(names ending in '-local').",
                                    examples=[True])  # fmt: skip
    smart_turn_stop_ms: int | None = Field(default=None, ge=200, le=10_000,
                                           description="With smart turn, silence that ends the "
                                                       "turn whatever the model says; null: the "
                                                       "media service's setting.",
                                           examples=[2000])  # fmt: skip
    allow_interruptions: bool = Field(default=True,
                                      description="Caller speech may cut the agent (barge-in).",
                                      examples=[True])  # fmt: skip
    interruption_min_words: int = Field(default=1, ge=1, le=20,
                                        description="While the agent speaks, caller words that "
                                                    "are not backchannels and cut it (an interim "
                                                    "transcript with this many cuts it at once). "
                                                    "Fewer cut it only with "
                                                    "interruption_min_speech_ms of speech; a "
                                                    "noise, a backchannel or too little only "
                                                    "pauses the agent, which then resumes where "
                                                    "it stopped.",
                                        examples=[1])  # fmt: skip
    interruption_min_speech_ms: int = Field(default=500, ge=0, le=5000,
                                            description="While the agent speaks, caller speech "
                                                        "this long with at least one word (not a "
                                                        "backchannel) cuts it even with fewer "
                                                        "than interruption_min_words.",
                                            examples=[500])  # fmt: skip
    backchannels: list[str] | None = Field(default=None, max_length=200,
                                           description="Phrases that never interrupt and stay "
                                                       "out of the conversation when said over "
                                                       "the agent; null: the built-in list for "
                                                       "the agent's language.",
                                           examples=[["mhm", "okay", "right", "yeah"]])  # fmt: skip


class FallbackSettings(Data):
    """When an engine's work moves to the next one, and how its circuit breaker behaves."""

    first_audio_ms: int = Field(default=1500, ge=100, le=30_000,
                                description="TTS: text sent → first audio, at most.",
                                examples=[1500])  # fmt: skip
    first_token_ms: int = Field(default=4000, ge=100, le=60_000,
                                description="LLM: request → first token, at most.",
                                examples=[4000])  # fmt: skip
    final_transcript_ms: int = Field(default=2000, ge=100, le=30_000,
                                     description="STT: end of turn → final transcript, at most.",
                                     examples=[2000])  # fmt: skip
    stall_ms: int = Field(default=3000, ge=100, le=60_000,
                          description="TTS and LLM: longest gap inside one answer.",
                          examples=[3000])  # fmt: skip


class AgentProfile(Data):
    """What services other than the orchestrator need to know about an agent."""

    agent_id: str = Field(min_length=1, max_length=128, description="Agent id.",
                          examples=["demo"])  # fmt: skip
    name: str = Field(max_length=256, description="Display name.",
                      examples=["Order status assistant"])  # fmt: skip
    language: str = Field(default="en", max_length=16, description="BCP 47 language.",
                          examples=["en"])  # fmt: skip
    stt: EngineChoice = Field(description="Speech-to-text engine.")
    tts: EngineChoice = Field(description="Text-to-speech engine.")
    turn: TurnSettings = Field(default_factory=TurnSettings, description="Turn-taking.")
    stt_fallbacks: list[EngineChoice] = Field(default_factory=list, max_length=4,
                                              description="STT engines tried in order when "
                                              "``stt`` fails.")  # fmt: skip
    tts_fallbacks: list[EngineChoice] = Field(default_factory=list, max_length=4,
                                              description="TTS engines tried in order when "
                                              "``tts`` fails.")  # fmt: skip
    fallback: FallbackSettings = Field(default_factory=FallbackSettings,
                                       description="Failover budgets.")  # fmt: skip
    version: int | None = Field(
        default=None, ge=1, description="Current version (what a new call runs).", examples=[3]
    )
    template: bool = Field(default=False, description="A shared template.", examples=[False])
    redaction: RedactionSettings | None = Field(
        default=None, description="What transcripts and agent speech events must not carry."
    )


class AgentReply(Reply):
    """Reply of ``vb.rpc.orchestrator.agents.get`` (the whole definition:
    ``agents.version``, :mod:`voicebus.contracts.agents.api`)."""

    # The event ``agent.reply`` is also an ``AgentReply``: documents name this one apart.
    model_config = ConfigDict(title="AgentLookupReply")

    agent: AgentProfile | None = Field(default=None, description="The agent, when ok.")


# -- the REST edge (/api/v1) ---------------------------------------------------
# Every request names its tenant: the owner answers only with that tenant's data,
# so another tenant's call is "not found", never someone else's row.

AGENTS_LIST: Final = subjects.rpc("orchestrator", "agents", "list")
"""List agents: request :class:`ListAgents`, reply :class:`AgentsPage`."""
CALLS_LIST: Final = subjects.rpc("audit", "calls", "list")
"""List calls, newest first: request :class:`ListCalls`, reply :class:`CallsPage`."""
CALLS_GET: Final = subjects.rpc("audit", "calls", "get")
"""One call: request :class:`GetCall`, reply :class:`CallReply`."""
CALL_EVENTS_LIST: Final = subjects.rpc("audit", "events", "list")
"""A call's events in order: request :class:`ListCallEvents`, reply :class:`CallEventsPage`."""
RECORDINGS_GET: Final = subjects.rpc("recorder", "recordings", "get")
"""A call's recording: request :class:`GetRecording`, reply :class:`RecordingReply`."""
RECORDINGS_READ: Final = subjects.rpc("recorder", "recordings", "read")
"""Bytes of a recording: request :class:`ReadRecording`, reply :class:`RecordingChunk`."""

MAX_CHUNK_BYTES: Final = 512 * 1024
"""Largest recording chunk one reply carries (base64 must fit NATS' 1 MiB payload)."""


class ListAgents(Data):
    """Request body of ``vb.rpc.orchestrator.agents.list``."""

    tenant_id: TenantId
    include_archived: bool = Field(default=False, description="Archived agents too.")


class AgentsPage(Reply):
    """Reply of ``vb.rpc.orchestrator.agents.list``."""

    agents: list[AgentProfile] = Field(default_factory=list, description="Agents, by id.")


class ListCalls(Data):
    """Request body of ``vb.rpc.audit.calls.list``."""

    tenant_id: TenantId
    limit: int = Field(default=50, ge=1, le=200, description="Page size.", examples=[50])
    before: CallId | None = Field(
        default=None, description="Cursor: calls with a smaller id than this."
    )
    status: str | None = Field(
        default=None, max_length=32, description="Only calls in this status.", examples=["ended"]
    )
    agent_id: str | None = Field(
        default=None, max_length=128, description="Only calls of this agent.", examples=["demo"]
    )
    direction: str | None = Field(
        default=None, max_length=16, description="Only inbound or outbound calls.",
        examples=["inbound"],
    )  # fmt: skip
    provider: str | None = Field(
        default=None, max_length=32, description="Only calls through this provider.",
        examples=["twilio"],
    )  # fmt: skip
    ended_reason: str | None = Field(
        default=None, max_length=32, description="Only calls that ended for this reason.",
        examples=["caller_hangup"],
    )  # fmt: skip
    phone: str | None = Field(
        default=None, max_length=64, description="Only calls from or to this number (exact).",
        examples=["+14155550100"],
    )  # fmt: skip
    since: datetime | None = Field(
        default=None, description="Only calls initiated at or after this time."
    )
    until: datetime | None = Field(
        default=None, description="Only calls initiated before this time."
    )


class CallSummary(Data):
    """A call as audit knows it. Phone numbers are personal data."""

    call_id: CallId
    status: str = Field(
        max_length=32, description="initiated, ringing, in_progress or ended.", examples=["ended"]
    )
    direction: str | None = Field(
        default=None, max_length=16, description="inbound/outbound.", examples=["inbound"]
    )
    provider: str | None = Field(default=None, max_length=32, examples=["twilio"])
    agent_id: str | None = Field(default=None, max_length=128, examples=["demo"])
    from_number: str | None = Field(default=None, max_length=64, examples=["+14155550100"])
    to_number: str | None = Field(default=None, max_length=64, examples=["+14155550199"])
    initiated_at: datetime | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    duration_s: float | None = Field(default=None, ge=0, examples=[42.5])
    ended_reason: str | None = Field(default=None, max_length=32, examples=["caller_hangup"])
    analysis: CallAnalyzedData | None = Field(
        default=None,
        description="The call's post-call analysis (its call.analyzed), in the reply of one call.",
    )


class CallsPage(Reply):
    """Reply of ``vb.rpc.audit.calls.list``."""

    calls: list[CallSummary] = Field(default_factory=list, description="Newest first.")
    next_before: str | None = Field(default=None, description="Cursor of the next page, if any.")


class GetCall(Data):
    """Request body of ``vb.rpc.audit.calls.get`` and ``vb.rpc.recorder.recordings.get``."""

    tenant_id: TenantId
    call_id: CallId


class CallReply(Reply):
    """Reply of ``vb.rpc.audit.calls.get``."""

    call: CallSummary | None = Field(default=None, description="The call, when ok.")


class ListCallEvents(Data):
    """Request body of ``vb.rpc.audit.events.list``."""

    tenant_id: TenantId
    call_id: CallId
    limit: int = Field(default=200, ge=1, le=1000, description="Page size.", examples=[200])
    after: str | None = Field(
        default=None, max_length=64, description="Cursor: events after this event id."
    )


class StoredEvent(Data):
    """One stored event of a call (the envelope's fields; ``data`` as published)."""

    id: str = Field(max_length=64, examples=["0193a5f2-7c1e-7a3b-9f00-5d2c8e1b4a77"])
    type: str = Field(max_length=64, examples=["call.started.v1"])
    source: str = Field(max_length=256, examples=["gateway/gw-7f9c"])
    time: datetime
    data: dict[str, Any] = Field(default_factory=dict, description="The event's data.")


class CallEventsPage(Reply):
    """Reply of ``vb.rpc.audit.events.list``."""

    events: list[StoredEvent] = Field(default_factory=list, description="In time order.")
    next_after: str | None = Field(default=None, description="Cursor of the next page, if any.")


GetRecording = GetCall
"""Request body of ``vb.rpc.recorder.recordings.get``."""


class RecordingMeta(Data):
    """A finished recording: stereo WAV, caller left, agent right."""

    call_id: CallId
    uri: str = Field(
        max_length=1024,
        description="Where the recorder keeps it.",
        examples=["file:acme/0193a5f2.wav"],
    )
    media_type: str = Field(default="audio/wav", examples=["audio/wav"])
    sample_rate: int = Field(ge=1, examples=[8000])
    channels: int = Field(default=2, ge=1, le=2, examples=[2])
    duration_s: float = Field(ge=0, examples=[42.5])
    bytes: int = Field(ge=0, description="File size.", examples=[1360044])


class RecordingReply(Reply):
    """Reply of ``vb.rpc.recorder.recordings.get``."""

    recording: RecordingMeta | None = Field(default=None, description="The recording, when ok.")


class ReadRecording(Data):
    """Request body of ``vb.rpc.recorder.recordings.read``."""

    tenant_id: TenantId
    call_id: CallId
    offset: int = Field(default=0, ge=0, description="First byte.", examples=[0])
    length: int = Field(
        default=MAX_CHUNK_BYTES,
        ge=1,
        le=MAX_CHUNK_BYTES,
        description="Bytes wanted.",
        examples=[MAX_CHUNK_BYTES],
    )


class RecordingChunk(Reply):
    """Reply of ``vb.rpc.recorder.recordings.read``; ``data`` is base64 in JSON."""

    model_config = ConfigDict(
        frozen=True, extra="ignore", ser_json_bytes="base64", val_json_bytes="base64"
    )

    data: bytes = Field(default=b"", description="The bytes read (base64).")
    total_bytes: int = Field(default=0, ge=0, description="File size.")


MEMORY_GET: Final = subjects.rpc("orchestrator", "memory", "get")
"""A caller's memory: request :class:`CallerRef`, reply :class:`CallerMemoryReply`."""
MEMORY_DELETE: Final = subjects.rpc("orchestrator", "memory", "delete")
"""Forget a caller: request :class:`CallerRef`, reply :class:`CallerMemoryReply` (404: none)."""

CALLER_NUMBER_PATTERN: Final = r"^\+?[0-9A-Za-z_.:@-]{1,64}$"


class CallerRef(Data):
    """Request body of ``vb.rpc.orchestrator.memory.get|delete``."""

    tenant_id: TenantId
    number: str = Field(
        pattern=CALLER_NUMBER_PATTERN,
        description="The caller's number as the call carried it (E.164). Personal data.",
        examples=["+14155550100"],
    )


class RememberedCall(Data):
    """One earlier call in a caller's memory."""

    call_id: CallId
    time: datetime
    summary: str = Field(default="", max_length=4096)


class CallerProfile(Data):
    """What the tenant's agents remember about one caller. Personal data."""

    number: str = Field(max_length=64, examples=["+14155550100"])
    name: str | None = Field(default=None, max_length=128, examples=["Ada"])
    preferences: list[str] = Field(default_factory=list, examples=[["email over phone"]])
    open_issues: list[str] = Field(default_factory=list, examples=[["refund for order 1234"]])
    calls: list[RememberedCall] = Field(default_factory=list, description="Oldest first.")


class CallerMemoryReply(Reply):
    """Reply of ``vb.rpc.orchestrator.memory.get|delete`` (delete: the profile removed)."""

    profile: CallerProfile | None = Field(default=None, description="The profile, when ok.")
