"""Settings: shared fixed names, per-service prefixes, production secret rules."""

from __future__ import annotations

from typing import ClassVar

import pytest
from pydantic import SecretStr, ValidationError
from pydantic_settings import SettingsConfigDict

from voicebus.runtime.settings import (
    Environment,
    ServiceSettings,
    default_instance_id,
    is_placeholder_secret,
)

pytestmark = pytest.mark.unit


def test_defaults(clean_env: pytest.MonkeyPatch, settings_cls: type[ServiceSettings]) -> None:
    s = settings_cls()
    assert s.environment is Environment.DEVELOPMENT
    assert s.nats_servers == ["nats://127.0.0.1:4222"]
    assert s.http_host == "127.0.0.1"
    assert s.http_port == 8099  # the subclass's default_http_port
    assert s.log_level == "INFO"
    assert s.log_format == "json"
    assert s.log_redact_pii is True
    assert s.database_url is None
    assert s.otel_exporter_otlp_endpoint is None
    assert s.instance_id.count("-") >= 2
    assert s.connection_name == f"demo/{s.instance_id}"


def test_shared_names_ignore_the_prefix(
    clean_env: pytest.MonkeyPatch, settings_cls: type[ServiceSettings]
) -> None:
    clean_env.setenv("VB_ENVIRONMENT", "test")
    clean_env.setenv("VB_NATS_URL", "nats://a:4222, tls://b:4222")
    clean_env.setenv("VB_NATS_USER", "svc")
    clean_env.setenv("VB_NATS_PASSWORD", "hunter2-but-long")
    clean_env.setenv("VB_DATABASE_URL", "postgresql://u:p@db/voicebus")
    clean_env.setenv("VB_LOG_LEVEL", "debug")
    clean_env.setenv("VB_LOG_FORMAT", "CONSOLE")
    clean_env.setenv("VB_LOG_REDACT_PII", "false")
    clean_env.setenv("VB_OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318")
    # Prefixed spellings of shared fields are not read.
    clean_env.setenv("VB_DEMO_NATS_URL", "nats://wrong:1")
    s = settings_cls()
    assert s.environment is Environment.TEST
    assert s.nats_servers == ["nats://a:4222", "tls://b:4222"]
    assert s.nats_user == "svc"
    assert s.nats_password is not None
    assert s.nats_password.get_secret_value() == "hunter2-but-long"
    assert s.database_url is not None
    assert s.database_url.get_secret_value() == "postgresql://u:p@db/voicebus"
    assert s.log_level == "DEBUG"
    assert s.log_format == "console"
    assert s.log_redact_pii is False
    assert s.otel_exporter_otlp_endpoint == "http://collector:4318"


def test_service_fields_use_the_prefix(
    clean_env: pytest.MonkeyPatch, settings_cls: type[ServiceSettings]
) -> None:
    clean_env.setenv("VB_DEMO_HTTP_HOST", "0.0.0.0")
    clean_env.setenv("VB_DEMO_HTTP_PORT", "9123")
    clean_env.setenv("VB_DEMO_INSTANCE_ID", "demo-1")
    clean_env.setenv("VB_HTTP_PORT", "1")  # the base prefix is not this service's
    s = settings_cls()
    assert (s.http_host, s.http_port, s.instance_id) == ("0.0.0.0", 9123, "demo-1")


def test_two_services_read_their_own_prefix(clean_env: pytest.MonkeyPatch) -> None:
    class GatewaySettings(ServiceSettings):
        model_config = SettingsConfigDict(env_prefix="VB_GATEWAY_")
        service_name: ClassVar[str] = "gateway"
        default_http_port: ClassVar[int] = 8081

    class MediaSettings(ServiceSettings):
        model_config = SettingsConfigDict(env_prefix="VB_MEDIA_")
        service_name: ClassVar[str] = "media"
        default_http_port: ClassVar[int] = 8082

    clean_env.setenv("VB_GATEWAY_HTTP_PORT", "9001")
    clean_env.setenv("VB_NATS_URL", "nats://shared:4222")
    gateway, media = GatewaySettings(), MediaSettings()
    assert (gateway.http_port, media.http_port) == (9001, 8082)
    assert gateway.nats_url == media.nats_url == "nats://shared:4222"


def test_constructor_arguments_use_field_names(
    clean_env: pytest.MonkeyPatch, settings_cls: type[ServiceSettings]
) -> None:
    s = settings_cls(environment=Environment.TEST, nats_url="nats://x:1", http_port=1234)
    assert (s.environment, s.nats_url, s.http_port) == (Environment.TEST, "nats://x:1", 1234)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("VB_NATS_URL", "http://not-nats:4222"),
        ("VB_LOG_LEVEL", "chatty"),
        ("VB_LOG_FORMAT", "xml"),
        ("VB_ENVIRONMENT", "staging"),
        ("VB_DEMO_HTTP_PORT", "70000"),
        ("VB_DEMO_INSTANCE_ID", "host.with.dots"),
    ],
)
def test_bad_values_are_refused(
    clean_env: pytest.MonkeyPatch, settings_cls: type[ServiceSettings], name: str, value: str
) -> None:
    clean_env.setenv(name, value)
    with pytest.raises(ValidationError):
        settings_cls()


def test_base_class_needs_a_service_name(clean_env: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValidationError, match="service_name"):
        ServiceSettings()


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("VB_SECRET_KEY", "changeme"),
        ("VB_SECRET_KEY", "CHANGE_ME"),
        ("VB_SECRET_KEY", "dev-secret"),
        ("VB_SECRET_KEY", ""),
        ("VB_SECRET_KEY", "xxxxxxxx"),
        ("VB_NATS_PASSWORD", "password"),
        ("VB_DATABASE_URL", "postgresql://voicebus:changeme@db/voicebus"),
    ],
)
def test_production_refuses_placeholder_secrets(
    clean_env: pytest.MonkeyPatch, settings_cls: type[ServiceSettings], name: str, value: str
) -> None:
    clean_env.setenv("VB_ENVIRONMENT", "production")
    clean_env.setenv("VB_NATS_USER", "svc")
    clean_env.setenv(name, value)
    with pytest.raises(ValidationError) as caught:
        settings_cls()
    message = str(caught.value)
    assert name in message  # names the field by its environment variable
    if value:
        assert value not in message  # and never echoes the secret


def test_production_accepts_real_secrets(
    clean_env: pytest.MonkeyPatch, settings_cls: type[ServiceSettings]
) -> None:
    clean_env.setenv("VB_ENVIRONMENT", "production")
    clean_env.setenv("VB_SECRET_KEY", "q8Z2v0pXr7Lw1mNc4TbY")
    clean_env.setenv("VB_DATABASE_URL", "postgresql://voicebus:Zk3p9Qw7@db/voicebus")
    assert settings_cls().environment is Environment.PRODUCTION


def test_development_allows_placeholders(
    clean_env: pytest.MonkeyPatch, settings_cls: type[ServiceSettings]
) -> None:
    clean_env.setenv("VB_SECRET_KEY", "changeme")
    s = settings_cls()
    assert s.secret_key is not None


def test_subclass_secret_fields_are_checked_too(clean_env: pytest.MonkeyPatch) -> None:
    class GatewaySettings(ServiceSettings):
        model_config = SettingsConfigDict(env_prefix="VB_GATEWAY_")
        service_name: ClassVar[str] = "gateway"
        twilio_auth_token: SecretStr | None = None

    clean_env.setenv("VB_ENVIRONMENT", "production")
    clean_env.setenv("VB_GATEWAY_TWILIO_AUTH_TOKEN", "changeme")
    with pytest.raises(ValidationError, match="VB_GATEWAY_TWILIO_AUTH_TOKEN"):
        GatewaySettings()


def test_secrets_never_in_repr(
    clean_env: pytest.MonkeyPatch, settings_cls: type[ServiceSettings]
) -> None:
    clean_env.setenv("VB_NATS_URL", "nats://svc:url-password@nats:4222")
    clean_env.setenv("VB_NATS_USER", "svc")
    clean_env.setenv("VB_NATS_PASSWORD", "nats-password-value")
    clean_env.setenv("VB_DATABASE_URL", "postgresql://u:db-password-value@db/x")
    clean_env.setenv("VB_SECRET_KEY", "secret-key-value")
    s = settings_cls()
    for text in (repr(s), str(s), s.model_dump_json()):
        for secret in ("url-password", "nats-password-value", "db-password-value"):
            assert secret not in text
        assert "secret-key-value" not in text


def test_credentials_are_exclusive(
    clean_env: pytest.MonkeyPatch, settings_cls: type[ServiceSettings]
) -> None:
    clean_env.setenv("VB_NATS_PASSWORD", "pw-without-user")
    with pytest.raises(ValidationError, match="VB_NATS_USER"):
        settings_cls()
    clean_env.setenv("VB_NATS_USER", "svc")
    clean_env.setenv("VB_NATS_CREDS", "/etc/nats/svc.creds")
    with pytest.raises(ValidationError, match="VB_NATS_CREDS"):
        settings_cls()


def test_placeholder_detection() -> None:
    for value in ("", " ", "changeme", "Change-Me", "dev_secret", "secret", "XXXX", "test"):
        assert is_placeholder_secret(value), value
    for value in ("q8Z2v0pXr7Lw1mNc4TbY", "postgresql://u@db/x", "postgresql://u:Zk3p9Qw7@db/x"):
        assert not is_placeholder_secret(value), value


def test_default_instance_id_is_a_subject_token() -> None:
    first, second = default_instance_id(), default_instance_id()
    assert first != second
    assert all(c.isalnum() or c in "-_" for c in first)
