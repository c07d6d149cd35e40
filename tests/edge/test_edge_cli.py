"""``voicebus tenant`` and ``voicebus key`` against a running edge."""

from __future__ import annotations

import httpx
import pytest
from edge_stack import ADMIN, EdgeStack
from typer.testing import CliRunner

from voicebus.devkit.cli import app

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]


def test_tenant_and_key_lifecycle_from_the_command_line(edge: EdgeStack) -> None:
    runner = CliRunner()
    common = ["--url", edge.base_url.removesuffix("/api/v1"), "--admin-token", ADMIN]

    created = runner.invoke(app, ["tenant", "create", "clitenant", "--name", "CLI", *common])
    assert created.exit_code == 0, created.output
    again = runner.invoke(app, ["tenant", "create", "clitenant", *common])
    assert again.exit_code == 1
    assert "409" in again.output

    key = runner.invoke(app, ["key", "create", "clitenant", "--scope", "admin", *common])
    assert key.exit_code == 0, key.output
    token = key.stdout.strip().splitlines()[-1]
    assert token.startswith("vb_")
    auth = {"Authorization": f"Bearer {token}"}
    assert httpx.get(f"{edge.base_url}/tenants/clitenant", headers=auth).status_code == 200

    key_id = token.split("_")[1]
    listed = runner.invoke(app, ["key", "list", "clitenant", *common])
    assert key_id in listed.output
    assert token not in listed.output
    revoked = runner.invoke(app, ["key", "revoke", "clitenant", key_id, *common])
    assert revoked.exit_code == 0, revoked.output
    assert httpx.get(f"{edge.base_url}/tenants/clitenant", headers=auth).status_code == 401

    wrong = runner.invoke(app, ["tenant", "list", "--url", common[1], "--admin-token", "nope"])
    assert wrong.exit_code == 1
    assert "401" in wrong.output
