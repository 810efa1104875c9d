"""Keyless /speak on a fresh install: the local engine fetches its default Piper voice once from a
voice host (a fake on loopback serving the real joe voice), both files or neither."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from bot.config.load import parse_config
from bot.model.errors import ConfigError
from bot.model.job import JobState
from bot.model.speech import Origin
from bot.providers.local.piper import VOICE_FETCH_FAILED
from bot.providers.local.voices import VoiceFetchError, fetch_voice, voice_url
from bot.text import encode
from testkit.fakes.audio import make_tone
from testkit.fakes.voices import FakeVoiceHost
from testkit.local_engines import VOICE, joe_voice_path, local_config_dict, running_core

ORIGIN = Origin(platform="test", chat_id="chat-1", user_id="user-1", reply_to="m-1")
LAYOUT = "/en/en_US/joe/medium/en_US-joe-medium"


def _listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def _read(path: Path) -> bytes:
    return path.read_bytes()


@pytest.fixture(scope="module")
def joe_files() -> tuple[bytes, bytes]:
    onnx = joe_voice_path()
    return onnx.read_bytes(), onnx.with_name(onnx.name + ".json").read_bytes()


@pytest.fixture
async def host(joe_files: tuple[bytes, bytes]) -> AsyncIterator[FakeVoiceHost]:
    async with FakeVoiceHost({VOICE: joe_files}) as fake:
        yield fake


def test_voice_url_follows_the_piper_voices_layout() -> None:
    source = "https://huggingface.co/rhasspy/piper-voices/resolve/v1.0.0"
    assert voice_url(source, VOICE, ".onnx") == f"{source}{LAYOUT}.onnx"
    assert voice_url(source + "/", "ca_ES-upc_ona-x_low", ".onnx.json") == (
        f"{source}/ca/ca_ES/upc_ona/x_low/ca_ES-upc_ona-x_low.onnx.json"
    )
    with pytest.raises(VoiceFetchError, match="not a Piper voice name"):
        voice_url(source, "../../etc/passwd", ".onnx")


async def test_fetch_voice_writes_both_files_and_logs_the_size_once(
    tmp_path: Path,
    host: FakeVoiceHost,
    session: aiohttp.ClientSession,
    joe_files: tuple[bytes, bytes],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    voices = tmp_path / "new" / "voices"  # created on the way
    path = await fetch_voice(session, host.url, VOICE, voices)
    assert path == voices / f"{VOICE}.onnx"
    assert (_read(path), _read(Path(f"{path}.json"))) == joe_files
    assert _listing(voices) == [f"{VOICE}.onnx", f"{VOICE}.onnx.json"]
    assert host.requests == [f"{LAYOUT}.onnx.json", f"{LAYOUT}.onnx"]
    sizes = [r.getMessage() for r in caplog.records if "downloading Piper voice" in r.getMessage()]
    assert len(sizes) == 1 and f"({len(joe_files[0]) / 1e6:.1f} MB)" in sizes[0], sizes


@pytest.mark.parametrize(
    ("mode", "why"),
    [("die", "Response payload is not completed|got \\d+ of"), ("404", "HTTP 404")],
)
async def test_fetch_voice_failure_leaves_nothing_behind(
    tmp_path: Path, host: FakeVoiceHost, session: aiohttp.ClientSession, mode: str, why: str
) -> None:
    host.mode = mode
    with pytest.raises(VoiceFetchError, match=why):
        await fetch_voice(session, host.url, VOICE, tmp_path)
    assert _listing(tmp_path) == []  # no part file, no lone .onnx.json


async def test_fetch_voice_gives_up_on_a_silent_server(
    tmp_path: Path, host: FakeVoiceHost, session: aiohttp.ClientSession
) -> None:
    host.mode = "stall"
    with pytest.raises(VoiceFetchError, match="no answer in time"):
        await fetch_voice(session, host.url, VOICE, tmp_path, read_timeout=0.5)
    assert _listing(tmp_path) == []


async def test_fetch_voice_refuses_a_config_that_is_not_a_voice(
    tmp_path: Path, session: aiohttp.ClientSession
) -> None:
    async with FakeVoiceHost({VOICE: (b"model", b"<html>login</html>")}) as bad:
        with pytest.raises(VoiceFetchError, match="not JSON"):
            await fetch_voice(session, bad.url, VOICE, tmp_path)
    assert _listing(tmp_path) == []


async def test_local_tts_fetches_its_default_voice_once_then_speaks(
    tmp_path: Path, host: FakeVoiceHost
) -> None:
    voices = tmp_path / "voices"
    data = local_config_dict(tmp_path, voices_dir=str(voices), voice_source=host.url)
    data["providers"]["local"]["offline"] = False
    config = parse_config(data, env={})  # a missing but fetchable voice is no config error
    async with running_core(config) as (core, out):
        first = await core.service.speak(ORIGIN, "Hello from a fresh install.")
        second = await core.service.speak(ORIGIN, "And once more.")
        await out.wait(2, timeout=120)
    states = {job.id: (job.state, job.error) for job, _ in out.delivered}
    assert states[first.id] == (JobState.COMPLETED, None)
    assert states[second.id] == (JobState.COMPLETED, None)
    assert all(clip is not None and clip.ogg.startswith(b"OggS") for _, clip in out.delivered)
    assert host.requests == [f"{LAYOUT}.onnx.json", f"{LAYOUT}.onnx"]  # once, not per job


async def test_local_tts_fetch_failure_is_told_and_transcription_goes_on(
    tmp_path: Path, host: FakeVoiceHost
) -> None:
    host.mode = "404"
    data = local_config_dict(tmp_path, voices_dir=str(tmp_path / "v"), voice_source=host.url)
    data["providers"]["local"]["offline"] = False
    async with running_core(parse_config(data, env={})) as (core, out):
        failed = await core.service.speak(ORIGIN, "This needs the voice.")
        await out.wait(1, timeout=60)
        again = await core.service.speak(ORIGIN, "So does this.")  # within the backoff
        await out.wait(2, timeout=60)
        heard = await core.service.transcribe(ORIGIN, make_tone(1.0, "ogg"), "tone.ogg")
        await out.wait(3, timeout=120)
    by_id = {job.id: job for job, _ in out.delivered}
    for job in (by_id[failed.id], by_id[again.id]):
        assert job.state is JobState.FAILED and job.error == encode(VOICE_FETCH_FAILED)
    assert by_id[heard.id].state is JobState.COMPLETED, by_id[heard.id].error
    assert host.requests == [f"{LAYOUT}.onnx.json", f"{LAYOUT}.onnx"]  # the retry waited
    assert _listing(tmp_path / "v") == []


def test_offline_local_tts_refuses_to_fetch_a_missing_voice(tmp_path: Path) -> None:
    data = local_config_dict(tmp_path, voices_dir=str(tmp_path / "empty"))
    with pytest.raises(ConfigError, match="offline: true, so it is not downloaded"):
        parse_config(data, env={})


async def test_local_tts_voice_given_as_a_path_never_touches_the_network(
    tmp_path: Path, host: FakeVoiceHost
) -> None:
    data = local_config_dict(tmp_path, voices_dir=str(tmp_path / "v"), voice_source=host.url)
    data["providers"]["local"]["offline"] = False
    data["tts"]["voice"] = str(joe_voice_path())
    async with running_core(parse_config(data, env={})) as (core, out):
        job = await core.service.speak(ORIGIN, "A voice from a path.")
        await out.wait(1, timeout=120)
    assert out.delivered[0][0].id == job.id and out.delivered[0][0].state is JobState.COMPLETED
    assert host.requests == []


async def test_fetch_voice_into_an_unwritable_folder_says_so(
    tmp_path: Path, host: FakeVoiceHost, session: aiohttp.ClientSession
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(VoiceFetchError, match="cannot create voices_dir"):
        await fetch_voice(session, host.url, VOICE, blocker / "voices")
    assert host.requests == []
