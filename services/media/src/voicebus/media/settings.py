"""Media settings (env prefix ``VB_MEDIA_``)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from voicebus.runtime.settings import ServiceSettings


class MediaSettings(ServiceSettings):
    """Settings of the media service."""

    model_config = SettingsConfigDict(env_prefix="VB_MEDIA_")
    service_name: ClassVar[str] = "media"
    default_http_port: ClassVar[int] = 8081

    default_stt: str = Field(
        default="whisper-local", description="STT engine when the agent's profile is unavailable."
    )
    default_tts: str = Field(
        default="hibari", description="TTS engine when the agent's profile is unavailable."
    )
    warm_engines: bool = Field(
        default=True, description="Load the default engines' models at start-up, before ready."
    )
    smart_turn: bool = Field(
        default=True,
        description="Smart turn available: the model loads at start-up and agents use it "
        "(by default with local STT engines); false turns it off for every agent.",
    )
    agent_lookup_timeout_s: float = Field(
        default=4.0,
        gt=0,
        le=30,
        description="Budget of the orchestrator's agent profile answer, retries included.",
    )
    lead_ms: int = Field(
        default=160, ge=20, le=1000, description="Agent audio sent ahead of real time."
    )
    mark_grace_ms: int = Field(
        default=1000,
        ge=100,
        le=10_000,
        description="Agent audio with no playback mark this long after it should have played "
        "counts as played.",
    )
    preroll_ms: int = Field(
        default=300, ge=0, le=2000, description="Caller audio kept before the speech onset."
    )
    max_turn_ms: int = Field(
        default=30_000, ge=1000, le=120_000, description="Longest caller turn sent to STT."
    )
    operator_stop_ms: int = Field(
        default=700,
        ge=200,
        le=5000,
        description="While an operator holds a call, silence that ends a line of theirs "
        "(each line is transcribed into the call's history).",
    )
    smart_turn_stop_ms: int = Field(
        default=3000,
        ge=200,
        le=10_000,
        description="With smart turn, silence that ends a turn whatever the model says.",
    )
    smart_turn_early: bool = Field(
        default=True,
        description="Ask smart turn halfway through the VAD's stop, in the background, so its "
        "check is off the caller's wait (a few more checks when the caller speaks on).",
    )
    amd_providers: str = Field(
        default="exotel",
        description="Providers whose outbound calls placed with machine detection media checks "
        "with its own detector, comma-separated (those without AMD of their own); '*': every "
        "provider, a second opinion beside theirs; empty: none.",
    )

    barge_in_hold_timeout_ms: int = Field(
        default=3000,
        ge=500,
        le=30_000,
        description="Agent speech paused for a caller turn whose transcript never comes "
        "(the STT failed) resumes this long after the turn ended.",
    )
    vad_batch_wait_ms: int = Field(
        default=10,
        ge=0,
        le=50,
        description="VAD windows of all calls are scored in one batch, each waiting at most "
        "this long for the others; 0 scores each call alone.",
    )
    vad_confidence: float = Field(
        default=0.7, gt=0, lt=1, description="Silero confidence that counts as speech."
    )
    vad_min_volume: float = Field(
        default=0.6, ge=0, le=1, description="Volume below which audio is never speech."
    )
    allow_private_engine_urls: bool = Field(
        default=True,
        description="Engines may connect to loopback and private addresses (local servers, "
        "stand-ins). Set false where tenants can set engine URLs (SSRF).",
    )
    drain_timeout_s: float = Field(
        default=0.0,
        ge=0,
        le=3600,
        description="On SIGTERM this instance claims no new call and lets live ones go on for "
        "up to this long; calls left are then taken over by another instance (0: at once). "
        "Kubernetes' terminationGracePeriodSeconds must cover it.",
    )
    pending_frames: int = Field(
        default=250,
        ge=0,
        le=3000,
        description="Caller frames buffered while a call's pipeline starts (250 = 5 s).",
    )

    def runs_amd(self, provider: str) -> bool:
        """Whether media's machine detector runs on ``provider``'s calls."""
        names = {name.strip() for name in self.amd_providers.split(",") if name.strip()}
        return "*" in names or provider in names
