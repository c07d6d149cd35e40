"""Recorder settings (env prefix ``VB_RECORDER_``)."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from voicebus.runtime.settings import ServiceSettings


class RecorderSettings(ServiceSettings):
    """Settings of the recorder service."""

    model_config = SettingsConfigDict(env_prefix="VB_RECORDER_")
    service_name: ClassVar[str] = "recorder"
    default_http_port: ClassVar[int] = 8084

    dir: Path = Field(
        default=Path("var/recordings"),
        description="Root of the recordings: each call is written to <dir>/<tenant>/<call>.wav.",
    )
    reorder_window_ms: int = Field(
        default=5000,
        ge=100,
        le=60_000,
        description=(
            "Audio kept in memory per call before it is written: a frame arriving this much "
            "behind the newest one still lands at its place; older ones are dropped."
        ),
    )
    max_jump_s: float = Field(
        default=300.0,
        gt=0,
        description=(
            "A frame stamped more than this far ahead of the newest audio is refused, so one "
            "bad timestamp cannot fill the disk with silence."
        ),
    )
    publish_timeout_s: float = Field(
        default=10.0,
        gt=0,
        description="How long finalizing waits for JetStream to store recording.ready.",
    )
