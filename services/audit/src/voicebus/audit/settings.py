"""Audit settings (env prefix ``VB_AUDIT_``)."""

from __future__ import annotations

from typing import ClassVar

from pydantic_settings import SettingsConfigDict

from voicebus.runtime.settings import ServiceSettings


class AuditSettings(ServiceSettings):
    """Settings of the audit service."""

    model_config = SettingsConfigDict(env_prefix="VB_AUDIT_")
    service_name: ClassVar[str] = "audit"
    answers_tenants: ClassVar[bool] = True
    default_http_port: ClassVar[int] = 8085
