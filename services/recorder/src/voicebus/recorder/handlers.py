"""The recorder on the bus: per-call audio subscriptions in, ``recording.ready`` out.

A recording survives its recorder: an instance killed mid-call leaves its file
unfinished (:mod:`voicebus.recorder.recording`); the instance that takes the call
over (the claims' takeover scan) continues the same file, and announces
``recording.ready`` once, when the call ends. If the call ends before anyone took
it over, the instance that hears ``call.ended`` and wins the call's lease finishes
the file and announces it. An instance stopping (SIGTERM) while its calls go on
hands them over the same way instead of announcing a cut recording.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import nats.errors
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from prometheus_client import Counter

from voicebus.contracts import streams, subjects
from voicebus.contracts.audio import decode_frame
from voicebus.contracts.errors import InvalidAudioFrameError
from voicebus.contracts.events import (
    CallEnded,
    CallStarted,
    FlowNodeEntered,
    RecordingReady,
    RecordingReadyData,
)
from voicebus.contracts.ids import new_id
from voicebus.recorder.archive import ArchiveError, RecordingStore, recording_key
from voicebus.recorder.errors import RecorderStoppingError, RecordingClosedError
from voicebus.recorder.mixer import Channel, Placement
from voicebus.recorder.recording import Recording, RecordingInfo, unfinished
from voicebus.recorder.redaction import KeypadRedaction
from voicebus.recorder.settings import RecorderSettings
from voicebus.recorder.wav import HEADER_BYTES, header_rate
from voicebus.runtime.claims import stored_event
from voicebus.runtime.leases import GATEWAY, CallLeases
from voicebus.runtime.publish import publish_event
from voicebus.runtime.service import Service

log = logging.getLogger(__name__)

FRAMES = Counter(
    "voicebus_recorder_frames",
    "Audio frames received, by direction and what became of them "
    "(placed, partly_late, late, too_far, empty, invalid, unwritable, after_close).",
    ["direction", "result"],
)
FRAMES_RESAMPLED = Counter(
    "voicebus_recorder_frames_resampled",
    "Frames whose sample rate differed from the call's and were resampled.",
    ["direction"],
)
RECORDINGS = Counter(
    "voicebus_recorder_recordings",
    "Recordings finalized: ready (call ended), cut (instance stopped mid-call), "
    "failed (file not written) or unannounced (recording.ready not stored); resumed "
    "(continued after its recorder died), handed_over (left for another instance), "
    "adopted (finished by an instance that heard the call end), upload_failed (kept in the "
    "directory: the object store refused it).",
    ["result"],
)

_PUBLISH_ATTEMPTS = 3
_DRAIN_TIMEOUT_S = 5.0

FrameHandler = Callable[[Msg], Awaitable[None]]


@dataclass
class _LiveCall:
    event: CallStarted | CallEnded
    recording: Recording
    subscriptions: list[Subscription] = field(default_factory=list)


class Recorder:
    """Records every call this instance owns.

    Args:
        service: the running service (its raw ``nc`` carries the audio).
        settings: the recorder's settings.
        store: where finished recordings are uploaded; None keeps them in the directory.
    """

    def __init__(
        self, service: Service, settings: RecorderSettings, store: RecordingStore | None = None
    ) -> None:
        self._service = service
        self._settings = settings
        self._store = store
        self._live: dict[str, _LiveCall] = {}
        self._starting: set[str] = set()
        self._early_ends: dict[str, CallEnded] = {}  # ended while still starting
        self._stopping = False
        self._leases: Callable[[], CallLeases] | None = None
        self._adopting: set[asyncio.Task[None]] = set()

    def use_leases(self, leases: Callable[[], CallLeases]) -> None:
        """The claims' leases: whether a call is live, and who finishes an orphan."""
        self._leases = leases

    @property
    def live_calls(self) -> frozenset[str]:
        """Call ids being recorded."""
        return frozenset(self._live)

    async def start_call(self, event: CallStarted) -> None:
        """Open the call's file and subscribe to both audio directions.

        Raises:
            RecorderStoppingError: this instance is shutting down; the claim
                is refused so that the event goes to another instance.
        """
        if self._stopping:
            raise RecorderStoppingError("recorder is stopping")
        if event.call_id in self._live or event.call_id in self._starting:
            return  # a redelivered call.started: the call is already recorded
        self._starting.add(event.call_id)
        try:
            await self._start(event)
        finally:
            self._starting.discard(event.call_id)
            early_end = self._early_ends.pop(event.call_id, None)
        if early_end is not None:
            await self.end_call(early_end)
        else:
            await self._cut_if_stopping(event.call_id)  # stop() may have begun meanwhile

    async def _cut_if_stopping(self, call_id: str) -> None:
        live = self._live.pop(call_id, None) if self._stopping else None
        if live is not None:
            await self._finalize(live, 0.0, result="cut")

    async def _start(self, event: CallStarted) -> None:
        recording = Recording.open(
            self._settings.dir,
            event.tenant_id,
            event.call_id,
            event.data.audio.sample_rate,
            window_ms=self._settings.reorder_window_ms,
            max_jump_ms=round(self._settings.max_jump_s * 1000),
        )
        live = _LiveCall(event, recording)
        # Alignment assumption: both sides are placed by their own ts_ms, taken
        # as ms on one call timeline that starts at call.started. Caller frames
        # carry the provider's stream clock (0 when the media stream opened).
        # Agent frames carry media's clock: ms since its claim of the call,
        # which it anchors on the caller timestamps it receives, so the two
        # agree within jitter; before the first caller frame an agent frame may
        # sit early by media's claim delay (tens of ms). Agent ts_ms is when a
        # frame should play, and frames leave ~100-200 ms ahead of it: the
        # reorder window absorbs that lead. Audio a barge-in cleared before it
        # played is still recorded (at most that lead).
        try:
            for channel, subject in (
                (Channel.CALLER, subjects.audio_in(event.call_id)),
                (Channel.AGENT, subjects.audio_out(event.call_id)),
            ):
                handler = self._frame_handler(recording, channel)
                live.subscriptions.append(await self._service.nc.subscribe(subject, cb=handler))
            await self._follow_keypad(event, live)
        except BaseException:
            await self._drain(live)
            recording.discard()
            raise
        self._live[event.call_id] = live
        if recording.resumed_at:
            RECORDINGS.labels("resumed").inc()
        log.info(
            "recording resumed" if recording.resumed_at else "recording started",
            extra={"call_id": event.call_id, "sample_rate": recording.sample_rate,
                   "resumed_at_s": recording.resumed_at / recording.sample_rate},
        )  # fmt: skip

    async def _follow_keypad(self, started: CallStarted, live: _LiveCall) -> None:
        """Silence the caller over sensitive keypad input: the call's flow events from
        now on, then its last one so far (a span that began before this claim)."""
        margin_ms = self._settings.redact_margin_ms
        redaction = KeypadRedaction(live.recording, started.time, margin_ms)
        subject = subjects.evt_filter(started.tenant_id, started.call_id, "flow.node_entered")
        # A core subscriber of a JetStream subject: never answers the publisher's reply.
        sub = await self._service.nc.subscribe(subject, cb=redaction.on_message)
        live.subscriptions.append(sub)
        last = await stored_event(self._service.js, started.call_id, "flow.node_entered")
        if isinstance(last, FlowNodeEntered):
            redaction.apply(last)

    async def end_call(self, event: CallEnded) -> None:
        """Finalize the recording of a call that ended and announce it."""
        live = self._live.pop(event.call_id, None)
        if live is None:
            if event.call_id in self._starting:
                self._early_ends[event.call_id] = event  # finalized once started
            return
        await self._finalize(live, event.data.duration_s or 0.0, result="ready")

    async def stop(self, _service: Service | None = None) -> None:
        """Instance shutdown: a call that goes on is handed over (its file left unfinished
        for the instance that takes the call over); any other is finalized and announced."""
        self._stopping = True
        for task in list(self._adopting):
            task.cancel()
        await asyncio.gather(*self._adopting, return_exceptions=True)
        lives, self._live = list(self._live.values()), {}
        results = await asyncio.gather(*(self._let_go(live) for live in lives),
                                       return_exceptions=True)  # fmt: skip
        for live, result in zip(lives, results, strict=True):
            if isinstance(result, BaseException):
                RECORDINGS.labels("failed").inc()
                log.error(
                    "recording finalize failed",
                    extra={"call_id": live.event.call_id},
                    exc_info=result,
                )

    async def _let_go(self, live: _LiveCall) -> None:
        if not await self._call_goes_on(live.event.call_id):
            await self._finalize(live, 0.0, result="cut")
            return
        await self._drain(live)
        await asyncio.to_thread(live.recording.suspend)
        RECORDINGS.labels("handed_over").inc()
        log.info("recording handed over", extra={"call_id": live.event.call_id})

    async def _call_goes_on(self, call_id: str) -> bool:
        """Whether a gateway still holds the call's media stream."""
        if self._leases is None:
            return False
        try:
            return await self._leases().kv.get(streams.owner_key(GATEWAY, call_id)) is not None
        except (nats.errors.Error, TimeoutError, RuntimeError):
            return False  # unknown (or no such key): finalize rather than leave it unannounced

    async def adopt(self, event: CallEnded) -> None:
        """A call this instance does not own ended: finish its recording if its recorder
        died before anyone took the call over (the instance that wins the lease does).

        The dead owner's lease lives on for up to its TTL, so the attempt waits for it
        in the background (a live owner finishes the file meanwhile: nothing to do).
        """
        if self._stopping or self._leases is None:
            return
        if unfinished(self._settings.dir, event.tenant_id, event.call_id) is None:
            return
        task = asyncio.create_task(self._adopt(event), name="recording-adopt")
        self._adopting.add(task)
        task.add_done_callback(self._adopting.discard)

    async def _adopt(self, event: CallEnded) -> None:
        assert self._leases is not None
        leases = self._leases()
        tenant_id, call_id = event.tenant_id, event.call_id
        deadline = asyncio.get_running_loop().time() + 3 * leases.ttl_s
        while not await leases.claim(call_id):
            if asyncio.get_running_loop().time() > deadline or self._stopping:
                return  # someone holds it for good: an owner alive, or another adopter
            await asyncio.sleep(leases.ttl_s / 3)
            if unfinished(self._settings.dir, tenant_id, call_id) is None:
                return  # its owner finished it
        try:
            path = unfinished(self._settings.dir, tenant_id, call_id)  # again, under the lease
            rate = None if path is None else await asyncio.to_thread(_rate_of, path)
            if path is None or rate is None:
                return
            recording = Recording.open(
                self._settings.dir, tenant_id, call_id, rate,
                window_ms=self._settings.reorder_window_ms,
                max_jump_ms=round(self._settings.max_jump_s * 1000),
            )  # fmt: skip
            live = _LiveCall(event, recording)
            await self._finalize(live, event.data.duration_s or 0.0, result="adopted")
            log.info("orphaned recording finished", extra={"call_id": call_id})
        except Exception:  # one orphan must not take the subscriber down
            log.exception("orphaned recording not finished", extra={"call_id": call_id})
        finally:
            await leases.release(call_id)

    def _frame_handler(self, recording: Recording, channel: Channel) -> FrameHandler:
        direction = "in" if channel is Channel.CALLER else "out"
        counted = {p: FRAMES.labels(direction, p.value) for p in Placement}
        invalid = FRAMES.labels(direction, "invalid")
        unwritable = FRAMES.labels(direction, "unwritable")
        after_close = FRAMES.labels(direction, "after_close")
        resampled = FRAMES_RESAMPLED.labels(direction)
        rate = recording.sample_rate

        async def on_frame(msg: Msg) -> None:
            try:
                frame = decode_frame(msg.data, msg.headers)
            except InvalidAudioFrameError:
                invalid.inc()  # malformed input from outside: counted, never fatal
                return
            if frame.sample_rate != rate:
                resampled.inc()
            try:
                placement = recording.add(channel, frame)
            except RecordingClosedError:
                after_close.inc()  # raced the call's end (or a failed drain): dropped, counted
                return
            if placement is None:
                unwritable.inc()  # the file cannot be written: finalizing reports why
            else:
                counted[placement].inc()

        return on_frame

    async def _drain(self, live: _LiveCall) -> None:
        """Stop the subscriptions after handling every frame already delivered."""
        for sub in live.subscriptions:
            try:
                drained = sub.drain()  # type: ignore[no-untyped-call]  # nats-py leaves it unannotated
                await asyncio.wait_for(drained, _DRAIN_TIMEOUT_S)
            except (TimeoutError, nats.errors.Error):
                log.warning("audio drain failed", extra={"call_id": live.event.call_id})
                # Never finish a recording that frames may still be added to.
                with contextlib.suppress(nats.errors.Error):
                    await sub.unsubscribe()
        live.subscriptions.clear()

    async def _finalize(self, live: _LiveCall, min_duration_s: float, *, result: str) -> None:
        call_id = live.event.call_id
        await self._drain(live)
        try:
            info = await asyncio.to_thread(live.recording.finish, min_duration_s)
        except OSError:
            RECORDINGS.labels("failed").inc()
            log.exception("recording finalize failed", extra={"call_id": call_id})
            return
        uri = await self._archive(live.event, info)
        if not await self._announce(live.event, info, uri):
            RECORDINGS.labels("unannounced").inc()
            return
        RECORDINGS.labels(result).inc()
        log.info(
            "recording ready",
            extra={"call_id": call_id, "duration_s": info.duration_s, "bytes": info.bytes},
        )

    async def _archive(self, started: CallStarted | CallEnded, info: RecordingInfo) -> str:
        """Upload a finished recording to the store; its URI (the file's on failure).

        The local file is removed only once the store holds it: a failed upload leaves the
        recording in the directory, announced by its file URI, never lost.
        """
        if self._store is None:
            return info.uri
        key = recording_key(
            started.tenant_id, started.call_id, info.path.name, self._settings.s3_prefix
        )
        try:
            await self._store.put(key, info.path)
        except ArchiveError:
            RECORDINGS.labels("upload_failed").inc()
            log.exception("recording upload failed", extra={"call_id": started.call_id})
            return info.uri
        await asyncio.to_thread(info.path.unlink, missing_ok=True)
        return self._store.uri(key)

    async def _announce(
        self, started: CallStarted | CallEnded, info: RecordingInfo, uri: str
    ) -> bool:
        event = RecordingReady(
            source=self._settings.connection_name,
            tenant_id=started.tenant_id,
            call_id=started.call_id,
            data=RecordingReadyData(
                recording_id=new_id(),
                uri=uri,
                sample_rate=info.sample_rate,
                duration_s=round(info.duration_s, 3),
                bytes=info.bytes,
                sha256=info.sha256,
                redacted=info.redacted,
            ),
        )
        # Retries are safe: the event id is the Nats-Msg-Id, stored once.
        for _attempt in range(_PUBLISH_ATTEMPTS):
            try:
                await asyncio.wait_for(
                    publish_event(self._service.broker, event), self._settings.publish_timeout_s
                )
                return True
            except (TimeoutError, nats.errors.Error):
                log.warning("recording.ready publish failed", extra={"call_id": started.call_id})
        return False


def _rate_of(path: Path) -> int | None:
    with path.open("rb") as file:
        return header_rate(file.read(HEADER_BYTES))
