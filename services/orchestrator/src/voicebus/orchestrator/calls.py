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
from dataclasses import dataclass, field
from functools import partial
from typing import Final, Protocol

from nats.aio.msg import Msg
from nats.js.api import ConsumerConfig, DeliverPolicy
from nats.js.errors import KeyWrongLastSequenceError
from opentelemetry import trace
from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError

from voicebus.contracts import streams, subjects
from voicebus.contracts.agents import check_context
from voicebus.contracts.agents.api import SHARED_TENANT, AgentRecord
from voicebus.contracts.campaigns import campaign_speaks
from voicebus.contracts.commands import HangUp, HangUpData
from voicebus.contracts.events import (
    AgentUpdated,
    AgentUpdatedData,
    CallAnalyzed,
    CallEnded,
    CallEndedData,
    CallError,
    CallErrorData,
    CallStarted,
    DtmfReceived,
    EndReason,
    ErrorCode,
    parse_event,
)
from voicebus.contracts.ids import derived_id
from voicebus.engines.base import EngineError, LLMEngine
from voicebus.engines.builtin import load_builtin_engines
from voicebus.engines.fallback.llm import FallbackLLM
from voicebus.orchestrator import metrics
from voicebus.orchestrator.agents import Agent
from voicebus.orchestrator.catalog import AgentCatalog
from voicebus.orchestrator.conversation import CallServices, Conversation
from voicebus.orchestrator.engine_events import EngineEvents
from voicebus.orchestrator.errors import AgentConfigError
from voicebus.orchestrator.kb_retrieval import Retriever
from voicebus.orchestrator.kb_store import SqlKnowledgeStore
from voicebus.orchestrator.knowledge import Knowledge
from voicebus.orchestrator.library import AgentLibrary, ToolLibrary
from voicebus.orchestrator.memory import (
    CallerMemory,
    InMemoryCallerMemory,
    SqlCallerMemory,
    caller_number,
    template_values,
)
from voicebus.orchestrator.outbox import BusOutbox
from voicebus.orchestrator.post_call import PostCall, PostCallPorts
from voicebus.orchestrator.secret_box import SecretBox, fernet_keys
from voicebus.orchestrator.seeding import import_agents, import_tools
from voicebus.orchestrator.session import Session, SessionStorage, SessionStore
from voicebus.orchestrator.settings import OrchestratorSettings
from voicebus.orchestrator.simulation import Simulator
from voicebus.orchestrator.ssrf import TargetPolicy
from voicebus.orchestrator.tenant_tools import TenantTools
from voicebus.orchestrator.tools import CallTools
from voicebus.orchestrator.versions import MemoryVersions, SqlVersions
from voicebus.runtime.claims import CallClaims, stored_event
from voicebus.runtime.errors import ConfigurationError
from voicebus.runtime.publish import publish_event
from voicebus.runtime.service import Service
from voicebus.runtime.settings import Environment
from voicebus.runtime.telemetry import consumed

log = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)

_ENDED_GUARD: Final = "ended"
"""Key prefix in ``vb_call_owners`` of the once-guard for a ``gateway_lost`` end."""
_HEARTBEAT_S: Final = 1.0


class _Subscription(Protocol):
    async def unsubscribe(self, limit: int = 0) -> None: ...


@dataclass(slots=True)
class _LiveCall:
    conversation: Conversation
    subscriptions: list[_Subscription] = field(default_factory=list)

    async def close(self) -> None:
        subscriptions, self.subscriptions = self.subscriptions, []
        for subscription in subscriptions:
            await subscription.unsubscribe()
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
        self._versions = SqlVersions()
        self.agents = AgentLibrary(self._versions, on_change=self._agent_changed)
        box = SecretBox(fernet_keys(settings.secrets_key.get_secret_value()))
        self.tools = ToolLibrary(self._versions, box)
        self.catalog = AgentCatalog(self.agents, settings.agents_dir, environ)
        policy = TargetPolicy(
            allow_loopback=settings.tools_allow_loopback,
            allow_private=settings.tools_allow_private_networks,
        )
        self._tenant_tools = TenantTools(self.tools, policy)
        self.simulator = Simulator(
            self.catalog, self._tenant_tools.for_call, self._conversation_settings
        )
        self._store: SessionStorage | None = None
        self.memory: CallerMemory = InMemoryCallerMemory()
        self._calls: dict[str, _LiveCall] = {}
        self._outbox = BusOutbox(
            service.broker, settings.connection_name, connection=lambda: service.nc
        )
        self.knowledge = Knowledge()
        self._retriever = Retriever(self.knowledge, self._outbox)
        self.claims = CallClaims(
            service,
            on_start=self._on_start,
            on_end=self._on_end,
            on_lost=self._drop,
            take_over=True,
            on_gateway_lost=self._gateway_lost,
        )
        self.post_call = PostCall(
            PostCallPorts(
                sessions=lambda: self.store,
                agent=self._analysis_agent,
                memory=lambda: self.memory,
                analysed=self._analysed,
                publish=lambda event: publish_event(service.broker, event),
                source=self._outbox.source,
            ),
            timeout_s=settings.analysis_timeout_s,
            attempts=settings.analysis_attempts,
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
        if service.db is not None:
            self._versions.bind(service.db)
            self.memory = SqlCallerMemory(service.db)
            self.knowledge.bind(SqlKnowledgeStore(service.db))
        elif self._settings.environment is Environment.PRODUCTION:
            raise ConfigurationError("the orchestrator needs VB_DATABASE_URL: it stores agents")
        else:
            # Development without a database: agents live in memory, seeded from the files.
            memory = MemoryVersions()
            self.agents.store = self.tools.store = memory
        await import_agents(self.agents, self._settings.agents_dir)
        await import_tools(self.tools, self._settings.agents_dir / "tools", self._environ)
        self._store = SessionStore(await service.js.key_value(streams.SESSIONS.bucket))
        await service.nc.subscribe(
            subjects.evt_filter(event_type=AgentUpdated.event_name), cb=self._on_agent_updated
        )

    async def _close(self, _service: Service) -> None:
        for call_id in list(self._calls):
            await self._drop(call_id)
        await self.catalog.close()
        await self._tenant_tools.close()

    # -- agents changing ------------------------------------------------------------

    async def _agent_changed(self, record: AgentRecord) -> None:
        """Publish ``agent.updated`` (every instance evicts what the new version replaced)."""
        await self._outbox.publish(
            AgentUpdated(
                tenant_id=record.tenant_id or SHARED_TENANT,
                call_id=record.agent_id,
                source=self._outbox.source,
                data=AgentUpdatedData(agent_id=record.agent_id, version=record.current_version,
                                      template=record.template, archived=record.archived),
            )
        )  # fmt: skip

    async def _on_agent_updated(self, msg: Msg) -> None:
        try:
            event = parse_event(msg.data)
        except ValidationError:
            metrics.BAD_INPUT.labels("event").inc()
            return
        if isinstance(event, AgentUpdated):
            owner = "" if event.data.template else event.tenant_id
            await self.catalog.forget(owner, event.data.agent_id, event.data.version)
            log.info("agent updated", extra={"agent_id": event.data.agent_id,
                                             "version": event.data.version})  # fmt: skip

    # -- claims -----------------------------------------------------------------

    async def _on_start(self, event: CallStarted) -> None:
        if event.call_id in self._calls:
            return  # call.started redelivered: already running here
        if campaign_speaks(event.data.context):
            # A notification campaign speaks its message itself: no agent converses. The
            # claim stays, so the call is still watched (gateway lost) like any other.
            log.info("notification call: no conversation", extra={"call_id": event.call_id})
            return
        loaded = await self.store.load(event.call_id)
        try:
            if loaded is not None:
                session = loaded[0]
                found = await self._agent_of(session, event.tenant_id)
            else:
                d = event.data
                found = await self.catalog.pinned(event.tenant_id, d.agent_id, d.agent_version)
        except (AgentConfigError, EngineError) as exc:
            log.error("agent unusable", extra={"call_id": event.call_id, "error": str(exc)})
            await self._refuse(event, ErrorCode.INTERNAL, f"the agent cannot run: {exc}")
            return
        if found is None:
            await self._refuse(event, ErrorCode.UNKNOWN_AGENT,
                               "the call's agent is unknown to the orchestrator")  # fmt: skip
            return
        agent, engine = found
        if loaded is not None:
            await self._run(*loaded, agent=agent, engine=engine, fresh=False)
            return
        problems = check_context(agent.spec, event.data.context)
        if problems:
            await self._refuse(event, ErrorCode.INVALID_CONTEXT,
                               "; ".join(str(p) for p in problems))  # fmt: skip
            return
        memory = await self._remembered(event) if agent.spec.memory.enabled else None
        session = Conversation.new_session(event, agent, memory)
        await self._run(session, None, agent=agent, engine=engine, fresh=True)

    async def _remembered(self, event: CallStarted) -> dict[str, str]:
        """The caller's memory as template values; a store outage costs the memory, not
        the call."""
        d = event.data
        caller = caller_number(d.direction, d.from_number, d.to_number)
        try:
            known = await self.memory.get(event.tenant_id, caller) if caller else None
        except SQLAlchemyError as exc:
            extra = {"call_id": event.call_id, "error": type(exc).__name__}
            log.warning("caller memory unavailable", extra=extra)
            known = None
        return template_values(known)

    async def _agent_of(self, session: Session, tenant_id: str) -> tuple[Agent, LLMEngine] | None:
        """The exact version a resumed call runs (older sessions: the current one)."""
        if session.agent_version is None:
            return await self.catalog.current(tenant_id, session.agent_id)
        return await self.catalog.version(
            session.agent_owner, session.agent_id, session.agent_version
        )

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
        # The session stays: post-call analysis reads the conversation, then deletes it.
        await self._drop(event.call_id)

    async def _analysis_agent(self, session: Session) -> tuple[Agent, LLMEngine] | None:
        found = await self._agent_of(session, session.tenant_id)
        if found is None:
            return None
        try:
            return found[0], self.catalog.analysis_engine(*found)
        except AgentConfigError as exc:  # the analysis still runs, on the agent's own options
            log.warning("analysis llm_options refused", extra={"call_id": session.call_id,
                                                               "error": str(exc)})  # fmt: skip
            return found

    async def _analysed(self, call_id: str) -> bool:
        return await stored_event(self._service.js, call_id, CallAnalyzed.event_name) is not None

    # -- one call -----------------------------------------------------------------

    async def _run(
        self,
        session: Session,
        revision: int | None,
        *,
        agent: Agent,
        engine: LLMEngine,
        fresh: bool,
    ) -> None:
        if isinstance(engine, FallbackLLM):
            events = EngineEvents(self._outbox, session.tenant_id, session.call_id, agent.id)
            engine = engine.with_reporter(events.report)
        services = CallServices(agents=self.catalog.current, tools=self._call_tools,
                                node_engine=self.catalog.node_engine,
                                knowledge=self._retriever.context)  # fmt: skip
        conversation = Conversation(
            session=session,
            agent=agent,
            engine=engine,
            services=services,
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
            # Before the flow can mask the keypad: masked keys come only this way.
            keys = partial(self._masked_keys, conversation)
            live.subscriptions.append(
                await self._service.nc.subscribe(subjects.keys(session.call_id), cb=keys)
            )
            if fresh:
                await conversation.start()
            else:
                await conversation.resume()
            live.subscriptions.append(await self._subscribe(conversation))
        except BaseException:
            # Undo, so that a redelivered call.started starts over (from the saved session).
            await self._drop(session.call_id)
            raise

    async def _call_tools(self, agent: Agent, tenant_id: str, call_id: str) -> CallTools:
        """The tenant's tools the agent names, and ``search_knowledge`` in tool mode."""
        if agent.spec.knowledge is not None:
            self.knowledge.warm()
        found = await self._tenant_tools.for_call(agent, tenant_id, call_id)
        search = self._retriever.tool(agent, tenant_id, call_id)
        if search is not None:
            found.tools.append(search)
        return found

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
            with consumed(tracer, "call event", msg.headers, {"voicebus.event": event.type}):
                await conversation.handle(event, msg.metadata.sequence.stream)
        except Exception:  # one bad event must not end the call's subscription
            log.exception("event handling failed", extra={"call_id": conversation.call_id})

    async def _masked_keys(self, conversation: Conversation, msg: Msg) -> None:
        """Keys pressed while the call's keypad is masked: the gateway's real ``dtmf.received``
        on ``vb.keys.<call>`` (never stored; the stored one shows ``*``)."""
        try:
            event = DtmfReceived.model_validate_json(msg.data)
        except ValidationError:
            metrics.BAD_INPUT.labels("event").inc()
            log.warning("malformed keys ignored", extra={"call_id": conversation.call_id})
            return
        if event.call_id != conversation.call_id or event.data.masked:
            return
        try:
            await conversation.handle(event)
        except Exception:  # one bad input must not end the call's subscription
            log.exception("keys handling failed", extra={"call_id": conversation.call_id})

    async def _drop(self, call_id: str) -> None:
        live = self._calls.pop(call_id, None)
        metrics.CONVERSATIONS.set(len(self._calls))
        if live is not None:
            await live.close()

    async def _lost(self, call_id: str) -> None:
        await self._drop(call_id)
        await self.claims.leases.release(call_id)

    async def _refuse(self, event: CallStarted, code: ErrorCode, message: str) -> None:
        log.error("call refused", extra={"call_id": event.call_id, "code": code.value})
        await self._outbox.publish(
            CallError(
                tenant_id=event.tenant_id,
                call_id=event.call_id,
                source=self._outbox.source,
                data=CallErrorData(code=code, message=message[:2048], service="orchestrator"),
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
