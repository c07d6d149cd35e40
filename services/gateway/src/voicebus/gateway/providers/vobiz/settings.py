"""Vobiz's settings (env prefix ``VB_GATEWAY_VOBIZ_``): the default tenant's account."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from voicebus.gateway.providers.plivo.settings import ContentType
from voicebus.runtime.settings import Environment, is_placeholder_secret

_DEV_SECRET = "dev-secret"  # noqa: S105 - a placeholder, refused in production


class VobizSettings(BaseSettings):
    """The Vobiz account of the default tenant, read from ``VB_GATEWAY_VOBIZ_*``."""

    model_config = SettingsConfigDict(env_prefix="VB_GATEWAY_VOBIZ_", extra="ignore")

    auth_id: str = Field(
        default="MADEVELOPMENT0000000",
        min_length=1,
        max_length=64,
        description="Vobiz Auth ID: the account in REST URLs and the X-Auth-ID header.",
    )
    auth_token: SecretStr = Field(
        default=SecretStr(_DEV_SECRET),
        description="Vobiz Auth Token: signs callbacks (X-Vobiz-Signature-V3) and REST calls.",
    )
    api_url: str = Field(
        default="https://api.vobiz.ai",
        description="Base URL of Vobiz's REST API (a stand-in carrier in tests).",
    )
    caller_id: str | None = Field(
        default=None,
        max_length=32,
        description="Number presented to callees when an originate command names none.",
    )
    content_type: ContentType = Field(
        default="audio/x-mulaw;rate=8000",
        description="Audio format the answer asks Vobiz to stream in.",
    )

    def checked(self, environment: Environment) -> VobizSettings:
        """These settings, refused in production while the token is a placeholder.

        Raises:
            ValueError: a placeholder auth token in production.
        """
        if environment is Environment.PRODUCTION and is_placeholder_secret(
            self.auth_token.get_secret_value()
        ):
            raise ValueError("VB_GATEWAY_VOBIZ_AUTH_TOKEN uses a placeholder value in production")
        return self
