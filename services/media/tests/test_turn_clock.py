"""Server-side turn latency: caller speech end to the reply's first audio, once per turn."""

from __future__ import annotations

import pytest

from voicebus.media.turn_clock import TurnClock

pytestmark = pytest.mark.unit


def test_the_first_reply_after_a_turn_is_measured_once() -> None:
    clock = TurnClock()
    assert clock.agent_audio_started(5.0) is None  # a greeting answers no turn
    clock.turn_ended(10.0)
    assert clock.armed
    assert clock.agent_audio_started(10.8) == pytest.approx(0.8)
    assert clock.agent_audio_started(12.0) is None  # the reply's next utterance


def test_a_later_turn_restarts_the_wait() -> None:
    clock = TurnClock()
    clock.turn_ended(10.0)
    clock.turn_ended(13.0)  # the caller went on before the agent answered
    assert clock.agent_audio_started(13.5) == pytest.approx(0.5)


def test_a_turn_without_a_reply_is_not_measured() -> None:
    clock = TurnClock(max_s=30.0)
    clock.turn_ended(10.0)
    clock.no_reply()  # a backchannel
    assert clock.agent_audio_started(11.0) is None
    clock.turn_ended(20.0)
    assert clock.agent_audio_started(60.0) is None  # the agent spoke on its own, much later
    assert not clock.armed
