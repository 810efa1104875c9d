"""A long recording behind a link, for the link black boxes: :class:`RecordingSite` is the link
tests' :class:`~testkit.fakes.media_site.MediaSite` with one more file, ``/recording.ogg``,
served whole (HEAD answered with its length) at full speed, or at ``rate`` bytes a second while a
test kills the bot in the middle of downloading it."""

from __future__ import annotations

import asyncio

from aiohttp import web

from testkit.fakes.media_site import MediaSite

RECORDING = "/recording.ogg"
_CHUNK = 64 * 1024


class RecordingSite(MediaSite):
    """The media site plus ``/recording.ogg`` (``data``); ``rate`` (bytes a second, None: as
    fast as the socket takes them) applies to the downloads that start after it is set."""

    def __init__(self, data: bytes, host: str = "127.0.0.1") -> None:
        super().__init__(host)
        self.recording = data
        self.rate: float | None = None
        self.downloads = 0  # GETs of the recording begun
        self.finished = 0  # GETs of the recording served to their end

    @property
    def url(self) -> str:
        """The recording's link."""
        return self.base + RECORDING

    async def _route(self, request: web.Request) -> web.StreamResponse:
        if request.path != RECORDING:
            return await super()._route(request)
        self.requests[RECORDING] += 1
        headers = {"Content-Type": "audio/ogg", "Content-Length": str(len(self.recording))}
        if request.method == "HEAD":
            return web.Response(headers=headers)
        self.downloads += 1
        resp = web.StreamResponse(headers={"Content-Type": "audio/ogg"})
        resp.content_length = len(self.recording)
        await resp.prepare(request)
        rate = self.rate
        for offset in range(0, len(self.recording), _CHUNK):
            piece = self.recording[offset : offset + _CHUNK]
            await resp.write(piece)
            self.bytes[RECORDING] += len(piece)
            if rate:
                await asyncio.sleep(len(piece) / rate)
        await resp.write_eof()
        self.finished += 1
        return resp
