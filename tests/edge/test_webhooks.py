"""Outbound webhooks end to end: the edge's consumer of VB_EVENTS on real NATS and
PostgreSQL delivering to a local HTTP receiver.

The receiver is "down" (503) for its first requests, so deliveries are retried; every
event of every call still arrives signed, exactly once, and in the call's order, and
another tenant's events never arrive. A receiver that keeps failing turns a delivery
into a dead letter, which a redelivery on demand then delivers.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from edge_stack import ADMIN, EdgeStack
from webhooks_stack import WEBHOOK_SETTINGS, EdgeOnlyStack

from voicebus.contracts.events import (
    AgentReply,
    AgentReplyData,
    CallEnded,
    CallEndedData,
    CallStarted,
    CallStartedData,
    CampaignProgress,
    CampaignProgressData,
    Direction,
    EndReason,
    Envelope,
    RecordingReady,
    RecordingReadyData,
    TranscriptFinal,
    TranscriptFinalData,
)
from voicebus.contracts.ids import new_id
from voicebus.devkit.embedded_nats import EmbeddedNats
from voicebus.devkit.ports import free_port
from voicebus.edge.webhooks.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

MAX_ATTEMPTS = WEBHOOK_SETTINGS["webhooks_max_attempts"]
DOWN_FOR = 6  # the receiver's first requests fail: fewer than MAX_ATTEMPTS per delivery


@pytest.fixture(scope="module")
def edge(postgres_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[EdgeStack]:
    """The edge alone, webhooks to loopback allowed, retries in fractions of a second."""
    root = tmp_path_factory.mktemp("webhooks")
    with EmbeddedNats(data_dir=root / "nats") as server:
        stack = EdgeOnlyStack(server.url, postgres_url, root)
        stack.start()
        try:
            yield stack
        finally:
            stack.stop()


@dataclass
class Received:
    """One request the receiver accepted."""

    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def event_id(self) -> str:
        return self.headers["x-voicebus-event-id"]


@dataclass
class Receiver:
    """A local HTTP receiver: answers ``failures_left`` requests with 503 (or every request
    to a path in ``broken``), the others with 204, and keeps what it accepted."""

    failures_left: int = 0
    broken: set[str] = field(default_factory=set)
    accepted: list[Received] = field(default_factory=list)
    refused: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver.lock:
                    down = receiver.failures_left > 0 or self.path in receiver.broken
                    if down:
                        receiver.failures_left = max(receiver.failures_left - 1, 0)
                        receiver.refused += 1
                    else:
                        headers = {k.lower(): v for k, v in self.headers.items()}
                        receiver.accepted.append(Received(self.path, headers, body))
                self.send_response(503 if down else 204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_args: Any) -> None:
                pass

        return Handler

    def on(self, path: str) -> list[Received]:
        with self.lock:
            return [r for r in self.accepted if r.path == path]


@pytest.fixture(scope="module")
def receiver() -> Iterator[tuple[Receiver, str]]:
    state = Receiver()
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), state.handler())
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def admin_key(http: httpx.Client, tenant: str) -> str:
    created = http.post(
        "/tenants", headers=bearer(ADMIN), json={"tenant_id": tenant, "name": tenant}
    )
    assert created.status_code in (201, 409), created.text
    key = http.post(
        f"/tenants/{tenant}/keys", headers=bearer(ADMIN), json={"name": "e2e", "scopes": ["admin"]}
    )
    assert key.status_code == 201, key.text
    token: str = key.json()["token"]
    return token


def wait_until(check: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def call_events(tenant: str, call_id: str) -> list[Envelope]:
    """One call's events as the services publish them, in order."""
    src = "e2e/webhooks"
    started = CallStartedData(
        direction=Direction.INBOUND, provider="twilio", agent_id="demo", gateway_instance="gw-1"
    )
    said = TranscriptFinalData(utterance_id=new_id(), text="Where is my order?", start_ms=100,
                               end_ms=900)  # fmt: skip
    reply = AgentReplyData(turn_id="t1", utterance_id="a1", text="It shipped.")
    ended = CallEndedData(reason=EndReason.CALLER_HANGUP, duration_s=12.0)
    recorded = RecordingReadyData(recording_id=new_id(), uri=f"file:rec/{call_id}.wav",
                                  sample_rate=8000, duration_s=12.0, bytes=384_000,
                                  sha256="0" * 64)  # fmt: skip
    common: dict[str, Any] = {"tenant_id": tenant, "call_id": call_id, "source": src}
    return [
        CallStarted(**common, data=started),
        TranscriptFinal(**common, data=said),
        AgentReply(**common, data=reply),
        CallEnded(**common, data=ended),
        RecordingReady(**common, data=recorded),
    ]


def campaign_progress(tenant: str, campaign_id: str, status: str) -> CampaignProgress:
    data = CampaignProgressData(campaign_id=campaign_id, status=status, contacts=2,
                                by_state={"done": 2}, by_outcome={"answered": 2}, in_flight=0,
                                dialed=2)  # fmt: skip
    return CampaignProgress(tenant_id=tenant, call_id=campaign_id, source="e2e", data=data)


SUBSCRIBED = ("call.*", "transcript.final", "recording.ready.v1")
"""Every type of :func:`call_events` but agent.reply."""


def test_webhook_gets_each_call_event_signed_once_in_order_after_an_outage(
    edge: EdgeStack, receiver: tuple[Receiver, str]
) -> None:
    state, base = receiver
    with edge.client() as http:
        acme, globex = admin_key(http, "wh-acme"), admin_key(http, "wh-globex")
        made = http.post(
            "/webhooks",
            headers=bearer(acme),
            json={"url": f"{base}/acme", "event_types": [*SUBSCRIBED, "campaign.*"]},
        )
        assert made.status_code == 201, made.text
        hook = made.json()
        secret = hook["secret"]
        assert secret.startswith("whsec_")
        shown = http.get(f"/webhooks/{hook['webhook_id']}", headers=bearer(acme)).json()
        assert "secret" not in shown
        theirs = http.post(
            "/webhooks",
            headers=bearer(globex),
            json={"url": f"{base}/globex", "event_types": ["*"]},
        )
        assert theirs.status_code == 201, theirs.text
        # Another tenant sees neither the subscription nor its log.
        hidden = http.get(f"/webhooks/{hook['webhook_id']}/deliveries", headers=bearer(globex))
        assert hidden.status_code == 404

        with state.lock:
            state.failures_left = DOWN_FOR
        calls = [new_id() for _ in range(3)]
        first_half = [call_events("wh-acme", c)[:3] for c in calls]
        interleaved = [e for trio in zip(*first_half, strict=True) for e in trio]
        other = call_events("wh-globex", new_id())
        edge.run(edge.publish(*interleaved, *other))
        wait_until(lambda: state.refused >= DOWN_FOR, "the receiver to refuse requests")
        # Back up: the rest of each call, and a campaign's completion.
        rest = [e for c in calls for e in call_events("wh-acme", c)[3:]]
        done = campaign_progress("wh-acme", "cmp-1", "completed")
        edge.run(edge.publish(*rest, done))

        published = {c: [e for e in interleaved + rest if e.call_id == c] for c in calls}
        expected = {
            c: [e.id for e in events if e.type != AgentReply.model_fields["type"].default]
            for c, events in published.items()
        }
        total = sum(len(v) for v in expected.values()) + 1
        wait_until(lambda: len(state.on("/acme")) >= total, "every acme event")
        wait_until(lambda: len(state.on("/globex")) >= len(other), "every globex event")

        got = state.on("/acme")
        assert len(got) == total  # nothing twice
        for item in got:
            assert verify(secret, item.headers[SIGNATURE_HEADER.lower()], item.body,
                          int(time.time()))  # fmt: skip
            assert item.headers[TIMESTAMP_HEADER.lower()] in item.headers[SIGNATURE_HEADER.lower()]
            assert item.headers["x-voicebus-tenant"] == "wh-acme"
        for call_id, ids in expected.items():
            order = [r.event_id for r in got if r.headers["x-voicebus-call-id"] == call_id]
            assert order == ids, call_id
        assert done.id in {r.event_id for r in got}
        globex_ids = {e.id for e in other}
        assert not globex_ids & {r.event_id for r in got}
        assert {r.event_id for r in state.on("/globex")} == globex_ids
        assert {r.headers["x-voicebus-tenant"] for r in state.on("/globex")} == {"wh-globex"}

        # The log: every delivery of a call delivered; the outage shows in the attempts.
        log = http.get(
            f"/webhooks/{hook['webhook_id']}/deliveries",
            headers=bearer(acme),
            params={"call_id": calls[0]},
        ).json()["deliveries"]
        assert sorted(d["event_id"] for d in log) == sorted(expected[calls[0]])
        assert {d["status"] for d in log} == {"delivered"}
        retried = [d for d in log if d["attempts"] > 1]
        assert retried, "the outage cost no delivery a retry"
        detail = http.get(
            f"/webhooks/{hook['webhook_id']}/deliveries/{retried[0]['delivery_id']}",
            headers=bearer(acme),
        ).json()
        codes = [a["status_code"] for a in detail["attempt_log"]]
        assert codes[0] == 503
        assert codes[-1] == 204
        assert len(codes) == detail["attempts"]

        # Redelivery on demand: the same event again, freshly signed.
        again = http.post(
            f"/webhooks/{hook['webhook_id']}/deliveries/{retried[0]['delivery_id']}/redeliver",
            headers=bearer(acme),
        )
        assert again.status_code == 202, again.text
        event_id = retried[0]["event_id"]
        wait_until(
            lambda: sum(r.event_id == event_id for r in state.on("/acme")) == 2, "the redelivery"
        )
        second = [r for r in state.on("/acme") if r.event_id == event_id][-1]
        assert verify(secret, second.headers[SIGNATURE_HEADER.lower()], second.body,
                      int(time.time()))  # fmt: skip


def test_a_receiver_that_keeps_failing_gets_a_dead_letter_then_a_redelivery(
    edge: EdgeStack, receiver: tuple[Receiver, str]
) -> None:
    state, base = receiver
    with state.lock:
        state.broken.add("/broken")
    with edge.client() as http:
        key = admin_key(http, "wh-dead")
        made = http.post(
            "/webhooks",
            headers=bearer(key),
            json={"url": f"{base}/broken", "event_types": ["call.ended"], "secret": "s" * 32},
        )
        assert made.status_code == 201, made.text
        assert made.json()["secret"] is None  # given by the caller: never echoed
        hook_id = made.json()["webhook_id"]
        ended = call_events("wh-dead", new_id())[3]
        edge.run(edge.publish(ended))

        def dead() -> list[dict[str, Any]]:
            page = http.get(
                f"/webhooks/{hook_id}/deliveries", headers=bearer(key), params={"status": "dead"}
            )
            found: list[dict[str, Any]] = page.json()["deliveries"]
            return found

        wait_until(lambda: bool(dead()), "the dead letter")
        letter = dead()[0]
        assert letter["event_id"] == ended.id
        assert letter["attempts"] == MAX_ATTEMPTS
        assert letter["last_error"] == "http 503"
        assert not state.on("/broken")

        with state.lock:
            state.broken.discard("/broken")
        again = http.post(
            f"/webhooks/{hook_id}/deliveries/{letter['delivery_id']}/redeliver",
            headers=bearer(key),
        )
        assert again.status_code == 202, again.text
        wait_until(lambda: len(state.on("/broken")) == 1, "the redelivered event")
        assert state.on("/broken")[0].event_id == ended.id
        assert verify("s" * 32, state.on("/broken")[0].headers[SIGNATURE_HEADER.lower()],
                      state.on("/broken")[0].body, int(time.time()))  # fmt: skip


def test_webhook_admin_refuses_bad_input_naming_the_field(edge: EdgeStack) -> None:
    with edge.client() as http:
        key = admin_key(http, "wh-bad")
        cases = [
            ({"url": "http://10.0.0.7/hook", "event_types": ["*"]}, "url"),
            ({"url": "http://169.254.169.254/latest", "event_types": ["*"]}, "url"),
            ({"url": "ftp://example.com/x", "event_types": ["*"]}, "url"),
            ({"url": "http://127.0.0.1:9/x", "event_types": ["call started"]}, "event_types"),
            ({"url": "http://127.0.0.1:9/x", "event_types": []}, "event_types"),
            ({"url": "http://127.0.0.1:9/x", "event_types": ["*"], "secret": "short"}, "secret"),
        ]
        for body, name in cases:
            answer = http.post("/webhooks", headers=bearer(key), json=body)
            assert answer.status_code == 422, (body, answer.text)
            fields = [f["field"] for f in answer.json()["error"]["fields"]]
            assert any(f.startswith(name) for f in fields), (body, fields)
        # A type no service publishes yet is accepted: it is matched when it appears.
        future = http.post(
            "/webhooks",
            headers=bearer(key),
            json={"url": "http://127.0.0.1:9/x", "event_types": ["call.analyzed"]},
        )
        assert future.status_code == 201, future.text
        hook_id = future.json()["webhook_id"]
        changed = http.patch(
            f"/webhooks/{hook_id}", headers=bearer(key), json={"url": "http://10.1.2.3/"}
        )
        assert changed.status_code == 422
        off = http.patch(f"/webhooks/{hook_id}", headers=bearer(key), json={"enabled": False})
        assert off.status_code == 200
        assert off.json()["enabled"] is False
        assert http.delete(f"/webhooks/{hook_id}", headers=bearer(key)).status_code == 204
        assert http.get(f"/webhooks/{hook_id}", headers=bearer(key)).status_code == 404


def test_an_event_type_the_edge_does_not_know_yet_is_delivered(
    edge: EdgeStack, receiver: tuple[Receiver, str]
) -> None:
    """call.analyzed comes with post-call analysis: the edge routes it by its envelope."""
    state, base = receiver
    with edge.client() as http:
        key = admin_key(http, "wh-future")
        made = http.post(
            "/webhooks",
            headers=bearer(key),
            json={"url": f"{base}/future", "event_types": ["call.analyzed"]},
        )
        assert made.status_code == 201, made.text
        call_id, event_id = new_id(), new_id()
        body = json.dumps({
            "specversion": "1.0", "id": event_id, "type": "call.analyzed.v1", "source": "e2e",
            "time": "2026-11-20T10:00:00Z", "tenant_id": "wh-future", "call_id": call_id,
            "data": {"summary": "The caller asked about an order."},
        }).encode()  # fmt: skip

        async def publish() -> None:
            assert edge.nc is not None
            subject = f"vb.evt.wh-future.{call_id}.call.analyzed"
            await edge.nc.jetstream().publish(subject, body, headers={"Nats-Msg-Id": event_id})

        edge.run(publish())
        wait_until(lambda: len(state.on("/future")) == 1, "the call.analyzed event")
        (got,) = state.on("/future")
        assert got.body == body
        assert got.headers["x-voicebus-event-type"] == "call.analyzed.v1"
        secret = made.json()["secret"]
        assert verify(secret, got.headers[SIGNATURE_HEADER.lower()], got.body, int(time.time()))
