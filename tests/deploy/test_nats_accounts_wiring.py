"""Every service logs in to NATS as its own user in the shipped deploy files.

``infra/nats/accounts.conf`` (compose's nats-server) and ``helm-accounts-values.yaml`` (the
NATS Helm chart) are generated from the permission contract and read each password from
the server's environment; ``voicebus secrets init`` makes the passwords; compose and the k8s
Deployments hand each service its user and password. A real nats-server loads the shipped
file with the passwords from a fresh ``.env``: each service's user gets in with its own
password and is held to its allow-list; a wrong password is refused.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nats
import nats.errors
import pytest
import yaml
from typer.testing import CliRunner

from tests.deploy.manifests import (
    K8S_DIR,
    ROOT,
    SERVICES,
    compose_environments,
    compose_service,
    k8s_environments,
    read_dotenv,
    render_k8s,
)
from voicebus.contracts import permissions
from voicebus.devkit.cli import app as voicebus_cli
from voicebus.devkit.embedded_nats import find_nats_server
from voicebus.devkit.nats_accounts import env_reference_config, helm_values, password_variable
from voicebus.devkit.ports import free_port

NATS_DIR = ROOT / "infra" / "nats"
USERS = (*permissions.SERVICES, permissions.OPERATOR)
REFERENCE = re.compile(r"\$(VB_NATS_PASSWORD_[A-Z0-9_]+)")


@pytest.fixture(scope="module")
def secrets(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, str], dict[str, Any]]:
    out = tmp_path_factory.mktemp("secrets")
    env_file, secret_file = out / ".env", out / "voicebus-secrets.yaml"
    args = ["secrets", "init", "--env-file", str(env_file), "--k8s-secret", str(secret_file)]
    result = CliRunner().invoke(voicebus_cli, args)
    assert result.exit_code == 0, result.output
    return read_dotenv(env_file), yaml.safe_load(secret_file.read_text())


@pytest.mark.unit
def test_shipped_files_are_what_the_contract_makes() -> None:
    regenerate = "run: voicebus nats-config --env-refs infra/nats"
    assert (NATS_DIR / "accounts.conf").read_text() == env_reference_config(), regenerate
    assert (NATS_DIR / "helm-accounts-values.yaml").read_text() == helm_values(), regenerate


@pytest.mark.unit
def test_compose_gives_nats_every_password_and_each_service_its_own(
    secrets: tuple[dict[str, str], dict[str, Any]],
) -> None:
    variables, _ = secrets
    referenced = set(REFERENCE.findall((NATS_DIR / "accounts.conf").read_text()))
    assert referenced == {password_variable(u) for u in USERS}
    server = compose_service("nats")
    assert "./infra/nats/accounts.conf:/etc/nats/accounts.conf:ro" in server["volumes"]
    assert server["command"][:2] == ["-c", "/etc/nats/accounts.conf"]
    assert set(server["environment"]) == referenced
    environments = compose_environments(variables)
    for name in SERVICES:
        env = environments[name]
        assert env["VB_NATS_USER"] == name
        assert env["VB_NATS_PASSWORD"] == variables[password_variable(name)]
    assert len({environments[n]["VB_NATS_PASSWORD"] for n in SERVICES}) == len(SERVICES)


@pytest.mark.unit
def test_k8s_deployments_and_the_helm_values_read_the_secrets(
    secrets: tuple[dict[str, str], dict[str, Any]],
) -> None:
    variables, secret = secrets
    environments = k8s_environments(render_k8s(K8S_DIR), secret)
    for name in SERVICES:
        assert environments[name]["VB_NATS_USER"] == name
        assert environments[name]["VB_NATS_PASSWORD"] == variables[password_variable(name)]
    helm = yaml.safe_load((NATS_DIR / "helm-accounts-values.yaml").read_text())
    env = helm["container"]["env"]
    assert set(env) == {password_variable(u) for u in USERS}
    assert all(v["valueFrom"]["secretKeyRef"]["key"] == k for k, v in env.items())
    users = helm["config"]["merge"]["accounts"]["VOICEBUS"]["users"]
    assert {u["user"]: u["password"] for u in users} == {
        u: f"<< ${password_variable(u)} >>" for u in USERS
    }


@pytest.fixture
def nats_with_shipped_accounts(
    tmp_path: Path, secrets: tuple[dict[str, str], dict[str, Any]]
) -> Iterator[str]:
    variables, _ = secrets
    port = free_port()
    env = {**os.environ, **{password_variable(u): variables[password_variable(u)] for u in USERS}}
    log = (tmp_path / "nats.log").open("w")
    server = subprocess.Popen(
        [str(find_nats_server()), "-c", str(NATS_DIR / "accounts.conf"), "-a", "127.0.0.1",
         "-p", str(port), "-js", "-sd", str(tmp_path / "js")],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        yield f"nats://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


async def _connect(url: str, user: str, password: str) -> nats.NATS:
    async with asyncio.timeout(60):  # the server may still be starting on a busy machine
        while True:
            try:
                return await nats.connect(
                    url, user=user, password=password, allow_reconnect=False,
                    max_reconnect_attempts=0, connect_timeout=5,
                )  # fmt: skip
            except (OSError, nats.errors.NoServersError):
                await asyncio.sleep(0.2)


@pytest.mark.integration
async def test_a_real_nats_server_takes_the_shipped_file(
    nats_with_shipped_accounts: str, secrets: tuple[dict[str, str], dict[str, Any]]
) -> None:
    variables, _ = secrets
    url = nats_with_shipped_accounts
    for user in USERS:
        nc = await _connect(url, user, variables[password_variable(user)])
        await nc.close()
    with pytest.raises(nats.errors.Error, match="Authorization Violation"):
        await _connect(url, "gateway", variables[password_variable("media")])
    # Held to its allow-list: the gateway may not subscribe to another service's commands.
    refused: list[str] = []

    async def on_error(exc: Exception) -> None:
        refused.append(str(exc))

    nc = await nats.connect(
        url, user="gateway", password=variables[password_variable("gateway")],
        error_cb=on_error, allow_reconnect=False,
    )  # fmt: skip
    try:
        await nc.subscribe("vb.rpc.audit.>")
        await nc.flush()
        async with asyncio.timeout(10):
            while not refused:
                await asyncio.sleep(0.05)
    finally:
        await nc.close()
    assert "permissions violation" in refused[0].lower()
    assert json.dumps(refused)  # the error names the subject, never a password
    assert all(variables[password_variable(u)] not in refused[0] for u in USERS)
