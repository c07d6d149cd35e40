"""Campaigns settings (env prefix ``VB_CAMPAIGNS_``)."""

from __future__ import annotations

from typing import ClassVar

from pydantic_settings import SettingsConfigDict

from voicebus.runtime.settings import ServiceSettings


class CampaignsSettings(ServiceSettings):
    """Settings of the campaigns service."""

    model_config = SettingsConfigDict(env_prefix="VB_CAMPAIGNS_")
    service_name: ClassVar[str] = "campaigns"
    default_http_port: ClassVar[int] = 8083
