"""The local LLM: llama-cpp-python's OpenAI-compatible server on the Qwen GGUF.

The ``openai`` engine pointed at :attr:`LlamaServer.base_url` *is* the local LLM; no
other code path exists for it. llama-cpp-python is an optional extra (it compiles
from source), so nothing here imports it: the server runs as a child process.

Run it in the foreground (prints the base URL once the model answers)::

    python -m voicebus.engines.llm.llama_server --print-url

Tool calls: the server renders the chat template embedded in the GGUF (Qwen's,
which knows tools and tool results) and returns the model's ``<tool_call>`` blocks
as text; the ``openai`` engine's ``text_tool_calls`` option turns them into tool calls.
llama-cpp-python's ``chatml-function-calling`` format is not used: it drops tool
results from the prompt.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import logging
import os
import signal
import socket
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import IO, Final, Self

import httpx

from voicebus.engines.base import EngineError
from voicebus.engines.llm.local_model import DEFAULT_CACHE_DIR, INSTALL_HINT, prepare_model

log = logging.getLogger(__name__)

MODEL_ALIAS: Final = "qwen2.5-coder-0.5b-instruct"
# The server reads its settings from the environment too (HOST, PORT, API_KEY, MODEL...),
# and those would override the command line: the child gets only what it needs.
_ENV_KEEP: Final = (
    "PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TMPDIR", "SYSTEMROOT",
    "PYTHONPATH", "LD_LIBRARY_PATH",
)  # fmt: skip


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def ensure_installed() -> None:
    """Check that this interpreter has llama-cpp-python's server.

    Raises:
        EngineError: it is missing, with how to install it.
    """
    if importlib.util.find_spec("llama_cpp") is None or importlib.util.find_spec("uvicorn") is None:
        raise EngineError(f"llama-cpp-python[server] is not installed; {INSTALL_HINT}")


class LlamaServer:
    """A llama-cpp-python server child process on loopback.

    Args:
        model: The GGUF file (see :func:`prepare_model`).
        host: Address to listen on.
        port: Port; a free one by default.
        n_threads: CPU threads for generation (at most one local LLM call runs at a time).
        n_ctx: Context window, in tokens.
        python: Interpreter that has llama-cpp-python installed; this one by default.
    """

    def __init__(
        self,
        model: Path,
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        n_threads: int = 2,
        n_ctx: int = 4096,
        python: str = sys.executable,
    ) -> None:
        self.model = model
        self.host = host
        self.port = port or free_port(host)
        self.n_threads = n_threads
        self.n_ctx = n_ctx
        self.python = python
        self._process: asyncio.subprocess.Process | None = None
        self._output: IO[bytes] | None = None

    @property
    def base_url(self) -> str:
        """The OpenAI-compatible API root, for the ``openai`` engine's ``base_url``."""
        return f"http://{self.host}:{self.port}/v1"

    def command(self) -> list[str]:
        """The server's command line."""
        return [
            self.python, "-m", "llama_cpp.server",
            "--model", str(self.model),
            "--model_alias", MODEL_ALIAS,
            "--host", self.host,
            "--port", str(self.port),
            "--n_threads", str(self.n_threads),
            "--n_threads_batch", str(self.n_threads),
            "--n_ctx", str(self.n_ctx),
            "--verbose", "false",
        ]  # fmt: skip

    async def start(self, timeout: float = 120.0) -> str:
        """Start the server and wait until it answers ``/v1/models``; returns the base URL.

        Raises:
            EngineError: llama-cpp-python is missing, the server exited, or it did not
                answer within ``timeout`` seconds.
        """
        if self.python == sys.executable:
            ensure_installed()
        env = {key: os.environ[key] for key in _ENV_KEEP if key in os.environ}
        self._output = tempfile.TemporaryFile()  # noqa: SIM115 — kept open for the child's life
        self._process = await asyncio.create_subprocess_exec(
            *self.command(), stdout=self._output, stderr=asyncio.subprocess.STDOUT, env=env
        )
        log.info("local LLM server starting", extra={"port": self.port})
        try:
            await self._wait_ready(timeout)
        except BaseException:
            await self.stop()
            raise
        log.info("local LLM server ready", extra={"port": self.port})
        return self.base_url

    async def _wait_ready(self, timeout: float) -> None:
        assert self._process is not None
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(timeout=2.0) as client:
            while time.monotonic() < deadline:
                if self._process.returncode is not None:
                    raise EngineError(
                        f"the local LLM server exited with code {self._process.returncode}: "
                        f"{self.output_tail()}"
                    )
                with contextlib.suppress(httpx.TransportError):
                    response = await client.get(f"{self.base_url}/models")
                    if response.status_code == 200:
                        return
                await asyncio.sleep(0.2)
        raise EngineError(f"the local LLM server did not answer within {timeout:.0f} s")

    def output_tail(self, limit: int = 2000) -> str:
        """The last characters the server printed (for error messages)."""
        if self._output is None:
            return ""
        self._output.seek(0)
        return self._output.read().decode("utf-8", "replace")[-limit:]

    async def stop(self, timeout: float = 10.0) -> None:
        """Stop the server: SIGTERM, then SIGKILL after ``timeout`` seconds."""
        process, self._process = self._process, None
        if process is not None and process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), timeout)
            except TimeoutError:
                process.kill()
                await process.wait()
        if self._output is not None:
            self._output.close()
            self._output = None

    async def wait(self) -> int:
        """Wait until the server process exits; returns its exit code.

        Raises:
            EngineError: the server is not running.
        """
        if self._process is None:
            raise EngineError("the local LLM server is not running")
        return await self._process.wait()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()


async def serve(args: argparse.Namespace) -> None:
    """Prepare the model, run the server until SIGINT/SIGTERM, then stop it."""
    model = await asyncio.to_thread(prepare_model, Path(args.models_dir))
    server = LlamaServer(model, host=args.host, port=args.port, n_threads=args.threads)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stopping.set)
    async with server:
        if args.print_url:
            print(server.base_url, flush=True)
        exited = asyncio.ensure_future(server.wait())
        stop_wait = asyncio.ensure_future(stopping.wait())
        await asyncio.wait({exited, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
        stop_wait.cancel()
        if exited.done():
            raise EngineError(f"the local LLM server exited: {server.output_tail()}")


def main(argv: list[str] | None = None) -> int:
    """Command line: run the local LLM server in the foreground."""
    parser = argparse.ArgumentParser(
        prog="python -m voicebus.engines.llm.llama_server",
        description="Run the local OpenAI-compatible LLM server (Qwen2.5-Coder-0.5B).",
    )
    parser.add_argument("--models-dir", default=str(DEFAULT_CACHE_DIR),
                        help="where the joined GGUF is kept (default: %(default)s)")  # fmt: skip
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=None, help="default: a free port")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--print-url", action="store_true",
                        help="print the base URL on stdout once the server answers")  # fmt: skip
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per readiness poll
    try:
        asyncio.run(serve(args))
    except EngineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
