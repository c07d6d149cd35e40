"""``voicebus demo``: the whole platform on this machine, one demo call, then everything stops.

Starts the dev stack (embedded NATS and PostgreSQL, the seven services and, for the
``demo`` agent, the local LLM server), places a simulated Twilio call through the
real gateway, prints the live transcript with each turn's latency, the recording's
path and every event of the call as audit stored it on the bus, and stops.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, TextIO

from voicebus.devkit.caller.script import CallScript, Emit, Line, run_call
from voicebus.devkit.defaults import DEV_TWILIO_AUTH_TOKEN
from voicebus.devkit.stack import DevStack, StackError
from voicebus.devkit.tail import TailFilter, tail

DEFAULT_LINES: Final = ("Hi, where is my order 1234?", "Thanks, bye.")
_EVENTS_SETTLE_S: Final = 2.0


@dataclass(frozen=True)
class DemoPlan:
    """What the demo runs.

    Attributes:
        data_dir: the dev stack's data directory.
        agent: ``demo`` (local LLM) or ``demo-scripted`` (no model needed).
        lines: what the caller says.
        context: call-context variables (the greeting uses ``customer_name``).
        log: where the services' logs go (the terminal shows the call, not the logs).
    """

    data_dir: Path
    agent: str = "demo"
    lines: Sequence[str] = DEFAULT_LINES
    context: dict[str, str] = field(default_factory=lambda: {"customer_name": "Ada"})
    log: Path | None = None


async def run_demo(
    plan: DemoPlan, emit: Emit, print_line: Callable[[str], None], log_sink: TextIO
) -> int:
    """Run the demo; returns the exit code (0: the call went as scripted)."""
    stack = DevStack(
        plan.data_dir,
        out=log_sink,
        local_llm=plan.agent == "demo",
        env={"VB_RECORDER_DIR": str((plan.data_dir / "recordings").resolve())},
        well_known_ports=True,
    )
    call_ids: list[str] = []
    try:
        emit("demo", "starting NATS, PostgreSQL and the seven services…", "bold")
        await stack.start(ready_timeout=180.0)
        gateway = next(s.url for s in stack.services if s.name == "gateway")
        slowest = max(s.ready_after_s or 0.0 for s in stack.services)
        emit("demo", f"all services ready after {slowest:.1f} s", "bold")
        if stack.llm_url:
            emit("demo", f"local LLM at {stack.llm_url}", "bold")
        script = CallScript(
            gateway_url=gateway,
            auth_token=DEV_TWILIO_AUTH_TOKEN,
            agent=plan.agent,
            lines=[Line(text=text) for text in plan.lines],
            context=plan.context,
            nats_url=stack.nats_url,
        )
        code = await run_call(script, emit, on_started=call_ids.append)
        if call_ids and stack.nats_url:
            emit("demo", f"recordings are in {plan.data_dir / 'recordings'}", "bold")
            emit("demo", "the call's events:", "bold")
            await tail(
                stack.nats_url,
                TailFilter(call_id=call_ids[0], from_start=True),
                print_line,
                timeout=_EVENTS_SETTLE_S,
            )
        return code
    except StackError as err:
        emit("error", str(err), "red")
        return 1
    finally:
        emit("demo", "stopping everything…", "bold")
        await stack.stop()
