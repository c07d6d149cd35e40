"""The console's operations pages in a real headless Chromium against the real stack: a campaign
created from the form, its contacts uploaded from a CSV (a bad line reported), started and
watched to completion while the real gateway dials a stand-in Twilio (the devkit's carrier);
a campaign call's post-call analysis; webhooks with their delivery log; usage; and the operator
token's session, which sees the tenants.

Screenshots at 1440x900 go to ``<pytest tmp>/console-screenshots`` (10- to 18-).
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from console_stack import ConsoleStack
from edge_stack import ADMIN
from playwright.sync_api import Browser, Page, expect
from test_console_browser import (
    WAIT_MS,
    admin_key,
    bearer,
    browser,
    log_in,
    open_console,
    shots,
)

from voicebus.contracts.events import parse_event
from voicebus.devkit.caller.session import StreamCaller
from voicebus.devkit.carriers import DialedCall
from voicebus.devkit.carriers.twilio import TwilioCarrier
from voicebus.devkit.defaults import DEV_TWILIO_AUTH_TOKEN

__all__ = ["browser", "shots"]  # the browser tests' fixtures, used here too

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

TWILIO_SID = "AC" + "2" * 32
CALLER_ID = "+442079460100"
# UK numbers: the calling window is the callee's local time, and US numbers are further
# held to 08:00-21:00 local. The stand-in's callee answers any number but ...0003 (no answer).
ANSWERS, NO_ANSWER = "+442079460111", "+442079460003"
CSV = f"phone,name\n{ANSWERS},Ada\nnot-a-number,Bob\n{NO_ANSWER},Cy\n"


async def _short_call(call: DialedCall, caller: StreamCaller) -> None:
    """The callee listens a moment, then hangs up."""
    await caller.wait_closed(timeout=1.5)


class Receiver:
    """A webhook receiver on loopback that accepts every delivery."""

    def __init__(self) -> None:
        bodies: list[dict[str, Any]] = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                bodies.append(json.loads(self.rfile.read(length) or b"{}"))
                self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.bodies = bodies
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def carrier(edge: ConsoleStack) -> Iterator[TwilioCarrier]:
    """A stand-in Twilio the gateway dials through, on the stack's loop."""
    gateway = f"http://127.0.0.1:{edge.gateway_port}"
    stand_in = TwilioCarrier(
        account_sid=TWILIO_SID,
        auth_token=DEV_TWILIO_AUTH_TOKEN,
        gateway_url=gateway,
        callee=_short_call,
    )
    edge.run(stand_in.start())
    yield stand_in
    edge.run(stand_in.stop())


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


def _create_campaign(page: Page, shots: Path) -> None:
    page.get_by_role("link", name="Campaigns", exact=True).click()
    expect(page.get_by_role("heading", name="Campaigns")).to_be_visible()
    page.get_by_role("button", name="New campaign").click()
    form = page.get_by_test_id("campaign-form")
    page.get_by_label("Name").fill("Renewals (UK)")
    page.get_by_label("Caller ids").fill("07946 0100")  # not E.164: the API says so
    page.get_by_label("Concurrency").fill("0")
    page.get_by_role("button", name="Create campaign").click()
    expect(form.locator('[data-field="caller_ids"]')).to_be_visible(timeout=WAIT_MS)
    expect(form.locator('[data-field="concurrency"]')).to_contain_text("greater than or equal")
    page.screenshot(path=shots / "10-campaign-form-errors.png")

    page.get_by_label("Caller ids").fill(CALLER_ID)
    page.get_by_label("Concurrency").fill("2")
    page.get_by_label("Attempts per contact").fill("1")
    for day in ("sat", "sun"):
        form.locator("label.day", has_text=day).locator("input").check()
    page.get_by_label("Window start").fill("00:00")
    page.get_by_label("Window end").fill("23:59")
    page.get_by_role("button", name="Create campaign").click()
    expect(page.get_by_role("heading", name="Renewals (UK)")).to_be_visible()
    expect(page.get_by_test_id("campaign-status")).to_have_text("draft", timeout=WAIT_MS)


def test_a_campaign_from_a_csv_runs_to_completion_and_ops_pages_show_data(
    edge: ConsoleStack,
    browser: Browser,
    shots: Path,
    carrier: TwilioCarrier,
    receiver: Receiver,
    tmp_path: Path,
) -> None:
    with edge.client() as http:
        token, _ = admin_key(http, "umbrella")
        account = http.put(
            "/tenants/umbrella/accounts/twilio",
            headers=bearer(ADMIN),  # api_base_url is the operator's to set
            json={
                "secrets": {"auth_token": DEV_TWILIO_AUTH_TOKEN},
                "fields": {
                    "account_id": TWILIO_SID,
                    "caller_id": CALLER_ID,
                    "api_base_url": carrier.base_url,
                },
            },
        )
        assert account.status_code == 200, account.text
    page = open_console(browser, edge)
    log_in(page, token)

    # Webhooks first, so the campaign's calls are delivered to the receiver.
    page.get_by_role("link", name="Settings").click()
    hooks = page.get_by_test_id("webhooks")
    page.get_by_label("Webhook URL").fill("ftp://example.com/x")
    page.get_by_role("button", name="Add webhook").click()
    expect(hooks.get_by_role("alert")).to_contain_text("http or https")
    page.get_by_label("Webhook URL").fill(receiver.url)
    page.get_by_label("Event types").fill("call.started, call.ended")
    page.get_by_label("Webhook description").fill("CRM sync")
    page.get_by_role("button", name="Add webhook").click()
    expect(page.get_by_test_id("webhook-secret").locator("code")).not_to_be_empty(timeout=WAIT_MS)
    expect(hooks.locator("tr", has_text="CRM sync")).to_contain_text(receiver.url)

    _create_campaign(page, shots)
    campaign_id = page.url.rsplit("/", 1)[1]
    csv_path = tmp_path / "contacts.csv"
    csv_path.write_text(CSV)
    page.get_by_label("Contacts CSV").set_input_files(str(csv_path))
    report = page.get_by_test_id("upload-report")
    expect(report.get_by_test_id("loaded")).to_have_text("2", timeout=WAIT_MS)
    expect(report.get_by_test_id("rejected")).to_have_text("1")
    bad = page.get_by_test_id("row-errors").locator("tbody tr")
    expect(bad).to_have_count(1)
    expect(bad).to_have_attribute("data-line", "3")  # the header is line 1
    assert page.get_by_test_id("upload-percent").inner_text() == "100%"
    expect(page.get_by_test_id("kpi-contacts")).to_have_text("2", timeout=WAIT_MS)
    page.get_by_test_id("upload-report").scroll_into_view_if_needed()
    page.screenshot(path=shots / "11-campaign-uploaded.png")

    status = page.get_by_test_id("campaign-status")
    page.get_by_role("button", name="Start").click()  # scheduled, running once the dialer sees it
    expect(status).to_have_text(re.compile("^(scheduled|running)$"), timeout=WAIT_MS)
    page.get_by_role("button", name="Pause").click()
    expect(status).to_have_text("paused", timeout=WAIT_MS)
    page.get_by_role("button", name="Resume").click()
    expect(page.get_by_test_id("campaign-feed-state")).to_have_text("Live feed", timeout=WAIT_MS)
    # Progress comes from the live feed (and a slow poll) until both contacts are done and the
    # campaign completes.
    expect(status).to_have_text("completed", timeout=120_000)
    expect(page.get_by_test_id("kpi-finished")).to_have_text("2", timeout=WAIT_MS)
    expect(page.get_by_test_id("kpi-dialed")).to_have_text("2", timeout=WAIT_MS)
    outcomes = page.get_by_test_id("by-outcome")
    expect(outcomes.locator("tr[data-outcome]")).to_have_count(2, timeout=WAIT_MS)
    expect(outcomes.locator('tr[data-outcome="no_answer"]')).to_contain_text("1")
    page.screenshot(path=shots / "12-campaign-completed.png")

    # The report: one line per contact, downloaded through the page's link.
    with page.expect_download() as download:
        page.get_by_role("link", name="Download report").click()
    lines = Path(download.value.path()).read_text().strip().splitlines()
    assert len(lines) == 3, lines
    assert any(ANSWERS in line for line in lines[1:])

    # The DNC list of the tenant: add numbers (a bad one named), see them listed, remove one.
    page.get_by_role("link", name="Campaigns", exact=True).click()
    expect(page.locator(f'tr[data-campaign-id="{campaign_id}"]')).to_contain_text("completed")
    dnc = page.get_by_test_id("dnc-list")
    page.get_by_label("DNC numbers").fill("+442079460199, +44 20 7946 0198, nope")
    page.get_by_label("DNC reason").fill("asked on a call")
    page.get_by_role("button", name="Add to list").click()
    expect(page.get_by_test_id("dnc-result")).to_contain_text("Added 2 of 3", timeout=WAIT_MS)
    expect(page.get_by_test_id("dnc-result")).to_contain_text("nope")
    expect(dnc.locator("tr[data-phone]")).to_have_count(2, timeout=WAIT_MS)
    expect(dnc.locator('tr[data-phone="+442079460198"]')).to_contain_text("asked on a call")
    page.screenshot(path=shots / "13-campaigns.png")
    dnc.locator('tr[data-phone="+442079460199"]').get_by_role("button", name="Remove").click()
    expect(page.get_by_test_id("dnc-result")).to_contain_text("Removed 1 of 1", timeout=WAIT_MS)
    expect(dnc.locator("tr[data-phone]")).to_have_count(1, timeout=WAIT_MS)
    with edge.client() as http:  # another tenant's list is its own
        other, _ = admin_key(http, "acme-dnc")
        listed = http.get("/dnc", headers=bearer(other))
        assert listed.status_code == 200, listed.text
        assert listed.json()["entries"] == []
        missing = http.get("/dnc", params={"campaign_id": campaign_id}, headers=bearer(other))
        assert missing.status_code == 404, missing.text

    # The answered call, analysed (as the orchestrator publishes it), on its detail page.
    answered = next(c for c in carrier.calls.values() if c.to_number == ANSWERS)
    call_id = _call_id_of(edge, token, answered)
    analysis = parse_event(
        {
            "type": "call.analyzed.v1",
            "source": "orchestrator/o-1",
            "tenant_id": "umbrella",
            "call_id": call_id,
            "time": datetime.now(UTC).isoformat(),
            "data": {
                "agent_id": "demo",
                "ok": True,
                "summary": "Ada agreed to renew her plan for another year.",
                "extraction": {"renewing": True, "plan": "gold"},
                "success": {"passed": True, "reason": "The caller renewed."},
                "disposition": "renewed",
            },
        }
    )
    edge.run(edge.publish(analysis))
    page.goto(f"http://127.0.0.1:{edge.port}/console/#/calls/{call_id}")
    panel = page.get_by_test_id("analysis")
    expect(panel.get_by_test_id("analysis-summary")).to_have_text(
        "Ada agreed to renew her plan for another year.", timeout=WAIT_MS
    )
    expect(panel.get_by_test_id("analysis-success")).to_have_text("Succeeded")
    expect(panel.get_by_test_id("analysis-disposition")).to_have_text("renewed")
    expect(panel.get_by_test_id("analysis-extraction")).to_contain_text("gold")
    page.screenshot(path=shots / "14-call-analysis.png")

    # Webhooks delivered the campaign's calls; usage counts them (metered asynchronously:
    # the page reads it once, so wait until the API has it).
    with edge.client() as http:
        deadline = time.monotonic() + 30
        while http.get("/usage", headers=bearer(token)).json()["totals"]["calls"]["total"] < 1:
            assert time.monotonic() < deadline, "usage did not count the campaign's call"
            time.sleep(0.2)
    page.goto(f"http://127.0.0.1:{edge.port}/console/#/settings")
    hooks = page.get_by_test_id("webhooks")
    hooks.get_by_role("button", name="Deliveries").click()
    log = page.get_by_test_id("deliveries")
    delivered = log.locator('tr[data-status="delivered"]')
    deadline = time.monotonic() + 60
    while delivered.count() < 2:  # deliveries are asynchronous: refresh until both are in
        assert time.monotonic() < deadline, "the campaign's calls were not delivered"
        log.get_by_role("button", name="Refresh").click()
        page.wait_for_timeout(500)
    before = len(receiver.bodies)
    delivered.first.get_by_role("button", name="Redeliver").click()
    deadline = time.monotonic() + 60
    while len(receiver.bodies) <= before:
        assert time.monotonic() < deadline, "the redelivery did not arrive"
        time.sleep(0.1)
    usage = page.get_by_test_id("usage")
    expect(usage.get_by_test_id("usage-totals")).to_be_visible()
    calls_total = usage.get_by_test_id("usage-totals").locator("td").nth(1)
    expect(calls_total).to_have_text("1", timeout=WAIT_MS)  # one connected call
    page.get_by_test_id("deliveries").scroll_into_view_if_needed()
    page.screenshot(path=shots / "15-settings-webhooks.png")
    usage.scroll_into_view_if_needed()
    page.screenshot(path=shots / "16-settings-usage.png")
    with page.expect_download() as export:
        usage.get_by_role("link", name="Export CSV").click()
    assert "calls" in Path(export.value.path()).read_text()
    page.close()


def _call_id_of(edge: ConsoleStack, token: str, dialed: DialedCall) -> str:
    """The voicebus call id of a call the stand-in carrier placed (by the number dialed)."""
    with edge.client() as http:
        deadline = time.monotonic() + 30
        while True:
            calls = http.get(
                "/calls", params={"phone": dialed.to_number}, headers=bearer(token)
            ).json()["calls"]
            if calls:
                return str(calls[0]["call_id"])
            assert time.monotonic() < deadline, "audit did not store the campaign's call"
            time.sleep(0.1)


def test_the_operator_token_signs_in_and_sees_the_tenants(
    edge: ConsoleStack, browser: Browser, shots: Path
) -> None:
    with edge.client() as http:
        admin_key(http, "hooli")
    page = open_console(browser, edge)
    page.get_by_label("API key").fill(ADMIN)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Tenants")).to_be_visible()
    row = page.locator('tr[data-tenant-id="hooli"]')
    expect(row).to_contain_text("active")
    assert [c for c in page.context.cookies() if c["name"] == "vb_session"]
    assert ADMIN not in json.dumps(page.context.cookies())
    page.screenshot(path=shots / "17-operator-tenants.png")
    row.click()
    expect(page.get_by_role("heading", name="hooli")).to_be_visible()
    expect(page.get_by_test_id("keys").locator("tr", has_text="ops")).to_contain_text("active")
    page.screenshot(path=shots / "18-operator-tenant.png")
    # The operator session is no tenant's: tenant data is refused, writes need the CSRF token.
    assert page.evaluate("fetch('/api/v1/calls').then(r => r.status)") == 403
    status = page.evaluate(
        "fetch('/api/v1/tenants', {method: 'POST', headers: {'Content-Type': 'application/json'},"
        " body: JSON.stringify({tenant_id: 'evil', name: 'x'})}).then(r => r.status)"
    )
    assert status == 403
    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("heading", name="Sign in to the console")).to_be_visible()
    page.close()
