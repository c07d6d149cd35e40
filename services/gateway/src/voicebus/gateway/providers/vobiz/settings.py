"""Vobiz's settings (env prefix ``VB_GATEWAY_VOBIZ_``): the default tenant's account.

Vobiz's account is Plivo-shaped (Auth ID, Auth Token, the same stream formats), so
its settings are Plivo's read from other variables, with Vobiz's API as the default.
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from voicebus.gateway.providers.plivo.settings import PlivoSettings


class VobizSettings(PlivoSettings):
    """The Vobiz account of the default tenant, read from ``VB_GATEWAY_VOBIZ_*``."""

    model_config = SettingsConfigDict(env_prefix="VB_GATEWAY_VOBIZ_", extra="ignore")

    api_url: str = Field(
        default="https://api.vobiz.ai",
        description="Base URL of Vobiz's REST API (a stand-in carrier in tests).",
    )
