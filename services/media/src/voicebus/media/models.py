"""pipecat's Silero VAD and smart-turn v3 analyzers, one ONNX session per process.

pipecat's ``SileroVADAnalyzer`` loads its own ONNX session per instance (~10 MB
and ~90 ms each, on the event loop) and scores every 20 ms frame through a
thread hop (~70 % more CPU than scoring inline). A media process holds dozens of
calls, so here every call gets its own analyzer state (recurrent state, audio
context, speech state machine) over one shared session: scored in batches
across calls (:mod:`voicebus.media.batched_vad`, the default), or inline, one
window at a time (~0.15 ms of CPU each; onnxruntime's ``run`` is thread-safe).

Smart turn v3.2 (~42 ms of CPU per check here) runs off the loop, on one
thread and one session shared by all calls, in the order checks are asked.
It is not batched like the VAD: scoring 1, 2, 4 or 8 calls' turns in one run
cost 41.8, 42.5, 43.9 and 46.1 ms per turn (measured on the development
machine), so a batch saves no CPU and makes every turn in it wait for the
whole batch.

numpy's OpenBLAS is held to one thread once the models load: its worker
threads spin between the small matrix products of smart turn's features, and
a check cost 84-96 ms of CPU with them against 45 ms without.

Both models ship inside the pipecat-ai wheel; their sha256 is checked before
a session loads them, so a swapped or corrupted file stops the service at
start-up instead of deciding turns.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
from concurrent.futures import ThreadPoolExecutor
from importlib import resources

import onnxruntime as ort  # type: ignore[import-untyped]  # ships no type marker
from pipecat.audio.turn.base_turn_analyzer import EndOfTurnState
from pipecat.audio.turn.smart_turn.base_smart_turn import BaseSmartTurn, SmartTurnParams
from pipecat.audio.turn.smart_turn.local_smart_turn_v3 import LocalSmartTurnAnalyzerV3
from pipecat.audio.vad.silero import SileroOnnxModel, SileroVADAnalyzer
from pipecat.audio.vad.vad_analyzer import VADAnalyzer, VADParams, VADState
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]  # no type marker

from voicebus.contracts.rpc import TurnSettings
from voicebus.media.batched_vad import BatchedSileroVADAnalyzer, SileroBatcher

SILERO_MODEL = ("pipecat.audio.vad.data", "silero_vad.onnx")
SMART_TURN_MODEL = ("pipecat.audio.turn.smart_turn.data", "smart-turn-v3.2-cpu.onnx")
MODEL_SHA256 = {
    "silero_vad.onnx": "1a153a22f4509e292a94e67d6f9b85e8deb25b4988682b7e174c65279d8788e3",
    "smart-turn-v3.2-cpu.onnx": "2bb026316b14a660486a75b1733cd3fbab8c2fd0314dc9af7be49f8cca967e4f",
}
"""The files of pipecat-ai 1.14.0; a new pipecat release updates these on purpose."""


class ModelIntegrityError(RuntimeError):
    """A model file is not the one voicebus was tested with."""


def verify_model(path: str, expected: str) -> None:
    """Check a model file's sha256 before it is loaded.

    Raises:
        ModelIntegrityError: the file is missing or its digest differs (both named).
    """
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as file:
            for block in iter(lambda: file.read(1 << 20), b""):
                digest.update(block)
    except OSError as exc:
        raise ModelIntegrityError(f"model file {path} cannot be read: {exc}") from exc
    if digest.hexdigest() != expected:
        raise ModelIntegrityError(
            f"model file {path} has sha256 {digest.hexdigest()}, expected {expected}"
        )


def _model_path(package: str, name: str) -> str:
    path = str(resources.files(package).joinpath(name))
    verify_model(path, MODEL_SHA256[name])
    return path


def smart_turn_on(turn: TurnSettings, stt_engine: str) -> bool:
    """Whether a call asks the smart-turn model: the agent's choice, else on for local STT.

    Cloud STT engines end utterances themselves; the local ones (names ending in
    ``-local``) rely on media's turn detection.
    """
    if turn.smart_turn is not None:
        return turn.smart_turn
    return stt_engine.endswith("-local")


def load_silero_session() -> ort.InferenceSession:
    """The Silero VAD model shipped in pipecat-ai, on one CPU thread (as pipecat loads it)."""
    opts = ort.SessionOptions()
    opts.inter_op_num_threads = 1
    opts.intra_op_num_threads = 1
    return ort.InferenceSession(
        _model_path(*SILERO_MODEL), providers=["CPUExecutionProvider"], sess_options=opts
    )


def load_smart_turn_session() -> ort.InferenceSession:
    """The smart-turn v3.2 model shipped in pipecat-ai (the options pipecat uses)."""
    opts = ort.SessionOptions()
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.inter_op_num_threads = 1
    opts.intra_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(_model_path(*SMART_TURN_MODEL), sess_options=opts)


class _SessionSileroModel(SileroOnnxModel):
    """pipecat's Silero wrapper (state, context, validation) over a session it did not load."""

    def __init__(self, session: ort.InferenceSession) -> None:
        self.session = session
        self.reset_states()  # type: ignore[no-untyped-call]  # unannotated in pipecat
        self.sample_rates = [8000, 16000]


class InlineSileroVADAnalyzer(SileroVADAnalyzer):
    """pipecat's ``SileroVADAnalyzer`` on a shared session, scoring on the calling task.

    Behaves exactly like ``SileroVADAnalyzer`` (same state machine, volume gate and
    periodic model resets); only where the model comes from and where it runs differ.

    Args:
        session: the shared Silero session (:func:`load_silero_session`).
        params: VAD thresholds and timing.
    """

    def __init__(self, *, session: ort.InferenceSession, params: VADParams) -> None:
        # SileroVADAnalyzer.__init__ would load a private session: set up its state instead.
        VADAnalyzer.__init__(self, params=params)
        self._model = _SessionSileroModel(session)
        self._windows_since_reset = 0
        self._low_confidence_windows = 0

    async def analyze_audio(self, buffer: bytes) -> VADState:
        """Score the buffer now (no thread hop: one window costs ~0.15 ms of CPU)."""
        return self._run_analyzer(buffer)


class SharedSmartTurnAnalyzer(LocalSmartTurnAnalyzerV3):
    """pipecat's smart-turn v3 analyzer on a shared session and a shared thread.

    Args:
        session: the shared smart-turn session (:func:`load_smart_turn_session`).
        executor: the thread pool every call's checks run on.
        params: turn timing (``stop_secs``: silence that ends a turn whatever the model says).
    """

    def __init__(
        self,
        *,
        session: ort.InferenceSession,
        executor: ThreadPoolExecutor,
        params: SmartTurnParams,
    ) -> None:
        # LocalSmartTurnAnalyzerV3.__init__ would load a private session: set up its state.
        BaseSmartTurn.__init__(self, params=params)
        self._session = session
        self._log_data = False
        self._shared_executor = executor

    @property
    def _model_executor(self) -> ThreadPoolExecutor:
        return self._shared_executor

    async def predict_now(self) -> EndOfTurnState:
        """The model's answer on the audio so far, leaving the analyzer as it is.

        Unlike ``analyze_end_of_turn`` nothing is cleared, so the answer may be
        asked early (before the VAD confirms the stop) and dropped if the caller
        speaks again.
        """
        loop = asyncio.get_running_loop()
        snapshot = list(self._audio_buffer)
        state, _metrics = await loop.run_in_executor(
            self._model_executor, self._process_speech_segment, snapshot
        )
        return state


def vad_state(analyzer: VADAnalyzer) -> VADState:
    """Where the analyzer's state machine is (pipecat keeps it in a protected attribute)."""
    return analyzer._vad_state  # read only; pipecat has no public getter


class SharedModels:
    """The process's VAD and smart-turn sessions, loaded once and off the event loop.

    Args:
        vad_batch_wait_ms: batch calls' VAD windows, each waiting at most this long
            for the others (:mod:`voicebus.media.batched_vad`); 0 scores each call's
            windows alone, inline.
    """

    def __init__(self, *, vad_batch_wait_ms: int = 10) -> None:
        self._lock = threading.Lock()
        self._batch_wait_s = vad_batch_wait_ms / 1000
        self._silero: ort.InferenceSession | None = None
        self._batcher: SileroBatcher | None = None
        self._smart_turn: ort.InferenceSession | None = None
        self._executor: ThreadPoolExecutor | None = None

    async def load(self, *, smart_turn: bool) -> None:
        """Load the Silero session (and the smart-turn one) in a worker thread."""
        await asyncio.to_thread(self._load, smart_turn)

    def _load(self, smart_turn: bool) -> None:
        threadpool_limits(limits=1, user_api="blas")  # process-wide, from now on
        with self._lock:
            if self._silero is None:
                self._silero = load_silero_session()
                if self._batch_wait_s > 0:
                    self._batcher = SileroBatcher(self._silero, max_wait_s=self._batch_wait_s)
            if smart_turn and self._smart_turn is None:
                self._smart_turn = load_smart_turn_session()
                self._executor = ThreadPoolExecutor(1, thread_name_prefix="smart-turn")

    def vad(self, params: VADParams, sample_rate: int = 8000) -> SileroVADAnalyzer:
        """A new call's VAD analyzer (call :meth:`load` first)."""
        if self._silero is None:
            raise RuntimeError("SharedModels.load() must run before vad()")
        if self._batcher is not None:
            return BatchedSileroVADAnalyzer(
                batcher=self._batcher, params=params, sample_rate=sample_rate
            )
        return InlineSileroVADAnalyzer(session=self._silero, params=params)

    def smart_turn(self, params: SmartTurnParams) -> SharedSmartTurnAnalyzer:
        """A new call's smart-turn analyzer (call :meth:`load` with ``smart_turn`` first)."""
        if self._smart_turn is None or self._executor is None:
            raise RuntimeError("SharedModels.load(smart_turn=True) must run before smart_turn()")
        return SharedSmartTurnAnalyzer(
            session=self._smart_turn, executor=self._executor, params=params
        )

    def close(self) -> None:
        """Stop the batching and smart-turn threads (after every call ended)."""
        if self._batcher is not None:
            self._batcher.close()
            self._batcher = None
            self._silero = None
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None
