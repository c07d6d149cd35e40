"""A headless Chromium driven over the DevTools protocol, for browser-call tests.

Uses the machine's Chromium (Debian's ``chromium`` package; ``scripts/install-browser.sh``
installs it) and talks to it with a small DevTools client over one WebSocket: no
browser download, no driver binary. The microphone is Chromium's fake capture
device playing a WAV file, so a test can make a real page speak a known line.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import shutil
import signal
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import WebSocketException

EXECUTABLES: Final = ("chromium", "chromium-browser", "google-chrome")
_PORT_FILE: Final = "DevToolsActivePort"


class BrowserError(RuntimeError):
    """Chromium is missing, did not start, or a DevTools command failed."""


def find_chromium() -> str | None:
    """Path of an installed Chromium, or None."""
    for name in EXECUTABLES:
        path = shutil.which(name)
        if path is not None:
            return path
    return None


def chromium_flags(profile: Path, fake_microphone: Path | None) -> list[str]:
    """Command-line flags of a headless Chromium with a fake camera and microphone."""
    flags = [
        "--headless=new",
        "--remote-debugging-port=0",
        f"--user-data-dir={profile}",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-extensions",
        "--autoplay-policy=no-user-gesture-required",
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
    ]
    if fake_microphone is not None:
        # %noloop: the file plays once, then the device records silence.
        flags.append(f"--use-file-for-fake-audio-capture={fake_microphone}%noloop")
    if os.geteuid() == 0:
        flags.append("--no-sandbox")  # Chromium refuses to run as root with its sandbox
    return flags


class Page:
    """One tab, attached through a flat DevTools session."""

    def __init__(self, browser: Chromium, session_id: str) -> None:
        self._browser = browser
        self.session_id = session_id
        self.console: list[str] = []

    async def evaluate(self, expression: str, timeout: float = 30.0) -> Any:
        """Value of a JavaScript expression (promises are awaited), as JSON-compatible data.

        Raises:
            BrowserError: the expression threw.
        """
        params = {"expression": expression, "awaitPromise": True, "returnByValue": True}
        result = await self._browser.send("Runtime.evaluate", params, self.session_id, timeout)
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            raise BrowserError(f"page script failed: {text}")
        return result["result"].get("value")

    async def wait_for(self, expression: str, timeout: float = 60.0, poll_s: float = 0.2) -> Any:
        """Poll ``expression`` until it is truthy; return its value.

        Raises:
            TimeoutError: it stayed falsy for ``timeout`` seconds.
        """
        async with asyncio.timeout(timeout):
            while True:
                value = await self.evaluate(expression)
                if value:
                    return value
                await asyncio.sleep(poll_s)


class Chromium:
    """A headless Chromium process and its DevTools connection.

    Args:
        profile: an empty directory for the browser profile.
        fake_microphone: a WAV file the fake microphone plays (once).
        executable: Chromium's path; found on ``PATH`` when None.
        extra_flags: more command-line flags.
    """

    def __init__(
        self,
        profile: Path,
        fake_microphone: Path | None = None,
        executable: str | None = None,
        extra_flags: Sequence[str] = (),
    ) -> None:
        self._profile = profile
        self._flags = [*chromium_flags(profile, fake_microphone), *extra_flags]
        self._executable = executable
        self._process: asyncio.subprocess.Process | None = None
        self._ws: ClientConnection | None = None
        self._reader: asyncio.Task[None] | None = None
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._pages: dict[str, Page] = {}

    async def __aenter__(self) -> Chromium:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self, timeout: float = 30.0) -> None:
        """Launch Chromium and connect to its DevTools endpoint.

        Raises:
            BrowserError: no Chromium installed, or it did not come up in time.
        """
        executable = self._executable or find_chromium()
        if executable is None:
            raise BrowserError("Chromium is not installed: run scripts/install-browser.sh")
        self._profile.mkdir(parents=True, exist_ok=True)
        self._process = await asyncio.create_subprocess_exec(
            executable,
            *self._flags,
            "about:blank",
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
            start_new_session=True,
        )
        url = await self._endpoint(timeout)
        self._ws = await connect(url, max_size=None, ping_interval=None)
        self._reader = asyncio.create_task(self._read())

    async def _endpoint(self, timeout: float) -> str:
        port_file = self._profile / _PORT_FILE
        async with asyncio.timeout(timeout):
            while True:
                assert self._process is not None
                if self._process.returncode is not None:
                    raise BrowserError(f"Chromium exited with code {self._process.returncode}")
                with contextlib.suppress(FileNotFoundError, ValueError, IndexError):
                    port, path = port_file.read_text().split("\n")[:2]
                    if port and path:
                        return f"ws://127.0.0.1:{int(port)}{path}"
                await asyncio.sleep(0.1)

    async def _read(self) -> None:
        assert self._ws is not None
        async for raw in self._ws:
            message = json.loads(raw)
            future = self._pending.pop(message.get("id", -1), None)
            if future is not None and not future.done():
                future.set_result(message)
            elif message.get("method") == "Runtime.consoleAPICalled":
                page = self._pages.get(message.get("sessionId", ""))
                if page is not None:
                    args = message["params"].get("args", [])
                    text = " ".join(str(a.get("value", a.get("description", ""))) for a in args)
                    page.console.append(f"{message['params'].get('type')}: {text}")

    async def send(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        session_id: str | None = None,
        timeout: float = 30.0,
    ) -> dict[str, Any]:
        """Send one DevTools command and return its result.

        Raises:
            BrowserError: the browser answered with an error.
        """
        if self._ws is None:
            raise BrowserError("Chromium is not running")
        command_id = next(self._ids)
        message: dict[str, Any] = {"id": command_id, "method": method, "params": params or {}}
        if session_id is not None:
            message["sessionId"] = session_id
        future = asyncio.get_running_loop().create_future()
        self._pending[command_id] = future
        await self._ws.send(json.dumps(message))
        reply = await asyncio.wait_for(future, timeout)
        if "error" in reply:
            raise BrowserError(f"{method}: {reply['error'].get('message')}")
        result: dict[str, Any] = reply.get("result", {})
        return result

    async def open(self, url: str) -> Page:
        """Open ``url`` in a new tab and wait until it has loaded."""
        target = await self.send("Target.createTarget", {"url": "about:blank"})
        attached = await self.send(
            "Target.attachToTarget", {"targetId": target["targetId"], "flatten": True}
        )
        page = Page(self, attached["sessionId"])
        self._pages[page.session_id] = page
        await self.send("Runtime.enable", session_id=page.session_id)
        await self.send("Page.enable", session_id=page.session_id)
        await self.send("Page.navigate", {"url": url}, page.session_id)
        loaded = "location.href !== 'about:blank' && document.readyState === 'complete'"
        await page.wait_for(loaded, timeout=30.0)
        return page

    async def stop(self) -> None:
        """Close the connection and end the browser (SIGKILL if it lingers)."""
        if self._ws is not None:
            with contextlib.suppress(WebSocketException, OSError):  # the browser may be gone
                await self._ws.close()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        process = self._process
        if process is not None and process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), 10.0)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                await process.wait()
