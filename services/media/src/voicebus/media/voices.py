"""Whose voice a ``ctl.say`` chunk is spoken in: the agent speaking it.

A call starts with its agent's TTS. After a handoff another agent of the tenant
speaks (each ``Say`` names it): its profile is looked up and its TTS created the
first time it speaks on the call, then kept until the call ends, so handing back
and forth costs one lookup per agent. A lookup or an engine that fails keeps the
current voice (the caller still hears the answer) and is reported as a
``call.error``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from voicebus.engines.base import TTSEngine
from voicebus.engines.fallback.tts import FallbackTTS
from voicebus.engines.streaming import TimedTTS
from voicebus.media.engine_set import close_engines

log = logging.getLogger(__name__)

Voice = TTSEngine | TimedTTS
MakeVoice = Callable[[str], Awaitable[FallbackTTS | None]]
"""Creates an agent's TTS (its profile looked up); None when it cannot."""


class Voices:
    """The TTS engine of each agent speaking on one call.

    Args:
        agent_id: the call's agent, whose voice is ``default``.
        default: the call's TTS, or None when none could be created.
        make: creates another agent's TTS, the first time that agent speaks.
    """

    def __init__(self, agent_id: str, default: Voice | None, make: MakeVoice) -> None:
        self._agent_id = agent_id
        self._default = default
        self._make = make
        self._others: dict[str, FallbackTTS | None] = {}

    async def engine(self, agent_id: str | None) -> Voice | None:
        """The voice of ``agent_id`` (None: the call's agent)."""
        if agent_id is None or agent_id == self._agent_id:
            return self._default
        if agent_id not in self._others:
            self._others[agent_id] = await self._make(agent_id)
            if self._others[agent_id] is not None:
                log.info("voice switched", extra={"agent_id": agent_id})
        return self._others[agent_id] or self._default

    async def aclose(self) -> None:
        """Close the engines created for other agents (the call's own are closed with it)."""
        voices, self._others = self._others, {}
        await close_engines([e for v in voices.values() if v is not None for e in v.engines])
