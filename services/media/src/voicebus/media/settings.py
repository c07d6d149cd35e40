"""Media settings (env prefix ``VB_MEDIA_``)."""

from __future__ import annotations

from typing import ClassVar

from pydantic_settings import SettingsConfigDict

from voicebus.runtime.settings import ServiceSettings


class MediaSettings(ServiceSettings):
    """Settings of the media service."""

    model_config = SettingsConfigDict(env_prefix="VB_MEDIA_")
    service_name: ClassVar[str] = "media"
    default_http_port: ClassVar[int] = 8081
