"""yt-dlp as a library, confined: every request through the fetch's gate proxy, no files read.

yt-dlp's library API reads no configuration file (only its command line does), and the
parameters below name no cookie file or browser, so nothing of the host's is used. The
:class:`_GatedYoutubeDL` subclass keeps only the urllib request handler and pins every request's
proxy to the gate (an extractor's own per-request proxy is dropped), refusing schemes other
than http(s) and data:. Both calls run in a thread; the caller bounds them with a timeout and
stops the gate, which ends any connection the thread still holds.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any
from urllib.parse import urlsplit

import yt_dlp
from yt_dlp.networking.common import Request
from yt_dlp.networking.exceptions import RequestError
from yt_dlp.utils import DownloadCancelled as YtdlCancelled
from yt_dlp.utils import DownloadError, YoutubeDLError

from bot.links.direct import file_name, media_kind
from bot.links.model import DownloadCancelled, Downloaded, LinkInfo, LinkRefused, too_large
from bot.links.policy import LinkSettings

_LOGGER = logging.getLogger(__name__)
_REPORT_BYTES = 1024 * 1024
_REPORT_SECONDS = 2.0
# Protocols served by yt-dlp's own downloaders through the gate (http, https, http_dash_segments,
# m3u8, m3u8_native); rtmp, rtsp, mms, f4m, ism... are not offered.
_PROTOCOLS = ("http", "m3u8")
_FORMAT = "/".join(f"{kind}[protocol^={p}]" for kind in ("bestaudio", "best") for p in _PROTOCOLS)
_NOT_MEDIA = (
    "unsupported url",
    "no video formats",
    "requested format is not available",
    "no suitable",
    "no media",
)


class _Stop(YtdlCancelled):  # type: ignore[misc]
    """Raised by the progress hook: yt-dlp lets a DownloadCancelled through."""

    def __init__(self, why: BaseException) -> None:
        super().__init__(str(why))
        self.why = why


class _Logger:
    """yt-dlp's messages go to our log at debug (its own output is silenced)."""

    def debug(self, text: str) -> None:
        _LOGGER.debug("yt-dlp: %s", text)

    info = debug
    warning = debug

    def error(self, text: str) -> None:
        _LOGGER.debug("yt-dlp error: %s", text)


class _GatedYoutubeDL(yt_dlp.YoutubeDL):  # type: ignore[misc]
    """A YoutubeDL whose every request goes through the gate proxy, over urllib only, and whose
    downloads use only its own HTTP, HLS and DASH downloaders (an external program such as ffmpeg
    or rtmpdump would open its own connections, past the gate)."""

    def process_info(self, info_dict: dict[str, Any]) -> Any:
        protocols = str(info_dict.get("protocol") or "http").split("+")
        if not all(p.startswith(_PROTOCOLS) for p in protocols):
            raise DownloadError(f"unsupported media protocol {info_dict.get('protocol')!r}")
        return super().process_info(info_dict)

    def build_request_director(self, handlers: Any, preferences: Any = None) -> Any:
        kept = [h for h in handlers if getattr(h, "RH_KEY", "") == "Urllib"]
        return super().build_request_director(kept, preferences)

    def urlopen(self, req: Any) -> Any:
        if isinstance(req, str):
            req = Request(req)
        url = str(getattr(req, "url", ""))
        if not url.lower().startswith(("http://", "https://", "data:")):
            raise RequestError(f"refused scheme: {url[:40]!r}")
        if isinstance(req, Request):
            req.headers.pop("Ytdl-Request-Proxy", None)
            req.proxies = {"all": self.params["proxy"]}
        return super().urlopen(req)


class _InspectingYoutubeDL(_GatedYoutubeDL):
    """The metadata pass: no media byte is fetched, whatever an extractor asks for. Each GET
    (but of the link itself, a page already) is preceded by a HEAD; a URL the HEAD shows to be
    media (audio/video, or an octet stream named like media) is answered with that HEAD's
    headers and an empty body. E.g. the generic extractor opens a URL a page's JSON-LD names,
    only to read its Content-Type: a GET would have the server send the whole file."""

    def __init__(self, page: str, ytdl_params: dict[str, Any]) -> None:
        super().__init__(ytdl_params)
        self._page = page

    def urlopen(self, req: Any) -> Any:
        if isinstance(req, str):
            req = Request(req)
        if isinstance(req, Request) and req.method == "GET" and req.url != self._page:
            head = self._media_head(req)
            if head is not None:
                return head
        return super().urlopen(req)

    def _media_head(self, req: Request) -> Any:
        """The HEAD answer of ``req``'s URL when it is media; None to GET it (not media, or
        the HEAD failed: the GET then says what is wrong)."""
        probe = req.copy()
        probe.method = "HEAD"
        try:
            resp = super().urlopen(probe)
        except RequestError:  # an HTTP error, the gate's refusal...: the GET itself tells
            return None
        content_type = str(resp.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if media_kind(content_type, str(urlsplit(resp.url).path)) == "direct":
            _LOGGER.debug("inspect: %s is media (%s), not fetched", resp.url, content_type)
            return resp
        resp.close()
        return None


def params(
    settings: LinkSettings, proxy: str, folder: str, hook: Callable[..., None]
) -> dict[str, Any]:
    """The YoutubeDL parameters: best audio, one item, the gate as proxy, files in ``folder``."""
    return {
        "format": _FORMAT,  # bestaudio/best, over the protocols above
        "noplaylist": True,
        "extract_flat": "in_playlist",  # a playlist is refused without resolving its entries
        "proxy": proxy,
        "socket_timeout": settings.timeout_seconds,
        "hls_prefer_native": True,
        "external_downloader": {},
        # Never ffmpeg (HLS would fall back to it for what the native downloader cannot do, and
        # ffmpeg follows a playlist's segment URLs itself): PyAV decodes what arrives.
        "ffmpeg_location": "/nonexistent/voicebot-uses-no-ffmpeg",
        "postprocessors": [],
        "fixup": "never",
        "concurrent_fragment_downloads": 1,
        "quiet": True,
        "no_warnings": True,
        "noprogress": True,
        "logger": _Logger(),
        "paths": {"home": folder, "temp": folder},
        "outtmpl": {"default": "media.%(ext)s"},
        "max_filesize": settings.max_bytes,
        "progress_hooks": [hook],
        "cachedir": False,
        "enable_file_urls": False,
        "retries": 1,
        "fragment_retries": 1,
        "extractor_retries": 0,
        "color": "never",
    }


def _inspect_params(settings: LinkSettings, proxy: str, folder: str) -> dict[str, Any]:
    """The metadata pass's parameters: no format is tested (a test downloads part of it)."""
    return {**params(settings, proxy, folder, lambda _d: None), "check_formats": False}


def _info(url: str, data: dict[str, Any]) -> LinkInfo:
    if data.get("_type") in ("playlist", "multi_video"):
        raise LinkRefused("playlist", url)
    chosen = data.get("requested_formats") or [data]
    if all(f.get("acodec") == "none" for f in chosen):
        raise LinkRefused("not_media", f"{url}: no audio stream")
    size = sum(int(f.get("filesize") or f.get("filesize_approx") or 0) for f in chosen) or None
    duration = data.get("duration")
    return LinkInfo(
        url=url,
        kind="ytdl",
        title=data.get("title"),
        duration=float(duration) if isinstance(duration, (int, float)) else None,
        size=size,
        extractor=data.get("extractor_key") or data.get("extractor"),
    )


def inspect_sync(url: str, settings: LinkSettings, proxy: str) -> LinkInfo:
    """The link's title, duration and size from yt-dlp's metadata (no media fetched)."""
    with (
        TemporaryDirectory(prefix="voicebot-link-") as folder,
        _InspectingYoutubeDL(url, _inspect_params(settings, proxy, folder)) as ydl,
    ):
        try:
            data = ydl.extract_info(url, download=False)
        except Exception as exc:
            raise refusal(exc) from exc
    info = _info(url, data)
    if info.size is not None and info.size > settings.max_bytes:
        raise too_large(info.size, settings.max_bytes)
    return info


class Progress:
    """Bridges yt-dlp's progress hook (its thread) to the async callback (the loop)."""

    def __init__(
        self,
        settings: LinkSettings,
        report: Callable[[int, int | None], bool] | None,
        stop: threading.Event,
    ) -> None:
        self._limit = settings.max_bytes
        self._report = report
        self._stop = stop
        self._reported, self._at = 0, time.monotonic()
        self._done = 0  # bytes of finished files (a format pair downloads two)

    def __call__(self, status: dict[str, Any]) -> None:
        if self._stop.is_set():
            raise _Stop(LinkRefused("timeout", "stopped"))
        now = int(status.get("downloaded_bytes") or 0) + self._done
        total = status.get("total_bytes") or status.get("total_bytes_estimate")
        if status.get("status") == "finished":
            self._done = now
        if now > self._limit:
            raise _Stop(too_large(now, self._limit))
        due = (
            now - self._reported >= _REPORT_BYTES or time.monotonic() - self._at >= _REPORT_SECONDS
        )
        if self._report is not None and (due or status.get("status") == "finished"):
            self._reported, self._at = now, time.monotonic()
            if not self._report(now, int(total) if total else None):
                raise _Stop(DownloadCancelled())


def download_sync(info: LinkInfo, settings: LinkSettings, proxy: str, hook: Progress) -> Downloaded:
    """Download the best audio into a fresh temporary folder, read it, remove the folder."""
    with TemporaryDirectory(prefix="voicebot-link-") as folder:
        with _GatedYoutubeDL(params(settings, proxy, folder, hook)) as ydl:
            try:
                data = ydl.extract_info(info.url, download=True)
            except _Stop as exc:
                raise exc.why from exc
            except Exception as exc:
                raise refusal(exc) from exc
        files = [p for p in Path(folder).iterdir() if p.is_file() and not p.name.endswith(".part")]
        if not files:  # yt-dlp skips a file over max_filesize without an error
            raise too_large(int(info.size or settings.max_bytes + 1), settings.max_bytes)
        path = max(files, key=lambda p: p.stat().st_size)
        if path.stat().st_size > settings.max_bytes:
            raise too_large(path.stat().st_size, settings.max_bytes)
        payload = path.read_bytes()
    title = (data or {}).get("title") or info.title
    return Downloaded(payload, file_name(title, path.name, None), None)


def refusal(exc: Exception) -> LinkRefused:
    """A yt-dlp failure as the user's sentence (the gate's own refusals are checked first);
    anything but yt-dlp's own errors is an extractor's bug, logged with its stack."""
    if not isinstance(exc, YoutubeDLError):
        _LOGGER.warning("yt-dlp failed unexpectedly", exc_info=exc)
    text = str(exc).lower()
    if any(marker in text for marker in _NOT_MEDIA):
        return LinkRefused("not_media", str(exc))
    if "timed out" in text or "timeout" in text:
        return LinkRefused("timeout", str(exc))
    if "playlist" in text:
        return LinkRefused("playlist", str(exc))
    return LinkRefused("failed", str(exc))
