"""Gateway settings (env prefix ``VB_GATEWAY_``)."""

from __future__ import annotations

from typing import ClassVar

from pydantic_settings import SettingsConfigDict

from voicebus.runtime.settings import ServiceSettings


class GatewaySettings(ServiceSettings):
    """Settings of the gateway."""

    model_config = SettingsConfigDict(env_prefix="VB_GATEWAY_")
    service_name: ClassVar[str] = "gateway"
    default_http_port: ClassVar[int] = 8080
