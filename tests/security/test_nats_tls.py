"""NATS over TLS (``voicebus nats-config --tls``), against a real nats-server requiring it.

Each of a service's three kinds of connection (the raw client, FastStream's broker and the
audio frame publisher) verifies the server against ``VB_NATS_TLS_CA`` and then works; a
client without TLS, or trusting another CA, is refused.
"""

from __future__ import annotations

import asyncio
import ssl
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import nats
import pytest
from typer.testing import CliRunner

from voicebus.contracts import subjects
from voicebus.contracts.ids import new_id
from voicebus.devkit.cli import app
from voicebus.devkit.embedded_nats import EmbeddedNats
from voicebus.devkit.nats_accounts import NatsAccounts
from voicebus.devkit.nats_tls import TlsFiles, write_tls
from voicebus.runtime.broker import build_broker
from voicebus.runtime.bus import connect
from voicebus.runtime.frames import FramePublisher
from voicebus.runtime.settings import ServiceSettings
from voicebus.runtime.telemetry import create_tracer_provider

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


class _Media(ServiceSettings):
    service_name: ClassVar[str] = "media"


class _Gateway(ServiceSettings):
    service_name: ClassVar[str] = "gateway"


@pytest.fixture(scope="module")
def config_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("nats-config")
    args = ["nats-config", str(out), "--tls", "--host", "localhost", "--host", "127.0.0.1"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="module")
def server(config_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedNats]:
    accounts = NatsAccounts.generate()
    tls = TlsFiles(*(config_dir / "tls" / n for n in ("ca.pem", "server-cert.pem",
                                                      "server-key.pem")))  # fmt: skip
    config = {**accounts.server_config(), "tls": tls.server_block()}
    data = tmp_path_factory.mktemp("nats-tls")
    with EmbeddedNats(data_dir=data, extra_config=config) as embedded:
        embedded.accounts = accounts  # type: ignore[attr-defined]  # for the tests below
        yield embedded


def _settings(kind: type[ServiceSettings], server: EmbeddedNats, ca: Path) -> ServiceSettings:
    accounts: NatsAccounts = server.accounts  # type: ignore[attr-defined]
    name = kind.service_name
    return kind(
        nats_url=f"tls://127.0.0.1:{server.port}",
        nats_user=name,
        nats_password=accounts.passwords[name],
        nats_tls_ca=ca,
    )


def test_the_written_files_are_the_owners_only(config_dir: Path) -> None:
    for name in ("ca.pem", "server-cert.pem", "server-key.pem"):
        mode = (config_dir / "tls" / name).stat().st_mode
        assert stat.S_IMODE(mode) == 0o600, name
    assert '"cert_file"' in (config_dir / "tls.conf").read_text()


async def test_raw_client_broker_and_frame_publisher_speak_tls(
    server: EmbeddedNats, config_dir: Path
) -> None:
    ca = config_dir / "tls" / "ca.pem"
    gateway = await connect(_settings(_Gateway, server, ca), name="tls-test-gateway")
    call_id = new_id()
    heard: asyncio.Queue[bytes] = asyncio.Queue()

    async def on_frame(msg: nats.aio.msg.Msg) -> None:
        await heard.put(msg.data)

    await gateway.subscribe(subjects.audio_out(call_id), cb=on_frame)
    await gateway.flush()
    media = _settings(_Media, server, ca)
    frames = FramePublisher(media, name="tls-test-frames")
    await frames.start()
    broker = build_broker(media, hot_path=True, tracer_provider=create_tracer_provider(media))
    await broker.connect()
    try:
        assert frames.publish(subjects.audio_out(call_id).encode(), b"NATS/1.0\r\n\r\n", b"pcm")
        assert await asyncio.wait_for(heard.get(), 10) == b"pcm"
        await broker.publish(b"pcm2", subjects.audio_out(call_id))
        assert await asyncio.wait_for(heard.get(), 10) == b"pcm2"
    finally:
        await broker.stop()
        await frames.close()
        await gateway.close()


async def test_a_client_without_tls_or_trusting_another_ca_is_refused(
    server: EmbeddedNats, tmp_path: Path
) -> None:
    accounts: NatsAccounts = server.accounts  # type: ignore[attr-defined]
    login = {"user": "media", "password": accounts.passwords["media"]}
    plain = f"nats://127.0.0.1:{server.port}"
    with pytest.raises((ssl.SSLError, nats.errors.NoServersError, OSError)):
        await nats.connect(plain, allow_reconnect=False, max_reconnect_attempts=0,
                           connect_timeout=5, **login)  # fmt: skip
    other = write_tls(tmp_path / "other", ["127.0.0.1"])
    context = ssl.create_default_context(cafile=other.ca)
    with pytest.raises((ssl.SSLError, nats.errors.NoServersError, OSError)):
        await nats.connect(f"tls://127.0.0.1:{server.port}", tls=context, allow_reconnect=False,
                           max_reconnect_attempts=0, connect_timeout=5, **login)  # fmt: skip
