"""voicebus engines: speech and language engines behind one interface per role.

Services pick engines by name from an agent's profile::

    from voicebus.engines.base import STT, TTS, LLM, Warmable
    from voicebus.engines.builtin import load_builtin_engines

    load_builtin_engines()                       # once per process; loads no model
    stt = STT.create("whisper-local", {"language": "en"})
    tts = TTS.create("hibari")
    if isinstance(tts, Warmable):
        await tts.warm()                         # load the model before the first call

Local engines (``whisper-local``, ``hibari``) share one model per process and run it
in worker threads; ``openai`` talks to any OpenAI-compatible server, including the
local one in :mod:`voicebus.engines.llm.llama_server`. ``null`` (STT) and ``silent``
(TTS) cost nothing, for benchmarks and other services' tests.
"""
