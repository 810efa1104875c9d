"""Fetching links against local sites: every SSRF case refused with nothing reaching the
forbidden host, and the happy paths (direct file, <audio> page, HLS, redirects) delivering bytes.

The pure SSRF cases run with the default settings. Cases that need a first hop to succeed (a
redirect, an HLS segment, DNS rebinding) exempt only 127.0.0.1/32, which stands for a public
site here; the forbidden site on 127.0.0.2 stays forbidden.
"""

from __future__ import annotations

import asyncio
import shutil
import ssl
import subprocess
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from yt_dlp.networking.common import Request
from yt_dlp.networking.exceptions import HTTPError, RequestError
from yt_dlp.utils import DownloadError

from bot.links import DownloadCancelled, LinkFetcher, LinkInfo, LinkRefused, LinkSettings
from bot.links.proxy import GateProxy
from bot.links.ytdl import _GatedYoutubeDL, params
from testkit.fakes.media_site import ForbiddenSite, MediaSite, RawSite, StaticResolver, media

OPEN = LinkSettings(allowed_networks=("127.0.0.1/32",), timeout_seconds=5.0)


@pytest.fixture
async def bad() -> AsyncIterator[ForbiddenSite]:
    site = ForbiddenSite()
    await site.start()
    yield site
    await site.stop()


@pytest.fixture
async def site(bad: ForbiddenSite) -> AsyncIterator[MediaSite]:
    media = MediaSite(forbidden=bad.base)
    await media.start()
    yield media
    await media.stop()


@pytest.fixture
async def raw() -> AsyncIterator[RawSite]:
    liar = RawSite()
    await liar.start()
    yield liar
    await liar.stop()


@pytest.fixture(autouse=True)
def private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """yt-dlp's temporary folders land here, so a test can see that none is left."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    return tmp_path


def resolver() -> StaticResolver:
    return StaticResolver(
        {
            "media.test": [["127.0.0.1"]],
            "lan.test": [["127.0.0.2"]],
            "mixed.test": [["127.0.0.1", "127.0.0.2"]],
            "rebind.test": [["127.0.0.1"], ["127.0.0.2"]],
            "v6.test": [["::1"]],
            "mapped.test": [["::ffff:127.0.0.2"]],
        }
    )


async def refused(settings: LinkSettings, url: str) -> LinkRefused:
    fetcher = LinkFetcher(settings, resolver=resolver())
    try:
        with pytest.raises(LinkRefused) as caught:
            info = await fetcher.inspect(url)
            await fetcher.download(info)
    finally:
        await fetcher.close()
    return caught.value


def port(base: str) -> str:
    return base.rsplit(":", 1)[1]


async def test_links_ssrf_refused_with_default_settings(
    site: MediaSite, bad: ForbiddenSite
) -> None:
    media, lan = port(site.base), port(bad.base)
    urls = [
        f"http://127.0.0.1:{media}/audio.ogg",
        f"http://127.0.0.2:{lan}/audio.ogg",
        f"http://[::1]:{media}/audio.ogg",
        f"http://[::ffff:127.0.0.1]:{media}/audio.ogg",
        f"http://[::ffff:127.0.0.2]:{lan}/audio.ogg",
        f"http://2130706433:{media}/audio.ogg",
        f"http://0x7f.1:{media}/audio.ogg",
        f"http://0x7f.0.0.2:{lan}/audio.ogg",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1/",
        "http://100.64.0.1/",
        "http://[fe80::1]/",
        f"http://lan.test:{lan}/audio.ogg",
        f"http://media.test:{media}/audio.ogg",
        f"https://lan.test:{lan}/audio.ogg",
        f"http://v6.test:{media}/audio.ogg",
        f"http://mapped.test:{lan}/audio.ogg",
    ]
    for url in urls:
        error = await refused(LinkSettings(), url)
        assert error.reason == "private", url
        assert "private or local network address" in error.user_message
    assert (site.total_requests, bad.total_requests, bad.total_bytes) == (0, 0, 0)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("file:///etc/passwd", "scheme"),
        ("ftp://example.com/a.mp3", "scheme"),
        ("data:audio/ogg;base64,T2dnUw==", "scheme"),
        ("javascript:alert(1)", "scheme"),
        ("http://user:pass@example.com/a.mp3", "credentials"),
    ],
)
async def test_links_other_schemes_and_credentials_refused(url: str, reason: str) -> None:
    error = await refused(LinkSettings(), url)
    assert error.reason == reason
    assert error.user_message


async def test_links_hops_to_a_forbidden_host_refused(site: MediaSite, bad: ForbiddenSite) -> None:
    media = port(site.base)
    cases = {
        f"http://media.test:{media}/redirect/forbidden": "private",  # redirect to 127.0.0.2
        f"http://media.test:{media}/hls/evil.m3u8": "private",  # HLS segments on 127.0.0.2
        f"http://rebind.test:{media}/audio.ogg": "private",  # DNS rebinding after inspect
        f"http://mixed.test:{media}/audio.ogg": "private",  # one of two addresses forbidden
        f"http://mapped.test:{port(bad.base)}/audio.ogg": "private",  # ::ffff:127.0.0.2
        f"http://media.test:{media}/redirect/file": "scheme",
        f"http://media.test:{media}/redirect/loop": "redirects",
    }
    for url, reason in cases.items():
        error = await refused(OPEN, url)
        assert error.reason == reason, (url, error)
    assert (bad.total_requests, bad.total_bytes) == (0, 0)
    assert site.requests["/hls/evil.m3u8"] >= 1 and site.requests["/redirect/forbidden"] == 1


async def test_links_download_rechecks_a_stored_link(bad: ForbiddenSite) -> None:
    """A LinkInfo from the store is checked again: a forbidden one is never fetched."""
    fetcher = LinkFetcher(LinkSettings(), resolver=resolver())
    for kind in ("direct", "ytdl"):
        info = LinkInfo(f"http://lan.test:{port(bad.base)}/audio.ogg", kind, None, None, None)
        with pytest.raises(LinkRefused):
            await fetcher.download(info)
    await fetcher.close()
    assert bad.total_requests == 0


async def test_links_disabled_and_domain_list(site: MediaSite) -> None:
    url = f"http://media.test:{port(site.base)}/audio.ogg"
    assert (await refused(LinkSettings(enabled=False), url)).reason == "disabled"
    only = LinkSettings(allowed_networks=("127.0.0.1/32",), allowed_domains=("example.com",))
    assert (await refused(only, url)).reason == "domain"
    assert site.total_requests == 0


async def test_links_direct_file_redirects_and_disposition(site: MediaSite) -> None:
    fetcher = LinkFetcher(OPEN, resolver=resolver())
    seen: list[tuple[int, int | None]] = []

    async def progress(done: int, total: int | None) -> bool:
        seen.append((done, total))
        return True

    info = await fetcher.inspect(f"http://media.test:{port(site.base)}/audio.ogg")
    assert (info.kind, info.title, info.size) == ("direct", "audio", len(site.audio))
    assert site.bytes["/audio.ogg"] == 0  # inspect read the headers only
    got = await fetcher.download(LinkInfo.from_dict(info.as_dict()), progress=progress)
    assert (got.data, got.filename, got.content_type) == (site.audio, "audio.ogg", "audio/ogg")
    assert seen[-1] == (len(site.audio), len(site.audio))
    chain = await fetcher.inspect(f"http://media.test:{port(site.base)}/redirect/3")
    assert (chain.title, (await fetcher.download(chain)).data) == ("audio", site.audio)
    named = await fetcher.inspect(f"http://media.test:{port(site.base)}/download")
    assert named.title == "Lecture 3"
    assert (await fetcher.download(named)).filename == "Lecture 3.ogg"
    await fetcher.close()


async def test_links_page_with_audio_and_hls_through_ytdl(
    site: MediaSite, private_tmp: Path
) -> None:
    fetcher = LinkFetcher(OPEN, resolver=resolver())
    page = await fetcher.inspect(f"http://media.test:{port(site.base)}/page.html")
    assert page.kind == "ytdl" and page.title and "A talk" in page.title
    assert site.bytes["/song.mp3"] == 0
    got = await fetcher.download(page)
    assert got.data == site.mp3 and got.filename.endswith(".mp3")
    hls = await fetcher.inspect(f"http://media.test:{port(site.base)}/hls/index.m3u8")
    assert (hls.kind, hls.duration) == ("ytdl", 3.0)
    got = await fetcher.download(hls)
    assert got.data == b"".join(site.segments)
    assert [site.requests[f"/hls/seg{i}.ts"] for i in range(3)] == [1, 1, 1]
    await fetcher.close()
    assert not any(private_tmp.iterdir())  # noqa: ASYNC240


async def test_links_inspect_of_a_page_stating_its_media_fetches_no_media_byte(
    site: MediaSite,
) -> None:
    """A page's JSON-LD names a media URL without its format: yt-dlp asks that URL what it is
    (generic extractor, url_transparent). Inspect learns it from a HEAD: no GET of the media."""
    fetcher = LinkFetcher(OPEN, resolver=resolver())
    try:
        info = await fetcher.inspect(f"http://media.test:{port(site.base)}/stated.html")
    finally:
        await fetcher.close()
    assert (info.kind, info.title, info.duration) == ("ytdl", "Two hours", 7200.0)
    assert site.bytes["/audio.ogg"] == 0 and site.requests["/audio.ogg"] <= 1  # one HEAD


async def test_media_site_answers_a_head_with_headers_only(site: MediaSite) -> None:
    """The fake's slow and endless files answer a HEAD with their headers, no body, no bytes
    counted (the inspect of a direct link is a HEAD)."""
    async with aiohttp.ClientSession() as http:
        for path, length in (("/slow.mp3", len(site.mp3)), ("/endless.mp3", None)):
            async with http.head(site.base + path) as resp:
                assert (resp.status, resp.content_type) == (200, "audio/mpeg")
                assert resp.content_length == length
                assert await resp.read() == b""
    assert site.bytes["/slow.mp3"] == site.bytes["/endless.mp3"] == 0


async def test_links_not_media_and_playlists_refused(site: MediaSite) -> None:
    base = f"http://media.test:{port(site.base)}"
    for path, reason in {
        "/plain.html": "not_media",
        "/data.json": "not_media",
        "/two.html": "playlist",
        "/missing.mp3": "http_error",
    }.items():
        error = await refused(OPEN, base + path)
        assert error.reason == reason, path
    assert site.bytes["/song.mp3"] == site.bytes["/audio.ogg"] == 0


async def test_links_sizes_and_lying_servers(site: MediaSite, raw: RawSite) -> None:
    huge = await refused(OPEN, f"{raw.base}/huge.mp3")
    assert huge.reason == "too_large" and "10,240 MB" in huge.user_message
    assert raw.bytes["/huge.mp3"] == 0 and raw.requests["/huge.mp3"] == 1  # HEAD only
    assert (await refused(OPEN, f"{raw.base}/lie-fewer.mp3")).reason == "cut_short"
    more = await refused(OPEN, f"{raw.base}/lie-more.mp3")
    assert more.reason in ("failed", "cut_short")
    small = LinkSettings(allowed_networks=("127.0.0.1/32",), max_bytes=1024 * 1024)
    endless = await refused(small, f"{site.base}/endless.mp3")
    assert endless.reason == "too_large"
    assert site.bytes["/endless.mp3"] < 32 * 1024 * 1024  # the connection ended


async def test_links_slow_servers_refused_by_timeouts(site: MediaSite) -> None:
    total = LinkSettings(allowed_networks=("127.0.0.1/32",), download_timeout_seconds=0.5)
    assert (await refused(total, f"{site.base}/slow.mp3")).reason == "timeout"
    site.drip_delay = 1.0
    read = LinkSettings(allowed_networks=("127.0.0.1/32",), timeout_seconds=0.4)
    assert (await refused(read, f"{site.base}/slow.mp3")).reason == "timeout"


async def test_links_progress_false_cancels_and_leaves_no_files(
    site: MediaSite, private_tmp: Path
) -> None:
    fetcher = LinkFetcher(OPEN, resolver=resolver())

    async def stop(done: int, total: int | None) -> bool:
        return False

    for path in ("/audio.ogg", "/hls/index.m3u8"):
        info = await fetcher.inspect(f"http://media.test:{port(site.base)}{path}")
        with pytest.raises(DownloadCancelled):
            await fetcher.download(info, progress=stop)
    await fetcher.close()
    assert not any(private_tmp.iterdir())  # noqa: ASYNC240


async def test_links_ytdl_cannot_bypass_the_gate_or_read_files(bad: ForbiddenSite) -> None:
    """An extractor's own proxy choice (even "no proxy") is dropped: the request still goes
    through the gate, which refuses the forbidden host; file:// is refused outright."""

    def attempt(gate_url: str, folder: str) -> list[str]:
        outcomes: list[str] = []
        with _GatedYoutubeDL(params(LinkSettings(), gate_url, folder, lambda _d: None)) as ydl:
            bypass = Request(
                f"http://127.0.0.2:{port(bad.base)}/audio.ogg",
                headers={"Ytdl-Request-Proxy": "__noproxy__"},
                proxies={"all": "__noproxy__"},
            )
            for request in (bypass, "file:///etc/passwd"):
                try:
                    ydl.urlopen(request).read()
                    outcomes.append("fetched")
                except HTTPError as exc:
                    outcomes.append(f"http {exc.status}")
                except RequestError:
                    outcomes.append("refused")
        return outcomes

    async with GateProxy(LinkSettings(), resolver()) as gate:
        with tempfile.TemporaryDirectory() as folder:
            outcomes = await asyncio.to_thread(attempt, gate.url, folder)
    assert outcomes == ["http 403", "refused"]
    assert gate.refusals and gate.refusals[0].reason == "private"
    assert bad.total_requests == 0


async def test_links_https_is_tunnelled_to_the_checked_address(tmp_path: Path) -> None:
    """CONNECT through the gate: TLS end to end (the client checks the certificate against the
    link's host name), for aiohttp and for yt-dlp alike."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate")
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    make_cert = [
        *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
        *("-keyout", str(key), "-out", str(cert), "-subj", "/CN=media.test"),
        *("-addext", "subjectAltName=DNS:media.test"),
    ]
    await asyncio.to_thread(subprocess.run, make_cert, check=True, capture_output=True)
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)
    audio = media()[0]
    app = web.Application()

    async def serve(_request: web.Request) -> web.Response:
        return web.Response(body=audio, content_type="audio/ogg")

    app.router.add_get("/a.ogg", serve)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0, ssl_context=server_tls).start()
    url = f"https://media.test:{runner.addresses[0][1]}/a.ogg"

    def through_ytdl(gate_url: str, folder: str) -> bytes:
        options = {**params(OPEN, gate_url, folder, lambda _d: None), "nocheckcertificate": True}
        with _GatedYoutubeDL(options) as ydl:
            return bytes(ydl.urlopen(url).read())

    async with GateProxy(OPEN, resolver()) as gate:
        client_tls = ssl.create_default_context(cafile=str(cert))
        async with (
            aiohttp.ClientSession() as session,
            session.get(url, proxy=gate.url, ssl=client_tls) as resp,
        ):
            assert await resp.read() == audio
        with tempfile.TemporaryDirectory() as folder:
            assert await asyncio.to_thread(through_ytdl, gate.url, folder) == audio
        assert gate.refusals == []
    await runner.cleanup()


@pytest.mark.parametrize(
    "request_head",
    [
        b"GET ftp://127.0.0.1/x HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET file:///etc/passwd HTTP/1.1\r\n\r\n",
        b"GET /audio.ogg HTTP/1.1\r\nHost: 127.0.0.2\r\n\r\n",
        b"CONNECT 127.0.0.2:notaport HTTP/1.1\r\n\r\n",
        b"nonsense\r\n\r\n",
    ],
)
async def test_links_gate_refuses_what_is_not_a_checked_http_request(
    request_head: bytes, bad: ForbiddenSite
) -> None:
    async with GateProxy(OPEN, resolver()) as gate:
        host, gate_port = gate.url.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(gate_port))
        writer.write(request_head)
        answer = await reader.read()
        writer.close()
    assert answer.startswith(b"HTTP/1.1 400"), answer
    assert bad.total_requests == 0


@pytest.mark.parametrize(
    "protocol", ["rtmp", "rtsp", "mms", "f4m", "ism", "https+rtmp", "websocket_frag"]
)
def test_links_ytdl_downloads_only_through_its_own_http_downloaders(
    protocol: str, tmp_path: Path
) -> None:
    """ffmpeg, rtmpdump and the like would connect past the gate: such formats are refused."""
    info = {
        "id": "x",
        "title": "x",
        "url": "rtmp://10.0.0.1/live",
        "protocol": protocol,
        "ext": "flv",
    }
    with (
        _GatedYoutubeDL(params(OPEN, "http://127.0.0.1:9", str(tmp_path), lambda _d: None)) as ydl,
        pytest.raises(DownloadError, match="unsupported media protocol"),
    ):
        ydl.process_info(info)
    assert not any(tmp_path.iterdir())


async def test_links_system_resolver_answers_are_checked_too(site: MediaSite) -> None:
    """Without an injected resolver, the system's answer for "localhost" is loopback: refused."""
    fetcher = LinkFetcher(LinkSettings())
    with pytest.raises(LinkRefused) as caught:
        await fetcher.inspect(f"http://localhost:{port(site.base)}/audio.ogg")
    await fetcher.close()
    assert caught.value.reason == "private"
    assert site.total_requests == 0


async def test_links_lan_opened_by_config(bad: ForbiddenSite) -> None:
    """allow_private_networks (or the LAN in allowed_networks) lets the operator's own LAN in."""
    url = f"http://lan.test:{port(bad.base)}/audio.ogg"
    for settings in (
        LinkSettings(allow_private_networks=True),
        LinkSettings(allowed_networks=("127.0.0.0/30",)),
    ):
        fetcher = LinkFetcher(settings, resolver=resolver())
        got = await fetcher.download(await fetcher.inspect(url))
        await fetcher.close()
        assert got.data == bad.audio
    assert bad.requests["/audio.ogg"] == 4  # HEAD and GET, twice
