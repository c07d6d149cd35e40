"""Campaigns settings (env prefix ``VB_CAMPAIGNS_``)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from voicebus.runtime.settings import ServiceSettings


class CampaignsSettings(ServiceSettings):
    """Settings of the campaigns service."""

    model_config = SettingsConfigDict(env_prefix="VB_CAMPAIGNS_")
    service_name: ClassVar[str] = "campaigns"
    answers_tenants: ClassVar[bool] = True
    default_http_port: ClassVar[int] = 8083

    tick_s: float = Field(default=0.1, gt=0, le=10, description="Pause between dial passes.")
    tenant_max_concurrency: int = Field(
        default=200, ge=1, description="Calls at once per tenant, over all its campaigns."
    )
    default_region: str = Field(
        default="US", min_length=2, max_length=2, description="Region of numbers without +."
    )
    progress_interval_s: float = Field(default=3.0, gt=0, description="campaign.progress period.")
    reap_interval_s: float = Field(default=2.0, gt=0, description="Lease check period.")
    claim_lease_s: float = Field(
        default=15.0, gt=0, le=60, description="A claimed dial not confirmed by then is re-sent."
    )
    dial_grace_s: float = Field(
        default=90.0, gt=0, description="A dialed call with no news after this ends as timeout."
    )
    max_call_s: float = Field(default=4 * 3600.0, gt=0, description="Longest call tracked.")
