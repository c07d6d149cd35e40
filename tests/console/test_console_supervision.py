"""Live supervision from the console in a real headless Chromium against the real stack.

A simulated Twilio caller (the devkit's) calls the scripted demo agent through the real
gateway; the real orchestrator runs the conversation and the real edge serves the console
and its supervision WebSocket, on NATS with JetStream and PostgreSQL. Media is not
running: the caller's lines are published as media's ``transcript.final`` events, and the
only audio the caller can receive is the operator's. The operator listens (frames reach
the page), whispers (the note lands in the conversation the LLM is given), takes the call
over with Chromium's fake microphone (its audio reaches the caller on ``audio.out`` while
the agent says nothing), logs a line, hands back (the agent answers again, the human's
line in its history), and every action is an event carrying the operator's key id.
Another tenant's session is refused the call as if it did not exist.

Screenshot at 1440x900 under ``<pytest tmp>/console-screenshots``.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from console_stack import ConsoleStack
from edge_stack import ADMIN
from nats.aio.msg import Msg
from playwright.sync_api import Browser, Page, expect, sync_playwright

from voicebus.contracts import subjects
from voicebus.contracts.audio import decode_frame
from voicebus.contracts.commands import Say, parse_control
from voicebus.contracts.events import TranscriptFinal, TranscriptFinalData
from voicebus.contracts.streams import SESSIONS
from voicebus.devkit.browser import find_chromium
from voicebus.devkit.caller.session import TwilioCaller
from voicebus.devkit.defaults import DEV_TWILIO_AUTH_TOKEN

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

DIST = Path(__file__).resolve().parents[2] / "console" / "dist" / "index.html"
WAIT_MS = 30_000
TENANT = "default"  # the gateway's tenant of inbound calls


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


def wait_until(check: Callable[[], Any], what: str, timeout: float = 30.0) -> Any:
    """``check()``'s first truthy result, polled until ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


class Spoken:
    """Frames on one call's ``vb.audio.<call>.out``, by utterance id."""

    def __init__(self) -> None:
        self.frames: dict[str, int] = {}

    async def on_frame(self, msg: Msg) -> None:
        frame = decode_frame(msg.data, msg.headers)
        key = frame.utterance_id or ""
        self.frames[key] = self.frames.get(key, 0) + 1


class Said:
    """Every ``Say`` the orchestrator sent on ``vb.ctl.*.say``, in arrival order."""

    def __init__(self) -> None:
        self.commands: list[Say] = []

    async def on_say(self, msg: Msg) -> None:
        command = parse_control(msg.data)
        assert isinstance(command, Say)
        self.commands.append(command)

    def of(self, call_id: str) -> list[Say]:
        return [c for c in list(self.commands) if c.call_id == call_id]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    chromium = find_chromium()
    assert chromium is not None, "Chromium is missing: run scripts/install-browser.sh"
    assert DIST.is_file(), "The console is not built: run `make console`"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=chromium,
            args=[
                "--autoplay-policy=no-user-gesture-required",
                "--use-fake-ui-for-media-stream",
                "--use-fake-device-for-media-stream",
            ],
        )
        yield launched
        launched.close()


def signed_in(browser: Browser, edge: ConsoleStack, token: str) -> Page:
    page = browser.new_page(viewport={"width": 1440, "height": 900}, permissions=["microphone"])
    page.set_default_timeout(WAIT_MS)
    page.goto(f"http://127.0.0.1:{edge.port}/console/")
    page.get_by_label("API key").fill(token)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Calls")).to_be_visible()
    return page


def frames(page: Page, lane: str) -> int:
    return int(page.get_by_test_id("supervise-frames").get_attribute(f"data-{lane}") or 0)


def history(edge: ConsoleStack, call_id: str) -> dict[str, Any]:
    async def read() -> dict[str, Any]:
        assert edge.nc is not None
        kv = await edge.nc.jetstream().key_value(SESSIONS.bucket)
        entry = await kv.get(call_id)
        assert entry.value is not None
        return dict(json.loads(entry.value))

    return edge.run(read())


def saved_with(edge: ConsoleStack, call_id: str, content: str) -> list[dict[str, Any]]:
    """The call's saved history, once it holds a message with ``content``."""

    def check() -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = history(edge, call_id)["history"]
        return messages if any(m["content"] == content for m in messages) else []

    return list(wait_until(check, f"the saved history to hold {content!r}"))


def caller_says(edge: ConsoleStack, call_id: str, text: str, n: int) -> None:
    """A final transcript of the caller's line, as media publishes it."""
    event = TranscriptFinal(
        tenant_id=TENANT,
        call_id=call_id,
        source="media/m-1",
        data=TranscriptFinalData(
            utterance_id=f"u-{n}", text=text, start_ms=n * 5000, end_ms=n * 5000 + 1200
        ),
    )
    edge.run(edge.publish(event))


def test_listen_whisper_take_over_and_hand_back_a_live_call(
    edge: ConsoleStack, browser: Browser, tmp_path_factory: pytest.TempPathFactory
) -> None:
    shots = tmp_path_factory.getbasetemp() / "console-screenshots"
    shots.mkdir(exist_ok=True)
    with edge.client() as http:
        token, key_id = admin_key(http, TENANT)
        other, _ = admin_key(http, "umbrella")
    said = Said()
    assert edge.nc is not None
    edge.run(edge.nc.subscribe("vb.ctl.*.say", cb=said.on_say))

    gateway = f"http://127.0.0.1:{edge.gateway_port}"
    caller = TwilioCaller(gateway, DEV_TWILIO_AUTH_TOKEN, "demo-scripted")
    edge.run(caller.__aenter__())
    try:
        call_id = caller.call_id
        assert call_id is not None
        wait_until(lambda: said.of(call_id), "the agent's greeting")
        spoken = Spoken()
        edge.run(edge.nc.subscribe(subjects.audio_out(call_id), cb=spoken.on_frame))
        with edge.client() as http:
            wait_until(
                lambda: http.get(f"/calls/{call_id}", headers=bearer(token)).status_code == 200,
                "audit to store the call",
            )

        # Another tenant's session: the call does not exist for it.
        stranger = signed_in(browser, edge, other)
        code = stranger.evaluate(
            """(id) => new Promise((resolve) => {
                const ws = new WebSocket(`ws://${location.host}/api/v1/calls/${id}/supervise`);
                const csrf = document.cookie.match(/vb_csrf=([^;]+)/)[1];
                ws.onopen = () => ws.send(JSON.stringify({type: "hello", csrf}));
                ws.onclose = (event) => resolve(event.code);
            })""",
            call_id,
        )
        assert code == 4404
        stranger.close()

        page = signed_in(browser, edge, token)
        page.goto(f"http://127.0.0.1:{edge.port}/console/#/calls/{call_id}")
        panel = page.get_by_test_id("supervise")

        # Listen: the caller's frames reach the page.
        page.get_by_role("button", name="Listen").click()
        expect(panel).to_have_attribute("data-state", "listening")
        wait_until(lambda: frames(page, "caller") >= 25, "caller audio in the page")

        # Whisper: the note is in the conversation the LLM answers the next line from.
        page.get_by_label("Whisper to the agent").fill("Offer the loyalty discount.")
        page.get_by_role("button", name="Whisper").click()
        done = page.get_by_test_id("supervise-done")
        expect(done).to_contain_text("supervision.whispered.v1")
        greeted = len(said.of(call_id))
        caller_says(edge, call_id, "Hello?", 1)
        wait_until(lambda: len(said.of(call_id)) > greeted, "the agent's answer")
        lines = [(m["role"], m["content"]) for m in saved_with(edge, call_id, "Hello?")]
        whisper = next(i for i, m in enumerate(lines) if "Offer the loyalty discount." in m[1])
        assert lines[whisper][0] == "system"
        assert lines.index(("user", "Hello?")) > whisper
        assert all("loyalty" not in s.data.text for s in said.of(call_id))  # never spoken

        # Take over: the fake microphone reaches the caller on audio.out; the agent is silent.
        page.get_by_role("button", name="Take over").click()
        expect(panel).to_have_attribute("data-state", "holding")
        wait_until(lambda: history(edge, call_id)["supervisor"] == key_id, "the take-over")
        before = len(said.of(call_id))
        wait_until(lambda: frames(page, "sent") >= 25, "microphone frames sent by the page")
        operator = [u for u, n in spoken.frames.items() if u.startswith("op-") and n >= 25]
        assert operator, spoken.frames  # on audio.out, under the take-over's utterance id
        assert edge.run(caller.wait_for_agent_audio(ms=400, timeout=30))
        echoed = frames(page, "agent")
        wait_until(lambda: frames(page, "caller") > frames(page, "agent") + 25, "caller frames")
        assert frames(page, "agent") == echoed  # the operator does not hear their own voice
        caller_says(edge, call_id, "I want to speak to a person.", 2)
        page.get_by_label("What you said").fill("Hi, this is Sam from Acme.")
        page.get_by_role("button", name="Log line").click()
        expect(done).to_contain_text("supervision.human_said.v1")
        saved_with(edge, call_id, "Hi, this is Sam from Acme.")
        timeline = page.get_by_test_id("timeline")
        expect(timeline.locator('[data-type="supervision.taken_over.v1"]')).to_contain_text(key_id)
        page.screenshot(path=shots / "08-call-supervision.png")
        held = history(edge, call_id)["history"]
        assert {"role": "user", "content": "I want to speak to a person."}.items() <= next(
            m for m in held if m["content"] == "I want to speak to a person."
        ).items()
        assert len(said.of(call_id)) == before  # the agent said nothing while held

        # Hand back: the agent answers the next line, the human's line in its history.
        page.get_by_role("button", name="Hand back").click()
        expect(panel).to_have_attribute("data-state", "listening")
        expect(done).to_contain_text("supervision.handed_back.v1")
        wait_until(lambda: history(edge, call_id)["supervisor"] is None, "the hand-back")
        caller_says(edge, call_id, "Where is my order 1234?", 3)
        answer = wait_until(
            lambda: [s for s in said.of(call_id)[before:] if "1234" in s.data.text],
            "the agent's answer after the hand-back",
        )
        assert answer[0].data.text.startswith("Let me check order 1234")
        resumed = saved_with(edge, call_id, "Where is my order 1234?")
        human = next(m for m in resumed if m["content"] == "Hi, this is Sam from Acme.")
        assert (human["role"], human["name"]) == ("assistant", "human_agent")
        assert resumed.index(human) < next(
            i for i, m in enumerate(resumed) if m["content"] == "Where is my order 1234?"
        )

        page.get_by_role("button", name="Stop listening").click()
        expect(panel).to_have_attribute("data-state", "closed")
        page.close()

        # Every action is an event of the call with the operator's identity.
        wanted = [
            "supervision.started.v1",
            "supervision.whispered.v1",
            "supervision.taken_over.v1",
            "supervision.human_said.v1",
            "supervision.handed_back.v1",
            "supervision.ended.v1",
        ]
        with edge.client() as http:
            deadline = time.monotonic() + 30
            while True:
                response = http.get(f"/calls/{call_id}/events?limit=500", headers=bearer(token))
                assert response.status_code == 200, response.text
                stored = response.json()["events"]
                events = [e for e in stored if e["type"].startswith("supervision.")]
                if len(events) >= len(wanted) or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
        assert [e["type"] for e in events] == wanted, [e["type"] for e in stored]
        assert {e["data"]["operator"] for e in events} == {key_id}
        assert events[1]["data"]["note"] == "Offer the loyalty discount."
    finally:
        edge.run(caller.hang_up())


def test_a_supervision_socket_without_a_session_is_refused(edge: ConsoleStack) -> None:
    async def refused() -> int | None:
        url = f"ws://127.0.0.1:{edge.port}/api/v1/calls/c1/supervise"
        async with websockets.connect(url) as ws:
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), 10)
        received = closed.value.rcvd
        return received.code if received is not None else None

    assert edge.run(refused()) == 4401
