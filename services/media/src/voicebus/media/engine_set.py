"""A call's STT and TTS engines, created from the agent's profile through the registries.

An engine that cannot be created (unknown name, bad option, missing model) does
not end the call: the role goes without (no transcripts, or nothing spoken) and
the failure becomes a ``call.error`` (``engine_error``).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import TypeVar

from voicebus.contracts.rpc import AgentProfile, EngineChoice
from voicebus.engines.base import STT, TTS, EngineError, Registry, STTEngine, TTSEngine, Warmable
from voicebus.media.metrics import ENGINE_ERRORS

log = logging.getLogger(__name__)

E = TypeVar("E")


@dataclass(slots=True)
class EngineSet:
    """The engines of one call, and what went wrong creating them.

    Attributes:
        stt: speech to text, or None.
        tts: text to speech, or None.
        problems: one message per engine that could not be created.
    """

    stt: STTEngine | None = None
    tts: TTSEngine | None = None
    problems: list[str] = field(default_factory=list)


async def _create(registry: Registry[E], choice: EngineChoice, problems: list[str]) -> E | None:
    try:
        # Factories may read model files: never on the event loop.
        return await asyncio.to_thread(registry.create, choice.engine, choice.options)
    except EngineError as exc:
        ENGINE_ERRORS.labels(registry.role).inc()
        log.warning("engine unavailable", extra={"role": registry.role, "engine": choice.engine})
        problems.append(f"{registry.role} engine {choice.engine!r} unavailable: {exc}")
        return None


async def create_engines(profile: AgentProfile) -> EngineSet:
    """Create the profile's STT and TTS engines."""
    engines = EngineSet()
    engines.stt = await _create(STT, profile.stt, engines.problems)
    engines.tts = await _create(TTS, profile.tts, engines.problems)
    return engines


async def warm(profile: AgentProfile) -> EngineSet:
    """Create the profile's engines and load their models now (service start-up)."""
    engines = await create_engines(profile)
    candidates: list[object] = [engines.stt, engines.tts]
    for engine in candidates:
        if isinstance(engine, Warmable):
            try:
                await engine.warm()
            except EngineError as exc:
                engines.problems.append(f"warming {type(engine).__name__} failed: {exc}")
    return engines
