"""One interface per role, and the registry engines add themselves to.

An engine is chosen per agent by name (``whisper-local``, ``hibari``,
``scripted``, ``openai``...). Adding one touches its own module plus one
``register_*`` line; nothing else branches on engine names.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, Protocol, TypeVar, runtime_checkable

Options = Mapping[str, Any]


class EngineError(RuntimeError):
    """An engine failed; ``retryable`` says whether trying again may help.

    ``kind`` is a bounded label for events and metrics: ``auth``, ``rate_limited``,
    ``bad_request``, ``unavailable``, ``timeout``, ``protocol``, ``closed``, ``config``
    or ``failed``.
    """

    def __init__(self, message: str, *, retryable: bool = False, kind: str = "failed") -> None:
        super().__init__(message)
        self.retryable = retryable
        self.kind = kind


class UnknownEngineError(EngineError):
    """No engine is registered under that name for that role."""

    def __init__(self, message: str) -> None:
        super().__init__(message, kind="config")


class EngineAuthError(EngineError):
    """The vendor refused the key (401/403): not retryable, and the breaker stays open."""

    def __init__(self, message: str) -> None:
        super().__init__(message, retryable=False, kind="auth")


def error_for_status(engine: str, status: int, detail: str = "") -> EngineError:
    """The error for an upstream HTTP status, decided once for every engine.

    401 and 403 are :class:`EngineAuthError`; 408, 429 and 5xx may succeed on
    retry; any other 4xx will not.
    """
    suffix = f": {detail}" if detail else ""
    if status in (401, 403):
        return EngineAuthError(
            f"{engine}: the vendor refused the API key: answered {status}{suffix}"
        )
    if status == 429:
        return EngineError(
            f"{engine}: rate limited: answered 429{suffix}", retryable=True, kind="rate_limited"
        )
    if status == 408 or status >= 500:
        return EngineError(
            f"{engine}: the vendor answered {status}{suffix}", retryable=True, kind="unavailable"
        )
    return EngineError(f"{engine}: the vendor answered {status}{suffix}", kind="bad_request")


@dataclass(frozen=True, slots=True)
class EngineContext:
    """What a factory needs beyond the agent's options: the key and the outbound policy.

    Attributes:
        api_key: the vendor key resolved for the call's tenant (never in options, never
            logged: hidden from ``repr``).
        tenant_id: whose call the engine serves (keys and breakers are per tenant).
        allow_private_urls: let engines reach loopback and private addresses (local
            servers, stand-ins); off where tenants may set URLs (SSRF).
    """

    api_key: str | None = field(default=None, repr=False)
    tenant_id: str = "default"
    allow_private_urls: bool = True


NO_CONTEXT: EngineContext = EngineContext()


# -- speech to text ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Transcription:
    """What an STT engine heard in one segment."""

    text: str
    language: str | None = None
    confidence: float | None = None


@runtime_checkable
class STTEngine(Protocol):
    """Speech to text on one VAD-cut segment (whole utterance, not streaming)."""

    name: str

    async def transcribe(self, pcm16: bytes, sample_rate: int) -> Transcription:
        """Transcribe mono PCM16LE audio."""
        ...


# -- text to speech ---------------------------------------------------------


@runtime_checkable
class TTSEngine(Protocol):
    """Text to speech, streamed: first audio as early as possible."""

    name: str

    def synthesize(self, text: str, sample_rate: int) -> AsyncIterator[bytes]:
        """Yield mono PCM16LE audio at ``sample_rate`` in chunks of any size."""
        ...


# -- language models --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """A tool the LLM may call: JSON Schema parameters, as in OpenAI's API."""

    name: str
    description: str
    parameters: Mapping[str, Any] = field(default_factory=lambda: {"type": "object"})


@dataclass(frozen=True, slots=True)
class ToolCall:
    """The LLM asked for a tool."""

    id: str
    name: str
    arguments: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class ChatMessage:
    """One message of the conversation, in OpenAI's roles."""

    role: Literal["system", "user", "assistant", "tool"]
    content: str = ""
    tool_calls: Sequence[ToolCall] = ()
    tool_call_id: str | None = None
    name: str | None = None


@dataclass(frozen=True, slots=True)
class TextDelta:
    """A piece of reply text."""

    text: str


@dataclass(frozen=True, slots=True)
class TokenUsage:
    """Tokens one LLM request used, when the engine reports them (after the reply)."""

    tokens_in: int
    tokens_out: int


LLMChunk = TextDelta | ToolCall | TokenUsage
"""What an LLM stream yields: text as it is generated, tool calls, and at most one
:class:`TokenUsage` (consumers that do not meter ignore it)."""


@runtime_checkable
class LLMEngine(Protocol):
    """A chat model that streams its reply."""

    name: str

    def stream(
        self, messages: Sequence[ChatMessage], tools: Sequence[ToolSpec] = ()
    ) -> AsyncIterator[LLMChunk]:
        """Yield text deltas as they are generated, and any tool calls."""
        ...


@runtime_checkable
class Warmable(Protocol):
    """An engine that can load its model ahead of the first request (local models)."""

    async def warm(self) -> None:
        """Load (and exercise) the model now, off the event loop."""
        ...


@runtime_checkable
class Prefillable(Protocol):
    """An LLM that can process a conversation's prefix ahead of time.

    Servers that keep the last prompt's state (llama.cpp) then answer the next
    request that shares the prefix after only the new tokens: the prompt and tool
    schemas are processed while the greeting plays, not after the caller's first
    question.
    """

    async def prefill(
        self, messages: Sequence[ChatMessage], tools: Sequence[ToolSpec] = ()
    ) -> None:
        """Process the prompt without generating; never raises (it is an optimisation)."""
        ...


# -- the registry -----------------------------------------------------------

E = TypeVar("E")
Factory = Callable[[Options, EngineContext], E]


class Registry(Generic[E]):
    """Engines of one role, by name."""

    def __init__(self, role: str) -> None:
        self.role = role
        self._factories: dict[str, Factory[E]] = {}

    def register(self, name: str, factory: Factory[E]) -> None:
        """Make ``factory(options)`` available as ``name``."""
        self._factories[name] = factory

    def names(self) -> list[str]:
        """Registered names."""
        return sorted(self._factories)

    def create(
        self, name: str, options: Options | None = None, context: EngineContext | None = None
    ) -> E:
        """Build the engine ``name`` with ``options`` (and the key in ``context``).

        Raises:
            UnknownEngineError: nothing is registered under ``name``.
            EngineError: an option is wrong (the message names it).
        """
        try:
            factory = self._factories[name]
        except KeyError:
            known = ", ".join(self.names()) or "none"
            raise UnknownEngineError(f"no {self.role} engine {name!r}; known: {known}") from None
        return factory(options or {}, context or NO_CONTEXT)


STT: Registry[STTEngine] = Registry("stt")
TTS: Registry[TTSEngine] = Registry("tts")
LLM: Registry[LLMEngine] = Registry("llm")
