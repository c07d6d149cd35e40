"""Free TCP ports on the loopback interface."""

from __future__ import annotations

import socket
import threading

LOOPBACK = "127.0.0.1"

_given: set[int] = set()
_lock = threading.Lock()
_TRIES = 64


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now.

    The port is only free at the moment of the call: another process may take it
    before the caller binds it, so servers started on it should retry on a
    bind failure. Within this process a port is never handed out twice: a test
    that asks for several ports before starting any server (a stand-in's, then
    the services of a stack) would otherwise be given the same one.

    Returns:
        The port number.
    """
    with _lock:
        for _ in range(_TRIES):
            port = _probe()
            if port not in _given:
                _given.add(port)
                return port
        return port


def listening_socket() -> socket.socket:
    """A TCP socket already bound and listening on a free loopback port.

    For servers started in this process: handing the socket itself to the
    server (``uvicorn.Server.serve(sockets=[...])``) leaves no moment in which
    another process could take the port.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((LOOPBACK, 0))
    sock.listen(128)
    with _lock:
        _given.add(sock.getsockname()[1])
    return sock


def _probe() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port
