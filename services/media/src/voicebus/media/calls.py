"""The calls this media instance owns: a :class:`CallSession` per claimed call."""

from __future__ import annotations

import asyncio
import logging

from voicebus.contracts.events import CallEnded, CallStarted
from voicebus.media.engine_set import EngineAccess
from voicebus.media.metrics import CALLS
from voicebus.media.models import SharedModels
from voicebus.media.session import CallSession
from voicebus.media.settings import MediaSettings
from voicebus.runtime.errors import VoicebusError
from voicebus.runtime.service import Service

log = logging.getLogger(__name__)


class MediaDrainingError(VoicebusError):
    """This instance is draining (SIGTERM): a new call is refused, so another instance
    claims it (the claims consumer redelivers the refused ``call.started``)."""


class MediaCalls:
    """Starts a session when a call is claimed and ends it when the call ends.

    Args:
        service: the media service.
        settings: its settings.
        models: the process's VAD and smart-turn models.
    """

    def __init__(
        self,
        service: Service,
        settings: MediaSettings,
        models: SharedModels,
        access: EngineAccess | None = None,
    ) -> None:
        self._access = access
        self._service = service
        self._settings = settings
        self._models = models
        self._sessions: dict[str, CallSession] = {}
        self._draining = False
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def sessions(self) -> dict[str, CallSession]:
        """Live sessions by call id (read-only use)."""
        return self._sessions

    async def on_start(self, event: CallStarted) -> None:
        """``CallClaims`` won this call: subscribe now, build the pipeline in the background.

        Also how a call is taken over from a media instance that died: audio is
        served from the moment of the takeover on. Returns quickly, so the claims
        consumer moves on to the next call at once. A redelivered ``call.started``
        of a call already served is ignored.
        """
        if event.call_id in self._sessions:
            return
        if self._draining:
            raise MediaDrainingError("media is draining: no new call")
        session = CallSession(self._service, self._settings, self._models, event, self._access)
        self._sessions[event.call_id] = session
        self._count()
        try:
            await session.open()
        except BaseException:
            del self._sessions[event.call_id]
            self._count()
            await session.close()
            raise
        log.info("media call started", extra={"call_id": event.call_id})

    async def on_end(self, event: CallEnded) -> None:
        """The call ended: tear its session down."""
        session = self._sessions.pop(event.call_id, None)
        self._count()
        if session is not None:
            await session.close()
            log.info("media call ended", extra={"call_id": event.call_id})

    async def on_lost(self, call_id: str) -> None:
        """Another instance took the call over: stop serving it here."""
        session = self._sessions.pop(call_id, None)
        self._count()
        if session is not None:
            await session.close()
            log.warning("media call lost to another instance", extra={"call_id": call_id})

    async def close_all(self) -> None:
        """Tear every session down (service shutdown)."""
        while self._sessions:
            _call_id, session = self._sessions.popitem()
            await session.close()
        self._count()

    async def drain(self, bound_s: float) -> None:
        """Take no new call and wait up to ``bound_s`` for the live ones to end.

        Calls still live after the bound are left to :meth:`close_all`; another
        instance takes them over once this one's leases lapse.
        """
        self._draining = True
        if not self._sessions or bound_s <= 0:
            return
        log.info("draining media calls", extra={"calls": len(self._sessions), "drain_s": bound_s})
        try:
            await asyncio.wait_for(self._idle.wait(), bound_s)
        except TimeoutError:
            log.warning("media calls left after the drain", extra={"calls": len(self._sessions)})
            return
        log.info("media calls drained")

    def _count(self) -> None:
        CALLS.set(len(self._sessions))
        if self._sessions:
            self._idle.clear()
        else:
            self._idle.set()
