"""A handoff node: another agent of the tenant takes the call over, mid-call.

The announcement (if any) is said by the agent leaving; the history is kept,
reset or reset to a summary (the handoff's ``context``); the variables
collected stay. From then on the new agent's prompt, tools and LLM answer
(its voice needs media to switch engines mid-call, which it does not yet), its
greeting is said, and its own flow starts if it has one. ``agent.handoff``
records who handed over to whom, with the variables.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from voicebus.contracts.agents import FlowNode
from voicebus.contracts.events import AgentHandoff, AgentHandoffData, ErrorCode
from voicebus.orchestrator.session import StoredMessage
from voicebus.orchestrator.speaker import Utterance
from voicebus.orchestrator.turn import Step

if TYPE_CHECKING:
    from voicebus.orchestrator.conversation import Conversation

log = logging.getLogger(__name__)


async def hand_over(c: Conversation, node: FlowNode, utterance: Utterance) -> Step:
    """Switch ``c`` to the node's agent; STOP (or END when the new flow ends at once)."""
    assert node.handoff is not None
    spec = node.handoff
    session = c.session
    found = await c.services.agents(session.tenant_id, spec.agent_id)
    if found is None:
        await c.report(ErrorCode.UNKNOWN_AGENT, f"handoff to unknown agent {spec.agent_id!r}")
        return Step.STOP
    if spec.announce:
        await c.say_lines([c.flow.render(spec.announce)], utterance)
    agent, engine = found
    previous = c.agent
    await c.flow.apply_context(spec.context, "Summarize the conversation so far, keeping facts.")
    await c.outbox.publish(
        AgentHandoff(
            tenant_id=session.tenant_id, call_id=session.call_id, source=c.outbox.source,
            data=AgentHandoffData(from_agent_id=previous.id, from_version=previous.version,
                                  to_agent_id=agent.id, to_version=agent.version,
                                  node_id=node.id, variables=dict(session.variables)),
        )
    )  # fmt: skip
    log.info("handoff", extra={"call_id": session.call_id, "to": agent.id})
    c.use_agent(agent, engine)
    session.agent_id, session.agent_owner, session.agent_version = (
        agent.id,
        agent.owner,
        agent.version,
    )
    session.flow_node = None
    values = {**session.context, **session.variables}
    if session.history:
        prompt = agent.render("system_prompt", values)
        session.history[0] = StoredMessage(role="system", content=prompt)
    await c.prepare_tools()
    greeting = agent.render("greeting", values)
    if greeting:
        await c.say_lines([greeting], utterance)
    if agent.spec.flow is None:
        return Step.STOP
    step = await c.flow.start(utterance)
    return Step.END if step is Step.END else Step.STOP
