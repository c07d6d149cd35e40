"""The calls this instance owns: claim, per-call event subscription, takeover, end.

Each owned call gets an ordered JetStream consumer on ``vb.evt.<tenant>.<call>.>``
(raw nats-py on ``service.nc``; no ack, no reply). JetStream rather than core
NATS because a takeover must see what happened while nobody owned the call:
the consumer starts after the session's ``last_seq``, so a transcript published
between an owner's death and the takeover is still answered, once.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from typing import Final, Protocol, runtime_checkable

from nats.aio.msg import Msg
from nats.js.api import ConsumerConfig, DeliverPolicy
from nats.js.errors import KeyWrongLastSequenceError
from pydantic import ValidationError

from voicebus.contracts import streams, subjects
from voicebus.contracts.campaigns import campaign_speaks
from voicebus.contracts.commands import HangUp, HangUpData
from voicebus.contracts.events import (
    CallEnded,
    CallEndedData,
    CallError,
    CallErrorData,
    CallStarted,
    EndReason,
    ErrorCode,
    parse_event,
)
from voicebus.contracts.ids import derived_id
from voicebus.engines.base import LLM, EngineContext, EngineError, LLMEngine
from voicebus.engines.builtin import load_builtin_engines
from voicebus.engines.fallback.llm import FallbackLLM
from voicebus.engines.keys import env_names
from voicebus.orchestrator import metrics
from voicebus.orchestrator.agents import Agent, AgentCatalog
from voicebus.orchestrator.conversation import Conversation
from voicebus.orchestrator.engine_events import EngineEvents, budgets_of
from voicebus.orchestrator.errors import AgentConfigError
from voicebus.orchestrator.outbox import BusOutbox
from voicebus.orchestrator.session import Session, SessionStorage, SessionStore
from voicebus.orchestrator.settings import OrchestratorSettings
from voicebus.runtime.claims import CallClaims
from voicebus.runtime.service import Service

log = logging.getLogger(__name__)

_ENDED_GUARD: Final = "ended"
"""Key prefix in ``vb_call_owners`` of the once-guard for a ``gateway_lost`` end."""
_HEARTBEAT_S: Final = 1.0


@runtime_checkable
class _Closable(Protocol):
    async def aclose(self) -> None: ...


class _Subscription(Protocol):
    async def unsubscribe(self, limit: int = 0) -> None: ...


@dataclass(slots=True)
class _LiveCall:
    conversation: Conversation
    subscription: _Subscription | None = None

    async def close(self) -> None:
        if self.subscription is not None:
            await self.subscription.unsubscribe()
            self.subscription = None
        await self.conversation.close()


class Orchestrator:
    """Runs the conversations of the calls this instance owns.

    Args:
        service: the orchestrator service (claims, KV and subscriptions hang off it).
        settings: the service settings.
        environ: environment for ``${VAR}`` in agent files.
    """

    def __init__(
        self, service: Service, settings: OrchestratorSettings, environ: Mapping[str, str]
    ) -> None:
        self._service = service
        self._settings = settings
        self._environ = environ
        self._conversation_settings = settings.conversation()
        self.catalog = AgentCatalog()
        self._engines: dict[str, LLMEngine] = {}
        self._store: SessionStorage | None = None
        self._calls: dict[str, _LiveCall] = {}
        self._outbox = BusOutbox(
            service.broker, settings.connection_name, connection=lambda: service.nc
        )
        self.claims = CallClaims(
            service,
            on_start=self._on_start,
            on_end=self._on_end,
            on_lost=self._drop,
            take_over=True,
            on_gateway_lost=self._gateway_lost,
        )
        service.on_connected(self._open)
        service.on_shutdown(self._close)

    @property
    def conversations(self) -> Mapping[str, Conversation]:
        """Conversations running here, by call id."""
        return {call_id: live.conversation for call_id, live in self._calls.items()}

    @property
    def store(self) -> SessionStorage:
        """Where sessions are saved (after start)."""
        if self._store is None:
            raise RuntimeError("orchestrator used before the service connected")
        return self._store

    # -- start and stop -----------------------------------------------------------

    async def _open(self, service: Service) -> None:
        load_builtin_engines()
        self.catalog = AgentCatalog.load(self._settings.agents_dir, self._environ)
        self._engines = {}
        for agent_id in self.catalog.ids():
            agent = self.catalog.get(agent_id)
            assert agent is not None
            self._engines[agent_id] = _engine_for(agent, self._environ)
        self._store = SessionStore(await service.js.key_value(streams.SESSIONS.bucket))

    async def _close(self, _service: Service) -> None:
        for call_id in list(self._calls):
            await self._drop(call_id)
        for engine in self._engines.values():
            if isinstance(engine, _Closable):
                await engine.aclose()

    # -- claims -----------------------------------------------------------------

    async def _on_start(self, event: CallStarted) -> None:
        if event.call_id in self._calls:
            return  # call.started redelivered: already running here
        if campaign_speaks(event.data.context):
            # A notification campaign speaks its message itself: no agent converses. The
            # claim stays, so the call is still watched (gateway lost) like any other.
            log.info("notification call: no conversation", extra={"call_id": event.call_id})
            return
        agent = self.catalog.get(event.data.agent_id)
        if agent is None or not agent.serves(event.tenant_id):
            await self._refuse(event)
            return
        loaded = await self.store.load(event.call_id)
        if loaded is not None:
            await self._run(*loaded, agent=agent, fresh=False)
        else:
            await self._run(Conversation.new_session(event, agent), None, agent=agent, fresh=True)

    async def take_over(self, call_id: str) -> bool:
        """Continue a live call whose owner is gone, from its session in ``vb_sessions``.

        The claims' scan calls this path for every call left without an orchestrator;
        the call's ``call.started`` is read back from ``VB_EVENTS`` and handled like a
        new claim, which resumes the saved session (:meth:`_on_start`). False if
        another instance holds the call or it has ended.
        """
        return await self.claims.take_over(call_id)

    async def _gateway_lost(self, event: CallStarted) -> None:
        """The gateway holding the call's media stream died: end the call, once.

        The orchestrator says so (not a gateway) because it owns every live call
        through its lease and is the one that decides a call is over; a surviving
        gateway knows nothing of another gateway's calls, and there may be none.
        The KV create is the once-guard between orchestrator instances; the event
        id is derived from the call, so a retried publish is stored once as well.
        """
        guard = streams.owner_key(_ENDED_GUARD, event.call_id)
        try:
            await self.claims.leases.kv.create(guard, self._outbox.source.encode())
        except KeyWrongLastSequenceError:
            return  # another instance ended it
        try:
            await self._publish_gateway_lost(event)
        except BaseException:
            # Not stored: free the guard so that the next scan tries again.
            await self.claims.leases.kv.delete(guard)
            raise

    async def _publish_gateway_lost(self, event: CallStarted) -> None:
        await self._outbox.publish(
            CallEnded(
                id=derived_id(event.call_id, EndReason.GATEWAY_LOST.value),
                tenant_id=event.tenant_id,
                call_id=event.call_id,
                source=self._outbox.source,
                data=CallEndedData(
                    reason=EndReason.GATEWAY_LOST,
                    detail="the gateway holding the media stream stopped renewing its lease",
                ),
            )
        )

    async def _on_end(self, event: CallEnded) -> None:
        await self._drop(event.call_id)
        await self.store.delete(event.call_id)

    # -- one call -----------------------------------------------------------------

    async def _run(
        self, session: Session, revision: int | None, *, agent: Agent, fresh: bool
    ) -> None:
        engine = self._engines[agent.id]
        if isinstance(engine, FallbackLLM):
            events = EngineEvents(self._outbox, session.tenant_id, session.call_id, agent.id)
            engine = engine.with_reporter(events.report)
        conversation = Conversation(
            session=session,
            agent=agent,
            engine=engine,
            outbox=self._outbox,
            store=self.store,
            settings=self._conversation_settings,
            revision=revision,
            on_lost=self._lost,
        )
        live = _LiveCall(conversation)
        self._calls[session.call_id] = live
        metrics.CONVERSATIONS.set(len(self._calls))
        try:
            if fresh:
                await conversation.start()
            else:
                await conversation.resume()
            live.subscription = await self._subscribe(conversation)
        except BaseException:
            # Undo, so that a redelivered call.started starts over (from the saved session).
            await self._drop(session.call_id)
            raise

    async def _subscribe(self, conversation: Conversation) -> _Subscription:
        session = conversation.session
        if session.last_seq:
            config = ConsumerConfig(
                deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=session.last_seq + 1
            )
        else:
            config = ConsumerConfig(deliver_policy=DeliverPolicy.ALL)
        return await self._service.js.subscribe(
            subjects.evt_filter(session.tenant_id, session.call_id),
            stream=streams.EVENTS.name,
            ordered_consumer=True,
            config=config,
            cb=partial(self._deliver, conversation),
            # After a NATS restart the ephemeral consumer is gone; two missed heartbeats
            # make the client recreate it from the last sequence seen.
            idle_heartbeat=_HEARTBEAT_S,
        )

    async def _deliver(self, conversation: Conversation, msg: Msg) -> None:
        try:
            event = parse_event(msg.data)
        except ValidationError:
            metrics.BAD_INPUT.labels("event").inc()
            log.warning("malformed event ignored", extra={"call_id": conversation.call_id})
            return
        try:
            await conversation.handle(event, msg.metadata.sequence.stream)
        except Exception:  # one bad event must not end the call's subscription
            log.exception("event handling failed", extra={"call_id": conversation.call_id})

    async def _drop(self, call_id: str) -> None:
        live = self._calls.pop(call_id, None)
        metrics.CONVERSATIONS.set(len(self._calls))
        if live is not None:
            await live.close()

    async def _lost(self, call_id: str) -> None:
        await self._drop(call_id)
        await self.claims.leases.release(call_id)

    async def _refuse(self, event: CallStarted) -> None:
        log.error("call for an unknown agent", extra={"call_id": event.call_id})
        await self._outbox.publish(
            CallError(
                tenant_id=event.tenant_id,
                call_id=event.call_id,
                source=self._outbox.source,
                data=CallErrorData(
                    code=ErrorCode.UNKNOWN_AGENT,
                    message="the call's agent is not loaded by the orchestrator",
                    service="orchestrator",
                ),
            )
        )
        await self._outbox.control(
            HangUp(
                tenant_id=event.tenant_id,
                call_id=event.call_id,
                source=self._outbox.source,
                data=HangUpData(reason=EndReason.ERROR, after_playback=False),
            )
        )


def _engine_for(agent: Agent, environ: Mapping[str, str]) -> LLMEngine:
    """The agent's LLM, created once at load: a bad engine name or option fails the start.

    With fallbacks, the models sit behind one :class:`FallbackLLM` (the process's
    circuit breakers, the agent's budgets). Vendor keys come from the environment
    (``VB_ENGINE_KEY_<VENDOR>`` or the vendor's own variable); per-tenant keys will
    come through the edge.
    """
    llm = agent.spec.llm
    choices = [("llm", llm.engine, llm.options)] + [
        (f"llm.fallback.{i}", f.engine, f.options) for i, f in enumerate(llm.fallback)
    ]
    engines: list[LLMEngine] = []
    for field, name, options in choices:
        key = next((environ[n] for n in env_names("default", name) if environ.get(n)), None)
        try:
            engines.append(LLM.create(name, options, EngineContext(api_key=key)))
        except EngineError as exc:
            raise AgentConfigError(agent.path, str(exc), field) from None
    if len(engines) == 1:
        return engines[0]
    return FallbackLLM(engines, budgets=budgets_of(agent.spec.failover))
