"""Production-mode smoke test: the shipped deploy files complete a call.

Each service runs as its own process with exactly the environment a deploy file gives it,
parsed from that file, never retyped: ``compose.yaml`` with the ``.env`` that ``voicebus
secrets init`` writes, and separately ``kubectl kustomize infra/k8s`` (ConfigMap and
``env``) with the Secret that ``voicebus secrets init`` writes, each over the ``ENV`` of the
service's image (``infra/docker/Dockerfile``). Only the infrastructure is swapped for what
runs here: the NATS and PostgreSQL URLs (embedded servers: one NATS for compose, a
three-node JetStream cluster for Kubernetes, which asks for three replicas), listen hosts and
ports, the gateway's public URLs (where the simulated carrier reaches it), and the mounted
paths (the recordings volume, the agents directory). Services run with
``VB_ENVIRONMENT=production``: a missing or placeholder secret would stop them. The
compose NATS requires the users of ``infra/nats/accounts.conf`` with the passwords of the
``.env``, and the Kubernetes cluster the same users with the passwords of the Secret: each
service logs in as the user its deploy file names, held to its allow-list, and no server
logs a permission violation.

Before any service starts, the schema migration runs as the deploy file runs it: compose's
one-shot ``migrate`` service, and the ``migrate`` init container of each Kubernetes
Deployment (services refuse an unmigrated schema). The orchestrator imports the agents at
start; a simulated Twilio caller then phones the
``demo-scripted`` agent through the real signed webhook and media WebSocket, and the
recorder must write a stereo recording of the call.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
import wave
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import nats
import numpy as np
import pytest
import yaml
from nats.js.api import ConsumerConfig, DeliverPolicy
from typer.testing import CliRunner

from tests.deploy.manifests import (
    ROOT,
    SERVICES,
    compose_environments,
    compose_migration,
    compose_mounts,
    image_env,
    k8s_environments,
    k8s_init_commands,
    read_dotenv,
    render_k8s,
)
from tests.deploy.processes import ServiceProcesses
from voicebus.contracts import subjects
from voicebus.contracts.events import CallEnded, CallEvent, RecordingReady, parse_event
from voicebus.contracts.permissions import OPERATOR
from voicebus.devkit.caller.session import TwilioCaller
from voicebus.devkit.cli import app as voicebus_cli
from voicebus.devkit.embedded_nats import EmbeddedNats
from voicebus.devkit.embedded_postgres import EmbeddedPostgres, create_database
from voicebus.devkit.nats_accounts import NatsAccounts
from voicebus.devkit.ports import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

AGENTS_DIR = ROOT / "agents"
"""What the orchestrator image copies to /app/agents and compose mounts there."""


async def _secrets(tmp_path: Path) -> tuple[dict[str, str], dict[str, Any]]:
    env_file, secret_file = tmp_path / ".env", tmp_path / "voicebus-secrets.yaml"
    args = ["secrets", "init", "--env-file", str(env_file), "--k8s-secret", str(secret_file)]
    result = CliRunner().invoke(voicebus_cli, args)
    assert result.exit_code == 0, result.output
    return read_dotenv(env_file), yaml.safe_load(secret_file.read_text())


def _with_host(url: str, host_port: str) -> str:
    """``url`` with its host and port replaced, user, password, path and scheme kept."""
    parts = urlsplit(url)
    userinfo = parts.netloc.rpartition("@")[0]
    netloc = f"{userinfo}@{host_port}" if userinfo else host_port
    return urlunsplit(parts._replace(netloc=netloc))


def localize(
    name: str,
    env: Mapping[str, str],
    *,
    nats_url: str,
    postgres: str,
    mounts: Mapping[str, Path],
) -> dict[str, str]:
    """Swap only infrastructure addresses, listen ports and mounted paths in ``env``."""
    out = dict(env)
    prefix = f"VB_{name.upper()}_"
    out["VB_NATS_URL"] = nats_url
    if "VB_DATABASE_URL" in out:
        out["VB_DATABASE_URL"] = _with_host(out["VB_DATABASE_URL"], postgres)
    out[f"{prefix}HTTP_HOST"] = "127.0.0.1"
    out[f"{prefix}HTTP_PORT"] = str(free_port())
    if name == "gateway":
        ws_port = free_port()
        out["VB_GATEWAY_WS_PORT"] = str(ws_port)
        out["VB_GATEWAY_PUBLIC_URL"] = f"http://127.0.0.1:{out['VB_GATEWAY_HTTP_PORT']}"
        if out.get("VB_GATEWAY_PUBLIC_WS_URL"):
            out["VB_GATEWAY_PUBLIC_WS_URL"] = f"ws://127.0.0.1:{ws_port}"
    for key, value in out.items():
        if value in mounts:
            out[key] = str(mounts[value])
    return out


async def _events_of(nats_url: str, call_id: str) -> list[CallEvent]:
    nc = await nats.connect(nats_url)
    events: list[CallEvent] = []
    try:
        sub = await nc.jetstream().subscribe(
            subjects.evt_filter(call_id=call_id),
            ordered_consumer=True,
            config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL),
        )
        while True:
            try:
                msg = await sub.next_msg(timeout=2.0)
            except nats.errors.TimeoutError:
                break
            events.append(parse_event(msg.data))
        await sub.unsubscribe()
    finally:
        await nc.drain()
    return events


async def _wait_for_recording(nats_url: str, call_id: str) -> list[CallEvent]:
    async with asyncio.timeout(90):
        while True:
            events = await _events_of(nats_url, call_id)
            if any(isinstance(e, RecordingReady) for e in events):
                return events
            await asyncio.sleep(0.5)


async def _agents_in(database_url: str) -> set[str]:
    """The agents the orchestrator keeps in its schema."""
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            "SELECT name FROM orchestrator.resources WHERE kind = 'agent' AND NOT archived"
        )
    finally:
        await conn.close()
    return {row["name"] for row in rows}


async def _migrate(command: list[str], env: Mapping[str, str], postgres: str, home: Path) -> str:
    """Run a deploy file's migration command with its environment, as its image would."""
    process_env = {
        **env,
        "VB_DATABASE_URL": _with_host(env["VB_DATABASE_URL"], postgres),
        # The image's PATH starts with its venv's bin, where voicebus-migrate is.
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
        "HOME": str(home),
    }
    process = await asyncio.create_subprocess_exec(
        *command,
        env=process_env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        stdin=asyncio.subprocess.DEVNULL,
    )
    async with asyncio.timeout(120):
        output, _ = await process.communicate()
    text = output.decode(errors="replace")
    assert process.returncode == 0, text
    return text


async def _complete_a_call(
    environments: Mapping[str, Mapping[str, str]],
    *,
    nats_url: str,
    recordings: Path,
    home: Path,
) -> None:
    """Start every service with its environment, place a Twilio call, check its recording."""
    with (home / "services.log").open("w") as log:
        processes = ServiceProcesses(home, log)
        try:
            for name in SERVICES:
                await processes.start(name, environments[name])
            await processes.wait_ready(timeout=300)
            # The orchestrator imported every agent file it was given at start.
            agents = await _agents_in(environments["orchestrator"]["VB_DATABASE_URL"])
            assert {"demo", "demo-scripted"} <= agents
            gateway = environments["gateway"]
            token = gateway["VB_GATEWAY_TWILIO_AUTH_TOKEN"]
            url = processes.services["gateway"].url
            async with TwilioCaller(url, token, "demo-scripted", {"customer_name": "Ada"}) as call:
                call_id = call.call_id
                assert call_id is not None
                assert await call.wait_for_agent_silence(quiet_ms=1200, timeout=90)  # greeting
                first = await call.say_text("Hi, where is my order 1234?")
                assert await call.wait_for_agent_silence(quiet_ms=1200, timeout=90)
                await call.say_text("Thanks, bye.")
                assert await call.wait_closed(timeout=90), "the agent did not hang up"
            result = await call.hang_up()
            assert result.protocol_errors == []
            assert first.first_agent_audio_ms is not None  # the agent answered the question

            events = await _wait_for_recording(nats_url, call_id)
        finally:
            await processes.stop()
    assert len([e for e in events if isinstance(e, CallEnded)]) == 1
    recording = next(e for e in events if isinstance(e, RecordingReady))
    path = recordings / recording.data.uri.removeprefix("file:")
    with wave.open(str(path)) as wav:
        assert wav.getnchannels() == 2
        frames = wav.readframes(wav.getnframes())
    stereo = np.frombuffer(frames, "<i2").reshape(-1, 2).astype(np.float64)
    caller, agent = np.sqrt((stereo**2).mean(axis=0))
    assert caller > 100
    assert agent > 100


@pytest.fixture
async def postgres(tmp_path: Path) -> AsyncIterator[EmbeddedPostgres]:
    """PostgreSQL with the role and database the deploy files name (voicebus/voicebus).

    Trust authentication: the generated password in the deploy files' URL is sent and
    accepted as it is.
    """
    server = EmbeddedPostgres(user="voicebus", data_dir=tmp_path / "postgres")
    await asyncio.to_thread(server.start)
    try:
        await create_database(server.url, "voicebus")
        yield server
    finally:
        await asyncio.to_thread(server.stop)


def _no_placeholder_hosts(environments: Mapping[str, Mapping[str, str]], hosts: list[str]) -> None:
    """Nothing still points at the deploy file's own infrastructure names."""
    for name, env in environments.items():
        for key, value in env.items():
            for host in hosts:
                assert not re.search(rf"//([^/@]*@)?{re.escape(host)}[:/]", value), (name, key)


async def test_compose_environment_completes_a_call(
    tmp_path: Path,
    postgres: EmbeddedPostgres,
    embedded_nats_factory: Callable[..., EmbeddedNats],
) -> None:
    variables, _ = await _secrets(tmp_path)
    accounts = NatsAccounts.from_variables(variables)
    nats_server = embedded_nats_factory(sync_always=True, extra_config=accounts.server_config())
    operator_url = accounts.url_for(OPERATOR, nats_server.url)
    composed = compose_environments(variables)
    # Volumes as compose.yaml mounts them: the named recordings volume, and ./agents.
    mounts = compose_mounts(tmp_path / "volumes")
    recordings = mounts[composed["recorder"]["VB_RECORDER_DIR"]]
    environments = {
        name: localize(
            name,
            {**image_env(name), **composed[name]},
            nats_url=nats_server.url,
            postgres=f"127.0.0.1:{postgres.port}",
            mounts=mounts,
        )
        for name in SERVICES
    }
    assert all(env["VB_ENVIRONMENT"] == "production" for env in environments.values())
    assert environments["orchestrator"]["VB_ORCHESTRATOR_AGENTS_DIR"] == str(AGENTS_DIR)
    _no_placeholder_hosts(environments, ["nats", "postgres"])
    command, env = compose_migration(variables)
    output = await _migrate(command, env, f"127.0.0.1:{postgres.port}", tmp_path)
    # Every schema a service owns, from empty to head.
    assert len(re.findall(r"^\w+: empty -> \d{4}$", output, re.MULTILINE)) == 4, output
    assert {environments[n]["VB_NATS_USER"] for n in SERVICES} == set(SERVICES)
    await _complete_a_call(
        environments, nats_url=operator_url, recordings=recordings, home=tmp_path
    )
    assert _violations([nats_server]) == []


def _violations(servers: list[EmbeddedNats]) -> list[str]:
    """Lines where a server logged a user doing what its allow-list does not grant."""
    return [
        line
        for server in servers
        for line in server.log_path.read_text(encoding="utf-8", errors="replace").splitlines()
        if "Violation" in line
    ]


async def _nats_cluster(
    factory: Callable[..., EmbeddedNats], size: int, accounts: NatsAccounts
) -> list[EmbeddedNats]:
    """``size`` clustered servers, each requiring the services' users as the shipped files do."""
    routes = [free_port() for _ in range(size)]
    servers = await asyncio.gather(
        *(
            asyncio.to_thread(
                factory,
                sync_always=True,
                extra_config={
                    **accounts.server_config(),
                    "cluster": {
                        "name": "voicebus-smoke",
                        "listen": f"127.0.0.1:{port}",
                        "routes": [f"nats://127.0.0.1:{p}" for p in routes if p != port],
                    },
                },
            )
            for port in routes
        )
    )
    nc = await nats.connect(servers=[accounts.url_for(OPERATOR, s.url) for s in servers])
    try:
        async with asyncio.timeout(60):
            while True:  # until the cluster has elected its JetStream meta leader
                try:
                    await nc.jetstream().account_info()
                    break
                except (nats.errors.Error, TimeoutError):
                    await asyncio.sleep(0.2)
    finally:
        await nc.drain()
    return servers


async def test_k8s_environment_completes_a_call_on_a_three_node_jetstream(
    tmp_path: Path,
    postgres: EmbeddedPostgres,
    embedded_nats_factory: Callable[..., EmbeddedNats],
) -> None:
    _, secret = await _secrets(tmp_path)
    rendered = k8s_environments(render_k8s(), secret)
    assert rendered["media"]["VB_JETSTREAM_REPLICAS"] == "3"
    # The NATS servers take their users' passwords from the same Secret as the Deployments.
    accounts = NatsAccounts.from_variables(secret["stringData"])
    cluster = await _nats_cluster(embedded_nats_factory, 3, accounts)
    operator_url = accounts.url_for(OPERATOR, cluster[0].url)
    nats_url = ",".join(s.url for s in cluster)
    recordings = tmp_path / "recordings"
    recordings.mkdir()
    # The recorder's PersistentVolumeClaim, and the agents the orchestrator image carries.
    mounts = {"/recordings": recordings, "/app/agents": AGENTS_DIR}
    environments = {
        name: localize(
            name,
            {**image_env(name), **rendered[name]},
            nats_url=nats_url,
            postgres=f"127.0.0.1:{postgres.port}",
            mounts=mounts,
        )
        for name in SERVICES
    }
    _no_placeholder_hosts(
        environments, ["nats.nats.svc.cluster.local", "voicebus-db-rw.voicebus.svc"]
    )
    migrated = []
    for name, inits in k8s_init_commands(render_k8s(), secret).items():
        for command, env in inits:
            output = await _migrate(command, env, f"127.0.0.1:{postgres.port}", tmp_path)
            # Its result line (the log lines around it are JSON).
            migrated += [(name, m) for m in re.findall(r"^(\w+): empty -> \d{4}$", output, re.M)]
    assert sorted(migrated) == [(n, n) for n in ("audit", "campaigns", "edge", "orchestrator")]
    assert {environments[n]["VB_NATS_USER"] for n in SERVICES} == set(SERVICES)
    await _complete_a_call(
        environments, nats_url=operator_url, recordings=recordings, home=tmp_path
    )
    assert _violations(cluster) == []
    # Every stream and KV bucket the services provisioned runs on all three servers.
    nc = await nats.connect(operator_url)
    try:
        infos = await nc.jetstream().streams_info()
    finally:
        await nc.drain()
    assert infos
    assert {info.config.name: info.config.num_replicas for info in infos} == {
        info.config.name: 3 for info in infos
    }
