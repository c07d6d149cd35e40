"""Recorder settings (env prefix ``VB_RECORDER_``)."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from voicebus.runtime.settings import ServiceSettings


class RecorderSettings(ServiceSettings):
    """Settings of the recorder service."""

    model_config = SettingsConfigDict(env_prefix="VB_RECORDER_")
    service_name: ClassVar[str] = "recorder"
    answers_tenants: ClassVar[bool] = True
    default_http_port: ClassVar[int] = 8084

    dir: Path = Field(
        default=Path("var/recordings"),
        description="Root of the recordings: each call is written to <dir>/<tenant>/<call>.wav.",
    )
    reorder_window_ms: int = Field(
        default=5000,
        ge=100,
        le=60_000,
        description=(
            "Audio kept in memory per call before it is written: a frame arriving this much "
            "behind the newest one still lands at its place; older ones are dropped."
        ),
    )
    max_jump_s: float = Field(
        default=300.0,
        gt=0,
        description=(
            "A frame stamped more than this far ahead of the newest audio is refused, so one "
            "bad timestamp cannot fill the disk with silence."
        ),
    )
    redact_margin_ms: int = Field(
        default=300,
        ge=0,
        le=5000,
        description=(
            "Sensitive keypad input: the caller is silenced this much before the node "
            "collecting it is entered and after it is left (host clocks differ a little)."
        ),
    )
    publish_timeout_s: float = Field(
        default=10.0,
        gt=0,
        description="How long finalizing waits for JetStream to store recording.ready.",
    )
    s3_bucket: str | None = Field(
        default=None,
        description=(
            "Keep finished recordings in this bucket of an S3-compatible store, keyed "
            "<prefix><tenant>/<yyyy>/<mm>/<call>.wav; VB_RECORDER_DIR is then only the spool "
            "of calls in progress. Unset: recordings stay in VB_RECORDER_DIR."
        ),
    )
    s3_endpoint_url: str | None = Field(
        default=None, description="Endpoint of a non-AWS store (MinIO, Ceph RGW): path-style."
    )
    s3_region: str = Field(default="us-east-1", description="Region of the bucket.")
    s3_prefix: str = Field(default="", description="Prefix of every key, e.g. 'recordings/'.")
    s3_access_key_id: str | None = Field(
        default=None, description="Access key; unset: boto3's chain (IRSA, instance role...)."
    )
    s3_secret_access_key: SecretStr | None = Field(
        default=None, description="Secret of the access key."
    )
