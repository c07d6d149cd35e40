"""Whisper that decodes while the caller speaks, so the final is ready when the turn ends.

Whisper does not stream, but CTranslate2's encoder runs on the audio's real length
(faster-whisper pads every window to 30 s: ~530 ms of encoder for whisper base where
3 s of audio need ~75 ms). So the session re-decodes the turn's audio so far:

- every ``step_ms`` of new audio while the caller speaks (interim results);
- as soon as ``silence_ms`` of quiet follows speech: the speculative final. The
  turn detector ends a turn only after its own stop silence (300 ms by default),
  so this decode usually finishes before the turn does;
- at the end of the turn, only if audio with sound in it arrived after the last
  decode (the caller went on after a short pause).

Decodes run one at a time per process (two cores), in a worker thread.
"""

from __future__ import annotations

import asyncio
import math
import re
import threading
import zlib
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np

from voicebus.engines.audio import FloatArray, StreamResampler, pcm16_to_float, rms_dbfs
from voicebus.engines.base import EngineError
from voicebus.engines.streaming import InterimListener, TranscriptUpdate

WHISPER_RATE: Final = 16_000
SOUND_DBFS: Final = -45.0
"""A 20 ms piece louder than this (RMS) has sound in it; phone line noise sits far below."""
SILENCE_DBFS: Final = -60.0
TOKENS_PER_S: Final = 6.0
FULL_FRAMES: Final = 3000
"""Whisper's own window: 30 s of 10 ms feature frames."""
COMPRESSION_LIMIT: Final = 2.4
PAD_S: Final = 2.0
"""Silence added after the audio at least: whisper ends a clip more reliably when the
window does not stop where the speech does."""
MIN_WINDOW_S: Final = 10.0
"""Silence is added after the audio until the window is this long (at least ``PAD_S``):
on windows much shorter than the 30 s it was trained on, whisper mishears more ("High,
where is..." for "Hi, where is..." from a browser microphone); 10 s costs a third of the
30 s encoder and hears as batch whisper does on the test lines."""
TIMESTAMP_S: Final = 0.02
SEGMENT_EPSILON_S: Final = 0.1

SCRIPT_PROMPTS: Final = {
    "hi": "नमस्ते, आप कैसे हैं? मैं ठीक हूँ।",
    "mr": "नमस्कार, तुम्ही कसे आहात?",
    "ta": "வணக்கம், நீங்கள் எப்படி இருக்கிறீர்கள்?",
    "te": "నమస్కారం, మీరు ఎలా ఉన్నారు?",
    "bn": "নমস্কার, আপনি কেমন আছেন?",
}
"""A previous-text prompt in the language's own script. Whisper writes Hindi speech in
Urdu script or in Latin letters about as often as in Devanagari; a short prompt in the
script makes it write that script."""

_decode_lock = threading.Lock()


@dataclass(frozen=True, slots=True)
class Decoded:
    """One decode's result."""

    text: str
    language: str | None
    confidence: float | None


def decode(
    model: Any, audio: FloatArray, language: str | None, *, beam_size: int,
    no_speech_threshold: float,
) -> Decoded:  # fmt: skip
    """Decode 16 kHz audio with the encoder on its real length (blocking; one at a time).

    Args:
        model: a faster-whisper ``WhisperModel``.
        audio: mono float32 at 16 kHz.
        language: the spoken language; None detects it (multilingual models).
        beam_size: beam width.
        no_speech_threshold: results at least this likely to be non-speech are empty.
    """
    from faster_whisper.tokenizer import Tokenizer  # type: ignore[import-untyped]

    if audio.size == 0 or rms_dbfs(audio) < SILENCE_DBFS:
        return Decoded("", language, None)
    pad_s = max(PAD_S, MIN_WINDOW_S - audio.size / WHISPER_RATE)
    padded = np.concatenate([audio, np.zeros(int(pad_s * WHISPER_RATE), np.float32)])
    features = model.feature_extractor(padded)
    if features.shape[1] % 2:
        features = features[:, :-1]
    multilingual = bool(model.model.is_multilingual)
    # Speech runs at most ~5 tokens a second: a longer answer is whisper looping.
    budget = int(TOKENS_PER_S * audio.size / WHISPER_RATE) + 16  # timestamps included
    with _decode_lock:
        encoded = model.model.encode(_view(features), to_cpu=False)
        if multilingual and language is None:
            language = str(model.model.detect_language(encoded)[0][0][0]).strip("<|>")
        tokenizer = Tokenizer(
            model.hf_tokenizer, multilingual, task="transcribe",
            language=language if multilingual else None,
        )  # fmt: skip
        # With timestamps: whisper marks where each segment starts, so a segment it
        # "hears" after the audio ended (short windows make it repeat itself) is cut.
        prompt = [*tokenizer.sot_sequence]
        script = SCRIPT_PROMPTS.get(language or "") if multilingual else None
        if script:
            prompt = [tokenizer.sot_prev, *tokenizer.encode(" " + script), *prompt]
        seconds = audio.size / WHISPER_RATE
        result = _generate(model, encoded, prompt, beam_size, len(prompt) + budget)
        tokens = _within(result.sequences_ids[0], tokenizer, seconds)
        text = str(tokenizer.decode(tokens)).strip()
        if len(result.sequences_ids[0]) >= budget or _repetitive(text):
            # Still looping: decode once more on the 30 s window whisper was trained on
            # (slower, but what batch whisper would say).
            window = np.zeros((features.shape[0], FULL_FRAMES), np.float32)
            kept = min(features.shape[1], FULL_FRAMES)
            window[:, :kept] = features[:, :kept]
            encoded = model.model.encode(_view(window), to_cpu=False)
            result = _generate(model, encoded, prompt, beam_size, len(prompt) + budget)
            tokens = _within(result.sequences_ids[0], tokenizer, seconds)
            text = str(tokenizer.decode(tokens)).strip()
    text = drop_echoes(text)
    if result.no_speech_prob >= no_speech_threshold:
        return Decoded("", language, None)
    confidence = min(1.0, max(0.0, math.exp(result.scores[0]))) if text else None
    return Decoded(text, language if multilingual else "en", confidence)


def _view(features: Any) -> Any:
    import ctranslate2  # type: ignore[import-untyped]  # ships no type marker

    return ctranslate2.StorageView.from_array(np.ascontiguousarray(features[None]))


def _generate(model: Any, encoded: Any, prompt: list[int], beam_size: int, max_length: int) -> Any:
    return model.model.generate(
        encoded, [prompt], beam_size=beam_size, max_length=max_length, return_scores=True,
        return_no_speech_prob=True, suppress_blank=True, no_repeat_ngram_size=3,
    )[0]  # fmt: skip


def _within(ids: list[int], tokenizer: Any, seconds: float) -> list[int]:
    """Text tokens of the segments that start before the audio ends."""
    kept: list[int] = []
    segment: list[int] = []
    for token in ids:
        if token >= tokenizer.timestamp_begin:
            at = (token - tokenizer.timestamp_begin) * TIMESTAMP_S
            if not segment and at >= seconds - SEGMENT_EPSILON_S:
                break  # a segment starting after the audio: whisper repeating itself
            kept += segment
            segment = []
        elif token < tokenizer.eot:
            segment.append(token)
    return kept + segment


_SENTENCE = re.compile(r"(?<=[.!?।])\s+")
_WORDS = re.compile(r"\w+")


def drop_echoes(text: str) -> str:
    """Drop sentences that repeat the one before them (or start repeating it).

    Whisper on a short window sometimes says the utterance twice ("Where is my order?
    Where is my order?"); a caller repeating a sentence word for word within one turn
    is rarer than that.
    """
    kept: list[str] = []
    previous: list[str] = []
    for sentence in _SENTENCE.split(text.strip()):
        words = _WORDS.findall(sentence.lower())
        if previous and words and previous[: len(words)] == words:
            continue
        kept.append(sentence)
        previous = words or previous
    return " ".join(kept)


def _repetitive(text: str) -> bool:
    """Whisper's own test for a looping decode: text that compresses too well."""
    data = text.encode()
    return len(data) > 24 and len(data) / len(zlib.compress(data)) > COMPRESSION_LIMIT


@dataclass(slots=True)
class _Turn:
    resampler: StreamResampler
    pieces: list[FloatArray] = field(default_factory=list)
    samples: int = 0
    sound_end: int = 0  # samples up to the end of the last piece with sound
    decoded_samples: int = -1
    decoded_sound_end: int = -1
    result: Decoded | None = None
    task: asyncio.Task[None] | None = None
    again: bool = False

    def audio(self, samples: int) -> FloatArray:
        whole = np.concatenate(self.pieces) if self.pieces else np.zeros(0, np.float32)
        return whole[:samples]


class IncrementalWhisperSession:
    """A call's :class:`~voicebus.engines.streaming.STTSession` on a local whisper model.

    Args:
        model: the shared faster-whisper model.
        engine: the engine's name.
        sample_rate: rate of the pushed audio.
        language: the language, or None to detect it.
        on_interim: receives interim results.
        beam_size: beam width.
        no_speech_threshold: results this likely to be non-speech are dropped.
        step_ms: new audio between two interim decodes.
        silence_ms: quiet after speech that starts the speculative final decode.
    """

    def __init__(
        self,
        model: Any,
        *,
        engine: str,
        sample_rate: int,
        language: str | None,
        on_interim: InterimListener | None,
        beam_size: int = 1,
        no_speech_threshold: float = 0.6,
        step_ms: int = 1000,
        silence_ms: int = 120,
    ) -> None:
        self.engine = engine
        self._model = model
        self._rate = sample_rate
        self._language = language
        self._on_interim = on_interim
        self._beam = beam_size
        self._no_speech = no_speech_threshold
        self._step = step_ms * WHISPER_RATE // 1000
        self._silence = silence_ms * WHISPER_RATE // 1000
        self._turn = self._new_turn()
        self._closed = False
        self._finishing: set[asyncio.Task[TranscriptUpdate]] = set()

    def _new_turn(self) -> _Turn:
        return _Turn(StreamResampler(self._rate, WHISPER_RATE))

    def push(self, pcm16: bytes) -> None:
        """Add audio to the open turn; start a decode when one is due."""
        if self._closed or not pcm16:
            return
        turn = self._turn
        piece = turn.resampler.process(pcm16_to_float(pcm16))
        turn.pieces.append(piece)
        turn.samples += piece.size
        if piece.size and rms_dbfs(piece) >= SOUND_DBFS:
            turn.sound_end = turn.samples
        self._maybe_decode(turn)

    def _maybe_decode(self, turn: _Turn) -> None:
        if turn.task is not None and not turn.task.done():
            turn.again = True
            return
        quiet_after_sound = turn.samples - turn.sound_end >= self._silence and turn.sound_end > max(
            turn.decoded_sound_end, 0
        )
        if turn.samples - max(turn.decoded_samples, 0) >= self._step or quiet_after_sound:
            turn.task = asyncio.ensure_future(self._decode(turn, interim=True))

    async def _decode(self, turn: _Turn, *, interim: bool) -> None:
        samples, sound_end = turn.samples, turn.sound_end
        audio = turn.audio(samples)
        try:
            result = await asyncio.to_thread(
                decode, self._model, audio, self._language, beam_size=self._beam,
                no_speech_threshold=self._no_speech,
            )  # fmt: skip
        except (RuntimeError, ValueError) as exc:
            raise EngineError(f"{self.engine}: decoding failed: {exc}", kind="failed") from exc
        turn.result, turn.decoded_samples, turn.decoded_sound_end = result, samples, sound_end
        if interim and result.text and self._on_interim is not None and turn is self._turn:
            self._on_interim(
                TranscriptUpdate(
                    result.text,
                    False,
                    0.0,
                    samples / 16.0,
                    result.confidence,
                    result.language,
                    (),
                    self.engine,
                )
            )
        if turn.again and turn is self._turn:
            turn.again = False
            self._maybe_decode(turn)

    def end_turn(self) -> asyncio.Future[TranscriptUpdate]:
        """Close the turn; its final is the last decode if nothing audible came after it."""
        turn, self._turn = self._turn, self._new_turn()
        tail = turn.resampler.process(np.zeros(0, np.float32), last=True)
        turn.pieces.append(tail)
        turn.samples += tail.size
        task = asyncio.ensure_future(self._finish(turn))
        self._finishing.add(task)
        task.add_done_callback(self._finishing.discard)
        return task

    async def _finish(self, turn: _Turn) -> TranscriptUpdate:
        while turn.task is not None and not turn.task.done():
            await asyncio.wait([turn.task])
        if turn.result is None or turn.sound_end > turn.decoded_samples:
            await self._decode(turn, interim=False)
        assert turn.result is not None
        result = turn.result
        return TranscriptUpdate(
            text=result.text,
            final=True,
            start_ms=0.0,
            end_ms=turn.sound_end / 16.0,
            confidence=result.confidence,
            language=result.language,
            engine=self.engine,
        )

    async def aclose(self) -> None:
        """Stop; decodes already running finish in their thread."""
        self._closed = True
        for task in list(self._finishing):
            task.cancel()
