"""Plivo's and Vobiz's webhook checks and XML answers, through a Starlette app (no bus)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import xml.etree.ElementTree as ET
from urllib.parse import parse_qsl, urlsplit

import pytest
from plivo.utils.signature_v3 import construct_get_url, construct_post_url, get_signature_v3
from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient

from voicebus.gateway.providers.plivo.settings import PlivoSettings
from voicebus.gateway.providers.plivo.webhook import PlivoWebhook, phone
from voicebus.gateway.providers.vobiz.settings import VobizSettings
from voicebus.gateway.providers.vobiz.webhook import VobizWebhook
from voicebus.gateway.settings import GatewaySettings
from voicebus.runtime.settings import Environment

pytestmark = pytest.mark.component

TOKEN = "auth-token-for-tests-0123456789"
PUBLIC = "https://voice.example.com"
FORM = {"CallUUID": "c-123", "From": "+14155550100", "To": "+14155550199", "Direction": "inbound"}
NONCE = "12345678901234567890"


def settings() -> GatewaySettings:
    return GatewaySettings(public_url=PUBLIC)


def plivo_webhook() -> PlivoWebhook:
    return PlivoWebhook(settings(), PlivoSettings(auth_token=SecretStr(TOKEN)))


def vobiz_webhook() -> VobizWebhook:
    return VobizWebhook(settings(), VobizSettings(auth_token=SecretStr(TOKEN)))


def plivo_signature(path: str, form: dict[str, str], token: str = TOKEN) -> str:
    """What Plivo sends: computed by the plivo SDK's own V3 functions."""
    url = construct_post_url(f"{PUBLIC}{path}", dict(form)).decode()
    return str(get_signature_v3(token.encode(), url, NONCE.encode()).decode())


def vobiz_signature(path: str, token: str = TOKEN, version: int = 3) -> str:
    """What Vobiz sends, from its documentation: HMAC-SHA256 over URL (no query) . nonce."""
    base = f"{PUBLIC}{urlsplit(path).path}"
    message = f"{base}.{NONCE}" if version == 3 else f"{base}{NONCE}"
    return base64.b64encode(
        hmac.new(token.encode(), message.encode(), hashlib.sha256).digest()
    ).decode()


def client(hook: PlivoWebhook | VobizWebhook, name: str) -> TestClient:
    async def endpoint(request: Request) -> Response:
        call = await hook.accept(request)
        if call is None:
            return Response(status_code=403)
        return JSONResponse([call.provider_call_id, call.from_number, call.to_number])

    app = Starlette(
        routes=[Route(f"/telephony/{name}/inbound/{{agent}}", endpoint, methods=["GET", "POST"])]
    )
    return TestClient(app, base_url="http://127.0.0.1:8080")


def test_plivo_signature_is_checked_against_the_public_url() -> None:
    path = "/telephony/plivo/inbound/demo?ctx_a=1"
    headers = {
        "X-Plivo-Signature-V3": plivo_signature(path, FORM),
        "X-Plivo-Signature-V3-Nonce": NONCE,
    }
    response = client(plivo_webhook(), "plivo").post(path, data=FORM, headers=headers)
    assert response.status_code == 200
    assert response.json() == ["c-123", "+14155550100", "+14155550199"]


@pytest.mark.parametrize(
    ("headers", "form"),
    [
        ({}, FORM),
        ({"X-Plivo-Signature-V3": plivo_signature("/telephony/plivo/inbound/demo", FORM)}, FORM),
        (
            {"X-Plivo-Signature-V3": plivo_signature("/telephony/plivo/inbound/demo", FORM, "x"),
             "X-Plivo-Signature-V3-Nonce": NONCE},
            FORM,
        ),
        (
            {"X-Plivo-Signature-V3": plivo_signature("/telephony/plivo/inbound/demo", FORM),
             "X-Plivo-Signature-V3-Nonce": NONCE},
            {**FORM, "From": "+19995550100"},
        ),
        (
            {"X-Plivo-Signature-V3": plivo_signature("/telephony/plivo/inbound/demo", FORM),
             "X-Plivo-Signature-V3-Nonce": "98765432109876543210"},
            FORM,
        ),
    ],
)  # fmt: skip
def test_plivo_missing_or_wrong_signatures(headers: dict[str, str], form: dict[str, str]) -> None:
    response = client(plivo_webhook(), "plivo").post(
        "/telephony/plivo/inbound/demo", data=form, headers=headers
    )
    assert response.status_code == 403


@pytest.mark.parametrize("version", [3, 2])
def test_vobiz_signature_over_the_url_and_nonce(version: int) -> None:
    path = "/telephony/vobiz/inbound/demo?ctx_a=1"
    headers = {
        f"X-Vobiz-Signature-V{version}": vobiz_signature(path, version=version),
        f"X-Vobiz-Signature-V{version}-Nonce": NONCE,
    }
    response = client(vobiz_webhook(), "vobiz").post(path, data=FORM, headers=headers)
    assert response.status_code == 200
    assert response.json() == ["c-123", "+14155550100", "+14155550199"]


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-Vobiz-Signature-V3": vobiz_signature("/telephony/vobiz/inbound/demo")},
        {"X-Vobiz-Signature-V3": vobiz_signature("/telephony/vobiz/inbound/demo", "other"),
         "X-Vobiz-Signature-V3-Nonce": NONCE},
        {"X-Vobiz-Signature-V3": vobiz_signature("/telephony/vobiz/inbound/other"),
         "X-Vobiz-Signature-V3-Nonce": NONCE},
        {"X-Vobiz-Signature-V3": vobiz_signature("/telephony/vobiz/inbound/demo", version=2),
         "X-Vobiz-Signature-V3-Nonce": NONCE},
    ],
)  # fmt: skip
def test_vobiz_missing_or_wrong_signatures(headers: dict[str, str]) -> None:
    response = client(vobiz_webhook(), "vobiz").post(
        "/telephony/vobiz/inbound/demo", data=FORM, headers=headers
    )
    assert response.status_code == 403


@pytest.mark.parametrize("hook", [plivo_webhook(), vobiz_webhook()])
def test_connect_streams_bidirectionally_with_the_parameters_in_the_url(
    hook: PlivoWebhook | VobizWebhook,
) -> None:
    params = {"call_id": "c1", "agent_id": "demo", "ctx_note": 'a "quoted" <value> & more'}
    response = hook.connect("wss://voice.example.com/ws/x", params)
    assert response.media_type == "application/xml"
    root = ET.fromstring(bytes(response.body))  # noqa: S314 - our own answer
    assert root.tag == "Response"
    (stream,) = root
    assert stream.tag == "Stream"
    assert stream.attrib["bidirectional"] == "true"
    assert stream.attrib["keepCallAlive"] == "true"
    assert stream.attrib["contentType"] == "audio/x-mulaw;rate=8000"
    url = urlsplit((stream.text or "").strip())
    assert (url.scheme, url.netloc, url.path) == ("wss", "voice.example.com", "/ws/x")
    assert dict(parse_qsl(url.query)) == params


@pytest.mark.parametrize("hook", [plivo_webhook(), vobiz_webhook()])
def test_decline_speaks_and_hangs_up(hook: PlivoWebhook | VobizWebhook) -> None:
    root = ET.fromstring(bytes(hook.decline("Sorry & bye.").body))  # noqa: S314
    assert [(child.tag, child.text) for child in root] == [
        ("Speak", "Sorry & bye."),
        ("Hangup", None),
    ]


@pytest.mark.parametrize("hook", [plivo_webhook(), vobiz_webhook()])
def test_busy_rejects_the_call_unanswered(hook: PlivoWebhook | VobizWebhook) -> None:
    root = ET.fromstring(bytes(hook.busy().body))  # noqa: S314
    assert [(child.tag, child.attrib) for child in root] == [("Hangup", {"reason": "busy"})]


def test_placeholder_tokens_are_refused_in_production() -> None:
    prod = settings().model_copy(update={"environment": Environment.PRODUCTION})
    with pytest.raises(ValueError, match="PLIVO"):
        PlivoWebhook(prod, PlivoSettings())
    with pytest.raises(ValueError, match="VOBIZ"):
        VobizWebhook(prod, VobizSettings())


def test_plivo_answer_by_get_signs_the_query() -> None:
    query = "CallUUID=c-9&From=%2B14155550100&To=%2B14155550199&ctx_a=1"
    url = f"{PUBLIC}/telephony/plivo/inbound/demo?{query}"
    signed = construct_get_url(url, {}).decode()
    signature = get_signature_v3(TOKEN.encode(), signed, NONCE.encode()).decode()
    headers = {"X-Plivo-Signature-V3": signature, "X-Plivo-Signature-V3-Nonce": NONCE}
    hook = client(plivo_webhook(), "plivo")
    ok = hook.get(f"/telephony/plivo/inbound/demo?{query}", headers=headers)
    forged = hook.get(f"/telephony/plivo/inbound/demo?{query}&To=1", headers=headers)
    assert ok.status_code == 200
    assert ok.json() == ["c-9", "+14155550100", "+14155550199"]
    assert forged.status_code == 403


def test_vobiz_answer_by_get_reads_the_query() -> None:
    path = "/telephony/vobiz/inbound/demo?CallUUID=c-9&From=%2B14155550100&To=%2B14155550199"
    headers = {"X-Vobiz-Signature-V3": vobiz_signature(path), "X-Vobiz-Signature-V3-Nonce": NONCE}
    response = client(vobiz_webhook(), "vobiz").get(path, headers=headers)
    assert response.status_code == 200
    assert response.json() == ["c-9", "+14155550100", "+14155550199"]


@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        ("14155550100", "+14155550100"),  # Plivo's and Vobiz's bare digits
        ("+14155550100", "+14155550100"),
        ("sip:alice@example.com", "sip:alice@example.com"),
        ("0123", "0123"),  # not E.164 without its plus: left as sent
        ("", None),
    ],
)
def test_numbers_become_e164_when_sent_as_bare_digits(sent: str, kept: str | None) -> None:
    assert phone(sent) == kept
