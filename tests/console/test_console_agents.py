"""The console's Agents pages in a real headless Chromium against the real edge, orchestrator
(PostgreSQL), audit and NATS with JetStream: an agent's flow is edited on the canvas (a node
added, a transition drawn from one node's handle to another's, a node dragged and kept there),
refused while the new node is unreachable (the API's 422 shown on the node), saved as a new
version, compared with the one before, made live; the next call, driven by the scripted LLM,
follows the new transition, and replayed on its page against the first version it differs.

Screenshots at 1440x900 go to ``<pytest tmp>/console-screenshots``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from console_stack import ConsoleStack, hold_gateway_lease, release
from playwright.sync_api import Browser, Locator, Page, expect, sync_playwright
from test_console_browser import DIST, admin_key, bearer, log_in, open_console
from test_edge_api import poll

from voicebus.contracts.events import (
    CallEnded,
    CallEndedData,
    CallStarted,
    CallStartedData,
    Direction,
    EndReason,
    TranscriptFinal,
    TranscriptFinalData,
)
from voicebus.contracts.ids import new_id
from voicebus.devkit.browser import find_chromium

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

AGENT = "helpdesk"
RULES = [
    {"match": r"\brefund\b", "reply": "Let me get you to our refunds desk.", "tool": "to_refunds"},
    {"match": r"\bbye\b", "tool": "to_wrapup"},
]


def helpdesk() -> dict[str, Any]:
    """Greets, and wraps up on goodbye: no refunds node yet (the test draws it)."""
    return {
        "name": "Acme help desk",
        "system_prompt": "You are Acme's help desk. Keep answers short.",
        "greeting": "Hi, this is the Acme help desk.",
        "llm": {"engine": "scripted", "options": {"rules": RULES, "default": "I can help."}},
        "stt": {"engine": "null"},
        "tts": {"engine": "silent"},
        "tools": [{"type": "end_call"}],
        "flow": {
            "initial": "greet",
            "nodes": [
                {"id": "greet", "task": "Ask how you can help.",
                 "transitions": [{"name": "to_wrapup", "description": "The caller is done.",
                                  "target": "wrapup"}]},
                {"id": "wrapup", "task": "Say goodbye.", "end": True},
            ],
        },
    }  # fmt: skip


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    chromium = find_chromium()
    assert chromium is not None, "Chromium is missing: run scripts/install-browser.sh"
    assert DIST.is_file(), "The console is not built: run `make console`"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.getbasetemp() / "console-screenshots"
    path.mkdir(exist_ok=True)
    return path


def center(locator: Locator) -> tuple[float, float]:
    box = locator.bounding_box()
    assert box is not None
    return box["x"] + box["width"] / 2, box["y"] + box["height"] / 2


def canvas_xy(node: Locator) -> tuple[float, float]:
    """Where a React Flow node is in canvas coordinates (its translate), whatever the zoom."""
    transform = node.evaluate("el => el.style.transform")
    found = re.match(r"translate\(([-\d.]+)px, ?([-\d.]+)px\)", transform)
    assert found, transform
    return float(found[1]), float(found[2])


def connect(page: Page, source: str, target: str) -> None:
    """Drag from ``source``'s outgoing handle to ``target``'s incoming one, as a person does."""
    start = page.locator(f'.react-flow__node[data-id="{source}"] .react-flow__handle.source')
    end = page.locator(f'.react-flow__node[data-id="{target}"] .react-flow__handle.target')
    x, y = center(start)
    to_x, to_y = center(end)
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move((x + to_x) / 2, (y + to_y) / 2, steps=8)
    page.mouse.move(to_x, to_y, steps=8)
    page.mouse.up()


def events_of(http: httpx.Client, token: str, call_id: str, kind: str) -> list[dict[str, Any]]:
    """The call's events of ``kind``, once audit has stored one."""
    response = poll(
        http, f"/calls/{call_id}/events", token,
        lambda r: any(e["type"] == kind for e in r.json()["events"]), timeout=60,
    )  # fmt: skip
    assert response.status_code == 200, response.text
    return [e for e in response.json()["events"] if e["type"] == kind]


def test_a_flow_edited_on_the_canvas_is_what_the_next_call_follows(
    edge: ConsoleStack, browser: Browser, shots: Path
) -> None:
    with edge.client() as http:
        token, _ = admin_key(http, "wayne")
        created = http.post(
            "/agents", headers=bearer(token), json={"agent_id": AGENT, "definition": helpdesk()}
        )
        assert created.status_code == 201, created.text

    page = open_console(browser, edge)
    log_in(page, token)
    page.get_by_role("link", name="Agents").click()
    row = page.locator(f'tr[data-agent-id="{AGENT}"]')
    expect(row).to_contain_text("Acme help desk")
    expect(row).to_contain_text("v1")
    page.screenshot(path=shots / "10-agents.png")

    # The settings: the API's 422 is shown next to the field at fault.
    row.click()
    expect(page.get_by_test_id("live-version")).to_have_text("v1 live")
    prompt = page.get_by_label("System prompt")
    expect(prompt).to_have_value("You are Acme's help desk. Keep answers short.")
    prompt.fill("")
    page.get_by_role("button", name="Save new version").click()
    expect(page.locator('[data-field="system_prompt"] .field-error')).to_be_visible()
    expect(page.get_by_test_id("save-status")).to_contain_text("Not saved")
    page.screenshot(path=shots / "11-agent-editor-invalid.png")
    page.get_by_role("button", name="Discard").click()
    expect(prompt).to_have_value("You are Acme's help desk. Keep answers short.")

    # The flow: a node added on the canvas is refused while nothing leads to it.
    page.get_by_role("link", name="Flow").click()
    canvas = page.get_by_test_id("flow-canvas")
    expect(canvas.locator(".react-flow__node")).to_have_count(2)
    expect(canvas.locator(".react-flow__edge")).to_have_count(1)
    page.get_by_label("New node id").fill("refunds")
    page.get_by_role("button", name="+ Add node").click()
    panel = page.get_by_test_id("flow-panel")
    expect(panel).to_have_attribute("data-node-id", "refunds")
    panel.get_by_label("Node task").fill("Ask for the order number of the refund.")
    panel.get_by_label("Respond on entry").uncheck()  # the caller speaks next
    panel.get_by_role("button", name="+ Add").first.click()
    panel.get_by_label("Pre-actions 1 line").fill("You are through to refunds.")
    page.get_by_role("button", name="Save new version").click()
    expect(page.get_by_test_id("save-status")).to_contain_text("unreachable from 'greet'")
    expect(page.get_by_test_id("node-refunds")).to_have_class(_has("invalid"))
    expect(panel).to_contain_text("node 'refunds' is unreachable")
    page.screenshot(path=shots / "12-flow-invalid.png")

    # A transition drawn from greet's handle to the new node's, then its condition edited.
    connect(page, "greet", "refunds")
    expect(canvas.locator(".react-flow__edge")).to_have_count(2)
    expect(panel).to_have_attribute("data-transition", "greet:1")
    expect(panel.get_by_label("Transition name")).to_have_value("to_refunds")
    panel.get_by_label("Transition condition").fill("The caller wants a refund.")
    # A node dragged up, clear of the new one, is kept there by the save (checked after a reload).
    wrapup = page.locator('.react-flow__node[data-id="wrapup"]')
    before = canvas_xy(wrapup)
    x, y = center(page.get_by_test_id("node-wrapup").locator(".step-task"))
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x - 40, y - 140, steps=8)
    page.mouse.up()
    dragged = canvas_xy(wrapup)
    assert dragged[1] < before[1] - 100, (before, dragged)
    page.get_by_role("button", name="Save new version").click()
    expect(page.get_by_test_id("save-status")).to_contain_text("Saved as v2")
    expect(page.get_by_test_id("live-version")).to_have_text("v2 live")
    expect(page.get_by_test_id("node-refunds")).not_to_have_class(_has("invalid"))
    page.get_by_test_id("node-refunds").click()
    expect(panel).to_have_attribute("data-node-id", "refunds")
    page.screenshot(path=shots / "13-flow-canvas.png")

    # Versions: the diff names the change; an older version made live, then the new one again.
    page.get_by_role("link", name="Versions").click()
    diff = page.get_by_test_id("diff")
    expect(diff.locator(".diff-add").first).to_be_visible()
    expect(diff).to_contain_text('"target": "refunds"')
    expect(diff).to_contain_text("You are through to refunds.")
    page.screenshot(path=shots / "14-agent-versions.png")
    page.get_by_role("button", name="Make v1 live").click()
    expect(page.get_by_test_id("live-version")).to_have_text("v3 live")
    with edge.client() as http:
        live = http.get(f"/agents/{AGENT}", headers=bearer(token)).json()
        assert [n["id"] for n in live["definition"]["flow"]["nodes"]] == ["greet", "wrapup"]
    page.get_by_role("button", name="Make v2 live").click()
    expect(page.get_by_test_id("live-version")).to_have_text("v4 live")
    versions = page.get_by_test_id("versions")
    expect(versions.locator('tr[data-version="2"]')).to_contain_text("same as live")
    page.reload()
    page.get_by_role("link", name="Flow").click()
    expect(wrapup).to_be_visible()
    again = canvas_xy(wrapup)
    assert abs(again[0] - dragged[0]) < 3, (dragged, again)
    assert abs(again[1] - dragged[1]) < 3, (dragged, again)

    # "Talk to this agent": the browser call page, in a new tab, with the agent picked.
    with page.context.expect_page() as opened:
        page.get_by_role("link", name="Talk to this agent").click()
    phone = opened.value
    expect(phone.locator("#agent")).to_have_value(AGENT)
    assert phone.url.endswith(f"/browser?agent={AGENT}")
    phone.close()
    page.close()

    # The next call follows the new transition into the node drawn on the canvas.
    call_id = new_id()
    started = CallStarted(
        tenant_id="wayne", call_id=call_id, source="gateway/e2e",
        data=CallStartedData(direction=Direction.INBOUND, provider="twilio", agent_id=AGENT,
                             gateway_instance="gw-e2e"),
    )  # fmt: skip
    lease = edge.run(hold_gateway_lease(edge, call_id))
    edge.run(edge.publish(started))
    with edge.client() as http:
        # The call runs the live version from its first node; then the caller asks for a refund.
        (entered,) = events_of(http, token, call_id, "flow.node_entered.v1")
        assert (entered["data"]["node_id"], entered["data"]["agent_version"]) == ("greet", 4)
        said = TranscriptFinal(
            tenant_id="wayne", call_id=call_id, source="media/e2e",
            data=TranscriptFinalData(utterance_id="u-1", text="I would like a refund, please.",
                                     start_ms=0, end_ms=1200),
        )  # fmt: skip
        edge.run(edge.publish(said))
        (moved,) = events_of(http, token, call_id, "flow.transition.v1")
        assert moved["data"]["from_node_id"] == "greet"
        assert moved["data"]["to_node_id"] == "refunds"
        assert moved["data"]["function"] == "to_refunds"
        assert moved["data"]["agent_version"] == 4
        nodes = poll(
            http, f"/calls/{call_id}/events", token,
            lambda r: sum(e["type"] == "flow.node_entered.v1" for e in r.json()["events"]) == 2,
        )  # fmt: skip
        entered_nodes = [e["data"]["node_id"] for e in nodes.json()["events"]
                         if e["type"] == "flow.node_entered.v1"]  # fmt: skip
        assert entered_nodes == ["greet", "refunds"]
        assert "call.ended.v1" not in nodes.text
        # What the side panel wrote is in the live definition: the new node's line and task.
        (refunds,) = [n for n in http.get(f"/agents/{AGENT}", headers=bearer(token)).json()
                      ["definition"]["flow"]["nodes"] if n["id"] == "refunds"]  # fmt: skip
        assert refunds["pre_actions"] == [
            {"say": "You are through to refunds.", "tool": None, "args": {},
             "result_variable": None, "set": None}
        ]  # fmt: skip
        assert refunds["task"] == "Ask for the order number of the refund."
        assert refunds["respond_immediately"] is False
    ended = CallEnded(tenant_id="wayne", call_id=call_id, source="gateway/e2e",
                      data=CallEndedData(reason=EndReason.CALLER_HANGUP))  # fmt: skip
    edge.run(edge.publish(ended))
    edge.run(release(edge, call_id, lease), timeout=90)

    # The call replayed against v1, which has no refunds node: the flow path differs.
    with edge.client() as http:  # the page offers a replay once audit has the call ended
        stored = poll(http, f"/calls/{call_id}", token, lambda r: r.json()["status"] == "ended")
        assert stored.json()["status"] == "ended", stored.text
    page = open_console(browser, edge)
    log_in(page, token)
    page.goto(f"{page.url.split('#')[0]}#/calls/{call_id}")
    replay = page.get_by_test_id("replay")
    choice = page.get_by_label("Agent version")
    expect(choice.locator("option")).to_have_count(4)
    expect(choice).to_have_value("3")  # the newest the call did not run
    choice.select_option("1")
    page.get_by_role("button", name="Replay", exact=True).click()
    expect(replay.get_by_test_id("replay-status")).to_contain_text("differ between v4 and v1")
    turn = replay.locator('li[data-turn="1"]')
    expect(turn).to_have_class(_has("differs"))
    expect(turn).to_contain_text("I would like a refund, please.")
    original, replayed = (turn.locator(f'[data-side="{s}"] [data-kind="transitions"]')
                          for s in ("original", "replayed"))  # fmt: skip
    expect(original).to_contain_text("refunds")
    expect(original).to_have_class(_has("changed"))
    expect(replayed).not_to_contain_text("refunds")
    replay.screenshot(path=shots / "15-call-replay.png")
    page.close()


def _has(name: str) -> re.Pattern[str]:
    """A class attribute holding ``name``."""
    return re.compile(rf"(^|\s){name}(\s|$)")
