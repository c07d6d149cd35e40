"""``voicebus secrets init``: every secret the services refuse as a placeholder, made strong."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
import yaml
from pydantic import SecretStr
from typer.testing import CliRunner

from voicebus.devkit.cli import app
from voicebus.devkit.deploy_secrets import PUBLIC_KEY, SECRETS, SecretKind
from voicebus.edge.settings import EdgeSettings
from voicebus.gateway.providers.exotel.settings import ExotelSettings
from voicebus.gateway.providers.plivo.settings import PlivoSettings
from voicebus.gateway.providers.vobiz.settings import VobizSettings
from voicebus.gateway.settings import GatewaySettings
from voicebus.orchestrator.settings import OrchestratorSettings
from voicebus.runtime.settings import Environment, is_placeholder_secret
from voicebus.runtime.tenant_keys import public_key_of

pytestmark = pytest.mark.unit

# Every settings class of a service that holds a secret, with the prefix it reads.
_SECRET_SETTINGS = (
    GatewaySettings,
    PlivoSettings,
    VobizSettings,
    ExotelSettings,
    EdgeSettings,
    OrchestratorSettings,
)


def _dotenv(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            values[name] = value
    return values


def _init(tmp_path: Path, *extra: str) -> tuple[int, str, Path, Path]:
    env, secret = tmp_path / ".env", tmp_path / "k8s" / "voicebus-secrets.yaml"
    args = ["secrets", "init", "--env-file", str(env), "--k8s-secret", str(secret), *extra]
    result = CliRunner().invoke(app, args)
    return result.exit_code, result.output, env, secret


def _required_secret_variables() -> set[str]:
    """Variables of SecretStr settings whose development default production refuses.

    An empty default is an optional account credential (Exotel's API token: set only to
    dial through Exotel), not a placeholder standing in for a required secret.
    """
    names: set[str] = set()
    for cls in _SECRET_SETTINGS:
        prefix = str(cls.model_config.get("env_prefix", ""))
        for field, info in cls.model_fields.items():
            default = info.default
            value = default.get_secret_value() if isinstance(default, SecretStr) else ""
            if value and is_placeholder_secret(value):
                names.add(f"{prefix}{field}".upper())
    return names


def test_files_hold_every_secret_strong_and_private(tmp_path: Path) -> None:
    code, output, env, secret = _init(tmp_path, "--public-url", "https://voice.example.com")
    assert code == 0, output
    values = _dotenv(env)
    names = [spec.name for spec in SECRETS]
    secrets = [values[name] for name in names]
    assert len(set(secrets)) == len(secrets)  # no two secrets share a value
    for spec in SECRETS:
        value = values[spec.name]
        assert not is_placeholder_secret(value)
        assert len(value) >= (44 if spec.kind is SecretKind.FERNET else 43), spec.name
    assert values["VB_GATEWAY_PUBLIC_URL"] == "https://voice.example.com"
    # The owners of data check the edge's signatures with the public half of its key.
    assert values[PUBLIC_KEY] == public_key_of(values["VB_RPC_TENANT_SIGNING_KEY"])
    for path in (env, secret):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600

    manifest = yaml.safe_load(secret.read_text())
    assert (manifest["kind"], manifest["metadata"]["name"]) == ("Secret", "voicebus-secrets")
    data = manifest["stringData"]
    assert {name: data[name] for name in names} == {name: values[name] for name in names}
    assert data[PUBLIC_KEY] == values[PUBLIC_KEY]
    password = values["VB_POSTGRES_PASSWORD"]
    assert data["VB_DATABASE_URL"] == (
        f"postgresql://voicebus:{password}@voicebus-db-rw.voicebus.svc:5432/voicebus"
    )


def test_existing_files_are_never_overwritten_without_force(tmp_path: Path) -> None:
    assert _init(tmp_path)[0] == 0
    first = _dotenv(tmp_path / ".env")
    code, output, env, _ = _init(tmp_path)
    assert code == 1
    assert "refusing to overwrite" in output
    assert _dotenv(env) == first
    code, _, env, _ = _init(tmp_path, "--force")
    assert code == 0
    assert _dotenv(env)["VB_EDGE_ADMIN_TOKEN"] != first["VB_EDGE_ADMIN_TOKEN"]


def test_the_list_covers_every_secret_production_refuses() -> None:
    assert _required_secret_variables() <= {spec.name for spec in SECRETS}


def test_services_start_their_settings_in_production_with_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert _init(tmp_path)[0] == 0
    values = _dotenv(tmp_path / ".env")
    monkeypatch.setenv("VB_ENVIRONMENT", "production")
    with pytest.raises(ValueError, match="VB_GATEWAY_TWILIO_AUTH_TOKEN"):
        GatewaySettings()  # without them: refused, naming the variable
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    GatewaySettings()
    EdgeSettings()
    OrchestratorSettings()
    PlivoSettings().checked(Environment.PRODUCTION)
    VobizSettings().checked(Environment.PRODUCTION)
    ExotelSettings().checked(Environment.PRODUCTION)
