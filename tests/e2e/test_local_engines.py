"""The offline engines for real (tiny.en, a Piper voice): round trip through the whole pipeline,
progress, lost runs rerun after a restart, and bad input that must not stop the bot."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest

from bot.app.core import Core
from bot.chat.replies import transcript_reply
from bot.chat.settings import ChatSettings, UserSettings
from bot.chat.status import render_job
from bot.config.load import parse_config
from bot.jobs.live import partial_text
from bot.model.errors import AudioTooLong, ConfigError, UnknownJob
from bot.model.job import JobState
from bot.model.speech import AudioInput, Origin, SttOptions
from bot.providers.base import PollStatus
from bot.providers.local.settings import WhisperSettings
from bot.providers.local.whisper import DECODE_FAILED, LOAD_FAILED, WhisperSpeechToText
from bot.text import ENGLISH, text_for
from testkit.fakes.audio import make_tone
from testkit.local_engines import (
    SENTENCE,
    VOICE,
    joe_voice_path,
    local_config,
    local_config_dict,
    running_core,
    tiny_en_path,
    word_error_rate,
)
from testkit.support import RecordingDeliverer

ORIGIN = Origin(platform="test", chat_id="chat-1", user_id="user-1", reply_to="m-1")
# Whisper decodes 30 s windows, and progress moves once per window: long texts span several.
PARAGRAPH = " ".join(
    [
        "Voice notes are turned into text on this very computer.",
        "Nothing is sent to a paid service, and no key is needed.",
        "The transcript arrives after a short while, with timings for subtitles.",
        "A long recording shows its progress while the engine works through it.",
        "When the bot restarts in the middle, the work simply starts again.",
    ]
)


async def _speak(core: Core, out: RecordingDeliverer, text: str) -> bytes:
    job = await core.service.speak(ORIGIN, text)
    await out.wait(len(out.delivered) + 1, timeout=120)
    done, clip = out.delivered[-1]
    assert done.id == job.id and done.state is JobState.COMPLETED, done.error
    assert clip is not None
    return clip.ogg


def test_word_error_rate_counts_edits_on_words() -> None:
    assert word_error_rate("the cat sat", "The cat sat.") == 0.0
    assert word_error_rate("the cat sat", "the dog sat") == pytest.approx(1 / 3)
    assert word_error_rate("the cat sat", "the cat") == pytest.approx(1 / 3)
    assert word_error_rate("the cat", "a the cat") == pytest.approx(1 / 2)


async def test_local_round_trip_piper_to_tiny_en_through_the_pipeline(tmp_path: Path) -> None:
    async with running_core(local_config(tmp_path)) as (core, out):
        listed = core.service.preferences.voices(
            ENGLISH, ChatSettings(), UserSettings()
        )  # what /voices lists
        assert f"• {VOICE} ✓" in listed
        ogg = await _speak(core, out, SENTENCE)  # Piper → our OGG/Opus voice clip
        job = await core.service.transcribe(ORIGIN, ogg, "voice.ogg")
        await out.wait(2, timeout=120)
    done, _ = out.delivered[-1]
    assert done.id == job.id and done.state is JobState.COMPLETED, done.error
    transcript = done.transcript
    assert transcript is not None and transcript.language == "en"
    wer = word_error_rate(SENTENCE, transcript.text)
    assert wer <= 0.25, f"WER {wer:.2f}: {transcript.text!r}"
    assert transcript.segments and transcript.segments[-1].end is not None
    assert done.cost is None  # nothing was paid, and nothing claims it was
    assert "language: English (detected)" in render_job(done, done.updated_at)
    # The reply names the language faster-whisper detected, in the reader's language.
    german = transcript_reply(done, limit=4096, max_messages=3, tr=text_for("de"))
    assert german.messages[0].startswith("🇺🇸 Englisch, erkannt\n\n")
    english = transcript_reply(done, limit=4096, max_messages=3)
    assert not english.messages[0].startswith("🇺🇸")  # an English reader is not told


async def test_local_stt_reports_real_progress_and_status_shows_it(tmp_path: Path) -> None:
    async with running_core(local_config(tmp_path)) as (core, out):
        ogg = await _speak(core, out, " ".join([PARAGRAPH] * 3))
        provider = core.stt["local"]
        audio = AudioInput(ogg, "long.ogg", "audio/ogg", 60.0)
        ticket = await provider.submit(audio, SttOptions(model=str(tiny_en_path())))
        shares: list[float] = []
        while (result := await provider.poll(ticket)).status is not PollStatus.COMPLETED:
            assert result.status in (PollStatus.PENDING, PollStatus.RUNNING), result.error
            if result.progress is not None:
                shares.append(result.progress)
            await asyncio.sleep(0.02)
    assert result.transcript is not None and len(result.transcript.segments) >= 2
    assert shares == sorted(shares)
    assert any(0.0 < s < 1.0 for s in shares), shares  # seen between two segments


async def test_local_job_progress_reaches_status_and_placeholder(tmp_path: Path) -> None:
    async with running_core(local_config(tmp_path)) as (core, out):
        ogg = await _speak(core, out, " ".join([PARAGRAPH] * 3))
        job = await core.service.transcribe(ORIGIN, ogg, "long.ogg")
        await out.wait(2, timeout=180)
    with_progress = [j for j in out.progressed if j.id == job.id and j.progress is not None]
    assert with_progress, "no placeholder update carried a percentage"
    seen = with_progress[0]
    assert 0.0 <= (seen.progress or 0.0) < 1.0
    assert "progress:" in render_job(seen, seen.updated_at)


async def test_local_live_text_grows_by_finished_segments_to_the_transcript(
    tmp_path: Path,
) -> None:
    async with running_core(local_config(tmp_path)) as (core, out):
        # Four windows: the job's polls (1 s, then 1.5 s later) land between two of them
        # however fast the engine is today (with two, both could miss).
        ogg = await _speak(core, out, " ".join([PARAGRAPH] * 6))
        provider = core.stt["local"]
        audio = AudioInput(ogg, "long.ogg", "audio/ogg", 105.0)
        ticket = await provider.submit(audio, SttOptions(model=str(tiny_en_path())))
        partials: list[str] = []
        while (result := await provider.poll(ticket)).status is not PollStatus.COMPLETED:
            if result.partial and result.partial not in partials:
                partials.append(result.partial)
            await asyncio.sleep(0.02)
        job = await core.service.transcribe(ORIGIN, ogg, "long.ogg")
        await out.wait(2, timeout=180)
    assert result.transcript is not None and partials
    # Only finished segments: each text so far is the start of the transcript, and grows.
    assert all(result.transcript.text.startswith(p) for p in partials)
    assert [len(p) for p in partials] == sorted(len(p) for p in partials)
    done, _ = out.delivered[-1]
    assert done.id == job.id and done.transcript is not None
    shown = [partial_text(j) or "" for j in out.progressed if j.id == job.id and partial_text(j)]
    assert shown, "no placeholder update carried the text so far"
    assert all(done.transcript.text.startswith(p) for p in shown)


async def test_local_lost_run_is_rerun_after_restart_not_failed(tmp_path: Path) -> None:
    config = local_config(tmp_path)
    text = " ".join([PARAGRAPH] * 2)  # over one window (30 s): not answered within submit
    async with running_core(config) as (core, out):
        ogg = await _speak(core, out, text)
    first = await Core.open(config)  # no poller: we step it by hand to stop mid-run
    try:
        job = await first.service.transcribe(ORIGIN, ogg, "voice.ogg")
        await first.worker.advance(job, first.clock())  # submitted: the run starts on a thread
        submitted = await first.store.get(job.id)
        assert submitted is not None and submitted.state is JobState.SUBMITTED
    finally:
        await first.close()  # "crash": the run and its thread are gone with this process
    async with running_core(config) as (core, out):
        await out.wait(1, timeout=120)
        done, _ = out.delivered[0]
        assert done.id == job.id and done.state is JobState.COMPLETED, done.error
        assert done.attempts == 2 and done.transcript is not None
        assert word_error_rate(text, done.transcript.text) <= 0.25
        assert await core.store.kept.load_blob(job.id, "input") is None  # kept only until done


async def test_local_job_left_submitting_by_a_crash_is_requeued(tmp_path: Path) -> None:
    config = local_config(tmp_path)
    first = await Core.open(config)
    try:
        job = await first.service.transcribe(ORIGIN, make_tone(1.0, "ogg"), "tone.ogg")
        assert await first.store.steps.begin_submit(job.id, first.clock())
    finally:
        await first.close()
    async with running_core(config) as (_core, out):
        await out.wait(1, timeout=120)
    done, _ = out.delivered[0]
    assert done.id == job.id and done.state is JobState.COMPLETED, done.error
    assert done.error_code != "interrupted"


async def test_local_silence_and_a_tenth_of_a_second_answer_no_speech(tmp_path: Path) -> None:
    async with running_core(local_config(tmp_path)) as (core, out):
        silent = await core.service.transcribe(ORIGIN, make_tone(3.0, "ogg", amplitude=0), "s.ogg")
        short = await core.service.transcribe(ORIGIN, make_tone(0.1, "wav"), "short.wav")
        await out.wait(2, timeout=120)
    by_id = {job.id: job for job, _ in out.delivered}
    for job_id in (silent.id, short.id):
        job = by_id[job_id]
        assert job.state is JobState.COMPLETED, job.error
        reply = transcript_reply(job, limit=4096, max_messages=3)
        assert reply.messages == ("🔇 No speech detected in this audio.",)


async def test_local_bad_input_is_refused_clearly_and_the_bot_keeps_serving(
    tmp_path: Path,
) -> None:
    data = local_config_dict(tmp_path, voices_dir=str(joe_voice_path().parent))
    data["limits"]["max_audio_minutes"] = 0.05  # 3 s: the same check as 2 h against 30 min
    async with running_core(parse_config(data, env={})) as (core, out):
        provider = core.stt["local"]
        # Garbage past the service's probe (a direct submit): the engine says it cannot decode.
        ticket = await provider.submit(
            AudioInput(b"\x00garbage" * 500, "x.ogg", "audio/ogg", 3.0),
            SttOptions(model=str(tiny_en_path())),
        )
        while (result := await provider.poll(ticket)).status is not PollStatus.FAILED:
            assert result.status is not PollStatus.COMPLETED
            await asyncio.sleep(0.05)
        assert result.error == DECODE_FAILED
        with pytest.raises(AudioTooLong) as too_long:  # refused before any work
            await core.service.transcribe(ORIGIN, make_tone(5.0, "ogg"), "long.ogg")
        assert "the limit is about 3 seconds" in too_long.value.user_message
        ok = await core.service.transcribe(ORIGIN, make_tone(1.0, "ogg"), "ok.ogg")
        await out.wait(1, timeout=120)
    assert out.delivered[0][0].id == ok.id and out.delivered[0][0].state is JobState.COMPLETED


async def test_local_corrupt_model_fails_the_job_clearly_then_a_good_one_works(
    tmp_path: Path,
) -> None:
    broken = tmp_path / "broken-model"
    shutil.copytree(tiny_en_path(), broken, ignore=shutil.ignore_patterns("model.bin"))
    (broken / "model.bin").write_bytes(b"not a CTranslate2 model" * 100)
    async with running_core(local_config(tmp_path)) as (core, out):
        bad = await core.service.transcribe(
            ORIGIN, make_tone(1.0, "ogg"), "a.ogg", model=str(broken)
        )
        await out.wait(1, timeout=120)
        good = await core.service.transcribe(ORIGIN, make_tone(1.0, "ogg"), "b.ogg")
        await out.wait(2, timeout=120)
    failed, _ = out.delivered[0]
    assert failed.id == bad.id and failed.state is JobState.FAILED
    assert failed.error == LOAD_FAILED
    assert out.delivered[1][0].id == good.id and out.delivered[1][0].state is JobState.COMPLETED


def test_local_missing_model_directory_is_a_config_error_at_start(tmp_path: Path) -> None:
    data = local_config_dict(tmp_path)
    data["stt"]["model"] = str(tmp_path / "no-such-model")
    with pytest.raises(ConfigError) as info:
        parse_config(data, env={})
    text = "\n".join(info.value.problems)
    assert f"stt.model: model directory '{tmp_path / 'no-such-model'}' does not exist" in text
    empty = tmp_path / "empty-model"
    empty.mkdir()
    data["stt"]["model"] = str(empty)
    with pytest.raises(ConfigError) as info:
        parse_config(data, env={})
    assert "has no model.bin, config.json, tokenizer.json" in "\n".join(info.value.problems)


def test_local_unknown_voice_is_a_config_error_listing_the_voices(tmp_path: Path) -> None:
    data = local_config_dict(tmp_path, voices_dir=str(joe_voice_path().parent))
    data["tts"]["voice"] = "en_GB-nobody-low"
    with pytest.raises(ConfigError) as info:
        parse_config(data, env={})
    expected = f"tts.voice: unknown voice 'en_GB-nobody-low' in {joe_voice_path().parent}; "
    expected += f"voices: {VOICE}; offline: true, so it is not downloaded"
    assert expected in info.value.problems


async def test_local_corrupt_voice_fails_the_job_clearly(tmp_path: Path) -> None:
    voices = tmp_path / "voices"
    voices.mkdir()
    (voices / "broken.onnx").write_bytes(b"\x08garbage" * 64)
    shutil.copy(joe_voice_path().with_suffix(".onnx.json"), voices / "broken.onnx.json")
    config = parse_config(
        local_config_dict(tmp_path, voices_dir=str(voices))
        | {"tts": {"provider": "local", "model": "piper", "voice": "broken"}},
        env={},
    )
    async with running_core(config) as (core, out):
        job = await core.service.speak(ORIGIN, "Hello there.")
        await out.wait(1, timeout=60)
    done, clip = out.delivered[0]
    assert done.id == job.id and done.state is JobState.FAILED and clip is None
    assert done.error == "The local voice could not be loaded; the bot's operator has been told."


async def test_local_named_model_not_in_the_cache_fails_fast_offline(tmp_path: Path) -> None:
    tiny_en_path()  # the engine must be installed for this to mean anything
    settings = WhisperSettings(download_dir=tmp_path / "empty-cache", offline=False)
    provider = WhisperSpeechToText("local", settings)
    try:
        ticket = await provider.submit(
            AudioInput(make_tone(1.0, "wav"), "a.wav", "audio/wav", 1.0), SttOptions(model="base")
        )
        while (result := await provider.poll(ticket)).status is not PollStatus.FAILED:
            assert result.status is not PollStatus.COMPLETED
            await asyncio.sleep(0.05)
    finally:
        provider.close()
    assert result.error == LOAD_FAILED  # HF_HUB_OFFLINE and the socket guard: no download, no hang


def test_local_instance_settings_are_checked_when_the_config_is_read(tmp_path: Path) -> None:
    tiny_en_path()
    data = local_config_dict(tmp_path, device="tpu", task="summarize", compute_type="int3")
    with pytest.raises(ConfigError) as info:
        parse_config(data, env={})
    text = "\n".join(info.value.problems)
    assert "providers.local.device: must be one of cpu, cuda, auto, got 'tpu'" in text
    assert "providers.local.task: must be one of transcribe, translate, got 'summarize'" in text
    assert "providers.local.compute_type: must be one of default, auto, int8" in text


async def test_local_run_nobody_polls_is_abandoned(tmp_path: Path) -> None:
    model = str(tiny_en_path())
    now = [0.0]
    provider = WhisperSpeechToText("local", WhisperSettings(workers=1), clock=lambda: now[0])
    # Declared over one window (30 s), so submit hands out tickets instead of answering.
    clip = AudioInput(make_tone(2.0, "wav"), "a.wav", "audio/wav", 40.0)
    try:
        kept = await provider.submit(clip, SttOptions(model=model))
        dropped = await provider.submit(clip, SttOptions(model=model))  # waits for the worker
        first = await provider.poll(dropped)
        assert first.status is PollStatus.PENDING and first.queue_position is not None
        now[0] = 301.0  # the job of `dropped` ended (deadline): nobody asks about it any more
        while (result := await provider.poll(kept)).status is not PollStatus.COMPLETED:
            assert result.status is not PollStatus.FAILED, result.error
            await asyncio.sleep(0.05)
        with pytest.raises(UnknownJob):
            await provider.poll(dropped)
        # Polls 301 s apart were seen: runs now live 3 x that between polls (no rerun loop when an
        # operator sets a long jobs.max_poll_interval).
        a = await provider.submit(clip, SttOptions(model=model))
        b = await provider.submit(clip, SttOptions(model=model))
        now[0] += 400.0
        await provider.poll(a)
        assert (await provider.poll(b)).status in (PollStatus.PENDING, PollStatus.RUNNING)
    finally:
        provider.close()
