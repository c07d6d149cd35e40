"""The operators' console in a real headless Chromium (Debian's, driven by Playwright) against
the real edge, audit, recorder and NATS with JetStream and PostgreSQL.

A call is simulated by publishing its events and both sides' audio frames on the bus as the
gateway, media and orchestrator would (the real recorder records the audio): the console must show
it appear live, change state in place and end, then its transcript, waveform, timeline and
recording. Another tenant's calls never show, and the session dies with its API key.

Screenshots of each page at 1440x900 go to ``<pytest tmp>/console-screenshots``.
"""

from __future__ import annotations

import asyncio
import math
import re
import struct
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from console_stack import ConsoleStack, hold_gateway_lease, release
from edge_stack import ADMIN
from playwright.sync_api import Browser, Page, expect, sync_playwright

from voicebus.contracts import subjects
from voicebus.contracts.audio import encode_headers
from voicebus.contracts.events import CallEvent, parse_event
from voicebus.contracts.ids import new_id
from voicebus.devkit.browser import find_chromium

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

DIST = Path(__file__).resolve().parents[2] / "console" / "dist" / "index.html"
WAIT_MS = 20_000
SECONDS = 14.0


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def admin_key(http: httpx.Client, tenant: str) -> tuple[str, str]:
    """A new admin key of ``tenant``: (token, key id)."""
    created = http.post(
        "/tenants", headers=bearer(ADMIN), json={"tenant_id": tenant, "name": tenant}
    )
    assert created.status_code in (201, 409), created.text
    key = http.post(
        f"/tenants/{tenant}/keys", headers=bearer(ADMIN), json={"name": "ops", "scopes": ["admin"]}
    )
    assert key.status_code == 201, key.text
    return key.json()["token"], key.json()["key_id"]


def poll_call(
    http: httpx.Client, token: str, call_id: str, status: str = "in_progress"
) -> dict[str, Any]:
    """The call as audit has it, once it has stored it in ``status``."""
    deadline = time.monotonic() + 30
    while True:
        response = http.get(f"/calls/{call_id}", headers=bearer(token))
        if response.status_code == 200 and response.json()["status"] == status:
            return dict(response.json())
        assert time.monotonic() < deadline, response.text
        time.sleep(0.1)


class SimulatedCall:
    """One call's events, timed from ``start`` as the services would publish them."""

    def __init__(
        self,
        tenant: str,
        start: datetime,
        caller: str = "+14155550142",
        agent: str = "demo",
        provider: str = "twilio",
        direction: str = "inbound",
    ) -> None:
        self.tenant = tenant
        self.call_id = new_id()
        self.start = start
        self.caller = caller
        self.parties = {"direction": direction, "provider": provider, "agent_id": agent}

    def event(self, kind: str, at_s: float, data: dict[str, Any], source: str) -> CallEvent:
        return parse_event(
            {
                "type": kind,
                "source": source,
                "tenant_id": self.tenant,
                "call_id": self.call_id,
                "time": (self.start + timedelta(seconds=at_s)).isoformat(),
                "data": data,
            }
        )

    def opening(self) -> list[CallEvent]:
        parties = {
            **self.parties,
            "from_number": self.caller,
            "to_number": "+14155550199",
        }
        return [
            self.event("call.initiated.v1", -1.0, parties, "gateway/gw-1"),
            self.event(
                "call.started.v1", 0.0, {**parties, "gateway_instance": "gw-1"}, "gateway/gw-1"
            ),
        ]

    def conversation(self) -> list[CallEvent]:
        orch, media = "orchestrator/o-1", "media/m-1"
        return [
            self.event(
                "flow.node_entered.v1",
                0.1,
                {"flow_id": "main", "node_id": "greet", "agent_id": "demo"},
                orch,
            ),
            self.event(
                "agent.speech.started.v1",
                0.4,
                {
                    "utterance_id": "a-1",
                    "text": "Hi, this is Acme. How can I help?",
                    "first_audio_ms": 24.0,
                },
                media,
            ),
            self.event(
                "transcript.final.v1",
                3.8,
                {
                    "utterance_id": "u-1",
                    "text": "Where is my order 1234?",
                    "start_ms": 3000,
                    "end_ms": 4600,
                    "stt_latency_ms": 310.0,
                },
                media,
            ),
            self.event(
                "tool.called.v1",
                5.0,
                {"tool_call_id": "t-1", "name": "order_status", "arguments": {"order_id": "1234"}},
                orch,
            ),
            self.event(
                "tool.result.v1",
                5.1,
                {
                    "tool_call_id": "t-1",
                    "name": "order_status",
                    "ok": True,
                    "result": {"status": "shipped"},
                    "duration_ms": 84.0,
                },
                orch,
            ),
            self.event(
                "agent.reply.v1",
                5.2,
                {
                    "turn_id": "r-1",
                    "utterance_id": "a-2",
                    "text": "Your order 1234 shipped yesterday.",
                    "complete": True,
                    "llm_first_token_ms": 182.0,
                },
                orch,
            ),
            self.event(
                "agent.speech.started.v1",
                5.4,
                {
                    "utterance_id": "a-2",
                    "text": "Your order 1234 shipped yesterday.",
                    "first_audio_ms": 22.0,
                },
                media,
            ),
            self.event(
                "transcript.final.v1",
                8.2,
                {
                    "utterance_id": "u-2",
                    "text": "Great, thanks. Bye!",
                    "start_ms": 7600,
                    "end_ms": 9000,
                    "stt_latency_ms": 280.0,
                },
                media,
            ),
        ]

    def ending(self, reason: str = "caller_hangup", seconds: float = SECONDS) -> list[CallEvent]:
        return [
            self.event(
                "call.ended.v1",
                seconds,
                {"reason": reason, "duration_s": seconds},
                "gateway/gw-1",
            )
        ]

    async def speak(self, edge: ConsoleStack) -> None:
        """Both sides' audio on the bus, as the gateway (caller) and media (agent) send it:
        the real recorder, which claimed the call at ``call.started``, records it in stereo."""
        assert edge.nc is not None
        subject = subjects.audio_in(self.call_id)
        async with httpx.AsyncClient() as monitor:
            for _ in range(400):  # the recorder subscribes once it has claimed the call
                connections = await monitor.get(f"{edge.monitor_url}/connz?subs=1")
                if subject in connections.text:
                    break
                await asyncio.sleep(0.05)
            else:
                raise AssertionError("the recorder did not subscribe to the call's audio")
        rate, frame = 8000, 160
        talking = {"in": [(3.0, 4.6), (7.6, 9.0)], "out": [(0.4, 2.6), (5.4, 7.2)]}
        for seq in range(int(SECONDS * rate / frame)):
            for direction, pitch in (("in", 180.0), ("out", 240.0)):
                samples = []
                for n in range(frame):
                    t = (seq * frame + n) / rate
                    on = any(a <= t < b for a, b in talking[direction])
                    level = 9000 * abs(math.sin(t * 7.0)) if on else 0.0
                    samples.append(int(level * math.sin(2 * math.pi * pitch * t)))
                pcm = struct.pack(f"<{frame}h", *samples)
                await edge.nc.publish(
                    subjects.audio(self.call_id, direction),  # type: ignore[arg-type]
                    pcm,
                    headers=encode_headers(rate, seq, seq * 20),
                )
        await edge.nc.flush()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    chromium = find_chromium()
    assert chromium is not None, "Chromium is missing: run scripts/install-browser.sh"
    assert DIST.is_file(), "The console is not built: run `make console`"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=chromium, args=["--autoplay-policy=no-user-gesture-required"]
        )
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.getbasetemp() / "console-screenshots"
    path.mkdir(exist_ok=True)
    return path


def open_console(browser: Browser, edge: ConsoleStack) -> Page:
    page = browser.new_page(viewport={"width": 1440, "height": 900})
    page.set_default_timeout(WAIT_MS)
    page.goto(f"http://127.0.0.1:{edge.port}/console/")
    return page


def log_in(page: Page, token: str) -> None:
    page.get_by_label("API key").fill(token)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Calls")).to_be_visible()
    expect(page.get_by_test_id("feed-state")).to_have_text("Live feed")


def test_a_live_call_appears_ends_and_is_reviewed_with_its_recording(
    edge: ConsoleStack, browser: Browser, shots: Path
) -> None:
    with edge.client() as http:
        acme, _ = admin_key(http, "acme")
        admin_key(http, "globex")
    start = datetime.now(UTC) - timedelta(seconds=SECONDS + 5)
    theirs = SimulatedCall("globex", start, caller="+14155550666")
    history = [
        (SimulatedCall("acme", start - timedelta(hours=h), f"+1415555020{h}", agent, provider,
                       direction), reason, seconds)
        for h, agent, provider, direction, reason, seconds in (
            (3, "support", "plivo", "outbound", "no_answer", 0.0),
            (2, "sales", "twilio", "outbound", "agent_hangup", 187.0),
            (1, "support", "vobiz", "inbound", "transferred", 64.0),
        )
    ]  # fmt: skip
    for old, reason, seconds in history:
        edge.run(edge.publish(*old.opening(), *old.ending(reason, seconds)))
    edge.run(edge.publish(*theirs.opening(), *theirs.ending()))
    with edge.client() as http:  # audit stores asynchronously: the page must find them ended
        deadline = time.monotonic() + 30
        while len(http.get("/calls?status=ended", headers=bearer(acme)).json()["calls"]) < 3:
            assert time.monotonic() < deadline, "audit did not store the earlier calls"
            time.sleep(0.1)

    page = open_console(browser, edge)
    expect(page.get_by_role("heading", name="Sign in to the console")).to_be_visible()
    page.screenshot(path=shots / "01-login.png")
    page.get_by_label("API key").fill("vb_0123456789ab_" + "x" * 43)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("unknown or revoked API key")
    log_in(page, acme)

    # Live: the call shows up and changes state in place, with no reload.
    call = SimulatedCall("acme", start)
    theirs_live = SimulatedCall("globex", start, caller="+14155550667")
    # As the gateway holding its stream would: or the orchestrator ends it as gateway_lost.
    lease = edge.run(hold_gateway_lease(edge, call.call_id))
    edge.run(edge.publish(*theirs_live.opening(), *call.opening()))
    row = page.locator(f'tr[data-call-id="{call.call_id}"]')
    expect(row).to_have_attribute("data-status", "in_progress")
    expect(row).to_contain_text("demo")
    expect(page.get_by_test_id("live-count")).to_have_text("1")
    page.screenshot(path=shots / "02-calls-live.png")

    # The call while it goes on: its transcript and timeline grow as it speaks.
    with edge.client() as http:  # audit stores asynchronously: the page reads the call from it
        known = poll_call(http, acme, call.call_id)
        assert known["agent_id"] == "demo", known
    row.click()
    # The call's own feed (each page has its own): subscribed once it shows live.
    expect(page.get_by_test_id("call-feed-state")).to_have_text("Live feed")
    transcript = page.get_by_test_id("transcript")
    expect(transcript.locator("li.line")).to_have_count(0)
    edge.run(edge.publish(*call.conversation()))
    expect(transcript.locator("li.line")).to_have_count(4)
    expect(transcript.locator("li.line").nth(2)).to_contain_text("LLM 182 ms")
    expect(page.get_by_test_id("timeline").locator('[data-type="tool.result.v1"]')).to_be_visible()
    page.screenshot(path=shots / "03-call-live.png")
    edge.run(call.speak(edge))

    # Back on the list, the call ends in place.
    page.get_by_role("link", name="All calls").click()
    expect(page.get_by_test_id("call-feed-state")).to_have_count(0)  # the list, not the call
    expect(page.get_by_test_id("feed-state")).to_have_text("Live feed")
    edge.run(edge.publish(*call.ending()))
    expect(row).to_have_attribute("data-status", "ended")
    expect(row).to_contain_text("caller hangup")
    edge.run(release(edge, call.call_id, lease), timeout=90)
    expect(page.get_by_test_id("live-count")).to_have_text("0")

    # Another tenant's calls never show, live or listed.
    for other in (theirs, theirs_live):
        expect(page.locator(f'tr[data-call-id="{other.call_id}"]')).to_have_count(0)
    with edge.client() as http:  # what the reloaded page reads: audit's view, once it has it
        stored = poll_call(http, acme, call.call_id, status="ended")
        assert stored["ended_reason"] == "caller_hangup"
        recording = http.get(f"/calls/{call.call_id}/recording", headers=bearer(acme))
        deadline = time.monotonic() + 30
        while recording.status_code == 404 and time.monotonic() < deadline:
            time.sleep(0.1)  # the recorder finalizes after call.ended
            recording = http.get(f"/calls/{call.call_id}/recording", headers=bearer(acme))
        assert recording.status_code == 200, recording.text
        assert recording.json()["channels"] == 2
    page.reload()
    expect(row).to_have_attribute("data-status", "ended")
    assert "+14155550666" not in page.content()
    assert "+14155550667" not in page.content()

    # Filters go through the REST API.
    page.get_by_label("Phone number").fill("+14155550142")
    page.get_by_label("Direction").select_option("inbound")
    page.get_by_role("button", name="Apply").click()
    expect(page.locator("table.calls tbody tr[data-call-id]")).to_have_count(1)
    page.get_by_label("Direction").select_option("outbound")
    page.get_by_role("button", name="Apply").click()
    expect(page.locator("table.calls tbody tr[data-call-id]")).to_have_count(0)
    page.get_by_role("button", name="Reset").click()
    expect(row).to_be_visible()
    page.screenshot(path=shots / "04-calls.png")

    # The call: transcript with speakers and latencies, timeline, waveform, playback.
    row.click()
    expect(transcript.locator("li.line")).to_have_count(4)
    expect(transcript.locator("li.line").nth(1)).to_have_attribute("data-speaker", "caller")
    expect(transcript.locator("li.line").nth(1)).to_contain_text("Where is my order 1234?")
    expect(transcript.locator("li.line").nth(1)).to_contain_text("STT 310 ms")
    expect(transcript.locator("li.line").nth(2)).to_contain_text("turn 800 ms")
    expect(transcript.locator("li.line").nth(2)).to_contain_text("LLM 182 ms")
    timeline = page.get_by_test_id("timeline")
    expect(timeline.locator('[data-type="tool.called.v1"]')).to_contain_text('{"order_id":"1234"}')
    expect(timeline.locator('[data-type="tool.result.v1"]')).to_contain_text("shipped")
    expect(timeline.locator('[data-type="flow.node_entered.v1"]')).to_contain_text("greet")
    expect(timeline.locator('[data-type="call.ended.v1"]')).to_contain_text("caller hangup")
    player = page.get_by_test_id("player")
    expect(player).to_have_attribute("data-ready", "true")
    expect(page.get_by_test_id("position")).to_contain_text("/ 00:14")
    page.screenshot(path=shots / "05-call-detail.png", full_page=True)

    transcript.locator("li.line").nth(2).click()  # seek to the agent's answer, then play
    page.get_by_role("button", name="Play", exact=True).click()
    expect(player).to_have_attribute("data-playing", "true")
    # From the answer (5.4 s in) the player moves on: the position passes 6 s.
    moved_on = re.compile(r"^00:(0[6-9]|1[0-4]) / 00:14$")
    expect(page.get_by_test_id("position")).to_have_text(moved_on)
    heard = transcript.locator('li.line[data-heard="true"]')
    expect(heard).to_have_count(1)
    expect(heard).to_contain_text(re.compile("Your order 1234 shipped|Great, thanks"))
    page.screenshot(path=shots / "06-call-playing.png")
    page.get_by_role("button", name="Pause").click()

    # Logging out ends the session: the page is back at the sign-in, the cookie is gone.
    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("heading", name="Sign in to the console")).to_be_visible()
    assert page.evaluate("fetch('/api/v1/calls').then(r => r.status)") == 401
    assert not [c for c in page.context.cookies() if c["name"] == "vb_session"]
    page.close()


def test_settings_and_a_revoked_keys_session_is_refused(
    edge: ConsoleStack, browser: Browser, shots: Path
) -> None:
    with edge.client() as http:
        token, key_id = admin_key(http, "initech")
    page = open_console(browser, edge)
    log_in(page, token)
    page.get_by_role("link", name="Settings").click()
    keys = page.get_by_test_id("keys")
    expect(keys.locator(f'tr[data-key-id="{key_id}"]')).to_contain_text("this session")

    page.get_by_label("Key name").fill("crm sync")
    page.get_by_role("button", name="Create key").click()
    shown = page.get_by_test_id("new-key")
    expect(shown).to_contain_text("vb_")
    new_token = shown.locator("code").inner_text()
    expect(keys.locator("tr", has_text="crm sync")).to_contain_text("active")

    page.get_by_label("Secret value").fill("twilio-auth-token-s3cr3t")
    page.get_by_label("Setting value").fill("AC0123")
    page.get_by_role("button", name="Save account").click()
    accounts = page.get_by_test_id("accounts")
    expect(accounts.locator("tr", has_text="twilio")).to_contain_text("auth_token")
    expect(accounts.locator("tr", has_text="twilio")).to_contain_text("account_sid=AC0123")
    assert "twilio-auth-token-s3cr3t" not in page.content()  # write-only
    page.screenshot(path=shots / "07-settings.png", full_page=True)

    # The key the console created works on the API, once shown, never listed again.
    with edge.client() as http:
        assert http.get("/calls", headers=bearer(new_token)).status_code == 200
        listed = http.get("/tenants/initech/keys", headers=bearer(ADMIN)).text
        assert new_token not in listed

        # Revoking the session's own key ends the session on the next request.
        revoked = http.delete(f"/tenants/initech/keys/{key_id}", headers=bearer(ADMIN))
        assert revoked.status_code == 200
    status = page.evaluate("fetch('/api/v1/calls').then(r => r.status)")
    assert status == 401
    page.get_by_role("link", name="Calls").click()
    expect(page.get_by_role("heading", name="Sign in to the console")).to_be_visible()
    page.close()
