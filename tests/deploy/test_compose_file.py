"""compose.yaml: every secret required, the drain within the stop grace period."""

from __future__ import annotations

import pytest

from tests.deploy.manifests import (
    ManifestError,
    compose_environments,
    compose_migration,
    compose_service,
)
from voicebus.devkit.deploy_secrets import PUBLIC_KEY, SECRETS

pytestmark = pytest.mark.unit


def _values() -> dict[str, str]:
    """A value for every variable ``voicebus secrets init`` writes."""
    return {spec.name: "x" * 40 for spec in SECRETS} | {PUBLIC_KEY: "y" * 43}


def _seconds(duration: str) -> float:
    assert duration.endswith("s"), duration
    return float(duration[:-1])


def test_compose_refuses_to_start_without_each_secret() -> None:
    values = _values()
    values["VB_GATEWAY_PUBLIC_URL"] = "https://voice.example.com"
    compose_environments(values)  # every variable given: fine
    for name in [spec.name for spec in SECRETS] + [PUBLIC_KEY]:
        missing = {k: v for k, v in values.items() if k != name}
        with pytest.raises(ManifestError, match=name):
            compose_environments(missing)


def test_the_stop_grace_period_covers_the_call_drain() -> None:
    values = _values() | {"VB_GATEWAY_PUBLIC_URL": "http://h"}
    environments = compose_environments(values)
    for name in ("gateway", "media"):
        env = environments[name]
        drain = float(env[f"VB_{name.upper()}_DRAIN_TIMEOUT_S"])
        shutdown = float(env.get(f"VB_{name.upper()}_SHUTDOWN_TIMEOUT_S") or 15)
        assert _seconds(compose_service(name)["stop_grace_period"]) > drain + 2 * shutdown


def test_services_with_a_database_start_after_the_migration() -> None:
    values = _values() | {"VB_GATEWAY_PUBLIC_URL": "http://h"}
    environments = compose_environments(values)
    command, env = compose_migration(values)
    assert command == ["voicebus-migrate"]
    assert compose_service("migrate")["restart"] == "no"
    for name, service_env in environments.items():
        if "VB_DATABASE_URL" in service_env:
            assert service_env["VB_DATABASE_URL"] == env["VB_DATABASE_URL"], name
            condition = compose_service(name)["depends_on"]["migrate"]["condition"]
            assert condition == "service_completed_successfully", name
