"""One agent utterance, spoken as numbered ``Say`` chunks."""

from __future__ import annotations

from collections.abc import Callable

from voicebus.contracts.commands import Say, SayData
from voicebus.contracts.ids import new_id
from voicebus.contracts.text import strip_control
from voicebus.orchestrator.outbox import Outbox


class Utterance:
    """Sends the chunks of one utterance in order; the last one has ``final=True``.

    Args:
        outbox: where the ``Say`` commands go.
        tenant_id: the call's tenant.
        call_id: the call.
        allow_interruptions: whether the caller may barge in on it.
        speaker: the agent speaking each chunk as it is sent (media speaks it in that agent's
            voice): a handoff mid-utterance moves the rest of it to the new agent.
    """

    def __init__(
        self,
        outbox: Outbox,
        tenant_id: str,
        call_id: str,
        *,
        allow_interruptions: bool,
        speaker: Callable[[], str] | None = None,
    ) -> None:
        self.id = f"a-{new_id()}"
        self._outbox = outbox
        self._tenant_id = tenant_id
        self._call_id = call_id
        self._allow = allow_interruptions
        self._speaker = speaker
        self._seq = 0
        self.spoken: list[str] = []
        self.finished = False

    @property
    def started(self) -> bool:
        """At least one chunk was sent."""
        return self._seq > 0

    @property
    def text(self) -> str:
        """Everything sent so far."""
        return " ".join(self.spoken)

    async def say(self, text: str, *, final: bool = False) -> None:
        """Send one chunk (``final``: it is the last)."""
        if self.finished:
            raise RuntimeError("utterance already finished")
        command = Say(
            tenant_id=self._tenant_id,
            call_id=self._call_id,
            source=self._outbox.source,
            data=SayData(
                utterance_id=self.id,
                seq=self._seq,
                text=strip_control(text),  # an LLM's output is outside text
                final=final,
                allow_interruptions=self._allow,
                agent_id=None if self._speaker is None else self._speaker(),
            ),
        )
        self._seq += 1
        if text:
            self.spoken.append(text)
        self.finished = final
        await self._outbox.control(command)

    async def say_all(self, chunks: list[str]) -> None:
        """Send whole chunks, the last one final."""
        for i, chunk in enumerate(chunks):
            await self.say(chunk, final=i == len(chunks) - 1)
        if not chunks:
            await self.finish()

    async def finish(self) -> None:
        """Close the utterance with an empty final chunk, unless already closed."""
        if not self.finished:
            await self.say("", final=True)
