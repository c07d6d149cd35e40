"""Orchestrator settings (env prefix ``VB_ORCHESTRATOR_``)."""

from __future__ import annotations

from typing import ClassVar

from pydantic_settings import SettingsConfigDict

from voicebus.runtime.settings import ServiceSettings


class OrchestratorSettings(ServiceSettings):
    """Settings of the orchestrator service."""

    model_config = SettingsConfigDict(env_prefix="VB_ORCHESTRATOR_")
    service_name: ClassVar[str] = "orchestrator"
    default_http_port: ClassVar[int] = 8082
