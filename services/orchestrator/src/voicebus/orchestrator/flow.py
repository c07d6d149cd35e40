"""A flow agent's state machine, driven by the conversation.

The current node, the variables and the history live in the session (saved in
``vb_sessions``), so an instance that takes the call over resumes at the same
node with the same variables. Entering a node: ``flow.node_entered``; the
system prompt becomes the node's role (or the agent's prompt) and its task is
added as a system message; the node's tools and transition functions are
offered; its pre-actions run. A transition the LLM calls: its arguments become
variables, ``flow.transition``, the old node's post-actions, the context
strategy (keep, reset, reset to a summary), then the new node is entered.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from voicebus.contracts.agents import ContextStrategy, Flow, FlowAction, FlowNode, Transition
from voicebus.contracts.commands import ControlCommand, MaskKeypad, MaskKeypadData
from voicebus.contracts.events import (
    FlowNodeEntered,
    FlowNodeEnteredData,
    FlowTransition,
    FlowTransitionData,
)
from voicebus.contracts.ids import new_id
from voicebus.engines.base import LLMEngine, TextDelta, ToolCall, ToolSpec
from voicebus.orchestrator.agents import Agent
from voicebus.orchestrator.outbox import Outbox
from voicebus.orchestrator.session import Session, StoredMessage
from voicebus.orchestrator.speaker import Utterance
from voicebus.orchestrator.templating import render
from voicebus.orchestrator.tool_events import CallIds, run_tool
from voicebus.orchestrator.tools import CallAction, Toolbox
from voicebus.orchestrator.turn import Step
from voicebus.runtime.logs import pii

log = logging.getLogger(__name__)

SUMMARY_PREFIX = "Summary of the conversation so far: "


def _sensitive_input(node: FlowNode) -> bool:
    """Whether the node collects secret keypad input (the recorder silences the caller)."""
    return node.collect_digits is not None and node.collect_digits.sensitive


class TransitionTool:
    """A transition, offered to the LLM as a function; calling it moves the flow."""

    ends_call = False

    def __init__(self, transition: Transition) -> None:
        self.spec = ToolSpec(transition.name, transition.description, transition.parameters)
        self._target = transition.target

    async def run(self, arguments: Mapping[str, Any]) -> Any:
        """A :class:`CallAction` asking the conversation to move."""
        return CallAction({"ok": True, "moved_to": self._target},
                          move=(self.spec.name, dict(arguments)))  # fmt: skip

    def reply(self, result: Any) -> str | None:
        """None."""
        return None


class FlowHost(Protocol):
    """What the flow needs of its conversation."""

    session: Session
    agent: Agent

    @property
    def toolbox(self) -> Toolbox:
        """The call's tools."""
        ...

    @property
    def engine(self) -> LLMEngine:
        """The agent's LLM."""
        ...

    async def say_lines(self, lines: Sequence[str], utterance: Utterance) -> None:
        """Speak fixed lines (kept in the history as the agent's)."""
        ...

    async def hand_over(self, node: FlowNode, utterance: Utterance) -> Step:
        """Let the handoff node's agent take over."""
        ...

    def enter_node(self, node_id: str | None) -> None:
        """Use the node's own LLM options, if it has any."""
        ...

    async def control(self, command: ControlCommand) -> None:
        """Send a control command of this call."""
        ...


class FlowDriver:
    """Runs the flow of the host's current agent.

    Args:
        host: the conversation.
        outbox: where events go.
    """

    def __init__(self, host: FlowHost, outbox: Outbox) -> None:
        self._host = host
        self._outbox = outbox

    @property
    def flow(self) -> Flow | None:
        """The current agent's flow, if it has one."""
        return self._host.agent.spec.flow

    def node(self) -> FlowNode | None:
        """The node the call is in."""
        flow, current = self.flow, self._host.session.flow_node
        if flow is None or current is None:
            return None
        return next((n for n in flow.nodes if n.id == current), None)

    def values(self) -> dict[str, Any]:
        """Template values: the agent's variables, the call's context, the flow's variables."""
        session = self._host.session
        return {**self._host.agent.variables(session.context), **session.variables}

    def render(self, text: str) -> str:
        """A node's template, with unset flow variables empty."""
        return render(text, self.values(), strict=False)

    @property
    def _ids(self) -> CallIds:
        return CallIds(self._host.session.tenant_id, self._host.session.call_id)

    def offer(self) -> None:
        """Offer the current node's tools and transitions (every tool without a flow), and
        use its LLM options."""
        node = self.node()
        self._host.enter_node(node.id if node else None)
        toolbox = self._host.toolbox
        if node is None:
            toolbox.offer(None)
        else:
            toolbox.offer(node.tools, [TransitionTool(t) for t in node.transitions])

    async def start(self, utterance: Utterance) -> Step:
        """Enter the initial node (a new call)."""
        flow = self.flow
        if flow is None or flow.initial is None:
            self.offer()
            return Step.STOP
        return await self._enter(flow.initial, None, utterance)

    async def move(self, name: str, arguments: dict[str, Any], utterance: Utterance) -> Step:
        """Carry out the transition ``name`` the LLM called from the current node."""
        node = self.node()
        transition = next((t for t in node.transitions if t.name == name), None) if node else None
        if node is None or transition is None:
            log.warning("transition not in the node", extra={"call_id": self._ids.call_id})
            return Step.CONTINUE
        return await self._go(node, transition.target, name, arguments, transition.context,
                              transition.summary_prompt, utterance)  # fmt: skip

    async def digits(self, digits: str, utterance: Utterance) -> Step | None:
        """Keypad input for a collect-digits node; None when it is too short (said again)."""
        node = self.node()
        if node is None or node.collect_digits is None:
            return None
        spec = node.collect_digits
        if len(digits) < spec.min_length:
            await self._host.say_lines([self.render(spec.retry_say)], utterance)
            return None
        arguments = {spec.variable: digits[: spec.max_length]}
        if spec.sensitive and arguments[spec.variable] not in self._host.session.sensitive:
            self._host.session.sensitive.append(arguments[spec.variable])
        return await self._go(node, spec.next, "collect_digits", arguments, ContextStrategy.KEEP,
                              "", utterance)  # fmt: skip

    async def _go(
        self,
        node: FlowNode,
        target: str,
        function: str,
        arguments: dict[str, Any],
        context: ContextStrategy,
        summary_prompt: str,
        utterance: Utterance,
    ) -> Step:
        session = self._host.session
        session.variables.update(arguments)
        flow = self.flow
        assert flow is not None
        log.info("flow transition", extra={"call_id": session.call_id, "node": target,
                                           **pii(arguments=arguments)})  # fmt: skip
        await self._outbox.publish(
            FlowTransition(
                tenant_id=session.tenant_id, call_id=session.call_id, source=self._outbox.source,
                data=FlowTransitionData(
                    flow_id=flow.id, agent_id=self._host.agent.id,
                    agent_version=self._host.agent.version, from_node_id=node.id,
                    to_node_id=target, function=function, arguments=arguments,
                    context=context.value,
                ),
            )
        )  # fmt: skip
        await self._actions(node.post_actions, utterance)
        await self.apply_context(context, summary_prompt)
        return await self._enter(target, node.id, utterance)

    async def apply_context(self, strategy: ContextStrategy, summary_prompt: str) -> None:
        """Keep the history, reset it to the system prompt, or reset it to a summary."""
        history = self._host.session.history
        if strategy is ContextStrategy.KEEP or not history:
            return
        summary = ""
        if strategy is ContextStrategy.RESET_WITH_SUMMARY:
            summary = await self.summarize(summary_prompt)
        history[:] = history[:1]
        if summary:
            history.append(StoredMessage(role="system", content=SUMMARY_PREFIX + summary))

    async def summarize(self, prompt: str) -> str:
        """The LLM's summary of the conversation (a transcript excerpt if it fails)."""
        history = self._host.session.history
        talk = [m for m in history[1:] if m.role in ("user", "assistant") and m.content]
        if not talk:
            return ""
        messages = [m.to_chat() for m in history]
        messages.append(StoredMessage(role="user", content=prompt).to_chat())
        parts: list[str] = []
        try:
            async for chunk in self._host.engine.stream(messages, []):
                if isinstance(chunk, TextDelta):
                    parts.append(chunk.text)
        except Exception:  # a summary is a courtesy: fall back to the last lines
            log.warning("summary failed", extra={"call_id": self._ids.call_id}, exc_info=True)
            parts = []
        text = "".join(parts).strip()
        if text:
            return text[:2000]
        return " ".join(f"{m.role}: {m.content}" for m in talk[-6:])[:2000]

    async def _enter(self, node_id: str, previous: str | None, utterance: Utterance) -> Step:
        host, session = self._host, self._host.session
        session.flow_node = node_id
        host.enter_node(node_id)
        node = self.node()
        flow = self.flow
        assert node is not None
        assert flow is not None
        await self._outbox.publish(
            FlowNodeEntered(
                tenant_id=session.tenant_id, call_id=session.call_id, source=self._outbox.source,
                data=FlowNodeEnteredData(flow_id=flow.id, node_id=node_id,
                                         previous_node_id=previous, agent_id=host.agent.id,
                                         agent_version=host.agent.version,
                                         sensitive_input=_sensitive_input(node)),
            )
        )  # fmt: skip
        await self._mask_keypad(_sensitive_input(node))
        prompt = self.render(node.role) if node.role else host.agent.render(
            "system_prompt", {**session.context, **session.variables})  # fmt: skip
        if session.history:
            session.history[0] = StoredMessage(role="system", content=prompt)
        self.offer()
        await self._actions(node.pre_actions, utterance)
        if node.task:  # after the pre-actions: the task may use what they fetched
            session.history.append(StoredMessage(role="system", content=self.render(node.task)))
        if node.end:
            return Step.END
        if node.handoff is not None:
            return await host.hand_over(node, utterance)
        if node.collect_digits is not None:
            session.digits = ""
            return Step.STOP
        return Step.CONTINUE if node.respond_immediately else Step.STOP

    async def _mask_keypad(self, masked: bool) -> None:
        """Tell the gateway to mask the caller's keys in its events (or to stop), when that
        changes: before the node's prompt, so before the caller keys anything."""
        session = self._host.session
        if session.keypad_masked == masked:
            return
        session.keypad_masked = masked
        await self._host.control(
            MaskKeypad(tenant_id=session.tenant_id, call_id=session.call_id,
                       source=self._outbox.source, data=MaskKeypadData(masked=masked))
        )  # fmt: skip

    async def _actions(self, actions: Sequence[FlowAction], utterance: Utterance) -> None:
        session = self._host.session
        for action in actions:
            if action.say is not None:
                await self._host.say_lines([self.render(action.say)], utterance)
            elif action.tool is not None:
                arguments = {k: self.render(v) if isinstance(v, str) else v
                             for k, v in action.args.items()}  # fmt: skip
                call = ToolCall(f"flow-{new_id()}", action.tool, arguments)
                outcome = await run_tool(self._outbox, self._ids, self._host.toolbox, call,
                                         offered_only=False)  # fmt: skip
                if action.result_variable is not None:
                    session.variables[action.result_variable] = (
                        outcome.result if outcome.ok else {"error": outcome.error}
                    )
            elif action.set is not None:
                session.variables.update(
                    {k: self.render(v) if isinstance(v, str) else v for k, v in action.set.items()}
                )
