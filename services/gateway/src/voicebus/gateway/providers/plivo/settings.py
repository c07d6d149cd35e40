"""Plivo's settings (env prefix ``VB_GATEWAY_PLIVO_``): the default tenant's account."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from voicebus.runtime.settings import Environment, is_placeholder_secret

_DEV_SECRET = "dev-secret"  # noqa: S105 - a placeholder, refused in production

ContentType = Literal["audio/x-mulaw;rate=8000", "audio/x-l16;rate=8000", "audio/x-l16;rate=16000"]
"""Stream formats the codec speaks; the answer asks the provider for one of them."""


class PlivoSettings(BaseSettings):
    """The Plivo account of the default tenant, read from ``VB_GATEWAY_PLIVO_*``."""

    model_config = SettingsConfigDict(env_prefix="VB_GATEWAY_PLIVO_", extra="ignore")

    auth_id: str = Field(
        default="MADEVELOPMENT0000000",
        min_length=1,
        max_length=64,
        description="Auth ID: the account in REST URLs (Plivo: the Basic auth user).",
    )
    auth_token: SecretStr = Field(
        default=SecretStr(_DEV_SECRET),
        description="Auth Token: signs webhooks (X-<Provider>-Signature-V3) and REST calls.",
    )
    api_url: str = Field(
        default="https://api.plivo.com",
        description="Base URL of Plivo's REST API (a stand-in carrier in tests).",
    )
    caller_id: str | None = Field(
        default=None,
        max_length=32,
        description="Number presented to callees when an originate command names none.",
    )
    content_type: ContentType = Field(
        default="audio/x-mulaw;rate=8000",
        description="Audio format the answer asks the provider to stream in.",
    )

    def checked(self, environment: Environment) -> Self:
        """These settings, refused in production while the token is a placeholder.

        Raises:
            ValueError: a placeholder auth token in production.
        """
        if environment is Environment.PRODUCTION and is_placeholder_secret(
            self.auth_token.get_secret_value()
        ):
            variable = f"{self.model_config.get('env_prefix', '')}AUTH_TOKEN"
            raise ValueError(f"{variable} uses a placeholder value in production")
        return self
