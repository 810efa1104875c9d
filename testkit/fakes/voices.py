"""Fake Piper voice host: the rhasspy/piper-voices layout on loopback, with ways to fail.

Serves ``/<family>/<family>_<REGION>/<name>/<quality>/<voice>.onnx`` and ``.onnx.json`` as Hugging
Face's ``resolve`` URLs do (200, ``Content-Length``, the bytes); anything else is 404.

Usage::

    async with FakeVoiceHost({"en_US-joe-medium": (onnx_bytes, json_bytes)}) as host:
        host.mode = "die"      # the .onnx answer stops half-way and the connection closes
        host.mode = "stall"    # the .onnx answer sends a first chunk, then nothing
        ...  # host.url is the voice_source; host.requests lists the paths asked for
"""

from __future__ import annotations

import asyncio
from types import TracebackType

from aiohttp import web

_PREFIX = "/rhasspy/piper-voices/resolve/v1.0.0"


class FakeVoiceHost:
    """Serves voices from memory; ``mode`` (``ok``, ``die``, ``stall``, ``404``) shapes the
    ``.onnx`` answers, ``requests`` records every path asked for."""

    def __init__(self, voices: dict[str, tuple[bytes, bytes]]) -> None:
        self.voices = voices
        self.mode = "ok"
        self.requests: list[str] = []
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def __aenter__(self) -> FakeVoiceHost:
        app = web.Application()
        app.router.add_get(_PREFIX + "/{family}/{locale}/{name}/{quality}/{file}", self._file)
        self._runner = web.AppRunner(app, handler_cancellation=True)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert isinstance(server, asyncio.Server)
        port = server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}{_PREFIX}"
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _file(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(request.path.removeprefix(_PREFIX))
        m = request.match_info
        voice, _, suffix = m["file"].partition(".")
        expected = f"{m['family']}_{m['locale'].split('_', 1)[-1]}"
        layout_ok = m["locale"] == expected and voice == f"{m['locale']}-{m['name']}-{m['quality']}"
        if voice not in self.voices or not layout_ok or suffix not in ("onnx", "onnx.json"):
            return web.Response(status=404, text="Entry not found")
        onnx, config = self.voices[voice]
        if suffix == "onnx.json":
            return web.Response(body=config, content_type="application/json")
        if self.mode == "404":
            return web.Response(status=404, text="Entry not found")
        if self.mode == "ok":
            return web.Response(body=onnx, content_type="application/octet-stream")
        response = web.StreamResponse(headers={"Content-Length": str(len(onnx))})
        await response.prepare(request)
        await response.write(onnx[: len(onnx) // 2])
        if self.mode == "stall":
            await asyncio.sleep(3600)
        assert request.transport is not None
        request.transport.close()  # "die": the server goes away mid-file
        return response
