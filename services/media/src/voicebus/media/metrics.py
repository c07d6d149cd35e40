"""Prometheus metrics of the media service (process registry, served on ``/metrics``)."""

from __future__ import annotations

from typing import Final

from prometheus_client import Counter, Gauge, Histogram

MALFORMED: Final = Counter(
    "voicebus_media_malformed",
    "Malformed messages from the bus, ignored (kind: audio, mark, say, supervision).",
    ["kind"],
)
SAY_DROPPED: Final = Counter(
    "voicebus_media_say_dropped",
    "Say chunks not spoken (reason: duplicate, closed, overflow).",
    ["reason"],
)
CALLS: Final = Gauge("voicebus_media_calls", "Calls with a media pipeline in this process.")
AGENT_LOOKUPS: Final = Counter(
    "voicebus_media_agent_lookups",
    "Agent profile lookups at claim (result: ok, not_found, failed).",
    ["result"],
)
ENGINE_ERRORS: Final = Counter(
    "voicebus_media_engine_errors", "Engine failures (role: stt, tts).", ["role"]
)
INTERRUPTIONS: Final = Counter(
    "voicebus_media_interruptions", "Agent utterances cut by caller speech (barge-in)."
)
AMD_DECISIONS: Final = Counter(
    "voicebus_media_amd_decisions",
    "Answering-machine decisions of media's detector, by result and method.",
    ["result", "method"],
)
SMART_TURN_CHECKS: Final = Counter(
    "voicebus_media_smart_turn_checks", "Smart-turn model checks, by answer.", ["complete"]
)
AGENT_PAUSES: Final = Counter(
    "voicebus_media_agent_pauses",
    "Agent speech paused for caller speech, and how pauses ended (resumed, timed_out).",
    ["outcome"],
)
UNCONFIRMED_PLAYBACK: Final = Counter(
    "voicebus_media_unconfirmed_playback",
    "Utterances counted as played with no playback mark for their last frame.",
)
EVENTS_FAILED: Final = Counter(
    "voicebus_media_events_failed", "Events that could not be published to VB_EVENTS."
)
AUDIO_OUT_DROPPED: Final = Counter(
    "voicebus_media_audio_out_dropped",
    "Agent audio frames dropped: NATS was unreachable and the client's buffer full.",
)
STAGE_SECONDS: Final = Histogram(
    "voicebus_media_stage_seconds",
    "Latency per stage, by engine (end_of_turn: caller speech end to turn end, engine vad "
    "or smart_turn; stt: turn end to transcript; tts_first_audio: text to first audio).",
    ["stage", "engine"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.5, 5.0),
)
TURN_LATENCY: Final = Histogram(
    "voicebus_media_turn_latency_seconds",
    "Caller end of speech to the first audio of the agent's reply sent toward the caller "
    "(server side: the provider's leg and the caller's playout are not included).",
    buckets=(0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.75, 1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 5.0, 10.0),
)
VAD_BATCH: Final = Histogram(
    "voicebus_media_vad_batch_windows",
    "Silero windows scored per batched ONNX run (calls batched together).",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
)
