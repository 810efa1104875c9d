"""Black-box CLI with links: ``voicebot transcribe URL`` as a subprocess, the link served by the
local media site and transcribed by the provider fake."""

from __future__ import annotations

from pathlib import Path

from testkit.fakes.media_site import MediaSite
from testkit.fakes.providers import FakeCantonese, FakeNanoGpt
from testkit.process import voicebot
from testkit.support import write_config


async def test_cli_transcribe_link_prints_the_transcript(
    tmp_path: Path, nano_canto: tuple[FakeNanoGpt, FakeCantonese], site: MediaSite
) -> None:
    nano, canto = nano_canto
    links = {"allowed_networks": ["127.0.0.1/32"]}  # the test site, nothing else local
    config = write_config(tmp_path, nano_url=nano.url, canto_url=canto.url, links=links)
    url = f"{site.base}/audio.ogg"
    code, out, err = await voicebot("--config", str(config), "transcribe", url)
    assert code == 0, err
    assert "Fake transcript" in out and "audio.ogg" in out  # the provider got the download
    assert nano.submits["transcribe"] == 1
    code, out, _ = await voicebot("--config", str(config), "jobs")
    assert code == 0 and "done" in out


async def test_cli_transcribe_forbidden_link_is_refused_with_a_sentence(
    tmp_path: Path, nano_canto: tuple[FakeNanoGpt, FakeCantonese], site: MediaSite
) -> None:
    nano, canto = nano_canto
    config = write_config(tmp_path, nano_url=nano.url, canto_url=canto.url)  # default links:
    code, out, err = await voicebot("--config", str(config), "transcribe", f"{site.base}/a.ogg")
    assert code == 2 and out == ""  # refused before anything was fetched or sent
    assert err.startswith("voicebot: transcribe: That link points to a private or local network")
    assert "Traceback" not in err
    assert site.total_requests == 0 and nano.submits["transcribe"] == 0
    code, out, _ = await voicebot("transcribe", "--help")
    assert code == 0 and "FILE_OR_URL" in out and "http(s) link" in out
