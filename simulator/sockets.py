"""Listening sockets of simulated devices: each device binds its own loopback address.

A device binds the real port (161, 443, 22…) when it can. When that port is taken or
privileged it gets a per-device ephemeral port instead, which the fleet writes to the inventory,
so tests and demos run unprivileged and beside a real snmpd/sshd/nginx.
"""

from __future__ import annotations

import errno
import logging
import socket

log = logging.getLogger(__name__)

_UNAVAILABLE = (errno.EADDRINUSE, errno.EACCES, errno.EPERM)
LISTEN_BACKLOG = 128


def bind_socket(
    host: str, port: int, kind: socket.SocketKind, *, rcvbuf: int | None = None
) -> socket.socket:
    """A non-blocking socket bound to host:port; a TCP one is listening."""
    sock = socket.socket(socket.AF_INET, kind)
    try:
        if kind == socket.SOCK_STREAM:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if rcvbuf is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.setblocking(False)
        sock.bind((host, port))
        if kind == socket.SOCK_STREAM:
            sock.listen(LISTEN_BACKLOG)
    except OSError:
        sock.close()
        raise
    return sock


def bind_with_fallback(
    host: str, port: int, kind: socket.SocketKind, *, rcvbuf: int | None = None
) -> socket.socket:
    """The wanted port, or a per-device ephemeral one when it is taken or privileged."""
    try:
        return bind_socket(host, port, kind, rcvbuf=rcvbuf)
    except OSError as exc:
        if port == 0 or exc.errno not in _UNAVAILABLE:
            raise
        log.info("%s:%d unavailable (%s), using a per-device port", host, port, exc.strerror)
        return bind_socket(host, 0, kind, rcvbuf=rcvbuf)


def free_tcp_port(host: str) -> int:
    """A TCP port that was free on `host` a moment ago (for devices that must not listen)."""
    with bind_socket(host, 0, socket.SOCK_STREAM) as sock:
        port: int = sock.getsockname()[1]
    return port
