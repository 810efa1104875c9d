"""Local web sites for the link tests: media, pages, HLS, redirects, liars, and a forbidden host.

:class:`MediaSite` (aiohttp, 127.0.0.1) serves what links point at; :class:`RawSite` (plain
asyncio, 127.0.0.1) sends what aiohttp's server would refuse to (a lying or a 10 GB
``Content-Length``); :class:`ForbiddenSite` stands for a private address (127.0.0.2 by default:
Linux routes all of 127/8 to the loopback interface) and counts every request and byte, so an
SSRF test can assert that nothing reached it. :class:`StaticResolver` maps test names to them.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import math
from collections import Counter
from collections.abc import Callable
from fractions import Fraction
from functools import cache

import av
from aiohttp import web

from testkit.fakes.audio import make_tone

HLS_SEGMENTS = 3


def ts_segment(seconds: float, freq: float) -> bytes:
    """An MPEG-TS segment of AAC audio: a sine tone of ``seconds``."""
    rate, buf = 48000, io.BytesIO()
    with av.open(buf, "w", format="mpegts") as out:
        stream = out.add_stream("aac", rate=rate)
        stream.layout = "mono"  # type: ignore[union-attr]
        total, pts = int(seconds * rate), 0
        while pts < total:
            n = min(1024, total - pts)
            pcm = b"".join(
                int(12000 * math.sin(2 * math.pi * freq * i / rate)).to_bytes(
                    2, "little", signed=True
                )
                for i in range(pts, pts + n)
            )
            frame = av.AudioFrame(format="s16", layout="mono", samples=n)
            frame.planes[0].update(pcm)
            frame.sample_rate, frame.pts, frame.time_base = rate, pts, Fraction(1, rate)
            for packet in stream.encode(frame):
                out.mux(packet)
            pts += n
        for packet in stream.encode(None):
            out.mux(packet)
    return buf.getvalue()


@cache
def media() -> tuple[bytes, bytes, list[bytes]]:
    """An OGG/Opus file, an MP3 file and the HLS segments (made once per test process)."""
    segments = [ts_segment(1.0, 300 + 100 * i) for i in range(HLS_SEGMENTS)]
    return make_tone(2.0, "ogg"), make_tone(2.0, "mp3"), segments


class _Counted:
    """Requests and bytes served, per path."""

    def __init__(self) -> None:
        self.requests: Counter[str] = Counter()
        self.bytes: Counter[str] = Counter()

    @property
    def total_requests(self) -> int:
        return sum(self.requests.values())

    @property
    def total_bytes(self) -> int:
        return sum(self.bytes.values())


class MediaSite(_Counted):
    """The site links point at; ``forbidden`` (a base URL) is where its traps lead."""

    def __init__(self, host: str = "127.0.0.1", *, forbidden: str = "http://127.0.0.2:9") -> None:
        super().__init__()
        self.host = host
        self.forbidden = forbidden
        self.audio, self.mp3, self.segments = media()
        self.drip_delay = 0.2
        self._runner: web.AppRunner | None = None
        self.base = ""

    async def start(self) -> str:
        app = web.Application()
        app.router.add_route("*", "/{path:.*}", self._route)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.base = f"http://{self.host}:{port}"
        return self.base

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def _send(self, path: str, body: bytes, content_type: str, **headers: str) -> web.Response:
        return web.Response(body=body, content_type=content_type, headers=headers)

    async def _route(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        self.requests[path] += 1
        if path.startswith("/redirect/"):
            return self._redirect(path)
        if path in ("/slow.mp3", "/endless.mp3") and request.method == "HEAD":
            length = {"Content-Length": str(len(self.mp3))} if path == "/slow.mp3" else {}
            return web.Response(headers={"Content-Type": "audio/mpeg", **length})
        if path == "/slow.mp3":
            return await self._drip(request)
        if path == "/endless.mp3":
            return await self._endless(request)
        if path.startswith("/hls/seg"):
            index = int(path.removeprefix("/hls/seg").removesuffix(".ts"))
            resp = self._send(path, self.segments[index], "video/mp2t")
        else:
            handler = self._pages().get(path)
            if handler is None:
                raise web.HTTPNotFound()
            resp = handler()
        if request.method != "HEAD" and isinstance(resp.body, bytes):
            self.bytes[path] += len(resp.body)  # a HEAD answer carries no body
        return resp

    def _pages(self) -> dict[str, Callable[[], web.Response]]:
        ogg, mp3 = self.audio, self.mp3
        disposition = 'attachment; filename="Lecture 3.ogg"'
        return {
            "/audio.ogg": lambda: self._send("/audio.ogg", ogg, "audio/ogg"),
            "/download": lambda: self._send(
                "/download", ogg, "application/octet-stream", **{"Content-Disposition": disposition}
            ),
            "/song.mp3": lambda: self._send("/song.mp3", mp3, "audio/mpeg"),
            "/page.html": lambda: self._send(
                "/page.html", _page("A talk", ["/song.mp3"]), "text/html"
            ),
            "/two.html": lambda: self._send(
                "/two.html", _page("Two", ["/song.mp3", "/audio.ogg"]), "text/html"
            ),
            "/plain.html": lambda: self._send("/plain.html", _page("Nothing", []), "text/html"),
            "/stated.html": lambda: self._send("/stated.html", self._stated(), "text/html"),
            "/data.json": lambda: self._send("/data.json", b'{"a": 1}', "application/json"),
            "/hls/index.m3u8": lambda: self._send(
                "/hls/index.m3u8", self._playlist("/hls/seg{i}.ts"), "application/vnd.apple.mpegurl"
            ),
            "/hls/evil.m3u8": lambda: self._send(
                "/hls/evil.m3u8",
                self._playlist(self.forbidden + "/seg{i}.ts"),
                "application/vnd.apple.mpegurl",
            ),
        }

    def _stated(self) -> bytes:
        """A page whose JSON-LD states a two-hour AudioObject at /audio.ogg without its
        ``encodingFormat`` (yt-dlp's generic extractor then asks the media URL what it is)."""
        stated = {
            "@context": "https://schema.org",
            "@type": "AudioObject",
            "name": "Two hours",
            "contentUrl": f"{self.base}/audio.ogg",
            "duration": "PT2H",
        }
        return (
            '<html><head><title>Long</title><script type="application/ld+json">'
            f"{json.dumps(stated)}</script></head><body>A long talk.</body></html>"
        ).encode()

    def _playlist(self, pattern: str) -> bytes:
        lines = [
            "#EXTM3U",
            "#EXT-X-VERSION:3",
            "#EXT-X-TARGETDURATION:1",
            "#EXT-X-MEDIA-SEQUENCE:0",
        ]
        for i in range(HLS_SEGMENTS):
            lines += ["#EXTINF:1.0,", pattern.format(i=i)]
        return ("\n".join([*lines, "#EXT-X-ENDLIST", ""])).encode()

    def _redirect(self, path: str) -> web.Response:
        """/redirect/N → /redirect/N-1 … → /audio.ogg; /redirect/forbidden → the forbidden host;
        /redirect/loop → itself; /redirect/file → file:///etc/passwd."""
        name = path.removeprefix("/redirect/")
        targets = {
            "forbidden": self.forbidden + "/audio.ogg",
            "loop": "/redirect/loop",
            "file": "file:///etc/passwd",
            "0": "/audio.ogg",
        }
        target = targets.get(name) or f"/redirect/{int(name) - 1}"
        return web.Response(status=302, headers={"Location": target})

    async def _drip(self, request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "audio/mpeg"})
        resp.content_length = len(self.mp3)
        await resp.prepare(request)
        for offset in range(0, len(self.mp3), 100):
            await resp.write(self.mp3[offset : offset + 100])
            self.bytes[request.path] += 100
            await asyncio.sleep(self.drip_delay)
        return resp

    async def _endless(self, request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "audio/mpeg"})
        await resp.prepare(request)  # chunked: no Content-Length at all
        while True:
            await resp.write(b"\0" * 65536)
            self.bytes[request.path] += 65536


def _page(title: str, sources: list[str]) -> bytes:
    media = "".join(f'<audio controls src="{s}"></audio>' for s in sources)
    return (
        f"<!DOCTYPE html><html><head><title>{title}</title></head>"
        f"<body><h1>{title}</h1>{media}<p>Hello.</p></body></html>"
    ).encode()


class RawSite(_Counted):
    """Raw HTTP for what a real server would not send: ``/lie-more.mp3`` (declares 1000 bytes,
    sends 200 000), ``/lie-fewer.mp3`` (declares 100 000, sends 1000 and closes), ``/huge.mp3``
    (declares 10 GB, sends no body)."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        super().__init__()
        self.host = host
        self.base = ""
        self._server: asyncio.Server | None = None

    async def start(self) -> str:
        self._server = await asyncio.start_server(self._serve, self.host, 0)
        self.base = f"http://{self.host}:{self._server.sockets[0].getsockname()[1]}"
        return self.base

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            method, path, _ = head.decode("latin-1").split(" ", 2)
            self.requests[path] += 1
            declared, body = {
                "/lie-more.mp3": (1000, b"\xff" * 200_000),
                "/lie-fewer.mp3": (100_000, b"\xff" * 1000),
                "/huge.mp3": (10 * 1024**3, b""),
            }.get(path, (0, b""))
            status = "200 OK" if declared else "404 Not Found"
            writer.write(
                f"HTTP/1.1 {status}\r\nContent-Type: audio/mpeg\r\nContent-Length: {declared}\r\n"
                "Connection: close\r\n\r\n".encode()
            )
            if method != "HEAD":
                writer.write(body)
                self.bytes[path] += len(body)
            await writer.drain()
        except (OSError, asyncio.IncompleteReadError, ValueError):
            pass
        finally:
            writer.close()


class ForbiddenSite(MediaSite):
    """A server at an address links must never reach; counts whatever reaches it anyway."""

    def __init__(self, host: str = "127.0.0.2") -> None:
        super().__init__(host)

    async def _route(self, request: web.Request) -> web.StreamResponse:
        self.requests[request.path] += 1
        body = self.audio
        self.bytes[request.path] += len(body)
        return web.Response(body=body, content_type="audio/ogg")


class StaticResolver:
    """Test names → addresses; a name with several answers gives them in turn (the last one
    repeats): ``rebind.test`` first resolves to an allowed address, then to a forbidden one."""

    def __init__(self, answers: dict[str, list[list[str]]]) -> None:
        self._answers = {name: list(replies) for name, replies in answers.items()}
        self.asked: Counter[str] = Counter()

    async def resolve(self, host: str) -> list[str]:
        self.asked[host] += 1
        replies = self._answers.get(host.lower().rstrip("."))
        if not replies:
            raise OSError(f"unknown test host {host!r}")
        return replies.pop(0) if len(replies) > 1 else list(replies[0])
