"""Keeps each chat adapter connected: start with backoff, notice a lost connection, reconnect."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import socket
import ssl
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

import aiohttp

from bot.model.errors import BotError, ConfigError

_LOGGER = logging.getLogger(__name__)


class Connectable(Protocol):
    """What the supervisor needs from an adapter (see :class:`bot.app.core.ChatAdapter`)."""

    platform: str

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def quiesce(self) -> None:
        """Stop taking messages and give up the platform's lock; replies still go out."""
        ...

    async def wait_disconnected(self) -> None:
        """Return (or raise the cause) once the platform connection has ended for good."""
        ...

    @property
    def standby(self) -> bool:
        """True while connected but another process takes the platform's messages (it holds
        the platform's lock in the shared database); this one still delivers."""
        ...


def describe(exc: BaseException) -> str:
    """One line for the log: what failed and, for network faults, which host and what to check."""
    chain = _chain(exc)
    reason = next((r for r in map(_network_reason, chain) if r), None)
    if reason is not None:
        host = next((h for h in map(_host_of, chain) if h), None)
        return f"cannot connect to {host} ({reason})" if host else f"network error ({reason})"
    if isinstance(exc, ConfigError):
        return "; ".join(exc.problems)
    text = str(exc) or type(exc).__name__
    return text if isinstance(exc, BotError) else f"{type(exc).__name__}: {text}"


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    cur: BaseException | None = exc
    while cur is not None and cur not in seen:
        seen.append(cur)
        cur = cur.__cause__ or cur.__context__
    return seen


def _host_of(exc: BaseException) -> str | None:
    if isinstance(exc, aiohttp.ClientConnectorError):
        return f"{exc.host}:{exc.port}"
    url = getattr(getattr(exc, "request", None), "url", None)  # httpx errors (python-telegram-bot)
    host = getattr(url, "host", None)
    if host:
        port = getattr(url, "port", None) or {"https": 443}.get(getattr(url, "scheme", ""), 80)
        return f"{host}:{port}"
    return None


def _network_reason(exc: BaseException) -> str | None:
    if isinstance(exc, aiohttp.ClientConnectorDNSError | socket.gaierror):
        return "DNS lookup failed: check the host name and this machine's DNS"
    if isinstance(exc, aiohttp.ClientSSLError | ssl.SSLError):
        return "TLS error: check the URL (https?) and the system CA certificates"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused: check the URL, the port and that the service runs"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return _network_reason(exc.os_error) or str(exc.os_error.strerror or "cannot connect")
    if isinstance(exc, OSError) and exc.errno is not None:
        return f"{exc.strerror or 'network error'}: check the network and any firewall"
    return None


class AdapterSupervisor:
    """Runs one adapter until stopped: a start that fails, or a connection that ends for any
    reason (including an exception inside the chat library), is retried with capped backoff.

    ``state`` is ``starting``, ``connected``, ``standby`` (connected and delivering, while
    another process on the same database takes the messages), ``draining`` (delivering only,
    the process is stopping) or ``down`` (``error`` says why), for /healthz.
    """

    def __init__(
        self,
        adapter: Connectable,
        *,
        on_connected: Callable[[], None] = lambda: None,
        on_lost: Callable[[], None] = lambda: None,
        first_delay: float = 1.0,
        max_delay: float = 120.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.adapter = adapter
        self._state = "starting"
        self.error: str | None = None
        self.since = time.time()
        self.restarts = 0
        self._on_connected, self._on_lost = on_connected, on_lost
        self._first, self._max = first_delay, max_delay
        self._sleep = sleep
        self._failures = 0

    @property
    def connected(self) -> bool:
        """True while the platform connection is up (a standby's too: it delivers)."""
        return self._state == "connected"

    @property
    def state(self) -> str:
        """``starting``, ``connected``, ``standby`` or ``down``."""
        if self._state == "connected" and self.adapter.standby:
            return "standby"
        return self._state

    def _set(self, state: str, error: str | None = None) -> None:
        self._state, self.error, self.since = state, error, time.time()

    def _delay(self) -> float:
        self._failures += 1
        base = min(self._max, self._first * 2.0 ** (self._failures - 1))
        return base * random.uniform(0.8, 1.2)

    async def run(self) -> None:
        """Start, wait for the connection to end, stop, back off, repeat (until cancelled)."""
        name = self.adapter.platform
        while True:
            try:
                await self.adapter.start()
            except Exception as exc:
                delay = self._delay()
                self._set("down", describe(exc))
                _LOGGER.error("%s: start failed: %s; retrying in %.0fs", name, self.error, delay)
                await self._stop_quietly()
                await self._sleep(delay)
                continue
            self._set("connected")
            _LOGGER.info("%s adapter started", name)
            self._on_connected()
            started = time.monotonic()
            try:
                await self.adapter.wait_disconnected()
                why = "the connection closed"
            except Exception as exc:
                why = describe(exc)
            if time.monotonic() - started > 300:
                self._failures = 0  # it was up for a while: start over with short delays
            delay = self._delay()
            self._set("down", why)
            self._on_lost()
            self.restarts += 1
            _LOGGER.error("%s: connection lost (%s); reconnecting in %.0fs", name, why, delay)
            await self._stop_quietly()
            await self._sleep(delay)

    async def _stop_quietly(self, timeout: float = 5.0) -> None:
        try:
            async with asyncio.timeout(timeout):
                await self.adapter.stop()
        except Exception as exc:
            _LOGGER.warning("%s: cleanup after failure: %s", self.adapter.platform, describe(exc))

    async def quiesce(self, timeout: float = 2.0) -> None:
        """Have the adapter stop taking messages (its lock given up) within ``timeout``
        seconds; it stays connected to deliver. The caller has cancelled :meth:`run` first, so
        the end of receiving is not taken for a lost connection."""
        if self._state == "connected":
            self._set("draining")
        try:
            async with asyncio.timeout(timeout):
                await self.adapter.quiesce()
        except Exception as exc:
            _LOGGER.warning("%s: stopping intake: %s", self.adapter.platform, describe(exc))

    async def stop(self, timeout: float = 4.0) -> None:
        """Stop the adapter within ``timeout`` seconds, whatever state it is in."""
        with contextlib.suppress(Exception):
            await self._stop_quietly(timeout)
