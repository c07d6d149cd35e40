"""The REST recording route streams a recording from S3-compatible storage.

The edge, the recorder (with ``VB_RECORDER_S3_*``) and the other services on real NATS and
PostgreSQL; moto's S3 server is the object store. A recording stored under its key
``<tenant>/<yyyy>/<mm>/<call>.wav`` is served whole, in chunks, to its tenant only.
"""

from __future__ import annotations

import io
import wave
from collections.abc import Iterator
from pathlib import Path

import boto3
import httpx
import pytest
from moto.server import ThreadedMotoServer

from tests.edge.edge_stack import ADMIN, EdgeStack
from voicebus.contracts.ids import new_id
from voicebus.devkit.embedded_nats import EmbeddedNats
from voicebus.devkit.ports import free_port
from voicebus.recorder.archive import recording_key

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

BUCKET = "voicebus-recordings"
KEYS = {"aws_access_key_id": "test-key", "aws_secret_access_key": "test-secret"}


@pytest.fixture(scope="module")
def s3() -> Iterator[tuple[str, object]]:
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", **KEYS)
    client.create_bucket(Bucket=BUCKET)
    try:
        yield endpoint, client
    finally:
        server.stop()


@pytest.fixture(scope="module")
def edge(
    postgres_url: str, s3: tuple[str, object], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[EdgeStack]:
    root: Path = tmp_path_factory.mktemp("edge-s3")
    recorder = {
        "s3_bucket": BUCKET,
        "s3_endpoint_url": s3[0],
        "s3_access_key_id": KEYS["aws_access_key_id"],
        "s3_secret_access_key": KEYS["aws_secret_access_key"],
    }
    with EmbeddedNats(data_dir=root / "nats") as server:
        stack = EdgeStack(server.url, postgres_url, root, recorder=recorder)
        stack.start()
        try:
            yield stack
        finally:
            stack.stop()


def _key(http: httpx.Client, tenant: str) -> str:
    auth = {"Authorization": f"Bearer {ADMIN}"}
    created = http.post("/tenants", headers=auth, json={"tenant_id": tenant, "name": tenant})
    assert created.status_code in (201, 409), created.text
    key = http.post(
        f"/tenants/{tenant}/keys", headers=auth, json={"name": "s3", "scopes": ["admin"]}
    )
    assert key.status_code == 201, key.text
    token: str = key.json()["token"]
    return token


def _wav(seconds: float) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(2)
        wav.setsampwidth(2)
        wav.setframerate(8000)
        wav.writeframes(bytes(range(256)) * int(8000 * seconds * 4 / 256))
    return out.getvalue()


def test_the_recording_route_streams_from_the_bucket(
    edge: EdgeStack, s3: tuple[str, object]
) -> None:
    client = s3[1]
    call_id = new_id()
    audio = _wav(40.0)  # 1.28 MB: several chunks of the recorder's answer
    client.put_object(Bucket=BUCKET, Key=recording_key("acme", call_id), Body=audio)  # type: ignore[attr-defined]
    with edge.client() as http:
        acme, globex = _key(http, "acme"), _key(http, "globex")
        meta = http.get(f"/calls/{call_id}/recording", headers={"Authorization": f"Bearer {acme}"})
        assert meta.status_code == 200, meta.text
        assert meta.json()["uri"] == f"s3://{BUCKET}/{recording_key('acme', call_id)}"
        assert meta.json()["duration_s"] == 40.0
        assert meta.json()["bytes"] == len(audio)
        download = http.get(
            f"/calls/{call_id}/recording.wav", headers={"Authorization": f"Bearer {acme}"}
        )
        assert download.status_code == 200
        assert download.headers["content-type"] == "audio/wav"
        assert download.content == audio
        for path in (f"/calls/{call_id}/recording", f"/calls/{call_id}/recording.wav"):
            theirs = http.get(path, headers={"Authorization": f"Bearer {globex}"})
            assert theirs.status_code == 404
