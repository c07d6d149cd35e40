"""The supervision WebSocket with fakes: who may open it, and what the page's messages become."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import pytest
from edge_fakes import OPERATOR, READ_ONLY_KEY, TENANT_KEY, FakeBus, FakeFeed, FixedKeys
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from voicebus.contracts.audio import decode_frame, encode_headers
from voicebus.contracts.events import Envelope
from voicebus.contracts.rpc import CALLS_GET, CallReply, CallSummary, GetCall
from voicebus.edge.api import Edge, install_api
from voicebus.edge.api.bus import Owners
from voicebus.edge.tenancy.credentials import CredentialCipher, fernet_keys
from voicebus.edge.tenancy.store import TenantStore

pytestmark = pytest.mark.component

HOST = "testserver"
URL = "/api/v1/calls/c1/supervise"


@dataclass
class FakeMsg:
    data: bytes
    headers: dict[str, str] | None


@dataclass
class FakeLiveAudio:
    """Records subscriptions, spoken frames and stored events."""

    listeners: dict[str, Callable[[FakeMsg], Awaitable[None]]] = field(default_factory=dict)
    spoken: list[tuple[str, bytes, dict[str, str]]] = field(default_factory=list)
    events: list[Envelope] = field(default_factory=list)

    async def listen(self, subject: str, cb: Callable[[FakeMsg], Awaitable[None]]) -> FakeLiveAudio:
        self.listeners[subject] = cb
        return self

    async def unsubscribe(self, limit: int = 0) -> None:
        self.listeners.clear()

    async def speak(self, subject: str, pcm: bytes, headers: dict[str, str]) -> None:
        self.spoken.append((subject, pcm, headers))

    async def record(self, event: Envelope) -> None:
        self.events.append(event)


def calls_of(tenant: str) -> Callable[[bytes], bytes]:
    def answer(payload: bytes) -> bytes:
        asked = GetCall.model_validate_json(payload)
        if asked.tenant_id != tenant:
            return b'{"ok": false, "error": {"status": 404, "code": "not_found", "message": "no"}}'
        call = CallSummary(call_id=asked.call_id, status="in_progress")
        return CallReply(ok=True, call=call).model_dump_json().encode()

    return answer


@pytest.fixture
def live() -> FakeLiveAudio:
    return FakeLiveAudio()


def client_for(live: FakeLiveAudio, tenant: str = "acme") -> TestClient:
    bus = FakeBus()
    bus.handlers[CALLS_GET] = calls_of(tenant)
    store = TenantStore(CredentialCipher(fernet_keys("dev-secret")))
    edge = Edge(
        store=store,
        auth=FixedKeys(store, OPERATOR, operator_rate_limit=100),
        owners=Owners(bus, timeout_s=0.5),
        providers=frozenset({"twilio"}),
        source="edge/test",
        default_rate_limit=100,
        feed=FakeFeed(),
        live_audio=live,
    )
    app = FastAPI()
    install_api(app, edge)
    return TestClient(app)


def log_in(client: TestClient, key: str = TENANT_KEY) -> str:
    response = client.post("/api/v1/session", json={"api_key": key})
    assert response.status_code == 200, response.text
    csrf: str = response.json()["csrf_token"]
    return csrf


def refusal(client: TestClient, csrf: str, origin: str = f"http://{HOST}") -> int:
    with client.websocket_connect(URL, headers={"origin": origin}) as ws:
        ws.send_text(json.dumps({"type": "hello", "csrf": csrf}))
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_text()
    return closed.value.code


def test_another_origin_a_wrong_token_a_read_only_key_and_another_tenants_call_are_refused(
    live: FakeLiveAudio,
) -> None:
    client = client_for(live)
    csrf = log_in(client)
    assert refusal(client, csrf, origin="http://evil.example") == 4403
    assert refusal(client, "x" * 32) == 4403
    assert refusal(client_for(live), csrf) == 4401  # no session cookie
    other = client_for(live, tenant="globex")
    assert refusal(other, log_in(other)) == 4404  # not the session's tenant's call
    read_only = client_for(live)
    assert refusal(read_only, log_in(read_only, READ_ONLY_KEY)) == 4403
    assert live.events == []  # nothing was recorded for a refused socket


def test_listen_whisper_take_over_speak_and_close(live: FakeLiveAudio) -> None:
    with client_for(live) as client:
        csrf = log_in(client)
        with client.websocket_connect(URL, headers={"origin": f"http://{HOST}"}) as ws:
            ws.send_text(json.dumps({"type": "hello", "csrf": csrf}))
            assert json.loads(ws.receive_text()) == {"type": "ready"}
            ws.send_text(json.dumps({"type": "take_over"}))
            assert "no audio of the call" in json.loads(ws.receive_text())["message"]

            assert client.portal is not None
            caller = client.portal.call
            pcm = b"\x01\x00" * 160
            caller(live.listeners["vb.audio.c1.in"], FakeMsg(pcm, encode_headers(8000, 0, 0)))
            assert json.loads(ws.receive_text()) == {"type": "format", "sample_rate": 8000}
            assert ws.receive_bytes() == b"\x00" + pcm

            ws.send_text(json.dumps({"type": "whisper", "note": "Offer 10% off."}))
            assert json.loads(ws.receive_text())["event"] == "supervision.whispered.v1"
            ws.send_text(json.dumps({"type": "take_over"}))
            assert json.loads(ws.receive_text())["event"] == "supervision.taken_over.v1"
            ws.send_bytes(pcm)
            ws.send_text(json.dumps({"type": "said", "text": "Sam here."}))
            assert json.loads(ws.receive_text())["event"] == "supervision.human_said.v1"
        ((subject, sent, headers),) = live.spoken
        frame = decode_frame(sent, headers)
        assert subject == "vb.audio.c1.out"
        assert (frame.sample_rate, frame.utterance_id) == (8000, live.events[2].data.utterance_id)  # type: ignore[attr-defined]
        assert [e.type for e in live.events] == [  # type: ignore[attr-defined]
            "supervision.started.v1",
            "supervision.whispered.v1",
            "supervision.taken_over.v1",
            "supervision.human_said.v1",
            "supervision.handed_back.v1",  # closing the page while holding hands the call back
            "supervision.ended.v1",
        ]
        assert {e.data.operator for e in live.events} == {TENANT_KEY[3:15]}  # type: ignore[attr-defined]
        assert {(e.tenant_id, e.call_id) for e in live.events} == {("acme", "c1")}
