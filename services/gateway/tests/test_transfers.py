"""Transfer URLs (pure) and each provider's transfer markup."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import pytest

from voicebus.contracts.events import Direction
from voicebus.gateway.parameters import CallIdentity, InvalidStreamParametersError
from voicebus.gateway.providers.plivo.transfer import PlivoTransferMarkup
from voicebus.gateway.providers.twilio.outbound import TwilioTransferMarkup
from voicebus.gateway.providers.vobiz.transfer import VobizTransferMarkup
from voicebus.gateway.settings import GatewaySettings
from voicebus.gateway.transfers import transfer_order, transfer_url, whisper_url

pytestmark = pytest.mark.unit

KEY = b"k" * 32
NOW = 1_800_000_000.0
CALL = CallIdentity(
    call_id="c1", tenant_id="t1", agent_id="a1", from_number="+14155550100",
    context={"customer": "Ada"}, direction=Direction.INBOUND,
)  # fmt: skip
BASE = "https://gw.example/telephony/plivo/transfer/c1"


def _query(url: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(url).query))


def test_a_transfer_url_round_trips_without_the_caller_or_context() -> None:
    url = transfer_url(BASE, CALL, "+14155550123", "Ada asks about her order", KEY, NOW)
    assert url.startswith(f"{BASE}?")
    query = _query(url)
    assert "from_number" not in query
    assert "ctx_customer" not in query
    order = transfer_order(query, "c1", KEY, NOW + 60)
    assert (order.call.call_id, order.call.tenant_id) == ("c1", "t1")
    assert order.to_number == "+14155550123"
    assert order.announcement == "Ada asks about her order"
    assert not order.whisper
    assert transfer_order(_query(whisper_url(url)), "c1", KEY, NOW).whisper


def test_a_cold_transfer_has_no_announcement() -> None:
    order = transfer_order(
        _query(transfer_url(BASE, CALL, "+1415", None, KEY, NOW)), "c1", KEY, NOW
    )
    assert order.announcement is None


@pytest.mark.parametrize(
    ("name", "value"),
    [("to_number", "+19005550000"), ("ctx_announcement", "other"), ("vb_token", "1.ab")],
)
def test_a_changed_query_is_refused(name: str, value: str) -> None:
    query = _query(transfer_url(BASE, CALL, "+14155550123", "hi", KEY, NOW)) | {name: value}
    with pytest.raises(InvalidStreamParametersError):
        transfer_order(query, "c1", KEY, NOW)


def test_a_url_for_another_call_or_expired_is_refused() -> None:
    query = _query(transfer_url(BASE, CALL, "+14155550123", None, KEY, NOW))
    with pytest.raises(InvalidStreamParametersError):
        transfer_order(query, "c2", KEY, NOW)
    with pytest.raises(InvalidStreamParametersError):
        transfer_order(query, "c1", KEY, NOW + 2 * 86400)
    with pytest.raises(InvalidStreamParametersError):
        transfer_order(query, "c1", b"x" * 32, NOW)


def test_markup_dials_the_target() -> None:
    settings = GatewaySettings()
    twilio = TwilioTransferMarkup(settings).dial(
        "+14155550123", "+14155550100", "https://w/x?a=1&b=2"
    )
    text = bytes(twilio.body).decode()
    assert 'url="https://w/x?a=1&amp;b=2"' in text
    assert "+14155550123</Number>" in text
    for markup in (PlivoTransferMarkup(settings), VobizTransferMarkup(settings)):
        body = bytes(markup.dial("+14155550123", "+14155550100", None).body).decode()
        assert "<Number>14155550123</Number>" in body
        assert 'callerId="14155550100"' in body
        assert "Ada" in bytes(markup.whisper("Ada").body).decode()
    assert "<Say>Ada</Say>" in bytes(TwilioTransferMarkup(settings).whisper("Ada").body).decode()
