"""Twilio's webhook check and TwiML answers, through a Starlette app (no bus)."""

from __future__ import annotations

import pytest
from gateway_kit import parse_twiml
from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient
from twilio.request_validator import RequestValidator

from voicebus.gateway.providers.twilio.webhook import TwilioWebhook
from voicebus.gateway.settings import GatewaySettings

pytestmark = pytest.mark.component

TOKEN = "auth-token-for-tests-0123456789"
PUBLIC = "https://voice.example.com"
FORM = {"CallSid": "CA123", "From": "+14155550100", "To": "+14155550199", "Digits": "1"}


def webhook() -> TwilioWebhook:
    settings = GatewaySettings(public_url=PUBLIC, twilio_auth_token=SecretStr(TOKEN))
    return TwilioWebhook(settings)


@pytest.fixture
def client() -> TestClient:
    hook = webhook()

    async def endpoint(request: Request) -> Response:
        call = await hook.accept(request)
        if call is None:
            return Response(status_code=403)
        return JSONResponse([call.provider_call_id, call.from_number, call.to_number])

    app = Starlette(routes=[Route("/telephony/twilio/inbound/{agent}", endpoint, methods=["POST"])])
    return TestClient(app, base_url="http://127.0.0.1:8080")  # the URL this process sees


def signature(path: str, form: dict[str, str], token: str = TOKEN) -> str:
    return str(RequestValidator(token).compute_signature(f"{PUBLIC}{path}", form))


def test_signature_is_checked_against_the_public_url(client: TestClient) -> None:
    path = "/telephony/twilio/inbound/demo?ctx_a=1"
    headers = {"X-Twilio-Signature": signature(path, FORM)}
    response = client.post(path, data=FORM, headers=headers)
    assert response.status_code == 200
    assert response.json() == ["CA123", "+14155550100", "+14155550199"]


@pytest.mark.parametrize(
    ("headers", "form"),
    [
        ({}, FORM),
        ({"X-Twilio-Signature": ""}, FORM),
        ({"X-Twilio-Signature": signature("/telephony/twilio/inbound/demo", FORM, "other")}, FORM),
        (
            {"X-Twilio-Signature": signature("/telephony/twilio/inbound/demo", FORM)},
            {**FORM, "From": "+19995550100"},
        ),
        ({"X-Twilio-Signature": signature("/telephony/twilio/inbound/other", FORM)}, FORM),
    ],
)
def test_missing_or_wrong_signatures(
    client: TestClient, headers: dict[str, str], form: dict[str, str]
) -> None:
    response = client.post("/telephony/twilio/inbound/demo", data=form, headers=headers)
    assert response.status_code == 403


class _Multi(dict[str, list[str]]):
    def getall(self, name: str) -> list[str]:
        return self[name]


def test_repeated_parameters_are_all_signed(client: TestClient) -> None:
    path = "/telephony/twilio/inbound/demo"
    url = f"{PUBLIC}{path}"
    content = "CallSid=CA1&Tag=b&Tag=a"
    form_type = {"Content-Type": "application/x-www-form-urlencoded"}
    every = RequestValidator(TOKEN).compute_signature(url, _Multi(CallSid=["CA1"], Tag=["b", "a"]))
    only_one = RequestValidator(TOKEN).compute_signature(url, {"CallSid": "CA1", "Tag": "b"})

    ok = client.post(path, content=content, headers={**form_type, "X-Twilio-Signature": every})
    bad = client.post(path, content=content, headers={**form_type, "X-Twilio-Signature": only_one})

    assert (ok.status_code, bad.status_code) == (200, 403)


def test_connect_twiml_has_the_stream_and_its_parameters() -> None:
    params = {"call_id": "c1", "agent_id": "demo", "ctx_note": 'a "quoted" <value> & more'}
    response = webhook().connect("wss://voice.example.com/ws/twilio", params)
    assert response.media_type == "application/xml"
    root = parse_twiml(bytes(response.body))
    assert root.tag == "Response"
    (connect,) = root
    assert connect.tag == "Connect"
    (stream,) = connect
    assert stream.tag == "Stream"
    assert stream.attrib == {"url": "wss://voice.example.com/ws/twilio"}
    assert {p.attrib["name"]: p.attrib["value"] for p in stream} == params


def test_decline_says_and_hangs_up() -> None:
    root = parse_twiml(bytes(webhook().decline("Sorry.").body))
    assert [(child.tag, child.text) for child in root] == [("Say", "Sorry."), ("Hangup", None)]


def test_busy_rejects_the_call_unanswered() -> None:
    root = parse_twiml(bytes(webhook().busy().body))
    assert [(child.tag, child.attrib) for child in root] == [("Reject", {"reason": "busy"})]
