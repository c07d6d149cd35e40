"""Recorder settings (env prefix ``VB_RECORDER_``)."""

from __future__ import annotations

from typing import ClassVar

from pydantic_settings import SettingsConfigDict

from voicebus.runtime.settings import ServiceSettings


class RecorderSettings(ServiceSettings):
    """Settings of the recorder service."""

    model_config = SettingsConfigDict(env_prefix="VB_RECORDER_")
    service_name: ClassVar[str] = "recorder"
    default_http_port: ClassVar[int] = 8084
