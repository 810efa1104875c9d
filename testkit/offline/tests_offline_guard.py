"""Refuse any socket connection that is not loopback, so a test that would reach the internet fails.

Installed by tests/conftest.py for the test process and, via ``sitecustomize`` on PYTHONPATH, for
every ``voicebot`` subprocess the tests start. The failure is immediate (no DNS, no timeout): a
connection attempt to anything but 127.0.0.0/8, ::1 or a Unix socket raises at once.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

_ALLOWED_NAMES = {"localhost"}


class NetworkBlocked(OSError):
    """Raised when code under test tries to leave the machine."""


def _is_loopback(host: object) -> bool:
    if isinstance(host, bytes):
        host = host.decode()
    if not isinstance(host, str):
        return False
    if host in _ALLOWED_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


def _check(sock: socket.socket, address: Any) -> None:
    if sock.family == getattr(socket, "AF_UNIX", None):
        return
    host = address[0] if isinstance(address, tuple) else address
    if not _is_loopback(host):
        raise NetworkBlocked(f"tests are offline: refused connection to {address!r}")


def install() -> None:
    """Patch socket connect and name resolution to allow loopback only (idempotent)."""
    if getattr(socket.socket, "_voicebot_guard", False):
        return
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex
    real_getaddrinfo = socket.getaddrinfo

    def connect(self: socket.socket, address: Any) -> None:
        _check(self, address)
        real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        _check(self, address)
        return real_connect_ex(self, address)

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host is not None and not _is_loopback(host):
            raise NetworkBlocked(f"tests are offline: refused to resolve {host!r}")
        return real_getaddrinfo(host, *args, **kwargs)

    socket.socket.connect = connect  # type: ignore[method-assign]
    socket.socket.connect_ex = connect_ex  # type: ignore[method-assign]
    socket.getaddrinfo = getaddrinfo
    socket.socket._voicebot_guard = True  # type: ignore[attr-defined]
