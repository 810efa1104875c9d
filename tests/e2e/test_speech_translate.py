"""Translate → English by Whisper's own translate task (the real faster-whisper on tiny.en from
the test extra), with no chat model configured: the one button under a local transcript on both
fake platforms, a durable job made once per transcript, rerun for free after a restart, and the
kept recording dropped after its time. tiny.en is English only: its "translation" is English
text, which proves the path; the task faster-whisper was asked for is read at its own API."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from bot.app.core import Core
from bot.config.load import Config, parse_config
from bot.jobs.speech_translate import RECORDING
from bot.jobs.steps import Completion
from bot.model.errors import InputError
from bot.model.job import Blob, JobKind, JobState, NewJob
from bot.model.speech import Origin
from bot.storage import open_store
from testkit.discord_bot import running_bot
from testkit.fakes.discord import FakeDiscord
from testkit.fakes.providers import FakeCantonese, FakeNanoGpt
from testkit.local_engines import SENTENCE, local_sections, tiny_en_path, word_error_rate
from testkit.local_engines import voice_note as _voice_note
from testkit.support import RecordingDeliverer, config_dict
from testkit.telegram_bot import USER, placeholder_job_id, running

pytestmark = pytest.mark.timeout(180)
ORIGIN = Origin(platform="test", chat_id="c1", user_id="u1", reply_to="m1")


@pytest.fixture
def tasks(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The ``task`` each call of faster-whisper's ``WhisperModel.transcribe`` was given (the
    real method still runs: this only reads what the engine was asked)."""
    tiny_en_path()  # skips without the local and test-models extras
    from faster_whisper import WhisperModel

    seen: list[str] = []
    real = WhisperModel.transcribe

    def spy(self: WhisperModel, audio: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append(str(kwargs.get("task", "transcribe")))
        return real(self, audio, *args, **kwargs)

    monkeypatch.setattr(WhisperModel, "transcribe", spy)
    return seen


@pytest.fixture(scope="module")
def note() -> bytes:
    """A voice note of :data:`SENTENCE` spoken by Piper (needs the local-tts extra)."""
    return asyncio.run(_voice_note(SENTENCE))


def close_to_sentence(text: str) -> bool:
    return word_error_rate(SENTENCE, text) < 0.35


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 60.0) -> None:
    for _ in range(int(timeout / 0.05)):
        if await check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("timed out")


async def test_telegram_translate_english_button_runs_whisper_translate(
    tmp_path: Path, tasks: list[str], note: bytes
) -> None:
    async with running(tmp_path, **local_sections(tmp_path)) as w:
        voice = w.tg.send_voice(USER, USER, note, duration=6)
        placeholder = await w.reply_to(voice)
        job_id = placeholder_job_id(placeholder)
        assert placeholder.message is not None
        mid = placeholder.message["message_id"]
        done = await w.tg.wait_for(
            lambda c: (
                c.method == "editMessageText"
                and c.params.get("message_id") == mid
                and "en:" in str(c.params.get("reply_markup"))
            ),
            timeout=60,
        )
        markup = done.params["reply_markup"]
        assert [b["callback_data"] for row in markup["inline_keyboard"] for b in row] == [
            f"en:{job_id}"
        ]  # no chat model: only the speech model's own translation is offered
        assert markup["inline_keyboard"][0][0]["text"] == "🌐 Translate → English"
        start = len(w.tg.calls)
        w.tg.press_button(USER, USER, mid, f"en:{job_id}")
        toast = await w.tg.wait_for("answerCallbackQuery", start=start)
        assert str(toast.params.get("text")).startswith("Working on the translation (job ")
        working = await w.reply_to({"message_id": mid, "chat": {"id": USER}}, start=start)
        assert (working.text or "").startswith("🌐 Translating… job")
        translation_id = placeholder_job_id(working)
        job = await w.delivered(translation_id)
        assert job.kind is JobKind.TEXT and job.state is JobState.COMPLETED
        assert job.provider == "local" and job.options["engine"] == "speech"
        assert job.transcript is not None and close_to_sentence(job.transcript.text)
        assert working.message is not None
        answer = await w.tg.wait_for(
            lambda c: (
                c.method == "editMessageText"
                and c.params.get("message_id") == working.message["message_id"]  # type: ignore[index]
                and "…" not in (c.text or "")
            ),
            start=start,
            timeout=30,
        )
        assert close_to_sentence(answer.text or "")
        start = len(w.tg.calls)
        w.tg.press_button(USER, USER, mid, f"en:{job_id}")  # again: made once
        again = await w.tg.wait_for("answerCallbackQuery", start=start)
        assert f"already made: job {translation_id}" in str(again.params.get("text"))
        start = len(w.tg.calls)
        w.tg.send_text(USER, USER, "/translate", reply_to=mid)  # an English-speaking user
        said = await w.tg.wait_for(lambda c: c.method == "sendMessage", start=start)
        assert f"translation was already made: job {translation_id}" in (said.text or "")
    assert tasks == ["transcribe", "translate"]


async def test_discord_translate_english_button_runs_whisper_translate(
    tmp_path: Path, tasks: list[str], note: bytes, nano: FakeNanoGpt, canto: FakeCantonese
) -> None:
    sections = local_sections(tmp_path)
    async with (
        FakeDiscord() as dc,
        running_bot(tmp_path, dc, nano, canto, stt=sections["stt"], extra=sections) as r,
    ):
        voice = await dc.send_voice_message(None, dc.ids.admin, note, 6.0)

        def transcript() -> dict[str, Any] | None:
            for m in dc.bot_messages():
                replying = (m.get("message_reference") or {}).get("message_id") == voice["id"]
                if replying and "voicebot:en:" in str(m.get("components")):
                    return m
            return None

        message = await dc.wait_for(transcript, timeout=60)
        [button] = [c for row in message["components"] for c in row["components"]]
        assert button["custom_id"].startswith("voicebot:en:")
        assert button["label"] == "🌐 Translate → English"
        record = dc.interaction(await dc.press_button(message, button["custom_id"]))
        await dc.wait_for(
            lambda: record.original and close_to_sentence(record.original["content"]), timeout=60
        )
        [job] = [j for j in await r.core.store.recent(10) if j.kind is JobKind.TEXT]
        assert job.options["engine"] == "speech" and job.state is JobState.COMPLETED
    assert tasks == ["transcribe", "translate"]


async def open_core(config: Config, out: RecordingDeliverer) -> Core:
    """A Core as ``voicebot run`` starts one: the runner lock taken, interrupted jobs settled."""
    core = await Core.open(config)
    core.worker.register("test", out)
    await core.store.claims.lock_runner(["test"])
    await core.worker.recover(core.clock())
    core.poller.start()
    return core


async def stop(core: Core) -> None:
    await core.poller.stop(timeout=5.0)
    await core.close()


async def test_speech_translation_lost_to_a_restart_runs_again_once(
    tmp_path: Path, tasks: list[str], note: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The short note would be answered within submit; this test needs a run in flight, polled.
    monkeypatch.setattr("bot.providers.local.whisper._INLINE_SECONDS", 0.0)
    config = parse_config(config_dict(tmp_path, **local_sections(tmp_path)), env={})
    out = RecordingDeliverer()
    core = await open_core(config, out)
    try:
        source = await core.service.transcribe(ORIGIN, note, "voice.ogg")
        await out.wait(1, timeout=60)
        assert core.service.text_buttons(out.delivered[0][0]) == ("english",)
        with pytest.raises(InputError, match="Only a translation into English"):
            await core.service.text_job(ORIGIN, source.id, "summary")
        job = await core.service.text_job(ORIGIN, source.id, "translate", "en-GB")
        assert (await core.service.text_job(ORIGIN, source.id, "translate", "en")).id == job.id

        async def running_now() -> bool:
            current = await core.store.get(job.id)
            return current is not None and current.state is JobState.SUBMITTED and bool(tasks[1:])

        await eventually(running_now)
    finally:
        await stop(core)  # the run dies with the process
    out = RecordingDeliverer()
    core = await open_core(config, out)
    try:
        await out.wait(1, timeout=90)

        async def recorded() -> bool:  # once recorded delivered, no second reply can follow
            current = await core.store.get(job.id)
            return current is not None and current.delivered_at is not None

        await eventually(recorded)
    finally:
        await stop(core)
    [(done, _)] = out.delivered
    assert done.id == job.id and done.state is JobState.COMPLETED
    assert done.transcript is not None and close_to_sentence(done.transcript.text)
    assert tasks == ["transcribe", "translate", "translate"]  # rerun once, for free


async def test_speech_translation_cancelled_is_never_delivered(
    tmp_path: Path, tasks: list[str], note: bytes
) -> None:
    config = parse_config(config_dict(tmp_path, **local_sections(tmp_path)), env={})
    out = RecordingDeliverer()
    core = await open_core(config, out)
    try:
        source = await core.service.transcribe(ORIGIN, note, "voice.ogg")
        await out.wait(1, timeout=60)
        job = await core.service.text_job(ORIGIN, source.id, "translate", "en")
        status = await core.service.status_text("test", "c1", job.id)
        assert job.id in status and "translation" in status
        cancelled = await core.service.cancel(ORIGIN, job.id, admin=False)
        assert cancelled.job.state is JobState.CANCELLED
        # No recorded fact says "the cancelled run was dropped": the window in which a wrong
        # delivery would land is the thing under test here.
        await asyncio.sleep(2.0)
    finally:
        await stop(core)
    assert [j.id for j, _ in out.delivered] == [source.id]


async def test_speech_translation_needs_the_kept_recording(tmp_path: Path, note: bytes) -> None:
    sections = local_sections(tmp_path, keep_audio_hours=0)
    config = parse_config(config_dict(tmp_path, **sections), env={})
    out = RecordingDeliverer()
    core = await open_core(config, out)
    try:
        source = await core.service.transcribe(ORIGIN, note, "voice.ogg")
        await out.wait(1, timeout=60)
        assert core.service.text_buttons(out.delivered[0][0]) == ()  # nothing kept: no button
        with pytest.raises(InputError, match="no longer kept"):
            await core.service.text_job(ORIGIN, source.id, "translate", "en")
    finally:
        await stop(core)


@pytest.fixture(params=["sqlite", "postgres"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each backend's database, as in the store contract (tests/core/test_store.py)."""
    if request.param == "sqlite":
        return str(tmp_path / "jobs.sqlite3")
    return str(request.getfixturevalue("pg_url"))


async def test_store_keeps_a_recording_until_its_time(target: str) -> None:
    store = await open_store(target, pool_size=2)
    try:
        jobs = []
        for until in (500.0, 900.0):
            new = NewJob(
                kind=JobKind.STT,
                origin=ORIGIN,
                provider="local",
                model="tiny",
                options={"keep_audio_until": until},
                deadline_at=5000.0,
            )
            blob = Blob(b"OggS-audio", "a.ogg", "audio/ogg")
            job = await store.create(new, now=100.0, input_blob=blob)
            await store.kept.keep_recording(job.id, blob)
            await store.kept.keep_recording(job.id, blob)  # once: a second call changes nothing
            assert await store.steps.begin_submit(job.id, 101.0)
            await store.steps.complete(job.id, Completion({"text": "hi"}), 102.0)
            jobs.append(job)
        assert await store.kept.load_blob(jobs[0].id, "input") is None  # dropped as always
        assert await store.kept.load_blob(jobs[0].id, RECORDING) == blob  # kept
        assert await store.kept.drop_recordings(600.0) == 1
        assert await store.kept.load_blob(jobs[0].id, RECORDING) is None
        assert await store.kept.load_blob(jobs[1].id, RECORDING) == blob
    finally:
        await store.close()


async def test_speech_translation_beside_a_chat_model_and_after_the_recording_expired(
    tmp_path: Path,
) -> None:
    """With a chat model too: both buttons; Translate into English goes to the speech model
    while the recording is kept, to the chat model once it is not; other languages always to
    the chat model. The hourly clean-up drops the recordings past their time."""
    sections = local_sections(tmp_path)
    sections["providers"]["brain"] = {"type": "openai", "base_url": "http://127.0.0.1:9/v1"}
    sections["llm"] = {"provider": "brain", "model": "gpt-4o-mini"}
    core = await Core.open(parse_config(config_dict(tmp_path, **sections), env={}))
    try:
        now = core.clock()
        sources = []
        for until in (now + 3600, now - 1):  # kept; past its time
            new = NewJob(
                kind=JobKind.STT,
                origin=ORIGIN,
                provider="local",
                model=str(tiny_en_path()),
                options={"language": "auto", "keep_audio_until": until},
                deadline_at=now + 600,
            )
            job = await core.store.create(
                new, now=now, state=JobState.COMPLETED, result={"text": "Hallo."}
            )
            await core.store.kept.keep_recording(job.id, Blob(b"OggS", "v.ogg", "audio/ogg"))
            sources.append(job)
        kept, expired = sources
        assert core.service.text_buttons(kept) == ("summary", "translate")
        by_speech = await core.service.text_job(ORIGIN, kept.id, "translate", "en")
        assert by_speech.options["engine"] == "speech" and by_speech.provider == "local"
        assert await core.store.kept.load_blob(by_speech.id, "input") is not None  # its recording
        german = await core.service.text_job(ORIGIN, kept.id, "translate", "de")
        assert "engine" not in german.options and german.provider == "brain"
        by_chat = await core.service.text_job(ORIGIN, expired.id, "translate", "en")
        assert "engine" not in by_chat.options and by_chat.provider == "brain"
        await core.purge_expired()
        assert await core.store.kept.load_blob(expired.id, RECORDING) is None
        assert await core.store.kept.load_blob(kept.id, RECORDING) is not None
    finally:
        await core.close()


async def test_speech_translation_of_a_reused_transcript_uses_the_original_recording(
    tmp_path: Path, note: bytes
) -> None:
    """The same file sent again reuses the transcript (nothing run again); its Translate →
    English runs on the recording kept with the first one."""
    config = parse_config(config_dict(tmp_path, **local_sections(tmp_path)), env={})
    core = await Core.open(config)  # no poller: the store is moved by hand
    try:
        first = await core.service.transcribe(ORIGIN, note, "voice.ogg", dedup_key="file-1")
        assert await core.store.steps.begin_submit(first.id, core.clock())
        await core.store.steps.complete(
            first.id, Completion({"text": "The quick brown fox."}), core.clock()
        )
        other = Origin(platform="test", chat_id="c2", user_id="u2")
        again = await core.service.transcribe(other, note, "voice.ogg", dedup_key="file-1")
        assert again.options["reused_from"] == first.id and again.state is JobState.COMPLETED
        assert core.service.text_buttons(again) == ("english",)
        job = await core.service.text_job(other, again.id, "translate", "en")
        assert job.options["engine"] == "speech" and job.options["source"] == again.id
        assert job.origin.chat_id == "c2"  # answered where it was asked
        blob = await core.store.kept.load_blob(job.id, "input")
        assert blob is not None and blob.data == note
    finally:
        await core.close()
