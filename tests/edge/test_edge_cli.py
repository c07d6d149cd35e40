"""The operator command against a running edge: tenants and keys with the operator token;
agents, campaigns, calls and the live feed with a tenant's API key; one clear line and a
non-zero exit, within the timeout, when NATS behind the edge is down."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from edge_stack import ADMIN, EdgeStack
from typer.testing import CliRunner

from voicebus.cli.main import operator_app
from voicebus.devkit.cli import app
from voicebus.devkit.embedded_nats import EmbeddedNats

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

AGENT = """name: CLI agent
system_prompt: You help.
llm: {engine: scripted}
"""


@pytest.fixture(scope="module")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedNats]:
    """The stack's private nats-server, which the last test stops and starts again."""
    with EmbeddedNats(data_dir=tmp_path_factory.mktemp("cli-nats")) as server:
        yield server


@pytest.fixture(scope="module")
def edge(
    nats_server: EmbeddedNats, postgres_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[EdgeStack]:
    """The edge stack of ``conftest``, on a server this module can stop."""
    stack = EdgeStack(nats_server.url, postgres_url, tmp_path_factory.mktemp("cli-edge"))
    stack.start()
    try:
        yield stack
    finally:
        stack.stop()


@pytest.fixture(scope="module")
def tenant_key(edge: EdgeStack) -> str:
    """An admin-scoped key of tenant ``clicorp``."""
    auth = {"Authorization": f"Bearer {ADMIN}"}
    with httpx.Client(base_url=edge.base_url, headers=auth, timeout=30) as http:
        http.post("/tenants", json={"tenant_id": "clicorp", "name": "CLI Corp"})
        key = http.post("/tenants/clicorp/keys", json={"name": "cli", "scopes": ["admin"]})
        assert key.status_code == 201, key.text
        return str(key.json()["token"])


def _voicebus(edge: EdgeStack, key: str, *args: str, timeout: float = 10) -> tuple[int, str, str]:
    """The operator's commands (the slim package's app), with the key's tenant."""
    url = edge.base_url.removesuffix("/api/v1")
    result = CliRunner().invoke(
        operator_app(), [*args, "--url", url, "--api-key", key, "--timeout", str(timeout)]
    )
    return result.exit_code, result.stdout, result.stderr


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


def test_agents_import_once_and_export_what_was_imported(
    edge: EdgeStack, tenant_key: str, tmp_path: Path
) -> None:
    agent = tmp_path / "cli-agent.yaml"
    agent.write_text(AGENT)
    code, out, err = _voicebus(edge, tenant_key, "agent", "import", str(agent))
    assert code == 0, err
    assert "cli-agent: version 1" in out
    code, out, err = _voicebus(edge, tenant_key, "agent", "import", str(agent))
    assert code == 0, err
    assert out.strip() == "cli-agent: version 1 (unchanged)"
    agent.write_text(AGENT.replace("You help.", "You help, briefly."))
    code, out, err = _voicebus(edge, tenant_key, "agent", "import", str(agent))
    assert "cli-agent: version 2" in out, err
    code, out, err = _voicebus(edge, tenant_key, "agent", "export", "cli-agent")
    assert code == 0, err
    assert "You help, briefly." in out
    code, out, err = _voicebus(edge, tenant_key, "agent", "export", "cli-agent", "--version", "1")
    assert "You help." in out, err
    assert "briefly" not in out


def test_a_campaign_from_the_command_line(edge: EdgeStack, tenant_key: str, tmp_path: Path) -> None:
    spec = tmp_path / "campaign.yaml"
    spec.write_text(
        "name: cli\nagent_id: demo\ncaller_ids: ['+442079460999']\nconcurrency: 1\n"
        "windows: {mon: [{start: '00:00', end: '23:59'}]}\n"
    )
    code, out, err = _voicebus(edge, tenant_key, "campaign", "create", "--spec", str(spec))
    assert code == 0, err
    campaign_id = out.strip().splitlines()[-1]
    contacts = tmp_path / "contacts.csv"
    contacts.write_text("phone,name\n+442079460001,Ada\n+442079460002,Bob\nnope,Cy\n")
    code, out, err = _voicebus(edge, tenant_key, "campaign", "upload", campaign_id, str(contacts))
    assert code == 0, err
    assert "loaded 2" in out
    assert "│ 4 " in out or "4 " in out.split("rejected rows", 1)[1]  # the bad row, by line
    code, out, err = _voicebus(edge, tenant_key, "campaign", "dnc", "add", "+442079460002",
                               "--campaign", campaign_id)  # fmt: skip
    assert (code, out.strip()) == (0, "added 1"), err
    code, out, err = _voicebus(edge, tenant_key, "campaign", "status", campaign_id)
    assert code == 0, err
    assert "total" in out
    assert "2" in out
    code, out, err = _voicebus(edge, tenant_key, "campaign", "cancel", campaign_id)
    assert code == 0, err
    assert "cancelled" in out
    code, out, err = _voicebus(edge, tenant_key, "campaign", "start", campaign_id)
    assert code == 1
    assert err.strip().startswith("409"), err  # one line: status, code, message
    assert len(err.strip().splitlines()) == 1
    code, out, err = _voicebus(edge, tenant_key, "campaign", "report", campaign_id)
    assert code == 0, err
    assert out.splitlines()[0].startswith("contact_id") or "phone" in out.splitlines()[0]
    assert "+442079460001" in out


def test_calls_and_the_live_feed_need_the_tenants_key(edge: EdgeStack, tenant_key: str) -> None:
    code, out, err = _voicebus(edge, tenant_key, "calls", "list")
    assert code == 0, err
    assert "direction" in out  # the (empty) table of the tenant's calls
    code, _, err = _voicebus(edge, "vb_nope_nope", "calls", "list")
    assert code == 1
    assert err.startswith("401"), err
    code, _out, err = _voicebus(edge, tenant_key, "events", "tail", "--for", "1")
    assert code == 0, err  # the feed opened, nothing happened, it ended on time


def test_with_nats_down_one_line_and_a_failure_within_the_timeout(
    edge: EdgeStack, tenant_key: str, nats_server: EmbeddedNats
) -> None:
    nats_server.stop()
    try:  # the test's own timeout fails it if the command hangs
        code, _out, err = _voicebus(edge, tenant_key, "calls", "list", timeout=8)
    finally:
        nats_server.restart()
    assert code == 1
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith("503"), err


def test_with_the_edge_down_one_line_and_a_failure() -> None:
    """The installed command itself, in its own process, as an operator runs it."""
    code, _out, err = _voicebus_at("http://127.0.0.1:9", "calls", "list")
    assert code == 1
    assert err.strip() == "cannot reach the edge at http://127.0.0.1:9: ConnectError"


def _voicebus_at(url: str, *args: str) -> tuple[int, str, str]:
    done = subprocess.run(
        [sys.executable, "-m", "voicebus.cli", *args, "--url", url, "--api-key", "k"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    return done.returncode, done.stdout, done.stderr
