"""The whole core pipeline on real parts: service → SQLite store → poller → providers (local fakes)
→ delivery, including restarts, deadlines, retries and dedup."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.audio import codec
from bot.audio.codec import AudioInfo, probe
from bot.chat.settings import ChatSettings, Prefs
from bot.config.load import parse_config
from bot.jobs.delivery import Reply
from bot.jobs.worker import INTERRUPTED_MESSAGE
from bot.model.errors import AudioError, DeliveryError, InputError
from bot.model.job import Job, JobState
from bot.model.speech import Origin
from bot.storage.jobs import SqlJobStore
from bot.text import ENGLISH
from testkit.core import CoreWithFakes
from testkit.fakes.audio import decode_info, make_tone
from testkit.fakes.providers import FakeCantonese, FakeNanoGpt
from testkit.support import ORIGIN, config_dict, harness_config


async def test_pipeline_sync_transcription_delivered_once(
    h: CoreWithFakes, nano: FakeNanoGpt
) -> None:
    assert h.core is not None
    job = await h.core.service.transcribe(ORIGIN, make_tone(2.0, "ogg"), "voice.ogg")
    assert job.state is JobState.QUEUED and job.input_duration == pytest.approx(2.0, abs=0.05)
    await h.drive()
    assert len(h.out.delivered) == 1
    delivered, clip = h.out.delivered[0]
    assert clip is None and delivered.state is JobState.COMPLETED
    assert delivered.transcript is not None and delivered.transcript.text
    assert nano.submits["transcribe"] == 1
    stored = await h.core.store.get(job.id)
    assert stored is not None and stored.delivered_at is not None
    assert await h.core.store.kept.load_blob(job.id, "input") is None
    await h.drive()
    assert len(h.out.delivered) == 1


async def test_pipeline_async_diarized_transcription(
    tmp_path: Path, nano: FakeNanoGpt, canto: FakeCantonese
) -> None:
    h = CoreWithFakes(harness_config(tmp_path, nano, canto, stt={"model": "Elevenlabs-STT"}))
    core = await h.open()
    try:
        settings = ChatSettings(diarize=True)
        job = await core.service.transcribe(
            ORIGIN, make_tone(3.0), "v.ogg", prefs=Prefs(chat=settings)
        )
        assert job.options["diarize"] is True
        await h.drive()
        [(done, _)] = h.out.delivered
        assert done.transcript is not None and done.transcript.diarized
        assert done.poll_count >= 1
        assert any(p.state is JobState.SUBMITTED for p in h.out.progressed)
        assert nano.submits["transcribe"] == 1
    finally:
        await h.close()


async def test_pipeline_restart_while_pending_delivers_once_without_resubmitting(
    tmp_path: Path, nano: FakeNanoGpt, canto: FakeCantonese
) -> None:
    config = harness_config(tmp_path, nano, canto, stt={"model": "Elevenlabs-STT"})
    nano.polls_to_complete = 4
    first = CoreWithFakes(config)
    core = await first.open()
    job = await core.service.transcribe(ORIGIN, make_tone(2.0), "v.ogg")
    await core.poller.run_once()  # submitted
    state = await core.store.get(job.id)
    assert state is not None and state.state is JobState.SUBMITTED
    await first.close()  # "crash": nothing in memory survives

    second = CoreWithFakes(config)
    second.clock.now = first.clock.now
    await second.open()
    try:
        await second.drive()
        assert [j.id for j, _ in second.out.delivered] == [job.id]
        assert nano.submits["transcribe"] == 1
        assert first.out.delivered == []
    finally:
        await second.close()


async def test_pipeline_crash_mid_submit_is_reported_not_resubmitted(
    tmp_path: Path, nano: FakeNanoGpt, canto: FakeCantonese
) -> None:
    config = harness_config(tmp_path, nano, canto)
    first = CoreWithFakes(config)
    core = await first.open()
    job = await core.service.transcribe(ORIGIN, make_tone(1.0), "v.ogg")
    assert await core.store.steps.begin_submit(job.id, first.clock())  # then the process dies
    await first.close()
    second = CoreWithFakes(config)
    await second.open()
    try:
        await second.drive()
        [(done, _)] = second.out.delivered
        assert done.state is JobState.FAILED and done.error == INTERRUPTED_MESSAGE
        assert nano.submits["transcribe"] == 0
    finally:
        await second.close()


async def test_pipeline_cantonese_async(
    tmp_path: Path, nano: FakeNanoGpt, canto: FakeCantonese
) -> None:
    h = CoreWithFakes(harness_config(tmp_path, nano, canto, stt={"provider": "cantonese"}))
    core = await h.open()
    try:
        await core.service.transcribe(ORIGIN, make_tone(2.0, "mp3"), "v.mp3")
        await h.drive(steps=60, dt=5.0)
        [(done, _)] = h.out.delivered
        assert done.state is JobState.COMPLETED and done.provider == "cantonese"
        polls = canto.requests_to("get-result")
        assert len(polls) >= 1
        assert all("test-canto-key" not in (r.path + str(r.query)) for r in polls)
    finally:
        await h.close()


async def test_pipeline_tts_sync_produces_voice_clip(h: CoreWithFakes, nano: FakeNanoGpt) -> None:
    assert h.core is not None
    await h.core.service.speak(ORIGIN, "Hello there, this is a test.")
    await h.drive()
    [(done, clip)] = h.out.delivered
    assert done.state is JobState.COMPLETED and clip is not None
    fmt, codec, duration, rate, channels = decode_info(clip.ogg)
    assert (fmt, codec, rate, channels) == ("ogg", "opus", 48000, 1)
    assert duration == pytest.approx(clip.duration, abs=0.1)
    assert 0 < len(clip.waveform) <= 256


async def test_pipeline_tts_async_elevenlabs(
    tmp_path: Path, nano: FakeNanoGpt, canto: FakeCantonese
) -> None:
    h = CoreWithFakes(harness_config(tmp_path, nano, canto, tts={"model": "Elevenlabs-V3"}))
    core = await h.open()
    try:
        await core.service.speak(ORIGIN, "Async speech.")
        await h.drive()
        [(done, clip)] = h.out.delivered
        assert done.state is JobState.COMPLETED and clip is not None and clip.duration > 0
        assert len(nano.requests_to("tts/status")) >= 1
    finally:
        await h.close()


async def test_pipeline_tts_content_policy_gets_its_own_message(
    tmp_path: Path, nano: FakeNanoGpt, canto: FakeCantonese
) -> None:
    h = CoreWithFakes(harness_config(tmp_path, nano, canto, tts={"model": "Elevenlabs-V3"}))
    core = await h.open()
    try:
        nano.push(
            "tts/status",
            200,
            {"status": "error", "error": "no", "code": "CONTENT_POLICY_VIOLATION"},
        )
        await core.service.speak(ORIGIN, "something")
        await h.drive()
        [(done, _)] = h.out.delivered
        assert done.state is JobState.FAILED and "content policy" in (done.error or "")
    finally:
        await h.close()


@pytest.mark.parametrize(
    ("status", "fragment"),
    [(401, "key was rejected"), (402, "out of credit"), (413, "too large")],
)
async def test_pipeline_submit_refusals_fail_with_clear_message(
    h: CoreWithFakes, nano: FakeNanoGpt, status: int, fragment: str
) -> None:
    assert h.core is not None
    nano.push("transcribe", status, {"error": "nope"})
    await h.core.service.transcribe(ORIGIN, make_tone(1.0), "v.ogg")
    await h.drive()
    [(done, _)] = h.out.delivered
    assert done.state is JobState.FAILED and fragment in (done.error or "")
    assert len(nano.requests_to("transcribe")) == 1  # no retry storm


async def test_pipeline_submit_429_is_retried_after_retry_after(
    h: CoreWithFakes, nano: FakeNanoGpt
) -> None:
    assert h.core is not None
    nano.push("transcribe", 429, {"error": "slow down"}, headers={"Retry-After": "7"})
    job = await h.core.service.transcribe(ORIGIN, make_tone(1.0), "v.ogg")
    await h.core.poller.run_once()
    queued = await h.core.store.get(job.id)
    assert queued is not None and queued.state is JobState.QUEUED
    assert queued.next_poll_at is not None and queued.next_poll_at >= h.clock() + 7
    await h.drive(steps=20)
    [(done, _)] = h.out.delivered
    assert done.state is JobState.COMPLETED and nano.submits["transcribe"] == 1


async def test_pipeline_poll_errors_back_off_then_complete(
    tmp_path: Path, nano: FakeNanoGpt, canto: FakeCantonese
) -> None:
    h = CoreWithFakes(harness_config(tmp_path, nano, canto, stt={"model": "Elevenlabs-STT"}))
    core = await h.open()
    try:
        nano.push("transcribe/status", 500, {"error": "boom"})
        nano.push("transcribe/status", 200, b"{not json")
        await core.service.transcribe(ORIGIN, make_tone(1.0), "v.ogg")
        await h.drive(steps=60)
        [(done, _)] = h.out.delivered
        assert done.state is JobState.COMPLETED
    finally:
        await h.close()


async def test_pipeline_deadline_fails_a_job_that_never_completes(
    tmp_path: Path, nano: FakeNanoGpt, canto: FakeCantonese
) -> None:
    h = CoreWithFakes(
        harness_config(
            tmp_path, nano, canto, stt={"model": "Elevenlabs-STT"}, jobs={"deadline_seconds": 60}
        )
    )
    core = await h.open()
    try:
        nano.polls_to_complete = 10_000
        await core.service.transcribe(ORIGIN, make_tone(1.0), "v.ogg")
        await h.drive(steps=100, dt=2.0)
        [(done, _)] = h.out.delivered
        assert (
            done.state is JobState.FAILED
            and "did not finish within 1 minute," in ENGLISH.render(done.error or "")
        )
    finally:
        await h.close()


async def test_pipeline_delivery_retry_and_permanent_refusal(h: CoreWithFakes) -> None:
    assert h.core is not None
    h.out.fail_with = [DeliveryError("flood", retry_after=3.0)]
    job = await h.core.service.transcribe(ORIGIN, make_tone(1.0), "v.ogg")
    await h.drive()
    assert [j.id for j, _ in h.out.delivered] == [job.id]
    h.out.fail_with = [DeliveryError("bot was blocked", permanent=True)]
    other = await h.core.service.transcribe(ORIGIN, make_tone(1.5), "w.ogg")
    await h.drive()
    gone = await h.core.store.get(other.id)
    assert gone is not None and gone.delivery_error == "bot was blocked"
    assert len(h.out.delivered) == 1


class _Interrupted:
    """A platform whose first delivery sends one message, checkpoints it, then fails."""

    def __init__(self) -> None:
        self.replies: list[Reply] = []

    async def deliver(self, reply: Reply) -> str | None:
        self.replies.append(reply)
        if len(self.replies) == 1:
            noted = await reply.checkpoint(sent=1, first="m-1")
            assert noted.extra["sent"] == 1
            await reply.checkpoint(sent=2)  # merges into the previous checkpoint's extra
            raise DeliveryError("flood", retry_after=1.0)
        return "m-1"

    async def progress(self, job: Job) -> None:
        return None


async def test_pipeline_delivery_checkpoint_is_in_the_retried_job(h: CoreWithFakes) -> None:
    """What a failed delivery already sent is recorded through its checkpoint (not the
    service), and the retry is handed the job with it."""
    assert h.core is not None
    platform = _Interrupted()
    h.core.worker.register("test", platform)
    job = await h.core.service.transcribe(ORIGIN, make_tone(1.0), "v.ogg")
    await h.drive()
    assert [r.job.id for r in platform.replies] == [job.id, job.id]
    assert "sent" not in platform.replies[0].job.extra
    assert platform.replies[1].job.extra == {"sent": 2, "first": "m-1"}
    stored = await h.core.store.get(job.id)
    assert stored is not None and stored.delivery_message_id == "m-1"


async def test_pipeline_dedup_reuses_transcript_without_paying(
    h: CoreWithFakes, nano: FakeNanoGpt
) -> None:
    assert h.core is not None
    audio = make_tone(1.0)
    first = await h.core.service.transcribe(ORIGIN, audio, "v.ogg", dedup_key="file-1")
    await h.drive()
    second = await h.core.service.transcribe(ORIGIN, audio, "v.ogg", dedup_key="file-1")
    await h.drive()
    assert second.id != first.id and second.state is JobState.COMPLETED
    assert second.options["reused_from"] == first.id
    assert [j.id for j, _ in h.out.delivered] == [first.id, second.id]
    assert nano.submits["transcribe"] == 1
    await h.core.service.transcribe(
        ORIGIN, audio, "v.ogg", dedup_key="file-1", prefs=Prefs(chat=ChatSettings(language="de"))
    )
    await h.drive()
    assert nano.submits["transcribe"] == 2  # other options: not the same answer


class _Placeholders:
    """A platform's placeholders: each job shown, before it was stored."""

    def __init__(self, store: SqlJobStore) -> None:
        self.store = store
        self.shown: list[Job] = []

    async def show(self, job: Job) -> str | None:
        assert await self.store.get(job.id) is None  # not stored yet
        self.shown.append(job)
        return f"p-{len(self.shown)}"

    async def withdraw(self, job: Job) -> None:
        raise AssertionError(f"job {job.id} was stored, its placeholder must stay")


async def test_pipeline_placeholder_shown_before_the_job_is_stored_with_it(
    h: CoreWithFakes,
) -> None:
    """Intake shows a new job through the platform's placeholder, then stores it with the
    placeholder in its origin; a reused transcript (answered at once) and a refusal get none."""
    assert h.core is not None
    placeholders = _Placeholders(h.core.store)
    audio, service = make_tone(1.0), h.core.service
    job = await service.transcribe(ORIGIN, audio, "v.ogg", dedup_key="f", placeholder=placeholders)
    [shown] = placeholders.shown
    assert shown.id == job.id and job.placeholder_id == "p-1"
    await h.drive()
    again = await service.transcribe(
        ORIGIN, audio, "v.ogg", dedup_key="f", placeholder=placeholders
    )
    assert again.state is JobState.COMPLETED and again.placeholder_id is None
    with pytest.raises(AudioError):
        await service.transcribe(ORIGIN, b"not audio" * 50, "x.ogg", placeholder=placeholders)
    speech = await service.speak(ORIGIN, "Hello there.", placeholder=placeholders)
    assert len(placeholders.shown) == 2 and speech.placeholder_id == "p-2"
    stored = await h.core.store.get(job.id)
    assert stored is not None and stored.origin.placeholder_id == "p-1"


async def test_pipeline_recording_is_probed_once(
    h: CoreWithFakes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The intake's probe is passed on to the upload preparation: the file is read once."""
    assert h.core is not None
    probed: list[str] = []

    def counting_probe(data: bytes, filename: str | None = None) -> AudioInfo:
        probed.append(str(filename))
        return probe(data, filename)

    monkeypatch.setattr(codec, "probe", counting_probe)
    job = await h.core.service.transcribe(ORIGIN, make_tone(2.0, "ogg"), "voice.ogg")
    assert probed == ["voice.ogg"]
    assert job.input_duration == pytest.approx(2.0, abs=0.05)


async def test_pipeline_bad_input_is_refused_before_a_job_exists(h: CoreWithFakes) -> None:
    assert h.core is not None
    with pytest.raises(AudioError, match="empty"):
        await h.core.service.transcribe(ORIGIN, b"", "v.ogg")
    with pytest.raises(AudioError):
        await h.core.service.transcribe(ORIGIN, b"hello, I am a text file\n" * 10, "v.ogg")
    with pytest.raises(InputError, match="Nothing to say"):
        await h.core.service.speak(ORIGIN, " \u200b\n ")
    with pytest.raises(InputError, match="limit is"):
        await h.core.service.speak(ORIGIN, "word " * 20_000)
    assert await h.core.store.recent(10) == []


async def test_pipeline_status_text_is_scoped_to_chat(h: CoreWithFakes) -> None:
    assert h.core is not None
    job = await h.core.service.transcribe(ORIGIN, make_tone(1.0), "v.ogg")
    svc = h.core.service
    assert job.id in await svc.status_text("test", "chat-1")
    assert "queued" in await svc.status_text("test", "chat-1", job.id)
    assert "No job" in await svc.status_text("test", "chat-2", job.id)
    assert "not a job id" in await svc.status_text("test", "chat-1", "'; DROP TABLE jobs")
    await h.drive()
    assert "done" in await svc.status_text("test", "chat-1", job.id)


async def test_pipeline_settings_change_and_validate(h: CoreWithFakes) -> None:
    assert h.core is not None
    svc = h.core.service
    updated = await svc.change_setting("test", "chat-1", "language", "de")
    assert updated.language == "de"
    assert (await svc.settings("test", "chat-1")).language == "de"
    assert (await svc.settings("test", "chat-2")).language is None
    with pytest.raises(InputError, match="not a language I know"):
        await svc.change_setting("test", "chat-1", "language", "klingon!!")
    with pytest.raises(InputError, match="no setting called"):
        await svc.change_setting("test", "chat-1", "colour", "blue")
    assert "language: German (de) (this chat)" in svc.preferences.describe(
        await svc.settings("test", "chat-1")
    )


async def test_pipeline_replayed_platform_event_is_recognised(h: CoreWithFakes) -> None:
    assert h.core is not None
    origin = Origin("test", "chat-1", "user-1", reply_to="m-9", extra={"source": "update:77"})
    assert not await h.core.service.already_created(origin)
    await h.core.service.speak(origin, "hello")
    assert await h.core.service.already_created(origin)
    other_chat = Origin("test", "chat-2", "user-1", extra={"source": "update:77"})
    assert not await h.core.service.already_created(other_chat)
    assert not await h.core.service.already_created(ORIGIN)  # no source: never a replay


@pytest.mark.parametrize("step", ["queued", "submitted"])
async def test_pipeline_provider_renamed_fails_its_jobs_at_once_with_a_clear_reason(
    tmp_path: Path, nano: FakeNanoGpt, canto: FakeCantonese, step: str
) -> None:
    """An operator renames the ``nanogpt`` instance while a job waits (or runs) there: the job
    can be neither sent nor polled under the new name, so it fails at once, saying why, instead
    of failing on every claim until its deadline."""
    config = harness_config(tmp_path, nano, canto, stt={"model": "Elevenlabs-STT"})
    nano.polls_to_complete = 4
    first = CoreWithFakes(config)
    core = await first.open()
    job = await core.service.transcribe(ORIGIN, make_tone(2.0), "v.ogg")
    if step == "submitted":
        await core.poller.run_once()
    await first.close()

    data = config_dict(tmp_path, nano_url=nano.url, canto_url=canto.url)
    data["providers"]["hosted"] = {"type": "nanogpt", **data["providers"].pop("nanogpt")}
    data["stt"] = {"provider": "hosted", "model": "Elevenlabs-STT"}
    data["tts"] = {**data["tts"], "provider": "hosted"}
    second = CoreWithFakes(parse_config(data, env={}))
    second.clock.now = first.clock.now
    await second.open()
    try:
        await second.drive()
        [(done, _)] = second.out.delivered
        assert done.id == job.id and done.state is JobState.FAILED
        reason = ENGLISH.render(done.error or "")
        assert "(nanogpt) is no longer set up on this bot" in reason
        assert nano.submits["transcribe"] == (1 if step == "submitted" else 0)
        assert second.clock.now - first.clock.now < 60  # not after the 600 s deadline
    finally:
        await second.close()
