"""The one place a link's traffic leaves the process: a filtering forward proxy on 127.0.0.1.

Every request of a fetch — the first, each redirect, every HLS segment, whether aiohttp or
yt-dlp sends it — goes through one :class:`GateProxy`. For each client connection it resolves
the target host once through the injected :class:`Resolver`, checks every address, and connects
to the checked address itself, so no second DNS lookup can slip a different address in between
(DNS rebinding). HTTPS arrives as ``CONNECT host:port`` and is tunnelled (TLS stays end to end);
plain HTTP arrives in absolute form and is forwarded with ``Connection: close``, and the client
connection ends with that response, so one client connection never reaches a second host.
A refusal answers 403 with an ``X-Voicebot-Refused`` header and is recorded in ``refusals``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

from bot.links.policy import LinkSettings, address_problem, literal_address

_LOGGER = logging.getLogger(__name__)
_HEAD_LIMIT = 64 * 1024
_CHUNK = 64 * 1024


class Resolver(Protocol):
    """Name resolution, injectable (tests map names to local test servers)."""

    async def resolve(self, host: str) -> list[str]:
        """The IP addresses of ``host`` (empty or OSError: unknown)."""
        ...


class SystemResolver:
    """The system's resolver (getaddrinfo in a thread)."""

    async def resolve(self, host: str) -> list[str]:
        """Every address ``getaddrinfo`` gives for ``host``, first seen first."""
        loop = asyncio.get_running_loop()
        infos = await loop.getaddrinfo(host, None, type=socket.SOCK_STREAM)
        return list(dict.fromkeys(str(info[4][0]) for info in infos))


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why the proxy did not connect: ``reason`` is private, unknown_host or unreachable."""

    host: str
    reason: str
    detail: str


class _Refused(Exception):
    def __init__(self, refusal: Refusal) -> None:
        super().__init__(refusal.detail)
        self.refusal = refusal


class GateProxy:
    """A forward proxy that connects only to checked addresses; one per fetch operation."""

    def __init__(self, settings: LinkSettings, resolver: Resolver) -> None:
        self._settings = settings
        self._networks = settings.networks()
        self._resolver = resolver
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.refusals: list[Refusal] = []
        self.url = ""

    async def start(self) -> str:
        """Listen on 127.0.0.1, a free port; return the proxy URL."""
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    async def stop(self) -> None:
        """Stop listening and end every connection in flight."""
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> GateProxy:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.create_task(self._serve(reader, writer))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(self._settings.timeout_seconds):
                head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, target, version = lines[0].split(" ", 2)
            if method.upper() == "CONNECT":
                host, _, port = target.rpartition(":")
                up_reader, up_writer = await self._open(host, int(port))
                writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            else:
                up_reader, up_writer = await self._forward(method, target, version, lines[1:])
            await _pipe(reader, writer, up_reader, up_writer)
        except _Refused as exc:
            self.refusals.append(exc.refusal)
            _LOGGER.info("link proxy refused %s: %s", exc.refusal.host, exc.refusal.detail)
            status = "403 Forbidden" if exc.refusal.reason != "unreachable" else "502 Bad Gateway"
            refused = f"X-Voicebot-Refused: {exc.refusal.reason}\r\n"
            writer.write(f"HTTP/1.1 {status}\r\n{refused}Content-Length: 0\r\n\r\n".encode())
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
        except (OSError, asyncio.CancelledError):
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.close()

    async def _forward(
        self, method: str, target: str, version: str, headers: list[str]
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """Open the upstream of an absolute-form plain-HTTP request and send its head."""
        parts = urlsplit(target)
        if parts.scheme.lower() != "http" or not parts.hostname:
            raise ValueError(f"not an absolute http URL: {target!r}")
        up_reader, up_writer = await self._open(parts.hostname, parts.port or 80)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        dropped = ("proxy-", "connection:", "keep-alive:")
        kept = [h for h in headers if h and not h.lower().startswith(dropped)]
        head = "\r\n".join([f"{method} {path} {version}", *kept, "Connection: close", "", ""])
        up_writer.write(head.encode("latin-1"))
        return up_reader, up_writer

    async def _open(
        self, host: str, port: int
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """Resolve ``host`` once, check every address, connect to a checked one."""
        addresses = await self._addresses(host)
        last: OSError | None = None
        for address in addresses:
            try:
                async with asyncio.timeout(self._settings.timeout_seconds):
                    return await asyncio.open_connection(address, port, limit=_HEAD_LIMIT)
            except (OSError, TimeoutError) as exc:
                last = exc if isinstance(exc, OSError) else OSError("connect timed out")
        raise _Refused(Refusal(host, "unreachable", f"cannot connect to {host}:{port}: {last}"))

    async def _addresses(self, host: str) -> list[str]:
        """Every address of ``host``, refused when any is forbidden (a name that resolves
        partly to a private address is a rebinding setup, not a public site)."""
        literal = literal_address(host)
        if literal is not None:
            found = [str(literal)]
        else:
            try:
                async with asyncio.timeout(self._settings.timeout_seconds):
                    found = await self._resolver.resolve(host)
            except (OSError, TimeoutError) as exc:
                raise _Refused(Refusal(host, "unknown_host", f"{host}: {exc}")) from exc
            if not found:
                raise _Refused(Refusal(host, "unknown_host", f"{host}: no address"))
        for text in found:
            address = literal_address(text)
            problem = "not an address" if address is None else None
            problem = problem or address_problem(address, self._settings, self._networks)  # type: ignore[arg-type]
            if problem:
                raise _Refused(Refusal(host, "private", f"{host} resolves to {text} ({problem})"))
        return found


async def _pipe(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    up_reader: asyncio.StreamReader,
    up_writer: asyncio.StreamWriter,
) -> None:
    """Copy both ways until the upstream is done (its end ends the client's connection)."""

    async def copy(src: asyncio.StreamReader, dst: asyncio.StreamWriter, half: bool) -> None:
        with contextlib.suppress(OSError):
            while chunk := await src.read(_CHUNK):
                dst.write(chunk)
                await dst.drain()
            if half and dst.can_write_eof():
                dst.write_eof()

    upload = asyncio.create_task(copy(reader, up_writer, True))
    try:
        await copy(up_reader, writer, False)
    finally:
        upload.cancel()
        with contextlib.suppress(BaseException):
            await upload
        with contextlib.suppress(Exception):
            up_writer.close()
