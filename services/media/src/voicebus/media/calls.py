"""The calls this media instance owns: a :class:`CallSession` per claimed call."""

from __future__ import annotations

import logging

from voicebus.contracts.events import CallEnded, CallStarted
from voicebus.media.engine_set import EngineAccess
from voicebus.media.metrics import CALLS
from voicebus.media.models import SharedModels
from voicebus.media.session import CallSession
from voicebus.media.settings import MediaSettings
from voicebus.runtime.service import Service

log = logging.getLogger(__name__)


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
        session = CallSession(self._service, self._settings, self._models, event, self._access)
        self._sessions[event.call_id] = session
        CALLS.set(len(self._sessions))
        try:
            await session.open()
        except BaseException:
            del self._sessions[event.call_id]
            CALLS.set(len(self._sessions))
            await session.close()
            raise
        log.info("media call started", extra={"call_id": event.call_id})

    async def on_end(self, event: CallEnded) -> None:
        """The call ended: tear its session down."""
        session = self._sessions.pop(event.call_id, None)
        CALLS.set(len(self._sessions))
        if session is not None:
            await session.close()
            log.info("media call ended", extra={"call_id": event.call_id})

    async def on_lost(self, call_id: str) -> None:
        """Another instance took the call over: stop serving it here."""
        session = self._sessions.pop(call_id, None)
        CALLS.set(len(self._sessions))
        if session is not None:
            await session.close()
            log.warning("media call lost to another instance", extra={"call_id": call_id})

    async def close_all(self) -> None:
        """Tear every session down (service shutdown)."""
        while self._sessions:
            _call_id, session = self._sessions.popitem()
            await session.close()
        CALLS.set(0)
