"""LinkFetcher: inspect a link (metadata only), then download its audio, SSRF-safe.

Each inspect or download runs its own :class:`~bot.links.proxy.GateProxy`, so a refusal the
proxy records belongs to that fetch alone and becomes that fetch's sentence.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import aiohttp

from bot.links.direct import download_direct, gate_refusal, inspect_direct
from bot.links.model import Downloaded, LinkInfo, LinkRefused, ProgressFn
from bot.links.policy import LinkSettings, UrlProblem, address_problem, check_url, literal_address
from bot.links.proxy import GateProxy, Resolver, SystemResolver

_LOGGER = logging.getLogger(__name__)
T = TypeVar("T")
_USER_AGENT = "Mozilla/5.0 (compatible; voicebot link fetcher)"


class LinkFetcher:
    """Checks links and fetches their audio; holds one aiohttp session (closed by close)."""

    def __init__(self, settings: LinkSettings, *, resolver: Resolver | None = None) -> None:
        self._settings = settings
        self._resolver = resolver or SystemResolver()
        self._session: aiohttp.ClientSession | None = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            timeout = aiohttp.ClientTimeout(
                total=None,
                sock_connect=self._settings.timeout_seconds,
                sock_read=self._settings.timeout_seconds,
            )
            self._session = aiohttp.ClientSession(
                # one request per connection: a pooled connection to the gate is never reused
                # for another host (the gate would keep it on the first host's address anyway).
                connector=aiohttp.TCPConnector(force_close=True),
                timeout=timeout,
                trust_env=False,  # the gate is the only proxy: never HTTP(S)_PROXY from the env
                auto_decompress=False,
                cookie_jar=aiohttp.DummyCookieJar(),
                headers={"User-Agent": _USER_AGENT, "Accept-Encoding": "identity"},
            )
        return self._session

    def check(self, url: str) -> str:
        """The normalised link when it passes the checks that need no network.

        Raises:
            LinkRefused: links disabled, not http(s), credentials, a domain not allowed, an
                address written in the link that is private, loopback, link-local...
        """
        if not self._settings.enabled:
            raise LinkRefused("disabled")
        try:
            checked = check_url(url, self._settings)
        except UrlProblem as exc:
            raise LinkRefused(exc.reason, str(exc)) from exc
        literal = literal_address(checked.host)
        if literal is not None:
            problem = address_problem(literal, self._settings, self._settings.networks())
            if problem:  # refused before any connection; the gate would refuse it too
                raise LinkRefused("private", f"{checked.host} is {problem}")
        return checked.url

    async def inspect(self, url: str) -> LinkInfo:
        """Check the link and read its metadata (headers, or yt-dlp's extraction); no media.

        Raises:
            LinkRefused: with the sentence saying why the link will not be fetched.
        """
        url = self.check(url)
        async with GateProxy(self._settings, self._resolver) as gate:
            try:
                async with asyncio.timeout(self._settings.timeout_seconds):
                    info = await inspect_direct(self._http(), url, gate, self._settings)
            except TimeoutError as exc:
                raise LinkRefused("timeout", url) from exc
            if info is not None:
                _LOGGER.info("link inspected: direct file, %s bytes", info.size)
                return info
            # yt-dlp loads its extractors: imported only when a page needs it.
            from bot.links.ytdl import inspect_sync

            limit = self._settings.timeout_seconds
            info = await _in_thread(gate, limit, inspect_sync, url, self._settings, gate.url)
            _LOGGER.info(
                "link inspected: %s (yt-dlp), %s s, %s bytes",
                info.extractor,
                info.duration,
                info.size,
            )
            return info

    async def download(self, info: LinkInfo, *, progress: ProgressFn | None = None) -> Downloaded:
        """Fetch the link's best audio, every connection checked and pinned.

        Raises:
            LinkRefused: with the sentence (too large, timed out, a forbidden address...).
            DownloadCancelled: ``progress`` returned False.
        """
        url = self.check(info.url)
        if url != info.url:
            info = LinkInfo(url, info.kind, info.title, info.duration, info.size, info.extractor)
        async with GateProxy(self._settings, self._resolver) as gate:
            if info.kind == "direct":
                return await download_direct(self._http(), info, gate, self._settings, progress)
            return await self._download_ytdl(info, gate, progress)

    async def _download_ytdl(
        self, info: LinkInfo, gate: GateProxy, progress: ProgressFn | None
    ) -> Downloaded:
        from bot.links.ytdl import Progress, download_sync

        loop = asyncio.get_running_loop()
        stop = threading.Event()

        async def ask(done: int, total: int | None) -> bool:
            return True if progress is None else await progress(done, total)

        def report(done: int, total: int | None) -> bool:  # called in yt-dlp's thread
            future = asyncio.run_coroutine_threadsafe(ask(done, total), loop)
            return future.result(timeout=self._settings.timeout_seconds)

        hook = Progress(self._settings, report, stop)
        limit = self._settings.download_timeout_seconds
        return await _in_thread(
            gate, limit, download_sync, info, self._settings, gate.url, hook, stop=stop
        )

    async def close(self) -> None:
        """Close the HTTP session."""
        if self._session is not None:
            await self._session.close()
            self._session = None


async def _in_thread(
    gate: GateProxy,
    limit: float,
    func: Callable[..., T],
    *args: Any,
    stop: threading.Event | None = None,
) -> T:
    """Run a yt-dlp call in a thread, bounded by ``limit``; the gate's refusal wins over
    yt-dlp's own wording. On timeout or cancellation the gate is stopped (the thread's
    connections end) and the thread is awaited, so its temporary folder is gone after."""
    stop = stop or threading.Event()
    task = asyncio.ensure_future(asyncio.to_thread(func, *args))
    try:
        async with asyncio.timeout(limit):
            return await asyncio.shield(task)
    except TimeoutError as exc:
        raise LinkRefused("timeout", f"yt-dlp took over {limit:g} s") from exc
    except LinkRefused as exc:
        if gate.refusals and exc.reason not in ("too_large", "playlist"):
            raise gate_refusal(gate, str(exc)) from exc
        raise
    finally:
        if not task.done():
            stop.set()
            await gate.stop()
            with contextlib.suppress(BaseException):
                await task
