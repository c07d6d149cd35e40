"""Stand-in carriers' pure parts: callee behaviour by number, URL rebasing, Exotel protocol."""

from __future__ import annotations

import base64
import json

import pytest

from voicebus.devkit.caller.exotel import (
    ExotelProtocol,
    split_credentials,
    with_credentials,
)
from voicebus.devkit.caller.protocol import (
    ProtocolError,
    ServerClear,
    ServerMark,
    ServerMedia,
    StreamIds,
)
from voicebus.devkit.carriers.base import Behaviour, _rebase, behaviour_for

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("number", "behaviour"),
    [
        ("+14155550199", Behaviour.ANSWER),
        ("+14155550002", Behaviour.BUSY),
        ("+14155550003", Behaviour.NO_ANSWER),
        ("+14155550004", Behaviour.FAIL),
        ("+14155550005", Behaviour.MACHINE),
        ("+14155550006", Behaviour.REJECT),
    ],
)
def test_the_dialed_number_picks_the_callee(number: str, behaviour: Behaviour) -> None:
    assert behaviour_for(number) is behaviour


def test_public_urls_are_reached_on_the_gateway_keeping_credentials() -> None:
    assert (
        _rebase("wss://u:p@gw.example.com/vb/ws/exotel?a=1", "wss://gw.example.com/vb",
                "ws://127.0.0.1:9")
        == "ws://u:p@127.0.0.1:9/ws/exotel?a=1"
    )  # fmt: skip
    assert _rebase("https://elsewhere/x", "https://gw.example.com", "http://127.0.0.1:9") == (
        "https://elsewhere/x"
    )


def test_credentials_split_and_join() -> None:
    bare, credentials = split_credentials("wss://user:p%40ss@h:1/ws?x=1")
    assert (bare, credentials) == ("wss://h:1/ws?x=1", ("user", "p%40ss"))
    assert split_credentials("wss://h/ws") == ("wss://h/ws", None)
    assert with_credentials("wss://h/ws", ("a", "b")) == "wss://a:b@h/ws"


def test_exotel_protocol_messages() -> None:
    protocol = ExotelProtocol(StreamIds("AC", "CA", "MZ"), "+9111", "+9122")
    connected, start = (json.loads(m) for m in protocol.opening({"call_id": "c1"}))
    assert connected == {"event": "connected"}
    assert start["start"]["custom_parameters"] == {"call_id": "c1"}
    assert start["start"]["media_format"]["sample_rate"] == "8000"
    media = json.loads(protocol.media(b"\x01\x00" * 800, 1, 0))
    assert (media["media"]["chunk"], media["sequence_number"]) == ("1", "2")
    payload = base64.b64encode(b"\x00\x00" * 1600).decode()
    message = {"event": "media", "stream_sid": "MZ", "media": {"payload": payload}}
    assert protocol.parse(json.dumps(message)) == ServerMedia(b"\x00\x00" * 1600)
    assert protocol.small_chunks == 0
    message["media"] = {"payload": base64.b64encode(b"\x00" * 640).decode()}
    protocol.parse(json.dumps(message))
    assert protocol.small_chunks == 1
    mark = {"event": "mark", "stream_sid": "MZ", "mark": {"name": "m1"}}
    assert protocol.parse(json.dumps(mark)) == ServerMark("m1")
    assert protocol.parse('{"event":"clear","stream_sid":"MZ"}') == ServerClear()
    with pytest.raises(ProtocolError):
        protocol.parse('{"event":"clear","stream_sid":"other"}')
