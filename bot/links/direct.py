"""Plain HTTP(S) media files: read the headers to inspect, stream the body with a byte counter.

Every request goes through the fetch's :class:`~bot.links.proxy.GateProxy` (``proxy=``), and
redirects are followed here, one hop at a time, so each hop's scheme is checked and its host
is checked by the proxy.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import mimetypes
import posixpath
import re
import time
from collections.abc import AsyncIterator
from urllib.parse import unquote, urljoin, urlsplit

import aiohttp

from bot.links.model import (
    DownloadCancelled,
    Downloaded,
    LinkInfo,
    LinkRefused,
    ProgressFn,
    http_error,
    too_large,
)
from bot.links.policy import LinkSettings, UrlProblem, check_url
from bot.links.proxy import GateProxy

MAX_REDIRECTS = 5
_CHUNK = 64 * 1024
_REPORT_BYTES = 1024 * 1024
_REPORT_SECONDS = 2.0
MEDIA_EXTENSIONS = frozenset(
    {
        *(".mp3", ".m4a", ".m4b", ".aac", ".ogg", ".oga", ".opus", ".wav", ".flac", ".wma"),
        *(".webm", ".weba", ".mp4", ".m4v", ".mov", ".mkv", ".mka", ".amr", ".3gp", ".ts"),
        *(".aiff", ".aif", ".caf"),
    }
)
HLS_TYPES = frozenset(
    {"application/vnd.apple.mpegurl", "application/x-mpegurl", "audio/mpegurl", "audio/x-mpegurl"}
)
# What yt-dlp reads as a list of segments, not a file to download whole.
MANIFEST_TYPES = HLS_TYPES | {"application/dash+xml", "video/vnd.mpeg.dash.mpd"}
_TYPE_EXTENSIONS = {
    "audio/mpeg": ".mp3",
    "audio/mp4": ".m4a",
    "audio/ogg": ".ogg",
    "audio/aac": ".aac",
}
_REDIRECTS = {301, 302, 303, 307, 308}
_UNSAFE = re.compile(r"[^\w\s.\-()\[\]]+")


@contextlib.asynccontextmanager
async def follow(
    session: aiohttp.ClientSession,
    method: str,
    url: str,
    gate: GateProxy,
    settings: LinkSettings,
) -> AsyncIterator[aiohttp.ClientResponse]:
    """The response of ``url`` after at most :data:`MAX_REDIRECTS` checked redirects.

    Raises:
        LinkRefused: a hop's scheme, the proxy's refusal, an HTTP error, too many redirects.
    """
    hops = dataclasses.replace(settings, allowed_domains=())  # the link's domain was checked
    for _hop in range(MAX_REDIRECTS + 1):
        resp = await _send(session, method, url, gate)
        if resp.status in _REDIRECTS and "Location" in resp.headers:
            resp.release()
            try:
                url = check_url(urljoin(url, resp.headers["Location"]), hops).url
            except UrlProblem as exc:
                raise LinkRefused(exc.reason, f"redirect: {exc}") from exc
            continue
        try:
            refused_by_gate(resp, gate)
            yield resp
        finally:
            resp.release()
        return
    raise LinkRefused("redirects", f"more than {MAX_REDIRECTS} redirects")


async def _send(
    session: aiohttp.ClientSession, method: str, url: str, gate: GateProxy
) -> aiohttp.ClientResponse:
    try:
        return await session.request(method, url, proxy=gate.url, allow_redirects=False)
    except aiohttp.ClientHttpProxyError as exc:  # CONNECT refused (https)
        raise gate_refusal(gate, f"{url}: proxy {exc.status}") from exc
    except TimeoutError as exc:
        raise LinkRefused("timeout", url) from exc
    except aiohttp.ClientResponseError as exc:  # a malformed answer (e.g. more than declared)
        raise LinkRefused("failed", f"{url}: {exc!r}") from exc
    except aiohttp.ClientError as exc:
        raise gate_refusal(gate, f"{url}: {exc!r}", fallback="unreachable") from exc


def refused_by_gate(resp: aiohttp.ClientResponse, gate: GateProxy) -> None:
    """Raise the proxy's refusal when ``resp`` is the proxy's own 403/502 (plain http)."""
    if "X-Voicebot-Refused" in resp.headers:
        raise gate_refusal(gate, str(resp.url))


def gate_refusal(gate: GateProxy, detail: str, *, fallback: str = "failed") -> LinkRefused:
    """The refusal the proxy recorded for this fetch, else ``fallback``."""
    if gate.refusals:
        last = gate.refusals[-1]
        return LinkRefused(last.reason, last.detail)
    return LinkRefused(fallback, detail)


async def inspect_direct(
    session: aiohttp.ClientSession, url: str, gate: GateProxy, settings: LinkSettings
) -> LinkInfo | None:
    """The link's metadata from its headers when it is a media file; None when it is a page or
    playlist for yt-dlp. HEAD first, then a GET whose body is never read (HEAD refused).

    Raises:
        LinkRefused: an HTTP error, not media, larger than ``max_bytes``.
    """
    for method in ("HEAD", "GET"):
        async with follow(session, method, url, gate, settings) as resp:
            if resp.status >= 400 and method == "HEAD":
                continue
            if resp.status >= 400:
                raise http_error(resp.status)
            title = _title(resp)
            kind = media_kind(resp.content_type, _name(resp))
            if kind != "direct":
                if kind is None:
                    return None
                raise LinkRefused("not_media", f"{url}: {resp.content_type}")
            size = resp.content_length
            if size is not None and size > settings.max_bytes:
                raise too_large(size, settings.max_bytes)
            return LinkInfo(url, "direct", title, None, size, "http")
    raise LinkRefused("failed", url)  # pragma: no cover - the GET always returns or raises


def media_kind(content_type: str, path: str) -> str | None:
    """ "direct" for a media file, None for a page/playlist (yt-dlp), "other" for neither."""
    extension = posixpath.splitext(path)[1].lower()
    if content_type.startswith(("audio/", "video/")) and content_type not in MANIFEST_TYPES:
        return "direct"
    if content_type == "application/ogg":
        return "direct"
    if content_type in ("application/octet-stream", "") and extension in MEDIA_EXTENSIONS:
        return "direct"
    if content_type in MANIFEST_TYPES or content_type.startswith("text/html"):
        return None
    if extension in (".m3u8", ".mpd"):
        return None
    if content_type == "application/xhtml+xml":
        return None
    return "other"


def _name(resp: aiohttp.ClientResponse) -> str:
    """The file's name: Content-Disposition's, else the last part of the (final) URL's path."""
    disposition = resp.content_disposition
    name = disposition.filename if disposition is not None else None
    return name or unquote(posixpath.basename(urlsplit(str(resp.url)).path))


def _title(resp: aiohttp.ClientResponse) -> str | None:
    return posixpath.splitext(_name(resp))[0] or None


def file_name(title: str | None, name: str, content_type: str | None) -> str:
    """A safe file name with an extension PyAV can probe (``name``'s, else the type's)."""
    extension = posixpath.splitext(name)[1].lower()
    if extension not in MEDIA_EXTENSIONS:
        base = (content_type or "").split(";")[0].strip()
        extension = _TYPE_EXTENSIONS.get(base) or mimetypes.guess_extension(base) or ".bin"
    stem = _UNSAFE.sub("_", title or "recording").strip(" ._")[:100] or "recording"
    return stem + extension


async def download_direct(
    session: aiohttp.ClientSession,
    info: LinkInfo,
    gate: GateProxy,
    settings: LinkSettings,
    progress: ProgressFn | None,
) -> Downloaded:
    """Stream the file, counting bytes against ``max_bytes`` whatever Content-Length says.

    Raises:
        LinkRefused: too large, cut short, timed out, refused by the proxy.
        DownloadCancelled: ``progress`` returned False.
    """
    try:
        async with asyncio.timeout(settings.download_timeout_seconds):
            async with follow(session, "GET", info.url, gate, settings) as resp:
                if resp.status >= 400:
                    raise http_error(resp.status)
                data = await _read(resp, settings.max_bytes, progress)
                content_type, name = resp.content_type or None, _name(resp)
    except TimeoutError as exc:
        raise LinkRefused("timeout", f"{info.url}: download timed out") from exc
    except aiohttp.ClientPayloadError as exc:
        raise LinkRefused("cut_short", f"{info.url}: {exc!r}") from exc
    return Downloaded(bytes(data), file_name(info.title, name, content_type), content_type)


async def _read(resp: aiohttp.ClientResponse, limit: int, progress: ProgressFn | None) -> bytearray:
    declared = resp.content_length
    if declared is not None and declared > limit:
        raise too_large(declared, limit)
    data = bytearray()
    reported, at = 0, time.monotonic()
    async for chunk in resp.content.iter_chunked(_CHUNK):
        data += chunk
        if len(data) > limit:
            raise too_large(len(data), limit)
        if declared is not None and len(data) > declared:
            raise LinkRefused("cut_short", f"more than the declared {declared} bytes")
        if progress and (
            len(data) - reported >= _REPORT_BYTES or time.monotonic() - at >= _REPORT_SECONDS
        ):
            reported, at = len(data), time.monotonic()
            if not await progress(len(data), declared):
                raise DownloadCancelled
    if declared is not None and len(data) < declared:
        raise LinkRefused("cut_short", f"{len(data)} of {declared} bytes")
    if progress and not await progress(len(data), declared):
        raise DownloadCancelled
    return data
