"""The real local engines through the real service: a synthesized line comes back as its words."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from media_bus_kit import Call, answer_agents, media_stack, profile
from media_kit import RATE, silence, until

from voicebus.devkit.embedded_nats import EmbeddedNats
from voicebus.engines.tts.hibari import HibariTTS
from voicebus.runtime.codecs import pcm16_to_ulaw, ulaw_to_pcm16

pytestmark = pytest.mark.integration


def words(text: str) -> str:
    """Lower-case words only: whisper may punctuate and write numbers either way."""
    return " ".join(re.findall(r"[a-z0-9]+", text.lower()))


async def test_a_spoken_line_comes_back_as_its_transcript_and_a_reply_is_spoken(
    embedded_nats_factory: Callable[..., EmbeddedNats],
) -> None:
    tts = HibariTTS()
    line = b"".join([pcm async for pcm in tts.synthesize("Where is my order?", RATE)])
    phone_line = ulaw_to_pcm16(pcm16_to_ulaw(line))  # what the gateway gets from Twilio
    server = embedded_nats_factory()
    async with media_stack(server, orchestrator=False, warm_engines=True,
                           default_stt="whisper-local", default_tts="hibari") as stack:  # fmt: skip
        await answer_agents(stack.nc, {"local": profile("local", "whisper-local", "hibari")},
                            stack.lookups)  # fmt: skip
        call = Call(stack, agent_id="local")
        await call.start()
        await call.speak(silence(400) + phone_line + silence(1200))
        await until(lambda: bool(call.of("transcript.final.v1")), timeout=30)
        final = call.of("transcript.final.v1")[0].data
        assert words(final.text) == "where is my order"
        assert final.engine == "whisper-local"
        assert call.of("call.error.v1") == []

        await call.say("a1", "Your order shipped yesterday.")
        await until(lambda: any(f.last for f in call.out), timeout=30)
        audio = b"".join(f.pcm for f in call.out)
        assert 0.8 <= len(audio) / (2 * RATE) <= 4.0  # a short sentence
        assert max(abs(int.from_bytes(audio[i : i + 2], "little", signed=True))
                   for i in range(0, len(audio), 2)) > 1000  # fmt: skip  # not silence
        await call.end()
