"""The simulated caller against a minimal fake Twilio-facing server (``caller_fake_twilio``)."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from caller_fake_twilio import TOKEN, FakeTwilioServer

from voicebus.devkit.caller import CallClosedError, CallRejectedError, ToneVoice, TwilioCaller
from voicebus.devkit.caller.audio import last_audible, resample, tone, write_wav

pytestmark = pytest.mark.integration


def _b64(text: str) -> bytes:
    return base64.b64decode(text)


@pytest.fixture
async def server() -> AsyncIterator[FakeTwilioServer]:
    async with FakeTwilioServer(greeting_ms=1000).running() as fake:
        yield fake


async def test_a_call_speaks_twilios_protocol(server: FakeTwilioServer) -> None:
    async with TwilioCaller(server.url, TOKEN, "demo", {"name": "Ana"}, voice=ToneVoice()) as call:
        assert call.call_id == "call-0001"
        assert await call.wait_for_agent_silence(quiet_ms=400, timeout=20)
        turn = await call.say_text("Hi, where is my order 1234?")
        await call.send_dtmf("5")
        assert await call.wait_for_agent_silence(quiet_ms=400, timeout=20)
        result = await call.hang_up()

    hook = server.webhooks[0]
    assert hook["valid"]
    assert hook["target"] == "/telephony/twilio/inbound/demo?ctx_name=Ana"
    assert hook["params"]["CallSid"] == call.call_sid
    assert hook["params"]["From"] == call.from_number

    messages = [m for _, m in server.received]
    assert messages[0] == {"event": "connected", "protocol": "Call", "version": "1.0.0"}
    start = messages[1]
    assert start["event"] == "start"
    assert start["streamSid"] == start["start"]["streamSid"] == call.stream_sid
    assert start["start"]["callSid"] == call.call_sid
    assert start["start"]["customParameters"] == {
        "call_id": "call-0001",
        "agent_id": "demo",
        "ctx_name": "Ana",
    }
    assert start["start"]["mediaFormat"] == {
        "encoding": "audio/x-mulaw",
        "sampleRate": 8000,
        "channels": 1,
    }
    assert [m["sequenceNumber"] for m in messages[1:]] == [str(n) for n in range(1, len(messages))]
    assert all(m["streamSid"] == call.stream_sid for m in messages[1:])
    media = server.messages("media")
    assert [m["media"]["chunk"] for m in media] == [str(n) for n in range(1, len(media) + 1)]
    assert [m["media"]["timestamp"] for m in media] == [str(20 * n) for n in range(len(media))]
    assert {len(_b64(m["media"]["payload"])) for m in media} == {160}
    assert {m["media"]["track"] for m in media} == {"inbound"}
    assert server.messages("dtmf")[0]["dtmf"] == {"track": "inbound_track", "digit": "5"}
    assert messages[-1] == {
        "event": "stop",
        "sequenceNumber": str(len(messages) - 1),
        "stop": {"accountSid": call.account_sid, "callSid": call.call_sid},
        "streamSid": call.stream_sid,
    }

    # Real time: the caller never sends faster than one frame per 20 ms.
    media_times = [t for t, m in server.received if m["event"] == "media"]
    assert media_times[-1] - media_times[0] >= (len(media) - 1) * 0.020 * 0.9 - 0.1

    # Marks come back once their audio has played, each once, in order.
    assert server.echo_order == list(server.mark_sent)
    # The greeting's last mark: 50 frames of audio before it, so 50 ticks of the caller
    # (one media message each) before its echo, whatever the machine's load.
    sent, echoed = server.mark_sent["greeting:49"], server.mark_echoed["greeting:49"]
    assert server.media_between(sent, echoed) >= 45
    assert result.marks_received == len(result.marks_echoed) == len(server.mark_sent)

    assert result.turns == [turn]
    assert turn.latency_ms is not None
    assert 250 <= turn.latency_ms < 10_000  # the fake waits 300 ms of quiet
    assert turn.ended_ms is not None
    line_ms = turn.ended_ms - turn.started_ms
    assert result.heard_ms >= 1000 + 0.9 * line_ms  # greeting + the echo of the line
    assert len(result.heard_audio) == len(result.said_audio) == 16 * result.duration_ms
    assert result.clears_received == 0
    assert result.protocol_errors == []
    assert not result.server_closed


async def test_a_bad_auth_token_is_refused(server: FakeTwilioServer) -> None:
    caller = TwilioCaller(server.url, "wrong-token", "demo", voice=ToneVoice())
    with pytest.raises(CallRejectedError) as err:
        await caller.start()
    assert err.value.status == 403
    assert not server.webhooks[0]["valid"]


async def test_barge_in_gets_a_clear_and_cuts_the_reply() -> None:
    fake = FakeTwilioServer(greeting_ms=400, reply_ms=4000)
    async with fake.running(), TwilioCaller(fake.url, TOKEN, "demo", voice=ToneVoice()) as call:
        assert await call.wait_for_agent_silence(quiet_ms=300, timeout=20)
        first = await call.say_text("Tell me everything")
        assert await call.wait_for_agent_audio(500, timeout=20)
        second = await call.say_text("Stop")
        assert await call.wait_for_agent_audio(200, timeout=20)
        result = await call.hang_up()

    assert len(fake.clears_sent) == 1
    assert result.clears_received == 1
    assert second.barge_in
    assert not first.barge_in
    assert first.latency_ms is not None
    assert second.latency_ms is not None
    # The cleared reply's marks came back at the clear, long before their audio could play.
    cut = [n for n in fake.mark_sent if n.startswith("r1:")]
    assert set(cut) <= set(result.marks_echoed)
    assert fake.media_between(fake.clears_sent[0], fake.mark_echoed[cut[-1]]) < 25
    first_reply = next(s for s in result.heard_spans if s[0] >= (first.ended_ms or 0))
    assert first_reply[1] - first_reply[0] < 3000


async def test_the_server_hanging_up_ends_the_call() -> None:
    fake = FakeTwilioServer(greeting_ms=300, hang_up_after=0)
    async with fake.running(), TwilioCaller(fake.url, TOKEN, "demo", voice=ToneVoice()) as call:
        assert await call.wait_closed(timeout=20)
        with pytest.raises(CallClosedError):
            await call.say_text("Hello?")
        result = await call.hang_up()
    assert result.server_closed
    assert result.heard_ms >= 280
    assert fake.messages("stop") == []


async def test_a_wav_line_is_spoken_at_8_khz(server: FakeTwilioServer, tmp_path: Path) -> None:
    path = tmp_path / "line.wav"
    write_wav(path, resample(tone(800), 8000, 16000), rate=16000)
    async with TwilioCaller(server.url, TOKEN, "demo", voice=ToneVoice()) as call:
        assert await call.wait_for_agent_silence(quiet_ms=300, timeout=20)
        turn = await call.say_wav(path)
        assert await call.wait_for_agent_silence(quiet_ms=300, timeout=20)
        result = await call.hang_up()
    assert turn.ended_ms is not None
    assert 760 <= turn.ended_ms - turn.started_ms <= 820
    assert turn.latency_ms is not None
    assert result.heard_ms >= 1000 + 760  # the greeting and the line echoed back


async def test_the_default_voice_is_the_local_tts() -> None:
    caller = TwilioCaller("http://127.0.0.1:9", TOKEN, "demo")
    pcm = await caller.synthesize("Hi, where is my order 1234?")
    end = last_audible(pcm)
    assert end is not None
    assert 1.0 < end / 8000 < 6.0  # seconds of speech at 8 kHz
