"""A pipeline processor that runs one background task for the life of its call."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

from pipecat.frames.frames import CancelFrame, EndFrame, Frame, StartFrame
from pipecat.processors.frame_processor import FrameProcessor


class WorkerProcessor(FrameProcessor):
    """Starts :meth:`work` on ``StartFrame``; stops it on ``EndFrame``/``CancelFrame`` or cleanup.

    Subclasses call :meth:`follow_lifecycle` from ``process_frame`` for every frame.
    """

    worker_name = "worker"

    def __init__(self) -> None:
        super().__init__(enable_direct_mode=True)
        self._task: asyncio.Task[None] | None = None

    def work(self) -> Coroutine[Any, Any, None] | None:
        """The task to run, or None to run nothing (e.g. no engine)."""
        raise NotImplementedError

    async def follow_lifecycle(self, frame: Frame) -> None:
        """Start the worker on the pipeline's start; stop it on its end."""
        if isinstance(frame, StartFrame) and self._task is None:
            coro = self.work()
            if coro is not None:
                self._task = self.create_task(coro, self.worker_name)
        elif isinstance(frame, EndFrame | CancelFrame):
            await self._stop()

    async def cleanup(self) -> None:
        """Stop the worker."""
        await self._stop()
        await super().cleanup()  # type: ignore[no-untyped-call]  # unannotated in pipecat

    async def _stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            await self.cancel_task(task)
