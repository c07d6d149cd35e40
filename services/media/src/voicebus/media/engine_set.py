"""A call's STT and TTS: the agent's engines per role, in fallback order.

Each role's engines (the agent's choice, then its fallbacks) are created through the
registries with the key resolved for the call's tenant, and put behind one fallback
adapter with the process's circuit breakers. An engine that cannot be created
(unknown name, bad option, no key, missing model) is left out of the chain and
reported as a ``call.error`` (``engine_error``); a role with no engine at all goes
without (no transcripts, or nothing spoken).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from voicebus.contracts.rpc import AgentProfile, EngineChoice, FallbackSettings
from voicebus.engines.base import (
    STT,
    TTS,
    EngineContext,
    EngineError,
    Registry,
    STTEngine,
    TTSEngine,
    Warmable,
)
from voicebus.engines.fallback.chain import Budgets
from voicebus.engines.fallback.incidents import Reporter, ignore
from voicebus.engines.fallback.stt import FallbackSTT
from voicebus.engines.fallback.tts import FallbackTTS
from voicebus.engines.keys import KeyResolver, shared_key_allowed
from voicebus.media.metrics import ENGINE_ERRORS

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class EngineAccess:
    """What engines of one call may use.

    Attributes:
        keys: resolves the tenant's vendor keys.
        allow_private_urls: engines may reach loopback/private hosts (SSRF guard off).
    """

    keys: KeyResolver | None = None
    allow_private_urls: bool = True


@dataclass(slots=True)
class EngineSet:
    """The engines of one call, and what went wrong creating them.

    Attributes:
        stt: speech to text (a fallback chain), or None.
        tts: text to speech (a fallback chain), or None.
        problems: one message per engine that could not be created.
    """

    stt: FallbackSTT | None = None
    tts: FallbackTTS | None = None
    problems: list[str] = field(default_factory=list)

    async def aclose(self) -> None:
        """Close the connections cloud engines hold (sockets, HTTP clients)."""
        await close_engines(
            [*(self.stt.engines if self.stt else []), *(self.tts.engines if self.tts else [])]
        )


async def close_engines(engines: Sequence[object]) -> None:
    """Close the connections engines hold; one that fails to close is logged, not raised."""
    for engine in engines:
        close = getattr(engine, "aclose", None)
        if close is None:
            continue
        try:
            await close()
        except (EngineError, OSError):
            log.info("engine close failed", extra={"engine": getattr(engine, "name", "?")})


def budgets(settings: FallbackSettings) -> Budgets:
    """The agent's failover budgets in seconds."""
    return Budgets(
        first_audio_s=settings.first_audio_ms / 1000,
        first_token_s=settings.first_token_ms / 1000,
        final_transcript_s=settings.final_transcript_ms / 1000,
        stall_s=settings.stall_ms / 1000,
    )


async def _create(
    registry: Registry[Any],
    choice: EngineChoice,
    tenant_id: str,
    access: EngineAccess,
    problems: list[str],
    template: bool,
) -> Any | None:
    try:
        shared = shared_key_allowed(choice.options, template=template)
        key = (
            None
            if access.keys is None
            else await access.keys.resolve(tenant_id, choice.engine, shared=shared)
        )
        context = EngineContext(
            api_key=key, tenant_id=tenant_id, allow_private_urls=access.allow_private_urls
        )
        # Factories may read model files: never on the event loop.
        return await asyncio.to_thread(registry.create, choice.engine, choice.options, context)
    except EngineError as exc:
        ENGINE_ERRORS.labels(registry.role).inc()
        log.warning("engine unavailable", extra={"role": registry.role, "engine": choice.engine})
        problems.append(f"{registry.role} engine {choice.engine!r} unavailable: {exc}")
        return None


async def _chain(
    registry: Registry[Any],
    choices: Sequence[EngineChoice],
    tenant_id: str,
    access: EngineAccess,
    problems: list[str],
    template: bool,
) -> list[Any]:
    engines = []
    for choice in choices:
        engine = await _create(registry, choice, tenant_id, access, problems, template)
        if engine is not None:
            engines.append(engine)
    return engines


async def create_engines(
    profile: AgentProfile,
    tenant_id: str = "default",
    access: EngineAccess | None = None,
    report: Reporter = ignore,
) -> EngineSet:
    """Create the profile's STT and TTS chains for one call."""
    access = access or EngineAccess()
    engines = EngineSet()
    stt: list[STTEngine] = await _chain(
        STT,
        [profile.stt, *profile.stt_fallbacks],
        tenant_id,
        access,
        engines.problems,
        profile.template,
    )
    if stt:
        engines.stt = FallbackSTT(stt, budgets=budgets(profile.fallback), report=report)
    engines.tts = await create_tts(profile, tenant_id, access, report, engines.problems)
    return engines


async def create_tts(
    profile: AgentProfile,
    tenant_id: str,
    access: EngineAccess,
    report: Reporter,
    problems: list[str],
) -> FallbackTTS | None:
    """The profile's TTS chain (its voice), or None when no engine of it could be created."""
    tts: list[TTSEngine] = await _chain(
        TTS, [profile.tts, *profile.tts_fallbacks], tenant_id, access, problems, profile.template
    )
    if not tts:
        return None
    return FallbackTTS(tts, budgets=budgets(profile.fallback), report=report)


async def warm(profile: AgentProfile, access: EngineAccess | None = None) -> EngineSet:
    """Create the profile's engines and load their models now (service start-up)."""
    engines = await create_engines(profile, access=access)
    candidates: list[object] = [
        *(engines.stt.engines if engines.stt else []),
        *(engines.tts.engines if engines.tts else []),
    ]
    for engine in candidates:
        if isinstance(engine, Warmable):
            try:
                await engine.warm()
            except EngineError as exc:
                engines.problems.append(f"warming {type(engine).__name__} failed: {exc}")
    return engines
