"""Everything knowable is refused before anything is paid: timings, languages, speakers and
limits checked against the model and the config, with zero provider requests and no job."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.app.core import Core
from bot.model.errors import AudioTooLong
from bot.model.speech import Origin
from bot.providers.http import HttpTransport
from bot.providers.languages import WHISPER_LANGUAGES
from bot.providers.local.whisper import whisper_languages
from bot.providers.nanogpt import NanoGptSpeechToText
from bot.service.checks import NoTimings, Unsupported, check_stt, chosen_language, known_language
from bot.service.limits import LimitExceeded
from testkit.fakes.audio import make_tone
from testkit.fakes.providers import FakeNanoGpt
from testkit.support import FakeClock, RecordingDeliverer, make_config

ALICE = Origin("telegram", "100", "1", reply_to="5")
TWO_MINUTES_WAV = make_tone(120.0, "wav", rate=16000)
"""3.8 MB: over NanoGPT's 3 MB upload, so a job for it would be split into parts."""


@pytest.fixture
async def core(tmp_path: Path, nano: FakeNanoGpt) -> AsyncIterator[Core]:
    """The core with fakes, no limits beyond the defaults."""
    built = await _open(tmp_path, nano)
    try:
        yield built
    finally:
        await built.close()


async def _open(tmp_path: Path, nano: FakeNanoGpt, **sections: Any) -> Core:
    built = await Core.open(make_config(tmp_path, nano_url=nano.url, **sections), clock=FakeClock())
    built.worker.register("telegram", RecordingDeliverer())
    return built


async def _nothing_sent(core: Core, nano: FakeNanoGpt) -> None:
    """No provider request, no job stored, and nothing for the poller to send later."""
    await core.poller.run_once()
    assert nano.requests == []
    assert await core.store.recent(10) == []


async def test_refusals_subtitles_from_a_model_without_timings(
    core: Core, nano: FakeNanoGpt
) -> None:
    with pytest.raises(NoTimings) as caught:
        await core.service.transcribe(ALICE, TWO_MINUTES_WAV, "talk.wav", timings=True)
    assert caught.value.user_message == (
        "The transcription model Whisper-Large-V3 gives no timings, so it cannot make subtitles "
        "(SRT or VTT)."
    )
    await _nothing_sent(core, nano)
    # A model that declares timings takes the same request.
    job = await core.service.transcribe(
        ALICE, make_tone(2.0), "a.ogg", model="Elevenlabs-STT", timings=True
    )
    assert job.model == "Elevenlabs-STT"


async def test_refusals_language_the_model_does_not_know_with_did_you_mean(
    core: Core, nano: FakeNanoGpt
) -> None:
    with pytest.raises(Unsupported, match=r"Did you mean German \(de\)\?"):
        await core.service.transcribe(ALICE, TWO_MINUTES_WAV, "talk.wav", language="germn")
    with pytest.raises(Unsupported, match=r"does not know Klingon \(tlh\)"):
        await core.service.transcribe(ALICE, TWO_MINUTES_WAV, "talk.wav", language="klingon")
    await _nothing_sent(core, nano)
    # A name is taken as people type it, and stored as the code the provider is sent.
    job = await core.service.transcribe(ALICE, make_tone(2.0), "a.ogg", language="German")
    assert job.options["language"] == "de"


async def test_refusals_a_language_from_settings_gets_the_chat_sentence(
    core: Core, nano: FakeNanoGpt
) -> None:
    # Set when another model was configured: the chat user hears why before any job exists.
    await core.store.usage.put_user_settings("telegram", "1", {"language": "tlh"}, 0.0)
    with pytest.raises(Unsupported) as caught:
        await core.service.transcribe(ALICE, make_tone(2.0), "a.ogg")
    assert caught.value.user_message == "The transcription model does not know Klingon (tlh)."
    await _nothing_sent(core, nano)


async def test_refusals_speakers_from_a_model_that_cannot_diarize(
    core: Core, nano: FakeNanoGpt
) -> None:
    with pytest.raises(Unsupported) as caught:
        await core.service.transcribe(ALICE, TWO_MINUTES_WAV, "talk.wav", diarize=True)
    assert caught.value.user_message == (
        "The transcription model Whisper-Large-V3 cannot tell speakers apart."
    )
    await _nothing_sent(core, nano)
    job = await core.service.transcribe(
        ALICE, make_tone(2.0), "a.ogg", model="Elevenlabs-STT", diarize=True
    )
    assert job.options["diarize"] is True


@pytest.mark.parametrize(
    ("limits", "error"),
    [
        ({"daily_audio_minutes_per_user": 1.0}, LimitExceeded),
        ({"max_audio_minutes": 1.0}, AudioTooLong),
    ],
)
async def test_refusals_limits_count_the_whole_recording_before_it_is_split(
    tmp_path: Path, nano: FakeNanoGpt, limits: dict[str, float], error: type[Exception]
) -> None:
    core = await _open(tmp_path, nano, limits=limits)
    try:
        with pytest.raises(error):
            await core.service.transcribe(ALICE, TWO_MINUTES_WAV, "talk.wav")
        await _nothing_sent(core, nano)
    finally:
        await core.close()


async def test_refusals_speech_longer_than_the_model_takes(
    tmp_path: Path, nano: FakeNanoGpt
) -> None:
    core = await _open(tmp_path, nano, limits={"max_speak_chars": 0})  # only the model's limit
    try:
        with pytest.raises(Unsupported, match=r"60,000 characters; the limit is 50,000"):
            await core.service.speak(ALICE, "x" * 60_000)
        await _nothing_sent(core, nano)
    finally:
        await core.close()


async def test_refusals_speaker_labels_setting_on_a_model_that_cannot_diarize(
    tmp_path: Path, nano: FakeNanoGpt
) -> None:
    core = await _open(tmp_path / "whisper", nano)
    try:
        with pytest.raises(Unsupported, match="Whisper-Large-V3 cannot tell speakers apart"):
            await core.service.change_setting("telegram", "100", "diarize", "on")
        assert (await core.service.settings("telegram", "100")).diarize is None
        await core.service.change_setting("telegram", "100", "diarize", "off")
    finally:
        await core.close()
    core = await _open(tmp_path / "scribe", nano, stt={"model": "Elevenlabs-STT"})
    try:
        changed = await core.service.change_setting("telegram", "100", "diarize", "on")
        assert changed.diarize is True
    finally:
        await core.close()


async def test_refusals_follow_what_each_model_declares(session: aiohttp.ClientSession) -> None:
    nano = NanoGptSpeechToText(HttpTransport(session), api_key="k", base_url="http://127.0.0.1:9")
    for model in ("Whisper-Large-V3", "Wizper"):
        caps = nano.capabilities(model)
        assert (caps.timestamps, caps.diarization) == (False, False)
        assert caps.languages == WHISPER_LANGUAGES and "yue" in caps.languages
        with pytest.raises(NoTimings):
            check_stt(model, caps, diarize=None, timings=True)
    scribe = nano.capabilities("Elevenlabs-STT")
    check_stt("Elevenlabs-STT", scribe, diarize=True, timings=True)
    assert chosen_language("Klingon", scribe) == "tlh"  # no languages declared: any language
    wizper = nano.capabilities("Wizper")
    assert chosen_language("Deutsch", wizper) == "de"
    assert chosen_language("auto", wizper) == "auto"
    known_language("de-AT", wizper)  # a regional code of a language the model knows
    assert whisper_languages("base.en") == {"en"}  # local English-only models
    assert whisper_languages("base") == WHISPER_LANGUAGES
